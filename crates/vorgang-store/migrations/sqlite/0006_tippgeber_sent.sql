-- What was last sent to each Tippgeber's partner at Europace (issue 12): one fingerprint per
-- attribute, so an import with changed Tippgeber data updates the partner (PATCH) and one with
-- unchanged data does not.
--
-- JSON object {"anrede"|"vorname"|"nachname"|"telefon"|"email": "<64 hex digits>"}, an
-- attribute only if it was sent: SHA-256 over the environment, the externePartnerId, the
-- partnerId, the attribute and its value as sent (vorgang_core::TippgeberMapping). No value is
-- stored readable; a fingerprint confirms a guessed value, so it is personal data (pseudonymous,
-- docs/privacy.md), kept as long as the mapping.
--
-- NULL: nothing known to be sent (rows of the builds before; a partner found at Europace): the
-- next import sends every attribute it carries once.
--
-- Rolling-upgrade safe: only adds a nullable column. The previous build's upsert names only
-- partner_id and leaves the fingerprints; they include the partnerId, so fingerprints left
-- under a replaced partnerId never count as sent.

ALTER TABLE tippgeber_partners ADD COLUMN sent_fingerprints TEXT;

//! Settings: defaults, overridden by an optional TOML file, overridden by `VORGANG_*` variables.

use std::net::SocketAddr;
use std::path::Path;

use base64::Engine as _;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// How `POST /vorgang` validates bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Our own token endpoint and keys.
    #[default]
    Builtin,
    /// An external issuer's JWKS.
    Jwks,
    /// RFC 7662 introspection at an external authorization server.
    Introspection,
}

/// `auth.*` settings.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct AuthSettings {
    /// `builtin`, `jwks` or `introspection`.
    pub mode: AuthMode,
    /// JWKS URL of the external issuer (`jwks` mode).
    pub jwks_url: Option<Url>,
    /// `iss` of the external issuer (`jwks` mode).
    pub issuer: Option<String>,
    /// Introspection endpoint (`introspection` mode).
    pub introspection_url: Option<Url>,
    /// Our client id at the introspection endpoint.
    pub client_id: Option<String>,
    /// Our client secret at the introspection endpoint.
    pub client_secret: Option<SecretString>,
}

/// The problem of settings without `europace.base_url` in a build without the embedded sandbox.
#[cfg(not(feature = "embedded-sandbox"))]
pub const BASE_URL_REQUIRED: &str = "europace.base_url: required, this build has no embedded sandbox (built without the cargo feature `embedded-sandbox`)";

/// `europace.*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EuropaceSettings {
    /// Connect timeout of every Europace call.
    pub connect_timeout_ms: u64,
    /// Total timeout of every Europace call.
    pub request_timeout_ms: u64,
    /// Base URL; unset: the embedded sandbox is started and used (builds with the default
    /// feature `embedded-sandbox`; without it, required).
    pub base_url: Option<Url>,
    /// Token endpoint; default `{base}/auth/token`.
    pub auth_url: Option<Url>,
    /// Partner API host root; default `{base}`.
    pub partner_url: Option<Url>,
    /// KEX import endpoint; default `{base}/vorgang`.
    pub kex_url: Option<Url>,
    /// Our client id at Europace.
    pub client_id: Option<String>,
    /// Our client secret at Europace.
    pub client_secret: Option<SecretString>,
    /// Optional impersonation at Europace's token endpoint: the partnerId we act for
    /// (`subject`); needs `impersonation_actor` too.
    pub impersonation_subject: Option<String>,
    /// Optional impersonation: the partnerId that allowed us to act for the subject (`actor`).
    pub impersonation_actor: Option<String>,
    /// Scope requested for KEX imports.
    pub kex_scope: String,
    /// Scopes requested for Partnermanagement.
    pub partner_scope: String,
    /// partnerId of the Kundenbetreuer set on every import.
    pub kundenbetreuer_partner_id: String,
    /// Parent of Tippgeber created for `PRODUCTION`.
    pub tippgeber_parent_id: String,
    /// Parent of Tippgeber created for `TEST`.
    pub test_tippgeber_parent_id: String,
}

impl Default for EuropaceSettings {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            request_timeout_ms: 10_000,
            base_url: None,
            auth_url: None,
            partner_url: None,
            kex_url: None,
            client_id: None,
            client_secret: None,
            impersonation_subject: None,
            impersonation_actor: None,
            kex_scope: "privatkredit:vorgang:schreiben".into(),
            partner_scope: "partner:plakette:lesen partner:plakette:anlegen".into(),
            kundenbetreuer_partner_id: "KBT01".into(),
            tippgeber_parent_id: "TGP01".into(),
            test_tippgeber_parent_id: "TGT01".into(),
        }
    }
}

/// All settings of the service (DESIGN.md §4).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address to serve on.
    pub listen: String,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: SecretString,
    /// `iss` of our tokens; default `http://{bound address}`.
    pub issuer: Option<String>,
    /// `aud` of our tokens.
    pub audience: String,
    /// Base64 of 32 bytes encrypting signing keys at rest.
    pub key_encryption_key: Option<SecretString>,
    /// Finished imports are purged after this many days.
    pub retention_days: u32,
    /// Token validation mode.
    pub auth: AuthSettings,
    /// Access-token lifetime in seconds.
    pub token_ttl_s: u64,
    /// Clock-skew tolerance in seconds.
    pub token_leeway_s: u64,
    /// Europace.
    pub europace: EuropaceSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: SecretString::from("sqlite://vorgang.db?mode=rwc"),
            issuer: None,
            audience: "drkleinrk-api".into(),
            key_encryption_key: None,
            retention_days: 30,
            auth: AuthSettings::default(),
            token_ttl_s: 900,
            token_leeway_s: 30,
            europace: EuropaceSettings::default(),
        }
    }
}

/// Settings could not be read or are invalid.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file or a variable could not be parsed.
    #[error("{0}")]
    Load(String),
    /// One line per invalid setting.
    #[error("invalid settings:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

impl Settings {
    /// Loads defaults, then `config_file` (if given, it must exist), then `VORGANG_*` variables.
    ///
    /// # Errors
    /// [`SettingsError::Load`] when the file or a variable cannot be parsed.
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        let mut figment = Figment::new();
        if let Some(path) = config_file {
            if !path.exists() {
                return Err(SettingsError::Load(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("VORGANG_").split("__").ignore(&["config"]));
        figment
            .extract()
            .map_err(|e| SettingsError::Load(redact_figment_error(&e)))
    }

    /// Checks every setting; one message per problem.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        // Here rather than only at start, so that `config check` names it too.
        #[cfg(not(feature = "embedded-sandbox"))]
        if self.europace.base_url.is_none() {
            problems.push(BASE_URL_REQUIRED.to_owned());
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            problems.push("listen: must be an address like 127.0.0.1:8080".to_owned());
        }
        let db = self.database_url.expose_secret();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            problems.push("database_url: must start with sqlite: or postgres://".to_owned());
        }
        if self.retention_days < 2 {
            problems.push(
                "retention_days: must be at least 2 (beyond the 24 h idempotency window)"
                    .to_owned(),
            );
        }
        if self.token_ttl_s == 0 || self.token_ttl_s > 86_400 {
            problems.push("token_ttl_s: must be between 1 and 86400".to_owned());
        }
        if self.token_leeway_s > 300 {
            problems.push("token_leeway_s: must be at most 300".to_owned());
        }
        match &self.key_encryption_key {
            Some(kek) if decode_kek(kek).is_none() => {
                problems.push("key_encryption_key: must be base64 of exactly 32 bytes".to_owned());
            }
            // With real Europace the service holds real partners' tokens: signing keys in
            // plaintext would let anyone with a copy of the database (a backup, a dump) mint
            // tokens. Only the embedded sandbox may run without, with a warning at start.
            None if self.europace.base_url.is_some() => problems.push(
                "key_encryption_key: required when europace.base_url is set (base64 of 32 random bytes, e.g. from `openssl rand -base64 32`)"
                    .to_owned(),
            ),
            _ => {}
        }
        match self.auth.mode {
            AuthMode::Builtin => {}
            AuthMode::Jwks => {
                if self.auth.jwks_url.is_none() || self.auth.issuer.is_none() {
                    problems.push("auth: mode jwks needs auth.jwks_url and auth.issuer".to_owned());
                }
            }
            AuthMode::Introspection => {
                if self.auth.introspection_url.is_none()
                    || self.auth.client_id.is_none()
                    || self.auth.client_secret.is_none()
                {
                    problems.push("auth: mode introspection needs auth.introspection_url, auth.client_id and auth.client_secret".to_owned());
                }
            }
        }
        let e = &self.europace;
        if e.connect_timeout_ms == 0 || e.request_timeout_ms == 0 {
            problems.push("europace: timeouts must be positive".to_owned());
        }
        if e.request_timeout_ms < e.connect_timeout_ms {
            problems.push(
                "europace.request_timeout_ms: must not be below connect_timeout_ms".to_owned(),
            );
        }
        for (name, url) in [
            ("europace.base_url", &e.base_url),
            ("europace.auth_url", &e.auth_url),
            ("europace.partner_url", &e.partner_url),
            ("europace.kex_url", &e.kex_url),
        ] {
            if let Some(url) = url
                && !matches!(url.scheme(), "http" | "https")
            {
                problems.push(format!("{name}: must be an http(s) URL"));
            }
        }
        if e.base_url.is_some() && (e.client_id.is_none() || e.client_secret.is_none()) {
            problems.push("europace: base_url is set, so europace.client_id and europace.client_secret are required".to_owned());
        }
        if e.impersonation_subject.is_some() != e.impersonation_actor.is_some() {
            problems.push(
                "europace: impersonation_subject and impersonation_actor go together".to_owned(),
            );
        }
        for (name, value) in [
            (
                "europace.kundenbetreuer_partner_id",
                &e.kundenbetreuer_partner_id,
            ),
            ("europace.tippgeber_parent_id", &e.tippgeber_parent_id),
            (
                "europace.test_tippgeber_parent_id",
                &e.test_tippgeber_parent_id,
            ),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("{name}: must not be empty"));
            }
        }
        problems
    }

    /// The effective settings as JSON, every secret masked.
    #[must_use]
    pub fn masked_json(&self) -> serde_json::Value {
        let mask = |s: &Option<SecretString>| s.as_ref().map(|_| "********");
        let e = &self.europace;
        serde_json::json!({
            "listen": self.listen,
            "database_url": mask_url(self.database_url.expose_secret()),
            "issuer": self.issuer,
            "audience": self.audience,
            "key_encryption_key": mask(&self.key_encryption_key),
            "retention_days": self.retention_days,
            "auth": {
                "mode": format!("{:?}", self.auth.mode).to_lowercase(),
                "jwks_url": self.auth.jwks_url,
                "issuer": self.auth.issuer,
                "introspection_url": self.auth.introspection_url,
                "client_id": self.auth.client_id,
                "client_secret": mask(&self.auth.client_secret),
            },
            "token_ttl_s": self.token_ttl_s,
            "token_leeway_s": self.token_leeway_s,
            "europace": {
                "connect_timeout_ms": e.connect_timeout_ms,
                "request_timeout_ms": e.request_timeout_ms,
                "base_url": e.base_url,
                "auth_url": e.auth_url,
                "partner_url": e.partner_url,
                "kex_url": e.kex_url,
                "client_id": e.client_id,
                "client_secret": mask(&e.client_secret),
                "impersonation_subject": e.impersonation_subject,
                "impersonation_actor": e.impersonation_actor,
                "kex_scope": e.kex_scope,
                "partner_scope": e.partner_scope,
                "kundenbetreuer_partner_id": e.kundenbetreuer_partner_id,
                "tippgeber_parent_id": e.tippgeber_parent_id,
                "test_tippgeber_parent_id": e.test_tippgeber_parent_id,
            }
        })
    }
}

/// Decodes the key-encryption key, if valid.
#[must_use]
pub fn decode_kek(kek: &SecretString) -> Option<[u8; 32]> {
    base64::engine::general_purpose::STANDARD
        .decode(kek.expose_secret().trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
}

/// A database URL with its password replaced by `********`.
#[must_use]
pub fn mask_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// figment errors may quote a value (e.g. a secret with the wrong type): keep only the key path
/// and the kind of problem.
fn redact_figment_error(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let path = if e.path.is_empty() {
                "settings".to_owned()
            } else {
                e.path.join(".")
            };
            let kind = match &e.kind {
                figment::error::Kind::InvalidType(_, expected) => {
                    format!("wrong type, expected {expected}")
                }
                figment::error::Kind::InvalidValue(_, expected) => {
                    format!("invalid value, expected {expected}")
                }
                figment::error::Kind::UnknownField(field, _) => format!("unknown field {field}"),
                figment::error::Kind::MissingField(field) => format!("missing field {field}"),
                figment::error::Kind::Message(_) => "could not be read (syntax error?)".to_owned(),
                other => format!("{other}"),
            };
            format!("{path}: {kind}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's error type
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_design() {
        let settings = Settings::default();
        #[cfg(feature = "embedded-sandbox")]
        assert!(settings.problems().is_empty(), "{:?}", settings.problems());
        // Without the embedded sandbox there is no default Europace: the one problem.
        #[cfg(not(feature = "embedded-sandbox"))]
        assert_eq!(settings.problems(), [BASE_URL_REQUIRED]);
        assert_eq!(settings.listen, "127.0.0.1:8080");
        assert_eq!(settings.europace.request_timeout_ms, 10_000);
        assert_eq!(settings.europace.kundenbetreuer_partner_id, "KBT01");
    }

    #[test]
    fn file_and_environment_layer_over_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "v.toml",
                "retention_days = 7\n[europace]\nkex_scope = \"a\"\n",
            )?;
            jail.set_env("VORGANG_EUROPACE__KEX_SCOPE", "b");
            jail.set_env("VORGANG_TOKEN_TTL_S", "60");
            let settings = Settings::load(Some(Path::new("v.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(settings.retention_days, 7);
            assert_eq!(settings.europace.kex_scope, "b");
            assert_eq!(settings.token_ttl_s, 60);
            Ok(())
        });
    }

    #[test]
    fn a_key_encryption_key_is_required_with_real_europace_only() {
        let mut settings = Settings::default();
        #[cfg(feature = "embedded-sandbox")]
        assert!(settings.problems().is_empty(), "the sandbox runs without");
        settings.europace.base_url = Some(Url::parse("https://api.europace.de").unwrap());
        settings.europace.client_id = Some("dkr".into());
        settings.europace.client_secret = Some(SecretString::from("s"));
        let problems = settings.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("key_encryption_key: required"));
        settings.key_encryption_key = Some(SecretString::from(
            base64::engine::general_purpose::STANDARD.encode([3u8; 32]),
        ));
        assert!(settings.problems().is_empty(), "{:?}", settings.problems());
    }

    #[test]
    fn problems_name_each_bad_setting_and_secrets_are_masked() {
        let mut settings = Settings {
            retention_days: 1,
            listen: "nope".into(),
            key_encryption_key: Some(SecretString::from("c2hvcnQ=")),
            ..Settings::default()
        };
        settings.europace.base_url = Some(Url::parse("https://example.invalid").unwrap());
        settings.europace.impersonation_subject = Some("ABC12".into());
        let problems = settings.problems();
        assert_eq!(problems.len(), 5, "{problems:?}");
        settings.database_url = SecretString::from("postgres://u:geheim@db/x");
        let json = settings.masked_json().to_string();
        assert!(!json.contains("geheim"));
        assert!(!json.contains("c2hvcnQ="));
    }
}

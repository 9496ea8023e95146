//! The in-memory state of the sandbox: partners, tokens, recorded imports, faults and counters.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::Rng as _;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::fault::{Call, QueuedFault};
use crate::{Environment, RecordedCall, RecordedVorgang};

/// How many requests `/_sandbox/calls` remembers: the newest, so a long-running sandbox (the
/// embedded default) does not grow without bound.
const MAX_RECORDED_CALLS: usize = 1000;

/// Scope granted when a token request names no scope: everything the sandbox knows.
pub(crate) const ALL_SCOPES: &str = "partner:plakette:lesen partner:plakette:anlegen \
     partner:plakette:schreiben privatkredit:vorgang:schreiben";

/// Number of seed partners at the start of [`State::partners`].
const SEED_COUNT: usize = 3;

/// An issued access token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    expires_at: Instant,
    /// `None`: all scopes.
    scopes: Option<HashSet<String>>,
}

/// Requests received per fault target.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Stats {
    auth: u64,
    partner_lookup: u64,
    partner_create: u64,
    partner_update: u64,
    kex: u64,
}

/// Why a Bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRejection {
    /// Unknown or expired.
    Invalid,
    /// Valid, but issued without the scope the endpoint needs.
    MissingScope,
}

/// Outcome of creating a partner.
#[derive(Debug)]
pub(crate) enum CreateOutcome {
    /// A new partner (201).
    Created(Map<String, Value>),
    /// A partner with that `externePartnerId` already existed and was updated (205).
    Existing(Map<String, Value>),
    /// The parent is unknown (404).
    UnknownParent,
}

/// Everything the sandbox holds, behind one mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// Partners in creation order; the first [`SEED_COUNT`] are the seeds.
    partners: Vec<Map<String, Value>>,
    /// partnerId → index in `partners`.
    by_id: HashMap<String, usize>,
    tokens: HashMap<String, Token>,
    vorgaenge: Vec<RecordedVorgang>,
    vorgangsnummern: HashSet<String>,
    faults: Vec<QueuedFault>,
    stats: Stats,
    calls: VecDeque<RecordedCall>,
}

impl State {
    /// A fresh state holding only the seed partners.
    pub(crate) fn new() -> Self {
        let mut state = Self {
            partners: Vec::new(),
            by_id: HashMap::new(),
            tokens: HashMap::new(),
            vorgaenge: Vec::new(),
            vorgangsnummern: HashSet::new(),
            faults: Vec::new(),
            stats: Stats::default(),
            calls: VecDeque::new(),
        };
        for seed in seeds() {
            state.insert_partner(seed);
        }
        debug_assert_eq!(state.partners.len(), SEED_COUNT);
        state
    }

    /// Forgets imports, non-seed partners, tokens, faults and counters.
    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }

    // ---- tokens ----------------------------------------------------------------------------

    /// Issues a new random opaque token valid for `ttl`.
    pub(crate) fn issue_token(&mut self, ttl: Duration, scope: Option<&str>) -> String {
        let now = Instant::now();
        self.tokens.retain(|_, t| t.expires_at > now);
        let token = loop {
            let bytes: [u8; 32] = rand::random();
            let candidate = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            if !self.tokens.contains_key(&candidate) {
                break candidate;
            }
        };
        let scopes = scope.map(|s| s.split_whitespace().map(str::to_owned).collect());
        self.tokens.insert(
            token.clone(),
            Token {
                expires_at: now + ttl,
                scopes,
            },
        );
        token
    }

    /// Checks a presented Bearer token; `required_scope` is checked when `Some`.
    pub(crate) fn check_token(
        &self,
        token: &str,
        required_scope: Option<&str>,
    ) -> Result<(), TokenRejection> {
        let Some(t) = self.tokens.get(token) else {
            return Err(TokenRejection::Invalid);
        };
        if t.expires_at <= Instant::now() {
            return Err(TokenRejection::Invalid);
        }
        match (required_scope, &t.scopes) {
            (Some(required), Some(scopes)) if !scopes.contains(required) => {
                Err(TokenRejection::MissingScope)
            }
            _ => Ok(()),
        }
    }

    // ---- faults and counters ---------------------------------------------------------------

    /// Remembers the correlation headers of a received request (the newest
    /// [`MAX_RECORDED_CALLS`]).
    pub(crate) fn record_call(&mut self, recorded: RecordedCall) {
        if self.calls.len() == MAX_RECORDED_CALLS {
            self.calls.pop_front();
        }
        self.calls.push_back(recorded);
    }

    /// Counts a received request and takes the next fault queued for it, if any.
    pub(crate) fn begin(&mut self, call: Call) -> Option<QueuedFault> {
        match call {
            Call::Auth => self.stats.auth += 1,
            Call::PartnerLookup => self.stats.partner_lookup += 1,
            Call::PartnerCreate => self.stats.partner_create += 1,
            Call::PartnerUpdate => self.stats.partner_update += 1,
            Call::Kex => self.stats.kex += 1,
        }
        let index = self.faults.iter().position(|f| f.target.applies_to(call))?;
        let entry = &mut self.faults[index];
        let taken = entry.clone();
        entry.remaining = entry.remaining.saturating_sub(1);
        if entry.remaining == 0 {
            self.faults.remove(index);
        }
        Some(taken)
    }

    pub(crate) fn push_fault(&mut self, fault: QueuedFault) {
        self.faults.push(fault);
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
    }

    pub(crate) fn faults(&self) -> &[QueuedFault] {
        &self.faults
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    pub(crate) fn calls(&self) -> Vec<RecordedCall> {
        self.calls.iter().cloned().collect()
    }

    // ---- partners --------------------------------------------------------------------------

    fn insert_partner(&mut self, partner: Map<String, Value>) {
        if let Some(Value::String(id)) = partner.get("partnerId") {
            self.by_id.insert(id.clone(), self.partners.len());
        }
        self.partners.push(partner);
    }

    pub(crate) fn partner(&self, id: &str) -> Option<&Map<String, Value>> {
        self.by_id.get(id).and_then(|&i| self.partners.get(i))
    }

    pub(crate) fn partners(&self) -> &[Map<String, Value>] {
        &self.partners
    }

    /// partnerIds of all partners with that `externePartnerId`, in creation order.
    pub(crate) fn find_by_externe_partner_id(&self, externe_partner_id: &str) -> Vec<String> {
        self.partners
            .iter()
            .filter(|p| {
                p.get("externePartnerId").and_then(Value::as_str) == Some(externe_partner_id)
            })
            .filter_map(|p| {
                p.get("partnerId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }

    /// Creates a partner below `parent_id` from sanitised attributes, or updates the partner
    /// below `parent_id` that already carries the same `externePartnerId`.
    pub(crate) fn create_partner(
        &mut self,
        parent_id: &str,
        typ: Option<&str>,
        attributes: Map<String, Value>,
    ) -> CreateOutcome {
        if !self.by_id.contains_key(parent_id) {
            return CreateOutcome::UnknownParent;
        }
        // The search is Europace-wide and may find the same `externePartnerId` under several
        // parents (Partnermanagement has no test mode: a Tippgeber can exist under the test
        // and the production parent); creation finds an existing one only below this parent.
        let existing = attributes
            .get("externePartnerId")
            .and_then(Value::as_str)
            .and_then(|ext| {
                self.find_by_externe_partner_id(ext).into_iter().find(|id| {
                    self.partner(id)
                        .and_then(|p| p.get("parent"))
                        .and_then(|parent| parent.get("partnerId"))
                        .and_then(Value::as_str)
                        == Some(parent_id)
                })
            })
            .and_then(|id| self.by_id.get(&id).copied());
        if let Some(index) = existing
            && let Some(partner) = self.partners.get_mut(index)
        {
            // Europace: "found by external PartnerId and was updated". partnerId, typ and
            // parent are not changeable.
            for (key, value) in attributes {
                partner.insert(key, value);
            }
            return CreateOutcome::Existing(partner.clone());
        }
        let id = self.new_partner_id();
        let mut partner = Map::new();
        partner.insert("partnerId".into(), Value::String(id));
        partner.insert(
            "typ".into(),
            Value::String(typ.unwrap_or("PERSON").to_owned()),
        );
        partner.insert("parent".into(), json!({ "partnerId": parent_id }));
        partner.insert("gesperrt".into(), Value::Bool(false));
        for (key, value) in attributes {
            partner.insert(key, value);
        }
        self.insert_partner(partner.clone());
        CreateOutcome::Created(partner)
    }

    /// Applies a `PATCH` to partner `id`: each attribute set to its value, or removed for
    /// `None` (Europace: an empty string deletes the value); every other attribute stays.
    /// Returns the partner as it is now, `None` when there is no such partner.
    pub(crate) fn update_partner(
        &mut self,
        id: &str,
        changes: Vec<(String, Option<Value>)>,
    ) -> Option<Map<String, Value>> {
        let index = *self.by_id.get(id)?;
        let partner = self.partners.get_mut(index)?;
        for (key, value) in changes {
            match value {
                Some(value) => {
                    partner.insert(key, value);
                }
                None => {
                    partner.remove(&key);
                }
            }
        }
        Some(partner.clone())
    }

    /// A fresh partnerId like Europace's: three uppercase letters and two digits.
    fn new_partner_id(&self) -> String {
        let mut rng = rand::rng();
        loop {
            let id: String = (0..5)
                .map(|i| {
                    if i < 3 {
                        char::from(b'A' + rng.random_range(0..26u8))
                    } else {
                        char::from(b'0' + rng.random_range(0..10u8))
                    }
                })
                .collect();
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    // ---- KEX imports -----------------------------------------------------------------------

    /// Records an import and returns its new Vorgangsnummer.
    pub(crate) fn record_vorgang(&mut self, environment: Environment, body: Value) -> String {
        let vorgangsnummer = self.new_vorgangsnummer();
        self.vorgangsnummern.insert(vorgangsnummer.clone());
        self.vorgaenge.push(RecordedVorgang {
            environment,
            vorgangsnummer: vorgangsnummer.clone(),
            body,
        });
        vorgangsnummer
    }

    pub(crate) fn vorgaenge(&self) -> &[RecordedVorgang] {
        &self.vorgaenge
    }

    /// A fresh Vorgangsnummer like KreditSmart's: two uppercase letters and four digits.
    fn new_vorgangsnummer(&self) -> String {
        let mut rng = rand::rng();
        loop {
            let nummer: String = (0..6)
                .map(|i| {
                    if i < 2 {
                        char::from(b'A' + rng.random_range(0..26u8))
                    } else {
                        char::from(b'0' + rng.random_range(0..10u8))
                    }
                })
                .collect();
            if !self.vorgangsnummern.contains(&nummer) {
                return nummer;
            }
        }
    }
}

/// The seed partners: Kundenbetreuer `KBT01`, Tippgeber parents `TGP01` (production) and `TGT01`
/// (test). They are roots: no parent.
fn seeds() -> Vec<Map<String, Value>> {
    let to_map = |v: Value| match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    vec![
        to_map(json!({
            "partnerId": "KBT01",
            "typ": "PERSON",
            "gesperrt": false,
            "kreditsachbearbeiter": true,
            "anrede": "FRAU",
            "vorname": "Kim",
            "nachname": "Betreuer",
            "email": "kundenbetreuer@sandbox.invalid",
            "telefonnummer": "030 0000000",
            "firmenname": "Dr. Klein Ratenkredit (Sandbox)"
        })),
        to_map(json!({
            "partnerId": "TGP01",
            "typ": "ORGANISATION",
            "gesperrt": false,
            "name": "Tippgeber Produktion (Sandbox)",
            "firmenname": "Dr. Klein Ratenkredit (Sandbox)"
        })),
        to_map(json!({
            "partnerId": "TGT01",
            "typ": "ORGANISATION",
            "gesperrt": false,
            "name": "Tippgeber Test (Sandbox)",
            "firmenname": "Dr. Klein Ratenkredit (Sandbox)"
        })),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultTarget;

    #[test]
    fn ids_have_europace_shape() {
        let state = State::new();
        for _ in 0..100 {
            let id = state.new_partner_id();
            assert_eq!(id.len(), 5);
            assert!(id[..3].chars().all(|c| c.is_ascii_uppercase()));
            assert!(id[3..].chars().all(|c| c.is_ascii_digit()));
            let nr = state.new_vorgangsnummer();
            assert_eq!(nr.len(), 6);
            assert!(nr[..2].chars().all(|c| c.is_ascii_uppercase()));
            assert!(nr[2..].chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn partner_fault_serves_lookup_and_create_in_order() {
        let mut state = State::new();
        state.push_fault(QueuedFault::for_test(FaultTarget::Partner, 2));
        state.push_fault(QueuedFault::for_test(FaultTarget::Kex, 1));
        assert!(state.begin(Call::Auth).is_none());
        assert!(state.begin(Call::PartnerCreate).is_some());
        assert!(state.begin(Call::PartnerLookup).is_some());
        assert!(state.begin(Call::PartnerLookup).is_none());
        assert!(state.begin(Call::Kex).is_some());
        assert!(state.faults().is_empty());
    }

    #[test]
    fn update_changes_only_the_attributes_given() {
        let mut state = State::new();
        let mut attributes = Map::new();
        attributes.insert("vorname".into(), json!("Erika"));
        attributes.insert("telefonnummer".into(), json!("030 1"));
        attributes.insert("email".into(), json!("e@example.org"));
        let CreateOutcome::Created(created) = state.create_partner("TGP01", None, attributes)
        else {
            panic!("not created")
        };
        let id = created["partnerId"].as_str().unwrap().to_owned();
        let updated = state
            .update_partner(
                &id,
                vec![
                    ("telefonnummer".into(), Some(json!("030 2"))),
                    ("email".into(), None),
                ],
            )
            .unwrap();
        assert_eq!(updated["telefonnummer"], "030 2");
        assert_eq!(updated["vorname"], "Erika");
        assert!(updated.get("email").is_none());
        assert_eq!(updated["parent"], created["parent"]);
        assert_eq!(state.partner(&id), Some(&updated));
        assert_eq!(state.update_partner("NOPE1", Vec::new()), None);
    }

    #[test]
    fn reset_keeps_seeds_only() {
        let mut state = State::new();
        let outcome = state.create_partner("TGP01", None, Map::new());
        assert!(matches!(outcome, CreateOutcome::Created(_)));
        state.record_vorgang(Environment::Test, json!({}));
        let token = state.issue_token(Duration::from_secs(60), None);
        state.reset();
        assert_eq!(state.partners().len(), SEED_COUNT);
        assert!(state.vorgaenge().is_empty());
        assert_eq!(
            state.check_token(&token, None),
            Err(TokenRejection::Invalid)
        );
    }

    #[test]
    fn scoped_tokens_are_checked() {
        let mut state = State::new();
        let token = state.issue_token(Duration::from_secs(60), Some("partner:plakette:lesen"));
        assert_eq!(
            state.check_token(&token, Some("partner:plakette:lesen")),
            Ok(())
        );
        assert_eq!(
            state.check_token(&token, Some("privatkredit:vorgang:schreiben")),
            Err(TokenRejection::MissingScope)
        );
        let all = state.issue_token(Duration::from_secs(60), None);
        assert_eq!(
            state.check_token(&all, Some("privatkredit:vorgang:schreiben")),
            Ok(())
        );
    }
}

//! Settings: defaults, overridden by an optional TOML file, overridden by `VORGANG_*` variables.

use std::net::SocketAddr;
use std::path::Path;

use base64::Engine as _;
use figment::Figment;
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
#[serde(default, deny_unknown_fields)]
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
#[serde(default, deny_unknown_fields)]
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
    /// Scopes requested for Partnermanagement: reading, creating and updating (the Tippgeber
    /// `PATCH`) partners by default.
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
            partner_scope: europace_client::DEFAULT_PARTNER_SCOPE.into(),
            kundenbetreuer_partner_id: "KBT01".into(),
            tippgeber_parent_id: "TGP01".into(),
            test_tippgeber_parent_id: "TGT01".into(),
        }
    }
}

/// `limits.*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// `POST /vorgang` requests per client and minute, per replica (a token bucket holding a
    /// minute's quota); `0` turns the limit off.
    pub imports_per_minute: u32,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        Self {
            imports_per_minute: 600,
        }
    }
}

/// `delivery.*` settings: re-delivery of `QUEUED` imports (and the backoff of webhook retries).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// The first wait before a queued import is delivered again, in milliseconds.
    pub retry_initial_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub retry_max_ms: u64,
    /// A queued import older than this (seconds) is `FAILED`.
    pub max_age_s: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry_initial_ms: 1000,
            retry_max_ms: 300_000,
            max_age_s: 86_400,
        }
    }
}

impl DeliverySettings {
    /// The core's policy.
    #[must_use]
    pub fn policy(&self) -> vorgang_core::DeliveryPolicy {
        vorgang_core::DeliveryPolicy {
            retry_initial: std::time::Duration::from_millis(self.retry_initial_ms),
            retry_max: std::time::Duration::from_millis(self.retry_max_ms),
            max_age: std::time::Duration::from_secs(self.max_age_s),
        }
    }
}

/// `webhooks.*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Longest a webhook call may take (connect and answer), in milliseconds.
    pub timeout_ms: u64,
    /// Whether `http://` webhook URLs are accepted for hosts other than loopback addresses.
    pub allow_http: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout_ms: 5000,
            allow_http: false,
        }
    }
}

/// All settings of the service (docs/reference/settings.md).
///
/// Every struct denies unknown fields, and [`Settings::load`] checks the file's keys and the
/// `VORGANG_*` variables against [`KNOWN_KEYS`] first: a typo must be an error, never a default
/// (a misspelt `europace.base_url` would otherwise start the embedded sandbox in production).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Rate limits.
    pub limits: LimitsSettings,
    /// Re-delivery of queued imports.
    pub delivery: DeliverySettings,
    /// Webhook calls.
    pub webhooks: WebhookSettings,
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
            limits: LimitsSettings::default(),
            delivery: DeliverySettings::default(),
            webhooks: WebhookSettings::default(),
            europace: EuropaceSettings::default(),
        }
    }
}

/// The prefix of the environment variables that set settings.
pub const ENV_PREFIX: &str = "VORGANG_";

/// The variable naming the settings file (read by the command line, not a setting itself).
pub const CONFIG_VARIABLE: &str = "VORGANG_CONFIG";

/// The sections of the settings (TOML tables; `__` in a variable name).
pub const SECTIONS: &[&str] = &["auth", "limits", "delivery", "webhooks", "europace"];

/// Every setting by its dotted path. `VORGANG_` + the path upper-cased with `.` as `__` is its
/// variable (`europace.base_url` → `VORGANG_EUROPACE__BASE_URL`). A unit test keeps this list
/// equal to the fields of [`Settings`] and its sections.
pub const KNOWN_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "issuer",
    "audience",
    "key_encryption_key",
    "retention_days",
    "token_ttl_s",
    "token_leeway_s",
    "auth.mode",
    "auth.jwks_url",
    "auth.issuer",
    "auth.introspection_url",
    "auth.client_id",
    "auth.client_secret",
    "limits.imports_per_minute",
    "delivery.retry_initial_ms",
    "delivery.retry_max_ms",
    "delivery.max_age_s",
    "webhooks.timeout_ms",
    "webhooks.allow_http",
    "europace.connect_timeout_ms",
    "europace.request_timeout_ms",
    "europace.base_url",
    "europace.auth_url",
    "europace.partner_url",
    "europace.kex_url",
    "europace.client_id",
    "europace.client_secret",
    "europace.impersonation_subject",
    "europace.impersonation_actor",
    "europace.kex_scope",
    "europace.partner_scope",
    "europace.kundenbetreuer_partner_id",
    "europace.tippgeber_parent_id",
    "europace.test_tippgeber_parent_id",
];

/// The environment variable of a setting: `europace.base_url` → `VORGANG_EUROPACE__BASE_URL`.
#[must_use]
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// The settings cannot be used: one line per problem, each naming the setting (and where it came
/// from), never its value.
#[derive(Debug, thiserror::Error)]
#[error("invalid settings:\n{}", .0.join("\n"))]
pub struct SettingsError(pub Vec<String>);

impl SettingsError {
    /// One line per problem.
    #[must_use]
    pub fn problems(&self) -> &[String] {
        &self.0
    }
}

impl Settings {
    /// Loads defaults, then `config_file` (if given, it must exist), then `VORGANG_*` variables
    /// of the process environment, and checks the result ([`Settings::problems`]).
    ///
    /// # Errors
    /// Every problem found, one line each: a file that cannot be read or parsed (file, line and
    /// column), a key or variable that names no setting, a value of the wrong type, an invalid
    /// value.
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        let vars = std::env::vars_os()
            .map(|(name, value)| {
                (
                    name.to_string_lossy().into_owned(),
                    value.to_string_lossy().into_owned(),
                )
            })
            .collect::<Vec<_>>();
        Self::load_from(config_file, &vars)
    }

    /// [`Settings::load`] with the given environment (name, value) pairs instead of the
    /// process's.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn load_from(
        config_file: Option<&Path>,
        vars: &[(String, String)],
    ) -> Result<Self, SettingsError> {
        let mut problems = Vec::new();
        let mut data = figment::value::Dict::new();
        let file_name = config_file.map(|p| p.display().to_string());
        if let (Some(path), Some(name)) = (config_file, &file_name) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SettingsError(vec![format!("{name}: cannot be read: {e}")]))?;
            // Syntax errors end the check: nothing after the error can be trusted.
            let mut table: toml::Table = toml::from_str(&text)
                .map_err(|e| SettingsError(vec![toml_syntax_problem(name, &text, &e)]))?;
            problems.extend(unknown_file_keys(name, &mut table));
            let value = figment::value::Value::serialize(&table).map_err(|_| {
                SettingsError(vec![format!("{name}: could not be read as settings")])
            })?;
            if let Some(dict) = value.into_dict() {
                data = dict;
            }
        }
        // A variable's value is text: it goes in as a string first (`VORGANG_AUDIENCE=123` is the
        // audience "123"), and is read as a number or boolean only for a setting that refuses
        // the string.
        let mut from_env = std::collections::BTreeMap::new();
        for (name, value) in vars {
            match setting_of_variable(name) {
                None => {}
                Some(Ok(key)) => {
                    set_path(&mut data, key, figment::value::Value::from(value.clone()));
                    from_env.insert(key.to_owned(), value.as_str());
                }
                Some(Err(problem)) => problems.push(problem),
            }
        }

        // serde stops at the first value it cannot take: take that value out (its default
        // applies) and go on, so that every bad value is reported at once.
        let mut settings = None;
        for _ in 0..=2 * KNOWN_KEYS.len() {
            let figment = Figment::from(figment::providers::Serialized::globals(&data));
            match figment.extract::<Self>() {
                Ok(extracted) => {
                    settings = Some(extracted);
                    break;
                }
                Err(error) => {
                    let key = error.path.join(".");
                    if let Some(raw) = from_env.remove(&key) {
                        let Ok(parsed) = raw.parse::<figment::value::Value>();
                        if parsed.as_str().is_none_or(|s| s != raw) {
                            set_path(&mut data, &key, parsed);
                            continue;
                        }
                    }
                    problems.push(describe_figment_error(&error, file_name.as_deref(), vars));
                    if error.path.is_empty() || !remove_path(&mut data, &error.path) {
                        break;
                    }
                }
            }
        }
        if let Some(settings) = &settings {
            problems.extend(settings.problems());
        }
        match settings {
            Some(settings) if problems.is_empty() => Ok(settings),
            _ => Err(SettingsError(problems)),
        }
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
        let d = &self.delivery;
        if d.retry_initial_ms == 0 {
            problems.push("delivery.retry_initial_ms: must be positive".to_owned());
        }
        if d.retry_max_ms < d.retry_initial_ms {
            problems.push(
                "delivery.retry_max_ms: must not be below delivery.retry_initial_ms".to_owned(),
            );
        }
        if d.max_age_s == 0 || d.max_age_s > 86_400 {
            // Within the idempotency window: a queued import is found by a retried request
            // for as long as it may still be delivered.
            problems.push("delivery.max_age_s: must be between 1 and 86400".to_owned());
        }
        if self.webhooks.timeout_ms == 0 || self.webhooks.timeout_ms > 60_000 {
            problems.push("webhooks.timeout_ms: must be between 1 and 60000".to_owned());
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
            "limits": {
                "imports_per_minute": self.limits.imports_per_minute,
            },
            "delivery": {
                "retry_initial_ms": self.delivery.retry_initial_ms,
                "retry_max_ms": self.delivery.retry_max_ms,
                "max_age_s": self.delivery.max_age_s,
            },
            "webhooks": {
                "timeout_ms": self.webhooks.timeout_ms,
                "allow_http": self.webhooks.allow_http,
            },
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

/// `{file}:{line}:{column}: {message}` for a TOML syntax error. toml's own rendering quotes the
/// offending line, which may hold a secret: only its position and message are kept.
fn toml_syntax_problem(file: &str, text: &str, error: &toml::de::Error) -> String {
    // toml's messages are generic ("invalid string", "expected `\"`, `'`"): one line.
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{file}:{line}:{column}: {message}")
        }
        None => format!("{file}: {message}"),
    }
}

/// Removes every key of the file's table that names no setting and reports it.
fn unknown_file_keys(file: &str, table: &mut toml::Table) -> Vec<String> {
    let mut problems = Vec::new();
    table.retain(|key, value| {
        if SECTIONS.contains(&key) {
            if let toml::Value::Table(section) = value {
                section.retain(|inner, _| {
                    let path = format!("{key}.{inner}");
                    let known = KNOWN_KEYS.contains(&path.as_str());
                    if !known {
                        problems.push(format!(
                            "{file}: unknown setting `{path}`{}",
                            suggestion(&path, KNOWN_KEYS.iter().copied(), |k| format!("`{k}`"))
                        ));
                    }
                    known
                });
            }
            return true;
        }
        if KNOWN_KEYS.contains(&key) {
            return true;
        }
        problems.push(if value.is_table() {
            format!(
                "{file}: unknown section [{key}]{}",
                suggestion(key, SECTIONS.iter().copied(), |k| format!("[{k}]"))
            )
        } else {
            format!(
                "{file}: unknown setting `{key}`{}",
                suggestion(key, KNOWN_KEYS.iter().copied(), |k| format!("`{k}`"))
            )
        });
        false
    });
    problems
}

/// The setting a variable sets: `None` when it is no `VORGANG_*` variable (or `VORGANG_CONFIG`),
/// else the dotted key, or the problem naming an unknown variable. Like figment's `Env`, the
/// prefix and the name are case-insensitive and `__` separates a section from its key.
fn setting_of_variable(name: &str) -> Option<Result<&'static str, String>> {
    let prefix = name.get(..ENV_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(ENV_PREFIX) || name.eq_ignore_ascii_case(CONFIG_VARIABLE) {
        return None;
    }
    let path = name[ENV_PREFIX.len()..]
        .to_ascii_lowercase()
        .replace("__", ".");
    if let Some(known) = KNOWN_KEYS.iter().find(|k| **k == path) {
        return Some(Ok(known));
    }
    // `VORGANG_EUROPACE_BASE_URL`: the section joined with one underscore instead of two.
    let flat = path.replace('.', "_");
    let hint = match KNOWN_KEYS.iter().find(|k| k.replace('.', "_") == flat) {
        Some(known) => format!(" (did you mean {}?)", env_name(known)),
        None => suggestion(&path, KNOWN_KEYS.iter().copied(), env_name),
    };
    Some(Err(format!(
        "{name}: unknown variable, it names no setting{hint}"
    )))
}

/// ` (did you mean X?)` for the closest of `options` within two edits, else nothing.
fn suggestion<'a>(
    wrong: &str,
    options: impl Iterator<Item = &'a str>,
    show: impl Fn(&str) -> String,
) -> String {
    options
        .map(|option| (edit_distance(wrong, option), option))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, option)| format!(" (did you mean {}?)", show(option)))
        .unwrap_or_default()
}

/// Levenshtein distance (keys are short ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Sets `key` (dotted, at most one section) in `data` to `value`.
fn set_path(data: &mut figment::value::Dict, key: &str, value: figment::value::Value) {
    let (section, leaf) = match key.split_once('.') {
        Some((section, leaf)) => (Some(section), leaf),
        None => (None, key),
    };
    let target = match section {
        None => data,
        Some(section) => {
            let entry = data
                .entry(section.to_owned())
                .or_insert_with(|| figment::value::Dict::new().into());
            if entry.as_dict().is_none() {
                // A file that set the section to a non-table: the variable wins, as in figment.
                *entry = figment::value::Dict::new().into();
            }
            match entry {
                figment::value::Value::Dict(_, dict) => dict,
                _ => return,
            }
        }
    };
    target.insert(leaf.to_owned(), value);
}

/// Removes `path` from `data`; whether there was something to remove.
fn remove_path(data: &mut figment::value::Dict, path: &[String]) -> bool {
    match path {
        [] => false,
        [leaf] => data.remove(leaf).is_some(),
        [section, rest @ ..] => match data.get_mut(section) {
            Some(figment::value::Value::Dict(_, dict)) => remove_path(dict, rest),
            Some(_) => data.remove(section).is_some(),
            None => false,
        },
    }
}

/// One line for a value figment could not take: the setting, where it came from, what was
/// expected, never the value (it may be a secret of the wrong shape).
fn describe_figment_error(
    error: &figment::Error,
    file: Option<&str>,
    vars: &[(String, String)],
) -> String {
    let key = if error.path.is_empty() {
        "settings".to_owned()
    } else {
        error.path.join(".")
    };
    let variable = env_name(&key);
    let source = if vars.iter().any(|(n, _)| n.eq_ignore_ascii_case(&variable)) {
        format!(" (from {variable})")
    } else if let Some(file) = file {
        format!(" (from {file})")
    } else {
        String::new()
    };
    let kind = match &error.kind {
        figment::error::Kind::InvalidType(_, expected) => {
            format!("wrong type, expected {expected}")
        }
        figment::error::Kind::InvalidValue(_, expected) => {
            format!("invalid value, expected {expected}")
        }
        figment::error::Kind::UnknownVariant(_, expected) => {
            format!("unknown value, expected one of {}", expected.join(", "))
        }
        figment::error::Kind::UnknownField(field, _) => format!("unknown setting `{field}`"),
        figment::error::Kind::MissingField(field) => format!("missing setting `{field}`"),
        figment::error::Kind::InvalidLength(_, expected) => {
            format!("invalid length, expected {expected}")
        }
        _ => "invalid value".to_owned(),
    };
    format!("{key}{source}: {kind}")
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
        assert_eq!(
            settings.europace.partner_scope,
            "partner:plakette:lesen partner:plakette:anlegen partner:plakette:schreiben"
        );
        assert_eq!(settings.limits.imports_per_minute, 600);
    }

    #[test]
    fn the_rate_limit_is_set_by_file_or_variable_and_zero_is_allowed() {
        let toml = file("[limits]\nimports_per_minute = 0\n");
        let settings = Settings::load_from(Some(toml.path()), &[]).unwrap();
        assert_eq!(settings.limits.imports_per_minute, 0);
        let settings =
            Settings::load_from(None, &vars(&[("VORGANG_LIMITS__IMPORTS_PER_MINUTE", "5")]))
                .unwrap();
        assert_eq!(settings.limits.imports_per_minute, 5);
        let found = problems(None, &[("VORGANG_LIMITS__IMPORTS_PER_MINUTE", "-1")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("limits.imports_per_minute"),
            "{found:?}"
        );
    }

    #[test]
    fn delivery_and_webhook_settings_have_defaults_and_are_checked() {
        let settings = Settings::load_from(None, &[]).unwrap();
        assert_eq!(settings.delivery.retry_initial_ms, 1000);
        assert_eq!(settings.delivery.retry_max_ms, 300_000);
        assert_eq!(settings.delivery.max_age_s, 86_400);
        assert_eq!(settings.webhooks.timeout_ms, 5000);
        assert!(!settings.webhooks.allow_http);
        let toml = file(
            "[delivery]\nretry_initial_ms = 50\nretry_max_ms = 200\n[webhooks]\nallow_http = true\n",
        );
        let settings = Settings::load_from(Some(toml.path()), &[]).unwrap();
        assert_eq!(
            settings.delivery.policy().retry_initial,
            std::time::Duration::from_millis(50)
        );
        assert!(settings.webhooks.allow_http);
        let settings = Settings::load_from(
            None,
            &vars(&[
                ("VORGANG_DELIVERY__MAX_AGE_S", "60"),
                ("VORGANG_WEBHOOKS__TIMEOUT_MS", "100"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.delivery.max_age_s, 60);
        assert_eq!(settings.webhooks.timeout_ms, 100);
        let found = problems(
            None,
            &[
                ("VORGANG_DELIVERY__RETRY_INITIAL_MS", "500"),
                ("VORGANG_DELIVERY__RETRY_MAX_MS", "100"),
                ("VORGANG_DELIVERY__MAX_AGE_S", "0"),
                ("VORGANG_WEBHOOKS__TIMEOUT_MS", "0"),
            ],
        );
        assert!(
            found.iter().any(|p| p.starts_with("delivery.retry_max_ms")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("delivery.max_age_s")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.starts_with("webhooks.timeout_ms")),
            "{found:?}"
        );
        let found = problems(None, &[("VORGANG_DELIVERY__RETRY_INITAL_MS", "5")]);
        assert!(
            found
                .iter()
                .any(|p| p.contains("VORGANG_DELIVERY__RETRY_INITAL_MS")),
            "a typo is an error: {found:?}"
        );
        let found = problems(None, &[("VORGANG_WEBHOOKS__ALLOW_HTTP", "maybe")]);
        assert!(
            found.iter().any(|p| p.starts_with("webhooks.allow_http")),
            "{found:?}"
        );
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

    /// The fields serde accepts in the section `section` (root: `None`), as named by
    /// `deny_unknown_fields`' own error for an unknown one.
    fn fields_of(section: Option<&str>) -> Vec<String> {
        let probe = serde_json::json!({"zz_probe": 1});
        let data = match section {
            None => probe,
            Some(section) => serde_json::json!({ section: probe }),
        };
        let error = Figment::from(figment::providers::Serialized::globals(data))
            .extract::<Settings>()
            .unwrap_err();
        let figment::error::Kind::UnknownField(_, expected) = error.kind else {
            panic!("{error}");
        };
        expected
            .iter()
            .map(|f| section.map_or_else(|| (*f).to_owned(), |s| format!("{s}.{f}")))
            .collect()
    }

    fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        for (key, value) in value.as_object().unwrap() {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if value.is_object() {
                leaves(&path, value, out);
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn the_known_keys_are_exactly_the_fields_and_the_masked_json() {
        let mut fields: Vec<String> = fields_of(None)
            .into_iter()
            .filter(|f| !SECTIONS.contains(&f.as_str()))
            .collect();
        for section in SECTIONS {
            fields.extend(fields_of(Some(section)));
        }
        let mut known: Vec<String> = KNOWN_KEYS.iter().map(|k| (*k).to_owned()).collect();
        fields.sort();
        known.sort();
        assert_eq!(fields, known);
        let mut masked = Vec::new();
        leaves("", &Settings::default().masked_json(), &mut masked);
        masked.sort();
        assert_eq!(masked, known);
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn problems(config: Option<&Path>, pairs: &[(&str, &str)]) -> Vec<String> {
        Settings::load_from(config, &vars(pairs))
            .unwrap_err()
            .problems()
            .to_vec()
    }

    #[test]
    fn unknown_keys_sections_and_variables_are_named() {
        let toml = file(
            "listen = \"127.0.0.1:1\"\nlisen = 1\n[europace]\nbase_ulr = \"https://x.example\"\n[europac]\nkex_scope = \"a\"\n",
        );
        let name = toml.path().display().to_string();
        let found = problems(
            Some(toml.path()),
            &[
                ("VORGANG_EUROPACE_BASE_URL", "https://x.example"),
                ("vorgang_tokn_ttl_s", "5"),
                ("VORGANG_CONFIG", "ignored.toml"),
                ("PATH", "/bin"),
            ],
        );
        assert_eq!(
            found,
            [
                format!("{name}: unknown section [europac] (did you mean [europace]?)"),
                format!("{name}: unknown setting `europace.base_ulr` (did you mean `europace.base_url`?)"),
                format!("{name}: unknown setting `lisen` (did you mean `listen`?)"),
                "VORGANG_EUROPACE_BASE_URL: unknown variable, it names no setting (did you mean VORGANG_EUROPACE__BASE_URL?)".to_owned(),
                "vorgang_tokn_ttl_s: unknown variable, it names no setting (did you mean VORGANG_TOKEN_TTL_S?)".to_owned(),
            ]
        );
    }

    #[test]
    fn a_syntax_error_names_file_line_and_column_but_not_the_line() {
        let toml = file("listen = \"127.0.0.1:1\"\n[europace]\nclient_secret = \"geheim\n");
        let found = problems(Some(toml.path()), &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        let prefix = format!("{}:3:", toml.path().display());
        assert!(found[0].starts_with(&prefix), "{found:?}");
        assert!(!found[0].contains("geheim"), "{found:?}");
    }

    #[test]
    fn every_bad_value_is_one_line_without_the_value() {
        let toml = file("retention_days = \"lang\"\n[auth]\nmode = \"geheimmodus\"\n");
        let name = toml.path().display().to_string();
        let found = problems(
            Some(toml.path()),
            &[
                ("VORGANG_TOKEN_TTL_S", "bald"),
                ("VORGANG_KEY_ENCRYPTION_KEY", "kurz"),
                ("VORGANG_LISTEN", "nirgendwo"),
            ],
        );
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(
            found
                .iter()
                .any(|l| l.starts_with(&format!("retention_days (from {name}): wrong type"))),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|l| l.starts_with(&format!("auth.mode (from {name}): unknown value"))),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|l| l.starts_with("token_ttl_s (from VORGANG_TOKEN_TTL_S): wrong type")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|l| l.starts_with("key_encryption_key: must be base64")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|l| l.starts_with("listen: must be an address")),
            "{found:?}"
        );
        let all = found.join("\n");
        for value in ["lang", "geheimmodus", "bald", "kurz", "nirgendwo"] {
            assert!(!all.contains(value), "{value} in {all}");
        }
    }

    #[test]
    fn variables_for_every_known_key_are_accepted() {
        // Strings and numbers as a container's environment carries them.
        let settings = Settings::load_from(
            None,
            &vars(&[
                ("VORGANG_LISTEN", "0.0.0.0:8080"),
                ("VORGANG_RETENTION_DAYS", "7"),
                ("VORGANG_AUDIENCE", "123"),
                ("VORGANG_EUROPACE__CLIENT_ID", "4711"),
                ("VORGANG_EUROPACE__CLIENT_SECRET", "s"),
                ("VORGANG_EUROPACE__BASE_URL", "https://europace.example"),
                (
                    "VORGANG_KEY_ENCRYPTION_KEY",
                    &base64::engine::general_purpose::STANDARD.encode([1u8; 32]),
                ),
            ]),
        )
        .unwrap();
        assert_eq!(settings.listen, "0.0.0.0:8080");
        assert_eq!(settings.retention_days, 7);
        assert_eq!(settings.audience, "123");
        assert_eq!(settings.europace.client_id.as_deref(), Some("4711"));
    }
}

//! How the benchmark configures, prepares and uses the service.
//!
//! The service runs from its library API ([`Application::build`](vorgang_server::startup::Application::build)
//! with [`Settings`]), exactly as its binary's `serve` does, on these settings: the defaults, plus
//! a free loopback port, the run's database, the run's sandbox as `europace.base_url` with
//! credentials, a generated `key_encryption_key` (required with a `base_url`), and the rate limit
//! off (`limits.imports_per_minute = 0`: the load is one client). Everything
//! else (durability, timeouts, logging at `info` to stderr) is the production default. A new
//! setting with a safe default needs no change here; a renamed one fails to compile here.
//!
//! Before the service starts, the benchmark prepares the database itself: the migrations (by
//! connecting a [`Store`]), one partner client (as `clients add` does), the signing key, and
//! the `--rows` pre-fill. The key-encryption key travels to the child in an environment variable,
//! not on its command line.

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use vorgang_server::auth::AuthService;
use vorgang_server::settings::Settings;
use vorgang_store::Store;

/// The environment variable carrying the key-encryption key to the `server` child.
pub const KEK_VAR: &str = "VORGANG_BENCH_KEY_ENCRYPTION_KEY";

/// The settings the service runs with in the benchmark.
pub fn settings(database_url: &str, europace_url: &url::Url, kek: SecretString) -> Settings {
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        database_url: SecretString::from(database_url.to_owned()),
        key_encryption_key: Some(kek),
        ..Settings::default()
    };
    settings.europace.base_url = Some(europace_url.clone());
    settings.europace.client_id = Some("dkr-bench".into());
    settings.europace.client_secret = Some(SecretString::from("dkr-bench-secret"));
    // The load is one client sending as fast as it can: the production default of 600 requests
    // per minute would answer most of it 429 and measure the limiter, not the import.
    settings.limits.imports_per_minute = 0;
    settings
}

/// A fresh key-encryption key: base64 of 32 random bytes (two v4 UUIDs' worth of the OS's
/// randomness), as `openssl rand -base64 32` makes.
pub fn generate_kek() -> SecretString {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    SecretString::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The partner client the load authenticates as.
pub struct BenchClient {
    /// Its client id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: SecretString,
}

/// Migrates the database of `settings`, creates the signing key and registers one client.
///
/// # Errors
/// The database cannot be reached, migrated or written.
pub async fn prepare(settings: &Settings) -> anyhow::Result<BenchClient> {
    let store = Store::connect(settings.database_url.expose_secret())
        .await
        .context("connecting and migrating the database")?;
    let auth = AuthService::build(settings, &store, String::new()).await?;
    let client = auth
        .register_client(
            "Bench Partner".into(),
            "bench@partner.example".into(),
            "030 0000000".into(),
            "Benchmark GmbH".into(),
            Vec::new(),
        )
        .await?;
    store.close().await;
    Ok(BenchClient {
        client_id: client.client_id,
        client_secret: client.client_secret,
    })
}

/// An access token for `client` from the service's token endpoint (lifetime 15 min: one per
/// target is enough).
///
/// # Errors
/// The token endpoint did not answer 200 with a token.
pub async fn token(base_url: &str, client: &BenchClient) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
    }
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?
        .post(format!("{base_url}/oauth2/token"))
        .basic_auth(
            &client.client_id,
            Some(client.client_secret.expose_secret()),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .context("requesting a token from the service")?;
    anyhow::ensure!(
        response.status() == reqwest::StatusCode::OK,
        "the token endpoint answered {}",
        response.status()
    );
    Ok(response.json::<Token>().await?.access_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_runs_without_rate_limit_and_with_valid_settings() {
        let europace = url::Url::parse("http://127.0.0.1:9").unwrap();
        let settings = settings("sqlite://bench.db?mode=rwc", &europace, generate_kek());
        assert_eq!(settings.limits.imports_per_minute, 0);
        assert!(settings.problems().is_empty(), "{:?}", settings.problems());
    }
}

//! Client ids, client secrets and their Argon2id hashes.
//!
//! Secrets are 32 random bytes (256 bits), shown to the partner once and stored only as an
//! Argon2id PHC string. Verification goes through argon2's own comparison; an unknown client is
//! checked against a dummy hash with the same parameters, so that it costs the same time as a
//! wrong secret and the answer time does not tell which client ids exist.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;

use crate::error::{AuthError, Result};

/// Prefix of every client id we issue.
pub const CLIENT_ID_PREFIX: &str = "drk_";

/// Argon2id memory cost in KiB of [`SecretHasher::owasp`] (OWASP: 19 MiB).
pub const OWASP_M_COST_KIB: u32 = 19 * 1024;
/// Argon2id iterations of [`SecretHasher::owasp`] (OWASP: 2).
pub const OWASP_T_COST: u32 = 2;
/// Argon2id parallelism of [`SecretHasher::owasp`] (OWASP: 1).
pub const OWASP_P_COST: u32 = 1;

/// A precomputed Argon2id hash (OWASP parameters) of a random value nobody knows, verified
/// instead of a real hash when the client is unknown.
const OWASP_DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$IjrfiAJoDPpNb2Z4GIicPA$gM8GW8SSAt4M3iJn973hFYLuhx0HIUA1WrnjCXVdRK4";

/// A new client id: `drk_` followed by 16 random bytes in lowercase hex (128 bits).
#[must_use]
pub fn generate_client_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(CLIENT_ID_PREFIX.len() + 32);
    id.push_str(CLIENT_ID_PREFIX);
    for byte in bytes {
        id.push(hex_digit(byte >> 4));
        id.push(hex_digit(byte & 0x0f));
    }
    id
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

/// A new client secret: 32 random bytes, base64url without padding (43 characters, no character
/// that needs escaping in a form or in HTTP Basic).
#[must_use]
pub fn generate_client_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = SecretString::from(URL_SAFE_NO_PAD.encode(bytes));
    bytes.fill(0);
    secret
}

/// Hashes a secret with Argon2id and the OWASP parameters (m = 19 MiB, t = 2, p = 1) into a PHC
/// string (`$argon2id$v=19$m=19456,t=2,p=1$…`). Blocks for tens of milliseconds; async callers use
/// [`SecretHasher::hash_async`].
///
/// # Errors
/// [`AuthError::Hashing`] if argon2 fails (it does not with these parameters).
pub fn hash_secret(secret: &str) -> Result<String> {
    SecretHasher::owasp().hash(secret)
}

/// Whether `secret` matches the PHC string `phc` (any Argon2 variant and parameters the string
/// names). The comparison is argon2's (constant time). `false` also for an unparsable `phc`.
#[must_use]
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Hashes and verifies client secrets with fixed Argon2id parameters, off the async executor
/// (tokio's blocking pool), limiting how many hashes run at once in the whole process to
/// [`max_concurrent_hashes`] (each one takes a core and `m_cost` KiB of memory). Callers beyond
/// the limit wait for a place without holding a thread.
///
/// Cloning is cheap; all hashers share the one process-wide limit.
#[derive(Clone)]
pub struct SecretHasher {
    params: Params,
    dummy_hash: Arc<str>,
    limiter: Arc<Semaphore>,
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHasher")
            .field("m_cost_kib", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish_non_exhaustive()
    }
}

impl Default for SecretHasher {
    fn default() -> Self {
        Self::owasp()
    }
}

impl SecretHasher {
    /// The production hasher: Argon2id, m = 19 MiB, t = 2, p = 1 (OWASP), with a precomputed
    /// dummy hash. At most [`max_concurrent_hashes`] hashes run at once in the process.
    #[must_use]
    pub fn owasp() -> Self {
        Self {
            params: Params::DEFAULT,
            dummy_hash: Arc::from(OWASP_DUMMY_HASH),
            limiter: hash_limiter(),
        }
    }

    /// A hasher with other Argon2id costs: memory in KiB, iterations, lanes. Computes its dummy
    /// hash once, here.
    ///
    /// Meant for tests, where debug builds make the OWASP parameters slow (e.g.
    /// `with_cost(64, 1, 1)`); production uses [`SecretHasher::owasp`]. Hashes made with any
    /// parameters verify with any hasher, since the PHC string carries its parameters.
    ///
    /// # Errors
    /// [`AuthError::Hashing`] if argon2 rejects the parameters (e.g. `m_cost_kib < 8 * p_cost`).
    pub fn with_cost(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self> {
        let params =
            Params::new(m_cost_kib, t_cost, p_cost, None).map_err(|_| AuthError::Hashing)?;
        let mut hasher = Self {
            params,
            dummy_hash: Arc::from(""),
            limiter: hash_limiter(),
        };
        let unknown = generate_client_secret();
        hasher.dummy_hash = Arc::from(hasher.hash(unknown.expose_secret())?);
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `secret` into a PHC string with a fresh random salt. Blocking.
    ///
    /// # Errors
    /// [`AuthError::Hashing`] if argon2 fails.
    pub fn hash(&self, secret: &str) -> Result<String> {
        self.argon2()
            .hash_password(secret.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|_| AuthError::Hashing)
    }

    /// Whether `secret` matches `phc`, see [`verify_secret`]. Blocking.
    #[must_use]
    pub fn verify(&self, secret: &str, phc: &str) -> bool {
        verify_secret(secret, phc)
    }

    /// Does the work of a verification against a hash nobody knows the secret of, and returns
    /// `false`: used for unknown clients so that they cost the same time as a wrong secret.
    #[must_use]
    pub fn verify_dummy(&self, secret: &str) -> bool {
        // The result is ignored on purpose: always a failure.
        let _ = verify_secret(secret, &self.dummy_hash);
        false
    }

    /// [`hash`](Self::hash) on tokio's blocking pool (inline without a tokio runtime), at most
    /// as many at once as the concurrency limit allows.
    ///
    /// # Errors
    /// [`AuthError::Hashing`] if argon2 fails or the hashing task panicked.
    pub async fn hash_async(&self, secret: &str) -> Result<String> {
        let secret = SecretString::from(secret);
        let hasher = self.clone();
        self.run_blocking(move || hasher.hash(secret.expose_secret()))
            .await
            .unwrap_or(Err(AuthError::Hashing))
    }

    /// [`verify`](Self::verify) against `phc`, or [`verify_dummy`](Self::verify_dummy) when
    /// `phc` is `None`, on tokio's blocking pool. Either case does the same work.
    pub async fn verify_async(&self, secret: &str, phc: Option<&str>) -> bool {
        let secret = SecretString::from(secret);
        let hasher = self.clone();
        let phc = phc.map(str::to_owned);
        self.run_blocking(move || match phc {
            Some(phc) => hasher.verify(secret.expose_secret(), &phc),
            None => hasher.verify_dummy(secret.expose_secret()),
        })
        .await
        .unwrap_or(false)
    }

    /// Runs `work` with a permit of the limiter, on the blocking pool when there is a tokio
    /// runtime. `None` if the task panicked or the limiter was closed.
    async fn run_blocking<T, F>(&self, work: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.limiter.clone().acquire_owned().await.ok()?;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let task = handle.spawn_blocking(move || {
                    let result = work();
                    drop(permit);
                    result
                });
                task.await.ok()
            }
            Err(_) => {
                let result = work();
                drop(permit);
                Some(result)
            }
        }
    }
}

/// How many Argon2 hashes run at once in this process: one per available core. Each takes a
/// core for its whole run (and `m_cost` of memory); more at once would only make every one of
/// them slower and let a flood of token requests starve the rest of the service.
#[must_use]
pub fn max_concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// The one limiter of all hashers of the process, sized by [`max_concurrent_hashes`]: however
/// many registries or hashers exist (the server, CLI helpers, tests), the bound holds for the
/// process as a whole.
fn hash_limiter() -> Arc<Semaphore> {
    static LIMITER: OnceLock<Arc<Semaphore>> = OnceLock::new();
    LIMITER
        .get_or_init(|| Arc::new(Semaphore::new(max_concurrent_hashes())))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_prefixed_hex_and_unique() {
        let a = generate_client_id();
        let b = generate_client_id();
        assert_ne!(a, b);
        assert!(a.starts_with(CLIENT_ID_PREFIX));
        assert_eq!(a.len(), CLIENT_ID_PREFIX.len() + 32);
        assert!(
            a[CLIENT_ID_PREFIX.len()..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn client_secrets_are_43_url_safe_characters_and_unique() {
        let a = generate_client_secret();
        let b = generate_client_secret();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 43);
        assert!(
            a.expose_secret()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!(!format!("{a:?}").contains(a.expose_secret()));
    }

    #[test]
    fn owasp_hash_round_trip_uses_argon2id_with_owasp_parameters() {
        let phc = hash_secret("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_secret("correct horse", &phc));
        assert!(!verify_secret("correct horsE", &phc));
    }

    #[test]
    fn dummy_hash_has_the_production_parameters() {
        let dummy = PasswordHash::new(OWASP_DUMMY_HASH).unwrap();
        assert_eq!(dummy.algorithm.as_str(), "argon2id");
        let params = Params::try_from(&dummy).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (OWASP_M_COST_KIB, OWASP_T_COST, OWASP_P_COST)
        );
        assert_eq!(Params::DEFAULT.m_cost(), OWASP_M_COST_KIB);
        assert_eq!(Params::DEFAULT.t_cost(), OWASP_T_COST);
        assert_eq!(Params::DEFAULT.p_cost(), OWASP_P_COST);
        assert!(!SecretHasher::owasp().verify_dummy(""));
    }

    #[test]
    fn unparsable_hash_never_verifies() {
        assert!(!verify_secret("x", ""));
        assert!(!verify_secret("x", "$argon2id$garbage"));
        assert!(!verify_secret("x", "plaintext-x"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashes_run_at_most_one_per_core_in_the_whole_process() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        // Two hashers: the limit is the process's, not the hasher's.
        let hashers = [
            SecretHasher::owasp(),
            SecretHasher::with_cost(64, 1, 1).unwrap(),
        ];
        let jobs: Vec<_> = (0..4 * max_concurrent_hashes())
            .map(|i| {
                let hasher = hashers[i % 2].clone();
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(async move {
                    hasher
                        .run_blocking(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            // Long enough for the others to pile up behind the limit.
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for job in jobs {
            assert!(job.await.unwrap().is_some());
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=max_concurrent_hashes()).contains(&most),
            "{most} at once, limit {}",
            max_concurrent_hashes()
        );
    }

    #[tokio::test]
    async fn cheap_hasher_round_trip_async() {
        let hasher = SecretHasher::with_cost(64, 1, 1).unwrap();
        let phc = hasher.hash_async("s3cret").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(hasher.verify_async("s3cret", Some(&phc)).await);
        assert!(!hasher.verify_async("s3cre7", Some(&phc)).await);
        assert!(!hasher.verify_async("s3cret", None).await);
        assert!(SecretHasher::with_cost(1, 1, 1).is_err());
    }
}

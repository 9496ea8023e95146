//! An in-memory fake Europace speaking the real wire format over HTTP, with fault injection.
//!
//! It is the embedded default of the Vorgang Import Service (when no `europace.base_url` is
//! configured), the backend of the demo, and the peer of integration tests. It serves:
//!
//! | endpoint | Europace API |
//! | --- | --- |
//! | `POST /auth/token` | Authorization API: any HTTP Basic credentials, `grant_type=client_credentials` |
//! | `GET /v2/partners?externePartnerId=X` | Partnermanagement: Europace-wide search, `{total, partners:[{partnerId, href}]}` |
//! | `GET /v2/partner/{id}` | Partnermanagement: one partner, with `parent` |
//! | `PATCH /v2/partner/{id}` | Partnermanagement: 200 with the partner; only the attributes sent change (an empty string deletes one; unknown and unchangeable ones such as `typ`, `parent` are ignored); 404 for an unknown id |
//! | `POST /v2/partner/{parentId}/untergeordnete` | Partnermanagement: 201 + `Location`, or 205 when the `externePartnerId` exists below that parent |
//! | `POST /vorgang[?environment=PRODUCTION]` | KEX Vorgang Import: 201 `{vorgangsnummer, messages, antragsteller1:{id}}` |
//!
//! Every endpoint but the token endpoint requires `Authorization: Bearer` with a token the sandbox
//! issued and that has not expired. A token requested with an explicit `scope` only carries those
//! scopes (`partner:plakette:lesen` for lookups, `partner:plakette:anlegen` for creation,
//! `partner:plakette:schreiben` for updates, `privatkredit:vorgang:schreiben` for the KEX import;
//! see [`SandboxConfig::check_scopes`]); a
//! token requested without `scope` carries all of them.
//!
//! It starts with the partners `KBT01` (Kundenbetreuer, a `PERSON`), `TGP01` and `TGT01` (the
//! Tippgeber parents for production and test, `ORGANISATION`s); the three have no parent.
//! The KEX import rejects (400) a `kundenbetreuer.partnerId` or `tippgeber.partnerId` the sandbox
//! does not know, as Europace does.
//!
//! For tests and demos it adds:
//!
//! | endpoint | does |
//! | --- | --- |
//! | `GET /_sandbox/vorgaenge` | the KEX imports received, in arrival order: `[{"environment","vorgangsnummer","body"}]` |
//! | `GET /_sandbox/partners` | every partner held, as Partner JSON |
//! | `POST /_sandbox/faults` | queues a fault (below); answers 201 with the queued fault |
//! | `GET /_sandbox/faults` | the faults still queued |
//! | `DELETE /_sandbox/faults` | clears all faults |
//! | `POST /_sandbox/reset` | forgets imports, created partners, tokens, faults and counters |
//! | `GET /_sandbox/stats` | requests received per target: `{"auth","partner_lookup","partner_create","partner_update","kex"}` |
//! | `GET /_sandbox/calls` | the correlation headers of the last 1000 requests, oldest first: `[{"call","traceId","traceparent"}]` (`call` as in stats; a header not sent is `null`) |
//!
//! A fault is `{"target": "auth"|"partner"|"partner_lookup"|"partner_create"|"partner_update"|"kex",
//! "status": 503, "delay_ms": 0, "times": 1, "after_receive": false, "retry_after_s": 5,
//! "body": null}`; only `target` is required. The next `times` calls to `target` (`partner` =
//! lookup, creation and update, `partner_lookup` = both `GET` endpoints) wait `delay_ms` and then answer `status` with a small
//! JSON error body, or with `body` as the JSON answer when given (e.g. Europace's
//! `{"messages": [...]}` of a refused KEX import; it needs a `status` other than 0), and
//! `Retry-After` when `retry_after_s` is given. `status: 0` drops the
//! connection without any answer; no `status` means the normal answer, only delayed. With
//! `after_receive` the request is processed first (a KEX import is recorded, a partner created
//! or updated, a token issued) and only then delayed and answered with the fault: the answer is
//! lost.
//! Faults queue first in, first out, per call. Requests are counted in `/_sandbox/stats` whether
//! a fault hit them or not.
//!
//! The sandbox never logs request or response bodies, query strings or other personal data.
//!
//! Modules, each using only those before it: `fault`, `state` (→ fault), `handlers` (→ fault,
//! state).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use europace_sandbox::{Sandbox, SandboxConfig};
//!
//! let sandbox = Sandbox::new(SandboxConfig::default());
//! let server = sandbox.serve(std::net::TcpListener::bind("127.0.0.1:0")?)?;
//! println!("fake Europace at {}", server.base_url());
//! // ... drive a client against server.base_url() ...
//! assert!(sandbox.vorgaenge().is_empty());
//! server.stop().await;
//! # Ok(())
//! # }
//! ```

mod fault;
mod handlers;
mod state;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use serde::Serialize;
use serde_json::Value;

use crate::state::State;

/// Settings of a [`Sandbox`].
///
/// Build it with struct update syntax:
/// `SandboxConfig { token_ttl: Duration::from_secs(60), ..SandboxConfig::default() }`.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Lifetime of the access tokens `POST /auth/token` issues (its `expires_in`, in whole
    /// seconds). Default: one hour.
    pub token_ttl: Duration,
    /// Whether a token issued for explicit scopes is refused (403) at an endpoint needing a scope
    /// it lacks, as Europace does. Default: `true`.
    pub check_scopes: bool,
    /// Number of HTTP worker threads [`Sandbox::serve`] starts. Default: 1 (at least 1 is used).
    pub workers: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(3600),
            check_scopes: true,
            workers: 1,
        }
    }
}

/// The KEX import environment, from the `environment` query parameter of `POST /vorgang`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Environment {
    /// No `environment` parameter, or `TEST`: Europace's test mode.
    Test,
    /// `environment=PRODUCTION`: real business.
    Production,
}

impl Environment {
    /// The wire spelling: `"TEST"` or `"PRODUCTION"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "TEST",
            Self::Production => "PRODUCTION",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A KEX import the sandbox received and accepted, as listed by `GET /_sandbox/vorgaenge`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedVorgang {
    /// Test mode or real business.
    pub environment: Environment,
    /// The Vorgangsnummer the sandbox answered (two uppercase letters and four digits).
    pub vorgangsnummer: String,
    /// The request body exactly as parsed.
    pub body: Value,
}

/// The correlation headers of one request, as listed by `GET /_sandbox/calls`: what a
/// client's tracing sent, for tests of trace propagation. Only these two headers are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedCall {
    /// `auth`, `partner_lookup`, `partner_create`, `partner_update` or `kex`.
    pub call: &'static str,
    /// The `X-TraceId` header as sent (when it is printable ASCII).
    pub trace_id: Option<String>,
    /// The W3C `traceparent` header as sent (when it is printable ASCII).
    pub traceparent: Option<String>,
}

/// An in-memory fake Europace. Cheap to clone: clones share the same state.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    state: Mutex<State>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox holding only the seed partners `KBT01`, `TGP01` and `TGT01`.
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State::new()),
            }),
        }
    }

    /// Registers the sandbox routes on an actix-web `App` (or scope), so a server can mount it.
    ///
    /// Routes are registered as resources, so they do not shadow the host application's own
    /// routes at other paths; mount it inside `web::scope("/prefix")` to keep its `POST /vorgang`
    /// apart from a host's. Links it generates (`href`, `Location`) include such a prefix.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        handlers::configure(self, cfg);
    }

    /// Serves the sandbox on an already bound listener and returns a handle to it.
    ///
    /// The HTTP server runs as a task on the current Tokio runtime (a plain `#[tokio::main]` /
    /// `#[tokio::test]` runtime or actix-web's `#[actix_web::main]` one) with its own
    /// [`SandboxConfig::workers`] worker threads; it does not listen to OS signals. Fails when
    /// called outside a Tokio runtime or when the listener cannot be used.
    ///
    /// Dropping the returned handle does not stop the server; [`SandboxServer::stop`] does.
    pub fn serve(&self, listener: TcpListener) -> io::Result<SandboxServer> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            io::Error::other(format!("europace-sandbox needs a Tokio runtime: {e}"))
        })?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let sandbox = self.clone();
        let server = HttpServer::new(move || {
            let sandbox = sandbox.clone();
            App::new().configure(move |cfg| sandbox.configure(cfg))
        })
        .workers(self.inner.config.workers.max(1))
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let task = runtime.spawn(server);
        tracing::info!(target: "europace_sandbox", %addr, "europace sandbox listening");
        Ok(SandboxServer {
            base_url: format!("http://{}", connectable(addr)),
            handle,
            task,
        })
    }

    /// The KEX imports received so far, in arrival order.
    pub fn vorgaenge(&self) -> Vec<RecordedVorgang> {
        self.lock().vorgaenge().to_vec()
    }

    /// The correlation headers of the last 1000 requests, oldest first.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls()
    }

    /// All partners held (seeds first, then in creation order), as Partner JSON objects.
    pub fn partners(&self) -> Vec<Value> {
        self.lock()
            .partners()
            .iter()
            .map(|p| Value::Object(p.clone()))
            .collect()
    }

    pub(crate) fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Locks the state; a panic elsewhere while holding the lock does not make it unusable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running sandbox HTTP server, returned by [`Sandbox::serve`].
pub struct SandboxServer {
    base_url: String,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl fmt::Debug for SandboxServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SandboxServer {
    /// Where the sandbox answers, e.g. `http://127.0.0.1:41234` (no trailing slash). A listener
    /// bound to an unspecified address (`0.0.0.0`, `::`) is reported as the loopback address.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Stops the server: no new connections, open ones get at most one second to finish.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        if let Err(e) = self.task.await {
            tracing::warn!(target: "europace_sandbox", error = %e, "sandbox server task ended abnormally");
        }
    }
}

/// The address a client can connect to for a listener bound to `addr`.
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

//! Building and running the service from [`Settings`].

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use europace_client::{EuropaceClient, EuropaceConfig};
use secrecy::{ExposeSecret, SecretString};
use vorgang_core::{
    BuiltinCrm, Importer, ImporterConfig, KexImporter, PartnerDirectory, Ports, RandomIds,
    Resolver, SystemClock,
};
use vorgang_store::Store;

use crate::auth::{AuthService, DemoClient};
use crate::metrics::Metrics;
use crate::routes::docs::OpenApiDocument;
use crate::settings::Settings;
use crate::state::AppState;

/// A built, not yet running service.
pub struct Application {
    server: Server,
    port: u16,
    sandbox: Option<EmbeddedSandbox>,
    demo_client: Option<DemoClient>,
    background: tokio::task::JoinHandle<()>,
    /// Re-delivery of queued imports and the webhook outbox ([`delivery_work`]).
    delivery: tokio::task::JoinHandle<()>,
    store: Store,
}

/// File descriptors kept free for everything but inbound connections: the database pool, the
/// SQLite files, the embedded sandbox's listener, logs.
const RESERVED_FDS: u64 = 64;

/// Descriptors one inbound connection may cost: itself, an outbound connection to Europace while
/// its import runs, and (embedded sandbox) the sandbox's end of that connection.
const FDS_PER_CONNECTION: u64 = 3;

/// actix-web's own default per worker, the ceiling when descriptors are plentiful.
const MAX_CONNECTIONS_PER_WORKER: u64 = 25_000;

/// How many connections each worker may hold so that the process never runs out of file
/// descriptors: with none left, `accept` fails (EMFILE) and so does every outbound call, the
/// database included, and the service stops answering everyone, probes too. Connections beyond
/// the cap wait in the listen backlog until a slot frees (a stalled client frees its slot after
/// the body deadline at the latest).
///
/// Raises the soft open-file limit to the hard limit first: the soft default (often 1024) is a
/// relic; the hard limit is what the operator granted.
fn max_connections_per_worker(workers: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(error = %error, "could not read or raise the open-file limit; assuming 1024");
            1024
        }
    };
    let workers_u64 = u64::try_from(workers.max(1)).unwrap_or(1);
    let per_worker = (limit.saturating_sub(RESERVED_FDS) / FDS_PER_CONNECTION / workers_u64)
        .clamp(1, MAX_CONNECTIONS_PER_WORKER);
    tracing::info!(
        open_file_limit = limit,
        workers,
        max_connections = per_worker * workers_u64,
        "connection cap"
    );
    usize::try_from(per_worker).unwrap_or(1)
}

/// How long after its last change an unfinished import counts as abandoned by a crashed process.
fn stale_after(settings: &Settings) -> Duration {
    Duration::from_millis(
        settings
            .europace
            .connect_timeout_ms
            .saturating_add(settings.europace.request_timeout_ms)
            .saturating_mul(2),
    )
    .max(Duration::from_secs(2))
}

/// The fake Europace running inside this process when `europace.base_url` is unset.
#[cfg(feature = "embedded-sandbox")]
type EmbeddedSandbox = europace_sandbox::SandboxServer;

/// Built without the `embedded-sandbox` feature there is none: an empty type, so
/// `Option<EmbeddedSandbox>` is always `None` and the code around it stays the same.
#[cfg(not(feature = "embedded-sandbox"))]
enum EmbeddedSandbox {}

#[cfg(not(feature = "embedded-sandbox"))]
impl EmbeddedSandbox {
    fn base_url(&self) -> String {
        match *self {}
    }

    #[allow(clippy::unused_async)] // the same signature as SandboxServer::stop
    async fn stop(self) {
        match self {}
    }
}

/// Starts the embedded sandbox on a free loopback port.
#[cfg(feature = "embedded-sandbox")]
fn start_embedded_sandbox() -> anyhow::Result<EmbeddedSandbox> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the embedded sandbox")?;
    europace_sandbox::Sandbox::new(europace_sandbox::SandboxConfig::default())
        .serve(listener)
        .context("starting the embedded sandbox")
}

/// This build has no sandbox ([`Settings::problems`] refuses the settings before this).
#[cfg(not(feature = "embedded-sandbox"))]
fn start_embedded_sandbox() -> anyhow::Result<EmbeddedSandbox> {
    anyhow::bail!("{}", crate::settings::BASE_URL_REQUIRED)
}

/// Builds the Europace adapters: the real ones, or the embedded sandbox's, reporting every
/// exchange to `metrics`.
async fn europace(
    settings: &Settings,
    metrics: &crate::metrics::Metrics,
) -> anyhow::Result<(EuropaceClient, Option<EmbeddedSandbox>)> {
    let e = &settings.europace;
    let (base, client_id, client_secret, sandbox) = match &e.base_url {
        Some(base) => (
            base.clone(),
            e.client_id.clone().unwrap_or_default(),
            e.client_secret
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
            None,
        ),
        None => {
            let sandbox = start_embedded_sandbox()?;
            tracing::warn!(
                sandbox = %sandbox.base_url(),
                "europace.base_url is not set: using the EMBEDDED EUROPACE SANDBOX. Nothing reaches Europace; imports are kept in memory only. Set europace.base_url for real use."
            );
            let base = url::Url::parse(&sandbox.base_url()).context("sandbox URL")?;
            (
                base,
                "sandbox".to_owned(),
                SecretString::from("sandbox"),
                Some(sandbox),
            )
        }
    };
    let mut config = EuropaceConfig::from_base_url(&base, client_id, client_secret);
    if let Some(url) = &e.auth_url {
        config.auth_url = url.clone();
    }
    if let Some(url) = &e.partner_url {
        config.partner_url = url.clone();
    }
    if let Some(url) = &e.kex_url {
        config.kex_url = url.clone();
    }
    if let (Some(subject), Some(actor)) = (&e.impersonation_subject, &e.impersonation_actor) {
        config.impersonation = Some(europace_client::Impersonation {
            subject: subject.clone(),
            actor: actor.clone(),
        });
    }
    config.kex_scope.clone_from(&e.kex_scope);
    config.partner_scope.clone_from(&e.partner_scope);
    config.connect_timeout = Duration::from_millis(e.connect_timeout_ms);
    config.request_timeout = Duration::from_millis(e.request_timeout_ms);
    config.observer = Some(metrics.europace_observer());
    let client = EuropaceClient::new(config).context("configuring the Europace client")?;
    Ok((client, sandbox))
}

/// The import use case over `store` and the given Europace adapters, configured by `settings`.
#[must_use]
pub fn importer(
    settings: &Settings,
    store: &Store,
    partners: Arc<dyn PartnerDirectory>,
    kex: Arc<dyn KexImporter>,
) -> Importer {
    Importer::new(
        ImporterConfig {
            kundenbetreuer_partner_id: settings.europace.kundenbetreuer_partner_id.clone(),
            tippgeber_parent_id: settings.europace.tippgeber_parent_id.clone(),
            test_tippgeber_parent_id: settings.europace.test_tippgeber_parent_id.clone(),
        },
        Ports {
            store: store.as_import_store(),
            partners,
            kex,
            crm: Arc::new(BuiltinCrm),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
        },
    )
    .with_delivery(settings.delivery.policy())
}

/// The operator's use case over `store` (no Europace adapter: deciding, listing and purging
/// imports never calls Europace).
#[must_use]
pub fn resolver(store: &Store) -> Resolver {
    Resolver::new(
        store.as_import_store(),
        Arc::new(BuiltinCrm),
        Arc::new(SystemClock),
    )
}

impl Application {
    /// Connects the database, starts the sandbox if needed, binds the listener and prepares the
    /// HTTP server (not yet polled: call [`Application::run_until_stopped`]).
    ///
    /// # Errors
    /// Invalid settings, an unreachable database, an unusable listen address or signing key.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let problems = settings.problems();
        if !problems.is_empty() {
            anyhow::bail!("invalid settings:\n{}", problems.join("\n"));
        }
        let store = Store::connect(settings.database_url.expose_secret())
            .await
            .context("connecting the database")?;
        let metrics = crate::metrics::Metrics::new();
        let (europace, sandbox) = europace(&settings, &metrics).await?;
        let importer = importer(
            &settings,
            &store,
            europace.partner_directory(),
            europace.kex_importer(),
        );

        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("binding {}", settings.listen))?;
        let address = listener.local_addr().context("reading the bound address")?;
        let issuer = settings
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        let auth = Arc::new(AuthService::build(&settings, &store, issuer).await?);
        // Keeps this replica's view of revoked clients and tokens current, so bearer checks
        // answer from memory (auth::RevocationCache). Ends with the last reference to it.
        auth.registry.revocations().spawn_refresher();
        let demo_client = if sandbox.is_some() {
            auth.demo_client_if_none().await?
        } else {
            None
        };

        let webhooks = crate::webhooks::Sender::new(
            store.as_webhook_store(),
            settings
                .key_encryption_key
                .as_ref()
                .and_then(crate::settings::decode_kek),
            settings.delivery.policy(),
            Duration::from_millis(settings.webhooks.timeout_ms),
            metrics.clone(),
        )
        .context("building the webhook client")?;
        let delivery = tokio::spawn(delivery_work(importer.clone(), webhooks, metrics.clone()));
        let state = web::Data::new(AppState {
            importer: importer.clone(),
            auth,
            metrics,
            import_limiter: crate::rate_limit::ImportRateLimiter::new(
                settings.limits.imports_per_minute,
            ),
            webhooks: store.as_webhook_store(),
        });
        // Built here, not by the route that serves it: the document is made from the routes.
        let document = web::Data::new(OpenApiDocument(crate::openapi::document_json()));
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(document.clone())
                .configure(crate::routes::configure)
        })
        .workers(workers)
        .max_connections(max_connections_per_worker(workers))
        .shutdown_timeout(30)
        .listen(listener)
        .context("listening")?
        .run();

        let background = tokio::spawn(background_work(
            importer,
            stale_after(&settings),
            Duration::from_secs(u64::from(settings.retention_days) * 86_400),
        ));
        tracing::info!(%address, "vorgang-server listening");
        Ok(Self {
            server,
            port: address.port(),
            sandbox,
            demo_client,
            background,
            delivery,
            store,
        })
    }

    /// The port the service listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The embedded sandbox's URL, if one runs.
    #[must_use]
    pub fn sandbox_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(EmbeddedSandbox::base_url)
    }

    /// The demo client registered at start (embedded sandbox, empty database), if any.
    #[must_use]
    pub fn demo_client(&self) -> Option<&DemoClient> {
        self.demo_client.as_ref()
    }

    /// A handle to stop the server gracefully.
    #[must_use]
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM/SIGINT or [`ServerHandle::stop`]); in-flight requests get up
    /// to 30 s to finish.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.background.abort();
        self.delivery.abort();
        if let Some(sandbox) = self.sandbox {
            sandbox.stop().await;
        }
        self.store.close().await;
        result
    }
}

/// Most queued imports claimed per pass of [`delivery_work`].
const DELIVERY_BATCH: u32 = 16;

/// How often [`delivery_work`] looks for due queued imports and webhook events: the first
/// re-delivery wait (`delivery.retry_initial_ms`), between 50 ms and 1 s.
fn delivery_tick(importer: &Importer) -> Duration {
    importer
        .delivery()
        .retry_initial
        .clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// Re-delivers due `QUEUED` imports and sends due webhook events, now and at every tick
/// ([`delivery_tick`]). Each import and event is claimed in the database (one replica each).
async fn delivery_work(importer: Importer, webhooks: crate::webhooks::Sender, metrics: Metrics) {
    let mut tick = tokio::time::interval(delivery_tick(&importer));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match importer.deliver_queued(DELIVERY_BATCH).await {
                Ok(delivered) => {
                    for record in &delivered {
                        metrics.observe_delivery(record.status);
                    }
                    if delivered.len() < DELIVERY_BATCH as usize {
                        break;
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error, "could not claim queued imports");
                    break;
                }
            }
        }
        if let Err(error) = webhooks.deliver_due().await {
            tracing::error!(error = %error, "could not claim webhook events");
        }
    }
}

/// Resumes abandoned imports now and every 30 s; scrubs the store every 30 s (SQLite: the WAL
/// keeps no page image of a dropped request body for longer); purges finished ones hourly.
async fn background_work(importer: Importer, stale_after: Duration, retention: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        match importer.resume_stale(stale_after).await {
            Ok(touched) if !touched.is_empty() => {
                tracing::info!(count = touched.len(), "resumed abandoned imports");
            }
            Ok(_) => {}
            Err(error) => tracing::error!(error = %error, "could not resume imports"),
        }
        if ticks.is_multiple_of(120) {
            match importer.resolver().purge_finished(retention).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "purged finished imports past retention"),
                Err(error) => tracing::error!(error = %error, "could not purge imports"),
            }
        }
        if let Err(error) = importer.resolver().scrub().await {
            tracing::warn!(error = %error, "could not scrub the store");
        }
        ticks = ticks.wrapping_add(1);
    }
}

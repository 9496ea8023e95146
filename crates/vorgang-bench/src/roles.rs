//! What the child processes run: the sandbox, the relay, the service. Each binds a free loopback
//! port, prints `READY {json}` on stdout and stops gracefully when its stdin closes.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::Context as _;
use europace_sandbox::{Sandbox, SandboxConfig};
use secrecy::SecretString;
use tokio::io::AsyncReadExt as _;
use vorgang_server::startup::Application;

use crate::cli::{RelayArgs, ServerArgs};

/// Tells the parent where this child serves.
fn ready(json: &serde_json::Value) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "READY {json}")?;
    stdout.flush()?;
    Ok(())
}

/// Resolves when stdin reaches its end: the parent closed it (or died).
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 64];
    while let Ok(read) = stdin.read(&mut buffer).await {
        if read == 0 {
            break;
        }
    }
}

/// The Europace sandbox with its default configuration (one worker). No log subscriber: the
/// sandbox's per-request log lines would cost CPU the targets share.
pub async fn sandbox() -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the sandbox")?;
    let server = Sandbox::new(SandboxConfig::default())
        .serve(listener)
        .context("starting the sandbox")?;
    ready(&serde_json::json!({ "base_url": server.base_url() }))?;
    stdin_closed().await;
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// The null relay. No log subscriber (the ceiling logs nothing).
pub async fn relay(args: RelayArgs) -> anyhow::Result<ExitCode> {
    let relay = crate::relay::Relay::connect(&args.europace_url).await?;
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the relay")?;
    let port = listener.local_addr()?.port();
    let server = crate::relay::serve(relay, listener).context("starting the relay")?;
    let handle = server.handle();
    let running = actix_web::rt::spawn(server);
    ready(&serde_json::json!({ "port": port }))?;
    stdin_closed().await;
    handle.stop(true).await;
    running.await.context("relay task")??;
    Ok(ExitCode::SUCCESS)
}

/// The service, built from its library API as its binary's `serve` builds it, with the
/// production log subscriber (JSON lines on stderr, into the child's log file).
pub async fn server(args: ServerArgs) -> anyhow::Result<ExitCode> {
    vorgang_server::telemetry::init();
    let kek = std::env::var(crate::server::KEK_VAR)
        .with_context(|| format!("{} is not set", crate::server::KEK_VAR))?;
    let settings = crate::server::settings(
        &args.database_url,
        &args.europace_url,
        SecretString::from(kek),
    );
    let application = Application::build(settings).await?;
    let handle = application.handle();
    ready(&serde_json::json!({ "port": application.port() }))?;
    actix_web::rt::spawn(async move {
        stdin_closed().await;
        handle.stop(true).await;
    });
    application.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

//! The CLI commands: results for programs on stdout as JSON lines, logs on stderr.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use vorgang_core::{ImportQuery, Resolution};
use vorgang_store::Store;

use crate::auth::AuthService;
use crate::cli::{Cli, ClientsCommand, Command, ConfigCommand, ImportsCommand, KeysCommand};
use crate::settings::Settings;
use crate::startup::Application;

/// Prints one JSON line on stdout.
fn print_line(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Prints one JSON line per import (one write per page, not per line). `false` when stdout was
/// closed by its reader.
fn print_imports(records: &[vorgang_core::ImportRecord]) -> anyhow::Result<bool> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = records
        .iter()
        .try_for_each(|record| {
            let mut line = serde_json::json!({
                "drkleinrkVorgangsnummer": record.id,
                "status": record.status,
                "environment": record.environment,
                "client_id": record.client_id,
                "createdAt": record.created_at,
            });
            if let Some(number) = &record.europace_vorgangsnummer {
                line["europaceVorgangsnummer"] = serde_json::json!(number);
            }
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// Any failure, reported by `main` on stderr with exit code 1.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Serve);
    #[cfg(feature = "embedded-sandbox")]
    if let Command::Sandbox { listen } = command {
        return sandbox(listen).await;
    }
    // Every command refuses settings with a problem (a typo must not start the sandbox nor
    // write to a default database): nothing on stdout, one line per problem on stderr.
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            let mut err = std::io::stderr().lock();
            for problem in error.problems() {
                writeln!(err, "{problem}")?;
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    match command {
        Command::Serve => serve(settings).await,
        Command::Config(ConfigCommand::Check) => {
            // One JSON document, so `config check | jq .` works.
            print_line(&settings.masked_json())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Clients(command) => clients(settings, command).await,
        Command::Imports(command) => imports(settings, command).await,
        Command::Keys(KeysCommand::Rotate) => {
            let store = connect(&settings).await?;
            let auth = AuthService::build(&settings, &store, String::new()).await?;
            let kid = auth.rotate_keys().await?;
            print_line(&serde_json::json!({ "kid": kid }))?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "embedded-sandbox")]
        Command::Sandbox { .. } => Ok(ExitCode::SUCCESS),
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<Store> {
    let problems = settings.problems();
    if !problems.is_empty() {
        anyhow::bail!("invalid settings:\n{}", problems.join("\n"));
    }
    Store::connect(settings.database_url.expose_secret())
        .await
        .context("connecting the database")
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let application = Application::build(settings).await?;
    if let Some(demo) = application.demo_client() {
        print_line(&demo.to_json())?;
        tracing::warn!(
            "registered a demo client for the embedded sandbox; its credentials are on stdout"
        );
    }
    application.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "embedded-sandbox")]
async fn sandbox(listen: std::net::SocketAddr) -> anyhow::Result<ExitCode> {
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    let server = europace_sandbox::Sandbox::new(europace_sandbox::SandboxConfig::default())
        .serve(listener)
        .context("starting the sandbox")?;
    tracing::info!(url = %server.base_url(), "Europace sandbox running; stop with Ctrl-C");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}

async fn clients(settings: Settings, command: ClientsCommand) -> anyhow::Result<ExitCode> {
    let store = connect(&settings).await?;
    let auth = AuthService::build(&settings, &store, String::new()).await?;
    match command {
        ClientsCommand::Add {
            name,
            email,
            telefonnummer,
            organisation,
            scope,
            webhook_url,
        } => {
            let scopes: Vec<String> = scope
                .iter()
                .flat_map(|s| s.split_whitespace())
                .map(str::to_owned)
                .collect();
            // Checked before anything is stored: a refused URL registers no client.
            let webhook_url = webhook_url
                .map(|url| crate::webhooks::check_url(&url, settings.webhooks.allow_http))
                .transpose()?;
            let created = auth
                .register_client(name, email, telefonnummer, organisation, scopes)
                .await?;
            let mut line = created.to_json();
            if let Some(url) = webhook_url {
                let client_id = line["client_id"].as_str().unwrap_or_default().to_owned();
                let secret = set_webhook(&settings, &store, &client_id, &url).await?;
                line["webhook_secret"] = serde_json::Value::String(secret);
            }
            print_line(&line)?;
        }
        ClientsCommand::SetWebhook { id, url, none: _ } => match url {
            Some(url) => {
                let url = crate::webhooks::check_url(&url, settings.webhooks.allow_http)?;
                let secret = set_webhook(&settings, &store, &id, &url).await?;
                print_line(&serde_json::json!({"client_id": id, "webhook_secret": secret}))?;
            }
            None => {
                if !store.as_webhook_store().set_webhook(&id, None).await? {
                    anyhow::bail!("no client with this id");
                }
            }
        },
        ClientsCommand::List => {
            for mut client in auth.list_clients().await? {
                // The webhook URL (not its secret), so an operator sees where events go.
                let client_id = client["client_id"].as_str().unwrap_or_default().to_owned();
                let webhook = store.as_webhook_store().webhook(&client_id).await?;
                client["webhook_url"] = webhook.map(|target| target.url).into();
                print_line(&client)?;
            }
        }
        ClientsCommand::Revoke { id } => {
            if !auth.revoke_client(&id).await? {
                anyhow::bail!("no client with this id");
            }
            print_line(&serde_json::json!({"client_id": id, "revoked": true}))?;
        }
        ClientsCommand::Rotate { id } => {
            // A revoked client stays revoked: a new secret would only mislead whoever receives
            // it (it could never get a token). Nothing is printed, nothing changes.
            let client = store.as_client_store().get_client(&id).await?;
            if client.is_some_and(|client| client.revoked_at.is_some()) {
                anyhow::bail!(
                    "client {id} is revoked: a revoked client gets no new secret; register a new client with `clients add`"
                );
            }
            match auth.rotate_client(&id).await? {
                Some(created) => print_line(&created.to_json())?,
                None => anyhow::bail!("no client with this id"),
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Gives client `id` the webhook `url` with a new secret; returns the secret's text
/// (`whsec_…`), shown this once.
async fn set_webhook(
    settings: &Settings,
    store: &Store,
    id: &str,
    url: &url::Url,
) -> anyhow::Result<String> {
    let (secret, key) = crate::webhooks::new_secret()?;
    let kek = settings
        .key_encryption_key
        .as_ref()
        .and_then(crate::settings::decode_kek);
    let target = crate::webhooks::target(id, url, &key, kek.as_ref())?;
    if !store
        .as_webhook_store()
        .set_webhook(id, Some(&target))
        .await?
    {
        anyhow::bail!("no client with this id");
    }
    Ok(secret)
}

/// How many imports `imports list` reads per page: it prints each page before reading the next
/// (a keyset cursor, so every page costs the same), so memory stays flat however many are stored.
const LIST_PAGE: u32 = 500;

async fn imports(settings: Settings, command: ImportsCommand) -> anyhow::Result<ExitCode> {
    let store = connect(&settings).await?;
    // The operator's door: store, CRM and clock, no Europace adapter.
    let resolver = crate::startup::resolver(&store);
    match command {
        ImportsCommand::List {
            status,
            since,
            limit,
        } => {
            let mut query = ImportQuery {
                status: status.map(|status| status.0),
                since,
                limit: LIST_PAGE,
                ..ImportQuery::all()
            };
            let mut remaining = limit.unwrap_or(u64::MAX);
            while remaining > 0 {
                query.limit =
                    u32::try_from(remaining.min(u64::from(LIST_PAGE))).unwrap_or(LIST_PAGE);
                let page = resolver.list(query.clone()).await?;
                remaining =
                    remaining.saturating_sub(u64::try_from(page.items.len()).unwrap_or(u64::MAX));
                if !print_imports(&page.items)? {
                    break; // stdout was closed (`imports list | head`): nobody reads on
                }
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
        }
        ImportsCommand::Resolve {
            id,
            europace_vorgangsnummer,
            failed,
        } => {
            let resolution = match (europace_vorgangsnummer, failed) {
                (Some(number), false) => Resolution::Imported {
                    europace_vorgangsnummer: number,
                },
                (None, true) => Resolution::Failed,
                _ => anyhow::bail!("give exactly one of --europace-vorgangsnummer or --failed"),
            };
            let record = resolver.resolve(id, resolution).await?;
            print_line(&serde_json::json!({
                "drkleinrkVorgangsnummer": record.id,
                "status": record.status,
                "europaceVorgangsnummer": record.europace_vorgangsnummer,
                "crmKennung": record.crm_kennung,
            }))?;
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

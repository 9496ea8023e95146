//! The command line (docs/reference/cli.md).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::builder::PossibleValue;
use clap::{Parser, Subcommand, ValueEnum};
use vorgang_core::ImportStatus;

/// The Vorgang Import Service of Dr. Klein Ratenkredit.
#[derive(Debug, Parser)]
#[command(name = "vorgang-server", version, about)]
pub struct Cli {
    /// Settings file (TOML); also `VORGANG_CONFIG`.
    #[arg(long, global = true, env = "VORGANG_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do; default `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The log level when `RUST_LOG` does not set one: `info` for the service (`serve`, the
    /// default, and `sandbox`), `warn` for the operator's one-shot commands, whose stderr should
    /// show only what needs attention.
    #[must_use]
    pub fn default_log_level(&self) -> &'static str {
        match &self.command {
            None | Some(Command::Serve) => crate::telemetry::SERVICE_LEVEL,
            #[cfg(feature = "embedded-sandbox")]
            Some(Command::Sandbox { .. }) => crate::telemetry::SERVICE_LEVEL,
            Some(_) => crate::telemetry::COMMAND_LEVEL,
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the service.
    Serve,
    /// Manages partner clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Operator view and decisions on imports.
    #[command(subcommand)]
    Imports(ImportsCommand),
    /// Manages token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Runs only the fake Europace.
    #[cfg(feature = "embedded-sandbox")]
    Sandbox {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
    },
}

/// `clients …`.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Registers a partner client and prints `{"client_id","client_secret"}` once (with
    /// `"webhook_secret"` when a webhook URL is given).
    Add {
        /// Name of the contact person.
        #[arg(long)]
        name: String,
        /// E-mail of the contact person.
        #[arg(long)]
        email: String,
        /// Phone of the contact person.
        #[arg(long)]
        telefonnummer: String,
        /// The partner organisation.
        #[arg(long)]
        organisation: String,
        /// Scopes (repeatable or space separated); default `drkleinrk-api/vorgang:import`.
        #[arg(long)]
        scope: Vec<String>,
        /// Where the client's webhook events are POSTed (`https://`; `http://` for loopback
        /// hosts or with `webhooks.allow_http`). Prints a `webhook_secret` once.
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Sets a client's webhook URL (prints `{"client_id","webhook_secret"}` once) or removes it
    /// (`--none`).
    #[command(group(clap::ArgGroup::new("webhook").required(true).args(["url", "none"])))]
    SetWebhook {
        /// The client id.
        id: String,
        /// The new webhook URL (a new secret is issued).
        url: Option<String>,
        /// Removes the webhook: no more events are sent.
        #[arg(long)]
        none: bool,
    },
    /// One JSON line per client, never a secret.
    List,
    /// Revokes a client: its tokens stop working at once.
    Revoke {
        /// The client id.
        id: String,
    },
    /// Issues a new secret; the old one stops working.
    Rotate {
        /// The client id.
        id: String,
    },
}

/// `imports …`.
#[derive(Debug, Subcommand)]
pub enum ImportsCommand {
    /// One JSON line per import, oldest first, printed as they are read.
    List {
        /// Only imports in this state, e.g. `IN_DOUBT` (any case: `in_doubt` too).
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<StatusArg>,
        /// Only imports accepted at or after this time (RFC 3339, e.g. `2025-01-31T00:00:00Z`).
        #[arg(long, value_parser = parse_rfc3339)]
        since: Option<DateTime<Utc>>,
        /// At most this many imports.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
    },
    /// Resolves an `IN_DOUBT` import.
    Resolve {
        /// The drkleinrkVorgangsnummer.
        id: uuid::Uuid,
        /// The case exists at Europace under this number.
        #[arg(long, conflicts_with = "failed", required_unless_present = "failed")]
        europace_vorgangsnummer: Option<String>,
        /// No case was created at Europace.
        #[arg(long)]
        failed: bool,
    },
}

/// An import state as a command-line value: every [`ImportStatus`] under its wire name
/// (`IN_DOUBT`), listed in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusArg(pub ImportStatus);

/// Every [`StatusArg`], from [`ImportStatus::ALL`] (a new state is listed without change here).
const STATUS_ARGS: [StatusArg; ImportStatus::ALL.len()] = {
    let mut all = [StatusArg(ImportStatus::Accepted); ImportStatus::ALL.len()];
    let mut i = 0;
    while i < all.len() {
        all[i] = StatusArg(ImportStatus::ALL[i]);
        i += 1;
    }
    all
};

impl ValueEnum for StatusArg {
    fn value_variants<'a>() -> &'a [Self] {
        &STATUS_ARGS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.as_str()))
    }
}

/// An RFC 3339 time (`2025-01-31T00:00:00Z`, `2025-01-31T01:00:00+01:00`), in UTC.
fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| "expected an RFC 3339 time, e.g. 2025-01-31T00:00:00Z".to_owned())
}

/// `keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Creates a new signing key; the previous one keeps verifying until its tokens expire.
    Rotate,
}

/// `config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Prints the effective settings (secrets masked); exit 1 with one line per bad setting.
    Check,
}

//! The command line (docs/reference/cli.md).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Registers a partner client and prints `{"client_id","client_secret"}` once.
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
    /// One JSON line per import.
    List {
        /// Only imports in this state, e.g. `IN_DOUBT`.
        #[arg(long)]
        status: Option<String>,
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

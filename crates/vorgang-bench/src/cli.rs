//! Command line: the benchmark's flags, and the hidden subcommands its children run.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// End-to-end benchmark of `POST /vorgang`: the null relay (the ceiling), the service on SQLite
/// and the service on PostgreSQL, loaded one after the other in the same run; one table.
#[derive(Debug, Parser)]
#[command(name = "vorgang-bench", version)]
pub struct Cli {
    /// A child role (internal: the benchmark starts its children with these).
    #[command(subcommand)]
    pub role: Option<Role>,
    /// The benchmark's options.
    #[command(flatten)]
    pub options: Options,
}

/// What the benchmark measures and how.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Targets to load, in this order (comma-separated). Default: all three; `postgres` is
    /// skipped with a note when the server is unreachable, unless named explicitly.
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<Target>,
    /// Concurrent connections, one request loop each (closed loop, no think time).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub connections: u16,
    /// Seconds measured per target.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub duration: u64,
    /// Seconds of load before the measurement starts (not counted), per target.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=120))]
    pub warmup: u64,
    /// Finished imports stored before the service starts (SQLite and PostgreSQL targets).
    #[arg(long, default_value_t = 0)]
    pub rows: u64,
    /// Print one JSON object per target (one per line) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Seconds after which a request counts as timed out (an error).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout: u64,
    /// Threads of the load generator (like wrk's `-t`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub load_threads: u16,
    /// Directory for the run's temporary files (the SQLite database, the children's logs);
    /// default: the system's temporary directory. It must be on a real disk: on a tmpfs an
    /// fsync costs nothing and SQLite looks faster than it is.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// PostgreSQL server on which a fresh database is created for the run (and dropped after);
    /// the role must be allowed to `CREATE DATABASE`.
    #[arg(
        long,
        env = "VORGANG_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres_url: String,
}

impl Options {
    /// The targets to run: the ones named, else all three.
    pub fn targets(&self) -> Vec<Target> {
        if self.targets.is_empty() {
            vec![Target::Relay, Target::Sqlite, Target::Postgres]
        } else {
            let mut targets = Vec::new();
            for target in &self.targets {
                if !targets.contains(target) {
                    targets.push(*target);
                }
            }
            targets
        }
    }

    /// Whether PostgreSQL was asked for by name (then an unreachable server is an error).
    pub fn postgres_named(&self) -> bool {
        self.targets.contains(&Target::Postgres)
    }

    /// Measured time per target.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration)
    }

    /// Warm-up per target.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup)
    }

    /// Per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

/// One thing to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The null relay: the same Europace calls, nothing else.
    Relay,
    /// The service on a SQLite file.
    Sqlite,
    /// The service on a fresh PostgreSQL database.
    Postgres,
}

impl Target {
    /// The name in the table and the JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Relay => "relay",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The hidden subcommands: what a child process of the benchmark runs. Each prints one line
/// `READY {json}` on stdout when it serves, and stops when its stdin closes.
#[derive(Debug, Subcommand)]
pub enum Role {
    /// A Europace sandbox on a free loopback port.
    #[command(hide = true)]
    Sandbox,
    /// The null relay on a free loopback port.
    #[command(hide = true)]
    Relay(RelayArgs),
    /// The service on a free loopback port (the key-encryption key comes in the environment).
    #[command(hide = true)]
    Server(ServerArgs),
}

/// Arguments of the `relay` child.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Base URL of the Europace sandbox.
    #[arg(long)]
    pub europace_url: url::Url,
}

/// Arguments of the `server` child.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Base URL of the Europace sandbox.
    #[arg(long)]
    pub europace_url: url::Url,
    /// The prepared database.
    #[arg(long)]
    pub database_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = Cli::try_parse_from(["vorgang-bench"]).unwrap();
        assert!(cli.role.is_none());
        let options = cli.options;
        assert_eq!(
            options.targets(),
            [Target::Relay, Target::Sqlite, Target::Postgres]
        );
        assert!(!options.postgres_named());
        assert_eq!(options.connections, 32);
        assert_eq!(options.duration(), Duration::from_secs(15));
        assert_eq!(options.warmup(), Duration::from_secs(5));
        assert_eq!(options.rows, 0);
    }

    #[test]
    fn targets_keep_their_order_once_each() {
        let cli = Cli::try_parse_from([
            "vorgang-bench",
            "--targets",
            "postgres,relay,postgres",
            "--rows",
            "1000000",
        ])
        .unwrap();
        assert_eq!(cli.options.targets(), [Target::Postgres, Target::Relay]);
        assert!(cli.options.postgres_named());
        assert_eq!(cli.options.rows, 1_000_000);
        assert!(Cli::try_parse_from(["vorgang-bench", "--targets", "mysql"]).is_err());
        assert!(Cli::try_parse_from(["vorgang-bench", "--connections", "0"]).is_err());
    }
}

//! `vorgang-bench`: the end-to-end benchmark of the import path, in one command.
//!
//! ```sh
//! cargo run --release -p vorgang-bench                      # relay, SQLite, PostgreSQL (if reachable)
//! cargo run --release -p vorgang-bench -- --rows 1000000    # with a million finished imports stored
//! cargo run --release -p vorgang-bench -- --help
//! ```
//!
//! For every target it starts a fresh Europace sandbox and the target (the null relay, or the
//! service on a fresh SQLite file or PostgreSQL database) as **child processes**, loads the
//! target's `POST /vorgang` with a fixed number of connections for a fixed time after a warm-up,
//! and prints one table: imports/s, p50, p90, p99, the target process's peak RSS and the ratio to
//! the relay's imports/s. docs/performance.md explains the method and its caveats.
//!
//! The children are this same binary, re-executed with a hidden subcommand (`sandbox`, `relay`,
//! `server`): so nothing is built or installed by hand, and the RSS measured is the target's own,
//! not the load generator's. A child stops when its standard input closes, so no child outlives
//! the benchmark, whichever way the benchmark ends.
//!
//! Modules, each using only those before it: [`cli`] (flags), [`child`] (child processes and
//! their memory), [`relay`] (the null relay), [`server`] (how the service is configured and
//! prepared), [`prefill`] (`--rows`), [`workload`] (the request bodies), [`load`] (the load
//! generator), [`report`] (percentiles, table, JSON), [`roles`] (what a child runs; → cli, relay,
//! server), [`orchestrate`] (one run; → child, cli, load, prefill, report, server, workload).

mod child;
mod cli;
mod load;
mod orchestrate;
mod prefill;
mod relay;
mod report;
mod roles;
mod server;
mod workload;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Role};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.role {
        // The children run on actix's system runtime, as the service's own binary does.
        Some(Role::Sandbox) => actix_web::rt::System::new().block_on(roles::sandbox()),
        Some(Role::Relay(args)) => actix_web::rt::System::new().block_on(roles::relay(args)),
        Some(Role::Server(args)) => actix_web::rt::System::new().block_on(roles::server(args)),
        None => orchestrate::main(&cli.options),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("vorgang-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

//! `vorgang-server`: see `vorgang-server --help` and docs/reference/cli.md.

use clap::Parser as _;
use vorgang_server::cli::Cli;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    vorgang_server::telemetry::init_with_level(cli.default_log_level());
    match vorgang_server::commands::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            // anyhow's chain: our own messages, never secrets or personal data.
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

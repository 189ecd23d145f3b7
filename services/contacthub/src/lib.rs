//! The `contacthub` binary as a library, so tests can run the very same commands in a child
//! process. Layout: [`cli`] declares the commands and settings (clap, each with an env
//! variable); [`commands`] carries them out, [`courrier`] the mail-room ones; [`telemetry`]
//! sets up logs.

pub mod cli;
pub mod commands;
pub mod courrier;
pub mod telemetry;

use clap::Parser;

/// Parses the command line, runs the command, and turns errors into an exit code.
pub fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init(cli.log_format, cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

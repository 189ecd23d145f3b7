//! The `contacthub` binary as a library, so tests can run the very same commands in a child
//! process. Layout: [`cli`] declares the commands and settings (clap, each with an env
//! variable); [`commands`] carries them out, [`courrier`] the mail-room ones, [`citizen`] the
//! citizen-record ones, [`request`] the request ones, [`accueil`] the waiting line's and the accueil report, [`answer`] the written-answer ones,
//! [`audit`] the DPO's read trail and its check, [`demo`] the demo commune of
//! `serve --demo`; [`server`] wires
//! a running hub (also used by the tests); [`telemetry`] sets up logs.

pub mod accueil;
pub mod answer;
pub mod appointment;
pub mod audit;
pub mod citizen;
pub mod cli;
pub mod commands;
pub mod courrier;
pub mod demo;
pub mod demo_issuer;
pub mod request;
pub mod server;
pub mod telemetry;

use clap::Parser;

/// Parses the command line, runs the command, and turns errors into an exit code.
pub fn main() -> std::process::ExitCode {
    // Everything the hub writes holds personal data: files 0600 and folders 0700, whatever
    // the umask it was started with.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
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
        // The reader of our output went away (`contacthub status | head -3`): stop quietly,
        // with the status a shell gives a command killed by SIGPIPE.
        Err(e) if broken_pipe(&e) => std::process::ExitCode::from(141),
        // Taken, but not all of it: a cron job notices (`ingest`).
        Err(e) if e.downcast_ref::<Quarantined>().is_some() => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each said once: a cause whose words are already in
/// the line (an error that prints its source, then the source itself) is not repeated.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for message in e.chain().map(|c| c.to_string()) {
        if out.contains(&message) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&message);
    }
    out
}

/// Some input went to the quarantine (exit code 3): the rest was taken.
#[derive(Debug)]
pub struct Quarantined(pub usize);

impl std::fmt::Display for Quarantined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} item(s) went to the quarantine (contacthub quarantine list); the rest was taken",
            self.0
        )
    }
}

impl std::error::Error for Quarantined {}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Calls `method` of a gRPC client made by the calling module's `client(&ClientArgs)`, with
/// the agent's token (`authed`); the answer, or its message as the error (`status_err`).
#[macro_export]
macro_rules! rpc {
    ($client:expr, $method:ident, $req:expr) => {
        client($client)
            .await?
            .$method(authed($client, $req)?)
            .await
            .map_err(status_err)?
            .into_inner()
    };
}

/// `println!` that returns an error instead of panicking when standard output is closed.
#[macro_export]
macro_rules! say {
    () => {{
        use std::io::Write as _;
        writeln!(std::io::stdout())?;
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?;
    }};
}

/// `print!` that returns an error instead of panicking when standard output is closed.
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)?;
    }};
}

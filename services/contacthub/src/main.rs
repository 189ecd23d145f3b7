//! The `contacthub` command: see `contacthub --help`.

fn main() -> std::process::ExitCode {
    contacthub::main()
}

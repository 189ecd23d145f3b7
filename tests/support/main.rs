//! The `contacthub` command, built in the test package so tests can spawn it as a child.

fn main() -> std::process::ExitCode {
    contacthub::main()
}

//! The `kontosynk` command: sync, token, push, health and quickstart.
//!
//! Each subcommand lives in its own module under `src/cli/` and is registered with one line
//! in the `subcommands!` list of `cli/mod.rs`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

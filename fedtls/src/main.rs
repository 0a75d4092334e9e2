//! The `fedtls` command-line tool.

mod cli;

fn main() -> std::process::ExitCode {
    fedtls::output::exit_quietly_on_closed_stdout();
    cli::main()
}

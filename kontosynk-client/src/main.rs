//! The `kontosynk` command: sync, token, push, health and quickstart.

fn main() {
    eprintln!("error: no subcommands yet");
    std::process::exit(2);
}

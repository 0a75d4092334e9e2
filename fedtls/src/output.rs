//! Command-line output: when stdout is closed early (`fedtls lookup … | head`), the program
//! ends quietly with exit 0, as other command-line tools do, instead of panicking with
//! "failed printing to stdout: Broken pipe" and exit 101. Used by the `fedtls` and
//! `kontosynk` commands.

/// Installs a panic hook that turns the standard library's "failed printing to stdout:
/// Broken pipe" panic (what `println!` does when the reader went away) into a quiet exit 0;
/// every other panic goes to the previous hook unchanged. Call it first in `main`.
pub fn exit_quietly_on_closed_stdout() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        previous(info);
    }));
}

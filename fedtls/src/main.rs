//! The `fedtls` command-line tool.

mod cli;

fn main() -> std::process::ExitCode {
    fedtls::output::exit_quietly_on_closed_stdout();
    cli::main()
}

/// A 5,000-entity aggregate is a few hundred thousand small allocations made and freed in
/// one go; mimalloc takes about a tenth off `fedtls verify` against glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

//! The `aftershock` binary: the command line lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    aftershock::cli::main()
}

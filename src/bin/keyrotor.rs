//! The `keyrotor` command-line tool.

fn main() -> std::process::ExitCode {
    keyrotor::cli::main()
}

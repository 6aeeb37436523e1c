//! `arcd`: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    match arcd::cli::parse() {
        Ok(cli) => arcd::cli::main(cli),
        Err(code) => code,
    }
}

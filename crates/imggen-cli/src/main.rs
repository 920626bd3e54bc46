//! `imggen`: everything lives in the library, so the tests and the binary share it.

fn main() -> std::process::ExitCode {
    imggen_cli::main()
}

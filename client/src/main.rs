//! `thindesk`: the thin-terminal client. Everything is in the library.

fn main() -> std::process::ExitCode {
    thindesk_client::cli::main()
}

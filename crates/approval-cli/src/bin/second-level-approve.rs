//! Confirm Dual Control requests at level 2 with the level-2 service account.

fn main() -> std::process::ExitCode {
    approval_cli::approve_cmd::main(2, "second-level-approve")
}

//! Confirm Dual Control requests at level 1 with the level-1 service account.

fn main() -> std::process::ExitCode {
    approval_cli::approve_cmd::main(1, "first-level-approve")
}

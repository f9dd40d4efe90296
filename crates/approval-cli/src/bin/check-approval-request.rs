//! The mail watcher. Not built yet: it says so and exits 69 until its issue lands.

use std::process::ExitCode;

use approval_cli::{Common, run};
use approval_core::exit::Exit;
use clap::Parser;

/// Watch the approval mailbox and confirm forwarded Dual Control requests.
#[derive(Debug, Parser)]
#[command(name = "check-approval-request", version, after_help = approval_cli::common::after_help("  check-approval-request --once"))]
struct Args {
    /// One pass over the mailbox, then exit (for cron).
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run(&args.common, async |p| {
        let _ = args.once;
        p.note("check-approval-request: the mail watcher is not built yet in this version");
        Ok(Exit::Unavailable)
    })
}

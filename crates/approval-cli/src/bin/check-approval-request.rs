//! The mail watcher, and its by-hand checks (`--explain`, `--check-sender`, `--check-mailbox`).

use std::path::PathBuf;
use std::process::ExitCode;

use approval_cli::{Common, run};
use clap::Parser;

const EXAMPLES: &str = "  check-approval-request --log-file /var/log/pam-approval/pam-approval.log --pid-file /run/pam-approval/watcher.pid
  check-approval-request --once
  check-approval-request --explain forwarded.eml --json
  check-approval-request --check-sender bob@example.com --safe InfraSafe --level 1
  check-approval-request --check-mailbox";

/// Watch the approval mailbox and confirm the Dual Control requests approvers forward to it.
#[derive(Debug, Parser)]
#[command(name = "check-approval-request", version, after_help = approval_cli::common::after_help(EXAMPLES))]
struct Args {
    /// One pass over the mailbox, then exit (for cron).
    #[arg(long)]
    once: bool,
    /// Decide, but confirm nothing, send nothing, file nothing.
    #[arg(long, requires = "once")]
    dry_run: bool,
    /// Write this process's id here while it runs (for logrotate's SIGHUP); removed on exit.
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// Print what the watcher would read from this mail and its verdict; contacts no server.
    #[arg(long, value_name = "FILE.eml", conflicts_with_all = ["once", "check_sender"])]
    explain: Option<PathBuf>,
    /// Check whether this address may approve --safe at --level, and through which group.
    #[arg(long, value_name = "EMAIL", requires_all = ["safe", "level"], conflicts_with = "once")]
    check_sender: Option<String>,
    /// Prove the [mailbox] configuration: sign in, read the watched folder, look for the
    /// Processed and Refused folders; changes nothing, sends nothing.
    #[arg(long, conflicts_with_all = ["once", "explain", "check_sender"])]
    check_mailbox: bool,
    /// With --check-sender: the safe.
    #[arg(long, value_name = "SAFE")]
    safe: Option<String>,
    /// With --check-sender: the confirmation level (1 or 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    level: Option<u8>,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run(&args.common, async |p| {
        let loaded = approval_core::settings::load(args.common.config.as_deref())?;
        if args.check_mailbox {
            return approval_cli::check_mailbox::run(p, &loaded).await;
        }
        if let Some(file) = &args.explain {
            return approval_cli::explain::run(p, &loaded, file).await;
        }
        if let (Some(email), Some(safe), Some(level)) = (&args.check_sender, &args.safe, args.level)
        {
            return approval_cli::check_sender::run(p, &loaded, email, safe, level).await;
        }
        if args.once {
            return approval_cli::watch_once::run(
                p,
                &loaded,
                args.dry_run,
                args.pid_file.as_deref(),
            )
            .await;
        }
        approval_cli::watch::run(p, &loaded, args.pid_file.as_deref()).await
    })
}

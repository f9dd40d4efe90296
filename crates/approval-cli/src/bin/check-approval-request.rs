//! The mail watcher, and its by-hand checks (`--explain`, `--check-sender`, `--check-mailbox`, `--check-site`).

use std::process::ExitCode;

use approval_cli::run;
use clap::Parser;

fn main() -> ExitCode {
    let args = approval_cli::cli::WatcherArgs::parse();
    run(&args.common, async |p| {
        if args.check_site {
            let loaded = approval_core::settings::load(args.common.config.as_deref());
            // With --check-sender, that approver is resolved end to end as one item of the
            // report (the same code as --check-sender alone).
            let approver = match (&args.check_sender, &args.safe, args.level) {
                (Some(address), Some(safe), Some(level)) => {
                    Some(approval_core::site_check::Approver {
                        address: address.clone(),
                        safe: safe.clone(),
                        level,
                    })
                }
                _ => None,
            };
            let opts = approval_core::site_check::Options {
                mails: args.mails,
                approver,
            };
            return approval_cli::check_site::run(
                p,
                loaded.as_ref().map_err(|e| e.to_string()),
                opts,
            )
            .await;
        }
        let loaded = approval_core::settings::load(args.common.config.as_deref())?;
        if args.status {
            return approval_cli::status::run(p, &loaded, args.warning_secs, args.critical_secs)
                .await;
        }
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

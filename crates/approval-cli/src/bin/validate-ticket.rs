//! Validate CyberArk tickets against ServiceNow or BMC Remedy, as the watcher does.

use std::process::ExitCode;

use approval_cli::{run, validate_ticket};
use approval_core::exit::Exit;
use approval_core::ticketing::validate;
use clap::Parser;

fn main() -> ExitCode {
    let args = approval_cli::cli::ValidateTicketArgs::parse();
    run(&args.common, async |p| {
        if args.hash_bypass_code {
            let hash = validate_ticket::hash_bypass_code(std::io::stdin().lock())?;
            if p.json() {
                p.json_line(&serde_json::json!({ "bypass_code_hash": hash }))?;
            } else {
                p.line(&hash)?;
                p.note("add this line to ticketing.bypass_codes; the code itself is not stored");
            }
            return Ok(Exit::Ok);
        }
        if args.check {
            let loaded = approval_core::settings::load(args.common.config.as_deref());
            let loaded = loaded.as_ref().map_err(|e| e.to_string());
            let report = match loaded {
                Ok(l) => approval_core::site_check::run_ticketing(l).await,
                Err(message) => approval_core::site_check::config_failed(&message),
            };
            return approval_cli::check_site::report(p, &report);
        }
        let from_stdin = args.tickets.len() == 1 && args.tickets[0] == "-";
        let ids = approval_core::approve::collect_ids(&args.tickets, std::io::stdin().lock())?;
        if ids.is_empty() {
            p.note("no ticket ids given");
            return Ok(Exit::DataErr);
        }
        let loaded = approval_core::settings::load(args.common.config.as_deref())?;
        let code = validate::validate_batch(
            loaded.ticketing()?,
            loaded.config.vault.as_ref(),
            &ids,
            args.user.as_deref(),
            args.at,
            |v| {
                let _ = if p.json() {
                    p.json_line(v)
                } else if from_stdin {
                    p.line(&validate_ticket::line(v))
                } else {
                    p.line(&validate_ticket::detailed(v))
                };
            },
        )
        .await?;
        Ok(code)
    })
}

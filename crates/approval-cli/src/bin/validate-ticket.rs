//! Validate CyberArk tickets against ServiceNow or BMC Remedy, as the watcher does.

use std::process::ExitCode;

use approval_cli::{Common, run, validate_ticket};
use approval_core::exit::Exit;
use approval_core::ticketing::validate;
use chrono::{DateTime, Utc};
use clap::Parser;

const EXAMPLES: &str = "  validate-ticket --user alice CHG0030001
  validate-ticket --user 'CORP\\alice' --at 2026-05-01T22:30:00Z --json CRQ000000000201
  printf 'INC0010001\\nCHG0030001\\n' | validate-ticket --user alice -
  validate-ticket --hash-bypass-code < /dev/tty    # type the code; prints its Argon2id hash";

/// Check a ticket as CyberArk's ticketing integration does: failsafe bypass code, format, exactly
/// one record, state, change approval, operation window, requester. Prints each validation's
/// verdict (one line per ticket with `-`; JSON Lines with --json). Exit 0 when every ticket is
/// valid, 1 when one is not, another code when the ticketing system cannot be asked.
#[derive(Debug, Parser)]
#[command(name = "validate-ticket", version, after_help = approval_cli::common::after_help(EXAMPLES))]
struct Args {
    /// Ticket ids, or `-` to read them from stdin, one per line (use stdin for bypass codes:
    /// arguments are visible to other users of the host).
    #[arg(
        value_name = "TICKET",
        required_unless_present = "hash_bypass_code",
        conflicts_with = "hash_bypass_code"
    )]
    tickets: Vec<String>,
    /// The CyberArk requester the ticket must belong to (`DOMAIN\` is ignored, any case).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Check the operation window at this time instead of now (RFC 3339 with a zone, e.g.
    /// 2026-05-01T22:30:00Z or 2026-05-02T00:30:00+02:00).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    at: Option<DateTime<Utc>>,
    /// Read a bypass code from stdin (first line) and print its hash for
    /// `ticketing.bypass_codes`; the code itself is never printed or logged.
    #[arg(long)]
    hash_bypass_code: bool,
    #[command(flatten)]
    common: Common,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time with a zone ({e})"))
}

fn main() -> ExitCode {
    let args = Args::parse();
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

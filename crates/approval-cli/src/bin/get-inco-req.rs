//! Show Dual Control requests: status, requester, level, expiry, and who confirmed and when.

use std::process::ExitCode;

use approval_cli::{Common, render, run};
use approval_core::approve;
use approval_core::exit::Exit;
use clap::Parser;

const EXAMPLES: &str = "  get-inco-req InfraSafe_12
  get-inco-req --json InfraSafe_12 | jq '.confirmed_by'
  get-inco-req --waiting --level 1 --json | jq -r .request_id | first-level-approve -";

/// Show Dual Control requests as PVWA sees them: status, requester, level, expiry, access window,
/// ticket, and every confirmer that acted (name, members, reason, time in local time and UTC).
#[derive(Debug, Parser)]
#[command(name = "get-inco-req", version, after_help = approval_cli::common::after_help(EXAMPLES))]
struct Args {
    /// Request ids (`<Safe>_<number>`), or `-` to read them from stdin.
    #[arg(
        value_name = "ID",
        required_unless_present = "waiting",
        conflicts_with = "waiting"
    )]
    ids: Vec<String>,
    /// List the incoming requests still waiting for confirmation.
    #[arg(long)]
    waiting: bool,
    /// With --waiting: list as the level's service account, only requests waiting at that level.
    #[arg(long, requires = "waiting", value_parser = clap::value_parser!(u8).range(1..=2))]
    level: Option<u8>,
    /// With --waiting: include expired requests.
    #[arg(long, requires = "waiting")]
    expired: bool,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run(&args.common, async |p| {
        let loaded = approval_core::settings::load(args.common.config.as_deref())?;
        if args.waiting {
            let list = approve::waiting(&loaded, args.expired, args.level).await?;
            if list.is_empty() {
                p.note("no waiting requests");
            }
            for r in &list {
                if p.json() {
                    p.json_line(r)?
                } else {
                    p.line(&render::request(r))?
                }
            }
            return Ok(Exit::Ok);
        }
        let ids = approve::collect_ids(&args.ids, std::io::stdin().lock())?;
        let code = approve::lookup(&loaded, &ids, |id, r, _| {
            let _ = match (r, p.json()) {
                (Ok(v), true) => p.json_line(&v),
                (Ok(v), false) => p.line(&render::request(&v)),
                (Err(e), true) => p.json_line(&serde_json::json!({"request_id": id, "error": e})),
                (Err(e), false) => p.line(&format!(
                    "Request {id}: {}{}",
                    e.message,
                    e.hint.map(|h| format!("\n  hint: {h}")).unwrap_or_default()
                )),
            };
        })
        .await?;
        Ok(code)
    })
}

//! Show Dual Control requests: status, requester, level, expiry, and who confirmed and when.

use std::process::ExitCode;

use approval_cli::{render, run};
use approval_core::approve;
use approval_core::exit::Exit;
use clap::Parser;

fn main() -> ExitCode {
    let args = approval_cli::cli::GetIncoReqArgs::parse();
    run(&args.common, async |p| {
        let loaded = approval_core::settings::load(args.common.config.as_deref())?;
        if args.waiting {
            let (list, asked) = approve::waiting(&loaded, args.expired, args.level).await?;
            if list.is_empty() {
                p.note(&format!(
                    "no waiting requests that {} may confirm",
                    asked.join(" or ")
                ));
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

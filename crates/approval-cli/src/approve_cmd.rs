//! The shared command line of `first-level-approve` and `second-level-approve`.

use std::process::ExitCode;

use approval_core::approve;
use approval_core::exit::Exit;
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::{Common, render, run};

#[derive(Debug, Parser)]
pub struct ApproveArgs {
    /// Request ids (`<Safe>_<number>`), or `-` to read ids one per line from stdin.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
    /// Record "Approved on behalf of EMAIL" (with --reject: "Rejected on behalf of EMAIL") as
    /// the reason.
    #[arg(long, value_name = "EMAIL")]
    pub on_behalf_of: Option<String>,
    /// The reason recorded with the confirmation (or the rejection).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Reject the requests instead of confirming them (PVWA's Reject): a rejected request
    /// cannot be used, by anyone. Same account, ids, --dry-run and --json as a confirm.
    #[arg(long)]
    pub reject: bool,
    /// Show what would be confirmed (or rejected), change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: Common,
}

pub const EXAMPLES: &str = "  %TOOL% InfraSafe_12 --on-behalf-of alice@example.com
  %TOOL% --dry-run InfraSafe_12 InfraSafe_13
  %TOOL% --reject InfraSafe_14 --on-behalf-of alice@example.com --reason 'no change ticket'
  get-inco-req --waiting --json | jq -r .request_id | %TOOL% - --reason 'change 4711'";

/// The command line of the tool that confirms at `level`.
pub fn command(level: u8, tool: &'static str) -> clap::Command {
    let about = format!(
        "Confirm Dual Control requests at level {level} with the level-{level} service account \
         ([accounts.level{level}]). One sign-in for all ids; a result line per id (JSON Lines with --json). \
         Each request is read first: one waiting at the other level is not confirmed (exit 65); \
         after a confirm, the line says where PVWA shows the request now. \
         When a confirm fails, shows who confirmed the request and when. \
         With --reject, rejects the requests instead (the same checks and output)."
    );
    ApproveArgs::command()
        .name(tool)
        .bin_name(tool)
        .about(about)
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(crate::common::after_help(&EXAMPLES.replace("%TOOL%", tool)))
}

/// Parse flags and run the batch for `level`.
pub fn main(level: u8, tool: &'static str) -> ExitCode {
    let matches = command(level, tool).get_matches();
    let args = match ApproveArgs::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    run(&args.common, async |p| {
        let (reason, act) = if args.reject {
            (
                approve::reject_reason_text(
                    args.reason.as_deref(),
                    args.on_behalf_of.as_deref(),
                    tool,
                ),
                approve::Act::Reject,
            )
        } else {
            (
                approve::reason_text(args.reason.as_deref(), args.on_behalf_of.as_deref(), tool),
                approve::Act::Confirm,
            )
        };
        let reason = reason.map_err(approval_core::error::Error::Usage)?;
        let ids = approve::collect_ids(&args.ids, std::io::stdin().lock())?;
        if ids.is_empty() {
            p.note("no request ids given");
            return Ok(Exit::DataErr);
        }
        let loaded = approval_core::settings::load(args.common.config.as_deref())?;
        let code = approve::act_batch(&loaded, level, &ids, &reason, args.dry_run, act, |r| {
            let _ = if p.json() {
                p.json_line(r)
            } else {
                p.line(&render::approve(r))
            };
        })
        .await?;
        Ok(code)
    })
}

//! `check-approval-request --once [--dry-run]`: one pass over the approval mailbox (unread mail
//! plus every mail the journal still has open), each mail processed end to end. One line per
//! mail on stdout (`--json`: one object per line, the shape of `pipeline::Processed`).
//!
//! Exit: 0 when every mail was answered (approved or refused) or needed nothing; otherwise the
//! worst class of the faults that left mails pending (69 unavailable, 75 temporary, …); 75 when
//! another watcher holds the state directory.

use std::path::Path;

use anyhow::Context;
use approval_core::exit::Exit;
use approval_core::pipeline::{Pipeline, Processed};
use approval_core::runtime::{InstanceLock, PidFile};
use approval_core::settings::Loaded;

use crate::Printer;

pub async fn run(
    p: &Printer,
    loaded: &Loaded,
    dry_run: bool,
    pid_file: Option<&Path>,
) -> anyhow::Result<Exit> {
    approval_core::pipeline::watch_loop::check_trusted_paths(loaded)?;
    // A dry run writes no state (nor the pid file), so it may run beside a watcher.
    let _lock = if dry_run {
        None
    } else {
        Some(InstanceLock::acquire(
            &loaded.config.watcher.state_dir(loaded)?,
        )?)
    };
    // Written only once the lock is held: a refused second instance leaves the first's alone.
    let _pid = match pid_file {
        Some(path) if !dry_run => Some(
            PidFile::write(path)
                .with_context(|| format!("cannot write the pid file {}", path.display()))?,
        ),
        _ => None,
    };
    let w = Pipeline::new(loaded, dry_run).await?;
    // On a PostgreSQL journal the pass runs under the lease (another active host: nothing done).
    let result = approval_core::pipeline::ha::once(&w).await;
    w.close().await;
    let Some((out, exit)) = result? else {
        return Ok(Exit::Ok);
    };
    for r in &out {
        if p.json() {
            p.json_line(r)?;
        } else {
            p.line(&render(r))?;
        }
    }
    Ok(exit)
}

/// One line for people.
pub fn render(r: &Processed) -> String {
    let id = r.request_id.as_deref().unwrap_or("-");
    let mid = r.message_id.as_deref().unwrap_or("-");
    match (&r.pending, r.outcome.as_deref()) {
        (Some(e), _) => format!("PENDING  {id}  {mid}  attempt {}: {e}", r.attempts),
        (None, Some(o)) => format!(
            "{}  {id}  {mid}{}",
            o.to_uppercase(),
            r.reason_code
                .as_deref()
                .map(|c| format!("  {c}: {}", r.reason.as_deref().unwrap_or("")))
                .unwrap_or_default()
        ),
        (None, None) => format!("UNKNOWN  {id}  {mid}"),
    }
}

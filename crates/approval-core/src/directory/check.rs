//! Where the approver groups of a safe come from: the static table, or PVWA's members of the
//! safe read with an open session. The watcher and [`crate::check_sender`] use these.

use super::approvers::{self, Approvers};
use super::config::Settings;
use crate::pvwa::{PvwaError, Session};

/// Approver groups from the static table.
pub fn static_approvers(s: &Settings, safe: &str, level: u8) -> Approvers {
    approvers::from_static(&s.static_rules, safe, level, &s.group_names)
}

/// Approver groups from PVWA's members of the safe, read with an open session.
pub async fn pvwa_approvers(
    session: &Session,
    s: &Settings,
    safe: &str,
    level: u8,
) -> Result<Approvers, PvwaError> {
    let members = session.safe_members(safe).await?;
    let now = chrono::Utc::now().timestamp();
    Ok(approvers::from_safe_members(
        &members,
        level,
        now,
        &s.group_names,
    ))
}

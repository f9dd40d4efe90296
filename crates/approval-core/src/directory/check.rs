//! "May this sender approve this safe at this level?" end to end from the configuration: the
//! approver groups (PVWA safe members or the static table), the bind password, the directory.
//! Behind `check-approval-request --check-sender`; the watcher uses the same pieces.

use super::approvers::{self, Approvers};
use super::config::{ApproverMode, Settings};
use super::{LdapDirectory, Verdict, authorize};
use crate::config::{AccountRole, Loaded};
use crate::error::{Error, Result};
use crate::pvwa::{Pvwa, Session};
use crate::secret::Resolver;

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
) -> Result<Approvers> {
    let members = session.safe_members(safe).await?;
    let now = chrono::Utc::now().timestamp();
    Ok(approvers::from_safe_members(
        &members,
        level,
        now,
        &s.group_names,
    ))
}

/// The approver groups of `safe` at `level` under the configured mode (logs on to PVWA with the
/// lookup account in mode `safe-members`).
pub async fn approvers_for(
    loaded: &Loaded,
    s: &Settings,
    resolver: &Resolver,
    safe: &str,
    level: u8,
) -> Result<Approvers> {
    match s.approvers {
        ApproverMode::Static => Ok(static_approvers(s, safe, level)),
        ApproverMode::SafeMembers => {
            let pvwa = Pvwa::new(loaded.pvwa()?)?;
            let (user, pw) =
                crate::approve::credentials(loaded, resolver, AccountRole::Lookup).await?;
            pvwa.with_session(&user, &pw, async |session: &Session| {
                pvwa_approvers(session, s, safe, level).await
            })
            .await
        }
    }
}

/// Check one sender against one safe and level. `Ok` carries the verdict (approve or refuse
/// with a reason); any fault of PVWA, the directory, the configuration or a secret is an `Err`,
/// which means no approval.
pub async fn check_sender(
    loaded: &Loaded,
    address: &str,
    safe: &str,
    level: u8,
) -> Result<Verdict> {
    if !matches!(level, 1 | 2) {
        return Err(Error::Usage("the level must be 1 or 2".into()));
    }
    if safe.trim().is_empty() || safe.chars().any(char::is_control) {
        return Err(Error::Usage(
            "the safe name is empty or has control characters".into(),
        ));
    }
    let s = loaded.directory()?;
    let resolver = Resolver::new(loaded.config.vault.as_ref())?;
    let password = resolver.resolve(&s.bind_password).await;
    let approvers = match password {
        Ok(_) => approvers_for(loaded, &s, &resolver, safe, level).await,
        Err(_) => Ok(Approvers::default()),
    };
    resolver.close().await;
    let password = password?;
    let approvers = approvers?;
    let dir = LdapDirectory::new(s, password)?;
    let verdict = authorize(&dir, address, safe, level, approvers).await;
    dir.close().await;
    Ok(verdict?)
}

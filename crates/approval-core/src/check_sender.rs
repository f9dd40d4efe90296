//! "May this sender approve this safe at this level?" end to end from the configuration: the
//! approver groups (PVWA safe members or the static table), the bind password, the directory.
//! Behind `check-approval-request --check-sender`. The look-up itself is the watcher's
//! ([`approver_verdict`]), so that the two cannot disagree.

use crate::directory::check::{SafeApprovers, approver_verdict, read_safe_approvers};
use crate::directory::config::{ApproverMode, Settings};
use crate::directory::{AnyDirectory, Verdict};
use crate::error::{Error, Result};
use crate::pvwa::sessions::Sessions;
use crate::pvwa::{AccountRole, Pvwa, Session};
use crate::secret::Resolver;
use crate::settings::Loaded;

/// The members of `safe` and their vault group records, read with the lookup account in mode
/// `safe-members` (`None` in mode `static`, which reads nothing from PVWA).
async fn safe_members_for(
    loaded: &Loaded,
    s: &Settings,
    resolver: &Resolver,
    safe: &str,
) -> Result<Option<SafeApprovers>> {
    match s.approvers {
        ApproverMode::Static => Ok(None),
        ApproverMode::SafeMembers => {
            let pvwa = Pvwa::new(loaded.pvwa()?)?;
            let role = AccountRole::Lookup;
            let creds = loaded.credentials(resolver, role).await?;
            let cache = crate::directory::cache::TtlCache::new(std::time::Duration::ZERO);
            let roles = crate::directory::cache::TtlCache::new(std::time::Duration::ZERO);
            let rule = &s.group_names;
            // The watcher's session helper: a 401 logs on again once, logoff on every path.
            let read = Sessions::new(pvwa, std::collections::HashMap::from([(role, creds)]))
                .scoped(async |s: &Sessions| {
                    s.run(role, async |session: &Session| {
                        let mut read = read_safe_approvers(session, safe, &cache).await?;
                        crate::directory::check::resolve_roles(session, &mut read, rule, &roles)
                            .await?;
                        Ok(read)
                    })
                    .await
                })
                .await?;
            Ok(Some(read))
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
    let password = crate::directory::read_credentials(&s, &resolver).await;
    let read = match password {
        Ok(_) => safe_members_for(loaded, &s, &resolver, safe).await,
        Err(_) => Ok(None),
    };
    resolver.close().await;
    let password = password?;
    let read = read?;
    let dir = AnyDirectory::new(s, password)?;
    // The watcher's own approver look-up (`directory::check::approver_verdict`).
    let verdict = approver_verdict(
        &dir,
        dir.settings(),
        address,
        safe,
        level,
        read.as_ref(),
        chrono::Utc::now().timestamp(),
    )
    .await;
    dir.close().await;
    Ok(verdict?)
}

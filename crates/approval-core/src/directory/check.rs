//! Where the approver groups of a safe come from: the static table, or PVWA's members of the
//! safe and the vault's group record of each group member, read with an open session. The
//! watcher and [`crate::check_sender`] use these.

use super::approvers::{self, Approvers, GroupRecord, GroupRecords, record_key};
use super::cache::TtlCache;
use super::config::Settings;
use crate::pvwa::{PvwaError, SafeMember, Session};

/// Approver groups from the static table.
pub fn static_approvers(s: &Settings, safe: &str, level: u8) -> Approvers {
    approvers::from_static(&s.static_rules, safe, level, &s.group_names)
}

/// A safe's members as PVWA lists them, and the vault group record of every group member that
/// may confirm at some level. Read once per mail ([`read_safe_approvers`]) and passed along;
/// [`SafeApprovers::at`] gives the approver groups of a level.
#[derive(Debug, Clone, Default)]
pub struct SafeApprovers {
    pub members: Vec<SafeMember>,
    pub records: GroupRecords,
}

impl SafeApprovers {
    /// The approver groups at `level` (1 or 2) at `now_unix`, names mapped by `s.group_names`.
    pub fn at(&self, s: &Settings, level: u8, now_unix: i64) -> Approvers {
        approvers::from_safe_members(
            &self.members,
            level,
            now_unix,
            &s.group_names,
            &self.records,
        )
    }
}

/// Read the members of `safe` and the vault group record (`GET /API/UserGroups?search=`) of each
/// group member that may confirm at level 1 or 2, with `cache` (the directory look-up TTL) in
/// front of the record look-ups. A record PVWA refuses for want of the "Audit users" permission
/// is an `Err` ([`PvwaError::NoPermission`]): a configuration fault, no approval. Any other
/// record that cannot be read is kept as [`GroupRecord::Unreadable`], and the member is skipped
/// with that reason.
pub async fn read_safe_approvers(
    session: &Session,
    safe: &str,
    cache: &TtlCache<GroupRecord>,
) -> Result<SafeApprovers, PvwaError> {
    let members = session.safe_members(safe).await?;
    let mut records = GroupRecords::new();
    for m in &members {
        let approves = m.permissions.requests_authorization_level1
            || m.permissions.requests_authorization_level2;
        if !m.is_group() || m.is_predefined_user || !approves {
            continue;
        }
        let key = record_key(&m.member_name);
        if records.contains_key(&key) || m.member_name.trim().is_empty() {
            continue;
        }
        if let Some(r) = cache.get(&key) {
            records.insert(key, r);
            continue;
        }
        let record = match session.user_groups(m.member_name.trim()).await {
            Ok(found) => record_of(m.member_name.trim(), &found),
            Err(e @ (PvwaError::NoPermission { .. } | PvwaError::SessionInvalid { .. })) => {
                return Err(e);
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => GroupRecord::Unreadable(e.to_string()),
        };
        if !matches!(record, GroupRecord::Unreadable(_)) {
            cache.put(key.clone(), record.clone());
        }
        records.insert(key, record);
    }
    Ok(SafeApprovers { members, records })
}

/// The record named exactly `name` among PVWA's search results (the search matches parts of
/// names).
fn record_of(name: &str, found: &[crate::pvwa::VaultGroup]) -> GroupRecord {
    let same: Vec<&crate::pvwa::VaultGroup> = found
        .iter()
        .filter(|g| g.group_name.trim().eq_ignore_ascii_case(name))
        .collect();
    match same.as_slice() {
        [] => GroupRecord::Missing,
        [g] if g.is_directory() => GroupRecord::Directory {
            name: g.group_name.trim().to_string(),
            directory: g.directory.clone().filter(|d| !d.trim().is_empty()),
            dn: g.dn.clone().filter(|d| !d.trim().is_empty()),
        },
        [g] if g.group_type.eq_ignore_ascii_case("Vault") => GroupRecord::Vault,
        [g] => GroupRecord::Unreadable(format!(
            "its record has groupType \"{}\", neither Directory nor Vault",
            crate::text::printable(&g.group_type)
        )),
        many => GroupRecord::Unreadable(format!(
            "{} vault group records answer to the name",
            many.len()
        )),
    }
}

/// Approver groups from PVWA's members of the safe, read with an open session.
pub async fn pvwa_approvers(
    session: &Session,
    s: &Settings,
    safe: &str,
    level: u8,
    cache: &TtlCache<GroupRecord>,
) -> Result<Approvers, PvwaError> {
    let a = read_safe_approvers(session, safe, cache).await?;
    Ok(a.at(s, level, chrono::Utc::now().timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pvwa::VaultGroup;

    fn g(name: &str, kind: &str, dn: Option<&str>) -> VaultGroup {
        VaultGroup {
            group_name: name.into(),
            group_type: kind.into(),
            directory: Some("corp.example".into()),
            dn: dn.map(str::to_string),
            ..VaultGroup::default()
        }
    }

    #[test]
    fn the_record_named_exactly_decides() {
        let found = vec![
            g("DB_PAMapprover_old", "Directory", None),
            g("DB_PAMapprover", "Vault", None),
        ];
        assert_eq!(record_of("db_pamapprover", &found), GroupRecord::Vault);
        let found = vec![g("DB_PAMapprover", "Directory", Some("cn=x,dc=y"))];
        assert!(matches!(
            record_of("DB_PAMapprover", &found),
            GroupRecord::Directory { dn: Some(_), .. }
        ));
        assert_eq!(record_of("Other", &found), GroupRecord::Missing);
        let two = vec![g("A", "Directory", None), g("A", "Vault", None)];
        assert!(matches!(record_of("A", &two), GroupRecord::Unreadable(_)));
        let odd = vec![g("A", "Role", None)];
        assert!(matches!(record_of("A", &odd), GroupRecord::Unreadable(_)));
    }
}

//! Where the approver groups of a safe come from: the static table, or PVWA's members of the
//! safe and the vault's group record of each group member, read with an open session.
//!
//! The one way to the approver groups of a safe, for every caller (the watcher's need-to-know
//! check and decision, its portal-rights check, `--check-sender`, the site check):
//!
//! 1. in mode `safe-members`, read the safe once with [`read_safe_approvers`] (lookup
//!    account's session, the directory look-up cache in front of the group records);
//! 2. ask [`approvers_at`] for each level, passing what was read (`None` in mode `static`);
//! 3. or, for "may this sender approve this safe at this level?", ask [`approver_verdict`], which
//!    is steps 2 and the directory's answer together: the one approver look-up of the watcher
//!    and of `--check-sender`, so that the two cannot disagree.

use super::approvers::{
    self, Approvers, GroupRecord, GroupRecords, RoleGroup, RoleRecord, RoleRecords, RoleUser,
    record_key,
};
use super::cache::TtlCache;
use super::config::{ApproverMode, GroupNameRule, RolesFrom, Settings};
use super::{Directory, DirectoryError, Verdict};
use crate::pvwa::{PvwaError, SafeMember, Session};

/// Approver groups from the static table.
pub fn static_approvers(s: &Settings, safe: &str, level: u8) -> Approvers {
    approvers::from_static(&s.static_rules, safe, level, &s.group_names)
}

/// The approver groups of `safe` at `level` (1 or 2) under the configured mode
/// (`s.approvers`), at `now_unix`:
///
/// - `static`: the rows of the static table for `safe` and `level`; `read` is ignored.
/// - `safe-members`: the group members of `read` (the safe's members and their vault group
///   records, from [`read_safe_approvers`] for this same `safe`) with the level's
///   authorisation permission, mapped by [`SafeApprovers::at`]. Without `read`, or with the
///   members of another safe, none (fail closed), with the reason in `skipped`.
///
/// Empty `groups` means nobody approves the safe at that level through this tool; `skipped`
/// says which members were not used and why (for the PAM team: `no_approver_groups`).
pub fn approvers_at(
    s: &Settings,
    safe: &str,
    read: Option<&SafeApprovers>,
    level: u8,
    now_unix: i64,
) -> Approvers {
    match s.approvers {
        ApproverMode::Static => static_approvers(s, safe, level),
        ApproverMode::SafeMembers => match read {
            Some(r) if r.safe == safe => r.at(s, level, now_unix),
            other => Approvers {
                groups: Vec::new(),
                roles: Vec::new(),
                skipped: vec![approvers::Skipped {
                    member: crate::text::printable(safe),
                    reason: if other.is_some() {
                        "the members read are those of another safe".into()
                    } else {
                        "the safe's members were not read".into()
                    },
                }],
            },
        },
    }
}

/// May `address` approve `safe` at `level` (1 or 2) at `now_unix`: the approver groups under
/// the configured mode ([`approvers_at`], with `read` from [`read_safe_approvers`] in mode
/// `safe-members`) and the directory's answer ([`super::authorize`]). The verdict keeps the
/// approver groups it was given (`approvers`: empty when nobody approves the safe there). A
/// fault of the directory is an `Err`: no approval.
pub async fn approver_verdict<D: Directory>(
    dir: &D,
    s: &Settings,
    address: &str,
    safe: &str,
    level: u8,
    read: Option<&SafeApprovers>,
    now_unix: i64,
) -> Result<Verdict, DirectoryError> {
    let groups = approvers_at(s, safe, read, level, now_unix);
    super::authorize(dir, address, safe, level, groups).await
}

/// A safe's members as PVWA lists them, and the vault group record of every group member that
/// may confirm at some level. Read once per mail ([`read_safe_approvers`]) and passed along;
/// [`SafeApprovers::at`] gives the approver groups of a level.
#[derive(Debug, Clone, Default)]
pub struct SafeApprovers {
    /// The safe these are the members of, as the caller named it.
    pub safe: String,
    pub members: Vec<SafeMember>,
    pub records: GroupRecords,
    /// What CyberArk Identity says of the Role members (`roles_from = "identity"`; read by
    /// [`resolve_roles`]).
    pub roles: RoleRecords,
}

impl SafeApprovers {
    /// The approver groups at `level` (1 or 2) at `now_unix` as the vault grants them (the
    /// safe's members, whatever `s.approvers` says), names mapped by `s.group_names`. Callers
    /// deciding an approval use [`approvers_at`], which follows the configured mode; the
    /// portal-rights check uses this (PVWA's own rights).
    pub fn at(&self, s: &Settings, level: u8, now_unix: i64) -> Approvers {
        approvers::from_safe_members(
            &self.members,
            level,
            now_unix,
            &s.group_names,
            &self.records,
            &self.roles,
        )
    }
}

/// How a Role safe member (a CyberArk Identity role) with an authorisation right is resolved
/// ([`SafeApprovers::role_members`]), for the site check. Names are printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleResolution {
    /// By the explicit `[directory.group_names.roles]` table: the group's DN.
    Table(String),
    /// Not listed and `roles_from` is not `identity`: nobody approves through it.
    Skipped,
    /// Through CyberArk Identity: how many users and groups hold it, members not used.
    Identity {
        users: usize,
        groups: usize,
        notes: Vec<String>,
    },
    /// Identity has no role of this name.
    Missing,
    /// Identity's answer cannot be used (several roles of the name, too many members).
    Unusable(String),
    /// `roles_from = "identity"`, but the role was not read.
    NotRead,
}

impl SafeApprovers {
    /// Each Role member with an authorisation right at level 1 or 2, as printable name, and how
    /// it is resolved under `rule`.
    pub fn role_members(&self, rule: &GroupNameRule) -> Vec<(String, RoleResolution)> {
        let p = crate::text::printable;
        self.members
            .iter()
            .filter(|m| {
                m.member_type.trim().eq_ignore_ascii_case("role")
                    && (m.permissions.requests_authorization_level1
                        || m.permissions.requests_authorization_level2)
            })
            .map(|m| {
                let how = if let Some(dn) = rule.role_group(&m.member_name) {
                    RoleResolution::Table(p(dn))
                } else if rule.roles_from != RolesFrom::Identity {
                    RoleResolution::Skipped
                } else {
                    match self.roles.get(&record_key(&m.member_name)) {
                        Some(RoleRecord::Resolved {
                            users,
                            groups,
                            notes,
                            ..
                        }) => RoleResolution::Identity {
                            users: users.len(),
                            groups: groups.len(),
                            notes: notes.iter().map(|n| p(n)).collect(),
                        },
                        Some(RoleRecord::Missing) => RoleResolution::Missing,
                        Some(RoleRecord::Unusable(why)) => RoleResolution::Unusable(p(why)),
                        None => RoleResolution::NotRead,
                    }
                };
                (p(&m.member_name), how)
            })
            .collect()
    }
}

/// Nested roles followed below a Role safe member's role (deeper ones are noted, not used).
pub const MAX_ROLE_DEPTH: usize = 4;
/// Most users of one role (with its nested roles) read; a larger role is refused as unusable.
pub const MAX_ROLE_USERS: usize = 2000;
/// Most roles read for one Role safe member (itself and nested ones); more is unusable.
pub const MAX_ROLES_READ: usize = 100;
/// Most notes kept of members not used.
const MAX_NOTES: usize = 20;

/// Step 1b, on Privilege Cloud with `[directory.group_names] roles_from = "identity"`: read
/// from CyberArk Identity, with the session's platform token, the holders of every Role member
/// of `read` that may confirm at level 1 or 2 and is not mapped by `rule.roles`, into
/// `read.roles` ([`RoleRecord`]; `cache`, the directory look-up TTL, in front). A role
/// Identity does not have is [`RoleRecord::Missing`] (its member approves nothing, and says
/// so); any fault of Identity is an `Err` (no approval; the watcher tries again later).
pub async fn resolve_roles(
    session: &Session,
    read: &mut SafeApprovers,
    rule: &GroupNameRule,
    cache: &TtlCache<RoleRecord>,
) -> Result<(), PvwaError> {
    if rule.roles_from != RolesFrom::Identity {
        return Ok(());
    }
    for m in &read.members {
        let approves = m.permissions.requests_authorization_level1
            || m.permissions.requests_authorization_level2;
        if !m.member_type.trim().eq_ignore_ascii_case("role")
            || !approves
            || rule.role_group(&m.member_name).is_some()
            || m.member_name.trim().is_empty()
        {
            continue;
        }
        let key = record_key(&m.member_name);
        if read.roles.contains_key(&key) {
            continue;
        }
        let record = match cache.get(&key) {
            Some(r) => r,
            None => {
                let r = read_role(session, m.member_name.trim()).await?;
                cache.put(key.clone(), r.clone());
                r
            }
        };
        read.roles.insert(key, record);
    }
    Ok(())
}

/// One role's holders: its users (with their e-mail addresses) and groups, through nested
/// roles down to [`MAX_ROLE_DEPTH`], each role once (a cycle ends there).
async fn read_role(session: &Session, name: &str) -> Result<RoleRecord, PvwaError> {
    use crate::pvwa::roles::{MemberKind, USER_BATCH};
    let found = session.identity_roles_named(name).await?;
    let role = match found.as_slice() {
        [] => return Ok(RoleRecord::Missing),
        [one] => one.clone(),
        many => {
            return Ok(RoleRecord::Unusable(format!(
                "{} CyberArk Identity roles answer to the name",
                many.len()
            )));
        }
    };
    let mut seen: Vec<String> = vec![role.id.to_ascii_lowercase()];
    let mut queue = std::collections::VecDeque::from([(role.clone(), vec![role.name.clone()])]);
    let mut user_ids: Vec<(String, Vec<String>)> = Vec::new();
    let mut groups: Vec<RoleGroup> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    while let Some((r, via)) = queue.pop_front() {
        for m in session.identity_role_members(&r.id, &r.name).await? {
            let shown = crate::text::printable(&m.name);
            match m.kind {
                MemberKind::User => {
                    if !user_ids.iter().any(|(id, _)| id.eq_ignore_ascii_case(&m.id)) {
                        user_ids.push((m.id, via.clone()));
                    }
                }
                MemberKind::Group => {
                    if !groups.iter().any(|g| g.name.eq_ignore_ascii_case(&m.name)) {
                        groups.push(RoleGroup {
                            name: m.name,
                            via: via.clone(),
                        });
                    }
                }
                MemberKind::Role if seen.contains(&m.id.to_ascii_lowercase()) => {}
                MemberKind::Role if via.len() > MAX_ROLE_DEPTH => notes.push(format!(
                    "role \"{shown}\" (in {}) nests deeper than {MAX_ROLE_DEPTH} roles: not followed",
                    via.join(" -> ")
                )),
                MemberKind::Role if seen.len() >= MAX_ROLES_READ => {
                    return Ok(RoleRecord::Unusable(format!(
                        "more than {MAX_ROLES_READ} roles nest in it"
                    )));
                }
                MemberKind::Role => {
                    seen.push(m.id.to_ascii_lowercase());
                    let mut v = via.clone();
                    v.push(m.name.clone());
                    queue.push_back((
                        crate::pvwa::roles::IdentityRole {
                            id: m.id,
                            name: m.name,
                        },
                        v,
                    ));
                }
                MemberKind::Other(kind) => {
                    notes.push(format!("member \"{shown}\" of type {kind}: not used"))
                }
            }
        }
        notes.truncate(MAX_NOTES);
        if user_ids.len() > MAX_ROLE_USERS {
            return Ok(RoleRecord::Unusable(format!(
                "more than {MAX_ROLE_USERS} users hold it"
            )));
        }
    }
    let mut users = Vec::new();
    for batch in user_ids.chunks(USER_BATCH) {
        let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
        let found = session.identity_users(&ids).await?;
        for (id, via) in batch {
            match found.iter().find(|u| u.id.eq_ignore_ascii_case(id)) {
                Some(u) => users.push(RoleUser {
                    name: u.username.clone(),
                    email: u.email.clone(),
                    via: via.clone(),
                }),
                None => notes.push(format!(
                    "user {} has no CyberArk Identity user record: not used",
                    crate::text::printable(id)
                )),
            }
        }
    }
    notes.truncate(MAX_NOTES);
    Ok(RoleRecord::Resolved {
        name: role.name,
        users,
        groups,
        notes,
    })
}

/// Step 1 of the approver groups of a safe (see the module doc; then [`approvers_at`]):
/// read the members of `safe` and the vault group record (`GET /API/UserGroups?search=`) of each
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
    Ok(SafeApprovers {
        safe: safe.to_string(),
        members,
        records,
        roles: RoleRecords::new(),
    })
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

    fn settings(extra: &str) -> Settings {
        let text = format!(
            "[directory]\nurl = \"ldaps://dc1.corp.example\"\nbind_dn = \"svc@corp.example\"\nbind_password = \"env:LDAP_PW\"\nbase_dn = \"DC=corp,DC=example\"\n{extra}"
        );
        crate::settings::load_from_parts(Some(&text), None, &[])
            .expect("parses")
            .directory()
            .expect("valid")
    }

    fn read_of(safe: &str) -> SafeApprovers {
        let mut records = GroupRecords::new();
        records.insert(
            record_key("DB_PAMapprover"),
            GroupRecord::Directory {
                name: "DB_PAMapprover".into(),
                directory: Some("corp.example".into()),
                dn: None,
            },
        );
        SafeApprovers {
            safe: safe.into(),
            members: vec![SafeMember {
                member_name: "DB_PAMapprover".into(),
                member_type: "Group".into(),
                permissions: crate::pvwa::SafePermissions {
                    requests_authorization_level1: true,
                    requests_authorization_level2: false,
                    view_safe_members: false,
                },
                ..SafeMember::default()
            }],
            records,
            roles: RoleRecords::new(),
        }
    }

    #[test]
    fn approvers_at_follows_the_mode_and_fails_closed_without_the_safes_members() {
        let members = settings("");
        let read = read_of("DBSafe");
        let a = approvers_at(&members, "DBSafe", Some(&read), 1, 0);
        assert_eq!(a.groups.len(), 1, "{a:?}");
        assert_eq!(a.groups[0].name, "DB_PAMapprover");
        assert!(
            approvers_at(&members, "DBSafe", Some(&read), 2, 0)
                .groups
                .is_empty()
        );
        // Not read, or read for another safe: nobody, and why.
        let none = approvers_at(&members, "DBSafe", None, 1, 0);
        assert!(none.groups.is_empty());
        assert!(none.skipped[0].reason.contains("not read"), "{none:?}");
        let other = approvers_at(&members, "HRSafe", Some(&read), 1, 0);
        assert!(other.groups.is_empty());
        assert!(
            other.skipped[0].reason.contains("another safe"),
            "{other:?}"
        );
        // Static: the table decides, whatever the vault lists.
        let st = settings(
            "approvers = \"static\"\n[[directory.static]]\ngroup = \"Infra_PAMapprover\"\nlevel = 1\nsafes = [\"Infra*\"]\n",
        );
        assert!(
            approvers_at(&st, "DBSafe", Some(&read), 1, 0)
                .groups
                .is_empty()
        );
        let a = approvers_at(&st, "InfraSafe", None, 1, 0);
        assert_eq!(a.groups[0].name, "Infra_PAMapprover");
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

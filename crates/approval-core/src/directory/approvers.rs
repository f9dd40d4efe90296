//! Which directory groups approve a safe at a level: from PVWA's safe members (mode
//! `safe-members`) or from the static table (mode `static`). Pure functions over their inputs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::{GroupNameRule, RolesFrom, StaticRule};
use super::names::{map_group_name, safe_matches};
use crate::pvwa::SafeMember;

/// A directory group that approves the safe at the level, and why we think so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApproverGroup {
    /// The directory group name (compared with the group's `sAMAccountName` or `cn`).
    pub name: String,
    /// The group's DN where the vault's group record gives it: then only the directory entry
    /// with this DN is the group, whatever else answers to the name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dn: Option<String>,
    /// Where the approval right comes from, e.g. `PVWA safe member "DB_PAMapprover@corp"` or
    /// `static rule 2`.
    pub source: String,
}

/// A safe member that was not used, and why (shown by the by-hand check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub member: String,
    pub reason: String,
}

/// The approver groups of a safe at a level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Approvers {
    pub groups: Vec<ApproverGroup>,
    pub skipped: Vec<Skipped>,
    /// CyberArk Identity roles whose users approve (`roles_from = "identity"`); the roles'
    /// member groups are in `groups`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub roles: Vec<ApproverRole>,
}

impl Approvers {
    /// Whether nobody approves through these: no approver group and no approver role.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.roles.is_empty()
    }
}

/// A CyberArk Identity role that approves the safe at the level, with the users holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApproverRole {
    /// The role's name as Identity gives it.
    pub role: String,
    /// Where the approval right comes from (the safe member and the role).
    pub source: String,
    /// The users holding the role, directly or through nested roles.
    pub users: Vec<RoleUser>,
}

/// A user holding a CyberArk Identity role, as Identity names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleUser {
    /// The Identity login name (`alice@corp.example`, `alice@cyberark.cloud.12345`).
    pub name: String,
    /// The Identity user's e-mail address, when set.
    pub email: Option<String>,
    /// The roles from the safe member's role down to the one the user is a member of.
    pub via: Vec<String>,
}

/// A group that is a member of a CyberArk Identity role (directly or through nested roles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleGroup {
    /// The group's name as Identity gives it.
    pub name: String,
    pub via: Vec<String>,
}

/// What CyberArk Identity says of a Role safe member (`roles_from = "identity"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoleRecord {
    /// The role and its holders.
    Resolved {
        /// The role's name as Identity gives it.
        name: String,
        users: Vec<RoleUser>,
        groups: Vec<RoleGroup>,
        /// Members not followed, and why (nesting too deep, another member type, a user
        /// without a record).
        notes: Vec<String>,
    },
    /// Identity has no role of this name.
    Missing,
    /// Several roles answer to the name, or another reason the role cannot be used.
    Unusable(String),
}

/// Role records by safe member name, lower-cased (see [`record_key`]).
pub type RoleRecords = BTreeMap<String, RoleRecord>;

/// What the vault's group record (`GET /API/UserGroups`) says of a group safe member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GroupRecord {
    /// A directory group: `name` as the vault names it in `directory`, and its DN when given.
    Directory {
        name: String,
        directory: Option<String>,
        dn: Option<String>,
    },
    /// A group of the vault itself: never a directory group, whatever its name.
    Vault,
    /// The vault has no group record of this name (visible to the lookup account).
    Missing,
    /// The record could not be read or is unusable; the reason.
    Unreadable(String),
}

/// Group records by safe member name, lower-cased (see [`record_key`]).
pub type GroupRecords = BTreeMap<String, GroupRecord>;

/// The key of a member name in [`GroupRecords`].
pub fn record_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Mode `safe-members`: group members of the safe with the level's authorisation permission and
/// a membership that has not expired. A group member maps to a directory group through its
/// vault group record (`records`): a `Directory` record maps to the group it names (by DN when
/// the record has one, else by name); a `Vault` record never maps. A member without a record
/// maps only when its own name carries a domain of `rule.domains` (`NAME@DOMAIN`,
/// `DOMAIN\NAME`). User members are not approvers here (the right is granted to groups), and
/// are listed as skipped when they would be.
///
/// A Role member (a CyberArk Identity role) maps through `rule.roles` when listed there;
/// otherwise, with `rule.roles_from = "identity"`, through its Identity record in `roles`
/// ([`RoleRecord`]): its users become an [`ApproverRole`], its member groups approver groups
/// when their names carry a domain of `rule.domains`.
pub fn from_safe_members(
    members: &[SafeMember],
    level: u8,
    now_unix: i64,
    rule: &GroupNameRule,
    records: &GroupRecords,
    roles: &RoleRecords,
) -> Approvers {
    let mut out = Approvers::default();
    for m in members {
        let has_permission = match level {
            1 => m.permissions.requests_authorization_level1,
            2 => m.permissions.requests_authorization_level2,
            _ => false,
        };
        if !has_permission {
            continue;
        }
        let shown = crate::text::printable(&m.member_name);
        if !m.approves_at(level, now_unix) {
            out.skipped.push(Skipped {
                member: shown,
                reason: "membership expired".into(),
            });
            continue;
        }
        if m.member_type.trim().eq_ignore_ascii_case("role") {
            // A CyberArk Identity role: its holders are known to Identity, not to the vault
            // or the directory. Only an explicit mapping to a directory group makes them
            // approvers here; without one, nobody approves through it.
            match rule.role_group(&m.member_name) {
                Some(dn) => push_unique(
                    &mut out.groups,
                    ApproverGroup {
                        name: super::config::first_rdn_value(dn).unwrap_or(dn).to_string(),
                        dn: Some(dn.to_string()),
                        source: format!(
                            "PVWA safe member \"{shown}\" (level {level}), a CyberArk Identity role mapped by directory.group_names.roles to the directory group {}",
                            crate::text::printable(dn)
                        ),
                    },
                ),
                None if rule.roles_from == RolesFrom::Identity => {
                    from_role_record(
                        &mut out,
                        &shown,
                        level,
                        rule,
                        roles.get(&record_key(&m.member_name)),
                    );
                }
                None => out.skipped.push(Skipped {
                    member: shown,
                    reason: "a Role member (a CyberArk Identity role): map it to the directory \
                             group of its holders with directory.group_names.roles, set \
                             directory.group_names.roles_from = \"identity\" (Privilege Cloud), \
                             or give the safe that group instead"
                        .into(),
                }),
            }
            continue;
        }
        if !m.is_group() {
            out.skipped.push(Skipped {
                member: shown,
                reason: format!(
                    "a {} member, not a group",
                    crate::text::printable(&m.member_type)
                ),
            });
            continue;
        }
        // Only a member the vault records as a directory group maps to an LDAP group: by its
        // Directory record (by DN when the record has one), or, without any record, when its
        // own name carries one of the directory's domains (`NAME@DOMAIN`, `DOMAIN\NAME`). A
        // Vault group or a predefined user never does, even when an LDAP group of the same
        // name exists: whoever creates that LDAP group would become an approver of the safe.
        if m.is_predefined_user {
            out.skipped.push(Skipped {
                member: shown,
                reason: "a predefined Vault member, not a directory group".into(),
            });
            continue;
        }
        match records.get(&record_key(&m.member_name)) {
            Some(GroupRecord::Directory {
                name,
                directory,
                dn,
            }) => {
                let dir = directory
                    .as_deref()
                    .map(|d| format!(" of directory {}", crate::text::printable(d)))
                    .unwrap_or_default();
                let how = match dn {
                    Some(dn) => format!("by DN {}", crate::text::printable(dn)),
                    None => "by name (the record gives no DN)".to_string(),
                };
                match map_group_name(name, rule) {
                    Some(mapped) => push_unique(
                        &mut out.groups,
                        ApproverGroup {
                            name: mapped,
                            dn: dn.clone(),
                            source: format!(
                                "PVWA safe member \"{shown}\" (level {level}), a directory group{dir} by its vault record, matched {how}"
                            ),
                        },
                    ),
                    None => out.skipped.push(Skipped {
                        member: shown,
                        reason: "its vault record's name does not map to a directory group under [directory.group_names]"
                            .into(),
                    }),
                }
                continue;
            }
            Some(GroupRecord::Vault) => {
                out.skipped.push(Skipped {
                    member: shown,
                    reason: "a Vault group (its vault record says groupType Vault), never a directory group"
                        .into(),
                });
                continue;
            }
            Some(GroupRecord::Unreadable(r)) => {
                out.skipped.push(Skipped {
                    member: shown,
                    reason: format!("its vault group record could not be used: {r}"),
                });
                continue;
            }
            Some(GroupRecord::Missing) | None => {}
        }
        if !carries_listed_domain(&m.member_name, rule) {
            out.skipped.push(Skipped {
                member: shown,
                reason: if rule.domains.is_empty() {
                    "no directory domain is configured (directory.group_names.domains), so no \
                     member can be recognised as a directory group"
                        .into()
                } else if records.contains_key(&record_key(&m.member_name)) {
                    "the vault has no group record of this name that the lookup account can read, \
                     and the name carries none of directory.group_names.domains"
                        .into()
                } else {
                    "a Vault-internal member (its name carries none of directory.group_names.domains)"
                        .into()
                },
            });
            continue;
        }
        match map_group_name(&m.member_name, rule) {
            Some(name) => push_unique(
                &mut out.groups,
                ApproverGroup {
                    name,
                    dn: None,
                    source: format!("PVWA safe member \"{shown}\" (level {level})"),
                },
            ),
            None => out.skipped.push(Skipped {
                member: shown,
                reason: "its name does not map to a directory group under [directory.group_names]"
                    .into(),
            }),
        }
    }
    out
}

/// A Role member resolved through CyberArk Identity: its users as an [`ApproverRole`], its
/// member groups as approver groups (only those whose names carry a domain of `rule.domains`:
/// a group of Identity's own directory must not stand in for a directory group of the same
/// name), or the reason it is skipped.
fn from_role_record(
    out: &mut Approvers,
    shown: &str,
    level: u8,
    rule: &GroupNameRule,
    record: Option<&RoleRecord>,
) {
    let skip = |out: &mut Approvers, reason: String| {
        out.skipped.push(Skipped {
            member: shown.to_string(),
            reason,
        })
    };
    let (name, users, groups) = match record {
        Some(RoleRecord::Resolved {
            name,
            users,
            groups,
            ..
        }) => (name, users, groups),
        Some(RoleRecord::Missing) => {
            return skip(
                out,
                format!("CyberArk Identity has no role named \"{shown}\""),
            );
        }
        Some(RoleRecord::Unusable(why)) => {
            return skip(
                out,
                format!("its CyberArk Identity role cannot be used: {why}"),
            );
        }
        None => {
            return skip(
                out,
                "its CyberArk Identity role was not read (roles_from = \"identity\")".into(),
            );
        }
    };
    let role = crate::text::printable(name);
    let source = format!(
        "PVWA safe member \"{shown}\" (level {level}), through CyberArk Identity role \"{role}\""
    );
    if users.is_empty() && groups.is_empty() {
        return skip(
            out,
            format!("CyberArk Identity role \"{role}\" has no user or group members"),
        );
    }
    if !users.is_empty() && !out.roles.iter().any(|r| r.role.eq_ignore_ascii_case(name)) {
        out.roles.push(ApproverRole {
            role: name.clone(),
            source: source.clone(),
            users: users.clone(),
        });
    }
    for g in groups {
        let gshown = crate::text::printable(&g.name);
        let mapped = carries_listed_domain(&g.name, rule)
            .then(|| map_group_name(&g.name, rule))
            .flatten();
        match mapped {
            Some(mapped) => push_unique(
                &mut out.groups,
                ApproverGroup {
                    name: mapped,
                    dn: None,
                    source: format!(
                        "{source}, its member group \"{gshown}\" (via {})",
                        g.via.join(" -> ")
                    ),
                },
            ),
            None => out.skipped.push(Skipped {
                member: format!("{shown} / {gshown}"),
                reason: "a group member of the CyberArk Identity role whose name carries none of \
                         directory.group_names.domains (NAME@DOMAIN), so it is not known to be a \
                         directory group"
                    .into(),
            }),
        }
    }
}

/// Mode `static`: every row whose level is `level` and one of whose patterns matches `safe`.
pub fn from_static(rules: &[StaticRule], safe: &str, level: u8, rule: &GroupNameRule) -> Approvers {
    let mut out = Approvers::default();
    for (i, r) in rules.iter().enumerate() {
        if r.level != level {
            continue;
        }
        let Some(pattern) = r.safes.iter().find(|p| safe_matches(p, safe)) else {
            continue;
        };
        match map_group_name(&r.group, rule) {
            Some(name) => push_unique(
                &mut out.groups,
                ApproverGroup {
                    name,
                    dn: None,
                    source: format!(
                        "static rule {} (level {level}, safes \"{}\")",
                        i + 1,
                        crate::text::printable(pattern)
                    ),
                },
            ),
            None => out.skipped.push(Skipped {
                member: crate::text::printable(&r.group),
                reason: "its name does not map to a directory group under [directory.group_names]"
                    .into(),
            }),
        }
    }
    out
}

fn push_unique(groups: &mut Vec<ApproverGroup>, g: ApproverGroup) {
    if !groups
        .iter()
        .any(|x| x.name.eq_ignore_ascii_case(&g.name) && x.dn == g.dn)
    {
        groups.push(g);
    }
}

/// Whether `name` is `NAME@DOMAIN` or `DOMAIN\NAME` with a domain of `rule.domains`.
fn carries_listed_domain(name: &str, rule: &GroupNameRule) -> bool {
    let name = name.trim();
    let domain = match (name.split_once('\\'), name.rsplit_once('@')) {
        (Some((d, n)), _) if !n.trim().is_empty() => d,
        (None, Some((n, d))) if !n.trim().is_empty() => d,
        _ => return false,
    };
    rule.domains
        .iter()
        .any(|x| x.trim().eq_ignore_ascii_case(domain.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pvwa::SafePermissions;

    fn member(name: &str, kind: &str, l1: bool, l2: bool) -> SafeMember {
        SafeMember {
            member_name: name.into(),
            member_type: kind.into(),
            permissions: SafePermissions {
                requests_authorization_level1: l1,
                requests_authorization_level2: l2,
                view_safe_members: false,
            },
            ..SafeMember::default()
        }
    }

    /// A Role member (Privilege Cloud: a CyberArk Identity role) maps only through an explicit
    /// `directory.group_names.roles` entry, to that group's DN, and says so; an unmapped one is
    /// skipped naming the key; a Vault group or an LDAP group of the role's name never stands in.
    #[test]
    fn a_role_member_maps_only_through_its_configured_group() {
        let members = vec![
            member("PAM Approvers L1", "Role", true, false),
            member("Other Role", "role", true, false),
        ];
        let dn = "CN=PAM-Approvers-L1,OU=Groups,DC=corp,DC=example";
        let rule = GroupNameRule {
            domains: vec!["corp.example".into()],
            roles: [("pam approvers l1".to_string(), dn.to_string())].into(),
            ..GroupNameRule::default()
        };
        let a = from_safe_members(
            &members,
            1,
            1000,
            &rule,
            &GroupRecords::new(),
            &RoleRecords::new(),
        );
        assert_eq!(a.groups.len(), 1, "{a:?}");
        assert_eq!(a.groups[0].dn.as_deref(), Some(dn));
        assert_eq!(a.groups[0].name, "PAM-Approvers-L1");
        assert!(
            a.groups[0].source.contains("directory.group_names.roles"),
            "{a:?}"
        );
        assert_eq!(a.skipped.len(), 1);
        assert_eq!(a.skipped[0].member, "Other Role");
        assert!(a.skipped[0].reason.contains("directory.group_names.roles"));
        // Without any mapping nobody approves through a role.
        let none = from_safe_members(
            &members,
            1,
            1000,
            &GroupNameRule::default(),
            &GroupRecords::new(),
            &RoleRecords::new(),
        );
        assert!(none.groups.is_empty(), "{none:?}");
        // Not at a level the role has no right for.
        let l2 = from_safe_members(
            &members,
            2,
            1000,
            &rule,
            &GroupRecords::new(),
            &RoleRecords::new(),
        );
        assert!(l2.groups.is_empty());
    }

    #[test]
    fn safe_members_by_level_type_expiry_and_domain() {
        let mut expired = member("Old_Approvers", "group", true, false);
        expired.membership_expiration_date = Some(100);
        let members = vec![
            member("DB_PAMapprover@corp.example", "group", true, false),
            member("CORP\\PAM_L2", "group", false, true),
            member("Readers", "group", false, false),
            member("jdoe", "user", true, false),
            member("Foreign@other.example", "group", true, false),
            expired,
        ];
        let rule = GroupNameRule {
            domains: vec!["corp.example".into(), "CORP".into()],
            ..GroupNameRule::default()
        };
        let a = from_safe_members(
            &members,
            1,
            1000,
            &rule,
            &GroupRecords::new(),
            &RoleRecords::new(),
        );
        let names: Vec<&str> = a.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec!["DB_PAMapprover"]);
        assert!(a.groups[0].source.contains("DB_PAMapprover@corp.example"));
        let skipped: Vec<&str> = a.skipped.iter().map(|s| s.member.as_str()).collect();
        assert_eq!(
            skipped,
            vec!["jdoe", "Foreign@other.example", "Old_Approvers"]
        );
        let a2 = from_safe_members(
            &members,
            2,
            1000,
            &rule,
            &GroupRecords::new(),
            &RoleRecords::new(),
        );
        let names: Vec<&str> = a2.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec!["PAM_L2"]);
        assert!(
            from_safe_members(
                &members,
                3,
                1000,
                &rule,
                &GroupRecords::new(),
                &RoleRecords::new()
            )
            .groups
            .is_empty()
        );
    }

    #[test]
    fn static_rows_by_level_and_pattern() {
        let rules = vec![
            StaticRule {
                group: "DB_PAMapprover".into(),
                level: 1,
                safes: vec!["DB*".into(), "Oracle-*".into()],
            },
            StaticRule {
                group: "Infra_PAMapprover".into(),
                level: 1,
                safes: vec!["Infra*".into()],
            },
            StaticRule {
                group: "PAM_L2".into(),
                level: 2,
                safes: vec!["*".into()],
            },
        ];
        let rule = GroupNameRule::default();
        let a = from_static(&rules, "dbsafe", 1, &rule);
        assert_eq!(a.groups.len(), 1);
        assert_eq!(a.groups[0].name, "DB_PAMapprover");
        assert!(a.groups[0].source.contains("static rule 1"));
        let a = from_static(&rules, "InfraSafe", 2, &rule);
        assert_eq!(a.groups[0].name, "PAM_L2");
        assert!(from_static(&rules, "HRSafe", 1, &rule).groups.is_empty());
    }
}

#[cfg(test)]
mod vault_internal {
    use super::*;
    use crate::pvwa::SafePermissions;

    /// A group member with the level-1 authorisation right (also the `vault_records` tests').
    pub(super) fn group(name: &str) -> SafeMember {
        SafeMember {
            member_name: name.into(),
            member_type: "group".into(),
            permissions: SafePermissions {
                requests_authorization_level1: true,
                requests_authorization_level2: false,
                view_safe_members: false,
            },
            ..SafeMember::default()
        }
    }

    #[test]
    fn safe_members_vault_internal_groups_never_map_to_ldap_groups() {
        let mut predefined = group("Vault Admins");
        predefined.is_predefined_user = true;
        let mut predefined_domain = group("Auditors@corp.example");
        predefined_domain.is_predefined_user = true;
        let members = vec![
            group("PAM_Approvers_L1"),
            predefined,
            predefined_domain,
            group("DB_PAMapprover@corp.example"),
        ];
        let rule = GroupNameRule {
            domains: vec!["corp.example".into()],
            ..GroupNameRule::default()
        };
        let a = from_safe_members(
            &members,
            1,
            1000,
            &rule,
            &GroupRecords::new(),
            &RoleRecords::new(),
        );
        let names: Vec<&str> = a.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec!["DB_PAMapprover"]);
        let skipped: Vec<(&str, bool)> = a
            .skipped
            .iter()
            .map(|s| (s.member.as_str(), s.reason.contains("Vault")))
            .collect();
        assert_eq!(
            skipped,
            vec![
                ("PAM_Approvers_L1", true),
                ("Vault Admins", true),
                ("Auditors@corp.example", true)
            ]
        );
        // Without a configured domain nothing is recognised as a directory group.
        let none = from_safe_members(
            &members,
            1,
            1000,
            &GroupNameRule::default(),
            &GroupRecords::new(),
            &RoleRecords::new(),
        );
        assert!(none.groups.is_empty(), "{none:?}");
        assert!(none.skipped[0].reason.contains("group_names.domains"));
    }
}

#[cfg(test)]
mod vault_records {
    use super::vault_internal::group;
    use super::*;

    #[test]
    fn bare_names_map_by_their_vault_record_and_vault_groups_never() {
        let members = vec![
            group("DB_PAMapprover"),
            group("PAM_Approvers_L1"),
            group("Ghost"),
            group("Hidden"),
            group("Infra_PAMapprover"),
        ];
        let mut records = GroupRecords::new();
        records.insert(
            record_key("db_pamapprover"),
            GroupRecord::Directory {
                name: "DB_PAMapprover".into(),
                directory: Some("corp.example".into()),
                dn: Some("cn=DB_PAMapprover,ou=groups,dc=corp,dc=example".into()),
            },
        );
        records.insert(record_key("PAM_Approvers_L1"), GroupRecord::Vault);
        records.insert(record_key("Ghost"), GroupRecord::Missing);
        records.insert(
            record_key("Hidden"),
            GroupRecord::Unreadable("two records answer to the name".into()),
        );
        records.insert(
            record_key("Infra_PAMapprover"),
            GroupRecord::Directory {
                name: "Infra_PAMapprover".into(),
                directory: Some("corp.example".into()),
                dn: None,
            },
        );
        // The shipped default: a domain rule is configured, the vault lists bare names.
        let rule = GroupNameRule {
            domains: vec!["corp.example".into()],
            ..GroupNameRule::default()
        };
        let a = from_safe_members(&members, 1, 1000, &rule, &records, &RoleRecords::new());
        let got: Vec<(&str, Option<&str>)> = a
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.dn.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "DB_PAMapprover",
                    Some("cn=DB_PAMapprover,ou=groups,dc=corp,dc=example")
                ),
                ("Infra_PAMapprover", None),
            ]
        );
        assert!(a.groups[0].source.contains("by DN"), "{:?}", a.groups[0]);
        assert!(a.groups[1].source.contains("by name"), "{:?}", a.groups[1]);
        let skipped: Vec<(&str, &str)> = a
            .skipped
            .iter()
            .map(|s| (s.member.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert_eq!(skipped[0].0, "PAM_Approvers_L1");
        assert!(skipped[0].1.contains("Vault group"), "{skipped:?}");
        assert_eq!(skipped[1].0, "Ghost");
        assert!(skipped[1].1.contains("no group record"), "{skipped:?}");
        assert_eq!(skipped[2].0, "Hidden");
        assert!(skipped[2].1.contains("two records"), "{skipped:?}");
    }

    #[test]
    fn a_vault_record_wins_over_a_domain_in_the_name() {
        // A Vault group whose name happens to carry a listed domain is still a Vault group.
        let members = vec![group("Approvers@corp.example")];
        let mut records = GroupRecords::new();
        records.insert(record_key("Approvers@corp.example"), GroupRecord::Vault);
        let rule = GroupNameRule {
            domains: vec!["corp.example".into()],
            ..GroupNameRule::default()
        };
        let a = from_safe_members(&members, 1, 1000, &rule, &records, &RoleRecords::new());
        assert!(a.groups.is_empty(), "{a:?}");
    }
}

#[cfg(test)]
mod identity_roles {
    use super::*;
    use crate::pvwa::SafePermissions;

    fn role(name: &str) -> SafeMember {
        SafeMember {
            member_name: name.into(),
            member_type: "Role".into(),
            permissions: SafePermissions {
                requests_authorization_level1: true,
                requests_authorization_level2: false,
                view_safe_members: false,
            },
            ..SafeMember::default()
        }
    }

    fn user(name: &str, email: Option<&str>, via: &[&str]) -> RoleUser {
        RoleUser {
            name: name.into(),
            email: email.map(str::to_string),
            via: via.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// With `roles_from = "identity"` a Role member's users become an approver role and its
    /// member groups approver groups (only those carrying a listed domain); a role Identity does
    /// not have, or one not read, is skipped naming the role; the explicit table still wins.
    #[test]
    fn roles_resolve_through_identity_and_the_table_wins() {
        let members = vec![
            role("PAM Approvers L1"),
            role("PAM Group Role"),
            role("Ghost Role"),
            role("Unread Role"),
            role("Mapped Role"),
        ];
        let rule = GroupNameRule {
            domains: vec!["example.test".into()],
            roles: [(
                "mapped role".to_string(),
                "CN=Mapped,OU=Groups,DC=example,DC=test".to_string(),
            )]
            .into(),
            roles_from: RolesFrom::Identity,
            ..GroupNameRule::default()
        };
        let mut roles = RoleRecords::new();
        roles.insert(
            record_key("PAM Approvers L1"),
            RoleRecord::Resolved {
                name: "PAM Approvers L1".into(),
                users: vec![user(
                    "alice",
                    Some("alice@example.test"),
                    &["PAM Approvers L1"],
                )],
                groups: vec![],
                notes: vec![],
            },
        );
        roles.insert(
            record_key("PAM Group Role"),
            RoleRecord::Resolved {
                name: "PAM Group Role".into(),
                users: vec![],
                groups: vec![
                    RoleGroup {
                        name: "Infra_PAMapprover@example.test".into(),
                        via: vec!["PAM Group Role".into()],
                    },
                    // A group of Identity's own directory: never a directory group.
                    RoleGroup {
                        name: "DB_PAMapprover".into(),
                        via: vec!["PAM Group Role".into()],
                    },
                ],
                notes: vec![],
            },
        );
        roles.insert(record_key("Ghost Role"), RoleRecord::Missing);
        // A role mapped by the table is never read; a record for it would not be used.
        roles.insert(
            record_key("Mapped Role"),
            RoleRecord::Resolved {
                name: "Mapped Role".into(),
                users: vec![user("mallory", None, &["Mapped Role"])],
                groups: vec![],
                notes: vec![],
            },
        );
        let a = from_safe_members(&members, 1, 1000, &rule, &GroupRecords::new(), &roles);
        assert_eq!(a.roles.len(), 1, "{a:?}");
        assert_eq!(a.roles[0].role, "PAM Approvers L1");
        assert!(
            a.roles[0]
                .source
                .contains("through CyberArk Identity role \"PAM Approvers L1\""),
            "{a:?}"
        );
        let groups: Vec<(&str, Option<&str>)> = a
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.dn.as_deref()))
            .collect();
        assert_eq!(
            groups,
            vec![
                ("Infra_PAMapprover", None),
                ("Mapped", Some("CN=Mapped,OU=Groups,DC=example,DC=test"))
            ]
        );
        assert!(a.groups[0].source.contains("PAM Group Role"), "{a:?}");
        let skipped: Vec<(&str, &str)> = a
            .skipped
            .iter()
            .map(|s| (s.member.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert_eq!(skipped[0].0, "PAM Group Role / DB_PAMapprover");
        assert_eq!(skipped[1].0, "Ghost Role");
        assert!(skipped[1].1.contains("no role named \"Ghost Role\""));
        assert_eq!(skipped[2].0, "Unread Role");
        assert!(skipped[2].1.contains("not read"));
        // Without roles_from = "identity" the records are not used.
        let table_only = GroupNameRule {
            roles_from: RolesFrom::Table,
            ..rule.clone()
        };
        let t = from_safe_members(&members, 1, 1000, &table_only, &GroupRecords::new(), &roles);
        assert!(t.roles.is_empty(), "{t:?}");
        assert_eq!(t.groups.len(), 1);
        assert!(t.skipped.iter().all(|s| s.reason.contains("roles_from")));
        // Not at a level the role has no right for.
        let l2 = from_safe_members(&members, 2, 1000, &rule, &GroupRecords::new(), &roles);
        assert!(l2.roles.is_empty() && l2.groups.is_empty());
    }
}

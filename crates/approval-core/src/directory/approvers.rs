//! Which directory groups approve a safe at a level: from PVWA's safe members (mode
//! `safe-members`) or from the static table (mode `static`). Pure functions over their inputs.

use serde::Serialize;

use super::config::{GroupNameRule, StaticRule};
use super::names::{map_group_name, safe_matches};
use crate::pvwa::SafeMember;

/// A directory group that approves the safe at the level, and why we think so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApproverGroup {
    /// The directory group name (compared with the group's `sAMAccountName` or `cn`).
    pub name: String,
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
}

/// Mode `safe-members`: group members of the safe with the level's authorisation permission and
/// a membership that has not expired, their names mapped by `rule`. User members are not
/// approvers here (the right is granted to groups), and are listed as skipped when they would be.
pub fn from_safe_members(
    members: &[SafeMember],
    level: u8,
    now_unix: i64,
    rule: &GroupNameRule,
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
        // Only a member PVWA shows as coming from the directory maps to an LDAP group: its
        // name carries one of the directory's domains (`NAME@DOMAIN`, `DOMAIN\NAME`). A
        // Vault-internal group or a predefined user (no domain) never does, even when an LDAP
        // group of the same name exists: whoever creates that LDAP group would become an
        // approver of the safe.
        if m.is_predefined_user {
            out.skipped.push(Skipped {
                member: shown,
                reason: "a predefined Vault member, not a directory group".into(),
            });
            continue;
        }
        if !carries_listed_domain(&m.member_name, rule) {
            out.skipped.push(Skipped {
                member: shown,
                reason: if rule.domains.is_empty() {
                    "no directory domain is configured (directory.group_names.domains), so no \
                     member can be recognised as a directory group"
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
    if !groups.iter().any(|x| x.name.eq_ignore_ascii_case(&g.name)) {
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
        let a = from_safe_members(&members, 1, 1000, &rule);
        let names: Vec<&str> = a.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec!["DB_PAMapprover"]);
        assert!(a.groups[0].source.contains("DB_PAMapprover@corp.example"));
        let skipped: Vec<&str> = a.skipped.iter().map(|s| s.member.as_str()).collect();
        assert_eq!(
            skipped,
            vec!["jdoe", "Foreign@other.example", "Old_Approvers"]
        );
        let a2 = from_safe_members(&members, 2, 1000, &rule);
        let names: Vec<&str> = a2.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec!["PAM_L2"]);
        assert!(
            from_safe_members(&members, 3, 1000, &rule)
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

    fn group(name: &str) -> SafeMember {
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
        let a = from_safe_members(&members, 1, 1000, &rule);
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
        let none = from_safe_members(&members, 1, 1000, &GroupNameRule::default());
        assert!(none.groups.is_empty(), "{none:?}");
        assert!(none.skipped[0].reason.contains("group_names.domains"));
    }
}

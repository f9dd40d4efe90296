//! PVWA's vault group records, `GET /PasswordVault/API/UserGroups` (psPAS `Get-PASGroup`):
//! which safe members are directory groups (`groupType: Directory`, with the directory and,
//! here, the DN) and which are groups of the vault itself (`Vault`). The caller needs the Vault
//! permission "Audit users"; without it the answer is 403. Guesses are in ASSUMPTIONS.md.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `[[pvwa.groups]]`: one vault group record.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    /// `groupName`: as the safe's members name it (a directory group: its bare AD name).
    pub name: String,
    /// `groupType`: `Directory` or `Vault`.
    #[serde(default = "vault")]
    pub r#type: String,
    /// `directory`: the directory a Directory group comes from (e.g. `corp.example`).
    #[serde(default)]
    pub directory: Option<String>,
    /// `dn`: the directory group's DN.
    #[serde(default)]
    pub dn: Option<String>,
    #[serde(default)]
    pub description: String,
    /// `location`: the vault location (`\` is the root).
    #[serde(default = "root")]
    pub location: String,
}

fn vault() -> String {
    "Vault".into()
}
fn root() -> String {
    "\\".into()
}

/// The answer to `GET /API/UserGroups` with the query `q` (lower-cased keys, decoded values):
/// `filter=groupType eq Directory|Vault`, `search` (every term must appear in the name, case
/// not significant), `includeMembers=true` (the vault users of the group, from `members_of`).
/// `Err((status, code, message))` for a filter this stand-in does not model.
pub fn list(
    groups: &[GroupDef],
    q: &std::collections::HashMap<String, String>,
    members_of: impl Fn(&str) -> Vec<String>,
) -> Result<Value, (u16, &'static str, String)> {
    let kind = match q.get("filter").map(|f| f.trim()) {
        None | Some("") => None,
        Some(f) => {
            let parts: Vec<&str> = f.split_whitespace().collect();
            match parts.as_slice() {
                [field, op, value]
                    if field.eq_ignore_ascii_case("groupType")
                        && op.eq_ignore_ascii_case("eq")
                        && (value.eq_ignore_ascii_case("Directory")
                            || value.eq_ignore_ascii_case("Vault")) =>
                {
                    Some(value.to_ascii_lowercase())
                }
                _ => {
                    return Err((400, "PASWS167E", format!("The filter {f} is not valid.")));
                }
            }
        }
    };
    let terms: Vec<String> = q
        .get("search")
        .map(|s| s.split_whitespace().map(str::to_lowercase).collect())
        .unwrap_or_default();
    let include = q
        .get("includemembers")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let value: Vec<Value> = groups
        .iter()
        .enumerate()
        .filter(|(_, g)| {
            kind.as_deref()
                .is_none_or(|k| g.r#type.eq_ignore_ascii_case(k))
        })
        .filter(|(_, g)| {
            let name = g.name.to_lowercase();
            terms.iter().all(|t| name.contains(t.as_str()))
        })
        .map(|(n, g)| {
            let is_dir = g.r#type.eq_ignore_ascii_case("Directory");
            let mut v = json!({
                "id": 100 + n,
                "groupName": g.name,
                "groupType": if is_dir { "Directory" } else { "Vault" },
                "description": g.description,
                "location": g.location,
            });
            if is_dir {
                v["directory"] = json!(g.directory);
                v["dn"] = json!(g.dn);
            }
            if include {
                v["members"] = Value::Array(
                    members_of(&g.name)
                        .into_iter()
                        .enumerate()
                        .map(|(k, u)| json!({"id": 1000 + k, "username": u}))
                        .collect(),
                );
            }
            v
        })
        .collect();
    let count = value.len();
    Ok(json!({"value": value, "count": count}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn g(name: &str, kind: &str) -> GroupDef {
        GroupDef {
            name: name.into(),
            r#type: kind.into(),
            directory: Some("corp.example".into()),
            dn: Some(format!("cn={name},ou=groups,dc=corp,dc=example")),
            description: String::new(),
            location: root(),
        }
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filter_search_and_members() {
        let groups = vec![
            g("DB_PAMapprover", "Directory"),
            g("PAM_Approvers_L1", "Vault"),
        ];
        let none = |_: &str| vec!["lfischer".to_string()];
        let all = list(&groups, &q(&[]), none).expect("list");
        assert_eq!(all["count"], 2);
        let dir = list(&groups, &q(&[("filter", "groupType eq Directory")]), none).expect("f");
        assert_eq!(dir["value"][0]["groupName"], "DB_PAMapprover");
        assert_eq!(
            dir["value"][0]["dn"],
            "cn=DB_PAMapprover,ou=groups,dc=corp,dc=example"
        );
        assert_eq!(dir["count"], 1);
        let s = list(&groups, &q(&[("search", "approvers l1")]), none).expect("s");
        assert_eq!(s["value"][0]["groupType"], "Vault");
        assert!(s["value"][0].get("dn").is_none());
        assert!(s["value"][0].get("members").is_none());
        let m = list(
            &groups,
            &q(&[("search", "db"), ("includemembers", "true")]),
            none,
        )
        .expect("m");
        assert_eq!(m["value"][0]["members"][0]["username"], "lfischer");
        assert!(list(&groups, &q(&[("filter", "groupName eq x")]), none).is_err());
    }
}

//! CyberArk Identity roles (Privilege Cloud): who holds a role that is a safe member
//! (`memberType` Role). Read at the Identity tenant (`pvwa.identity_url`) with the session's
//! own platform token, as CyberArk's SDK and Identity PowerShell module read them:
//!
//! - a role's ID by its name: `POST /Redrock/query` with a SQL `Script` on the `Role` table;
//! - its direct members: `POST /Roles/GetRoleMembers` with `{"Name": <role id>}`, rows of
//!   `Guid`, `Name` and `Type` (`User`, `Group` or `Role`);
//! - the users' login names and e-mail addresses: `POST /Redrock/query` on the `User` table.
//!
//! Every answer is Identity's envelope `{"success": …, "Result": …, "Message": …}`; anything
//! but `success: true` with the expected rows is a [`PvwaError::Identity`] (no approval, tried
//! again later). Which parts of these shapes are guesses: pam-sim's ASSUMPTIONS.md, section
//! Privilege Cloud (C8–C12).

use serde_json::Value;

use super::{Idempotent, PvwaError, Session};
use crate::text::printable;

/// What the lookup account needs when Identity refuses it.
pub const RIGHT_HINT: &str = "the lookup account (an Identity service user) must read roles and users in CyberArk Identity: give it a role with the administrative right \"Read Only System Administration\" (Identity Administration > Roles > Administrative Rights), or map the roles to directory groups with [directory.group_names.roles] instead of roles_from = \"identity\"";

/// Most rows read from one answer; a longer answer is refused rather than cut.
const MAX_ROWS: usize = 10_000;
/// User IDs asked for in one `User` query.
pub const USER_BATCH: usize = 50;

/// A CyberArk Identity role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRole {
    pub id: String,
    pub name: String,
}

/// What a role member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
    Role,
    /// Any other `Type` Identity gives (never used as an approver).
    Other(String),
}

/// A direct member of a role (`GetRoleMembers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMember {
    /// Identity's ID of the member (`Guid`).
    pub id: String,
    /// Its name (`Name`): a user's login name, a group's or a role's name.
    pub name: String,
    pub kind: MemberKind,
}

/// A CyberArk Identity user's login name and e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityUser {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
}

impl Session {
    fn identity_url(&self, path: &str, what: &str) -> Result<String, PvwaError> {
        match (&self.pvwa.identity_base, &self.auth) {
            (Some(base), super::Credential::Platform(_)) => Ok(format!("{base}/{path}")),
            _ => Err(PvwaError::Identity {
                what: what.into(),
                detail: "the accounts do not sign in at CyberArk Identity: roles_from = \"identity\" needs Privilege Cloud (pvwa.auth_method = \"identity\" and pvwa.identity_url)".into(),
                denied: true,
            }),
        }
    }

    async fn identity_post(&self, path: &str, body: Value, what: &str) -> Result<Value, PvwaError> {
        let url = self.identity_url(path, what)?;
        let (status, text) = self
            .call_at(
                url,
                reqwest::Method::POST,
                path,
                Some(body),
                what,
                Idempotent::Yes,
            )
            .await?;
        envelope(what, status, &text)
    }

    /// The roles named `name` (case-insensitively, blanks trimmed): none when Identity has no
    /// such role, several when names repeat (the caller refuses those).
    pub async fn identity_roles_named(&self, name: &str) -> Result<Vec<IdentityRole>, PvwaError> {
        let what = format!(
            "the look-up of CyberArk Identity role \"{}\"",
            printable(name)
        );
        let name = check_name(name, &what)?;
        let script = format!(
            "Select ID, Name from Role WHERE Name = '{}' COLLATE NOCASE",
            name.replace('\'', "''")
        );
        let result = self
            .identity_post(
                "Redrock/query",
                serde_json::json!({ "Script": script }),
                &what,
            )
            .await?;
        roles_named(&what, &result, name)
    }

    /// The direct members of the role with ID `role_id` (`POST /Roles/GetRoleMembers`).
    pub async fn identity_role_members(
        &self,
        role_id: &str,
        role_name: &str,
    ) -> Result<Vec<RoleMember>, PvwaError> {
        let what = format!(
            "the members of CyberArk Identity role \"{}\"",
            printable(role_name)
        );
        check_id(role_id, &what)?;
        let result = self
            .identity_post(
                "Roles/GetRoleMembers",
                serde_json::json!({ "Name": role_id }),
                &what,
            )
            .await?;
        role_members(&what, &result)
    }

    /// The login names and e-mail addresses of the users with these IDs (at most
    /// [`USER_BATCH`]); an ID Identity has no user for is not in the answer.
    pub async fn identity_users(&self, ids: &[String]) -> Result<Vec<IdentityUser>, PvwaError> {
        let what = "the CyberArk Identity users of a role".to_string();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() > USER_BATCH {
            return Err(PvwaError::Identity {
                what,
                detail: format!("more than {USER_BATCH} users asked at once"),
                denied: false,
            });
        }
        for id in ids {
            check_id(id, &what)?;
        }
        let list: Vec<String> = ids.iter().map(|i| format!("'{i}'")).collect();
        let script = format!(
            "Select ID, Username, Email from User WHERE ID IN ({})",
            list.join(", ")
        );
        let result = self
            .identity_post(
                "Redrock/query",
                serde_json::json!({ "Script": script }),
                &what,
            )
            .await?;
        users(&what, &result, ids)
    }
}

fn fault(what: &str, detail: impl Into<String>) -> PvwaError {
    PvwaError::Identity {
        what: what.into(),
        detail: detail.into(),
        denied: false,
    }
}

/// A role name fit to send: not blank, no control character, not overlong.
fn check_name<'a>(name: &'a str, what: &str) -> Result<&'a str, PvwaError> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) || name.chars().count() > 256 {
        return Err(fault(
            what,
            "the role name is empty, overlong or has control characters",
        ));
    }
    Ok(name)
}

/// An Identity ID (a GUID or a role key): letters, digits, `-` and `_`, 1 to 100 of them.
fn check_id(id: &str, what: &str) -> Result<(), PvwaError> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(fault(
            what,
            format!("the ID \"{}\" is not an Identity ID", printable(id)),
        ))
    }
}

/// Whether Identity's message refuses the caller (rather than failing).
fn sounds_denied(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "not authorized",
        "unauthorized",
        "access denied",
        "permission",
        "forbidden",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// The `Result` of Identity's envelope, when the answer is `200` with `success: true`.
pub(crate) fn envelope(what: &str, status: u16, text: &str) -> Result<Value, PvwaError> {
    let json: Option<Value> = serde_json::from_str(text).ok();
    let message = json
        .as_ref()
        .and_then(|j| j.get("Message"))
        .and_then(Value::as_str)
        .map(|m| crate::http::body_excerpt(m, 200))
        .filter(|m| !m.trim().is_empty());
    if status != 200 {
        return Err(PvwaError::Identity {
            what: what.into(),
            detail: format!(
                "HTTP {status}{}",
                message
                    .clone()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_else(|| format!(": {}", crate::http::body_excerpt(text, 200)))
            ),
            denied: status == 401 || status == 403,
        });
    }
    let Some(json) = json else {
        let detail = if text.trim_start().starts_with('<') {
            "an HTML page, not JSON: check pvwa.identity_url"
        } else {
            "a body that is not JSON"
        };
        return Err(fault(what, detail));
    };
    match json.get("success") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            let m = message.unwrap_or_else(|| "no message".into());
            return Err(PvwaError::Identity {
                what: what.into(),
                denied: sounds_denied(&m),
                detail: format!("success false: {m}"),
            });
        }
        _ => return Err(fault(what, "no \"success\": true in the answer")),
    }
    match json.get("Result") {
        Some(r @ Value::Object(_)) => Ok(r.clone()),
        _ => Err(fault(what, "no \"Result\" object in the answer")),
    }
}

/// The `Row` objects of a `Result` (`{"Results": [{"Row": {…}}, …]}`).
fn rows<'a>(
    what: &str,
    result: &'a Value,
) -> Result<Vec<&'a serde_json::Map<String, Value>>, PvwaError> {
    let Some(list) = result.get("Results").and_then(Value::as_array) else {
        return Err(fault(what, "no \"Results\" list in the answer"));
    };
    if list.len() > MAX_ROWS {
        return Err(fault(
            what,
            format!("{} rows, more than the {MAX_ROWS} read", list.len()),
        ));
    }
    list.iter()
        .map(|r| {
            r.get("Row")
                .and_then(Value::as_object)
                .ok_or_else(|| fault(what, "a result without a \"Row\" object"))
        })
        .collect()
}

/// A text field of a row (`None` when absent or null; an error when of another type).
fn text_field(
    what: &str,
    row: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, PvwaError> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            Err(fault(what, format!("\"{key}\" has control characters")))
        }
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(_) => Err(fault(what, format!("\"{key}\" is not text"))),
    }
}

fn required(
    what: &str,
    row: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<String, PvwaError> {
    text_field(what, row, key)?.ok_or_else(|| fault(what, format!("a row without \"{key}\"")))
}

/// The rows of a `Role` query named exactly `name` (any case).
pub(crate) fn roles_named(
    what: &str,
    result: &Value,
    name: &str,
) -> Result<Vec<IdentityRole>, PvwaError> {
    let mut out = Vec::new();
    for row in rows(what, result)? {
        let role = IdentityRole {
            id: required(what, row, "ID")?,
            name: required(what, row, "Name")?,
        };
        check_id(&role.id, what)?;
        if role.name.eq_ignore_ascii_case(name.trim()) {
            out.push(role);
        }
    }
    Ok(out)
}

/// The rows of `GetRoleMembers`.
pub(crate) fn role_members(what: &str, result: &Value) -> Result<Vec<RoleMember>, PvwaError> {
    rows(what, result)?
        .into_iter()
        .map(|row| {
            let kind = required(what, row, "Type")?;
            let kind = match kind.to_ascii_lowercase().as_str() {
                "user" => MemberKind::User,
                "group" => MemberKind::Group,
                "role" => MemberKind::Role,
                _ => MemberKind::Other(printable(&kind)),
            };
            let m = RoleMember {
                id: required(what, row, "Guid")?,
                name: required(what, row, "Name")?,
                kind,
            };
            check_id(&m.id, what)?;
            Ok(m)
        })
        .collect()
}

/// The rows of a `User` query, only those whose ID was asked for, each ID at most once (an ID
/// answered twice is refused: which row is the user?).
pub(crate) fn users(
    what: &str,
    result: &Value,
    asked: &[String],
) -> Result<Vec<IdentityUser>, PvwaError> {
    let mut out: Vec<IdentityUser> = Vec::new();
    for row in rows(what, result)? {
        let u = IdentityUser {
            id: required(what, row, "ID")?,
            username: required(what, row, "Username")?,
            email: text_field(what, row, "Email")?,
        };
        if !asked.iter().any(|a| a.eq_ignore_ascii_case(&u.id)) {
            continue;
        }
        if out.iter().any(|o| o.id.eq_ignore_ascii_case(&u.id)) {
            return Err(fault(
                what,
                format!("two users answer to the ID {}", printable(&u.id)),
            ));
        }
        out.push(u);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: &str = "test";

    fn ok(result: &str) -> Value {
        envelope(W, 200, &format!("{{\"success\":true,\"Result\":{result}}}")).expect("result")
    }

    #[test]
    fn the_envelope_gives_the_result_only_on_success() {
        assert!(ok("{\"Results\":[]}").get("Results").is_some());
        let denied = envelope(
            W,
            200,
            r#"{"success":false,"Result":null,"Message":"You are not authorized to perform this operation."}"#,
        )
        .expect_err("refused");
        assert!(matches!(denied, PvwaError::Identity { denied: true, .. }));
        assert!(denied.is_transient());
        let failed = envelope(W, 200, r#"{"success":false,"Message":"Internal error"}"#)
            .expect_err("failed");
        assert!(matches!(failed, PvwaError::Identity { denied: false, .. }));
        for hostile in [
            "",
            "<html>login</html>",
            "[]",
            r#"{"Result":{"Results":[]}}"#,
            r#"{"success":"true","Result":{}}"#,
            r#"{"success":true}"#,
            r#"{"success":true,"Result":[]}"#,
        ] {
            assert!(envelope(W, 200, hostile).is_err(), "{hostile}");
        }
        let e = envelope(W, 403, "{}").expect_err("403");
        assert!(matches!(e, PvwaError::Identity { denied: true, .. }));
        let e = envelope(W, 500, "oops").expect_err("500");
        assert!(matches!(e, PvwaError::Identity { denied: false, .. }));
        assert!(e.is_transient());
    }

    #[test]
    fn roles_by_exact_name() {
        let r = ok(
            r#"{"Results":[{"Row":{"ID":"r-1","Name":"PAM Approvers L1"}},{"Row":{"ID":"r-2","Name":"PAM Approvers L10"}}]}"#,
        );
        let found = roles_named(W, &r, "pam approvers l1").expect("rows");
        assert_eq!(
            found,
            vec![IdentityRole {
                id: "r-1".into(),
                name: "PAM Approvers L1".into()
            }]
        );
        let none = roles_named(W, &ok(r#"{"Results":[]}"#), "x").expect("rows");
        assert!(none.is_empty());
        // A role ID that could smuggle text into the next call is refused.
        let bad = ok(r#"{"Results":[{"Row":{"ID":"x' OR '1'='1","Name":"x"}}]}"#);
        assert!(roles_named(W, &bad, "x").is_err());
        for malformed in [
            r#"{}"#,
            r#"{"Results":{}}"#,
            r#"{"Results":[{"ID":"r"}]}"#,
            r#"{"Results":[{"Row":{"Name":"x"}}]}"#,
            r#"{"Results":[{"Row":{"ID":7,"Name":"x"}}]}"#,
        ] {
            assert!(roles_named(W, &ok(malformed), "x").is_err(), "{malformed}");
        }
    }

    #[test]
    fn members_by_type() {
        let r = ok(r#"{"Results":[
                {"Row":{"Guid":"u-1","Name":"alice@corp.example","Type":"User"}},
                {"Row":{"Guid":"g-1","Name":"PAM_L1@corp.example","Type":"Group"}},
                {"Row":{"Guid":"r-2","Name":"Nested","Type":"ROLE"}},
                {"Row":{"Guid":"x-1","Name":"Other","Type":"Device"}}]}"#);
        let m = role_members(W, &r).expect("members");
        let kinds: Vec<&MemberKind> = m.iter().map(|m| &m.kind).collect();
        assert_eq!(
            kinds,
            vec![
                &MemberKind::User,
                &MemberKind::Group,
                &MemberKind::Role,
                &MemberKind::Other("Device".into())
            ]
        );
        let ctl = ok(r#"{"Results":[{"Row":{"Guid":"u-1","Name":"al\nice","Type":"User"}}]}"#);
        assert!(role_members(W, &ctl).is_err());
        let no_type = ok(r#"{"Results":[{"Row":{"Guid":"u-1","Name":"alice"}}]}"#);
        assert!(role_members(W, &no_type).is_err());
    }

    #[test]
    fn users_only_as_asked_and_never_twice() {
        let asked = vec!["u-1".to_string()];
        let r = ok(
            r#"{"Results":[{"Row":{"ID":"u-1","Username":"alice@corp.example","Email":"Alice@Example.test"}},
                           {"Row":{"ID":"u-9","Username":"mallory","Email":"alice@example.test"}}]}"#,
        );
        let u = users(W, &r, &asked).expect("users");
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].email.as_deref(), Some("Alice@Example.test"));
        let twice = ok(
            r#"{"Results":[{"Row":{"ID":"u-1","Username":"a"}},{"Row":{"ID":"U-1","Username":"b"}}]}"#,
        );
        assert!(users(W, &twice, &asked).is_err());
        let blank = ok(r#"{"Results":[{"Row":{"ID":"u-1","Username":"a","Email":" "}}]}"#);
        assert_eq!(users(W, &blank, &asked).expect("users")[0].email, None);
    }
}

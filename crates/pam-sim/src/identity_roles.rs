//! Stand-in: the CyberArk Identity role reads of a Privilege Cloud tenant, as CyberArk's SDK
//! and Identity PowerShell module call them (facts and guesses: ASSUMPTIONS.md, section
//! Privilege Cloud, C8–C12):
//!
//! - `POST /Redrock/query` with `{"Script": "<SQL>"}`: `Select … from Role [WHERE Name = '…'
//!   [COLLATE NOCASE]]` and `Select … from User [WHERE ID = '…' | WHERE ID IN ('…', …)]`, rows
//!   in `Result.Results[].Row`;
//! - `POST /Roles/GetRoleMembers` with `{"Name": "<role id>"}` (or `?name=`): the role's direct
//!   members as `Row {Guid, Name, Type}`.
//!
//! Every answer is Identity's envelope `{"success", "Result", "Message", …}`. The caller is the
//! holder of a platform token the token endpoint issued ([`crate::identity`]); only the
//! service users listed in `[pvwa.identity] readers` may read roles and users.

use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::host::Hosted;
use crate::pvwa::{IdentityRoleDef, PvwaSim};

/// Identity's ID of a user, group or role of the stand-in, made from its name.
pub fn id_of(prefix: &str, name: &str) -> String {
    format!("{prefix}-{}", hex::encode(name.trim().to_lowercase()))
}

fn role_id(r: &IdentityRoleDef) -> String {
    r.id.clone().unwrap_or_else(|| id_of("r", &r.name))
}

fn envelope(success: bool, result: Value, message: Option<&str>) -> Response {
    (
        StatusCode::OK,
        Json(json!({
            "success": success,
            "Result": result,
            "Message": message,
            "MessageID": null,
            "Exception": null,
            "ErrorID": null,
            "ErrorCode": null,
            "IsSoftError": false,
            "InnerExceptions": null,
        })),
    )
        .into_response()
}

fn failure(message: &str) -> Response {
    envelope(false, Value::Null, Some(message))
}

fn table(rows: Vec<(&str, Value)>) -> Value {
    let n = rows.len();
    let results: Vec<Value> = rows
        .into_iter()
        .map(|(kind, row)| {
            let key = row
                .get("ID")
                .or_else(|| row.get("Guid"))
                .cloned()
                .unwrap_or(Value::Null);
            json!({"Entities": [{"Type": kind, "Key": key, "IsForeignKey": false}], "Row": row})
        })
        .collect();
    json!({"IsAggregate": false, "Count": n, "FullCount": n, "Results": results, "ReturnID": ""})
}

/// `POST /Redrock/query`, `POST /Roles/GetRoleMembers`
pub async fn handle(state: Arc<Hosted<PvwaSim>>, req: Request) -> Response {
    if req.method() != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response();
    }
    let path = req.uri().path().to_ascii_lowercase();
    let query_name = req.uri().query().and_then(|q| {
        crate::remote_access::token::parse_form(q.as_bytes())
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("name"))
            .map(|(_, v)| v)
    });
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Ok(body) = axum::body::to_bytes(req.into_body(), 64 * 1024).await else {
        return failure("The request is too large.");
    };
    let (roles, users) = match state
        .sim
        .identity_read(auth.as_deref(), state.host.clock.now_ms())
    {
        Ok(v) => v,
        Err(false) => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"success": false, "Result": null,
                    "Message": "Authentication (login or challenge) has failed."})),
            )
                .into_response();
        }
        Err(true) => {
            return failure(
                "You are not authorized to perform this operation. Please contact your IT helpdesk.",
            );
        }
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if path.trim_end_matches('/') == "/roles/getrolemembers" {
        let id = body
            .get("Name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(query_name);
        let Some(id) = id else {
            return failure("Missing parameter: Name.");
        };
        let Some(role) = roles
            .iter()
            .find(|r| role_id(r).eq_ignore_ascii_case(id.trim()))
        else {
            return failure("Role does not exist.");
        };
        let rows = role
            .members
            .iter()
            .map(|m| {
                let (kind, guid) = match m.kind.to_ascii_lowercase().as_str() {
                    "user" => ("User", id_of("u", &m.name)),
                    "group" => ("Group", id_of("g", &m.name)),
                    _ => (
                        "Role",
                        roles
                            .iter()
                            .find(|r| r.name.eq_ignore_ascii_case(&m.name))
                            .map(role_id)
                            .unwrap_or_else(|| id_of("r", &m.name)),
                    ),
                };
                (kind, json!({"Guid": guid, "Name": m.name, "Type": kind}))
            })
            .collect();
        return envelope(true, table(rows), None);
    }
    let Some(script) = body.get("Script").and_then(Value::as_str) else {
        return failure("Missing parameter: Script.");
    };
    let q = match parse(script) {
        Ok(q) => q,
        Err(e) => return failure(&format!("Query failed: {e}")),
    };
    let matches = |value: &str| match &q.filter {
        None => true,
        Some((_, vals, nocase)) => vals.iter().any(|v| {
            if *nocase {
                v.eq_ignore_ascii_case(value)
            } else {
                v == value
            }
        }),
    };
    let all: Vec<(&str, Value)> = match q.table.as_str() {
        "role" => {
            if q.filter
                .as_ref()
                .is_some_and(|(c, _, _)| c != "name" && c != "id")
            {
                return failure("Query failed: unsupported filter column.");
            }
            roles
                .iter()
                .filter(|r| match &q.filter {
                    Some((c, _, _)) if c == "id" => matches(&role_id(r)),
                    _ => matches(&r.name),
                })
                .map(|r| {
                    (
                        "Role",
                        json!({"ID": role_id(r), "_ID": role_id(r), "Name": r.name, "Description": null}),
                    )
                })
                .collect()
        }
        "user" => {
            if q.filter.as_ref().is_some_and(|(c, _, _)| c != "id") {
                return failure("Query failed: unsupported filter column.");
            }
            users
                .iter()
                .filter(|(name, _)| matches(&id_of("u", name)))
                .map(|(name, email)| {
                    (
                        "User",
                        json!({"ID": id_of("u", name), "Username": name, "DisplayName": name,
                               "Email": email, "MobileNumber": null, "LastLogin": null}),
                    )
                })
                .collect()
        }
        other => return failure(&format!("Query failed: no such table: {other}")),
    };
    // The columns selected, as SQL answers them (`*`: every column).
    let mut rows = Vec::new();
    for (kind, full) in all {
        let Some(obj) = full.as_object() else {
            continue;
        };
        let row = match &q.columns {
            None => full.clone(),
            Some(cols) => {
                let mut row = serde_json::Map::new();
                for c in cols {
                    let Some((k, v)) = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(c)) else {
                        return failure(&format!("Query failed: no such column: {c}"));
                    };
                    row.insert(k.clone(), v.clone());
                }
                Value::Object(row)
            }
        };
        rows.push((kind, row));
    }
    envelope(true, table(rows), None)
}

/// What a script asks: the table (lower case) and an optional filter (column in lower case,
/// the values compared, whether without regard to case).
#[derive(Debug)]
struct Query {
    /// The columns selected (`None` for `*`).
    columns: Option<Vec<String>>,
    table: String,
    filter: Option<(String, Vec<String>, bool)>,
}

/// The small SQL subset the stand-in reads: `Select <columns> from <table> [WHERE <column> =
/// '<text>' | WHERE <column> IN ('<text>', …)] [COLLATE NOCASE]`, `''` inside a text for `'`.
fn parse(script: &str) -> Result<Query, String> {
    let s = script.trim();
    let lower = s.to_ascii_lowercase();
    if !lower.starts_with("select ") {
        return Err("only Select is supported".into());
    }
    let from = lower.find(" from ").ok_or("no FROM")?;
    let list = s[7..from].trim();
    let columns = if list == "*" {
        None
    } else {
        let cols: Vec<String> = list.split(',').map(|c| c.trim().to_string()).collect();
        if cols
            .iter()
            .any(|c| c.is_empty() || !c.chars().all(|x| x.is_ascii_alphanumeric() || x == '_'))
        {
            return Err("the column list is not plain names".into());
        }
        Some(cols)
    };
    let rest = &s[from + 6..];
    let rest_lower = &lower[from + 6..];
    let table_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let table = rest_lower[..table_end].to_string();
    let tail = rest[table_end..].trim();
    if tail.is_empty() {
        return Ok(Query {
            columns,
            table,
            filter: None,
        });
    }
    let tail_lower = tail.to_ascii_lowercase();
    let Some(cond) = tail_lower.strip_prefix("where ").map(|_| tail[6..].trim()) else {
        return Err("only WHERE may follow the table".into());
    };
    let col_end = cond
        .find(|c: char| c.is_whitespace() || c == '=')
        .ok_or("no condition")?;
    let column = cond[..col_end].to_ascii_lowercase();
    let op = cond[col_end..].trim_start();
    let (values, after) = if let Some(v) = op.strip_prefix('=') {
        let (lit, after) = literal(v.trim_start())?;
        (vec![lit], after)
    } else if op.len() >= 2 && op[..2].eq_ignore_ascii_case("in") {
        let mut inner = op[2..]
            .trim_start()
            .strip_prefix('(')
            .ok_or("IN without (")?;
        let mut vals = Vec::new();
        loop {
            let (lit, after) = literal(inner.trim_start())?;
            vals.push(lit);
            let after = after.trim_start();
            if let Some(a) = after.strip_prefix(',') {
                inner = a;
            } else if let Some(a) = after.strip_prefix(')') {
                break (vals, a);
            } else {
                return Err("IN list not closed".into());
            }
        }
    } else {
        return Err("only = and IN are supported".into());
    };
    let after = after.trim();
    let nocase = match after.to_ascii_lowercase().as_str() {
        "" => false,
        "collate nocase" => true,
        _ => return Err(format!("unexpected text after the condition: {after}")),
    };
    Ok(Query {
        columns,
        table,
        filter: Some((column, values, nocase)),
    })
}

/// A `'…'` text at the start of `s` (`''` is one `'`), and what follows it.
fn literal(s: &str) -> Result<(String, &str), String> {
    let body = s.strip_prefix('\'').ok_or("a text must be quoted")?;
    let mut out = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if chars.peek().map(|(_, n)| *n) == Some('\'') {
                chars.next();
                out.push('\'');
            } else {
                return Ok((out, &body[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    Err("unterminated text".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_of_the_subset_and_quotes() {
        let q = parse("Select ID, Name from Role WHERE Name = 'O''Brien Role' COLLATE NOCASE")
            .expect("parsed");
        assert_eq!(q.table, "role");
        assert_eq!(
            q.filter,
            Some(("name".to_string(), vec!["O'Brien Role".to_string()], true))
        );
        let q = parse("select ID from User where ID IN ('u-1', 'u-2')").expect("parsed");
        assert_eq!(q.table, "user");
        assert_eq!(q.filter.expect("filter").1, vec!["u-1", "u-2"]);
        let all = parse("Select * from Role").expect("all");
        assert!(all.filter.is_none() && all.columns.is_none());
        // As CyberArk's SDK reads a user by ID.
        let q = parse(
            "Select ID, Username, DisplayName, Email, MobileNumber, LastLogin from User WHERE ID='u-1'",
        )
        .expect("sdk");
        assert_eq!(q.columns.expect("columns").len(), 6);
        assert_eq!(q.filter.expect("filter").1, vec!["u-1"]);
        for bad in [
            "Delete from Role",
            "Select ID from Role WHERE Name = 'x' OR 1=1",
            "Select ID from Role WHERE Name = 'x",
            "Select ID from Role WHERE Name LIKE 'x'",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

//! Stand-in: the ServiceNow Table API and OAuth token endpoint, as reference/ticketing.md §2,
//! §3 and §6.1 describe them — enough for our client and for ServiceNow's own `pysnc`.
//!
//! Tables `incident`, `change_request`, `sys_user`, `sys_choice` (list and by `sys_id`, under
//! `/api/now/table/`, `/api/now/v1/table/`, `/api/now/v2/table/`); encoded queries (`=`, `!=`,
//! `<`…`>=`, `LIKE`, `STARTSWITH`, `ENDSWITH`, `IN`, `ISEMPTY`, `^`, `^OR`, `^NQ`, `ORDERBY`),
//! with the platform's traps kept: no escape for `^`, and a condition on an unknown field is
//! dropped. Raw, display and `all` values, dot-walked fields as flat keys, reference links,
//! `X-Total-Count` on every list, `Link` paging. Basic and OAuth bearer authentication, the
//! `itil` role, the error envelope, an optional per-user rate limit (429 + `Retry-After`), a
//! hibernating instance (200 + HTML). Guesses are in ASSUMPTIONS.md (section ServiceNow).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::host::Hosted;

/// What this stand-in's handlers see: the host's shared parts and its own state.
type Shared = Hosted<ServiceNowSim>;

/// Lowercase path prefixes served by this stand-in.
pub const PREFIXES: &[&str] = &["/api/now/", "/oauth_token.do"];

// ---------------------------------------------------------------- scenario

/// Scenario section `[servicenow]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNowScenario {
    /// `sys_user` rows; those with a password may call the API.
    #[serde(default)]
    pub users: Vec<SnUserDef>,
    /// OAuth application registry entries.
    #[serde(default)]
    pub oauth_clients: Vec<OAuthClientDef>,
    #[serde(default)]
    pub incidents: Vec<IncidentDef>,
    #[serde(default)]
    pub changes: Vec<ChangeDef>,
    /// The session user's time zone for display values, as minutes east of UTC (-480 = PST).
    #[serde(default)]
    pub display_utc_offset_minutes: i32,
    /// `glide.invalid_query.returns_no_rows`: an unknown field empties the result instead of
    /// dropping its condition (the platform default is false).
    #[serde(default)]
    pub invalid_query_returns_no_rows: bool,
    /// Access-token lifetime in seconds (`expires_in`).
    #[serde(default = "default_ttl")]
    pub token_ttl_secs: i64,
    /// Requests per user and window before 429 (a `sys_rate_limit_rules` entry); none = no rule.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// The rate-limit window in seconds (the platform counts per hour).
    #[serde(default = "default_window")]
    pub rate_limit_window_secs: i64,
    /// Answer every API call with the hibernation page (200, HTML).
    #[serde(default)]
    pub hibernating: bool,
}

impl Default for ServiceNowScenario {
    fn default() -> Self {
        ServiceNowScenario {
            users: vec![],
            oauth_clients: vec![],
            incidents: vec![],
            changes: vec![],
            display_utc_offset_minutes: 0,
            invalid_query_returns_no_rows: false,
            token_ttl_secs: default_ttl(),
            rate_limit: None,
            rate_limit_window_secs: default_window(),
            hibernating: false,
        }
    }
}

fn default_ttl() -> i64 {
    1799
}
fn default_window() -> i64 {
    3600
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnUserDef {
    pub user_name: String,
    /// API password; users without one cannot authenticate.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub email: String,
    /// Roles; `itil` (or `admin`) may read the ticket tables.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientDef {
    pub client_id: String,
    pub client_secret: String,
    /// The OAuth Application User: enables the client-credentials grant, acting as this user.
    #[serde(default)]
    pub client_credentials_user: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentDef {
    pub number: String,
    /// Raw `state` (1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed, 8 Canceled).
    pub state: String,
    /// `caller_id` as a `user_name`.
    #[serde(default)]
    pub caller: Option<String>,
    /// `opened_by` as a `user_name`.
    #[serde(default)]
    pub opened_by: Option<String>,
    #[serde(default)]
    pub short_description: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeDef {
    pub number: String,
    /// Raw `state` (-5 New, -4 Assess, -3 Authorize, -2 Scheduled, -1 Implement, 0 Review,
    /// 3 Closed, 4 Canceled).
    pub state: String,
    /// Raw `approval` (`not requested`, `requested`, `approved`, `rejected`, …).
    #[serde(default = "not_requested")]
    pub approval: String,
    #[serde(default)]
    pub on_hold: bool,
    /// Planned window, seconds from the simulator's start (absent: empty field).
    #[serde(default)]
    pub start_in_secs: Option<i64>,
    #[serde(default)]
    pub end_in_secs: Option<i64>,
    /// `requested_by` as a `user_name`.
    #[serde(default)]
    pub requested_by: Option<String>,
    #[serde(default = "normal")]
    pub r#type: String,
    #[serde(default)]
    pub short_description: String,
}

fn not_requested() -> String {
    "not requested".into()
}
fn normal() -> String {
    "normal".into()
}

// ---------------------------------------------------------------- choice lists

const INCIDENT_STATES: &[(&str, &str)] = &[
    ("1", "New"),
    ("2", "In Progress"),
    ("3", "On Hold"),
    ("6", "Resolved"),
    ("7", "Closed"),
    ("8", "Canceled"),
];
const CHANGE_STATES: &[(&str, &str)] = &[
    ("-5", "New"),
    ("-4", "Assess"),
    ("-3", "Authorize"),
    ("-2", "Scheduled"),
    ("-1", "Implement"),
    ("0", "Review"),
    ("3", "Closed"),
    ("4", "Canceled"),
];
const APPROVALS: &[(&str, &str)] = &[
    ("not requested", "Not Yet Requested"),
    ("requested", "Requested"),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
];
const CHANGE_TYPES: &[(&str, &str)] = &[
    ("normal", "Normal"),
    ("standard", "Standard"),
    ("emergency", "Emergency"),
];

fn label_of(list: &[(&str, &str)], v: &str) -> String {
    list.iter()
        .find(|(raw, _)| *raw == v)
        .map(|(_, l)| l.to_string())
        .unwrap_or_else(|| v.to_string())
}

// ---------------------------------------------------------------- rows

/// One field of a row.
#[derive(Debug, Clone)]
enum Cell {
    Str(String),
    Choice {
        value: String,
        label: String,
    },
    /// A reference: target table and sys_id ("" when empty).
    Ref {
        table: &'static str,
        id: String,
    },
    /// Seconds since the epoch, or none.
    Date(Option<i64>),
    Bool(bool),
}

type Row = BTreeMap<String, Cell>;

const TABLES: &[&str] = &["incident", "change_request", "sys_user", "sys_choice"];

fn sys_id(table: &str, key: &str) -> String {
    // Deterministic 32 hex digits (FNV-1a over two seeds), so tests can predict ids.
    let h = |seed: u64| {
        let mut x: u64 = 0xcbf29ce484222325 ^ seed;
        for b in table.bytes().chain([b'/']).chain(key.bytes()) {
            x ^= u64::from(b);
            x = x.wrapping_mul(0x100000001b3);
        }
        x
    };
    format!("{:016x}{:016x}", h(1), h(2))
}

#[derive(Debug, Default)]
struct Token {
    user: String,
    expires: i64,
}

/// A logged request (for tests to assert what reached the server).
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub user: Option<String>,
    pub status: u16,
}

#[derive(Debug, Default)]
struct Inner {
    scenario: ServiceNowScenario,
    tables: BTreeMap<&'static str, Vec<Row>>,
    users: BTreeMap<String, SnUserDef>,
    tokens: HashMap<String, Token>,
    refresh: HashMap<String, (String, String)>,
    counts: HashMap<String, (i64, u32)>,
    log: Vec<LoggedRequest>,
    tokens_issued: u64,
}

/// State of the stand-in.
#[derive(Debug, Default)]
pub struct ServiceNowSim {
    inner: Mutex<Inner>,
}

impl ServiceNowSim {
    pub fn new(s: &ServiceNowScenario) -> anyhow::Result<Self> {
        let sim = ServiceNowSim::default();
        sim.load(s, Utc::now().timestamp())?;
        Ok(sim)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace the whole state with a scenario; windows are relative to `now`.
    pub fn load(&self, s: &ServiceNowScenario, now: i64) -> anyhow::Result<()> {
        let mut i = Inner {
            scenario: s.clone(),
            ..Inner::default()
        };
        let user_ref = |name: &Option<String>, users: &BTreeMap<String, SnUserDef>| {
            let id = match name {
                Some(n) if users.contains_key(n) => sys_id("sys_user", n),
                Some(n) => anyhow::bail!("user {n} is referenced but not defined"),
                None => String::new(),
            };
            Ok(Cell::Ref {
                table: "sys_user",
                id,
            })
        };
        for u in &s.users {
            if i.users.insert(u.user_name.clone(), u.clone()).is_some() {
                anyhow::bail!("user {} is defined twice", u.user_name);
            }
        }
        let mut users = Vec::new();
        for u in &s.users {
            let mut r = Row::new();
            r.insert("sys_id".into(), Cell::Str(sys_id("sys_user", &u.user_name)));
            r.insert("user_name".into(), Cell::Str(u.user_name.clone()));
            r.insert("first_name".into(), Cell::Str(u.first_name.clone()));
            r.insert("last_name".into(), Cell::Str(u.last_name.clone()));
            r.insert(
                "name".into(),
                Cell::Str(
                    format!("{} {}", u.first_name, u.last_name)
                        .trim()
                        .to_string(),
                ),
            );
            r.insert("email".into(), Cell::Str(u.email.clone()));
            r.insert("active".into(), Cell::Bool(u.active));
            r.insert("sys_created_on".into(), Cell::Date(Some(now - 86400)));
            users.push(r);
        }
        let mut incidents = Vec::new();
        for d in &s.incidents {
            let mut r = Row::new();
            r.insert("sys_id".into(), Cell::Str(sys_id("incident", &d.number)));
            r.insert("number".into(), Cell::Str(d.number.clone()));
            r.insert(
                "state".into(),
                Cell::Choice {
                    value: d.state.clone(),
                    label: label_of(INCIDENT_STATES, &d.state),
                },
            );
            r.insert(
                "active".into(),
                Cell::Bool(!matches!(d.state.as_str(), "6" | "7" | "8")),
            );
            r.insert("caller_id".into(), user_ref(&d.caller, &i.users)?);
            r.insert(
                "opened_by".into(),
                user_ref(&d.opened_by.clone().or(d.caller.clone()), &i.users)?,
            );
            r.insert("opened_at".into(), Cell::Date(Some(now - 3600)));
            r.insert(
                "short_description".into(),
                Cell::Str(d.short_description.clone()),
            );
            r.insert("sys_class_name".into(), Cell::Str("incident".into()));
            r.insert("sys_created_on".into(), Cell::Date(Some(now - 3600)));
            r.insert("sys_updated_on".into(), Cell::Date(Some(now - 60)));
            incidents.push(r);
        }
        let mut changes = Vec::new();
        for d in &s.changes {
            let mut r = Row::new();
            r.insert(
                "sys_id".into(),
                Cell::Str(sys_id("change_request", &d.number)),
            );
            r.insert("number".into(), Cell::Str(d.number.clone()));
            r.insert(
                "state".into(),
                Cell::Choice {
                    value: d.state.clone(),
                    label: label_of(CHANGE_STATES, &d.state),
                },
            );
            r.insert(
                "approval".into(),
                Cell::Choice {
                    value: d.approval.clone(),
                    label: label_of(APPROVALS, &d.approval),
                },
            );
            r.insert("on_hold".into(), Cell::Bool(d.on_hold));
            r.insert(
                "active".into(),
                Cell::Bool(!matches!(d.state.as_str(), "3" | "4")),
            );
            r.insert(
                "start_date".into(),
                Cell::Date(d.start_in_secs.map(|s| now + s)),
            );
            r.insert(
                "end_date".into(),
                Cell::Date(d.end_in_secs.map(|s| now + s)),
            );
            r.insert("requested_by".into(), user_ref(&d.requested_by, &i.users)?);
            r.insert("opened_by".into(), user_ref(&d.requested_by, &i.users)?);
            r.insert(
                "type".into(),
                Cell::Choice {
                    value: d.r#type.clone(),
                    label: label_of(CHANGE_TYPES, &d.r#type),
                },
            );
            r.insert(
                "short_description".into(),
                Cell::Str(d.short_description.clone()),
            );
            r.insert("sys_class_name".into(), Cell::Str("change_request".into()));
            r.insert("sys_created_on".into(), Cell::Date(Some(now - 7200)));
            r.insert("sys_updated_on".into(), Cell::Date(Some(now - 60)));
            changes.push(r);
        }
        let mut choices = Vec::new();
        for (table, element, list) in [
            ("incident", "state", INCIDENT_STATES),
            ("change_request", "state", CHANGE_STATES),
            ("change_request", "approval", APPROVALS),
            ("change_request", "type", CHANGE_TYPES),
        ] {
            for (seq, (value, label)) in list.iter().enumerate() {
                let mut r = Row::new();
                r.insert(
                    "sys_id".into(),
                    Cell::Str(sys_id("sys_choice", &format!("{table}.{element}.{value}"))),
                );
                for (k, v) in [
                    ("name", table),
                    ("element", element),
                    ("value", value),
                    ("label", label),
                    ("language", "en"),
                ] {
                    r.insert(k.into(), Cell::Str(v.to_string()));
                }
                r.insert("sequence".into(), Cell::Str(seq.to_string()));
                r.insert("inactive".into(), Cell::Bool(false));
                choices.push(r);
            }
        }
        for (n, list) in [("incident", &incidents), ("change_request", &changes)] {
            let mut seen = std::collections::BTreeSet::new();
            for r in list.iter() {
                if let Some(Cell::Str(num)) = r.get("number")
                    && !seen.insert(num.clone())
                {
                    anyhow::bail!("{n} {num} is defined twice");
                }
            }
        }
        i.tables.insert("sys_user", users);
        i.tables.insert("incident", incidents);
        i.tables.insert("change_request", changes);
        i.tables.insert("sys_choice", choices);
        *self.lock() = i;
        Ok(())
    }

    /// Every API call received, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Expire every access token (refresh tokens stay valid).
    pub fn expire_tokens(&self) {
        for t in self.lock().tokens.values_mut() {
            t.expires = i64::MIN;
        }
    }

    /// The deterministic sys_id of a seeded record.
    pub fn sys_id_of(table: &str, key: &str) -> String {
        sys_id(table, key)
    }
}

// ---------------------------------------------------------------- envelopes

fn envelope(status: StatusCode, message: &str, detail: Option<&str>) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "detail": detail}, "status": "failure"})),
    )
        .into_response()
}

fn not_authenticated() -> Response {
    envelope(
        StatusCode::UNAUTHORIZED,
        "User Not Authenticated",
        Some("Required to provide Auth information"),
    )
}

const HIBERNATING_PAGE: &str = "<!DOCTYPE html><html><head><title>Instance Hibernating page</title></head><body><h1>Your instance is hibernating</h1><p>Sign in to the developer portal to wake it up.</p></body></html>";

// ---------------------------------------------------------------- query language

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    NotLike,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
}

#[derive(Debug, Clone)]
struct Cond {
    field: String,
    op: Op,
    value: String,
}

/// A parsed encoded query: OR'ed groups (`^NQ`) of AND'ed clauses, each clause OR'ed conditions.
#[derive(Debug, Default)]
struct Query {
    groups: Vec<Vec<Vec<Cond>>>,
    order: Vec<(String, bool)>,
    /// A condition named an unknown field (dropped, or empties the result with the switch).
    unknown_field: bool,
}

const OPS: &[(&str, Op)] = &[
    ("ISNOTEMPTY", Op::IsNotEmpty),
    ("ISEMPTY", Op::IsEmpty),
    ("NOT LIKE", Op::NotLike),
    ("NOT IN", Op::NotIn),
    ("STARTSWITH", Op::StartsWith),
    ("ENDSWITH", Op::EndsWith),
    ("LIKE", Op::Like),
    ("IN", Op::In),
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("=", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
];

/// One term `<field><op><value>`: field names are lower case, operators upper case or symbols.
fn parse_term(t: &str) -> Option<Cond> {
    let end = t
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(t.len());
    let (field, rest) = t.split_at(end);
    if field.is_empty() {
        return None;
    }
    let (op, value) = OPS
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (op.clone(), v)))?;
    Some(Cond {
        field: field.to_string(),
        op,
        value: value.to_string(),
    })
}

fn parse_query(q: &str, i: &Inner, table: &str) -> Query {
    let mut out = Query::default();
    for group_text in q.split("^NQ") {
        let mut clauses: Vec<Vec<Cond>> = Vec::new();
        for (n, term) in group_text.split('^').enumerate() {
            let term = term.trim_matches(' ');
            if term.is_empty() || term == "EQ" {
                continue;
            }
            if let Some(f) = term.strip_prefix("ORDERBYDESC") {
                out.order.push((f.to_string(), true));
                continue;
            }
            if let Some(f) = term.strip_prefix("ORDERBY") {
                out.order.push((f.to_string(), false));
                continue;
            }
            let (or, body) = match term.strip_prefix("OR") {
                Some(b) if n > 0 => (true, b),
                _ => (false, term),
            };
            let cond = parse_term(body).filter(|c| {
                // A value evaluated on the server (`javascript:…`) is not evaluated here: the
                // condition is dropped like one on an unknown field (ASSUMPTIONS.md S7).
                field_known(i, table, &c.field) && !c.value.starts_with("javascript:")
            });
            match cond {
                None => out.unknown_field = true,
                Some(c) if or && !clauses.is_empty() => {
                    if let Some(last) = clauses.last_mut() {
                        last.push(c)
                    }
                }
                Some(c) => clauses.push(vec![c]),
            }
        }
        out.groups.push(clauses);
    }
    out
}

fn field_known(i: &Inner, table: &str, field: &str) -> bool {
    let mut table = table;
    let mut parts = field.split('.').peekable();
    while let Some(p) = parts.next() {
        let Some(sample) = i.tables.get(table).and_then(|rows| rows.first()) else {
            // An empty table: only its sys_id is known for certain.
            return p == "sys_id" && parts.peek().is_none();
        };
        match sample.get(p) {
            None => return false,
            Some(Cell::Ref { table: t, .. }) if parts.peek().is_some() => table = t,
            Some(_) => return parts.peek().is_none(),
        }
    }
    false
}

/// (raw, display, link target) of a field on a row, following dot-walks.
fn resolve(
    i: &Inner,
    table: &str,
    row: &Row,
    field: &str,
    base: &str,
) -> Option<(String, String, Option<String>)> {
    let (head, rest) = match field.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (field, None),
    };
    let cell = row.get(head)?;
    if let Some(rest) = rest {
        let Cell::Ref { table: t, id } = cell else {
            return None;
        };
        let target = i
            .tables
            .get(t)?
            .iter()
            .find(|r| matches!(r.get("sys_id"), Some(Cell::Str(s)) if s == id));
        return match target {
            Some(r) => resolve(i, t, r, rest, base),
            None => Some((String::new(), String::new(), None)),
        };
    }
    let offset = FixedOffset::east_opt(i.scenario.display_utc_offset_minutes * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    let _ = table;
    Some(match cell {
        Cell::Str(s) => (s.clone(), s.clone(), None),
        Cell::Choice { value, label } => (value.clone(), label.clone(), None),
        Cell::Bool(b) => (b.to_string(), b.to_string(), None),
        Cell::Date(None) => (String::new(), String::new(), None),
        Cell::Date(Some(t)) => {
            let utc = Utc.timestamp_opt(*t, 0).single()?;
            (
                utc.format("%Y-%m-%d %H:%M:%S").to_string(),
                utc.with_timezone(&offset)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                None,
            )
        }
        Cell::Ref { table: t, id } if id.is_empty() => {
            let _ = t;
            (String::new(), String::new(), None)
        }
        Cell::Ref { table: t, id } => {
            let display = i
                .tables
                .get(t)
                .and_then(|rows| {
                    rows.iter()
                        .find(|r| matches!(r.get("sys_id"), Some(Cell::Str(s)) if s == id))
                })
                .and_then(|r| r.get(if *t == "sys_user" { "name" } else { "number" }))
                .map(|c| match c {
                    Cell::Str(s) => s.clone(),
                    _ => String::new(),
                })
                .unwrap_or_default();
            (
                id.clone(),
                display,
                Some(format!("{base}/api/now/table/{t}/{id}")),
            )
        }
    })
}

fn eq_ci(a: &str, b: &str) -> bool {
    // String `=` follows the database collation: case-insensitive here (ASSUMPTIONS.md S3).
    a.to_lowercase() == b.to_lowercase()
}

fn cond_holds(i: &Inner, table: &str, row: &Row, c: &Cond) -> bool {
    let raw = resolve(i, table, row, &c.field, "")
        .map(|r| r.0)
        .unwrap_or_default();
    let cmp = || match (raw.parse::<f64>(), c.value.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b),
        _ => Some(raw.to_lowercase().cmp(&c.value.to_lowercase())),
    };
    let lower = raw.to_lowercase();
    let v = c.value.to_lowercase();
    match c.op {
        Op::Eq => eq_ci(&raw, &c.value),
        Op::Ne => !eq_ci(&raw, &c.value),
        Op::Lt => cmp() == Some(std::cmp::Ordering::Less),
        Op::Le => cmp() != Some(std::cmp::Ordering::Greater),
        Op::Gt => cmp() == Some(std::cmp::Ordering::Greater),
        Op::Ge => cmp() != Some(std::cmp::Ordering::Less),
        Op::Like => lower.contains(&v),
        Op::NotLike => !lower.contains(&v),
        Op::StartsWith => lower.starts_with(&v),
        Op::EndsWith => lower.ends_with(&v),
        Op::In => c.value.split(',').any(|x| eq_ci(&raw, x)),
        Op::NotIn => !c.value.split(',').any(|x| eq_ci(&raw, x)),
        Op::IsEmpty => raw.is_empty(),
        Op::IsNotEmpty => !raw.is_empty(),
    }
}

fn query_matches(i: &Inner, table: &str, row: &Row, q: &Query) -> bool {
    q.groups.iter().any(|clauses| {
        clauses
            .iter()
            .all(|ors| ors.iter().any(|c| cond_holds(i, table, row, c)))
    })
}

// ---------------------------------------------------------------- output

#[derive(Clone, Copy, PartialEq)]
enum Display {
    Raw,
    Shown,
    All,
}

fn render(
    i: &Inner,
    table: &str,
    row: &Row,
    fields: &[String],
    display: Display,
    links: bool,
    base: &str,
) -> Value {
    let names: Vec<String> = if fields.is_empty() {
        row.keys().cloned().collect()
    } else {
        fields.to_vec()
    };
    let mut out = serde_json::Map::new();
    for f in names {
        if !field_known(i, table, &f) {
            continue; // invalid names are silently ignored
        }
        let Some((raw, shown, link)) = resolve(i, table, row, &f, base) else {
            continue;
        };
        let link = link.filter(|_| links);
        let v = match (display, link) {
            (Display::Raw, None) => Value::String(raw),
            (Display::Raw, Some(l)) => json!({"link": l, "value": raw}),
            (Display::Shown, None) => Value::String(shown),
            (Display::Shown, Some(l)) => json!({"display_value": shown, "link": l}),
            (Display::All, None) => json!({"display_value": shown, "value": raw}),
            (Display::All, Some(l)) => json!({"display_value": shown, "link": l, "value": raw}),
        };
        out.insert(f, v);
    }
    Value::Object(out)
}

// ---------------------------------------------------------------- dispatch

fn form_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (form_decode(k), form_decode(v)),
            None => (form_decode(kv), String::new()),
        })
        .collect()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let bytes = base64_decode(b64.trim())?;
    let s = String::from_utf8(bytes).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Standard base64 (the alphabet of HTTP Basic), padding optional.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn random_token(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..n)
        .map(|_| A[rng.random_range(0..A.len())] as char)
        .collect()
}

/// Entry point for `/api/now/…` and `/oauth_token.do`.
pub async fn handle(state: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return envelope(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
                None,
            );
        }
    };
    let now = state.host.clock.now();
    let base = state.host.base_url.get().cloned().unwrap_or_default();
    let sim = &state.sim;
    let mut i = sim.lock();
    if path.eq_ignore_ascii_case("/oauth_token.do") {
        return token_endpoint(&mut i, &method, &headers, &body, now);
    }
    let mut logged = LoggedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        user: None,
        status: 0,
    };
    let r = api(
        &mut i,
        &method,
        &headers,
        &path,
        &query,
        now,
        &base,
        &mut logged,
    );
    logged.status = r.status().as_u16();
    i.log.push(logged);
    r
}

fn authenticate(i: &Inner, headers: &HeaderMap, now: i64) -> Option<String> {
    if let Some((u, p)) = basic_credentials(headers) {
        let user = i.users.get(&u)?;
        return (user.active && user.password.as_deref() == Some(p.as_str())).then_some(u);
    }
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let tok = v.strip_prefix("Bearer ")?;
    let t = i.tokens.get(tok)?;
    (t.expires > now).then(|| t.user.clone())
}

#[allow(clippy::too_many_arguments)]
fn api(
    i: &mut Inner,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: &str,
    now: i64,
    base: &str,
    logged: &mut LoggedRequest,
) -> Response {
    if i.scenario.hibernating {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html;charset=UTF-8")],
            HIBERNATING_PAGE,
        )
            .into_response();
    }
    let Some(user) = authenticate(i, headers, now) else {
        return not_authenticated();
    };
    logged.user = Some(user.clone());
    // Rate limit: one rule for every user, counted per window.
    let mut limit_headers: Vec<(&'static str, String)> = Vec::new();
    if let Some(limit) = i.scenario.rate_limit {
        let window = i.scenario.rate_limit_window_secs.max(1);
        let start = now - now.rem_euclid(window);
        let e = i.counts.entry(user.clone()).or_insert((start, 0));
        if e.0 != start {
            *e = (start, 0);
        }
        e.1 += 1;
        let reset = start + window;
        limit_headers = vec![
            ("X-RateLimit-Limit", limit.to_string()),
            ("X-RateLimit-Reset", reset.to_string()),
            ("X-RateLimit-Rule", sys_id("sys_rate_limit_rules", "all")),
        ];
        if e.1 > limit {
            let mut r = envelope(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                Some("The user has exceeded the rate limit of the rule"),
            );
            limit_headers.push(("Retry-After", (reset - now).max(1).to_string()));
            for (k, v) in limit_headers {
                if let Ok(v) = v.parse() {
                    r.headers_mut().insert(k, v);
                }
            }
            return r;
        }
    }
    let mut r = table_api(i, &user, method, path, query, base);
    for (k, v) in limit_headers {
        if let Ok(v) = v.parse() {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn table_api(
    i: &Inner,
    user: &str,
    method: &Method,
    path: &str,
    query: &str,
    base: &str,
) -> Response {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    // api / now / [v1|v2] / table / {table} [/ {sys_id}]
    let mut rest: &[String] = segs.get(2..).unwrap_or(&[]);
    let mut v1 = false;
    if let Some(v) = rest.first()
        && (v == "v1" || v == "v2")
    {
        v1 = v == "v1";
        rest = &rest[1..];
    }
    let (table, id) = match rest {
        [t, table] if t == "table" => (table.as_str(), None),
        [t, table, id] if t == "table" => (table.as_str(), Some(id.as_str())),
        _ => {
            return envelope(
                StatusCode::BAD_REQUEST,
                "Requested URI does not represent any resource",
                None,
            );
        }
    };
    if method != Method::GET {
        return envelope(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not Supported",
            Some("The stand-in serves reads only"),
        );
    }
    if !TABLES.contains(&table) {
        return envelope(
            StatusCode::BAD_REQUEST,
            &format!("Invalid table {table}"),
            Some(&format!("Table {table} does not exist")),
        );
    }
    let roles = i
        .users
        .get(user)
        .map(|u| u.roles.clone())
        .unwrap_or_default();
    if !roles.iter().any(|r| r == "itil" || r == "admin") {
        return envelope(
            StatusCode::FORBIDDEN,
            "Insufficient rights to query records",
            None,
        );
    }
    let params = parse_params(query);
    let get = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
    };
    let display = match get("sysparm_display_value") {
        Some("true") => Display::Shown,
        Some("all") => Display::All,
        _ => Display::Raw,
    };
    let links = get("sysparm_exclude_reference_link") != Some("true");
    let fields: Vec<String> = get("sysparm_fields")
        .map(|f| {
            f.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let rows = i.tables.get(table).map(Vec::as_slice).unwrap_or(&[]);
    if let Some(id) = id {
        // By sys_id: the query and limit parameters are ignored (pysnc sends them).
        return match rows
            .iter()
            .find(|r| matches!(r.get("sys_id"), Some(Cell::Str(s)) if s == id))
        {
            Some(r) => Json(json!({"result": render(i, table, r, &fields, display, links, base)}))
                .into_response(),
            None => envelope(
                StatusCode::NOT_FOUND,
                "No Record found",
                Some("Record doesn't exist or ACL restricts the record retrieval"),
            ),
        };
    }
    let mut qtext = get("sysparm_query").unwrap_or("").to_string();
    // name=value pairs act as extra conditions.
    for (k, v) in &params {
        if !k.starts_with("sysparm_") && !k.is_empty() {
            qtext = format!("{k}={v}^{qtext}");
        }
    }
    let q = parse_query(&qtext, i, table);
    let mut matched: Vec<&Row> = if q.unknown_field && i.scenario.invalid_query_returns_no_rows {
        Vec::new()
    } else {
        rows.iter()
            .filter(|r| query_matches(i, table, r, &q))
            .collect()
    };
    for (f, desc) in q.order.iter().rev() {
        matched.sort_by(|a, b| {
            let ka = resolve(i, table, a, f, base)
                .map(|r| r.0)
                .unwrap_or_default();
            let kb = resolve(i, table, b, f, base)
                .map(|r| r.0)
                .unwrap_or_default();
            let o = match (ka.parse::<f64>(), kb.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                _ => ka.cmp(&kb),
            };
            if *desc { o.reverse() } else { o }
        });
    }
    let total = matched.len();
    let limit = get("sysparm_limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10_000)
        .max(1);
    let offset = get("sysparm_offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<Value> = matched
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| render(i, table, r, &fields, display, links, base))
        .collect();
    if page.is_empty() && v1 {
        return envelope(
            StatusCode::NOT_FOUND,
            "No Record found",
            Some("Records not found"),
        );
    }
    let mut r = Json(json!({"result": page})).into_response();
    if let Ok(v) = total.to_string().parse() {
        r.headers_mut().insert("X-Total-Count", v);
    }
    if get("sysparm_suppress_pagination_header") != Some("true") {
        let link = |off: usize, rel: &str| {
            let mut p: Vec<(String, String)> = params
                .iter()
                .filter(|(k, _)| k != "sysparm_offset" && k != "sysparm_limit")
                .cloned()
                .collect();
            p.push(("sysparm_limit".into(), limit.to_string()));
            p.push(("sysparm_offset".into(), off.to_string()));
            let qs: Vec<String> = p
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect();
            format!(
                "<{base}/api/now/table/{table}?{}>;rel=\"{rel}\"",
                qs.join("&")
            )
        };
        let last = if total == 0 {
            0
        } else {
            (total - 1) / limit * limit
        };
        let mut parts = vec![link(0, "first")];
        if offset > 0 {
            parts.push(link(offset.saturating_sub(limit), "prev"));
        }
        if offset + limit < total {
            parts.push(link(offset + limit, "next"));
        }
        parts.push(link(last, "last"));
        if let Ok(v) = parts.join(",").parse() {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    r
}

fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn oauth_fail(error: &str, description: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error_description": description, "error": error})),
    )
        .into_response()
}

fn token_endpoint(
    i: &mut Inner,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Response {
    if method != Method::POST {
        return envelope(StatusCode::METHOD_NOT_ALLOWED, "Method not Supported", None);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        // The endpoint reads form bodies only; JSON fails.
        return oauth_fail("server_error", "access_denied");
    }
    let form = parse_params(&String::from_utf8_lossy(body));
    let get = |k: &str| form.iter().find(|(fk, _)| fk == k).map(|(_, v)| v.clone());
    let (cid, csecret) = match (get("client_id"), get("client_secret")) {
        (Some(a), Some(b)) => (a, b),
        _ => match basic_credentials(headers) {
            Some(c) => c,
            None => return oauth_fail("server_error", "access_denied"),
        },
    };
    let Some(client) = i
        .scenario
        .oauth_clients
        .iter()
        .find(|c| c.client_id == cid && c.client_secret == csecret)
        .cloned()
    else {
        return oauth_fail("server_error", "access_denied");
    };
    let user = match get("grant_type").as_deref() {
        Some("password") => {
            let (Some(u), Some(p)) = (get("username"), get("password")) else {
                return oauth_fail("server_error", "access_denied");
            };
            match i.users.get(&u) {
                Some(user) if user.active && user.password.as_deref() == Some(p.as_str()) => u,
                _ => return oauth_fail("server_error", "access_denied"),
            }
        }
        Some("refresh_token") => {
            let Some(rt) = get("refresh_token") else {
                return oauth_fail("server_error", "access_denied");
            };
            match i.refresh.get(&rt) {
                Some((c, u)) if *c == client.client_id => u.clone(),
                _ => return oauth_fail("server_error", "access_denied"),
            }
        }
        Some("client_credentials") => match &client.client_credentials_user {
            Some(u) => u.clone(),
            None => {
                return oauth_fail("unauthorized_client", "integration user is not configured");
            }
        },
        _ => return oauth_fail("server_error", "access_denied"),
    };
    let access = random_token(86);
    let refresh = random_token(86);
    let ttl = i.scenario.token_ttl_secs;
    i.tokens.insert(
        access.clone(),
        Token {
            user: user.clone(),
            expires: now + ttl,
        },
    );
    i.refresh
        .insert(refresh.clone(), (client.client_id.clone(), user));
    i.tokens_issued += 1;
    Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "scope": "useraccount",
        "token_type": "Bearer",
        "expires_in": ttl,
    }))
    .into_response()
}

// ---------------------------------------------------------------- admin

/// Settings changed at run time by the admin API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub hibernating: Option<bool>,
    pub invalid_query_returns_no_rows: Option<bool>,
    pub rate_limit: Option<Option<u32>>,
    pub rate_limit_window_secs: Option<i64>,
}

pub fn admin_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/requests",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.sim.requests()) }),
        )
        .route("/scenario", post(admin_load))
        .route("/settings", post(admin_settings))
        .route(
            "/expire_tokens",
            post(|State(s): State<Arc<Shared>>| async move {
                s.sim.expire_tokens();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/stats",
            get(|State(s): State<Arc<Shared>>| async move {
                let i = s.sim.lock();
                Json(json!({"tokens_issued": i.tokens_issued, "requests": i.log.len()}))
            }),
        )
}

async fn admin_load(State(s): State<Arc<Shared>>, Json(sc): Json<ServiceNowScenario>) -> Response {
    match s.sim.load(&sc, s.host.clock.now()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn admin_settings(State(s): State<Arc<Shared>>, Json(set): Json<Settings>) -> StatusCode {
    let mut i = s.sim.lock();
    if let Some(h) = set.hibernating {
        i.scenario.hibernating = h;
    }
    if let Some(v) = set.invalid_query_returns_no_rows {
        i.scenario.invalid_query_returns_no_rows = v;
    }
    if let Some(v) = set.rate_limit {
        i.scenario.rate_limit = v;
        i.counts.clear();
    }
    if let Some(v) = set.rate_limit_window_secs {
        i.scenario.rate_limit_window_secs = v;
    }
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> ServiceNowSim {
        let s: ServiceNowScenario = toml::from_str(
            r#"
users = [{ user_name = "abel.tuter", first_name = "Abel", last_name = "Tuter" },
         { user_name = "svc", password = "pw", roles = ["itil"] }]
incidents = [{ number = "INC0010001", state = "2", caller = "abel.tuter" },
             { number = "INC0010002", state = "7" },
             { number = "INC0010003", state = "1" }]
"#,
        )
        .expect("scenario");
        ServiceNowSim::new(&s).expect("sim")
    }

    fn numbers(q: &str) -> Vec<String> {
        let sim = sim();
        let i = sim.lock();
        let q = parse_query(q, &i, "incident");
        let rows = &i.tables["incident"];
        rows.iter()
            .filter(|r| query_matches(&i, "incident", r, &q))
            .filter_map(|r| match r.get("number") {
                Some(Cell::Str(s)) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn encoded_queries_and_their_traps() {
        assert_eq!(numbers("number=INC0010001"), vec!["INC0010001"]);
        assert_eq!(numbers("number=inc0010001"), vec!["INC0010001"]);
        assert_eq!(
            numbers("state=2^ORstate=7"),
            vec!["INC0010001", "INC0010002"]
        );
        assert_eq!(numbers("stateIN1,7"), vec!["INC0010002", "INC0010003"]);
        assert_eq!(
            numbers("numberSTARTSWITHINC001000^state!=2"),
            vec!["INC0010002", "INC0010003"]
        );
        assert_eq!(
            numbers("caller_id.user_name=abel.tuter"),
            vec!["INC0010001"]
        );
        // The caret trap: a new OR'ed group whose only condition is dropped matches everything.
        assert_eq!(numbers("number=INC0010001^NQanyfieldANYTHING").len(), 3);
        // An unknown field's condition is dropped: everything matches.
        assert_eq!(numbers("numbr=INC0010001").len(), 3);
        assert_eq!(numbers("number=javascript:gs.getUserID()").len(), 3);
    }

    #[test]
    fn basic_header_decodes() {
        assert_eq!(base64_decode("c3ZjOnB3").expect("b64"), b"svc:pw");
        assert_eq!(base64_decode("YQ==").expect("b64"), b"a");
        assert!(base64_decode("!!").is_none());
    }
}

//! Stand-in: the BMC Remedy / Helix AR System REST API, as reference/ticketing.md §4 and §6.2
//! describe it.
//!
//! `POST /api/jwt/login` (form) answers the token as plain text; `POST /api/jwt/logout` ends it
//! (204); `Authorization: AR-JWT <token>` on every read, expiring after the configured lifetime
//! on the simulator's clock. `GET /api/arsys/v1/entry/{form}` with `q` (quoted field names and
//! values with doubled quotes, `= != < > <= >= LIKE`, `AND OR NOT`, parentheses), `fields=
//! values(…)`, `limit`, `offset`; `…/{form}/{id}` for one entry. Incident and change forms
//! (join and base), `Request ID` as `id|id` on join forms, status labels, dates with milliseconds
//! and `+0000`. Errors are AR message arrays. Plain HTTP gets 403. Guesses: ASSUMPTIONS.md
//! (section Remedy).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::host::Hosted;

/// What this stand-in's handlers see: the host's shared parts and its own state.
type Shared = Hosted<RemedySim>;

/// Lowercase path prefixes served by this stand-in.
pub const PREFIXES: &[&str] = &["/api/jwt/", "/api/arsys/"];

pub const INCIDENT_JOIN: &str = "HPD:IncidentInterface";
pub const INCIDENT_BASE: &str = "HPD:Help Desk";
pub const CHANGE_JOIN: &str = "CHG:ChangeInterface";
pub const CHANGE_BASE: &str = "CHG:Infrastructure Change";

// ---------------------------------------------------------------- scenario

/// Scenario section `[remedy]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemedyScenario {
    #[serde(default)]
    pub users: Vec<RemedyUserDef>,
    #[serde(default)]
    pub incidents: Vec<RemedyIncidentDef>,
    #[serde(default)]
    pub changes: Vec<RemedyChangeDef>,
    /// JWT lifetime in seconds (the server default is one hour).
    #[serde(default = "default_ttl")]
    pub token_ttl_secs: i64,
    /// Serve the API over plain HTTP too (the server refuses it by default).
    #[serde(default)]
    pub allow_http: bool,
}

impl Default for RemedyScenario {
    fn default() -> Self {
        RemedyScenario {
            users: vec![],
            incidents: vec![],
            changes: vec![],
            token_ttl_secs: default_ttl(),
            allow_http: false,
        }
    }
}

fn default_ttl() -> i64 {
    3600
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemedyUserDef {
    pub name: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemedyIncidentDef {
    /// `Incident Number`, e.g. `INC000000000430`.
    pub id: String,
    /// `Status` label: New, Assigned, In Progress, Pending, Resolved, Closed, Cancelled.
    pub status: String,
    #[serde(default)]
    pub customer_login_id: Option<String>,
    #[serde(default)]
    pub direct_contact_login_id: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemedyChangeDef {
    /// `Infrastructure Change ID`, e.g. `CRQ000000000101`.
    pub id: String,
    /// `Change Request Status` label (Draft … Cancelled).
    pub status: String,
    /// Planned window, seconds from the simulator's start (absent: null).
    #[serde(default)]
    pub start_in_secs: Option<i64>,
    #[serde(default)]
    pub end_in_secs: Option<i64>,
    /// The requester's login, in the field `Requestor ID` (a guess: ASSUMPTIONS.md R6).
    #[serde(default)]
    pub requestor_id: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

const INCIDENT_STATUSES: &[&str] = &[
    "New",
    "Assigned",
    "In Progress",
    "Pending",
    "Resolved",
    "Closed",
    "Cancelled",
];
const CHANGE_STATUSES: &[&str] = &[
    "Draft",
    "Request For Authorization",
    "Request For Change",
    "Planning In Progress",
    "Scheduled For Review",
    "Scheduled For Approval",
    "Scheduled",
    "Implementation In Progress",
    "Pending",
    "Rejected",
    "Completed",
    "Closed",
    "Cancelled",
];

const INCIDENT_FIELDS: &[&str] = &[
    "Request ID",
    "Incident Number",
    "Status",
    "Status_Reason",
    "Customer Login ID",
    "Direct Contact Login ID",
    "First Name",
    "Last Name",
    "Description",
    "Submitter",
    "Submit Date",
    "Last Modified Date",
];
const CHANGE_FIELDS: &[&str] = &[
    "Request ID",
    "Infrastructure Change ID",
    "Change Request Status",
    "Status Reason",
    "Scheduled Start Date",
    "Scheduled End Date",
    "Requestor ID",
    "First Name",
    "Last Name",
    "Description",
    "Submitter",
    "Submit Date",
    "Last Modified Date",
];

// ---------------------------------------------------------------- state

type Entry = BTreeMap<String, Value>;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RemedyStats {
    pub logins: u64,
    pub failed_logins: u64,
    pub logouts: u64,
    /// Tokens issued and not logged out (expired ones included).
    pub open: usize,
    /// Reads refused because the token had expired.
    pub expired_refused: u64,
}

/// A logged API call.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
}

#[derive(Debug, Default)]
struct Inner {
    scenario: RemedyScenario,
    /// Form name -> entries (join and base forms share the data).
    incidents: Vec<Entry>,
    changes: Vec<Entry>,
    tokens: HashMap<String, (String, i64)>,
    stats: RemedyStats,
    log: Vec<LoggedRequest>,
}

#[derive(Debug, Default)]
pub struct RemedySim {
    inner: Mutex<Inner>,
}

fn date(t: Option<i64>) -> Value {
    match t.and_then(|t| Utc.timestamp_opt(t, 0).single()) {
        Some(d) => Value::String(d.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()),
        None => Value::Null,
    }
}

fn opt(s: &Option<String>) -> Value {
    s.clone().map(Value::String).unwrap_or(Value::Null)
}

impl RemedySim {
    pub fn new(s: &RemedyScenario) -> anyhow::Result<Self> {
        let sim = RemedySim::default();
        sim.load(s, Utc::now().timestamp())?;
        Ok(sim)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace the whole state with a scenario; windows are relative to `now`.
    pub fn load(&self, s: &RemedyScenario, now: i64) -> anyhow::Result<()> {
        let mut i = Inner {
            scenario: s.clone(),
            ..Inner::default()
        };
        for d in &s.incidents {
            if !INCIDENT_STATUSES.contains(&d.status.as_str()) {
                anyhow::bail!("incident {}: unknown status {}", d.id, d.status);
            }
            let mut e = Entry::new();
            e.insert("Request ID".into(), json!(d.id));
            e.insert("Incident Number".into(), json!(d.id));
            e.insert("Status".into(), json!(d.status));
            e.insert("Status_Reason".into(), Value::Null);
            e.insert("Customer Login ID".into(), opt(&d.customer_login_id));
            e.insert(
                "Direct Contact Login ID".into(),
                opt(&d.direct_contact_login_id),
            );
            e.insert("First Name".into(), opt(&d.first_name));
            e.insert("Last Name".into(), opt(&d.last_name));
            e.insert("Description".into(), opt(&d.description));
            e.insert("Submitter".into(), json!("Remedy Application Service"));
            e.insert("Submit Date".into(), date(Some(now - 3600)));
            e.insert("Last Modified Date".into(), date(Some(now - 60)));
            i.incidents.push(e);
        }
        for d in &s.changes {
            if !CHANGE_STATUSES.contains(&d.status.as_str()) {
                anyhow::bail!("change {}: unknown status {}", d.id, d.status);
            }
            let mut e = Entry::new();
            e.insert("Request ID".into(), json!(d.id));
            e.insert("Infrastructure Change ID".into(), json!(d.id));
            e.insert("Change Request Status".into(), json!(d.status));
            e.insert("Status Reason".into(), Value::Null);
            e.insert(
                "Scheduled Start Date".into(),
                date(d.start_in_secs.map(|s| now + s)),
            );
            e.insert(
                "Scheduled End Date".into(),
                date(d.end_in_secs.map(|s| now + s)),
            );
            e.insert("Requestor ID".into(), opt(&d.requestor_id));
            e.insert("First Name".into(), opt(&d.first_name));
            e.insert("Last Name".into(), opt(&d.last_name));
            e.insert("Description".into(), opt(&d.description));
            e.insert("Submitter".into(), json!("Remedy Application Service"));
            e.insert("Submit Date".into(), date(Some(now - 7200)));
            e.insert("Last Modified Date".into(), date(Some(now - 60)));
            i.changes.push(e);
        }
        *self.lock() = i;
        Ok(())
    }

    pub fn stats(&self) -> RemedyStats {
        let i = self.lock();
        RemedyStats {
            open: i.tokens.len(),
            ..i.stats.clone()
        }
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Make every token expired (as if its lifetime had passed).
    pub fn expire_tokens(&self) {
        for t in self.lock().tokens.values_mut() {
            t.1 = i64::MIN;
        }
    }
}

// ---------------------------------------------------------------- errors

fn ar_error(status: StatusCode, number: i64, text: &str, appended: Option<&str>) -> Response {
    (
        status,
        Json(json!([{
            "messageType": "ERROR",
            "messageText": text,
            "messageAppendedText": appended,
            "messageNumber": number,
        }])),
    )
        .into_response()
}

fn auth_failed(appended: &str) -> Response {
    ar_error(
        StatusCode::UNAUTHORIZED,
        623,
        "Authentication failed",
        Some(appended),
    )
}

// ---------------------------------------------------------------- qualification language

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    Str(String),
    Num(String),
    Keyword(String),
    Op(&'static str),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut n = 0;
    let quoted = |n: &mut usize, quote: char| -> Result<String, String> {
        let mut s = String::new();
        *n += 1;
        loop {
            match c.get(*n) {
                None => return Err(format!("unterminated {quote}")),
                Some(&ch) if ch == quote => {
                    if c.get(*n + 1) == Some(&quote) {
                        s.push(quote);
                        *n += 2;
                    } else {
                        *n += 1;
                        return Ok(s);
                    }
                }
                Some(&ch) => {
                    s.push(ch);
                    *n += 1;
                }
            }
        }
    };
    while n < c.len() {
        let ch = c[n];
        if ch.is_whitespace() {
            n += 1;
        } else if ch == '\'' {
            out.push(Tok::Field(quoted(&mut n, '\'')?));
        } else if ch == '"' {
            out.push(Tok::Str(quoted(&mut n, '"')?));
        } else if ch == '(' {
            out.push(Tok::Open);
            n += 1;
        } else if ch == ')' {
            out.push(Tok::Close);
            n += 1;
        } else if ch == '$' {
            let end = c[n + 1..]
                .iter()
                .position(|&x| x == '$')
                .ok_or("unterminated keyword")?;
            out.push(Tok::Keyword(c[n + 1..n + 1 + end].iter().collect()));
            n += end + 2;
        } else if "=!<>".contains(ch) {
            let two: String = c[n..(n + 2).min(c.len())].iter().collect();
            let op = match two.as_str() {
                "!=" => "!=",
                "<=" => "<=",
                ">=" => ">=",
                _ => match ch {
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    _ => return Err("`!` without `=`".into()),
                },
            };
            n += op.len();
            out.push(Tok::Op(op));
        } else if ch.is_ascii_digit() || ch == '-' {
            let start = n;
            n += 1;
            while n < c.len() && (c[n].is_ascii_digit() || c[n] == '.') {
                n += 1;
            }
            out.push(Tok::Num(c[start..n].iter().collect()));
        } else if ch.is_ascii_alphabetic() {
            let start = n;
            while n < c.len() && c[n].is_ascii_alphabetic() {
                n += 1;
            }
            let w: String = c[start..n].iter().collect();
            out.push(match w.to_ascii_uppercase().as_str() {
                "AND" => Tok::And,
                "OR" => Tok::Or,
                "NOT" => Tok::Not,
                "LIKE" => Tok::Op("LIKE"),
                _ => {
                    return Err(format!(
                        "unexpected word `{w}` (field names go in single quotes)"
                    ));
                }
            });
        } else {
            return Err(format!("unexpected character `{ch}`"));
        }
    }
    Ok(out)
}

#[derive(Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Tok, &'static str, Tok),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.not()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            l = Expr::And(Box::new(l), Box::new(self.not()?));
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or()?;
            if self.next() != Some(Tok::Close) {
                return Err("missing `)`".into());
            }
            return Ok(e);
        }
        let l = self.operand()?;
        let op = match self.next() {
            Some(Tok::Op(op)) => op,
            _ => return Err("expected an operator".into()),
        };
        let r = self.operand()?;
        Ok(Expr::Cmp(l, op, r))
    }
    fn operand(&mut self) -> Result<Tok, String> {
        match self.next() {
            Some(t @ (Tok::Field(_) | Tok::Str(_) | Tok::Num(_) | Tok::Keyword(_))) => Ok(t),
            _ => Err("expected a field, a value or a keyword".into()),
        }
    }
}

fn parse_qualification(q: &str) -> Result<Expr, String> {
    let toks = tokenize(q)?;
    let mut p = Parser { toks, pos: 0 };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err("unexpected text after the qualification".into());
    }
    Ok(e)
}

/// Fields named in a qualification (to refuse unknown ones with 314).
fn fields_in(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            fields_in(a, out);
            fields_in(b, out);
        }
        Expr::Not(a) => fields_in(a, out),
        Expr::Cmp(l, _, r) => {
            for t in [l, r] {
                if let Tok::Field(f) = t {
                    out.push(f.clone());
                }
            }
        }
    }
}

fn operand_value(t: &Tok, entry: &Entry, user: &str) -> Option<String> {
    match t {
        Tok::Field(f) => match entry.get(f) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        },
        Tok::Str(s) | Tok::Num(s) => Some(s.clone()),
        Tok::Keyword(k) if k.eq_ignore_ascii_case("USER") => Some(user.to_string()),
        Tok::Keyword(_) => None,
        _ => None,
    }
}

fn like(value: &str, pattern: &str) -> bool {
    // `%` any run, `_` one character; case-insensitive like `=` (ASSUMPTIONS.md R4).
    fn m(v: &[char], p: &[char]) -> bool {
        match p.first() {
            None => v.is_empty(),
            Some('%') => (0..=v.len()).any(|k| m(&v[k..], &p[1..])),
            Some('_') => !v.is_empty() && m(&v[1..], &p[1..]),
            Some(c) => v.first() == Some(c) && m(&v[1..], &p[1..]),
        }
    }
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    m(&v, &p)
}

fn eval(e: &Expr, entry: &Entry, user: &str) -> bool {
    match e {
        Expr::And(a, b) => eval(a, entry, user) && eval(b, entry, user),
        Expr::Or(a, b) => eval(a, entry, user) || eval(b, entry, user),
        Expr::Not(a) => !eval(a, entry, user),
        Expr::Cmp(l, op, r) => {
            let a = operand_value(l, entry, user);
            let b = operand_value(r, entry, user);
            let (a, b) = match (a, b) {
                (None, None) => return matches!(*op, "=" | "LIKE"),
                (None, Some(_)) | (Some(_), None) => return *op == "!=",
                (Some(a), Some(b)) => (a, b),
            };
            let ord = match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.partial_cmp(&y),
                _ => Some(a.to_lowercase().cmp(&b.to_lowercase())),
            };
            use std::cmp::Ordering::*;
            match *op {
                "=" => ord == Some(Equal),
                "!=" => ord != Some(Equal),
                "<" => ord == Some(Less),
                ">" => ord == Some(Greater),
                "<=" => matches!(ord, Some(Less | Equal)),
                ">=" => matches!(ord, Some(Greater | Equal)),
                "LIKE" => like(&a, &b),
                _ => false,
            }
        }
    }
}

// ---------------------------------------------------------------- dispatch

fn form_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (form_decode(k), form_decode(v)),
            None => (form_decode(kv), String::new()),
        })
        .collect()
}

fn random_jwt() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut part = |n: usize| -> String {
        (0..n)
            .map(|_| A[rng.random_range(0..A.len())] as char)
            .collect()
    };
    format!("eyJhbGciOiJIUzI1NiJ9.{}.{}", part(120), part(43))
}

/// Entry point for `/api/jwt/…` and `/api/arsys/…`.
pub async fn handle(state: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return ar_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                8760,
                "Request too large",
                None,
            );
        }
    };
    let https = state
        .host
        .base_url
        .get()
        .is_some_and(|u| u.starts_with("https://"));
    let now = state.host.clock.now();
    let base = state.host.base_url.get().cloned().unwrap_or_default();
    let mut i = state.sim.lock();
    if !https && !i.scenario.allow_http {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "Access forbidden", "code": 403, "transient": false})),
        )
            .into_response();
    }
    let lower = path.to_ascii_lowercase();
    match (&method, lower.as_str()) {
        (&Method::POST, "/api/jwt/login") => login(&mut i, &body, now),
        // A logout ends a known token even after it expired (ASSUMPTIONS.md R8).
        (&Method::POST, "/api/jwt/logout") => match bearer(&headers) {
            Some(tok) if i.tokens.remove(&tok).is_some() => {
                i.stats.logouts += 1;
                StatusCode::NO_CONTENT.into_response()
            }
            _ => auth_failed("invalid token"),
        },
        (_, p) if p.starts_with("/api/arsys/") => {
            let r = match token_user(&i, &headers, now) {
                Ok((_, user)) if method == Method::GET => entries(&i, &path, &query, &user, &base),
                Ok(_) => ar_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    8756,
                    "The stand-in serves reads only",
                    None,
                ),
                Err(why) => {
                    if expired(&i, &headers) {
                        i.stats.expired_refused += 1;
                    }
                    auth_failed(why)
                }
            };
            i.log.push(LoggedRequest {
                method: method.to_string(),
                path: path.clone(),
                query: query.clone(),
                status: r.status().as_u16(),
            });
            r
        }
        _ => ar_error(
            StatusCode::NOT_FOUND,
            8755,
            "Resource not found",
            Some(&path),
        ),
    }
}

fn login(i: &mut Inner, body: &[u8], now: i64) -> Response {
    let form = params(&String::from_utf8_lossy(body));
    let get = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    let user = get("username").unwrap_or_default();
    let pass = get("password").unwrap_or_default();
    let ok = i
        .scenario
        .users
        .iter()
        .any(|u| u.name == user && u.password == pass);
    if user.is_empty() || !ok {
        i.stats.failed_logins += 1;
        return auth_failed(&user);
    }
    let tok = random_jwt();
    i.tokens
        .insert(tok.clone(), (user, now + i.scenario.token_ttl_secs));
    i.stats.logins += 1;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        tok,
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("AR-JWT ").map(|t| t.trim().to_string())
}

fn expired(i: &Inner, headers: &HeaderMap) -> bool {
    bearer(headers)
        .and_then(|t| i.tokens.get(&t).map(|x| x.1))
        .is_some()
}

fn token_user(i: &Inner, headers: &HeaderMap, now: i64) -> Result<(String, String), &'static str> {
    let Some(tok) = bearer(headers) else {
        return Err("missing AR-JWT authorization");
    };
    match i.tokens.get(&tok) {
        Some((user, exp)) if *exp > now => Ok((tok, user.clone())),
        Some(_) => Err("token expired"),
        None => Err("invalid token"),
    }
}

fn entries(i: &Inner, path: &str, query: &str, user: &str, base: &str) -> Response {
    // /api/arsys/v1/entry/{form}[/{id}]
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let (form, id) = match segs.as_slice() {
        [a, b, v, e, form] if a == "api" && b == "arsys" && v.starts_with("v1") && e == "entry" => {
            (form.as_str(), None)
        }
        [a, b, v, e, form, id]
            if a == "api" && b == "arsys" && v.starts_with("v1") && e == "entry" =>
        {
            (form.as_str(), Some(id.as_str()))
        }
        _ => {
            return ar_error(
                StatusCode::NOT_FOUND,
                8755,
                "Resource not found",
                Some(path),
            );
        }
    };
    let (rows, known, id_field, join) = match form {
        INCIDENT_JOIN => (&i.incidents, INCIDENT_FIELDS, "Incident Number", true),
        INCIDENT_BASE => (&i.incidents, INCIDENT_FIELDS, "Incident Number", false),
        CHANGE_JOIN => (&i.changes, CHANGE_FIELDS, "Infrastructure Change ID", true),
        CHANGE_BASE => (&i.changes, CHANGE_FIELDS, "Infrastructure Change ID", false),
        _ => {
            return ar_error(
                StatusCode::NOT_FOUND,
                303,
                "Form does not exist on server",
                Some(form),
            );
        }
    };
    let p = params(query);
    let get = |k: &str| p.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    let fields: Option<Vec<String>> = match get("fields") {
        None => None,
        Some(f) => {
            let inner = f
                .trim()
                .strip_prefix("values(")
                .and_then(|r| r.strip_suffix(')'));
            let Some(inner) = inner else {
                return ar_error(
                    StatusCode::BAD_REQUEST,
                    8759,
                    "Invalid fields parameter",
                    Some(f),
                );
            };
            let list: Vec<String> = inner.split(',').map(|s| s.trim().to_string()).collect();
            if let Some(bad) = list.iter().find(|f| !known.contains(&f.as_str())) {
                return ar_error(
                    StatusCode::BAD_REQUEST,
                    314,
                    "Field does not exist on current form",
                    Some(&format!("{form} : {bad}")),
                );
            }
            Some(list)
        }
    };
    let render = |e: &Entry| -> Value {
        let mut values = serde_json::Map::new();
        for (k, v) in e {
            if fields.as_ref().is_some_and(|f| !f.contains(k)) {
                continue;
            }
            let v = if k == "Request ID" && join {
                Value::String(format!("{0}|{0}", v.as_str().unwrap_or("")))
            } else {
                v.clone()
            };
            values.insert(k.clone(), v);
        }
        let rid = e.get(id_field).and_then(|v| v.as_str()).unwrap_or("");
        json!({"values": values, "_links": {"self": [{"href": format!("{base}/api/arsys/v1/entry/{form}/{rid}")}]}})
    };
    if let Some(id) = id {
        let plain = id.split('|').next().unwrap_or(id);
        return match rows
            .iter()
            .find(|e| e.get(id_field).and_then(|v| v.as_str()) == Some(plain))
        {
            Some(e) => Json(render(e)).into_response(),
            None => ar_error(
                StatusCode::NOT_FOUND,
                302,
                "Entry does not exist in database",
                Some(id),
            ),
        };
    }
    let matched: Vec<&Entry> = match get("q").filter(|q| !q.trim().is_empty()) {
        None => rows.iter().collect(),
        Some(q) => {
            let expr = match parse_qualification(q) {
                Ok(e) => e,
                Err(m) => {
                    return ar_error(
                        StatusCode::BAD_REQUEST,
                        1587,
                        "Qualification syntax error",
                        Some(&m),
                    );
                }
            };
            let mut named = Vec::new();
            fields_in(&expr, &mut named);
            if let Some(bad) = named.iter().find(|f| !known.contains(&f.as_str())) {
                return ar_error(
                    StatusCode::BAD_REQUEST,
                    314,
                    "Field does not exist on current form",
                    Some(&format!("{form} : {bad}")),
                );
            }
            rows.iter().filter(|e| eval(&expr, e, user)).collect()
        }
    };
    let offset = get("offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(usize::MAX)
        .max(1);
    let page: Vec<Value> = matched
        .iter()
        .skip(offset)
        .take(limit)
        .map(|e| render(e))
        .collect();
    let mut links = json!({"self": [{"href": format!("{base}{path}?{query}")}]});
    if offset.saturating_add(limit) < matched.len() {
        let next: Vec<String> = p
            .iter()
            .filter(|(k, _)| k != "offset")
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .chain([format!("offset={}", offset + limit)])
            .collect();
        links["next"] = json!([{"href": format!("{base}{path}?{}", next.join("&"))}]);
    }
    Json(json!({"entries": page, "_links": links})).into_response()
}

fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

// ---------------------------------------------------------------- admin

pub fn admin_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/sessions",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.sim.stats()) }),
        )
        .route(
            "/requests",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.sim.requests()) }),
        )
        .route(
            "/expire_tokens",
            post(|State(s): State<Arc<Shared>>| async move {
                s.sim.expire_tokens();
                StatusCode::NO_CONTENT
            }),
        )
        .route("/scenario", post(admin_load))
}

async fn admin_load(State(s): State<Arc<Shared>>, Json(sc): Json<RemedyScenario>) -> Response {
    match s.sim.load(&sc, s.host.clock.now()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[(&str, &str)]) -> Entry {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect()
    }

    #[test]
    fn qualifications_parse_and_evaluate() {
        let e = entry(&[
            ("Incident Number", "INC000000000430"),
            ("Status", "Assigned"),
        ]);
        let t = |q: &str| eval(&parse_qualification(q).expect(q), &e, "svc");
        assert!(t(r#"'Incident Number' = "INC000000000430""#));
        assert!(t(r#"'Incident Number' = "inc000000000430""#));
        assert!(!t(r#"'Incident Number' = "INC000000000431""#));
        assert!(t(
            r#"('Status' = "New" OR 'Status' = "Assigned") AND NOT 'Status' = "Closed""#
        ));
        assert!(t(r#"'Incident Number' LIKE "INC%430""#));
        assert!(
            !t(r#"'Status' = "Assigned"" OR ""1"" = ""1""#),
            "doubled quotes stay inside the value"
        );
        assert!(t(r#"'Customer Login ID' = $NULL$"#));
        for bad in [
            r#"'Status' = "x"#,
            "Status = 1",
            r#"'Status' "x""#,
            r#"('Status' = "x""#,
        ] {
            assert!(parse_qualification(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_names_are_collected() {
        let e = parse_qualification(r#"'A' = "1" AND NOT ('B''x' != 2)"#).expect("ok");
        let mut v = Vec::new();
        fields_in(&e, &mut v);
        assert_eq!(v, vec!["A", "B'x"]);
    }
}

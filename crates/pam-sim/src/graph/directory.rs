//! The Graph stand-in's directory (Microsoft Entra ID): users and groups from the scenario,
//! served as Graph v1.0 serves them to an app with application permissions:
//!
//! - `GET /v1.0/users` with `$filter` (`eq` on `id`, `mail`, `userPrincipalName`,
//!   `displayName`, `mailNickname`, `employeeId`, `accountEnabled`, `onPremisesSamAccountName`
//!   (advanced), `proxyAddresses/any(p:p eq '…')`, joined by `and` / `or` / `not` and
//!   parentheses; `ne` and `not` need the advanced query parameters), `$select`, `$top`,
//!   `$count`, paging by `@odata.nextLink`.
//! - `GET /v1.0/users/{id | userPrincipalName}/transitiveMemberOf[/microsoft.graph.group]`: the
//!   cast needs `ConsistencyLevel: eventual` and `$count=true` (Microsoft's advanced-query
//!   page); without a group permission the groups come back with their id and type only.
//! - `GET /v1.0/groups` with the same `$filter` language on `id`, `displayName`, `mailNickname`,
//!   `onPremisesSamAccountName` (advanced).
//!
//! Permissions are the app's `directory_roles` (application permissions granted with admin
//! consent): users need `User.Read.All` (or `User.ReadWrite.All`, `Directory.Read.All`,
//! `Directory.ReadWrite.All`), groups `GroupMember.Read.All` (or `Group.Read.All`,
//! `Group.ReadWrite.All`, `Directory.*`); otherwise 403 `Authorization_RequestDenied`.
//! Guesses: ASSUMPTIONS.md G16–G21.

use std::collections::{BTreeSet, HashMap};

use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::mail::error;

/// `[graph.directory]` in a scenario.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryDef {
    #[serde(default)]
    pub users: Vec<UserDef>,
    #[serde(default)]
    pub groups: Vec<GroupDef>,
    /// The largest page served, whatever `$top` asks (default 999, Graph's maximum); small
    /// values exercise paging.
    #[serde(default)]
    pub max_page_size: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserDef {
    /// Object id; derived from the user principal name when absent.
    #[serde(default)]
    pub id: Option<String>,
    pub display_name: String,
    pub user_principal_name: String,
    #[serde(default)]
    pub mail: Option<String>,
    /// `SMTP:primary`, `smtp:alias`, other types (`x500:`, `sip:`) as Exchange keeps them.
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    #[serde(default)]
    pub on_premises_sam_account_name: Option<String>,
    #[serde(default)]
    pub employee_id: Option<String>,
    /// Groups the user is a direct member of: ids or display names.
    #[serde(default)]
    pub member_of: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    #[serde(default)]
    pub id: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub on_premises_sam_account_name: Option<String>,
    /// Groups this group is a direct member of: ids or display names.
    #[serde(default)]
    pub member_of: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A stable GUID-shaped id from a name (FNV-1a, spread over 128 bits).
pub fn derived_id(kind: &str, name: &str) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in kind.bytes().chain([0u8]).chain(name.to_lowercase().bytes()) {
        h ^= b as u128;
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The directory, resolved.
#[derive(Debug, Default)]
pub struct Directory {
    users: Vec<(String, UserDef)>,
    groups: Vec<(String, GroupDef)>,
    max_page: usize,
    /// Requests still to be answered 429 (test control), and the `Retry-After` they carry.
    pub throttle: u32,
    pub throttle_retry_after: u64,
    /// Directory requests answered (any status), for tests.
    pub calls: u64,
}

impl Directory {
    pub fn new(d: &DirectoryDef) -> Self {
        let users = d
            .users
            .iter()
            .map(|u| {
                let id =
                    u.id.clone()
                        .unwrap_or_else(|| derived_id("user", &u.user_principal_name));
                (id.to_ascii_lowercase(), u.clone())
            })
            .collect();
        let groups = d
            .groups
            .iter()
            .map(|g| {
                let id =
                    g.id.clone()
                        .unwrap_or_else(|| derived_id("group", &g.display_name));
                (id.to_ascii_lowercase(), g.clone())
            })
            .collect();
        Directory {
            users,
            groups,
            max_page: d.max_page_size.unwrap_or(999).clamp(1, 999),
            ..Directory::default()
        }
    }

    /// The id of a user, by user principal name.
    pub fn user_id(&self, upn: &str) -> Option<String> {
        self.users
            .iter()
            .find(|(_, u)| u.user_principal_name.eq_ignore_ascii_case(upn))
            .map(|(id, _)| id.clone())
    }

    /// The id of a group, by display name.
    pub fn group_id(&self, name: &str) -> Option<String> {
        self.groups
            .iter()
            .find(|(_, g)| g.display_name.eq_ignore_ascii_case(name))
            .map(|(id, _)| id.clone())
    }

    fn group_ref(&self, r: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(id, g)| id.eq_ignore_ascii_case(r) || g.display_name.eq_ignore_ascii_case(r))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Every group a user is in, directly or nested (cycle-safe), in discovery order.
    fn transitive(&self, user: &UserDef) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut todo: Vec<String> = user
            .member_of
            .iter()
            .flat_map(|r| self.group_ref(r))
            .collect();
        while let Some(g) = todo.pop() {
            if out.contains(&g) {
                continue;
            }
            if let Some((_, def)) = self.groups.iter().find(|(id, _)| *id == g) {
                todo.extend(def.member_of.iter().flat_map(|r| self.group_ref(r)));
            }
            out.push(g);
        }
        out.sort();
        out
    }
}

// ---------------------------------------------------------------- the filter language

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
}

fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match c.get(i) {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') if c.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            ch if ch.is_alphanumeric() || "/:._-$".contains(ch) => {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || "/:._-$".contains(c[i])) {
                    i += 1;
                }
                out.push(Tok::Ident(c[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(out)
}

/// A parsed `$filter`.
#[derive(Debug, Clone)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// property, negated (`ne`), value
    Cmp(String, bool, Lit),
    /// collection property, value (`prop/any(x:x eq 'v')`)
    Any(String, String),
}

#[derive(Debug, Clone)]
enum Lit {
    Str(String),
    Bool(bool),
    Null,
}

struct Parser {
    t: Vec<Tok>,
    i: usize,
    /// Operators and properties seen that need the advanced query parameters.
    advanced: Vec<String>,
}

impl Parser {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.t.get(self.i), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.peek_kw("or") {
            self.i += 1;
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        while self.peek_kw("and") {
            self.i += 1;
            let r = self.unary()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_kw("not") {
            self.i += 1;
            self.advanced.push("not".into());
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.t.get(self.i) == Some(&Tok::LParen) {
            self.i += 1;
            let e = self.or()?;
            if self.t.get(self.i) != Some(&Tok::RParen) {
                return Err("missing ')'".into());
            }
            self.i += 1;
            return Ok(e);
        }
        let Some(Tok::Ident(prop)) = self.t.get(self.i).cloned() else {
            return Err("expected a property".into());
        };
        self.i += 1;
        if let Some(coll) = prop
            .strip_suffix("/any")
            .or_else(|| prop.strip_suffix("/ANY"))
        {
            // prop/any(x:x eq 'v')
            let (
                Some(Tok::LParen),
                Some(Tok::Ident(var)),
                Some(Tok::Ident(op)),
                Some(Tok::Str(v)),
                Some(Tok::RParen),
            ) = (
                self.t.get(self.i).cloned(),
                self.t.get(self.i + 1).cloned(),
                self.t.get(self.i + 2).cloned(),
                self.t.get(self.i + 3).cloned(),
                self.t.get(self.i + 4).cloned(),
            )
            else {
                return Err(format!("unsupported lambda on '{coll}'"));
            };
            let ok_var = var
                .split_once(':')
                .is_some_and(|(a, b)| !a.is_empty() && a == b);
            if !ok_var || !op.eq_ignore_ascii_case("eq") {
                return Err(format!("unsupported lambda on '{coll}'"));
            }
            self.i += 5;
            return Ok(Expr::Any(coll.to_string(), v));
        }
        let Some(Tok::Ident(op)) = self.t.get(self.i).cloned() else {
            return Err(format!("expected an operator after '{prop}'"));
        };
        self.i += 1;
        let negated = match op.to_ascii_lowercase().as_str() {
            "eq" => false,
            "ne" => {
                self.advanced.push("ne".into());
                true
            }
            other => return Err(format!("unsupported operator '{other}'")),
        };
        let lit = match self.t.get(self.i).cloned() {
            Some(Tok::Str(s)) => Lit::Str(s),
            Some(Tok::Ident(s)) if s == "true" => Lit::Bool(true),
            Some(Tok::Ident(s)) if s == "false" => Lit::Bool(false),
            Some(Tok::Ident(s)) if s == "null" => Lit::Null,
            _ => return Err(format!("expected a value after '{prop} {op}'")),
        };
        self.i += 1;
        Ok(Expr::Cmp(prop, negated, lit))
    }
}

/// Parse a `$filter`; the operators that need advanced query parameters are returned too.
fn parse_filter(f: &str) -> Result<(Expr, Vec<String>), String> {
    let mut p = Parser {
        t: tokens(f)?,
        i: 0,
        advanced: Vec::new(),
    };
    let e = p.or()?;
    if p.i != p.t.len() {
        return Err("unexpected text after the expression".into());
    }
    Ok((e, p.advanced))
}

/// An object's JSON as Graph names its properties.
fn user_json(id: &str, u: &UserDef) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("displayName".into(), json!(u.display_name));
    m.insert("userPrincipalName".into(), json!(u.user_principal_name));
    m.insert("mail".into(), json!(u.mail));
    m.insert(
        "mailNickname".into(),
        json!(u.user_principal_name.split('@').next()),
    );
    m.insert("proxyAddresses".into(), json!(u.proxy_addresses));
    m.insert("accountEnabled".into(), json!(u.account_enabled));
    m.insert(
        "onPremisesSamAccountName".into(),
        json!(u.on_premises_sam_account_name),
    );
    m.insert("employeeId".into(), json!(u.employee_id));
    m.insert("businessPhones".into(), json!([]));
    for k in [
        "givenName",
        "jobTitle",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
    ] {
        m.insert(k.into(), Value::Null);
    }
    m
}

/// Returned without `$select` (Graph's default user properties).
const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

fn group_json(id: &str, g: &GroupDef) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("displayName".into(), json!(g.display_name));
    m.insert("mailNickname".into(), json!(g.mail_nickname));
    m.insert(
        "onPremisesSamAccountName".into(),
        json!(g.on_premises_sam_account_name),
    );
    m.insert("securityEnabled".into(), json!(true));
    m.insert("mailEnabled".into(), json!(g.mail_nickname.is_some()));
    m.insert("groupTypes".into(), json!([]));
    m.insert("description".into(), Value::Null);
    m
}

/// Which properties a resource filters on, and those only advanced queries may use.
const USER_FILTERABLE: &[&str] = &[
    "id",
    "mail",
    "userPrincipalName",
    "displayName",
    "mailNickname",
    "employeeId",
    "accountEnabled",
    "onPremisesSamAccountName",
];
const GROUP_FILTERABLE: &[&str] = &[
    "id",
    "displayName",
    "mailNickname",
    "onPremisesSamAccountName",
];
const ADVANCED_PROPERTIES: &[&str] = &["onPremisesSamAccountName"];

fn check_props(
    e: &Expr,
    allowed: &[&str],
    resource: &str,
    adv: &mut Vec<String>,
) -> Result<(), String> {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            check_props(a, allowed, resource, adv)?;
            check_props(b, allowed, resource, adv)
        }
        Expr::Not(a) => check_props(a, allowed, resource, adv),
        Expr::Cmp(p, _, _) => {
            let Some(known) = allowed.iter().find(|a| a.eq_ignore_ascii_case(p)) else {
                return Err(format!(
                    "Unsupported or invalid query filter clause specified for property '{p}' of resource '{resource}'."
                ));
            };
            if ADVANCED_PROPERTIES.contains(known) {
                adv.push(known.to_string());
            }
            Ok(())
        }
        Expr::Any(p, _) => {
            if resource == "User" && p.eq_ignore_ascii_case("proxyAddresses") {
                Ok(())
            } else {
                Err(format!(
                    "Unsupported or invalid query filter clause specified for property '{p}' of resource '{resource}'."
                ))
            }
        }
    }
}

fn prop_value<'a>(m: &'a Map<String, Value>, p: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(p))
        .map(|(_, v)| v)
}

fn eval(e: &Expr, m: &Map<String, Value>) -> bool {
    match e {
        Expr::And(a, b) => eval(a, m) && eval(b, m),
        Expr::Or(a, b) => eval(a, m) || eval(b, m),
        Expr::Not(a) => !eval(a, m),
        Expr::Cmp(p, neg, lit) => {
            let v = prop_value(m, p).unwrap_or(&Value::Null);
            let eq = match (lit, v) {
                (Lit::Str(s), Value::String(x)) => x.eq_ignore_ascii_case(s),
                (Lit::Bool(b), Value::Bool(x)) => b == x,
                (Lit::Null, Value::Null) => true,
                _ => false,
            };
            eq != *neg
        }
        Expr::Any(p, want) => prop_value(m, p).and_then(Value::as_array).is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|x| x.eq_ignore_ascii_case(want))
        }),
    }
}

// ---------------------------------------------------------------- serving

/// The permissions that read users, and those that read groups (their names and members).
const USER_ROLES: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUP_ROLES: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

fn holds(roles: &[String], any_of: &[&str]) -> bool {
    roles
        .iter()
        .any(|r| any_of.iter().any(|a| a.eq_ignore_ascii_case(r)))
}

fn denied() -> Response {
    error(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// Whether a path (segments after `/v1.0/`) is the directory's.
pub fn is_directory_path(segs: &[String]) -> bool {
    match segs.first().map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("groups") => true,
        Some("users") => {
            segs.len() == 1
                || segs
                    .get(2)
                    .is_some_and(|s| s.eq_ignore_ascii_case("transitiveMemberOf"))
        }
        _ => false,
    }
}

/// One directory request (the bearer token already checked: `roles` are the app's).
pub fn serve(
    dir: &mut Directory,
    roles: &[String],
    segs: &[String],
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    base: &str,
    raw_path: &str,
) -> Response {
    dir.calls += 1;
    if dir.throttle > 0 {
        dir.throttle -= 1;
        let mut r = error(
            429,
            "TooManyRequests",
            "Too many requests. Please retry after the time given in the Retry-After header.",
        );
        if let Ok(v) = axum::http::HeaderValue::from_str(&dir.throttle_retry_after.to_string()) {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        return r;
    }
    let eventual = headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"));
    let count = query
        .get("$count")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let advanced = eventual && count;
    if query.contains_key("$search") && !eventual {
        return error(
            400,
            "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
        );
    }
    let users_ok = holds(roles, USER_ROLES);
    let groups_ok = holds(roles, GROUP_ROLES);
    let first = segs[0].to_ascii_lowercase();
    let (resource, items, filterable): (&str, Vec<Map<String, Value>>, &[&str]) = match first
        .as_str()
    {
        "users" if segs.len() == 1 => {
            if !users_ok {
                return denied();
            }
            let items = dir.users.iter().map(|(id, u)| user_json(id, u)).collect();
            ("User", items, USER_FILTERABLE)
        }
        "users" => {
            // /users/{id | upn}/transitiveMemberOf[/microsoft.graph.group]
            if !users_ok {
                return denied();
            }
            let key = &segs[1];
            let Some((_, user)) = dir.users.iter().find(|(id, u)| {
                id.eq_ignore_ascii_case(key) || u.user_principal_name.eq_ignore_ascii_case(key)
            }) else {
                return error(
                    404,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
                    ),
                );
            };
            let cast = match segs.get(3).map(|s| s.to_ascii_lowercase()) {
                None => false,
                // `microsoft.graph.group` (the prefix is cut by the path reader) or the SDKs'
                // `graph.group` alias.
                Some(s) if (s == "group" || s == "graph.group") && segs.len() == 4 => true,
                Some(_) => {
                    return error(
                        400,
                        "Request_BadRequest",
                        "Unsupported segment in the request path.",
                    );
                }
            };
            if cast && !advanced {
                return error(
                    400,
                    "Request_UnsupportedQuery",
                    "The specified type cast is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
                );
            }
            if (query.contains_key("$filter") || query.contains_key("$orderby")) && !advanced {
                return error(
                    400,
                    "Request_UnsupportedQuery",
                    "Query parameters on this relationship are supported only with advanced query parameters: add $count=true and ConsistencyLevel:eventual. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
                );
            }
            let ids = dir.transitive(user);
            let items = ids
                .iter()
                .filter_map(|gid| dir.groups.iter().find(|(id, _)| id == gid))
                .map(|(id, g)| {
                    let mut m = group_json(id, g);
                    if !groups_ok {
                        // Limited information for objects the app may not read: the id and
                        // type, every other property null.
                        for (k, v) in m.iter_mut() {
                            if k != "id" {
                                *v = Value::Null;
                            }
                        }
                    }
                    m.insert("@odata.type".into(), json!("#microsoft.graph.group"));
                    m
                })
                .collect();
            ("Group", items, GROUP_FILTERABLE)
        }
        "groups" if segs.len() == 1 => {
            if !groups_ok {
                return denied();
            }
            let items = dir.groups.iter().map(|(id, g)| group_json(id, g)).collect();
            ("Group", items, GROUP_FILTERABLE)
        }
        _ => {
            return error(400, "Request_BadRequest", "Unsupported directory request.");
        }
    };
    let mut items = items;
    if let Some(f) = query.get("$filter") {
        let (expr, mut adv) = match parse_filter(f) {
            Ok(x) => x,
            Err(m) => return error(400, "BadRequest", &format!("Invalid filter clause: {m}")),
        };
        if let Err(m) = check_props(&expr, filterable, resource, &mut adv) {
            return error(400, "Request_UnsupportedQuery", &m);
        }
        if let Some(op) = adv.first()
            && !advanced
        {
            return error(
                400,
                "Request_UnsupportedQuery",
                &format!(
                    "Operator or property '{op}' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
                ),
            );
        }
        items.retain(|m| eval(&expr, m));
    }
    let total = items.len();
    // $select (id always kept), else the defaults.
    let select: Option<BTreeSet<String>> = query.get("$select").map(|s| {
        s.split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .collect()
    });
    let items: Vec<Value> = items
        .into_iter()
        .map(|m| {
            let keep = |k: &str| match &select {
                Some(sel) => {
                    k == "id" || k.starts_with('@') || sel.contains(&k.to_ascii_lowercase())
                }
                None => resource != "User" || k.starts_with('@') || USER_DEFAULT.contains(&k),
            };
            Value::Object(m.into_iter().filter(|(k, _)| keep(k)).collect())
        })
        .collect();
    let top = query
        .get("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 999)
        .min(dir.max_page);
    let skip = query
        .get("$skiptoken")
        .and_then(|t| t.strip_prefix("pamsim"))
        .and_then(|t| usize::from_str_radix(t, 16).ok())
        .unwrap_or(0);
    let page: Vec<Value> = items.iter().skip(skip).take(top).cloned().collect();
    let mut body = Map::new();
    let context = if first == "groups" || segs.len() > 1 {
        "groups"
    } else {
        "users"
    };
    body.insert(
        "@odata.context".into(),
        json!(format!("{base}/v1.0/$metadata#{context}")),
    );
    if advanced {
        body.insert("@odata.count".into(), json!(total));
    }
    if skip + top < total {
        let mut q: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "$skiptoken")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        q.sort();
        q.push(("$skiptoken".into(), format!("pamsim{:x}", skip + top)));
        let qs: Vec<String> = q
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    k,
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        body.insert(
            "@odata.nextLink".into(),
            json!(format!("{base}{raw_path}?{}", qs.join("&"))),
        );
    }
    body.insert("value".into(), Value::Array(page));
    (axum::http::StatusCode::OK, axum::Json(Value::Object(body))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_reads_doubled_quotes_as_one_literal() {
        let (e, adv) = parse_filter(
            "accountEnabled eq true and (mail eq 'x'' or accountEnabled eq false or mail eq ''y@x.test' or proxyAddresses/any(p:p eq 'smtp:a@x.test'))",
        )
        .expect("parses");
        assert!(adv.is_empty());
        let mut m = Map::new();
        m.insert("accountEnabled".into(), json!(true));
        m.insert(
            "mail".into(),
            json!("x' or accountEnabled eq false or mail eq 'y@x.test"),
        );
        assert!(eval(&e, &m));
        m.insert("mail".into(), json!("y@x.test"));
        assert!(!eval(&e, &m));
        m.insert("proxyAddresses".into(), json!(["SMTP:A@x.test"]));
        assert!(eval(&e, &m), "proxy addresses compare case-insensitively");
        assert!(parse_filter("mail eq 'open").is_err());
        assert!(parse_filter("mail eq 'a' or").is_err());
        let (_, adv) = parse_filter("not(mail eq 'a') and mail ne 'b'").expect("parses");
        assert_eq!(adv, vec!["not", "ne"]);
    }

    #[test]
    fn derived_ids_are_guids_and_stable() {
        let a = derived_id("user", "alice@example.test");
        assert_eq!(a, derived_id("user", "ALICE@example.test"));
        assert_ne!(a, derived_id("group", "alice@example.test"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}

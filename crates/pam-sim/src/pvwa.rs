//! Stand-in: the PVWA REST API (Gen2) as reference/pvwa.md describes it, self-hosted or as
//! Privilege Cloud serves it (reference/privilege-cloud.md).
//!
//! Self-hosted: logon/logoff with a raw session token in `Authorization` and a sticky
//! load-balancer cookie. Privilege Cloud (`mode = "privilege-cloud"`): no logon or logoff
//! endpoints; every call carries `Authorization: Bearer` with a platform token the Identity
//! stand-in ([`crate::identity`]) issued, valid until its `exp`. Either way: incoming requests
//! with Dual Control levels; confirm/reject with the checks a vault makes; safe members with
//! level permissions, paged. Codes and statuses the public material does not fix are listed in
//! ASSUMPTIONS.md (sections PVWA and Privilege Cloud).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::host::Hosted;

/// What this stand-in's handlers see: the host's shared parts and its own state.
type Shared = Hosted<PvwaSim>;

pub const PREFIXES: &[&str] = &["/passwordvault/"];

/// Status numbers (unverified in the real product; ASSUMPTIONS.md).
pub const STATUS_WAITING: i64 = 1;
pub const STATUS_CONFIRMED: i64 = 2;
pub const STATUS_REJECTED: i64 = 3;
pub const STATUS_EXPIRED: i64 = 4;

/// Name of the load balancer's stickiness cookie.
pub const LB_COOKIE: &str = "PAMSIM_LB";

// ---------------------------------------------------------------- scenario

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PvwaScenario {
    /// Self-hosted (logon, raw session tokens) or Privilege Cloud (Identity Bearer tokens).
    #[serde(default)]
    pub mode: PvwaMode,
    /// The Identity tenant that issues platform tokens (Privilege Cloud mode).
    #[serde(default)]
    pub identity: IdentityScenario,
    /// Require the stickiness cookie set at logon on every later call (self-hosted). Off by
    /// default: a real PVWA needs none; the load-balancer tests turn it on (ASSUMPTIONS P11).
    #[serde(default)]
    pub sticky_cookie: bool,
    #[serde(default)]
    pub users: Vec<UserDef>,
    #[serde(default)]
    pub safes: Vec<SafeDef>,
    /// Vault group records (`GET /API/UserGroups`).
    #[serde(default)]
    pub groups: Vec<crate::user_groups::GroupDef>,
    #[serde(default)]
    pub requests: Vec<RequestDef>,
}

/// Which PVWA the stand-in plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PvwaMode {
    #[default]
    SelfHosted,
    PrivilegeCloud,
}

/// `[pvwa.identity]`: the CyberArk Identity tenant of a Privilege Cloud stand-in. Its service
/// users are the PVWA users whose `auth` is empty or lists `identity` (an Identity user that is
/// an OAuth confidential client); the client secret is the user's `password`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityScenario {
    /// The tenant id, as in `https://<tenant_id>.id.cyberark.cloud` (a token claim).
    #[serde(default = "tenant_id")]
    pub tenant_id: String,
    /// The platform subdomain, as in `https://<subdomain>.privilegecloud.cyberark.cloud`.
    #[serde(default = "subdomain")]
    pub subdomain: String,
    /// `expires_in` of the tokens issued.
    #[serde(default = "token_lifetime")]
    pub token_lifetime_secs: u64,
    /// Identity roles (`POST /Roles/GetRoleMembers`, the `Role` table of `POST /Redrock/query`).
    #[serde(default)]
    pub roles: Vec<IdentityRoleDef>,
    /// The service users holding an administrative right that reads roles and users (e.g.
    /// "Read Only System Administration"); any other caller is refused those reads.
    #[serde(default)]
    pub readers: Vec<String>,
}

/// `[[pvwa.identity.roles]]`: a CyberArk Identity role and its direct members.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRoleDef {
    pub name: String,
    /// The role's ID (`_ID`/`ID`); made from the name when not given.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub members: Vec<IdentityRoleMemberDef>,
}

/// A role member: `type` `User` (a PVWA user of the stand-in, which doubles as the Identity
/// directory), `Group` (a group name as Identity shows it) or `Role` (another role's name).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRoleMemberDef {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

impl Default for IdentityScenario {
    fn default() -> Self {
        IdentityScenario {
            tenant_id: tenant_id(),
            subdomain: subdomain(),
            token_lifetime_secs: token_lifetime(),
            roles: Vec::new(),
            readers: Vec::new(),
        }
    }
}

fn tenant_id() -> String {
    "abc1234".into()
}
fn subdomain() -> String {
    "acme".into()
}
fn token_lifetime() -> u64 {
    3600
}

impl Default for PvwaScenario {
    fn default() -> Self {
        PvwaScenario {
            mode: PvwaMode::SelfHosted,
            identity: IdentityScenario::default(),
            sticky_cookie: false,
            users: vec![],
            safes: vec![],
            groups: vec![],
            requests: vec![],
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserDef {
    pub name: String,
    pub password: String,
    /// Logon methods this user may use (`ldap`, `cyberark`, `radius`, `windows`, and
    /// `identity`: a Privilege Cloud service user); all when empty.
    #[serde(default)]
    pub auth: Vec<String>,
    /// Vault groups (as safe members name them) the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub full_name: Option<String>,
    /// `internet.businessEmail` of the user's record (`GET /API/Users`).
    #[serde(default)]
    pub email: Option<String>,
    /// `source` of the user's record: `CyberArk` (a vault user, the default) or `LDAP`.
    #[serde(default = "cyberark_source")]
    pub source: String,
    /// Holds the Vault permission "Audit users" (may read `GET /API/UserGroups` and
    /// `GET /API/Users`; default true).
    #[serde(default = "yes")]
    pub audit_users: bool,
}

fn cyberark_source() -> String {
    "CyberArk".into()
}

/// The answer to `GET /API/Users?search=…` (psPAS `Get-PASUser`): `{"Users":[…],"Total":N}`,
/// the users whose name or full name contains `search` (any case; all without it), each record
/// with the fields clients read (ASSUMPTIONS P19).
fn vault_users<'a>(users: impl Iterator<Item = &'a UserDef>, search: Option<&str>) -> Value {
    let search = search
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let found: Vec<Value> = users
        .filter(|u| {
            search.as_ref().is_none_or(|q| {
                u.name.to_lowercase().contains(q)
                    || u.full_name
                        .as_deref()
                        .is_some_and(|f| f.to_lowercase().contains(q))
            })
        })
        .enumerate()
        .map(|(n, u)| {
            let full = u.full_name.clone().unwrap_or_default();
            let (first, last) = full.split_once(' ').unwrap_or((full.as_str(), ""));
            json!({
                "id": 100 + n, "username": u.name, "source": u.source,
                "userType": "EPVUser", "componentUser": false, "location": "\\",
                "enableUser": true, "suspended": false,
                "personalDetails": { "firstName": first, "middleName": "", "lastName": last },
                "internet": {
                    "homePage": "", "homeEmail": "", "otherEmail": "",
                    "businessEmail": u.email.clone().unwrap_or_default()
                }
            })
        })
        .collect();
    json!({ "Users": found, "Total": found.len() })
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SafeDef {
    pub name: String,
    #[serde(default)]
    pub members: Vec<MemberDef>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberDef {
    pub name: String,
    /// `user`, `group`, or `role` (Privilege Cloud: a CyberArk Identity role, listed with
    /// `memberType` Role; the PVWA users whose `groups` name it hold it for the portal).
    #[serde(default = "group")]
    pub r#type: String,
    #[serde(default)]
    pub level1: bool,
    #[serde(default)]
    pub level2: bool,
    /// May list the safe's members (default true).
    #[serde(default = "yes")]
    pub view_members: bool,
    /// Unix seconds; membership ends then.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

fn group() -> String {
    "group".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDef {
    /// The number in the mail's `Request Id:`; the RequestID is `<safe>_<number>`.
    pub number: u64,
    pub safe: String,
    pub requester: String,
    #[serde(default)]
    pub requester_full_name: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// The account's user name (`UserName`, default `root`).
    #[serde(default)]
    pub account: Option<String>,
    /// The account object's name (`Name`, default `Operating System-UnixSSH-<address>-<account>`,
    /// the form CyberArk gives accounts it creates).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    /// Confirmers required at level 1 and level 2 (0 at level 2 = single level).
    #[serde(default = "default_levels")]
    pub levels: [u32; 2],
    /// Expires this many seconds after the simulator starts (negative: already expired).
    #[serde(default = "default_expiry")]
    pub expires_in_secs: i64,
    #[serde(default)]
    pub ticket_system: Option<String>,
    #[serde(default)]
    pub ticket: Option<String>,
    /// Access window, seconds from start (0 = none).
    #[serde(default)]
    pub access_from_in_secs: i64,
    #[serde(default)]
    pub access_to_in_secs: i64,
}

fn default_levels() -> [u32; 2] {
    [1, 1]
}
fn default_expiry() -> i64 {
    7 * 24 * 3600
}

// ---------------------------------------------------------------- state

#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    pub time_ms: i64,
    pub request_id: String,
    pub user: String,
    pub action: String,
    pub reason: String,
    pub level: i64,
}

#[derive(Debug, Clone)]
struct ReqState {
    def: RequestDef,
    id: String,
    created: i64,
    expires: i64,
    level: i64,
    left: i64,
    status: i64,
    deleted: bool,
    /// (level, acting user, member name it acted through, action 1 confirm / 3 reject, reason, time)
    acts: Vec<(i64, String, String, i64, String, i64)>,
}

#[derive(Debug, Clone)]
struct SessionInfo {
    user: String,
    lb: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct SessionStats {
    pub open: usize,
    pub logons: u64,
    pub logoffs: u64,
    pub failed_logons: u64,
    /// Calls refused because the Authorization header carried `Bearer` (self-hosted).
    pub bearer_refused: u64,
    /// Calls refused because the stickiness cookie was missing.
    pub cookie_refused: u64,
    /// Privilege Cloud: platform tokens issued by the Identity stand-in.
    pub platform_tokens: u64,
    /// Privilege Cloud: token requests refused (bad secret, unknown or non-OAuth user, shape).
    pub platform_token_refusals: u64,
    /// Privilege Cloud: calls refused for an expired or unknown Bearer token.
    pub platform_token_rejected: u64,
    /// Identity role reads answered (`Redrock/query`, `Roles/GetRoleMembers`), refused or not.
    pub identity_reads: u64,
    /// Identity role reads refused for want of the right (`readers`).
    pub identity_reads_refused: u64,
    /// Privilege Cloud: calls refused because they carried no `Bearer` (a raw session token).
    pub raw_refused: u64,
}

/// A platform token the Identity stand-in issued.
#[derive(Debug, Clone)]
struct PlatformToken {
    user: String,
    /// Unix milliseconds.
    expires_ms: i64,
}

#[derive(Debug, Default)]
struct Inner {
    mode: PvwaMode,
    identity: Option<IdentityScenario>,
    /// Privilege Cloud: token → holder.
    platform_tokens: HashMap<String, PlatformToken>,
    /// Signs the platform tokens (HS256; the PVWA side looks tokens up, as a verifier would).
    signing_key: Vec<u8>,
    sticky: bool,
    users: BTreeMap<String, UserDef>,
    safes: BTreeMap<String, SafeDef>,
    groups: Vec<crate::user_groups::GroupDef>,
    requests: BTreeMap<String, ReqState>,
    sessions: HashMap<String, SessionInfo>,
    stats: SessionStats,
    actions: Vec<ActionRecord>,
    /// Every confirm/reject call a signed-in user made, carried out or refused (`action` is
    /// "confirm" or "reject"; tests count repeats across watcher hosts).
    attempts: Vec<ActionRecord>,
    issued_tokens: Vec<String>,
    /// Every `Set-Cookie` value (name=value) sent at logon.
    issued_cookies: Vec<String>,
}

#[derive(Debug, Default)]
pub struct PvwaSim {
    inner: Mutex<Inner>,
}

fn key(s: &str) -> String {
    s.to_lowercase()
}

impl PvwaSim {
    pub fn new(s: &PvwaScenario) -> anyhow::Result<Self> {
        let sim = PvwaSim::default();
        sim.load(s, chrono::Utc::now().timestamp())?;
        Ok(sim)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace the whole state with a scenario.
    pub fn load(&self, s: &PvwaScenario, now: i64) -> anyhow::Result<()> {
        let mut i = Inner {
            mode: s.mode,
            identity: Some(s.identity.clone()),
            signing_key: rand::random::<[u8; 32]>().to_vec(),
            sticky: s.sticky_cookie,
            ..Inner::default()
        };
        for u in &s.users {
            i.users.insert(key(&u.name), u.clone());
        }
        for safe in &s.safes {
            i.safes.insert(key(&safe.name), safe.clone());
        }
        i.groups = s.groups.clone();
        for r in &s.requests {
            add_request(&mut i, r.clone(), now)?;
        }
        *self.lock() = i;
        Ok(())
    }

    /// Every confirm/reject carried out, in order.
    pub fn actions(&self) -> Vec<ActionRecord> {
        self.lock().actions.clone()
    }

    /// Every confirm/reject call made by a signed-in user, in order, whether PVWA carried it
    /// out or refused it (already confirmed, already responded, …).
    pub fn attempts(&self) -> Vec<ActionRecord> {
        self.lock().attempts.clone()
    }

    /// The request `id` as `GET /IncomingRequests/{id}` returns it (tests build mails from it).
    pub fn request(&self, id: &str) -> Option<Value> {
        let i = self.lock();
        i.requests.get(id).map(|r| request_json(&i, r, true))
    }

    /// Every session token handed out (for tests that check tokens never leak into logs).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().issued_tokens.clone()
    }

    /// Every cookie (`name=value`) set at logon, to check that none leaks into logs.
    pub fn issued_cookies(&self) -> Vec<String> {
        self.lock().issued_cookies.clone()
    }

    /// The Identity stand-in's view for a role read: the caller of a live platform token
    /// (`Err(false)` without one), whether it may read roles and users (`Err(true)` when not),
    /// the roles, and the users (name, e-mail). Counts the read.
    #[allow(clippy::type_complexity)]
    pub fn identity_read(
        &self,
        auth: Option<&str>,
        now_ms: i64,
    ) -> Result<(Vec<IdentityRoleDef>, Vec<(String, Option<String>)>), bool> {
        let mut i = self.lock();
        let Some(id) = i
            .identity
            .clone()
            .filter(|_| i.mode == PvwaMode::PrivilegeCloud)
        else {
            return Err(false);
        };
        let token = auth
            .and_then(|a| a.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string());
        let Some(held) = token
            .and_then(|t| i.platform_tokens.get(&t).cloned())
            .filter(|t| t.expires_ms > now_ms)
        else {
            i.stats.platform_token_rejected += 1;
            return Err(false);
        };
        i.stats.identity_reads += 1;
        if !id
            .readers
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&held.user))
        {
            i.stats.identity_reads_refused += 1;
            return Err(true);
        }
        let users = i
            .users
            .values()
            .map(|u| (u.name.clone(), u.email.clone()))
            .collect();
        Ok((id.roles, users))
    }

    /// Which PVWA this is.
    pub fn mode(&self) -> PvwaMode {
        self.lock().mode
    }

    /// Issue a platform token to an Identity service user (Privilege Cloud mode): the
    /// `(token, expires_in)`, or the OAuth `(status, error, error_description)` refusal.
    pub fn issue_platform_token(
        &self,
        client_id: &str,
        secret: &str,
        now_ms: i64,
    ) -> Result<(String, u64), (StatusCode, &'static str, &'static str)> {
        let mut i = self.lock();
        let Some(id) = i
            .identity
            .clone()
            .filter(|_| i.mode == PvwaMode::PrivilegeCloud)
        else {
            return Err((StatusCode::NOT_FOUND, "", ""));
        };
        let user = i.users.get(&key(client_id)).cloned();
        let refuse = |i: &mut Inner, status, error, text| {
            i.stats.platform_token_refusals += 1;
            Err((status, error, text))
        };
        let Some(user) = user.filter(|u| u.password == secret) else {
            return refuse(
                &mut i,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Authentication failed: invalid client credentials.",
            );
        };
        if !(user.auth.is_empty() || user.auth.iter().any(|a| a.eq_ignore_ascii_case("identity"))) {
            return refuse(
                &mut i,
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "The user is not an OAuth confidential client.",
            );
        }
        let life = id.token_lifetime_secs.max(1);
        let now = now_ms.div_euclid(1000);
        let claims = json!({
            "unique_name": user.name,
            "sub": hex::encode(rand::random::<[u8; 8]>()),
            "tenant_id": id.tenant_id,
            "subdomain": id.subdomain,
            "platform_domain": "cyberark.cloud",
            "iat": now,
            "exp": now + life as i64,
            "jti": hex::encode(rand::random::<[u8; 12]>()),
        });
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&i.signing_key),
        )
        .map_err(|_| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "signing failed",
            )
        })?;
        i.platform_tokens.insert(
            token.clone(),
            PlatformToken {
                user: user.name.clone(),
                expires_ms: now_ms + 1000 * life as i64,
            },
        );
        i.issued_tokens.push(token.clone());
        i.stats.platform_tokens += 1;
        Ok((token, life))
    }

    /// Make every platform token issued so far expired (the next call with one answers 401).
    pub fn expire_platform_tokens(&self) -> usize {
        let mut i = self.lock();
        let n = i.platform_tokens.len();
        for t in i.platform_tokens.values_mut() {
            t.expires_ms = i64::MIN;
        }
        n
    }

    pub fn stats(&self) -> SessionStats {
        let i = self.lock();
        SessionStats {
            open: i.sessions.len(),
            ..i.stats.clone()
        }
    }

    /// Add a request; returns its RequestID.
    pub fn add(&self, r: RequestDef, now: i64) -> anyhow::Result<String> {
        add_request(&mut self.lock(), r, now)
    }
}

fn add_request(i: &mut Inner, r: RequestDef, now: i64) -> anyhow::Result<String> {
    if !i.safes.contains_key(&key(&r.safe)) {
        anyhow::bail!("request {}: safe {} is not defined", r.number, r.safe);
    }
    if r.levels[0] == 0 {
        anyhow::bail!("request {}: level 1 needs at least one confirmer", r.number);
    }
    let id = format!("{}_{}", r.safe, r.number);
    if i.requests.contains_key(&id) {
        anyhow::bail!("request {id} is defined twice");
    }
    let st = ReqState {
        id: id.clone(),
        created: now - 60,
        expires: now + r.expires_in_secs,
        level: 1,
        left: r.levels[0] as i64,
        status: STATUS_WAITING,
        deleted: false,
        acts: vec![],
        def: r,
    };
    i.requests.insert(id.clone(), st);
    Ok(id)
}

// ---------------------------------------------------------------- helpers

fn err(status: StatusCode, code: &str, msg: &str) -> Response {
    (
        status,
        Json(json!({"ErrorCode": code, "ErrorMessage": msg})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    err(
        StatusCode::UNAUTHORIZED,
        "PASWS006E",
        "Your session token is invalid or has expired. Log on again.",
    )
}

impl Inner {
    fn user_groups(&self, user: &str) -> Vec<String> {
        self.users
            .get(&key(user))
            .map(|u| u.groups.iter().map(|g| key(g)).collect())
            .unwrap_or_default()
    }

    /// Safe members through which `user` belongs to the safe (direct user entry or group).
    fn memberships<'a>(&'a self, safe: &'a SafeDef, user: &str) -> Vec<&'a MemberDef> {
        let groups = self.user_groups(user);
        safe.members
            .iter()
            .filter(|m| {
                if m.r#type.eq_ignore_ascii_case("user") {
                    key(&m.name) == key(user)
                } else {
                    groups.contains(&key(&m.name))
                }
            })
            .collect()
    }

    fn authorised_at<'a>(
        &'a self,
        safe: &'a SafeDef,
        user: &str,
        level: i64,
        now: i64,
    ) -> Option<&'a MemberDef> {
        self.memberships(safe, user).into_iter().find(|m| {
            let lv = if level == 1 {
                m.level1
            } else if level == 2 {
                m.level2
            } else {
                false
            };
            lv && m.expires_at.is_none_or(|t| t > now)
        })
    }

    fn refresh(&mut self, now: i64) {
        for r in self.requests.values_mut() {
            if r.status == STATUS_WAITING && now >= r.expires {
                r.status = STATUS_EXPIRED;
            }
        }
    }
}

fn status_title(r: &ReqState) -> String {
    match r.status {
        STATUS_WAITING => format!("Waiting: {} more user(s) must confirm the request", r.left),
        STATUS_CONFIRMED => "Confirmed".into(),
        STATUS_REJECTED => "Rejected".into(),
        STATUS_EXPIRED => "Expired".into(),
        _ => "Unknown".into(),
    }
}

fn request_json(i: &Inner, r: &ReqState, with_confirmers: bool) -> Value {
    let d = &r.def;
    let user = i.users.get(&key(&d.requester));
    let safe = i.safes.get(&key(&d.safe));
    let mut confirmers = Vec::new();
    if with_confirmers && let Some(safe) = safe {
        for level in 1..=2i64 {
            if d.levels[(level - 1) as usize] == 0 {
                continue;
            }
            for (n, m) in safe.members.iter().enumerate() {
                let lv = if level == 1 { m.level1 } else { m.level2 };
                if !lv {
                    continue;
                }
                let acts: Vec<_> = r
                    .acts
                    .iter()
                    .filter(|a| a.0 == level && key(&a.2) == key(&m.name))
                    .collect();
                let last = acts.last();
                confirmers.push(json!({
                    "Type": if m.r#type.eq_ignore_ascii_case("user") { 1 } else { 2 },
                    "ID": 100 + n as i64 + level * 1000,
                    "Name": m.name,
                    "Action": last.map(|a| a.3).unwrap_or(ACTION_WAITING),
                    "Reason": last.map(|a| a.4.clone()).unwrap_or_default(),
                    "ActionDate": last.map(|a| a.5).unwrap_or(0),
                    "AdditionalDetails": {},
                    "Members": if acts.is_empty() { Value::Null } else {
                        Value::Array(acts.iter().map(|a| json!({"UserID": 500 + a.1.len() as i64, "UserName": a.1, "AdditionalDetails": {}})).collect())
                    },
                }));
            }
        }
    }
    let account = d.account.clone().unwrap_or_else(|| "root".into());
    let address = d
        .address
        .clone()
        .unwrap_or_else(|| "server01.example.test".into());
    let reason = d.reason.clone().unwrap_or_else(|| "Maintenance".into());
    let name = d
        .name
        .clone()
        .unwrap_or_else(|| format!("Operating System-UnixSSH-{address}-{account}"));
    json!({
        "RequestorFullName": d.requester_full_name.clone().or_else(|| user.and_then(|u| u.full_name.clone())).unwrap_or_else(|| d.requester.clone()),
        "RequestID": r.id,
        "SafeName": d.safe,
        "RequestorUserName": d.requester,
        "RequestorReason": format!("(ConnectionClient=PSM-SSH) {reason}"),
        "UserReason": reason,
        "CreationDate": r.created,
        "Operation": format!("Connect to {account}@{address}"),
        "ExpirationDate": r.expires,
        "OperationType": 4,
        "AccessType": "OneTime",
        "ConfirmationsLeft": if r.status == STATUS_WAITING { r.left } else { 0 },
        "AccessFrom": if d.access_from_in_secs != 0 { r.created + 60 + d.access_from_in_secs } else { 0 },
        "AccessTo": if d.access_to_in_secs != 0 { r.created + 60 + d.access_to_in_secs } else { 0 },
        "Status": r.status,
        "StatusTitle": status_title(r),
        // Its values are unpublished (P20): 0, the one value a public sample shows, also on an
        // expired request, which is told by `ExpirationDate` alone.
        "InvalidRequestReason": 0,
        "CurrentConfirmationLevel": r.level,
        "RequiredConfirmersCountLevel2": d.levels[1],
        "TicketingSystemProperties": {"Name": d.ticket_system, "Number": d.ticket, "Status": Value::Null},
        "AdditionalInfo": {},
        "AccountDetails": {"AccountID": format!("{}_{}", 10 + d.number % 90, d.number), "Properties": {
            "Address": address, "Safe": d.safe, "Name": name, "UserName": account,
            "PlatformName": d.platform.clone().unwrap_or_else(|| "Unix via SSH".into()), "DeviceType": "Operating System"
        }},
        "Confirmers": confirmers,
    })
}

// ---------------------------------------------------------------- dispatch

/// Entry point for every `/PasswordVault/…` call.
pub async fn handle(state: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let raw_path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return err(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAMSIM_BODY",
                "Request body too large",
            );
        }
    };
    let segs: Vec<String> = raw_path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let now = state.host.clock.now();
    let now_ms = state.host.clock.now_ms();
    let sim = &state.sim;
    // segs[0] = PasswordVault, segs[1] = API
    if l.len() < 3 || l[1] != "api" {
        return html_404();
    }
    let cloud = sim.mode() == PvwaMode::PrivilegeCloud;
    match (&method, &l[2..]) {
        // Privilege Cloud has no PVWA logon or logoff: the Identity token is the session.
        (&Method::POST, ["auth", ..]) if cloud => html_404(),
        (&Method::POST, ["auth", kind, "logon"]) => logon(sim, kind, &body),
        (&Method::POST, ["auth", "logoff"]) => {
            with_session(sim, &headers, now_ms, |i, _s, token| {
                i.sessions.remove(token);
                i.stats.logoffs += 1;
                Json(json!({"LogoffUrl": ""})).into_response()
            })
        }
        (&Method::GET, ["incomingrequests"]) => {
            let q = parse_query(&query);
            let only_waiting = q
                .get("onlywaiting")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let expired = q
                .get("expired")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            with_session(sim, &headers, now_ms, |i, s, _| {
                i.refresh(now);
                let list: Vec<Value> = i
                    .requests
                    .values()
                    .filter(|r| !r.deleted)
                    .filter(|r| !only_waiting || r.status == STATUS_WAITING)
                    .filter(|r| expired || r.status != STATUS_EXPIRED)
                    .filter(|r| {
                        i.safes.get(&key(&r.def.safe)).is_some_and(|safe| {
                            key(&r.def.requester) != key(&s.user)
                                && (i.authorised_at(safe, &s.user, 1, now).is_some()
                                    || i.authorised_at(safe, &s.user, 2, now).is_some())
                        })
                    })
                    .map(|r| list_item(request_json(i, r, false)))
                    .collect();
                let total = list.len();
                Json(json!({"IncomingRequests": list, "Total": total})).into_response()
            })
        }
        (&Method::GET, ["incomingrequests", _]) => {
            let id = segs[3].clone();
            with_session(sim, &headers, now_ms, |i, s, _| {
                i.refresh(now);
                let Some(r) = i.requests.get(&id).filter(|r| !r.deleted) else {
                    return not_found(&id);
                };
                let visible = i
                    .safes
                    .get(&key(&r.def.safe))
                    .is_some_and(|safe| !i.memberships(safe, &s.user).is_empty());
                if !visible {
                    return not_found(&id);
                }
                Json(request_json(i, r, true)).into_response()
            })
        }
        (&Method::POST, ["incomingrequests", _, verb @ ("confirm" | "reject")]) => {
            let id = segs[3].clone();
            let reason = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("Reason")
                        .or_else(|| v.get("reason"))
                        .and_then(|r| r.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            let confirm = *verb == "confirm";
            with_session(sim, &headers, now_ms, |i, s, _| {
                act(i, &s.user, &id, &reason, confirm, now, now_ms)
            })
        }
        (&Method::GET, ["safes", _, "members"]) => {
            let safe_name = segs[3].clone();
            let q = parse_query(&query);
            let limit = q
                .get("limit")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(25)
                .clamp(1, 1000);
            let offset = q
                .get("offset")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            with_session(sim, &headers, now_ms, |i, s, _| {
                let Some(safe) = i.safes.get(&key(&safe_name)) else {
                    return err(
                        StatusCode::NOT_FOUND,
                        "SFWS0007",
                        &format!("Safe {safe_name} was not found."),
                    );
                };
                if !i.memberships(safe, &s.user).iter().any(|m| m.view_members) {
                    return err(
                        StatusCode::FORBIDDEN,
                        "SFWS0015",
                        "You are not authorized to view the members of this safe.",
                    );
                }
                let total = safe.members.len();
                let page: Vec<Value> = safe
                    .members
                    .iter()
                    .enumerate()
                    .skip(offset)
                    .take(limit)
                    .map(|(n, m)| member_json(safe, n, m, now))
                    .collect();
                let mut out = json!({"value": page, "count": total});
                if offset + limit < total {
                    out["nextLink"] = json!(format!(
                        "api/Safes/{}/Members?offset={}&limit={limit}",
                        safe.name,
                        offset + limit
                    ));
                }
                Json(out).into_response()
            })
        }
        (&Method::GET, ["usergroups"]) => {
            let q = parse_query(&query);
            with_session(sim, &headers, now_ms, |i, s, _| {
                if let Some(refused) = without_audit_users(i, &s.user) {
                    return refused;
                }
                let members_of = |g: &str| {
                    i.users
                        .values()
                        .filter(|u| u.groups.iter().any(|x| x.eq_ignore_ascii_case(g)))
                        .map(|u| u.name.clone())
                        .collect()
                };
                match crate::user_groups::list(&i.groups, &q, members_of) {
                    Ok(v) => Json(v).into_response(),
                    Err((_, code, msg)) => err(StatusCode::BAD_REQUEST, code, &msg),
                }
            })
        }
        (&Method::GET, ["users"]) => {
            let q = parse_query(&query);
            with_session(sim, &headers, now_ms, |i, s, _| {
                if let Some(refused) = without_audit_users(i, &s.user) {
                    return refused;
                }
                Json(vault_users(
                    i.users.values(),
                    q.get("search").map(String::as_str),
                ))
                .into_response()
            })
        }
        (&Method::GET, ["myrequests"]) => {
            let q = parse_query(&query);
            with_session(sim, &headers, now_ms, |i, s, _| {
                requester::my_requests(i, s, &q, now)
            })
        }
        (&Method::GET, ["myrequests", _]) => {
            let id = segs[3].clone();
            with_session(sim, &headers, now_ms, |i, s, _| {
                requester::my_request(i, s, &id, now)
            })
        }
        (&Method::POST, ["incomingrequests", verb @ ("confirm" | "reject"), "bulk"]) => {
            let confirm = *verb == "confirm";
            with_session(sim, &headers, now_ms, |i, s, _| {
                requester::bulk(i, &s.user, &body, confirm, now, now_ms)
            })
        }
        _ if method != Method::GET && method != Method::POST => err(
            StatusCode::METHOD_NOT_ALLOWED,
            "PAMSIM_METHOD",
            "The requested resource does not support this method.",
        ),
        _ => requester::not_modelled(&method, &raw_path),
    }
}

/// The 403 PVWA answers a caller without the Vault permission "Audit users" (the user and
/// group records; ASSUMPTIONS U-series, P19), or `None` when the caller holds it.
fn without_audit_users(i: &Inner, user: &str) -> Option<Response> {
    if i.users.get(&key(user)).is_some_and(|u| u.audit_users) {
        return None;
    }
    Some(err(
        StatusCode::FORBIDDEN,
        "PASWS013E",
        "You are not authorized to perform this action.",
    ))
}

#[path = "pvwa_requester.rs"]
mod requester;

/// `Confirmers[].Action` of a confirmer that has not acted: the one public sample of a waiting
/// request shows 2 with `ActionDate` 0 (pvwa.md §9.1; ASSUMPTIONS P12).
const ACTION_WAITING: i64 = 2;

/// A list item: PVWA's lists leave the account's properties and the confirmers empty
/// (ASSUMPTIONS P16); only the details call carries them.
fn list_item(mut v: Value) -> Value {
    v["Confirmers"] = Value::Array(vec![]);
    if let Some(a) = v.get_mut("AccountDetails") {
        a["Properties"] = json!({});
    }
    v
}

fn html_404() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><head><title>404 - File or directory not found.</title></head><body><h2>404 - File or directory not found.</h2></body></html>",
    )
        .into_response()
}

fn not_found(id: &str) -> Response {
    err(
        StatusCode::NOT_FOUND,
        "PAMSIM_NOTFOUND",
        &format!("Request {id} was not found."),
    )
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
        .collect()
}

fn member_json(safe: &SafeDef, n: usize, m: &MemberDef, now: i64) -> Value {
    json!({
        "safeUrlId": safe.name, "safeName": safe.name, "safeNumber": 10,
        "memberId": format!("{}", 200 + n), "memberName": m.name,
        "memberType": match m.r#type.to_ascii_lowercase().as_str() {
            "user" => "User",
            "role" => "Role",
            _ => "Group",
        },
        "membershipExpirationDate": m.expires_at,
        "isExpiredMembershipEnable": m.expires_at.is_some_and(|t| t <= now),
        "isPredefinedUser": false, "isReadOnly": false,
        "permissions": {
            "useAccounts": false, "retrieveAccounts": false, "listAccounts": true, "addAccounts": false,
            "updateAccountContent": false, "updateAccountProperties": false,
            "initiateCPMAccountManagementOperations": false, "specifyNextAccountContent": false,
            "renameAccounts": false, "deleteAccounts": false, "unlockAccounts": false, "manageSafe": false,
            "manageSafeMembers": false, "backupSafe": false, "viewAuditLog": false, "viewSafeMembers": m.view_members,
            "accessWithoutConfirmation": false, "createFolders": false, "deleteFolders": false,
            "moveAccountsAndFolders": false, "requestsAuthorizationLevel1": m.level1, "requestsAuthorizationLevel2": m.level2
        }
    })
}

fn logon(sim: &PvwaSim, kind: &str, body: &[u8]) -> Response {
    if !["cyberark", "ldap", "radius", "windows"].contains(&kind) {
        return html_404();
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            return err(
                StatusCode::BAD_REQUEST,
                "PASWS167E",
                "There are some invalid parameters",
            );
        }
    };
    let user = v.get("username").and_then(|x| x.as_str()).unwrap_or("");
    let pass = v.get("password").and_then(|x| x.as_str()).unwrap_or("");
    let concurrent = v
        .get("concurrentSession")
        .and_then(|x| x.as_bool())
        .unwrap_or(false);
    let mut i = sim.lock();
    let ok = i.users.get(&key(user)).is_some_and(|u| {
        u.password == pass
            && (u.auth.is_empty() || u.auth.iter().any(|a| a.eq_ignore_ascii_case(kind)))
    });
    if user.is_empty() || !ok {
        i.stats.failed_logons += 1;
        return err(
            StatusCode::FORBIDDEN,
            "PASWS013E",
            "Authentication failure for User.",
        );
    }
    let name = i
        .users
        .get(&key(user))
        .map(|u| u.name.clone())
        .unwrap_or_default();
    if !concurrent {
        i.sessions.retain(|_, s| key(&s.user) != key(&name));
    }
    let token: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..200)
            .map(|_| {
                const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                A[rng.random_range(0..A.len())] as char
            })
            .collect()
    };
    // A load balancer's stickiness value names the node and, like real ones, carries an
    // opaque part: a client must treat it as a secret (it is bound to the session).
    let lb = format!(
        "node{}-{}",
        1 + i.stats.logons % 2,
        hex::encode(rand::random::<[u8; 12]>())
    );
    i.issued_cookies.push(format!("{LB_COOKIE}={lb}"));
    i.sessions.insert(
        token.clone(),
        SessionInfo {
            user: name,
            lb: lb.clone(),
        },
    );
    i.issued_tokens.push(token.clone());
    i.stats.logons += 1;
    let mut r = Json(Value::String(token)).into_response();
    if let Ok(v) = format!("{LB_COOKIE}={lb}; Path=/; HttpOnly").parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn with_session(
    sim: &PvwaSim,
    headers: &HeaderMap,
    now_ms: i64,
    f: impl FnOnce(&mut Inner, &SessionInfo, &str) -> Response,
) -> Response {
    let mut i = sim.lock();
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return unauthorized();
    };
    if i.mode == PvwaMode::PrivilegeCloud {
        return with_platform_token(&mut i, auth, now_ms, f);
    }
    if auth.starts_with("Bearer ") {
        i.stats.bearer_refused += 1;
        return unauthorized();
    }
    let Some(s) = i.sessions.get(auth).cloned() else {
        return unauthorized();
    };
    if i.sticky {
        let cookie_ok = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .any(|c| c.trim() == format!("{LB_COOKIE}={}", s.lb));
        if !cookie_ok {
            // Without stickiness the balancer sends the call to a node that never saw the token.
            i.stats.cookie_refused += 1;
            return unauthorized();
        }
    }
    f(&mut i, &s, auth)
}

/// Privilege Cloud: `Bearer <platform token>` that the Identity stand-in issued and that has
/// not expired; the refusal in the `code`/`message` shape of the platform's services.
fn with_platform_token(
    i: &mut Inner,
    auth: &str,
    now_ms: i64,
    f: impl FnOnce(&mut Inner, &SessionInfo, &str) -> Response,
) -> Response {
    let refuse = |message: &str| {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"code": "PASWS006E", "message": message})),
        )
            .into_response()
    };
    let Some(token) = auth
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
    else {
        i.stats.raw_refused += 1;
        return refuse("The request carries no Bearer token.");
    };
    let Some(held) = i
        .platform_tokens
        .get(token)
        .filter(|t| t.expires_ms > now_ms)
        .cloned()
    else {
        i.stats.platform_token_rejected += 1;
        return refuse("The token is invalid or has expired.");
    };
    let s = SessionInfo {
        user: held.user,
        lb: String::new(),
    };
    f(i, &s, token)
}

fn act(
    i: &mut Inner,
    user: &str,
    id: &str,
    reason: &str,
    confirm: bool,
    now: i64,
    now_ms: i64,
) -> Response {
    i.refresh(now);
    let level_now = i.requests.get(id).map_or(0, |r| r.level);
    i.attempts.push(ActionRecord {
        time_ms: now_ms,
        request_id: id.to_string(),
        user: user.to_string(),
        action: if confirm { "confirm" } else { "reject" }.into(),
        reason: reason.to_string(),
        level: level_now,
    });
    let Some(r) = i.requests.get(id).filter(|r| !r.deleted).cloned() else {
        return not_found(id);
    };
    let Some(safe) = i.safes.get(&key(&r.def.safe)).cloned() else {
        return not_found(id);
    };
    let fail = |code: &str, msg: String| err(StatusCode::INTERNAL_SERVER_ERROR, code, &msg);
    if key(&r.def.requester) == key(user) {
        return fail(
            "PAMSIM_SELF",
            format!("User {user} cannot confirm or reject a request they created."),
        );
    }
    match r.status {
        STATUS_CONFIRMED => {
            return fail(
                "PAMSIM_DONE",
                format!("Request {id} has already been confirmed."),
            );
        }
        STATUS_REJECTED => {
            return fail(
                "PAMSIM_REJECTED",
                format!("Request {id} has already been rejected."),
            );
        }
        STATUS_EXPIRED => return fail("PAMSIM_EXPIRED", format!("Request {id} has expired.")),
        _ => {}
    }
    if r.acts.iter().any(|a| key(&a.1) == key(user)) {
        return fail(
            "PAMSIM_ALREADY",
            format!("User {user} has already responded to request {id}."),
        );
    }
    let Some(member) = i
        .authorised_at(&safe, user, r.level, now)
        .map(|m| m.name.clone())
    else {
        return fail(
            "PAMSIM_NOTAUTH",
            format!(
                "User {user} is not authorized to respond to request {id} at confirmation level {}.",
                r.level
            ),
        );
    };
    let Some(st) = i.requests.get_mut(id) else {
        return not_found(id);
    };
    let level = st.level;
    st.acts.push((
        level,
        user.to_string(),
        member,
        if confirm { 1 } else { 3 },
        reason.to_string(),
        now,
    ));
    if confirm {
        st.left -= 1;
        if st.left <= 0 {
            if st.level == 1 && st.def.levels[1] > 0 {
                st.level = 2;
                st.left = st.def.levels[1] as i64;
            } else {
                st.status = STATUS_CONFIRMED;
                st.left = 0;
            }
        }
    } else {
        st.status = STATUS_REJECTED;
    }
    i.actions.push(ActionRecord {
        time_ms: now_ms,
        request_id: id.to_string(),
        user: user.to_string(),
        action: if confirm { "confirm" } else { "reject" }.into(),
        reason: reason.to_string(),
        level,
    });
    (StatusCode::OK, Body::empty()).into_response()
}

// ---------------------------------------------------------------- admin

pub fn admin_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/requests", get(admin_requests).post(admin_add_request))
        .route(
            "/requests/{id}",
            axum::routing::delete(admin_delete_request),
        )
        .route(
            "/actions",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.sim.actions()) }),
        )
        .route(
            "/sessions",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.sim.stats()) }),
        )
        .route(
            "/identity/expire_tokens",
            post(|State(s): State<Arc<Shared>>| async move {
                Json(json!({"expired": s.sim.expire_platform_tokens()}))
            }),
        )
        .route("/scenario", post(admin_load))
}

async fn admin_requests(State(s): State<Arc<Shared>>) -> Json<Value> {
    let now = s.host.clock.now();
    let mut i = s.sim.lock();
    i.refresh(now);
    let list: Vec<Value> = i
        .requests
        .values()
        .map(|r| {
            let mut v = request_json(&i, r, true);
            v["Deleted"] = json!(r.deleted);
            v
        })
        .collect();
    Json(Value::Array(list))
}

async fn admin_add_request(State(s): State<Arc<Shared>>, Json(r): Json<RequestDef>) -> Response {
    match s.sim.add(r, s.host.clock.now()) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"RequestID": id}))).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn admin_delete_request(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> StatusCode {
    match s.sim.lock().requests.get_mut(&id) {
        Some(r) => {
            r.deleted = true;
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn admin_load(State(s): State<Arc<Shared>>, Json(sc): Json<PvwaScenario>) -> Response {
    match s.sim.load(&sc, s.host.clock.now()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

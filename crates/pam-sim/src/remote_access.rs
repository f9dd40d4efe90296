//! Stand-in: CyberArk Remote Access (formerly Alero): the Keycloak token endpoint of the
//! `serviceaccounts` realm and the `v2-edge` API (`v1-edge` as an alias), as
//! reference/remote-access.md §10 describes them.
//!
//! - Token endpoint: checks a private-key JWT client assertion in Keycloak's order with its
//!   texts ([`token`]), keeps a `jti` replay cache until each assertion's `exp`.
//! - API: bearer check (401 + `WWW-Authenticate`), role (Viewer/Auditor cannot write), rate
//!   limit (429 + `Retry-After`), sites/applications/groups from the scenario, invitations and
//!   vendors in memory, paging with `totalCount`, the three error-body shapes.
//! - Test control under `/sim/remote_access/`: accept an invitation (creating the vendor) or
//!   make it expire, reset, read state, change settings.
//!
//! Every behaviour the reference marks unverified is listed in ASSUMPTIONS.md (Remote Access).

pub mod keys;
pub mod token;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
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
type Shared = Hosted<RemoteAccessSim>;

/// Lowercase path prefixes served by this stand-in.
pub const PREFIXES: &[&str] = &["/auth/realms/", "/v2-edge/", "/v1-edge/"];

// ---------------------------------------------------------------- scenario

/// Scenario section `[remote_access]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteAccessScenario {
    pub tenant_id: String,
    pub service_account_id: String,
    /// PEM public key of the service account (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    #[serde(default)]
    pub public_key: Option<String>,
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// Generate a test key pair at start and write the service-account key file here (0600).
    #[serde(default)]
    pub generate_key_file: Option<PathBuf>,
    /// Secret-type service account (P1): accept `client_id` + `client_secret`.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_client_id: Option<String>,
    /// Audience accepted besides the token URL (default: `<scheme>://<Host>/auth/realms/serviceaccounts`).
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default = "default_ttl")]
    pub token_ttl_secs: i64,
    /// `[remote_access.settings]`
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub sites: Vec<SiteDef>,
    #[serde(default)]
    pub groups: Vec<GroupDef>,
    #[serde(default)]
    pub vendors: Vec<VendorDef>,
}

/// Behaviour switches, also settable at run time (`POST /sim/remote_access/settings`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Older Keycloak: `unauthorized_client` and the old error texts.
    #[serde(default)]
    pub legacy_errors: bool,
    /// `Administrator`, `Viewer` or `Auditor`.
    #[serde(default = "default_role")]
    pub role: String,
    /// Status of a duplicate pending invitation for a phone number: 409 or 400 (P8).
    #[serde(default = "default_duplicate")]
    pub duplicate_status: u16,
    /// N requests per M seconds, then 429 with `Retry-After`.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Answer every list page as if `offset` were 0 (some endpoints do).
    #[serde(default)]
    pub ignore_offset: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            legacy_errors: false,
            role: default_role(),
            duplicate_status: default_duplicate(),
            rate_limit: None,
            ignore_offset: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub per_secs: u64,
}

fn default_ttl() -> i64 {
    300
}
fn default_role() -> String {
    "Administrator".into()
}
fn default_duplicate() -> u16 {
    409
}

impl Default for RemoteAccessScenario {
    fn default() -> Self {
        RemoteAccessScenario {
            tenant_id: "11eaab2463a4d3399816d3b7450c5b10".into(),
            service_account_id: "11ea6140f94d5f82a3712de9ac6f6b24".into(),
            public_key: None,
            public_key_file: None,
            generate_key_file: None,
            client_secret: None,
            client_secret_client_id: None,
            audience: None,
            token_ttl_secs: default_ttl(),
            settings: Settings::default(),
            sites: Vec::new(),
            groups: Vec::new(),
            vendors: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteDef {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub applications: Vec<AppDef>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppDef {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub authentication_method: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VendorDef {
    #[serde(default)]
    pub id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: String,
    pub company: String,
    #[serde(default = "activated")]
    pub status: String,
}

fn activated() -> String {
    "Activated".into()
}

// ---------------------------------------------------------------- state

/// One API or token call, for tests (retries, no retries).
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Debug, Default)]
struct Inner {
    scenario: RemoteAccessScenario,
    public_key: Option<jsonwebtoken::DecodingKey>,
    settings: Settings,
    /// `(id, displayName, description, apps[(id, name, enabled, auth)])`
    sites: Vec<Value>,
    apps: BTreeMap<String, Vec<Value>>,
    groups: Vec<Value>,
    invitations: BTreeMap<String, Value>,
    vendors: BTreeMap<String, Value>,
    tokens: HashMap<String, i64>,
    used_jti: HashMap<String, i64>,
    recent: VecDeque<i64>,
    calls: Vec<CallRecord>,
    tokens_issued: u64,
    token_refusals: Vec<String>,
    next_id: u64,
}

/// State of the stand-in.
#[derive(Debug, Default)]
pub struct RemoteAccessSim {
    inner: Mutex<Inner>,
}

fn new_id(i: &mut Inner) -> String {
    i.next_id += 1;
    let r: u64 = rand::random();
    format!("{:016x}{:016x}", r, i.next_id)
}

impl RemoteAccessSim {
    pub fn new(s: &RemoteAccessScenario) -> anyhow::Result<Self> {
        let mut s = s.clone();
        let mut public_pem = s.public_key.clone();
        if let Some(p) = &s.public_key_file {
            public_pem = Some(std::fs::read_to_string(p).map_err(|e| {
                anyhow::anyhow!("remote_access.public_key_file {}: {e}", p.display())
            })?);
        }
        if let Some(path) = &s.generate_key_file {
            let kp = keys::generate()?;
            keys::write_key_file(
                path,
                &keys::key_file_json(&s.service_account_id, &kp.pkcs1_pem),
            )?;
            public_pem = Some(kp.public_pem);
        }
        s.public_key = public_pem;
        let sim = RemoteAccessSim::default();
        sim.load(&s)?;
        Ok(sim)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (Re)load the whole state from a scenario (keys kept as given).
    pub fn load(&self, s: &RemoteAccessScenario) -> anyhow::Result<()> {
        let public_key = match &s.public_key {
            Some(pem) => Some(
                jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| anyhow::anyhow!("remote_access.public_key: {e}"))?,
            ),
            None => None,
        };
        let mut i = Inner {
            scenario: s.clone(),
            public_key,
            settings: s.settings.clone(),
            ..Inner::default()
        };
        for site in &s.sites {
            let id = site.id.clone().unwrap_or_else(|| new_id(&mut i));
            i.sites.push(json!({"id": id, "displayName": site.name, "description": site.description, "type": "Local"}));
            let mut apps = Vec::new();
            for a in &site.applications {
                let aid = a.id.clone().unwrap_or_else(|| new_id(&mut i));
                apps.push(json!({"id": aid, "name": a.name, "enabled": a.enabled,
                    "authenticationMethod": a.authentication_method.clone().unwrap_or_else(|| "SAML".into()),
                    "internalUri": format!("https://{}.internal.example", a.name.to_lowercase().replace(' ', "-")),
                    "externalUri": Value::Null}));
            }
            i.apps.insert(id, apps);
        }
        for g in &s.groups {
            let id = g.id.clone().unwrap_or_else(|| new_id(&mut i));
            i.groups.push(json!({"id": id, "name": g.name, "description": g.description, "type": "IdaptiveRole"}));
        }
        for v in &s.vendors {
            let id = v.id.clone().unwrap_or_else(|| new_id(&mut i));
            let vendor = vendor_json(
                &id,
                &v.first_name,
                &v.last_name,
                v.email.as_deref(),
                &v.phone,
                &v.company,
                &v.status,
                None,
                &s.service_account_id,
                0,
                0,
            );
            i.vendors.insert(id, vendor);
        }
        *self.lock() = i;
        Ok(())
    }

    /// Back to the scenario's state (the key stays).
    pub fn reset(&self) -> anyhow::Result<()> {
        let s = self.lock().scenario.clone();
        self.load(&s)
    }

    /// Forget every issued access token (the next API call gets 401).
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Change the behaviour switches.
    pub fn set_settings(&self, settings: Settings) {
        self.lock().settings = settings;
    }

    /// The calls seen so far.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.clone()
    }

    /// State as the admin API shows it.
    pub fn state(&self) -> Value {
        let i = self.lock();
        json!({
            "invitations": i.invitations.values().collect::<Vec<_>>(),
            "vendors": i.vendors.values().collect::<Vec<_>>(),
            "sites": i.sites,
            "groups": i.groups,
            "tokens_issued": i.tokens_issued,
            "token_refusals": i.token_refusals,
            "used_jti": i.used_jti.len(),
            "calls": i.calls,
            "settings": i.settings,
        })
    }

    /// Accept an invitation (now, by the wall clock): the vendor appears, the invitation goes.
    /// `None` for an unknown or expired invitation.
    pub fn accept(&self, id: &str) -> Option<Value> {
        self.accept_at(id, chrono::Utc::now().timestamp_millis())
            .ok()
    }

    /// Make an invitation expire (its `expiredAt` one second before `now_ms`), as the tenant's
    /// invitation lifetime would: it stays listed, cannot be accepted, and still holds its phone
    /// number against a new invitation (RA-14).
    pub fn expire(&self, id: &str, now_ms: i64) -> bool {
        match self.lock().invitations.get_mut(id) {
            Some(inv) => {
                inv["expiredAt"] = json!(now_ms - 1000);
                true
            }
            None => false,
        }
    }

    /// Accept an invitation at `now_ms`: the vendor appears, the invitation goes. An expired
    /// invitation cannot be accepted.
    pub fn accept_at(&self, id: &str, now_ms: i64) -> Result<Value, AcceptError> {
        let mut i = self.lock();
        let expired = i
            .invitations
            .get(id)
            .ok_or(AcceptError::Unknown)?
            .get("expiredAt")
            .and_then(Value::as_i64)
            .is_some_and(|t| t <= now_ms);
        if expired {
            return Err(AcceptError::Expired);
        }
        let inv = i.invitations.remove(id).ok_or(AcceptError::Unknown)?;
        let s = |k: &str| inv.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let status = if s("initialStatus") == "RequiresAdminConfirmation" {
            "PendingActivation"
        } else {
            "Activated"
        };
        let vid = new_id(&mut i);
        let mut v = vendor_json(
            &vid,
            &s("firstName"),
            &s("lastName"),
            Some(&s("emailAddress")),
            &s("phoneNumber"),
            &s("companyName"),
            status,
            Some(id),
            &i.scenario.service_account_id.clone(),
            inv.get("accessStartDate")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            inv.get("accessEndDate")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        );
        v["applications"] = inv.get("applications").cloned().unwrap_or(Value::Null);
        v["canInvite"] = inv.get("canInvite").cloned().unwrap_or(json!(false));
        i.vendors.insert(vid, v.clone());
        Ok(v)
    }
}

/// Why an invitation could not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    Unknown,
    Expired,
}

#[allow(clippy::too_many_arguments)]
fn vendor_json(
    id: &str,
    first: &str,
    last: &str,
    email: Option<&str>,
    phone: &str,
    company: &str,
    status: &str,
    invitation: Option<&str>,
    invited_by: &str,
    start: i64,
    end: i64,
) -> Value {
    let username: String = format!("{first}.{last}.{company}")
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    json!({
        "id": id, "username": username, "firstName": first, "lastName": last,
        "emailAddress": email, "phoneNumber": phone, "companyName": company,
        "phoneModel": "Pixel 8", "phoneOs": "Android 15", "appVersion": "3.2.0", "phoneAndEmailAuth": false,
        "status": status, "canInvite": false, "lastLogin": Value::Null, "applications": [],
        "accessStartDate": start, "accessEndDate": end, "emailConfirmedAt": Value::Null,
        "groups": [], "maxNumOfInvitedVendors": 0, "invitedVendorsInitialStatus": Value::Null,
        "provisioningType": "None", "comments": Value::Null, "invitationId": invitation, "invitedBy": invited_by,
    })
}

// ---------------------------------------------------------------- responses

fn problem(status: StatusCode, detail: &str, instance: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail, "instance": instance}).to_string(),
    )
        .into_response()
}

fn spring_default(status: StatusCode, path: &str, now_ms: i64) -> Response {
    (
        status,
        Json(json!({"timestamp": now_ms, "status": status.as_u16(), "error": status.canonical_reason().unwrap_or("Error"), "path": path})),
    )
        .into_response()
}

fn bare(status: StatusCode, text: &str) -> Response {
    (status, Json(Value::String(text.to_string()))).into_response()
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

// ---------------------------------------------------------------- dispatch

/// Entry point for `/auth/realms/…`, `/v2-edge/…` and `/v1-edge/…`.
pub async fn handle(state: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
                &path,
            );
        }
    };
    let scheme = state
        .host
        .base_url
        .get()
        .and_then(|u| u.split_once("://").map(|(s, _)| s.to_string()))
        .unwrap_or_else(|| "https".into());
    let sim = &state.sim;
    let resp = if path.to_ascii_lowercase().starts_with("/auth/realms/") {
        token_endpoint(
            sim,
            &method,
            &headers,
            &path,
            &body,
            &format!("{scheme}://{authority}"),
            state.host.clock.now(),
        )
    } else {
        api(
            sim,
            &method,
            &headers,
            &path,
            &query,
            &body,
            state.host.clock.now_ms(),
        )
    };
    let mut i = sim.lock();
    i.calls.push(CallRecord {
        method: method.to_string(),
        path: path.clone(),
        status: resp.status().as_u16(),
    });
    resp
}

fn token_endpoint(
    sim: &RemoteAccessSim,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
    base: &str,
    now: i64,
) -> Response {
    if path != token::TOKEN_PATH {
        if path.starts_with(token::REALM_PATH) {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "Unable to find matching target resource method"})),
            )
                .into_response();
        }
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "Realm does not exist"})),
        )
            .into_response();
    }
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            Json(json!({"error": "HTTP 405 Method Not Allowed"})),
        )
            .into_response();
    }
    let mut i = sim.lock();
    let issuer = i
        .scenario
        .audience
        .clone()
        .unwrap_or_else(|| format!("{base}{}", token::REALM_PATH));
    let client_id = format!(
        "{}.{}.ExternalServiceAccount",
        i.scenario.tenant_id, i.scenario.service_account_id
    );
    let secret_id = i
        .scenario
        .client_secret_client_id
        .clone()
        .unwrap_or_else(|| format!("{}.{}", i.scenario.tenant_id, i.scenario.service_account_id));
    let secret = i.scenario.client_secret.clone();
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let check = token::TokenCheck {
        expected_client_id: &client_id,
        public_key: i.public_key.as_ref(),
        issuer: &issuer,
        now,
        legacy: i.settings.legacy_errors,
        secret_client: secret.as_deref().map(|s| (secret_id.as_str(), s)),
    };
    let result = token::check(&check, &ct, body).and_then(|a| match &a.jti {
        Some((jti, _)) if i.used_jti.get(jti).is_some_and(|exp| *exp > now) => {
            Err(token::reuse(&check))
        }
        _ => Ok(a),
    });
    match result {
        Ok(a) => {
            if let Some((jti, exp)) = a.jti {
                i.used_jti.retain(|_, e| *e > now);
                i.used_jti.insert(jti, exp);
            }
            let token: String = {
                use rand::Rng;
                let mut rng = rand::rng();
                (0..64)
                    .map(|_| {
                        const A: &[u8] =
                            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                        A[rng.random_range(0..A.len())] as char
                    })
                    .collect()
            };
            let ttl = i.scenario.token_ttl_secs;
            i.tokens.insert(token.clone(), now + ttl);
            i.tokens_issued += 1;
            Json(
                json!({"access_token": token, "expires_in": ttl, "refresh_expires_in": 0,
                "token_type": "Bearer", "not-before-policy": 0, "scope": "profile email"}),
            )
            .into_response()
        }
        Err(r) => {
            i.token_refusals.push(r.description.clone());
            oauth_error(r.status, r.error, &r.description)
        }
    }
}

fn query_map(q: &str) -> HashMap<String, String> {
    token::parse_form(q.as_bytes()).into_iter().collect()
}

const INVITATION_FIELDS: &[&str] = &["ALL", "FULLNAME", "COMPANY", "PHONE", "EMAIL", "GROUPS"];
const VENDOR_FIELDS: &[&str] = &["ALL", "GROUPS", "COMPANY", "FULLNAME"];

fn search_text(item: &Value, field: &str) -> String {
    let s = |k: &str| {
        item.get(k)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    match field {
        "FULLNAME" => format!("{} {} {}", s("firstName"), s("lastName"), s("fullName")),
        "COMPANY" => s("companyName"),
        "PHONE" => s("phoneNumber"),
        "EMAIL" => s("emailAddress"),
        "GROUPS" => format!("{} {}", s("groups"), s("provisioningGroups")),
        _ => item.to_string(),
    }
}

#[allow(clippy::result_large_err)]
fn page(
    items: Vec<Value>,
    key: &str,
    q: &HashMap<String, String>,
    fields: &[&str],
    settings: &Settings,
    path: &str,
) -> Result<Response, Response> {
    let num = |name: &str, default: usize| -> Result<usize, Response> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| {
                problem(
                    StatusCode::BAD_REQUEST,
                    &format!("Failed to convert '{name}' with value: '{v}'"),
                    path,
                )
            }),
        }
    };
    let limit = num("limit", 100)?;
    let offset = if settings.ignore_offset {
        0
    } else {
        num("offset", 0)?
    };
    if limit > 100 {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "limit must be less than or equal to 100",
            path,
        ));
    }
    let items: Vec<Value> = match (q.get("searchIn"), q.get("searchString")) {
        (Some(field), Some(text)) if !text.is_empty() => {
            let field = field.to_ascii_uppercase();
            if !fields.contains(&field.as_str()) {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid value '{field}' for parameter 'searchIn'"),
                    path,
                ));
            }
            let needle = text.to_lowercase();
            items
                .into_iter()
                .filter(|i| search_text(i, &field).to_lowercase().contains(&needle))
                .collect()
        }
        _ => items,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    Ok(Json(json!({ key: page, "totalCount": total })).into_response())
}

fn invitation_summary(v: &Value) -> Value {
    json!({
        "invitationId": v["id"], "companyName": v["companyName"], "emailAddress": v["emailAddress"],
        "fullName": format!("{} {}", v["firstName"].as_str().unwrap_or(""), v["lastName"].as_str().unwrap_or("")),
        "groups": v["provisioningGroups"], "phoneNumber": v["phoneNumber"], "expiredAt": v["expiredAt"],
        "phoneAndEmailAuth": v["phoneAndEmailAuth"],
    })
}

fn vendor_summary(v: &Value, now_ms: i64) -> Value {
    let start = v["accessStartDate"].as_i64().unwrap_or(0);
    let end = v["accessEndDate"].as_i64().unwrap_or(0);
    let exp = if start == 0 && end == 0 || now_ms < start {
        "BeforeTimeframe"
    } else if end != 0 && now_ms > end {
        "AfterTimeframe"
    } else {
        "InTimeframe"
    };
    json!({
        "id": v["id"], "invitedBy": v["invitedBy"], "username": v["username"],
        "fullName": format!("{} {}", v["firstName"].as_str().unwrap_or(""), v["lastName"].as_str().unwrap_or("")),
        "phoneNumber": v["phoneNumber"], "canInvite": v["canInvite"], "status": v["status"],
        "expirationStatus": exp, "companyName": v["companyName"], "emailAddress": v["emailAddress"],
        "groups": "", "idaptiveRoles": "",
    })
}

#[allow(clippy::too_many_arguments)]
fn api(
    sim: &RemoteAccessSim,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: &str,
    body: &[u8],
    now_ms: i64,
) -> Response {
    let mut i = sim.lock();
    // Rate limit first: the gateway counts before authentication (P9).
    if let Some(rl) = i.settings.rate_limit {
        let window = rl.per_secs as i64 * 1000;
        while i.recent.front().is_some_and(|t| *t <= now_ms - window) {
            i.recent.pop_front();
        }
        if i.recent.len() as u32 >= rl.requests {
            let wait_ms = i
                .recent
                .front()
                .map(|t| t + window - now_ms)
                .unwrap_or(1000);
            let secs = ((wait_ms + 999) / 1000).max(1);
            let mut r = problem(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded", path);
            if let Ok(v) = secs.to_string().parse() {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        i.recent.push_back(now_ms);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let now = now_ms.div_euclid(1000);
    let valid = bearer.is_some_and(|t| i.tokens.get(t).is_some_and(|exp| *exp > now));
    if !valid {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
            Body::empty(),
        )
            .into_response();
    }
    let rest = path
        .strip_prefix("/v2-edge/")
        .or_else(|| path.strip_prefix("/v1-edge/"));
    let Some(rest) = rest else {
        return problem(
            StatusCode::NOT_FOUND,
            &format!("No endpoint {method} {path}."),
            path,
        );
    };
    let segs: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
    let role = i.settings.role.clone();
    let is_activities = seg.first() == Some(&"activities");
    if (role.eq_ignore_ascii_case("viewer") || role.eq_ignore_ascii_case("auditor"))
        && method != Method::GET
        || role.eq_ignore_ascii_case("auditor") && !is_activities
    {
        return bare(StatusCode::FORBIDDEN, "Forbidden");
    }
    let q = query_map(query);
    let not_found = || {
        problem(
            StatusCode::NOT_FOUND,
            &format!("No endpoint {method} {path}."),
            path,
        )
    };
    let not_allowed = || {
        problem(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("Method '{method}' is not supported."),
            path,
        )
    };
    let settings = i.settings.clone();
    let m = method.clone();
    let unwrap = |r: Result<Response, Response>| r.unwrap_or_else(|e| e);
    match seg.as_slice() {
        ["sites"] => match m {
            Method::GET => unwrap(page(
                i.sites.clone(),
                "sites",
                &q,
                &["ALL"],
                &settings,
                path,
            )),
            _ => not_allowed(),
        },
        ["sites", id] => match m {
            Method::GET => match i.sites.iter().find(|s| s["id"] == *id) {
                Some(s) => Json(s.clone()).into_response(),
                None => bare(
                    StatusCode::NOT_FOUND,
                    &format!("Site with id {id} not found"),
                ),
            },
            _ => not_allowed(),
        },
        ["sites", id, "applications"] => match m {
            Method::GET => match i.apps.get(*id) {
                Some(apps) => unwrap(page(
                    apps.clone(),
                    "applications",
                    &q,
                    &["ALL"],
                    &settings,
                    path,
                )),
                None => bare(
                    StatusCode::NOT_FOUND,
                    &format!("Site with id {id} not found"),
                ),
            },
            _ => not_allowed(),
        },
        ["groups"] => match m {
            Method::GET => unwrap(page(
                i.groups.clone(),
                "groups",
                &q,
                &["ALL", "NAME"],
                &settings,
                path,
            )),
            _ => not_allowed(),
        },
        ["groups", id] => match m {
            Method::GET => match i.groups.iter().find(|g| g["id"] == *id) {
                Some(g) => Json(g.clone()).into_response(),
                None => bare(
                    StatusCode::NOT_FOUND,
                    &format!("Group with id {id} not found"),
                ),
            },
            _ => not_allowed(),
        },
        ["invitations", "vendor-invitations"] | ["invitations", "vendor-invitations", ""] => {
            match m {
                Method::POST => create_invitation(&mut i, body, path, now_ms),
                Method::GET => {
                    let items = i.invitations.values().map(invitation_summary).collect();
                    unwrap(page(
                        items,
                        "invitations",
                        &q,
                        INVITATION_FIELDS,
                        &settings,
                        path,
                    ))
                }
                _ => not_allowed(),
            }
        }
        ["invitations", "vendor-invitations", id] => match m {
            Method::GET => match i.invitations.get(*id) {
                Some(v) => Json(v.clone()).into_response(),
                None => bare(
                    StatusCode::NOT_FOUND,
                    &format!("Invitation with id {id} not found"),
                ),
            },
            Method::DELETE => match i.invitations.remove(*id) {
                Some(v) => Json(v).into_response(),
                None => bare(
                    StatusCode::NOT_FOUND,
                    &format!("Invitation with id {id} not found"),
                ),
            },
            _ => not_allowed(),
        },
        ["vendors"] => match m {
            Method::GET => {
                if q.get("searchIn")
                    .is_some_and(|f| f.eq_ignore_ascii_case("EMAIL"))
                {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        "Invalid value 'EMAIL' for parameter 'searchIn'",
                        path,
                    );
                }
                let items = i
                    .vendors
                    .values()
                    .map(|v| vendor_summary(v, now_ms))
                    .collect();
                unwrap(page(items, "vendors", &q, VENDOR_FIELDS, &settings, path))
            }
            _ => not_allowed(),
        },
        ["vendors", ""] => not_found(),
        ["vendors", "phone", phone] => {
            let found = i
                .vendors
                .iter()
                .find(|(_, v)| v["phoneNumber"] == *phone)
                .map(|(k, _)| k.clone());
            match (m, found) {
                (Method::GET, Some(id)) => Json(i.vendors[&id].clone()).into_response(),
                (Method::DELETE, Some(id)) => {
                    i.vendors.remove(&id);
                    bare(StatusCode::OK, "")
                }
                (Method::GET | Method::DELETE, None) => bare(
                    StatusCode::NOT_FOUND,
                    &format!("Vendor with phone number {phone} in not found"),
                ),
                _ => not_allowed(),
            }
        }
        ["vendors", id] => match m {
            Method::GET => match i.vendors.get(*id) {
                Some(v) => Json(v.clone()).into_response(),
                None => bare(
                    StatusCode::NOT_FOUND,
                    &format!("Vendor with id {id} not found"),
                ),
            },
            Method::DELETE => match i.vendors.remove(*id) {
                Some(_) => bare(StatusCode::OK, ""),
                None => bare(
                    StatusCode::NOT_FOUND,
                    &format!("Vendor with id {id} not found"),
                ),
            },
            _ => not_allowed(),
        },
        ["vendors", id, "status"] => match m {
            Method::PUT => {
                let Some(v) = i.vendors.get_mut(*id) else {
                    return bare(
                        StatusCode::NOT_FOUND,
                        &format!("Vendor with id {id} not found"),
                    );
                };
                match serde_json::from_slice::<Value>(body) {
                    Ok(Value::String(s)) if s == "Activated" || s == "Deactivated" => {
                        v["status"] = json!(s);
                        (StatusCode::OK, Body::empty()).into_response()
                    }
                    Ok(Value::String(s)) if s == "PendingActivation" => bare(
                        StatusCode::BAD_REQUEST,
                        "Status PendingActivation cannot be set",
                    ),
                    _ => spring_default(StatusCode::BAD_REQUEST, path, now_ms),
                }
            }
            _ => not_allowed(),
        },
        _ => not_found(),
    }
}

fn create_invitation(i: &mut Inner, body: &[u8], path: &str, now_ms: i64) -> Response {
    let Ok(Value::Object(mut inv)) = serde_json::from_slice::<Value>(body) else {
        return spring_default(StatusCode::BAD_REQUEST, path, now_ms);
    };
    let strings = [
        "companyName",
        "emailAddress",
        "firstName",
        "lastName",
        "phoneNumber",
        "initialStatus",
    ];
    let ok = strings.iter().all(|k| {
        inv.get(*k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    }) && ["accessStartDate", "accessEndDate"]
        .iter()
        .all(|k| inv.get(*k).is_some_and(Value::is_i64))
        && inv.get("canInvite").is_some_and(Value::is_boolean)
        && inv
            .get("applications")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        && ["Activated", "RequiresAdminConfirmation"]
            .contains(&inv["initialStatus"].as_str().unwrap_or(""));
    if !ok {
        return spring_default(StatusCode::BAD_REQUEST, path, now_ms);
    }
    for a in inv["applications"].as_array().cloned().unwrap_or_default() {
        let (site, app) = (
            a["siteId"].as_str().unwrap_or(""),
            a["applicationId"].as_str().unwrap_or(""),
        );
        let exists = i
            .apps
            .get(site)
            .is_some_and(|apps| apps.iter().any(|x| x["id"] == app));
        if !exists {
            return bare(
                StatusCode::BAD_REQUEST,
                &format!("Application {app} was not found in site {site}"),
            );
        }
    }
    let phone = inv["phoneNumber"].clone();
    if i.invitations.values().any(|v| v["phoneNumber"] == phone) {
        let status =
            StatusCode::from_u16(i.settings.duplicate_status).unwrap_or(StatusCode::CONFLICT);
        return bare(status, "An invitation for this phone number already exists");
    }
    let id = new_id(i);
    inv.insert("id".into(), json!(id));
    inv.insert("initializerId".into(), json!(i.scenario.service_account_id));
    inv.insert("createdAt".into(), json!(now_ms));
    inv.insert("expiredAt".into(), json!(now_ms + 7 * 24 * 3600 * 1000));
    inv.insert("role".into(), json!("Vendor"));
    if let Some(u) = inv.remove("provisioningUsername") {
        inv.insert("provisioningUserName".into(), u);
    }
    i.invitations.insert(id.clone(), Value::Object(inv));
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "text/plain")],
        id,
    )
        .into_response()
}

// ---------------------------------------------------------------- admin

pub fn admin_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/state",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.sim.state()) }),
        )
        .route(
            "/reset",
            post(|State(s): State<Arc<Shared>>| async move {
                match s.sim.reset() {
                    Ok(()) => StatusCode::NO_CONTENT.into_response(),
                    Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
                }
            }),
        )
        .route(
            "/invitations/{id}/accept",
            post(
                |State(s): State<Arc<Shared>>, Path(id): Path<String>| async move {
                    match s.sim.accept_at(&id, s.host.clock.now_ms()) {
                        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
                        Err(AcceptError::Unknown) => {
                            (StatusCode::NOT_FOUND, format!("no invitation {id}")).into_response()
                        }
                        Err(AcceptError::Expired) => {
                            (StatusCode::GONE, format!("invitation {id} has expired"))
                                .into_response()
                        }
                    }
                },
            ),
        )
        .route(
            "/invitations/{id}/expire",
            post(
                |State(s): State<Arc<Shared>>, Path(id): Path<String>| async move {
                    if s.sim.expire(&id, s.host.clock.now_ms()) {
                        StatusCode::NO_CONTENT.into_response()
                    } else {
                        (StatusCode::NOT_FOUND, format!("no invitation {id}")).into_response()
                    }
                },
            ),
        )
        .route(
            "/settings",
            get(|State(s): State<Arc<Shared>>| async move {
                Json(serde_json::to_value(&s.sim.lock().settings).unwrap_or_default())
            })
            .post(
                |State(s): State<Arc<Shared>>, Json(new): Json<Settings>| async move {
                    s.sim.lock().settings = new;
                    StatusCode::NO_CONTENT
                },
            ),
        )
}

#[cfg(test)]
mod tests {
    use super::token::{self, TokenCheck};
    use super::*;

    #[test]
    fn the_demo_scenario_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/demo/remote-access-scenario.toml"
        );
        let s = crate::Scenario::load(std::path::Path::new(path)).expect("scenario");
        assert_eq!(s.remote_access.sites.len(), 2);
        assert!(s.remote_access.generate_key_file.is_some());
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    }

    #[test]
    fn token_requests_are_checked_in_keycloaks_order() {
        let kp = keys::generate().expect("kg");
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(kp.public_pem.as_bytes()).expect("pub");
        let enc = jsonwebtoken::EncodingKey::from_rsa_pem(kp.pkcs1_pem.as_bytes()).expect("priv");
        let issuer = "https://127.0.0.1:1/auth/realms/serviceaccounts";
        let c = TokenCheck {
            expected_client_id: "t.s.ExternalServiceAccount",
            public_key: Some(&key),
            issuer,
            now: 1_000_000,
            legacy: false,
            secret_client: None,
        };
        let jwt = |claims: Value| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
                &claims,
                &enc,
            )
            .expect("sign")
        };
        let good = json!({"iss":"t.s.ExternalServiceAccount","sub":"t.s.ExternalServiceAccount",
            "aud": issuer, "iat": 1_000_000, "exp": 1_000_300, "jti": "j1"});
        let ft = "application/x-www-form-urlencoded";
        let ok_form = |a: &str| {
            form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", token::ASSERTION_TYPE),
                ("client_assertion", a),
            ])
        };
        let a = token::check(&c, ft, &ok_form(&jwt(good.clone()))).expect("accepted");
        assert_eq!(a.jti, Some(("j1".into(), 1_000_300)));
        let refuse = |ct: &str, body: Vec<u8>| token::check(&c, ct, &body).expect_err("refused");
        let r = refuse(ft, form(&[("client_assertion", "x")]));
        assert_eq!(
            (r.status, r.error, r.description.as_str()),
            (400, "invalid_request", "Missing form parameter: grant_type")
        );
        assert_eq!(
            refuse(ft, form(&[("grant_type", "password")])).error,
            "unsupported_grant_type"
        );
        let r = refuse("application/json", b"{}".to_vec());
        assert_eq!(r.description, "Missing form parameter: grant_type");
        let r = refuse(ft, form(&[("grant_type", "client_credentials")]));
        assert_eq!(r.description, "Parameter client_assertion_type is missing");
        let r = refuse(
            ft,
            form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "x"),
            ]),
        );
        assert!(
            r.description
                .starts_with("Parameter client_assertion_type has value 'x' but expected is 'urn:")
        );
        let r = refuse(
            ft,
            form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", token::ASSERTION_TYPE),
            ]),
        );
        assert_eq!(r.description, "client_assertion parameter missing");
        let r = refuse(ft, ok_form("not.a.jwt"));
        assert_eq!(
            r.description,
            "Client authentication with signed JWT failed: Parsing error"
        );
        let mut x = good.clone();
        x.as_object_mut().expect("o").remove("sub");
        assert!(
            refuse(ft, ok_form(&jwt(x)))
                .description
                .ends_with("Subject missing on JWT token")
        );
        let mut x = good.clone();
        x["exp"] = json!(1_000_000);
        assert!(
            refuse(ft, ok_form(&jwt(x)))
                .description
                .ends_with("Token is not active")
        );
        let mut x = good.clone();
        x.as_object_mut().expect("o").remove("jti");
        assert!(
            refuse(ft, ok_form(&jwt(x)))
                .description
                .ends_with("Missing ID on the token")
        );
        // The order: a wrong subject is reported before a bad signature or audience.
        let mut x = good.clone();
        x["sub"] = json!("other");
        x["aud"] = json!("elsewhere");
        assert!(
            refuse(ft, ok_form(&jwt(x)))
                .description
                .ends_with("Issuer mismatch. The issuer should match the subject")
        );
        let mut x = good.clone();
        x["aud"] = json!("elsewhere");
        x["exp"] = json!(1);
        assert!(
            refuse(ft, ok_form(&jwt(x)))
                .description
                .contains("Token audience doesn't match domain. Expected audiences are any of")
        );
        // Legacy Keycloak: unauthorized_client and the old audience text.
        let legacy = TokenCheck { legacy: true, ..c };
        let mut x = good.clone();
        x["aud"] = json!(["elsewhere"]);
        let r = token::check(&legacy, ft, &ok_form(&jwt(x))).expect_err("aud");
        assert_eq!(r.error, "unauthorized_client");
        assert!(r.description.contains("Realm issuer is 'https://127.0.0.1:1/auth/realms/serviceaccounts' but audience from token is '[elsewhere]'"), "{}", r.description);
        // The token URL is accepted as audience too.
        let mut x = good;
        x["aud"] = json!(format!("{issuer}/protocol/openid-connect/token"));
        assert!(token::check(&c, ft, &ok_form(&jwt(x))).is_ok());
    }

    #[test]
    fn generated_key_files_look_like_the_portals() {
        let dir = std::env::temp_dir().join(format!("pam-sim-ra-{}", std::process::id()));
        let path = dir.join("k.json");
        let s = RemoteAccessScenario {
            generate_key_file: Some(path.clone()),
            ..RemoteAccessScenario::default()
        };
        let _sim = RemoteAccessSim::new(&s).expect("sim");
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert!(
            v["privateKey"]
                .as_str()
                .expect("pk")
                .starts_with("-----BEGIN RSA PRIVATE KEY-----")
        );
        assert_eq!(v["serviceAccountId"], s.service_account_id);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! Stand-in: Microsoft Entra ID's token endpoint for app-only tokens, the first piece of the
//! Exchange Online (Microsoft Graph) stand-in (reference/graph.md). Served at the root of the
//! listener as the real one is under `login.microsoftonline.com`: the client's authority is the
//! stand-in's base URL, so token requests go to `{base}/{tenant}/oauth2/v2.0/token`.
//!
//! - Apps from the scenario, each with a client secret and/or certificates; a certificate can
//!   be generated at start (`generate_certificate = "STEM"` writes `STEM.crt` and `STEM.key`,
//!   mode 0600, and registers it).
//! - Tokens are opaque strings (real ones are JWTs) living `token_lifetime_secs`; they are kept
//!   with their app and expiry for the bearer check of the mail API.
//! - Test control under `/sim/graph/`: `GET stats` (token requests granted and refused, by
//!   credential), `POST expire_tokens`.
//!
//! Guesses are listed in ASSUMPTIONS.md (Microsoft Graph, G1–G5).

pub mod directory;
pub mod login;
pub mod mail;
pub mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::host::Hosted;

type Shared = Hosted<GraphSim>;

/// Exchange Online's tenant stamps on a mail it authenticated as internal (see `deliver`).
fn stamp_tenant(raw: Vec<u8>, tenant: &str) -> Vec<u8> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let internal = header("X-MS-Exchange-Organization-AuthAs")
        .is_some_and(|v| v.eq_ignore_ascii_case("internal"));
    if !internal {
        return raw;
    }
    let source = header("X-MS-Exchange-Organization-AuthSource")
        .unwrap_or_else(|| "SIM01PR01MB0001.prod.outlook.com".into());
    // At the end of the header block, where Exchange writes its own X-MS-Exchange headers
    // (below the Received lines each hop prepends).
    let stamps = format!(
        "X-MS-Exchange-CrossTenant-Id: {tenant}\r\nX-MS-Exchange-CrossTenant-AuthAs: Internal\r\nX-MS-Exchange-CrossTenant-AuthSource: {source}\r\n"
    );
    let crlf = raw.get(head_end..head_end + 4) == Some(b"\r\n\r\n".as_slice());
    let cut = if head_end == raw.len() {
        raw.len()
    } else if crlf {
        head_end + 2
    } else {
        head_end + 1
    };
    let mut out = Vec::with_capacity(raw.len() + stamps.len());
    out.extend_from_slice(&raw[..cut]);
    out.extend_from_slice(stamps.as_bytes());
    out.extend_from_slice(&raw[cut..]);
    out
}

/// Whether a path is the Graph stand-in's: the mail API under `/v1.0/`, `/{tenant}/oauth2/v2.0/…`
/// or `/{tenant}/v2.0/.well-known/openid-configuration`.
pub fn serves(path_lower: &str) -> bool {
    if path_lower.starts_with("/v1.0/") {
        return true;
    }
    let rest = path_lower.trim_start_matches('/');
    let Some((_, after)) = rest.split_once('/') else {
        return false;
    };
    after.starts_with("oauth2/v2.0/") || after == "v2.0/.well-known/openid-configuration"
}

// ---------------------------------------------------------------- scenario

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphScenario {
    /// The directory (tenant) id; requests naming another tenant get AADSTS90002.
    #[serde(default = "default_tenant")]
    pub tenant_id: String,
    /// Lifetime of issued tokens (`expires_in`), seconds.
    #[serde(default = "default_lifetime")]
    pub token_lifetime_secs: i64,
    #[serde(default)]
    pub apps: Vec<AppDef>,
    /// Mailboxes (SMTP addresses) the mail API serves.
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// Calls in flight per mailbox before a 429 (Exchange Online's limit is 4).
    #[serde(default = "default_concurrency")]
    pub max_concurrent: u32,
    /// Time each mail API call takes, in milliseconds (the benchmark's "per call" latency).
    #[serde(default)]
    pub call_latency_ms: u64,
    /// Exchange Online's sending rate per mailbox (30 a minute), enforced on a draft's `send`
    /// when set: `{ messages = 30, window_ms = 60000 }` (ASSUMPTIONS.md G30).
    #[serde(default)]
    pub send_limit: Option<crate::send_limit::SendLimit>,
    /// Entra ID's users and groups (`[graph.directory]`), read by the directory endpoints.
    #[serde(default)]
    pub directory: directory::DirectoryDef,
}

fn default_concurrency() -> u32 {
    4
}

fn default_tenant() -> String {
    "00000000-0000-4000-8000-00000000feed".into()
}
fn default_lifetime() -> i64 {
    3599
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppDef {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Registered certificates, each as its PEM certificate and the PEM public key in it.
    #[serde(default)]
    pub certificates: Vec<CertificateDef>,
    /// Generate a certificate and key at start: `STEM.crt` and `STEM.key` (mode 0600).
    #[serde(default)]
    pub generate_certificate: Option<PathBuf>,
    /// The mailboxes the app may open (RBAC for Applications scope); empty: all of them.
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// Microsoft Graph application permissions granted to the app (admin consented) that the
    /// directory endpoints check, e.g. `["User.Read.All", "GroupMember.Read.All"]`; none by
    /// default (the mail API is governed by `mailboxes`).
    #[serde(default)]
    pub directory_roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateDef {
    /// PEM `CERTIFICATE` (its DER's SHA-256 is the thumbprint).
    pub certificate: String,
    /// PEM `PUBLIC KEY` of the certificate (the stand-in does not parse X.509).
    pub public_key: String,
}

/// A certificate and key generated for a test app.
pub struct GeneratedCertificate {
    pub certificate_pem: String,
    pub private_key_pem: String,
    pub public_key_pem: String,
}

/// A self-signed RSA certificate for an app (never a committed key).
pub fn generate_certificate(name: &str) -> anyhow::Result<GeneratedCertificate> {
    let keys = crate::remote_access::keys::generate()?;
    let kp = rcgen::KeyPair::from_pem_and_sign_algo(&keys.pkcs8_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| anyhow::anyhow!("key pair: {e}"))?;
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .map_err(|e| anyhow::anyhow!("certificate: {e}"))?
        .self_signed(&kp)
        .map_err(|e| anyhow::anyhow!("certificate: {e}"))?;
    Ok(GeneratedCertificate {
        certificate_pem: cert.pem(),
        private_key_pem: keys.pkcs8_pem,
        public_key_pem: keys.public_pem,
    })
}

/// `x5t#S256` of a PEM certificate: base64url (padded) of the SHA-256 of its DER.
pub fn thumbprint(certificate_pem: &str) -> anyhow::Result<String> {
    use base64::Engine as _;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    use sha2::Digest as _;
    let der = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("not a PEM certificate: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE.encode(sha2::Sha256::digest(der.as_ref())))
}

// ---------------------------------------------------------------- state

struct RegisteredApp {
    client_id: String,
    secret: Option<String>,
    certificates: Vec<(String, jsonwebtoken::DecodingKey)>,
    mailboxes: Vec<String>,
    directory_roles: Vec<String>,
}

#[derive(Default)]
struct Inner {
    tenant_id: String,
    lifetime: i64,
    apps: Vec<RegisteredApp>,
    /// token -> (client id, expiry in ms)
    tokens: HashMap<String, (String, i64)>,
    stats: Stats,
    store: store::Store,
    /// Delta tokens of an older epoch answer 410.
    delta_epoch: u64,
    inflight: HashMap<String, u32>,
    max_concurrent: u32,
    call_latency_ms: u64,
    send_rate: crate::send_limit::SendRate,
    directory: directory::Directory,
}

/// Counts of token requests.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub granted_secret: u64,
    pub granted_certificate: u64,
    /// AADSTS code -> count
    pub refused: std::collections::BTreeMap<u64, u64>,
    /// Mail API calls answered, by mailbox (lowercase).
    pub calls: std::collections::BTreeMap<String, u64>,
    /// Mail API calls refused with 429 for the concurrency limit.
    pub throttled: u64,
    /// Sends refused for the sending rate (`send_limit`).
    pub sends_refused: u64,
}

#[derive(Default)]
pub struct GraphSim {
    inner: Mutex<Inner>,
}

impl GraphSim {
    pub fn new(s: &GraphScenario) -> anyhow::Result<Self> {
        let mut apps = Vec::new();
        for a in &s.apps {
            let mut certificates = Vec::new();
            let mut defs = a.certificates.clone();
            if let Some(stem) = &a.generate_certificate {
                let g = generate_certificate("pam-sim graph app")?;
                let write = |ext: &str, text: &str| {
                    let mut p = stem.clone().into_os_string();
                    p.push(ext);
                    crate::remote_access::keys::write_key_file(std::path::Path::new(&p), text)
                };
                write(".crt", &g.certificate_pem)?;
                write(".key", &g.private_key_pem)?;
                defs.push(CertificateDef {
                    certificate: g.certificate_pem,
                    public_key: g.public_key_pem,
                });
            }
            for c in defs {
                let key = jsonwebtoken::DecodingKey::from_rsa_pem(c.public_key.as_bytes())
                    .map_err(|e| anyhow::anyhow!("graph app {}: public key: {e}", a.client_id))?;
                certificates.push((thumbprint(&c.certificate)?, key));
            }
            apps.push(RegisteredApp {
                client_id: a.client_id.clone(),
                secret: a.client_secret.clone(),
                certificates,
                mailboxes: a.mailboxes.iter().map(|m| m.to_ascii_lowercase()).collect(),
                directory_roles: a.directory_roles.clone(),
            });
        }
        let mut st = store::Store::default();
        for m in &s.mailboxes {
            st.add_mailbox(m);
        }
        Ok(GraphSim {
            inner: Mutex::new(Inner {
                tenant_id: if s.tenant_id.is_empty() {
                    default_tenant()
                } else {
                    s.tenant_id.clone()
                },
                lifetime: s.token_lifetime_secs.max(1),
                apps,
                store: st,
                max_concurrent: s.max_concurrent.max(1),
                call_latency_ms: s.call_latency_ms,
                send_rate: crate::send_limit::SendRate::new(s.send_limit),
                directory: directory::Directory::new(&s.directory),
                ..Inner::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> Stats {
        let i = self.lock();
        Stats {
            sends_refused: i.send_rate.refused,
            ..i.stats.clone()
        }
    }

    /// Set (or lift) the sending rate per mailbox (a test control; the scenario's `send_limit`).
    pub fn set_send_limit(&self, limit: Option<crate::send_limit::SendLimit>) {
        self.lock().send_rate.set(limit);
    }

    /// The app a bearer token was issued to, while it is valid.
    pub fn token_app(&self, token: &str, now_ms: i64) -> Option<String> {
        let i = self.lock();
        i.tokens
            .get(token)
            .filter(|(_, exp)| *exp > now_ms)
            .map(|(app, _)| app.clone())
    }

    /// Make every issued token invalid (as after a revocation or a lifetime ending early).
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// From now on, every read of the MIME (`$value`) of the mail with this Message-ID answers
    /// 500 `ErrorInternalServerError` (a mail the server cannot read; a test control).
    pub fn fail_fetches_of(&self, message_id: &str) {
        self.lock()
            .store
            .unreadable
            .insert(crate::ews::norm_mid(message_id));
    }

    /// Deliver a raw message into a folder (default the inbox) as transport does: unread, with
    /// its header block as transport headers. Returns the immutable id.
    ///
    /// A mail Exchange authenticated as internal (its header block carries
    /// `X-MS-Exchange-Organization-AuthAs: Internal`) gets Exchange Online's tenant stamps at the
    /// end of its header block: `X-MS-Exchange-CrossTenant-Id` (this tenant), `-AuthAs: Internal`, `-AuthSource`
    /// (the organisation AuthSource). Stamps already in the submitted MIME are kept above them
    /// (ASSUMPTIONS.md G15).
    pub fn deliver(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        raw: Vec<u8>,
        now_ms: i64,
    ) -> Result<String, String> {
        let mut i = self.lock();
        let raw = stamp_tenant(raw, &i.tenant_id);
        i.store
            .place(mailbox, folder.unwrap_or("inbox"), raw, now_ms, true)
    }

    /// [`GraphSim::deliver`] as if another Exchange Online tenant, `tenant`, had authenticated
    /// the submission and its stamps had reached this mailbox with the mail (a test control:
    /// the "another tenant on the same shared servers" case the tenant pin is for). The mail's
    /// organisation headers are kept as given; its tenant stamps name `tenant`, not this
    /// stand-in's (ASSUMPTIONS.md G15).
    pub fn deliver_from_tenant(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        raw: Vec<u8>,
        tenant: &str,
        now_ms: i64,
    ) -> Result<String, String> {
        let raw = stamp_tenant(raw, tenant);
        self.lock()
            .store
            .place(mailbox, folder.unwrap_or("inbox"), raw, now_ms, true)
    }

    /// Put a raw message into a folder as an import or drag and drop does: no transport headers.
    pub fn import(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        raw: Vec<u8>,
        now_ms: i64,
    ) -> Result<String, String> {
        self.lock()
            .store
            .place(mailbox, folder.unwrap_or("inbox"), raw, now_ms, false)
    }

    /// Every mail sent through the API.
    pub fn sent(&self) -> Vec<mail::Sent> {
        self.lock().store.sent.clone()
    }

    /// Folder names with their total and unread counts, for one mailbox.
    pub fn folders(&self, mailbox: &str) -> Option<Vec<(String, usize, usize)>> {
        let mut i = self.lock();
        let m = i.store.mailbox_mut(mailbox)?;
        Some(
            m.folders
                .iter()
                .map(|f| {
                    let n = m.messages.values().filter(|x| x.folder == f.id).count();
                    let unread = m
                        .messages
                        .values()
                        .filter(|x| x.folder == f.id && !x.is_read)
                        .count();
                    (f.name.clone(), n, unread)
                })
                .collect(),
        )
    }

    /// Internet message ids (as in the header, brackets kept) of the messages in a folder,
    /// named by display name or well-known name (any case).
    pub fn folder_message_ids(&self, mailbox: &str, folder: &str) -> Vec<String> {
        let mut i = self.lock();
        let Some(m) = i.store.mailbox_mut(mailbox) else {
            return Vec::new();
        };
        let ids: Vec<String> = m
            .folders
            .iter()
            .filter(|f| {
                f.name.eq_ignore_ascii_case(folder)
                    || f.well_known.is_some_and(|w| w.eq_ignore_ascii_case(folder))
            })
            .map(|f| f.id.clone())
            .collect();
        m.messages
            .values()
            .filter(|x| ids.contains(&x.folder))
            .map(|x| x.internet_message_id.clone())
            .collect()
    }

    /// The next `count` directory requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_directory(&self, count: u32, retry_after_secs: u64) {
        let mut i = self.lock();
        i.directory.throttle = count;
        i.directory.throttle_retry_after = retry_after_secs;
    }

    /// Replace the directory permissions granted to an app (as an admin granting or revoking
    /// consent would).
    pub fn set_directory_roles(&self, client_id: &str, roles: &[&str]) {
        let mut i = self.lock();
        for a in i.apps.iter_mut().filter(|a| a.client_id == client_id) {
            a.directory_roles = roles.iter().map(|r| r.to_string()).collect();
        }
    }

    /// Directory requests answered so far (any status).
    pub fn directory_calls(&self) -> u64 {
        self.lock().directory.calls
    }

    /// The object id of a directory user (by user principal name) or group (by display name).
    pub fn directory_id(&self, name: &str) -> Option<String> {
        let i = self.lock();
        i.directory
            .user_id(name)
            .or_else(|| i.directory.group_id(name))
    }

    /// Make every delta token answer 410 (the server lost the sync state).
    pub fn expire_delta(&self) {
        self.lock().delta_epoch += 1;
    }
}

/// Releases a mailbox's in-flight slot.
struct Slot<'a> {
    sim: &'a GraphSim,
    mailbox: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut i = self.sim.lock();
        if let Some(n) = i.inflight.get_mut(&self.mailbox) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Where every mail API exchange is appended, one JSON line each, when
/// `$PAMSIM_GRAPH_RECORD` names a directory (a file per process): the test command validates
/// them all against Microsoft's description of the Graph mail API afterwards.
fn record_file() -> Option<&'static Mutex<std::fs::File>> {
    static FILE: std::sync::OnceLock<Option<Mutex<std::fs::File>>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::var_os("PAMSIM_GRAPH_RECORD")?;
        let path = std::path::Path::new(&dir).join(format!("graph-{}.jsonl", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        Some(Mutex::new(f))
    })
    .as_ref()
}

/// A body as JSON when it is JSON, else as text.
fn body_value(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

async fn record(
    method: &Method,
    url: &str,
    request: &[u8],
    request_type: Option<&str>,
    resp: Response,
) -> Response {
    let Some(file) = record_file() else {
        return resp;
    };
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let line = json!({
        "method": method.as_str(),
        "url": url,
        "status": parts.status.as_u16(),
        "request_body": body_value(request),
        "request_content_type": request_type,
        "response_body": body_value(&bytes),
        "content_type": parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
    });
    {
        use std::io::Write as _;
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(f, "{line}");
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

async fn mail_api(
    state: &Shared,
    method: Method,
    path: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Response {
    let base = state.host.base_url.get().cloned().unwrap_or_default();
    let url = if query.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query}")
    };
    let request_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let resp = mail_api_inner(state, method.clone(), path, query, headers, body).await;
    record(&method, &url, body, request_type.as_deref(), resp).await
}

async fn mail_api_inner(
    state: &Shared,
    method: Method,
    path: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Response {
    let sim = &state.sim;
    let Some(segs) = mail::segments(path) else {
        return mail::error(400, "BadRequest", "Invalid version.");
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    if token.is_empty() {
        return mail::error(401, "InvalidAuthenticationToken", "Access token is empty.");
    }
    let now_ms = state.host.clock.now_ms();
    let Some(app) = sim.token_app(token, now_ms) else {
        return mail::error(
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        );
    };
    let mailbox = segs
        .get(1)
        .map(|m| m.to_ascii_lowercase())
        .unwrap_or_default();
    let (latency, _slot) = {
        let mut i = sim.lock();
        let scoped = i
            .apps
            .iter()
            .find(|a| a.client_id == app)
            .is_some_and(|a| a.mailboxes.is_empty() || a.mailboxes.contains(&mailbox));
        if !scoped {
            return mail::error(
                403,
                "ErrorAccessDenied",
                "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
            );
        }
        let max = i.max_concurrent;
        let n = i.inflight.entry(mailbox.clone()).or_default();
        if *n >= max {
            i.stats.throttled += 1;
            let mut r = mail::error(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            return r;
        }
        *n += 1;
        (
            i.call_latency_ms,
            Slot {
                sim,
                mailbox: mailbox.clone(),
            },
        )
    };
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let base = state.host.base_url.get().cloned().unwrap_or_default();
    let q = mail::query(query);
    let call = mail::Call {
        method: &method,
        segs,
        query: q,
        headers,
        body,
        base: &base,
        now_ms: state.host.clock.now_ms(),
    };
    let mut i = sim.lock();
    *i.stats.calls.entry(mailbox.clone()).or_default() += 1;
    // A draft's send beyond the mailbox's sending rate: refused as Exchange Online refuses it
    // (ASSUMPTIONS.md G30), nothing sent.
    let sending =
        method == Method::POST && call.segs.last().is_some_and(|s| mail::is_action(s, "send"));
    if sending && let Err(ms) = i.send_rate.check(&mailbox, call.now_ms) {
        let mut r = mail::error(
            429,
            crate::send_limit::QUOTA_CODE,
            crate::send_limit::QUOTA_TEXT,
        );
        if let Ok(v) =
            axum::http::HeaderValue::from_str(&crate::send_limit::retry_after_secs(ms).to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let epoch = i.delta_epoch;
    let r = mail::serve(&mut i.store, epoch, &call);
    if sending && r.status() == axum::http::StatusCode::ACCEPTED {
        i.send_rate.record(&mailbox, call.now_ms);
    }
    r
}

/// The directory endpoints (not recorded for the mail API's fidelity check: Mail.yml does not
/// describe them).
fn directory_api(
    state: &Shared,
    method: &Method,
    path: &str,
    segs: Vec<String>,
    query: &str,
    headers: &axum::http::HeaderMap,
) -> Response {
    let sim = &state.sim;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    if token.is_empty() {
        return mail::error(401, "InvalidAuthenticationToken", "Access token is empty.");
    }
    let Some(app) = sim.token_app(token, state.host.clock.now_ms()) else {
        return mail::error(
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        );
    };
    if method != Method::GET {
        return mail::error(
            405,
            "Request_BadRequest",
            "The directory is read-only in pam-sim.",
        );
    }
    let base = state.host.base_url.get().cloned().unwrap_or_default();
    let q = mail::query(query);
    let mut i = sim.lock();
    let roles = i
        .apps
        .iter()
        .find(|a| a.client_id == app)
        .map(|a| a.directory_roles.clone())
        .unwrap_or_default();
    directory::serve(&mut i.directory, &roles, &segs, &q, headers, &base, path)
}

// ---------------------------------------------------------------- HTTP

pub async fn handle(state: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let base = state.host.base_url.get().cloned().unwrap_or_default();
    let body = match axum::body::to_bytes(req.into_body(), 48 << 20).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    if path.to_ascii_lowercase().starts_with("/v1.0/") {
        if let Some(segs) = mail::segments(&path)
            && directory::is_directory_path(&segs)
        {
            return directory_api(&state, &method, &path, segs, &query, &headers);
        }
        return mail_api(&state, method, &path, &query, &headers, &body).await;
    }
    let rest = path.trim_start_matches('/');
    let (tenant, after) = rest.split_once('/').unwrap_or((rest, ""));
    let tenant = percent_encoding::percent_decode_str(tenant)
        .decode_utf8_lossy()
        .into_owned();
    let now = state.host.clock.now();
    let sim = &state.sim;
    match (&method, after.to_ascii_lowercase().as_str()) {
        (&Method::GET, "v2.0/.well-known/openid-configuration") => {
            Json(login::openid_configuration(&base, &tenant)).into_response()
        }
        (&Method::POST, "oauth2/v2.0/token") => {
            let token_url = format!("{base}/{tenant}/oauth2/v2.0/token");
            let mut i = sim.lock();
            let apps: Vec<login::App<'_>> = i
                .apps
                .iter()
                .map(|a| login::App {
                    client_id: &a.client_id,
                    secret: a.secret.as_deref(),
                    certificates: &a.certificates,
                })
                .collect();
            let verdict = login::check(
                &login::Login {
                    tenant_id: &i.tenant_id,
                    apps: &apps,
                    resources: &["https://graph.microsoft.com", &base],
                    token_url: &token_url,
                    now,
                },
                &tenant,
                &content_type,
                &body,
            );
            drop(apps);
            match verdict {
                Ok(g) => {
                    let token = format!(
                        "pamsim-graph-{:016x}{:016x}",
                        rand::random::<u64>(),
                        rand::random::<u64>()
                    );
                    let life = i.lifetime;
                    let exp_ms = state.host.clock.now_ms() + life * 1000;
                    i.tokens.insert(token.clone(), (g.client_id, exp_ms));
                    match g.with {
                        "secret" => i.stats.granted_secret += 1,
                        _ => i.stats.granted_certificate += 1,
                    }
                    Json(json!({
                        "token_type": "Bearer",
                        "expires_in": life,
                        "ext_expires_in": life,
                        "access_token": token,
                    }))
                    .into_response()
                }
                Err(r) => {
                    *i.stats.refused.entry(r.code).or_default() += 1;
                    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
                    (status, Json(r.body(now))).into_response()
                }
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_found", "error_description": "pam-sim: no such Entra endpoint"})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct DeliverQuery {
    mailbox: String,
    folder: Option<String>,
}

async fn admin_deliver(
    State(s): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<DeliverQuery>,
    body: axum::body::Bytes,
) -> Response {
    let now = s.host.clock.now_ms();
    match s
        .sim
        .deliver(&q.mailbox, q.folder.as_deref(), body.to_vec(), now)
    {
        Ok(id) => Json(json!({"id": id, "delivered_ms": now})).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e).into_response(),
    }
}

async fn admin_import(
    State(s): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<DeliverQuery>,
    body: axum::body::Bytes,
) -> Response {
    let now = s.host.clock.now_ms();
    match s
        .sim
        .import(&q.mailbox, q.folder.as_deref(), body.to_vec(), now)
    {
        Ok(id) => Json(json!({"id": id})).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e).into_response(),
    }
}

#[derive(Deserialize)]
struct ThrottleDirectory {
    count: u32,
    #[serde(default = "one")]
    retry_after_secs: u64,
}

fn one() -> u64 {
    1
}

#[derive(Deserialize)]
struct MailboxQuery {
    mailbox: String,
}

pub fn admin_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/deliver",
            post(admin_deliver).layer(axum::extract::DefaultBodyLimit::max(32 << 20)),
        )
        .route(
            "/import",
            post(admin_import).layer(axum::extract::DefaultBodyLimit::max(32 << 20)),
        )
        .route(
            "/sent",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.sim.sent()) }),
        )
        .route(
            "/folders",
            get(
                |State(s): State<Arc<Shared>>, axum::extract::Query(q): axum::extract::Query<MailboxQuery>| async move {
                    match s.sim.folders(&q.mailbox) {
                        Some(f) => Json(json!(f.into_iter().map(|(name, total, unread)| json!({"name": name, "total": total, "unread": unread})).collect::<Vec<_>>())).into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                },
            ),
        )
        .route(
            "/directory/throttle",
            post(
                |State(s): State<Arc<Shared>>, Json(t): Json<ThrottleDirectory>| async move {
                    s.sim.throttle_directory(t.count, t.retry_after_secs);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/delta/expire",
            post(|State(s): State<Arc<Shared>>| async move {
                s.sim.expire_delta();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/stats",
            get(|State(s): State<Arc<Shared>>| async move { Json(s.sim.stats()) }),
        )
        .route(
            "/expire_tokens",
            post(|State(s): State<Arc<Shared>>| async move {
                s.sim.expire_tokens();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/unreadable",
            post(
                |State(s): State<Arc<Shared>>,
                 Json(u): Json<crate::ews::Unreadable>| async move {
                    s.sim.fail_fetches_of(&u.message_id);
                    StatusCode::NO_CONTENT
                },
            ),
        )
}

//! PVWA REST client (Gen2 API), self-hosted or Privilege Cloud: sign-in, incoming requests,
//! confirm/reject, safe members. See reference/pvwa.md and reference/privilege-cloud.md.
//!
//! - Self-hosted: logon/logoff; the session token goes raw into `Authorization` (no `Bearer`),
//!   and each session has its own cookie jar and connection pool (sticky load balancers).
//! - Privilege Cloud (`auth_method = "identity"`): no logon; a CyberArk Identity platform token
//!   goes as `Authorization: Bearer`, renewed before it runs out and once after a 401
//!   ([`identity`]). Everything above the sign-in is the same.
//! - Reads and logon are retried with backoff on transient faults; confirm and reject are never
//!   repeated once they may have reached the server.
//! - Logoff happens on every path: the tools and the watcher use [`sessions::Sessions`] (a
//!   session per account role, opened again once after a 401, logged off on close); otherwise
//!   [`Pvwa::with_session`] or [`Session::logoff`]. A dropped session logs itself off in the
//!   background as a last resort.

pub mod config;
mod identity;
pub mod model;
pub mod roles;
pub mod sessions;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

pub use model::{
    AccountDetails, Confirmer, ConfirmerMember, Request, SafeMember, SafePermissions,
    TicketProperties, VaultGroup, VaultUser,
};

use crate::exit::{Classify, Exit};
use crate::http::{self, Backoff, HttpSettings};
use crate::text::printable;
pub use config::{AccountConfig, AccountRole, AccountsConfig, AuthMethod, PvwaConfig, credentials};

/// Errors from PVWA. Never carry a password or a session token.
#[derive(Debug, thiserror::Error)]
pub enum PvwaError {
    #[error("PVWA at {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("PVWA at {url} did not answer within {secs}s ({what})")]
    Timeout {
        url: String,
        secs: u64,
        what: String,
    },
    #[error("PVWA refused the logon of {user}: {detail}")]
    LogonRefused { user: String, detail: String },
    #[error("CyberArk Identity at {url} refused the token request of {user}: {detail}")]
    IdentityRefused {
        url: String,
        user: String,
        detail: String,
    },
    #[error("CyberArk Identity at {url} is unreachable: {detail}")]
    IdentityUnreachable {
        url: String,
        detail: String,
        timed_out: bool,
    },
    #[error("no CyberArk Identity token endpoint at {url} ({detail})")]
    IdentityEndpoint { url: String, detail: String },
    #[error("PVWA session of {user} is no longer valid ({detail})")]
    SessionInvalid { user: String, detail: String },
    #[error("request {id} not found in PVWA{}", detail_suffix(.detail))]
    NotFound { id: String, detail: String },
    #[error("PVWA answered {status} to {what}: {detail}")]
    Api {
        what: String,
        status: u16,
        code: Option<String>,
        detail: String,
    },
    #[error("PVWA answered {what} with something unreadable: {detail}")]
    Protocol { what: String, detail: String },
    #[error("{what} may or may not have been carried out: {detail}")]
    OutcomeUnknown { what: String, detail: String },
    #[error("request id `{id}`: {reason}")]
    BadId { id: String, reason: String },
    /// PVWA refused an action for want of a Vault permission: a configuration fault.
    #[error(
        "PVWA refused to let {user} {what} ({detail}): the account needs the Vault permission \"{permission}\"; grant it, or set [directory] approvers = \"static\""
    )]
    NoPermission {
        user: String,
        what: String,
        permission: &'static str,
        detail: String,
    },
    /// CyberArk Identity (Privilege Cloud) did not give what a role read asked for: refused
    /// (`denied`: the service user lacks the right to read roles and users) or answered
    /// something unusable. Never an approval; the watcher tries the mail again later.
    #[error("CyberArk Identity answered {what}: {detail}")]
    Identity {
        what: String,
        detail: String,
        denied: bool,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

fn detail_suffix(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(" ({d})")
    }
}

impl PvwaError {
    /// The PVWA error code (`ErrorCode`), when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            PvwaError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// A fault worth retrying later (the watcher leaves the mail pending on these).
    pub fn is_transient(&self) -> bool {
        match self {
            PvwaError::Unreachable { .. }
            | PvwaError::IdentityUnreachable { .. }
            | PvwaError::Timeout { .. }
            | PvwaError::OutcomeUnknown { .. }
            | PvwaError::Identity { .. } => true,
            PvwaError::Api { status, code, .. } => {
                http::status_is_transient(*status) || (*status >= 500 && code.is_none())
            }
            _ => false,
        }
    }
}

impl Classify for PvwaError {
    fn service(&self) -> &'static str {
        "pvwa"
    }
    fn exit(&self) -> Exit {
        match self {
            PvwaError::Unreachable { .. } => Exit::Unavailable,
            PvwaError::Timeout { .. } | PvwaError::OutcomeUnknown { .. } => Exit::TempFail,
            PvwaError::LogonRefused { .. }
            | PvwaError::IdentityRefused { .. }
            | PvwaError::SessionInvalid { .. } => Exit::NoPerm,
            PvwaError::IdentityUnreachable { timed_out, .. } => {
                if *timed_out {
                    Exit::TempFail
                } else {
                    Exit::Unavailable
                }
            }
            PvwaError::IdentityEndpoint { .. } => Exit::Config,
            PvwaError::NotFound { .. } => Exit::Refused,
            PvwaError::Api { status, code, .. } => match status {
                401 | 403 => Exit::NoPerm,
                405 => Exit::Unavailable,
                429 | 503 => Exit::TempFail,
                s if *s >= 500 && code.is_none() => Exit::Unavailable,
                _ => Exit::Refused,
            },
            PvwaError::Protocol { .. } => Exit::Unavailable,
            PvwaError::BadId { .. } => Exit::DataErr,
            PvwaError::NoPermission { .. } => Exit::Config,
            PvwaError::Identity { denied: true, .. } => Exit::Config,
            PvwaError::Identity { .. } => Exit::Unavailable,
            PvwaError::Tls(_) => Exit::Config,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            PvwaError::Unreachable { detail, .. } if detail.contains("certificate") || detail.contains("Certificate") => {
                Some("the server's TLS certificate is not trusted: set pvwa.ca_bundle to your CA's PEM bundle".into())
            }
            PvwaError::Unreachable { .. } => Some("check pvwa.url and that the PVWA is up and reachable from this host".into()),
            PvwaError::LogonRefused { .. } => Some("check the account's user name, password reference and pvwa.auth_method".into()),
            PvwaError::IdentityRefused { .. } => Some("check the account: its user name is the Identity service user's full login name (e.g. pam-bot@cyberark.cloud.12345), its password reference holds that user's secret, and the user is an OAuth confidential client".into()),
            PvwaError::IdentityUnreachable { detail, .. } if detail.contains("certificate") || detail.contains("Certificate") => {
                Some("the Identity tenant's TLS certificate is not trusted: pvwa.ca_bundle applies to it too".into())
            }
            PvwaError::IdentityUnreachable { .. } => Some("check pvwa.identity_url and that this host reaches it (proxy, firewall)".into()),
            PvwaError::IdentityEndpoint { .. } => Some("check pvwa.identity_url: the CyberArk Identity tenant, https://<tenant-id>.id.cyberark.cloud (Identity Administration shows the tenant id)".into()),
            PvwaError::SessionInvalid { detail, .. } if detail.contains("Identity token") => Some("the Privilege Cloud API refused a fresh Identity token: check that the service user has a Privilege Cloud role".into()),
            PvwaError::Identity { denied: true, .. } => Some(roles::RIGHT_HINT.into()),
            PvwaError::OutcomeUnknown { .. } => Some("look at the request with get-inco-req before trying again".into()),
            PvwaError::Api { what, status: 404, .. } if what == "logon" => Some("no PVWA logon at this address: on Privilege Cloud set pvwa.auth_method = \"identity\" and pvwa.identity_url".into()),
            PvwaError::Api { status: 405, .. } => Some("this PVWA version may not support the call (IncomingRequests needs 9.10+)".into()),
            _ => None,
        }
    }
}

/// Characters kept as they are in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Check a request id and encode it as one path segment. Ids are opaque (`<Safe>_<n>`), but
/// PVWA cannot address `+ & %` in a URL, and control characters are never valid.
pub fn encode_id(id: &str) -> Result<String, PvwaError> {
    let bad = |reason: &str| PvwaError::BadId {
        id: printable(id),
        reason: reason.into(),
    };
    if id.trim().is_empty() {
        return Err(bad("empty"));
    }
    if id.len() > 512 {
        return Err(bad("longer than 512 bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err(bad("contains control characters"));
    }
    if id.trim() != id {
        return Err(bad("has leading or trailing spaces"));
    }
    if id.contains(['+', '&', '%']) {
        return Err(bad(
            "contains `+`, `&` or `%`, which PVWA cannot address in a URL",
        ));
    }
    if id.contains(['/', '\\']) {
        return Err(bad("contains a slash"));
    }
    let mut s = utf8_percent_encode(id, SEGMENT).to_string();
    // CyberArk: "If the URL contains a dot, add a trailing /".
    if id.contains('.') {
        s.push('/');
    }
    Ok(s)
}

/// Called with `logon` or `identity_token` after each successful sign-in (metrics).
pub type SignInHook = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Longest reason sent to PVWA with a confirmation.
pub const MAX_REASON: usize = 1000;

/// The largest PVWA answer read (a request list of a busy vault is well below it).
pub(crate) const MAX_BODY: http::BodyCap = http::BodyCap::fixed("PVWA", 16 << 20);

/// PVWA endpoint and behaviour settings; cheap to clone.
#[derive(Clone)]
pub struct Pvwa {
    api: url::Url,
    auth: AuthMethod,
    /// Privilege Cloud: `<identity tenant>/oauth2/platformtoken`.
    token_url: Option<String>,
    /// Privilege Cloud: the Identity tenant, `https://<tenant-id>.id.cyberark.cloud` (no `/`
    /// at the end), for the role reads ([`roles`]).
    identity_base: Option<String>,
    /// Told of every sign-in (`logon`, `identity_token`), for metrics.
    on_sign_in: Option<SignInHook>,
    concurrent_session: bool,
    settings: HttpSettings,
    tls: rustls::ClientConfig,
    backoff: Backoff,
    page_size: u32,
}

impl std::fmt::Debug for Pvwa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pvwa")
            .field("api", &self.api.as_str())
            .field("auth", &self.auth)
            .finish()
    }
}

impl Pvwa {
    /// Build from `[pvwa]`. The URL may be the host or end in `/PasswordVault`.
    pub fn new(cfg: &PvwaConfig) -> Result<Self, PvwaError> {
        let url = crate::tls::check_url(&cfg.url).map_err(|m| PvwaError::Protocol {
            what: "pvwa.url".into(),
            detail: m,
        })?;
        let mut base = url.as_str().trim_end_matches('/').to_string();
        if !base.to_ascii_lowercase().ends_with("/passwordvault") {
            base.push_str("/PasswordVault");
        }
        let api = url::Url::parse(&format!("{base}/API/")).map_err(|e| PvwaError::Protocol {
            what: "pvwa.url".into(),
            detail: e.to_string(),
        })?;
        let settings = HttpSettings {
            ca_bundle: cfg.ca_bundle.clone(),
            connect_timeout: Duration::from_secs(cfg.connect_timeout_secs),
            request_timeout: Duration::from_secs(cfg.request_timeout_secs),
            ..HttpSettings::default()
        };
        let tls = crate::tls::client_config(cfg.ca_bundle.as_deref())?;
        let token_url = match cfg.auth_method {
            AuthMethod::Identity => Some(cfg.token_url().ok_or_else(|| PvwaError::Protocol {
                what: "pvwa.identity_url".into(),
                detail: "missing: auth_method = \"identity\" needs the Identity tenant".into(),
            })?),
            _ => None,
        };
        let identity_base = token_url.as_ref().and_then(|_| {
            cfg.identity_url
                .as_deref()
                .map(|b| b.trim().trim_end_matches('/').to_string())
        });
        Ok(Pvwa {
            api,
            auth: cfg.auth_method,
            token_url,
            identity_base,
            on_sign_in: None,
            concurrent_session: cfg.concurrent_session,
            settings,
            tls,
            backoff: Backoff::new(cfg.retries, cfg.backoff_ms),
            page_size: cfg.page_size,
        })
    }

    /// The base URL of the API (`…/PasswordVault/API/`).
    pub fn api_url(&self) -> &url::Url {
        &self.api
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.api, path)
    }

    /// Tell `hook` of every sign-in from now on (PVWA logons, Identity tokens first and renewed).
    pub fn on_sign_in(&mut self, hook: SignInHook) {
        self.on_sign_in = Some(hook);
    }

    /// Whether the accounts sign in at CyberArk Identity (Privilege Cloud).
    pub fn is_privilege_cloud(&self) -> bool {
        self.token_url.is_some()
    }

    /// Sign in with an account: a PVWA logon, or on Privilege Cloud a first Identity token (so
    /// that a wrong secret shows here, as a refused logon does). One connection pool and
    /// cookie jar per session.
    pub async fn logon(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Session, PvwaError> {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = http::builder_with_tls(&self.settings, self.tls.clone())
            .cookie_provider(jar)
            .build()
            .map_err(|e| PvwaError::Protocol {
                what: "client setup".into(),
                detail: e.to_string(),
            })?;
        let segment = match (&self.token_url, self.auth.path_segment()) {
            (Some(token_url), _) => {
                let tokens = identity::PlatformTokens::new(
                    token_url.clone(),
                    username,
                    password,
                    self.backoff,
                    self.settings.request_timeout.as_secs(),
                    self.on_sign_in.clone(),
                );
                tokens.header(&http).await?;
                log::debug!("Privilege Cloud: {username} signed in with an Identity token");
                return Ok(Session {
                    pvwa: self.clone(),
                    http,
                    user: username.to_string(),
                    auth: Credential::Platform(Box::new(tokens)),
                });
            }
            (None, Some(segment)) => segment,
            (None, None) => {
                return Err(PvwaError::Protocol {
                    what: "logon".into(),
                    detail: "auth_method = \"identity\" without pvwa.identity_url".into(),
                });
            }
        };
        let url = self.url(&format!("auth/{segment}/Logon"));
        let body = zeroize::Zeroizing::new(
            serde_json::json!({
                "username": username,
                "password": password.expose_secret(),
                "concurrentSession": self.concurrent_session,
            })
            .to_string(),
        );
        log::debug!("PVWA logon of {username} ({:?})", self.auth);
        let mut attempt = 0;
        let resp = loop {
            let r = http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .send()
                .await;
            match r {
                Ok(resp)
                    if http::status_is_transient(resp.status().as_u16())
                        && attempt < self.backoff.retries =>
                {
                    attempt += 1;
                    let d = http::retry_after(resp.headers())
                        .map(|d| self.backoff.suggested(d))
                        .unwrap_or(self.backoff.delay(attempt));
                    log::warn!(
                        "PVWA logon answered {}; retry {attempt} in {d:?}",
                        resp.status().as_u16()
                    );
                    tokio::time::sleep(d).await;
                }
                Ok(resp) => break resp,
                Err(e) if (e.is_connect() || e.is_timeout()) && attempt < self.backoff.retries => {
                    attempt += 1;
                    let d = self.backoff.delay(attempt);
                    log::warn!(
                        "PVWA logon failed ({}); retry {attempt} in {d:?}",
                        http::error_chain(&e)
                    );
                    tokio::time::sleep(d).await;
                }
                Err(e) => return Err(self.transport_error(e, "logon")),
            }
        };
        let status = resp.status().as_u16();
        let text = match http::read_capped_text(resp, MAX_BODY).await {
            Ok(t) => t,
            Err(too_large @ http::BodyError::TooLarge(_)) => {
                return Err(PvwaError::Protocol {
                    what: "logon".into(),
                    detail: too_large.to_string(),
                });
            }
            // Cut off: read as empty, as before (the status decides).
            Err(http::BodyError::Transport(_)) => zeroize::Zeroizing::new(String::new()),
        };
        if status != 200 {
            let (code, detail) = error_detail(&text);
            let detail = match &code {
                Some(c) => format!("{status} {c}: {detail}"),
                None => format!("{status}: {detail}"),
            };
            return Err(match status {
                400 | 401 | 403 | 409 => PvwaError::LogonRefused {
                    user: username.into(),
                    detail,
                },
                500 if code
                    .as_deref()
                    .is_some_and(|c| c.starts_with("PASWS013") || c.starts_with("ITATS542")) =>
                {
                    PvwaError::LogonRefused {
                        user: username.into(),
                        detail,
                    }
                }
                _ => PvwaError::Api {
                    what: "logon".into(),
                    status,
                    code,
                    detail,
                },
            });
        }
        let token = parse_token(&text).ok_or_else(|| PvwaError::Protocol {
            what: "logon".into(),
            detail: "the answer holds no session token".into(),
        })?;
        log::debug!("PVWA logon of {username}: session opened");
        if let Some(hook) = &self.on_sign_in {
            hook("logon");
        }
        Ok(Session {
            pvwa: self.clone(),
            http,
            user: username.to_string(),
            auth: Credential::Vault(Some(token)),
        })
    }

    /// Run `f` with a session of this account and log off afterwards, whatever `f` returned.
    pub async fn with_session<T, E, F>(
        &self,
        username: &str,
        password: &SecretString,
        f: F,
    ) -> Result<T, E>
    where
        F: AsyncFnOnce(&Session) -> Result<T, E>,
        E: From<PvwaError>,
    {
        let mut session = self.logon(username, password).await?;
        let result = f(&session).await;
        session.logoff_in_place().await;
        result
    }

    fn transport_error(&self, e: reqwest::Error, what: &str) -> PvwaError {
        let url = self.api.as_str().trim_end_matches("API/").to_string();
        if e.is_timeout() {
            PvwaError::Timeout {
                url,
                secs: self.settings.request_timeout.as_secs(),
                what: what.into(),
            }
        } else {
            PvwaError::Unreachable {
                url,
                detail: http::error_chain(&e),
            }
        }
    }
}

fn parse_token(text: &str) -> Option<SecretString> {
    let t = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(o)) => o
            .get("CyberArkLogonResult")
            .or_else(|| o.get("token"))
            .and_then(|v| v.as_str())
            .map(str::to_string)?,
        _ => text.trim().trim_matches('"').to_string(),
    };
    // Gen2 tokens are base64 text; anything else (an HTML page from a proxy) is not a token.
    let ok = !t.is_empty()
        && t.len() < 16 * 1024
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=._-".contains(c));
    ok.then(|| SecretString::from(t))
}

/// `(ErrorCode, readable detail)` from an error body: JSON parsed, HTML reduced, capped.
fn error_detail(text: &str) -> (Option<String>, String) {
    if let Ok(b) = serde_json::from_str::<model::ErrorBody>(text)
        && (b.code.is_some() || b.message.is_some())
    {
        let mut msg = b.message.clone().unwrap_or_default();
        for d in b.detail_messages() {
            msg.push_str("; ");
            msg.push_str(&d);
        }
        return (b.code.map(|c| printable(&c)), http::body_excerpt(&msg, 400));
    }
    let excerpt = http::body_excerpt(text, 200);
    (
        None,
        if excerpt.is_empty() {
            "empty body".into()
        } else {
            excerpt
        },
    )
}

/// A signed-in PVWA session.
pub struct Session {
    pvwa: Pvwa,
    http: reqwest::Client,
    user: String,
    auth: Credential,
}

/// What a session sends in `Authorization`.
enum Credential {
    /// Self-hosted: the raw session token, until logoff.
    Vault(Option<SecretString>),
    /// Privilege Cloud: Identity platform tokens, renewed as they run out.
    Platform(Box<identity::PlatformTokens>),
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = match &self.auth {
            Credential::Vault(t) => t.is_some(),
            Credential::Platform(_) => true,
        };
        f.debug_struct("Session")
            .field("user", &self.user)
            .field(
                "privilege_cloud",
                &matches!(self.auth, Credential::Platform(_)),
            )
            .field("open", &open)
            .finish()
    }
}

/// Whether a call may be repeated after it may have reached the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Idempotent {
    Yes,
    No,
}

impl Session {
    /// The account of this session.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether the session renews its own credential after a 401 (Privilege Cloud): the
    /// caller must not sign in again on top of that.
    pub fn renews_itself(&self) -> bool {
        matches!(self.auth, Credential::Platform(_))
    }

    /// The `Authorization` value of the next call.
    async fn authorization(&self) -> Result<reqwest::header::HeaderValue, PvwaError> {
        match &self.auth {
            Credential::Vault(Some(token)) => auth_header(token),
            Credential::Vault(None) => Err(PvwaError::SessionInvalid {
                user: self.user.clone(),
                detail: "logged off".into(),
            }),
            Credential::Platform(tokens) => tokens.header(&self.http).await,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        what: &str,
        idem: Idempotent,
    ) -> Result<(u16, String), PvwaError> {
        self.call_at(self.pvwa.url(path), method, path, body, what, idem)
            .await
    }

    /// [`Session::call`] at a full URL (`path` is for the log): the PVWA API, or on Privilege
    /// Cloud the Identity tenant ([`roles`]), with the same token, retries and body cap.
    async fn call_at(
        &self,
        url: String,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        what: &str,
        idem: Idempotent,
    ) -> Result<(u16, String), PvwaError> {
        let mut attempt = 0;
        let mut renewed = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header(reqwest::header::AUTHORIZATION, self.authorization().await?);
            if let Credential::Platform(_) = &self.auth {
                // As CyberArk's own Identity module sends it to the Privilege Cloud API.
                req = req.header("X-IDAP-NATIVE-CLIENT", "true");
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            log::debug!("PVWA {method} {path} as {}", self.user);
            let started = std::time::Instant::now();
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = http::retry_after(resp.headers());
                    // A 401 is answered before anything is done, so even a confirm may be sent
                    // again: once, with a new Identity token.
                    if status == 401
                        && !renewed
                        && let Credential::Platform(tokens) = &self.auth
                    {
                        renewed = true;
                        log::info!(
                            "PVWA {what}: 401 for the Identity token of {}; renewing it once",
                            self.user
                        );
                        tokens.forget().await;
                        continue;
                    }
                    if idem == Idempotent::Yes
                        && http::status_is_transient(status)
                        && attempt < self.pvwa.backoff.retries
                    {
                        attempt += 1;
                        let d = retry_after
                            .map(|d| self.pvwa.backoff.suggested(d))
                            .unwrap_or(self.pvwa.backoff.delay(attempt));
                        log::warn!("PVWA {what}: {status}; retry {attempt} in {d:?}");
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    match http::read_capped_text(resp, MAX_BODY).await {
                        Ok(mut text) => {
                            let text = std::mem::take(&mut *text);
                            log::debug!("PVWA {what}: {status}");
                            // Sizes and timing only: a body may hold a session token.
                            log::trace!(
                                "PVWA {method} {path}: {status}, {} bytes in {:?} (attempt {})",
                                text.len(),
                                started.elapsed(),
                                attempt + 1
                            );
                            return Ok((status, text));
                        }
                        Err(too_large @ http::BodyError::TooLarge(_)) => {
                            return Err(PvwaError::Protocol {
                                what: what.into(),
                                detail: too_large.to_string(),
                            });
                        }
                        Err(http::BodyError::Transport(e))
                            if idem == Idempotent::Yes && attempt < self.pvwa.backoff.retries =>
                        {
                            attempt += 1;
                            let d = self.pvwa.backoff.delay(attempt);
                            log::warn!(
                                "PVWA {what}: answer cut off ({}); retry {attempt} in {d:?}",
                                http::error_chain(&e)
                            );
                            tokio::time::sleep(d).await;
                        }
                        Err(http::BodyError::Transport(e)) if idem == Idempotent::Yes => {
                            return Err(self.pvwa.transport_error(e, what));
                        }
                        Err(http::BodyError::Transport(e)) => {
                            return Err(PvwaError::OutcomeUnknown {
                                what: what.into(),
                                detail: http::error_chain(&e),
                            });
                        }
                    }
                }
                // Not connected: nothing was sent, so even a confirm may be tried again. A read
                // may be repeated after any transport failure.
                Err(e)
                    if (e.is_connect() || idem == Idempotent::Yes)
                        && attempt < self.pvwa.backoff.retries =>
                {
                    attempt += 1;
                    let d = self.pvwa.backoff.delay(attempt);
                    log::warn!(
                        "PVWA {what}: {}; retry {attempt} in {d:?}",
                        http::error_chain(&e)
                    );
                    tokio::time::sleep(d).await;
                }
                Err(e) if idem == Idempotent::No && !e.is_connect() => {
                    return Err(PvwaError::OutcomeUnknown {
                        what: what.into(),
                        detail: http::error_chain(&e),
                    });
                }
                Err(e) => return Err(self.pvwa.transport_error(e, what)),
            }
        }
    }

    fn fail(&self, what: &str, status: u16, text: &str, id: Option<&str>) -> PvwaError {
        let (code, detail) = error_detail(text);
        match status {
            401 if self.renews_itself() => PvwaError::SessionInvalid {
                user: self.user.clone(),
                detail: format!("401 with a fresh Identity token: {detail}"),
            },
            401 => PvwaError::SessionInvalid {
                user: self.user.clone(),
                detail: format!("401: {detail}"),
            },
            404 if id.is_some() => PvwaError::NotFound {
                id: id.map(printable).unwrap_or_default(),
                detail: join_code(&code, &detail),
            },
            _ => PvwaError::Api {
                what: what.into(),
                status,
                code,
                detail,
            },
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        text: &str,
    ) -> Result<T, PvwaError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| PvwaError::Protocol {
            what: what.into(),
            detail: format!("at `{}`: {}", e.path(), e.inner()),
        })
    }

    /// `GET /API/IncomingRequests/{id}`
    pub async fn get_request(&self, id: &str) -> Result<Request, PvwaError> {
        let seg = encode_id(id)?;
        let what = format!("get request {}", printable(id));
        let (status, text) = self
            .call(
                reqwest::Method::GET,
                &format!("IncomingRequests/{seg}"),
                None,
                &what,
                Idempotent::Yes,
            )
            .await?;
        if status != 200 {
            return Err(self.fail(&what, status, &text, Some(id)));
        }
        self.parse(&what, &text)
    }

    /// `GET /API/IncomingRequests?onlywaiting=…&expired=…`
    pub async fn list_incoming(
        &self,
        only_waiting: bool,
        expired: bool,
    ) -> Result<Vec<Request>, PvwaError> {
        let what = "list incoming requests";
        let path = format!("IncomingRequests?onlywaiting={only_waiting}&expired={expired}");
        let (status, text) = self
            .call(reqwest::Method::GET, &path, None, what, Idempotent::Yes)
            .await?;
        if status != 200 {
            return Err(self.fail(what, status, &text, None));
        }
        Ok(self.parse::<model::RequestList>(what, &text)?.into_vec())
    }

    /// `POST /API/IncomingRequests/{id}/Confirm` with `{"Reason": …}`. Never repeated once sent.
    pub async fn confirm(&self, id: &str, reason: &str) -> Result<(), PvwaError> {
        self.act(id, reason, "Confirm").await
    }

    /// `POST /API/IncomingRequests/{id}/Reject` with `{"Reason": …}`: the reject call, sent by
    /// the watcher for a reject by mail (issue 32) and by `--reject` of the approve tools. Never
    /// repeated once sent (the watcher resolves an unknown outcome by reading the request).
    pub async fn reject(&self, id: &str, reason: &str) -> Result<(), PvwaError> {
        self.act(id, reason, "Reject").await
    }

    async fn act(&self, id: &str, reason: &str, verb: &str) -> Result<(), PvwaError> {
        let seg = encode_id(id)?;
        let seg = seg.trim_end_matches('/');
        let what = format!("{} request {}", verb.to_ascii_lowercase(), printable(id));
        let body = serde_json::json!({ "Reason": reason });
        let (status, text) = self
            .call(
                reqwest::Method::POST,
                &format!("IncomingRequests/{seg}/{verb}"),
                Some(body),
                &what,
                Idempotent::No,
            )
            .await?;
        match status {
            200 | 204 => Ok(()),
            _ => Err(self.fail(&what, status, &text, Some(id))),
        }
    }

    /// Every member of a safe (`GET /API/Safes/{safe}/Members`, paged).
    pub async fn safe_members(&self, safe: &str) -> Result<Vec<SafeMember>, PvwaError> {
        let seg = encode_id(safe).map_err(|e| match e {
            PvwaError::BadId { id, reason } => PvwaError::BadId {
                id: format!("safe {id}"),
                reason,
            },
            other => other,
        })?;
        let seg = seg.trim_end_matches('/');
        let what = format!("list members of safe {}", printable(safe));
        let limit = self.pvwa.page_size;
        let mut out: Vec<SafeMember> = Vec::new();
        let mut offset: u64 = 0;
        // A server that never stops paging must not loop forever.
        for _ in 0..10_000 {
            let path = format!("Safes/{seg}/Members?limit={limit}&offset={offset}");
            let (status, text) = self
                .call(reqwest::Method::GET, &path, None, &what, Idempotent::Yes)
                .await?;
            if status == 404 {
                return Err(PvwaError::NotFound {
                    id: format!("safe {}", printable(safe)),
                    detail: error_detail(&text).1,
                });
            }
            if status != 200 {
                return Err(self.fail(&what, status, &text, None));
            }
            let page: model::SafeMemberPage = self.parse(&what, &text)?;
            let n = page.value.len() as u64;
            out.extend(page.value);
            offset += n;
            let total_reached = page.count.is_some_and(|c| offset >= c);
            if n == 0 || total_reached || (page.count.is_none() && page.next_link.is_none()) {
                return Ok(out);
            }
        }
        Err(PvwaError::Protocol {
            what,
            detail: "paging did not end".into(),
        })
    }

    /// The vault's group records whose name contains `name` (`GET /API/UserGroups?search=`),
    /// as PVWA gives them (the caller picks the record named exactly `name`). The caller needs
    /// the Vault permission "Audit users"; without it PVWA answers 403, given as
    /// [`PvwaError::NoPermission`].
    pub async fn user_groups(&self, name: &str) -> Result<Vec<VaultGroup>, PvwaError> {
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(PvwaError::BadId {
                id: format!("group {}", printable(name)),
                reason: "empty or has control characters".into(),
            });
        }
        let q: String = utf8_percent_encode(name, NON_ALPHANUMERIC).to_string();
        let what = format!("read the vault group record of {}", printable(name));
        let path = format!("UserGroups?search={q}");
        let (status, text) = self
            .call(reqwest::Method::GET, &path, None, &what, Idempotent::Yes)
            .await?;
        if status == 403 {
            return Err(PvwaError::NoPermission {
                user: self.user.clone(),
                what,
                permission: "Audit users",
                detail: join_code(&error_detail(&text).0, &error_detail(&text).1),
            });
        }
        if status != 200 {
            return Err(self.fail(&what, status, &text, None));
        }
        let page: model::VaultGroupPage = self.parse(&what, &text)?;
        Ok(page.value)
    }

    /// The e-mail addresses the vault holds for the user named `name` (`GET
    /// /API/Users?search=`; `internet.businessEmail`, `homeEmail`, `otherEmail`, trimmed,
    /// non-empty). The search matches parts of names, so only the one record whose `username`
    /// is `name` (any case) counts: none, or several, give no address. The caller needs the
    /// Vault permission "Audit users"; without it PVWA answers 403, given as
    /// [`PvwaError::NoPermission`].
    pub async fn user_emails(&self, name: &str) -> Result<Vec<String>, PvwaError> {
        let name = name.trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(PvwaError::BadId {
                id: format!("user {}", printable(name)),
                reason: "empty or has control characters".into(),
            });
        }
        let q: String = utf8_percent_encode(name, NON_ALPHANUMERIC).to_string();
        let what = format!("read the vault user record of {}", printable(name));
        let path = format!("Users?search={q}");
        let (status, text) = self
            .call(reqwest::Method::GET, &path, None, &what, Idempotent::Yes)
            .await?;
        if status == 403 {
            let (code, detail) = error_detail(&text);
            return Err(PvwaError::NoPermission {
                user: self.user.clone(),
                what,
                permission: "Audit users",
                detail: join_code(&code, &detail),
            });
        }
        if status != 200 {
            return Err(self.fail(&what, status, &text, None));
        }
        let page: model::VaultUserPage = self.parse(&what, &text)?;
        let mut named = page
            .users
            .iter()
            .filter(|u| u.username.trim().eq_ignore_ascii_case(name));
        match (named.next(), named.next()) {
            (Some(u), None) => Ok(u.emails()),
            _ => Ok(Vec::new()),
        }
    }

    /// `POST /API/Auth/Logoff`. Errors are logged, not returned: the work is already done.
    pub async fn logoff(mut self) {
        self.logoff_in_place().await;
    }

    async fn logoff_in_place(&mut self) {
        // Privilege Cloud has no logoff: the token is dropped with the session.
        let Credential::Vault(slot) = &mut self.auth else {
            return;
        };
        let Some(token) = slot.take() else {
            return;
        };
        let Ok(auth) = auth_header(&token) else {
            return;
        };
        let r = self
            .http
            .post(self.pvwa.url("Auth/Logoff"))
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() => log::debug!("PVWA logoff of {}", self.user),
            Ok(resp) => log::warn!(
                "PVWA logoff of {} answered {}",
                self.user,
                resp.status().as_u16()
            ),
            Err(e) => log::warn!(
                "PVWA logoff of {} failed: {}",
                self.user,
                http::error_chain(&e)
            ),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Credential::Vault(slot) = &mut self.auth else {
            return;
        };
        let Some(token) = slot.take() else {
            return;
        };
        // Last resort for a session dropped on an error path: log off in the background.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let http = self.http.clone();
            let url = self.pvwa.url("Auth/Logoff");
            let user = self.user.clone();
            handle.spawn(async move {
                let _ = http
                    .post(url)
                    .header(reqwest::header::AUTHORIZATION, token.expose_secret())
                    .header(reqwest::header::CONTENT_LENGTH, "0")
                    .send()
                    .await;
                log::debug!("PVWA logoff of {user} (on drop)");
            });
        }
    }
}

/// The raw session token as a header value marked sensitive (kept out of debug output).
fn auth_header(token: &SecretString) -> Result<reqwest::header::HeaderValue, PvwaError> {
    let mut v = reqwest::header::HeaderValue::from_str(token.expose_secret()).map_err(|_| {
        PvwaError::Protocol {
            what: "logon".into(),
            detail: "the session token is not a valid header value".into(),
        }
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn join_code(code: &Option<String>, detail: &str) -> String {
    match code {
        Some(c) => format!("{c}: {detail}"),
        None => detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_as_one_segment() {
        assert_eq!(encode_id("InfraSafe_12").expect("ok"), "InfraSafe_12");
        assert_eq!(encode_id("My Safe_3").expect("ok"), "My%20Safe_3");
        assert_eq!(encode_id("Safe.v2_3").expect("ok"), "Safe.v2_3/");
        assert_eq!(encode_id("Säfe_1").expect("ok"), "S%C3%A4fe_1");
        for bad in [
            "", " x_1", "a+b_1", "a&b_1", "a%20_1", "x/../y_1", "a\nb_1", "a\\b",
        ] {
            assert!(encode_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_forms() {
        assert_eq!(
            parse_token("\"abc.def\"").expect("json").expose_secret(),
            "abc.def"
        );
        assert_eq!(parse_token("abc").expect("raw").expose_secret(), "abc");
        assert!(parse_token("\"\"").is_none());
        assert!(parse_token("<html>oops</html>").is_none());
    }

    #[test]
    fn error_bodies() {
        let (c, d) = error_detail(r#"{"ErrorCode":"ITATS001E","ErrorMessage":"Request expired"}"#);
        assert_eq!(c.as_deref(), Some("ITATS001E"));
        assert_eq!(d, "Request expired");
        let (c, d) = error_detail("<html><title>Server Error</title></html>");
        assert!(c.is_none());
        assert_eq!(d, "HTML page: Server Error");
        assert_eq!(error_detail("").1, "empty body");
    }
}

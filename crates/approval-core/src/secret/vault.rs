//! A small Vault / OpenBao client: token or AppRole login, KV v2 reads, token renewal and
//! revocation. A handful of endpoints only, so no large client crate is pulled in.
//!
//! Token rules: renew when less than a third of the lease is left; an AppRole session logs in
//! again when renewal fails, when the token's `max_ttl` caps the renewal, or when a read is
//! refused because the token was revoked (checked with `lookup-self`, so a policy denial is not
//! mistaken for a dead token). A process that logged in itself revokes its token at the end.
//!
//! Secret values (the secret-id, tokens, the secret read) are held as `SecretString` and never
//! put into error texts or logs; server error texts are scrubbed of them before being shown.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use super::{SecretError, SecretRef};
use crate::http::{self, HttpSettings};

/// The largest answer body read from Vault (a KV secret is small; a hostile server cannot make
/// us buffer more).
const MAX_BODY: http::BodyCap = http::BodyCap::fixed("Vault/OpenBao", 1 << 20);
/// Longest server error text shown.
const MAX_ERROR_TEXT: usize = 300;

/// `[vault]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// e.g. `https://vault.example.com:8200` (plain http only to loopback).
    pub addr: String,
    /// PEM bundle of the CAs to trust instead of the system store.
    pub ca_bundle: Option<PathBuf>,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// `approle` (default) or `token`.
    #[serde(default)]
    pub auth: VaultAuth,
    /// AppRole role id (not secret on its own).
    pub role_id: Option<String>,
    /// AppRole secret id: a `file:`, `cred:`, `env:` or `cmd:` reference.
    pub secret_id: Option<SecretRef>,
    /// Token for `auth = "token"` (a `file:`, `cred:`, `env:` or `cmd:` reference); when absent,
    /// `VAULT_TOKEN` is read.
    pub token: Option<SecretRef>,
    /// Mount path of the AppRole auth method.
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
    /// Seconds to wait for a connection and for each answer.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_approle_mount() -> String {
    "approle".into()
}
fn default_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuth {
    #[default]
    Approle,
    Token,
}

/// What the client did so far (for logs and tests; holds nothing secret).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VaultStats {
    /// AppRole logins, or token loads for `auth = "token"`.
    pub logins: u32,
    /// Successful `renew-self` calls.
    pub renewals: u32,
    /// Logins because the cached token turned out to be revoked or expired.
    pub relogins: u32,
    /// Successful `revoke-self` calls.
    pub revocations: u32,
}

struct Token {
    value: SecretString,
    /// Not secret: identifies the token for lookup/revocation by an operator.
    accessor: Option<String>,
    /// When the lease ends; `None` for a token without expiry (root tokens).
    expires: Option<Instant>,
    /// Length of the current lease.
    lease: Duration,
    /// Length of the lease granted at login: a renewal much shorter than this hit `max_ttl`.
    login_lease: Duration,
    renewable: bool,
    /// Logged in by us (AppRole): we may log in again and must revoke it at the end.
    own: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Need {
    Nothing,
    Login,
    Renew,
}

impl Token {
    fn need(&self, now: Instant) -> Need {
        let Some(exp) = self.expires else {
            return Need::Nothing;
        };
        let left = exp.saturating_duration_since(now);
        if left.is_zero() {
            Need::Login
        } else if left >= self.lease / 3 {
            Need::Nothing
        } else if self.renewable {
            Need::Renew
        } else if self.own {
            Need::Login
        } else {
            // Someone else's token that cannot be renewed: use it while it lasts, then read
            // its source again (a Vault agent may have rotated the file).
            Need::Nothing
        }
    }
}

#[derive(Default)]
struct State {
    token: Option<Token>,
    stats: VaultStats,
}

/// Vault client with a cached token.
pub struct VaultClient {
    cfg: VaultConfig,
    base: url::Url,
    http: reqwest::Client,
    credentials_dir: Option<PathBuf>,
    state: Mutex<State>,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("addr", &self.base.as_str())
            .field("auth", &self.cfg.auth)
            .finish_non_exhaustive()
    }
}

fn config_err(key: &str, message: impl Into<String>) -> SecretError {
    SecretError::Config {
        key: format!("vault.{key}"),
        message: message.into(),
    }
}

fn unusable(reference: &SecretRef, m: impl Into<String>) -> SecretError {
    SecretError::Unusable {
        reference: reference.to_string(),
        message: m.into(),
    }
}

fn denied(reference: &SecretRef, m: impl Into<String>) -> SecretError {
    SecretError::Denied {
        reference: reference.to_string(),
        message: m.into(),
    }
}

impl VaultClient {
    /// Check the `[vault]` section and build the HTTP client. Nothing is sent yet.
    pub fn new(cfg: &VaultConfig) -> Result<Self, SecretError> {
        let base = crate::tls::check_url(&cfg.addr).map_err(|m| config_err("addr", m))?;
        if base.query().is_some() || base.fragment().is_some() || base.cannot_be_a_base() {
            return Err(config_err(
                "addr",
                "must be a plain base URL such as https://vault.example.com:8200",
            ));
        }
        match cfg.auth {
            VaultAuth::Approle => {
                if cfg.role_id.as_deref().is_none_or(|r| r.trim().is_empty()) {
                    return Err(config_err("role_id", "auth = \"approle\" needs role_id"));
                }
                if cfg.secret_id.is_none() {
                    return Err(config_err(
                        "secret_id",
                        "auth = \"approle\" needs secret_id, a reference such as \
                         cred:vault-secret-id or file:/etc/pam-approval/vault-secret-id",
                    ));
                }
            }
            VaultAuth::Token => {}
        }
        for (key, r) in [("secret_id", &cfg.secret_id), ("token", &cfg.token)] {
            if let Some(SecretRef::Vault { .. }) = r {
                return Err(config_err(
                    key,
                    "a Vault credential cannot itself come from Vault; use file:, cred:, env: or cmd:",
                ));
            }
        }
        if cfg.approle_mount.is_empty()
            || cfg
                .approle_mount
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(config_err(
                "approle_mount",
                "must be a mount path such as `approle`",
            ));
        }
        if let Some(ns) = &cfg.namespace
            && (ns.is_empty() || !ns.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(config_err(
                "namespace",
                "must be a namespace path such as `pam` or `org/pam` (visible ASCII, no spaces)",
            ));
        }
        if cfg.timeout_secs == 0 {
            return Err(config_err("timeout_secs", "must be at least 1"));
        }
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let settings = HttpSettings {
            ca_bundle: cfg.ca_bundle.clone(),
            connect_timeout: timeout,
            request_timeout: timeout,
            ..HttpSettings::default()
        };
        let http =
            http::client(&settings, None).map_err(|e| config_err("ca_bundle", e.to_string()))?;
        Ok(VaultClient {
            cfg: cfg.clone(),
            base,
            http,
            credentials_dir: crate::env::var(crate::env::CREDENTIALS_DIRECTORY).map(PathBuf::from),
            state: Mutex::new(State::default()),
        })
    }

    /// Where `cred:` references of the Vault credentials are read from.
    pub(crate) fn set_credentials_dir(&mut self, dir: Option<PathBuf>) {
        self.credentials_dir = dir;
    }

    /// `BASE/v1/` plus the given path parts, each `/`-separated segment percent-encoded (a `?`
    /// or `#` in a secret path stays part of the path).
    fn url(&self, parts: &[&str]) -> url::Url {
        let mut u = self.base.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty().push("v1");
            for part in parts {
                segs.extend(part.split('/'));
            }
        }
        u
    }

    fn request(
        &self,
        method: reqwest::Method,
        parts: &[&str],
        token: Option<&SecretString>,
    ) -> reqwest::RequestBuilder {
        let mut b = self.http.request(method, self.url(parts));
        if let Some(ns) = &self.cfg.namespace {
            b = b.header("X-Vault-Namespace", ns);
        }
        if let Some(t) = token {
            b = b.header("X-Vault-Token", t.expose_secret());
        }
        b
    }

    async fn local(&self, r: &SecretRef) -> Result<SecretString, SecretError> {
        super::resolve_local(r, self.credentials_dir.as_deref(), Duration::from_secs(30)).await
    }

    /// A body that could not be read: cut off, or larger than [`MAX_BODY`].
    fn body_fault(&self, reference: &SecretRef, e: &http::BodyError) -> SecretError {
        match e.transport() {
            Some(t) => self.transport(reference, t),
            None => SecretError::Unavailable {
                reference: reference.to_string(),
                message: format!("{}: {e}", self.base),
            },
        }
    }

    fn transport(&self, reference: &SecretRef, e: &reqwest::Error) -> SecretError {
        let what = if e.is_timeout() {
            format!("no answer within {}s", self.cfg.timeout_secs)
        } else {
            http::error_chain(e)
        };
        SecretError::Unavailable {
            reference: reference.to_string(),
            message: format!("{}: {what}", self.base),
        }
    }

    fn server_fault(&self, reference: &SecretRef, status: u16, what: &str) -> SecretError {
        SecretError::Unavailable {
            reference: reference.to_string(),
            message: format!(
                "{} answered {status} to {what}{}",
                self.base,
                if status == 503 {
                    " (sealed or in standby?)"
                } else {
                    ""
                }
            ),
        }
    }

    /// Get a fresh token: AppRole login, or load the configured token and learn its lease.
    async fn login(&self, reference: &SecretRef) -> Result<Token, SecretError> {
        match self.cfg.auth {
            VaultAuth::Token => self.load_token(reference).await,
            VaultAuth::Approle => self.approle_login(reference).await,
        }
    }

    async fn load_token(&self, reference: &SecretRef) -> Result<Token, SecretError> {
        let value = match &self.cfg.token {
            Some(r) => self.local(r).await?,
            None => {
                SecretString::from(crate::env::var(crate::env::VAULT_TOKEN).ok_or_else(|| {
                    config_err(
                        "token",
                        "auth = \"token\" but neither vault.token nor VAULT_TOKEN is set",
                    )
                })?)
            }
        };
        let mut t = Token {
            value,
            accessor: None,
            expires: None,
            lease: Duration::ZERO,
            login_lease: Duration::ZERO,
            renewable: false,
            own: false,
        };
        // Learn the lease so renewal works. A refused lookup (a policy without lookup-self, or a
        // dead token) is not fatal here: the read reports what is wrong.
        let resp = self
            .request(
                reqwest::Method::GET,
                &["auth/token/lookup-self"],
                Some(&t.value),
            )
            .send()
            .await
            .map_err(|e| self.transport(reference, &e))?;
        let status = resp.status().as_u16();
        if status == 200 {
            let body = read_body(resp)
                .await
                .map_err(|e| self.body_fault(reference, &e))?;
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                let d = &v["data"];
                let ttl = Duration::from_secs(d["ttl"].as_u64().unwrap_or(0));
                t.renewable = d["renewable"].as_bool().unwrap_or(false);
                t.accessor = d["accessor"].as_str().map(str::to_string);
                if !ttl.is_zero() {
                    let creation = Duration::from_secs(d["creation_ttl"].as_u64().unwrap_or(0));
                    t.lease = ttl.max(creation);
                    t.login_lease = t.lease;
                    t.expires = Some(Instant::now() + ttl);
                }
            }
        } else if status >= 500 {
            return Err(self.server_fault(reference, status, "a token lookup"));
        } else {
            log::debug!("Vault token lookup-self answered {status}; lease unknown");
        }
        Ok(t)
    }

    async fn approle_login(&self, reference: &SecretRef) -> Result<Token, SecretError> {
        let role_id = self.cfg.role_id.as_deref().unwrap_or_default();
        let secret_ref = self
            .cfg
            .secret_id
            .as_ref()
            .ok_or_else(|| config_err("secret_id", "auth = \"approle\" needs secret_id"))?;
        let secret_id = self.local(secret_ref).await?;
        #[derive(serde::Serialize)]
        struct Login<'a> {
            role_id: &'a str,
            secret_id: &'a str,
        }
        let body = serde_json::to_string(&Login {
            role_id,
            secret_id: secret_id.expose_secret(),
        })
        .map_err(|e| unusable(reference, format!("cannot build the login request: {e}")))?;
        let mount = self.cfg.approle_mount.as_str();
        let resp = self
            .request(reqwest::Method::POST, &["auth", mount, "login"], None)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(reference, &e))?;
        let status = resp.status().as_u16();
        let text = read_body(resp)
            .await
            .map_err(|e| self.body_fault(reference, &e))?;
        let scrub_with = [secret_id.expose_secret()];
        if status != 200 {
            let why = errors_of(&text, &scrub_with);
            return Err(match status {
                404 => unusable(
                    reference,
                    format!(
                        "no AppRole auth method at auth/{mount} ({why}); check vault.approle_mount"
                    ),
                ),
                429 | 500.. => self.server_fault(reference, status, "the AppRole login"),
                _ => denied(
                    reference,
                    format!("AppRole login refused ({status}): {why}"),
                ),
            });
        }
        let parsed: LoginAnswer = serde_json::from_slice(&text).map_err(|_| {
            unusable(
                reference,
                "the AppRole login answer is not the expected JSON (auth.client_token)",
            )
        })?;
        let auth = parsed
            .auth
            .ok_or_else(|| unusable(reference, "the AppRole login answered without auth data"))?;
        if auth.client_token.expose_secret().is_empty() {
            return Err(unusable(
                reference,
                "the AppRole login answered without a client_token",
            ));
        }
        let lease = Duration::from_secs(auth.lease_duration);
        log::debug!(
            "Vault AppRole login ok: lease {}s, renewable {}",
            lease.as_secs(),
            auth.renewable
        );
        Ok(Token {
            value: auth.client_token,
            accessor: auth.accessor,
            expires: (!lease.is_zero()).then(|| Instant::now() + lease),
            lease,
            login_lease: lease,
            renewable: auth.renewable,
            own: true,
        })
    }

    /// Replace the cached token with a fresh one, revoking the old one if it was ours.
    async fn relogin(&self, st: &mut State, reference: &SecretRef) -> Result<(), SecretError> {
        if let Some(old) = st.token.take().filter(|t| t.own) {
            // Best effort: a token that is already dead answers 403, which is fine.
            if self.revoke(&old.value).await {
                st.stats.revocations += 1;
            }
        }
        st.token = Some(self.login(reference).await?);
        st.stats.logins += 1;
        Ok(())
    }

    /// A token valid for a while: logs in, renews below a third of the lease, or logs in again.
    async fn token(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        let mut guard = self.state.lock().await;
        let st = &mut *guard;
        let need = match &st.token {
            None => Need::Login,
            Some(t) => t.need(Instant::now()),
        };
        match need {
            Need::Nothing => {}
            Need::Login => self.relogin(st, reference).await?,
            Need::Renew => {
                let mut relogin = false;
                if let Some(t) = st.token.as_mut() {
                    match self.renew(t).await {
                        Some((lease, renewable)) => {
                            st.stats.renewals += 1;
                            t.lease = lease;
                            t.expires = Some(Instant::now() + lease);
                            t.renewable = renewable;
                            log::debug!("Vault token renewed: lease {}s", lease.as_secs());
                            // A renewal normally gives the full TTL again; one capped to well
                            // under the login lease means max_ttl is near (Vault reports whole
                            // seconds, so compare with half, not with the renewal threshold).
                            if t.own && lease < t.login_lease / 2 {
                                log::info!("Vault token is near its max_ttl; logging in again");
                                relogin = true;
                            }
                        }
                        None if t.own => {
                            log::info!("Vault token renewal failed; logging in again");
                            relogin = true;
                        }
                        None => {
                            log::warn!("Vault token renewal failed; using the token while it lasts")
                        }
                    }
                }
                if relogin {
                    self.relogin(st, reference).await?;
                }
            }
        }
        st.token
            .as_ref()
            .map(|t| t.value.clone())
            .ok_or_else(|| unusable(reference, "no Vault token"))
    }

    /// `renew-self`: the new lease and whether it is still renewable, or `None` on any failure.
    async fn renew(&self, t: &Token) -> Option<(Duration, bool)> {
        let resp = self
            .request(
                reqwest::Method::POST,
                &["auth/token/renew-self"],
                Some(&t.value),
            )
            .json(&serde_json::json!({}))
            .send()
            .await
            .ok()?;
        if resp.status().as_u16() != 200 {
            log::debug!("Vault renew-self answered {}", resp.status().as_u16());
            return None;
        }
        let body = read_body(resp).await.ok()?;
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let lease = v["auth"]["lease_duration"].as_u64()?;
        (lease > 0).then(|| {
            (
                Duration::from_secs(lease),
                v["auth"]["renewable"].as_bool().unwrap_or(false),
            )
        })
    }

    /// Whether Vault says the token itself is invalid (revoked, expired): `lookup-self` refused.
    async fn token_is_dead(&self, token: &SecretString) -> bool {
        match self
            .request(
                reqwest::Method::GET,
                &["auth/token/lookup-self"],
                Some(token),
            )
            .send()
            .await
        {
            Ok(r) => r.status().as_u16() == 403,
            Err(_) => false,
        }
    }

    /// Read one field of a KV v2 secret (`GET /v1/{mount}/data/{path}`).
    pub async fn read_field(
        &self,
        reference: &SecretRef,
        mount: &str,
        path: &str,
        field: &str,
    ) -> Result<SecretString, SecretError> {
        for attempt in 0..2 {
            let token = self.token(reference).await?;
            let resp = self
                .request(reqwest::Method::GET, &[mount, "data", path], Some(&token))
                .send()
                .await
                .map_err(|e| self.transport(reference, &e))?;
            let status = resp.status().as_u16();
            let body = read_body(resp)
                .await
                .map_err(|e| self.body_fault(reference, &e))?;
            match status {
                200 => return field_of(reference, &body, field),
                404 => return Err(not_found(reference, &body, mount, path)),
                403 => {
                    if attempt == 0 && self.token_is_dead(&token).await {
                        if self.cfg.auth == VaultAuth::Approle {
                            log::info!("Vault token was revoked or expired; logging in again");
                            let mut st = self.state.lock().await;
                            self.relogin(&mut st, reference).await?;
                            st.stats.relogins += 1;
                            drop(st);
                            continue;
                        }
                        return Err(denied(reference, "the Vault token is expired or revoked"));
                    }
                    return Err(denied(
                        reference,
                        format!(
                            "permission denied by Vault ({}); the policy must allow read on {mount}/data/{path}",
                            errors_of(&body, &[token.expose_secret()])
                        ),
                    ));
                }
                429 | 500.. => {
                    return Err(self.server_fault(reference, status, "the secret read"));
                }
                s => {
                    return Err(unusable(
                        reference,
                        format!(
                            "Vault answered {s}: {}",
                            errors_of(&body, &[token.expose_secret()])
                        ),
                    ));
                }
            }
        }
        Err(denied(reference, "permission denied by Vault"))
    }

    /// `revoke-self`; true when Vault confirmed.
    async fn revoke(&self, token: &SecretString) -> bool {
        match self
            .request(
                reqwest::Method::POST,
                &["auth/token/revoke-self"],
                Some(token),
            )
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                log::debug!("Vault revoke-self answered {}", r.status().as_u16());
                false
            }
            Err(e) => {
                log::debug!("Vault revoke-self failed: {}", http::error_chain(&e));
                false
            }
        }
    }

    /// Revoke the token if this process logged in itself (end of a run); forget it either way.
    pub async fn revoke_own_token(&self) {
        let mut st = self.state.lock().await;
        if let Some(t) = st.token.take()
            && t.own
            && self.revoke(&t.value).await
        {
            st.stats.revocations += 1;
            log::debug!("Vault token revoked");
        }
    }

    /// What the client did so far.
    pub async fn stats(&self) -> VaultStats {
        self.state.lock().await.stats
    }

    /// The accessor of the cached token (not secret: it cannot read secrets), if any.
    pub async fn token_accessor(&self) -> Option<String> {
        self.state
            .lock()
            .await
            .token
            .as_ref()
            .and_then(|t| t.accessor.clone())
    }
}

/// Read a body up to [`MAX_BODY`], into memory that is wiped when dropped.
async fn read_body(resp: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, http::BodyError> {
    http::read_capped(resp, MAX_BODY).await
}

#[derive(Deserialize)]
struct LoginAnswer {
    auth: Option<LoginAuth>,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: SecretString,
    accessor: Option<String>,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct KvAnswer {
    data: Option<KvData>,
}

#[derive(Deserialize)]
struct KvData {
    data: Option<BTreeMap<String, Field>>,
    metadata: Option<KvMetadata>,
}

#[derive(Deserialize, Default)]
struct KvMetadata {
    deletion_time: Option<String>,
    #[serde(default)]
    destroyed: bool,
    version: Option<u64>,
}

/// One value of a KV secret: strings go straight into a `SecretString`; anything else is only
/// described (its value is never kept).
enum Field {
    Text(SecretString),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Field, E> {
                Ok(Field::Text(SecretString::from(v)))
            }
            fn visit_string<E>(self, v: String) -> Result<Field, E> {
                Ok(Field::Text(SecretString::from(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Field, E> {
                Ok(Field::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Field, E> {
                Ok(Field::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Field, E> {
                Ok(Field::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Field, E> {
                Ok(Field::Other("a number"))
            }
            fn visit_unit<E>(self) -> Result<Field, E> {
                Ok(Field::Other("null"))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Field, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Field::Other("a list"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Field, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Field::Other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// The field of a KV v2 read answer (pure: tested with fixtures).
fn field_of(reference: &SecretRef, body: &[u8], field: &str) -> Result<SecretString, SecretError> {
    let answer: KvAnswer = serde_json::from_slice(body).map_err(|_| {
        unusable(
            reference,
            "Vault answered with a body that is not a KV v2 secret (is the mount KV version 2?)",
        )
    })?;
    let data = answer.data.ok_or_else(|| {
        unusable(
            reference,
            "Vault answered without data (is the mount KV version 2?)",
        )
    })?;
    let Some(mut fields) = data.data else {
        return Err(unusable(
            reference,
            deleted_text(data.metadata.as_ref())
                .unwrap_or_else(|| "the secret's latest version has no data".into()),
        ));
    };
    match fields.remove(field) {
        Some(Field::Text(s)) => Ok(s),
        Some(Field::Other(kind)) => Err(unusable(
            reference,
            format!("field `{field}` is {kind}, not a string"),
        )),
        None => {
            let mut names: Vec<&str> = fields.keys().map(String::as_str).take(20).collect();
            names.sort_unstable();
            Err(unusable(
                reference,
                format!(
                    "the secret has no field `{field}` (fields: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ))
        }
    }
}

fn deleted_text(meta: Option<&KvMetadata>) -> Option<String> {
    let m = meta?;
    let version = m
        .version
        .map(|v| format!(" (version {v})"))
        .unwrap_or_default();
    if m.destroyed {
        return Some(format!(
            "the secret's latest version{version} is destroyed; write a new version"
        ));
    }
    let t = m.deletion_time.as_deref().filter(|t| !t.is_empty())?;
    Some(format!(
        "the secret's latest version{version} was deleted at {}; undelete it or write a new version",
        sanitize(t, 40)
    ))
}

/// A 404 on a KV v2 read: a soft-deleted or destroyed latest version, or no secret at all.
fn not_found(reference: &SecretRef, body: &[u8], mount: &str, path: &str) -> SecretError {
    let meta = serde_json::from_slice::<KvAnswer>(body)
        .ok()
        .and_then(|a| a.data)
        .and_then(|d| d.metadata);
    let message = deleted_text(meta.as_ref()).unwrap_or_else(|| {
        format!(
            "no secret at {mount}/{path} (check the path, and that {mount} is a KV version 2 mount)"
        )
    });
    unusable(reference, message)
}

/// The `errors` of a Vault error answer as one short line, with any known secret value cut out
/// (a misbehaving server must not make us print a secret-id or token).
fn errors_of(body: &[u8], secrets: &[&str]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let text = match v["errors"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        _ => "no error text".into(),
    };
    let mut text: String = text.chars().take(MAX_BODY.limit).collect();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(s, "[redacted]");
    }
    sanitize(&text, MAX_ERROR_TEXT)
}

/// One line, control characters removed, whitespace collapsed, capped.
fn sanitize(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() > max {
        format!("{}…", clean.chars().take(max).collect::<String>())
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{Classify, Exit};

    fn r() -> SecretRef {
        "vault:secret/pamtool/x#password".parse().expect("ref")
    }

    fn cfg(addr: &str) -> VaultConfig {
        VaultConfig {
            addr: addr.into(),
            ca_bundle: None,
            namespace: None,
            auth: VaultAuth::Approle,
            role_id: Some("role".into()),
            secret_id: Some("env:SOME_SECRET_ID".parse().expect("ref")),
            token: None,
            approle_mount: "approle".into(),
            timeout_secs: 5,
        }
    }

    #[test]
    fn reads_a_string_field_and_describes_others_without_their_value() {
        let body =
            br#"{"data":{"data":{"password":"p@ss2","username":"svc","pin":1234,"flag":true},
            "metadata":{"deletion_time":"","destroyed":false,"version":2}}}"#;
        assert_eq!(
            field_of(&r(), body, "password")
                .expect("ok")
                .expose_secret(),
            "p@ss2"
        );
        let e = field_of(&r(), body, "pin").expect_err("number");
        assert!(e.to_string().contains("is a number"), "{e}");
        assert!(!e.to_string().contains("1234"), "{e}");
        let e = field_of(&r(), body, "pw").expect_err("missing");
        let text = e.to_string();
        assert!(text.contains("no field `pw`"), "{text}");
        assert!(text.contains("flag, password, pin, username"), "{text}");
        assert!(!text.contains("p@ss2"), "{text}");
        assert_eq!(e.exit(), Exit::Config);
    }

    #[test]
    fn deleted_and_destroyed_versions_are_named() {
        let deleted = br#"{"data":{"data":null,"metadata":{"deletion_time":"2026-01-02T03:04:05Z","destroyed":false,"version":3}}}"#;
        let e = not_found(&r(), deleted, "secret", "pamtool/x");
        assert!(
            e.to_string()
                .contains("version 3) was deleted at 2026-01-02T03:04:05Z"),
            "{e}"
        );
        let destroyed = br#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,"version":1}}}"#;
        let e = not_found(&r(), destroyed, "secret", "pamtool/x");
        assert!(e.to_string().contains("destroyed"), "{e}");
        let e = not_found(&r(), br#"{"errors":[]}"#, "secret", "pamtool/x");
        assert!(
            e.to_string().contains("no secret at secret/pamtool/x"),
            "{e}"
        );
        let e = field_of(&r(), deleted, "password").expect_err("deleted");
        assert!(e.to_string().contains("deleted"), "{e}");
    }

    #[test]
    fn server_error_texts_are_scrubbed_and_capped() {
        let body = br#"{"errors":["bad secret_id TOPSECRET-42\n\t* again TOPSECRET-42"]}"#;
        let t = errors_of(body, &["TOPSECRET-42"]);
        assert_eq!(t, "bad secret_id [redacted] * again [redacted]");
        let long = format!(r#"{{"errors":["{}"]}}"#, "x".repeat(5000));
        assert!(errors_of(long.as_bytes(), &[]).chars().count() <= MAX_ERROR_TEXT + 1);
        assert_eq!(errors_of(b"<html>", &[]), "no error text");
    }

    #[test]
    fn secret_paths_are_percent_encoded_per_segment() {
        let c = VaultClient::new(&cfg("http://127.0.0.1:8200/prefix/")).expect("client");
        assert_eq!(
            c.url(&["secret", "data", "team a/x?version=1#y"]).as_str(),
            "http://127.0.0.1:8200/prefix/v1/secret/data/team%20a/x%3Fversion=1%23y"
        );
        assert_eq!(
            c.url(&["auth/token/lookup-self"]).as_str(),
            "http://127.0.0.1:8200/prefix/v1/auth/token/lookup-self"
        );
    }

    #[test]
    fn config_checks_name_the_key() {
        let mut c = cfg("http://vault.example.com:8200");
        let e = VaultClient::new(&c).expect_err("plain http remote");
        assert!(e.to_string().contains("vault.addr"), "{e}");
        assert_eq!(e.exit(), Exit::Config);
        c.addr = "https://vault.example.com".into();
        c.role_id = Some(" ".into());
        let e = VaultClient::new(&c).expect_err("no role id");
        assert!(e.to_string().contains("vault.role_id"), "{e}");
        c.role_id = Some("r".into());
        c.secret_id = Some("vault:secret/x#y".parse().expect("ref"));
        let e = VaultClient::new(&c).expect_err("vault from vault");
        assert!(e.to_string().contains("vault.secret_id"), "{e}");
        c.secret_id = Some("env:X".parse().expect("ref"));
        c.approle_mount = "../sys".into();
        let e = VaultClient::new(&c).expect_err("mount");
        assert!(e.to_string().contains("vault.approle_mount"), "{e}");
        c.approle_mount = "approle".into();
        c.namespace = Some("pam\r\nX-Injected: 1".into());
        let e = VaultClient::new(&c).expect_err("header injection");
        assert!(e.to_string().contains("vault.namespace"), "{e}");
        assert!(
            e.hint()
                .unwrap_or_default()
                .contains("APPROVAL__VAULT__NAMESPACE")
        );
    }

    #[test]
    fn the_shipped_example_parses_and_passes_the_checks() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/config.d/secrets.toml"
        );
        let text = std::fs::read_to_string(path).expect("example");
        let loaded = crate::settings::load_from_parts(Some(&text), Some(path.into()), &[])
            .expect("example parses");
        let mut v = loaded.config.vault.clone().expect("[vault]");
        assert_eq!(v.auth, VaultAuth::Approle);
        assert_eq!(
            v.secret_id,
            Some("cred:vault-secret-id".parse().expect("ref"))
        );
        // The CA bundle path is the deployment's; everything else must pass as shipped.
        v.ca_bundle = None;
        VaultClient::new(&v).expect("valid [vault]");
    }

    #[test]
    fn renewal_starts_below_a_third_of_the_lease() {
        let now = Instant::now();
        let mut t = Token {
            value: SecretString::from("t"),
            accessor: None,
            expires: Some(now + Duration::from_secs(61)),
            lease: Duration::from_secs(180),
            login_lease: Duration::from_secs(180),
            renewable: true,
            own: true,
        };
        assert_eq!(t.need(now), Need::Nothing);
        t.expires = Some(now + Duration::from_secs(59));
        assert_eq!(t.need(now), Need::Renew);
        t.renewable = false;
        assert_eq!(t.need(now), Need::Login);
        t.own = false;
        assert_eq!(t.need(now), Need::Nothing);
        t.expires = Some(now);
        assert_eq!(t.need(now), Need::Login);
        t.expires = None;
        assert_eq!(t.need(now), Need::Nothing);
    }
}

//! A small Vault / OpenBao client: token or AppRole login, KV v2 reads, token renewal and
//! revocation. Three endpoints only, so no large client crate is pulled in.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{SecretError, SecretRef};
use crate::http::{self, HttpSettings};

/// `[vault]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// e.g. `https://vault.example.com:8200`
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
    /// Token for `auth = "token"`; when absent, `VAULT_TOKEN` is read.
    pub token: Option<SecretRef>,
    /// Mount path of the AppRole auth method.
    #[serde(default = "default_approle_mount")]
    pub approle_mount: String,
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

struct Token {
    value: SecretString,
    /// When the lease ends; `None` for a token without expiry (root/dev tokens).
    expires: Option<Instant>,
    lease: Duration,
    renewable: bool,
    /// Logged in by us (AppRole): we may revoke it at exit.
    own: bool,
}

/// Vault client with a cached token.
pub struct VaultClient {
    cfg: VaultConfig,
    base: url::Url,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
}

fn vault_err(reference: &SecretRef, m: impl Into<String>) -> SecretError {
    SecretError::Unusable {
        reference: reference.to_string(),
        message: m.into(),
    }
}

impl VaultClient {
    pub fn new(cfg: &VaultConfig) -> Result<Self, SecretError> {
        let cfg_ref = SecretRef::Env("vault.addr".into());
        let base = crate::tls::check_url(&cfg.addr)
            .map_err(|m| vault_err(&cfg_ref, format!("[vault] addr: {m}")))?;
        if cfg.auth == VaultAuth::Approle && (cfg.role_id.is_none() || cfg.secret_id.is_none()) {
            return Err(SecretError::Unusable {
                reference: "[vault]".into(),
                message: "auth = \"approle\" needs role_id and secret_id".into(),
            });
        }
        for r in [&cfg.secret_id, &cfg.token].into_iter().flatten() {
            if matches!(r, SecretRef::Vault { .. }) {
                return Err(vault_err(
                    r,
                    "a Vault credential cannot itself come from Vault",
                ));
            }
        }
        let settings = HttpSettings {
            ca_bundle: cfg.ca_bundle.clone(),
            connect_timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            request_timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            ..HttpSettings::default()
        };
        let http = http::client(&settings, None).map_err(|e| SecretError::Unusable {
            reference: "[vault]".into(),
            message: e.to_string(),
        })?;
        Ok(VaultClient {
            cfg: cfg.clone(),
            base,
            http,
            token: Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.base.as_str().trim_end_matches('/'), path)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut b = self.http.request(method, self.url(path));
        if let Some(ns) = &self.cfg.namespace {
            b = b.header("X-Vault-Namespace", ns);
        }
        b
    }

    async fn local(r: &SecretRef) -> Result<SecretString, SecretError> {
        let dir = crate::env::var(crate::env::CREDENTIALS_DIRECTORY).map(PathBuf::from);
        super::resolve_local(r, dir.as_deref(), Duration::from_secs(30)).await
    }

    async fn login(&self, reference: &SecretRef) -> Result<Token, SecretError> {
        match self.cfg.auth {
            VaultAuth::Token => {
                let value = match &self.cfg.token {
                    Some(r) => Self::local(r).await?,
                    None => SecretString::from(crate::env::var(crate::env::VAULT_TOKEN).ok_or_else(|| {
                        vault_err(reference, "[vault] auth = \"token\" but neither vault.token nor VAULT_TOKEN is set")
                    })?),
                };
                // Learn its TTL so renewal works; a lookup failure is reported on the read.
                let mut t = Token {
                    value,
                    expires: None,
                    lease: Duration::ZERO,
                    renewable: false,
                    own: false,
                };
                if let Ok(resp) = self
                    .request(reqwest::Method::GET, "auth/token/lookup-self")
                    .header("X-Vault-Token", t.value.expose_secret())
                    .send()
                    .await
                    && resp.status().is_success()
                    && let Ok(v) = resp.json::<serde_json::Value>().await
                {
                    let ttl = v["data"]["ttl"].as_u64().unwrap_or(0);
                    t.renewable = v["data"]["renewable"].as_bool().unwrap_or(false);
                    if ttl > 0 {
                        t.lease = Duration::from_secs(ttl);
                        t.expires = Some(Instant::now() + t.lease);
                    }
                }
                Ok(t)
            }
            VaultAuth::Approle => {
                let role_id = self.cfg.role_id.clone().unwrap_or_default();
                let secret_ref = self
                    .cfg
                    .secret_id
                    .clone()
                    .ok_or_else(|| vault_err(reference, "no secret_id"))?;
                let secret_id = Self::local(&secret_ref).await?;
                let body = zeroize::Zeroizing::new(
                    serde_json::json!({"role_id": role_id, "secret_id": secret_id.expose_secret()})
                        .to_string(),
                );
                let resp = self
                    .request(
                        reqwest::Method::POST,
                        &format!("auth/{}/login", self.cfg.approle_mount),
                    )
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .map_err(|e| self.transport(reference, e))?;
                let status = resp.status();
                let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
                if !status.is_success() {
                    return Err(SecretError::Denied {
                        reference: reference.to_string(),
                        message: format!(
                            "AppRole login refused ({}): {}",
                            status.as_u16(),
                            errors_of(&v)
                        ),
                    });
                }
                let auth = &v["auth"];
                let token = auth["client_token"].as_str().ok_or_else(|| {
                    vault_err(reference, "AppRole login answered without a client_token")
                })?;
                let lease = Duration::from_secs(auth["lease_duration"].as_u64().unwrap_or(0));
                Ok(Token {
                    value: SecretString::from(token.to_string()),
                    expires: (!lease.is_zero()).then(|| Instant::now() + lease),
                    lease,
                    renewable: auth["renewable"].as_bool().unwrap_or(false),
                    own: true,
                })
            }
        }
    }

    fn transport(&self, reference: &SecretRef, e: reqwest::Error) -> SecretError {
        let what = if e.is_timeout() {
            "timed out".to_string()
        } else {
            crate::http::error_chain(&e)
        };
        SecretError::Unavailable {
            reference: reference.to_string(),
            message: format!("{} {what}", self.base),
        }
    }

    /// A token valid for at least a while: logs in, renews below a third of the lease, or logs
    /// in again when renewal fails.
    async fn token(&self, reference: &SecretRef) -> Result<SecretString, SecretError> {
        let mut guard = self.token.lock().await;
        let needs = match guard.as_ref() {
            None => Need::Login,
            Some(t) => match t.expires {
                None => Need::Nothing,
                Some(exp) => {
                    let left = exp.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        Need::Login
                    } else if left < t.lease / 3 {
                        if t.renewable {
                            Need::Renew
                        } else if t.own {
                            Need::Login
                        } else {
                            Need::Nothing
                        }
                    } else {
                        Need::Nothing
                    }
                }
            },
        };
        match needs {
            Need::Nothing => {}
            Need::Login => *guard = Some(self.login(reference).await?),
            Need::Renew => {
                let renewed = match guard.as_ref() {
                    Some(t) => self.renew(t).await,
                    None => None,
                };
                match renewed {
                    Some((lease, renewable)) => {
                        if let Some(t) = guard.as_mut() {
                            t.lease = lease;
                            t.expires = Some(Instant::now() + lease);
                            t.renewable = renewable;
                        }
                    }
                    None => {
                        log::info!("Vault token renewal failed; logging in again");
                        *guard = Some(self.login(reference).await?);
                    }
                }
            }
        }
        Ok(guard
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_else(|| SecretString::from(String::new())))
    }

    async fn renew(&self, t: &Token) -> Option<(Duration, bool)> {
        let resp = self
            .request(reqwest::Method::POST, "auth/token/renew-self")
            .header("X-Vault-Token", t.value.expose_secret())
            .json(&serde_json::json!({}))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let v: serde_json::Value = resp.json().await.ok()?;
        let lease = v["auth"]["lease_duration"].as_u64()?;
        (lease > 0).then(|| {
            (
                Duration::from_secs(lease),
                v["auth"]["renewable"].as_bool().unwrap_or(false),
            )
        })
    }

    /// Read one field of a KV v2 secret.
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
                .request(reqwest::Method::GET, &format!("{mount}/data/{path}"))
                .header("X-Vault-Token", token.expose_secret())
                .send()
                .await
                .map_err(|e| self.transport(reference, e))?;
            let status = resp.status().as_u16();
            let text = zeroize::Zeroizing::new(resp.text().await.unwrap_or_default());
            match status {
                200 => {
                    let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
                        vault_err(reference, "Vault answered with a body that is not JSON")
                    })?;
                    let data = &v["data"]["data"];
                    if data.is_null() {
                        return Err(vault_err(
                            reference,
                            "the secret's latest version is deleted",
                        ));
                    }
                    return match data.get(field) {
                        Some(serde_json::Value::String(s)) => Ok(SecretString::from(s.clone())),
                        Some(_) => Err(vault_err(
                            reference,
                            format!("field `{field}` is not a string"),
                        )),
                        None => Err(vault_err(
                            reference,
                            format!("the secret has no field `{field}`"),
                        )),
                    };
                }
                404 => {
                    return Err(vault_err(
                        reference,
                        format!("no secret at {mount}/{path} (is {mount} a KV v2 mount?)"),
                    ));
                }
                403 if attempt == 0 && self.cfg.auth == VaultAuth::Approle => {
                    // The cached token may have been revoked: log in once more.
                    *self.token.lock().await = None;
                    continue;
                }
                403 => {
                    let v: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    return Err(SecretError::Denied {
                        reference: reference.to_string(),
                        message: format!("permission denied by Vault ({})", errors_of(&v)),
                    });
                }
                s if s >= 500 => {
                    return Err(SecretError::Unavailable {
                        reference: reference.to_string(),
                        message: format!("{} answered {s}", self.base),
                    });
                }
                s => {
                    let v: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    return Err(vault_err(
                        reference,
                        format!("Vault answered {s}: {}", errors_of(&v)),
                    ));
                }
            }
        }
        Err(SecretError::Denied {
            reference: reference.to_string(),
            message: "permission denied by Vault".into(),
        })
    }

    /// Revoke a token this process obtained by AppRole login.
    pub async fn revoke_own_token(&self) {
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref().filter(|t| t.own) {
            let _ = self
                .request(reqwest::Method::POST, "auth/token/revoke-self")
                .header("X-Vault-Token", t.value.expose_secret())
                .send()
                .await;
        }
        *guard = None;
    }
}

enum Need {
    Nothing,
    Login,
    Renew,
}

fn errors_of(v: &serde_json::Value) -> String {
    match v["errors"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(|e| e.as_str())
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("; "),
        _ => "no error text".into(),
    }
}

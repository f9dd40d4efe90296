//! The access token: OAuth2 `client_credentials` with a private-key JWT client assertion
//! (reference §4), or with a client secret for secret-type service accounts (§3.2, P1).
//!
//! Assertion: header `{"alg":"RS256","typ":"JWT"}`, no `kid`; `iss` = `sub` =
//! `<tenant>.<service account>.ExternalServiceAccount`; `aud` = the realm URL; `iat` now; `exp`
//! now + 300 s; a fresh random `jti`; no `nbf`. The form carries exactly `grant_type`,
//! `client_assertion_type` and `client_assertion`.
//!
//! The token is cached and renewed before it expires; [`TokenSource::invalidate`] drops it after
//! a 401 so the next call fetches a new one.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::RemoteAccessError;
use super::keyfile::{Credential, SigningKey};
use crate::http::{self, Backoff};

/// The largest token answer read.
const MAX_BODY: http::BodyCap = http::BodyCap::fixed("Remote Access token service", 1 << 20);

/// The token service's answer, at most [`MAX_BODY`] (a body cut off reads as empty: the status
/// decides, as the token reader expects).
async fn read_token_answer(
    resp: reqwest::Response,
) -> Result<Zeroizing<String>, RemoteAccessError> {
    match http::read_capped_text(resp, MAX_BODY).await {
        Ok(t) => Ok(t),
        Err(too_large @ http::BodyError::TooLarge(_)) => Err(RemoteAccessError::Protocol {
            what: "token request".into(),
            detail: too_large.to_string(),
        }),
        Err(http::BodyError::Transport(_)) => Ok(Zeroizing::new(String::new())),
    }
}

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of an assertion (the short one of strick-j's clients, not CyberArk's 72 h).
pub const ASSERTION_LIFETIME_SECS: i64 = 300;
/// The realm of the service accounts.
pub const REALM_PATH: &str = "auth/realms/serviceaccounts";
/// Token endpoint below the realm URL.
pub const TOKEN_PATH: &str = "protocol/openid-connect/token";

/// The Keycloak client id of a private-key service account.
pub fn client_id(tenant: &str, service_account: &str) -> String {
    format!("{tenant}.{service_account}.ExternalServiceAccount")
}

/// A fresh, unique `jti`: 128 random bits as 32 hex characters.
pub fn new_jti() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The claims of a client assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl AssertionClaims {
    /// The claims we send: `iss` = `sub` = the client id, `exp` = `now` + 300 s.
    pub fn new(client_id: &str, audience: &str, now: i64) -> Self {
        AssertionClaims {
            iss: client_id.to_string(),
            sub: client_id.to_string(),
            aud: audience.to_string(),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
            jti: new_jti(),
        }
    }
}

/// Sign claims with RS256 into a compact JWT.
pub fn sign(claims: &AssertionClaims, key: &SigningKey) -> Result<SecretString, RemoteAccessError> {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, claims, &key.0)
        .map(SecretString::from)
        .map_err(|e| RemoteAccessError::Protocol {
            what: "signing the client assertion".into(),
            detail: e.to_string(),
        })
}

/// A token as the token service issued it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: SecretString,
    pub expires_in: u64,
    pub token_type: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<u64>,
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
    error_description: Option<String>,
}

struct Cached {
    token: SecretString,
    renew_at: Instant,
    generation: u64,
}

/// Fetches, caches and renews the access token.
pub struct TokenSource {
    http: reqwest::Client,
    token_url: url::Url,
    audience: String,
    client_id: String,
    credential: Credential,
    backoff: Backoff,
    max_retry_after: Duration,
    renew_margin: Duration,
    timeout_secs: u64,
    cache: tokio::sync::Mutex<Option<Cached>>,
    generation: std::sync::atomic::AtomicU64,
    fetched: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// How a [`TokenSource`] is set up.
pub struct TokenSettings {
    pub token_url: url::Url,
    pub audience: String,
    pub client_id: String,
    pub credential: Credential,
    pub backoff: Backoff,
    pub max_retry_after: Duration,
    pub renew_margin: Duration,
    pub timeout_secs: u64,
}

impl TokenSource {
    pub fn new(http: reqwest::Client, s: TokenSettings) -> Self {
        TokenSource {
            http,
            token_url: s.token_url,
            audience: s.audience,
            client_id: s.client_id,
            credential: s.credential,
            backoff: s.backoff,
            max_retry_after: s.max_retry_after,
            renew_margin: s.renew_margin,
            timeout_secs: s.timeout_secs,
            cache: tokio::sync::Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
            fetched: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn token_url(&self) -> &url::Url {
        &self.token_url
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// How many tokens this source fetched (tests, `-v` summaries).
    pub fn fetched(&self) -> u64 {
        self.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The current token (fetched when missing or due for renewal) and its generation.
    pub async fn get(&self) -> Result<(SecretString, u64), RemoteAccessError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.renew_at
        {
            return Ok((c.token.clone(), c.generation));
        }
        let issued = self.fetch().await?;
        let ttl = Duration::from_secs(issued.expires_in);
        let margin = self.renew_margin.min(ttl / 2);
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        *cache = Some(Cached {
            token: issued.access_token.clone(),
            renew_at: Instant::now() + ttl - margin,
            generation,
        });
        Ok((issued.access_token, generation))
    }

    /// Drop the token of `generation` (after a 401); a newer one is kept.
    pub async fn invalidate(&self, generation: u64) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.generation == generation) {
            *cache = None;
        }
    }

    /// A new token, always from the token service. Retried on 429/5xx and connection faults,
    /// each attempt with a new assertion (a `jti` is never sent twice).
    pub async fn fetch(&self) -> Result<Issued, RemoteAccessError> {
        let mut attempt = 0;
        loop {
            let form = self.form()?;
            log::debug!(
                "Remote Access: requesting a token for {} from {}",
                self.client_id,
                self.token_url
            );
            let r = self
                .http
                .post(self.token_url.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .body(form.to_string())
                .send()
                .await;
            match r {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if (status == 429 || status >= 500) && attempt < self.backoff.retries {
                        attempt += 1;
                        let d = self.delay(attempt, http::retry_after(resp.headers()));
                        log::warn!(
                            "Remote Access token service answered {status}; retry {attempt} in {d:?}"
                        );
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    let text = read_token_answer(resp).await?;
                    let issued = self.read_answer(status, &text)?;
                    self.fetched
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    log::debug!("Remote Access: token issued, valid {} s", issued.expires_in);
                    return Ok(issued);
                }
                Err(e) if (e.is_connect() || e.is_timeout()) && attempt < self.backoff.retries => {
                    attempt += 1;
                    let d = self.backoff.delay(attempt);
                    log::warn!(
                        "Remote Access token service: {}; retry {attempt} in {d:?}",
                        http::error_chain(&e)
                    );
                    tokio::time::sleep(d).await;
                }
                Err(e) if e.is_timeout() => {
                    return Err(RemoteAccessError::Timeout {
                        service: "token service",
                        url: self.token_url.to_string(),
                        secs: self.timeout_secs,
                        what: "token request".into(),
                    });
                }
                Err(e) => {
                    return Err(RemoteAccessError::Unreachable {
                        service: "token service",
                        url: self.token_url.to_string(),
                        detail: http::error_chain(&e),
                    });
                }
            }
        }
    }

    /// Exchange a given assertion for a token once, without retries (tests of the stand-in's
    /// checks; diagnostics).
    pub async fn exchange_assertion(
        &self,
        assertion: &SecretString,
    ) -> Result<Issued, RemoteAccessError> {
        let form = Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_assertion_type", ASSERTION_TYPE)
                .append_pair("client_assertion", assertion.expose_secret())
                .finish(),
        );
        let resp = self
            .http
            .post(self.token_url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.to_string())
            .send()
            .await
            .map_err(|e| RemoteAccessError::Unreachable {
                service: "token service",
                url: self.token_url.to_string(),
                detail: http::error_chain(&e),
            })?;
        let status = resp.status().as_u16();
        let text = read_token_answer(resp).await?;
        self.read_answer(status, &text)
    }

    /// The claims this source would send now (tests build variants of them).
    pub fn claims(&self, now: i64) -> AssertionClaims {
        AssertionClaims::new(&self.client_id, &self.audience, now)
    }

    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff.delay(attempt),
        }
    }

    fn form(&self) -> Result<Zeroizing<String>, RemoteAccessError> {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        ser.append_pair("grant_type", "client_credentials");
        match &self.credential {
            Credential::PrivateKey(key) => {
                let claims = self.claims(chrono::Utc::now().timestamp());
                let assertion = sign(&claims, key)?;
                ser.append_pair("client_assertion_type", ASSERTION_TYPE);
                ser.append_pair("client_assertion", assertion.expose_secret());
            }
            Credential::ClientSecret { client_id, secret } => {
                ser.append_pair("client_id", client_id);
                ser.append_pair("client_secret", secret.expose_secret());
            }
        }
        Ok(Zeroizing::new(ser.finish()))
    }

    fn read_answer(&self, status: u16, text: &str) -> Result<Issued, RemoteAccessError> {
        if status == 200 {
            let r: TokenResponse =
                serde_json::from_str(text).map_err(|_| RemoteAccessError::Protocol {
                    what: "token request".into(),
                    detail: "the answer is not the expected JSON".into(),
                })?;
            let token = r
                .access_token
                .filter(|t| {
                    !t.is_empty() && t.len() < 64 * 1024 && t.bytes().all(|b| b.is_ascii_graphic())
                })
                .ok_or_else(|| RemoteAccessError::Protocol {
                    what: "token request".into(),
                    detail: "the answer holds no usable access_token".into(),
                })?;
            let token_type = r.token_type.unwrap_or_else(|| "Bearer".into());
            if !token_type.eq_ignore_ascii_case("bearer") {
                return Err(RemoteAccessError::Protocol {
                    what: "token request".into(),
                    detail: format!(
                        "token_type is `{}`, not Bearer",
                        crate::text::printable(&token_type)
                    ),
                });
            }
            return Ok(Issued {
                access_token: SecretString::from(token),
                expires_in: r.expires_in.unwrap_or(300).clamp(1, 24 * 3600),
                token_type,
            });
        }
        let (error, description) = match serde_json::from_str::<TokenError>(text) {
            Ok(e) if e.error.is_some() => (
                crate::text::printable(&e.error.unwrap_or_default()),
                http::body_excerpt(&e.error_description.unwrap_or_default(), 400),
            ),
            _ => (String::new(), {
                let x = http::body_excerpt(text, 200);
                if x.is_empty() { "empty body".into() } else { x }
            }),
        };
        if status == 429 {
            return Err(RemoteAccessError::RateLimited {
                what: "token request".into(),
                attempts: self.backoff.retries + 1,
                detail: description,
            });
        }
        Err(RemoteAccessError::TokenRefused {
            status,
            error,
            description,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_the_reference() {
        let c = AssertionClaims::new(
            &client_id("t".repeat(32).as_str(), "s".repeat(32).as_str()),
            "https://auth.alero.eu/auth/realms/serviceaccounts",
            1_700_000_000,
        );
        assert_eq!(c.iss, c.sub);
        assert!(c.iss.ends_with(".ExternalServiceAccount"));
        assert_eq!(c.exp - c.iat, 300);
        assert_eq!(c.jti.len(), 32);
        let v = serde_json::to_value(&c).expect("ser");
        assert!(v.get("nbf").is_none());
        let other = AssertionClaims::new("x", "y", 1);
        assert_ne!(c.jti, other.jti);
    }
}

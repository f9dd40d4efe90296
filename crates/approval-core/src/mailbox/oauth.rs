//! App-only OAuth2 against Microsoft Entra ID (client credentials), shared by the mailbox
//! backends that reach Exchange Online: a client secret, or, preferred, a certificate whose
//! private key signs a short client assertion (PS256, `x5t#S256`). The token is cached and
//! renewed before it runs out; a backend that gets a 401 calls [`TokenClient::forget`] and asks
//! again once. Facts: reference/graph.md §1.1–§1.2.
//!
//! Neither the secret, the key nor a token ever appears in an error or a log line.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest as _;

use super::MailboxError;
use crate::exit::Exit;
use crate::http::{self, Backoff};

/// `client_assertion_type` of a signed JWT (RFC 7523).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion (MSAL uses 600 s).
const ASSERTION_SECS: i64 = 600;
/// Longest wait honoured for a token endpoint's `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The largest token answer read.
const MAX_BODY: http::BodyCap = http::BodyCap::fixed("OAuth2 token endpoint", 1 << 20);

/// Tokens this process got from the token endpoint (first and renewed), for the metrics.
static TOKENS_FETCHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many mailbox tokens this process has fetched so far.
pub fn tokens_fetched() -> u64 {
    TOKENS_FETCHED.load(std::sync::atomic::Ordering::Relaxed)
}

/// How the app proves who it is.
pub enum ClientAuth {
    /// A client secret (a bearer string: prefer a certificate).
    Secret(SecretString),
    /// A certificate registered on the app, and its private key.
    Certificate(CertificateKey),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("Secret(<redacted>)"),
            ClientAuth::Certificate(c) => write!(f, "Certificate(x5t#S256={})", c.x5t_s256),
        }
    }
}

/// The private key that signs assertions, and the thumbprint of its certificate.
pub struct CertificateKey {
    key: jsonwebtoken::EncodingKey,
    /// base64url (with `=` padding, as MSAL sends it) of SHA-256 over the certificate's DER.
    pub x5t_s256: String,
    /// The certificate's end of validity (Unix time), when it could be read.
    pub not_after: Option<i64>,
}

/// How long before its end a certificate is warned about (log, metrics, site check).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The commands that turn a PKCS#12 file (what the Azure portal and Key Vault hand out) into
/// the two PEM files the configuration takes.
pub const PFX_HINT: &str = "convert a PKCS#12 (.pfx/.p12) file into the two PEM files: \
    openssl pkcs12 -in app.pfx -clcerts -nokeys -out graph.crt; \
    openssl pkcs12 -in app.pfx -nocerts -nodes -out graph.key; \
    then chown them to the service account and chmod 600 both";

impl CertificateKey {
    /// From a PEM certificate (the first `CERTIFICATE` block) and a PEM RSA private key (PKCS#1
    /// or PKCS#8), at time `now`. Errors name what is wrong and how to fix it, never the key's
    /// content. An expired certificate is refused (Entra would refuse every assertion).
    pub fn from_pem(certificate: &str, private_key: &str, now: i64) -> Result<Self, String> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        let der = CertificateDer::from_pem_slice(certificate.as_bytes()).map_err(|e| {
            format!("the certificate is not a PEM `BEGIN CERTIFICATE` block ({e}); {PFX_HINT}")
        })?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key.as_bytes())
            .map_err(|_| key_problem(private_key))?;
        let not_after = x509_parser::parse_x509_certificate(der.as_ref())
            .ok()
            .map(|(_, c)| c.validity().not_after.timestamp());
        if let Some(end) = not_after
            && end <= now
        {
            return Err(format!(
                "the certificate expired on {}: create a new one, upload its public part to the app registration (Certificates & secrets), and replace the files mailbox.graph.certificate and private_key point to (the watcher reads them again at its next sign-in)",
                day(end)
            ));
        }
        Ok(CertificateKey {
            key,
            x5t_s256: thumbprint_s256(der.as_ref()),
            not_after,
        })
    }

    /// Days left before the certificate's end (negative once past), when known.
    pub fn days_left(&self, now: i64) -> Option<i64> {
        self.not_after.map(|end| (end - now).div_euclid(86_400))
    }
}

/// Why a private key cannot sign, and the command that fixes it.
fn key_problem(pem: &str) -> String {
    if pem.contains("BEGIN ENCRYPTED PRIVATE KEY") || pem.contains("Proc-Type: 4,ENCRYPTED") {
        "the private key is encrypted with a pass phrase, which the watcher cannot type: store it \
         unencrypted in a file only the service account can read (openssl pkey -in encrypted.key \
         -out graph.key, then chmod 600 graph.key), or keep it in Vault"
            .into()
    } else if pem.contains("BEGIN EC PRIVATE KEY") || pem.contains("BEGIN OPENSSH PRIVATE KEY") {
        "the private key is not RSA: Entra's client assertions are signed with PS256, which needs \
         an RSA key (openssl req -x509 -newkey rsa:3072 -nodes -keyout graph.key -out graph.crt \
         -days 365 -subj /CN=pam-approval)"
            .into()
    } else {
        format!(
            "the private key is not a PEM RSA key (`BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`); {PFX_HINT}"
        )
    }
}

/// A Unix time as its UTC day.
fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// The end of validity of the certificate this process signs with (Unix time, 0: none), for
/// the metrics and the site check.
static CERTIFICATE_NOT_AFTER: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The end of validity of the mailbox certificate in use, when one is.
pub fn certificate_not_after() -> Option<i64> {
    match CERTIFICATE_NOT_AFTER.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        t => Some(t),
    }
}

/// Record the certificate in use, and warn when its end is near.
fn note_certificate(c: &CertificateKey, now: i64) {
    if let Some(end) = c.not_after {
        CERTIFICATE_NOT_AFTER.store(end, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(days) = c.days_left(now)
        && days < EXPIRY_WARNING_DAYS
    {
        log::warn!(
            "the mailbox certificate (x5t#S256 {}) expires in {days} day(s), on {}: create a new one, upload it to the app registration and replace the files (no restart needed)",
            c.x5t_s256,
            c.not_after.map(day).unwrap_or_default()
        );
    }
}

/// Where a certificate and its key are read again from, so that a renewed pair is used
/// without a restart: local references (`file:`, `cmd:`; a systemd credential is a copy made
/// at start, and a `vault:` reference is read at start only).
pub struct CertificateSource {
    pub certificate: crate::secret::SecretRef,
    pub private_key: crate::secret::SecretRef,
}

impl CertificateSource {
    /// Whether these references can be read again by this process.
    pub fn rereadable(&self) -> bool {
        use crate::secret::SecretRef;
        let local = |r: &SecretRef| matches!(r, SecretRef::File(_) | SecretRef::Cmd(_));
        local(&self.certificate) && local(&self.private_key)
    }
}

/// A hash of a certificate and key pair as read (to notice a renewal without keeping the key).
pub fn pair_digest(certificate: &str, private_key: &str) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(certificate.as_bytes());
    h.update([0u8]);
    h.update(private_key.as_bytes());
    h.finalize().into()
}

/// `x5t#S256` of a DER certificate: base64url of its SHA-256, padded as MSAL pads it.
pub fn thumbprint_s256(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(sha2::Sha256::digest(der))
}

/// Where and as whom tokens are asked for.
#[derive(Debug)]
pub struct TokenRequest {
    /// `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token` (or a national cloud's).
    pub token_url: String,
    pub client_id: String,
    /// `https://graph.microsoft.com/.default`
    pub scope: String,
    pub auth: ClientAuth,
}

/// Fetches and caches app-only tokens.
pub struct TokenClient {
    http: reqwest::Client,
    req: TokenRequest,
    /// The credential in use: `req.auth` until a renewed certificate replaces it.
    auth: std::sync::RwLock<std::sync::Arc<ClientAuth>>,
    /// Where a renewed certificate is read from before each token request, and the contents
    /// last seen there (a hash: the key itself is not kept twice).
    source: Option<(CertificateSource, tokio::sync::Mutex<[u8; 32]>)>,
    backoff: Backoff,
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenClient")
            .field("token_url", &self.req.token_url)
            .field("client_id", &self.req.client_id)
            .field("auth", &*self.current())
            .finish_non_exhaustive()
    }
}

/// An answer of the token endpoint.
#[derive(Debug, serde::Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

impl TokenClient {
    pub fn new(http: reqwest::Client, mut req: TokenRequest, backoff: Backoff) -> Self {
        if let ClientAuth::Certificate(c) = &req.auth {
            note_certificate(c, chrono::Utc::now().timestamp());
        }
        let auth = std::mem::replace(&mut req.auth, ClientAuth::Secret(SecretString::from("")));
        TokenClient {
            http,
            req,
            auth: std::sync::RwLock::new(std::sync::Arc::new(auth)),
            source: None,
            backoff,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Read the certificate and key again from `source` before each token request, and sign
    /// with a renewed pair from then on (no restart). `seen` is the hash of the pair in use.
    pub fn reread_from(mut self, source: CertificateSource, seen: [u8; 32]) -> Self {
        if source.rereadable() {
            self.source = Some((source, tokio::sync::Mutex::new(seen)));
        }
        self
    }

    /// The credential in use.
    fn current(&self) -> std::sync::Arc<ClientAuth> {
        self.auth.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A renewed certificate at the source replaces the one in use; one that does not load is
    /// logged and the one in use is kept (the token endpoint has the last word).
    async fn pick_up_renewal(&self) {
        let Some((src, seen)) = &self.source else {
            return;
        };
        let mut seen = seen.lock().await;
        let local = match crate::secret::Resolver::new(None) {
            Ok(r) => r,
            Err(_) => return,
        };
        let (cert, key) = match (
            local.resolve(&src.certificate).await,
            local.resolve(&src.private_key).await,
        ) {
            (Ok(c), Ok(k)) => (c, zeroize::Zeroizing::new(k)),
            (Err(e), _) | (_, Err(e)) => {
                log::warn!("the mailbox certificate could not be read again: {e}");
                return;
            }
        };
        let digest = pair_digest(cert.expose_secret(), key.expose_secret());
        if digest == *seen {
            return;
        }
        let now = chrono::Utc::now().timestamp();
        match CertificateKey::from_pem(cert.expose_secret(), key.expose_secret(), now) {
            Ok(c) => {
                log::info!(
                    "the mailbox certificate was renewed: signing with x5t#S256 {} from now on{}",
                    c.x5t_s256,
                    c.not_after
                        .map(|t| format!(", valid until {}", day(t)))
                        .unwrap_or_default()
                );
                note_certificate(&c, now);
                *self.auth.write().unwrap_or_else(|p| p.into_inner()) =
                    std::sync::Arc::new(ClientAuth::Certificate(c));
                *seen = digest;
            }
            Err(m) => log::warn!(
                "the mailbox certificate files changed but do not load ({m}); the certificate in use is kept"
            ),
        }
    }

    /// A valid token: the cached one, or a new one when none is cached or it is close to
    /// running out (renewed when less than a tenth of its life, at most five minutes, is left).
    pub async fn token(&self) -> Result<SecretString, MailboxError> {
        let mut cached = self.cached.lock().await;
        if let Some((t, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(t.clone());
        }
        let (token, life) = self.fetch().await?;
        TOKENS_FETCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let margin = (life / 10).min(Duration::from_secs(300));
        *cached = Some((token.clone(), Instant::now() + life - margin));
        Ok(token)
    }

    /// Drop the cached token (after a 401), so that the next [`Self::token`] asks anew.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    /// The signed client assertion for one token request.
    pub fn assertion(&self, cert: &CertificateKey, now: i64) -> Result<String, MailboxError> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.x5t_s256 = Some(cert.x5t_s256.clone());
        let mut jti = [0u8; 16];
        rand::Rng::fill(&mut rand::rng(), &mut jti);
        let jti = hex::encode(jti);
        let claims = serde_json::json!({
            "aud": self.req.token_url,
            "iss": self.req.client_id,
            "sub": self.req.client_id,
            "jti": format!("{}-{}-{}-{}-{}", &jti[..8], &jti[8..12], &jti[12..16], &jti[16..20], &jti[20..]),
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_SECS,
        });
        jsonwebtoken::encode(&header, &claims, &cert.key)
            .map_err(|e| MailboxError::Config(format!("cannot sign the client assertion: {e}")))
    }

    async fn fetch(&self) -> Result<(SecretString, Duration), MailboxError> {
        self.pick_up_renewal().await;
        let mut attempt = 0;
        loop {
            match self.fetch_once().await {
                Err(Fetch::Retry(e, after)) if attempt < self.backoff.retries => {
                    let wait = after
                        .map(|a| a.min(MAX_RETRY_AFTER))
                        .unwrap_or_else(|| self.backoff.delay(attempt + 1));
                    log::debug!("token request: {e}; again in {} ms", wait.as_millis());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(Fetch::Retry(e, _) | Fetch::Fail(e)) => return Err(e),
                Ok(t) => return Ok(t),
            }
        }
    }

    async fn fetch_once(&self) -> Result<(SecretString, Duration), Fetch> {
        let r = &self.req;
        let assertion;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &r.client_id),
            ("scope", &r.scope),
        ];
        let auth = self.current();
        match &*auth {
            ClientAuth::Secret(s) => form.push(("client_secret", s.expose_secret())),
            ClientAuth::Certificate(c) => {
                assertion = self
                    .assertion(c, chrono::Utc::now().timestamp())
                    .map_err(Fetch::Fail)?;
                form.push(("client_assertion_type", ASSERTION_TYPE));
                form.push(("client_assertion", &assertion));
            }
        }
        let body = zeroize::Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
        let unreachable = |detail: String| MailboxError::Unreachable {
            url: r.token_url.clone(),
            detail,
        };
        let resp = self
            .http
            .post(&r.token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                let e = if e.is_timeout() {
                    MailboxError::Timeout {
                        url: r.token_url.clone(),
                        op: "the token request".into(),
                        secs: 0,
                    }
                } else {
                    unreachable(http::error_chain(&e))
                };
                Fetch::Retry(e, None)
            })?;
        let status = resp.status().as_u16();
        let retry_after = http::retry_after(resp.headers());
        let text = http::read_capped_text(resp, MAX_BODY)
            .await
            .map_err(|e| match e {
                http::BodyError::Transport(t) => {
                    Fetch::Retry(unreachable(http::error_chain(&t)), None)
                }
                too_large => Fetch::Fail(MailboxError::TooLarge {
                    op: "the token request".into(),
                    detail: too_large.to_string(),
                }),
            })?;
        let answer: Option<TokenAnswer> = serde_json::from_str(&text).ok();
        if status == 200 {
            let Some(TokenAnswer {
                access_token: Some(token),
                expires_in,
                ..
            }) = answer
            else {
                return Err(Fetch::Fail(MailboxError::Protocol {
                    op: "the token request".into(),
                    detail: "200 without an access_token".into(),
                }));
            };
            let life = Duration::from_secs(expires_in.unwrap_or(300).clamp(1, 86_400));
            return Ok((SecretString::from(token), life));
        }
        if status == 429 || http::status_is_transient(status) {
            let e = MailboxError::Busy {
                op: format!("the token request (HTTP {status})"),
                attempts: self.backoff.retries + 1,
            };
            return Err(Fetch::Retry(e, retry_after));
        }
        Err(Fetch::Fail(refusal(
            &r.token_url,
            &r.client_id,
            status,
            answer.as_ref(),
        )))
    }
}

enum Fetch {
    /// Transient: try again (after the server's `Retry-After` when it gave one).
    Retry(MailboxError, Option<Duration>),
    Fail(MailboxError),
}

/// A refusal of the token endpoint, named by its AADSTS code (reference/graph.md §1; the codes
/// and their meanings are listed in pam-sim's ASSUMPTIONS.md, G1).
fn refusal(url: &str, client_id: &str, status: u16, a: Option<&TokenAnswer>) -> MailboxError {
    let code = a.and_then(|a| a.error_codes.first().copied());
    let error = a.and_then(|a| a.error.clone()).unwrap_or_default();
    // The first line of the description: Entra appends trace and correlation ids after it.
    let said = a
        .and_then(|a| a.error_description.as_deref())
        .map(|d| {
            let first = d.lines().next().unwrap_or("");
            first
                .split(" Trace ID:")
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("HTTP {status} {error}"));
    let said = crate::text::printable(&said);
    // (printable bounds the text to 120 characters: Entra's texts are long, the code leads.)
    let (exit, hint) = match code {
        Some(90002) => (
            Exit::Config,
            "the tenant is unknown: check mailbox.graph.tenant_id (the directory id or a verified domain) and mailbox.graph.authority",
        ),
        Some(700016) => (
            Exit::Config,
            "the app is not in this tenant: check mailbox.graph.client_id and tenant_id, and that an admin consented to the app",
        ),
        Some(7000215) | Some(7000222) => (
            Exit::NoPerm,
            "the client secret is wrong or expired: create a new one in the app registration (or, better, use a certificate)",
        ),
        Some(700027) => (
            Exit::NoPerm,
            "the certificate is not registered on the app, or the key does not belong to it: upload the certificate (public part) to the app registration; a pair renewed there is picked up from the files at the next sign-in",
        ),
        Some(700024) => (
            Exit::NoPerm,
            "the client assertion is outside its valid time: check this host's clock",
        ),
        Some(1002012) | Some(70011) => (
            Exit::Config,
            "the scope is not valid: check mailbox.url (the Graph base of the cloud the app is registered in)",
        ),
        _ if error == "invalid_client" || status == 401 => (
            Exit::NoPerm,
            "the token endpoint refused the app's credentials: check mailbox.graph.client_id and its secret or certificate",
        ),
        _ => (
            Exit::Config,
            "check mailbox.graph (tenant_id, client_id, authority) against the app registration",
        ),
    };
    MailboxError::TokenRefused {
        url: url.to_string(),
        client_id: client_id.to_string(),
        detail: said,
        exit,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (certificate PEM, private key PEM, certificate DER, public key PEM)
    fn test_key() -> (String, String, Vec<u8>, String) {
        let keys = pam_sim::remote_access::keys::generate().expect("rsa key");
        let kp = rcgen::KeyPair::from_pem_and_sign_algo(&keys.pkcs8_pem, &rcgen::PKCS_RSA_SHA256)
            .expect("key pair");
        let cert = rcgen::CertificateParams::new(vec!["pam-approval-test".into()])
            .expect("params")
            .self_signed(&kp)
            .expect("cert");
        (
            cert.pem(),
            keys.pkcs1_pem,
            cert.der().to_vec(),
            keys.public_pem,
        )
    }

    #[test]
    fn the_assertion_is_ps256_with_the_certificate_thumbprint_and_the_token_url_as_audience() {
        let (cert_pem, key_pem, der, public_pem) = test_key();
        let key = CertificateKey::from_pem(&cert_pem, &key_pem, chrono::Utc::now().timestamp())
            .expect("key");
        let expected = base64::engine::general_purpose::URL_SAFE.encode(sha2::Sha256::digest(&der));
        assert_eq!(key.x5t_s256, expected);
        assert!(key.x5t_s256.ends_with('='), "padded as MSAL sends it");
        let url = "https://login.example.test/tenant-1/oauth2/v2.0/token";
        let client = TokenClient::new(
            reqwest::Client::new(),
            TokenRequest {
                token_url: url.into(),
                client_id: "11111111-2222-3333-4444-555555555555".into(),
                scope: "https://graph.microsoft.com/.default".into(),
                auth: ClientAuth::Secret(SecretString::from("unused")),
            },
            Backoff::new(0, 1),
        );
        let jwt = client.assertion(&key, 1_800_000_000).expect("signed");
        let header = jsonwebtoken::decode_header(&jwt).expect("header");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.x5t_s256.as_deref(), Some(expected.as_str()));
        // The signature verifies with the certificate's public key.
        let dk = jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()).expect("public");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::PS256);
        v.set_audience(&[url]);
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &dk, &v).expect("verifies");
        let c = data.claims;
        assert_eq!(c["iss"], c["sub"]);
        assert_eq!(c["sub"], "11111111-2222-3333-4444-555555555555");
        assert_eq!(c["exp"].as_i64(), Some(1_800_000_000 + 600));
        assert_eq!(c["jti"].as_str().map(str::len), Some(36));
        // A fresh jti each time.
        let again = client.assertion(&key, 1_800_000_000).expect("signed");
        let jti2 = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&again)
            .expect("decode")
            .claims["jti"]
            .clone();
        assert_ne!(c["jti"], jti2);
    }

    #[test]
    fn bad_pem_is_named_without_showing_it() {
        let (cert_pem, key_pem, _, _) = test_key();
        let e = CertificateKey::from_pem("not a certificate", &key_pem, 0)
            .err()
            .expect("refused");
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
        let e = CertificateKey::from_pem(
            &cert_pem,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
            0,
        )
        .err()
        .expect("refused");
        assert!(e.contains("RSA key") && !e.contains("c2VjcmV0"), "{e}");
    }

    /// A certificate of the given validity window (days from now), PEM, with `test_key`'s key.
    fn cert_valid(key_pkcs8: &str, from_days: i64, to_days: i64) -> String {
        let kp = rcgen::KeyPair::from_pem_and_sign_algo(key_pkcs8, &rcgen::PKCS_RSA_SHA256)
            .expect("key pair");
        let mut p =
            rcgen::CertificateParams::new(vec!["pam-approval-test".into()]).expect("params");
        let day = |d: i64| {
            let t = chrono::Utc::now() + chrono::Duration::days(d);
            use chrono::Datelike as _;
            rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
        };
        p.not_before = day(from_days);
        p.not_after = day(to_days);
        p.self_signed(&kp).expect("cert").pem()
    }

    /// An expired certificate is refused at load with the date and the way out; one near its
    /// end loads and says how many days are left; a key Entra cannot use names the command
    /// that fixes it.
    #[test]
    fn certificate_end_and_key_forms_are_named_with_the_fix() {
        let keys = pam_sim::remote_access::keys::generate().expect("rsa key");
        let now = chrono::Utc::now().timestamp();
        let expired = cert_valid(&keys.pkcs8_pem, -400, -2);
        let e = CertificateKey::from_pem(&expired, &keys.pkcs1_pem, now)
            .err()
            .expect("an expired certificate is refused");
        assert!(
            e.contains("expired on") && e.contains("replace the files"),
            "{e}"
        );
        let soon = cert_valid(&keys.pkcs8_pem, -300, 10);
        let c = CertificateKey::from_pem(&soon, &keys.pkcs1_pem, now).expect("still valid");
        let left = c.days_left(now).expect("its end is read");
        assert!((8..=10).contains(&left), "{left}");

        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = CertificateKey::from_pem(&soon, encrypted, now)
            .err()
            .expect("refused");
        assert!(
            e.contains("pass phrase") && e.contains("openssl pkey"),
            "{e}"
        );
        let ec = "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
        let e = CertificateKey::from_pem(&soon, ec, now)
            .err()
            .expect("refused");
        assert!(e.contains("not RSA") && e.contains("rsa:3072"), "{e}");
        let e = CertificateKey::from_pem("\u{30}\u{82}binary", &keys.pkcs1_pem, now)
            .err()
            .expect("refused");
        assert!(e.contains("openssl pkcs12"), "{e}");
    }

    /// A renewed pair in the files the references name is used from the next token request on,
    /// without a restart; files that change into something that does not load leave the pair in
    /// use in place.
    #[tokio::test]
    async fn a_renewed_certificate_is_picked_up_from_its_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tmp");
        let (crt, key) = (dir.path().join("graph.crt"), dir.path().join("graph.key"));
        let write = |p: &std::path::Path, text: &str| {
            std::fs::write(p, text).expect("write");
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).expect("mode");
        };
        let now = chrono::Utc::now().timestamp();
        let old = pam_sim::remote_access::keys::generate().expect("rsa key");
        let old_crt = cert_valid(&old.pkcs8_pem, -300, 5);
        write(&crt, &old_crt);
        write(&key, &old.pkcs1_pem);
        let first = CertificateKey::from_pem(&old_crt, &old.pkcs1_pem, now).expect("loads");
        let first_x5t = first.x5t_s256.clone();
        let client = TokenClient::new(
            reqwest::Client::new(),
            TokenRequest {
                token_url: "https://login.example.test/t/oauth2/v2.0/token".into(),
                client_id: "app".into(),
                scope: "https://graph.example.test/.default".into(),
                auth: ClientAuth::Certificate(first),
            },
            Backoff::new(0, 1),
        )
        .reread_from(
            CertificateSource {
                certificate: crate::secret::SecretRef::File(crt.clone()),
                private_key: crate::secret::SecretRef::File(key.clone()),
            },
            pair_digest(&old_crt, &old.pkcs1_pem),
        );
        let x5t = |c: &TokenClient| match &*c.current() {
            ClientAuth::Certificate(k) => k.x5t_s256.clone(),
            ClientAuth::Secret(_) => String::new(),
        };
        client.pick_up_renewal().await;
        assert_eq!(x5t(&client), first_x5t, "unchanged files: the same pair");

        // Renewed: a new key and certificate valid for a year.
        let new = pam_sim::remote_access::keys::generate().expect("rsa key");
        let new_crt = cert_valid(&new.pkcs8_pem, -1, 365);
        write(&crt, &new_crt);
        write(&key, &new.pkcs1_pem);
        client.pick_up_renewal().await;
        let renewed = x5t(&client);
        assert_ne!(renewed, first_x5t, "the renewed pair signs from now on");
        assert!(certificate_not_after().is_some_and(|t| t > now + 300 * 86_400));

        // Half-written (a key that does not load): the renewed pair stays in use.
        write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        client.pick_up_renewal().await;
        assert_eq!(x5t(&client), renewed);
    }

    #[test]
    fn refusals_are_named_by_their_aadsts_code() {
        let answer = |code: u64, error: &str, text: &str| TokenAnswer {
            access_token: None,
            expires_in: None,
            error: Some(error.into()),
            error_description: Some(format!(
                "AADSTS{code}: {text}\r\nTrace ID: 1\r\nCorrelation ID: 2"
            )),
            error_codes: vec![code],
        };
        use crate::exit::Classify as _;
        for (code, error, status, exit, hint_has) in [
            (90002, "invalid_request", 400, Exit::Config, "tenant_id"),
            (700016, "unauthorized_client", 400, Exit::Config, "consent"),
            (
                7000215,
                "invalid_client",
                401,
                Exit::NoPerm,
                "client secret",
            ),
            (700027, "invalid_client", 401, Exit::NoPerm, "certificate"),
            (700024, "invalid_client", 400, Exit::NoPerm, "clock"),
        ] {
            let e = refusal(
                "https://t/x",
                "app",
                status,
                Some(&answer(code, error, "words")),
            );
            assert_eq!(e.exit(), exit, "{code}");
            assert!(
                e.hint().unwrap_or_default().contains(hint_has),
                "{code}: {:?}",
                e.hint()
            );
            let shown = e.to_string();
            assert!(shown.contains(&format!("AADSTS{code}: words")), "{shown}");
            assert!(!shown.contains("Trace ID"), "{shown}");
        }
    }
}

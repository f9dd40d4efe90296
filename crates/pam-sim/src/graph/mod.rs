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

pub mod login;

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

/// Whether a path is the Graph stand-in's: `/{tenant}/oauth2/v2.0/…` or
/// `/{tenant}/v2.0/.well-known/openid-configuration`.
pub fn serves(path_lower: &str) -> bool {
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
}

#[derive(Default)]
struct Inner {
    tenant_id: String,
    lifetime: i64,
    apps: Vec<RegisteredApp>,
    /// token -> (client id, expiry in ms)
    tokens: HashMap<String, (String, i64)>,
    stats: Stats,
}

/// Counts of token requests.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub granted_secret: u64,
    pub granted_certificate: u64,
    /// AADSTS code -> count
    pub refused: std::collections::BTreeMap<u64, u64>,
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
            });
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
                ..Inner::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
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
}

// ---------------------------------------------------------------- HTTP

pub async fn handle(state: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let base = state.host.base_url.get().cloned().unwrap_or_default();
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
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
                    resource: "https://graph.microsoft.com",
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

pub fn admin_routes() -> Router<Arc<Shared>> {
    Router::new()
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
}

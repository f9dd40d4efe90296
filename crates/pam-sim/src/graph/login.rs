//! The Microsoft Entra ID token endpoint for app-only tokens, `POST /{tenant}/oauth2/v2.0/token`
//! (client credentials with a client secret or a certificate assertion), and the discovery
//! document MSAL reads first, `GET /{tenant}/v2.0/.well-known/openid-configuration`
//! (reference/graph.md §1.1, §1.2, §6.3). The AADSTS codes and texts of refusals are guesses
//! from Entra's public error list: ASSUMPTIONS.md, G1–G4.

use serde_json::{Value, json};

use crate::remote_access::token::parse_form;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A registered app as the token endpoint knows it.
pub struct App<'a> {
    pub client_id: &'a str,
    pub secret: Option<&'a str>,
    /// (`x5t#S256` of a registered certificate, its public key)
    pub certificates: &'a [(String, jsonwebtoken::DecodingKey)],
}

/// What the endpoint checks against.
pub struct Login<'a> {
    pub tenant_id: &'a str,
    pub apps: &'a [App<'a>],
    /// The scope's resources: `https://graph.microsoft.com` and the stand-in's own origin
    /// (tokens are asked for `<resource>/.default`).
    pub resources: &'a [&'a str],
    /// This endpoint's own URL (the assertion's audience).
    pub token_url: &'a str,
    pub now: i64,
}

/// A refusal in Entra's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub error: &'static str,
    pub code: u64,
    pub text: String,
}

impl Refusal {
    fn new(status: u16, error: &'static str, code: u64, text: impl Into<String>) -> Self {
        Refusal {
            status,
            error,
            code,
            text: text.into(),
        }
    }

    /// The body: `error`, `error_description` (AADSTS code, text, trace and correlation ids,
    /// timestamp), `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
    pub fn body(&self, now: i64) -> Value {
        let when = chrono::DateTime::from_timestamp(now, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
            .unwrap_or_default();
        let trace = "00000000-0000-0000-0000-0000pamsim00";
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {trace}\r\nTimestamp: {when}",
                self.code, self.text
            ),
            "error_codes": [self.code],
            "timestamp": when,
            "trace_id": trace,
            "correlation_id": trace,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        })
    }
}

/// Who got a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub client_id: String,
    /// `secret` or `certificate`
    pub with: &'static str,
}

/// Check one token request, in this order: tenant, grant type, client, scope, credential.
pub fn check(
    l: &Login<'_>,
    tenant: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Granted, Refusal> {
    if !tenant.eq_ignore_ascii_case(l.tenant_id) {
        return Err(Refusal::new(
            400,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    }
    let form = if content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        parse_form(body)
    } else {
        Vec::new()
    };
    let param = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match param("grant_type") {
        Some("client_credentials") => {}
        None => {
            return Err(Refusal::new(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            ));
        }
        Some(other) => {
            return Err(Refusal::new(
                400,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            ));
        }
    }
    let Some(client_id) = param("client_id") else {
        return Err(Refusal::new(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ));
    };
    let Some(app) = l
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    else {
        return Err(Refusal::new(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                l.tenant_id
            ),
        ));
    };
    let scope_ok = |s: &str| {
        l.resources
            .iter()
            .any(|r| s.eq_ignore_ascii_case(&format!("{}/.default", r.trim_end_matches('/'))))
    };
    match param("scope") {
        Some(s) if scope_ok(s) => {}
        other => {
            return Err(Refusal::new(
                400,
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                    other.unwrap_or("")
                ),
            ));
        }
    }
    match (
        param("client_secret"),
        param("client_assertion_type"),
        param("client_assertion"),
    ) {
        (Some(secret), None, None) => {
            if app.secret.is_some_and(|s| s == secret) {
                Ok(Granted {
                    client_id: app.client_id.to_string(),
                    with: "secret",
                })
            } else {
                Err(Refusal::new(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"
                        .to_string()
                        + app.client_id
                        + "'.",
                ))
            }
        }
        (None, Some(ASSERTION_TYPE), Some(assertion)) => {
            check_assertion(l, app, client_id, assertion).map(|_| Granted {
                client_id: app.client_id.to_string(),
                with: "certificate",
            })
        }
        (None, Some(other), _) if other != ASSERTION_TYPE => Err(Refusal::new(
            400,
            "invalid_request",
            50067,
            format!("Client assertion type '{other}' is not supported."),
        )),
        (None, None, Some(_)) => Err(Refusal::new(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_assertion_type'.",
        )),
        (None, _, None) => Err(Refusal::new(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        _ => Err(Refusal::new(
            400,
            "invalid_request",
            90023,
            "Only one client credential (a client secret or a client assertion) may be presented.",
        )),
    }
}

fn check_assertion(
    l: &Login<'_>,
    app: &App<'_>,
    client_id: &str,
    assertion: &str,
) -> Result<(), Refusal> {
    let malformed = || {
        Refusal::new(
            400,
            "invalid_client",
            50027,
            "JWT token is invalid or malformed.",
        )
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return Err(malformed());
    }
    let data =
        jsonwebtoken::dangerous::insecure_decode::<Value>(assertion).map_err(|_| malformed())?;
    let alg = data.header.alg;
    if !matches!(
        alg,
        jsonwebtoken::Algorithm::PS256 | jsonwebtoken::Algorithm::RS256
    ) {
        return Err(Refusal::new(
            400,
            "invalid_client",
            5002738,
            format!(
                "Invalid JWT token. '{alg:?}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256, PS256'"
            ),
        ));
    }
    let claims = data.claims;
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("iss") != Some(client_id) || s("sub") != Some(client_id) {
        return Err(Refusal::new(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ));
    }
    let not_registered = || {
        Refusal::new(
            401,
            "invalid_client",
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                data.header
                    .x5t_s256
                    .as_deref()
                    .or(data.header.x5t.as_deref())
                    .unwrap_or(""),
                app.client_id
            ),
        )
    };
    let Some(thumb) = data.header.x5t_s256.as_deref() else {
        return Err(not_registered());
    };
    let Some((_, key)) = app.certificates.iter().find(|(t, _)| t == thumb) else {
        return Err(not_registered());
    };
    let message = format!("{}.{}", parts[0], parts[1]);
    if !jsonwebtoken::crypto::verify(parts[2], message.as_bytes(), key, alg).unwrap_or(false) {
        return Err(Refusal::new(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !auds.iter().any(|a| a.eq_ignore_ascii_case(l.token_url)) {
        return Err(Refusal::new(
            400,
            "invalid_client",
            700212,
            format!(
                "Client assertion audience claim does not match the token endpoint '{}'.",
                l.token_url
            ),
        ));
    }
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims
        .get("nbf")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MIN);
    if exp.is_none_or(|e| e <= l.now) || nbf > l.now + 300 {
        return Err(Refusal::new(
            400,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    Ok(())
}

/// The discovery document MSAL reads before asking for a token.
pub fn openid_configuration(base: &str, tenant: &str) -> Value {
    json!({
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "issuer": format!("{base}/{tenant}/v2.0"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "tenant_region_scope": "EU",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "tenant-1";
    const URL: &str = "https://127.0.0.1:1/tenant-1/oauth2/v2.0/token";

    struct Fixture {
        enc: jsonwebtoken::EncodingKey,
        thumb: String,
        certs: Vec<(String, jsonwebtoken::DecodingKey)>,
    }

    fn fixture() -> Fixture {
        let g = crate::graph::generate_certificate("t").expect("cert");
        let thumb = crate::graph::thumbprint(&g.certificate_pem).expect("thumb");
        Fixture {
            enc: jsonwebtoken::EncodingKey::from_rsa_pem(g.private_key_pem.as_bytes())
                .expect("enc"),
            certs: vec![(
                thumb.clone(),
                jsonwebtoken::DecodingKey::from_rsa_pem(g.public_key_pem.as_bytes()).expect("dec"),
            )],
            thumb,
        }
    }

    fn assertion(f: &Fixture, alg: jsonwebtoken::Algorithm, edit: impl Fn(&mut Value)) -> String {
        let mut h = jsonwebtoken::Header::new(alg);
        h.x5t_s256 = Some(f.thumb.clone());
        let mut c = json!({"aud": URL, "iss": "app", "sub": "app", "jti": "j", "iat": 1000, "nbf": 1000, "exp": 1600});
        edit(&mut c);
        jsonwebtoken::encode(&h, &c, &f.enc).expect("sign")
    }

    fn ask(f: &Fixture, tenant: &str, form: &[(&str, &str)]) -> Result<Granted, Refusal> {
        let apps = [App {
            client_id: "app",
            secret: Some("pw"),
            certificates: &f.certs,
        }];
        let body = url_encode(form);
        check(
            &Login {
                tenant_id: TENANT,
                apps: &apps,
                resources: &["https://graph.microsoft.com"],
                token_url: URL,
                now: 1200,
            },
            tenant,
            "application/x-www-form-urlencoded",
            body.as_bytes(),
        )
    }

    fn url_encode(form: &[(&str, &str)]) -> String {
        form.iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn with_assertion(a: &str) -> Vec<(&'static str, &str)> {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", a),
        ]
    }

    #[test]
    fn each_check_refuses_with_its_code() {
        let f = fixture();
        let good = assertion(&f, jsonwebtoken::Algorithm::PS256, |_| {});
        assert_eq!(
            ask(&f, "TENANT-1", &with_assertion(&good))
                .expect("ok")
                .with,
            "certificate"
        );
        let code = |r: Result<Granted, Refusal>| r.expect_err("refused").code;
        assert_eq!(code(ask(&f, "other", &with_assertion(&good))), 90002);
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"iss": "app", "sub": "app"}),
            &jsonwebtoken::EncodingKey::from_secret(b"k"),
        )
        .expect("hs");
        assert_eq!(code(ask(&f, TENANT, &with_assertion(&hs))), 5002738);
        let iss = assertion(&f, jsonwebtoken::Algorithm::PS256, |c| {
            c["iss"] = json!("other")
        });
        assert_eq!(code(ask(&f, TENANT, &with_assertion(&iss))), 700021);
        let aud = assertion(&f, jsonwebtoken::Algorithm::PS256, |c| {
            c["aud"] = json!("https://login.example/x")
        });
        assert_eq!(code(ask(&f, TENANT, &with_assertion(&aud))), 700212);
        let old = assertion(&f, jsonwebtoken::Algorithm::PS256, |c| {
            c["exp"] = json!(1100)
        });
        assert_eq!(code(ask(&f, TENANT, &with_assertion(&old))), 700024);
        let mut tampered = good.clone();
        tampered.push('A');
        assert_eq!(code(ask(&f, TENANT, &with_assertion(&tampered))), 700027);
        let mut scope = with_assertion(&good);
        scope[2].1 = "https://graph.microsoft.com/Mail.Read";
        assert_eq!(code(ask(&f, TENANT, &scope)), 1002012);
        let mut unknown = with_assertion(&good);
        unknown[1].1 = "someone";
        assert_eq!(code(ask(&f, TENANT, &unknown)), 700016);
        let secret = |pw: &'static str| {
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "app"),
                ("scope", "https://graph.microsoft.com/.default"),
                ("client_secret", pw),
            ]
        };
        assert_eq!(ask(&f, TENANT, &secret("pw")).expect("ok").with, "secret");
        assert_eq!(code(ask(&f, TENANT, &secret("nope"))), 7000215);
        let mut both = secret("pw");
        both.extend(with_assertion(&good).into_iter().skip(3));
        assert_eq!(code(ask(&f, TENANT, &both)), 90023);
    }

    #[test]
    fn a_refusal_body_has_entras_fields() {
        let r = Refusal::new(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
        let b = r.body(1_800_000_000);
        assert_eq!(b["error"], "invalid_client");
        assert_eq!(b["error_codes"], json!([7000215]));
        let d = b["error_description"].as_str().expect("text");
        assert!(
            d.starts_with("AADSTS7000215: Invalid client secret provided."),
            "{d}"
        );
        assert!(
            d.contains("Trace ID:") && d.contains("Correlation ID:"),
            "{d}"
        );
    }
}

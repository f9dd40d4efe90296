//! The token endpoint `POST /auth/realms/serviceaccounts/protocol/openid-connect/token`,
//! checking a private-key JWT client assertion in Keycloak's order with Keycloak's texts
//! (reference §4.4 and §10.1). Texts the reference does not give are in ASSUMPTIONS.md.

use serde_json::Value;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const TOKEN_PATH: &str = "/auth/realms/serviceaccounts/protocol/openid-connect/token";
pub const REALM_PATH: &str = "/auth/realms/serviceaccounts";
const JWT_FAILED: &str = "Client authentication with signed JWT failed: ";

/// What the endpoint needs to know.
pub struct TokenCheck<'a> {
    pub expected_client_id: &'a str,
    pub public_key: Option<&'a jsonwebtoken::DecodingKey>,
    /// The realm issuer URL (the audience), e.g. `https://127.0.0.1:8443/auth/realms/serviceaccounts`.
    pub issuer: &'a str,
    pub now: i64,
    /// Older Keycloak: `unauthorized_client` and the old texts.
    pub legacy: bool,
    /// Secret-type service account (P1): client id and secret, when configured.
    pub secret_client: Option<(&'a str, &'a str)>,
}

/// A refusal: HTTP status, OAuth `error`, `error_description`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

/// What passed: the client id and, for an assertion, its `jti` and `exp` (for the replay cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub client_id: String,
    pub jti: Option<(String, i64)>,
}

/// Parse `application/x-www-form-urlencoded`.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn jwt_failed(c: &TokenCheck<'_>, why: &str) -> Refusal {
    Refusal {
        status: 400,
        error: if c.legacy {
            "unauthorized_client"
        } else {
            "invalid_client"
        },
        description: format!("{JWT_FAILED}{why}"),
    }
}

/// Check a token request. Order follows Keycloak: grant type, form, assertion type, assertion,
/// parse, subject/issuer, client, client_id parameter, signature, audience, expiry, jti.
pub fn check(c: &TokenCheck<'_>, content_type: &str, body: &[u8]) -> Result<Accepted, Refusal> {
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
        None => {
            return Err(Refusal {
                status: 400,
                error: "invalid_request",
                description: "Missing form parameter: grant_type".into(),
            });
        }
        Some("client_credentials") => {}
        Some(_) => {
            return Err(Refusal {
                status: 400,
                error: "unsupported_grant_type",
                description: "Unsupported grant_type".into(),
            });
        }
    }
    let invalid_client = |desc: String| Refusal {
        status: 400,
        error: "invalid_client",
        description: desc,
    };
    let unknown_client = || {
        if c.legacy {
            Refusal {
                status: 400,
                error: "unauthorized_client",
                description: "INVALID_CREDENTIALS: Invalid client credentials".into(),
            }
        } else {
            Refusal {
                status: 401,
                error: "invalid_client",
                description: "Invalid client or Invalid client credentials".into(),
            }
        }
    };
    // Secret-type service account (P1): client_id + client_secret, no assertion type.
    if param("client_assertion_type").is_none()
        && let (Some(id), Some(secret), Some((want_id, want_secret))) =
            (param("client_id"), param("client_secret"), c.secret_client)
    {
        if id == want_id && secret == want_secret {
            return Ok(Accepted {
                client_id: id.to_string(),
                jti: None,
            });
        }
        return Err(unknown_client());
    }
    match param("client_assertion_type") {
        None => {
            return Err(invalid_client(
                "Parameter client_assertion_type is missing".into(),
            ));
        }
        Some(ASSERTION_TYPE) => {}
        Some(other) => {
            return Err(invalid_client(format!(
                "Parameter client_assertion_type has value '{other}' but expected is '{ASSERTION_TYPE}'"
            )));
        }
    }
    let Some(assertion) = param("client_assertion") else {
        return Err(invalid_client("client_assertion parameter missing".into()));
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    // Claims are read before the signature is checked, as Keycloak does (it needs `sub` to
    // find the client's key).
    let parsed = jsonwebtoken::dangerous::insecure_decode::<Value>(assertion)
        .ok()
        .filter(|d| parts.len() == 3 && d.claims.is_object());
    let Some(data) = parsed else {
        return Err(jwt_failed(c, "Parsing error"));
    };
    let claims = data.claims;
    let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
    let Some(sub) = s("sub") else {
        return Err(jwt_failed(
            c,
            "Can't identify client. Subject missing on JWT token",
        ));
    };
    if s("iss").as_deref() != Some(sub.as_str()) {
        return Err(jwt_failed(
            c,
            "Issuer mismatch. The issuer should match the subject",
        ));
    }
    if sub != c.expected_client_id {
        return Err(unknown_client());
    }
    if let Some(id) = param("client_id")
        && id != sub
    {
        return Err(jwt_failed(
            c,
            "client_id parameter does not match sub claim",
        ));
    }
    let Some(key) = c.public_key else {
        return Err(invalid_client("Unable to load public key".into()));
    };
    let alg_ok = data.header.alg == jsonwebtoken::Algorithm::RS256;
    let message = format!("{}.{}", parts[0], parts[1]);
    let sig_ok = alg_ok
        && jsonwebtoken::crypto::verify(
            parts[2],
            message.as_bytes(),
            key,
            jsonwebtoken::Algorithm::RS256,
        )
        .unwrap_or(false);
    if !sig_ok {
        return Err(jwt_failed(c, "Signature on JWT token failed validation"));
    }
    let token_url = format!("{}{}", c.issuer, TOKEN_PATH.trim_start_matches(REALM_PATH));
    let auds: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    if !auds.iter().any(|a| a == c.issuer || *a == token_url) {
        let shown = format!("[{}]", auds.join(", "));
        let why = if c.legacy {
            format!(
                "Token audience doesn't match domain. Realm issuer is '{}' but audience from token is '{shown}'",
                c.issuer
            )
        } else {
            format!(
                "Token audience doesn't match domain. Expected audiences are any of [{}, {token_url}] but audience from token is '{shown}'",
                c.issuer
            )
        };
        return Err(jwt_failed(c, &why));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if exp <= c.now || nbf > c.now {
        return Err(jwt_failed(c, "Token is not active"));
    }
    let Some(jti) = s("jti").filter(|j| !j.is_empty()) else {
        return Err(jwt_failed(c, "Missing ID on the token"));
    };
    Ok(Accepted {
        client_id: sub,
        jti: Some((jti, exp)),
    })
}

/// The refusal for a replayed `jti` (checked against the stand-in's cache after [`check`]).
pub fn reuse(c: &TokenCheck<'_>) -> Refusal {
    jwt_failed(c, "Token reuse detected")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_decoded() {
        let f = parse_form(b"a=1&b=x%3Ay+z&c");
        assert_eq!(
            f,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x:y z".into()),
                ("c".into(), "".into())
            ]
        );
    }
}

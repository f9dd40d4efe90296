//! Stand-in: the CyberArk Identity token endpoint of a Privilege Cloud tenant,
//! `POST /oauth2/platformtoken` (reference/privilege-cloud.md §3; the path is matched without
//! regard to case, as psPAS spells it `/OAuth2/PlatformToken`).
//!
//! A client-credentials grant as a form (`grant_type`, `client_id`, `client_secret`) for a
//! service user of the PVWA stand-in ([`crate::pvwa::IdentityScenario`]) answers
//! `{"access_token", "token_type": "Bearer", "expires_in"}`; the token is a JWT with the claims
//! CyberArk's SDK reads. Refusals use the OAuth `error`/`error_description` shape. Only served
//! while the PVWA stand-in plays Privilege Cloud; a self-hosted PVWA has no Identity tenant.
//! Status codes the public material does not fix: ASSUMPTIONS.md, section Privilege Cloud.
//! The role reads are in [`crate::identity_roles`].

use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::host::Hosted;
use crate::pvwa::{PvwaMode, PvwaSim};

/// Whether a (lowercase) path is the token endpoint or a role read.
pub fn serves(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "/oauth2/platformtoken" | "/redrock/query" | "/roles/getrolemembers"
    )
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /oauth2/platformtoken`, `POST /Redrock/query`, `POST /Roles/GetRoleMembers`
pub async fn handle(state: Arc<Hosted<PvwaSim>>, req: Request) -> Response {
    if state.sim.mode() != PvwaMode::PrivilegeCloud {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let path = req.uri().path().to_ascii_lowercase();
    if path.trim_end_matches('/') != "/oauth2/platformtoken" {
        return crate::identity_roles::handle(state, req).await;
    }
    if req.method() != Method::POST {
        return oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "The token endpoint takes POST.",
        );
    }
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let Ok(body) = axum::body::to_bytes(req.into_body(), 64 * 1024).await else {
        return oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "The request is too large.",
        );
    };
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request must be application/x-www-form-urlencoded.",
        );
    }
    let mut grant = None;
    let mut client_id = None;
    let mut secret = None;
    for (k, v) in crate::remote_access::token::parse_form(&body) {
        match k.as_str() {
            "grant_type" => grant = Some(v),
            "client_id" => client_id = Some(v),
            "client_secret" => secret = Some(v),
            _ => {}
        }
    }
    match grant.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only client_credentials is supported.",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing.",
            );
        }
    }
    let (Some(client_id), Some(secret)) = (client_id, secret) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and client_secret are required.",
        );
    };
    match state
        .sim
        .issue_platform_token(&client_id, &secret, state.host.clock.now_ms())
    {
        Ok((token, life)) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": life})),
        )
            .into_response(),
        Err((status, "", text)) => (status, text.to_string()).into_response(),
        Err((status, error, text)) => oauth_error(status, error, text),
    }
}

//! Stand-in: CyberArk Remote Access (formerly Alero): token endpoint and v2-edge API.
//!
//! Not built yet: see the open issue that owns it. Answers 501 until then.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::server::SimState;

/// Lowercase path prefixes served by this stand-in.
pub const PREFIXES: &[&str] = &["/auth/realms/", "/v2-edge/"];

/// Scenario section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteAccessScenario {}

/// State of the stand-in.
#[derive(Debug, Default)]
pub struct RemoteAccessSim {}

impl RemoteAccessSim {
    pub fn new(_s: &RemoteAccessScenario) -> anyhow::Result<Self> {
        Ok(RemoteAccessSim {})
    }
}

pub async fn handle(_state: Arc<SimState>, _req: Request) -> Response {
    (
        StatusCode::NOT_IMPLEMENTED,
        "pam-sim: this stand-in is not built yet",
    )
        .into_response()
}

pub fn admin_routes() -> Router<Arc<SimState>> {
    Router::new()
}

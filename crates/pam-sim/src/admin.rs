//! The admin API under `/sim`: health, faults and clock. Each stand-in's own admin routes
//! (`/sim/pvwa/…`, `/sim/ews/…`, …, to seed state and read what happened) are nested beside
//! these by `server`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::faults::Faults;
use crate::host::Host;

pub fn routes() -> Router<Arc<Host>> {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/faults", get(get_faults).delete(clear_faults))
        .route("/faults/{service}", post(set_faults))
        .route("/clock", get(get_clock))
        .route("/clock/advance", post(advance_clock))
}

const SERVICES: &[&str] = &[
    "all",
    "pvwa",
    "ews",
    "servicenow",
    "remedy",
    "remote_access",
    "graph",
];

async fn set_faults(
    State(s): State<Arc<Host>>,
    Path(service): Path<String>,
    Json(f): Json<Faults>,
) -> Result<StatusCode, (StatusCode, String)> {
    if !SERVICES.contains(&service.as_str()) {
        return Err((
            StatusCode::NOT_FOUND,
            format!("unknown service {service}; one of {SERVICES:?}"),
        ));
    }
    s.faults.set(&service, f);
    Ok(StatusCode::NO_CONTENT)
}

async fn get_faults(State(s): State<Arc<Host>>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(s.faults.snapshot()).unwrap_or_default())
}

async fn clear_faults(State(s): State<Arc<Host>>) -> StatusCode {
    s.faults.clear();
    StatusCode::NO_CONTENT
}

async fn get_clock(State(s): State<Arc<Host>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"now": s.clock.now(), "now_ms": s.clock.now_ms()}))
}

#[derive(Deserialize)]
struct Advance {
    secs: i64,
}

async fn advance_clock(
    State(s): State<Arc<Host>>,
    Json(a): Json<Advance>,
) -> Json<serde_json::Value> {
    s.clock.advance(a.secs);
    get_clock(State(s)).await
}

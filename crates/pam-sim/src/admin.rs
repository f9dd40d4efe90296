//! The admin API under `/sim`: health, faults, clock, and each stand-in's own admin routes
//! (`/sim/pvwa/…`, `/sim/ews/…`, …) to seed state and read what happened.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::faults::Faults;
use crate::server::SimState;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/faults", get(get_faults).delete(clear_faults))
        .route("/faults/{service}", post(set_faults))
        .route("/clock", get(get_clock))
        .route("/clock/advance", post(advance_clock))
        .nest("/pvwa", crate::pvwa::admin_routes())
        .nest("/ews", crate::ews::admin_routes())
        .nest("/servicenow", crate::servicenow::admin_routes())
        .nest("/remedy", crate::remedy::admin_routes())
        .nest("/remote_access", crate::remote_access::admin_routes())
}

const SERVICES: &[&str] = &[
    "all",
    "pvwa",
    "ews",
    "servicenow",
    "remedy",
    "remote_access",
];

async fn set_faults(
    State(s): State<Arc<SimState>>,
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

async fn get_faults(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(s.faults.snapshot()).unwrap_or_default())
}

async fn clear_faults(State(s): State<Arc<SimState>>) -> StatusCode {
    s.faults.clear();
    StatusCode::NO_CONTENT
}

async fn get_clock(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"now": s.clock.now(), "now_ms": s.clock.now_ms()}))
}

#[derive(Deserialize)]
struct Advance {
    secs: i64,
}

async fn advance_clock(
    State(s): State<Arc<SimState>>,
    Json(a): Json<Advance>,
) -> Json<serde_json::Value> {
    s.clock.advance(a.secs);
    get_clock(State(s)).await
}

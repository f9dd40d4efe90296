//! Our stable, documented JSON shape of a request (snake_case, versioned by the README), built
//! from PVWA's wire type. Human rendering lives in the CLI.

use chrono::{DateTime, Local, TimeZone, Utc};
use serde::Serialize;

use super::model::Request;

/// A point in time in both zones, or absent when PVWA sent 0.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Time {
    pub unix: i64,
    pub utc: String,
    pub local: String,
}

impl Time {
    pub fn from_unix(unix: i64) -> Option<Time> {
        if unix == 0 {
            return None;
        }
        let utc: DateTime<Utc> = Utc.timestamp_opt(unix, 0).single()?;
        let local = utc.with_timezone(&Local);
        Some(Time {
            unix,
            utc: utc.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            local: local.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        })
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfirmerView {
    pub name: String,
    pub kind: i64,
    pub action: i64,
    pub reason: String,
    pub time: Option<Time>,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TicketView {
    pub system: String,
    pub number: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestView {
    pub request_id: String,
    pub status: i64,
    pub status_title: String,
    pub requester: String,
    pub requester_full_name: String,
    pub safe: String,
    pub account: String,
    pub address: String,
    pub operation: String,
    pub reason: String,
    pub current_level: i64,
    pub confirmations_left: i64,
    pub level2_required: i64,
    pub created: Option<Time>,
    pub expires: Option<Time>,
    pub expired: bool,
    pub access_from: Option<Time>,
    pub access_to: Option<Time>,
    pub ticket: Option<TicketView>,
    /// Confirmers that acted (ActionDate set), in PVWA's order.
    pub confirmed_by: Vec<ConfirmerView>,
    /// Every confirmer PVWA listed, acted or not.
    pub confirmers: Vec<ConfirmerView>,
}

impl RequestView {
    pub fn new(r: &Request, now_unix: i64) -> Self {
        let props = &r.account_details.properties;
        let prop = |k: &str| props.get(k).cloned().unwrap_or_default();
        let confirmers: Vec<ConfirmerView> = r
            .confirmers
            .iter()
            .map(|c| ConfirmerView {
                name: c.name.clone(),
                kind: c.r#type,
                action: c.action,
                reason: c.reason.clone(),
                time: Time::from_unix(c.action_date),
                members: c.members.iter().map(|m| m.user_name.clone()).collect(),
            })
            .collect();
        let t = &r.ticketing_system_properties;
        RequestView {
            request_id: r.request_id.clone(),
            status: r.status,
            status_title: r.status_title.clone(),
            requester: r.requestor_user_name.clone(),
            requester_full_name: r.requestor_full_name.clone(),
            safe: r.safe_name.clone(),
            account: if prop("UserName").is_empty() {
                prop("Name")
            } else {
                prop("UserName")
            },
            address: prop("Address"),
            operation: r.operation.clone(),
            reason: if r.user_reason.is_empty() {
                r.requestor_reason.clone()
            } else {
                r.user_reason.clone()
            },
            current_level: r.current_confirmation_level,
            confirmations_left: r.confirmations_left,
            level2_required: r.required_confirmers_count_level2,
            created: Time::from_unix(r.creation_date),
            expires: Time::from_unix(r.expiration_date),
            expired: r.expiration_date != 0 && r.expiration_date <= now_unix,
            access_from: Time::from_unix(r.access_from),
            access_to: Time::from_unix(r.access_to),
            ticket: (!t.number.is_empty() || !t.name.is_empty()).then(|| TicketView {
                system: t.name.clone(),
                number: t.number.clone(),
                status: t.status.clone(),
            }),
            confirmed_by: confirmers
                .iter()
                .filter(|c| c.time.is_some())
                .cloned()
                .collect(),
            confirmers,
        }
    }
}

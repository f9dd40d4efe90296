//! The requester's view (`/API/MyRequests`), bulk confirm/reject (PVWA 14.6+), and the answer
//! to a path the stand-in does not model (pvwa.md §7, §8, §10; ASSUMPTIONS P14, P17, P18).

use std::collections::HashMap;

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    Inner, STATUS_EXPIRED, STATUS_WAITING, SessionInfo, act, err, key, not_found, request_json,
};

/// A request object as the requester sees it: the `Request` schema has no `RequestorFullName`.
fn own(i: &Inner, r: &super::ReqState) -> Value {
    let mut v = request_json(i, r, true);
    if let Some(o) = v.as_object_mut() {
        o.remove("RequestorFullName");
    }
    v
}

/// `GET /API/MyRequests?onlywaiting=&expired=`: the caller's own requests, in the
/// `{"MyRequests":[…],"Total":n}` wrapper of the real sample.
pub(super) fn my_requests(
    i: &mut Inner,
    s: &SessionInfo,
    q: &HashMap<String, String>,
    now: i64,
) -> Response {
    let flag = |k: &str| q.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (only_waiting, expired) = (flag("onlywaiting"), flag("expired"));
    i.refresh(now);
    let list: Vec<Value> = i
        .requests
        .values()
        .filter(|r| !r.deleted && key(&r.def.requester) == key(&s.user))
        .filter(|r| !only_waiting || r.status == STATUS_WAITING)
        .filter(|r| expired || r.status != STATUS_EXPIRED)
        .map(|r| own(i, r))
        .collect();
    let total = list.len();
    Json(json!({"MyRequests": list, "Total": total})).into_response()
}

/// `GET /API/MyRequests/{id}`: one of the caller's own requests; another's is not found.
pub(super) fn my_request(i: &mut Inner, s: &SessionInfo, id: &str, now: i64) -> Response {
    i.refresh(now);
    match i
        .requests
        .get(id)
        .filter(|r| !r.deleted && key(&r.def.requester) == key(&s.user))
    {
        Some(r) => Json(own(i, r)).into_response(),
        None => not_found(id),
    }
}

/// `POST /API/IncomingRequests/{Confirm|Reject}/Bulk` with `{"BulkItems":[{"RequestId","Reason"}]}`:
/// each item is acted on as the single call would; the answer lists each item's outcome (the
/// answer's shape is a guess, ASSUMPTIONS P18).
pub(super) fn bulk(
    i: &mut Inner,
    user: &str,
    body: &[u8],
    confirm: bool,
    now: i64,
    now_ms: i64,
) -> Response {
    let items = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("BulkItems").and_then(Value::as_array).cloned());
    let Some(items) = items.filter(|v| !v.is_empty()) else {
        return err(
            StatusCode::BAD_REQUEST,
            "PASWS167E",
            "There are some invalid parameters",
        );
    };
    let mut results = Vec::new();
    for item in &items {
        let Some(id) = item.get("RequestId").and_then(Value::as_str) else {
            return err(
                StatusCode::BAD_REQUEST,
                "PASWS167E",
                "There are some invalid parameters",
            );
        };
        let reason = item.get("Reason").and_then(Value::as_str).unwrap_or("");
        let r = act(i, user, id, reason, confirm, now, now_ms);
        let ok = r.status() == StatusCode::OK;
        let mut out = json!({"RequestId": id, "Success": ok});
        if !ok {
            out["StatusCode"] = json!(r.status().as_u16());
        }
        results.push(out);
    }
    Json(json!({"BulkActionResults": results})).into_response()
}

/// A path the stand-in does not model: a JSON 501 that says so, never a 404 a client could read
/// as "no such object" (ASSUMPTIONS P14).
pub(super) fn not_modelled(method: &Method, path: &str) -> Response {
    err(
        StatusCode::NOT_IMPLEMENTED,
        "PAMSIM_NOT_MODELLED",
        &format!("pam-sim does not model {method} {path}."),
    )
}

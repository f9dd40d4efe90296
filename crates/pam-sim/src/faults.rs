//! Fault injection per service: latency on every call, the next N calls failing with a status
//! (and optional body and headers), the next N connections dropped mid-answer.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

/// Faults of one service (`pvwa`, `identity`, `ews`, `graph`, `servicenow`, `remedy`,
/// `remote_access`, or `all`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Added to every call, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// The next `count` calls answer `status` with `body` (and `headers`).
    #[serde(default)]
    pub fail: Option<FailNext>,
    /// The next N calls get their connection dropped before a complete answer.
    #[serde(default)]
    pub drop_next: u32,
    /// Only calls whose path contains this text are affected (all when absent).
    #[serde(default)]
    pub path_contains: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailNext {
    pub status: u16,
    pub count: u32,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// What to do with one call.
pub enum Injected {
    /// Answer this instead of the real handler.
    Respond(Response<Body>),
    /// Go on normally.
    Pass,
}

#[derive(Debug, Default)]
pub struct FaultTable {
    inner: Mutex<BTreeMap<String, Faults>>,
}

impl FaultTable {
    pub fn set(&self, service: &str, f: Faults) {
        self.lock().insert(service.to_string(), f);
    }
    pub fn clear(&self) {
        self.lock().clear();
    }
    pub fn snapshot(&self) -> BTreeMap<String, Faults> {
        self.lock().clone()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Faults>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply the faults of `service` (and `all`) to a call on `path`: sleeps for the latency,
    /// then decides whether to fail or drop.
    pub async fn apply(&self, service: &str, path: &str) -> Injected {
        let (latency, action) = {
            let mut map = self.lock();
            let mut latency = 0;
            let mut action = None;
            for key in [service, "all"] {
                let Some(f) = map.get_mut(key) else { continue };
                if f.path_contains
                    .as_deref()
                    .is_some_and(|p| !path.contains(p))
                {
                    continue;
                }
                latency += f.latency_ms;
                if action.is_none() {
                    if f.drop_next > 0 {
                        f.drop_next -= 1;
                        action = Some(Action::Drop);
                    } else if let Some(fail) = f.fail.as_mut().filter(|x| x.count > 0) {
                        fail.count -= 1;
                        action = Some(Action::Fail(fail.clone()));
                    }
                }
            }
            (latency, action)
        };
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        match action {
            None => Injected::Pass,
            Some(Action::Drop) => Injected::Respond(dropped()),
            Some(Action::Fail(f)) => Injected::Respond(failure(&f)),
        }
    }
}

enum Action {
    Drop,
    Fail(FailNext),
}

/// A response whose body errors at once: hyper aborts the connection, so the client sees a
/// dropped connection instead of an answer.
pub fn dropped() -> Response<Body> {
    let stream = futures_util::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("dropped by fault injection"))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-length", HeaderValue::from_static("100"));
    r
}

fn failure(f: &FailNext) -> Response<Body> {
    let mut r = Response::new(Body::from(f.body.clone().unwrap_or_default()));
    *r.status_mut() = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = &f.content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        r.headers_mut().insert("content-type", v);
    }
    for (k, v) in &f.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

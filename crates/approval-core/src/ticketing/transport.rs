//! The HTTP leg both ticketing clients share: one client with our TLS trust, retries with
//! backoff (honouring `Retry-After`) on connection failures, timeouts and 429/502/503/504, and
//! bounded reading of answers (a hostile server cannot make us buffer without end).

use super::TicketingError;
use super::config::{ConnectionConfig, SystemKind};
use crate::http::{self, Backoff};

/// Largest answer body read.
const MAX_BODY: usize = 4 << 20;

/// A read answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn is_json(&self) -> bool {
        self.content_type.to_ascii_lowercase().contains("json")
    }
    /// A printable excerpt for messages.
    pub fn excerpt(&self) -> String {
        let e = http::body_excerpt(&self.body, 200);
        if e.is_empty() { "empty body".into() } else { e }
    }
    /// `Retry-After` in seconds, if sent.
    pub fn retry_after(&self) -> Option<u64> {
        http::retry_after(&self.headers).map(|d| d.as_secs())
    }
}

pub(crate) struct Transport {
    pub system: SystemKind,
    /// The base URL without a trailing slash.
    pub base: String,
    http: reqwest::Client,
    backoff: Backoff,
    timeout_secs: u64,
}

impl Transport {
    pub fn new(
        system: SystemKind,
        url: &str,
        conn: &ConnectionConfig,
    ) -> Result<Self, TicketingError> {
        let u = crate::tls::check_url(url).map_err(|m| {
            crate::config::ConfigError::new(format!("ticketing.{}.url: {m}", system.key()))
        })?;
        let settings = conn.http_settings();
        let http = http::client(&settings, None)?;
        Ok(Transport {
            system,
            base: u.as_str().trim_end_matches('/').to_string(),
            http,
            backoff: conn.backoff(),
            timeout_secs: conn.request_timeout_secs,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    /// Send a request built by `make` (called again for each attempt). `retry` allows retries
    /// on transient answers; a connection that never opened is always retried.
    pub async fn send(
        &self,
        what: &str,
        retry: bool,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, TicketingError> {
        let mut attempt = 0;
        loop {
            match make(&self.http).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if retry && http::status_is_transient(status) && attempt < self.backoff.retries
                    {
                        attempt += 1;
                        let d = http::retry_after(resp.headers())
                            .map(|d| self.backoff.suggested(d))
                            .unwrap_or_else(|| self.backoff.delay(attempt));
                        log::warn!("{} {what}: {status}; retry {attempt} in {d:?}", self.system);
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return self.read(resp, what).await;
                }
                Err(e)
                    if (e.is_connect() || (retry && e.is_timeout()))
                        && attempt < self.backoff.retries =>
                {
                    attempt += 1;
                    let d = self.backoff.delay(attempt);
                    log::warn!(
                        "{} {what}: {}; retry {attempt} in {d:?}",
                        self.system,
                        http::error_chain(&e)
                    );
                    tokio::time::sleep(d).await;
                }
                Err(e) => return Err(self.transport_error(&e, what)),
            }
        }
    }

    async fn read(&self, resp: reqwest::Response, what: &str) -> Result<Reply, TicketingError> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let cap = http::BodyCap::fixed(self.system.title(), MAX_BODY);
        let buf = match http::read_capped(resp, cap).await {
            Ok(b) => b,
            Err(http::BodyError::Transport(e)) => return Err(self.transport_error(&e, what)),
            Err(too_large) => {
                return Err(TicketingError::Protocol {
                    system: self.system,
                    what: what.into(),
                    detail: too_large.to_string(),
                });
            }
        };
        Ok(Reply {
            status,
            content_type,
            headers,
            body: String::from_utf8_lossy(&buf).into_owned(),
        })
    }

    pub fn transport_error(&self, e: &reqwest::Error, what: &str) -> TicketingError {
        if e.is_timeout() {
            TicketingError::Timeout {
                system: self.system,
                secs: self.timeout_secs,
                what: what.into(),
            }
        } else {
            TicketingError::Unreachable {
                system: self.system,
                url: self.base.clone(),
                detail: http::error_chain(e),
            }
        }
    }

    /// The error for an answer that is not what we asked for, by status (never by text).
    pub fn status_error(&self, r: &Reply, what: &str, detail: String) -> TicketingError {
        let system = self.system;
        match r.status {
            403 => TicketingError::Forbidden {
                system,
                what: what.into(),
                detail,
            },
            429 => TicketingError::RateLimited {
                system,
                retry_after: r.retry_after(),
            },
            s if s >= 500 => TicketingError::Server {
                system,
                status: s,
                what: what.into(),
                detail,
            },
            s => TicketingError::Api {
                system,
                status: s,
                what: what.into(),
                detail,
                hint: None,
            },
        }
    }

    pub fn protocol(&self, what: &str, detail: impl Into<String>) -> TicketingError {
        TicketingError::Protocol {
            system: self.system,
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, SET).to_string()
}

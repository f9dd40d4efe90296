//! The thin transport under the EWS client: one POST per SOAP call over reqwest, with Basic,
//! NTLM (the handshake kept on one connection) or OAuth2 bearer authentication, and the retry
//! policy: throttling (`ErrorServerBusy` in both shapes), 401, 503 and timeouts retried with
//! backoff; wrong URL, wrong credentials and a missing mailbox turned into specific errors.

use std::time::{Duration, Instant};

use base64::Engine as _;
use ews_soap::soap::{self, RequestHeader, Response, SoapError};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use secrecy::{ExposeSecret, SecretString};

use super::ntlm;
use crate::http::{self, Backoff, HttpSettings};
use crate::mailbox::MailboxError;

/// How requests are authenticated.
pub(crate) enum Auth {
    Basic {
        user: String,
        password: SecretString,
    },
    Ntlm {
        user: String,
        password: SecretString,
    },
    Bearer {
        token_url: String,
        client_id: String,
        secret: SecretString,
        scope: String,
        http: reqwest::Client,
        token: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
    },
}

impl Auth {
    fn user(&self) -> &str {
        match self {
            Auth::Basic { user, .. } | Auth::Ntlm { user, .. } => user,
            Auth::Bearer { client_id, .. } => client_id,
        }
    }
}

/// One HTTP client and what it needs to keep NTLM on one connection.
pub(crate) struct Channel {
    http: reqwest::Client,
    /// Held across an NTLM handshake so no other request takes its connection.
    lock: tokio::sync::Mutex<()>,
}

impl Channel {
    /// `total_timeout`: None for the long-lived streaming request (read timeout only).
    pub(crate) fn new(
        settings: &HttpSettings,
        tls: rustls::ClientConfig,
        total_timeout: Option<Duration>,
    ) -> Result<Self, MailboxError> {
        let mut b = http::builder_with_tls(settings, tls)
            .http1_only()
            .pool_max_idle_per_host(1);
        b = match total_timeout {
            Some(t) => b.timeout(t),
            None => b
                .timeout(Duration::from_secs(60 * 60))
                .read_timeout(settings.request_timeout.max(Duration::from_secs(120))),
        };
        let http = b
            .build()
            .map_err(|e| MailboxError::Config(format!("HTTP client: {e}")))?;
        Ok(Channel {
            http,
            lock: tokio::sync::Mutex::new(()),
        })
    }
}

pub(crate) struct Transport {
    pub url: String,
    pub auth: Auth,
    pub header: RequestHeader,
    pub mailbox: String,
    pub calls: Channel,
    pub stream: Channel,
    pub backoff: Backoff,
    pub max_back_off: Duration,
    pub request_timeout: Duration,
    /// The largest answer read: a mail of `mailbox.max_mail_mib` in base64, and its envelope.
    pub max_answer: http::BodyCap,
}

/// Answers larger than this are parsed on the blocking pool, not on the executor.
const PARSE_ASIDE: usize = 256 << 10;

/// The largest OAuth2 token answer read.
const TOKEN_ANSWER: http::BodyCap = http::BodyCap::fixed("OAuth2 token endpoint", 1 << 20);

/// The cap on EWS answers for mails of at most `max_mail_mib` MiB: GetItem sends the MIME in
/// base64 (four bytes for three), plus 1 MiB of envelope and properties.
pub(crate) fn answer_cap(max_mail_mib: usize) -> http::BodyCap {
    http::BodyCap {
        service: "EWS",
        limit: ((max_mail_mib * 4).div_ceil(3) + 1) << 20,
        setting: Some("mailbox.max_mail_mib"),
        note: ": EWS sends a mail in base64, a third larger, with 1 MiB for the rest",
    }
}

fn unreachable(url: &str, e: &reqwest::Error) -> MailboxError {
    MailboxError::Unreachable {
        url: url.to_string(),
        detail: http::error_chain(e),
    }
}

impl Transport {
    /// POST one envelope on a channel, authenticated. The response is returned unread (the
    /// streaming caller reads it incrementally).
    pub(crate) async fn post(
        &self,
        ch: &Channel,
        envelope: &str,
        affinity: bool,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let base = || {
            let mut rb = ch
                .http
                .post(&self.url)
                .header(CONTENT_TYPE, "text/xml; charset=utf-8")
                .header("X-AnchorMailbox", &self.mailbox);
            if affinity {
                rb = rb.header("X-PreferServerAffinity", "True");
            }
            rb
        };
        match &self.auth {
            Auth::Basic { user, password } => {
                let cred = zeroize::Zeroizing::new(format!("{user}:{}", password.expose_secret()));
                let value = zeroize::Zeroizing::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(cred.as_bytes())
                ));
                base()
                    .header(AUTHORIZATION, value.as_str())
                    .body(envelope.to_string())
                    .send()
                    .await
            }
            Auth::Bearer { .. } => {
                let token = self.bearer_token().await;
                let mut rb = base().body(envelope.to_string());
                if let Some(t) = token {
                    rb = rb.header(AUTHORIZATION, format!("Bearer {}", t.expose_secret()));
                }
                rb.send().await
            }
            Auth::Ntlm { user, password } => {
                // Both legs on the single pooled connection of this channel: nothing else may
                // use the channel in between.
                let _guard = ch.lock.lock().await;
                let neg = base64::engine::general_purpose::STANDARD.encode(ntlm::negotiate());
                let first = base()
                    .header(AUTHORIZATION, format!("NTLM {neg}"))
                    .send()
                    .await?;
                if first.status().as_u16() != 401 {
                    // The server let the bodiless first leg through (no authentication
                    // needed): send the real request the same way.
                    http::discard(first, 64 << 10).await;
                    return base().body(envelope.to_string()).send().await;
                }
                let challenge = ntlm_challenge(first.headers());
                // Read the body so the connection goes back to the pool for the second leg.
                http::discard(first, 64 << 10).await;
                let Some(c) = challenge else {
                    // Leave the 401 to the caller: no NTLM challenge means NTLM is not offered.
                    return base().body(envelope.to_string()).send().await;
                };
                let msg = ntlm::authenticate(&c, user, password.expose_secret(), "PAM-APPROVAL");
                base()
                    .header(
                        AUTHORIZATION,
                        format!(
                            "NTLM {}",
                            base64::engine::general_purpose::STANDARD.encode(msg)
                        ),
                    )
                    .body(envelope.to_string())
                    .send()
                    .await
            }
        }
    }

    /// A cached client-credentials token, fetched when missing or about to expire. Failures
    /// leave the request unauthenticated so the server's 401 reports them.
    async fn bearer_token(&self) -> Option<SecretString> {
        let Auth::Bearer {
            token_url,
            client_id,
            secret,
            scope,
            http,
            token,
        } = &self.auth
        else {
            return None;
        };
        let mut cached = token.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Some(t.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.expose_secret()),
            ("scope", scope.as_str()),
        ];
        let body = zeroize::Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
        let resp = match http
            .post(token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                log::warn!(
                    "OAuth2 token endpoint unreachable: {}",
                    http::error_chain(&e)
                );
                return None;
            }
        };
        let status = resp.status().as_u16();
        let body: serde_json::Value = match http::read_capped(resp, TOKEN_ANSWER).await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(e) => {
                log::warn!("OAuth2 token endpoint: {e}");
                return None;
            }
        };
        let Some(tok) = body.get("access_token").and_then(|v| v.as_str()) else {
            log::warn!(
                "OAuth2 token endpoint answered {status} without a token ({})",
                body.get("error")
                    .and_then(|v| v.as_str())
                    .unwrap_or("no error code")
            );
            return None;
        };
        let life = body
            .get("expires_in")
            .and_then(|v| v.as_u64())
            .unwrap_or(300);
        let t = SecretString::from(tok.to_string());
        *cached = Some((
            t.clone(),
            Instant::now() + Duration::from_secs(life.saturating_sub(60).max(1)),
        ));
        Some(t)
    }

    async fn forget_token(&self) {
        if let Auth::Bearer { token, .. } = &self.auth {
            *token.lock().await = None;
        }
    }

    /// One SOAP call with the retry policy. `idempotent`: may be repeated after it may have
    /// reached the server (a send is not).
    pub(crate) async fn call(
        &self,
        op: &str,
        operation_xml: &str,
        idempotent: bool,
    ) -> Result<Response, MailboxError> {
        let doc = soap::envelope(&self.header, operation_xml);
        let mut attempt: u32 = 0;
        loop {
            let can_retry = attempt < self.backoff.retries;
            attempt += 1;
            let wait: Duration;
            let started = std::time::Instant::now();
            let posted = self.post(&self.calls, &doc, false).await;
            log::trace!(
                "EWS {op}: {} after {:?} (attempt {attempt}, {} bytes sent)",
                match &posted {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(_) => "no answer".to_string(),
                },
                started.elapsed(),
                doc.len()
            );
            match posted {
                Err(e) => {
                    let maybe_sent = !e.is_connect();
                    if e.is_timeout() && !idempotent {
                        return Err(MailboxError::OutcomeUnknown {
                            op: op.into(),
                            detail: format!("no answer within {}s", self.request_timeout.as_secs()),
                        });
                    }
                    if maybe_sent && !idempotent {
                        return Err(MailboxError::OutcomeUnknown {
                            op: op.into(),
                            detail: http::error_chain(&e),
                        });
                    }
                    if !can_retry {
                        return Err(if e.is_timeout() {
                            MailboxError::Timeout {
                                url: self.url.clone(),
                                op: op.into(),
                                secs: self.request_timeout.as_secs(),
                            }
                        } else {
                            unreachable(&self.url, &e)
                        });
                    }
                    wait = self.backoff.delay(attempt);
                    log::warn!(
                        "EWS {op}: {}; retry {attempt} in {wait:?}",
                        http::error_chain(&e)
                    );
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let bytes =
                        http::read_capped(resp, self.max_answer)
                            .await
                            .map_err(|e| match e {
                                http::BodyError::Transport(e) if !idempotent => {
                                    MailboxError::OutcomeUnknown {
                                        op: op.into(),
                                        detail: http::error_chain(&e),
                                    }
                                }
                                e => super::super::body_fault(op, &self.url, e),
                            })?;
                    // A large answer (a mail) is parsed on the blocking pool: reading the XML
                    // of many MiB would stall every other task of the executor.
                    let (bytes, parsed) =
                        if matches!(status, 200 | 500) && bytes.len() > PARSE_ASIDE {
                            tokio::task::spawn_blocking(move || {
                                let p = soap::parse_response(&bytes);
                                (bytes, Some(p))
                            })
                            .await
                            .map_err(|e| MailboxError::Protocol {
                                op: op.into(),
                                detail: format!("the answer's reader failed: {e}"),
                            })?
                        } else {
                            (bytes, None)
                        };
                    match self.judge(op, status, &headers, &bytes, parsed) {
                        Verdict::Done(r) => return r,
                        Verdict::Retry(d, final_err) => {
                            if !can_retry {
                                return Err(final_err);
                            }
                            if status == 401 {
                                self.forget_token().await;
                            }
                            wait = d.unwrap_or_else(|| self.backoff.delay(attempt));
                            log::warn!("EWS {op}: {final_err}; retry {attempt} in {wait:?}");
                        }
                    }
                }
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Decide what an HTTP answer means.
    fn judge(
        &self,
        op: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        parsed: Option<Result<Response, SoapError>>,
    ) -> Verdict {
        let busy = |attempts| MailboxError::Busy {
            op: op.into(),
            attempts,
        };
        let wrong_url = |detail: String| {
            Verdict::Done(Err(MailboxError::WrongUrl {
                url: self.url.clone(),
                detail,
            }))
        };
        match status {
            401 => {
                return Verdict::Retry(
                    None,
                    MailboxError::AuthFailed {
                        user: self.auth.user().to_string(),
                        detail: format!(
                            "HTTP 401 (the server offers {})",
                            offered_schemes(headers)
                        ),
                    },
                );
            }
            403 => {
                return Verdict::Done(Err(MailboxError::AuthFailed {
                    user: self.auth.user().to_string(),
                    detail: "HTTP 403 Forbidden".into(),
                }));
            }
            404 | 405 => return wrong_url(format!("HTTP {status}")),
            300..=399 => {
                let to = headers
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("?");
                return wrong_url(format!(
                    "HTTP {status} redirect to {}",
                    http::body_excerpt(to, 200)
                ));
            }
            s if http::status_is_transient(s) => {
                let d = http::retry_after(headers).map(|d| d.min(self.max_back_off));
                return Verdict::Retry(
                    d,
                    MailboxError::Unreachable {
                        url: self.url.clone(),
                        detail: format!("HTTP {s} (service unavailable)"),
                    },
                );
            }
            200 | 500 => {}
            s => {
                return Verdict::Done(Err(MailboxError::Protocol {
                    op: op.into(),
                    detail: format!(
                        "HTTP {s}: {}",
                        http::body_excerpt(&String::from_utf8_lossy(body), 200)
                    ),
                }));
            }
        }
        match parsed.unwrap_or_else(|| soap::parse_response(body)) {
            Ok(r) => {
                if let Some(back_off) = message_busy(&r) {
                    return Verdict::Retry(
                        Some(back_off.min(self.max_back_off)),
                        busy(self.backoff.retries + 1),
                    );
                }
                Verdict::Done(Ok(r))
            }
            Err(SoapError::Fault(f)) => {
                let code = f.code().to_string();
                let text = f.fault_string.clone();
                Verdict::Done(Err(match code.as_str() {
                    "ErrorServerBusy" => {
                        let d = f
                            .back_off
                            .unwrap_or(self.backoff.first)
                            .min(self.max_back_off);
                        return Verdict::Retry(Some(d), busy(self.backoff.retries + 1));
                    }
                    "ErrorNonExistentMailbox" | "ErrorMailboxNotFound" => {
                        MailboxError::NoSuchMailbox {
                            mailbox: self.mailbox.clone(),
                            detail: code,
                        }
                    }
                    "ErrorImpersonateUserDenied"
                    | "ErrorAccessDenied"
                    | "ErrorImpersonationDenied" => MailboxError::AuthFailed {
                        user: self.auth.user().to_string(),
                        detail: format!("{code}: {text}"),
                    },
                    _ => MailboxError::Ews {
                        op: op.into(),
                        code,
                        text,
                    },
                }))
            }
            Err(e) => {
                let ctype = headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if !ctype.contains("xml") || matches!(e, SoapError::NotSoap(_)) {
                    wrong_url(format!(
                        "HTTP {status} answered {}",
                        http::body_excerpt(&String::from_utf8_lossy(body), 120)
                    ))
                } else {
                    Verdict::Done(Err(MailboxError::Protocol {
                        op: op.into(),
                        detail: e.to_string(),
                    }))
                }
            }
        }
    }
}

enum Verdict {
    Done(Result<Response, MailboxError>),
    /// Retry after the server's delay (or our backoff); the error if no retry is left.
    Retry(Option<Duration>, MailboxError),
}

/// `BackOffMilliseconds` of the first response message that says `ErrorServerBusy`.
fn message_busy(r: &Response) -> Option<Duration> {
    let list = r.body.child(ews_soap::ns::MESSAGES, "ResponseMessages")?;
    list.children
        .iter()
        .find_map(|m| match soap::message_result(m) {
            Err(e) if e.is("ErrorServerBusy") => {
                Some(e.back_off.unwrap_or(Duration::from_millis(500)))
            }
            _ => None,
        })
}

/// The NTLM challenge in a 401's `WWW-Authenticate`.
fn ntlm_challenge(headers: &HeaderMap) -> Option<ntlm::Challenge> {
    headers.get_all(WWW_AUTHENTICATE).iter().find_map(|v| {
        let s = v.to_str().ok()?;
        let (scheme, token) = s.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("NTLM") && !scheme.eq_ignore_ascii_case("Negotiate") {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()?;
        ntlm::parse_challenge(&bytes)
    })
}

fn offered_schemes(headers: &HeaderMap) -> String {
    let v: Vec<String> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|s| s.split(' ').next().unwrap_or("").to_string())
        .collect();
    if v.is_empty() {
        "no scheme".into()
    } else {
        v.join(", ")
    }
}

//! The approval mailbox on Exchange Online, through Microsoft Graph v1.0 (reference/graph.md).
//!
//! - App-only tokens from Entra ID ([`super::oauth`]): a certificate or a client secret.
//! - Every call asks for immutable ids (`Prefer: IdType="ImmutableId"`), so a message keeps its
//!   id when it is filed and a reply keeps its id from draft to Sent Items.
//! - At most four calls in flight to the mailbox (Exchange Online's per-mailbox limit); a 429 or
//!   503 waits for `Retry-After` (capped by `max_back_off_secs`), then backs off; a 401 renews
//!   the token once; a call that may have reached the server is not repeated unless it is
//!   idempotent (a send becomes "outcome unknown", and the send key settles it). A send refused
//!   for the mailbox's sending limit (429, `ErrorSubmissionQuotaExceeded`) is not waited for:
//!   it answers `SendDeferred` with the server's delay ([`super::pace`]).
//! - New mail: a delta query on the watched folder (`changeType=created`), polled every
//!   `poll_interval_secs` (default 2 s); its link is kept in the sync-state file, so a restart
//!   catches up; a 410 or `syncStateNotFound` starts a new round (the journal drops repeats).
//! - Replies exactly once: a draft carrying the send key in a named extended property, then
//!   `send`; before any send, the key is looked up in the whole mailbox (a sent copy: done; a
//!   draft left by a crash: send that one).
//! - The mail itself as raw MIME (`$value`), with the transport headers (`String 0x007D`), into
//!   the same reader and sender checks as EWS.

pub mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

pub use config::{GraphAuth, GraphConfig};

use super::oauth::{CertificateKey, ClientAuth, TokenClient, TokenRequest};
use super::{
    Address, BoxFuture, FetchedMessage, Mailbox, MailboxConfig, MailboxError, MessageRef,
    OutgoingMail, SyncStateStore, WaitOutcome,
};
use crate::http::{self, Backoff, HttpSettings};
use crate::secret::Resolver;

/// The named property that carries a reply's send key (PS_PUBLIC_STRINGS).
pub const SEND_KEY_PROPERTY: &str =
    "String {00020329-0000-0000-C000-000000000046} Name PamApprovalSendKey";
/// The named-property set of Internet headers (PS_INTERNET_HEADERS), as a Graph property id
/// prefix: `String {…} Name Auto-Submitted` sets that header on a sent mail.
pub const INTERNET_HEADERS_SET: &str = "String {00020386-0000-0000-C000-000000000046}";
/// `PR_TRANSPORT_MESSAGE_HEADERS`.
const TRANSPORT_HEADERS: &str = "String 0x007D";
/// Calls in flight to one mailbox (Exchange Online's limit).
const MAX_CONCURRENT: usize = 4;
/// Largest JSON answer read (a page of ids, one message's properties).
const MAX_ANSWER: http::BodyCap = http::BodyCap::fixed("Microsoft Graph", 4 << 20);
const IMMUTABLE: &str = "IdType=\"ImmutableId\"";
/// The call that submits a mail (a draft's `send`): refused for the sending limit, it is
/// deferred, not repeated after a wait.
const SEND_OP: &str = "send the reply";
/// The delay after a refused send whose answer names none (Exchange Online counts a minute).
const SEND_REFUSED_DELAY: Duration = Duration::from_secs(60);

/// Characters escaped in a path segment (the mailbox address keeps `@` and `.`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'@')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_');

pub struct GraphMailbox {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    tokens: TokenClient,
    /// `https://graph.microsoft.com/v1.0/users/{mailbox}`
    user_url: String,
    mailbox: String,
    folder: String,
    gate: Semaphore,
    backoff: Backoff,
    max_back_off: Duration,
    /// The largest mail read (`mailbox.max_mail_mib`).
    max_mime: http::BodyCap,
    poll: Duration,
    request_timeout: Duration,
    /// Child folder name (lowercase) -> id.
    folders: Mutex<HashMap<String, String>>,
    /// The delta link of the watched folder (after catch-up or the first wait).
    delta: Mutex<Option<String>>,
}

impl std::fmt::Debug for GraphMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphMailbox")
            .field("user_url", &self.inner.user_url)
            .field("tokens", &self.inner.tokens)
            .finish_non_exhaustive()
    }
}

/// A successful answer: status and body (read in full, bounded).
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl GraphMailbox {
    /// Build from `[mailbox]` with `kind = "graph"`: resolve the credential (the resolver may be
    /// closed afterwards), set up the HTTP client and the token client. Nothing is sent yet.
    pub async fn new(cfg: &MailboxConfig, secrets: &Resolver) -> Result<Self, MailboxError> {
        cfg.validate()
            .map_err(|(k, m)| MailboxError::Config(format!("{k}: {m}")))?;
        let g = cfg
            .graph
            .as_ref()
            .ok_or_else(|| MailboxError::Config("mailbox.graph: missing".into()))?;
        let AppCredential { auth, renewal } = app_credential(g, secrets, "mailbox.graph").await?;
        let settings = HttpSettings {
            ca_bundle: cfg.ca_bundle.clone(),
            connect_timeout: Duration::from_secs(cfg.connect_timeout_secs),
            request_timeout: Duration::from_secs(cfg.request_timeout_secs),
            ..HttpSettings::default()
        };
        let client = http::builder(&settings)?
            .build()
            .map_err(|e| MailboxError::Config(format!("HTTP client: {e}")))?;
        let backoff = Backoff::new(cfg.retries, cfg.backoff_ms);
        let base = cfg.graph_url().to_string();
        let tokens = token_client(
            client.clone(),
            g,
            &base,
            AppCredential { auth, renewal },
            backoff,
        );
        let user_url = format!(
            "{base}/users/{}",
            utf8_percent_encode(cfg.mailbox.trim(), SEGMENT)
        );
        Ok(GraphMailbox {
            inner: Arc::new(Inner {
                http: client,
                tokens,
                user_url,
                mailbox: cfg.mailbox.trim().to_string(),
                folder: cfg.folder.clone(),
                gate: Semaphore::new(MAX_CONCURRENT),
                backoff,
                max_back_off: Duration::from_secs(cfg.max_back_off_secs),
                max_mime: http::BodyCap {
                    service: "Microsoft Graph",
                    limit: cfg.max_mail_mib << 20,
                    setting: Some("mailbox.max_mail_mib"),
                    note: "",
                },
                poll: cfg.poll_interval(),
                request_timeout: settings.request_timeout,
                folders: Mutex::new(HashMap::new()),
                delta: Mutex::new(None),
            }),
        })
    }
}

/// An app registration's credential, read: what signs token requests, and where a renewed
/// certificate is read again from.
pub struct AppCredential {
    pub auth: ClientAuth,
    pub renewal: Option<(super::oauth::CertificateSource, [u8; 32])>,
}

/// Read the credential of the app registration `g` (`key` names its section in errors:
/// `mailbox.graph` or `directory.graph`). Shared by the Graph mailbox and the Entra directory.
pub async fn app_credential(
    g: &GraphConfig,
    secrets: &Resolver,
    key: &'static str,
) -> Result<AppCredential, MailboxError> {
    let mut renewal = None;
    let auth = match g.auth {
        GraphAuth::ClientSecret => {
            let r = g
                .client_secret
                .as_ref()
                .ok_or_else(|| MailboxError::Config(format!("{key}.client_secret: missing")))?;
            ClientAuth::Secret(secrets.resolve(r).await?)
        }
        GraphAuth::Certificate => {
            let (Some(c), Some(k)) = (&g.certificate, &g.private_key) else {
                return Err(MailboxError::Config(format!(
                    "{key}.certificate and private_key: missing"
                )));
            };
            let pem = |item: &'static str| {
                move |e: crate::secret::SecretError| match &e {
                    // A PKCS#12 file is binary: say how to get the PEM files instead.
                    crate::secret::SecretError::Unusable { message, .. }
                        if message.contains("UTF-8") =>
                    {
                        MailboxError::Config(format!(
                            "{key}.{item}: {e} (a PKCS#12 file?); {}",
                            super::oauth::PFX_HINT
                        ))
                    }
                    _ => MailboxError::Secret(e),
                }
            };
            let cert = secrets.resolve(c).await.map_err(pem("certificate"))?;
            let pkey =
                zeroize::Zeroizing::new(secrets.resolve(k).await.map_err(pem("private_key"))?);
            let ck = CertificateKey::from_pem(
                cert.expose_secret(),
                pkey.expose_secret(),
                chrono::Utc::now().timestamp(),
            )
            .map_err(|m| MailboxError::Config(format!("{key}: {m}")))?;
            renewal = Some((
                super::oauth::CertificateSource {
                    certificate: c.clone(),
                    private_key: k.clone(),
                },
                super::oauth::pair_digest(cert.expose_secret(), pkey.expose_secret()),
            ));
            ClientAuth::Certificate(ck)
        }
    };
    Ok(AppCredential { auth, renewal })
}

/// The token client of app `g` for the Graph base `graph_url` (scope `{origin}/.default`).
pub fn token_client(
    http: reqwest::Client,
    g: &GraphConfig,
    graph_url: &str,
    cred: AppCredential,
    backoff: Backoff,
) -> TokenClient {
    let tokens = TokenClient::new(
        http,
        TokenRequest {
            token_url: g.token_url(),
            client_id: g.client_id.trim().to_string(),
            scope: config::scope_for(graph_url),
            auth: cred.auth,
        },
        backoff,
    );
    match cred.renewal {
        Some((source, seen)) => tokens.reread_from(source, seen),
        None => tokens,
    }
}

/// An OData string literal: quotes doubled.
fn literal(s: &str) -> String {
    s.replace('\'', "''")
}

fn q(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// `(code, message)` of an OData error body.
fn odata_error(body: &Value) -> (String, String) {
    let code = body
        .pointer("/error/code")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (code, crate::text::printable(&message))
}

impl Inner {
    fn url(&self, tail: &str) -> String {
        format!("{}/{tail}", self.user_url)
    }

    /// One call with the retry policy. `idempotent`: may be repeated after it may have reached
    /// the server. A 429 is always repeated (the server did not act on it).
    async fn call(
        &self,
        op: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Answer, MailboxError> {
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|_| MailboxError::Config("the mailbox is closed".into()))?;
        let mut attempt: u32 = 0;
        let mut renewed = false;
        loop {
            let token = self.tokens.token().await?;
            let mut req = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token.expose_secret())
                .header("Prefer", HeaderValue::from_static(IMMUTABLE));
            if let Some(b) = body {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(b.to_string());
            } else if method == Method::POST {
                req = req.header(reqwest::header::CONTENT_LENGTH, "0");
            }
            log::trace!("graph {op}: {method} {url}");
            let sent = req.send().await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    let before_sending = e.is_connect();
                    let detail = http::error_chain(&e);
                    let err = if e.is_timeout() {
                        MailboxError::Timeout {
                            url: url.to_string(),
                            op: op.to_string(),
                            secs: self.request_timeout.as_secs(),
                        }
                    } else {
                        MailboxError::Unreachable {
                            url: self.user_url.clone(),
                            detail,
                        }
                    };
                    if !(idempotent || before_sending) {
                        return Err(MailboxError::OutcomeUnknown {
                            op: op.to_string(),
                            detail: err.to_string(),
                        });
                    }
                    if attempt < self.backoff.retries {
                        attempt += 1;
                        tokio::time::sleep(self.backoff.delay(attempt)).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status();
            let retry_after = http::retry_after(resp.headers());
            let cap = if op == "read the MIME" {
                self.max_mime
            } else {
                MAX_ANSWER
            };
            let bytes = http::read_capped(resp, cap)
                .await
                .map_err(|e| super::body_fault(op, &self.user_url, e))?;
            let answer = Answer {
                status,
                body: bytes.to_vec(),
            };
            if status.is_success() {
                return Ok(answer);
            }
            let json = answer.json();
            let (code, message) = odata_error(&json);
            if status == StatusCode::UNAUTHORIZED && !renewed {
                // The token may have been revoked or expired early: a new one, once.
                self.tokens.forget().await;
                renewed = true;
                continue;
            }
            if op == SEND_OP
                && (status == StatusCode::TOO_MANY_REQUESTS
                    || code == super::pace::SUBMISSION_QUOTA_EXCEEDED)
            {
                // The send itself refused for the mailbox's rate or quota: not carried out, and
                // not waited for here; the reply stays owed until the server's delay has passed
                // (docs/graph.md, "Sending limits").
                return Err(MailboxError::SendDeferred {
                    wait: retry_after.unwrap_or(SEND_REFUSED_DELAY),
                    by_server: true,
                    detail: format!("HTTP {} {code}: {message}", status.as_u16()),
                });
            }
            let transient = status == StatusCode::TOO_MANY_REQUESTS
                || (idempotent && http::status_is_transient(status.as_u16()));
            if transient && attempt < self.backoff.retries {
                attempt += 1;
                let wait = match retry_after {
                    Some(d) => d.min(self.max_back_off),
                    None => self.backoff.delay(attempt),
                };
                log::debug!(
                    "graph {op}: HTTP {status} {code}; again in {} ms",
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(self.fault(op, status, code, message, idempotent));
        }
    }

    fn fault(
        &self,
        op: &str,
        status: StatusCode,
        code: String,
        message: String,
        idempotent: bool,
    ) -> MailboxError {
        let op = op.to_string();
        match status.as_u16() {
            429 | 503 | 504 => MailboxError::Busy {
                op,
                attempts: self.backoff.retries + 1,
            },
            401 => MailboxError::TokenRefused {
                url: self.user_url.clone(),
                client_id: String::new(),
                detail: format!("{code}: {message}"),
                exit: crate::exit::Exit::NoPerm,
                hint: "Graph refused the app's token twice: check the app's Mail.ReadWrite and Mail.Send roles (docs/graph.md)",
            },
            403 => MailboxError::Denied {
                op,
                detail: format!("{code}: {message}"),
                hint: "the app may not open this mailbox: grant Application Mail.ReadWrite and Mail.Send scoped to it (RBAC for Applications, docs/graph.md), and allow up to two hours for the grant to apply",
            },
            404 if code == "ErrorInvalidUser" || code == "MailboxNotEnabledForRESTAPI" => {
                MailboxError::NoSuchMailbox {
                    mailbox: self.mailbox.clone(),
                    detail: format!("{code}: {message}"),
                }
            }
            404 => MailboxError::NotFound { op, code },
            500..=599 if !idempotent => MailboxError::OutcomeUnknown {
                op,
                detail: format!("HTTP {status} {code}"),
            },
            _ => MailboxError::Ews {
                op,
                code: if code.is_empty() {
                    format!("HTTP {}", status.as_u16())
                } else {
                    code
                },
                text: message,
            },
        }
    }

    async fn get_json(&self, op: &str, url: &str) -> Result<Value, MailboxError> {
        let a = self.call(op, Method::GET, url, None, true).await?;
        let v = a.json();
        if v.is_null() {
            return Err(MailboxError::Protocol {
                op: op.to_string(),
                detail: format!("HTTP {} without a JSON body", a.status.as_u16()),
            });
        }
        Ok(v)
    }

    /// Every page of a collection, following `@odata.nextLink` on the same service.
    async fn collect(&self, op: &str, first: String) -> Result<Vec<Value>, MailboxError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 1000 {
                return Err(MailboxError::Protocol {
                    op: op.to_string(),
                    detail: "more than 1000 pages".into(),
                });
            }
            let v = self.get_json(op, &url).await?;
            out.extend(v["value"].as_array().cloned().unwrap_or_default());
            next = self.same_service(op, v.get("@odata.nextLink"))?;
        }
        Ok(out)
    }

    /// A link from an answer, accepted only when it points at the configured service (a
    /// hostile or broken answer must not send the token elsewhere).
    fn same_service(&self, op: &str, link: Option<&Value>) -> Result<Option<String>, MailboxError> {
        let Some(l) = link.and_then(Value::as_str) else {
            return Ok(None);
        };
        let ours = url::Url::parse(&self.user_url).ok().map(|u| u.origin());
        let theirs = url::Url::parse(l).ok().map(|u| u.origin());
        if ours.is_some() && ours == theirs {
            Ok(Some(l.to_string()))
        } else {
            Err(MailboxError::Protocol {
                op: op.to_string(),
                detail: format!(
                    "a paging link to another service ({})",
                    crate::text::printable(l)
                ),
            })
        }
    }

    /// The id of a child folder of the watched folder, if it exists (nothing is created).
    async fn find_folder(&self, name: &str) -> Result<Option<String>, MailboxError> {
        let base = self.url(&format!(
            "mailFolders/{}/childFolders",
            utf8_percent_encode(&self.folder, SEGMENT)
        ));
        let find = format!(
            "{base}?$filter={}&$select=id,displayName",
            q(&format!("displayName eq '{}'", literal(name)))
        );
        Ok(self
            .collect("find a folder", find)
            .await?
            .first()
            .and_then(|f| f["id"].as_str())
            .map(str::to_string))
    }

    /// The id of a child folder of the watched folder, created when missing.
    async fn folder_id(&self, name: &str) -> Result<String, MailboxError> {
        let key = name.to_lowercase();
        if let Some(id) = self.folders.lock().await.get(&key) {
            return Ok(id.clone());
        }
        let base = self.url(&format!(
            "mailFolders/{}/childFolders",
            utf8_percent_encode(&self.folder, SEGMENT)
        ));
        let find = format!(
            "{base}?$filter={}&$select=id,displayName",
            q(&format!("displayName eq '{}'", literal(name)))
        );
        let op = "find a folder";
        let found = self.collect(op, find.clone()).await?;
        let id = match found.first().and_then(|f| f["id"].as_str()) {
            Some(id) => id.to_string(),
            None => {
                let r = self
                    .call(
                        "create a folder",
                        Method::POST,
                        &base,
                        Some(&json!({"displayName": name})),
                        false,
                    )
                    .await;
                match r {
                    Ok(a) => a.json()["id"].as_str().map(str::to_string).ok_or_else(|| {
                        MailboxError::Protocol {
                            op: "create a folder".into(),
                            detail: "no id in the answer".into(),
                        }
                    })?,
                    // Made meanwhile (another instance, or a lost answer): read it.
                    Err(MailboxError::Ews { code, .. }) if code == "ErrorFolderExists" => self
                        .collect(op, find)
                        .await?
                        .first()
                        .and_then(|f| f["id"].as_str())
                        .map(str::to_string)
                        .ok_or_else(|| MailboxError::NotFound {
                            op: op.into(),
                            code: "ErrorFolderExists".into(),
                        })?,
                    Err(e) => return Err(e),
                }
            }
        };
        self.folders.lock().await.insert(key, id.clone());
        Ok(id)
    }

    /// An idempotent call on one message that answers the message: its id afterwards (the
    /// immutable id does not change; the old one is kept if the answer lacks it).
    async fn on_message(
        &self,
        op: &str,
        method: Method,
        msg: &MessageRef,
        tail: &str,
        body: Value,
    ) -> Result<MessageRef, MailboxError> {
        let url = self.url(&format!(
            "messages/{}{tail}",
            utf8_percent_encode(&msg.id, SEGMENT)
        ));
        let a = self.call(op, method, &url, Some(&body), true).await?;
        let id = a.json()["id"].as_str().unwrap_or(&msg.id).to_string();
        Ok(MessageRef {
            id,
            change_key: None,
        })
    }

    /// Messages carrying a send key (id, isDraft), anywhere in the mailbox.
    async fn by_send_key(&self, key: &str) -> Result<Vec<(String, bool)>, MailboxError> {
        let filter = format!(
            "singleValueExtendedProperties/Any(ep: ep/id eq '{}' and ep/value eq '{}')",
            literal(SEND_KEY_PROPERTY),
            literal(key)
        );
        let url = self.url(&format!(
            "messages?$filter={}&$select=id,isDraft",
            q(&filter)
        ));
        let found = self.collect("find a sent reply", url).await?;
        Ok(found
            .iter()
            .filter_map(|m| {
                Some((
                    m["id"].as_str()?.to_string(),
                    m["isDraft"].as_bool().unwrap_or(false),
                ))
            })
            .collect())
    }

    /// The start of a delta round on the watched folder.
    fn delta_start(&self) -> String {
        self.url(&format!(
            "mailFolders/{}/messages/delta?changeType=created&$select=id,isRead",
            utf8_percent_encode(&self.folder, SEGMENT)
        ))
    }

    /// One delta round from `link` (or a new one), every page; returns the ids created (not
    /// removed) and the next round's link. `save` gets each link as it is reached.
    async fn delta_round(
        &self,
        link: Option<String>,
        save: &(dyn Fn(&str) -> Result<(), MailboxError> + Sync),
    ) -> Result<(Vec<MessageRef>, String), MailboxError> {
        let op = "read new mail (delta)";
        let mut next = link.unwrap_or_else(|| self.delta_start());
        let mut ids: Vec<MessageRef> = Vec::new();
        for _ in 0..1000 {
            let v = match self.get_json(op, &next).await {
                Err(MailboxError::Ews { code, .. }) if is_reset(&code) => {
                    return Err(MailboxError::NotFound {
                        op: op.into(),
                        code: "syncStateNotFound".into(),
                    });
                }
                Err(MailboxError::NotFound { code, .. }) if is_reset(&code) => {
                    return Err(MailboxError::NotFound {
                        op: op.into(),
                        code: "syncStateNotFound".into(),
                    });
                }
                other => other?,
            };
            for e in v["value"].as_array().into_iter().flatten() {
                if e.get("@removed").is_some() {
                    continue;
                }
                if let Some(id) = e["id"].as_str()
                    && !ids.iter().any(|r| r.id == id)
                {
                    ids.push(MessageRef {
                        id: id.to_string(),
                        change_key: None,
                    });
                }
            }
            if let Some(n) = self.same_service(op, v.get("@odata.nextLink"))? {
                save(&n)?;
                next = n;
                continue;
            }
            let Some(d) = self.same_service(op, v.get("@odata.deltaLink"))? else {
                return Err(MailboxError::Protocol {
                    op: op.into(),
                    detail: "a delta page without nextLink or deltaLink".into(),
                });
            };
            save(&d)?;
            return Ok((ids, d));
        }
        Err(MailboxError::Protocol {
            op: op.into(),
            detail: "more than 1000 delta pages".into(),
        })
    }
}

/// A lost or expired delta state (graph.md §3.1): start a new round.
fn is_reset(code: &str) -> bool {
    matches!(
        code,
        "syncStateNotFound" | "syncStateInvalid" | "resyncRequired" | "HTTP 410"
    ) || code.eq_ignore_ascii_case("SyncStateNotFound")
}

fn address(v: &Value) -> Option<Address> {
    let e = v.get("emailAddress")?;
    Some(Address {
        name: e["name"].as_str().map(str::to_string),
        email: e["address"].as_str().map(str::to_string),
        routing_type: Some("SMTP".into()),
    })
}

impl Mailbox for GraphMailbox {
    fn folder_rights(&self) -> BoxFuture<'_, super::FolderRights> {
        Box::pin(async {
            super::FolderRights::unreadable(
                "Microsoft Graph shows neither a mail folder's permissions nor a mailbox's delegates",
            )
        })
    }

    fn probe<'a>(
        &'a self,
        folders: &'a [&'a str],
    ) -> BoxFuture<'a, Result<super::Probe, MailboxError>> {
        Box::pin(async move {
            let i = &self.inner;
            // The watched folder itself first: a clear "not found" for a wrong folder name.
            i.get_json(
                "read the watched folder",
                &i.url(&format!(
                    "mailFolders/{}?$select=id,displayName",
                    utf8_percent_encode(&i.folder, SEGMENT)
                )),
            )
            .await?;
            let unread = self.list_new().await?.len();
            let mut found = Vec::new();
            for name in folders {
                found.push((name.to_string(), i.find_folder(name).await?.is_some()));
            }
            Ok(super::Probe {
                unread,
                folders: found,
            })
        })
    }

    fn list_new(&self) -> BoxFuture<'_, Result<Vec<MessageRef>, MailboxError>> {
        Box::pin(async move {
            let i = &self.inner;
            let url = i.url(&format!(
                "mailFolders/{}/messages?$filter={}&$select=id,receivedDateTime&$top=50",
                utf8_percent_encode(&i.folder, SEGMENT),
                q("isRead eq false")
            ));
            let mut all = i.collect("list unread mail", url).await?;
            // Oldest first (Graph lists newest first; $orderby with $filter is restricted).
            all.sort_by(|a, b| {
                a["receivedDateTime"]
                    .as_str()
                    .cmp(&b["receivedDateTime"].as_str())
            });
            Ok(all
                .iter()
                .filter_map(|m| m["id"].as_str())
                .map(|id| MessageRef {
                    id: id.to_string(),
                    change_key: None,
                })
                .collect())
        })
    }

    fn fetch<'a>(
        &'a self,
        msg: &'a MessageRef,
    ) -> BoxFuture<'a, Result<FetchedMessage, MailboxError>> {
        Box::pin(async move {
            let i = &self.inner;
            let id = utf8_percent_encode(&msg.id, SEGMENT).to_string();
            let expand = format!(
                "singleValueExtendedProperties($filter=id eq '{}')",
                TRANSPORT_HEADERS
            );
            let url = i.url(&format!(
                "messages/{id}?$select=id,subject,from,sender,internetMessageId,isRead,internetMessageHeaders&$expand={}",
                q(&expand)
            ));
            let v = i.get_json("read a message", &url).await?;
            let a = i
                .call(
                    "read the MIME",
                    Method::GET,
                    &i.url(&format!("messages/{id}/$value")),
                    None,
                    true,
                )
                .await?;
            let transport_headers = v["singleValueExtendedProperties"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| {
                    p["id"].as_str().is_some_and(|x| {
                        let x = x.replace(' ', "").to_ascii_lowercase();
                        x == "string0x007d" || x == "string0x7d"
                    })
                })
                .and_then(|p| p["value"].as_str())
                .map(str::to_string);
            let internet_headers = v["internetMessageHeaders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| {
                    Some((
                        h["name"].as_str()?.to_string(),
                        h["value"].as_str()?.to_string(),
                    ))
                })
                .collect();
            Ok(FetchedMessage {
                reference: MessageRef {
                    id: v["id"].as_str().unwrap_or(&msg.id).to_string(),
                    change_key: None,
                },
                mime: a.body,
                transport_headers,
                internet_headers,
                from: address(&v["from"]),
                sender: address(&v["sender"]),
                internet_message_id: v["internetMessageId"].as_str().map(str::to_string),
                subject: v["subject"].as_str().map(str::to_string),
                is_read: v["isRead"].as_bool(),
            })
        })
    }

    fn mark_read<'a>(
        &'a self,
        msg: &'a MessageRef,
    ) -> BoxFuture<'a, Result<MessageRef, MailboxError>> {
        Box::pin(self.inner.on_message(
            "mark read",
            Method::PATCH,
            msg,
            "?$select=id",
            json!({"isRead": true}),
        ))
    }

    fn file<'a>(
        &'a self,
        msg: &'a MessageRef,
        folder: &'a str,
    ) -> BoxFuture<'a, Result<MessageRef, MailboxError>> {
        Box::pin(async move {
            let dest = self.inner.folder_id(folder).await?;
            // A move that may have happened is found again by its immutable id, so it may be
            // repeated; a repeated move of an item already there is a no-op on Graph.
            self.inner
                .on_message(
                    "file the mail",
                    Method::POST,
                    msg,
                    "/move?$select=id",
                    json!({"destinationId": dest}),
                )
                .await
        })
    }

    fn send<'a>(&'a self, mail: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailboxError>> {
        Box::pin(async move {
            let i = &self.inner;
            // A draft left by an earlier try (a crash between create and send) is sent, not
            // doubled; a sent copy means there is nothing to do.
            let mut draft = None;
            if let Some(key) = &mail.send_key {
                for (id, is_draft) in i.by_send_key(key).await? {
                    if !is_draft {
                        return Ok(());
                    }
                    draft.get_or_insert(id);
                }
            }
            let id = match draft {
                Some(id) => id,
                None => {
                    let rcpt = |list: &[String]| {
                        list.iter()
                            .map(|a| json!({"emailAddress": {"address": a}}))
                            .collect::<Vec<_>>()
                    };
                    let (kind, content) = match &mail.html {
                        Some(h) => ("html", h.as_str()),
                        None => ("text", mail.text.as_str()),
                    };
                    let mut m = json!({
                        "subject": mail.subject,
                        "body": {"contentType": kind, "content": content},
                        "toRecipients": rcpt(&mail.to),
                        "ccRecipients": rcpt(&mail.cc),
                    });
                    // Graph takes only `x-` names in internetMessageHeaders; any other
                    // header (Auto-Submitted) is a named property of PS_INTERNET_HEADERS.
                    let mut props = Vec::new();
                    if let Some(key) = &mail.send_key {
                        props.push(json!({"id": SEND_KEY_PROPERTY, "value": key}));
                    }
                    let mut headers = Vec::new();
                    for (name, value) in &mail.headers {
                        if name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x-")) {
                            headers.push(json!({"name": name, "value": value}));
                        } else {
                            props.push(json!({
                                "id": format!("{INTERNET_HEADERS_SET} Name {name}"),
                                "value": value,
                            }));
                        }
                    }
                    if !props.is_empty() {
                        m["singleValueExtendedProperties"] = json!(props);
                    }
                    if !headers.is_empty() {
                        m["internetMessageHeaders"] = json!(headers);
                    }
                    let a = i
                        .call(
                            "create the reply",
                            Method::POST,
                            &i.url("messages?$select=id"),
                            Some(&m),
                            false,
                        )
                        .await?;
                    a.json()["id"].as_str().map(str::to_string).ok_or_else(|| {
                        MailboxError::Protocol {
                            op: "create the reply".into(),
                            detail: "no id in the answer".into(),
                        }
                    })?
                }
            };
            let url = i.url(&format!(
                "messages/{}/send",
                utf8_percent_encode(&id, SEGMENT)
            ));
            i.call(SEND_OP, Method::POST, &url, None, false).await?;
            Ok(())
        })
    }

    fn was_sent<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, MailboxError>> {
        Box::pin(async move {
            Ok(self
                .inner
                .by_send_key(key)
                .await?
                .iter()
                .any(|(_, is_draft)| !is_draft))
        })
    }

    fn wait_for_new(&self, max: Duration) -> BoxFuture<'_, Result<WaitOutcome, MailboxError>> {
        Box::pin(async move {
            let i = &self.inner;
            let deadline = tokio::time::Instant::now() + max;
            let mut link = i.delta.lock().await.clone();
            if link.is_none() {
                // No round yet: start one (what it lists is already unread mail) and resync.
                let (_, d) = i.delta_round(None, &|_| Ok(())).await?;
                *i.delta.lock().await = Some(d);
                return Ok(WaitOutcome::Resync);
            }
            loop {
                match i.delta_round(link.clone(), &|_| Ok(())).await {
                    Ok((ids, d)) => {
                        *i.delta.lock().await = Some(d.clone());
                        link = Some(d);
                        if !ids.is_empty() {
                            return Ok(WaitOutcome::NewMail(ids));
                        }
                    }
                    Err(MailboxError::NotFound { code, .. }) if code == "syncStateNotFound" => {
                        log::info!(
                            "the delta state of the mailbox was lost; listing the folder again"
                        );
                        *i.delta.lock().await = None;
                        return Ok(WaitOutcome::Resync);
                    }
                    Err(e) => return Err(e),
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Ok(WaitOutcome::Idle);
                }
                tokio::time::sleep(i.poll.min(deadline - now)).await;
                if tokio::time::Instant::now() >= deadline {
                    return Ok(WaitOutcome::Idle);
                }
            }
        })
    }

    fn catch_up<'a>(
        &'a self,
        state: &'a dyn SyncStateStore,
    ) -> BoxFuture<'a, Result<Vec<MessageRef>, MailboxError>> {
        Box::pin(async move {
            let i = &self.inner;
            // A stored link of another service (an EWS sync state, another tenant) is ignored.
            let stored = state.load()?.filter(|l| {
                i.same_service("catch up", Some(&Value::String(l.clone())))
                    .ok()
                    .flatten()
                    .is_some()
            });
            let save = |l: &str| state.save(l);
            let result = match i.delta_round(stored.clone(), &save).await {
                Err(MailboxError::NotFound { code, .. })
                    if code == "syncStateNotFound" && stored.is_some() =>
                {
                    log::info!("the stored delta state was lost; reading the folder anew");
                    i.delta_round(None, &save).await
                }
                other => other,
            };
            let (ids, d) = result?;
            *i.delta.lock().await = Some(d);
            Ok(ids)
        })
    }
}

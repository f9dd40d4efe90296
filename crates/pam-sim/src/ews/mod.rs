//! Stand-in: Exchange Web Services at `/EWS/Exchange.asmx`, as reference/ews.md describes an
//! on-premises Exchange 2016 server.
//!
//! Stored mailboxes of RFC 5322 messages with folders, item ids and change keys; GetFolder,
//! FindFolder, CreateFolder, FindItem, GetItem, UpdateItem, MoveItem, CreateItem,
//! SyncFolderItems, GetDelegate, Subscribe (streaming and pull), GetStreamingEvents (one long chunked answer
//! of concatenated envelopes with keep-alives), GetEvents, Unsubscribe; Basic and NTLM auth.
//! Admin API under `/sim/ews/`: deliver a raw `.eml`, read folders, sent mail and deliveries,
//! inject `ErrorServerBusy` in both shapes, drop open streams. Every request and response is
//! kept in a transcript so tests can validate them against Microsoft's schema. Guesses are in
//! ASSUMPTIONS.md (section EWS).

pub mod mime;
pub mod ntlm;
mod ops;
mod rights;
mod store;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::host::Hosted;

/// What this stand-in's handlers see: the host's shared parts and its own state.
type Shared = Hosted<EwsSim>;
pub use store::Busy;
use store::Store;
use wire::{EwsErr, M, SOAP, T};

/// Lowercase path prefixes served by this stand-in.
pub const PREFIXES: &[&str] = &["/ews/"];

/// The one endpoint (matched case-insensitively, as IIS does).
const ENDPOINT: &str = "/ews/exchange.asmx";
/// Largest request body accepted.
const MAX_REQUEST: usize = 48 << 20;
/// The `RequestServerVersion` values of Microsoft's schema (types.xsd `ExchangeVersionType`).
const SERVER_VERSIONS: &[&str] = &[
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2009",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2012",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2015",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
    "V2017_10_09",
    "V2018_01_08",
];

/// Largest mail the admin deliver endpoint takes.
pub const MAX_DELIVERY: usize = 32 << 20;
/// Transcript entries kept (oldest dropped first).
const MAX_TRANSCRIPT: usize = 20_000;

/// Scenario section `[ews]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EwsScenario {
    /// Accounts that may log on; each owns the mailbox of its address.
    #[serde(default = "default_users")]
    pub users: Vec<EwsUser>,
    /// More mailboxes (shared mailboxes, other users' mailboxes for impersonation).
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// Accepted authentication schemes: `basic`, `ntlm`, `bearer`.
    #[serde(default = "default_auth")]
    pub auth: Vec<String>,
    /// Keep-alive interval of GetStreamingEvents, in milliseconds.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u64,
    /// Length of one "minute" of ConnectionTimeout, in milliseconds (tests shorten it).
    #[serde(default = "default_minute")]
    pub stream_minute_ms: u64,
    /// Folder permission entries (`[[ews.folder_permissions]]`); every folder also has
    /// `Default` and `Anonymous` at `None` unless named here.
    #[serde(default)]
    pub folder_permissions: Vec<rights::FolderPermissionSpec>,
    /// Delegates of mailboxes (`[[ews.delegates]]`).
    #[serde(default)]
    pub delegates: Vec<rights::DelegateSpec>,
    /// Mailboxes whose GetDelegate answers `ErrorAccessDenied`.
    #[serde(default)]
    pub get_delegate_denied: Vec<String>,
    /// The sending rate per mailbox, enforced on a CreateItem that sends when set
    /// (ASSUMPTIONS.md G31).
    #[serde(default)]
    pub send_limit: Option<crate::send_limit::SendLimit>,
}

impl Default for EwsScenario {
    fn default() -> Self {
        EwsScenario {
            users: default_users(),
            mailboxes: vec![],
            auth: default_auth(),
            heartbeat_ms: default_heartbeat(),
            stream_minute_ms: default_minute(),
            folder_permissions: vec![],
            delegates: vec![],
            get_delegate_denied: vec![],
            send_limit: None,
        }
    }
}

/// An account of the stand-in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EwsUser {
    /// Logon name: `user@domain`, `DOMAIN\user` or `user`.
    pub username: String,
    pub password: String,
    /// Primary SMTP address of the user's own mailbox.
    pub mailbox: String,
    /// May act as any mailbox of the server (ExchangeImpersonation, app-only tokens).
    #[serde(default)]
    pub impersonation: bool,
}

fn default_users() -> Vec<EwsUser> {
    vec![EwsUser {
        username: "bot@example.com".into(),
        password: "bot-password".into(),
        mailbox: "bot@example.com".into(),
        impersonation: false,
    }]
}
fn default_auth() -> Vec<String> {
    vec!["basic".into(), "ntlm".into(), "bearer".into()]
}
fn default_heartbeat() -> u64 {
    5_000
}
fn default_minute() -> u64 {
    60_000
}

/// State of the stand-in.
pub struct EwsSim {
    cfg: EwsScenario,
    store: Mutex<Store>,
    transcript: Mutex<Vec<(String, Vec<u8>)>>,
    /// Woken on every queued event (streams wait on it).
    events: tokio::sync::Notify,
    /// Bumped to drop every open stream.
    drop_streams: tokio::sync::watch::Sender<u64>,
    /// NTLM handshakes and authenticated connections.
    pub(crate) ntlm: ntlm::NtlmState,
    /// Bearer tokens issued by the token endpoint: token -> user name.
    tokens: Mutex<Vec<(String, String)>>,
}

impl std::fmt::Debug for EwsSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwsSim").finish_non_exhaustive()
    }
}

impl EwsSim {
    pub fn new(s: &EwsScenario) -> anyhow::Result<Self> {
        let mut store = Store::default();
        store.send_rate = crate::send_limit::SendRate::new(s.send_limit);
        for u in &s.users {
            store.add_mailbox(&u.mailbox);
        }
        for m in &s.mailboxes {
            store.add_mailbox(m);
        }
        store.rights =
            rights::Rights::new(&s.folder_permissions, &s.delegates, &s.get_delegate_denied)?;
        for a in &s.auth {
            if !["basic", "ntlm", "bearer"].contains(&a.as_str()) {
                anyhow::bail!("ews.auth: unknown scheme {a:?} (basic, ntlm, bearer)");
            }
        }
        Ok(EwsSim {
            cfg: s.clone(),
            store: Mutex::new(store),
            transcript: Mutex::new(Vec::new()),
            events: tokio::sync::Notify::new(),
            drop_streams: tokio::sync::watch::channel(0).0,
            ntlm: ntlm::NtlmState::default(),
            tokens: Mutex::new(Vec::new()),
        })
    }

    /// Replace the folder permissions, delegates and `get_delegate_denied` with those of `s`
    /// (tests change a running stand-in's rights; the mail stays).
    pub fn set_rights(&self, s: &EwsScenario) -> anyhow::Result<()> {
        let r = rights::Rights::new(&s.folder_permissions, &s.delegates, &s.get_delegate_denied)?;
        self.lock().rights = r;
        Ok(())
    }

    /// From now on, every GetItem of the mail with this Message-ID fails with
    /// `ErrorItemCorrupt` (a mail the server cannot read; a test control).
    pub fn fail_fetches_of(&self, message_id: &str) {
        self.lock().unreadable.insert(norm_mid(message_id));
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every SOAP document received and sent so far: (name, bytes).
    pub fn transcript(&self) -> Vec<(String, Vec<u8>)> {
        self.transcript
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, name: String, doc: &[u8]) {
        let mut t = self.transcript.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() >= MAX_TRANSCRIPT {
            t.remove(0);
        }
        t.push((name, doc.to_vec()));
    }

    /// Deliver a raw RFC 5322 message into a folder (default: the inbox) of a mailbox, as
    /// transport does (the item has transport headers).
    pub fn deliver(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        raw: Vec<u8>,
        now_ms: i64,
    ) -> Result<String, String> {
        let id = self.place(mailbox, folder, raw, now_ms, true)?;
        self.events.notify_waiters();
        Ok(id)
    }

    /// Put a raw message into a folder the way CreateItem with MimeContent, drag and drop or an
    /// import does: unread, but not delivered, so without transport headers.
    pub fn import(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        raw: Vec<u8>,
        now_ms: i64,
    ) -> Result<String, String> {
        self.place(mailbox, folder, raw, now_ms, false)
    }

    fn place(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        raw: Vec<u8>,
        now_ms: i64,
        delivered: bool,
    ) -> Result<String, String> {
        let key = mailbox.to_ascii_lowercase();
        let mut st = self.lock();
        let m = st
            .mailbox(&key)
            .ok_or_else(|| format!("no mailbox {mailbox}"))?;
        let want = folder.unwrap_or("inbox");
        let fid = m
            .folders
            .iter()
            .find(|f| f.distinguished.as_deref() == Some(want) || f.name.eq_ignore_ascii_case(want))
            .map(|f| f.id.clone())
            .ok_or_else(|| format!("no folder {want} in {mailbox}"))?;
        let mid = mime::header(&mime::headers(&raw), "Message-ID").map(str::to_string);
        let id = st
            .add_item(&key, &fid, raw, false, now_ms, delivered)
            .ok_or("the folder vanished")?;
        if delivered {
            st.deliveries.push(store::Delivery {
                mailbox: mailbox.to_string(),
                item_id: id.clone(),
                internet_message_id: mid,
                delivered_ms: now_ms,
            });
        }
        Ok(id)
    }

    /// Set (or lift) the sending rate per mailbox (a test control; the scenario's `send_limit`).
    pub fn set_send_limit(&self, limit: Option<crate::send_limit::SendLimit>) {
        self.lock().send_rate.set(limit);
    }

    /// Sends refused for the sending rate.
    pub fn sends_refused(&self) -> u64 {
        self.lock().send_rate.refused
    }

    /// Make the next calls answer ErrorServerBusy.
    pub fn inject_busy(&self, b: Busy) {
        self.lock().busy.push(b);
    }

    /// Abort every open GetStreamingEvents connection.
    pub fn drop_streams(&self) {
        self.drop_streams.send_modify(|g| *g += 1);
    }

    /// Folders of a mailbox with their messages (admin view).
    pub fn folders_json(&self, mailbox: &str) -> Option<Value> {
        let st = self.lock();
        let m = st.mailbox(mailbox)?;
        let folders: Vec<Value> = m
            .folders
            .iter()
            .map(|f| {
                let items: Vec<Value> = m
                    .items
                    .values()
                    .filter(|i| i.folder == f.id)
                    .map(|i| {
                        let hs = mime::headers(&i.mime);
                        json!({
                            "id": i.id,
                            "subject": mime::header(&hs, "Subject"),
                            "message_id": mime::header(&hs, "Message-ID"),
                            "is_read": i.is_read,
                            "received_ms": i.received_ms,
                        })
                    })
                    .collect();
                json!({
                    "id": f.id,
                    "name": f.name,
                    "distinguished": f.distinguished,
                    "parent": f.parent,
                    "items": items,
                })
            })
            .collect();
        Some(json!({ "mailbox": m.address, "folders": folders }))
    }

    /// Mails sent through CreateItem.
    pub fn sent(&self) -> Vec<store::Sent> {
        self.lock().sent.clone()
    }

    /// Deliveries through the admin API.
    pub fn deliveries(&self) -> Vec<store::Delivery> {
        self.lock().deliveries.clone()
    }

    /// Number of subscriptions alive.
    pub fn subscription_count(&self) -> usize {
        self.lock().subs.len()
    }

    /// Issue a bearer token for a user (the stand-in's token endpoint).
    fn issue_token(&self, user: &str) -> String {
        let t: [u8; 24] = rand::random();
        let tok = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t);
        let mut v = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        v.push((tok.clone(), user.to_string()));
        tok
    }

    fn user(&self, name: &str) -> Option<&EwsUser> {
        self.cfg
            .users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(name))
    }
}

// ------------------------------------------------------------------ HTTP

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

fn unauthorized(cfg: &EwsScenario, ntlm_challenge: Option<String>) -> Box<Response> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    if let Some(c) = ntlm_challenge {
        if let Ok(v) = HeaderValue::from_str(&format!("NTLM {c}")) {
            h.append(header::WWW_AUTHENTICATE, v);
        }
        return Box::new(r);
    }
    for a in &cfg.auth {
        let v = match a.as_str() {
            "basic" => "Basic realm=\"127.0.0.1\"",
            "ntlm" => "NTLM",
            _ => "Bearer",
        };
        h.append(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
    }
    Box::new(r)
}

/// Who is calling, or the answer to send instead (401, NTLM challenge).
fn authenticate(state: &Shared, headers: &HeaderMap, conn: &str) -> Result<String, Box<Response>> {
    let ews = &state.sim;
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (scheme, value) = auth.split_once(' ').unwrap_or((auth, ""));
    let enabled = |s: &str| ews.cfg.auth.iter().any(|a| a == s);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" if enabled("basic") => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let (user, pass) = decoded.split_once(':').unwrap_or(("", ""));
            match ews.user(user) {
                Some(u) if constant_eq(u.password.as_bytes(), pass.as_bytes()) => {
                    Ok(u.username.clone())
                }
                _ => Err(unauthorized(&ews.cfg, None)),
            }
        }
        "ntlm" | "negotiate" if enabled("ntlm") => {
            match ews.ntlm.step(conn, value.trim(), &ews.cfg.users) {
                ntlm::Step::Challenge(c) => Err(unauthorized(&ews.cfg, Some(c))),
                ntlm::Step::Authenticated(user) => Ok(user),
                ntlm::Step::Refused => Err(unauthorized(&ews.cfg, None)),
            }
        }
        "bearer" if enabled("bearer") => {
            let toks = ews.tokens.lock().unwrap_or_else(|p| p.into_inner());
            toks.iter()
                .find(|(t, _)| constant_eq(t.as_bytes(), value.trim().as_bytes()))
                .map(|(_, u)| u.clone())
                .ok_or_else(|| unauthorized(&ews.cfg, None))
        }
        // No credentials on a connection NTLM already authenticated: IIS keeps it logged on.
        "" if enabled("ntlm") => ews
            .ntlm
            .connection_user(conn)
            .ok_or_else(|| unauthorized(&ews.cfg, None)),
        _ => Err(unauthorized(&ews.cfg, None)),
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The connection a request came on (NTLM authenticates connections, not requests).
fn connection_key(req: &Request) -> String {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default()
}

pub async fn handle(state: Arc<Shared>, req: Request) -> Response {
    if req.uri().path().to_ascii_lowercase() != ENDPOINT {
        return (StatusCode::NOT_FOUND, "pam-sim: no such EWS resource").into_response();
    }
    if req.method() != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "EWS answers POST").into_response();
    }
    let conn = connection_key(&req);
    let headers = req.headers().clone();
    // The body is read before authentication, as IIS does: an NTLM handshake answers 401 to
    // a request whose body was sent in full, and the connection stays open for the next leg
    // (answering before reading would leave the body unread and the connection dropped).
    let body = match axum::body::to_bytes(req.into_body(), MAX_REQUEST).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response(),
    };
    let user = match authenticate(&state, &headers, &conn) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    soap(state, &user, body).await
}

/// Answer one SOAP request of an authenticated user.
async fn soap(state: Arc<Shared>, user: &str, body: Bytes) -> Response {
    let ews = &state.sim;
    let now_ms = state.host.clock.now_ms();
    let text = String::from_utf8_lossy(&body).into_owned();
    let doc = match roxmltree::Document::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            ews.record("request-unparsed".into(), &body);
            return fault_response(
                ews,
                &EwsErr::new(
                    "ErrorSchemaValidation",
                    format!("The request failed schema validation: {e}"),
                ),
            );
        }
    };
    let root = doc.root_element();
    let Some(body_el) = (root.tag_name().namespace() == Some(SOAP)
        && root.tag_name().name() == "Envelope")
        .then(|| wire::child(root, SOAP, "Body"))
        .flatten()
    else {
        return fault_response(
            ews,
            &EwsErr::new(
                "ErrorSchemaValidation",
                "The request is not a SOAP 1.1 envelope.",
            ),
        );
    };
    let Some(op) = wire::elements(body_el)
        .next()
        .filter(|o| o.tag_name().namespace() == Some(M))
    else {
        return fault_response(
            ews,
            &EwsErr::new(
                "ErrorSchemaValidation",
                "The SOAP body holds no EWS operation.",
            ),
        );
    };
    let op_name = op.tag_name().name().to_string();
    ews.record(format!("request-{op_name}"), &body);

    // A RequestServerVersion Exchange does not know is refused before anything else (clients
    // such as exchangelib probe the newest version they know and step down on this answer).
    let header = wire::child(root, SOAP, "Header");
    if let Some(v) = header
        .and_then(|h| wire::child(h, T, "RequestServerVersion"))
        .and_then(|r| r.attribute("Version"))
        && !SERVER_VERSIONS.contains(&v)
    {
        return fault_response(
            ews,
            &EwsErr::new(
                "ErrorInvalidServerVersion",
                "The specified server version is invalid.",
            ),
        );
    }

    // Impersonation: act as another mailbox, if this account may.
    let me = ews.user(user).cloned();
    let mut mailbox = me
        .as_ref()
        .map(|u| u.mailbox.to_ascii_lowercase())
        .unwrap_or_default();
    if let Some(imp) = header
        .and_then(|h| wire::child(h, T, "ExchangeImpersonation"))
        .and_then(|i| wire::child(i, T, "ConnectingSID"))
    {
        let target = wire::child_text(imp, T, "PrimarySmtpAddress")
            .or_else(|| wire::child_text(imp, T, "SmtpAddress"))
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !me.as_ref().is_some_and(|u| u.impersonation) {
            return fault_response(
                ews,
                &EwsErr::new(
                    "ErrorImpersonateUserDenied",
                    "The account does not have permission to impersonate the requested user.",
                ),
            );
        }
        if ews.lock().mailbox(&target).is_none() {
            return fault_response(ews, &EwsErr::no_mailbox(&target));
        }
        mailbox = target;
    }
    let ctx = ops::Ctx { mailbox, now_ms };

    // Injected throttling.
    let busy = {
        let mut st = ews.lock();
        let pos = st
            .busy
            .iter()
            .position(|b| b.count > 0 && b.operation.as_deref().is_none_or(|o| o == op_name));
        pos.map(|i| {
            st.busy[i].count -= 1;
            let b = st.busy[i].clone();
            if st.busy[i].count == 0 {
                st.busy.remove(i);
            }
            b
        })
    };
    if let Some(b) = busy {
        let e = EwsErr::busy(b.back_off_ms);
        if b.shape == "message" {
            let body = wire::envelope(&wire::response(&op_name, &[wire::err(&op_name, &e, "")]));
            ews.record(format!("response-{op_name}-busy"), body.as_bytes());
            return xml_response(StatusCode::OK, body);
        }
        return fault_response(ews, &e);
    }

    if op_name == "GetStreamingEvents" {
        return streaming(state.clone(), op);
    }
    let result = {
        let mut st = ews.lock();
        match op_name.as_str() {
            "GetFolder" => ops::get_folder(&st, &ctx, op),
            "FindFolder" => ops::find_folder(&st, &ctx, op),
            "CreateFolder" => ops::create_folder(&mut st, &ctx, op),
            "FindItem" => ops::find_item(&st, &ctx, op),
            "GetItem" => ops::get_item(&st, &ctx, op),
            "UpdateItem" => ops::update_item(&mut st, &ctx, op),
            "MoveItem" => ops::move_item(&mut st, &ctx, op),
            "CreateItem" => ops::create_item(&mut st, &ctx, op),
            "SyncFolderItems" => ops::sync_folder_items(&st, &ctx, op),
            "Subscribe" => ops::subscribe(&mut st, &ctx, op),
            "Unsubscribe" => ops::unsubscribe(&mut st, &ctx, op),
            "GetEvents" => ops::get_events(&mut st, &ctx, op),
            "ConvertId" => ops::convert_id(&st, &ctx, op),
            "DeleteItem" => ops::delete_item(&mut st, &ctx, op),
            "GetDelegate" => rights::get_delegate(&st, &ctx, op),
            other => Err(EwsErr::new(
                "ErrorInvalidRequest",
                format!("pam-sim does not implement {other}."),
            )),
        }
    };
    ews.events.notify_waiters();
    match result {
        Ok(resp) => {
            let body = wire::envelope(&resp);
            ews.record(format!("response-{op_name}"), body.as_bytes());
            xml_response(StatusCode::OK, body)
        }
        Err(e) => fault_response(ews, &e),
    }
}

fn fault_response(ews: &EwsSim, e: &EwsErr) -> Response {
    let body = wire::envelope(&wire::fault(e));
    ews.record(format!("response-fault-{}", e.code), body.as_bytes());
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, body)
}

// ------------------------------------------------------------------ streaming

fn stream_message(inner: &str) -> String {
    wire::envelope(&wire::response(
        "GetStreamingEvents",
        &[wire::ok("GetStreamingEvents", inner)],
    ))
}

fn streaming(state: Arc<Shared>, op: roxmltree::Node<'_, '_>) -> Response {
    let ews = &state.sim;
    let ids: Vec<String> = wire::child(op, M, "SubscriptionIds")
        .map(|s| {
            wire::children(s, T, "SubscriptionId")
                .map(|n| wire::text(n).trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let minutes: u64 = wire::child_text(op, M, "ConnectionTimeout")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(30)
        .clamp(1, 30);
    let known = {
        let st = ews.lock();
        ids.iter()
            .all(|i| st.subs.get(i).is_some_and(|s| s.streaming))
            && !ids.is_empty()
    };
    if !known {
        let e = EwsErr::new("ErrorInvalidSubscription", "The subscription is invalid.");
        let body = wire::envelope(&wire::response(
            "GetStreamingEvents",
            &[wire::err(
                "GetStreamingEvents",
                &e,
                "<m:ConnectionStatus>Closed</m:ConnectionStatus>",
            )],
        ));
        ews.record("response-GetStreamingEvents".into(), body.as_bytes());
        return xml_response(StatusCode::OK, body);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let heartbeat = Duration::from_millis(ews.cfg.heartbeat_ms.max(10));
    let lifetime = Duration::from_millis(ews.cfg.stream_minute_ms.saturating_mul(minutes));
    let st2 = state.clone();
    tokio::spawn(async move {
        let ews = &st2.sim;
        let mut drop_rx = ews.drop_streams.subscribe();
        let deadline = tokio::time::Instant::now() + lifetime;
        let send = |doc: String| {
            ews.record("response-GetStreamingEvents".into(), doc.as_bytes());
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(doc))).await.is_ok() }
        };
        if !send(stream_message(
            "<m:ConnectionStatus>OK</m:ConnectionStatus>",
        ))
        .await
        {
            return;
        }
        loop {
            let notified = ews.events.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch: Vec<String> = {
                let mut st = ews.lock();
                ids.iter()
                    .filter_map(|id| {
                        let s = st.subs.get_mut(id)?;
                        let evs: Vec<store::Ev> = s.queue.drain(..).take(50).collect();
                        (!evs.is_empty()).then(|| {
                            format!(
                                "<m:Notification>{}</m:Notification>",
                                ops::events_xml(id, &evs, false)
                            )
                        })
                    })
                    .collect()
            };
            if !batch.is_empty() {
                let doc = stream_message(&format!(
                    "<m:Notifications>{}</m:Notifications>",
                    batch.concat()
                ));
                if !send(doc).await {
                    return;
                }
                continue;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(heartbeat) => {
                    if !send(stream_message("<m:ConnectionStatus>OK</m:ConnectionStatus>")).await {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = send(stream_message("<m:ConnectionStatus>Closed</m:ConnectionStatus>")).await;
                    return;
                }
                _ = drop_rx.changed() => {
                    let _ = tx.send(Err(std::io::Error::other("stream dropped by the admin API"))).await;
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

// ------------------------------------------------------------------ admin

#[derive(Deserialize)]
struct DeliverQuery {
    mailbox: Option<String>,
    folder: Option<String>,
}

#[derive(Deserialize)]
struct MailboxQuery {
    mailbox: Option<String>,
}

fn default_mailbox(s: &Shared) -> String {
    s.sim
        .cfg
        .users
        .first()
        .map(|u| u.mailbox.clone())
        .unwrap_or_default()
}

async fn admin_deliver(
    State(s): State<Arc<Shared>>,
    Query(q): Query<DeliverQuery>,
    body: Bytes,
) -> Result<axum::Json<Value>, (StatusCode, String)> {
    let mailbox = q.mailbox.unwrap_or_else(|| default_mailbox(&s));
    let now = s.host.clock.now_ms();
    s.sim
        .deliver(&mailbox, q.folder.as_deref(), body.to_vec(), now)
        .map(|id| axum::Json(json!({"item_id": id, "delivered_ms": now})))
        .map_err(|e| (StatusCode::NOT_FOUND, e))
}

async fn admin_folders(
    State(s): State<Arc<Shared>>,
    Query(q): Query<MailboxQuery>,
) -> Result<axum::Json<Value>, (StatusCode, String)> {
    let mailbox = q.mailbox.unwrap_or_else(|| default_mailbox(&s));
    s.sim
        .folders_json(&mailbox)
        .map(axum::Json)
        .ok_or((StatusCode::NOT_FOUND, format!("no mailbox {mailbox}")))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Stand-in for the identity provider's token endpoint (client credentials): the client id
/// and secret are an account of the `[ews]` scenario with impersonation rights.
async fn admin_token(
    State(s): State<Arc<Shared>>,
    axum::extract::Form(f): axum::extract::Form<TokenForm>,
) -> Response {
    let bad = |code: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": code, "error_description": "pam-sim token endpoint"})),
        )
            .into_response()
    };
    if f.grant_type.as_deref() != Some("client_credentials") {
        return bad("unsupported_grant_type");
    }
    let (Some(id), Some(secret)) = (f.client_id, f.client_secret) else {
        return bad("invalid_client");
    };
    match s.sim.user(&id) {
        Some(u) if constant_eq(u.password.as_bytes(), secret.as_bytes()) => {
            let tok = s.sim.issue_token(&u.username);
            axum::Json(json!({"access_token": tok, "token_type": "Bearer", "expires_in": 3599}))
                .into_response()
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"error": "invalid_client", "error_description": "bad client credentials"}),
            ),
        )
            .into_response(),
    }
}

pub fn admin_routes() -> Router<Arc<Shared>> {
    Router::new()
        // A mail as large as Exchange accepts (the default message size limits are 25-35 MB;
        // axum's own default body limit of 2 MB would hide every large-mail path).
        .route(
            "/deliver",
            post(admin_deliver).layer(axum::extract::DefaultBodyLimit::max(MAX_DELIVERY)),
        )
        .route("/folders", get(admin_folders))
        .route(
            "/sent",
            get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.sim.sent()) }),
        )
        .route(
            "/deliveries",
            get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.sim.deliveries()) }),
        )
        .route(
            "/busy",
            post(
                |State(s): State<Arc<Shared>>, axum::Json(b): axum::Json<Busy>| async move {
                    s.sim.inject_busy(b);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/streams/drop",
            post(|State(s): State<Arc<Shared>>| async move {
                s.sim.drop_streams();
                StatusCode::NO_CONTENT
            }),
        )
        .route("/oauth2/token", post(admin_token))
        .route(
            "/unreadable",
            post(
                |State(s): State<Arc<Shared>>, axum::Json(u): axum::Json<Unreadable>| async move {
                    s.sim.fail_fetches_of(&u.message_id);
                    StatusCode::NO_CONTENT
                },
            ),
        )
}

/// `POST /sim/ews/unreadable` and `/sim/graph/unreadable`: every fetch of this mail fails.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unreadable {
    pub message_id: String,
}

/// A Message-ID as the unreadable list keeps it: without brackets, in lower case.
pub(crate) fn norm_mid(m: &str) -> String {
    m.trim().trim_matches(['<', '>']).to_ascii_lowercase()
}

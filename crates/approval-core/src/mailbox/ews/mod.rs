//! The EWS mailbox: [`crate::mailbox::Mailbox`] over Exchange Web Services. SOAP documents are
//! built and parsed by the pure `ews-soap` crate; this module adds the transport
//! (`transport`), NTLM ([`ntlm`]) and the streaming-notification loop.
//!
//! Streaming: a background task holds a streaming subscription on the watched folder and one
//! GetStreamingEvents connection at a time (reconnecting on `Closed`, on errors and dropped
//! connections; resubscribing when the subscription is gone). After anything that may lose
//! events it reports [`WaitOutcome::Resync`] so the caller lists the folder. When streaming is
//! off or keeps failing, [`EwsMailbox::wait_for_new`] polls.

pub mod ntlm;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ews_soap::ops::folders::{CreateFolder, FindFolder, Traversal};
use ews_soap::ops::items::{FindItem, GetItem, ItemFilter, MoveItem, SendMessage, SetRead};
use ews_soap::ops::notifications::{
    ConnectionStatus, DocumentSplitter, GetStreamingEvents, MAIL_EVENTS, SubscribeStreaming,
    Unsubscribe,
};
use ews_soap::ops::rights::{GetDelegate, GetFolderPermissions};
use ews_soap::ops::sync::{Change, SyncFolderItems};
use ews_soap::soap::{self, RequestHeader, ResponseError, SoapError};
use ews_soap::{FolderId, FolderRef, ItemId, Page};
use tokio::sync::{Mutex, mpsc};

use super::{
    Address, BoxFuture, EwsAuth, FetchedMessage, Mailbox, MailboxConfig, MailboxError, MessageRef,
    OutgoingMail, SyncStateStore, WaitOutcome,
};
use crate::http::{Backoff, HttpSettings};
use crate::secret::Resolver;
use transport::{Auth, Channel, Transport};

/// Largest single envelope accepted from the notification stream.
const MAX_STREAM_DOCUMENT: usize = 8 << 20;
/// Consecutive stream failures after which `wait_for_new` polls instead.
const STREAM_FAILURES_BEFORE_POLLING: u32 = 5;

struct Inner {
    t: Transport,
    cfg: MailboxConfig,
    folders: Mutex<HashMap<String, FolderId>>,
}

/// What the stream task tells `wait_for_new`.
#[derive(Debug)]
enum Signal {
    /// Items announced by one envelope of the stream.
    NewMail(Vec<MessageRef>),
    Resync,
    /// Streaming is failing; poll until it recovers.
    Failing,
    Healthy,
}

struct Streamer {
    rx: mpsc::UnboundedReceiver<Signal>,
    task: tokio::task::JoinHandle<()>,
    failing: bool,
}

/// The EWS implementation of [`Mailbox`].
pub struct EwsMailbox {
    inner: Arc<Inner>,
    streamer: Mutex<Option<Streamer>>,
}

impl std::fmt::Debug for EwsMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwsMailbox")
            .field("url", &self.inner.t.url)
            .field("mailbox", &self.inner.cfg.mailbox)
            .finish()
    }
}

impl Drop for EwsMailbox {
    fn drop(&mut self) {
        if let Some(s) = self.streamer.get_mut().take() {
            s.task.abort();
        }
    }
}

fn to_ref(i: &ItemId) -> MessageRef {
    MessageRef {
        id: i.id.clone(),
        change_key: i.change_key.clone(),
    }
}

fn to_item(m: &MessageRef) -> ItemId {
    ItemId::new(m.id.clone(), m.change_key.clone())
}

fn protocol(op: &str, e: SoapError) -> MailboxError {
    MailboxError::Protocol {
        op: op.into(),
        detail: e.to_string(),
    }
}

fn addr(m: ews_soap::Mailbox) -> Address {
    Address {
        name: m.name,
        email: m.email,
        routing_type: m.routing_type,
    }
}

impl EwsMailbox {
    /// Build from `[mailbox]`, resolving the secrets it names.
    pub async fn new(cfg: &MailboxConfig, secrets: &Resolver) -> Result<Self, MailboxError> {
        cfg.validate()
            .map_err(|(k, m)| MailboxError::Config(format!("{k}: {m}")))?;
        let settings = HttpSettings {
            ca_bundle: cfg.ca_bundle.clone(),
            connect_timeout: Duration::from_secs(cfg.connect_timeout_secs),
            request_timeout: Duration::from_secs(cfg.request_timeout_secs),
            ..HttpSettings::default()
        };
        let tls = crate::tls::client_config(cfg.ca_bundle.as_deref())?;
        let auth = match cfg.auth {
            EwsAuth::Basic | EwsAuth::Ntlm => {
                let user = cfg.username.clone().unwrap_or_default();
                let pref = cfg
                    .password
                    .as_ref()
                    .ok_or_else(|| MailboxError::Config("mailbox.password is missing".into()))?;
                let password = secrets.resolve(pref).await?;
                if cfg.auth == EwsAuth::Basic {
                    Auth::Basic { user, password }
                } else {
                    Auth::Ntlm { user, password }
                }
            }
            EwsAuth::Oauth2 => {
                let o = cfg
                    .oauth
                    .as_ref()
                    .ok_or_else(|| MailboxError::Config("[mailbox.oauth] is missing".into()))?;
                let secret = secrets.resolve(&o.client_secret).await?;
                let http = crate::http::builder_with_tls(&settings, tls.clone())
                    .build()
                    .map_err(|e| MailboxError::Config(format!("HTTP client: {e}")))?;
                Auth::Bearer {
                    token_url: o.token_url.clone(),
                    client_id: o.client_id.clone(),
                    secret,
                    scope: o.scope.clone(),
                    http,
                    token: tokio::sync::Mutex::new(None),
                }
            }
        };
        let impersonate = cfg.impersonate || cfg.auth == EwsAuth::Oauth2;
        let t = Transport {
            url: cfg.url.clone(),
            auth,
            header: RequestHeader {
                version: cfg.server_version.clone(),
                impersonate: impersonate.then(|| cfg.mailbox.clone()),
                utc: true,
            },
            mailbox: cfg.mailbox.clone(),
            calls: Channel::new(&settings, tls.clone(), Some(settings.request_timeout))?,
            stream: Channel::new(&settings, tls, None)?,
            backoff: Backoff::new(cfg.retries, cfg.backoff_ms),
            max_back_off: Duration::from_secs(cfg.max_back_off_secs),
            request_timeout: settings.request_timeout,
            max_answer: transport::answer_cap(cfg.max_mail_mib),
        };
        Ok(EwsMailbox {
            inner: Arc::new(Inner {
                t,
                cfg: cfg.clone(),
                folders: Mutex::new(HashMap::new()),
            }),
            streamer: Mutex::new(None),
        })
    }
}

impl Inner {
    fn watched(&self) -> FolderRef {
        FolderRef::distinguished(&self.cfg.folder, Some(&self.cfg.mailbox))
    }

    /// A per-message error of an operation, made specific.
    fn message_error(&self, op: &str, e: ResponseError) -> MailboxError {
        match e.code.as_str() {
            "ErrorItemNotFound" | "ErrorFolderNotFound" => MailboxError::NotFound {
                op: op.into(),
                code: e.code,
            },
            "ErrorNonExistentMailbox" | "ErrorMailboxNotFound" => MailboxError::NoSuchMailbox {
                mailbox: self.cfg.mailbox.clone(),
                detail: e.code,
            },
            "ErrorAccessDenied" | "ErrorImpersonateUserDenied" => MailboxError::AuthFailed {
                user: self.cfg.username.clone().unwrap_or_default(),
                detail: e.to_string(),
            },
            _ => MailboxError::Ews {
                op: op.into(),
                code: e.code,
                text: e.text,
            },
        }
    }

    async fn list_new(&self) -> Result<Vec<MessageRef>, MailboxError> {
        let mut out = Vec::new();
        let mut page = Page {
            max_entries: 100,
            offset: 0,
        };
        loop {
            let req = FindItem {
                folder: self.watched(),
                filter: Some(ItemFilter::Unread),
                page,
            };
            let r = self.t.call("FindItem", &req.to_xml(), true).await?;
            let p = FindItem::parse(&r.body)
                .map_err(|e| protocol("FindItem", e))?
                .map_err(|e| self.message_error("FindItem", e))?;
            let n = p.items.len() as u32;
            out.extend(p.items.iter().map(to_ref));
            match p.paging.next_offset {
                Some(next) if !p.paging.includes_last && n > 0 && next > page.offset => {
                    page.offset = next
                }
                _ => break,
            }
        }
        Ok(out)
    }

    async fn fetch(&self, m: &MessageRef) -> Result<FetchedMessage, MailboxError> {
        let req = GetItem {
            ids: vec![to_item(m)],
        };
        let r = self.t.call("GetItem", &req.to_xml(), true).await?;
        // A mail of many MiB: read on the blocking pool, not on the executor.
        let parsed = tokio::task::spawn_blocking(move || req.parse(&r.body))
            .await
            .map_err(|e| MailboxError::Protocol {
                op: "GetItem".into(),
                detail: format!("the answer's reader failed: {e}"),
            })?;
        let d = parsed
            .map_err(|e| protocol("GetItem", e))?
            .remove(0)
            .map_err(|e| self.message_error("GetItem", e))?;
        let mime = d.mime.ok_or_else(|| MailboxError::Protocol {
            op: "GetItem".into(),
            detail: "the message came without its MIME content".into(),
        })?;
        Ok(FetchedMessage {
            reference: d.id.as_ref().map(to_ref).unwrap_or_else(|| m.clone()),
            mime,
            transport_headers: d.transport_headers,
            internet_headers: d.internet_headers,
            from: d.from.map(addr),
            sender: d.sender.map(addr),
            internet_message_id: d.internet_message_id,
            subject: d.subject,
            is_read: d.is_read,
        })
    }

    async fn mark_read(&self, m: &MessageRef) -> Result<MessageRef, MailboxError> {
        let req = SetRead {
            items: vec![to_item(m)],
            read: true,
        };
        let r = self.t.call("UpdateItem", &req.to_xml(), true).await?;
        let id = req
            .parse(&r.body)
            .map_err(|e| protocol("UpdateItem", e))?
            .remove(0)
            .map_err(|e| self.message_error("UpdateItem", e))?;
        Ok(to_ref(&id))
    }

    /// The id of a folder directly under the watched folder, created when missing.
    /// The id of a child folder of the watched folder, if it exists (nothing is created).
    async fn find_folder(&self, name: &str) -> Result<Option<FolderId>, MailboxError> {
        let key = name.to_lowercase();
        let find = FindFolder {
            parent: self.watched(),
            traversal: Traversal::Shallow,
            display_name: Some(name.to_string()),
            page: Page::default(),
        };
        let r = self.t.call("FindFolder", &find.to_xml(), true).await?;
        let page = FindFolder::parse(&r.body)
            .map_err(|e| protocol("FindFolder", e))?
            .map_err(|e| self.message_error("FindFolder", e))?;
        Ok(page
            .folders
            .iter()
            .find(|f| {
                f.display_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase() == key)
            })
            .map(|f| f.id.clone()))
    }

    async fn probe(&self, folders: &[&str]) -> Result<super::Probe, MailboxError> {
        let unread = self.list_new().await?.len();
        let mut found = Vec::new();
        for name in folders {
            found.push((name.to_string(), self.find_folder(name).await?.is_some()));
        }
        Ok(super::Probe {
            unread,
            folders: found,
        })
    }

    /// The watched folder's permission set and the mailbox's delegates (read-only).
    async fn folder_rights(&self) -> super::FolderRights {
        let req = GetFolderPermissions {
            folder: self.watched(),
        };
        let folder = match self.t.call("GetFolder", &req.to_xml(), true).await {
            Err(e) => Err(e.to_string()),
            Ok(r) => match GetFolderPermissions::parse(&r.body) {
                Err(e) => Err(protocol("GetFolder (PermissionSet)", e).to_string()),
                Ok(Err(e)) => Err(format!("GetFolder (PermissionSet) answered {e}")),
                Ok(Ok(perms)) => Ok(perms
                    .iter()
                    .map(|p| super::FolderGrant {
                        who: p.user.describe(),
                        smtp: p.user.primary_smtp_address.clone(),
                        distinguished: p.user.distinguished_user.clone(),
                        level: p.level.clone(),
                        can_create: p.can_create(),
                    })
                    .collect()),
            },
        };
        let req = GetDelegate {
            mailbox: self.cfg.mailbox.clone(),
        };
        let delegates = match self.t.call("GetDelegate", &req.to_xml(), true).await {
            Err(e) => Err(e.to_string()),
            Ok(r) => match GetDelegate::parse(&r.body) {
                Err(e) => Err(protocol("GetDelegate", e).to_string()),
                Ok(Err(e)) => Err(format!("GetDelegate answered {e}")),
                Ok(Ok(ds)) => Ok(ds
                    .iter()
                    .map(|d| super::Delegate {
                        who: d.user.describe(),
                        smtp: d.user.primary_smtp_address.clone(),
                        inbox_level: d.inbox_level.clone(),
                    })
                    .collect()),
            },
        };
        super::FolderRights { folder, delegates }
    }

    async fn folder_id(&self, name: &str) -> Result<FolderId, MailboxError> {
        let key = name.to_lowercase();
        if let Some(id) = self.folders.lock().await.get(&key) {
            return Ok(id.clone());
        }
        for round in 0..2 {
            if let Some(id) = self.find_folder(name).await? {
                self.folders.lock().await.insert(key, id.clone());
                return Ok(id);
            }
            if round == 1 {
                break;
            }
            let create = CreateFolder {
                parent: self.watched(),
                names: vec![name.to_string()],
            };
            let r = self.t.call("CreateFolder", &create.to_xml(), false).await?;
            match create
                .parse(&r.body)
                .map_err(|e| protocol("CreateFolder", e))?
                .remove(0)
            {
                Ok(id) => {
                    log::info!("created mailbox folder {name:?}");
                    self.folders.lock().await.insert(key, id.clone());
                    return Ok(id);
                }
                // Created meanwhile by someone else: look it up again.
                Err(e) if e.is("ErrorFolderExists") => continue,
                Err(e) => return Err(self.message_error("CreateFolder", e)),
            }
        }
        Err(MailboxError::NotFound {
            op: format!("folder {name:?}"),
            code: "ErrorFolderNotFound".into(),
        })
    }

    async fn file(&self, m: &MessageRef, folder: &str) -> Result<MessageRef, MailboxError> {
        let fid = self.folder_id(folder).await?;
        let req = MoveItem {
            to: FolderRef::Id(fid),
            items: vec![to_item(m)],
        };
        let r = self.t.call("MoveItem", &req.to_xml(), true).await?;
        match req
            .parse(&r.body)
            .map_err(|e| protocol("MoveItem", e))?
            .remove(0)
        {
            Ok(id) => Ok(to_ref(&id)),
            Err(e) if e.is("ErrorFolderNotFound") => {
                // The cached folder was deleted: forget it; the next attempt recreates it.
                self.folders.lock().await.remove(&folder.to_lowercase());
                Err(self.message_error("MoveItem", e))
            }
            Err(e) => Err(self.message_error("MoveItem", e)),
        }
    }

    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailboxError> {
        let req = SendMessage {
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            html: mail.html.clone(),
            to: mail.to.clone(),
            cc: mail.cc.clone(),
            save_copy: true,
            mailbox: Some(self.cfg.mailbox.clone()),
            send_key: mail.send_key.clone(),
            headers: mail.headers.clone(),
        };
        let r = self.t.call("CreateItem", &req.to_xml(), false).await?;
        SendMessage::parse(&r.body)
            .map_err(|e| protocol("CreateItem", e))?
            .map_err(|e| self.message_error("CreateItem", e))
    }

    /// A mail sent with this send key, in Sent Items or still on its way there (Outbox, Drafts).
    async fn was_sent(&self, key: &str) -> Result<bool, MailboxError> {
        for dist in ["sentitems", "outbox", "drafts"] {
            let req = FindItem {
                folder: FolderRef::distinguished(dist, Some(&self.cfg.mailbox)),
                filter: Some(ItemFilter::SendKey(key.to_string())),
                page: Page {
                    max_entries: 1,
                    offset: 0,
                },
            };
            let r = self.t.call("FindItem", &req.to_xml(), true).await?;
            let p = FindItem::parse(&r.body)
                .map_err(|e| protocol("FindItem", e))?
                .map_err(|e| self.message_error("FindItem", e))?;
            if !p.items.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn catch_up(&self, state: &dyn SyncStateStore) -> Result<Vec<MessageRef>, MailboxError> {
        let mut sync_state = state.load()?;
        let mut created: Vec<MessageRef> = Vec::new();
        let mut reset = false;
        loop {
            let req = SyncFolderItems {
                folder: self.watched(),
                sync_state: sync_state.clone(),
                max_changes: 100,
            };
            let r = self.t.call("SyncFolderItems", &req.to_xml(), true).await?;
            let page = match SyncFolderItems::parse(&r.body)
                .map_err(|e| protocol("SyncFolderItems", e))?
            {
                Ok(p) => p,
                Err(e) if e.is("ErrorInvalidSyncStateData") && !reset => {
                    log::warn!(
                        "the stored sync state is no longer valid; synchronising from the start"
                    );
                    sync_state = None;
                    reset = true;
                    continue;
                }
                Err(e) => return Err(self.message_error("SyncFolderItems", e)),
            };
            for c in page.changes {
                match c {
                    Change::Create(i) => created.push(to_ref(&i)),
                    Change::Delete(i) => created.retain(|m| m.id != i.id),
                    _ => {}
                }
            }
            state.save(&page.sync_state)?;
            sync_state = Some(page.sync_state);
            if page.includes_last {
                break;
            }
        }
        Ok(created)
    }

    async fn subscribe(&self) -> Result<String, MailboxError> {
        let req = SubscribeStreaming {
            folders: vec![self.watched()],
            event_types: MAIL_EVENTS.iter().map(|s| s.to_string()).collect(),
        };
        let r = self.t.call("Subscribe", &req.to_xml(), true).await?;
        SubscribeStreaming::parse(&r.body)
            .map_err(|e| protocol("Subscribe", e))?
            .map_err(|e| self.message_error("Subscribe", e))
    }

    /// Unsubscribe, best effort (the server expires it anyway).
    async fn unsubscribe(&self, id: &str) {
        let req = Unsubscribe {
            subscription_id: id.to_string(),
        };
        if let Err(e) = self.t.call("Unsubscribe", &req.to_xml(), true).await {
            log::debug!("unsubscribe failed: {e}");
        }
    }

    /// One GetStreamingEvents connection, until the server closes it or it breaks.
    async fn stream_once(
        &self,
        sub: &str,
        tx: &mpsc::UnboundedSender<Signal>,
    ) -> Result<StreamEnd, MailboxError> {
        let req = GetStreamingEvents {
            subscription_ids: vec![sub.to_string()],
            timeout_minutes: self.cfg.stream_timeout_minutes,
        };
        let doc = soap::envelope(&self.t.header, &req.to_xml());
        let mut resp = self.t.post(&self.t.stream, &doc, true).await.map_err(|e| {
            MailboxError::Unreachable {
                url: self.t.url.clone(),
                detail: crate::http::error_chain(&e),
            }
        })?;
        let status = resp.status().as_u16();
        if status == 401 {
            return Err(MailboxError::AuthFailed {
                user: self.cfg.username.clone().unwrap_or_default(),
                detail: "HTTP 401 on GetStreamingEvents".into(),
            });
        }
        if status != 200 && status != 500 {
            return Err(MailboxError::Protocol {
                op: "GetStreamingEvents".into(),
                detail: format!("HTTP {status}"),
            });
        }
        let mut splitter = DocumentSplitter::new(MAX_STREAM_DOCUMENT);
        loop {
            let chunk = resp.chunk().await.map_err(|e| MailboxError::Unreachable {
                url: self.t.url.clone(),
                detail: format!(
                    "notification stream broke: {}",
                    crate::http::error_chain(&e)
                ),
            })?;
            let Some(chunk) = chunk else {
                // The connection ended without `Closed`: treat as broken.
                return Err(MailboxError::Unreachable {
                    url: self.t.url.clone(),
                    detail: "notification stream ended without ConnectionStatus Closed".into(),
                });
            };
            let docs = splitter
                .push(&chunk)
                .map_err(|e| protocol("GetStreamingEvents", SoapError::Xml(e)))?;
            for d in docs {
                let r = match soap::parse_response(&d) {
                    Ok(r) => r,
                    Err(SoapError::Fault(f)) if f.code() == "ErrorServerBusy" => {
                        return Ok(StreamEnd::Busy(f.back_off));
                    }
                    Err(e) => return Err(protocol("GetStreamingEvents", e)),
                };
                match GetStreamingEvents::parse(&r.body)
                    .map_err(|e| protocol("GetStreamingEvents", e))?
                {
                    Ok(batch) => {
                        let mut items: Vec<MessageRef> = Vec::new();
                        let mut moved = false;
                        for ev in batch.notifications.iter().flat_map(|n| &n.events) {
                            if matches!(ev.kind.as_str(), "NewMailEvent" | "CreatedEvent")
                                && let Some(i) = &ev.item
                                && !items.iter().any(|m| m.id == i.id)
                            {
                                items.push(to_ref(i));
                            }
                            // A move is reported both into and out of the watched folder (our
                            // own filing moves mails out): not new mail; the folder is listed
                            // instead, which finds a mail moved in.
                            moved |= ev.kind == "MovedEvent";
                        }
                        if !items.is_empty() {
                            let _ = tx.send(Signal::NewMail(items));
                        }
                        if moved {
                            let _ = tx.send(Signal::Resync);
                        }
                        if !batch.error_subscription_ids.is_empty() {
                            return Ok(StreamEnd::Resubscribe);
                        }
                        if batch.status == Some(ConnectionStatus::Closed) {
                            return Ok(StreamEnd::Closed);
                        }
                    }
                    Err(e) => {
                        return Ok(match e.error.code.as_str() {
                            "ErrorServerBusy" => StreamEnd::Busy(e.error.back_off),
                            _ => StreamEnd::Resubscribe,
                        });
                    }
                }
            }
        }
    }
}

enum StreamEnd {
    Closed,
    Resubscribe,
    Busy(Option<Duration>),
}

/// The background loop: keep a subscription and a stream open, report what happens.
async fn stream_task(inner: Arc<Inner>, tx: mpsc::UnboundedSender<Signal>) {
    let mut sub: Option<String> = None;
    let mut failures: u32 = 0;
    let backoff = Backoff::new(u32::MAX, inner.cfg.backoff_ms.max(100));
    loop {
        if tx.is_closed() {
            break;
        }
        let id = match &sub {
            Some(id) => id.clone(),
            None => match inner.subscribe().await {
                Ok(id) => {
                    log::debug!("streaming subscription created");
                    // Mail that arrived before the subscription existed is only found by listing.
                    let _ = tx.send(Signal::Resync);
                    sub = Some(id.clone());
                    id
                }
                Err(e) => {
                    failures += 1;
                    log::warn!("streaming subscription failed ({e}); attempt {failures}");
                    if failures >= STREAM_FAILURES_BEFORE_POLLING {
                        let _ = tx.send(Signal::Failing);
                    }
                    tokio::time::sleep(backoff.delay(failures)).await;
                    continue;
                }
            },
        };
        match inner.stream_once(&id, &tx).await {
            Ok(StreamEnd::Closed) => {
                if failures >= STREAM_FAILURES_BEFORE_POLLING {
                    let _ = tx.send(Signal::Healthy);
                }
                failures = 0;
                log::debug!("notification stream closed by the server; reconnecting");
            }
            Ok(StreamEnd::Resubscribe) => {
                log::info!("streaming subscription expired or invalid; subscribing again");
                sub = None;
            }
            Ok(StreamEnd::Busy(d)) => {
                let d = d.unwrap_or(backoff.first).min(inner.t.max_back_off);
                log::warn!("notification stream throttled; retrying in {d:?}");
                tokio::time::sleep(d).await;
            }
            Err(e) => {
                failures += 1;
                log::warn!("notification stream failed ({e}); reconnecting (attempt {failures})");
                // Events during the gap stay queued on a live subscription, but a lost
                // subscription loses them: let the caller list the folder.
                let _ = tx.send(Signal::Resync);
                if failures >= STREAM_FAILURES_BEFORE_POLLING {
                    let _ = tx.send(Signal::Failing);
                }
                if matches!(e, MailboxError::AuthFailed { .. }) {
                    sub = None;
                }
                tokio::time::sleep(backoff.delay(failures.min(8))).await;
            }
        }
    }
    if let Some(id) = sub {
        inner.unsubscribe(&id).await;
    }
}

impl EwsMailbox {
    async fn wait(&self, max: Duration) -> Result<WaitOutcome, MailboxError> {
        let poll = self.inner.cfg.poll_interval();
        if !self.inner.cfg.streaming {
            tokio::time::sleep(max.min(poll)).await;
            return Ok(WaitOutcome::Resync);
        }
        let mut guard = self.streamer.lock().await;
        let s = guard.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(stream_task(self.inner.clone(), tx));
            Streamer {
                rx,
                task,
                failing: false,
            }
        });
        let deadline = tokio::time::Instant::now() + if s.failing { max.min(poll) } else { max };
        let mut new = Vec::new();
        let mut resync = false;
        let mut got_any = false;
        loop {
            let sig = if got_any {
                match s.rx.try_recv() {
                    Ok(sig) => Some(sig),
                    Err(_) => break,
                }
            } else {
                match tokio::time::timeout_at(deadline, s.rx.recv()).await {
                    Ok(Some(sig)) => Some(sig),
                    Ok(None) => None,
                    Err(_) => break,
                }
            };
            let Some(sig) = sig else { break };
            match sig {
                Signal::NewMail(ms) => {
                    got_any = true;
                    for m in ms {
                        if !new.iter().any(|n: &MessageRef| n.id == m.id) {
                            new.push(m);
                        }
                    }
                }
                Signal::Resync => {
                    got_any = true;
                    resync = true;
                }
                Signal::Failing => s.failing = true,
                Signal::Healthy => s.failing = false,
            }
        }
        Ok(if resync || (s.failing && new.is_empty()) {
            WaitOutcome::Resync
        } else if !new.is_empty() {
            WaitOutcome::NewMail(new)
        } else {
            WaitOutcome::Idle
        })
    }
}

impl Mailbox for EwsMailbox {
    fn list_new(&self) -> BoxFuture<'_, Result<Vec<MessageRef>, MailboxError>> {
        Box::pin(self.inner.list_new())
    }
    fn fetch<'a>(
        &'a self,
        msg: &'a MessageRef,
    ) -> BoxFuture<'a, Result<FetchedMessage, MailboxError>> {
        Box::pin(self.inner.fetch(msg))
    }
    fn mark_read<'a>(
        &'a self,
        msg: &'a MessageRef,
    ) -> BoxFuture<'a, Result<MessageRef, MailboxError>> {
        Box::pin(self.inner.mark_read(msg))
    }
    fn file<'a>(
        &'a self,
        msg: &'a MessageRef,
        folder: &'a str,
    ) -> BoxFuture<'a, Result<MessageRef, MailboxError>> {
        Box::pin(self.inner.file(msg, folder))
    }
    fn send<'a>(&'a self, mail: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailboxError>> {
        Box::pin(self.inner.send(mail))
    }
    fn was_sent<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, MailboxError>> {
        Box::pin(self.inner.was_sent(key))
    }
    fn wait_for_new(&self, max: Duration) -> BoxFuture<'_, Result<WaitOutcome, MailboxError>> {
        Box::pin(self.wait(max))
    }
    fn stop_watching(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            // The subscription is left to expire on the server: no call after a demotion.
            if let Some(s) = self.streamer.lock().await.take() {
                s.task.abort();
            }
        })
    }
    fn catch_up<'a>(
        &'a self,
        state: &'a dyn SyncStateStore,
    ) -> BoxFuture<'a, Result<Vec<MessageRef>, MailboxError>> {
        Box::pin(self.inner.catch_up(state))
    }

    fn probe<'a>(
        &'a self,
        folders: &'a [&'a str],
    ) -> BoxFuture<'a, Result<super::Probe, MailboxError>> {
        Box::pin(self.inner.probe(folders))
    }

    fn folder_rights(&self) -> BoxFuture<'_, super::FolderRights> {
        Box::pin(self.inner.folder_rights())
    }
}

//! The approval mailbox: the [`Mailbox`] trait the watcher reads and answers mail through, the
//! pieces every backend shares, and the backends side by side, one folder each.
//!
//! - [`config`]: `[mailbox]`, the backend (`kind`), the folder names (watched, `Processed`,
//!   `Refused`), timeouts and each backend's keys;
//! - [`sync_state`]: where the catch-up position is kept between runs;
//! - [`send_key`](mod@send_key): the key stored on a sent reply, by which a restarted watcher finds out
//!   whether it was sent;
//! - [`pace`]: one limiter per mailbox for every mail sent (`max_sends_per_minute`), and the
//!   server's quota answers turned into a deferral;
//! - [`oauth`]: app-only tokens from Entra ID, for the backends that reach Exchange Online;
//! - [`ews`]: Exchange Web Services (Exchange Server, and Exchange Online until EWS is
//!   switched off there);
//! - [`graph`]: Microsoft Graph (Exchange Online).
//!
//! A new backend is one new folder beside these, implementing [`Mailbox`], and one arm in
//! [`open`].
//!
//! Shaped for the watcher: list new messages, fetch one as raw MIME with its transport headers
//! and sender, mark it read, file it into a named folder (created if missing), send a mail,
//! wait for new mail (stream, or poll as fallback), catch up after a restart from a persisted
//! sync state. Object-safe (`dyn Mailbox`): methods return boxed futures. A client layer
//! (docs/architecture.md): the backends import the bottom layer and secrets, nothing above.

pub mod config;
pub mod ews;
pub mod graph;
pub mod oauth;
pub mod pace;
pub mod send_key;
pub mod sync_state;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use config::{EwsAuth, MailboxConfig, MailboxKind, OAuthConfig};
pub use send_key::send_key;
pub use sync_state::{FileSyncState, SyncStateStore};

use crate::exit::{Classify, Exit};

/// A boxed, sendable future (what the trait's methods return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Open the configured backend (secrets resolved through `secrets`, which may be closed
/// afterwards).
pub async fn open(
    cfg: &MailboxConfig,
    secrets: &crate::secret::Resolver,
) -> Result<Arc<dyn Mailbox>, MailboxError> {
    let inner: Arc<dyn Mailbox> = match cfg.kind {
        MailboxKind::Ews => Arc::new(ews::EwsMailbox::new(cfg, secrets).await?),
        MailboxKind::Graph => Arc::new(graph::GraphMailbox::new(cfg, secrets).await?),
    };
    Ok(Arc::new(pace::Paced::new(inner, cfg.pace_limits())))
}

/// A message in the mailbox. Ids change when a message is moved; keep the newest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef {
    pub id: String,
    pub change_key: Option<String>,
}

/// A mail address as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub name: Option<String>,
    pub email: Option<String>,
    /// `SMTP`, `EX` (Exchange-internal) …
    pub routing_type: Option<String>,
}

/// One fetched message: the raw RFC 5322 bytes plus the server's views of its headers.
#[derive(Debug, Clone)]
pub struct FetchedMessage {
    pub reference: MessageRef,
    /// The whole message (MIME), as received.
    pub mime: Vec<u8>,
    /// `PR_TRANSPORT_MESSAGE_HEADERS`: the full header block as received, when the server has it.
    pub transport_headers: Option<String>,
    /// The server's list of Internet headers (may be a subset).
    pub internet_headers: Vec<(String, String)>,
    pub from: Option<Address>,
    pub sender: Option<Address>,
    pub internet_message_id: Option<String>,
    pub subject: Option<String>,
    pub is_read: Option<bool>,
}

/// A mail to send.
#[derive(Debug, Clone, Default)]
pub struct OutgoingMail {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub text: String,
    /// When present, the mail is sent as HTML (the server derives a text part).
    pub html: Option<String>,
    /// A key stored on the mail (not in its headers) by which `Mailbox::was_sent` finds it.
    pub send_key: Option<String>,
    /// Internet headers the mail carries (name, value): the watcher's replies and reports carry
    /// [`AUTO_REPLY_HEADERS`]. EWS sets them as `InternetHeaders` extended properties, Graph as
    /// `internetMessageHeaders` (`X-` names) or PS_INTERNET_HEADERS named properties (others).
    pub headers: Vec<(String, String)>,
}

/// What marks the watcher's mail as automatic (RFC 3834 `Auto-Submitted`) and asks Exchange
/// and Outlook not to answer it with out-of-office or other automatic replies.
pub const AUTO_REPLY_HEADERS: [(&str, &str); 2] = [
    ("Auto-Submitted", "auto-replied"),
    ("X-Auto-Response-Suppress", "All"),
];

/// What waiting for new mail gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// New messages announced by the server.
    NewMail(Vec<MessageRef>),
    /// Events may have been lost (reconnect, new subscription, polling): list the folder.
    Resync,
    /// Nothing happened within the wait.
    Idle,
}

/// The mailbox, whatever the protocol.
pub trait Mailbox: Send + Sync {
    /// Unread messages in the watched folder, oldest first.
    fn list_new(&self) -> BoxFuture<'_, Result<Vec<MessageRef>, MailboxError>>;
    /// One message with its MIME, headers and sender.
    fn fetch<'a>(
        &'a self,
        msg: &'a MessageRef,
    ) -> BoxFuture<'a, Result<FetchedMessage, MailboxError>>;
    /// Mark read; returns the reference with its new change key.
    fn mark_read<'a>(
        &'a self,
        msg: &'a MessageRef,
    ) -> BoxFuture<'a, Result<MessageRef, MailboxError>>;
    /// Move into the named folder under the watched folder (created if missing); returns the
    /// message's new reference.
    fn file<'a>(
        &'a self,
        msg: &'a MessageRef,
        folder: &'a str,
    ) -> BoxFuture<'a, Result<MessageRef, MailboxError>>;
    /// Send a mail and keep a copy in Sent Items. A send the pace or the server's quota holds
    /// back answers [`MailboxError::SendDeferred`] at once (never a wait inside the call).
    fn send<'a>(&'a self, mail: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailboxError>>;
    /// How long until a send may go (`None`: now): asked before preparing a reply.
    fn send_wait(&self) -> Option<Duration> {
        None
    }
    /// For a send held back: how long until its turn (`None`: it may go now). Each call takes
    /// a turn, so held-back sends come back one by one at the pace (`pace::Pacer::turn_at`).
    fn send_turn(&self) -> Option<Duration> {
        None
    }
    /// Whether a mail sent with this `send_key` is in the mailbox (Sent Items, or on its way
    /// there): after a crash between sending and recording it, the server says, not a guess.
    fn was_sent<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, MailboxError>>;
    /// Wait up to `max` for new mail (streaming notifications, or polling as fallback).
    fn wait_for_new(&self, max: Duration) -> BoxFuture<'_, Result<WaitOutcome, MailboxError>>;
    /// Stop watching for new mail: drop a streaming subscription and its connection (a host
    /// that is no longer the active one). The next [`Mailbox::wait_for_new`] starts again.
    fn stop_watching(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// Messages created in the watched folder since the stored sync state (all current ones on
    /// the first run); saves the new state after each page.
    fn catch_up<'a>(
        &'a self,
        state: &'a dyn SyncStateStore,
    ) -> BoxFuture<'a, Result<Vec<MessageRef>, MailboxError>>;
    /// Prove the configuration without changing anything: sign in, read the watched folder,
    /// look for the named folders under it (not created). Behind `--check-mailbox`.
    fn probe<'a>(&'a self, folders: &'a [&'a str]) -> BoxFuture<'a, Result<Probe, MailboxError>>;
    /// Read-only: who else holds rights on the watched folder and the mailbox, as far as the
    /// protocol shows it (EWS: the folder's permission set and the delegates). Behind the site
    /// check's "rights" items. A backend that cannot read them says why.
    fn folder_rights(&self) -> BoxFuture<'_, FolderRights> {
        Box::pin(async {
            FolderRights::unreadable(
                "this mailbox backend cannot read folder permissions or delegates",
            )
        })
    }
}

/// What [`Mailbox::folder_rights`] found. Each part is `Err(reason)` when it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FolderRights {
    /// The watched folder's permission entries.
    pub folder: Result<Vec<FolderGrant>, String>,
    /// The mailbox's delegates.
    pub delegates: Result<Vec<Delegate>, String>,
}

impl FolderRights {
    /// Neither part readable, for this reason.
    pub fn unreadable(reason: &str) -> Self {
        FolderRights {
            folder: Err(reason.to_string()),
            delegates: Err(reason.to_string()),
        }
    }
}

/// One entry of a folder's permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FolderGrant {
    /// Human name: display name and address, `Default`, `Anonymous`, or a SID.
    pub who: String,
    pub smtp: Option<String>,
    /// `Default` or `Anonymous` for the two built-in entries.
    pub distinguished: Option<String>,
    /// The permission level as the server names it (`None`, `Author`, `Custom`, …).
    pub level: String,
    /// Whether this entry may create items in the folder (directly, or by its level; an
    /// unknown level counts as may).
    pub can_create: bool,
}

/// One delegate of the mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delegate {
    pub who: String,
    pub smtp: Option<String>,
    /// The delegate's permission level on the Inbox, when the server says.
    pub inbox_level: Option<String>,
}

/// What [`Mailbox::probe`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// Unread mails in the watched folder.
    pub unread: usize,
    /// Each named folder, and whether it exists yet (it is created at the first filing).
    pub folders: Vec<(String, bool)>,
}

/// Errors of the mailbox. Never carry a password or a token.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("mailbox server at {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("mailbox server at {url} did not answer {op} within {secs}s")]
    Timeout { url: String, op: String, secs: u64 },
    #[error("{url} is not an EWS endpoint: {detail}")]
    WrongUrl { url: String, detail: String },
    #[error("the mailbox server refused the credentials of {user}: {detail}")]
    AuthFailed { user: String, detail: String },
    #[error("the mailbox {mailbox} does not exist on the server ({detail})")]
    NoSuchMailbox { mailbox: String, detail: String },
    #[error(
        "the mailbox server is busy (throttled) and stayed busy through {attempts} attempts of {op}"
    )]
    Busy { op: String, attempts: u32 },
    #[error("{op}: the item or folder is gone ({code})")]
    NotFound { op: String, code: String },
    #[error("{op} failed: {code}{}", if text.is_empty() { String::new() } else { format!(": {text}") })]
    Ews {
        op: String,
        code: String,
        text: String,
    },
    #[error("{op}: unreadable answer from the mailbox server: {detail}")]
    Protocol { op: String, detail: String },
    /// The answer was larger than its cap (a mail over `mailbox.max_mail_mib`): not read.
    #[error("{op}: {detail}")]
    TooLarge { op: String, detail: String },
    /// A send held back, not carried out: by the mailbox's pace (`by_server` false) or refused
    /// by the server for its rate or quota (429, `ErrorSubmissionQuotaExceeded`). Transient:
    /// the mail is owed and sent once `wait` has passed.
    #[error("sending deferred for {}s: {}", wait.as_secs_f64().ceil(), if *by_server { format!("the server refused it for its sending limit ({detail})") } else { format!("the sending pace is reached ({detail})") })]
    SendDeferred {
        wait: Duration,
        by_server: bool,
        detail: String,
    },
    #[error("{op} may or may not have been carried out: {detail}")]
    OutcomeUnknown { op: String, detail: String },
    #[error("sync state file {}: {detail}", path.display())]
    State { path: PathBuf, detail: String },
    #[error("mailbox configuration: {0}")]
    Config(String),
    #[error("{op}: the server denied access: {detail}")]
    Denied {
        op: String,
        detail: String,
        hint: &'static str,
    },
    #[error("the token endpoint {url} refused app {client_id}: {detail}")]
    TokenRefused {
        url: String,
        client_id: String,
        detail: String,
        exit: Exit,
        hint: &'static str,
    },
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// A body that could not be read: larger than its cap, or cut off by the connection.
pub(crate) fn body_fault(op: &str, url: &str, e: crate::http::BodyError) -> MailboxError {
    match e {
        crate::http::BodyError::Transport(t) => MailboxError::Unreachable {
            url: url.to_string(),
            detail: crate::http::error_chain(&t),
        },
        too_large => MailboxError::TooLarge {
            op: op.to_string(),
            detail: too_large.to_string(),
        },
    }
}

impl MailboxError {
    /// Whether the fault is the item's own, not the server's: an answer for this one mail that
    /// is too large, unreadable, or an error code for it. Such a fetch fails the same way each
    /// time; the watcher counts its attempts and refuses the mail after `watcher.max_attempts`.
    pub fn is_item_fault(&self) -> bool {
        match self {
            MailboxError::TooLarge { .. } | MailboxError::Protocol { .. } => true,
            // Codes of a store that is down or moving say nothing about the item.
            MailboxError::Ews { code, .. } => !matches!(
                code.as_str(),
                "ErrorInternalServerTransientError"
                    | "ErrorMailboxStoreUnavailable"
                    | "ErrorMailboxMoveInProgress"
                    | "ErrorServerBusy"
                    | "ErrorTimeoutExpired"
                    | "ErrorConnectionFailed"
            ),
            _ => false,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MailboxError::Unreachable { .. }
                | MailboxError::Timeout { .. }
                | MailboxError::Busy { .. }
                | MailboxError::SendDeferred { .. }
        )
    }

    /// The delay of a send held back by the pace or the server's quota.
    pub fn send_deferred(&self) -> Option<Duration> {
        match self {
            MailboxError::SendDeferred { wait, .. } => Some(*wait),
            _ => None,
        }
    }
}

impl Classify for MailboxError {
    fn service(&self) -> &'static str {
        "mailbox"
    }
    fn exit(&self) -> Exit {
        match self {
            MailboxError::Unreachable { .. }
            | MailboxError::Protocol { .. }
            | MailboxError::TooLarge { .. } => Exit::Unavailable,
            MailboxError::Timeout { .. }
            | MailboxError::Busy { .. }
            | MailboxError::SendDeferred { .. }
            | MailboxError::OutcomeUnknown { .. } => Exit::TempFail,
            MailboxError::WrongUrl { .. }
            | MailboxError::NoSuchMailbox { .. }
            | MailboxError::Config(_) => Exit::Config,
            MailboxError::AuthFailed { .. } => Exit::NoPerm,
            MailboxError::NotFound { .. } => Exit::Refused,
            MailboxError::Ews { .. } => Exit::Unavailable,
            MailboxError::State { .. } => Exit::Software,
            MailboxError::TokenRefused { exit, .. } => *exit,
            MailboxError::Denied { .. } => Exit::NoPerm,
            MailboxError::Secret(e) => e.exit(),
            MailboxError::Tls(e) => e.exit(),
        }
    }

    fn hint(&self) -> Option<String> {
        Some(
            match self {
                MailboxError::WrongUrl { .. } => {
                    "set mailbox.url to the EWS endpoint, e.g. https://mail.example.com/EWS/Exchange.asmx"
                }
                MailboxError::AuthFailed { .. } => {
                    "check mailbox.username, the password secret and mailbox.auth (basic, ntlm, oauth2)"
                }
                MailboxError::NoSuchMailbox { .. } => {
                    "check mailbox.mailbox (the SMTP address) and the account's rights on it"
                }
                MailboxError::Busy { .. } => "Exchange is throttling this account; try again later",
                MailboxError::SendDeferred { by_server: true, .. } => {
                    "the mailbox's sending limit is reached (Exchange Online: 30 messages a minute, 10,000 recipients a day); the mail is sent once the server allows; set mailbox.max_sends_per_minute at or below the server's limit"
                }
                MailboxError::Unreachable { url, .. } | MailboxError::Timeout { url, .. }
                    if url.contains("/oauth2/") =>
                {
                    return Some(format!(
                        "the sign-in service {} cannot be reached: check the network path to it (a firewall rule, or a proxy set with HTTPS_PROXY) and mailbox.graph.authority (Graph) or mailbox.oauth.token_url (EWS)",
                        url::Url::parse(url)
                            .ok()
                            .and_then(|u| u.host_str().map(str::to_string))
                            .unwrap_or_default()
                    ));
                }
                MailboxError::Unreachable { .. } | MailboxError::Timeout { .. } => {
                    "check the network path to the mail server (a firewall rule, or a proxy set with HTTPS_PROXY) and mailbox.url"
                }
                MailboxError::State { .. } => "check the permissions of the watcher's state directory",
                MailboxError::TokenRefused { hint, .. } | MailboxError::Denied { hint, .. } => hint,
                MailboxError::Secret(e) => return e.hint(),
                MailboxError::Tls(e) => return e.hint(),
                _ => return None,
            }
            .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_items_own_faults_count_towards_refusing_it() {
        let ews = |code: &str| MailboxError::Ews {
            op: "GetItem".into(),
            code: code.into(),
            text: String::new(),
        };
        for own in [
            MailboxError::TooLarge {
                op: "GetItem".into(),
                detail: "too large".into(),
            },
            MailboxError::Protocol {
                op: "GetItem".into(),
                detail: "bad XML".into(),
            },
            ews("ErrorItemCorrupt"),
            ews("ErrorInternalServerError"),
        ] {
            assert!(own.is_item_fault(), "{own}");
        }
        for server in [
            ews("ErrorMailboxStoreUnavailable"),
            ews("ErrorInternalServerTransientError"),
            MailboxError::Unreachable {
                url: "u".into(),
                detail: "refused".into(),
            },
            MailboxError::Timeout {
                url: "u".into(),
                op: "GetItem".into(),
                secs: 30,
            },
            MailboxError::Busy {
                op: "GetItem".into(),
                attempts: 4,
            },
            MailboxError::NotFound {
                op: "GetItem".into(),
                code: "ErrorItemNotFound".into(),
            },
            MailboxError::AuthFailed {
                user: "u".into(),
                detail: "401".into(),
            },
        ] {
            assert!(!server.is_item_fault(), "{server}");
        }
    }

    /// A sign-in service that cannot be reached is named as such, with the key that sets it and
    /// the proxy variable; the mail server's failure names mailbox.url.
    #[test]
    fn an_unreachable_sign_in_service_is_not_blamed_on_mailbox_url() {
        let login = MailboxError::Unreachable {
            url: "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token".into(),
            detail: "connection refused".into(),
        };
        let hint = login.hint().expect("a hint");
        assert!(hint.contains("login.microsoftonline.com"), "{hint}");
        assert!(hint.contains("mailbox.graph.authority"), "{hint}");
        assert!(hint.contains("HTTPS_PROXY"), "{hint}");
        assert!(!hint.contains("mailbox.url"), "{hint}");
        let server = MailboxError::Timeout {
            url: "https://graph.microsoft.com/v1.0/users/bot@example.com".into(),
            op: "a read".into(),
            secs: 30,
        };
        let hint = server.hint().expect("a hint");
        assert!(hint.contains("mailbox.url"), "{hint}");
    }
}

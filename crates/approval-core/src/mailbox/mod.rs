//! The `Mailbox` trait the watcher reads and answers mail through, and its implementations
//! (EWS first; Graph and IMAP later).
//!
//! Shaped for the watcher: list new messages, fetch one as raw MIME with its transport headers
//! and sender, mark it read, file it into a named folder (created if missing), send a mail,
//! wait for new mail (stream, or poll as fallback), catch up after a restart from a persisted
//! sync state. Object-safe (`dyn Mailbox`): methods return boxed futures.

pub mod ews;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exit::{Classify, Exit};
use crate::secret::SecretRef;

/// A boxed, sendable future (what the trait's methods return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `[mailbox]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// Mailbox access protocol; only `ews` so far.
    #[serde(default)]
    pub kind: MailboxKind,
    /// EWS endpoint, e.g. `https://mail.example.com/EWS/Exchange.asmx`.
    pub url: String,
    /// `basic`, `ntlm` or `oauth2` (client credentials, app-only).
    #[serde(default)]
    pub auth: EwsAuth,
    /// Logon name for basic/ntlm: `DOMAIN\user` or `user@example.com`.
    pub username: Option<String>,
    /// Password for basic/ntlm.
    pub password: Option<SecretRef>,
    /// SMTP address of the approval mailbox.
    pub mailbox: String,
    /// Send `ExchangeImpersonation` of `mailbox` (required with oauth2 app-only).
    #[serde(default)]
    pub impersonate: bool,
    /// `t:RequestServerVersion`, e.g. `Exchange2016` or `Exchange2013_SP1`.
    #[serde(default = "defaults::server_version")]
    pub server_version: String,
    /// PEM bundle of the CAs to trust instead of the system store.
    pub ca_bundle: Option<PathBuf>,
    #[serde(default = "crate::config::defaults::connect_timeout")]
    pub connect_timeout_secs: u64,
    #[serde(default = "crate::config::defaults::request_timeout")]
    pub request_timeout_secs: u64,
    /// Retries of a call on transient faults (busy, 503, 401, timeouts).
    #[serde(default = "crate::config::defaults::retries")]
    pub retries: u32,
    /// First backoff delay in milliseconds (doubles each retry, with jitter).
    #[serde(default = "crate::config::defaults::backoff_ms")]
    pub backoff_ms: u64,
    /// Longest wait honoured for a server's `BackOffMilliseconds`, in seconds.
    #[serde(default = "defaults::max_back_off")]
    pub max_back_off_secs: u64,
    /// Folder the notifications arrive in (a distinguished id such as `inbox`).
    #[serde(default = "defaults::inbox")]
    pub folder: String,
    /// Folder (under the inbox) for processed mail.
    #[serde(default = "defaults::processed")]
    pub processed_folder: String,
    /// Folder (under the inbox) for refused mail.
    #[serde(default = "defaults::refused")]
    pub refused_folder: String,
    /// Use streaming notifications; when false (or when streaming keeps failing), poll.
    #[serde(default = "crate::config::defaults::yes")]
    pub streaming: bool,
    /// GetStreamingEvents connection lifetime in minutes (1..=30).
    #[serde(default = "defaults::stream_minutes")]
    pub stream_timeout_minutes: u32,
    /// Poll interval when not streaming, in seconds.
    #[serde(default = "defaults::poll")]
    pub poll_interval_secs: u64,
    /// OAuth2 client credentials (auth = "oauth2").
    pub oauth: Option<OAuthConfig>,
}

/// `[mailbox.oauth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// Token endpoint, e.g. `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretRef,
    #[serde(default = "defaults::scope")]
    pub scope: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailboxKind {
    #[default]
    Ews,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EwsAuth {
    #[default]
    Basic,
    Ntlm,
    Oauth2,
}

mod defaults {
    pub fn server_version() -> String {
        "Exchange2016".into()
    }
    pub fn max_back_off() -> u64 {
        300
    }
    pub fn inbox() -> String {
        "inbox".into()
    }
    pub fn processed() -> String {
        "Processed".into()
    }
    pub fn refused() -> String {
        "Refused".into()
    }
    pub fn stream_minutes() -> u32 {
        30
    }
    pub fn poll() -> u64 {
        60
    }
    pub fn scope() -> String {
        "https://outlook.office365.com/.default".into()
    }
}

impl MailboxConfig {
    /// Check values that serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: &str| Err((format!("mailbox.{k}"), m.to_string()));
        if let Err(m) = crate::tls::check_url(&self.url) {
            return Err(("mailbox.url".into(), m));
        }
        if !self.mailbox.contains('@') || self.mailbox.contains(['<', '>', ' ', '\r', '\n']) {
            return e("mailbox", "must be an SMTP address such as bot@example.com");
        }
        if self.server_version.is_empty()
            || !self
                .server_version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return e(
                "server_version",
                "must look like Exchange2016 or Exchange2013_SP1",
            );
        }
        match self.auth {
            EwsAuth::Basic | EwsAuth::Ntlm => {
                if self.username.as_deref().is_none_or(str::is_empty) {
                    return e("username", "is required with auth = basic or ntlm");
                }
                if self.password.is_none() {
                    return e(
                        "password",
                        "is required with auth = basic or ntlm (a secret reference)",
                    );
                }
            }
            EwsAuth::Oauth2 => {
                let Some(o) = &self.oauth else {
                    return e(
                        "oauth",
                        "the [mailbox.oauth] section is required with auth = oauth2",
                    );
                };
                if let Err(m) = crate::tls::check_url(&o.token_url) {
                    return Err(("mailbox.oauth.token_url".into(), m));
                }
            }
        }
        if self.connect_timeout_secs == 0 {
            return e("connect_timeout_secs", "must be at least 1");
        }
        if self.request_timeout_secs == 0 {
            return e("request_timeout_secs", "must be at least 1");
        }
        if !(1..=30).contains(&self.stream_timeout_minutes) {
            return e("stream_timeout_minutes", "must be between 1 and 30");
        }
        if self.poll_interval_secs == 0 {
            return e("poll_interval_secs", "must be at least 1");
        }
        Ok(())
    }
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
}

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

/// Where the catch-up position is kept between runs.
pub trait SyncStateStore: Send + Sync {
    fn load(&self) -> Result<Option<String>, MailboxError>;
    fn save(&self, state: &str) -> Result<(), MailboxError>;
}

/// A sync state in a file, replaced atomically, readable by the owner only.
#[derive(Debug, Clone)]
pub struct FileSyncState {
    pub path: PathBuf,
}

impl FileSyncState {
    pub fn new(path: impl AsRef<Path>) -> Self {
        FileSyncState {
            path: path.as_ref().to_path_buf(),
        }
    }
}

impl SyncStateStore for FileSyncState {
    fn load(&self) -> Result<Option<String>, MailboxError> {
        match std::fs::read_to_string(&self.path) {
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(MailboxError::State {
                path: self.path.clone(),
                detail: e.to_string(),
            }),
        }
    }

    fn save(&self, state: &str) -> Result<(), MailboxError> {
        use std::io::Write as _;
        let err = |e: std::io::Error| MailboxError::State {
            path: self.path.clone(),
            detail: e.to_string(),
        };
        let tmp = self.path.with_extension("tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(state.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
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
    /// Send a mail and keep a copy in Sent Items.
    fn send<'a>(&'a self, mail: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailboxError>>;
    /// Whether a mail sent with this `send_key` is in the mailbox (Sent Items, or on its way
    /// there): after a crash between sending and recording it, the server says, not a guess.
    fn was_sent<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, MailboxError>>;
    /// Wait up to `max` for new mail (streaming notifications, or polling as fallback).
    fn wait_for_new(&self, max: Duration) -> BoxFuture<'_, Result<WaitOutcome, MailboxError>>;
    /// Messages created in the watched folder since the stored sync state (all current ones on
    /// the first run); saves the new state after each page.
    fn catch_up<'a>(
        &'a self,
        state: &'a dyn SyncStateStore,
    ) -> BoxFuture<'a, Result<Vec<MessageRef>, MailboxError>>;
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
    #[error("{op} may or may not have been carried out: {detail}")]
    OutcomeUnknown { op: String, detail: String },
    #[error("sync state file {}: {detail}", path.display())]
    State { path: PathBuf, detail: String },
    #[error("mailbox configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl MailboxError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MailboxError::Unreachable { .. }
                | MailboxError::Timeout { .. }
                | MailboxError::Busy { .. }
        )
    }
}

impl Classify for MailboxError {
    fn exit(&self) -> Exit {
        match self {
            MailboxError::Unreachable { .. } | MailboxError::Protocol { .. } => Exit::Unavailable,
            MailboxError::Timeout { .. }
            | MailboxError::Busy { .. }
            | MailboxError::OutcomeUnknown { .. } => Exit::TempFail,
            MailboxError::WrongUrl { .. }
            | MailboxError::NoSuchMailbox { .. }
            | MailboxError::Config(_) => Exit::Config,
            MailboxError::AuthFailed { .. } => Exit::NoPerm,
            MailboxError::NotFound { .. } => Exit::Refused,
            MailboxError::Ews { .. } => Exit::Unavailable,
            MailboxError::State { .. } => Exit::Software,
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
                MailboxError::Unreachable { .. } | MailboxError::Timeout { .. } => {
                    "check the network path to the Exchange server and mailbox.url"
                }
                MailboxError::State { .. } => "check the permissions of the watcher's state directory",
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

    #[derive(Deserialize)]
    struct Wrapper {
        mailbox: MailboxConfig,
    }

    #[test]
    fn the_shipped_example_parses_and_validates() {
        let text = include_str!("../../../../examples/config.d/mailbox.toml");
        let w: Wrapper = toml::from_str(text).expect("example parses");
        w.mailbox.validate().expect("example validates");
        assert_eq!(w.mailbox.auth, EwsAuth::Ntlm);
        assert_eq!(
            w.mailbox.username.as_deref(),
            Some("EXAMPLE\\svc-pam-approval")
        );
    }

    #[test]
    fn validation_names_the_key() {
        let base = r#"
            url = "https://mail.example.com/EWS/Exchange.asmx"
            username = "u"
            password = "env:PW"
            mailbox = "bot@example.com"
        "#;
        let ok: MailboxConfig = toml::from_str(base).expect("parses");
        ok.validate().expect("valid");
        for (bad, key) in [
            (base.replace("https://mail", "http://mail"), "mailbox.url"),
            (base.replace("bot@example.com", "bot"), "mailbox.mailbox"),
            (
                format!("{base}\nserver_version = \"2016<x>\""),
                "mailbox.server_version",
            ),
            (format!("{base}\nauth = \"oauth2\""), "mailbox.oauth"),
            (
                format!("{base}\nstream_timeout_minutes = 31"),
                "mailbox.stream_timeout_minutes",
            ),
        ] {
            let c: MailboxConfig = toml::from_str(&bad).expect("parses");
            assert_eq!(c.validate().expect_err("invalid").0, key);
        }
        let no_pw = base.replace("password = \"env:PW\"", "");
        let c: MailboxConfig = toml::from_str(&no_pw).expect("parses");
        assert_eq!(c.validate().expect_err("invalid").0, "mailbox.password");
        assert!(toml::from_str::<MailboxConfig>(&format!("{base}\nbogus = 1")).is_err());
    }

    #[test]
    fn sync_state_file_round_trips_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let s = FileSyncState::new(dir.path().join("sync"));
        assert_eq!(s.load().expect("load"), None);
        s.save("H4sIAAA=").expect("save");
        assert_eq!(s.load().expect("load").as_deref(), Some("H4sIAAA="));
        let mode = std::fs::metadata(dir.path().join("sync"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }
}

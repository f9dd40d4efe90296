//! Ticket validation against ServiceNow and BMC Remedy / Helix, as CyberArk's "enterprise
//! ticketing system" integration does it (reference: ticketing.md).
//!
//! Order of the validations: failsafe bypass code, format (allow-list and the type's pattern),
//! exactly one record, state, approval, operation window, requester. Each failure has a stable
//! reason code ([`rules::Check::reason`]). A system that cannot be asked means "cannot validate":
//! the ticket is never taken as valid then.
//!
//! Lookups cannot be steered by the id: it must pass [`rules::allow_listed`] and the type's
//! pattern before any request ([`TicketId`] can only be made that way), queries are built from
//! constants plus the percent-encoded id, and exactly one record whose number equals the id byte
//! for byte is required.
//!
//! - [`config`]: `[ticketing]` and its checks;
//! - [`rules`]: the validations as pure functions;
//! - [`bypass`]: hashed bypass codes;
//! - [`applies`]: which requests need a ticket and where it comes from (for the watcher);
//! - [`servicenow`], [`remedy`]: the two [`TicketSystem`]s;
//! - [`validate`]: the validator that runs it all, and the batch behind `validate-ticket`.

pub mod applies;
pub mod bypass;
pub mod config;
pub mod remedy;
pub mod rules;
pub mod servicenow;
mod transport;
pub mod validate;

use std::future::Future;
use std::pin::Pin;

pub use applies::{Applies, TicketNeed, TicketSource};
pub use config::{SystemKind, TicketKind, TicketingConfig};
pub use rules::TicketRecord;
pub use validate::{Outcome, Validator, Verdict};

use crate::exit::{Classify, Exit};

/// A ticket id that passed the allow-list: the only form a [`TicketSystem`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketId(String);

impl TicketId {
    /// `None` unless the id passes [`rules::allow_listed`].
    pub fn new(id: &str) -> Option<Self> {
        rules::allow_listed(id).then(|| TicketId(id.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TicketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a system found for an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Exactly one record, with exactly this number.
    Found(TicketRecord),
    /// No usable match: `rows` records came back (0, or several, or one with another number).
    NotFound { rows: usize },
}

/// A boxed future, so systems can sit behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A ticketing system that can read one ticket.
pub trait TicketSystem: Send + Sync {
    fn kind(&self) -> SystemKind;
    /// Read the ticket `id` of `kind`, with the requester read from the first non-empty of
    /// `requester_fields`.
    fn lookup<'a>(
        &'a self,
        kind: TicketKind,
        id: &'a TicketId,
        requester_fields: &'a [String],
    ) -> BoxFuture<'a, Result<Lookup, TicketingError>>;
    /// End the session (Remedy logs out); called on every path once the work is done.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Errors talking to a ticketing system: all mean "cannot validate". Never carry a password,
/// token or bypass code.
#[derive(Debug, thiserror::Error)]
pub enum TicketingError {
    #[error("{system} at {url} is unreachable: {detail}")]
    Unreachable {
        system: SystemKind,
        url: String,
        detail: String,
    },
    #[error("{system} did not answer within {secs}s ({what})")]
    Timeout {
        system: SystemKind,
        secs: u64,
        what: String,
    },
    #[error("{system} refused the connection account {user}: {detail}")]
    AuthFailed {
        system: SystemKind,
        user: String,
        detail: String,
    },
    #[error("{system} denied {what}: {detail}")]
    Forbidden {
        system: SystemKind,
        what: String,
        detail: String,
    },
    #[error("{system} is rate limiting us{}", .retry_after.map(|s| format!(" (retry after {s}s)")).unwrap_or_default())]
    RateLimited {
        system: SystemKind,
        retry_after: Option<u64>,
    },
    #[error("{system} answered {status} to {what}: {detail}")]
    Server {
        system: SystemKind,
        status: u16,
        what: String,
        detail: String,
    },
    #[error("{system} refused {what} with {status}: {detail}")]
    Api {
        system: SystemKind,
        status: u16,
        what: String,
        detail: String,
        hint: Option<String>,
    },
    #[error("{system} answered {what} with something unreadable: {detail}")]
    Protocol {
        system: SystemKind,
        what: String,
        detail: String,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl Classify for TicketingError {
    fn service(&self) -> &'static str {
        "ticketing"
    }
    fn exit(&self) -> Exit {
        match self {
            TicketingError::Unreachable { .. }
            | TicketingError::Server { .. }
            | TicketingError::Protocol { .. } => Exit::Unavailable,
            TicketingError::Timeout { .. } | TicketingError::RateLimited { .. } => Exit::TempFail,
            TicketingError::AuthFailed { .. } | TicketingError::Forbidden { .. } => Exit::NoPerm,
            TicketingError::Api { status, .. } => match status {
                400 | 404 => Exit::Config,
                _ => Exit::Unavailable,
            },
            TicketingError::Config(e) => e.exit(),
            TicketingError::Secret(e) => e.exit(),
            TicketingError::Tls(e) => e.exit(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            TicketingError::Unreachable { system, detail, .. }
                if detail.to_ascii_lowercase().contains("certificate") =>
            {
                Some(format!(
                    "the server's TLS certificate is not trusted: set ticketing.{}.ca_bundle to your CA's PEM bundle",
                    system.key()
                ))
            }
            TicketingError::Unreachable { system, .. } => Some(format!(
                "check ticketing.{}.url and that {system} is up and reachable from this host",
                system.key()
            )),
            TicketingError::AuthFailed { system, .. } => Some(format!(
                "check ticketing.{}.username and its password (or OAuth client) reference",
                system.key()
            )),
            TicketingError::Forbidden {
                system: SystemKind::ServiceNow,
                ..
            } => Some("the connection account needs the itil role (read on incident, change_request and sys_user)".into()),
            TicketingError::Forbidden { .. } => {
                Some("the connection account needs read permission on the incident and change forms".into())
            }
            TicketingError::Protocol { .. } => Some(
                "the URL may point at a login page, a proxy or a hibernating instance".into(),
            ),
            TicketingError::Timeout { .. } | TicketingError::RateLimited { .. } => {
                Some("try again later".into())
            }
            TicketingError::Api { hint, .. } => hint.clone(),
            TicketingError::Config(e) => e.hint(),
            TicketingError::Secret(e) => e.hint(),
            TicketingError::Tls(e) => e.hint(),
            TicketingError::Server { .. } => None,
        }
    }
}

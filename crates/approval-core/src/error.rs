//! The core's top-level error: one variant per client or layer, each classified by its own
//! type. Operations that span several clients (approve, the watcher) return this.

use crate::exit::{Classify, Exit};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Pvwa(#[from] crate::pvwa::PvwaError),
    #[error(transparent)]
    Mailbox(#[from] crate::mailbox::MailboxError),
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    #[error(transparent)]
    RemoteAccess(#[from] crate::remote_access::RemoteAccessError),
    #[error(transparent)]
    Ticketing(#[from] crate::ticketing::TicketingError),
    #[error(transparent)]
    Refused(#[from] crate::notice::Refusal),
    #[error("{0}")]
    Usage(String),
}

impl Classify for Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Config(e) => e.exit(),
            Error::Pvwa(e) => e.exit(),
            Error::Mailbox(e) => e.exit(),
            Error::Secret(e) => e.exit(),
            Error::Tls(e) => e.exit(),
            Error::Journal(e) => e.exit(),
            Error::Runtime(e) => e.exit(),
            Error::Notify(e) => e.exit(),
            Error::Directory(e) => e.exit(),
            Error::RemoteAccess(e) => e.exit(),
            Error::Ticketing(e) => e.exit(),
            Error::Refused(e) => e.exit(),
            Error::Usage(_) => Exit::Usage,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            Error::Config(e) => e.hint(),
            Error::Pvwa(e) => e.hint(),
            Error::Mailbox(e) => e.hint(),
            Error::Secret(e) => e.hint(),
            Error::Tls(e) => e.hint(),
            Error::Journal(e) => e.hint(),
            Error::Runtime(e) => e.hint(),
            Error::Notify(e) => e.hint(),
            Error::Directory(e) => e.hint(),
            Error::RemoteAccess(e) => e.hint(),
            Error::Ticketing(e) => e.hint(),
            Error::Refused(e) => e.hint(),
            Error::Usage(_) => None,
        }
    }
    fn service(&self) -> &'static str {
        match self {
            Error::Pvwa(e) => e.service(),
            Error::Mailbox(e) => e.service(),
            Error::Secret(e) => e.service(),
            Error::Journal(e) => e.service(),
            Error::Directory(e) => e.service(),
            Error::Ticketing(e) => e.service(),
            _ => "",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Classify an error chain: the first error in it that knows its exit code decides. Every error
/// type of the core is listed here (one place, at the top of the crate, so that `exit` stays at
/// the bottom), and binaries need no table of their own.
pub fn classify(e: &(dyn std::error::Error + 'static)) -> (Exit, Option<String>) {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        macro_rules! try_type {
            ($($t:ty),* $(,)?) => {$(
                if let Some(x) = err.downcast_ref::<$t>() {
                    return (x.exit(), x.hint());
                }
            )*};
        }
        try_type!(
            crate::error::Error,
            crate::config::ConfigError,
            crate::pvwa::PvwaError,
            crate::mailbox::MailboxError,
            crate::secret::SecretError,
            crate::tls::TlsError,
            crate::journal::JournalError,
            crate::runtime::RuntimeError,
            crate::notify::NotifyError,
            crate::directory::DirectoryError,
            crate::remote_access::RemoteAccessError,
            crate::ticketing::TicketingError,
            crate::notice::Refusal,
        );
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return (
                match io.kind() {
                    std::io::ErrorKind::BrokenPipe => Exit::Ok,
                    std::io::ErrorKind::InvalidData => Exit::DataErr,
                    std::io::ErrorKind::PermissionDenied => Exit::NoPerm,
                    _ => Exit::Software,
                },
                None,
            );
        }
        cur = err.source();
    }
    (Exit::Software, None)
}

impl From<crate::directory::any::CredentialError> for Error {
    fn from(e: crate::directory::any::CredentialError) -> Self {
        match e {
            crate::directory::any::CredentialError::Secret(e) => e.into(),
            crate::directory::any::CredentialError::App(e) => e.into(),
        }
    }
}

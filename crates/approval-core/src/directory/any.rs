//! One directory of either kind behind one type: [`AnyDirectory`] is what the watcher, the
//! by-hand check and the site check hold, LDAP or Entra ID as `[directory] kind` says.
//! [`read_credentials`] reads its secret while the resolver is open.

use secrecy::SecretString;

use super::cache::TtlCache;
use super::config::{DirectoryKind, Settings};
use super::entra::GraphDirectory;
use super::ldap::LdapDirectory;
use super::{ApproverGroup, DirUser, Directory, DirectoryError, Membership, ResolvedGroup};
use crate::mailbox::MailboxError;
use crate::mailbox::graph::AppCredential;
use crate::secret::{Resolver, SecretError};

/// The directory's credential, read: LDAP's bind password, or the Entra app's certificate or
/// client secret.
pub enum Credentials {
    Ldap(SecretString),
    Entra(Box<AppCredential>),
}

/// Why the directory's credential could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    App(#[from] MailboxError),
}

/// Read the credential `s` names.
pub async fn read_credentials(s: &Settings, r: &Resolver) -> Result<Credentials, CredentialError> {
    match (&s.entra, &s.bind_password) {
        (Some(e), _) => Ok(Credentials::Entra(Box::new(
            crate::mailbox::graph::app_credential(&e.app, r, e.app_key).await?,
        ))),
        (None, Some(p)) => Ok(Credentials::Ldap(r.resolve(p).await?)),
        (None, None) => Err(CredentialError::Secret(SecretError::Unusable {
            reference: "directory.bind_password".into(),
            message: "not set".into(),
        })),
    }
}

/// An LDAP or Entra ID directory.
#[derive(Debug)]
pub enum AnyDirectory {
    Ldap(Box<LdapDirectory>),
    Entra(Box<GraphDirectory>),
}

impl AnyDirectory {
    /// The directory `s` configures, with its credential.
    pub fn new(s: Settings, c: Credentials) -> Result<Self, DirectoryError> {
        match (s.kind, c) {
            (DirectoryKind::Ldap, Credentials::Ldap(pw)) => {
                Ok(AnyDirectory::Ldap(Box::new(LdapDirectory::new(s, pw)?)))
            }
            (DirectoryKind::Entra, Credentials::Entra(app)) => {
                Ok(AnyDirectory::Entra(Box::new(GraphDirectory::new(s, *app)?)))
            }
            _ => Err(DirectoryError::Tls(
                "the directory credential does not fit directory.kind".into(),
            )),
        }
    }

    pub fn settings(&self) -> &Settings {
        match self {
            AnyDirectory::Ldap(d) => d.settings(),
            AnyDirectory::Entra(d) => d.settings(),
        }
    }

    pub fn group_records(&self) -> &TtlCache<super::approvers::GroupRecord> {
        match self {
            AnyDirectory::Ldap(d) => d.group_records(),
            AnyDirectory::Entra(d) => d.group_records(),
        }
    }

    pub fn role_records(&self) -> &TtlCache<super::approvers::RoleRecord> {
        match self {
            AnyDirectory::Ldap(d) => d.role_records(),
            AnyDirectory::Entra(d) => d.role_records(),
        }
    }

    pub fn clear_cache(&self) {
        match self {
            AnyDirectory::Ldap(d) => d.clear_cache(),
            AnyDirectory::Entra(d) => d.clear_cache(),
        }
    }

    pub async fn close(&self) {
        if let AnyDirectory::Ldap(d) = self {
            d.close().await;
        }
    }

    pub async fn accounts_of_person(&self, value: &str) -> Result<Vec<DirUser>, DirectoryError> {
        match self {
            AnyDirectory::Ldap(d) => d.accounts_of_person(value).await,
            AnyDirectory::Entra(d) => d.accounts_of_person(value).await,
        }
    }

    pub async fn accounts_named(&self, name: &str) -> Result<Vec<DirUser>, DirectoryError> {
        match self {
            AnyDirectory::Ldap(d) => d.accounts_named(name).await,
            AnyDirectory::Entra(d) => d.accounts_named(name).await,
        }
    }

    pub async fn resolve_groups(
        &self,
        groups: &[ApproverGroup],
    ) -> Result<Vec<ResolvedGroup>, DirectoryError> {
        match self {
            AnyDirectory::Ldap(d) => d.resolve_groups(groups).await,
            AnyDirectory::Entra(d) => d.resolve_groups(groups).await,
        }
    }
}

impl Directory for AnyDirectory {
    fn server(&self) -> String {
        match self {
            AnyDirectory::Ldap(d) => d.server(),
            AnyDirectory::Entra(d) => d.server(),
        }
    }

    async fn find_user(&self, address: &str) -> Result<DirUser, DirectoryError> {
        match self {
            AnyDirectory::Ldap(d) => d.find_user(address).await,
            AnyDirectory::Entra(d) => d.find_user(address).await,
        }
    }

    async fn membership(
        &self,
        user: &DirUser,
        groups: &[ApproverGroup],
    ) -> Result<Membership, DirectoryError> {
        match self {
            AnyDirectory::Ldap(d) => d.membership(user, groups).await,
            AnyDirectory::Entra(d) => d.membership(user, groups).await,
        }
    }
}

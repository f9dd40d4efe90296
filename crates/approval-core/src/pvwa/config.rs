//! PVWA's sections of the configuration: `[pvwa]` (the endpoint) and `[accounts.*]` (the
//! service accounts, one per role), with their checks and the resolution of an account's
//! password.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::config::{ConfigError, Origin, defaults};
use crate::secret::{Resolver, SecretError, SecretRef};

/// `[pvwa]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PvwaConfig {
    /// Base URL, e.g. `https://pvwa.example.com` (with or without `/PasswordVault`).
    pub url: String,
    /// Logon method.
    #[serde(default)]
    pub auth_method: AuthMethod,
    /// PEM bundle of the CAs to trust instead of the system store.
    pub ca_bundle: Option<PathBuf>,
    /// Seconds to wait for a TCP/TLS connection.
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for a whole request.
    #[serde(default = "defaults::request_timeout")]
    pub request_timeout_secs: u64,
    /// How often reads and logon are retried on transient faults (never a sent confirm).
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// First backoff delay in milliseconds (doubles each retry, with jitter).
    #[serde(default = "defaults::backoff_ms")]
    pub backoff_ms: u64,
    /// Send `concurrentSession: true` at logon.
    #[serde(default = "defaults::yes")]
    pub concurrent_session: bool,
    /// Page size when listing safe members.
    #[serde(default = "page_size")]
    pub page_size: u32,
}

/// PVWA logon method: the `{type}` in `/API/auth/{type}/Logon`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    #[default]
    Ldap,
    Cyberark,
    Radius,
}

impl AuthMethod {
    pub fn path_segment(self) -> &'static str {
        match self {
            AuthMethod::Ldap => "LDAP",
            AuthMethod::Cyberark => "CyberArk",
            AuthMethod::Radius => "RADIUS",
        }
    }
}

/// `[accounts.*]`: one service account per role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    /// Confirms at level 1.
    pub level1: Option<AccountConfig>,
    /// Confirms at level 2.
    pub level2: Option<AccountConfig>,
    /// Reads requests and safe members (`get-inco-req`, the watcher's lookups). Falls back to
    /// level2 when absent.
    pub lookup: Option<AccountConfig>,
}

/// A PVWA account: user name and a secret reference for its password.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub username: String,
    pub password: SecretRef,
}

fn page_size() -> u32 {
    100
}

impl PvwaConfig {
    /// Check the values (URL, timeouts, page size); errors name the key.
    pub fn validate(&self, origin: &Origin) -> Result<(), ConfigError> {
        crate::tls::check_url(&self.url).map_err(|m| origin.error("pvwa.url", m))?;
        if self.request_timeout_secs == 0 {
            return Err(origin.error("pvwa.request_timeout_secs", "must be at least 1"));
        }
        if self.connect_timeout_secs == 0 {
            return Err(origin.error("pvwa.connect_timeout_secs", "must be at least 1"));
        }
        if self.page_size == 0 || self.page_size > 1000 {
            return Err(origin.error("pvwa.page_size", "must be between 1 and 1000"));
        }
        Ok(())
    }
}

impl AccountsConfig {
    /// Dual Control needs two people: one account confirming at both levels would let one
    /// forward supply both confirmations, so such a configuration is refused at load time.
    pub fn check_separate_levels(&self, origin: &Origin) -> Result<(), ConfigError> {
        let a = self;
        if let (Some(l1), Some(l2)) = (&a.level1, &a.level2)
            && !l1.username.trim().is_empty()
            && same_account_name(&l1.username, &l2.username)
        {
            return Err(origin.error(
                "accounts.level2.username",
                format!(
                    "names the same user as accounts.level1.username ({}): one account would supply both confirmations of a request; use two different service accounts",
                    l2.username.trim()
                ),
            ));
        }
        Ok(())
    }

    /// The account for a role, or an error naming the missing section.
    pub fn account(
        &self,
        role: AccountRole,
        origin: &Origin,
    ) -> Result<&AccountConfig, ConfigError> {
        let a = self;
        let found = match role {
            AccountRole::Level1 => a.level1.as_ref(),
            AccountRole::Level2 => a.level2.as_ref(),
            AccountRole::Lookup => a.lookup.as_ref().or(a.level2.as_ref()),
        };
        let acc = found.ok_or_else(|| {
            origin.error(
                &format!("accounts.{}", role.key()),
                format!(
                    "the [accounts.{}] section (username and password) is missing",
                    role.key()
                ),
            )
        })?;
        if acc.username.trim().is_empty() {
            return Err(origin.error(
                &format!("accounts.{}.username", role.key()),
                "must not be empty",
            ));
        }
        Ok(acc)
    }
}

/// Whether two configured PVWA user names name one user: case-insensitive, `DOMAIN\` and an
/// `@domain` suffix ignored (PVWA may know an LDAP user under either form).
fn same_account_name(a: &str, b: &str) -> bool {
    let base = |s: &str| {
        let s = s.trim();
        let s = s.rsplit_once('\\').map_or(s, |(_, u)| u);
        let s = s.split_once('@').map_or(s, |(u, _)| u);
        s.to_lowercase()
    };
    base(a) == base(b)
}

/// Which service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountRole {
    Level1,
    Level2,
    Lookup,
}

impl AccountRole {
    pub fn key(self) -> &'static str {
        match self {
            AccountRole::Level1 => "level1",
            AccountRole::Level2 => "level2",
            AccountRole::Lookup => "lookup",
        }
    }
    pub fn for_level(level: u8) -> Option<AccountRole> {
        match level {
            1 => Some(AccountRole::Level1),
            2 => Some(AccountRole::Level2),
            _ => None,
        }
    }
}

/// Resolve an account's password (user name, password).
pub async fn credentials(
    account: &AccountConfig,
    resolver: &Resolver,
) -> Result<(String, SecretString), SecretError> {
    let pw = resolver.resolve(&account.password).await?;
    Ok((account.username.clone(), pw))
}

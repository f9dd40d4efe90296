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
    /// Base URL, e.g. `https://pvwa.example.com` (with or without `/PasswordVault`), or on
    /// Privilege Cloud `https://<subdomain>.privilegecloud.cyberark.cloud`.
    pub url: String,
    /// Logon method; `identity` for Privilege Cloud.
    #[serde(default)]
    pub auth_method: AuthMethod,
    /// Privilege Cloud only: the CyberArk Identity tenant that issues the platform tokens,
    /// `https://<tenant-id>.id.cyberark.cloud`.
    pub identity_url: Option<String>,
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

/// How the accounts sign in: a self-hosted PVWA logon (the `{type}` in
/// `/API/auth/{type}/Logon`), or, on Privilege Cloud, a CyberArk Identity platform token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    #[default]
    Ldap,
    Cyberark,
    Radius,
    /// Privilege Cloud: an OAuth2 client-credentials grant at `pvwa.identity_url` for each
    /// account (an Identity service user that is an OAuth confidential client), sent as
    /// `Authorization: Bearer`; no logon or logoff.
    Identity,
}

impl AuthMethod {
    /// The `{type}` of the self-hosted logon path (`None` for Identity, which has no logon).
    pub fn path_segment(self) -> Option<&'static str> {
        match self {
            AuthMethod::Ldap => Some("LDAP"),
            AuthMethod::Cyberark => Some("CyberArk"),
            AuthMethod::Radius => Some("RADIUS"),
            AuthMethod::Identity => None,
        }
    }
}

/// CyberArk's published SaaS environments, by root domain: commercial (`cyberark.cloud`) and
/// US government (`cyberarkgov.cloud`). Privilege Cloud is `<subdomain>.privilegecloud.<root>`,
/// Identity `<tenant-id>.id.<root>` (reference/privilege-cloud.md §1; the government root as in
/// CyberArk's own SDK's environment table).
const CLOUD_ROOTS: [&str; 2] = ["cyberark.cloud", "cyberarkgov.cloud"];

/// Where a configured host sits among CyberArk's SaaS names (reference/privilege-cloud.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostShape {
    /// `<subdomain>.privilegecloud.<root>`: the Privilege Cloud PVWA API.
    PrivilegeCloud(&'static str),
    /// `<tenant-id>.id.<root>` or `<tenant-id>.my.idaptive.app`: an Identity tenant.
    Identity(&'static str),
    /// Any other name under a root (the portal `<subdomain>.<root>`, other services).
    OtherCloud(&'static str),
    /// Loopback: a local stand-in or a tunnel, taken in either mode.
    Loopback,
    /// Anything else: a self-hosted PVWA.
    SelfHosted,
}

fn host_shape(url: &url::Url) -> HostShape {
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => return HostShape::Loopback,
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => return HostShape::Loopback,
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        _ => return HostShape::SelfHosted,
    };
    let under = |suffix: &str| {
        host.strip_suffix(suffix)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'))
    };
    if host == "localhost" {
        return HostShape::Loopback;
    }
    if under("my.idaptive.app") {
        return HostShape::Identity(CLOUD_ROOTS[0]);
    }
    if host == "idaptive.app" || under("idaptive.app") {
        return HostShape::OtherCloud(CLOUD_ROOTS[0]);
    }
    for root in CLOUD_ROOTS {
        if under(&format!("privilegecloud.{root}")) {
            return HostShape::PrivilegeCloud(root);
        }
        if under(&format!("id.{root}")) {
            return HostShape::Identity(root);
        }
        if host == root || under(root) {
            return HostShape::OtherCloud(root);
        }
    }
    HostShape::SelfHosted
}

/// The `<subdomain>` of a `<subdomain>.<root>` portal host, for hints.
fn portal_subdomain(url: &url::Url, root: &str) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    let sub = host.strip_suffix(&format!(".{root}"))?;
    (!sub.is_empty() && !sub.contains('.')).then(|| sub.to_string())
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
        let url = crate::tls::check_url(&self.url).map_err(|m| origin.error("pvwa.url", m))?;
        self.check_deployment(&url, origin)?;
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

impl PvwaConfig {
    /// A Privilege Cloud address with a self-hosted logon, or a self-hosted address with
    /// Identity sign-in, is refused with the setting that fits (reference/privilege-cloud.md).
    fn check_deployment(&self, url: &url::Url, origin: &Origin) -> Result<(), ConfigError> {
        let shape = host_shape(url);
        if self.auth_method != AuthMethod::Identity {
            if self.identity_url.is_some() {
                return Err(origin.error(
                    "pvwa.identity_url",
                    "applies only with pvwa.auth_method = \"identity\" (Privilege Cloud); remove it for a self-hosted PVWA",
                ));
            }
            return match shape {
                HostShape::PrivilegeCloud(root) => Err(origin.error(
                    "pvwa.auth_method",
                    format!(
                        "`{url}` is a Privilege Cloud address, which takes no PVWA logon: set pvwa.auth_method = \"identity\" and pvwa.identity_url to your CyberArk Identity tenant (https://<tenant-id>.id.{root})"
                    ),
                )),
                HostShape::Identity(root) | HostShape::OtherCloud(root) => Err(origin.error(
                    "pvwa.url",
                    format!(
                        "`{url}` is a CyberArk cloud address but not a PVWA: a self-hosted PVWA has its own host name; for Privilege Cloud use https://<subdomain>.privilegecloud.{root} with pvwa.auth_method = \"identity\""
                    ),
                )),
                HostShape::Loopback | HostShape::SelfHosted => Ok(()),
            };
        }
        let api_root = match shape {
            HostShape::PrivilegeCloud(root) => Some(root),
            HostShape::Loopback => None,
            HostShape::Identity(root) => {
                return Err(origin.error(
                    "pvwa.url",
                    format!(
                        "`{url}` is the CyberArk Identity tenant, which belongs in pvwa.identity_url; pvwa.url is the Privilege Cloud API, https://<subdomain>.privilegecloud.{root}"
                    ),
                ));
            }
            HostShape::OtherCloud(root) => {
                let hint = portal_subdomain(url, root)
                    .map(|s| format!("https://{s}.privilegecloud.{root}"))
                    .unwrap_or_else(|| format!("https://<subdomain>.privilegecloud.{root}"));
                return Err(origin.error(
                    "pvwa.url",
                    format!(
                        "`{url}` is not the Privilege Cloud API (the portal, or another service): use {hint}"
                    ),
                ));
            }
            HostShape::SelfHosted => {
                return Err(origin.error(
                    "pvwa.url",
                    format!(
                        "`{url}` looks like a self-hosted PVWA, which signs in with pvwa.auth_method = \"ldap\", \"cyberark\" or \"radius\"; Privilege Cloud (auth_method = \"identity\") is reached at https://<subdomain>.privilegecloud.cyberark.cloud (US government: .cyberarkgov.cloud)"
                    ),
                ));
            }
        };
        let Some(raw) = &self.identity_url else {
            return Err(origin.error(
                "pvwa.identity_url",
                "is missing: auth_method = \"identity\" signs in at your CyberArk Identity tenant, e.g. https://abc1234.id.cyberark.cloud (Identity Administration shows the tenant id)",
            ));
        };
        let id = crate::tls::check_url(raw).map_err(|m| origin.error("pvwa.identity_url", m))?;
        if !matches!(id.path(), "" | "/") || id.query().is_some() {
            return Err(origin.error(
                "pvwa.identity_url",
                format!(
                    "`{raw}` has a path: give the tenant's address only (https://<tenant-id>.id.cyberark.cloud); the token path /oauth2/platformtoken is added"
                ),
            ));
        }
        match host_shape(&id) {
            HostShape::Identity(root) => match api_root {
                // The API and the sign-in in two different CyberArk environments never work.
                Some(api) if api != root => Err(origin.error(
                    "pvwa.identity_url",
                    format!(
                        "`{raw}` is an Identity tenant of the {root} environment, but pvwa.url is in {api}: use the Identity tenant of the same environment (https://<tenant-id>.id.{api})"
                    ),
                )),
                _ => Ok(()),
            },
            HostShape::Loopback => Ok(()),
            HostShape::PrivilegeCloud(_) => Err(origin.error(
                "pvwa.identity_url",
                format!(
                    "`{raw}` is the Privilege Cloud API, which belongs in pvwa.url; pvwa.identity_url is the Identity tenant, https://<tenant-id>.id.cyberark.cloud"
                ),
            )),
            HostShape::OtherCloud(_) | HostShape::SelfHosted => Err(origin.error(
                "pvwa.identity_url",
                format!(
                    "`{raw}` is not a CyberArk Identity tenant: use https://<tenant-id>.id.cyberark.cloud (or https://<tenant-id>.my.idaptive.app for an older tenant)"
                ),
            )),
        }
    }

    /// The Identity token endpoint (`<identity_url>/oauth2/platformtoken`), with Identity.
    pub fn token_url(&self) -> Option<String> {
        let base = self.identity_url.as_deref()?;
        Some(format!(
            "{}/oauth2/platformtoken",
            base.trim().trim_end_matches('/')
        ))
    }
}

impl AccountsConfig {
    /// Dual Control needs two people: one account confirming at both levels would let one
    /// forward supply both confirmations, so such a configuration is refused at load time.
    pub fn check_separate_levels(&self, origin: &Origin) -> Result<(), ConfigError> {
        let a = self;
        if let (Some(l1), Some(l2)) = (&a.level1, &a.level2)
            && !l1.username.trim().is_empty()
            && crate::person::same_person(&l1.username, &l2.username)
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

//! The whole configuration: every module's section put together, loaded and checked. Top
//! layer, beside the pipeline: it names every section, so nothing below may import it; a module
//! checks its own section against the [`Origin`] it is given.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{self, ConfigError, LogConfig, Origin};
use crate::directory::config::Settings as DirectorySettings;
use crate::pvwa::config::{AccountConfig, AccountRole, AccountsConfig, PvwaConfig};
use crate::ticketing::config::Compiled as TicketingCompiled;

/// The whole configuration. Each section's type lives in the module that owns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// PVWA REST API.
    pub pvwa: Option<PvwaConfig>,
    /// Service accounts used against PVWA.
    #[serde(default)]
    pub accounts: AccountsConfig,
    /// Vault / OpenBao, for `vault:` secret references.
    pub vault: Option<crate::secret::vault::VaultConfig>,
    /// The approval mailbox (EWS).
    pub mailbox: Option<crate::mailbox::MailboxConfig>,
    /// How forwarded notifications are read.
    #[serde(default)]
    pub notice: crate::notice::NoticeConfig,
    /// Sender authenticity policy.
    #[serde(default)]
    pub sender: crate::sender::SenderPolicyConfig,
    /// Directory (LDAP / Active Directory) and approver mapping.
    pub directory: Option<crate::directory::DirectoryConfig>,
    /// The journal on PostgreSQL (`url`); the SQLite file when absent.
    #[serde(default)]
    pub journal: crate::journal::JournalConfig,
    /// The watcher: journal, state directory, loop, replies.
    #[serde(default)]
    pub watcher: crate::pipeline::config::WatcherConfig,
    /// Reply mails.
    #[serde(default)]
    pub notify: crate::notify::NotifyConfig,
    /// Ticket validation (ServiceNow, Remedy).
    pub ticketing: Option<crate::ticketing::TicketingConfig>,
    /// Remote Access (formerly Alero).
    pub remote_access: Option<crate::remote_access::RemoteAccessConfig>,
    /// The watcher's metrics and health listener (off when absent).
    pub metrics: Option<crate::metrics::MetricsConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
}

/// A loaded configuration and where each part came from (`loaded.error(key, ..)` and
/// `loaded.file` read through to the [`Origin`]).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub config: Config,
    pub origin: Origin,
}

impl Deref for Loaded {
    type Target = Origin;
    fn deref(&self) -> &Origin {
        &self.origin
    }
}

/// Load the configuration: `explicit` is `--config`; the environment is read for
/// `APPROVAL_CONFIG` and the overrides.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let overrides = crate::env::config_overrides();
    let source = config::read_source(explicit)?;
    let mut loaded = load_from_parts(source.text.as_deref(), source.file, &overrides)?;
    loaded.origin.tried = source.tried;
    Ok(loaded)
}

/// Parse the configuration from text plus overrides (variable, path, raw value), and check what
/// must hold across sections at load time. Pure: used by tests.
pub fn load_from_parts(
    text: Option<&str>,
    file: Option<PathBuf>,
    overrides: &[(String, Vec<String>, String)],
) -> Result<Loaded, ConfigError> {
    let (mut config, origin) = config::load_from_parts::<Config>(text, file, overrides)?;
    pin_mailbox_tenant(&mut config, &origin)?;
    check_roles_from(&config, &origin)?;
    check_journal(&config, &origin)?;
    let loaded = Loaded { config, origin };
    loaded
        .config
        .accounts
        .check_separate_levels(&loaded.origin)?;
    Ok(loaded)
}

/// `[journal]` checked at load time (its errors name the key); one journal only.
fn check_journal(config: &Config, origin: &config::Origin) -> Result<(), ConfigError> {
    if config.journal.target(origin)?.is_some() && config.watcher.journal.is_some() {
        return Err(origin.error(
            "journal.url",
            "and watcher.journal are both set: the journal is either the SQLite file (watcher.journal) or PostgreSQL (journal.url); remove one",
        ));
    }
    Ok(())
}

/// `directory.group_names.roles_from = "identity"` reads roles at the CyberArk Identity tenant
/// the accounts sign in at: only on Privilege Cloud.
fn check_roles_from(config: &Config, origin: &config::Origin) -> Result<(), ConfigError> {
    let identity = config
        .directory
        .as_ref()
        .is_some_and(|d| d.group_names.roles_from == crate::directory::config::RolesFrom::Identity);
    let cloud = config
        .pvwa
        .as_ref()
        .is_some_and(|p| p.auth_method == crate::pvwa::AuthMethod::Identity);
    if identity && config.pvwa.is_some() && !cloud {
        return Err(origin.error(
            "directory.group_names.roles_from",
            "\"identity\" reads CyberArk Identity roles with the accounts' platform tokens, which only Privilege Cloud has (pvwa.auth_method = \"identity\"); on a self-hosted PVWA map each role to a directory group with [directory.group_names.roles]",
        ));
    }
    Ok(())
}

/// On Graph the mailbox's own tenant is the one every approver's mail must be stamped with,
/// unless `sender.tenant_id` says otherwise (another GUID, or `"none"`). A tenant given as a
/// domain cannot be compared with the stamps' GUID: the GUID is asked for.
fn pin_mailbox_tenant(config: &mut Config, origin: &config::Origin) -> Result<(), ConfigError> {
    if config.sender.tenant_id.is_some() {
        return Ok(());
    }
    let Some(g) = config
        .mailbox
        .as_ref()
        .filter(|m| m.kind == crate::mailbox::MailboxKind::Graph)
        .and_then(|m| m.graph.as_ref())
    else {
        return Ok(());
    };
    let t = g.tenant_id.trim();
    if crate::text::is_guid(t) {
        config.sender.tenant_id = Some(t.to_ascii_lowercase());
        return Ok(());
    }
    Err(origin.error(
        "sender.tenant_id",
        format!(
            "is needed: mailbox.graph.tenant_id is the domain {}, but Exchange Online stamps each mail with the tenant's id (a GUID: Entra admin center, Overview, Tenant ID), which the sender check compares; set sender.tenant_id to it (or \"none\" to rely on sender.auth_sources alone)",
            crate::text::printable(t)
        ),
    ))
}

impl Loaded {
    /// `[pvwa]`, validated, or an error naming what is missing.
    pub fn pvwa(&self) -> Result<&PvwaConfig, ConfigError> {
        let p = self.config.pvwa.as_ref().ok_or_else(|| {
            self.error(
                "pvwa.url",
                format!(
                    "the [pvwa] section is missing; set pvwa.url (or {})",
                    crate::env::override_name(&["pvwa", "url"])
                ),
            )
        })?;
        p.validate(&self.origin)?;
        Ok(p)
    }

    /// The account for a role, or an error naming the missing section.
    pub fn account(&self, role: AccountRole) -> Result<&AccountConfig, ConfigError> {
        self.config.accounts.account(role, &self.origin)
    }

    /// The user name and resolved password of the account for `role`.
    pub async fn credentials(
        &self,
        resolver: &crate::secret::Resolver,
        role: AccountRole,
    ) -> crate::error::Result<(String, secrecy::SecretString)> {
        let account = self.account(role)?;
        Ok(crate::pvwa::credentials(account, resolver).await?)
    }

    /// `[directory]`, validated, or an error naming the key.
    pub fn directory(&self) -> Result<DirectorySettings, ConfigError> {
        let d = self.config.directory.as_ref().ok_or_else(|| {
            self.error(
                "directory.url",
                format!(
                    "the [directory] section is missing; set directory.url, bind_dn, bind_password and base_dn (or {}), or, for Microsoft Entra ID, directory.kind = \"entra\"",
                    crate::env::override_name(&["directory", "url"])
                ),
            )
        })?;
        d.settings_with(&self.origin, self.config.mailbox.as_ref())
    }

    /// `[ticketing]`, checked, or an error naming what is missing.
    pub fn ticketing(&self) -> Result<TicketingCompiled, ConfigError> {
        let t = self.config.ticketing.as_ref().ok_or_else(|| {
            self.error(
                "ticketing",
                "the [ticketing] section is missing; see docs/ticketing.md \
                 (installed: /usr/share/doc/pam-approval/docs/ticketing.md)",
            )
        })?;
        t.compile(&self.origin)
    }

    /// `[remote_access]`, validated, or an error naming the key.
    pub fn remote_access(&self) -> Result<&crate::remote_access::RemoteAccessConfig, ConfigError> {
        let c = self.config.remote_access.as_ref().ok_or_else(|| {
            self.error(
                "remote_access.tenant_id",
                "the [remote_access] section is missing (tenant_id and key_file)",
            )
        })?;
        c.validate(&self.origin)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env;
    use crate::pvwa::config::AuthMethod;

    fn ov(var: &str, raw: &str) -> (String, Vec<String>, String) {
        let path = var
            .strip_prefix(env::OVERRIDE_PREFIX)
            .expect("prefix")
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        (var.to_string(), path, raw.to_string())
    }

    const MINIMAL: &str = r#"
[pvwa]
url = "https://pvwa.example.test"
[accounts.level1]
username = "svc_l1"
password = "env:L1_PW"
"#;

    #[test]
    fn minimal_file_parses_with_defaults() {
        let l = load_from_parts(Some(MINIMAL), None, &[]).expect("parses");
        let p = l.pvwa().expect("pvwa");
        assert_eq!(p.auth_method, AuthMethod::Ldap);
        assert_eq!(p.request_timeout_secs, 30);
        assert!(p.concurrent_session);
        assert_eq!(
            l.account(AccountRole::Level1).expect("l1").username,
            "svc_l1"
        );
    }

    #[test]
    fn one_account_for_both_levels_is_refused_at_load() {
        for l2 in ["svc_l1", "CORP\\SVC_L1", "svc_l1@corp.example", " svc_l1 "] {
            let text = format!(
                "{MINIMAL}[accounts.level2]\nusername = '{l2}'\npassword = \"env:L2_PW\"\n"
            );
            let e = load_from_parts(Some(&text), None, &[]).expect_err(l2);
            assert_eq!(e.key.as_deref(), Some("accounts.level2.username"), "{l2}");
            assert!(e.message.contains("both confirmations"), "{e}");
        }
        let two = format!(
            "{MINIMAL}[accounts.level2]\nusername = \"svc_l2\"\npassword = \"env:L2_PW\"\n"
        );
        assert!(load_from_parts(Some(&two), None, &[]).is_ok());
        // Set through the environment, the error names the variable.
        let e = load_from_parts(
            Some(MINIMAL),
            None,
            &[
                ov("APPROVAL__ACCOUNTS__LEVEL2__USERNAME", "svc_l1"),
                ov("APPROVAL__ACCOUNTS__LEVEL2__PASSWORD", "env:L2_PW"),
            ],
        )
        .expect_err("same account from env");
        assert!(
            e.to_string()
                .contains("APPROVAL__ACCOUNTS__LEVEL2__USERNAME"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_is_refused_and_named() {
        let bad = MINIMAL.replace("[pvwa]\n", "[pvwa]\nurll = \"x\"\n");
        let e = load_from_parts(Some(&bad), Some("/etc/x.toml".into()), &[]).expect_err("refused");
        assert_eq!(e.key.as_deref(), Some("pvwa.urll"));
        assert!(e.message.contains("urll"), "{e}");
        assert!(e.to_string().contains("/etc/x.toml"), "{e}");
    }

    #[test]
    fn env_override_wins_over_file_and_is_named_in_errors() {
        let l = load_from_parts(
            Some(MINIMAL),
            None,
            &[ov("APPROVAL__PVWA__URL", "https://other.test")],
        )
        .expect("ok");
        assert_eq!(
            l.config.pvwa.as_ref().expect("pvwa").url,
            "https://other.test"
        );
        let e = load_from_parts(
            Some(MINIMAL),
            None,
            &[ov("APPROVAL__PVWA__RETRIES", "many")],
        )
        .expect_err("bad");
        assert_eq!(e.key.as_deref(), Some("pvwa.retries"));
        assert_eq!(e.env_var.as_deref(), Some("APPROVAL__PVWA__RETRIES"));
    }

    #[test]
    fn numeric_looking_env_value_for_a_string_key_stays_a_string() {
        let l = load_from_parts(
            Some(MINIMAL),
            None,
            &[ov("APPROVAL__ACCOUNTS__LEVEL1__USERNAME", "1234")],
        )
        .expect("ok");
        assert_eq!(l.account(AccountRole::Level1).expect("l1").username, "1234");
        let l = load_from_parts(Some(MINIMAL), None, &[ov("APPROVAL__PVWA__RETRIES", "7")])
            .expect("ok");
        assert_eq!(l.pvwa().expect("pvwa").retries, 7);
    }

    #[test]
    fn env_alone_can_configure_a_section() {
        let l = load_from_parts(None, None, &[ov("APPROVAL__PVWA__URL", "https://p.test")])
            .expect("ok");
        assert_eq!(l.pvwa().expect("pvwa").url, "https://p.test");
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused() {
        let text = MINIMAL.replace("https://pvwa.example.test", "http://pvwa.example.test");
        let l = load_from_parts(Some(&text), None, &[]).expect("parses");
        let e = l.pvwa().expect_err("refused");
        assert_eq!(e.key.as_deref(), Some("pvwa.url"));
    }

    #[test]
    fn bad_toml_names_the_file_and_line() {
        let e =
            load_from_parts(Some("[pvwa\nurl=1"), Some("/x.toml".into()), &[]).expect_err("bad");
        assert!(e.to_string().contains("/x.toml"));
        assert!(e.message.contains("line 1"), "{}", e.message);
    }

    #[test]
    fn missing_account_is_named() {
        let l = load_from_parts(Some(MINIMAL), None, &[]).expect("ok");
        let e = l.account(AccountRole::Level2).expect_err("missing");
        assert_eq!(e.key.as_deref(), Some("accounts.level2"));
    }

    /// `[pvwa]` with `url`, `auth_method` and, when given, `identity_url`.
    fn pvwa_of(url: &str, method: &str, identity: Option<&str>) -> Result<(), ConfigError> {
        let mut text = format!("[pvwa]\nurl = \"{url}\"\nauth_method = \"{method}\"\n");
        if let Some(i) = identity {
            text.push_str(&format!("identity_url = \"{i}\"\n"));
        }
        let l = load_from_parts(Some(&text), None, &[]).expect("parses");
        l.pvwa().map(|_| ())
    }

    #[test]
    fn privilege_cloud_takes_its_two_addresses_and_identity_sign_in() {
        let pc = "https://acme.privilegecloud.cyberark.cloud";
        let id = "https://abc1234.id.cyberark.cloud";
        pvwa_of(pc, "identity", Some(id)).expect("Privilege Cloud");
        pvwa_of(pc, "identity", Some("https://abc1234.my.idaptive.app/")).expect("older tenant");
        pvwa_of(
            "https://acme.privilegecloud.cyberark.cloud/PasswordVault",
            "identity",
            Some(id),
        )
        .expect("with /PasswordVault");
        // A local stand-in or tunnel, in either mode.
        pvwa_of(
            "https://127.0.0.1:8443",
            "identity",
            Some("https://127.0.0.1:8443"),
        )
        .expect("loopback");
        pvwa_of("https://pvwa.example.test", "ldap", None).expect("self-hosted");
        let l = load_from_parts(
            Some(&format!(
                "[pvwa]\nurl = \"{pc}\"\nauth_method = \"identity\"\nidentity_url = \"{id}/\"\n"
            )),
            None,
            &[],
        )
        .expect("parses");
        assert_eq!(
            l.pvwa().expect("ok").token_url().as_deref(),
            Some("https://abc1234.id.cyberark.cloud/oauth2/platformtoken")
        );
    }

    /// A mailbox on Graph pins the sender check to its own tenant unless `sender.tenant_id`
    /// says otherwise; a tenant given as a domain asks for the GUID, naming the key.
    #[test]
    fn a_graph_mailbox_pins_the_sender_check_to_its_tenant() {
        let graph = |tenant: &str, sender: &str| {
            format!(
                "{sender}[mailbox]\nkind = \"graph\"\nmailbox = \"bot@example.com\"\n[mailbox.graph]\ntenant_id = \"{tenant}\"\nclient_id = \"0c1e0000-0000-4000-8000-0000000000bb\"\ncertificate = \"file:/x\"\nprivate_key = \"file:/y\"\n"
            )
        };
        let guid = "5A1F0000-0000-4000-8000-00000000C0DE";
        let l = load_from_parts(Some(&graph(guid, "")), None, &[]).expect("loads");
        assert_eq!(
            l.config.sender.pinned_tenant(),
            Some("5a1f0000-0000-4000-8000-00000000c0de")
        );
        let e = load_from_parts(Some(&graph("contoso.onmicrosoft.com", "")), None, &[])
            .expect_err("a domain cannot be compared with the stamps");
        assert_eq!(e.key.as_deref(), Some("sender.tenant_id"), "{e}");
        let off = graph(
            "contoso.onmicrosoft.com",
            "[sender]\ntenant_id = \"none\"\n",
        );
        let l = load_from_parts(Some(&off), None, &[]).expect("explicitly off");
        assert_eq!(l.config.sender.pinned_tenant(), None);
        // EWS: no pin unless asked for.
        let ews = "[mailbox]\nurl = \"https://mail.example.com/EWS/Exchange.asmx\"\nusername = \"u\"\npassword = \"env:P\"\nmailbox = \"bot@example.com\"\n";
        let l = load_from_parts(Some(ews), None, &[]).expect("loads");
        assert_eq!(l.config.sender.pinned_tenant(), None);
    }

    /// CyberArk's US government environment (`cyberarkgov.cloud`) is Privilege Cloud like the
    /// commercial one; the API and the sign-in must be in the same environment, and a mistake
    /// is hinted in the environment it was made in.
    #[test]
    fn the_government_environment_is_privilege_cloud_too() {
        let pc = "https://acme.privilegecloud.cyberarkgov.cloud";
        let id = "https://abc1234.id.cyberarkgov.cloud";
        pvwa_of(pc, "identity", Some(id)).expect("US government Privilege Cloud");
        for (url, method, identity, key, says) in [
            (
                pc,
                "ldap",
                None,
                "pvwa.auth_method",
                "https://<tenant-id>.id.cyberarkgov.cloud",
            ),
            (
                "https://acme.cyberarkgov.cloud",
                "identity",
                Some(id),
                "pvwa.url",
                "https://acme.privilegecloud.cyberarkgov.cloud",
            ),
            (
                id,
                "identity",
                Some(id),
                "pvwa.url",
                "privilegecloud.cyberarkgov.cloud",
            ),
            (
                pc,
                "identity",
                Some("https://abc1234.id.cyberark.cloud"),
                "pvwa.identity_url",
                "https://<tenant-id>.id.cyberarkgov.cloud",
            ),
            (
                "https://acme.privilegecloud.cyberark.cloud",
                "identity",
                Some(id),
                "pvwa.identity_url",
                "https://<tenant-id>.id.cyberark.cloud",
            ),
        ] {
            let e = pvwa_of(url, method, identity).expect_err(url);
            assert_eq!(e.key.as_deref(), Some(key), "{url}: {e}");
            assert!(e.to_string().contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn a_mix_of_privilege_cloud_and_self_hosted_settings_is_refused_with_the_fitting_hint() {
        let pc = "https://acme.privilegecloud.cyberark.cloud";
        let id = "https://abc1234.id.cyberark.cloud";
        for (url, method, identity, key, says) in [
            // Identity sign-in with a self-hosted PVWA's address.
            (
                "https://pvwa.example.test",
                "identity",
                Some(id),
                "pvwa.url",
                "self-hosted PVWA",
            ),
            // Identity sign-in without the tenant.
            (pc, "identity", None, "pvwa.identity_url", "is missing"),
            // The two addresses swapped.
            (
                id,
                "identity",
                Some(pc),
                "pvwa.url",
                "belongs in pvwa.identity_url",
            ),
            (
                pc,
                "identity",
                Some(pc),
                "pvwa.identity_url",
                "belongs in pvwa.url",
            ),
            // The portal instead of the API: the hint names the API host.
            (
                "https://acme.cyberark.cloud",
                "identity",
                Some(id),
                "pvwa.url",
                "https://acme.privilegecloud.cyberark.cloud",
            ),
            // A self-hosted host as the Identity tenant, or the token path spelt out.
            (
                pc,
                "identity",
                Some("https://pvwa.example.test"),
                "pvwa.identity_url",
                "not a CyberArk Identity tenant",
            ),
            (
                pc,
                "identity",
                Some("https://abc1234.id.cyberark.cloud/oauth2/platformtoken"),
                "pvwa.identity_url",
                "has a path",
            ),
            (
                pc,
                "identity",
                Some("http://abc1234.id.cyberark.cloud"),
                "pvwa.identity_url",
                "https",
            ),
            // A self-hosted logon against Privilege Cloud, or a stray identity_url.
            (
                pc,
                "ldap",
                None,
                "pvwa.auth_method",
                "set pvwa.auth_method = \"identity\"",
            ),
            (id, "cyberark", None, "pvwa.url", "not a PVWA"),
            (
                "https://pvwa.example.test",
                "ldap",
                Some(id),
                "pvwa.identity_url",
                "applies only with",
            ),
        ] {
            let e = pvwa_of(url, method, identity).expect_err(url);
            assert_eq!(
                e.key.as_deref(),
                Some(key),
                "{url} {method} {identity:?}: {e}"
            );
            assert!(e.message.contains(says), "{url} {method} {identity:?}: {e}");
        }
    }
}

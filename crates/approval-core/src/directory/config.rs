//! `[directory]`: the LDAP servers, how users and groups are found, and where the approver groups
//! of a safe come from. [`DirectoryConfig::settings`] validates it into [`Settings`], naming the
//! key of every error.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Origin};
use crate::secret::SecretRef;

/// The default user filter: AD user accounts (not computers) by `mail` or an `smtp:` proxy
/// address, disabled accounts (userAccountControl bit 2) excluded. `{mail}` is replaced by the
/// RFC 4515-escaped address.
pub const DEFAULT_USER_FILTER: &str = "(&(objectCategory=person)(objectClass=user)(|(mail={mail})(proxyAddresses=smtp:{mail}))(!(userAccountControl:1.2.840.113556.1.4.803:=2)))";

/// The default group filter (AD's class; `group` in the test schema too).
pub const DEFAULT_GROUP_FILTER: &str = "(objectClass=group)";

/// `[directory]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldap` (default: LDAP / Active Directory) or `entra` (Microsoft Entra ID through
    /// Microsoft Graph, for cloud-only organisations; docs/entra-directory.md).
    #[serde(default)]
    pub kind: DirectoryKind,
    /// LDAP: one server, `ldaps://dc1.corp.example` (TLS on connect, port 636) or
    /// `ldap://dc1.corp.example` (StartTLS, port 389). Entra: Microsoft Graph's API base
    /// (default: `mailbox.url` when the mailbox is on Graph, else
    /// `https://graph.microsoft.com/v1.0`).
    pub url: Option<String>,
    /// Several servers, tried in order when connecting (after `url`). LDAP only.
    #[serde(default)]
    pub urls: Vec<String>,
    /// The service account's bind name: a DN (any server) or, on AD, `user@domain`. LDAP only.
    pub bind_dn: Option<String>,
    /// Secret reference for its password (`vault:`, `file:`, `env:`, `cmd:`, `cred:`). LDAP only.
    pub bind_password: Option<SecretRef>,
    /// Where users are searched (subtree). LDAP only.
    pub base_dn: Option<String>,
    /// Where approver groups are searched (subtree); `base_dn` when absent. LDAP only.
    pub group_base_dn: Option<String>,
    /// For `ldap://` URLs: upgrade with StartTLS (default true). Turning it off needs
    /// `allow_plain`. LDAP only.
    pub starttls: Option<bool>,
    /// Allow plain, unencrypted LDAP (bind password in clear) — only to a loopback host.
    pub allow_plain: Option<bool>,
    /// PEM bundle of the CAs to trust instead of the system store.
    pub ca_bundle: Option<PathBuf>,
    /// Seconds to wait for TCP connect + TLS/StartTLS handshake + bind.
    #[serde(default = "connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for one search (Entra: one Graph request).
    #[serde(default = "op_timeout")]
    pub timeout_secs: u64,
    /// Nested-group strategy. LDAP only (Entra ID resolves nesting itself).
    pub membership: Option<Strategy>,
    /// Group nesting levels followed (user -> g1 is one level). LDAP only.
    pub max_depth: Option<u32>,
    /// Seconds a user lookup or membership answer is reused (0: no cache).
    #[serde(default)]
    pub cache_ttl_secs: u64,
    /// User filter template with `{mail}` (escaped before use). LDAP only.
    pub user_filter: Option<String>,
    /// Filter that selects group entries. LDAP only.
    pub group_filter: Option<String>,
    /// Where the approver groups of a safe at a level come from.
    #[serde(default)]
    pub approvers: ApproverMode,
    /// How PVWA's (or the static table's) group names map to directory groups.
    #[serde(default)]
    pub group_names: GroupNameRule,
    /// The static table (`approvers = "static"`): `[[directory.static]]`.
    #[serde(default, rename = "static")]
    pub static_rules: Vec<StaticRule>,
    /// A user attribute that names the person behind an account (e.g. `employeeID`; on Entra
    /// `employeeId`): directory users with the same value are one person, so a second account
    /// counts as its owner (docs/watcher.md, "one person counts once"). Unset: each account is
    /// its own person.
    pub person_attribute: Option<String>,
    /// Entra only: the app registration, when it is not the Graph mailbox's
    /// (`[mailbox.graph]`), e.g. on a site whose mailbox is on EWS: `[directory.graph]` with
    /// the same keys as `[mailbox.graph]`.
    pub graph: Option<crate::mailbox::graph::GraphConfig>,
}

/// Which directory the tool asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryKind {
    /// LDAP / Active Directory.
    #[default]
    Ldap,
    /// Microsoft Entra ID through Microsoft Graph (application permissions).
    Entra,
}

impl DirectoryKind {
    pub fn name(self) -> &'static str {
        match self {
            DirectoryKind::Ldap => "ldap",
            DirectoryKind::Entra => "entra",
        }
    }
}

/// `[directory]` with `kind = "entra"`, validated: where Graph is and as which app the tool
/// signs in.
#[derive(Debug, Clone)]
pub struct EntraSettings {
    /// Graph's API base without a trailing slash: `https://graph.microsoft.com/v1.0`.
    pub graph_url: String,
    /// The app registration and its credential (validated).
    pub app: crate::mailbox::graph::GraphConfig,
    /// Where `app` comes from, for messages: `mailbox.graph` or `directory.graph`.
    pub app_key: &'static str,
}

fn connect_timeout() -> u64 {
    5
}
fn op_timeout() -> u64 {
    10
}
fn max_depth() -> u32 {
    8
}

/// Nested group membership strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// `in_chain` on Active Directory (root DSE capability 1.2.840.113556.1.4.800), else
    /// `recursive`.
    #[default]
    Auto,
    /// Server-side transitive check (`LDAP_MATCHING_RULE_IN_CHAIN`, AD only; other servers
    /// answer "no" for everyone).
    InChain,
    /// Client-side walk up `memberOf`, cycle-safe and depth-limited (any server with `memberOf`).
    Recursive,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Auto => "auto",
            Strategy::InChain => "in_chain",
            Strategy::Recursive => "recursive",
        }
    }
}

/// Where approver groups come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApproverMode {
    /// Groups PVWA lists as members of the safe with `requestsAuthorizationLevel1`/`2`.
    #[default]
    SafeMembers,
    /// The `[[directory.static]]` table.
    Static,
}

impl ApproverMode {
    pub fn name(self) -> &'static str {
        match self {
            ApproverMode::SafeMembers => "safe-members",
            ApproverMode::Static => "static",
        }
    }
}

/// Which attribute of a directory group holds the name PVWA (or the static table) uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum GroupNameAttribute {
    #[default]
    #[serde(rename = "sAMAccountName", alias = "samaccountname")]
    SamAccountName,
    #[serde(rename = "cn", alias = "CN")]
    Cn,
    /// Entra ID: the group's display name (default under `kind = "entra"`; not unique in a
    /// tenant: a name two groups share is not used).
    #[serde(rename = "displayName", alias = "displayname")]
    DisplayName,
    /// Entra ID: the group's mail nickname (unique among mail-enabled groups).
    #[serde(rename = "mailNickname", alias = "mailnickname")]
    MailNickname,
    /// Entra ID, groups synced from AD: the on-premises sAMAccountName.
    #[serde(
        rename = "onPremisesSamAccountName",
        alias = "onpremisessamaccountname"
    )]
    OnPremisesSamAccountName,
}

impl GroupNameAttribute {
    /// The attribute's name as written in the configuration (LDAP or Graph property).
    pub fn ldap_name(self) -> &'static str {
        match self {
            GroupNameAttribute::SamAccountName => "sAMAccountName",
            GroupNameAttribute::Cn => "cn",
            GroupNameAttribute::DisplayName => "displayName",
            GroupNameAttribute::MailNickname => "mailNickname",
            GroupNameAttribute::OnPremisesSamAccountName => "onPremisesSamAccountName",
        }
    }

    /// Whether the attribute is a Graph group property (for `kind = "entra"`).
    pub fn is_entra(self) -> bool {
        matches!(
            self,
            GroupNameAttribute::DisplayName
                | GroupNameAttribute::MailNickname
                | GroupNameAttribute::OnPremisesSamAccountName
        )
    }
}

/// `[directory.group_names]`: the mapping rule from a safe member name to a directory group.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupNameRule {
    /// The group attribute compared with the name (case-insensitively): LDAP `sAMAccountName`
    /// (default) or `cn`; Entra `displayName` (default), `mailNickname` or
    /// `onPremisesSamAccountName`. Always set after validation.
    #[serde(default)]
    pub attribute: Option<GroupNameAttribute>,
    /// Domains whose `NAME@DOMAIN` / `DOMAIN\NAME` forms are accepted and stripped to `NAME`.
    /// A name that carries another domain is never mapped.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Map only names that carry one of `domains` (names without a domain part are ignored).
    #[serde(default)]
    pub require_domain: bool,
    /// Privilege Cloud: safe members of type Role (CyberArk Identity roles), each mapped to
    /// the DN of the directory group whose members hold that role (`"PAM Approvers L1" =
    /// "CN=PAM-Approvers-L1,OU=Groups,DC=corp,DC=example"`). A Role member without an entry
    /// maps to nothing (it is listed as skipped, with this key).
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, String>,
    /// Privilege Cloud: where the holders of a Role member not listed in `roles` come from.
    /// `"table"` (the default): nowhere, such a role is skipped. `"identity"`: CyberArk
    /// Identity, read with the lookup account's platform token (the role's users, and its
    /// member groups mapped like safe members; docs/privilege-cloud.md).
    #[serde(default)]
    pub roles_from: RolesFrom,
}

/// `[directory.group_names] roles_from`: how a Role safe member without an entry in `roles`
/// is resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RolesFrom {
    /// Only the explicit `roles` table; other roles approve nothing.
    #[default]
    Table,
    /// The role's members as CyberArk Identity lists them.
    Identity,
}

impl GroupNameRule {
    /// The group attribute names are compared with (LDAP's default when unset).
    pub fn attribute(&self) -> GroupNameAttribute {
        self.attribute.unwrap_or_default()
    }

    /// The directory group DN a Role member maps to (role names compare case-insensitively).
    pub fn role_group(&self, role: &str) -> Option<&str> {
        let role = role.trim();
        self.roles
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(role))
            .map(|(_, dn)| dn.as_str())
    }
}

/// The value of a DN's first RDN (`CN=PAM-L1,OU=…` → `PAM-L1`), when it reads as a DN.
pub fn first_rdn_value(dn: &str) -> Option<&str> {
    let first = dn.split(',').next()?;
    let (attr, value) = first.split_once('=')?;
    let ok = !attr.trim().is_empty()
        && attr
            .trim()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !value.trim().is_empty()
        && dn.contains(',');
    ok.then(|| value.trim())
}

/// One row of the static table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRule {
    /// Directory group name (mapped by `[directory.group_names]`).
    pub group: String,
    /// The confirmation level this group approves (1 or 2).
    pub level: u8,
    /// Safe name patterns (`*` any run, `?` one character; case-insensitive).
    pub safes: Vec<String>,
}

/// `[directory]` validated: what the LDAP client and the approver mapping run with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which directory; under `entra`, [`Settings::entra`] is set and the LDAP fields are empty.
    pub kind: DirectoryKind,
    /// `kind = "entra"`: Graph and the app registration.
    pub entra: Option<EntraSettings>,
    pub urls: Vec<url::Url>,
    pub bind_dn: String,
    /// The bind password's reference (LDAP; `None` under `entra`).
    pub bind_password: Option<SecretRef>,
    pub base_dn: String,
    pub group_base_dn: String,
    pub starttls: bool,
    pub ca_bundle: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub op_timeout: Duration,
    pub strategy: Strategy,
    pub max_depth: u32,
    pub cache_ttl: Duration,
    pub user_filter: String,
    pub group_filter: String,
    pub approvers: ApproverMode,
    pub group_names: GroupNameRule,
    pub static_rules: Vec<StaticRule>,
    /// `person_attribute`, checked to be an attribute name.
    pub person_attribute: Option<String>,
}

impl Settings {
    /// The servers, for messages: `ldaps://dc1:636, ldaps://dc2:636` (Entra: the Graph base).
    pub fn servers(&self) -> String {
        if let Some(e) = &self.entra {
            return e.graph_url.clone();
        }
        self.urls
            .iter()
            .map(server_name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether TLS protects the connection to this URL.
    pub fn uses_tls(&self, url: &url::Url) -> bool {
        url.scheme() == "ldaps" || self.starttls
    }
}

/// `scheme://host:port` of an LDAP URL (no path, no credentials).
pub fn server_name(url: &url::Url) -> String {
    let port = url
        .port()
        .unwrap_or(if url.scheme() == "ldaps" { 636 } else { 389 });
    format!(
        "{}://{}:{port}",
        url.scheme(),
        url.host_str().unwrap_or("?")
    )
}

/// The keys only LDAP reads, and whether each is set (refused under `kind = "entra"`).
fn ldap_keys(c: &DirectoryConfig) -> [(&'static str, bool); 11] {
    [
        ("urls", !c.urls.is_empty()),
        ("bind_dn", c.bind_dn.is_some()),
        ("bind_password", c.bind_password.is_some()),
        ("base_dn", c.base_dn.is_some()),
        ("group_base_dn", c.group_base_dn.is_some()),
        ("starttls", c.starttls.is_some()),
        ("allow_plain", c.allow_plain.is_some()),
        ("membership", c.membership.is_some()),
        ("max_depth", c.max_depth.is_some()),
        ("user_filter", c.user_filter.is_some()),
        ("group_filter", c.group_filter.is_some()),
    ]
}

impl DirectoryConfig {
    /// Validate; `origin` names the file and environment variables in errors. Under
    /// `kind = "entra"` without `[directory.graph]` there is no mailbox to borrow the app from:
    /// use [`DirectoryConfig::settings_with`].
    pub fn settings(&self, origin: &Origin) -> Result<Settings, ConfigError> {
        self.settings_with(origin, None)
    }

    /// Validate, with `[mailbox]` (whose Graph app registration `kind = "entra"` uses unless
    /// `[directory.graph]` names its own).
    pub fn settings_with(
        &self,
        origin: &Origin,
        mailbox: Option<&crate::mailbox::config::MailboxConfig>,
    ) -> Result<Settings, ConfigError> {
        let err = |key: &str, msg: String| origin.error(&format!("directory.{key}"), msg);
        self.common_checks(origin)?;
        if self.kind == DirectoryKind::Entra {
            return self.entra_settings(origin, mailbox);
        }
        if self.graph.is_some() {
            return Err(err(
                "graph",
                "is for kind = \"entra\" (Microsoft Entra ID); remove it, or set directory.kind = \"entra\"".into(),
            ));
        }
        if let Some(a) = self.group_names.attribute
            && a.is_entra()
        {
            return Err(err(
                "group_names.attribute",
                format!(
                    "`{}` is a Microsoft Graph property, for kind = \"entra\"; with LDAP use sAMAccountName or cn",
                    a.ldap_name()
                ),
            ));
        }
        let (Some(bind_dn), Some(bind_password), Some(base_dn)) =
            (&self.bind_dn, &self.bind_password, &self.base_dn)
        else {
            let missing = [
                ("bind_dn", self.bind_dn.is_none()),
                ("bind_password", self.bind_password.is_none()),
                ("base_dn", self.base_dn.is_none()),
            ]
            .into_iter()
            .find(|(_, m)| *m)
            .map(|(k, _)| k)
            .unwrap_or("bind_dn");
            return Err(err(
                missing,
                "is required with kind = \"ldap\" (the default); a cloud-only organisation sets directory.kind = \"entra\" (docs/entra-directory.md)".to_string(),
            ));
        };
        let starttls = self.starttls.unwrap_or(true);
        let allow_plain = self.allow_plain.unwrap_or(false);

        let mut raw: Vec<(&str, &String)> = Vec::new();
        if let Some(u) = &self.url {
            raw.push(("url", u));
        }
        raw.extend(self.urls.iter().map(|u| ("urls", u)));
        if raw.is_empty() {
            return Err(err(
                "url",
                "no server: set directory.url (or directory.urls)".into(),
            ));
        }
        let mut urls = Vec::new();
        for (key, u) in raw {
            let url = check_ldap_url(u, starttls, allow_plain).map_err(|m| err(key, m))?;
            urls.push(url);
        }
        for (key, v) in [("bind_dn", bind_dn), ("base_dn", base_dn)] {
            if v.trim().is_empty() {
                return Err(err(key, "must not be empty".into()));
            }
            if v.chars().any(char::is_control) {
                return Err(err(key, "contains control characters".into()));
            }
        }
        if let Some(g) = &self.group_base_dn
            && (g.trim().is_empty() || g.chars().any(char::is_control))
        {
            return Err(err("group_base_dn", "must be a DN".into()));
        }
        let max_depth = self.max_depth.unwrap_or_else(max_depth);
        if max_depth == 0 || max_depth > 64 {
            return Err(err("max_depth", "must be between 1 and 64".into()));
        }
        let user_filter = self
            .user_filter
            .clone()
            .unwrap_or_else(|| DEFAULT_USER_FILTER.into());
        check_filter(&user_filter, true).map_err(|m| err("user_filter", m))?;
        let group_filter = self
            .group_filter
            .clone()
            .unwrap_or_else(|| DEFAULT_GROUP_FILTER.into());
        check_filter(&group_filter, false).map_err(|m| err("group_filter", m))?;
        for (role, dn) in &self.group_names.roles {
            if role.trim().is_empty() || role.chars().any(char::is_control) {
                return Err(err(
                    "group_names.roles",
                    "a role name is empty or holds control characters".into(),
                ));
            }
            if first_rdn_value(dn).is_none() || dn.chars().any(char::is_control) {
                return Err(err(
                    &format!("group_names.roles.\"{}\"", role.escape_debug()),
                    format!(
                        "`{}` is not a group DN: write the directory group whose members hold the role, e.g. \"CN=PAM-Approvers-L1,OU=Groups,DC=corp,DC=example\"",
                        dn.escape_debug()
                    ),
                ));
            }
        }
        let mut group_names = self.group_names.clone();
        group_names.attribute = Some(group_names.attribute());
        Ok(Settings {
            kind: DirectoryKind::Ldap,
            entra: None,
            urls,
            bind_dn: bind_dn.clone(),
            bind_password: Some(bind_password.clone()),
            base_dn: base_dn.clone(),
            group_base_dn: self
                .group_base_dn
                .clone()
                .unwrap_or_else(|| base_dn.clone()),
            starttls,
            ca_bundle: self.ca_bundle.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            op_timeout: Duration::from_secs(self.timeout_secs),
            strategy: self.membership.unwrap_or_default(),
            max_depth,
            cache_ttl: Duration::from_secs(self.cache_ttl_secs),
            user_filter,
            group_filter,
            approvers: self.approvers,
            group_names,
            static_rules: self.static_rules.clone(),
            person_attribute: self.person_attribute.clone(),
        })
    }

    /// The checks of every kind: timeouts, cache, the name mapping, the static table, the
    /// person attribute.
    fn common_checks(&self, origin: &Origin) -> Result<(), ConfigError> {
        let err = |key: &str, msg: String| origin.error(&format!("directory.{key}"), msg);
        if self.connect_timeout_secs == 0 || self.connect_timeout_secs > 300 {
            return Err(err(
                "connect_timeout_secs",
                "must be between 1 and 300".into(),
            ));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return Err(err("timeout_secs", "must be between 1 and 300".into()));
        }
        if self.cache_ttl_secs > 3600 {
            return Err(err(
                "cache_ttl_secs",
                "must be at most 3600 (an hour); a removed approver keeps approving until it expires".into(),
            ));
        }
        for (i, d) in self.group_names.domains.iter().enumerate() {
            if d.trim().is_empty() || d.contains(['@', '\\']) || d.chars().any(char::is_control) {
                return Err(err(
                    &format!("group_names.domains[{i}]"),
                    format!(
                        "`{}` is not a domain name (write corp.example or CORP, without @ or \\)",
                        d.escape_debug()
                    ),
                ));
            }
        }
        if self.group_names.require_domain && self.group_names.domains.is_empty() {
            return Err(err(
                "group_names.require_domain",
                "needs at least one entry in group_names.domains".into(),
            ));
        }
        for (i, r) in self.static_rules.iter().enumerate() {
            let k = |f: &str| format!("static[{i}].{f}");
            if r.group.trim().is_empty() || r.group.chars().any(char::is_control) {
                return Err(err(&k("group"), "must be a group name".into()));
            }
            if !matches!(r.level, 1 | 2) {
                return Err(err(&k("level"), "must be 1 or 2".into()));
            }
            if r.safes.is_empty() {
                return Err(err(&k("safes"), "needs at least one safe pattern".into()));
            }
            if r.safes.iter().any(|s| s.trim().is_empty()) {
                return Err(err(&k("safes"), "holds an empty pattern".into()));
            }
        }
        if let Some(a) = &self.person_attribute
            && !is_attribute_name(a)
        {
            return Err(err(
                "person_attribute",
                format!(
                    "`{}` is not an LDAP attribute name (letters, digits and `-`, starting with a letter, e.g. employeeID)",
                    a.escape_debug()
                ),
            ));
        }
        if self.approvers == ApproverMode::Static && self.static_rules.is_empty() {
            return Err(err(
                "static",
                "approvers = \"static\" needs at least one [[directory.static]] row".into(),
            ));
        }
        Ok(())
    }

    /// `kind = "entra"`: no LDAP key, Graph's URL, the app registration (`[directory.graph]`,
    /// else `[mailbox.graph]` of a Graph mailbox), Graph group properties for the names, and
    /// roles mapped to group ids or names.
    fn entra_settings(
        &self,
        origin: &Origin,
        mailbox: Option<&crate::mailbox::config::MailboxConfig>,
    ) -> Result<Settings, ConfigError> {
        use crate::mailbox::config::MailboxKind;
        let err = |key: &str, msg: String| origin.error(&format!("directory.{key}"), msg);
        for (key, set) in ldap_keys(self) {
            if set {
                return Err(err(
                    key,
                    "is an LDAP key; kind = \"entra\" reads Microsoft Entra ID through Microsoft Graph: remove it".into(),
                ));
            }
        }
        let attribute = self
            .group_names
            .attribute
            .unwrap_or(GroupNameAttribute::DisplayName);
        if !attribute.is_entra() {
            return Err(err(
                "group_names.attribute",
                format!(
                    "`{}` is an LDAP attribute; with kind = \"entra\" use displayName (default), mailNickname or onPremisesSamAccountName",
                    attribute.ldap_name()
                ),
            ));
        }
        for (role, group) in &self.group_names.roles {
            if role.trim().is_empty() || role.chars().any(char::is_control) {
                return Err(err(
                    "group_names.roles",
                    "a role name is empty or holds control characters".into(),
                ));
            }
            if group.trim().is_empty()
                || group.chars().any(char::is_control)
                || first_rdn_value(group).is_some()
            {
                return Err(err(
                    &format!("group_names.roles.\"{}\"", role.escape_debug()),
                    format!(
                        "`{}` is not an Entra ID group: write the group's object id (a GUID) or its name as directory.group_names.attribute reads it",
                        group.escape_debug()
                    ),
                ));
            }
        }
        let graph_mailbox = mailbox.filter(|m| m.kind == MailboxKind::Graph);
        let (app, app_key) = match (&self.graph, graph_mailbox.and_then(|m| m.graph.as_ref())) {
            (Some(g), _) => (g.clone(), "directory.graph"),
            (None, Some(g)) => (g.clone(), "mailbox.graph"),
            (None, None) => {
                return Err(err(
                    "graph",
                    "kind = \"entra\" signs in with an app registration: the mailbox is not on Graph, so give [directory.graph] (tenant_id, client_id and a certificate or client secret, as [mailbox.graph])".into(),
                ));
            }
        };
        app.validate()
            .map_err(|(k, m)| origin.error(&format!("{app_key}.{k}"), m))?;
        let raw_url = match (&self.url, graph_mailbox) {
            (Some(u), _) => u.trim().to_string(),
            (None, Some(m)) => m.graph_url().to_string(),
            (None, None) => crate::mailbox::config::GRAPH_URL.to_string(),
        };
        let parsed = crate::tls::check_url(&raw_url).map_err(|m| err("url", m))?;
        let path = parsed.path().trim_end_matches('/');
        if !path.ends_with("/v1.0") || parsed.query().is_some() {
            return Err(err(
                "url",
                format!(
                    "`{raw_url}` is not Microsoft Graph's API base: write it with its version, e.g. https://graph.microsoft.com/v1.0"
                ),
            ));
        }
        crate::mailbox::graph::config::same_cloud(&app.authority, &parsed)
            .map_err(|m| err("url", m.replace("mailbox.url", "directory.url")))?;
        if let Some(a) = &self.person_attribute
            && !a.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(err(
                "person_attribute",
                format!(
                    "`{}` is not a Microsoft Graph user property (letters and digits, e.g. employeeId)",
                    a.escape_debug()
                ),
            ));
        }
        let mut group_names = self.group_names.clone();
        group_names.attribute = Some(attribute);
        Ok(Settings {
            kind: DirectoryKind::Entra,
            entra: Some(EntraSettings {
                graph_url: raw_url.trim_end_matches('/').to_string(),
                app,
                app_key,
            }),
            urls: Vec::new(),
            bind_dn: String::new(),
            bind_password: None,
            base_dn: String::new(),
            group_base_dn: String::new(),
            starttls: true,
            ca_bundle: self.ca_bundle.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            op_timeout: Duration::from_secs(self.timeout_secs),
            strategy: Strategy::InChain,
            max_depth: max_depth(),
            cache_ttl: Duration::from_secs(self.cache_ttl_secs),
            user_filter: String::new(),
            group_filter: String::new(),
            approvers: self.approvers,
            group_names,
            static_rules: self.static_rules.clone(),
            person_attribute: self.person_attribute.clone(),
        })
    }
}

/// An LDAP attribute description without options: a letter, then letters, digits or `-`.
fn is_attribute_name(a: &str) -> bool {
    let mut c = a.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || x == '-')
        && a.len() <= 64
}

/// An LDAP URL we accept: `ldaps://host[:port]`, or `ldap://host[:port]` with StartTLS, or plain
/// `ldap://` to a loopback host when explicitly allowed. No path, query or credentials (the base
/// DN and account are their own keys).
pub fn check_ldap_url(raw: &str, starttls: bool, allow_plain: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    match url.scheme() {
        "ldaps" => {}
        "ldap" if starttls => {}
        "ldap" if allow_plain && is_loopback(&url) => {}
        "ldap" if allow_plain => {
            return Err(format!(
                "`{raw}`: plain LDAP is allowed only to a loopback host; use ldaps:// or StartTLS"
            ));
        }
        "ldap" => {
            return Err(format!(
                "`{raw}`: plain LDAP sends the bind password in clear; keep starttls = true or use ldaps://"
            ));
        }
        other => {
            return Err(format!(
                "`{raw}`: scheme `{other}` is not supported; use ldaps:// or ldap:// (StartTLS)"
            ));
        }
    }
    match url.host_str() {
        None | Some("") => return Err(format!("`{raw}` has no host")),
        Some(h) if h.starts_with('[') => {
            // ldap3 hands the bracketed form to TLS as the server name, which cannot verify.
            return Err(format!(
                "`{raw}`: IPv6 literals are not supported; use a host name"
            ));
        }
        Some(_) => {}
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL carries credentials; use bind_dn and bind_password instead".into());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{raw}`: give only scheme, host and port; the base DN is directory.base_dn"
        ));
    }
    Ok(url)
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host_str() {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// A filter template must be one parenthesised filter with balanced parentheses; the user
/// filter must contain `{mail}`.
fn check_filter(f: &str, needs_mail: bool) -> Result<(), String> {
    let t = f.trim();
    if !t.starts_with('(') || !t.ends_with(')') {
        return Err("must be one filter in parentheses, e.g. (objectClass=group)".into());
    }
    let mut depth = 0i32;
    let mut escaped = false;
    for c in t.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("has unbalanced parentheses".into());
                }
            }
            c if c.is_control() => return Err("contains control characters".into()),
            _ => {}
        }
    }
    if depth != 0 {
        return Err("has unbalanced parentheses".into());
    }
    if needs_mail && !t.contains("{mail}") {
        return Err("must contain {mail} where the sender address goes".into());
    }
    if !needs_mail && t.contains('{') {
        return Err("takes no placeholders".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::load_from_parts;

    const BASE: &str = r#"
[directory]
url = "ldaps://dc1.corp.example"
bind_dn = "svc_pamtool@corp.example"
bind_password = "env:LDAP_PW"
base_dn = "DC=corp,DC=example"
"#;

    fn settings(extra: &str) -> Result<Settings, ConfigError> {
        let text = format!("{BASE}{extra}");
        load_from_parts(Some(&text), None, &[])
            .expect("parses")
            .directory()
    }

    #[test]
    fn defaults() {
        let s = settings("").expect("valid");
        assert_eq!(s.strategy, Strategy::Auto);
        assert_eq!(s.approvers, ApproverMode::SafeMembers);
        assert_eq!(
            s.group_names.attribute(),
            GroupNameAttribute::SamAccountName
        );
        assert_eq!(s.kind, DirectoryKind::Ldap);
        assert!(s.entra.is_none());
        assert_eq!(s.user_filter, DEFAULT_USER_FILTER);
        assert_eq!(s.group_base_dn, "DC=corp,DC=example");
        assert_eq!(s.servers(), "ldaps://dc1.corp.example:636");
        assert_eq!(s.max_depth, 8);
        assert!(s.cache_ttl.is_zero());
    }

    #[test]
    fn plain_ldap_needs_allow_plain_and_loopback() {
        // starttls only concerns ldap:// URLs: ldaps:// stays encrypted.
        assert!(settings("starttls = false\n").is_ok());
        let remote = BASE.replace("ldaps://", "ldap://");
        let plain = |extra: &str| {
            load_from_parts(Some(&format!("{remote}{extra}")), None, &[])
                .expect("parses")
                .directory()
        };
        let e = plain("starttls = false\n").expect_err("plain refused");
        assert_eq!(e.key.as_deref(), Some("directory.url"), "{e}");
        assert!(e.message.contains("clear"), "{e}");
        let e = plain("starttls = false\nallow_plain = true\n").expect_err("remote plain");
        assert!(e.message.contains("loopback"), "{e}");
        let text = BASE.replace("ldaps://dc1.corp.example", "ldap://127.0.0.1:3890");
        let l = load_from_parts(
            Some(&format!("{text}starttls = false\nallow_plain = true\n")),
            None,
            &[],
        )
        .expect("parses");
        assert!(l.directory().is_ok());
        // ldap:// with StartTLS (the default) is fine to any host.
        let text = BASE.replace("ldaps://", "ldap://");
        let l = load_from_parts(Some(&text), None, &[]).expect("parses");
        assert!(l.directory().expect("starttls").starttls);
    }

    #[test]
    fn urls_are_checked() {
        for bad in [
            "https://dc1",
            "ldaps://",
            "ldaps://u:pw@dc1",
            "ldaps://dc1/DC=corp?x",
            "ldaps://[::1]:636",
            "ldapi://%2fvar%2frun",
        ] {
            let r = check_ldap_url(bad, true, false);
            assert!(r.is_err(), "{bad} accepted");
            assert!(!r.expect_err("err").contains("pw@"), "credentials echoed");
        }
        assert!(check_ldap_url("ldaps://dc1.corp.example:3269", true, false).is_ok());
        assert!(check_ldap_url("ldap://localhost:3890/", false, true).is_ok());
    }

    #[test]
    fn filters_are_checked() {
        let e = settings("user_filter = \"(mail=x)\"\n").expect_err("no {mail}");
        assert_eq!(e.key.as_deref(), Some("directory.user_filter"));
        let e = settings("group_filter = \"(objectClass=group\"\n").expect_err("unbalanced");
        assert_eq!(e.key.as_deref(), Some("directory.group_filter"));
        assert!(
            settings("user_filter = \"(&(objectClass=inetOrgPerson)(mail={mail}))\"\n").is_ok()
        );
    }

    #[test]
    fn person_attribute_is_an_attribute_name() {
        assert_eq!(settings("").expect("valid").person_attribute, None);
        let s = settings("person_attribute = \"employeeID\"\n").expect("valid");
        assert_eq!(s.person_attribute.as_deref(), Some("employeeID"));
        for bad in ["", "employee ID", "1abc", "(employeeID=*)", "mail)(x"] {
            let e = settings(&format!("person_attribute = {bad:?}\n")).expect_err(bad);
            assert_eq!(
                e.key.as_deref(),
                Some("directory.person_attribute"),
                "{bad}"
            );
        }
    }

    #[test]
    fn static_table_is_validated() {
        let e = settings("approvers = \"static\"\n").expect_err("empty table");
        assert_eq!(e.key.as_deref(), Some("directory.static"));
        let e = settings(
            "approvers = \"static\"\n[[directory.static]]\ngroup = \"G\"\nlevel = 3\nsafes = [\"*\"]\n",
        )
        .expect_err("level 3");
        assert_eq!(e.key.as_deref(), Some("directory.static[0].level"));
        let s = settings(
            "approvers = \"static\"\n[[directory.static]]\ngroup = \"DB_PAMapprover\"\nlevel = 1\nsafes = [\"DB*\"]\n",
        )
        .expect("valid");
        assert_eq!(s.static_rules.len(), 1);
    }

    #[test]
    fn mapping_rule_parses_both_attribute_spellings() {
        let s = settings(
            "[directory.group_names]\nattribute = \"cn\"\ndomains = [\"corp.example\", \"CORP\"]\n",
        )
        .expect("valid");
        assert_eq!(s.group_names.attribute(), GroupNameAttribute::Cn);
        let e = settings("[directory.group_names]\ndomains = [\"@corp\"]\n").expect_err("bad");
        assert_eq!(e.key.as_deref(), Some("directory.group_names.domains[0]"));
        let e = settings("[directory.group_names]\nrequire_domain = true\n").expect_err("bad");
        assert_eq!(
            e.key.as_deref(),
            Some("directory.group_names.require_domain")
        );
    }

    #[test]
    fn shipped_example_parses_and_validates() {
        let text = include_str!("../../../../examples/config.d/directory.toml");
        let l = load_from_parts(
            Some(text),
            Some("examples/config.d/directory.toml".into()),
            &[],
        )
        .expect("example parses");
        let s = l.directory().expect("example validates");
        assert_eq!(s.urls.len(), 2);
        assert_eq!(s.static_rules.len(), 3);
        assert_eq!(s.group_names.domains, vec!["corp.example", "CORP"]);
        assert_eq!(s.user_filter, DEFAULT_USER_FILTER);
    }

    #[test]
    fn bounds() {
        for (k, v) in [
            ("max_depth", "0"),
            ("timeout_secs", "0"),
            ("connect_timeout_secs", "0"),
            ("cache_ttl_secs", "86400"),
        ] {
            let e = settings(&format!("{k} = {v}\n")).expect_err(k);
            assert_eq!(e.key.as_deref(), Some(format!("directory.{k}").as_str()));
        }
    }

    const GRAPH_MAILBOX: &str = r#"
[mailbox]
kind = "graph"
mailbox = "pam-approvals@corp.example"
[mailbox.graph]
tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"
client_id = "0c1e0000-0000-4000-8000-0000000000bb"
certificate = "file:/etc/pam-approval/graph.crt"
private_key = "file:/etc/pam-approval/graph.key"
"#;

    const EWS_MAILBOX: &str = r#"
[mailbox]
url = "https://mail.corp.example/EWS/Exchange.asmx"
username = "svc"
password = "env:MB"
mailbox = "pam-approvals@corp.example"
"#;

    fn entra(mailbox: &str, directory: &str) -> Result<Settings, ConfigError> {
        let text = format!("{mailbox}\n[directory]\nkind = \"entra\"\n{directory}");
        load_from_parts(Some(&text), None, &[])
            .expect("parses")
            .directory()
    }

    #[test]
    fn entra_borrows_the_graph_mailbox_app_and_url() {
        let s = entra(GRAPH_MAILBOX, "").expect("valid");
        assert_eq!(s.kind, DirectoryKind::Entra);
        let e = s.entra.as_ref().expect("entra");
        assert_eq!(e.app_key, "mailbox.graph");
        assert_eq!(e.graph_url, "https://graph.microsoft.com/v1.0");
        assert_eq!(e.app.client_id, "0c1e0000-0000-4000-8000-0000000000bb");
        assert_eq!(s.group_names.attribute(), GroupNameAttribute::DisplayName);
        assert!(s.bind_password.is_none());
        assert_eq!(s.servers(), "https://graph.microsoft.com/v1.0");
        // An explicit Graph URL of another cloud than the app's sign-in service is refused.
        let e = entra(GRAPH_MAILBOX, "url = \"https://graph.microsoft.us/v1.0\"\n")
            .expect_err("clouds differ");
        assert_eq!(e.key.as_deref(), Some("directory.url"), "{e}");
        let e = entra(GRAPH_MAILBOX, "url = \"https://graph.microsoft.com\"\n")
            .expect_err("no version");
        assert_eq!(e.key.as_deref(), Some("directory.url"), "{e}");
        assert!(e.message.contains("/v1.0"), "{e}");
    }

    #[test]
    fn entra_on_an_ews_site_needs_its_own_app() {
        let e = entra(EWS_MAILBOX, "").expect_err("no app");
        assert_eq!(e.key.as_deref(), Some("directory.graph"), "{e}");
        let own = "[directory.graph]\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"0c1e0000-0000-4000-8000-0000000000cc\"\nauth = \"client_secret\"\nclient_secret = \"env:DIR_SECRET\"\n";
        let s = entra(EWS_MAILBOX, own).expect("valid");
        let e = s.entra.as_ref().expect("entra");
        assert_eq!(e.app_key, "directory.graph");
        assert_eq!(e.graph_url, "https://graph.microsoft.com/v1.0");
        // Its keys are checked as [mailbox.graph]'s are, under its own name.
        let bad = own.replace("0c1e0000-0000-4000-8000-0000000000cc", "my-app");
        let e = entra(EWS_MAILBOX, &bad).expect_err("client id");
        assert_eq!(e.key.as_deref(), Some("directory.graph.client_id"), "{e}");
        let bad = own.replace("client_secret = \"env:DIR_SECRET\"\n", "");
        let e = entra(EWS_MAILBOX, &bad).expect_err("no secret");
        assert_eq!(
            e.key.as_deref(),
            Some("directory.graph.client_secret"),
            "{e}"
        );
        // [directory.graph] wins over the mailbox's app.
        let s = entra(GRAPH_MAILBOX, own).expect("valid");
        assert_eq!(s.entra.expect("entra").app_key, "directory.graph");
    }

    #[test]
    fn keys_of_the_other_kind_are_refused_by_name() {
        for (line, key) in [
            ("bind_dn = \"cn=x\"", "bind_dn"),
            ("bind_password = \"env:X\"", "bind_password"),
            ("base_dn = \"dc=x\"", "base_dn"),
            ("urls = [\"ldaps://dc1\"]", "urls"),
            ("group_base_dn = \"ou=g\"", "group_base_dn"),
            ("starttls = false", "starttls"),
            ("allow_plain = true", "allow_plain"),
            ("membership = \"recursive\"", "membership"),
            ("max_depth = 3", "max_depth"),
            ("user_filter = \"(mail={mail})\"", "user_filter"),
            ("group_filter = \"(objectClass=group)\"", "group_filter"),
            (
                "[directory.group_names]\nattribute = \"sAMAccountName\"",
                "group_names.attribute",
            ),
            (
                "[directory.group_names]\nattribute = \"cn\"",
                "group_names.attribute",
            ),
            (
                "[directory.group_names.roles]\n\"PAM L1\" = \"CN=PAM-L1,OU=Groups,DC=corp,DC=example\"",
                "group_names.roles.\"PAM L1\"",
            ),
            ("person_attribute = \"extension_1-x\"", "person_attribute"),
        ] {
            let e = entra(GRAPH_MAILBOX, &format!("{line}\n")).expect_err(line);
            assert_eq!(
                e.key.as_deref(),
                Some(format!("directory.{key}").as_str()),
                "{line}: {e}"
            );
        }
        // An unknown key is refused by serde, naming it.
        let text = format!("{GRAPH_MAILBOX}\n[directory]\nkind = \"entra\"\ntenant = \"x\"\n");
        let e = load_from_parts(Some(&text), None, &[]).expect_err("unknown key");
        assert!(e.to_string().contains("tenant"), "{e}");
        // And the other way: Entra keys under LDAP.
        let e = settings("[directory.graph]\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"0c1e0000-0000-4000-8000-0000000000cc\"\nauth = \"client_secret\"\nclient_secret = \"env:S\"\n")
            .expect_err("graph under ldap");
        assert_eq!(e.key.as_deref(), Some("directory.graph"), "{e}");
        let e = settings("[directory.group_names]\nattribute = \"displayName\"\n")
            .expect_err("graph attribute under ldap");
        assert_eq!(e.key.as_deref(), Some("directory.group_names.attribute"));
        // LDAP's required keys are named when missing.
        let text =
            "[directory]\nurl = \"ldaps://dc1\"\nbind_dn = \"cn=x\"\nbind_password = \"env:X\"\n";
        let e = load_from_parts(Some(text), None, &[])
            .expect("parses")
            .directory()
            .expect_err("no base_dn");
        assert_eq!(e.key.as_deref(), Some("directory.base_dn"), "{e}");
    }

    #[test]
    fn entra_names_and_roles() {
        let s = entra(
            GRAPH_MAILBOX,
            "person_attribute = \"employeeId\"\ncache_ttl_secs = 60\n[directory.group_names]\nattribute = \"mailNickname\"\n[directory.group_names.roles]\n\"PAM Approvers L1\" = \"6f1c0000-0000-4000-8000-00000000a001\"\n\"PAM Approvers L2\" = \"PAM-Approvers-L2\"\n",
        )
        .expect("valid");
        assert_eq!(s.group_names.attribute(), GroupNameAttribute::MailNickname);
        assert_eq!(
            s.group_names.role_group("pam approvers l1"),
            Some("6f1c0000-0000-4000-8000-00000000a001")
        );
        assert_eq!(s.person_attribute.as_deref(), Some("employeeId"));
        assert_eq!(s.cache_ttl.as_secs(), 60);
        for a in ["onPremisesSamAccountName", "displayName"] {
            let s = entra(
                GRAPH_MAILBOX,
                &format!("[directory.group_names]\nattribute = \"{a}\"\n"),
            )
            .expect(a);
            assert_eq!(s.group_names.attribute().ldap_name(), a);
        }
    }
}

//! Typed configuration: one TOML file, overridden key by key from the environment.
//!
//! Precedence: command-line flag > environment override > file > default. The file is
//! `--config PATH`, else `$APPROVAL_CONFIG`, else `$XDG_CONFIG_HOME/pam-approval/config.toml`
//! (`~/.config/...`) when it exists. Unknown keys are refused; every error names the file and
//! the key, and the environment variable when the value came from one.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env;
use crate::exit::{Classify, Exit};
use crate::secret::SecretRef;

/// Directory name under the XDG base directories.
pub const APP_DIR: &str = "pam-approval";

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
    /// The watcher: journal, state directory, loop, replies.
    #[serde(default)]
    pub watcher: crate::pipeline::WatcherConfig,
    /// Reply mails.
    #[serde(default)]
    pub notify: crate::notify::NotifyConfig,
    /// Ticket validation (ServiceNow, Remedy).
    pub ticketing: Option<crate::ticketing::TicketingConfig>,
    /// Remote Access (formerly Alero).
    pub remote_access: Option<crate::remote_access::RemoteAccessConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
}

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
    #[serde(default = "defaults::page_size")]
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

/// `[log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Log file; stderr when absent. Reopened on SIGHUP by the watcher.
    pub file: Option<PathBuf>,
    /// Base level: error, warn, info, debug, trace (raised by -v, lowered by -q).
    pub level: Option<String>,
}

pub(crate) mod defaults {
    pub fn connect_timeout() -> u64 {
        10
    }
    pub fn request_timeout() -> u64 {
        30
    }
    pub fn retries() -> u32 {
        3
    }
    pub fn backoff_ms() -> u64 {
        500
    }
    pub fn yes() -> bool {
        true
    }
    pub fn page_size() -> u32 {
        100
    }
}

/// A configuration error: names the file, the key and the environment variable involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub key: Option<String>,
    pub env_var: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            key: None,
            env_var: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("configuration")?;
        if let Some(file) = &self.file {
            write!(f, " file {}", file.display())?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        if let Some(var) = &self.env_var {
            write!(f, " (set by environment variable {var})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Classify for ConfigError {
    fn exit(&self) -> Exit {
        Exit::Config
    }
    fn hint(&self) -> Option<String> {
        Some("see examples/config.toml and examples/config.d/ for every key and its meaning".into())
    }
}

/// A loaded configuration and where each part came from.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Config paths (dotted) that were set from the environment, with the variable name.
    pub from_env: Vec<(String, String)>,
}

impl Loaded {
    /// An error about a key, naming the file and the env var that set it (if any).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            key: Some(key.to_string()),
            env_var: self
                .from_env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
            message: message.into(),
        }
    }

    /// `[pvwa]`, validated, or an error naming what is missing.
    pub fn pvwa(&self) -> Result<&PvwaConfig, ConfigError> {
        let p = self.config.pvwa.as_ref().ok_or_else(|| {
            self.error(
                "pvwa.url",
                format!(
                    "the [pvwa] section is missing; set pvwa.url (or {})",
                    env::override_name(&["pvwa", "url"])
                ),
            )
        })?;
        crate::tls::check_url(&p.url).map_err(|m| self.error("pvwa.url", m))?;
        if p.request_timeout_secs == 0 {
            return Err(self.error("pvwa.request_timeout_secs", "must be at least 1"));
        }
        if p.connect_timeout_secs == 0 {
            return Err(self.error("pvwa.connect_timeout_secs", "must be at least 1"));
        }
        if p.page_size == 0 || p.page_size > 1000 {
            return Err(self.error("pvwa.page_size", "must be between 1 and 1000"));
        }
        Ok(p)
    }

    /// Dual Control needs two people: one account confirming at both levels would let one
    /// forward supply both confirmations, so such a configuration is refused at load time.
    fn check_separate_level_accounts(&self) -> Result<(), ConfigError> {
        let a = &self.config.accounts;
        if let (Some(l1), Some(l2)) = (&a.level1, &a.level2)
            && !l1.username.trim().is_empty()
            && same_account_name(&l1.username, &l2.username)
        {
            return Err(self.error(
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
    pub fn account(&self, role: AccountRole) -> Result<&AccountConfig, ConfigError> {
        let a = &self.config.accounts;
        let found = match role {
            AccountRole::Level1 => a.level1.as_ref(),
            AccountRole::Level2 => a.level2.as_ref(),
            AccountRole::Lookup => a.lookup.as_ref().or(a.level2.as_ref()),
        };
        let acc = found.ok_or_else(|| {
            self.error(
                &format!("accounts.{}", role.key()),
                format!(
                    "the [accounts.{}] section (username and password) is missing",
                    role.key()
                ),
            )
        })?;
        if acc.username.trim().is_empty() {
            return Err(self.error(
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

/// Where the config file is looked for when no path is given.
pub fn default_path() -> Option<PathBuf> {
    let base = env::var(env::XDG_CONFIG_HOME)
        .map(PathBuf::from)
        .or_else(|| env::var(env::HOME).map(|h| Path::new(&h).join(".config")))?;
    Some(base.join(APP_DIR).join("config.toml"))
}

/// The default state directory (journal, locks, sync state).
pub fn default_state_dir() -> Option<PathBuf> {
    let base = env::var(env::XDG_STATE_HOME)
        .map(PathBuf::from)
        .or_else(|| env::var(env::HOME).map(|h| Path::new(&h).join(".local").join("state")))?;
    Some(base.join(APP_DIR))
}

/// Load the configuration: `explicit` is `--config`; the environment is read for
/// `APPROVAL_CONFIG` and the overrides.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let overrides = env::config_overrides();
    let (file, required) = match explicit {
        Some(p) => (Some(p.to_path_buf()), true),
        None => match env::var(env::APPROVAL_CONFIG) {
            Some(p) => (Some(PathBuf::from(p)), true),
            None => (default_path(), false),
        },
    };
    let text = match &file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
            Err(e) => {
                return Err(ConfigError {
                    file: Some(path.clone()),
                    key: None,
                    env_var: None,
                    message: format!("cannot read it: {e}"),
                });
            }
        },
        None => None,
    };
    let file = if text.is_some() { file } else { None };
    load_from_parts(text.as_deref(), file, &overrides)
}

/// Parse a config from text plus overrides (variable, path, raw value). Pure: used by tests.
pub fn load_from_parts(
    text: Option<&str>,
    file: Option<PathBuf>,
    overrides: &[(String, Vec<String>, String)],
) -> Result<Loaded, ConfigError> {
    let mut table: toml::Table = match text {
        Some(t) => toml::from_str(t).map_err(|e| ConfigError {
            file: file.clone(),
            key: None,
            env_var: None,
            message: format!("not valid TOML: {}", e.to_string().trim_end()),
        })?,
        None => toml::Table::new(),
    };
    let mut from_env = Vec::new();
    for (var, path, raw) in overrides {
        let dotted = path.join(".");
        set_path(&mut table, path, parse_env_value(raw)).map_err(|m| ConfigError {
            file: file.clone(),
            key: Some(dotted.clone()),
            env_var: Some(var.clone()),
            message: m,
        })?;
        from_env.push((dotted, var.clone()));
    }
    // A value from the environment that looks like a number or boolean may be meant as a
    // string (a user name "1234"): on a type error at such a key, retry it as a string.
    let mut value = toml::Value::Table(table);
    for _ in 0..=from_env.len() {
        match serde_path_to_error::deserialize::<_, Config>(value.clone()) {
            Ok(config) => {
                let loaded = Loaded {
                    config,
                    file,
                    from_env,
                };
                loaded.check_separate_level_accounts()?;
                return Ok(loaded);
            }
            Err(e) => {
                let key = e.path().to_string();
                let var = from_env
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone());
                if var.is_some() && stringify_at(&mut value, &key) {
                    continue;
                }
                let message = e.into_inner().to_string();
                let message = message.lines().next().unwrap_or("").trim().to_string();
                return Err(ConfigError {
                    file,
                    key: Some(key).filter(|k| k != "."),
                    env_var: var,
                    message,
                });
            }
        }
    }
    Err(ConfigError::new("could not resolve environment overrides"))
}

fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) if t.len() == 1 => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        _ => toml::Value::String(raw.to_string()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for seg in parents {
        let entry = cur
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{seg}` is not a table, so it cannot hold `{last}`"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

/// Turn the non-string value at a dotted path into its string form; false when nothing changed.
fn stringify_at(value: &mut toml::Value, dotted: &str) -> bool {
    let mut cur = value;
    for seg in dotted.split('.') {
        match cur.get_mut(seg) {
            Some(v) => cur = v,
            None => return false,
        }
    }
    if cur.is_str() {
        return false;
    }
    let s = match cur {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return false,
    };
    *cur = toml::Value::String(s);
    true
}

/// Paths of keys present in the set, for tests that check examples cover everything.
pub fn keys_of(text: &str) -> Result<BTreeSet<String>, toml::de::Error> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeSet<String>) {
        for (k, v) in t {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if let toml::Value::Table(sub) = v {
                walk(&p, sub, out);
            } else {
                out.insert(p);
            }
        }
    }
    let t: toml::Table = toml::from_str(text)?;
    let mut out = BTreeSet::new();
    walk("", &t, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

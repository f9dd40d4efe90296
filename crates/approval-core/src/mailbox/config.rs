//! `[mailbox]`: which backend, the folders (the watched one, and `Processed` and `Refused`
//! under it, where every backend files mail), timeouts and retries, and the backend's own keys
//! (EWS: endpoint, authentication, server version, streaming; Graph: `[mailbox.graph]`, the app
//! registration and its credential).

use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::SecretRef;

/// `[mailbox]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// Mailbox access protocol: `ews` (Exchange Server) or `graph` (Exchange Online).
    #[serde(default)]
    pub kind: MailboxKind,
    /// EWS: the endpoint, e.g. `https://mail.example.com/EWS/Exchange.asmx` (required).
    /// Graph: the API base, default `https://graph.microsoft.com/v1.0` (national clouds differ).
    #[serde(default)]
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
    /// Poll interval in seconds: EWS when not streaming (default 60), Graph's delta query
    /// (default 2).
    pub poll_interval_secs: Option<u64>,
    /// OAuth2 client credentials (EWS, auth = "oauth2").
    pub oauth: Option<OAuthConfig>,
    /// The app registration for `kind = "graph"`.
    pub graph: Option<super::graph::GraphConfig>,
    /// The largest mail read, in MiB (its MIME; EWS sends it base64, a third larger): a larger
    /// one is never read, and is refused after `watcher.max_attempts`.
    #[serde(default = "defaults::max_mail_mib")]
    pub max_mail_mib: usize,
    /// The most mails the watcher sends (replies and reports together) per minute; more wait,
    /// owed, in their journal state. Default 30 (Exchange Online's limit: Graph, and EWS on
    /// Exchange Online), 60 for EWS on another server; 0: not paced (a server's quota answer
    /// is still honoured).
    pub max_sends_per_minute: Option<u32>,
    /// The period `max_sends_per_minute` counts over, in seconds: 60; another value is for
    /// tests.
    #[serde(default = "defaults::send_window")]
    pub send_window_secs: u64,
    /// Recipients in 24 hours past which a warning is logged (at 80 %): default 10,000,
    /// Exchange Online's limit; 0: no warning. Nothing is held back for it.
    #[serde(default = "defaults::daily_recipients")]
    pub daily_recipient_budget: u32,
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
    Graph,
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
    pub fn max_mail_mib() -> usize {
        48
    }
    pub fn send_window() -> u64 {
        60
    }
    pub fn daily_recipients() -> u32 {
        10_000
    }
    pub fn stream_minutes() -> u32 {
        30
    }
    pub fn scope() -> String {
        "https://outlook.office365.com/.default".into()
    }
}

/// Graph's API base when `mailbox.url` is not set.
pub const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

impl MailboxConfig {
    /// The poll interval of this backend (EWS 60 s when not streaming, Graph 2 s).
    pub fn poll_interval(&self) -> std::time::Duration {
        let default = match self.kind {
            MailboxKind::Ews => 60,
            MailboxKind::Graph => 2,
        };
        std::time::Duration::from_secs(self.poll_interval_secs.unwrap_or(default))
    }

    /// Whether the mailbox is on Exchange Online: Graph, or EWS at one of Exchange Online's
    /// endpoints (worldwide and national clouds).
    pub fn exchange_online(&self) -> bool {
        if self.kind == MailboxKind::Graph {
            return true;
        }
        let host = url::Url::parse(self.url.trim())
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        [
            "office365.com",
            "office365.us",
            "outlook.office.com",
            "partner.outlook.cn",
        ]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }

    /// Sends a minute: `max_sends_per_minute`, else 30 on Exchange Online and 60 elsewhere.
    pub fn max_sends(&self) -> u32 {
        self.max_sends_per_minute
            .unwrap_or(if self.exchange_online() { 30 } else { 60 })
    }

    /// The limits of this mailbox's sending ([`super::pace`]).
    pub fn pace_limits(&self) -> super::pace::PaceLimits {
        let window = std::time::Duration::from_secs(self.send_window_secs.max(1));
        super::pace::PaceLimits {
            max_sends: self.max_sends(),
            window,
            daily_recipients: self.daily_recipient_budget,
            // A server's delay is honoured up to max_back_off_secs, and at least a window.
            max_server_delay: std::time::Duration::from_secs(self.max_back_off_secs).max(window),
        }
    }

    /// Graph's API base: `mailbox.url`, or the worldwide service.
    pub fn graph_url(&self) -> &str {
        if self.url.trim().is_empty() {
            GRAPH_URL
        } else {
            self.url.trim().trim_end_matches('/')
        }
    }

    /// Check values that serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: &str| Err((format!("mailbox.{k}"), m.to_string()));
        if !self.mailbox.contains('@')
            || self
                .mailbox
                .contains(['<', '>', ' ', '\r', '\n', '/', '?', '#', '%'])
        {
            return e("mailbox", "must be an SMTP address such as bot@example.com");
        }
        if self.poll_interval_secs == Some(0) {
            return e("poll_interval_secs", "must be at least 1");
        }
        if !(1..=150).contains(&self.max_mail_mib) {
            return e(
                "max_mail_mib",
                "must be between 1 and 150 (Exchange Online's own message size limit)",
            );
        }
        if !(1..=3600).contains(&self.send_window_secs) {
            return e(
                "send_window_secs",
                "must be between 1 and 3600 (60 outside tests)",
            );
        }
        if self.max_sends_per_minute.is_some_and(|n| n > 10_000) {
            return e(
                "max_sends_per_minute",
                "must be at most 10000 (0 turns the pace off)",
            );
        }
        if self.connect_timeout_secs == 0 {
            return e("connect_timeout_secs", "must be at least 1");
        }
        if self.request_timeout_secs == 0 {
            return e("request_timeout_secs", "must be at least 1");
        }
        if self.kind == MailboxKind::Graph {
            let api = match crate::tls::check_url(self.graph_url()) {
                Ok(u) => u,
                Err(m) => return Err(("mailbox.url".into(), m)),
            };
            let path = api.path().trim_end_matches('/');
            if !path.eq_ignore_ascii_case("/v1.0") && !path.to_ascii_lowercase().ends_with("/v1.0")
            {
                let fix = format!(
                    "{}{}/v1.0",
                    api.origin().ascii_serialization(),
                    if path.eq_ignore_ascii_case("/beta") {
                        ""
                    } else {
                        path
                    }
                );
                return Err((
                    "mailbox.url".into(),
                    format!(
                        "`{}` is not a Graph v1.0 base: the tool speaks Graph v1.0 (not beta), whose base ends in /v1.0: url = \"{fix}\" (or leave url out for {GRAPH_URL})",
                        self.graph_url()
                    ),
                ));
            }
            for (key, set) in [
                ("username", self.username.is_some()),
                ("password", self.password.is_some()),
                ("oauth", self.oauth.is_some()),
            ] {
                if set {
                    return e(
                        key,
                        "is an EWS key; with kind = \"graph\" the app registration goes into [mailbox.graph]",
                    );
                }
            }
            let Some(g) = &self.graph else {
                return e(
                    "graph",
                    "the [mailbox.graph] section (tenant_id, client_id and a certificate or client secret) is required with kind = \"graph\"",
                );
            };
            g.validate()
                .map_err(|(k, m)| (format!("mailbox.graph.{k}"), m))?;
            return super::graph::config::same_cloud(&g.authority, &api)
                .map_err(|m| ("mailbox.graph.authority".to_string(), m));
        }
        if self.graph.is_some() {
            return e("graph", "is for kind = \"graph\"; this mailbox is EWS");
        }
        if let Err(m) = crate::tls::check_url(&self.url) {
            return Err(("mailbox.url".into(), m));
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
        if !(1..=30).contains(&self.stream_timeout_minutes) {
            return e("stream_timeout_minutes", "must be between 1 and 30");
        }
        Ok(())
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
    fn the_shipped_graph_example_parses_and_validates() {
        let text = include_str!("../../../../examples/config.d/mailbox-graph.toml");
        let w: Wrapper = toml::from_str(text).expect("example parses");
        w.mailbox.validate().expect("example validates");
        assert_eq!(w.mailbox.kind, MailboxKind::Graph);
        assert_eq!(w.mailbox.graph_url(), GRAPH_URL);
        assert_eq!(w.mailbox.poll_interval(), std::time::Duration::from_secs(2));
        // EWS keys are refused with kind = "graph", and the Graph section with EWS.
        let mut ews_keys = w.mailbox.clone();
        ews_keys.username = Some("x".into());
        assert_eq!(
            ews_keys.validate().expect_err("refused").0,
            "mailbox.username"
        );
        let mut no_section = w.mailbox.clone();
        no_section.graph = None;
        assert_eq!(
            no_section.validate().expect_err("refused").0,
            "mailbox.graph"
        );
        let mut bad = w.mailbox.clone();
        if let Some(g) = bad.graph.as_mut() {
            g.client_id = "not-a-guid".into();
        }
        assert_eq!(
            bad.validate().expect_err("refused").0,
            "mailbox.graph.client_id"
        );
    }

    /// The Graph base without `/v1.0`, an authority with the tenant appended, and a sign-in
    /// service of another cloud than the Graph host are refused at load, naming the key and the
    /// value to write (not a 404 at the first call blamed on another key).
    #[test]
    fn graph_addresses_are_checked_at_load_with_the_value_to_write() {
        let text = include_str!("../../../../examples/config.d/mailbox-graph.toml");
        let w: Wrapper = toml::from_str(text).expect("example parses");
        let with = |url: &str, authority: &str| {
            let mut m = w.mailbox.clone();
            m.url = url.into();
            if let Some(g) = m.graph.as_mut() {
                g.authority = authority.into();
            }
            m.validate()
        };
        let global = "https://login.microsoftonline.com";
        for (url, authority) in [
            ("https://graph.microsoft.com/v1.0", global),
            ("https://graph.microsoft.com/v1.0/", global),
            (
                "https://graph.microsoft.us/v1.0",
                "https://login.microsoftonline.us",
            ),
            (
                "https://dod-graph.microsoft.us/v1.0",
                "https://login.microsoftonline.us",
            ),
            (
                "https://microsoftgraph.chinacloudapi.cn/v1.0",
                "https://login.chinacloudapi.cn/",
            ),
            ("https://proxy.example.test/graph/v1.0", global),
            ("https://127.0.0.1:8443/v1.0", "https://127.0.0.1:8443"),
        ] {
            with(url, authority).unwrap_or_else(|e| panic!("{url} {authority}: {e:?}"));
        }
        for (url, authority, key, says) in [
            (
                "https://graph.microsoft.com",
                global,
                "mailbox.url",
                "url = \"https://graph.microsoft.com/v1.0\"",
            ),
            (
                "https://graph.microsoft.com/beta",
                global,
                "mailbox.url",
                "url = \"https://graph.microsoft.com/v1.0\"",
            ),
            (
                "https://graph.microsoft.com/v1.0",
                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47",
                "mailbox.graph.authority",
                "authority = \"https://login.microsoftonline.com\"",
            ),
            (
                "https://graph.microsoft.us/v1.0",
                global,
                "mailbox.graph.authority",
                "authority = \"https://login.microsoftonline.us\"",
            ),
            (
                "https://graph.microsoft.com/v1.0",
                "https://login.chinacloudapi.cn",
                "mailbox.graph.authority",
                "authority = \"https://login.microsoftonline.com\"",
            ),
        ] {
            let (k, m) = with(url, authority).expect_err(url);
            assert_eq!(k, key, "{url} {authority}: {m}");
            assert!(m.contains(says), "{url} {authority}: {m}");
        }
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
}

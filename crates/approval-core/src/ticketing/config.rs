//! `[ticketing]`: which systems, how to reach them, and what each ticket type must satisfy.
//!
//! The raw section is read by serde; [`TicketingConfig::compile`] checks it once (regexes,
//! state names, field names, bypass hashes) and returns errors that name the key, so a typo
//! fails at start-up instead of letting a ticket through later.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::applies::Applies;
use super::bypass::BypassHash;
use super::rules::{self, AllowedApprovals, AllowedStates};
use crate::config::{ConfigError, Origin};
use crate::http::{Backoff, HttpSettings};
use crate::secret::SecretRef;

/// A ticketing system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemKind {
    #[serde(rename = "servicenow")]
    ServiceNow,
    Remedy,
}

impl SystemKind {
    pub fn key(self) -> &'static str {
        match self {
            SystemKind::ServiceNow => "servicenow",
            SystemKind::Remedy => "remedy",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            SystemKind::ServiceNow => "ServiceNow",
            SystemKind::Remedy => "Remedy",
        }
    }
}

impl std::fmt::Display for SystemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.title())
    }
}

/// Incident or change: which table or form is read, and which checks make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketKind {
    Incident,
    Change,
}

impl TicketKind {
    pub fn key(self) -> &'static str {
        match self {
            TicketKind::Incident => "incident",
            TicketKind::Change => "change",
        }
    }
}

/// `[ticketing]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketingConfig {
    /// `[ticketing.servicenow]`: the ServiceNow instance.
    pub servicenow: Option<ServiceNowConfig>,
    /// `[ticketing.remedy]`: the BMC Remedy / Helix AR server.
    pub remedy: Option<RemedyConfig>,
    /// `[[ticketing.types]]`: ticket types, told apart by their id patterns.
    #[serde(default)]
    pub types: Vec<TicketTypeConfig>,
    /// Failsafe bypass codes, each an Argon2id PHC string printed by
    /// `validate-ticket --hash-bypass-code` (never the code itself).
    #[serde(default)]
    pub bypass_codes: Vec<String>,
    /// Tolerance in seconds around a change's operation window.
    #[serde(default = "defaults::skew")]
    pub clock_skew_secs: u64,
    /// `[ticketing.applies]`: which requests need a ticket, and where the ticket comes from.
    #[serde(default)]
    pub applies: AppliesConfig,
}

/// `[ticketing.servicenow]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNowConfig {
    /// Instance URL, e.g. `https://acme.service-now.com` (a non-default port may follow).
    pub url: String,
    /// `basic`, `oauth_password` or `oauth_client_credentials`.
    #[serde(default)]
    pub auth: ServiceNowAuth,
    /// Connection account (Basic and the OAuth password grant); needs the `itil` role.
    pub username: Option<String>,
    /// Its password, as a secret reference.
    pub password: Option<SecretRef>,
    /// OAuth client id (OAuth only).
    pub client_id: Option<String>,
    /// OAuth client secret, as a secret reference (OAuth only).
    pub client_secret: Option<SecretRef>,
    /// PEM bundle of the CAs to trust instead of the system store.
    pub ca_bundle: Option<PathBuf>,
    /// Seconds to wait for a TCP/TLS connection.
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for a whole request.
    #[serde(default = "defaults::request_timeout")]
    pub request_timeout_secs: u64,
    /// How often reads (and logins) are retried on transient faults.
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// First backoff delay in milliseconds (doubles each retry, with jitter).
    #[serde(default = "defaults::backoff_ms")]
    pub backoff_ms: u64,
}

/// How we authenticate to ServiceNow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceNowAuth {
    #[default]
    Basic,
    OauthPassword,
    OauthClientCredentials,
}

/// `[ticketing.remedy]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemedyConfig {
    /// Server URL, e.g. `https://remedy.example.com:8443` (the AR REST API is under `/api`).
    pub url: String,
    /// Connection account.
    pub username: String,
    /// Its password, as a secret reference.
    pub password: SecretRef,
    /// Optional `authString` sent at login (authentication domain).
    pub auth_string: Option<String>,
    /// Form read for incidents.
    #[serde(default = "defaults::incident_form")]
    pub incident_form: String,
    /// Form read for changes.
    #[serde(default = "defaults::change_form")]
    pub change_form: String,
    /// PEM bundle of the CAs to trust instead of the system store.
    pub ca_bundle: Option<PathBuf>,
    /// Seconds to wait for a TCP/TLS connection.
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for a whole request.
    #[serde(default = "defaults::request_timeout")]
    pub request_timeout_secs: u64,
    /// How often reads (and logins) are retried on transient faults.
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// First backoff delay in milliseconds (doubles each retry, with jitter).
    #[serde(default = "defaults::backoff_ms")]
    pub backoff_ms: u64,
}

/// Connection settings shared by both systems (the same keys in both sections).
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub ca_bundle: Option<PathBuf>,
    pub connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub retries: u32,
    pub backoff_ms: u64,
}

macro_rules! connection_of {
    ($t:ty) => {
        impl $t {
            pub fn connection(&self) -> ConnectionConfig {
                ConnectionConfig {
                    ca_bundle: self.ca_bundle.clone(),
                    connect_timeout_secs: self.connect_timeout_secs,
                    request_timeout_secs: self.request_timeout_secs,
                    retries: self.retries,
                    backoff_ms: self.backoff_ms,
                }
            }
        }
    };
}
connection_of!(ServiceNowConfig);
connection_of!(RemedyConfig);

impl ConnectionConfig {
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            ca_bundle: self.ca_bundle.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            ..HttpSettings::default()
        }
    }
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.retries, self.backoff_ms)
    }
}

/// `[[ticketing.types]]`: one kind of ticket id and what a valid ticket of it must show.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketTypeConfig {
    /// A name for messages and the audit trail, e.g. `sn-change`.
    pub name: String,
    /// `servicenow` or `remedy`.
    pub system: SystemKind,
    /// `incident` or `change`.
    pub kind: TicketKind,
    /// Regular expression the whole id must match (anchored for you).
    pub pattern: String,
    /// Allowed states: CyberArk's names (New, Assigned, In Progress, Pending, Resolved, Closed,
    /// Cancelled) or the system's own values (`native:` forces a native value). Absent: not checked.
    pub allowed_states: Option<Vec<String>>,
    /// Changes only: allowed approval states (Approved, Not Yet Requested, Requested, Rejected,
    /// or native values). Absent: not checked.
    pub allowed_approvals: Option<Vec<String>>,
    /// Changes only: the time of the request must lie in the change's planned window.
    #[serde(default)]
    pub check_window: bool,
    /// The ticket's requester must be the CyberArk requester.
    #[serde(default)]
    pub check_requester: bool,
    /// Ticket fields holding the requester's login, first non-empty wins (defaults per system).
    pub requester_fields: Option<Vec<String>>,
    /// Compare only the part before `@` of both names (UPN local part).
    #[serde(default)]
    pub requester_upn_local_part: bool,
}

/// `[ticketing.applies]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliesConfig {
    /// Safe-name patterns (whole name, case-insensitive) whose requests need a valid ticket.
    #[serde(default)]
    pub safes: Vec<String>,
    /// Platform patterns (matched against `PolicyID` and `PlatformName`) that need a ticket.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Pattern finding the ticket id in the request's reason when PVWA carries no ticket
    /// number; its first capture group (or the whole match) is the id.
    pub reason_pattern: Option<String>,
}

pub(crate) mod defaults {
    pub fn skew() -> u64 {
        60
    }
    pub fn incident_form() -> String {
        "HPD:IncidentInterface".into()
    }
    pub fn change_form() -> String {
        "CHG:ChangeInterface".into()
    }
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
}

/// A checked ticket type.
#[derive(Debug, Clone)]
pub struct CompiledType {
    pub name: String,
    pub system: SystemKind,
    pub kind: TicketKind,
    pub pattern: regex::Regex,
    pub states: Option<AllowedStates>,
    pub approvals: Option<AllowedApprovals>,
    pub check_window: bool,
    pub requester: Option<RequesterRule>,
}

/// How the requester is found and compared.
#[derive(Debug, Clone)]
pub struct RequesterRule {
    pub fields: Vec<String>,
    pub upn_local_part: bool,
}

/// The whole section, checked.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub types: Vec<CompiledType>,
    pub bypass: Vec<BypassHash>,
    pub skew: chrono::Duration,
    pub applies: Applies,
    pub servicenow: Option<ServiceNowConfig>,
    pub remedy: Option<RemedyConfig>,
}

/// ServiceNow field names (dot-walks allowed): nothing that could end a field list or a query.
fn sn_field_ok(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 80
        && f.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        && !f.starts_with('.')
        && !f.ends_with('.')
        && !f.contains("..")
}

/// Remedy field names: letters, digits, spaces, `_` and `-` (no quote, comma or parenthesis,
/// which would break out of `fields=values(…)` or a qualification).
fn remedy_field_ok(f: &str) -> bool {
    !f.trim().is_empty()
        && f.len() <= 80
        && f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'_' || b == b'-')
}

/// Remedy form names (`HPD:IncidentInterface`, `CHG:Infrastructure Change`).
fn remedy_form_ok(f: &str) -> bool {
    !f.trim().is_empty()
        && f.len() <= 80
        && f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'_' || b == b'-' || b == b':')
}

/// Compile a user pattern anchored to the whole text.
pub(crate) fn anchored(p: &str, case_insensitive: bool) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{p})$"))
        .case_insensitive(case_insensitive)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("not a valid regular expression: {e}"))
}

/// REST paths of ServiceNow (`/api/now/…`) and Remedy (`/api/arsys/…`, `/api/jwt/…`).
const API_PATHS: [&str; 3] = ["/api/now", "/api/arsys", "/api/jwt"];

fn check_connection(
    origin: &Origin,
    key: &str,
    url: &str,
    c: &ConnectionConfig,
) -> Result<(), ConfigError> {
    crate::tls::check_url(url).map_err(|m| origin.error(&format!("{key}.url"), m))?;
    // The vendors' documents call the REST path "the URL of the web services"; the tool adds
    // every API path itself, so the key takes the server's address alone.
    if let Ok(u) = url::Url::parse(url) {
        let path = u.path().to_ascii_lowercase();
        if let Some(at) = API_PATHS.iter().filter_map(|p| path.find(p)).min() {
            let mut base = u.clone();
            base.set_path(&u.path()[..at]);
            base.set_query(None);
            return Err(origin.error(
                &format!("{key}.url"),
                format!(
                    "give the server's address without the REST path `{}` (the tool adds the API \
                     paths itself): url = \"{}\"",
                    &u.path()[at..],
                    base.as_str().trim_end_matches('/')
                ),
            ));
        }
    }
    if c.connect_timeout_secs == 0 {
        return Err(origin.error(&format!("{key}.connect_timeout_secs"), "must be at least 1"));
    }
    if c.request_timeout_secs == 0 {
        return Err(origin.error(&format!("{key}.request_timeout_secs"), "must be at least 1"));
    }
    if c.retries > 10 {
        return Err(origin.error(&format!("{key}.retries"), "must be at most 10"));
    }
    Ok(())
}

impl TicketingConfig {
    /// Check everything once; errors name the key.
    pub fn compile(&self, origin: &Origin) -> Result<Compiled, ConfigError> {
        if let Some(sn) = &self.servicenow {
            let key = "ticketing.servicenow";
            check_connection(origin, key, &sn.url, &sn.connection())?;
            let need_user = matches!(
                sn.auth,
                ServiceNowAuth::Basic | ServiceNowAuth::OauthPassword
            );
            if need_user {
                if sn.username.as_deref().is_none_or(|u| u.trim().is_empty()) {
                    return Err(origin.error(
                        &format!("{key}.username"),
                        "the connection account is missing",
                    ));
                }
                if sn.password.is_none() {
                    return Err(origin.error(
                        &format!("{key}.password"),
                        "the connection account's password reference is missing",
                    ));
                }
            }
            if sn.auth != ServiceNowAuth::Basic {
                if sn.client_id.as_deref().is_none_or(|u| u.trim().is_empty()) {
                    return Err(
                        origin.error(&format!("{key}.client_id"), "OAuth needs the client id")
                    );
                }
                if sn.client_secret.is_none() {
                    return Err(origin.error(
                        &format!("{key}.client_secret"),
                        "OAuth needs the client secret reference",
                    ));
                }
            }
        }
        if let Some(r) = &self.remedy {
            let key = "ticketing.remedy";
            check_connection(origin, key, &r.url, &r.connection())?;
            if r.username.trim().is_empty() {
                return Err(origin.error(&format!("{key}.username"), "must not be empty"));
            }
            for (k, form) in [
                ("incident_form", &r.incident_form),
                ("change_form", &r.change_form),
            ] {
                if !remedy_form_ok(form) {
                    return Err(origin.error(
                        &format!("{key}.{k}"),
                        "a form name may hold letters, digits, spaces, `:`, `_` and `-` only",
                    ));
                }
            }
        }
        if self.types.is_empty() {
            return Err(origin.error(
                "ticketing.types",
                "no ticket type is configured: add at least one [[ticketing.types]] with a pattern",
            ));
        }
        let mut types = Vec::new();
        for (n, t) in self.types.iter().enumerate() {
            types.push(self.compile_type(origin, n, t)?);
        }
        let mut bypass = Vec::new();
        for (n, h) in self.bypass_codes.iter().enumerate() {
            bypass.push(
                BypassHash::parse(h)
                    .map_err(|m| origin.error(&format!("ticketing.bypass_codes[{n}]"), m))?,
            );
        }
        if self.clock_skew_secs > 24 * 3600 {
            return Err(origin.error("ticketing.clock_skew_secs", "must be at most 86400"));
        }
        let applies = Applies::compile(&self.applies)
            .map_err(|(k, m)| origin.error(&format!("ticketing.applies.{k}"), m))?;
        Ok(Compiled {
            types,
            bypass,
            skew: chrono::Duration::seconds(self.clock_skew_secs as i64),
            applies,
            servicenow: self.servicenow.clone(),
            remedy: self.remedy.clone(),
        })
    }

    fn compile_type(
        &self,
        origin: &Origin,
        n: usize,
        t: &TicketTypeConfig,
    ) -> Result<CompiledType, ConfigError> {
        let key = |k: &str| format!("ticketing.types[{n}].{k}");
        if t.name.trim().is_empty() {
            return Err(origin.error(&key("name"), "must not be empty"));
        }
        let present = match t.system {
            SystemKind::ServiceNow => self.servicenow.is_some(),
            SystemKind::Remedy => self.remedy.is_some(),
        };
        if !present {
            return Err(origin.error(
                &key("system"),
                format!(
                    "type `{}` uses {} but [ticketing.{}] is not configured",
                    t.name,
                    t.system.title(),
                    t.system.key()
                ),
            ));
        }
        let pattern = anchored(&t.pattern, false).map_err(|m| origin.error(&key("pattern"), m))?;
        let states = match &t.allowed_states {
            None => None,
            Some(list) => Some(
                rules::compile_states(t.system, t.kind, list)
                    .map_err(|m| origin.error(&key("allowed_states"), m))?,
            ),
        };
        let approvals = match (&t.allowed_approvals, t.kind) {
            (None, _) => None,
            (Some(_), TicketKind::Incident) => {
                return Err(origin.error(
                    &key("allowed_approvals"),
                    "approval is checked on changes only",
                ));
            }
            (Some(list), TicketKind::Change) => Some(
                rules::compile_approvals(t.system, list)
                    .map_err(|m| origin.error(&key("allowed_approvals"), m))?,
            ),
        };
        if t.check_window && t.kind == TicketKind::Incident {
            return Err(origin.error(
                &key("check_window"),
                "the operation window is checked on changes only",
            ));
        }
        let requester = if t.check_requester {
            let fields = match &t.requester_fields {
                Some(f) => f.clone(),
                None => default_requester_fields(t.system, t.kind)
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            };
            if fields.is_empty() {
                return Err(origin.error(
                    &key("requester_fields"),
                    format!(
                        "{} {}s have no known requester login field: name the field that holds it",
                        t.system.title(),
                        t.kind.key()
                    ),
                ));
            }
            for f in &fields {
                let ok = match t.system {
                    SystemKind::ServiceNow => sn_field_ok(f),
                    SystemKind::Remedy => remedy_field_ok(f),
                };
                if !ok {
                    return Err(origin.error(
                        &key("requester_fields"),
                        format!("`{}` is not a usable field name", crate::text::printable(f)),
                    ));
                }
            }
            Some(RequesterRule {
                fields,
                upn_local_part: t.requester_upn_local_part,
            })
        } else {
            None
        };
        Ok(CompiledType {
            name: t.name.clone(),
            system: t.system,
            kind: t.kind,
            pattern,
            states,
            approvals,
            check_window: t.check_window,
            requester,
        })
    }
}

/// Where the requester's login is read by default (reference: ticketing.md §5).
pub fn default_requester_fields(system: SystemKind, kind: TicketKind) -> &'static [&'static str] {
    match (system, kind) {
        (SystemKind::ServiceNow, TicketKind::Incident) => {
            &["caller_id.user_name", "opened_by.user_name"]
        }
        (SystemKind::ServiceNow, TicketKind::Change) => &["requested_by.user_name"],
        (SystemKind::Remedy, TicketKind::Incident) => {
            &["Customer Login ID", "Direct Contact Login ID"]
        }
        // The change form's requester login field is not publicly documented.
        (SystemKind::Remedy, TicketKind::Change) => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::load_from_parts;

    pub(crate) const SAMPLE: &str = r#"
[ticketing]
bypass_codes = []
[ticketing.servicenow]
url = "https://sn.example.test:8443"
username = "svc"
password = "env:SN_PW"
[ticketing.remedy]
url = "https://remedy.example.test:8443"
username = "svc"
password = "env:RM_PW"
[[ticketing.types]]
name = "sn-change"
system = "servicenow"
kind = "change"
pattern = "CHG[0-9]{7}"
allowed_states = ["Scheduled", "In Progress"]
allowed_approvals = ["Approved"]
check_window = true
check_requester = true
[[ticketing.types]]
name = "rm-incident"
system = "remedy"
kind = "incident"
pattern = "INC[0-9]{12}"
allowed_states = ["Assigned", "In Progress"]
check_requester = true
"#;

    fn compile(text: &str) -> Result<Compiled, ConfigError> {
        load_from_parts(Some(text), None, &[])?.ticketing()
    }

    #[test]
    fn sample_compiles_with_defaults() {
        let c = compile(SAMPLE).expect("compiles");
        assert_eq!(c.types.len(), 2);
        assert_eq!(c.skew, chrono::Duration::seconds(60));
        let r = c.types[1].requester.as_ref().expect("requester");
        assert_eq!(
            r.fields,
            vec!["Customer Login ID", "Direct Contact Login ID"]
        );
        assert_eq!(
            c.remedy.as_ref().expect("remedy").incident_form,
            "HPD:IncidentInterface"
        );
        // Anchored: a longer id does not match.
        assert!(c.types[0].pattern.is_match("CHG0030001"));
        assert!(!c.types[0].pattern.is_match("CHG0030001x"));
        assert!(!c.types[0].pattern.is_match("xCHG0030001"));
    }

    #[test]
    fn mistakes_are_named_by_key() {
        let cases = [
            (
                SAMPLE.replace("\"Scheduled\", ", "\"Sheduled\", "),
                "ticketing.types[0].allowed_states",
            ),
            (
                SAMPLE.replace("CHG[0-9]{7}", "CHG[0-9"),
                "ticketing.types[0].pattern",
            ),
            (
                SAMPLE.replace("bypass_codes = []", "bypass_codes = [\"letmein\"]"),
                "ticketing.bypass_codes[0]",
            ),
            (
                SAMPLE.replace(
                    "name = \"rm-incident\"",
                    "name = \"rm-incident\"\nallowed_approvals = [\"Approved\"]",
                ),
                "ticketing.types[1].allowed_approvals",
            ),
            (
                SAMPLE.replace("kind = \"incident\"", "kind = \"change\""),
                "ticketing.types[1].requester_fields",
            ),
            (
                SAMPLE.replace(
                    "check_requester = true\n[[",
                    "check_requester = true\nrequester_fields = [\"caller_id^NQ\"]\n[[",
                ),
                "ticketing.types[0].requester_fields",
            ),
            (
                SAMPLE.replace(
                    "https://remedy.example.test:8443",
                    "http://remedy.example.test",
                ),
                "ticketing.remedy.url",
            ),
        ];
        for (text, key) in cases {
            let e = compile(&text).expect_err(key);
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
        }
    }

    /// The vendors' documents call the REST path "the URL of the web services"; written so, the
    /// key is refused at load with the address to write instead (not a 404 at the first
    /// ticket with a hint about another key).
    #[test]
    fn a_rest_path_in_the_url_is_refused_with_the_address_to_write() {
        for (from, to, key, base) in [
            (
                "https://sn.example.test:8443\"",
                "https://sn.example.test:8443/api/now/table\"",
                "ticketing.servicenow.url",
                "url = \"https://sn.example.test:8443\"",
            ),
            (
                "https://sn.example.test:8443\"",
                "https://sn.example.test:8443/API/now/v2/table/incident?x=1\"",
                "ticketing.servicenow.url",
                "url = \"https://sn.example.test:8443\"",
            ),
            (
                "https://remedy.example.test:8443\"",
                "https://remedy.example.test:8443/api/arsys/v1/entry\"",
                "ticketing.remedy.url",
                "url = \"https://remedy.example.test:8443\"",
            ),
        ] {
            let e = compile(&SAMPLE.replace(from, to)).expect_err(to);
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.to_string().contains(base), "{e}");
        }
        // A path of the site's own (a reverse proxy) is kept.
        let ok = SAMPLE.replace(
            "https://sn.example.test:8443\"",
            "https://gw.example.test/servicenow\"",
        );
        compile(&ok).expect("a proxy path is not an API path");
    }

    #[test]
    fn shipped_examples_compile() {
        for text in [
            include_str!("../../../../examples/config.d/ticketing.toml"),
            include_str!("../../../../examples/demo/ticketing-config.toml"),
        ] {
            let c = compile(text).expect("example compiles");
            assert_eq!(c.types.len(), 4);
            assert_eq!(c.bypass.len(), 1);
        }
    }

    #[test]
    fn a_type_needs_its_system_section() {
        let text = SAMPLE.replace("[ticketing.remedy]", "[ticketing.unused]");
        // Unknown section is refused by serde first.
        assert!(compile(&text).is_err());
        let cut = SAMPLE
            .split("[ticketing.remedy]")
            .next()
            .expect("head")
            .to_string()
            + "[[ticketing.types]]\nname = \"x\"\nsystem = \"remedy\"\nkind = \"incident\"\npattern = \"INC.*\"\n";
        let e = compile(&cut).expect_err("missing remedy");
        assert_eq!(e.key.as_deref(), Some("ticketing.types[0].system"));
    }
}

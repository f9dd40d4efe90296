//! CyberArk Remote Access (formerly Alero): vendor invitations and the vendor lifecycle.
//!
//! See reference/remote-access.md. The pieces:
//! - [`keyfile`]: the service-account key file as the portal downloads it (JSON with a PKCS#1
//!   or PKCS#8 RSA key), and the data centre it names;
//! - [`token`]: OAuth2 `client_credentials` with a private-key JWT client assertion (RS256),
//!   cached and renewed before expiry;
//! - [`client`]: the `v2-edge` REST API with retries (429/5xx, `Retry-After`), one token renewal
//!   on 401, paging by `totalCount`;
//! - [`model`]: wire types (camelCase in, snake_case out);
//! - [`input`]: onboarding records (flags or JSON Lines on stdin) validated into invitations;
//! - [`ops`]: the lifecycle operations behind the `remote-access` binary (invite, onboard,
//!   offboard, list/show/revoke, activate/deactivate).
//!
//! Secrets: the key file is read through a secret reference and never logged; neither the
//! assertion nor the access token appear in logs or error texts.

pub mod client;
pub mod input;
pub mod keyfile;
pub mod model;
pub mod ops;
pub mod token;

use std::path::PathBuf;

use serde::Deserialize;

pub use client::RemoteAccess;

use crate::config::{ConfigError, Origin};
use crate::exit::{Classify, Exit};
use crate::secret::SecretRef;

/// `[remote_access]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteAccessConfig {
    /// Tenant ID: 32 lowercase hex characters (visible in the portal URL).
    pub tenant_id: String,
    /// Service-account ID; taken from the key file when absent (must match it when both are set).
    pub service_account_id: Option<String>,
    /// The service-account key file (JSON, as the portal downloads it), as a secret reference:
    /// `file:/etc/pam-approval/remote-access-sa.json`, `vault:…#keyfile`, `cred:NAME`, …
    pub key_file: SecretRef,
    /// Data centre: `alero.io` (US), `alero.eu`, `ca.alero.io`, `au.alero.io`, `uk.alero.io`,
    /// `in.alero.io`, `sg.alero.io`, or the region names `us eu ca au uk in sg`. Default: the one
    /// in the key file's discovery URL.
    pub datacenter: Option<String>,
    /// Override of the token service: its base (`https://auth.<dc>`), the realm URL
    /// (`…/auth/realms/serviceaccounts`) or the realm's token URL
    /// (`…/protocol/openid-connect/token`); other paths below `/realms/` are refused at load.
    pub auth_url: Option<String>,
    /// Override of the API base (`https://api.<dc>`).
    pub api_url: Option<String>,
    /// API version path segment.
    #[serde(default = "defaults::api_version")]
    pub api_version: String,
    /// PEM bundle of the CAs to trust instead of the system store.
    pub ca_bundle: Option<PathBuf>,
    #[serde(default = "defaults::connect_timeout")]
    pub connect_timeout_secs: u64,
    #[serde(default = "defaults::request_timeout")]
    pub request_timeout_secs: u64,
    /// Retries of a call answered 429 or 5xx (or not connected), with backoff.
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// First backoff delay in milliseconds (doubles each retry, with jitter).
    #[serde(default = "defaults::backoff_ms")]
    pub backoff_ms: u64,
    /// Longest wait honoured from a `Retry-After` header, in seconds.
    #[serde(default = "defaults::max_retry_after")]
    pub max_retry_after_secs: u64,
    /// Page size of list calls (1..=100).
    #[serde(default = "defaults::page_size")]
    pub page_size: u32,
    /// Renew the access token this many seconds before it expires.
    #[serde(default = "defaults::token_renew")]
    pub token_renew_secs: u64,
    /// Time zone of a date given without a time (`access_start`, `access_end`, `--start`,
    /// `--end`): an IANA name such as `Europe/Berlin`. A date-only start is the first moment of
    /// that day there, a date-only end its last (the vendor keeps the whole day). Default `UTC`.
    pub date_time_zone: Option<String>,
}

mod defaults {
    pub fn api_version() -> String {
        "v2-edge".into()
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
    pub fn max_retry_after() -> u64 {
        60
    }
    pub fn page_size() -> u32 {
        100
    }
    pub fn token_renew() -> u64 {
        30
    }
}

/// Whether a string is a Remote Access tenant or service-account ID (32 of `a-z0-9`).
pub fn is_tenant_like_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl RemoteAccessConfig {
    /// Check the values (IDs, data centre, URLs, timeouts); errors name the key.
    pub fn validate(&self, origin: &Origin) -> Result<(), ConfigError> {
        if !is_tenant_like_id(&self.tenant_id) {
            return Err(origin.error(
                "remote_access.tenant_id",
                "must be the 32-character tenant ID (lowercase letters and digits) shown in the portal URL",
            ));
        }
        if let Some(sa) = &self.service_account_id
            && !is_tenant_like_id(sa)
        {
            return Err(origin.error(
                "remote_access.service_account_id",
                "must be the 32-character service-account ID (lowercase letters and digits)",
            ));
        }
        if let Some(dc) = &self.datacenter
            && keyfile::datacenter(dc).is_none()
        {
            return Err(origin.error(
                "remote_access.datacenter",
                format!(
                    "`{}` is not a known data centre; use one of {} (or set auth_url and api_url)",
                    crate::text::printable(dc),
                    keyfile::DATACENTERS
                        .iter()
                        .map(|(dc, region)| format!("{dc} ({region})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for (key, v) in [
            ("remote_access.auth_url", &self.auth_url),
            ("remote_access.api_url", &self.api_url),
        ] {
            if let Some(u) = v {
                crate::tls::check_url(u).map_err(|m| origin.error(key, m))?;
            }
        }
        if let Some(u) = &self.auth_url {
            client::realm_url(u).map_err(|m| origin.error("remote_access.auth_url", m))?;
        }
        if let Some(z) = &self.date_time_zone
            && z.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(origin.error(
                "remote_access.date_time_zone",
                format!(
                    "`{}` is not a time zone name; use an IANA name such as `UTC` or `Europe/Berlin`",
                    crate::text::printable(z)
                ),
            ));
        }
        if !api_version_ok(&self.api_version) {
            return Err(origin.error(
                "remote_access.api_version",
                "must look like `v2-edge`, `v1-edge` or `v2`",
            ));
        }
        if self.request_timeout_secs == 0 {
            return Err(origin.error("remote_access.request_timeout_secs", "must be at least 1"));
        }
        if self.connect_timeout_secs == 0 {
            return Err(origin.error("remote_access.connect_timeout_secs", "must be at least 1"));
        }
        if self.page_size == 0 || self.page_size > 100 {
            return Err(origin.error("remote_access.page_size", "must be between 1 and 100"));
        }
        if let Some(ca) = &self.ca_bundle
            && !crate::http::is_readable_file(ca)
        {
            return Err(origin.error(
                "remote_access.ca_bundle",
                format!("{} is not a readable file", ca.display()),
            ));
        }
        Ok(())
    }
}

impl RemoteAccessConfig {
    /// The zone of date-only times (`date_time_zone`, checked at load; UTC when unset).
    pub fn date_zone(&self) -> chrono_tz::Tz {
        self.date_time_zone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(chrono_tz::Tz::UTC)
    }
}

/// `v2-edge`, `v1-edge`, `v2`: the only shapes accepted as a path segment.
fn api_version_ok(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let (num, suffix) = rest.split_once('-').unwrap_or((rest, ""));
    v.len() <= 16
        && !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit())
        && (suffix.is_empty() || suffix == "edge")
        && suffix.is_empty() != rest.contains('-')
}

/// Errors of the Remote Access client and operations. Never carry the key, the assertion or
/// the access token.
#[derive(Debug, thiserror::Error)]
pub enum RemoteAccessError {
    #[error("Remote Access key file {reference}: {message}")]
    KeyFile { reference: String, message: String },
    #[error("configuration key `{key}`: {message}")]
    Setup { key: String, message: String },
    #[error("Remote Access {service} at {url} is unreachable: {detail}")]
    Unreachable {
        service: &'static str,
        url: String,
        detail: String,
    },
    #[error("Remote Access {service} at {url} did not answer within {secs}s ({what})")]
    Timeout {
        service: &'static str,
        url: String,
        secs: u64,
        what: String,
    },
    #[error(
        "the Remote Access token service refused the service account ({status} {error}): {description}"
    )]
    TokenRefused {
        status: u16,
        error: String,
        description: String,
    },
    #[error("Remote Access refused the access token for {what} (401 after a fresh token)")]
    Unauthorized { what: String },
    #[error("Remote Access forbids {what} for this service account (403): {detail}")]
    Forbidden { what: String, detail: String },
    #[error("{what}: not found ({detail})")]
    NotFound { what: String, detail: String },
    #[error("{what}: conflict (409): {detail}")]
    Conflict { what: String, detail: String },
    #[error("{what}: Remote Access is rate limiting (429) after {attempts} attempts: {detail}")]
    RateLimited {
        what: String,
        attempts: u32,
        detail: String,
    },
    #[error("{what}: Remote Access answered {status}: {detail}")]
    Api {
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: Remote Access answered with something unreadable: {detail}")]
    Protocol { what: String, detail: String },
    #[error("{what} may or may not have been carried out: {detail}")]
    OutcomeUnknown { what: String, detail: String },
    /// The vendor's state stands in the way of what was asked (an account that cannot be
    /// reactivated as approved), with what to do about it.
    #[error("{email}: {message}")]
    VendorState { email: String, message: String },
    #[error("{0}")]
    Input(String),
    #[error("application `{name}`: {message}")]
    Resolve { name: String, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl Classify for RemoteAccessError {
    fn exit(&self) -> Exit {
        use RemoteAccessError as E;
        match self {
            E::KeyFile { .. } | E::Setup { .. } => Exit::Config,
            E::Unreachable { .. } => Exit::Unavailable,
            E::Timeout { .. } | E::OutcomeUnknown { .. } | E::RateLimited { .. } => Exit::TempFail,
            E::TokenRefused { status, .. } if *status >= 500 => Exit::Unavailable,
            // No token endpoint at that URL: the configuration points elsewhere.
            E::TokenRefused {
                status: 404 | 405, ..
            } => Exit::Config,
            E::TokenRefused { .. } | E::Unauthorized { .. } | E::Forbidden { .. } => Exit::NoPerm,
            E::NotFound { .. } | E::Conflict { .. } | E::VendorState { .. } => Exit::Refused,
            E::Api { status, .. } if *status >= 500 => Exit::Unavailable,
            E::Api { status: 400, .. } | E::Input(_) | E::Resolve { .. } => Exit::DataErr,
            E::Api { .. } => Exit::Refused,
            E::Protocol { .. } => Exit::Unavailable,
            E::Config(e) => e.exit(),
            E::Secret(e) => e.exit(),
            E::Tls(e) => e.exit(),
        }
    }

    fn hint(&self) -> Option<String> {
        use RemoteAccessError as E;
        match self {
            E::KeyFile { .. } => Some(
                "remote_access.key_file must name the JSON file downloaded from the portal (Identities > Service accounts)"
                    .into(),
            ),
            E::Unreachable { detail, .. } if detail.to_ascii_lowercase().contains("certificate") => Some(
                "the server's TLS certificate is not trusted: set remote_access.ca_bundle to your CA's PEM bundle"
                    .into(),
            ),
            E::Unreachable { .. } => Some(
                "check remote_access.datacenter (or auth_url/api_url) and that this host can reach it"
                    .into(),
            ),
            E::TokenRefused {
                status: 404 | 405, ..
            } => Some(
                "no token service answers at that URL: check remote_access.auth_url (https://auth.<dc>, \
                 the realm URL …/auth/realms/serviceaccounts, or its token URL \
                 …/protocol/openid-connect/token) or remote_access.datacenter"
                    .into(),
            ),
            E::TokenRefused { description, .. } => Some(token_hint(description)),
            E::Unauthorized { .. } => {
                Some("the token was refused twice: check the service account in the portal".into())
            }
            E::Forbidden { .. } => Some(
                "invitations and deactivation need a service account with the Administrator role".into(),
            ),
            E::RateLimited { .. } => Some("wait a minute and run the command again".into()),
            E::OutcomeUnknown { .. } => Some(
                "look with `remote-access invitations list --search EMAIL`; `remote-access onboard` checks before inviting, so running it again is safe"
                    .into(),
            ),
            E::Resolve { .. } => Some(
                "list the names with `remote-access applications`; name one as `<site>/<application>`".into(),
            ),
            E::Config(e) => e.hint(),
            _ => None,
        }
    }
}

fn token_hint(description: &str) -> String {
    let d = description.to_ascii_lowercase();
    if d.contains("signature") {
        "the key does not match the service account: download a new key file from the portal".into()
    } else if d.contains("not active") {
        "the assertion had expired when it arrived: check this host's clock (NTP)".into()
    } else if d.contains("audience") {
        "the token URL and the audience differ: check remote_access.datacenter or auth_url".into()
    } else if d.contains("invalid client") || d.contains("credentials") || d.contains("issuer") {
        "check remote_access.tenant_id and the service account (it may have been deleted)".into()
    } else if d.contains("reuse") {
        "an assertion was sent twice: run the command again".into()
    } else {
        "check remote_access.tenant_id, the key file and the data centre".into()
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::load_from_parts;

    const BASE: &str = r#"
[remote_access]
tenant_id = "11eaab2463a4d3399816d3b7450c5b10"
key_file = "file:/etc/pam-approval/ra.json"
"#;

    #[test]
    fn minimal_section_has_defaults() {
        let l = load_from_parts(Some(BASE), None, &[]).expect("parses");
        let c = l.remote_access().expect("valid");
        assert_eq!(c.api_version, "v2-edge");
        assert_eq!(c.page_size, 100);
        assert_eq!(c.retries, 3);
    }

    #[test]
    fn bad_values_are_named() {
        for (needle, replacement, key) in [
            (
                "11eaab2463a4d3399816d3b7450c5b10",
                "ACME",
                "remote_access.tenant_id",
            ),
            (
                "key_file",
                "datacenter = \"alero.com\"\nkey_file",
                "remote_access.datacenter",
            ),
            (
                "key_file",
                "api_url = \"http://api.example.com\"\nkey_file",
                "remote_access.api_url",
            ),
            (
                "key_file",
                "api_version = \"../v9\"\nkey_file",
                "remote_access.api_version",
            ),
            (
                "key_file",
                "page_size = 500\nkey_file",
                "remote_access.page_size",
            ),
            (
                "key_file",
                "date_time_zone = \"CET+1\"\nkey_file",
                "remote_access.date_time_zone",
            ),
        ] {
            let text = BASE.replacen(needle, replacement, 1);
            let l = load_from_parts(Some(&text), None, &[]).expect("parses");
            let e = l.remote_access().expect_err(key);
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
        }
    }

    #[test]
    fn a_literal_key_in_the_config_is_refused_without_echo() {
        let text = BASE.replace(
            "file:/etc/pam-approval/ra.json",
            "-----BEGIN RSA PRIVATE KEY-----MIIEowIBAAKCAQEAsecretbits",
        );
        let e = load_from_parts(Some(&text), None, &[]).expect_err("refused");
        assert!(!e.to_string().contains("secretbits"), "{e}");
        assert_eq!(e.key.as_deref(), Some("remote_access.key_file"));
    }

    #[test]
    fn the_shipped_example_parses_and_validates() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/config.d/remote-access.toml"
        );
        let text = std::fs::read_to_string(path).expect("example");
        let l = load_from_parts(Some(&text), None, &[]).expect("parses");
        let c = l.remote_access().expect("valid");
        assert_eq!(c.datacenter.as_deref(), Some("eu"));
    }

    #[test]
    fn a_token_url_that_is_not_there_points_at_auth_url_not_the_key() {
        use crate::exit::{Classify, Exit};
        let e = super::RemoteAccessError::TokenRefused {
            status: 404,
            error: "Realm does not exist".into(),
            description: "empty body".into(),
        };
        assert_eq!(e.exit(), Exit::Config);
        let hint = e.hint().expect("hint");
        assert!(hint.contains("remote_access.auth_url"), "{hint}");
        assert!(!hint.contains("tenant_id"), "{hint}");
    }

    #[test]
    fn versions() {
        for ok in ["v2-edge", "v1-edge", "v2"] {
            let text = BASE.replace("key_file", &format!("api_version = \"{ok}\"\nkey_file"));
            let l = load_from_parts(Some(&text), None, &[]).expect("parses");
            assert!(l.remote_access().is_ok(), "{ok}");
        }
    }
}

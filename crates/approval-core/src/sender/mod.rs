//! Sender authenticity: is the forwarder really who `From` says?
//!
//! `From` and `Sender` are written by the sending client; what makes them trustworthy is the
//! transport: Exchange stamps `X-MS-Exchange-Organization-AuthAs: Internal` and `AuthSource` on
//! mail it authenticated itself, and strips those headers from mail entering from outside (the
//! header firewall). The border MTA's `Authentication-Results` reports SPF/DKIM/DMARC. This
//! module applies a configured trust policy over those headers (reference:
//! sender-authenticity.md §6). Pure: it takes the header list the mailbox handed over (the top
//! header block of the MIME, EWS PR_TRANSPORT_MESSAGE_HEADERS, Graph internetMessageHeaders)
//! and decides; any doubt refuses.

pub mod address;
pub mod auth_results;

use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::{HeaderValue, MessageParser};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Origin};
use crate::notice::text::clean_value;
use crate::notice::{Reason, Refusal};

/// Exchange's organisation headers this policy reads.
pub const AUTH_AS: &str = "X-MS-Exchange-Organization-AuthAs";
pub const AUTH_SOURCE: &str = "X-MS-Exchange-Organization-AuthSource";
pub const AUTH_MECHANISM: &str = "X-MS-Exchange-Organization-AuthMechanism";
/// Exchange Online's tenant stamps (reference/graph.md §5.2): the tenant that handled the mail,
/// how it authenticated the submission, and the server that did.
pub const CROSS_TENANT_ID: &str = "X-MS-Exchange-CrossTenant-Id";
pub const CROSS_TENANT_AUTH_AS: &str = "X-MS-Exchange-CrossTenant-AuthAs";
pub const CROSS_TENANT_AUTH_SOURCE: &str = "X-MS-Exchange-CrossTenant-AuthSource";

/// `sender.tenant_id` written to turn the tenant check off.
pub const NO_TENANT: &str = "none";

/// What to do when `Sender` names another mailbox than `From` (send on behalf of).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchPolicy {
    /// Refuse the mail (default).
    #[default]
    Refuse,
    /// The `Sender` (the delegate who really sent it) is the forwarder.
    UseSender,
    /// The `From` (the mailbox sent on behalf of) is the forwarder.
    UseFrom,
}

/// `[sender]`: the trust policy. Defaults are strict: with no allowed domain and no trusted
/// Exchange server configured, every mail is refused, with a reason that names the key to set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderPolicyConfig {
    /// Domains a forwarder's address may have (`example.com`; `*.example.com` for its
    /// subdomains). Case-insensitive.
    pub allowed_domains: Vec<String>,
    /// Require `X-MS-Exchange-Organization-AuthAs: Internal` (exactly once).
    pub require_internal: bool,
    /// Exchange servers whose `X-MS-Exchange-Organization-AuthSource` is trusted: FQDNs, or
    /// `*.suffix` for any host under a suffix (Exchange Online: `*.prod.outlook.com`).
    pub auth_sources: Vec<String>,
    /// Headers that must not appear more than once (a second copy is a forgery).
    pub unique_headers: Vec<String>,
    /// authserv-ids (first token of `Authentication-Results`) whose results count. Empty: every
    /// `Authentication-Results` header counts (strictest).
    pub authserv_ids: Vec<String>,
    /// Count `Authentication-Results` that carry no authserv-id (Exchange Online writes them so).
    pub count_results_without_authserv_id: bool,
    /// Methods whose `fail` result refuses the mail.
    pub refuse_failed_methods: Vec<String>,
    /// `Sender` differs from `From`.
    pub from_sender_mismatch: MismatchPolicy,
    /// Exchange Online: the directory (tenant) id whose stamps a mail must carry (exactly one
    /// `X-MS-Exchange-CrossTenant-Id` equal to it, `…-CrossTenant-AuthAs: Internal`, one
    /// `…-CrossTenant-AuthSource`), or `"none"`. Unset: the mailbox's `[mailbox.graph]
    /// tenant_id` when the mailbox is on Graph (settings fill it in), else no check.
    pub tenant_id: Option<String>,
}

impl Default for SenderPolicyConfig {
    fn default() -> Self {
        SenderPolicyConfig {
            allowed_domains: Vec::new(),
            require_internal: true,
            auth_sources: Vec::new(),
            unique_headers: vec![AUTH_AS.into(), AUTH_SOURCE.into(), AUTH_MECHANISM.into()],
            authserv_ids: Vec::new(),
            count_results_without_authserv_id: true,
            refuse_failed_methods: ["dmarc", "spf", "dkim", "compauth"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            from_sender_mismatch: MismatchPolicy::Refuse,
            tenant_id: None,
        }
    }
}

fn valid_host_pattern(p: &str) -> bool {
    let host = p.strip_prefix("*.").unwrap_or(p);
    !host.is_empty()
        && host.contains('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !host.starts_with('.')
        && !host.ends_with('.')
}

impl SenderPolicyConfig {
    /// The tenant the mail must be stamped with, when the check is on.
    pub fn pinned_tenant(&self) -> Option<&str> {
        self.tenant_id
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.eq_ignore_ascii_case(NO_TENANT))
    }

    /// Check the section's syntax; errors name the key. (An empty list is valid: it refuses.)
    pub fn validate(&self, origin: &Origin) -> Result<(), ConfigError> {
        if let Some(t) = self.pinned_tenant()
            && !crate::text::is_guid(t)
        {
            return Err(origin.error(
                "sender.tenant_id",
                format!(
                    "\"{}\" is not a directory (tenant) id: Exchange Online stamps mail with the tenant's GUID (Entra admin center, Overview, Tenant ID), e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47; \"none\" turns the check off",
                    clean_value(t)
                ),
            ));
        }
        for (key, list) in [
            ("sender.allowed_domains", &self.allowed_domains),
            ("sender.auth_sources", &self.auth_sources),
        ] {
            if let Some(bad) = list.iter().find(|p| !valid_host_pattern(p.trim())) {
                return Err(origin.error(
                    key,
                    format!(
                        "\"{}\" is not a host name or *.suffix pattern",
                        clean_value(bad)
                    ),
                ));
            }
        }
        if let Some(bad) = self.unique_headers.iter().find(|h| {
            h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) {
            return Err(origin.error(
                "sender.unique_headers",
                format!("\"{}\" is not a header name", clean_value(bad)),
            ));
        }
        if let Some(bad) = self
            .authserv_ids
            .iter()
            .find(|s| s.trim().is_empty() || s.contains(char::is_whitespace))
        {
            return Err(origin.error(
                "sender.authserv_ids",
                format!("\"{}\" is not an authserv-id", clean_value(bad)),
            ));
        }
        Ok(())
    }
}

/// One header as the mailbox handed it over: name and unfolded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub name: String,
    pub value: String,
}

impl HeaderField {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        HeaderField {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The top header block of a raw message, or a bare header block (PR_TRANSPORT_MESSAGE_HEADERS):
/// every instance of every header, in order.
pub fn headers_from_raw(raw: &[u8]) -> Vec<HeaderField> {
    crate::notice::header_block(raw)
        .into_iter()
        .map(|(name, value)| HeaderField { name, value })
        .collect()
}

/// A forwarder the policy accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedSender {
    /// The address, as written (cleaned); compare case-insensitively.
    pub address: String,
    pub name: Option<String>,
    /// The Exchange server that authenticated the submission, when required.
    pub auth_source: Option<String>,
}

/// The full verdict: the identity, what was checked, and every refusal (the first decides).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub address: Option<String>,
    pub name: Option<String>,
    pub auth_source: Option<String>,
    /// Sentences on checks that passed.
    pub passed: Vec<String>,
    pub refusals: Vec<Refusal>,
}

impl Assessment {
    pub fn verdict(self) -> Result<VerifiedSender, Refusal> {
        if let Some(r) = self.refusals.into_iter().next() {
            return Err(r);
        }
        match self.address {
            Some(address) => Ok(VerifiedSender {
                address,
                name: self.name,
                auth_source: self.auth_source,
            }),
            None => Err(Refusal::new(Reason::MissingFrom, "The mail has no sender.")),
        }
    }
}

/// Verify the forwarder under the policy.
pub fn verify(
    headers: &[HeaderField],
    cfg: &SenderPolicyConfig,
) -> Result<VerifiedSender, Refusal> {
    assess(headers, cfg).verdict()
}

fn values<'a>(headers: &'a [HeaderField], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|h| normalise_name(&h.name).eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
        .collect()
}

/// Header names compared without whitespace (a name with a space before the colon is the same
/// header to a lenient parser, and must count as a duplicate).
fn normalise_name(n: &str) -> String {
    n.chars().filter(|c| !c.is_whitespace()).collect()
}

/// One mailbox from an address header value, or why not.
fn one_mailbox(value: &str) -> Result<(String, Option<String>), String> {
    let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let synthetic = format!("From: {value}\r\n\r\n");
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        let msg = MessageParser::new().parse_headers(synthetic.as_bytes())?;
        let h = msg.parts.first()?.headers.first()?;
        match &h.value {
            HeaderValue::Address(a) => Some(
                a.iter()
                    .map(|x| {
                        (
                            x.address().map(str::to_string),
                            x.name().map(str::to_string),
                        )
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        }
    }))
    .ok()
    .flatten()
    .unwrap_or_default();
    // The strict grammar decides what the address is; the lenient parser (which decodes the
    // display name) must read the same one, or the value means different things to different
    // readers and is refused.
    let strict = address::strict_mailbox(&value).map_err(|why| {
        format!(
            "\"{}\" is not exactly one mailbox ({why})",
            clean_value(&value)
        )
    })?;
    match parsed.as_slice() {
        [(Some(addr), name)] => {
            let clean = clean_value(addr);
            let ok = clean == *addr
                && clean.eq_ignore_ascii_case(&strict)
                && clean.split('@').count() == 2
                && clean.split('@').all(|p| !p.is_empty())
                && !clean.contains(char::is_whitespace);
            if ok {
                Ok((
                    clean,
                    name.as_deref().map(clean_value).filter(|n| !n.is_empty()),
                ))
            } else {
                Err(format!("\"{}\" is not a mail address", clean_value(addr)))
            }
        }
        [] | [(None, _)] => Err(format!("no address in \"{}\"", clean_value(&value))),
        _ => Err(format!(
            "{} addresses in \"{}\"",
            parsed.len(),
            clean_value(&value)
        )),
    }
}

fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// `host` matches `pattern` (exact, or `*.suffix` for any host strictly below `suffix`).
fn host_matches(host: &str, pattern: &str) -> bool {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim().to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        None => host == pattern,
    }
}

fn reason_for_method(method: &str) -> Reason {
    match method {
        "dmarc" => Reason::DmarcFail,
        "spf" => Reason::SpfFail,
        "dkim" => Reason::DkimFail,
        _ => Reason::CompauthFail,
    }
}

/// Apply the policy and collect every finding.
pub fn assess(headers: &[HeaderField], cfg: &SenderPolicyConfig) -> Assessment {
    let mut a = Assessment {
        address: None,
        name: None,
        auth_source: None,
        passed: Vec::new(),
        refusals: Vec::new(),
    };
    let refuse = |a: &mut Assessment, reason: Reason, msg: String| {
        a.refusals.push(Refusal::new(reason, msg));
    };

    // 1. Who the mail claims to be from.
    let froms = values(headers, "from");
    let senders = values(headers, "sender");
    let from = match froms.as_slice() {
        [] => {
            refuse(
                &mut a,
                Reason::MissingFrom,
                "The mail has no From header, so nobody can be said to have forwarded it.".into(),
            );
            None
        }
        [one] => match one_mailbox(one) {
            Ok(m) => Some(m),
            Err(e) => {
                refuse(
                    &mut a,
                    Reason::InvalidAddress,
                    format!("The From header is not one mailbox: {e}."),
                );
                None
            }
        },
        many => {
            refuse(
                &mut a,
                Reason::AmbiguousFrom,
                format!(
                    "The mail has {} From headers; a forged one may hide behind the real one.",
                    many.len()
                ),
            );
            None
        }
    };
    let sender = match senders.as_slice() {
        [] => None,
        [one] => match one_mailbox(one) {
            Ok(m) => Some(m),
            Err(e) => {
                refuse(
                    &mut a,
                    Reason::InvalidAddress,
                    format!("The Sender header is not one mailbox: {e}."),
                );
                None
            }
        },
        many => {
            refuse(
                &mut a,
                Reason::AmbiguousFrom,
                format!("The mail has {} Sender headers.", many.len()),
            );
            None
        }
    };
    let identity = match (&from, &sender) {
        (Some(f), Some(s)) if !f.0.eq_ignore_ascii_case(&s.0) => match cfg.from_sender_mismatch {
            MismatchPolicy::Refuse => {
                refuse(
                    &mut a,
                    Reason::FromSenderMismatch,
                    format!(
                        "The mail is from {} but was sent by {} (Sender header); the policy \
                         (sender.from_sender_mismatch = \"refuse\") does not accept mail sent on \
                         someone else's behalf.",
                        f.0, s.0
                    ),
                );
                None
            }
            MismatchPolicy::UseSender => {
                a.passed.push(format!(
                    "Sender {} differs from From {}; the Sender is taken as the forwarder.",
                    s.0, f.0
                ));
                Some(s.clone())
            }
            MismatchPolicy::UseFrom => {
                a.passed.push(format!(
                    "Sender {} differs from From {}; the From is taken as the forwarder.",
                    s.0, f.0
                ));
                Some(f.clone())
            }
        },
        (Some(f), _) => Some(f.clone()),
        (None, _) => None,
    };
    if let Some((addr, name)) = &identity {
        a.address = Some(addr.clone());
        a.name = name.clone();
    }

    // 1b. A resent mail (RFC 5322 3.6.6: redirected, bounced, "resend"): its From and Sender
    // still name the original author, and the resender is named only in Resent-* headers that
    // no DMARC or Exchange check aligns with. So the From is not who sent it to the mailbox
    // (an old forward of bob's, resent by anyone, would pass as bob's), and the Resent-From is
    // unauthenticated: refused, whatever sender.from_sender_mismatch says.
    if let Some(h) = headers.iter().find(|h| {
        RESENT_HEADERS
            .iter()
            .any(|r| normalise_name(&h.name).eq_ignore_ascii_case(r))
    }) {
        refuse(
            &mut a,
            Reason::Resent,
            format!(
                "The mail was resent ({} header): its From names the original author, not the \
                 person who sent it to this mailbox, so it cannot stand for an approval. Forward \
                 the original notification yourself (Forward, not Redirect or Resend), or use the \
                 portal.",
                crate::text::printable(&normalise_name(&h.name))
            ),
        );
    }

    // 2. Organisation headers must be unique.
    for name in &cfg.unique_headers {
        let n = values(headers, name).len();
        if n > 1 {
            refuse(
                &mut a,
                Reason::DuplicateOrgHeader,
                format!(
                    "The header {name} appears {n} times: one copy is forged (it was added \
                     before the mail reached Exchange). The mail is refused."
                ),
            );
        }
    }

    // 3. Authentication-Results from trusted authserv-ids.
    let mut ar_seen = 0usize;
    let trusted = |id: &Option<String>| match id {
        None => cfg.authserv_ids.is_empty() || cfg.count_results_without_authserv_id,
        Some(id) => {
            cfg.authserv_ids.is_empty()
                || cfg
                    .authserv_ids
                    .iter()
                    .any(|t| t.trim().eq_ignore_ascii_case(id))
        }
    };
    for value in values(headers, "authentication-results") {
        let results = match auth_results::parse(value) {
            Ok(r) => r,
            Err(e) => {
                // A header that does not parse may hide a failure; when it is (or may be) from
                // a trusted authserv-id, that is a refusal.
                if !e.id_known || trusted(&e.authserv_id) {
                    let by = e
                        .authserv_id
                        .as_deref()
                        .map(|id| format!(" from {}", clean_value(id)))
                        .unwrap_or_default();
                    refuse(
                        &mut a,
                        Reason::UnparsableAuthResults,
                        format!(
                            "An Authentication-Results header{by} does not follow RFC 8601 ({});                              what it reports cannot be known. The mail is refused.",
                            clean_value(&e.message)
                        ),
                    );
                }
                continue;
            }
        };
        for r in results {
            if !trusted(&r.authserv_id) {
                continue;
            }
            ar_seen += 1;
            let refused_method = cfg
                .refuse_failed_methods
                .iter()
                .any(|m| m.trim().eq_ignore_ascii_case(&r.method));
            if refused_method && r.result == "fail" {
                let by = r
                    .authserv_id
                    .as_deref()
                    .map(|id| format!(" by {}", clean_value(id)))
                    .unwrap_or_default();
                refuse(
                    &mut a,
                    reason_for_method(&r.method),
                    format!(
                        "Authentication-Results{by} reports {}=fail: the mail did not come from \
                         where its From address says. The mail is refused.",
                        clean_value(&r.method)
                    ),
                );
            }
        }
    }
    if ar_seen > 0 && !a.refusals.iter().any(|r| is_auth_fail(r.reason)) {
        a.passed
            .push("No trusted Authentication-Results header reports a failure.".into());
    }

    // 4. Authenticated by Exchange as internal, through a trusted server.
    if cfg.require_internal {
        let auth_as = values(headers, AUTH_AS);
        let auth_source = values(headers, AUTH_SOURCE);
        match auth_as.as_slice() {
            [] => refuse(
                &mut a,
                Reason::NotInternal,
                format!(
                    "The mail has no {AUTH_AS} header: Exchange did not authenticate it as \
                     internal mail (it came from outside, or through a path that is not trusted)."
                ),
            ),
            [v] if v.trim().eq_ignore_ascii_case("internal") => {
                a.passed.push(format!(
                    "{AUTH_AS} is Internal: Exchange authenticated the submission."
                ));
            }
            [v] => refuse(
                &mut a,
                Reason::NotInternal,
                format!(
                    "{AUTH_AS} is \"{}\", not Internal: the mail was not submitted by an \
                     authenticated user of the organisation.",
                    clean_value(v)
                ),
            ),
            _ => {} // refused as a duplicate above (when listed in unique_headers)
        }
        if auth_as.len() > 1
            && !cfg
                .unique_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(AUTH_AS))
        {
            refuse(
                &mut a,
                Reason::DuplicateOrgHeader,
                format!("The header {AUTH_AS} appears {} times.", auth_as.len()),
            );
        }
        match auth_source.as_slice() {
            [src] => {
                let src_clean = clean_value(src);
                if cfg.auth_sources.iter().any(|p| host_matches(&src_clean, p)) {
                    a.auth_source = Some(src_clean.clone());
                    a.passed.push(format!(
                        "{AUTH_SOURCE} {src_clean} is a trusted Exchange server."
                    ));
                } else if cfg.auth_sources.is_empty() {
                    refuse(
                        &mut a,
                        Reason::AuthSourceNotAllowed,
                        format!(
                            "No trusted Exchange server is configured (sender.auth_sources is \
                             empty), so {src_clean} cannot be trusted."
                        ),
                    );
                } else {
                    refuse(
                        &mut a,
                        Reason::AuthSourceNotAllowed,
                        format!(
                            "{AUTH_SOURCE} {src_clean} is not one of the trusted Exchange \
                             servers (sender.auth_sources)."
                        ),
                    );
                }
            }
            [] => refuse(
                &mut a,
                Reason::AuthSourceNotAllowed,
                format!(
                    "The mail has no {AUTH_SOURCE} header naming the Exchange server that accepted it."
                ),
            ),
            _ if !cfg
                .unique_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(AUTH_SOURCE)) =>
            {
                refuse(
                    &mut a,
                    Reason::DuplicateOrgHeader,
                    format!(
                        "The header {AUTH_SOURCE} appears {} times.",
                        auth_source.len()
                    ),
                );
            }
            _ => {}
        }
    }

    // 4b. Exchange Online: stamped by this organisation's tenant. The organisation headers
    // above prove Exchange authenticated the submission, but `*.prod.outlook.com` names the
    // shared servers of every tenant; the tenant stamp names whose it was. Each stamp exactly
    // once: a copy an outsider wrote before Exchange added its own is a second copy.
    if let Some(tenant) = cfg.pinned_tenant() {
        tenant_stamps(headers, tenant, &mut a);
    }

    // 5. The forwarder's domain.
    let mut checked = Vec::new();
    for (addr, _) in [from.as_ref(), identity.as_ref()].into_iter().flatten() {
        if checked
            .iter()
            .any(|c: &String| c.eq_ignore_ascii_case(addr))
        {
            continue;
        }
        checked.push(addr.clone());
        let domain = domain_of(addr);
        if cfg.allowed_domains.iter().any(|p| host_matches(domain, p)) {
            a.passed.push(format!("The domain of {addr} is allowed."));
        } else if cfg.allowed_domains.is_empty() {
            refuse(
                &mut a,
                Reason::SenderDomainNotAllowed,
                format!(
                    "No sender domain is allowed yet (sender.allowed_domains is empty), so mail \
                     from {addr} is refused."
                ),
            );
        } else {
            refuse(
                &mut a,
                Reason::SenderDomainNotAllowed,
                format!(
                    "{addr} is not in an allowed domain (sender.allowed_domains): only the \
                     organisation's approvers may forward notifications."
                ),
            );
        }
    }

    // The most telling refusal first: forgery signals before missing configuration.
    a.refusals.sort_by_key(|r| priority(r.reason));
    a
}

/// The tenant stamps of Exchange Online name `tenant` (see `assess`, 4b).
fn tenant_stamps(headers: &[HeaderField], tenant: &str, a: &mut Assessment) {
    let refuse = |a: &mut Assessment, reason: Reason, msg: String| {
        a.refusals.push(Refusal::new(reason, msg));
    };
    let mut stamp = |name: &str| -> Option<String> {
        match values(headers, name).as_slice() {
            [v] => Some(clean_value(v)),
            [] => {
                refuse(
                    a,
                    Reason::ForeignTenant,
                    format!(
                        "The mail has no {name} header: it was not handled by this organisation's \
                         Exchange Online tenant (sender.tenant_id)."
                    ),
                );
                None
            }
            many => {
                refuse(
                    a,
                    Reason::DuplicateOrgHeader,
                    format!(
                        "The header {name} appears {} times: one copy is forged. The mail is \
                         refused.",
                        many.len()
                    ),
                );
                None
            }
        }
    };
    let id = stamp(CROSS_TENANT_ID);
    let auth_as = stamp(CROSS_TENANT_AUTH_AS);
    let source = stamp(CROSS_TENANT_AUTH_SOURCE);
    if let Some(id) = id {
        if id.trim().eq_ignore_ascii_case(tenant) {
            a.passed.push(format!(
                "{CROSS_TENANT_ID} is this organisation's tenant ({tenant})."
            ));
        } else {
            refuse(
                a,
                Reason::ForeignTenant,
                format!(
                    "{CROSS_TENANT_ID} is {id}, not this organisation's tenant ({tenant}): the \
                     mail was authenticated by another Exchange Online organisation."
                ),
            );
        }
    }
    if let Some(v) = auth_as {
        if v.trim().eq_ignore_ascii_case("internal") {
            a.passed.push(format!(
                "{CROSS_TENANT_AUTH_AS} is Internal: the tenant authenticated the submission."
            ));
        } else {
            refuse(
                a,
                Reason::ForeignTenant,
                format!(
                    "{CROSS_TENANT_AUTH_AS} is \"{v}\", not Internal: the tenant did not \
                     authenticate the submission as its own user's."
                ),
            );
        }
    }
    if let Some(src) = source {
        a.passed.push(format!(
            "{CROSS_TENANT_AUTH_SOURCE} names the server that accepted it ({src})."
        ));
    }
}

/// The headers of a resent block (RFC 5322 3.6.6); any one of them marks a resent mail.
const RESENT_HEADERS: &[&str] = &[
    "resent-from",
    "resent-sender",
    "resent-date",
    "resent-to",
    "resent-cc",
    "resent-bcc",
    "resent-message-id",
];

fn is_auth_fail(r: Reason) -> bool {
    matches!(
        r,
        Reason::DmarcFail
            | Reason::SpfFail
            | Reason::DkimFail
            | Reason::CompauthFail
            | Reason::UnparsableAuthResults
    )
}

fn priority(r: Reason) -> u8 {
    match r {
        Reason::MissingFrom | Reason::AmbiguousFrom | Reason::InvalidAddress | Reason::Resent => 0,
        Reason::DuplicateOrgHeader => 1,
        Reason::DmarcFail | Reason::UnparsableAuthResults => 2,
        Reason::CompauthFail => 3,
        Reason::SpfFail | Reason::DkimFail => 4,
        Reason::NotInternal => 5,
        Reason::AuthSourceNotAllowed => 6,
        Reason::ForeignTenant => 6,
        Reason::FromSenderMismatch => 7,
        Reason::SenderDomainNotAllowed => 8,
        _ => 9,
    }
}

#[cfg(test)]
mod tests;

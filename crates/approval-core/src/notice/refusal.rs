//! Why a mail is not acted on: a stable snake_case reason code plus a sentence for a PAM admin.
//! Shared by `notice` (what the mail says) and `sender` (who really sent it).

use std::fmt;

use serde::Serialize;

/// Stable reason codes. The snake_case names are a contract: logs, `--json` output and reply
/// templates match on them, so a variant is never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    // The mail as a whole.
    /// Larger than `notice.max_bytes`.
    TooLarge,
    /// Not a readable RFC 5322 message.
    Malformed,
    /// Nested deeper or with more MIME parts than any real forward has.
    TooComplex,
    /// An out-of-office or other automatic reply.
    AutoReply,
    /// Forwarded by a mailbox rule, not by a person.
    AutoForwarded,
    /// A delivery or read report (`multipart/report`, NDR).
    Bounce,
    // The notification inside it.
    /// No pending-request notification in the mail.
    NotARequestNotice,
    /// A confirmation, rejection or deletion notice: nothing to approve.
    NotActionable,
    /// A required field is absent.
    MissingField,
    /// A field is present but cannot be right (a request number with letters, ...).
    InvalidField,
    /// Two different values for the request id or the safe.
    ConflictingFields,
    /// A rendering of the mail (text, HTML as a client shows it, a text attachment, a TNEF
    /// part) looks like a notification but cannot be read: what the approver saw is unknown.
    UnreadableRendering,
    /// The forwarder's own text does not say one decision clearly (a reject word that is not
    /// the first word, two decisions, a decision word hidden from view or only in the
    /// subject): neither approved nor rejected.
    UnclearDecision,
    // The sender.
    /// No `From` header.
    MissingFrom,
    /// Several `From`/`Sender` headers or several addresses in one.
    AmbiguousFrom,
    /// The `From` or `Sender` address cannot be read as one mailbox.
    InvalidAddress,
    /// `Sender` differs from `From` and the policy refuses that.
    FromSenderMismatch,
    /// A resent (redirected, bounced) mail: `Resent-*` headers; its `From` is the original
    /// author, not who sent it to the mailbox.
    Resent,
    /// The sender's domain is not in `sender.allowed_domains`.
    SenderDomainNotAllowed,
    /// An Exchange organisation header appears more than once (a forged copy).
    DuplicateOrgHeader,
    /// Not authenticated by Exchange as internal (`AuthAs` is not `Internal`).
    NotInternal,
    /// `AuthSource` is not one of the configured Exchange servers.
    AuthSourceNotAllowed,
    /// Exchange Online's tenant stamps (`X-MS-Exchange-CrossTenant-*`) do not name this
    /// organisation's tenant as the one that authenticated the mail.
    ForeignTenant,
    /// `Authentication-Results` from a trusted authserv-id reports a failure.
    DmarcFail,
    SpfFail,
    DkimFail,
    CompauthFail,
    /// An `Authentication-Results` header from a trusted authserv-id (or one whose
    /// authserv-id cannot be read) does not follow RFC 8601: what it hides is unknown.
    UnparsableAuthResults,
}

impl Reason {
    /// The stable code, e.g. `missing_field`.
    pub const fn code(self) -> &'static str {
        match self {
            Reason::TooLarge => "too_large",
            Reason::Malformed => "malformed",
            Reason::TooComplex => "too_complex",
            Reason::AutoReply => "auto_reply",
            Reason::AutoForwarded => "auto_forwarded",
            Reason::Bounce => "bounce",
            Reason::NotARequestNotice => "not_a_request_notice",
            Reason::NotActionable => "not_actionable",
            Reason::MissingField => "missing_field",
            Reason::InvalidField => "invalid_field",
            Reason::ConflictingFields => "conflicting_fields",
            Reason::UnreadableRendering => "unreadable_rendering",
            Reason::UnclearDecision => "unclear_decision",
            Reason::MissingFrom => "missing_from",
            Reason::AmbiguousFrom => "ambiguous_from",
            Reason::InvalidAddress => "invalid_address",
            Reason::FromSenderMismatch => "from_sender_mismatch",
            Reason::Resent => "resent",
            Reason::SenderDomainNotAllowed => "sender_domain_not_allowed",
            Reason::DuplicateOrgHeader => "duplicate_org_header",
            Reason::NotInternal => "not_internal",
            Reason::AuthSourceNotAllowed => "auth_source_not_allowed",
            Reason::ForeignTenant => "foreign_tenant",
            Reason::DmarcFail => "dmarc_fail",
            Reason::SpfFail => "spf_fail",
            Reason::DkimFail => "dkim_fail",
            Reason::CompauthFail => "compauth_fail",
            Reason::UnparsableAuthResults => "unparsable_auth_results",
        }
    }

    /// True for refusals that must not be answered by mail (answering an auto-reply or a
    /// bounce risks a mail loop).
    pub const fn silent(self) -> bool {
        matches!(self, Reason::AutoReply | Reason::Bounce)
    }

    /// Every reason, for documentation and tests.
    pub const ALL: &'static [Reason] = &[
        Reason::TooLarge,
        Reason::Malformed,
        Reason::TooComplex,
        Reason::AutoReply,
        Reason::AutoForwarded,
        Reason::Bounce,
        Reason::NotARequestNotice,
        Reason::NotActionable,
        Reason::MissingField,
        Reason::InvalidField,
        Reason::ConflictingFields,
        Reason::UnreadableRendering,
        Reason::UnclearDecision,
        Reason::MissingFrom,
        Reason::AmbiguousFrom,
        Reason::InvalidAddress,
        Reason::FromSenderMismatch,
        Reason::Resent,
        Reason::SenderDomainNotAllowed,
        Reason::DuplicateOrgHeader,
        Reason::NotInternal,
        Reason::AuthSourceNotAllowed,
        Reason::ForeignTenant,
        Reason::DmarcFail,
        Reason::SpfFail,
        Reason::DkimFail,
        Reason::CompauthFail,
        Reason::UnparsableAuthResults,
    ];
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refusal: the code decides, the sentence explains (it names the field, header or value
/// involved, already cleaned of control characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Refusal {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.reason.code())
    }
}

impl std::error::Error for Refusal {}

impl crate::exit::Classify for Refusal {
    fn exit(&self) -> crate::exit::Exit {
        match self.reason {
            Reason::Malformed => crate::exit::Exit::DataErr,
            _ => crate::exit::Exit::Refused,
        }
    }
    fn hint(&self) -> Option<String> {
        Some(format!(
            "run `check-approval-request --explain FILE.eml` on the mail to see why ({})",
            self.reason.code()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_unique_and_match_serde() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Reason::ALL {
            let code = r.code();
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            assert!(seen.insert(code), "duplicate {code}");
            let json = serde_json::to_string(r).expect("serialises");
            assert_eq!(json, format!("\"{code}\""));
        }
    }
}

//! The first two steps of deciding on a mail, without any server: who sent it (the sender
//! policy over the transport headers Exchange stamped on delivery, nothing else), then which
//! notification it forwards (the notice reader). One function for the watcher and for
//! `check-approval-request --explain`, so that both read the same headers and check in the
//! same order: an unauthenticated mail is refused before a byte of its body is read.
//!
//! Pure: no I/O, no clock.

use crate::notice::{Examination, Notice, Reason};
use crate::sender::{self, Assessment, SenderPolicyConfig};

/// The mail has no transport headers from Exchange (it was put into the folder rather than
/// delivered), so its sender cannot be verified.
pub const NO_TRANSPORT_HEADERS: &str = "no_transport_headers";

/// Why a mail is refused before any server is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRefusal {
    /// The stable code (`no_transport_headers`, or the sender's or the notice's reason).
    pub code: String,
    /// The sender's or the notice's reason; `None` for `no_transport_headers`.
    pub reason: Option<Reason>,
    pub message: String,
    /// The verified forwarder, when the refusal came after the sender check.
    pub forwarder: Option<String>,
}

impl MailRefusal {
    /// The notice's refusal, after the sender check passed for `forwarder`.
    pub fn of(r: crate::notice::Refusal, forwarder: Option<String>) -> MailRefusal {
        MailRefusal {
            code: r.reason.code().to_string(),
            reason: Some(r.reason),
            message: r.message,
            forwarder,
        }
    }
}

/// What the sender policy makes of a mail's transport headers (`transport`: the item's
/// `PR_TRANSPORT_MESSAGE_HEADERS`, or an exported mail's top header block): `Err` when there
/// are none to read.
pub fn assess(
    transport: Option<&[u8]>,
    cfg: &SenderPolicyConfig,
) -> Result<Assessment, MailRefusal> {
    let headers = match transport {
        Some(t) if !t.iter().all(u8::is_ascii_whitespace) => sender::headers_from_raw(t),
        _ => {
            return Err(MailRefusal {
                code: NO_TRANSPORT_HEADERS.into(),
                reason: None,
                message: "The mail carries no transport headers from Exchange (it was put into the folder rather than delivered), so its sender cannot be verified.".into(),
                forwarder: None,
            });
        }
    };
    Ok(sender::assess(&headers, cfg))
}

/// The verified forwarder of a mail ([`assess`], its first refusal deciding).
pub fn forwarder(
    transport: Option<&[u8]>,
    cfg: &SenderPolicyConfig,
) -> Result<String, MailRefusal> {
    assess(transport, cfg)?
        .verdict()
        .map(|v| v.address)
        .map_err(|r| MailRefusal::of(r, None))
}

/// The sender check, then the notice: the verified forwarder and the notification the mail
/// forwards, or the first refusal. `exam` reads the notification; it is called only once the
/// sender passed.
pub fn screen(
    transport: Option<&[u8]>,
    cfg: &SenderPolicyConfig,
    exam: impl FnOnce() -> Examination,
) -> Result<(String, Notice), MailRefusal> {
    let forwarder = forwarder(transport, cfg)?;
    match exam().outcome {
        Ok(n) => Ok((forwarder, n)),
        Err(r) => Err(MailRefusal::of(r, Some(forwarder))),
    }
}

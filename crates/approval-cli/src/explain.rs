//! `check-approval-request --explain FILE.eml [--json]`: what the watcher would read from a mail
//! and whether it would act on it, with the reasons; no server is contacted.
//!
//! Exit codes: 0 actionable, 1 refused, 65 the file cannot be read or is not a mail at all,
//! 78 a bad `[notice]`/`[sender]` section.

use std::io::Read;
use std::path::Path;

use approval_core::exit::Exit;
use approval_core::notice::{self, Examination, Field, NoticeConfig, Reason, Shape};
use approval_core::screen;
use approval_core::sender::{Assessment, SenderPolicyConfig};
use approval_core::settings::Loaded;
use serde::Serialize;

use crate::Printer;

/// The `--json` object. Keys are stable; absent values are `null`.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub file: String,
    /// The watcher would go on to check this request with PVWA and the directory.
    pub actionable: bool,
    /// The deciding refusal code, or null: the watcher's own function decides
    /// (`approval_core::screen::screen`: the sender check first, then the notice).
    pub refusal: Option<Reason>,
    /// Sentences: where the notification was found, and every reason for refusing.
    pub reasons: Vec<String>,
    pub request_id: Option<String>,
    pub request_number: Option<String>,
    pub safe: Option<String>,
    pub requester: Option<String>,
    pub account: Option<String>,
    pub device_user: Option<String>,
    pub address: Option<String>,
    pub reason: Option<String>,
    pub issued_on: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// Outer From.
    pub forwarder: Option<String>,
    pub forwarder_name: Option<String>,
    /// Outer Sender, when it differs from From.
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub notice_subject: Option<String>,
    pub message_id: Option<String>,
    pub date: Option<String>,
    pub shape: Option<Shape>,
    pub forward_depth: u32,
    pub notice_refusal: Option<Reason>,
    /// The forwarder's decision (issue 32): `{"decision":{"action":"approve"|"reject",
    /// "reason"?},"word","source"}`, read from their own text; null when the notice was
    /// refused.
    pub decision: Option<notice::DecisionRead>,
    /// The sender policy accepted the forwarder.
    pub sender_verified: bool,
    /// The identity the sender policy settled on (may differ from `forwarder` by policy).
    pub verified_sender: Option<String>,
    pub sender_refusals: Vec<Reason>,
    /// Checks of the sender policy that passed.
    pub sender_checks: Vec<String>,
}

/// Build the explanation of a raw mail under the given sections. Pure.
pub fn explain(
    file: &str,
    raw: &[u8],
    ncfg: &NoticeConfig,
    scfg: &SenderPolicyConfig,
) -> Explanation {
    let exam: Examination = notice::examine(raw, ncfg);
    // The watcher's own reading (`screen::screen`): the sender check over the transport
    // headers (here the exported mail's own header block), then the notice, in that order.
    let screened = screen::screen(Some(raw), scfg, || exam.clone());
    let assessment: Assessment = screen::assess(Some(raw), scfg).unwrap_or_default();
    let field = |f: Field| exam.fields.get(&f).cloned();
    let notice = exam.outcome.as_ref().ok();
    let notice_refusal = exam.outcome.as_ref().err();
    let sender_ok = screen::forwarder(Some(raw), scfg).is_ok();
    let mut reasons = Vec::new();
    reasons.extend(assessment.refusals.iter().map(|r| r.message.clone()));
    if !sender_ok
        && assessment.refusals.is_empty()
        && let Err(r) = &screened
    {
        reasons.push(r.message.clone());
    }
    reasons.extend(exam.notes.iter().cloned());
    if let Some(r) = notice_refusal {
        reasons.push(r.message.clone());
    }
    let actionable = screened.is_ok();
    if actionable {
        reasons.extend(assessment.passed.iter().cloned());
        let rejects = notice.is_some_and(|n| n.decision.decision.is_reject());
        reasons.push(format!(
            "The mail is actionable: the watcher would now check the request with PVWA and the \
             forwarder's approver groups, and {} it.",
            if rejects { "reject" } else { "approve" }
        ));
    }
    // The deciding code is the watcher's: the first refusal of `screen`. A file without any
    // header block has no transport headers to verify: its sender is missing.
    let refusal = match &screened {
        Ok(_) => None,
        Err(r) => Some(r.reason.unwrap_or(Reason::MissingFrom)),
    };
    Explanation {
        file: file.to_string(),
        actionable,
        refusal,
        reasons,
        request_id: notice.map(|n| n.request_id.clone()),
        request_number: notice.map(|n| n.request_number.clone()),
        safe: notice
            .map(|n| n.safe.clone())
            .or_else(|| field(Field::Safe)),
        requester: notice
            .map(|n| n.requester.clone())
            .unwrap_or_else(|| field(Field::Requester)),
        account: field(Field::Account),
        device_user: field(Field::DeviceUser),
        address: field(Field::Address),
        reason: field(Field::Reason),
        issued_on: field(Field::IssuedOn),
        start_date: field(Field::StartDate),
        end_date: field(Field::EndDate),
        forwarder: exam.envelope.forwarder.clone(),
        forwarder_name: exam.envelope.forwarder_name.clone(),
        sender: exam.envelope.sender.clone(),
        subject: exam.envelope.subject.clone(),
        notice_subject: exam.notice_subject.clone(),
        message_id: exam.envelope.message_id.clone(),
        date: exam.envelope.date.clone(),
        shape: exam.shape,
        forward_depth: exam.forward_depth,
        notice_refusal: notice_refusal.map(|r| r.reason),
        decision: notice.map(|n| n.decision.clone()),
        sender_verified: sender_ok,
        verified_sender: if sender_ok {
            assessment.address.clone()
        } else {
            None
        },
        sender_refusals: assessment.refusals.iter().map(|r| r.reason).collect(),
        sender_checks: assessment.passed.clone(),
    }
}

/// Read at most `limit + 1` bytes: enough to know a file is too large without reading it all.
fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    Ok(buf)
}

fn human(e: &Explanation) -> String {
    let mut s = String::new();
    let mut kv = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            s.push_str(&format!("{k:<16} {v}\n"));
        }
    };
    let forwarder = match (&e.forwarder, &e.forwarder_name) {
        (Some(a), Some(n)) => Some(format!("{n} <{a}>")),
        (Some(a), None) => Some(a.clone()),
        _ => None,
    };
    kv("mail", Some(&e.file));
    kv("forwarder", forwarder.as_deref());
    kv("sender header", e.sender.as_deref());
    kv("subject", e.subject.as_deref());
    kv("message-id", e.message_id.as_deref());
    kv("date", e.date.as_deref());
    let shape = e.shape.map(|s| match s {
        Shape::Direct => "the notification itself (not forwarded)".to_string(),
        Shape::Inline => format!("forwarded inline, {} level(s)", e.forward_depth),
        Shape::Attachment => format!("forwarded as attachment, {} level(s)", e.forward_depth),
    });
    kv("shape", shape.as_deref());
    kv("notice subject", e.notice_subject.as_deref());
    kv("request id", e.request_id.as_deref());
    kv("safe", e.safe.as_deref());
    kv("requester", e.requester.as_deref());
    kv("account", e.account.as_deref());
    kv("device user", e.device_user.as_deref());
    kv("address", e.address.as_deref());
    kv("reason", e.reason.as_deref());
    kv("issued on", e.issued_on.as_deref());
    kv("start", e.start_date.as_deref());
    kv("end", e.end_date.as_deref());
    let notice = match e.notice_refusal {
        None => "ok".to_string(),
        Some(r) => format!("refused ({r})"),
    };
    kv("notice", Some(&notice));
    let decision = e.decision.as_ref().map(|d| {
        let what = match &d.decision {
            notice::Decision::Approve => "approve".to_string(),
            notice::Decision::Reject { reason } if reason.is_empty() => {
                "REJECT (no reason given)".to_string()
            }
            notice::Decision::Reject { reason } => format!("REJECT, reason \"{reason}\""),
        };
        format!("{what}; read from {}", d.source)
    });
    kv("decision", decision.as_deref());
    let sender = if e.sender_verified {
        format!(
            "verified {}",
            e.verified_sender.as_deref().unwrap_or_default()
        )
    } else {
        let mut codes: Vec<&str> = Vec::new();
        for c in e.sender_refusals.iter().map(|r| r.code()) {
            if !codes.contains(&c) {
                codes.push(c);
            }
        }
        format!("refused ({})", codes.join(", "))
    };
    kv("sender", Some(&sender));
    let verdict = match e.refusal {
        None if e.actionable => "ACTIONABLE".to_string(),
        Some(r) => format!("NOT ACTIONABLE: {r}"),
        None => "NOT ACTIONABLE".to_string(),
    };
    kv("verdict", Some(&verdict));
    s.push_str("reasons\n");
    for r in &e.reasons {
        s.push_str(&format!("  - {r}\n"));
    }
    s
}

pub async fn run(p: &Printer, loaded: &Loaded, file: &Path) -> anyhow::Result<Exit> {
    let ncfg = &loaded.config.notice;
    let scfg = &loaded.config.sender;
    ncfg.validate(loaded)?;
    scfg.validate(loaded)?;
    let raw = read_capped(file, ncfg.max_bytes).map_err(|e| {
        // Any failure to read the input is bad input data (65), whatever the OS said.
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    let e = explain(&file.display().to_string(), &raw, ncfg, scfg);
    if p.json() {
        p.json_line(&e)?;
    } else {
        for line in human(&e).lines() {
            p.line(line)?;
        }
    }
    Ok(if e.actionable {
        Exit::Ok
    } else if e.notice_refusal == Some(Reason::Malformed) {
        Exit::DataErr
    } else {
        Exit::Refused
    })
}

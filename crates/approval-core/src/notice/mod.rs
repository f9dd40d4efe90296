//! Forwarded CyberArk notification mails: MIME, nested forwards, field extraction, refusals.
//!
//! The watcher hands over the raw RFC 5322 bytes (EWS `MimeContent`, Graph `$value`, IMAP
//! `BODY[]`); [`parse`] returns the [`Notice`] or a [`Refusal`] with a stable reason code.
//! Pure: no I/O, no clock, no panic on any input (sizes and nesting are capped, the MIME parser
//! runs on its own thread with a large stack and its panics are caught).
//!
//! What counts: when the notification was forwarded as an attachment (`message/rfc822`), the
//! innermost attached message; otherwise the innermost inline-forwarded block of the body. The
//! forwarder's own text above it never counts. The values read here are what the mail *claims*;
//! the decision compares them with PVWA (see `sender` for who really sent the mail).

mod css;
pub mod decision;
mod fields;
mod forward;
pub mod html;
mod mime;
mod refusal;
pub mod text;

use serde::{Deserialize, Serialize};

pub use decision::{Decision, DecisionRead};
pub use fields::Field;
pub use mime::Mailbox;
pub(crate) use mime::header_block;
pub use refusal::{Reason, Refusal};

use crate::config::{ConfigError, Origin};
use fields::{Found, LabelSet};
use text::{clean_value, contains_ci};

/// `[notice]`: how forwarded notifications are read. Defaults follow the CyberArk ENE texts in
/// the PVWA reference (§12); every site can customise its templates, so everything is here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoticeConfig {
    /// Largest mail read, in bytes; larger ones are refused (`too_large`).
    pub max_bytes: u64,
    /// A subject containing one of these (case-insensitive) is a pending-request notification.
    pub request_subjects: Vec<String>,
    /// A subject containing one of these is a notice about a request that needs nothing
    /// (confirmation, rejection, deletion). Checked before `request_subjects`, which they
    /// usually contain.
    pub not_actionable_subjects: Vec<String>,
    /// When not empty, the notification text must contain one of these.
    pub body_markers: Vec<String>,
    /// When the notification text contains one of these, it is not actionable.
    pub not_actionable_body_markers: Vec<String>,
    /// Subjects of automatic replies (checked with `contains`, case-insensitive).
    pub auto_reply_subjects: Vec<String>,
    /// Refuse mails forwarded by a mailbox rule (`X-MS-Exchange-Inbox-Rules-Loop`,
    /// `Auto-Submitted: auto-forwarded`): a rule is not a person approving.
    pub refuse_auto_forwarded: bool,
    /// The PVWA request id built from the fields: `{safe}` and `{request_id}` are replaced.
    pub id_template: String,
    /// Fields a notification must carry.
    pub required: Vec<Field>,
    /// Labels of each field, matched at line start.
    pub labels: NoticeLabels,
    /// More formats (chrono syntax, e.g. `"%d/%m/%Y %H:%M"`) for the dates a notification
    /// shows, tried after the built-in ones when the watcher compares them with PVWA
    /// (`notice_check`).
    pub date_formats: Vec<String>,
    /// Words that, as the first word of the forwarder's own text, reject the request (the
    /// rest of their text is the reason). Whole words, any case, never a word's start ("Denys"
    /// is not "deny"): list each inflection ([`DEFAULT_REJECT_WORDS`]); localise by adding
    /// words (`"ablehnen"`, `"abgelehnt"`, `"refuser"`). Never empty: a reject word the tool
    /// does not know would read as an approval.
    pub reject_words: Vec<String>,
    /// Words that, as the first word of the forwarder's own text, approve explicitly (no
    /// decision word approves too). Together with a reject word anywhere in the text they make
    /// the decision unclear.
    pub approve_words: Vec<String>,
}

/// `[notice.labels]`: one list of labels per field (trailing colon optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoticeLabels {
    pub requester: Vec<String>,
    pub safe: Vec<String>,
    pub request_id: Vec<String>,
    pub account: Vec<String>,
    pub device_user: Vec<String>,
    pub address: Vec<String>,
    pub reason: Vec<String>,
    pub issued_on: Vec<String>,
    pub start_date: Vec<String>,
    pub end_date: Vec<String>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for NoticeLabels {
    fn default() -> Self {
        NoticeLabels {
            requester: strings(&["Requester email:"]),
            safe: strings(&["Safe:"]),
            request_id: strings(&["Request Id:"]),
            account: strings(&["Account name:", "Object:"]),
            device_user: strings(&["Device User Name:"]),
            address: strings(&["Address:"]),
            reason: strings(&["Reason:"]),
            issued_on: strings(&["Issued on:"]),
            start_date: strings(&["Request start date:"]),
            end_date: strings(&["Request end date:"]),
        }
    }
}

impl NoticeLabels {
    pub fn for_field(&self, f: Field) -> &[String] {
        match f {
            Field::Requester => &self.requester,
            Field::Safe => &self.safe,
            Field::RequestId => &self.request_id,
            Field::Account => &self.account,
            Field::DeviceUser => &self.device_user,
            Field::Address => &self.address,
            Field::Reason => &self.reason,
            Field::IssuedOn => &self.issued_on,
            Field::StartDate => &self.start_date,
            Field::EndDate => &self.end_date,
        }
    }

    fn set(&self) -> LabelSet {
        LabelSet::new(
            Field::ALL
                .iter()
                .flat_map(|f| self.for_field(*f).iter().map(move |l| (*f, l.clone()))),
        )
    }
}

/// Default size limit: 10 MiB (a forwarded notification is a few kB; a forward with a
/// screenshot a few hundred kB).
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Highest accepted `max_bytes`.
pub const MAX_MAX_BYTES: u64 = 25 * 1024 * 1024;

/// The default `notice.reject_words`: each word matches whole, so its inflections are listed.
/// "denial" is here as "rejection" is: a forwarder who starts with either means no.
pub const DEFAULT_REJECT_WORDS: &[&str] = &[
    "reject",
    "rejects",
    "rejected",
    "rejecting",
    "rejection",
    "deny",
    "denies",
    "denied",
    "denying",
    "denial",
];

/// The default `notice.approve_words` (whole words, inflections listed).
pub const DEFAULT_APPROVE_WORDS: &[&str] = &["approve", "approves", "approved", "approving"];

impl Default for NoticeConfig {
    fn default() -> Self {
        NoticeConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            request_subjects: strings(&["Notification: Password access request"]),
            not_actionable_subjects: strings(&[
                "Notification: Password access request confirmation",
                "Notification: Password access request final confirmation",
                "Notification: Password access request rejection",
                "Notification: Password access request deletion",
            ]),
            body_markers: Vec::new(),
            not_actionable_body_markers: Vec::new(),
            auto_reply_subjects: strings(&[
                "Automatic reply:",
                "Auto reply:",
                "Autoreply:",
                "Out of Office:",
                "Automatische Antwort:",
                "Abwesenheitsnotiz:",
                "Réponse automatique",
                "Absence du bureau",
                "Respuesta automática:",
                "Risposta automatica:",
            ]),
            refuse_auto_forwarded: true,
            id_template: "{safe}_{request_id}".into(),
            required: vec![Field::Safe, Field::RequestId, Field::Requester],
            labels: NoticeLabels::default(),
            date_formats: Vec::new(),
            reject_words: strings(DEFAULT_REJECT_WORDS),
            approve_words: strings(DEFAULT_APPROVE_WORDS),
        }
    }
}

impl NoticeConfig {
    /// Check the section; errors name the key.
    pub fn validate(&self, origin: &Origin) -> Result<(), ConfigError> {
        if self.max_bytes == 0 || self.max_bytes > MAX_MAX_BYTES {
            return Err(origin.error(
                "notice.max_bytes",
                format!("must be between 1 and {MAX_MAX_BYTES}"),
            ));
        }
        if !self.id_template.contains("{request_id}") {
            return Err(origin.error(
                "notice.id_template",
                "must contain {request_id} (the default is \"{safe}_{request_id}\")",
            ));
        }
        let rest = self
            .id_template
            .replace("{safe}", "")
            .replace("{request_id}", "");
        if rest.contains(['{', '}']) {
            return Err(origin.error(
                "notice.id_template",
                "only {safe} and {request_id} can be used",
            ));
        }
        if self.request_subjects.iter().all(|s| s.trim().is_empty()) {
            return Err(origin.error(
                "notice.request_subjects",
                "needs at least one subject marker",
            ));
        }
        for f in Field::ALL {
            let labels = self.labels.for_field(*f);
            if labels.iter().any(|l| fields::prepare_label(l).is_empty()) {
                return Err(origin.error(
                    &format!("notice.labels.{}", f.key()),
                    "labels must not be empty",
                ));
            }
            if self.required.contains(f) && labels.is_empty() {
                return Err(origin.error(
                    &format!("notice.labels.{}", f.key()),
                    format!("{} is required but has no label", f.key()),
                ));
            }
        }
        for (i, f) in self.date_formats.iter().enumerate() {
            let bad = f.trim().is_empty()
                || chrono::format::StrftimeItems::new(f)
                    .any(|item| matches!(item, chrono::format::Item::Error));
            if bad {
                return Err(origin.error(
                    &format!("notice.date_formats[{i}]"),
                    "is not a chrono date format (for example \"%d/%m/%Y %H:%M:%S\")",
                ));
            }
        }
        if self.reject_words.iter().all(|w| w.trim().is_empty()) {
            return Err(origin.error(
                "notice.reject_words",
                "needs at least one word (a reject word the tool does not know would read as an approval)",
            ));
        }
        for (key, list) in [
            ("notice.reject_words", &self.reject_words),
            ("notice.approve_words", &self.approve_words),
        ] {
            for (i, w) in list.iter().enumerate() {
                if w.trim().is_empty() || !w.trim().chars().all(char::is_alphanumeric) {
                    return Err(origin.error(
                        &format!("{key}[{i}]"),
                        "must be one word of letters or digits",
                    ));
                }
            }
        }
        if let Some(w) = self.reject_words.iter().find(|r| {
            self.approve_words
                .iter()
                .any(|a| a.trim().to_lowercase() == r.trim().to_lowercase())
        }) {
            return Err(origin.error(
                "notice.approve_words",
                format!("\"{}\" is also a reject word", w.trim()),
            ));
        }
        for f in [Field::Safe, Field::RequestId] {
            let used = self.id_template.contains(&format!("{{{}}}", f.key()));
            if used && !self.required.contains(&f) {
                return Err(origin.error(
                    "notice.required",
                    format!(
                        "must include {} because notice.id_template uses it",
                        f.key()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// How the notification reached the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// The notification itself (redirected, or sent straight to the mailbox).
    Direct,
    /// Forwarded inline: the notification is quoted in the body.
    Inline,
    /// Forwarded as an attachment (`message/rfc822`).
    Attachment,
}

/// The outer message: who forwarded it and what it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// Outer `From` (first mailbox).
    pub forwarder: Option<String>,
    pub forwarder_name: Option<String>,
    /// Outer `Sender`, when it differs from `From`.
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// RFC 3339.
    pub date: Option<String>,
}

/// A pending-request notification read from a forwarded mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The PVWA request id, built with `notice.id_template`.
    pub request_id: String,
    /// The request number as the mail gives it.
    pub request_number: String,
    pub safe: String,
    pub requester: Option<String>,
    pub account: Option<String>,
    pub device_user: Option<String>,
    pub address: Option<String>,
    pub reason: Option<String>,
    pub issued_on: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// Subject of the notification itself (innermost), when known.
    pub notice_subject: Option<String>,
    pub shape: Shape,
    /// Forwards between the notification and the mailbox (0 = direct).
    pub forward_depth: u32,
    pub envelope: Envelope,
    /// What the forwarder decided in their own text, and where it was read.
    pub decision: DecisionRead,
    /// Every value read for each field in the chosen notification (both renderings), in order
    /// of appearance: the watcher compares each with PVWA (`notice_check`), not only the first.
    #[serde(skip)]
    pub shown_values: std::collections::BTreeMap<Field, Vec<String>>,
}

/// Everything read from a mail, whether or not it is actionable: the watcher needs the envelope
/// to answer a refused mail, `--explain` shows the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Examination {
    pub envelope: Envelope,
    /// Fields found in the chosen notification (first value of each).
    pub fields: std::collections::BTreeMap<Field, String>,
    pub notice_subject: Option<String>,
    pub shape: Option<Shape>,
    pub forward_depth: u32,
    /// Sentences on what was found, for `--explain`.
    pub notes: Vec<String>,
    pub outcome: Result<Notice, Refusal>,
}

/// Read a forwarded notification. See [`examine`] for the partial results of a refused mail.
pub fn parse(raw: &[u8], cfg: &NoticeConfig) -> Result<Notice, Refusal> {
    examine(raw, cfg).outcome
}

/// The sentence of a refusal caused by a panic in the reader (a bug); the fuzz test looks for it.
pub const INTERNAL_ERROR: &str = "internal error while parsing";

/// Stack for the parser thread. The MIME crate drops nested `message/rfc822` parts recursively;
/// nesting is bounded before parsing (at most `MAX_PARTS` Content-Type lines, no encoded
/// message parts), which needs a few MB; the rest is margin. Reserved, not committed.
const PARSER_STACK: usize = 64 * 1024 * 1024;

/// Read a forwarded notification and keep what was found on the way.
pub fn examine(raw: &[u8], cfg: &NoticeConfig) -> Examination {
    if raw.len() as u64 > cfg.max_bytes.min(MAX_MAX_BYTES) {
        return refused_early(Refusal::new(
            Reason::TooLarge,
            format!(
                "The mail is {} bytes, more than the limit of {} bytes (notice.max_bytes); a \
                 forwarded notification is a few kB: forward it again without attachments.",
                raw.len(),
                cfg.max_bytes
            ),
        ));
    }
    // The MIME crate's recursion (drop and copy of nested messages) gets a big stack; a panic
    // in it is caught by the join (fail closed).
    let result = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("notice-parse".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(s, || examine_inner(raw, cfg))
            .map(|h| h.join())
    });
    match result {
        Ok(Ok(exam)) => exam,
        Ok(Err(_)) => refused_early(Refusal::new(
            Reason::Malformed,
            "The mail could not be read (internal error while parsing it); it is refused.",
        )),
        Err(e) => refused_early(Refusal::new(
            Reason::Malformed,
            format!("The mail could not be read: no parser thread could be started ({e})."),
        )),
    }
}

fn refused_early(r: Refusal) -> Examination {
    Examination {
        envelope: Envelope::default(),
        fields: Default::default(),
        notice_subject: None,
        shape: None,
        forward_depth: 0,
        notes: Vec::new(),
        outcome: Err(r),
    }
}

/// Count header lines that `mail-parser` would read as `Content-Type` (it ignores whitespace
/// inside header names), anywhere in the raw bytes. A cheap bound on MIME parts and nesting,
/// taken before the parser builds anything.
fn content_type_lines(raw: &[u8]) -> usize {
    raw.split(|b| *b == b'\n')
        .filter(|line| {
            let name_end = line.iter().position(|b| *b == b':').unwrap_or(0);
            let mut name = line
                .get(..name_end)
                .unwrap_or_default()
                .iter()
                .filter(|b| !b.is_ascii_whitespace());
            let mut want = b"content-type".iter();
            loop {
                match (name.next(), want.next()) {
                    (None, None) => break true,
                    (Some(a), Some(b)) if a.to_ascii_lowercase() == *b => {}
                    _ => break false,
                }
            }
        })
        .count()
}

fn examine_inner(raw: &[u8], cfg: &NoticeConfig) -> Examination {
    let mut exam = refused_early(Refusal::new(Reason::Malformed, ""));
    exam.outcome = read(raw, cfg, &mut exam);
    exam
}

/// The steps, in order; each fills `exam` as far as it gets.
fn read(raw: &[u8], cfg: &NoticeConfig, exam: &mut Examination) -> Result<Notice, Refusal> {
    if content_type_lines(raw) > mime::MAX_PARTS {
        return Err(too_complex());
    }
    if mime::has_encoded_message_part(raw) {
        return Err(Refusal::new(
            Reason::Malformed,
            "The mail attaches a message with a base64 or quoted-printable transfer encoding, \
             which no mail client produces (RFC 2046 forbids it); it is refused.",
        ));
    }
    let Some(msg) = mime::parse(raw).filter(mime::looks_like_mail) else {
        return Err(Refusal::new(
            Reason::Malformed,
            "The file is not a mail message: it has none of the headers every mail has (From, \
             Date, Subject, Message-ID, Received, MIME-Version).",
        ));
    };
    let (parts, depth) = mime::size_of_tree(&msg, 0, mime::MAX_PARTS);
    if parts > mime::MAX_PARTS || depth > mime::MAX_DEPTH {
        return Err(too_complex());
    }
    exam.envelope = envelope(&msg);
    check_automatic(&msg, cfg, &exam.envelope)?;

    let labels = cfg.labels.set();
    let mut candidates = Vec::new();
    let mut problems = Vec::new();
    let mut own_body = Vec::new();
    collect(
        &msg,
        &labels,
        &cfg.required,
        0,
        &mut candidates,
        &mut problems,
        &mut own_body,
    );
    // Every notification anywhere in the mail (attachments, the text around them, deeper
    // quotes, inside another field's value, both renderings) must agree: the request confirmed
    // is then the one the approver saw, whichever copy is read.
    let everywhere: Vec<&Found> = candidates
        .iter()
        .flat_map(|c| [&c.found, &c.others])
        .collect();
    check_hidden(&everywhere)?;
    check_invalid(&everywhere)?;
    if let Some(p) = problems.into_iter().next() {
        return Err(p);
    }
    check_conflicts_anywhere(&everywhere)?;
    let chosen = choose(candidates)?;
    let Some(mut cand) = chosen else {
        let subject = exam.envelope.subject.clone().unwrap_or_default();
        if let Some(m) = marker_in(&subject, &cfg.not_actionable_subjects) {
            return Err(not_actionable_subject(&m));
        }
        if marker_in(&subject, &cfg.request_subjects).is_some() {
            return Err(Refusal::new(
                Reason::MissingField,
                format!(
                    "The subject says it is a request notification, but none of its fields ({}) \
                     was found: forward the notification again without editing it.",
                    required_list(cfg)
                ),
            ));
        }
        return Err(Refusal::new(
            Reason::NotARequestNotice,
            "The mail is not a CyberArk pending-request notification: its subject has no request \
             marker and it carries no notification fields.",
        ));
    };
    if cand.subject.is_none() {
        cand.subject = exam.envelope.subject.clone();
    }
    exam.fields = cand
        .found
        .values
        .iter()
        .filter_map(|(f, v)| v.first().map(|x| (*f, x.clone())))
        .collect();
    exam.notice_subject = cand.subject.clone();
    exam.shape = Some(cand.shape);
    exam.forward_depth = cand.depth;
    exam.notes.push(match cand.shape {
        Shape::Attachment => format!(
            "The notification was read from a message attached to the mail ({} level(s) down).",
            cand.depth
        ),
        Shape::Inline => format!(
            "The notification was read from the innermost forwarded text ({} forward(s) deep); \
             text above it is the forwarder's and is ignored.",
            cand.depth
        ),
        Shape::Direct => "The notification was read from the mail body itself.".to_string(),
    });

    check_kind(&cand, cfg)?;
    check_conflicts(&cand.found)?;
    let subject = cand.subject.clone();
    let mut notice = build(cand, cfg, &exam.envelope)?;
    // The decision, from the outer message's own body alone (issue 32).
    let d = decision::read(
        &own_body,
        exam.envelope.subject.as_deref(),
        subject.as_deref(),
        &notice.request_id,
        cfg,
        &labels,
    )?;
    exam.notes.push(match &d.decision {
        Decision::Reject { reason } if reason.is_empty() => format!(
            "Decision: reject (\"{}\", read from {}), no reason given.",
            d.word.as_deref().unwrap_or(""),
            d.source
        ),
        Decision::Reject { reason } => format!(
            "Decision: reject (\"{}\", read from {}), reason \"{reason}\".",
            d.word.as_deref().unwrap_or(""),
            d.source
        ),
        Decision::Approve => match &d.word {
            Some(word) => format!("Decision: approve (\"{word}\", read from {}).", d.source),
            None => format!("Decision: approve ({}).", d.source),
        },
    });
    notice.decision = d;
    Ok(notice)
}

fn too_complex() -> Refusal {
    Refusal::new(
        Reason::TooComplex,
        format!(
            "The mail has more than {} MIME parts or attached messages nested more than {} deep; \
             no real forward looks like this.",
            mime::MAX_PARTS,
            mime::MAX_DEPTH
        ),
    )
}

fn envelope(msg: &mail_parser::Message<'_>) -> Envelope {
    let from = mime::mailboxes(msg, "from").into_iter().next();
    let sender = mime::mailboxes(msg, "sender").into_iter().next();
    let sender = sender
        .filter(|s| {
            from.as_ref()
                .is_none_or(|f| !f.address.eq_ignore_ascii_case(&s.address))
        })
        .map(|s| s.address);
    Envelope {
        forwarder: from
            .as_ref()
            .map(|f| f.address.clone())
            .filter(|a| !a.is_empty()),
        forwarder_name: from.and_then(|f| f.name),
        sender: sender.filter(|a| !a.is_empty()),
        subject: mime::header_text(msg, "subject"),
        message_id: mime::header_text(msg, "message-id"),
        date: mime::header_text(msg, "date"),
    }
}

/// Auto-replies, rule forwards and reports: refused before the body is read.
fn check_automatic(
    msg: &mail_parser::Message<'_>,
    cfg: &NoticeConfig,
    env: &Envelope,
) -> Result<(), Refusal> {
    let root_type = msg
        .parts
        .first()
        .map(mime::content_type)
        .unwrap_or_default();
    let report = root_type == "multipart/report"
        || msg
            .parts
            .iter()
            .take(mime::MAX_PARTS)
            .any(|p| mime::content_type(p) == "message/delivery-status")
        || !mime::header_texts(msg, "x-ms-exchange-message-is-ndr").is_empty();
    let daemon = env.forwarder.as_deref().is_some_and(|a| {
        let local = a.split('@').next().unwrap_or("").to_ascii_lowercase();
        local == "mailer-daemon" || local == "postmaster"
    });
    if report || daemon {
        return Err(Refusal::new(
            Reason::Bounce,
            "The mail is a delivery or read report (bounce), not a forwarded notification; it is \
             not answered.",
        ));
    }
    let auto_submitted: Vec<String> = mime::header_texts(msg, "auto-submitted")
        .iter()
        .map(|v| v.trim().to_ascii_lowercase())
        .collect();
    let auto_header = auto_submitted
        .iter()
        .any(|v| !v.starts_with("no") && !v.starts_with("auto-forwarded"))
        || ["x-autoreply", "x-autorespond"]
            .iter()
            .any(|h| !mime::header_texts(msg, h).is_empty())
        || mime::header_texts(msg, "precedence")
            .iter()
            .any(|v| v.trim().eq_ignore_ascii_case("auto_reply"));
    let subject = env.subject.as_deref().unwrap_or("");
    if auto_header || marker_in(subject, &cfg.auto_reply_subjects).is_some() {
        return Err(Refusal::new(
            Reason::AutoReply,
            "The mail is an automatic reply (out of office or similar); it is ignored and not \
             answered.",
        ));
    }
    let rules_loop = !mime::header_texts(msg, "x-ms-exchange-inbox-rules-loop").is_empty()
        || mime::header_texts(msg, "x-ms-exchange-organization-autoforwarded")
            .iter()
            .any(|v| v.trim().eq_ignore_ascii_case("true"));
    if cfg.refuse_auto_forwarded
        && (rules_loop
            || auto_submitted
                .iter()
                .any(|v| v.starts_with("auto-forwarded")))
    {
        return Err(Refusal::new(
            Reason::AutoForwarded,
            "The mail was forwarded by a mailbox rule, not by a person: a rule cannot approve a \
             request. Forward the notification by hand.",
        ));
    }
    Ok(())
}

/// A notification found somewhere in the mail.
#[derive(Debug, Clone)]
struct Candidate {
    found: Found,
    /// Every other field value of this text (the other forward levels, the other rendering's
    /// other levels): a notification hidden in another field's value or a deeper quote shows
    /// up here.
    others: Found,
    /// The notification's own subject (innermost forward header or attached message).
    subject: Option<String>,
    /// The notification's text, for body markers.
    text: String,
    shape: Shape,
    depth: u32,
}

/// Look for notifications: attached messages first (depth-first, innermost wins); only when
/// none is found, the body of this message. Every rendering of every message is read on its
/// own; one that looks like a notice but cannot be read, or a TNEF part, goes to `problems`.
fn collect(
    msg: &mail_parser::Message<'_>,
    labels: &LabelSet,
    required: &[Field],
    depth: u32,
    out: &mut Vec<Candidate>,
    problems: &mut Vec<Refusal>,
    own_body: &mut Vec<mime::Rendered>,
) {
    let before = out.len();
    if (depth as usize) < mime::MAX_DEPTH {
        for inner in mime::attached_messages(msg) {
            collect(
                inner,
                labels,
                required,
                depth + 1,
                out,
                problems,
                &mut Vec::new(),
            );
        }
    }
    if mime::has_tnef(msg) {
        problems.push(Refusal::new(
            Reason::UnreadableRendering,
            "The mail carries a TNEF part (winmail.dat, application/ms-tnef): Outlook shows its content, which cannot be read here, so what the approver saw is unknown. Forward the notification again from a client that does not send TNEF (Outlook: send as HTML or plain text, not Rich Text), or approve in the PVWA portal.",
        ));
    }
    // With an attached notification, the text around it is read too (after it, so the
    // attachment stays the one chosen): any notification there must agree with it.
    let attached = out.len() > before;
    let own_subject = mime::header_text(msg, "subject");
    let mut picked: Option<TextFind> = None;
    let rs = mime::renderings(msg);
    if depth == 0 {
        // The outer message's own body: where the forwarder's decision is read.
        own_body.extend(rs.iter().filter(|r| r.body).cloned());
    }
    for r in rs {
        let marked = fields::lines_of(&r.text);
        let stripped: Vec<String>;
        let lines: &[String] = if r.text.chars().any(html::is_reserved) {
            stripped = marked.iter().map(|l| html::strip_marks(l)).collect();
            &stripped
        } else {
            &marked
        };
        if let Some(p) = unreadable(&r, lines, labels) {
            problems.push(p);
        }
        let Some(find) = from_text(&r, lines, &marked, labels) else {
            continue;
        };
        // A required field whose label this rendering shows but whose value it does not give
        // in text (an image far below, an empty cell): what it shows cannot be read.
        if let Some(f) = find
            .0
            .empty
            .iter()
            .find(|f| required.contains(f) && find.0.first(**f).is_none())
        {
            problems.push(Refusal::new(
                Reason::UnreadableRendering,
                format!(
                    "{} shows a {} label without a value that can be read as text (an image, \
                     an empty cell, or a value placed elsewhere): what it shows may not be what \
                     is read. Forward the original notification unedited, or approve in the \
                     PVWA portal.",
                    upper_first(&r.name),
                    f.key()
                ),
            ));
        }
        picked = Some(match picked {
            Some(acc) => merge_alternatives(acc, find),
            None => find,
        });
    }
    if let Some((found, subject, text, inline_depth, others)) = picked {
        let shape = if depth > 0 && !attached {
            Shape::Attachment
        } else if inline_depth > 0 {
            Shape::Inline
        } else {
            Shape::Direct
        };
        let subject = if inline_depth > 0 {
            subject
        } else {
            own_subject
        };
        out.push(Candidate {
            found,
            others,
            subject,
            text,
            shape,
            depth: depth + inline_depth,
        });
    }
}

/// A rendering that looks like a notice to a person (labels found with look-alike letters
/// folded, spaces and table cells ignored, hidden text removed) but whose labels the reader
/// cannot all read: what the approver sees is not what would be confirmed.
fn unreadable(r: &mime::Rendered, lines: &[String], labels: &LabelSet) -> Option<Refusal> {
    let shown = html::displayed(&r.text);
    let loose = fields::loose_label_lines(&shown, labels);
    if loose.is_empty() {
        return None;
    }
    let strict = fields::label_counts(lines, labels);
    let (f, (_, line)) = loose
        .iter()
        .find(|(f, (n, _))| strict.get(f).copied().unwrap_or(0) < *n)?;
    Some(Refusal::new(
        Reason::UnreadableRendering,
        format!(
            "{} shows a {} line, \"{}\", that cannot be read as written (a look-alike letter, \
             a label split over table cells or spaced by style, or hidden text inside the \
             label): what it shows may not be what is read. Forward the original notification \
             unedited, or approve in the PVWA portal.",
            upper_first(&r.name),
            f.key(),
            text::clean(&line.replace('\t', " "), 80)
        ),
    ))
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

type TextFind = (Found, Option<String>, String, u32, Found);

/// The innermost segment of a rendering that has notification fields, and every field value
/// of every segment.
fn from_text(
    r: &mime::Rendered,
    lines: &[String],
    marked: &[String],
    labels: &LabelSet,
) -> Option<TextFind> {
    // Forward headers are found in the text as shown: a header block hidden by markup does
    // not cut the text (nor give the notice its subject).
    let shown: Vec<String>;
    let segs = if r.findings.is_empty() {
        forward::segments(lines)
    } else {
        shown = marked.iter().map(|l| html::displayed(l)).collect();
        forward::segments(&shown)
    };
    let inline_depth = segs.len().saturating_sub(1);
    let mut picked = None;
    let mut others = Found::default();
    for (idx, seg) in segs.iter().enumerate().rev() {
        let seg_lines = lines.get(seg.start..seg.end).unwrap_or(&[]);
        let seg_marked = marked.get(seg.start..seg.end).unwrap_or(&[]);
        let mut found = fields::extract_marked(
            seg_lines,
            seg_marked,
            &r.findings,
            labels,
            &forward::is_header_line,
        );
        for (_, what) in &mut found.hidden {
            *what = format!("{what}, in {}", r.name);
        }
        if found.is_empty() {
            continue;
        }
        if picked.is_none() {
            let subject = seg.header.as_ref().and_then(|h| h.subject.clone());
            let depth = u32::try_from(idx.min(inline_depth)).unwrap_or(u32::MAX);
            picked = Some((found, subject, seg_lines.join("\n"), depth));
        } else {
            others.absorb(found);
        }
    }
    picked.map(|(found, subject, text, depth)| (found, subject, text, depth, others))
}

/// Two renderings of one message: take the first, fill gaps from the other, and keep both
/// values where they disagree (a conflict is refused later).
fn merge_alternatives(plain: TextFind, html: TextFind) -> TextFind {
    let (mut found, subject, text, depth, mut others) = plain;
    let (html_found, html_subject, _, html_depth, html_others) = html;
    found.absorb(html_found);
    others.absorb(html_others);
    (
        found,
        subject.or(html_subject),
        text,
        depth.max(html_depth),
        others,
    )
}

/// One notification, or a conflict when attachments carry different ones.
fn choose(candidates: Vec<Candidate>) -> Result<Option<Candidate>, Refusal> {
    let mut iter = candidates.into_iter();
    let Some(first) = iter.next() else {
        return Ok(None);
    };
    for other in iter {
        for f in [Field::Safe, Field::RequestId] {
            if let (Some(a), Some(b)) = (first.found.first(f), other.found.first(f))
                && !a.eq_ignore_ascii_case(b)
            {
                return Err(Refusal::new(
                    Reason::ConflictingFields,
                    format!(
                        "The mail carries two different notifications ({} \"{a}\" and \"{b}\"): \
                         forward one notification per mail.",
                        f.key()
                    ),
                ));
            }
        }
    }
    Ok(Some(first))
}

fn marker_in(text: &str, markers: &[String]) -> Option<String> {
    markers
        .iter()
        .filter(|m| !m.trim().is_empty())
        .find(|m| contains_ci(text, m.trim()))
        .cloned()
}

fn not_actionable_subject(marker: &str) -> Refusal {
    Refusal::new(
        Reason::NotActionable,
        format!(
            "The mail is a \"{}\" notice, which needs no approval; only pending-request \
             notifications can be approved.",
            clean_value(marker)
        ),
    )
}

/// Is this a pending-request notification at all?
fn check_kind(cand: &Candidate, cfg: &NoticeConfig) -> Result<(), Refusal> {
    let subject = cand.subject.as_deref().unwrap_or("");
    if let Some(m) = marker_in(subject, &cfg.not_actionable_subjects) {
        return Err(not_actionable_subject(&m));
    }
    if let Some(m) = marker_in(&cand.text, &cfg.not_actionable_body_markers) {
        return Err(Refusal::new(
            Reason::NotActionable,
            format!(
                "The notification says \"{}\": it needs no approval.",
                clean_value(&m)
            ),
        ));
    }
    if marker_in(subject, &cfg.request_subjects).is_none() {
        return Err(Refusal::new(
            Reason::NotARequestNotice,
            format!(
                "The forwarded message's subject \"{}\" is not a pending-request notification \
                 subject (notice.request_subjects).",
                clean_value(subject)
            ),
        ));
    }
    if !cfg.body_markers.iter().all(|m| m.trim().is_empty())
        && marker_in(&cand.text, &cfg.body_markers).is_none()
    {
        return Err(Refusal::new(
            Reason::NotARequestNotice,
            "The forwarded text has none of the notification markers (notice.body_markers).",
        ));
    }
    Ok(())
}

fn check_conflicts(found: &Found) -> Result<(), Refusal> {
    for f in Field::ALL.iter().copied() {
        if let Some((a, b)) = found.two_values(f) {
            return Err(Refusal::new(
                Reason::ConflictingFields,
                format!(
                    "The notification gives two different values for {}: \"{a}\" and \"{b}\". \
                     Forward the original notification without editing it.",
                    f.key()
                ),
            ));
        }
    }
    Ok(())
}

/// Conflicts between notifications anywhere in the mail.
fn check_conflicts_anywhere(all: &[&Found]) -> Result<(), Refusal> {
    for f in [Field::RequestId, Field::Safe, Field::Requester] {
        if let Some((a, b)) = fields::two_values(all.iter().copied(), f) {
            return Err(Refusal::new(
                Reason::ConflictingFields,
                format!(
                    "The mail holds more than one notification, with two different values for {}: \
                     \"{a}\" and \"{b}\" (one may be hidden in another field's text, a quote or \
                     an attachment). Forward the original notification alone, without editing it.",
                    f.key()
                ),
            ));
        }
    }
    Ok(())
}

/// A field shown through markup that can hide, add or reorder its text (issue 25).
fn check_hidden(all: &[&Found]) -> Result<(), Refusal> {
    if let Some((f, what)) = all.iter().find_map(|x| x.hidden.first()) {
        return Err(Refusal::new(
            Reason::InvalidField,
            format!(
                "The {} field is shown through markup that can hide, add or reorder its text: \
                 {what}. What it shows may not be what is read: forward the original \
                 notification unedited, or approve in the PVWA portal.",
                f.key()
            ),
        ));
    }
    Ok(())
}

/// A field whose value holds bidi controls or invisible characters may display as one thing
/// and read as another.
fn check_invalid(all: &[&Found]) -> Result<(), Refusal> {
    if let Some((f, chars)) = all.iter().find_map(|x| x.invalid.first()) {
        return Err(Refusal::new(
            Reason::InvalidField,
            format!(
                "The {} field holds invisible or text-direction characters ({chars}); what it \
                 shows may not be what it says. Forward the original notification without editing it.",
                f.key()
            ),
        ));
    }
    Ok(())
}

fn required_list(cfg: &NoticeConfig) -> String {
    cfg.required
        .iter()
        .map(|f| label_name(cfg, *f))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first configured label of a field, as a human would look for it.
fn label_name(cfg: &NoticeConfig, f: Field) -> String {
    cfg.labels
        .for_field(f)
        .first()
        .map(|l| format!("\"{}:\"", fields::prepare_label(l)))
        .unwrap_or_else(|| f.key().to_string())
}

/// Longest safe name CyberArk allows.
const MAX_SAFE_CHARS: usize = 28;

fn valid_safe(s: &str) -> bool {
    let n = s.chars().count();
    (1..=MAX_SAFE_CHARS).contains(&n)
        && s.trim() == s
        && !s
            .chars()
            .any(|c| c.is_control() || "\\/:*?\"<>|\t".contains(c))
}

fn valid_number(s: &str) -> bool {
    (1..=12).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `Name <a@b>`, `a@b<mailto:a@b>`, `a@b [mailto:a@b]` → `a@b`, when it is one plausible
/// address.
fn email_of(v: &str) -> Option<String> {
    let mut s = v.to_string();
    for (open, close) in [("<mailto:", '>'), ("[mailto:", ']'), ("(mailto:", ')')] {
        while let Some(start) = s.to_ascii_lowercase().find(open) {
            let end = s
                .get(start..)
                .and_then(|t| t.find(close))
                .map(|e| start + e + 1)
                .unwrap_or(s.len());
            s.replace_range(start..end, "");
        }
    }
    let s = match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s.get(a + 1..b).unwrap_or("").to_string(),
        _ => s,
    };
    let s = s.trim().trim_matches(['"', '\'']);
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 254
        && !domain.contains('@')
        && s.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii())
        && !s.contains(['<', '>', '(', ')', '[', ']', ',', ';', ':', '\\', '"']);
    ok.then(|| s.to_string())
}

fn build(cand: Candidate, cfg: &NoticeConfig, env: &Envelope) -> Result<Notice, Refusal> {
    let found = &cand.found;
    let mut safe = found.first(Field::Safe).map(str::to_string);
    let raw_id = found.first(Field::RequestId).map(str::to_string);
    // A full id `<Safe>_<n>` is accepted in the Request Id field.
    let mut number = None;
    if let Some(id) = &raw_id {
        if valid_number(id) {
            number = Some(id.clone());
        } else if let Some((s, n)) = id.rsplit_once('_')
            && valid_number(n)
            && valid_safe(s)
        {
            match &safe {
                Some(given) if !given.eq_ignore_ascii_case(s) => {
                    return Err(Refusal::new(
                        Reason::ConflictingFields,
                        format!(
                            "The request id \"{id}\" names safe \"{s}\" but the Safe field says \
                             \"{given}\"."
                        ),
                    ));
                }
                Some(_) => {}
                None => safe = Some(s.to_string()),
            }
            number = Some(n.to_string());
        } else {
            return Err(Refusal::new(
                Reason::InvalidField,
                format!(
                    "The request id \"{id}\" is neither a request number nor \"<Safe>_<number>\"."
                ),
            ));
        }
    }
    let requester = found.first(Field::Requester).map(str::to_string);
    let mut missing = Vec::new();
    for f in &cfg.required {
        let present = match f {
            Field::Safe => safe.is_some(),
            Field::RequestId => number.is_some(),
            other => found.first(*other).is_some(),
        };
        if !present {
            missing.push(label_name(cfg, *f));
        }
    }
    if !missing.is_empty() {
        return Err(Refusal::new(
            Reason::MissingField,
            format!(
                "The notification has no {} line: forward the original notification without \
                 removing anything from it.",
                missing.join(", ")
            ),
        ));
    }
    let safe = safe.unwrap_or_default();
    let number = number.unwrap_or_default();
    if uses(cfg, Field::Safe) && !valid_safe(&safe) {
        return Err(Refusal::new(
            Reason::InvalidField,
            format!(
                "\"{safe}\" cannot be a safe name (1 to {MAX_SAFE_CHARS} characters, none of \
                 \\ / : * ? \" < > |)."
            ),
        ));
    }
    let requester = match requester {
        Some(r) => Some(email_of(&r).ok_or_else(|| {
            Refusal::new(
                Reason::InvalidField,
                format!("The requester \"{r}\" is not one mail address."),
            )
        })?),
        None => None,
    };
    let request_id = cfg
        .id_template
        .replace("{safe}", &safe)
        .replace("{request_id}", &number);
    let get = |f: Field| found.first(f).map(str::to_string);
    Ok(Notice {
        request_id,
        request_number: number,
        safe,
        requester,
        account: get(Field::Account),
        device_user: get(Field::DeviceUser),
        address: get(Field::Address),
        reason: get(Field::Reason),
        issued_on: get(Field::IssuedOn),
        start_date: get(Field::StartDate),
        end_date: get(Field::EndDate),
        notice_subject: cand.subject.clone(),
        shape: cand.shape,
        forward_depth: cand.depth,
        envelope: env.clone(),
        decision: DecisionRead::default(),
        shown_values: found.values.clone(),
    })
}

fn uses(cfg: &NoticeConfig, f: Field) -> bool {
    cfg.id_template.contains(&format!("{{{}}}", f.key())) || cfg.required.contains(&f)
}

#[cfg(test)]
mod reader_tests;
#[cfg(test)]
mod tests;

//! Reply mails from templates: to the forwarder on success and on refusal, with the request,
//! safe, requester and level, and on a failed confirm who confirmed and when; the PAM team in
//! CC on failures. Templates are built in and can be overridden by files.
//!
//! Nothing from the incoming mail reaches a header unsanitised: every value placed in the
//! subject is one line without control characters, addresses are checked one by one, and HTML
//! bodies escape every value. In the body too every value is one bounded line (block values
//! such as the list of who acted: one bounded line per entry), and the caller quotes values
//! that people typed ([`quote`]), so that a requester's reason cannot read as a paragraph of
//! the PAM mailbox's own text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[notify]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Addresses copied on failures and refusals (the PAM team).
    #[serde(default)]
    pub pam_team: Vec<String>,
    /// When to copy the PAM team: `failures` (default: failed confirms and faults),
    /// `refusals` (failures and every refusal), `never`.
    #[serde(default)]
    pub cc_team_on: CcPolicy,
    /// Directory with template files overriding the built-in ones: `<outcome>.subject`,
    /// `<outcome>.txt`, `<outcome>.html` for outcome `approved`, `refused`, `failed`,
    /// `already` (another copy of an approved mail). Every
    /// value fills in as one bounded line; `{requester}`, `{request_reason}`,
    /// `{target_account}` come quoted as data; `{details}` (a refusal's request lines) and
    /// `{acted}` are empty when the request was not read for the forwarder (need to know).
    pub templates_dir: Option<PathBuf>,
    /// Report to `pam_team` each mail refused without a reply: its sender could not be
    /// verified (its claimed sender may not have written it), or a mailbox rule forwarded it.
    /// The report names the refusal and the mail's Message-ID, never its subject or text.
    #[serde(default = "yes")]
    pub report_unauthentic: bool,
    /// Send replies at all (off: decisions are still journaled and logged).
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            pam_team: vec![],
            cc_team_on: CcPolicy::Failures,
            templates_dir: None,
            report_unauthentic: true,
            enabled: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CcPolicy {
    #[default]
    Failures,
    Refusals,
    Never,
}

/// The kind of reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Confirmed in PVWA.
    Approved,
    /// Rejected in PVWA on the forwarder's word (issue 32).
    Rejected,
    /// Refused by policy (a final answer about the mail or the request).
    Refused,
    /// The confirm failed, or the mail kept failing: the PAM team should look.
    Failed,
    /// Another copy of a mail that was approved: nothing more was done, the approval stands.
    Already,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Rejected => "rejected",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Already => "already",
        }
    }
}

/// A mail to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("reply address `{0}` is not a single plain mail address")]
    BadAddress(String),
    #[error("template {path}: {message}")]
    Template { path: PathBuf, message: String },
}

impl crate::exit::Classify for NotifyError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            NotifyError::BadAddress(_) => crate::exit::Exit::DataErr,
            NotifyError::Template { .. } => crate::exit::Exit::Config,
        }
    }
}

/// Values for the placeholders `{name}`. The watcher always sets `verb`, `done` and `noun`
/// (`approve`/`approved`/`approval`, or for a reject by mail `reject`/`rejected`/`rejection`),
/// which the built-in refused and failed texts use. Values from outside should come quoted ([`quote`]);
/// `render` puts every value on one bounded line in any case.
pub type Values = BTreeMap<&'static str, String>;

const SUBJECTS: [(&str, &str); 5] = [
    (
        "approved",
        "Approved: Dual Control request {request_id} ({safe}, level {level})",
    ),
    (
        "rejected",
        "Rejected: Dual Control request {request_id} ({safe}, level {level})",
    ),
    ("refused", "Not {done}: Dual Control request {request_id}"),
    (
        "failed",
        "Failed to {verb}: Dual Control request {request_id}",
    ),
    (
        "already",
        "Already approved: Dual Control request {request_id} ({safe}, level {level})",
    ),
];

const TEXTS: [(&str, &str); 5] = [
    (
        "rejected",
        "Hello,\n\nyour rejection was recorded in CyberArk: the request is rejected and cannot be used.\n\n  Request:    {request_id}\n  Safe:       {safe}\n  Account:    {target_account}\n  Requester:  {requester}\n  Level:      {level}\n  Rejected:   {time}\n  As:         {account}, on behalf of {forwarder}\n  Your reason: {reject_reason}\n  Status now: {status}\n\nWho acted on the request and when (from PVWA; names and reasons quoted as typed):\n{confirmers}\n",
    ),
    (
        "approved",
        "Hello,\n\nyour approval was recorded in CyberArk.\n\n  Request:    {request_id}\n  Safe:       {safe}\n  Account:    {target_account}\n  Requester:  {requester}\n  Level:      {level}\n  Confirmed:  {time}\n  As:         {account}, on behalf of {forwarder}\n  Status now: {status}\n\n  Reason (as typed by the requester): {request_reason}\n",
    ),
    (
        "refused",
        "Hello,\n\nyour forwarded request was NOT {done}.\n\n  Why:        {reason}\n{details}{acted}\nReason code: {reason_code}. Nothing was changed in CyberArk.\n",
    ),
    (
        "failed",
        "Hello,\n\nthe {noun} could NOT be completed; the PAM team has been informed.\n\n  What:       {reason}\n  Request:    {request_id}\n  Safe:       {safe}\n  Requester:  {requester}\n  Level:      {level}\n  Status:     {status}\n  Expires:    {expires}\n\nWho confirmed and when:\n{confirmers}\n\nPlease check the request in the PVWA portal.\n",
    ),
    (
        "already",
        "Hello,\n\nyour approval of this request was already recorded in CyberArk; this copy of the mail changed nothing.\n\n  Why:        {reason}\n  Request:    {request_id}\n  Safe:       {safe}\n  Level:      {level}\n  Status now: {status}\n",
    ),
];

const REPORT_SUBJECT: &str = "Refused unanswered mail in the approval mailbox ({reason_code})";
const REPORT_TEXT: &str = "Hello,\n\na mail in the approval mailbox was refused without a reply: {unanswered}.\nNothing was changed in CyberArk.\n\n  Why:        {reason}\n  Code:       {reason_code}\n  Message-ID: {message_id}\n  Journal:    row {row}\n  Filed in:   {folder}\n\nIts subject and text are not repeated here; open it in the mailbox if needed.\n";

/// Values that are blocks of lines (each line is bounded on its own); every other value goes
/// into a reply as one line.
const BLOCKS: [&str; 3] = ["acted", "confirmers", "details"];

/// Longest value kept on a reply's line (a refusal sentence, a request id).
const MAX_LINE: usize = 600;

/// Longest text quoted from outside (a requester's or confirmer's reason).
pub const MAX_QUOTED: usize = 240;

/// A value from outside (typed by a requester, a confirmer, an administrator), as data: one
/// line without control characters, cut at `max` characters with an ellipsis, between double
/// quotes (a quote inside is escaped), so that it cannot read as the PAM mailbox's own text.
pub fn quote(s: &str, max: usize) -> String {
    format!("\"{}\"", one_line(s, max).replace('"', "\\\""))
}

/// A block value with every line bounded and without control characters (its layout kept).
fn block_lines(v: &str) -> String {
    v.split('\n')
        .map(|l| {
            let l: String = l
                .chars()
                .map(|c| {
                    if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            let l = l.trim_end();
            if l.chars().count() > MAX_LINE {
                let cut: String = l.chars().take(MAX_LINE - 1).collect();
                format!("{cut}…")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Make one header-safe line: no control characters (CR, LF, NUL, …), runs of spaces folded,
/// capped in length.
pub fn one_line(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let folded = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() > max {
        let cut: String = folded.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        folded
    }
}

/// Check a single plain address (`local@domain`), with nothing that could add a recipient or a
/// header: no spaces, commas, semicolons, angle brackets, quotes or control characters.
pub fn check_address(a: &str) -> Result<String, NotifyError> {
    let a = a.trim();
    let bad = a.is_empty()
        || a.len() > 254
        || a.chars()
            .any(|c| c.is_control() || c.is_whitespace() || ",;<>\"()[]\\:".contains(c))
        || a.matches('@').count() != 1
        || a.starts_with('@')
        || a.ends_with('@')
        || !a
            .rsplit('@')
            .next()
            .is_some_and(|d| d.contains('.') || d.eq_ignore_ascii_case("localhost"));
    if bad {
        return Err(NotifyError::BadAddress(one_line(a, 80)));
    }
    Ok(a.to_string())
}

fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Replace `{name}` placeholders; unknown names stay as they are (so a typo shows in the mail
/// rather than silently vanishing); `escape` is applied to every value.
fn fill(template: &str, values: &Values, escape: impl Fn(&str, &str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end)
                if after[..end]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
                    && end > 0 =>
            {
                let name = &after[..end];
                match values.get(name) {
                    Some(v) => out.push_str(&escape(name, v)),
                    None => out.push_str(&rest[start..start + end + 2]),
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The renderer: built-in templates, overridden by files when configured.
pub struct Notifier {
    cfg: NotifyConfig,
    subjects: BTreeMap<String, String>,
    texts: BTreeMap<String, String>,
    htmls: BTreeMap<String, String>,
}

impl Notifier {
    /// Load templates (files override built-ins) and check the PAM team addresses.
    pub fn new(cfg: &NotifyConfig) -> Result<Notifier, NotifyError> {
        for a in &cfg.pam_team {
            check_address(a)?;
        }
        let mut n = Notifier {
            cfg: cfg.clone(),
            subjects: SUBJECTS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            texts: TEXTS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            htmls: BTreeMap::new(),
        };
        if let Some(dir) = &cfg.templates_dir {
            for outcome in ["approved", "rejected", "refused", "failed", "already"] {
                for (ext, map) in [
                    ("subject", &mut n.subjects),
                    ("txt", &mut n.texts),
                    ("html", &mut n.htmls),
                ] {
                    let p = dir.join(format!("{outcome}.{ext}"));
                    match std::fs::read_to_string(&p) {
                        Ok(t) => {
                            map.insert(outcome.to_string(), t);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(NotifyError::Template {
                                path: p,
                                message: e.to_string(),
                            });
                        }
                    }
                }
            }
        }
        Ok(n)
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// The PAM team's report on a mail refused without a reply (its sender is not authentic,
    /// or a mailbox rule forwarded it), or `None` when no team is configured or reports are
    /// off. Values: `unanswered` (why no reply), `reason_code`, `reason`, `message_id`, `row`,
    /// `folder`; nothing of the mail's subject or text.
    pub fn render_report(&self, values: &Values) -> Option<Reply> {
        if !self.cfg.report_unauthentic || self.cfg.pam_team.is_empty() {
            return None;
        }
        let subject = one_line(&fill(REPORT_SUBJECT, values, |_, v| one_line(v, 100)), 250);
        let text = fill(REPORT_TEXT, values, |_, v| one_line(v, 400));
        Some(Reply {
            to: self.cfg.pam_team.clone(),
            cc: vec![],
            subject,
            text,
            html: None,
        })
    }

    /// Build the reply for `outcome` to `forwarder`. `values` come from PVWA and the fields read
    /// from the mail (never more of its text); each is sanitised here.
    pub fn render(
        &self,
        outcome: Outcome,
        forwarder: &str,
        values: &Values,
    ) -> Result<Reply, NotifyError> {
        let to = vec![check_address(forwarder)?];
        // The words of an approval unless the caller says otherwise (a reject by mail).
        let mut with_words;
        let values = if ["verb", "done", "noun"]
            .iter()
            .all(|k| values.contains_key(k))
        {
            values
        } else {
            with_words = values.clone();
            for (k, v) in [
                ("verb", "approve"),
                ("done", "approved"),
                ("noun", "approval"),
            ] {
                with_words.entry(k).or_insert_with(|| v.to_string());
            }
            &with_words
        };
        let cc = match (self.cfg.cc_team_on, outcome) {
            (CcPolicy::Never, _)
            | (_, Outcome::Approved | Outcome::Rejected | Outcome::Already) => vec![],
            (CcPolicy::Failures, Outcome::Refused) => vec![],
            _ => self.cfg.pam_team.clone(),
        };
        let key = outcome.name();
        let subject = one_line(
            &fill(&self.subjects[key], values, |_, v| one_line(v, 200)),
            250,
        );
        // One bounded line per value (block values: per line of theirs), so that no value can
        // open a paragraph of its own; HTML escapes every value on top.
        let line = |name: &str, v: &str| {
            if BLOCKS.contains(&name) {
                block_lines(v)
            } else {
                one_line(v, MAX_LINE)
            }
        };
        let text = fill(&self.texts[key], values, line);
        let html = self
            .htmls
            .get(key)
            .map(|t| fill(t, values, |name, v| escape_html(&line(name, v))));
        Ok(Reply {
            to,
            cc,
            subject,
            text,
            html,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        let mut v = Values::new();
        v.insert("request_id", "InfraSafe_12".into());
        v.insert("safe", "InfraSafe".into());
        v.insert("requester", "alice".into());
        v.insert("level", "1".into());
        v.insert("reason", "You made request InfraSafe_12 yourself.".into());
        v.insert("reason_code", "self_approval".into());
        v
    }

    #[test]
    fn values_cannot_inject_headers_or_recipients() {
        let n = Notifier::new(&NotifyConfig::default()).expect("notifier");
        let mut v = values();
        v.insert("request_id", "X_1\r\nBcc: evil@attacker.test\r\n".into());
        let r = n
            .render(Outcome::Refused, "bob@example.test", &v)
            .expect("render");
        assert!(
            !r.subject.contains('\r') && !r.subject.contains('\n'),
            "{:?}",
            r.subject
        );
        assert_eq!(r.to, vec!["bob@example.test"]);
        for bad in [
            "bob@example.test\r\nBcc: x@y.z",
            "a@b.c, d@e.f",
            "Bob <bob@x.test>",
            "bob",
            "@x.test",
            "a@b",
        ] {
            assert!(
                n.render(Outcome::Approved, bad, &values()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_team_is_copied_as_configured() {
        let cfg = NotifyConfig {
            pam_team: vec!["pam-team@example.test".into()],
            ..NotifyConfig::default()
        };
        let n = Notifier::new(&cfg).expect("notifier");
        assert!(
            n.render(Outcome::Approved, "b@x.test", &values())
                .expect("r")
                .cc
                .is_empty()
        );
        assert!(
            n.render(Outcome::Refused, "b@x.test", &values())
                .expect("r")
                .cc
                .is_empty()
        );
        assert_eq!(
            n.render(Outcome::Failed, "b@x.test", &values())
                .expect("r")
                .cc,
            ["pam-team@example.test"]
        );
        let n = Notifier::new(&NotifyConfig {
            cc_team_on: CcPolicy::Refusals,
            ..cfg.clone()
        })
        .expect("notifier");
        assert_eq!(
            n.render(Outcome::Refused, "b@x.test", &values())
                .expect("r")
                .cc
                .len(),
            1
        );
        assert!(
            Notifier::new(&NotifyConfig {
                pam_team: vec!["not an address".into()],
                ..cfg
            })
            .is_err()
        );
    }

    #[test]
    fn the_team_report_on_an_unverified_mail_names_the_refusal_only() {
        let mut v = Values::new();
        v.insert("reason_code", "dmarc_fail".into());
        v.insert("reason", "DMARC failed\r\nBcc: x@evil.test".into());
        v.insert("message_id", "<m1@x.test>".into());
        v.insert("row", "4".into());
        v.insert("folder", "Refused".into());
        let off = Notifier::new(&NotifyConfig::default()).expect("n");
        assert!(off.render_report(&v).is_none(), "no team, no report");
        let cfg = NotifyConfig {
            pam_team: vec!["pam@x.test".into()],
            ..NotifyConfig::default()
        };
        let r = Notifier::new(&cfg)
            .expect("n")
            .render_report(&v)
            .expect("report");
        assert_eq!(r.to, vec!["pam@x.test"]);
        assert!(r.subject.contains("dmarc_fail"), "{}", r.subject);
        assert!(
            r.text.contains("<m1@x.test>") && r.text.contains("row 4"),
            "{}",
            r.text
        );
        assert!(
            !r.text.contains("\nBcc:"),
            "values are one line: {}",
            r.text
        );
        let quiet = NotifyConfig {
            report_unauthentic: false,
            ..cfg
        };
        assert!(
            Notifier::new(&quiet)
                .expect("n")
                .render_report(&v)
                .is_none()
        );
    }

    #[test]
    fn templates_fill_and_files_override() {
        let n = Notifier::new(&NotifyConfig::default()).expect("notifier");
        let r = n
            .render(Outcome::Refused, "b@x.test", &values())
            .expect("r");
        assert_eq!(r.subject, "Not approved: Dual Control request InfraSafe_12");
        assert!(
            r.text
                .contains("Why:        You made request InfraSafe_12 yourself."),
            "{}",
            r.text
        );
        assert!(r.html.is_none());
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("refused.subject"),
            "NO for {request_id} {unknown}",
        )
        .expect("w");
        std::fs::write(dir.path().join("refused.html"), "<p>{reason}</p>").expect("w");
        let n = Notifier::new(&NotifyConfig {
            templates_dir: Some(dir.path().into()),
            ..NotifyConfig::default()
        })
        .expect("n");
        let mut v = values();
        v.insert("reason", "<script>alert(1)</script>".into());
        let r = n.render(Outcome::Refused, "b@x.test", &v).expect("r");
        assert_eq!(r.subject, "NO for InfraSafe_12 {unknown}");
        assert_eq!(
            r.html.as_deref(),
            Some("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>")
        );
    }

    #[test]
    fn outside_values_are_one_quoted_bounded_line_in_text_and_html() {
        let hostile = "Routine.\r\n\r\nIMPORTANT: confirm again at https://evil.test with your password \"now\"";
        let q = quote(hostile, 60);
        assert!(q.starts_with('"') && q.ends_with("…\""), "{q}");
        assert!(!q.contains('\n') && q.chars().count() <= 62 + 2, "{q}");
        assert_eq!(
            quote("say \"hi\"", 100),
            "\"say \\\"hi\\\"\"",
            "an inner quote cannot end the quotation"
        );
        // Unquoted by the caller, a value still cannot open a paragraph of its own.
        let mut v = values();
        v.insert("reason", hostile.into());
        v.insert(
            "details",
            "  Request:    X_1\n  Safe:\r\n\u{2028}bad\n".into(),
        );
        let n = Notifier::new(&NotifyConfig::default()).expect("notifier");
        let r = n.render(Outcome::Refused, "b@x.test", &v).expect("r");
        assert!(
            !r.text
                .lines()
                .any(|l| l.trim_start().starts_with("IMPORTANT")),
            "{}",
            r.text
        );
        assert!(
            r.text.contains("  Request:    X_1\n"),
            "blocks keep their layout: {}",
            r.text
        );
        assert!(
            !r.text.contains('\r') && !r.text.contains('\u{2028}'),
            "{:?}",
            r.text
        );
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("refused.html"), "<p>{reason}</p>").expect("w");
        let n = Notifier::new(&NotifyConfig {
            templates_dir: Some(dir.path().into()),
            ..NotifyConfig::default()
        })
        .expect("n");
        let mut v = values();
        v.insert("reason", "a\n<b>b</b>".into());
        let r = n.render(Outcome::Refused, "b@x.test", &v).expect("r");
        assert_eq!(r.html.as_deref(), Some("<p>a &lt;b&gt;b&lt;/b&gt;</p>"));
    }

    #[test]
    fn one_line_folds_and_caps() {
        assert_eq!(one_line("a\r\n\tb  c\u{2028}d", 100), "a b c d");
        assert_eq!(one_line(&"x".repeat(10), 5).chars().count(), 5);
    }
}

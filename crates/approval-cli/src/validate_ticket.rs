//! `validate-ticket`: human rendering of ticket verdicts, and reading the bypass code to hash.

use approval_core::ticketing::rules::{CheckName, CheckVerdict};
use approval_core::ticketing::{Outcome, Verdict};

/// How a verdict's ticket is named in text (an id never shown is named by its position).
fn subject(v: &Verdict) -> String {
    match (&v.ticket, v.outcome) {
        (_, Outcome::Bypass) => "(failsafe bypass code)".into(),
        (Some(t), _) => t.clone(),
        (None, _) => format!("(input {})", v.line),
    }
}

fn headline(v: &Verdict) -> String {
    let what = match (v.system, v.kind, &v.ticket_type) {
        (Some(s), Some(k), Some(t)) => format!(" ({s} {}, {t})", k.key()),
        _ => String::new(),
    };
    let failed = v.failed();
    match v.outcome {
        Outcome::Valid => format!("{}: valid{what}", subject(v)),
        Outcome::Bypass => format!("{}: accepted (bypass)", subject(v)),
        Outcome::Invalid => format!(
            "{}: invalid{what}: {}: {}",
            subject(v),
            v.reason.as_deref().unwrap_or("invalid"),
            failed.map(|c| c.detail.as_str()).unwrap_or("")
        ),
        Outcome::CannotValidate => format!(
            "{}: cannot validate{what}: {}",
            subject(v),
            v.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
        ),
    }
}

/// One line per verdict (stdin mode).
pub fn line(v: &Verdict) -> String {
    headline(v)
}

/// The headline, then every check with its verdict, then a hint when the system could not be
/// asked.
pub fn detailed(v: &Verdict) -> String {
    let mut s = headline(v);
    for c in &v.checks {
        let verdict = match c.verdict {
            CheckVerdict::Pass => "pass",
            CheckVerdict::Fail => "FAIL",
            CheckVerdict::Skipped => "skipped",
            CheckVerdict::NotRun => "not run",
        };
        let reason = c.reason.map(|r| format!(" [{r}]")).unwrap_or_default();
        s.push_str(&format!(
            "\n  {:<10} {verdict:<8} {}{reason}",
            c.check.key(),
            c.detail
        ));
        if c.check == CheckName::Requester && v.user.is_none() && c.verdict == CheckVerdict::Fail {
            s.push_str("\n  hint: pass the CyberArk requester with --user");
        }
    }
    if let Some(h) = v.error.as_ref().and_then(|e| e.hint.as_deref()) {
        s.push_str(&format!("\n  hint: {h}"));
    }
    s
}

/// Hash a bypass code read from `input` (its first line) for `ticketing.bypass_codes`.
pub fn hash_bypass_code(mut input: impl std::io::BufRead) -> approval_core::error::Result<String> {
    let mut line = zeroize::Zeroizing::new(String::new());
    input.read_line(&mut line).map_err(|e| {
        approval_core::error::Error::Usage(format!("cannot read the code from stdin: {e}"))
    })?;
    approval_core::ticketing::bypass::hash_code(&line).map_err(approval_core::error::Error::Usage)
}

//! `check-approval-request --status`: the watcher's state from its state directory, for people
//! and for Nagios-style checks — one summary line, and the plugin exit codes: 0 OK, 1 WARNING,
//! 2 CRITICAL. Reads the journal only (no server is asked), so it works whether the watcher
//! runs as a service or from cron, and while it runs.
//!
//! CRITICAL: no journal (the watcher never ran here), the mailbox has not answered for
//! `--critical-secs`, or a mail has waited that long unfinished. WARNING: the same past
//! `--warning-secs`. With `--json` the same as one object.

use std::time::Duration;

use approval_core::exit::Exit;
use approval_core::journal::{Journal, JournalStats};
use approval_core::pipeline::watch_loop::{LAST_MAILBOX_OK, MAILBOX_CERTIFICATE_END};
use approval_core::settings::Loaded;
use serde::Serialize;

use crate::Printer;

/// A Nagios plugin's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Ok,
    Warning,
    Critical,
}

impl Verdict {
    /// The plugin exit code: 0, 1, 2. (The numbers, not their meaning for the other tools:
    /// `Refused` is 1 and `Usage` is 2.)
    fn exit(self) -> Exit {
        match self {
            Verdict::Ok => Exit::Ok,
            Verdict::Warning => Exit::Refused,
            Verdict::Critical => Exit::Usage,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub verdict: Verdict,
    pub summary: String,
    pub journal: String,
    pub answered: u64,
    pub confirmed: u64,
    /// Rejected by mail (issue 32).
    pub rejected: u64,
    pub refused: u64,
    pub pending: u64,
    pub pending_after_a_fault: u64,
    /// Decided mails whose reply is still owed (held back by the sending pace, or waiting for
    /// the mailbox).
    pub replies_owed: u64,
    pub oldest_pending_secs: Option<u64>,
    pub mailbox_answered_secs_ago: Option<u64>,
    pub last_activity_secs_ago: Option<u64>,
    /// Days left before the end of the certificate the mailbox app signs in with (Graph), as
    /// the watcher last recorded it; negative once past.
    pub certificate_ends_in_days: Option<i64>,
    /// Two or more hosts on a PostgreSQL journal: the lease of the active host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaStatus>,
}

/// The lease of the active host, as the journal's database holds it.
#[derive(Debug, Serialize, PartialEq)]
pub struct HaStatus {
    /// The host holding a live lease; null when none does.
    pub active_host: Option<String>,
    pub epoch: i64,
    /// Seconds since the holder last renewed the lease (null: never taken).
    pub lease_age_secs: Option<f64>,
    /// Takeovers of an expired lease.
    pub failovers: u64,
    /// When the last failover happened (RFC 3339, UTC).
    pub last_failover: Option<String>,
    /// One line for people.
    #[serde(skip)]
    pub line: String,
}

/// The `active host: …` line of `--status`.
pub fn ha_status(i: &approval_core::journal::LeaseInfo) -> HaStatus {
    let host = approval_core::journal::lease::host_of(&i.holder).to_string();
    let secs = |ms: i64| ms as f64 / 1000.0;
    let last = i.last_failover_ms.and_then(|ms| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    });
    let head = if i.live() {
        format!(
            "active host: {host} (epoch {}, lease renewed {:.1} s ago)",
            i.epoch,
            secs(i.renewed_ms_ago.unwrap_or(0))
        )
    } else if i.holder.is_empty() {
        "active host: none (no host has taken the lease yet)".to_string()
    } else {
        format!(
            "active host: none (lease {} {:.0} s ago)",
            if i.released { "released" } else { "expired" },
            secs(i.expired_ms_ago.unwrap_or(0).max(0))
        )
    };
    let tail = match (&last, i.failovers) {
        (Some(t), n) => format!("; {n} failover{}, last {t}", if n == 1 { "" } else { "s" }),
        (None, n) => format!("; {n} failovers"),
    };
    HaStatus {
        active_host: i.live().then_some(host),
        epoch: i.epoch,
        lease_age_secs: i.renewed_ms_ago.map(secs),
        failovers: i.failovers,
        last_failover: last,
        line: format!("{head}{tail}"),
    }
}

fn ago(now_ms: i64, t: i64) -> u64 {
    ((now_ms - t).max(0) / 1000) as u64
}

fn human(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// The verdict from what the journal holds.
pub fn assess(
    stats: &JournalStats,
    mailbox_ok_ms: Option<i64>,
    certificate_end: Option<i64>,
    now_ms: i64,
    journal: &str,
    warning: Duration,
    critical: Duration,
) -> Status {
    let count = |f: &dyn Fn(&str, &str) -> bool| -> u64 {
        stats
            .finished
            .iter()
            .filter(|(o, c, _)| f(o, c))
            .map(|(_, _, n)| n)
            .sum()
    };
    let confirmed = count(&|o, _| o == "confirmed");
    let rejected = count(&|o, _| o == "rejected");
    let refused = count(&|o, _| o == "refused");
    let answered = count(&|_, _| true);
    let oldest = stats.oldest_unfinished_ms.map(|t| ago(now_ms, t));
    let mailbox = mailbox_ok_ms.map(|t| ago(now_ms, t));
    let last = stats.last_update_ms.map(|t| ago(now_ms, t));
    let grade = |secs: Option<u64>, missing: Verdict| match secs {
        None => missing,
        Some(s) if s >= critical.as_secs() => Verdict::Critical,
        Some(s) if s >= warning.as_secs() => Verdict::Warning,
        Some(_) => Verdict::Ok,
    };
    let cert_days = certificate_end.map(|end| {
        end.saturating_mul(1000)
            .saturating_sub(now_ms)
            .div_euclid(86_400_000)
    });
    let cert_verdict = match cert_days {
        Some(d) if d < 0 => Verdict::Critical,
        Some(d) if d < approval_core::mailbox::oauth::EXPIRY_WARNING_DAYS => Verdict::Warning,
        _ => Verdict::Ok,
    };
    let verdict = grade(mailbox, Verdict::Critical)
        .max(grade(oldest, Verdict::Ok))
        .max(cert_verdict);
    let mut problems = Vec::new();
    match mailbox {
        None => problems.push("the mailbox has never answered".to_string()),
        Some(s) if s >= warning.as_secs() => {
            problems.push(format!("the mailbox has not answered for {}", human(s)))
        }
        _ => {}
    }
    if let Some(s) = oldest.filter(|s| *s >= warning.as_secs()) {
        problems.push(format!("a mail has waited {} unfinished", human(s)));
    }
    if let (Some(d), Some(end)) = (cert_days, certificate_end) {
        let date = chrono::DateTime::from_timestamp(end, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        match cert_verdict {
            Verdict::Critical => problems.push(format!(
                "the mailbox certificate ended on {date}: renew it (docs/graph.md)"
            )),
            Verdict::Warning => problems.push(format!(
                "the mailbox certificate ends in {d} day(s), on {date}: renew it (docs/graph.md)"
            )),
            Verdict::Ok => {}
        }
    }
    let rejected_text = if rejected > 0 {
        format!(", {rejected} rejected")
    } else {
        String::new()
    };
    let mut summary = format!(
        "{}: {answered} mails answered ({confirmed} confirmed{rejected_text}, {refused} refused), {} pending",
        match verdict {
            Verdict::Ok => "OK",
            Verdict::Warning => "WARNING",
            Verdict::Critical => "CRITICAL",
        },
        stats.unfinished
    );
    if stats.unfinished_with_faults > 0 {
        summary.push_str(&format!(
            " ({} after a fault)",
            stats.unfinished_with_faults
        ));
    }
    if stats.replies_owed > 0 {
        // Decided, the reply not sent yet: held back by the mailbox's sending pace, or waiting
        // for the mailbox (docs/watcher.md).
        summary.push_str(&format!("; {} replies owed", stats.replies_owed));
    }
    if let Some(s) = mailbox {
        summary.push_str(&format!("; mailbox answered {} ago", human(s)));
    }
    if let Some(s) = last {
        summary.push_str(&format!("; last activity {} ago", human(s)));
    }
    if !problems.is_empty() {
        summary.push_str(&format!(" — {}", problems.join("; ")));
    }
    // Which journal was read: a by-hand run with another state directory than the service's
    // shows it at once.
    summary.push_str(&format!(" [journal {journal}]"));
    Status {
        verdict,
        summary,
        journal: journal.to_string(),
        answered,
        confirmed,
        rejected,
        refused,
        pending: stats.unfinished,
        pending_after_a_fault: stats.unfinished_with_faults,
        replies_owed: stats.replies_owed,
        oldest_pending_secs: oldest,
        mailbox_answered_secs_ago: mailbox,
        last_activity_secs_ago: last,
        certificate_ends_in_days: cert_days,
        ha: None,
    }
}

pub async fn run(
    p: &Printer,
    loaded: &Loaded,
    warning: u64,
    critical: u64,
) -> anyhow::Result<Exit> {
    let warning = Duration::from_secs(warning);
    let critical = Duration::from_secs(critical.max(warning.as_secs()));
    // The PostgreSQL journal (`[journal] url`): read only, the schema checked, never created.
    let pg = loaded.config.journal.target(loaded)?;
    let (journal, shown) = match &pg {
        Some(t) => {
            let password = match &t.password {
                Some(r) => {
                    let resolver =
                        approval_core::secret::Resolver::new(loaded.config.vault.as_ref())?;
                    let pw = resolver.resolve(r).await;
                    resolver.close().await;
                    Some(pw?)
                }
                None => None,
            };
            let j = Journal::open_postgres(t, password, false)?;
            let shown = j.path().display().to_string();
            // A database the watcher has not written to yet: like a missing SQLite file.
            let j = (j.schema_version()? != Some(0)).then_some(j);
            (j, shown)
        }
        None => {
            let path = loaded.config.watcher.journal_path(loaded)?;
            let shown = path.display().to_string();
            let j = if path.exists() {
                Some(Journal::open_read_only(&path)?)
            } else {
                None
            };
            (j, shown)
        }
    };
    let status = if let Some(j) = journal {
        let stats = j.stats()?;
        let mailbox = j
            .get_value(LAST_MAILBOX_OK)?
            .and_then(|v| v.trim().parse::<i64>().ok());
        let certificate = j
            .get_value(MAILBOX_CERTIFICATE_END)?
            .and_then(|v| v.trim().parse::<i64>().ok());
        let mut s = assess(
            &stats,
            mailbox,
            certificate,
            chrono::Utc::now().timestamp_millis(),
            &shown,
            warning,
            critical,
        );
        s.ha = j.lease_info()?.as_ref().map(ha_status);
        s
    } else {
        let mut s = assess(
            &JournalStats::default(),
            None,
            None,
            0,
            &shown,
            warning,
            critical,
        );
        s.summary = format!(
            "CRITICAL: no journal at {shown}: the watcher has not run with this configuration"
        );
        s
    };
    if p.json() {
        p.json_line(&status)?;
    } else {
        p.line(&status.summary)?;
        if let Some(ha) = &status.ha {
            p.line(&ha.line)?;
        }
    }
    Ok(status.verdict.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(unfinished: u64, oldest_ms: Option<i64>) -> JournalStats {
        JournalStats {
            finished: vec![
                ("confirmed".into(), String::new(), 3),
                ("refused".into(), "self_approval".into(), 1),
                ("refused".into(), "not_approver".into(), 1),
            ],
            unfinished,
            unfinished_with_faults: unfinished,
            replies_owed: 0,
            oldest_unfinished_ms: oldest_ms,
            last_update_ms: Some(1_000_000),
        }
    }

    /// Replies held back by the sending pace show as owed; their count alone changes no
    /// verdict (the age of the oldest unfinished mail does).
    #[test]
    fn replies_owed_show_in_the_summary_and_the_json() {
        let now = 10_000_000;
        let (w, c) = (Duration::from_secs(900), Duration::from_secs(3600));
        let owed = JournalStats {
            replies_owed: 12,
            ..stats(12, Some(now - 60_000))
        };
        let s = assess(&owed, Some(now - 1000), None, now, "j", w, c);
        assert_eq!(s.verdict, Verdict::Ok, "{}", s.summary);
        assert!(s.summary.contains("; 12 replies owed;"), "{}", s.summary);
        assert_eq!(s.replies_owed, 12);
        let s = assess(&stats(0, None), Some(now - 1000), None, now, "j", w, c);
        assert!(!s.summary.contains("owed"), "{}", s.summary);
    }

    #[test]
    fn the_verdict_follows_the_mailbox_and_the_oldest_pending_mail() {
        let now = 10_000_000;
        let w = Duration::from_secs(900);
        let c = Duration::from_secs(3600);
        let s = assess(&stats(0, None), Some(now - 20_000), None, now, "j", w, c);
        assert_eq!(s.verdict, Verdict::Ok);
        assert!(
            s.summary.starts_with("OK: 5 mails answered (3 confirmed, 2 refused), 0 pending; mailbox answered 20 s ago"),
            "{}",
            s.summary
        );
        // A mail pending for 20 minutes: WARNING; for 2 hours: CRITICAL.
        let s = assess(
            &stats(1, Some(now - 1_200_000)),
            Some(now - 1000),
            None,
            now,
            "j",
            w,
            c,
        );
        assert_eq!(s.verdict, Verdict::Warning, "{}", s.summary);
        assert!(
            s.summary.contains("a mail has waited 20 min unfinished"),
            "{}",
            s.summary
        );
        let s = assess(
            &stats(1, Some(now - 7_200_000)),
            Some(now - 1000),
            None,
            now,
            "j",
            w,
            c,
        );
        assert_eq!(s.verdict, Verdict::Critical);
        // The mailbox silent for an hour, or never heard of: CRITICAL.
        let s = assess(&stats(0, None), Some(now - 3_600_000), None, now, "j", w, c);
        assert_eq!(s.verdict, Verdict::Critical);
        assert!(
            s.summary.contains("has not answered for 60 min"),
            "{}",
            s.summary
        );
        let s = assess(&stats(0, None), None, None, now, "j", w, c);
        assert_eq!(s.verdict, Verdict::Critical);
        // The journal read is named: a by-hand run on another state directory shows it.
        assert!(s.summary.ends_with(" [journal j]"), "{}", s.summary);
        assert_eq!(Verdict::Critical.exit().code(), 2);
        // The mailbox certificate: a warning within 30 days of its end, CRITICAL once past.
        let day = 86_400;
        let s = assess(
            &stats(0, None),
            Some(now - 1000),
            Some(now / 1000 + 90 * day),
            now,
            "j",
            w,
            c,
        );
        assert_eq!(
            (s.verdict, s.certificate_ends_in_days),
            (Verdict::Ok, Some(90)),
            "{}",
            s.summary
        );
        let s = assess(
            &stats(0, None),
            Some(now - 1000),
            Some(now / 1000 + 10 * day),
            now,
            "j",
            w,
            c,
        );
        assert_eq!(s.verdict, Verdict::Warning, "{}", s.summary);
        assert!(
            s.summary.contains("certificate ends in 10 day(s)"),
            "{}",
            s.summary
        );
        let s = assess(
            &stats(0, None),
            Some(now - 1000),
            Some(now / 1000 - day),
            now,
            "j",
            w,
            c,
        );
        assert_eq!(s.verdict, Verdict::Critical, "{}", s.summary);
        assert!(s.summary.contains("certificate ended on"), "{}", s.summary);
        assert_eq!(Verdict::Warning.exit().code(), 1);
    }
}

//! Hostile mails against the notice reader, timed in-process: the reader runs on every mail
//! from an authenticated sender, so its cost must stay linear in the mail's size whatever the
//! mail holds. Each mail is 10 MiB (the default `notice.max_bytes`) built to hit one costly
//! path: tens of thousands of distinct field values (the duplicate check), the same in both
//! renderings (the text/HTML merge), one very long line, deeply nested HTML.

use std::time::Instant;

use approval_core::notice::{self, NoticeConfig};
use serde::Serialize;

/// One hostile mail read.
#[derive(Debug, Clone, Serialize)]
pub struct HostileRead {
    pub name: String,
    pub bytes: usize,
    /// Median of the runs, in milliseconds.
    pub median_ms: f64,
    pub max_ms: f64,
    pub runs: usize,
    /// The refusal code (or `actionable`), to show the mail was read to the end.
    pub outcome: String,
}

const SIZE: usize = 10 * 1024 * 1024;

fn envelope(content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.com>\r\nTo: pam@example.com\r\n\
         Subject: FW: Notification: Password access request\r\n\
         Date: Tue, 4 Mar 2025 09:20:11 +0100\r\nMessage-ID: <hostile@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n{body}"
    )
    .into_bytes()
}

const FORWARD: &str = "From: CyberArk Vault <vault@example.com>\r\n\
    Sent: Tuesday, March 4, 2025 9:12 AM\r\nTo: Bob <bob@example.com>\r\n\
    Subject: Notification: Password access request\r\n\r\n\
    Requester email: alice@example.com\r\nSafe: InfraSafe\r\n";

fn distinct_ids(limit: usize) -> String {
    let mut s = String::from(FORWARD);
    let mut i = 0u64;
    while s.len() < limit {
        s.push_str(&format!("Request Id: {i}\r\n"));
        i += 1;
    }
    s
}

/// The hostile mails, each about 10 MiB.
pub fn mails() -> Vec<(&'static str, Vec<u8>)> {
    let ids = distinct_ids(SIZE - 1024);
    let half = distinct_ids(SIZE / 2 - 1024);
    let html_half = half.replace("\r\n", "<br>\r\n");
    let alternative = format!(
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{half}\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html_half}\r\n--b1--\r\n"
    );
    let long_line = format!("{FORWARD}Request Id: 1{}\r\n", "9".repeat(SIZE - 2048));
    let nested = format!(
        "<html><body>{}{}</body></html>",
        "<div>".repeat((SIZE - 4096) / 5),
        FORWARD.replace("\r\n", "<br>")
    );
    vec![
        (
            "distinct Request Id lines",
            envelope("text/plain; charset=utf-8", &ids),
        ),
        (
            "distinct ids in text and HTML",
            envelope("multipart/alternative; boundary=\"b1\"", &alternative),
        ),
        (
            "one 10 MiB line",
            envelope("text/plain; charset=utf-8", &long_line),
        ),
        ("nested HTML", envelope("text/html; charset=utf-8", &nested)),
    ]
}

/// Read each hostile mail `runs` times.
pub fn run(runs: usize) -> Vec<HostileRead> {
    let cfg = NoticeConfig {
        max_bytes: notice::MAX_MAX_BYTES,
        ..NoticeConfig::default()
    };
    mails()
        .into_iter()
        .map(|(name, raw)| {
            let mut times = Vec::new();
            let mut outcome = String::new();
            for _ in 0..runs.max(1) {
                let t = Instant::now();
                let exam = notice::examine(&raw, &cfg);
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                outcome = match exam.outcome {
                    Ok(_) => "actionable".into(),
                    Err(r) => r.reason.code().into(),
                };
            }
            HostileRead {
                name: name.into(),
                bytes: raw.len(),
                median_ms: crate::stats::median(&times),
                max_ms: times.iter().copied().fold(0.0, f64::max),
                runs: times.len(),
                outcome,
            }
        })
        .collect()
}

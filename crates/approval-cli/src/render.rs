//! Human-readable rendering of core results (the JSON forms are the core's own types).

use approval_core::approve::ApproveResult;
use approval_core::pvwa::view::{RequestView, Time};

fn when(t: &Option<Time>) -> String {
    match t {
        Some(t) => format!(
            "{} ({} UTC)",
            t.local.replace('T', " "),
            t.utc.trim_end_matches('Z').replace('T', " ")
        ),
        None => "-".into(),
    }
}

/// The multi-line block `get-inco-req` prints for a request.
pub fn request(r: &RequestView) -> String {
    let mut s = String::new();
    let mut kv = |k: &str, v: &str| s.push_str(&format!("  {k:<15} {v}\n"));
    let head = format!("Request {}\n", r.request_id);
    kv(
        "Status:",
        &format!(
            "{} (status {})",
            if r.status_title.is_empty() {
                "-"
            } else {
                &r.status_title
            },
            r.status
        ),
    );
    let requester = if r.requester_full_name.is_empty() || r.requester_full_name == r.requester {
        r.requester.clone()
    } else {
        format!("{} ({})", r.requester, r.requester_full_name)
    };
    kv("Requester:", &requester);
    kv("Safe:", &r.safe);
    let account = match (r.account.is_empty(), r.address.is_empty()) {
        (false, false) => format!("{}@{}", r.account, r.address),
        (false, true) => r.account.clone(),
        (true, false) => r.address.clone(),
        (true, true) => "-".into(),
    };
    kv("Account:", &account);
    kv(
        "Operation:",
        if r.operation.is_empty() {
            "-"
        } else {
            &r.operation
        },
    );
    kv("Reason:", if r.reason.is_empty() { "-" } else { &r.reason });
    let level2 = if r.level2_required > 0 {
        format!("; level 2 needs {}", r.level2_required)
    } else {
        String::new()
    };
    kv(
        "Level:",
        &format!(
            "{} ({} confirmation(s) left{level2})",
            r.current_level, r.confirmations_left
        ),
    );
    kv("Created:", &when(&r.created));
    kv(
        "Expires:",
        &format!(
            "{}{}",
            when(&r.expires),
            if r.expired { " — expired" } else { "" }
        ),
    );
    let window = match (&r.access_from, &r.access_to) {
        (None, None) => "none".to_string(),
        (f, t) => format!("from {} to {}", when(f), when(t)),
    };
    kv("Access window:", &window);
    match &r.ticket {
        Some(t) => kv(
            "Ticket:",
            &format!(
                "{} {}{}",
                t.system,
                t.number,
                if t.status.is_empty() {
                    String::new()
                } else {
                    format!(" (status {})", t.status)
                }
            ),
        ),
        None => kv("Ticket:", "-"),
    }
    if r.confirmed_by.is_empty() {
        kv("Confirmed by:", "nobody yet");
    } else {
        s.push_str("  Confirmed by:\n");
        for c in &r.confirmed_by {
            let members = if c.members.is_empty() {
                String::new()
            } else {
                format!(" [{}]", c.members.join(", "))
            };
            let verb = if c.action == 3 { "rejected" } else { "acted" };
            s.push_str(&format!(
                "    - {}{members} {verb} at {}{}\n",
                c.name,
                when(&c.time),
                if c.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.reason)
                }
            ));
        }
    }
    format!("{head}{s}")
}

/// One line per id for the approve tools (plus the request block after a failure).
pub fn approve(r: &ApproveResult) -> String {
    let mut s = match r.outcome {
        "confirmed" => {
            let mut s = format!(
                "confirmed {} at level {} as {}",
                r.request_id, r.level, r.account
            );
            match &r.recorded {
                Some(now) if now.waiting() => s.push_str(&format!(
                    " (PVWA now: level {}, {} confirmation(s) left)",
                    now.level, now.confirmations_left
                )),
                Some(now) => s.push_str(&format!(
                    " (PVWA now: {})",
                    one_line_title(&now.status_title, now.status)
                )),
                None => {}
            }
            if r.recorded.as_ref().is_some_and(|now| !now.as_expected) {
                s.push_str(
                    "\n  note: PVWA shows more changed than this one confirmation (another \
                     confirmer at the same time?): check who confirmed with get-inco-req",
                );
            }
            s
        }
        "rejected" => {
            let mut s = format!(
                "rejected {} at level {} as {}",
                r.request_id, r.level, r.account
            );
            if let Some(now) = &r.recorded {
                s.push_str(&format!(
                    " (PVWA now: {})",
                    one_line_title(&now.status_title, now.status)
                ));
                if !now.as_expected {
                    s.push_str(
                        "\n  note: PVWA still shows the request waiting: check it with get-inco-req",
                    );
                }
            }
            s
        }
        "would_reject" => format!(
            "would reject {} at level {} as {} with reason \"{}\"",
            r.request_id, r.level, r.account, r.reason
        ),
        "wrong_level" => format!(
            "NOT {} {}: {}",
            if r.action == "reject" {
                "REJECTED"
            } else {
                "CONFIRMED"
            },
            r.request_id,
            r.error
                .as_ref()
                .map(|e| e.message.as_str())
                .unwrap_or("it waits at another confirmation level")
        ),
        "would_confirm" => format!(
            "would confirm {} at level {} as {} with reason \"{}\"",
            r.request_id, r.level, r.account, r.reason
        ),
        _ => format!(
            "FAILED {} at level {}: {}",
            r.request_id,
            r.level,
            r.error
                .as_ref()
                .map(|e| e.message.as_str())
                .unwrap_or("unknown error")
        ),
    };
    if let Some(h) = r.error.as_ref().and_then(|e| e.hint.as_ref()) {
        s.push_str(&format!("\n  hint: {h}"));
    }
    if let Some(req) = &r.request {
        s.push('\n');
        s.push_str(request(req).trim_end());
    }
    s
}

/// A PVWA status title as one printable line, or the status number when PVWA gave no title.
fn one_line_title(title: &str, status: i64) -> String {
    let t = approval_core::text::printable(title.trim());
    if t.is_empty() {
        format!("status {status}")
    } else {
        t.chars().take(60).collect()
    }
}

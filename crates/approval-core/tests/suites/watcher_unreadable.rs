// Poison mail (issue 29, "Bounded inputs, no poison mail"): a mail that cannot be fetched or read
// is never retried forever. Through the real watcher (`Pipeline::run_once`, the `--once` pass:
// the unread listing plus every unfinished journal row) against pam-sim (PVWA and the suite's
// mailbox backend) and a real slapd: its first failure opens a journal row, each pass counts an
// attempt, and after `watcher.max_attempts` (3 here) the mail is refused with
// `unreadable_mail`, reported to the PAM team and filed in Refused; the journal (`--status`)
// and the metrics show it.

// (`watcher_env` is declared by the including file, with the backend.)

use approval_core::journal::State;
use approval_core::pipeline::Pipeline;
use watcher_env::*;

/// The watcher with `mailbox.max_mail_mib = 1`.
async fn capped(env: &Env) -> Pipeline {
    let text = config_text(env, DEFAULT_APPROVERS, "max_mail_mib = 1", "");
    let loaded =
        approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    Pipeline::new(&loaded, false).await.expect("pipeline builds")
}

/// alice's forward of request 9 with 2 MiB of text after the notice: over the 1 MiB cap.
fn oversized(mid: &str) -> Vec<u8> {
    let mut m = mail(mid, "alice@example.test", "DBSafe", 9, "dave@example.test", true);
    let line = format!("{}\r\n", "x".repeat(998));
    for _ in 0..(2 << 20) / line.len() + 1 {
        m.extend_from_slice(line.as_bytes());
    }
    m
}

#[tokio::test]
async fn a_mail_over_the_fetch_limit_is_refused_after_max_attempts_and_reported() {
    let env = env!();
    let w = capped(&env).await;
    deliver(&env, oversized("huge"));
    for attempt in 1..=2u32 {
        let (out, _) = w.run_once().await.expect("pass");
        assert_eq!(out.len(), 1, "pass {attempt}: {out:?}");
        let p = &out[0];
        let why = p.pending.as_deref().unwrap_or_else(|| panic!("pending: {p:?}"));
        assert!(
            why.contains("larger than") && why.contains("mailbox.max_mail_mib"),
            "the cap and its key are named: {why}"
        );
        assert_eq!(p.attempts, attempt, "{p:?}");
        assert_eq!(p.state, Some(State::Seen), "{p:?}");
        // A journal row from the first failure on, with the reason.
        let rows = w.journal().all().expect("journal");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].attempts, attempt);
        assert!(
            rows[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("larger than")),
            "{rows:?}"
        );
        let stats = w.journal().stats().expect("stats");
        assert_eq!((stats.unfinished, stats.unfinished_with_faults), (1, 1));
        assert!(folder(&env, "Refused").is_empty(), "filed too early");
        assert!(sent_to(&env, "pam-team@example.test").is_empty());
    }
    // The third attempt: refused, reported, filed.
    let (out, _) = w.run_once().await.expect("pass");
    assert_eq!(out.len(), 1, "{out:?}");
    done(&out[0], "refused");
    assert_eq!(out[0].reason_code.as_deref(), Some("unreadable_mail"));
    assert!(
        out[0].reason.as_deref().is_some_and(|r| r.contains("after 3 attempts")
            && r.contains("larger than")
            && r.contains("mailbox.max_mail_mib")),
        "{:?}",
        out[0].reason
    );
    assert!(confirms(&env).is_empty(), "nothing approved");
    assert_eq!(folder(&env, "Refused"), vec!["huge@corp.example.test"]);
    assert!(folder(&env, "inbox").is_empty());
    let reports = sent_to(&env, "pam-team@example.test");
    assert_eq!(reports.len(), 1, "one report to the PAM team");
    assert!(reports[0].0.contains("unreadable_mail"), "{}", reports[0].0);
    assert!(
        reports[0].1.contains("mailbox.max_mail_mib") && reports[0].1.contains("Refused"),
        "{}",
        reports[0].1
    );
    assert!(
        sent_to(&env, "alice@example.test").is_empty(),
        "its sender is unknown: no reply"
    );
    // `--status` and the metrics show it.
    let stats = w.journal().stats().expect("stats");
    assert_eq!(stats.unfinished, 0);
    assert!(
        stats
            .finished
            .contains(&("refused".into(), "unreadable_mail".into(), 1)),
        "{stats:?}"
    );
    let metrics = w.metrics().encode();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("reason=\"unreadable_mail\"") && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("service=\"mailbox\"") && l.ends_with(" 2")),
        "two faults counted: {metrics}"
    );
    // Never again: the next passes find nothing to do.
    for _ in 0..2 {
        let (out, _) = w.run_once().await.expect("pass");
        assert!(out.is_empty(), "{out:?}");
    }
    assert_eq!(sent_to(&env, "pam-team@example.test").len(), 1);
    w.close().await;
}

#[tokio::test]
async fn a_mail_within_the_limit_next_to_an_oversized_one_is_approved() {
    let env = env!();
    let w = capped(&env).await;
    deliver(&env, oversized("huge"));
    forward(&env, "fine", "alice@example.test", 9);
    let (out, _) = w.run_once().await.expect("pass");
    assert_eq!(out.len(), 2, "{out:?}");
    let fine = out
        .iter()
        .find(|p| p.pending.is_none())
        .unwrap_or_else(|| panic!("{out:?}"));
    done(fine, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}

/// pam-sim fails every fetch of this mail: EWS answers GetItem with `ErrorItemCorrupt`, Graph
/// its MIME with 500 `ErrorInternalServerError` (test controls, pam-sim's ASSUMPTIONS.md).
fn fail_fetches_of(env: &Env, message_id: &str) -> &'static str {
    match env.backend {
        Backend::Ews => {
            env.sim.state.ews.fail_fetches_of(message_id);
            "ErrorItemCorrupt"
        }
        Backend::Graph => {
            env.sim.state.graph.fail_fetches_of(message_id);
            "ErrorInternalServerError"
        }
    }
}

#[tokio::test]
async fn a_mail_whose_fetch_always_fails_is_refused_after_max_attempts_and_reported() {
    let env = env!();
    let w = pipeline(&env).await;
    let code = fail_fetches_of(&env, "<broken@corp.example.test>");
    forward(&env, "broken", "alice@example.test", 9);
    for attempt in 1..=2u32 {
        let (out, _) = w.run_once().await.expect("pass");
        assert_eq!(out.len(), 1, "pass {attempt}: {out:?}");
        let why = out[0].pending.as_deref().unwrap_or_else(|| panic!("{out:?}"));
        assert!(why.contains(code), "{why}");
        assert_eq!(out[0].attempts, attempt);
        assert_eq!(w.journal().all().expect("journal").len(), 1);
    }
    let (out, _) = w.run_once().await.expect("pass");
    assert_eq!(out.len(), 1, "{out:?}");
    done(&out[0], "refused");
    assert_eq!(out[0].reason_code.as_deref(), Some("unreadable_mail"));
    assert!(confirms(&env).is_empty(), "nothing approved");
    assert_eq!(folder(&env, "Refused"), vec!["broken@corp.example.test"]);
    let reports = sent_to(&env, "pam-team@example.test");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].1.contains(code), "{}", reports[0].1);
    let (out, _) = w.run_once().await.expect("pass");
    assert!(out.is_empty(), "never retried again: {out:?}");
    w.close().await;
}

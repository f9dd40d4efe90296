//! The long-running watch loop in-process against pam-sim (PVWA + Exchange) and a real slapd:
//! mails delivered while it runs are confirmed and filed within seconds (streaming, then
//! polling), concurrent mails about one request are handled one at a time, two copies of a
//! mail are confirmed once, a second watcher on the state directory is refused, and
//! cancelling ends the loop.
//!
//! Under faults (streaming, pending mails retried after 1 s then every 2 s): PVWA answering 503
//! for a while, PVWA down past `max_attempts`, Exchange throttling, the directory down, sends
//! refused for the mailbox's submission quota. Each asserts on PVWA's confirm log, the mail
//! sent, and the folders.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::sync::Arc;
use std::time::{Duration, Instant};

use approval_core::exit::{Classify, Exit};
use approval_core::journal::{Entry, State};
use approval_core::pipeline::{Pipeline, WatchSummary, watch, watch_loop};
use approval_core::settings::Loaded;
use pam_sim::faults::{FailNext, Faults};
use tokio_util::sync::CancellationToken;
use watcher_env::*;

/// The loop's tests run in the default approver mode (`safe-members`: PVWA's safe members, as
/// a site runs it). They race forwarders of request 7 (alice and bob at once), so PVWA here
/// lists DB_PAMapprover (alice, bob) for both levels of DBSafe ([`db_approvers_at_both_levels`]): any order
/// confirms once per person. Both then hold a level-2 right in PVWA, which would make the
/// first mail `use_the_portal`, so the loop's configuration says mail approvers hold no portal
/// right.
const LOOP_APPROVERS: &str = DEFAULT_APPROVERS;

/// The environment of the loop's tests ([`db_approvers_at_both_levels`]), or return (skip)
/// without slapd.
macro_rules! loop_env {
    () => {
        match start_edited("", db_approvers_at_both_levels).await {
            Some(e) => e,
            None => return,
        }
    };
}
const LOOP_PORTAL: &str = "portal_rights = \"none-held\"";

/// Poll `cond` until it holds or `secs` pass.
async fn eventually(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "not within {secs}s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn confirmed(env: &Env, request: &str) -> Vec<String> {
    confirms(env)
        .into_iter()
        .filter(|c| c.0 == request)
        .map(|c| c.1)
        .collect()
}

#[tokio::test]
async fn streaming_mail_delivered_while_running_is_confirmed_and_filed_then_cancel_returns() {
    let env = loop_env!();
    // A long listing interval: what arrives within seconds came through the stream.
    let text = config_text(
        &env,
        LOOP_APPROVERS,
        "",
        &format!("poll_secs = 60\nconcurrency = 4\n{LOOP_PORTAL}"),
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let p = Arc::new(Pipeline::new(&loaded, false).await.expect("pipeline"));
    let token = CancellationToken::new();
    let body = async {
        // Let the loop start and subscribe.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t0 = Instant::now();
        forward(&env, "s1", "alice@example.test", 9);
        eventually(10, "request 9 confirmed and filed", || {
            confirmed(&env, "DBSafe_9").len() == 1
                && folder(&env, "Processed").contains(&"s1@corp.example.test".to_string())
        })
        .await;
        let took = t0.elapsed();
        assert_eq!(confirmed(&env, "DBSafe_9"), vec!["svc_pam_level1"]);
        assert_eq!(
            sent_to(&env, "alice@example.test").len(),
            1,
            "one reply: {:?}",
            sent_to(&env, "alice@example.test")
        );

        // Two mails about one request at once (by alice and by bob), alice's delivered twice
        // (two copies): the request is handled one mail at a time and each forwarder's mail
        // confirms once, so the two levels go to alice and bob, never both to alice.
        let by_alice = mail(
            "c1",
            "alice@example.test",
            "DBSafe",
            7,
            requester_of(7),
            true,
        );
        deliver(&env, by_alice.clone());
        forward(&env, "c2", "bob@example.test", 7);
        deliver(&env, by_alice);
        eventually(15, "every mail filed", || folder(&env, "inbox").is_empty()).await;
        let seven: Vec<(String, String)> = confirms(&env)
            .into_iter()
            .filter(|c| c.0 == "DBSafe_7")
            .map(|c| (c.1, c.2))
            .collect();
        assert_eq!(seven.len(), 2, "{seven:?}");
        let mut accounts: Vec<&str> = seven.iter().map(|c| c.0.as_str()).collect();
        accounts.sort_unstable();
        assert_eq!(accounts, ["svc_pam_level1", "svc_pam_level2"], "{seven:?}");
        assert!(
            seven.iter().any(|c| c.1.contains("alice@example.test"))
                && seven.iter().any(|c| c.1.contains("bob@example.test")),
            "one confirm per forwarder: {seven:?}"
        );
        token.cancel();
        (took, Instant::now())
    };
    let (result, (took, cancelled_at)) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(watch_loop::run(p.clone(), token.clone()), body)
    })
    .await
    .expect("the loop returns after cancel");
    let summary = result.expect("the loop ends cleanly");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(10),
        "returned promptly after cancel"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(summary.processed >= 3, "{summary:?}");
    assert_eq!(summary.failed, 0, "{summary:?}");
    p.close().await;
}

#[tokio::test]
async fn polling_mode_finds_mail_on_the_next_poll_and_a_second_watcher_is_refused() {
    let env = loop_env!();
    let text = config_text(
        &env,
        LOOP_APPROVERS,
        "streaming = false\npoll_interval_secs = 1",
        &format!("poll_secs = 1\nconcurrency = 2\n{LOOP_PORTAL}"),
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let pid = env.dir.path().join("run/watcher.pid");
    let token = CancellationToken::new();
    let body = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        // The pid file exists while the loop runs.
        eventually(5, "pid file written", || pid.exists()).await;
        let second = watch(&loaded, None, CancellationToken::new())
            .await
            .expect_err("a second watcher on the same state directory");
        assert_eq!(second.exit(), Exit::TempFail, "{second}");
        let t0 = Instant::now();
        forward(&env, "p1", "alice@example.test", 9);
        eventually(10, "request 9 confirmed and filed", || {
            confirmed(&env, "DBSafe_9").len() == 1
                && folder(&env, "Processed").contains(&"p1@corp.example.test".to_string())
        })
        .await;
        assert!(t0.elapsed() < Duration::from_secs(8));
        token.cancel();
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(watch(&loaded, Some(&pid), token.clone()), body)
    })
    .await
    .expect("the loop returns after cancel");
    let summary = result.expect("clean end");
    assert_eq!(summary.processed, 1, "{summary:?}");
    assert!(!pid.exists(), "the pid file is removed");
    assert_eq!(confirmed(&env, "DBSafe_9"), vec!["svc_pam_level1"]);
}

#[tokio::test]
async fn a_mailbox_outage_is_ridden_out() {
    let env = loop_env!();
    let text = config_text(
        &env,
        LOOP_APPROVERS,
        "streaming = false\npoll_interval_secs = 1",
        &format!("poll_secs = 1\n{LOOP_PORTAL}"),
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let p = Arc::new(Pipeline::new(&loaded, false).await.expect("pipeline"));
    let token = CancellationToken::new();
    let body = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Exchange answers 503 to the next requests: the loop backs off and continues.
        env.sim.state.faults.set(
            "ews",
            pam_sim::faults::Faults {
                fail: Some(pam_sim::faults::FailNext {
                    status: 503,
                    count: 3,
                    body: None,
                    content_type: None,
                    headers: Default::default(),
                }),
                ..Default::default()
            },
        );
        forward(&env, "o1", "alice@example.test", 9);
        eventually(20, "confirmed after the outage", || {
            confirmed(&env, "DBSafe_9").len() == 1 && folder(&env, "inbox").is_empty()
        })
        .await;
        token.cancel();
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(watch_loop::run(p.clone(), token.clone()), body)
    })
    .await
    .expect("returns");
    result.expect("a transient fault never ends the loop");
    p.close().await;
}

// ----- under faults -----

/// Streaming with a long listing interval (what happens within seconds is the stream's and the
/// retry schedule's doing), pending mails retried after 1 s, then every 2 s.
fn fault_config(env: &Env, max_attempts: u32) -> Loaded {
    let text = config_text(
        env,
        LOOP_APPROVERS,
        "",
        &format!("poll_secs = 60\nretry_first_secs = 1\nretry_max_secs = 2\n{LOOP_PORTAL}"),
    );
    approval_core::settings::load_from_parts(
        Some(&text),
        None,
        &[(
            "APPROVAL__WATCHER__MAX_ATTEMPTS".into(),
            vec!["watcher".into(), "max_attempts".into()],
            max_attempts.to_string(),
        )],
    )
    .expect("config")
}

/// Run the loop while `body` runs (after the loop had time to subscribe), then cancel it.
async fn with_loop<F, Fut>(loaded: &Loaded, body: F) -> WatchSummary
where
    F: FnOnce(Arc<Pipeline>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let p = Arc::new(Pipeline::new(loaded, false).await.expect("pipeline"));
    let token = CancellationToken::new();
    let b = body(p.clone());
    let (result, ()) = tokio::time::timeout(Duration::from_secs(40), async {
        tokio::join!(watch_loop::run(p.clone(), token.clone()), async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            b.await;
            token.cancel();
        })
    })
    .await
    .expect("the loop returns after cancel");
    p.close().await;
    result.expect("a fault never ends the loop")
}

/// The journal row of the mail with Message-ID `<mid@corp.example.test>`.
fn row(p: &Pipeline, mid: &str) -> Option<Entry> {
    let want = format!("<{mid}@corp.example.test>");
    p.journal()
        .all()
        .expect("journal")
        .into_iter()
        .find(|e| e.message_id.as_deref() == Some(want.as_str()))
}

/// Replies to `who` about request `request` (a word of the subject): (subject, body, cc).
fn replies(env: &Env, who: &str, request: &str) -> Vec<(String, String, Vec<String>)> {
    sent_to(env, who)
        .into_iter()
        .filter(|r| r.0.split_whitespace().any(|w| w == request))
        .collect()
}

fn pvwa_503(env: &Env, path: Option<&str>, count: u32) {
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            fail: Some(FailNext {
                status: 503,
                count,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            path_contains: path.map(str::to_string),
            ..Default::default()
        },
    );
}

fn has(env: &Env, folder_name: &str, mid: &str) -> bool {
    folder(env, folder_name).contains(&format!("{mid}@corp.example.test"))
}

/// The mail is in `folder_name` and its journal row says `filed` (the move comes first, the
/// journal a moment later).
fn filed_in(env: &Env, p: &Pipeline, folder_name: &str, mid: &str) -> bool {
    has(env, folder_name, mid) && row(p, mid).is_some_and(|e| e.state == State::Filed)
}

/// The mail is pending: in the inbox, unanswered, unconfirmed, its row unfinished.
fn assert_pending(env: &Env, p: &Pipeline, mid: &str, request: &str, state: State) {
    let e = row(p, mid).expect("a journal row");
    assert_eq!(e.state, state, "{e:?}");
    assert_eq!(e.outcome, None, "not refused: {e:?}");
    assert!(e.last_error.is_some(), "{e:?}");
    assert!(confirmed(env, request).is_empty(), "{:?}", confirms(env));
    assert!(has(env, "inbox", mid), "still in the inbox");
    assert!(folder(env, "Refused").is_empty() && !has(env, "Processed", mid));
}

/// Exactly one confirm of `request` by `account`, one reply to `who`, filed in Processed.
fn assert_confirmed_once(env: &Env, mid: &str, who: &str, request: &str, account: &str) {
    assert_eq!(
        confirmed(env, request),
        vec![account.to_string()],
        "{:?}",
        confirms(env)
    );
    let r = replies(env, who, request);
    assert_eq!(r.len(), 1, "one reply: {r:?}");
    assert!(r[0].0.starts_with("Approved:"), "{r:?}");
    assert!(has(env, "Processed", mid) && !has(env, "inbox", mid));
}

#[tokio::test]
async fn pvwa_503_for_a_while_leaves_the_mail_pending_then_it_is_confirmed_and_answered_once() {
    let owned = loop_env!();
    let env = &owned;
    let loaded = fault_config(env, 20);
    let summary = with_loop(&loaded, |p| async move {
        // PVWA answers every call with 503 (the logon included) for about 3 s.
        pvwa_503(env, None, u32::MAX);
        forward(env, "f1", "alice@example.test", 9);
        eventually(8, "three failed tries on the retry schedule", || {
            row(&p, "f1").is_some_and(|e| e.attempts >= 3)
        })
        .await;
        assert_pending(env, &p, "f1", "DBSafe_9", State::Seen);
        assert!(
            sent_to(env, "alice@example.test").is_empty(),
            "no reply while pending"
        );
        env.sim.state.faults.clear();
        eventually(6, "confirmed and filed after PVWA recovered", || {
            filed_in(env, &p, "Processed", "f1")
        })
        .await;
        assert_confirmed_once(
            env,
            "f1",
            "alice@example.test",
            "DBSafe_9",
            "svc_pam_level1",
        );
        let e = row(&p, "f1").expect("row");
        assert_eq!(
            (e.state, e.outcome.as_deref()),
            (State::Filed, Some("confirmed"))
        );

        // 503 on the confirm only: the decision is recorded, the confirm fails twice (the row
        // stays `decided`), and is then sent after reading PVWA: one confirm, one reply.
        pvwa_503(env, Some("/confirm"), 2);
        forward(env, "f2", "alice@example.test", 7);
        eventually(10, "confirmed after two failed confirms", || {
            filed_in(env, &p, "Processed", "f2")
        })
        .await;
        assert_confirmed_once(
            env,
            "f2",
            "alice@example.test",
            "DBSafe_7",
            "svc_pam_level1",
        );
        let e = row(&p, "f2").expect("row");
        assert_eq!(e.attempts, 2, "{e:?}");
        let states: Vec<String> = p
            .journal()
            .history(e.row)
            .expect("history")
            .into_iter()
            .map(|h| h.1)
            .collect();
        assert_eq!(
            states,
            ["seen", "decided", "confirmed", "notified", "filed"]
        );

        // Nothing more happens later (no second confirm or reply by a late retry).
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(confirms(env).len(), 2, "{:?}", confirms(env));
        assert_eq!(sent_to(env, "alice@example.test").len(), 2);
        assert!(folder(env, "inbox").is_empty() && folder(env, "Refused").is_empty());
    })
    .await;
    assert_eq!(summary.processed, 2, "{summary:?}");
    // Pending four times and more, then answered: none is still pending at the end.
    assert_eq!(summary.pending, 0, "{summary:?}");
}

#[tokio::test]
async fn pvwa_down_past_max_attempts_refuses_gave_up_with_a_reply_and_the_pam_team_in_copy() {
    let owned = loop_env!();
    let env = &owned;
    let loaded = fault_config(env, 3);
    let summary = with_loop(&loaded, |p| async move {
        pvwa_503(env, None, u32::MAX);
        forward(env, "g1", "alice@example.test", 9);
        eventually(5, "a first failed try", || {
            row(&p, "g1").is_some_and(|e| e.attempts >= 1)
        })
        .await;
        assert_pending(env, &p, "g1", "DBSafe_9", State::Seen);
        assert!(sent_to(env, "alice@example.test").is_empty());
        eventually(10, "refused and filed after max_attempts", || {
            filed_in(env, &p, "Refused", "g1")
        })
        .await;
        // PVWA back: nothing is confirmed by the mail given up on.
        env.sim.state.faults.clear();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let e = row(&p, "g1").expect("row");
        assert_eq!(e.state, State::Filed, "{e:?}");
        assert_eq!(e.outcome.as_deref(), Some("refused"));
        assert_eq!(e.reason_code.as_deref(), Some("gave_up"));
        assert_eq!(e.attempts, 3, "{e:?}");
        assert!(
            confirms(env).is_empty(),
            "never confirmed: {:?}",
            confirms(env)
        );
        let r = replies(env, "alice@example.test", "DBSafe_9");
        assert_eq!(r.len(), 1, "one reply: {r:?}");
        assert!(r[0].0.starts_with("Failed to approve:"), "{r:?}");
        assert!(r[0].1.contains("nothing was approved"), "{}", r[0].1);
        assert_eq!(r[0].2, ["pam-team@example.test"], "the PAM team in copy");
        assert_eq!(env.sim.state.ews.sent().len(), 1, "no other mail");
        assert!(folder(env, "inbox").is_empty() && folder(env, "Processed").is_empty());
    })
    .await;
    assert_eq!(summary.processed, 1, "{summary:?}");
    // Pending twice, then given up on (answered): none is still pending at the end.
    assert_eq!(summary.pending, 0, "{summary:?}");
}

#[tokio::test]
async fn exchange_throttling_while_mails_arrive_every_mail_is_handled_exactly_once() {
    let owned = loop_env!();
    let env = &owned;
    // Every mailbox call fails on the first ErrorServerBusy (`retries = 0`): the loop, not the
    // client, rides the throttling out.
    let loaded = fault_config(env, 20);
    let summary = with_loop(&loaded, |_p| async move {
        // Each operation the loop uses answers ErrorServerBusy (both shapes) a few times.
        // (A failed listing is followed by one catch-up: one SyncFolderItems.)
        let mut injected: usize = 0;
        for (op, shape, count) in [
            ("FindItem", "fault", 1),
            ("FindItem", "message", 1),
            ("SyncFolderItems", "message", 1),
            ("GetStreamingEvents", "fault", 1),
            ("GetStreamingEvents", "message", 1),
            ("GetItem", "fault", 3),
            ("GetItem", "message", 3),
            ("CreateItem", "fault", 3),
            ("CreateItem", "message", 3),
            ("MoveItem", "fault", 3),
            ("MoveItem", "message", 3),
        ] {
            env.sim.state.ews.inject_busy(pam_sim::ews::Busy {
                count,
                back_off_ms: 200,
                shape: shape.into(),
                operation: Some(op.into()),
            });
            injected += count as usize;
        }
        // The stream reconnects into the throttling.
        env.sim.state.ews.drop_streams();
        let mails = [
            ("t1", "alice@example.test", "DBSafe", 9, "dave@example.test"),
            ("t2", "alice@example.test", "DBSafe", 7, requester_of(7)),
            ("t3", "bob@example.test", "DBSafe", 7, requester_of(7)),
            (
                "t4",
                "dave@example.test",
                "InfraSafe",
                11,
                "alice@example.test",
            ),
            (
                "t5",
                "alice@example.test",
                "DBSafe",
                8,
                "alice@example.test",
            ),
            (
                "t6",
                "alice@example.test",
                "DBSafe",
                10,
                "dave@example.test",
            ),
        ];
        for (mid, from, safe, n, requester) in mails {
            deliver(env, mail(mid, from, safe, n, requester, true));
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        eventually(25, "every mail filed", || {
            folder(env, "inbox").is_empty()
                && folder(env, "Processed").len() + folder(env, "Refused").len() == mails.len()
        })
        .await;
        let busy_answers = env
            .sim
            .state
            .ews
            .transcript()
            .iter()
            .filter(|t| t.0.ends_with("-busy") || t.0 == "response-fault-ErrorServerBusy")
            .count();
        assert_eq!(
            busy_answers, injected,
            "every injected ErrorServerBusy was answered"
        );

        let mut accounts: Vec<(String, String)> =
            confirms(env).into_iter().map(|c| (c.0, c.1)).collect();
        accounts.sort();
        assert_eq!(
            accounts,
            [
                ("DBSafe_7".to_string(), "svc_pam_level1".to_string()),
                ("DBSafe_7".into(), "svc_pam_level2".into()),
                ("DBSafe_9".into(), "svc_pam_level1".into()),
                ("InfraSafe_11".into(), "svc_pam_level1".into()),
            ],
            "each approvable mail confirmed once"
        );
        for (who, request, approved) in [
            ("alice@example.test", "DBSafe_9", true),
            ("alice@example.test", "DBSafe_7", true),
            ("bob@example.test", "DBSafe_7", true),
            ("dave@example.test", "InfraSafe_11", true),
            ("alice@example.test", "DBSafe_8", false),
            ("alice@example.test", "DBSafe_10", false),
        ] {
            let r = replies(env, who, request);
            assert_eq!(r.len(), 1, "{who} {request}: {r:?}");
            assert_eq!(r[0].0.starts_with("Approved:"), approved, "{r:?}");
        }
        assert_eq!(
            env.sim.state.ews.sent().len(),
            mails.len(),
            "one reply per mail"
        );
        let mut processed = folder(env, "Processed");
        processed.sort();
        assert_eq!(
            processed,
            ["t1", "t2", "t3", "t4"].map(|m| format!("{m}@corp.example.test"))
        );
        let mut refused = folder(env, "Refused");
        refused.sort();
        assert_eq!(
            refused,
            ["t5", "t6"].map(|m| format!("{m}@corp.example.test"))
        );

        // A lone mail whose first read is throttled (no attempt counted, nothing else going
        // on): read again on the retry schedule, not at the next listing a minute later.
        env.sim.state.ews.inject_busy(pam_sim::ews::Busy {
            count: 1,
            back_off_ms: 200,
            shape: "fault".into(),
            operation: Some("GetItem".into()),
        });
        deliver(
            env,
            mail(
                "t7",
                "alice@example.test",
                "DBSafe",
                8,
                "alice@example.test",
                true,
            ),
        );
        eventually(6, "the lone mail refused and filed", || {
            has(env, "Refused", "t7")
        })
        .await;
        assert_eq!(replies(env, "alice@example.test", "DBSafe_8").len(), 2);
        assert_eq!(confirms(env).len(), 4, "{:?}", confirms(env));
    })
    .await;
    assert_eq!(summary.processed, 7, "{summary:?}");
}

#[tokio::test]
async fn ldap_down_while_running_leaves_the_mail_pending_then_it_is_confirmed_once() {
    let owned = loop_env!();
    let env = &owned;
    let slapd = env.slapd.as_ref().expect("slapd");
    let loaded = fault_config(env, 20);
    let summary = with_loop(&loaded, |p| async move {
        // A first mail while the directory is up: the directory connection is in use.
        forward(env, "l1", "alice@example.test", 9);
        eventually(10, "the first mail confirmed", || {
            has(env, "Processed", "l1")
        })
        .await;
        slapd.stop();
        forward(env, "l2", "alice@example.test", 7);
        eventually(8, "two failed tries", || {
            row(&p, "l2").is_some_and(|e| e.attempts >= 2)
        })
        .await;
        assert_pending(env, &p, "l2", "DBSafe_7", State::Seen);
        let e = row(&p, "l2").expect("row");
        assert!(
            e.last_error
                .as_deref()
                .is_some_and(|m| m.contains("directory")),
            "{e:?}"
        );
        assert_eq!(
            sent_to(env, "alice@example.test").len(),
            1,
            "only the first reply"
        );
        slapd.restart();
        eventually(10, "confirmed once the directory is back", || {
            filed_in(env, &p, "Processed", "l2")
        })
        .await;
        assert_confirmed_once(
            env,
            "l2",
            "alice@example.test",
            "DBSafe_7",
            "svc_pam_level1",
        );
        assert_confirmed_once(
            env,
            "l1",
            "alice@example.test",
            "DBSafe_9",
            "svc_pam_level1",
        );
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(confirms(env).len(), 2, "{:?}", confirms(env));
        assert_eq!(sent_to(env, "alice@example.test").len(), 2);
        assert!(folder(env, "inbox").is_empty() && folder(env, "Refused").is_empty());
    })
    .await;
    assert_eq!(summary.processed, 2, "{summary:?}");
    assert_eq!(summary.pending, 0, "{summary:?}");
}

/// Exchange refuses `CreateItem` sends beyond its sending rate (`ErrorSubmissionQuotaExceeded`,
/// a rate lower than the watcher's pace): the refused replies are deferred, not failed (no
/// attempt counted), and go once the window has passed; every mail is confirmed, and answered
/// exactly once.
#[tokio::test]
async fn sends_refused_for_the_submission_quota_are_deferred_then_delivered_once() {
    const N: u32 = 12;
    let Some(env) = start_with(&burst_requests(N)).await else {
        return;
    };
    env.sim
        .state
        .ews
        .set_send_limit(Some(pam_sim::send_limit::SendLimit {
            messages: 5,
            window_ms: 2000,
        }));
    let text = config_text(
        &env,
        LOOP_APPROVERS,
        "send_window_secs = 2",
        &format!("poll_secs = 60\nretry_first_secs = 1\nretry_max_secs = 2\n{LOOP_PORTAL}"),
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let env = &env;
    let summary = with_loop(&loaded, |p| async move {
        for k in 100..100 + N {
            forward(env, &format!("q{k}"), "alice@example.test", k);
        }
        eventually(30, "every mail answered and filed", || {
            sent_to(env, "alice@example.test").len() >= N as usize
                && (100..100 + N).all(|k| has(env, "Processed", &format!("q{k}")))
        })
        .await;
        let text = p.metrics().encode();
        assert!(
            text.lines().any(|l| l
                .strip_prefix("pam_approval_replies_deferred_total ")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|v| v >= 1.0)),
            "deferred replies counted"
        );
        for k in 100..100 + N {
            let e = row(&p, &format!("q{k}")).expect("journal row");
            assert_eq!(e.attempts, 0, "q{k}: a deferral is no failed attempt");
        }
    })
    .await;
    assert_eq!(summary.processed, u64::from(N), "{summary:?}");
    assert!(
        env.sim.state.ews.sends_refused() > 0,
        "the server refused sends"
    );
    let replies = sent_to(env, "alice@example.test");
    assert_eq!(replies.len(), N as usize, "one reply per mail");
    for k in 100..100 + N {
        let id = format!("DBSafe_{k}");
        assert_eq!(confirmed(env, &id), vec!["svc_pam_level1"], "{id}");
        assert_eq!(
            replies
                .iter()
                .filter(|r| r.0.split_whitespace().any(|w| w == id))
                .count(),
            1,
            "replies about {id}"
        );
    }
}

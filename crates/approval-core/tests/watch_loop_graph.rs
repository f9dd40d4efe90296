//! The long-running watch loop on the Graph mailbox (Exchange Online) against pam-sim and a
//! real slapd: new mail found by the delta query within seconds, a second watcher refused, the
//! delta link kept across a restart, a lost delta state (410) and revoked tokens ridden out,
//! and throttling (429 with `Retry-After`) while mails arrive, with every mail confirmed,
//! answered and filed exactly once; a burst's replies paced within Exchange Online's sending
//! limit, and sends the server refuses for its quota deferred, then delivered once.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::sync::Arc;
use std::time::{Duration, Instant};

use approval_core::exit::{Classify, Exit};
use approval_core::pipeline::{Pipeline, WatchSummary, watch, watch_loop};
use approval_core::settings::Loaded;
use pam_sim::faults::{FailNext, Faults};
use tokio_util::sync::CancellationToken;
use watcher_env::*;

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

fn filed(env: &Env, mid: &str) -> bool {
    folder(env, "Processed").contains(&format!("{mid}@corp.example.test"))
}

/// Delta polled every second; the full listing only every minute, so what is found within
/// seconds came through the delta query. Three retries of a call, as configured by default.
fn loaded(env: &Env) -> Loaded {
    loaded_in(env, DEFAULT_APPROVERS, "")
}

/// [`loaded`] with `approvers` and more `[watcher]` keys.
fn loaded_in(env: &Env, approvers: &str, watcher_extra: &str) -> Loaded {
    let text = config_text(
        env,
        approvers,
        "poll_interval_secs = 1\nmax_back_off_secs = 2",
        &format!("poll_secs = 60\nretry_first_secs = 1\nretry_max_secs = 2\n{watcher_extra}"),
    );
    approval_core::settings::load_from_parts(
        Some(&text),
        None,
        &[(
            "APPROVAL__MAILBOX__RETRIES".into(),
            vec!["mailbox".into(), "retries".into()],
            "3".into(),
        )],
    )
    .expect("config")
}

async fn with_loop<F, Fut>(loaded: &Loaded, body: F) -> WatchSummary
where
    F: FnOnce(Arc<Pipeline>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let p = Arc::new(Pipeline::new(loaded, false).await.expect("pipeline"));
    let token = CancellationToken::new();
    let b = body(p.clone());
    let (result, ()) = tokio::time::timeout(Duration::from_secs(60), async {
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

#[tokio::test]
async fn new_mail_is_found_by_the_delta_query_and_a_second_watcher_is_refused() {
    let env = env!();
    let loaded = loaded(&env);
    let pid = env.dir.path().join("run/watcher.pid");
    let token = CancellationToken::new();
    let body = async {
        eventually(5, "pid file written", || pid.exists()).await;
        let second = watch(&loaded, None, CancellationToken::new())
            .await
            .expect_err("a second watcher on the same state directory");
        assert_eq!(second.exit(), Exit::TempFail, "{second}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t0 = Instant::now();
        forward(&env, "g1", "alice@example.test", 9);
        eventually(10, "request 9 confirmed and filed", || {
            confirmed(&env, "DBSafe_9").len() == 1 && filed(&env, "g1")
        })
        .await;
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(6), "took {took:?}");
        eventually(5, "the reply", || {
            sent_to(&env, "alice@example.test").len() == 1
        })
        .await;
        token.cancel();
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(watch(&loaded, Some(&pid), token.clone()), body)
    })
    .await
    .expect("the loop returns after cancel");
    assert_eq!(result.expect("clean end").processed, 1);
    assert_eq!(confirmed(&env, "DBSafe_9"), vec!["svc_pam_level1"]);
    // Filed as read, nothing left unread in the inbox.
    let folders = env.sim.state.graph.folders(BOX).expect("mailbox");
    let processed = folders
        .iter()
        .find(|f| f.0 == "Processed")
        .expect("Processed");
    assert_eq!((processed.1, processed.2), (1, 0), "one mail, read");
    // The delta link is kept for the next start.
    let state =
        std::fs::read_to_string(env.dir.path().join("state/mailbox.sync")).expect("sync state");
    assert!(
        state.starts_with(&env.sim.url()) && state.contains("deltatoken"),
        "{state}"
    );
}

#[tokio::test]
async fn a_lost_delta_state_and_a_revoked_token_are_ridden_out() {
    let env = env!();
    let loaded = loaded(&env);
    let env = &env;
    let summary = with_loop(&loaded, |p| async move {
        forward(env, "r1", "alice@example.test", 9);
        eventually(10, "first mail", || filed(env, "r1")).await;
        let renewals = |text: &str| -> f64 {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(
                        "pam_approval_sign_ins_total{service=\"mailbox\",kind=\"oauth_token\"} ",
                    )
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let before = renewals(&p.metrics().encode());
        assert!(before >= 1.0, "the first token is counted");
        // The server forgets every delta state (410), and every token.
        env.sim.state.graph.expire_delta();
        env.sim.state.graph.expire_tokens();
        forward(env, "r2", "bob@example.test", 7);
        eventually(15, "second mail after the reset", || filed(env, "r2")).await;
        // The renewed token shows in the metrics.
        assert!(renewals(&p.metrics().encode()) > before);
    })
    .await;
    assert_eq!(summary.processed, 2, "{summary:?}");
    assert_eq!(confirmed(env, "DBSafe_9").len(), 1);
    assert_eq!(confirmed(env, "DBSafe_7").len(), 1);
    // A new token was asked for once the old ones were gone.
    assert!(env.sim.state.graph.stats().granted_certificate >= 2);
}

#[tokio::test]
async fn mail_that_arrived_while_the_watcher_was_down_is_caught_up() {
    let env = env!();
    let loaded = loaded(&env);
    with_loop(&loaded, |_p| async {
        forward(&env, "c1", "alice@example.test", 9);
        eventually(10, "first mail", || filed(&env, "c1")).await;
    })
    .await;
    // Down: a mail arrives.
    forward(&env, "c2", "bob@example.test", 7);
    let summary = with_loop(&loaded, |_p| async {
        eventually(10, "the mail that came while down", || filed(&env, "c2")).await;
    })
    .await;
    assert_eq!(summary.processed, 1, "{summary:?}");
    assert_eq!(confirmed(&env, "DBSafe_7"), vec!["svc_pam_level1"]);
    assert_eq!(confirmed(&env, "DBSafe_9").len(), 1, "not again");
}

#[tokio::test]
async fn throttling_while_mails_arrive_every_mail_is_handled_exactly_once() {
    // The default mode, with PVWA listing DB_PAMapprover (alice, bob) for both levels of
    // DBSafe and mail approvers holding no portal right: alice and bob race on request 7, and
    // any order confirms each level once.
    let Some(env) = start_edited("", db_approvers_at_both_levels).await else {
        return;
    };
    let loaded = loaded_in(&env, DEFAULT_APPROVERS, "portal_rights = \"none-held\"");
    let mids: Vec<String> = (0..6).map(|n| format!("t{n}")).collect();
    let summary = with_loop(&loaded, |_p| async {
        // The next calls to Graph are refused with 429 and Retry-After: 1.
        env.sim.state.faults.set(
            "graph",
            Faults {
                fail: Some(FailNext {
                    status: 429,
                    count: 6,
                    body: Some(
                        r#"{"error":{"code":"TooManyRequests","message":"Please retry again later."}}"#
                            .into(),
                    ),
                    content_type: Some("application/json".into()),
                    headers: [("Retry-After".to_string(), "1".to_string())].into(),
                }),
                path_contains: Some("/v1.0/".into()),
                ..Default::default()
            },
        );
        for (n, mid) in mids.iter().enumerate() {
            // Requests 9 and 7 at level 1, by alice (bob for the second of each pair).
            let who = if n % 2 == 0 { "alice@example.test" } else { "bob@example.test" };
            forward(&env, mid, who, if n < 3 { 9 } else { 7 });
        }
        eventually(30, "every mail filed", || {
            mids.iter().all(|m| {
                folder(&env, "Processed").contains(&format!("{m}@corp.example.test"))
                    || folder(&env, "Refused").contains(&format!("{m}@corp.example.test"))
            })
        })
        .await;
        eventually(10, "every mail answered", || sent_count(&env) >= mids.len()).await;
    })
    .await;
    assert_eq!(summary.processed as usize, mids.len(), "{summary:?}");
    assert_eq!(sent_count(&env), mids.len(), "one reply per mail");
    // Request 9 needs one confirmation (level 1 only), request 7 two (levels 1 and 2): each
    // confirmation once, by the level's account.
    assert_eq!(confirmed(&env, "DBSafe_9"), vec!["svc_pam_level1"]);
    assert_eq!(
        confirmed(&env, "DBSafe_7"),
        vec!["svc_pam_level1", "svc_pam_level2"]
    );
    assert!(folder(&env, "inbox").is_empty(), "inbox empty");
}

/// The watcher on this suite's Graph mailbox with `mailbox_extra` (the pace) in `[mailbox]`.
fn loaded_paced(env: &Env, mailbox_extra: &str) -> Loaded {
    let text = config_text(
        env,
        DEFAULT_APPROVERS,
        &format!("poll_interval_secs = 1\nmax_back_off_secs = 30\n{mailbox_extra}"),
        "poll_secs = 60\nretry_first_secs = 1\nretry_max_secs = 2",
    );
    approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config")
}

/// A counter's value in the metrics text (0 when absent).
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// After a burst of `n` mails (alice approving requests 100..), each reply went exactly once.
fn each_reply_once(env: &Env, n: u32) {
    let replies = sent_to(env, "alice@example.test");
    assert_eq!(replies.len(), n as usize, "one reply per mail");
    for k in 100..100 + n {
        let id = format!("DBSafe_{k}");
        let to_this = replies
            .iter()
            .filter(|r| r.0.split_whitespace().any(|w| w == id))
            .count();
        assert_eq!(to_this, 1, "replies about {id}");
        assert_eq!(confirmed(env, &id), vec!["svc_pam_level1"], "{id}");
    }
    for k in 100..100 + n {
        assert!(filed(env, &format!("b{k}")), "b{k} filed");
    }
}

/// Exchange Online's 30 sends a minute, with the window shortened to 6 s on both sides: a
/// burst of 40 approvable mails is confirmed at full speed while the replies go at the pace,
/// so the server never refuses a send, and every reply goes exactly once. (Without the pace,
/// `max_sends_per_minute = 0`, the server refuses sends here.)
#[tokio::test]
async fn a_burst_is_confirmed_at_once_and_its_replies_paced_within_the_sending_limit() {
    const N: u32 = 40;
    let Some(env) = start_with(&burst_requests(N)).await else {
        return;
    };
    env.sim
        .state
        .graph
        .set_send_limit(Some(pam_sim::send_limit::SendLimit {
            messages: 30,
            window_ms: 6000,
        }));
    let loaded = loaded_paced(&env, "max_sends_per_minute = 30\nsend_window_secs = 6");
    let env = &env;
    let mut owed_when_confirmed = 0;
    let mut deferred = 0.0;
    let t0 = Instant::now();
    let summary = with_loop(&loaded, |p| {
        let owed = &mut owed_when_confirmed;
        let deferred = &mut deferred;
        async move {
            for k in 100..100 + N {
                forward(env, &format!("b{k}"), "alice@example.test", k);
            }
            eventually(30, "every request confirmed", || {
                confirms(env).len() >= N as usize
            })
            .await;
            // The confirmations did not wait for the replies: some are still owed.
            *owed = N as usize - sent_count(env);
            eventually(40, "every mail answered and filed", || {
                sent_count(env) >= N as usize
                    && (100..100 + N).all(|k| filed(env, &format!("b{k}")))
            })
            .await;
            *deferred = counter(
                &p.metrics().encode(),
                "pam_approval_replies_deferred_total ",
            );
        }
    })
    .await;
    assert_eq!(summary.processed, u64::from(N), "{summary:?}");
    each_reply_once(env, N);
    assert_eq!(
        env.sim.state.graph.stats().sends_refused,
        0,
        "the server never had to refuse a send"
    );
    assert!(
        owed_when_confirmed > 0,
        "replies still owed when every request was confirmed"
    );
    assert!(deferred >= 1.0, "the pace held replies back ({deferred})");
    // Thirty in the first window, the rest only in the next.
    assert!(t0.elapsed() >= Duration::from_secs(6), "{:?}", t0.elapsed());
}

/// The server's limit is lower than the configured pace: the sends it refuses (429,
/// `ErrorSubmissionQuotaExceeded`, `Retry-After`) are deferred, not failed, and go once the
/// server allows; every reply goes exactly once, none is lost, and no attempt is counted.
#[tokio::test]
async fn sends_the_server_refuses_for_its_quota_are_deferred_then_delivered_once() {
    const N: u32 = 20;
    let Some(env) = start_with(&burst_requests(N)).await else {
        return;
    };
    env.sim
        .state
        .graph
        .set_send_limit(Some(pam_sim::send_limit::SendLimit {
            messages: 8,
            window_ms: 3000,
        }));
    let loaded = loaded_paced(&env, "max_sends_per_minute = 30\nsend_window_secs = 3");
    let env = &env;
    let mut deferred = 0.0;
    let mut faults = String::new();
    let summary = with_loop(&loaded, |p| {
        let deferred = &mut deferred;
        let faults = &mut faults;
        async move {
            for k in 100..100 + N {
                forward(env, &format!("b{k}"), "alice@example.test", k);
            }
            eventually(45, "every mail answered and filed", || {
                sent_count(env) >= N as usize
                    && (100..100 + N).all(|k| filed(env, &format!("b{k}")))
            })
            .await;
            let text = p.metrics().encode();
            *deferred = counter(&text, "pam_approval_replies_deferred_total ");
            *faults = text
                .lines()
                .filter(|l| l.starts_with("pam_approval_faults_total{"))
                .collect::<Vec<_>>()
                .join("\n");
            // No attempt was counted against a deferred reply.
            for row in 1..=i64::from(N) {
                let e = p.journal().get(row).expect("journal").expect("row");
                assert_eq!(e.attempts, 0, "journal row {row}: {e:?}");
            }
        }
    })
    .await;
    assert_eq!(summary.processed, u64::from(N), "{summary:?}");
    each_reply_once(env, N);
    assert!(
        env.sim.state.graph.stats().sends_refused > 0,
        "the server refused sends for its quota"
    );
    assert!(deferred >= 1.0, "deferred replies counted ({deferred})");
    assert!(faults.is_empty(), "a deferral is not a fault: {faults}");
}

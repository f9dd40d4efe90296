//! The long-running watch loop in-process against pam-sim (PVWA + Exchange) and a real slapd:
//! mails delivered while it runs are confirmed and filed within seconds (streaming, then
//! polling), concurrent mails about one request are handled one at a time, two copies of a
//! mail are confirmed once, a second watcher on the state directory is refused, and
//! cancelling ends the loop.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use approval_core::exit::{Classify, Exit};
use approval_core::pipeline::{Pipeline, watch, watch_loop};
use tokio_util::sync::CancellationToken;
use watcher_env::*;

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
    let env = env!();
    // A long listing interval: what arrives within seconds came through the stream.
    let text = config_text(&env, "static", "", "poll_secs = 60\nconcurrency = 4");
    let loaded = approval_core::config::load_from_parts(Some(&text), None, &[]).expect("config");
    let p = Arc::new(Pipeline::new(&loaded, false).await.expect("pipeline"));
    let token = CancellationToken::new();
    let body = async {
        // Let the loop start and subscribe.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t0 = Instant::now();
        deliver(
            &env,
            mail(
                "s1",
                "alice@example.test",
                "DBSafe",
                9,
                "dave@example.test",
                true,
            ),
        );
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
            "dave@example.test",
            true,
        );
        deliver(&env, by_alice.clone());
        deliver(
            &env,
            mail(
                "c2",
                "bob@example.test",
                "DBSafe",
                7,
                "dave@example.test",
                true,
            ),
        );
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
    let env = env!();
    let text = config_text(
        &env,
        "static",
        "streaming = false\npoll_interval_secs = 1",
        "poll_secs = 1\nconcurrency = 2",
    );
    let loaded = approval_core::config::load_from_parts(Some(&text), None, &[]).expect("config");
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
        deliver(
            &env,
            mail(
                "p1",
                "alice@example.test",
                "DBSafe",
                9,
                "dave@example.test",
                true,
            ),
        );
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
    let env = env!();
    let text = config_text(
        &env,
        "static",
        "streaming = false\npoll_interval_secs = 1",
        "poll_secs = 1",
    );
    let loaded = approval_core::config::load_from_parts(Some(&text), None, &[]).expect("config");
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
        deliver(
            &env,
            mail(
                "o1",
                "alice@example.test",
                "DBSafe",
                9,
                "dave@example.test",
                true,
            ),
        );
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

//! `Pipeline::process` end to end on the EWS mailbox (Exchange Server): the suite is
//! suites/watcher_pipeline.rs, shared with watcher_pipeline_graph.rs (Exchange Online).

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watcher_pipeline.rs");

/// Behind a load balancer that needs its cookie back on every call (pam-sim's `sticky_cookie`;
/// off by default, as a real PVWA needs none), the watcher keeps each session's cookie and
/// confirms as it does without one.
#[tokio::test]
async fn behind_a_sticky_load_balancer_the_session_keeps_its_cookie() {
    let Some(env) = watcher_env::start_edited("", |s| s.pvwa.sticky_cookie = true).await else {
        return;
    };
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail("l1", "bob@example.test", "DBSafe", 7, requester_of(7), true),
    );
    let p = w.process(&m).await.expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("DBSafe_7", "svc_pam_level1")
    );
    let st = env.sim.state.pvwa.stats();
    assert_eq!(st.cookie_refused, 0, "{st:?}");
    assert!(st.logons >= 2, "lookup and level 1 signed in: {st:?}");
    w.close().await;
}

//! The single-request tools end to end against pam-sim (HTTPS, its CA as the bundle), as a new
//! user would run them from the README, on a self-hosted PVWA (logon, session tokens): approve
//! level 1, see level 2, approve level 2, look up who confirmed and when, pipe
//! `get-inco-req --waiting` into `first-level-approve -`, failures and their exit codes, and no
//! secret in `-vvv` output. The suite is suites/pvwa_tools.rs, shared with
//! pvwa_tools_privilege_cloud.rs.

/// The PVWA pam-sim plays for this suite.
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/pvwa_tools.rs");

#[test]
fn help_and_version_describe_the_tools() {
    for tool in [
        "first-level-approve",
        "second-level-approve",
        "get-inco-req",
        "check-approval-request",
    ] {
        let o = std::process::Command::new(bin(tool))
            .arg("--help")
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0));
        let text = out(&o);
        assert!(text.contains(&format!("Usage: {tool}")), "{text}");
        assert!(
            text.contains("Examples:")
                && text.contains("Exit codes:")
                && text.contains(" 78  configuration error"),
            "{text}"
        );
        let o = std::process::Command::new(bin(tool))
            .arg("--version")
            .output()
            .expect("run");
        assert!(out(&o).starts_with(tool), "{}", out(&o));
    }
    let o = std::process::Command::new(bin("first-level-approve"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "usage error without ids");
}

/// PVWA drops the session in the middle of a batch (a 401 on the second request): the tool
/// logs on again once, as the watcher does, confirms both requests, and logs off the session
/// it ends with. (Self-hosted only: a Privilege Cloud session renews its own token.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_dropped_mid_batch_logs_on_again_once() {
    let env = start().await;
    env.sim.state.faults.set(
        "pvwa",
        pam_sim::faults::Faults {
            fail: Some(pam_sim::faults::FailNext {
                status: 401,
                count: 1,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            path_contains: Some("infrasafe_13".into()), // pam-sim matches the path in lower case
            ..Default::default()
        },
    );
    let o = tool(
        &env,
        "first-level-approve",
        &["InfraSafe_12", "InfraSafe_13"],
        "",
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(text.contains("confirmed InfraSafe_12 at level 1"), "{text}");
    assert!(text.contains("confirmed InfraSafe_13 at level 1"), "{text}");
    let actions = env.sim.state.pvwa.actions();
    assert_eq!(actions.len(), 2, "{actions:?}");
    let st = env.sim.state.pvwa.stats();
    // Two logons: the first, and once after the 401. The session in use at the end is logged
    // off; the one PVWA dropped gets a best-effort logoff in the background (pam-sim still
    // knows it, as its 401 was injected), which may or may not land before the tool exits.
    assert_eq!(st.logons, 2, "{st:?}");
    assert!(st.logoffs >= 1, "{st:?}");
}

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

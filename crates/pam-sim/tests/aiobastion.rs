//! aiobastion, an independent CyberArk client, at its default settings against the PVWA
//! stand-in: logon, safe members, the incoming requests, confirm one, logoff. It keeps no
//! load-balancer cookie after logon, so this also checks that stickiness is off by default.
//!
//! Needs the test venv (`$PAMTEST_VENV`, made by scripts/install-test-deps.sh). Without it the
//! test says so and passes, unless `PAMTEST_REQUIRE_SERVERS=1`.

#[path = "support/venv.rs"]
mod venv;

use std::path::PathBuf;

use pam_sim::{Scenario, Sim, SimOptions};

const SCENARIO: &str = r#"
[pvwa]
[[pvwa.users]]
name = "svc_l1"
password = "pw-l1"
groups = ["Infra_L1"]
[[pvwa.safes]]
name = "InfraSafe"
members = [{ name = "Infra_L1", level1 = true, view_members = true }, { name = "M1" }]
[[pvwa.requests]]
number = 7
safe = "InfraSafe"
requester = "alice"
levels = [1, 0]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn aiobastion_logs_on_lists_and_confirms_at_its_defaults() {
    let required = venv::required();
    let Some(py) = venv::program("python", "aiobastion conformance") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Sim::start(
        Scenario::from_toml(SCENARIO).expect("scenario"),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("pam-sim starts");
    let host = sim
        .url()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/aiobastion_flow.py");
    let out = tokio::process::Command::new(&py)
        .arg(&script)
        .arg(&host)
        .arg(sim.ca_cert.as_ref().expect("https"))
        .args(["svc_l1", "pw-l1", "InfraSafe", "InfraSafe_7"])
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'aiobastion'") && !required {
        eprintln!("SKIPPED aiobastion conformance: aiobastion is not installed in the venv");
        return;
    }
    assert!(
        out.status.success(),
        "aiobastion failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("AIOBASTION FLOW OK"), "{stdout}");
    assert!(
        stdout.contains("'Infra_L1'") && stdout.contains("'M1'"),
        "{stdout}"
    );
    assert!(stdout.contains("incoming: ['InfraSafe_7']"), "{stdout}");

    // What aiobastion did is visible in pam-sim's state.
    let actions = sim.state.pvwa.actions();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(
        (actions[0].request_id.as_str(), actions[0].user.as_str()),
        ("InfraSafe_7", "svc_l1")
    );
    assert_eq!(
        (actions[0].action.as_str(), actions[0].reason.as_str()),
        ("confirm", "aiobastion")
    );
    let r = sim.state.pvwa.request("InfraSafe_7").expect("request");
    assert_eq!(r["Status"], 2, "confirmed: {r}");
    let stats = sim.state.pvwa.stats();
    assert_eq!((stats.logons, stats.logoffs, stats.open), (1, 1, 0));
    assert_eq!(stats.cookie_refused, 0);
}

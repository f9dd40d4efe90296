//! Fidelity: ServiceNow's own Python client, pysnc (pinned in scripts/deps/requirements-test.txt),
//! reads pam-sim's ServiceNow stand-in over HTTPS with the test CA — a query with paging, display
//! values, dot-walks, reads by sys_id and by number, OAuth client credentials, and the 401/403
//! answers it turns into its own exceptions.
//!
//! Needs the test venv ($PAMTEST_VENV, default `.venv-test` at the repository root). Without it
//! the test skips with a message, unless PAMTEST_REQUIRE_SERVERS=1 (scripts/test.sh), where it fails.

use std::path::PathBuf;
use std::process::Command;

use pam_sim::servicenow::ServiceNowSim;
use pam_sim::{Scenario, Sim, SimOptions};

const DEMO_SCENARIO: &str = include_str!("../../../examples/demo/ticketing-scenario.toml");

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// A skipped test says so on stderr.
#[allow(clippy::print_stderr)]
fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("PAMTEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-test"));
    let py = venv.join("bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import pysnc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    let msg = format!(
        "pysnc is not installed in {}: run scripts/install-test-deps.sh",
        venv.display()
    );
    if std::env::var("PAMTEST_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("skipping the pysnc fidelity test: {msg}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pysnc_reads_the_servicenow_stand_in() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(
        Scenario::from_toml(DEMO_SCENARIO).expect("scenario"),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("sim");
    let script = repo_root().join("crates/pam-sim/tests/fidelity/pysnc_read.py");
    let mut cmd = Command::new(py);
    cmd.arg(script)
        .arg(sim.url())
        .env("REQUESTS_CA_BUNDLE", sim.ca_cert.as_ref().expect("https"))
        .env_remove("CURL_CA_BUNDLE")
        .env("PYSNC_USER", "svc_ticketing")
        .env("PYSNC_PASSWORD", "Ticketing-Demo-Pass")
        .env(
            "PYSNC_SYS_ID",
            ServiceNowSim::sys_id_of("incident", "INC0010001"),
        );
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("python"))
        .await
        .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pysnc failed:\n{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");

    // Active incidents starting INC001, in number order, read two by two.
    let numbers: Vec<&str> = v["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .map(|r| r["number"].as_str().expect("number"))
        .collect();
    assert_eq!(
        numbers,
        [
            "INC0010001",
            "INC0010002",
            "INC0010003",
            "INC0010007",
            "INC0010008",
            "INC0010009"
        ]
    );
    assert_eq!(v["incident_count"], 6);
    assert_eq!(v["incidents"][0]["state"], "2");
    assert_eq!(v["incidents"][0]["state_label"], "In Progress");
    assert_eq!(v["incidents"][2]["state_label"], "On Hold");
    assert_eq!(v["incidents"][0]["caller"], "alice");
    assert_eq!(v["incidents"][3]["caller"], "dave");
    assert_eq!(v["incidents"][4]["caller"], "");
    let pages: Vec<String> = sim
        .state
        .servicenow
        .requests()
        .iter()
        .filter(|r| r.path == "/api/now/table/incident" && r.query.contains("STARTSWITH"))
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(pages.len(), 3, "three pages of two: {pages:#?}");
    for (n, q) in pages.iter().enumerate() {
        assert!(q.contains(&format!("sysparm_offset={}", n * 2)), "{q}");
        assert!(q.contains("sysparm_display_value=all"), "{q}");
        assert!(q.contains("sysparm_limit=2"), "{q}");
    }

    // Approved, scheduled changes in descending number order, with display values.
    let changes = v["changes"].as_array().expect("changes");
    let numbers: Vec<&str> = changes
        .iter()
        .map(|c| c["number"].as_str().expect("n"))
        .collect();
    assert_eq!(
        numbers,
        [
            "CHG0030014",
            "CHG0030013",
            "CHG0030012",
            "CHG0030011",
            "CHG0030010",
            "CHG0030001"
        ]
    );
    let c = &changes[5];
    assert_eq!(c["state_label"], "Scheduled");
    assert_eq!(c["approval"], "approved");
    assert_eq!(c["approval_label"], "Approved");
    assert_eq!(c["requested_by_display"], "Alice Admin");
    assert_eq!(
        c["requested_by_sys_id"],
        ServiceNowSim::sys_id_of("sys_user", "alice")
    );
    // Raw dates are UTC; display dates are in the scenario's zone (UTC-8).
    let start = c["start_epoch"].as_i64().expect("epoch");
    let raw = chrono::DateTime::from_timestamp(start, 0).expect("time");
    assert_eq!(c["start_raw"], raw.format("%Y-%m-%d %H:%M:%S").to_string());
    let shown = raw - chrono::Duration::hours(8);
    assert_eq!(
        c["start_display"],
        shown.format("%Y-%m-%d %H:%M:%S").to_string()
    );
    assert!(
        (start - chrono::Utc::now().timestamp() + 3600).abs() < 120,
        "{start}"
    );
    assert_eq!(changes[2]["start_raw"], "", "CHG0030012 has no window");

    assert_eq!(v["get_by_sys_id"], "INC0010001");
    assert_eq!(
        v["get_by_number"],
        ServiceNowSim::sys_id_of("change_request", "CHG0030001")
    );
    assert_eq!(v["get_missing"], false);
    assert_eq!(v["oauth_rows"], 1);
    assert_eq!(v["wrong_password"], "AuthenticationException");
    assert_eq!(v["no_role"], "RoleException");
}

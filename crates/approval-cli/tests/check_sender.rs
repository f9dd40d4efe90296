//! `check-approval-request --check-sender` end to end: the binary against a real slapd (and, in
//! mode `safe-members`, pam-sim's PVWA for the safe members).

#[path = "../../approval-core/tests/support/slapd.rs"]
mod slapd;

use std::path::Path;

use assert_cmd::Command;
use slapd::{Opts, Slapd};

const STATIC_TABLE: &str = r#"approvers = "static"
[[directory.static]]
group = "DB_PAMapprover"
level = 1
safes = ["DB*"]
[[directory.static]]
group = "Infra_PAMapprover"
level = 1
safes = ["Infra*"]
"#;

fn directory_section(url: &str, ca: &Path, extra: &str) -> String {
    format!(
        r#"
[directory]
url = "{url}"
bind_dn = "cn=svc_pamtool,ou=Users,dc=example,dc=test"
bind_password = "env:PAMTEST_LDAP_PW"
base_dn = "dc=example,dc=test"
ca_bundle = "{}"
connect_timeout_secs = 3
{extra}
"#,
        ca.display()
    )
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(&p, text).expect("write config");
    p
}

fn check(config: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("check-approval-request")
        .expect("binary")
        .arg("--config")
        .arg(config)
        .arg("--check-sender")
        .args(args)
        .env("PAMTEST_LDAP_PW", "svcpw")
        .env("PAMTEST_LOOKUP_PW", "Lookup-Test-Pass")
        .env_remove("APPROVAL_CONFIG")
        .output()
        .expect("run")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

macro_rules! server {
    () => {
        match Slapd::start(Opts::default()) {
            Some(s) => s,
            None => return,
        }
    };
}

#[test]
fn static_mode_explains_grants_and_refusals() {
    let s = server!();
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write_config(
        tmp.path(),
        &directory_section(&s.url(), &s.ca, STATIC_TABLE),
    );

    let out = check(
        &cfg,
        &["bob@example.test", "--safe", "DBSafe", "--level", "1"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("MAY APPROVE"), "{stdout}");
    assert!(
        stdout.contains("bob -> DB_Team -> DB_PAMapprover"),
        "{stdout}"
    );
    assert!(stdout.contains("static rule 1"), "{stdout}");

    let out = check(
        &cfg,
        &["carol@example.test", "--safe", "DBSafe", "--level", "1"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("MAY NOT APPROVE"), "{stdout}");
    assert!(stdout.contains("not a member"), "{stdout}");

    // An Infra approver does not approve a DB safe, nor anyone at a level with no rule.
    let out = check(
        &cfg,
        &["dave@example.test", "--safe", "DBSafe", "--level", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let out = check(
        &cfg,
        &["dave@example.test", "--safe", "InfraSafe", "--level", "1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = check(
        &cfg,
        &["dave@example.test", "--safe", "InfraSafe", "--level", "2"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("no group approves"),
        "{}",
        text(&out.stdout)
    );

    // The bind password never shows, even in trace logs.
    let out = check(
        &cfg,
        &[
            "alice@example.test",
            "--safe",
            "DBSafe",
            "--level",
            "1",
            "-vvv",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("bound to"), "trace logs expected: {err}");
    assert!(!err.contains("svcpw"), "password in logs: {err}");
}

#[test]
fn json_output_is_one_stable_object() {
    let s = server!();
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write_config(
        tmp.path(),
        &directory_section(&s.url(), &s.ca, STATIC_TABLE),
    );
    let out = check(
        &cfg,
        &[
            "alice@example.test",
            "--safe",
            "DBSafe",
            "--level",
            "1",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["may_approve"], true);
    assert_eq!(v["refusal"], serde_json::Value::Null);
    assert_eq!(v["safe"], "DBSafe");
    assert_eq!(v["level"], 1);
    assert_eq!(v["user"]["sam_account_name"], "alice");
    assert_eq!(v["granted_by"]["group"], "DB_PAMapprover");
    assert_eq!(
        v["granted_by"]["path_names"],
        serde_json::json!(["alice", "DB_PAMapprover"])
    );
    assert_eq!(v["granted_by"]["strategy"], "recursive");
    assert_eq!(v["strategy"], "recursive");
    assert!(
        v["server"]
            .as_str()
            .expect("server")
            .starts_with("ldap://127.0.0.1:")
    );

    let out = check(
        &cfg,
        &[
            "shared@example.test",
            "--safe",
            "DBSafe",
            "--level",
            "1",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["may_approve"], false);
    assert_eq!(v["refusal"], "ambiguous_sender");
}

#[test]
fn directory_down_exits_69_naming_the_server() {
    let port = slapd::free_port();
    let tmp = tempfile::tempdir().expect("tmp");
    let ca = tmp.path().join("ca.pem");
    std::fs::write(
        &ca,
        include_str!("../../approval-core/tests/fixtures/any-ca.pem"),
    )
    .expect("ca");
    let cfg = write_config(
        tmp.path(),
        &directory_section(&format!("ldap://127.0.0.1:{port}"), &ca, STATIC_TABLE),
    );
    let out = check(
        &cfg,
        &["alice@example.test", "--safe", "DBSafe", "--level", "1"],
    );
    assert_eq!(out.status.code(), Some(69), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "no verdict on stdout");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("ldap://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let out = check(
        &cfg,
        &[
            "alice@example.test",
            "--safe",
            "DBSafe",
            "--level",
            "1",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(69));
    let err = text(&out.stderr);
    let last = err.lines().last().expect("an error line");
    let e: serde_json::Value = serde_json::from_str(last).expect("json error");
    assert_eq!(e["error"]["kind"], "unavailable");
}

#[test]
fn configuration_errors_exit_78_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write_config(tmp.path(), "[log]\n");
    let out = check(
        &cfg,
        &["alice@example.test", "--safe", "DBSafe", "--level", "1"],
    );
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("directory"),
        "{}",
        text(&out.stderr)
    );
    let cfg = write_config(
        tmp.path(),
        &directory_section(
            "ldap://dc1.example.test",
            Path::new("/nonexistent.pem"),
            "starttls = false\nallow_plain = true\n",
        ),
    );
    let out = check(
        &cfg,
        &["alice@example.test", "--safe", "DBSafe", "--level", "1"],
    );
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("directory.url"),
        "{}",
        text(&out.stderr)
    );
}

const SCENARIO: &str = r#"
[[pvwa.users]]
name = "svc_pam_lookup"
password = "Lookup-Test-Pass"
groups = ["PAM_Readers"]

[[pvwa.safes]]
name = "DBSafe"
members = [
  { name = "DB_PAMapprover@example.test", type = "group", level1 = true },
  { name = "Infra_PAMapprover@other.example", type = "group", level1 = true },
  { name = "PAM_L2@example.test", type = "group", level2 = true },
  { name = "PAM_Readers", type = "group" },
]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_members_mode_reads_approver_groups_from_pvwa() {
    let s = server!();
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = pam_sim::Sim::start(
        pam_sim::Scenario::from_toml(SCENARIO).expect("scenario"),
        pam_sim::SimOptions {
            tls_dir: Some(tmp.path().join("sim-tls")),
            ..pam_sim::SimOptions::default()
        },
    )
    .await
    .expect("pam-sim");
    let config = format!(
        r#"
[pvwa]
url = "{}"
ca_bundle = "{}"
retries = 0

[accounts.lookup]
username = "svc_pam_lookup"
password = "env:PAMTEST_LOOKUP_PW"
{}
[directory.group_names]
domains = ["example.test"]
"#,
        sim.url(),
        sim.ca_cert.as_ref().expect("sim CA").display(),
        directory_section(&s.url(), &s.ca, "approvers = \"safe-members\""),
    );
    let cfg = write_config(tmp.path(), &config);
    let run = |args: Vec<&'static str>| {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || check(&cfg, &args))
    };

    let out = run(vec!["bob@example.test", "--safe", "DBSafe", "--level", "1"])
        .await
        .expect("join");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("bob -> DB_Team -> DB_PAMapprover"),
        "{stdout}"
    );
    assert!(
        stdout.contains("PVWA safe member \"DB_PAMapprover@example.test\""),
        "{stdout}"
    );
    // Another domain's group is never mapped, so dave (an Infra approver) may not.
    let out = run(vec![
        "dave@example.test",
        "--safe",
        "DBSafe",
        "--level",
        "1",
    ])
    .await
    .expect("join");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("Infra_PAMapprover@other.example"),
        "{stdout}"
    );
    // Level 2 is granted to PAM_L2, which the directory does not have.
    let out = run(vec![
        "alice@example.test",
        "--safe",
        "DBSafe",
        "--level",
        "2",
    ])
    .await
    .expect("join");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("PAM_L2 — NOT FOUND"), "{stdout}");
    // An unknown safe is PVWA's "not found": a negative answer.
    let out = run(vec![
        "alice@example.test",
        "--safe",
        "NoSuchSafe",
        "--level",
        "1",
    ])
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    sim.stop().await;
}

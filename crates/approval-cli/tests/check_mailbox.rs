//! `check-approval-request --check-mailbox` against pam-sim (Graph and EWS): a working mailbox
//! says so and changes nothing; a mailbox outside the app's RBAC scope, a wrong tenant and a
//! wrong password each fail with their exit code and a hint that names the fix.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::process::{Command, Output};

use watcher_env::*;

fn check(env: &Env, text: &str, json: bool) -> Output {
    let cfg = env.dir.path().join("check.toml");
    std::fs::write(&cfg, text).expect("config");
    let mut c = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"));
    c.arg("--config").arg(&cfg).arg("--check-mailbox");
    if json {
        c.arg("--json");
    }
    c.output().expect("runs")
}

fn text_of(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_a_working_mailbox_is_proven_without_changing_it() {
    let env = env!();
    forward(&env, "c1", "alice@example.test", 9);
    let text = config_text(&env, DEFAULT_APPROVERS, "", "");
    let o = check(&env, &text, false);
    let out = text_of(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("MAILBOX OK: pam-approvals@example.test (graph)"),
        "{out}"
    );
    assert!(out.contains("1 unread"), "{out}");
    assert!(
        out.contains("\"Processed\": missing, created at the first filing"),
        "{out}"
    );
    let o = check(&env, &text, true);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["folders"]["Refused"]["exists"], false);
    // Nothing changed: the mail is still unread in the inbox, no folder was made, nothing sent.
    assert_eq!(folder(&env, "inbox"), vec!["c1@corp.example.test"]);
    let names: Vec<String> = env
        .sim
        .state
        .graph
        .folders(BOX)
        .expect("mailbox")
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert!(!names.iter().any(|n| n == "Processed"), "{names:?}");
    assert_eq!(sent_count(&env), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_a_mailbox_outside_the_apps_scope_and_a_wrong_tenant_are_named() {
    let env = env!();
    let text = config_text(&env, DEFAULT_APPROVERS, "", "");
    let other = text.replace(
        &format!("mailbox = \"{BOX}\""),
        "mailbox = \"someone.else@example.test\"",
    );
    assert_ne!(other, text);
    let o = check(&env, &other, false);
    let out = text_of(&o);
    assert_eq!(o.status.code(), Some(77), "{out}");
    assert!(out.contains("ErrorAccessDenied"), "{out}");
    assert!(out.contains("RBAC for Applications"), "{out}");
    let wrong = text.replace(GRAPH_TENANT, "00000000-0000-4000-8000-0000000bad00");
    let o = check(&env, &wrong, false);
    let out = text_of(&o);
    assert_eq!(o.status.code(), Some(78), "{out}");
    assert!(
        out.contains("AADSTS90002") && out.contains("tenant_id"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_a_working_mailbox_and_a_refused_password() {
    let mut env = env!();
    env.backend = Backend::Ews;
    let text = config_text(&env, DEFAULT_APPROVERS, "", "");
    let o = check(&env, &text, false);
    let out = text_of(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("MAILBOX OK: pam-approvals@example.test (ews)"),
        "{out}"
    );
    // The same configuration with another password file content.
    let d = env.dir.path();
    secret(d, "mb", "not-the-password");
    let o = check(&env, &text, false);
    let out = text_of(&o);
    assert_eq!(o.status.code(), Some(77), "{out}");
    assert!(!out.contains("not-the-password"), "{out}");
}

//! Every mail of the corpus (examples/mails/*.eml) gives its expected result through
//! `check-approval-request --explain FILE --json` (examples/mails/expected.toml).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mails")
}

fn explain(file: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::cargo_bin("check-approval-request")
        .expect("binary")
        .env_remove("APPROVAL_CONFIG")
        .args(["--config"])
        .arg(corpus_dir().join("config.toml"))
        .arg("--explain")
        .arg(file)
        .args(extra)
        .output()
        .expect("runs");
    let code = out.status.code().expect("exit code");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let json = if extra.contains(&"--json") {
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{file:?}: {e}: {stdout}"))
    } else {
        serde_json::Value::Null
    };
    (code, json, stdout)
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) if s == "null" => serde_json::Value::Null,
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::json!(i),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        other => panic!("unexpected value in expected.toml: {other}"),
    }
}

#[test]
fn every_corpus_mail_gives_its_expected_result() {
    let dir = corpus_dir();
    let expected: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).expect("expected.toml"))
            .expect("expected.toml parses");
    let mails: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| {
            let p = e.expect("entry").path();
            (p.extension().is_some_and(|x| x == "eml"))
                .then(|| p.file_stem().expect("stem").to_string_lossy().into_owned())
        })
        .collect();
    let named: BTreeSet<String> = expected.keys().cloned().collect();
    assert_eq!(
        mails, named,
        "every .eml needs an entry and every entry a file"
    );
    assert!(mails.len() >= 30, "the corpus has {} mails", mails.len());

    let mut failures = Vec::new();
    let mut actionable = 0;
    for (name, exp) in &expected {
        let exp = exp.as_table().expect("a table per mail");
        let (code, json, _) = explain(&dir.join(format!("{name}.eml")), &["--json"]);
        for key in [
            "actionable",
            "request_id",
            "safe",
            "requester",
            "forwarder",
            "refusal",
            "reasons",
        ] {
            assert!(
                json.get(key).is_some(),
                "{name}: key {key} missing from {json}"
            );
        }
        for (k, v) in exp {
            if k == "exit" {
                let want = v.as_integer().expect("exit is a number");
                if i64::from(code) != want {
                    failures.push(format!("{name}: exit {code}, expected {want}"));
                }
                continue;
            }
            let got = json.get(k).cloned().unwrap_or(serde_json::Value::Null);
            let want = toml_to_json(v);
            if got != want {
                failures.push(format!("{name}: {k} = {got}, expected {want}"));
            }
        }
        // A refused mail always says why; an actionable one has no refusal code.
        let reasons = json["reasons"].as_array().expect("reasons array");
        assert!(!reasons.is_empty(), "{name}: no reasons");
        if json["actionable"] == serde_json::Value::Bool(true) {
            actionable += 1;
            assert!(json["refusal"].is_null(), "{name}");
            assert!(json["request_id"].is_string(), "{name}");
        } else {
            assert!(
                json["refusal"].is_string(),
                "{name}: refused without a code"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(actionable >= 10 && actionable < expected.len());
}

#[test]
fn human_output_names_the_verdict_and_the_reason() {
    let (code, _, text) = explain(&corpus_dir().join("dmarc-fail.eml"), &[]);
    assert_eq!(code, 1);
    assert!(text.contains("NOT ACTIONABLE: dmarc_fail"), "{text}");
    assert!(text.contains("reports dmarc=fail"), "{text}");
    let (code, _, text) = explain(&corpus_dir().join("outlook-desktop-en.eml"), &[]);
    assert_eq!(code, 0);
    assert!(text.contains("ACTIONABLE"), "{text}");
    assert!(text.contains("InfraSafe_1234"), "{text}");
}

#[test]
fn the_decision_and_where_it_was_read_are_shown() {
    let (code, json, _) = explain(
        &corpus_dir().join("reject-outlook-desktop.eml"),
        &["--json"],
    );
    assert_eq!(code, 0);
    assert_eq!(json["decision"]["decision"]["action"], "reject", "{json}");
    assert_eq!(
        json["decision"]["decision"]["reason"], "no change ticket covers adm_alice tonight.",
        "{json}"
    );
    assert_eq!(json["decision"]["word"], "Reject", "{json}");
    let (_, _, text) = explain(&corpus_dir().join("reject-outlook-desktop.eml"), &[]);
    assert!(
        text.contains("REJECT, reason \"no change ticket covers adm_alice tonight.\"; read from the first word of the forwarder's own text"),
        "{text}"
    );
    assert!(text.contains("and reject it."), "{text}");
    let (_, json, _) = explain(&corpus_dir().join("outlook-desktop-en.eml"), &["--json"]);
    assert_eq!(json["decision"]["decision"]["action"], "approve", "{json}");
    assert!(json["decision"]["word"].is_null(), "{json}");
    let (code, _, text) = explain(&corpus_dir().join("attack-hidden-reject.eml"), &[]);
    assert_eq!(code, 1);
    assert!(text.contains("NOT ACTIONABLE: unclear_decision"), "{text}");
    assert!(text.contains("hides a decision word"), "{text}");
}

#[test]
fn an_unreadable_file_exits_65() {
    let missing = corpus_dir().join("no-such-mail.eml");
    let (code, _, _) = explain(&missing, &[]);
    assert_eq!(code, 65);
}

#[test]
fn without_sender_policy_every_mail_is_refused_with_the_key_to_set() {
    // Strict defaults: no config file at all.
    let out = Command::cargo_bin("check-approval-request")
        .expect("binary")
        .env_remove("APPROVAL_CONFIG")
        .env("XDG_CONFIG_HOME", corpus_dir().join("no-such-dir"))
        .arg("--explain")
        .arg(corpus_dir().join("outlook-desktop-en.eml"))
        .arg("--json")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["actionable"], false);
    assert_eq!(json["refusal"], "auth_source_not_allowed");
    assert_eq!(json["request_id"], "InfraSafe_1234");
    let reasons = json["reasons"].to_string();
    assert!(reasons.contains("sender.auth_sources"), "{reasons}");
    assert!(reasons.contains("sender.allowed_domains"), "{reasons}");
}

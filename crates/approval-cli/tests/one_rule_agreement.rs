//! One implementation per rule (issue 29): the same cases go through the watcher, `--explain`,
//! `--check-sender` and the single-request tools, and they agree, each on the part of the rule
//! it applies: who the sender is and which notice the mail forwards (`screen`: watcher and
//! `--explain`), who approves a safe at a level (`directory::check::approver_verdict`: watcher
//! and `--check-sender`), whether two names are one person (`person::same_person`: the
//! watcher's self-approval refusal and the configuration's two level accounts), and whether a
//! request still waits (`policy::not_waiting`: the watcher, crash recovery and what the
//! single-request tools find). pam-sim plays PVWA and Exchange; the directory is a real slapd
//! (support/watcher_env.rs).

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

use std::process::Output;

use approval_core::pvwa::{Pvwa, Session};
use watcher_env::*;

/// The mailbox backend and PVWA of this file (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

/// alice's own requests, her PVWA user name spelled as a vault may spell it.
const SPELLINGS: &[(u32, &str)] = &[
    (20, "EXAMPLE\\\\alice"),
    (21, "ALICE"),
    (22, "alice@example.test"),
    (23, "a.approver@example.test"),
    (24, "EXAMPLE\\\\Alice@example.test"),
];

fn extra_scenario() -> String {
    SPELLINGS
        .iter()
        .map(|(n, who)| {
            format!(
                "[[pvwa.requests]]\nnumber = {n}\nsafe = \"DBSafe\"\nrequester = \"{who}\"\nlevels = [1, 0]\n"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `--explain` makes of a raw mail under the suite's configuration (no server).
fn explain(
    loaded: &approval_core::settings::Loaded,
    raw: &[u8],
) -> approval_cli::explain::Explanation {
    approval_cli::explain::explain(
        "mail.eml",
        raw,
        &loaded.config.notice,
        &loaded.config.sender,
    )
}

/// `--check-sender`'s verdict (the library call behind it).
async fn may_approve(loaded: &approval_core::settings::Loaded, who: &str, level: u8) -> bool {
    approval_core::check_sender::check_sender(loaded, who, "DBSafe", level)
        .await
        .expect("check-sender answers")
        .may_approve
}

/// A single-request tool run with the suite's configuration file.
async fn tool(config: &std::path::Path, name: &str, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin(name));
    cmd.args(args)
        .env("APPROVAL_CONFIG", config)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join")
}

/// The request as PVWA has it, read with the lookup account.
async fn request(
    loaded: &approval_core::settings::Loaded,
    id: &str,
) -> approval_core::pvwa::Request {
    let pvwa = Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client");
    let pw = secrecy::SecretString::from("lookup-pass".to_string());
    pvwa.with_session("svc_pam_lookup", &pw, async |s: &Session| {
        s.get_request(id).await
    })
    .await
    .expect("request read")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_explain_check_sender_and_the_tools_agree_case_by_case() {
    let Some(env) = start_with(&extra_scenario()).await else {
        return;
    };
    let loaded = config(&env, DEFAULT_APPROVERS);
    let config_file = env.dir.path().join("agreement.toml");
    std::fs::write(&config_file, config_text(&env, DEFAULT_APPROVERS, "", "")).expect("config");
    let p = pipeline(&env).await;

    // --- The requester is the forwarder, however PVWA spells her user name. ---
    // --check-sender: alice approves DBSafe at level 1, so the refusal is the same-person rule.
    assert!(may_approve(&loaded, "alice@example.test", 1).await);
    for (n, spelled) in SPELLINGS {
        let raw = mail(
            &format!("self-{n}"),
            "alice@example.test",
            "DBSafe",
            *n,
            "alice@example.test",
            true,
        );
        // --explain: the mail itself is in order (no server: it cannot know the requester).
        let e = explain(&loaded, &raw);
        assert!(e.actionable, "{spelled}: {:?}", e.reasons);
        let r = p.process(&deliver(&env, raw)).await.expect("process");
        assert_eq!(
            r.reason_code.as_deref(),
            Some("self_approval"),
            "requester {spelled}: {r:?}"
        );
    }
    // The configuration refuses the two level accounts spelled as one person by the same rule.
    for spelled in ["EXAMPLE\\\\SVC_PAM_LEVEL1", "svc_pam_level1@example.test"] {
        let text = config_text(&env, DEFAULT_APPROVERS, "", "").replace(
            "username = \"svc_pam_level2\"",
            &format!("username = \"{spelled}\""),
        );
        let err = approval_core::settings::load_from_parts(Some(&text), None, &[]).err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("accounts.level2.username")),
            "{spelled}: {err:?}"
        );
    }

    // --- Not an approver: dave approves InfraSafe only. ---
    assert!(!may_approve(&loaded, "dave@example.test", 1).await);
    assert!(!may_approve(&loaded, "dave@example.test", 2).await);
    let raw = mail(
        "dave-9",
        "dave@example.test",
        "DBSafe",
        9,
        requester_of(9),
        true,
    );
    assert!(explain(&loaded, &raw).actionable);
    let r = p.process(&deliver(&env, raw)).await.expect("process");
    assert_eq!(r.reason_code.as_deref(), Some("not_an_approver"), "{r:?}");

    // --- An approver at the other level: bob approves DBSafe at level 1 only. ---
    assert!(may_approve(&loaded, "bob@example.test", 1).await);
    assert!(!may_approve(&loaded, "bob@example.test", 2).await);
    // The level-1 tool confirms request 7's first level; it now waits at level 2.
    let o = tool(&config_file, "first-level-approve", &["DBSafe_7"]).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The level-1 tool again: it waits at the other level, nothing is sent.
    let o = tool(&config_file, "first-level-approve", &["DBSafe_7"]).await;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(65), "{said}");
    assert!(said.contains("level 2"), "{said}");
    let raw = mail(
        "bob-7",
        "bob@example.test",
        "DBSafe",
        7,
        requester_of(7),
        true,
    );
    assert!(explain(&loaded, &raw).actionable);
    let r = p.process(&deliver(&env, raw)).await.expect("process");
    assert_eq!(r.reason_code.as_deref(), Some("not_an_approver"), "{r:?}");
    assert!(
        r.reason.as_deref().is_some_and(|m| m.contains("level 2")),
        "{r:?}"
    );
    assert_eq!(confirms(&env).len(), 1, "only the tool's level-1 confirm");

    // --- No longer waiting: request 10 has expired. The one rule says why, and the watcher
    // refuses it with that very code. ---
    let expired = request(&loaded, "DBSafe_10").await;
    let now = chrono::Utc::now().timestamp();
    let code = approval_core::policy::not_waiting(&expired, now)
        .map(|r| r.code)
        .expect("an expired request is not waiting");
    assert!(matches!(code, "expired" | "request_invalid"), "{code}");
    assert!(!approval_core::policy::waiting_at(&expired, 1, now));
    let raw = mail(
        "bob-10",
        "bob@example.test",
        "DBSafe",
        10,
        requester_of(10),
        true,
    );
    assert!(explain(&loaded, &raw).actionable);
    let r = p.process(&deliver(&env, raw)).await.expect("process");
    assert_eq!(r.reason_code.as_deref(), Some(code), "{r:?}");
    let o = tool(&config_file, "first-level-approve", &["DBSafe_10"]).await;
    assert_ne!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(
        confirms(&env).len(),
        1,
        "nothing confirmed on an expired request"
    );

    // --- The sender: --explain and the watcher read the same headers, in the same order. ---
    for (name, raw) in [
        (
            "not authenticated",
            mail(
                "ext-9",
                "bob@example.test",
                "DBSafe",
                9,
                requester_of(9),
                false,
            ),
        ),
        (
            "another domain",
            mail(
                "dom-9",
                "bob@elsewhere.example",
                "DBSafe",
                9,
                requester_of(9),
                true,
            ),
        ),
    ] {
        let e = explain(&loaded, &raw);
        assert!(!e.actionable, "{name}");
        let r = p.process(&deliver(&env, raw)).await.expect("process");
        assert_eq!(
            e.refusal.map(|x| x.code().to_string()),
            r.reason_code.clone(),
            "{name}: {r:?}"
        );
    }
    p.close().await;
}

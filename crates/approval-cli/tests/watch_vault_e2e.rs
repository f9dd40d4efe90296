//! The watcher with its secrets in a real OpenBao: `check-approval-request --once` logs on to
//! PVWA with the level and lookup accounts and to Exchange with the mailbox account, every
//! password read from OpenBao by AppRole (TLS, the dev CA as the custom bundle), against pam-sim
//! and a real slapd. One forwarded mail is confirmed by the level-1 account, one self-approval
//! is refused; at `-vvv` no secret reaches stdout, stderr, the log file or the journal, and the
//! run's Vault token is revoked on exit.

// openbao first: watcher_env's `env!` macro would shadow std's inside it.
#[path = "../../approval-core/tests/support/openbao.rs"]
mod openbao;

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::process::Command;

use openbao::{OpenBao, assert_no_secret};
use pam_sim::{Scenario, Sim, SimOptions};
use watcher_env::slapd::{Opts, Slapd};
use watcher_env::*;

/// The vault reference of a seeded OpenBao secret.
fn vault_ref(name: &str) -> String {
    format!("vault:secret/pamtool/{name}#password")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reads_every_service_password_from_openbao_and_leaks_none() {
    let Some(bao) = OpenBao::start(true) else {
        return;
    };
    let Some(slapd) = Slapd::start(Opts::default()) else {
        return;
    };
    let level1 = bao.seeded("cyberark-approver1", "password");
    let level2 = bao.seeded("cyberark-approver2", "password");
    let lookup = bao.seeded("lookup", "password");
    let mailbox = bao.seeded("mailbox", "password");
    // pam-sim knows the accounts by OpenBao's random passwords only.
    let scenario = SCENARIO
        .replace("\"l1-pass\"", &format!("\"{level1}\""))
        .replace("\"l2-pass\"", &format!("\"{level2}\""))
        .replace("\"lookup-pass\"", &format!("\"{lookup}\""))
        .replace("\"box-pass\"", &format!("\"{mailbox}\""));
    assert!(
        !scenario.contains("-pass\""),
        "every test password replaced"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Sim::start(
        Scenario::from_toml(&scenario).expect("scenario"),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("pam-sim starts");
    let env = Env {
        sim,
        slapd: Some(slapd),
        dir,
        backend: SUITE_BACKEND,
        pvwa: SUITE_PVWA,
    };

    let d = env.dir.path().to_path_buf();
    let mut text = config_text(&env, DEFAULT_APPROVERS, "", "");
    for (file, name) in [
        ("l1", "cyberark-approver1"),
        ("l2", "cyberark-approver2"),
        ("lk", "lookup"),
        ("mb", "mailbox"),
    ] {
        let from = format!("\"file:{}\"", d.join(file).display());
        assert!(text.contains(&from), "{from} in the config");
        text = text.replace(&from, &format!("\"{}\"", vault_ref(name)));
        // The files config_text wrote hold the old test passwords: remove them, so only
        // OpenBao can supply a password that works.
        std::fs::remove_file(d.join(file)).expect("remove the file secret");
    }
    text.push_str(&format!("\n[vault]\n{}", bao.vault_toml("pamtool")));
    let cfg = d.join("config.toml");
    std::fs::write(&cfg, &text).expect("config");
    let log = d.join("watcher.log");

    deliver(
        &env,
        mail(
            "vault-ok",
            "bob@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    deliver(
        &env,
        mail(
            "vault-self",
            "alice@example.test",
            "DBSafe",
            8,
            "alice@example.test",
            true,
        ),
    );

    let mut cmd = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("--config")
        .arg(&cfg)
        .arg("--log-file")
        .arg(&log)
        .args(["--once", "--json", "-vvv"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run the watcher"))
        .await
        .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let logged = std::fs::read_to_string(&log).expect("log file");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}\nlog: {logged}"
    );

    // The level-1 account (its password only in OpenBao) confirmed request 9, and only that.
    let confirmed = confirms(&env);
    assert_eq!(
        confirmed.len(),
        1,
        "{confirmed:?}\nstdout: {stdout}\nlog: {logged}"
    );
    assert_eq!(
        (confirmed[0].0.as_str(), confirmed[0].1.as_str()),
        ("DBSafe_9", "svc_pam_level1")
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let outcome = |mid: &str| {
        lines
            .iter()
            .find(|l| l["message_id"].as_str().is_some_and(|m| m.contains(mid)))
            .unwrap_or_else(|| panic!("no line for {mid}: {stdout}"))
            .clone()
    };
    assert_eq!(outcome("vault-ok")["outcome"], "confirmed", "{stdout}");
    assert_eq!(outcome("vault-self")["reason_code"], "self_approval");
    // Answered with the mailbox account's OpenBao password, and filed.
    assert_eq!(sent_to(&env, "bob@example.test").len(), 1);
    assert_eq!(sent_to(&env, "alice@example.test").len(), 1);
    assert_eq!(
        folder(&env, "Processed"),
        vec!["vault-ok@corp.example.test"]
    );
    assert_eq!(
        folder(&env, "Refused"),
        vec!["vault-self@corp.example.test"]
    );

    // -vvv really logged, the Vault login among it, and one audit line per mail.
    assert!(logged.contains("DEBUG"), "{logged}");
    assert!(logged.contains("Vault AppRole login ok"), "{logged}");
    assert_eq!(logged.matches("mail_processed").count(), 2, "{logged}");

    // No secret anywhere: not the passwords, not the secret-id, not a token.
    let mut secrets = bao.secrets();
    secrets.push("svcpw".to_string());
    let journal = std::fs::read(d.join("state/journal.sqlite")).expect("journal");
    for text in [
        stdout.as_str(),
        stderr.as_str(),
        logged.as_str(),
        &String::from_utf8_lossy(&journal),
    ] {
        assert_no_secret(text, &secrets);
    }
    assert_eq!(
        bao.live_approle_tokens("pamtool"),
        0,
        "the run's Vault token is revoked"
    );
}

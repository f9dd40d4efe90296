//! `check-approval-request --once` and `--status` with the journal on a real PostgreSQL
//! (`[journal] url`, TLS verified, password by reference): the binary against pam-sim (PVWA and
//! Exchange EWS) and a real slapd. `--status` on a database the watcher has not written to is
//! CRITICAL like a missing SQLite journal; after one pass it reads the mail from PostgreSQL.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;
#[path = "../../approval-core/tests/support/postgres.rs"]
mod postgres;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::process::Command;

use watcher_env::*;

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env!("CARGO_BIN_EXE_check-approval-request"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_the_postgresql_journal_the_watcher_wrote() {
    let env = env!();
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let cfg = env.dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[journal]\nurl = \"{}\"\npassword = \"{}\"\nca_bundle = \"{}\"\n",
            config_text(&env, DEFAULT_APPROVERS, "", ""),
            pg.url(),
            secret(env.dir.path(), "pgpw", postgres::Postgres::PASSWORD),
            pg.ca.display()
        ),
    )
    .expect("config");
    let run = |args: &[&str]| {
        let o = Command::new(bin())
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env_remove("APPROVAL_CONFIG")
            .output()
            .expect("run");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // Nothing written yet: like a missing SQLite journal, and nothing created by looking.
    let (code, out, err) = run(&["--status"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.starts_with("CRITICAL: no journal at postgres://pam@127.0.0.1:"),
        "{out}{err}"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'pam_approval'")
            .trim(),
        "0"
    );
    // One pass of the watcher: bob's forward confirmed, answered, filed.
    deliver(
        &env,
        mail(
            "st1",
            "bob@example.test",
            "DBSafe",
            7,
            requester_of(7),
            true,
        ),
    );
    let (code, out, err) = run(&["--once", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(confirms(&env).len(), 1);
    assert!(!env.dir.path().join("state/journal.sqlite").exists());
    assert_eq!(
        pg.psql("SELECT state || '|' || outcome FROM pam_approval.mail")
            .trim(),
        "filed|confirmed"
    );
    // --status reads it from PostgreSQL.
    let (code, out, err) = run(&["--status"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("OK: 1 mail") && out.contains("1 confirmed"),
        "{out}"
    );
    assert!(out.contains("[journal postgres://pam@127.0.0.1:"), "{out}");
    // The pass took the lease of the active host and released it.
    assert!(
        out.contains("\nactive host: none (lease released ") && out.contains("; 0 failovers"),
        "{out}"
    );
    let (code, out, err) = run(&["--status", "--json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let j: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(j["ha"]["active_host"], serde_json::Value::Null, "{j}");
    assert_eq!(
        (j["ha"]["epoch"].as_i64(), j["ha"]["failovers"].as_u64()),
        (Some(1), Some(0)),
        "{j}"
    );
    // The password is nowhere in what the tool printed.
    assert!(
        !out.contains(postgres::Postgres::PASSWORD) && !err.contains(postgres::Postgres::PASSWORD)
    );
}

//! `RUST_LOG=trace` on the watcher (`check-approval-request --once`, against pam-sim on EWS and
//! a self-hosted PVWA, and a real slapd): the HTTP, TLS and cookie crates' debug and trace lines
//! are open, yet no password, PVWA session token or cookie reaches stderr.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::process::{Command, Stdio};

use watcher_env::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_trace_on_the_watcher_prints_no_secret() {
    let env = env!();
    let d = env.dir.path();
    let cfg = d.join("config.toml");
    std::fs::write(&cfg, config_text(&env, DEFAULT_APPROVERS, "", "")).expect("config");
    let mut all = String::new();
    // bob forwards dave's single-level request 9, then level 1 of lfischer's two-level request 7.
    for (n, (filter, number)) in [("trace", 9), ("debug", 7)].iter().enumerate() {
        let mid = format!("r{n}");
        deliver(
            &env,
            mail(
                &mid,
                "bob@example.test",
                "DBSafe",
                *number,
                requester_of(*number),
                true,
            ),
        );
        let bin = std::path::PathBuf::from(std::env!("CARGO_BIN_EXE_check-approval-request"));
        let o = tokio::task::spawn_blocking({
            let cfg = cfg.clone();
            let filter = filter.to_string();
            move || {
                Command::new(bin)
                    .arg("--once")
                    .arg("--config")
                    .arg(&cfg)
                    .env("RUST_LOG", filter)
                    .stdin(Stdio::null())
                    .output()
                    .expect("run the watcher")
            }
        })
        .await
        .expect("join");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(
            err.contains("DEBUG"),
            "RUST_LOG={filter} opened debug lines"
        );
        all.push_str(&err);
    }
    assert_eq!(confirms(&env).len(), 2, "both mails confirmed");
    for secret in ["box-pass", "l1-pass", "l2-pass", "lookup-pass", "svcpw"] {
        assert!(!all.contains(secret), "password {secret} leaked:\n{all}");
    }
    let tokens = env.sim.state.pvwa.issued_tokens();
    let cookies = env.sim.state.pvwa.issued_cookies();
    assert!(!tokens.is_empty() && !cookies.is_empty());
    for t in &tokens {
        assert!(!all.contains(t.as_str()), "session token leaked:\n{all}");
    }
    for c in &cookies {
        let value = c.split_once('=').map_or(c.as_str(), |(_, v)| v);
        assert!(!all.contains(value), "cookie {c} leaked:\n{all}");
    }
}

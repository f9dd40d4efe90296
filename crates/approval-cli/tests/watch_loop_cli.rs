//! `check-approval-request` (no `--once`) as a service runs it, against pam-sim and a real
//! slapd: it writes its pid file, confirms a mail delivered while it runs, refuses a second
//! instance on the same state directory (75), reopens its log file on SIGHUP (logrotate), and
//! on SIGTERM finishes, exits 0 and removes the pid file.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use watcher_env::*;

fn bin() -> std::path::PathBuf {
    // `std::` because the test environment's `env!` macro shadows the standard one here.
    std::path::PathBuf::from(std::env!("CARGO_BIN_EXE_check-approval-request"))
}

async fn eventually(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "not within {secs}s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_refuses_a_second_instance_reopens_its_log_and_stops_on_sigterm() {
    let env = env!();
    let d = env.dir.path();
    let cfg = d.join("config.toml");
    std::fs::write(
        &cfg,
        config_text(&env, DEFAULT_APPROVERS, "", "poll_secs = 2"),
    )
    .expect("config");
    let log = d.join("log/watcher.log");
    std::fs::create_dir_all(log.parent().expect("dir")).expect("log dir");
    let pid_file = d.join("run/watcher.pid");
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("--log-file")
        .arg(&log)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the watcher");
    let pid = child.id();
    eventually(20, "pid file with the watcher's pid", || {
        read(&pid_file).trim() == pid.to_string()
    })
    .await;

    // A second instance on the same state directory: 75, a clear message, the first one's pid
    // file untouched.
    let second = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("--pid-file")
        .arg(&pid_file)
        .output()
        .expect("second instance");
    assert_eq!(second.status.code(), Some(75), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another watcher already runs"), "{err}");
    assert_eq!(read(&pid_file).trim(), pid.to_string());

    // It works: a mail delivered now is confirmed and filed.
    deliver(
        &env,
        mail(
            "b1",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    eventually(15, "confirmed and filed", || {
        confirms(&env).len() == 1
            && folder(&env, "Processed").contains(&"b1@corp.example.test".to_string())
    })
    .await;

    // logrotate: rename, SIGHUP; later lines go to a new file at the original path.
    let rotated = d.join("log/watcher.log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    kill("-HUP", pid);
    eventually(10, "a new log file with the reopen line", || {
        read(&log).contains("log file reopened")
    })
    .await;
    assert!(
        read(&rotated).contains("watch loop started"),
        "earlier lines stay in the rotated file"
    );
    assert!(!read(&rotated).contains("log file reopened"));

    kill("-TERM", pid);
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < until,
            "the watcher did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        e.read_to_string(&mut stderr).expect("stderr");
    }
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!pid_file.exists(), "the pid file is removed");
    let tail = read(&log);
    assert!(tail.contains("SIGTERM"), "{tail}");
    assert!(tail.contains("watch loop ended: 1 processed"), "{tail}");
    // No secret in the log.
    for s in ["box-pass", "l1-pass", "l2-pass", "lookup-pass", "svcpw"] {
        assert!(
            !tail.contains(s) && !read(&rotated).contains(s),
            "{s} in the log"
        );
    }
}

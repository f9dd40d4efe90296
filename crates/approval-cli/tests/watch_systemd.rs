//! `check-approval-request` under a service manager that listens on a notify socket, as systemd
//! runs it with `Type=notify` and `WatchdogSec=`: the test binds the socket itself and reads
//! what the watcher sends. `READY=1` comes once the start-up catch-up is handed out (the mail
//! waiting before the start is already being handled), `WATCHDOG=1` keeps coming while the loop
//! runs, `STATUS=` says what it did, and SIGTERM gives `STOPPING=1` before the exit.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use watcher_env::*;

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env!("CARGO_BIN_EXE_check-approval-request"))
}

/// Every datagram received within `secs`, until `stop` holds for what was received so far.
fn receive_until(
    sock: &UnixDatagram,
    got: &mut Vec<(Instant, String)>,
    secs: u64,
    what: &str,
    stop: impl Fn(&[(Instant, String)]) -> bool,
) {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 4096];
    while !stop(got) {
        assert!(
            Instant::now() < until,
            "not within {secs}s: {what}; received {:?}",
            got.iter().map(|g| &g.1).collect::<Vec<_>>()
        );
        if let Ok(n) = sock.recv(&mut buf) {
            got.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
    }
}

fn has(got: &[(Instant, String)], line: &str) -> bool {
    got.iter().any(|(_, m)| m.lines().any(|l| l == line))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_after_the_catch_up_watchdog_while_running_stopping_on_sigterm() {
    let env = env!();
    let d = env.dir.path();
    let cfg = d.join("config.toml");
    // poll_secs far above the watchdog: the watcher must wake often enough anyway.
    std::fs::write(
        &cfg,
        config_text(&env, DEFAULT_APPROVERS, "", "poll_secs = 600"),
    )
    .expect("config");
    let socket = d.join("notify.sock");
    let sock = UnixDatagram::bind(&socket).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    // A mail waiting before the start: part of the catch-up.
    forward(&env, "s1", "alice@example.test", 9);

    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &socket)
        .env("WATCHDOG_USEC", "1500000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the watcher");
    let mut got = Vec::new();
    receive_until(&sock, &mut got, 20, "READY=1", |g| has(g, "READY=1"));
    let ready = got
        .iter()
        .find(|(_, m)| m.lines().any(|l| l == "READY=1"))
        .expect("ready")
        .1
        .clone();
    assert!(
        ready.contains("STATUS=watching the mailbox; 1 mail(s) to look at"),
        "{ready}"
    );

    // The mail from before the start is answered, and the status says so.
    receive_until(
        &sock,
        &mut got,
        20,
        "a status with the answered mail",
        |g| g.iter().any(|(_, m)| m.contains("since start: 1 answered")),
    );
    assert_eq!(confirms(&env).len(), 1);

    // The watchdog keeps being fed (every half second for a 1.5 s interval) although the
    // listing interval is ten minutes.
    let from = Instant::now();
    receive_until(&sock, &mut got, 10, "watchdog pings for 3 s", |g| {
        g.iter()
            .filter(|(t, m)| *t >= from && m.lines().any(|l| l == "WATCHDOG=1"))
            .count()
            >= 5
    });
    let pings: Vec<Instant> = got
        .iter()
        .filter(|(t, m)| *t >= from && m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    for w in pings.windows(2) {
        assert!(
            w[1] - w[0] < Duration::from_millis(1500),
            "pings further apart than the watchdog interval: {:?}",
            w[1] - w[0]
        );
    }

    // SIGTERM: STOPPING=1, then exit 0.
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    receive_until(&sock, &mut got, 20, "STOPPING=1", |g| has(g, "STOPPING=1"));
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < until, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(0));
    // READY came once, before STOPPING.
    let order: Vec<&str> = got
        .iter()
        .flat_map(|(_, m)| m.lines())
        .filter(|l| *l == "READY=1" || *l == "STOPPING=1")
        .collect();
    assert_eq!(order, ["READY=1", "STOPPING=1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ready_while_the_mailbox_cannot_be_listed() {
    let env = env!();
    let d = env.dir.path();
    let cfg = d.join("config.toml");
    // The mailbox answers 503 to everything: the start-up listing never succeeds.
    env.sim.state.faults.set(
        "ews",
        pam_sim::faults::Faults {
            fail: Some(pam_sim::faults::FailNext {
                status: 503,
                count: 10_000,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            ..Default::default()
        },
    );
    std::fs::write(
        &cfg,
        config_text(&env, DEFAULT_APPROVERS, "", "poll_secs = 1"),
    )
    .expect("config");
    let socket = d.join("notify.sock");
    let sock = UnixDatagram::bind(&socket).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the watcher");
    let mut got = Vec::new();
    receive_until(&sock, &mut got, 30, "a fault status", |g| {
        g.iter()
            .any(|(_, m)| m.contains("STATUS=mailbox fault, retrying in"))
    });
    assert!(
        !has(&got, "READY=1"),
        "ready although nothing was listed: {got:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

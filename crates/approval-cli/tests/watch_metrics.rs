//! The watcher's metrics and health while it runs (`[metrics] listen`), scraped from the
//! running binary against pam-sim and a real slapd, and checked against what happened: one mail
//! confirmed, one refused for self-approval, the first mail again (already processed), then PVWA
//! failing — the counters, the histogram, the sign-ins, the pending gauge, `/healthz`,
//! `/readyz` turning 503 and naming PVWA, no address or request id in any label; then
//! `check-approval-request --status` on the same state directory, as a Nagios check.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use watcher_env::*;

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env!("CARGO_BIN_EXE_check-approval-request"))
}

/// `GET path` on `port`: (status, body); `None` while nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    // Chunked bodies (axum streams /metrics): keep the chunk data only.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    Some((status, body))
}

/// The value of the sample `name` (with its labels, as printed), 0 when absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

async fn eventually(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "not within {secs}s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// The TCP ports process `pid` listens on (IPv4 and IPv6): the sockets in LISTEN state of
/// /proc/<pid>/net/tcp{,6} whose inode is one of the process's open file descriptors.
fn listening_ports(pid: u32) -> Vec<u16> {
    let fds: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && fds.contains(f[9]) {
                let port = f[1].rsplit(':').next().expect("port");
                ports.push(u16::from_str_radix(port, 16).expect("hex port"));
            }
        }
    }
    ports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_match_what_happened_and_health_follows_pvwa() {
    let env = env!();
    let d = env.dir.path();
    let cfg = d.join("config.toml");
    let port = free_port();
    let text = format!(
        "{}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\nready_within_secs = 60\n",
        config_text(&env, DEFAULT_APPROVERS, "", "poll_secs = 1")
    );
    std::fs::write(&cfg, &text).expect("config");
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the watcher");
    let scrape = || get(port, "/metrics").map(|(_, b)| b).unwrap_or_default();
    eventually(20, "the metrics listener", || {
        get(port, "/healthz").is_some_and(|(s, b)| s == 200 && b == "ok\n")
    })
    .await;
    eventually(10, "ready once the mailbox answered", || {
        get(port, "/readyz").is_some_and(|(s, _)| s == 200)
    })
    .await;
    // What the default-off test relies on: the listener is seen among the process's sockets.
    assert_eq!(
        listening_ports(child.id()),
        vec![port],
        "the metrics listener"
    );

    // alice approves dave's request 9; alice forwards her own request 8; the first mail again.
    let first = mail(
        "m1",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        true,
    );
    deliver(&env, first.clone());
    deliver(
        &env,
        mail(
            "m2",
            "alice@example.test",
            "DBSafe",
            8,
            "alice@example.test",
            true,
        ),
    );
    eventually(20, "two mails answered", || {
        sample(&scrape(), "pam_approval_replies_total{outcome=\"refused\"}") >= 1.0
            && sample(
                &scrape(),
                "pam_approval_replies_total{outcome=\"approved\"}",
            ) >= 1.0
    })
    .await;
    deliver(&env, first);
    eventually(20, "the copy answered", || {
        sample(
            &scrape(),
            "pam_approval_mails_total{outcome=\"already_processed\",reason=\"\"}",
        ) >= 1.0
    })
    .await;
    let m = scrape();
    for (name, want) in [
        (
            "pam_approval_mails_total{outcome=\"confirmed\",reason=\"\"}",
            1.0,
        ),
        (
            "pam_approval_mails_total{outcome=\"refused\",reason=\"self_approval\"}",
            1.0,
        ),
        (
            "pam_approval_mails_total{outcome=\"already_processed\",reason=\"\"}",
            1.0,
        ),
        ("pam_approval_confirms_total{level=\"1\"}", 1.0),
        ("pam_approval_replies_total{outcome=\"approved\"}", 1.0),
        ("pam_approval_replies_total{outcome=\"refused\"}", 1.0),
        (
            "pam_approval_replies_total{outcome=\"already_processed\"}",
            1.0,
        ),
        ("pam_approval_mail_to_confirm_seconds_count", 1.0),
        // The lookup and the level-1 account, each once, kept across the mails.
        (
            "pam_approval_sign_ins_total{service=\"pvwa\",kind=\"logon\"}",
            2.0,
        ),
    ] {
        assert_eq!(sample(&m, name), want, "{name}:\n{m}");
    }
    assert_eq!(confirms(&env).len(), 1);
    assert!(sample(&m, "pam_approval_last_mailbox_success_timestamp_seconds") > 1.7e9);
    assert!(sample(&m, "pam_approval_last_pvwa_success_timestamp_seconds") > 1.7e9);
    assert!(
        m.contains("# TYPE pam_approval_mail_to_confirm_seconds histogram"),
        "{m}"
    );
    // Labels never carry an address, a safe or a request id.
    for leak in ["example.test", "DBSafe", "alice", "dave"] {
        assert!(!m.contains(leak), "{leak} in the metrics:\n{m}");
    }

    // PVWA fails: the next approvable mail is left pending by a PVWA fault, /readyz says so.
    env.sim.state.faults.set(
        "pvwa",
        pam_sim::faults::Faults {
            fail: Some(pam_sim::faults::FailNext {
                status: 503,
                count: 100_000,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            ..Default::default()
        },
    );
    forward(&env, "m3", "bob@example.test", 7);
    eventually(30, "a PVWA fault counted", || {
        sample(&scrape(), "pam_approval_faults_total{service=\"pvwa\"}") >= 1.0
    })
    .await;
    eventually(10, "the pending gauge", || {
        sample(&scrape(), "pam_approval_pending_mails") == 1.0
    })
    .await;
    let (status, body) = get(port, "/readyz").expect("readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("pvwa: the last contact failed"), "{body}");
    assert!(body.contains("mailbox: ok"), "{body}");

    // --status on the same state directory, while the watcher runs.
    let status = |extra: &[&str]| {
        Command::new(bin())
            .arg("--config")
            .arg(&cfg)
            .arg("--status")
            .args(extra)
            .output()
            .expect("status")
    };
    let o = status(&[]);
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{line}");
    assert!(
        line.starts_with("OK: 2 mails answered (1 confirmed, 1 refused), 1 pending (1 after a fault); mailbox answered"),
        "{line}"
    );
    // The same mail seen as too old: WARNING (1); beyond the critical age: CRITICAL (2).
    let o = status(&["--warning-secs", "0"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("WARNING: "));
    let o = status(&["--warning-secs", "0", "--critical-secs", "0", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["verdict"], "CRITICAL");
    assert_eq!(v["pending"], 1);
    assert_eq!(v["confirmed"], 1);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < until, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_is_off_by_default() {
    // No [metrics] section: the watcher runs (it confirms a mail) and binds no TCP port at all.
    let env = env!();
    let cfg = env.dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        config_text(&env, DEFAULT_APPROVERS, "", "poll_secs = 1"),
    )
    .expect("config");
    assert!(
        !std::fs::read_to_string(&cfg)
            .expect("config")
            .contains("[metrics]")
    );
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the watcher");
    forward(&env, "off1", "alice@example.test", 9);
    eventually(30, "the mail confirmed", || confirms(&env).len() == 1).await;
    let ports = listening_ports(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < until, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ports.is_empty(), "the watcher listens on {ports:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_without_a_journal_is_critical_and_a_bad_listen_address_names_the_key() {
    let env = env!();
    let d = env.dir.path();
    let cfg = d.join("config.toml");
    std::fs::write(&cfg, config_text(&env, DEFAULT_APPROVERS, "", "")).expect("config");
    let o = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("--status")
        .output()
        .expect("status");
    assert_eq!(o.status.code(), Some(2));
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        line.starts_with("CRITICAL: no journal at ") && line.contains("has not run"),
        "{line}"
    );
    // A bad listen address is a configuration error naming the key.
    std::fs::write(
        &cfg,
        format!(
            "{}\n[metrics]\nlisten = \"localhost\"\n",
            config_text(&env, DEFAULT_APPROVERS, "", "")
        ),
    )
    .expect("config");
    let o = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("metrics.listen"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

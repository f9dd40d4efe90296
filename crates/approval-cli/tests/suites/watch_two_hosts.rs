// Two watcher hosts on one PostgreSQL journal, included by watch_two_hosts.rs (EWS) and
// watch_two_hosts_graph.rs (Graph), which declare `watcher_env` and `postgres`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use watcher_env::*;

fn bin() -> PathBuf {
    PathBuf::from(std::env!("CARGO_BIN_EXE_check-approval-request"))
}

const FIRST: u32 = 3000;

fn scenario(n: u32) -> String {
    (FIRST..FIRST + n)
        .map(|k| {
            format!(
                "[[pvwa.requests]]\nnumber = {k}\nsafe = \"DBSafe\"\nrequester = \"dave\"\nlevels = [1, 0]\n"
            )
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One host: its configuration (its own state directory and metrics port, the shared journal).
struct Host {
    cfg: PathBuf,
    log: PathBuf,
    port: u16,
}

fn host(env: &Env, pg: &postgres::Postgres, name: &'static str) -> Host {
    let d = env.dir.path();
    let port = free_port();
    let text = config_text(
        env,
        DEFAULT_APPROVERS,
        "max_sends_per_minute = 0\nrequest_timeout_secs = 5",
        "poll_secs = 2\nconcurrency = 4\nretry_first_secs = 1\nretry_max_secs = 2",
    )
    .replace(
        &format!("state_dir = \"{}\"", d.join("state").display()),
        &format!("state_dir = \"{}\"", d.join(format!("state-{name}")).display()),
    );
    let cfg = d.join(format!("config-{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "{text}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[journal]\nurl = \"{}\"\npassword = \"{}\"\nca_bundle = \"{}\"\nlease_secs = 3\nhost_name = \"{name}\"\n",
            pg.url(),
            secret(d, "pgpw", postgres::Postgres::PASSWORD),
            pg.ca.display()
        ),
    )
    .expect("config");
    Host {
        cfg,
        log: d.join(format!("watcher-{name}.log")),
        port,
    }
}

fn start(h: &Host) -> Child {
    Command::new(bin())
        .arg("--config")
        .arg(&h.cfg)
        .arg("--log-file")
        .arg(&h.log)
        .arg("-v")
        .env_remove("APPROVAL_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the watcher")
}

fn log_of(h: &Host) -> String {
    std::fs::read_to_string(&h.log).unwrap_or_default()
}

fn signal(c: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &c.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

/// A plain HTTP GET on the host's metrics listener: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Wait (polling) until `f` holds; fail with `what` after `secs`.
async fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The host holding the lease, as the database says.
fn holder(pg: &postgres::Postgres) -> String {
    if pg.psql("SELECT to_regclass('pam_approval.lease') IS NOT NULL").trim() != "t" {
        return String::new();
    }
    pg.psql("SELECT holder FROM pam_approval.lease WHERE name = 'watcher' AND expires_at > now()")
        .trim()
        .to_string()
}

fn filed(env: &Env) -> usize {
    folder(env, "Processed").len() + folder(env, "Refused").len()
}

fn deliver_n(env: &Env, from: u32, to: u32) {
    for n in from..to {
        deliver(
            env,
            mail(
                &format!("ha{n}"),
                "alice@example.test",
                "DBSafe",
                n,
                "dave@example.test",
                true,
            ),
        );
    }
}

/// Each of the requests `FIRST..FIRST + n` confirmed exactly once and answered exactly once;
/// every mail filed in Processed.
fn exactly_once(env: &Env, n: u32) {
    let mut confirmed: BTreeMap<String, usize> = BTreeMap::new();
    for (rid, _, _) in confirms(env) {
        *confirmed.entry(rid).or_default() += 1;
    }
    let mut replies: BTreeMap<String, usize> = BTreeMap::new();
    for (_, subject) in sent_all(env) {
        if let Some(rid) = subject.split_whitespace().find(|w| w.starts_with("DBSafe_")) {
            *replies.entry(rid.to_string()).or_default() += 1;
        }
    }
    let processed = folder(env, "Processed");
    for k in FIRST..FIRST + n {
        let rid = format!("DBSafe_{k}");
        assert_eq!(confirmed.get(&rid), Some(&1), "{rid} confirmed exactly once: {confirmed:?}");
        assert_eq!(replies.get(&rid), Some(&1), "{rid} answered exactly once: {replies:?}");
        assert!(processed.contains(&format!("ha{k}@corp.example.test")), "{rid} filed");
    }
    assert_eq!(confirmed.values().sum::<usize>(), n as usize, "{confirmed:?}");
    assert_eq!(sent_count(env), n as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_acts_and_the_other_takes_over_after_a_sigkill() {
    let Some(env) = start_with(&scenario(10)).await else {
        return;
    };
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let (a, b) = (host(&env, &pg, "hosta"), host(&env, &pg, "hostb"));
    let mut ca = start(&a);
    until(30, "host A takes the lease", || holder(&pg).starts_with("hosta:")).await;
    let mut cb = start(&b);
    until(30, "host B stands by", || {
        get(b.port, "/readyz").is_some_and(|(s, t)| s == 200 && t.contains("standby (active: hosta)"))
    })
    .await;
    let (s, t) = get(b.port, "/metrics").expect("metrics");
    assert_eq!(s, 200);
    assert!(t.contains("pam_approval_ha_active 0"), "{t}");
    assert!(t.contains("pam_approval_ha_database_up 1"), "{t}");
    // Five mails: all handled by A alone.
    deliver_n(&env, FIRST, FIRST + 5);
    until(60, "five mails filed", || filed(&env) == 5 && sent_count(&env) == 5).await;
    let (_, t) = get(a.port, "/metrics").expect("metrics");
    assert!(t.contains("pam_approval_ha_active 1"), "{t}");
    assert!(t.contains("pam_approval_ha_epoch 1"), "{t}");
    assert!(t.contains(r#"pam_approval_ha_takeovers_total{from="vacant"} 1"#), "{t}");
    let (s, t) = get(a.port, "/readyz").expect("readyz");
    assert!(s == 200 && t.starts_with("active\n"), "{s} {t}");
    assert!(!log_of(&b).contains("took the lease"), "{}", log_of(&b));
    assert!(log_of(&b).contains("standing by: the active host is hosta"));
    // --status names the active host.
    let o = Command::new(bin())
        .arg("--config")
        .arg(&b.cfg)
        .arg("--status")
        .env_remove("APPROVAL_CONFIG")
        .output()
        .expect("status");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\nactive host: hosta (epoch 1, lease renewed "), "{out}");
    assert!(out.contains("; 0 failovers"), "{out}");

    // A dies; B takes over and confirms the next mails.
    ca.kill().expect("SIGKILL");
    ca.wait().expect("reaped");
    let killed = Instant::now();
    deliver_n(&env, FIRST + 5, FIRST + 10);
    until(60, "B confirms after the takeover", || confirms(&env).len() > 5).await;
    println!("kill to the next confirm: {:?}", killed.elapsed());
    until(60, "ten mails filed", || filed(&env) == 10 && sent_count(&env) == 10).await;
    assert!(log_of(&b).contains("took the lease (epoch 2, expired)"), "{}", log_of(&b));
    exactly_once(&env, 10);
    let (_, t) = get(b.port, "/metrics").expect("metrics");
    assert!(t.contains(r#"pam_approval_ha_takeovers_total{from="expired"} 1"#), "{t}");
    let o = Command::new(bin())
        .arg("--config")
        .arg(&a.cfg)
        .args(["--status", "--json"])
        .env_remove("APPROVAL_CONFIG")
        .output()
        .expect("status");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(j["ha"]["active_host"], "hostb", "{j}");
    assert_eq!(j["ha"]["epoch"], 2, "{j}");
    assert_eq!(j["ha"]["failovers"], 1, "{j}");
    assert!(j["ha"]["last_failover"].as_str().is_some(), "{j}");
    // `--once` beside a live active host does nothing, and says so.
    let before = (confirms(&env).len(), sent_count(&env));
    let o = Command::new(bin())
        .arg("--config")
        .arg(&a.cfg)
        .args(["--once", "-v"])
        .env_remove("APPROVAL_CONFIG")
        .output()
        .expect("--once");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("another host (hostb) is active; nothing done"), "{err}");
    assert_eq!((confirms(&env).len(), sent_count(&env)), before);
    // A clean stop releases the lease.
    signal(&cb, "-TERM");
    assert_eq!(cb.wait().expect("wait").code(), Some(0));
    assert!(log_of(&b).contains("lease released (epoch 2)"), "{}", log_of(&b));
    assert_eq!(holder(&pg), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_active_host_resumed_after_a_takeover_sends_nothing() {
    const N: u32 = 24;
    let Some(env) = start_with(&scenario(N)).await else {
        return;
    };
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let (a, b) = (host(&env, &pg, "hosta"), host(&env, &pg, "hostb"));
    let mut ca = start(&a);
    until(30, "host A takes the lease", || holder(&pg).starts_with("hosta:")).await;
    let mut cb = start(&b);
    until(30, "host B stands by", || log_of(&b).contains("standing by: the active host is hosta")).await;
    // A burst; A is paused once it has confirmed a few (mid-burst, mails in flight).
    let state = env.sim.state.clone();
    let backend = env.backend;
    let feeder = std::thread::spawn(move || {
        for n in FIRST..FIRST + N {
            deliver_with(
                &state,
                backend,
                mail(
                    &format!("ha{n}"),
                    "alice@example.test",
                    "DBSafe",
                    n,
                    "dave@example.test",
                    true,
                ),
            );
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    until(60, "A confirms some", || confirms(&env).len() >= 3).await;
    signal(&ca, "-STOP");
    let paused_at = (confirms(&env).len(), sent_count(&env));
    feeder.join().expect("delivered");
    // B takes over once A's lease has expired, and finishes every mail (those A left in flight
    // after the lock-delay, by reading back).
    until(30, "B takes the lease over", || holder(&pg).starts_with("hostb:")).await;
    until(120, "B finishes every mail", || {
        filed(&env) == N as usize && sent_count(&env) == N as usize
    })
    .await;
    // Every confirm or reject call PVWA received, carried out or refused (a second confirm
    // PVWA refuses would not show among the confirms).
    let before = (env.sim.state.pvwa.attempts().len(), sent_all(&env));
    // A resumes: it finds it lost the lease, says so, and does nothing more.
    signal(&ca, "-CONT");
    until(30, "A logs its demotion", || log_of(&a).contains("lost the lease (")).await;
    assert!(log_of(&a).contains("not acting; standing by"), "{}", log_of(&a));
    // Let anything A still had in flight show itself before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.sim.state.pvwa.attempts().len(),
        before.0,
        "A called PVWA after resuming (paused at {paused_at:?})"
    );
    assert_eq!(sent_all(&env), before.1, "A sent after resuming");
    exactly_once(&env, N);
    assert!(log_of(&b).contains("took the lease (epoch 2, expired)"), "{}", log_of(&b));
    // What each side saw (for the record: which of A's mails were in flight).
    for (who, h) in [("A", &a), ("B", &b)] {
        for l in log_of(h).lines().filter(|l| {
            l.contains("lease")
                || l.contains("for the active host")
                || l.contains("abandoned")
                || l.contains("not acting")
        }) {
            println!("{who}: {l}");
        }
    }
    let (_, t) = get(a.port, "/readyz").expect("readyz");
    assert!(t.contains("standby (active: hostb)"), "{t}");
    for c in [&mut ca, &mut cb] {
        signal(c, "-TERM");
        assert_eq!(c.wait().expect("wait").code(), Some(0));
    }
}

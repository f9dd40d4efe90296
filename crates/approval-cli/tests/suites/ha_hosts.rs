// Watcher hosts on one PostgreSQL journal, for the two-host suites (issue 33): included by
// watch_ha_chaos*.rs and watch_ha_paused.rs, which declare `watcher_env` and `postgres`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use watcher_env::*;

const FIRST: u32 = 1000;
const LEASE_SECS: u64 = 3;

/// 200 by default; `PAMTEST_HA_MAILS` for a shorter local run.
#[allow(dead_code)]
fn mails_count() -> u32 {
    std::env::var("PAMTEST_HA_MAILS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

fn bin() -> PathBuf {
    PathBuf::from(std::env!("CARGO_BIN_EXE_check-approval-request"))
}

/// xorshift64*: enough randomness for fault times, replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    #[allow(dead_code)]
    fn pick(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every tenth request is the forwarder's own (alice's): refused, never confirmed.
fn is_self_approval(n: u32) -> bool {
    n % 10 == 3
}

/// Every tenth request (another one) is rejected by mail: rejected exactly once.
fn is_reject(n: u32) -> bool {
    n % 10 == 7
}

fn scenario(mails: u32) -> String {
    (FIRST..FIRST + mails)
        .map(|n| {
            let requester = if is_self_approval(n) { "alice" } else { "dave" };
            format!(
                "[[pvwa.requests]]\nnumber = {n}\nsafe = \"DBSafe\"\nrequester = \"{requester}\"\nlevels = [1, 0]\n"
            )
        })
        .collect()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// One watcher host: its configuration, log, health port and process.
struct Host {
    name: String,
    cfg: PathBuf,
    log: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Host {
    fn start(&mut self) {
        let child = Command::new(bin())
            .arg("--config")
            .arg(&self.cfg)
            .arg("--log-file")
            .arg(&self.log)
            .arg("-v")
            .env_remove("APPROVAL_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.log.with_extension("stderr"))
                    .expect("stderr file"),
            )
            .spawn()
            .expect("start the watcher");
        self.child = Some(child);
    }

    /// As systemd's `Restart=always` does (examples/systemd/pam-approval.service): when the
    /// watcher has ended on its own, start it again; its exit code, if it had ended.
    #[allow(dead_code)]
    fn restart_if_ended(&mut self) -> Option<i32> {
        let st = self.child.as_mut()?.try_wait().expect("try_wait")?;
        self.child = None;
        self.start();
        Some(st.code().unwrap_or(-1))
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    #[allow(dead_code)]
    fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reaped");
        }
    }

    /// The first line of `/readyz` ("active", "standby (active: HOST)", …), or "" when the
    /// watcher does not answer.
    fn readyz(&self) -> String {
        let Ok(mut s) = std::net::TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.port).into(),
            Duration::from_millis(300),
        ) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let _ = s.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.split_once("\r\n\r\n")
            .and_then(|(_, b)| b.lines().next())
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    }

    /// The last lines of its log, then of its stderr.
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default()
            + "\n--- stderr ---\n"
            + &std::fs::read_to_string(self.log.with_extension("stderr")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Mails filed so far (Processed + Refused).
fn filed(env: &Env) -> usize {
    folder(env, "Processed").len() + folder(env, "Refused").len()
}

/// Rows of the shared journal not yet filed; `None` while PostgreSQL does not answer.
fn open_rows(pg: &postgres::Postgres) -> Option<usize> {
    pg.try_psql("SELECT count(*) FROM pam_approval.mail WHERE state <> 'filed'")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The run's seed: `PAMTEST_SEED`, else from the clock; printed so a failure can be replayed.
#[allow(clippy::print_stdout)]
fn seed() -> u64 {
    let seed = std::env::var("PAMTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos() as u64
                | 1
        });
    println!("PAMTEST_SEED={seed}");
    seed
}

/// `n` watcher hosts (not started) on `env`'s mailbox and PVWA and `pg`: each its own state
/// directory, `journal.host_name` (host1, host2, …) and `/readyz` port, the lease
/// [`LEASE_SECS`].
fn hosts(env: &Env, pg: &postgres::Postgres, n: usize) -> Vec<Host> {
    let d = env.dir.path();
    // Sends unpaced (200 replies at Exchange Online's pace would take minutes).
    let base = config_text(
        env,
        DEFAULT_APPROVERS,
        "max_sends_per_minute = 0",
        "poll_secs = 1\nconcurrency = 8",
    );
    let pgpw = secret(d, "pgpw", postgres::Postgres::PASSWORD);
    (0..n)
        .map(|i| {
            let name = format!("host{}", i + 1);
            let state = d.join(format!("state-{name}"));
            let port = free_port();
            let text = base.replace(
                &format!("state_dir = \"{}\"", d.join("state").display()),
                &format!("state_dir = \"{}\"", state.display()),
            );
            assert_ne!(text, base, "the state directory is per host");
            let text = format!(
                "{text}\n[journal]\nurl = \"{}\"\npassword = \"{pgpw}\"\nca_bundle = \"{}\"\n\
                 lease_secs = {LEASE_SECS}\nhost_name = \"{name}\"\n\n\
                 [metrics]\nlisten = \"127.0.0.1:{port}\"\n",
                pg.url(),
                pg.ca.display(),
            );
            let cfg = d.join(format!("config-{name}.toml"));
            std::fs::write(&cfg, text).expect("config");
            Host {
                log: d.join(format!("{name}.log")),
                name,
                cfg,
                port,
                child: None,
            }
        })
        .collect()
}

/// The mail forwarding request `n` (alice forwards; every tenth her own, every tenth another
/// a rejection).
fn forwarded(n: u32) -> Vec<u8> {
    mail_saying(
        &format!("ha{n}"),
        "alice@example.test",
        "DBSafe",
        n,
        if is_self_approval(n) {
            "alice@example.test"
        } else {
            "dave@example.test"
        },
        true,
        if is_reject(n) {
            "Reject: not in this run"
        } else {
            "Please approve."
        },
    )
}

/// What every two-host run must show at its end, for the requests FIRST..FIRST+mails: no
/// request confirmed or rejected twice (pam-sim's log of every call, carried out or refused),
/// each mail answered exactly once and filed, and every confirm in the shared audit trail.
#[allow(clippy::print_stdout)]
fn assert_exactly_once(env: &Env, pg: &postgres::Postgres, hosts: &[Host], mails: u32, seed: u64) {
    // PVWA: every confirm/reject call, carried out or refused, at most once per request.
    let mut attempts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for a in env.sim.state.pvwa.attempts() {
        assert_eq!(a.user, "svc_pam_level1", "{}", a.request_id);
        *attempts.entry((a.request_id, a.action)).or_default() += 1;
    }
    let twice: Vec<_> = attempts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "requests confirmed or rejected more than once (seed {seed}): {twice:?}"
    );
    let mut confirmed: BTreeMap<String, String> = BTreeMap::new();
    let mut rejected: BTreeSet<String> = BTreeSet::new();
    for a in env.sim.state.pvwa.actions() {
        if a.action == "confirm" {
            confirmed.insert(a.request_id, a.reason);
        } else if a.action == "reject" {
            rejected.insert(a.request_id);
        }
    }
    // The mailbox: answered exactly once each, to the forwarder; filed once.
    let mut replies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (to, subject) in sent_all(env) {
        assert_eq!(to, vec!["alice@example.test".to_string()], "{subject}");
        let rid = subject
            .split_whitespace()
            .find(|w| w.starts_with("DBSafe_"))
            .unwrap_or_else(|| panic!("no request id in {subject:?}"))
            .to_string();
        replies.entry(rid).or_default().push(subject.clone());
    }
    let processed = folder(env, "Processed");
    let refused = folder(env, "Refused");
    let inbox = folder(env, "inbox");
    for n in FIRST..FIRST + mails {
        let rid = format!("DBSafe_{n}");
        let mid = format!("ha{n}@corp.example.test");
        let got = replies.get(&rid).cloned().unwrap_or_default();
        assert_eq!(
            got.len(),
            1,
            "{rid}: answered {} times (seed {seed}): {got:?}",
            got.len()
        );
        if is_self_approval(n) {
            assert!(!confirmed.contains_key(&rid), "{rid} must not be confirmed");
            assert!(got[0].starts_with("Not approved:"), "{rid}: {got:?}");
            assert!(refused.contains(&mid), "{mid} filed in Refused");
        } else if is_reject(n) {
            assert!(!confirmed.contains_key(&rid), "{rid} must not be confirmed");
            assert!(rejected.contains(&rid), "{rid} rejected");
            assert!(got[0].starts_with("Rejected:"), "{rid}: {got:?}");
            assert!(processed.contains(&mid), "{mid} filed in Processed");
        } else {
            assert!(confirmed.contains_key(&rid), "{rid} confirmed");
            assert!(got[0].starts_with("Approved:"), "{rid}: {got:?}");
            assert!(processed.contains(&mid), "{mid} filed in Processed");
        }
        assert!(!inbox.contains(&mid), "{mid} left in the inbox");
    }
    let approvable = (FIRST..FIRST + mails)
        .filter(|&n| !is_self_approval(n) && !is_reject(n))
        .count();
    assert_eq!(confirmed.len(), approvable);
    assert_eq!(
        processed.len() + refused.len(),
        mails as usize,
        "each mail filed once"
    );
    assert!(inbox.is_empty(), "inbox empty: {inbox:?}");

    // The shared audit trail: each confirm's marker names one journal row for that request,
    // filed with outcome confirmed, with one `confirmed` history row, and the epoch that wrote
    // it (the history row's own) names one of the hosts in the record of takeovers
    // (`lease_history`).
    let names: BTreeSet<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let epoch = "h.epoch";
    let trail = pg.psql(&format!(
        "SELECT m.marker, m.request_id, m.state, m.outcome, {epoch}, l.holder \
         FROM pam_approval.mail m JOIN pam_approval.history h ON h.row = m.row \
         LEFT JOIN pam_approval.lease_history l ON l.epoch = {epoch} \
         WHERE h.state = 'confirmed' AND m.marker IS NOT NULL"
    ));
    let mut by_marker: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for line in trail.lines() {
        let f: Vec<String> = line.split('|').map(str::to_string).collect();
        by_marker.entry(f[0].clone()).or_default().push(f);
    }
    let mut epochs = BTreeSet::new();
    for (rid, reason) in &confirmed {
        let (marker, rows) = by_marker
            .iter()
            .find(|(m, _)| reason.contains(m.as_str()))
            .unwrap_or_else(|| panic!("{rid}: no journal row for the marker in {reason:?}"));
        assert_eq!(
            rows.len(),
            1,
            "{rid}: one confirmed history row for {marker}: {rows:?}"
        );
        let r = &rows[0];
        assert_eq!(&r[1], rid, "{marker}");
        assert_eq!(r[2], "filed", "{rid}");
        assert_eq!(r[3], "confirmed", "{rid}");
        assert!(
            r[4].parse::<i64>().is_ok_and(|e| e > 0),
            "{rid}: the epoch that confirmed it: {r:?}"
        );
        let host = r[5].split(':').next().unwrap_or_default();
        assert!(
            names.contains(host),
            "{rid}: the host that confirmed it (lease_history): {r:?}"
        );
        epochs.insert(r[4].clone());
    }
    println!(
        "audit trail: {} confirms under {} epochs (the epoch of each history row)",
        confirmed.len(),
        epochs.len(),
    );
}

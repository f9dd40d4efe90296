// The SIGKILL burst suite, included by watch_kill_burst.rs (EWS) and
// watch_kill_burst_graph.rs (Graph), which declare `watcher_env` with the backend.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use watcher_env::*;

const MAILS: u32 = 200;
const FIRST: u32 = 1000;
const KILLS: usize = 6;

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env!("CARGO_BIN_EXE_check-approval-request"))
}

/// xorshift64*: enough randomness for kill times, replayable from the printed seed.
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
}

/// Every tenth request is the forwarder's own (alice's): refused, never confirmed.
fn is_self_approval(n: u32) -> bool {
    n % 10 == 3
}

/// Every tenth request (another one) is rejected by mail (issue 32): rejected exactly once,
/// never confirmed, answered "Rejected:" once.
fn is_reject(n: u32) -> bool {
    n % 10 == 7
}

fn scenario() -> String {
    (FIRST..FIRST + MAILS)
        .map(|n| {
            let requester = if is_self_approval(n) { "alice" } else { "dave" };
            format!(
                "[[pvwa.requests]]\nnumber = {n}\nsafe = \"DBSafe\"\nrequester = \"{requester}\"\nlevels = [1, 0]\n"
            )
        })
        .collect()
}

fn request_id(n: u32) -> String {
    format!("DBSafe_{n}")
}

fn start(cfg: &std::path::Path, log: &std::path::Path) -> Child {
    Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .arg("--log-file")
        .arg(log)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the watcher")
}

/// Mails filed so far (Processed + Refused), among the burst's.
fn filed(env: &Env) -> usize {
    folder(env, "Processed").len() + folder(env, "Refused").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_during_a_burst_loses_nothing_and_repeats_nothing() {
    let Some(env) = start_with(&scenario()).await else {
        return;
    };
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
    let mut rng = Rng(seed);

    let d = env.dir.path();
    let cfg = d.join("config.toml");
    std::fs::write(
        &cfg,
        // Sends unpaced: 200 replies at Exchange Online's 30 a minute would take 7 minutes
        // (the pace has its own tests, watch_loop_graph.rs).
        config_text(
            &env,
            DEFAULT_APPROVERS,
            "max_sends_per_minute = 0",
            "poll_secs = 2\nconcurrency = 8",
        ),
    )
    .expect("config");
    let log = d.join("watcher.log");

    // The burst: 200 mails in batches of 20, 150 ms apart, while the watcher is killed and
    // started again.
    let mails: Vec<Vec<u8>> = (FIRST..FIRST + MAILS)
        .map(|n| {
            mail_saying(
                &format!("burst{n}"),
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
                    "Reject: not in this burst"
                } else {
                    "Please approve."
                },
            )
        })
        .collect();
    let state = env.sim.state.clone();
    let backend = env.backend;
    let feeder = std::thread::spawn(move || {
        for batch in mails.chunks(20) {
            for raw in batch {
                deliver_with(&state, backend, raw.clone());
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    });

    let mut progress = Vec::new();
    for _ in 0..KILLS {
        let mut child = start(&cfg, &log);
        tokio::time::sleep(Duration::from_millis(rng.between(300, 1500))).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        progress.push((
            confirms(&env).len(),
            sent_count(&env),
            filed(&env),
        ));
    }
    feeder.join().expect("all delivered");
    println!("after each SIGKILL (confirms, replies, filed): {progress:?}");
    assert!(
        progress
            .iter()
            .any(|&(c, _, f)| c > 0 && f < MAILS as usize),
        "no kill landed in the middle of the burst: {progress:?}"
    );

    // The last start runs to the end.
    let mut child = start(&cfg, &log);
    let until = Instant::now() + Duration::from_secs(180);
    while filed(&env) < MAILS as usize || sent_count(&env) < MAILS as usize {
        assert!(
            Instant::now() < until,
            "not all filed and answered within 180 s: {} filed, {} replies, {} confirms",
            filed(&env),
            sent_count(&env),
            confirms(&env).len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let anything still in flight show itself before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "the watcher stops on SIGTERM");

    // Confirmed exactly once per approvable request, with the level-1 account; never for the
    // forwarder's own.
    let mut confirmed: BTreeMap<String, usize> = BTreeMap::new();
    for (rid, user, _) in confirms(&env) {
        assert_eq!(user, "svc_pam_level1", "{rid}");
        *confirmed.entry(rid).or_default() += 1;
    }
    let mut rejected: BTreeMap<String, usize> = BTreeMap::new();
    for a in env.sim.state.pvwa.actions() {
        if a.action == "reject" {
            assert_eq!(a.user, "svc_pam_level1", "{}", a.request_id);
            *rejected.entry(a.request_id).or_default() += 1;
        }
    }
    // Answered exactly once, to the forwarder.
    let mut replies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (to, subject) in sent_all(&env) {
        assert_eq!(to, vec!["alice@example.test".to_string()], "{subject}");
        let rid = subject
            .split_whitespace()
            .find(|w| w.starts_with("DBSafe_"))
            .unwrap_or_else(|| panic!("no request id in {subject:?}"))
            .to_string();
        replies.entry(rid).or_default().push(subject.clone());
    }
    let processed = folder(&env, "Processed");
    let refused = folder(&env, "Refused");
    let inbox = folder(&env, "inbox");
    for n in FIRST..FIRST + MAILS {
        let rid = request_id(n);
        let mid = format!("burst{n}@corp.example.test");
        let got = replies.get(&rid).cloned().unwrap_or_default();
        assert_eq!(got.len(), 1, "{rid}: answered {} times: {got:?}", got.len());
        if is_self_approval(n) {
            assert_eq!(confirmed.get(&rid), None, "{rid} must not be confirmed");
            assert!(got[0].starts_with("Not approved:"), "{rid}: {got:?}");
            assert!(refused.contains(&mid), "{mid} filed in Refused");
        } else if is_reject(n) {
            assert_eq!(confirmed.get(&rid), None, "{rid} must not be confirmed");
            assert_eq!(rejected.get(&rid), Some(&1), "{rid} rejected exactly once");
            assert!(got[0].starts_with("Rejected:"), "{rid}: {got:?}");
            assert!(processed.contains(&mid), "{mid} filed in Processed");
        } else {
            assert_eq!(
                confirmed.get(&rid),
                Some(&1),
                "{rid} confirmed exactly once"
            );
            assert!(got[0].starts_with("Approved:"), "{rid}: {got:?}");
            assert!(processed.contains(&mid), "{mid} filed in Processed");
        }
        assert!(!inbox.contains(&mid), "{mid} left in the inbox");
    }
    assert_eq!(confirmed.len(), 160);
    assert_eq!(rejected.len(), 20);
    // The journal agrees: nothing left open, every row filed with its outcome.
    let journal = approval_core::journal::Journal::open(&d.join("state/journal.sqlite"))
        .expect("the journal opens");
    let open: Vec<_> = journal
        .unfinished()
        .expect("journal")
        .into_iter()
        .map(|e| (e.row, e.state, e.message_id))
        .collect();
    assert!(open.is_empty(), "rows left open: {open:?}");
    assert_eq!(
        processed.len() + refused.len(),
        MAILS as usize,
        "each mail filed once"
    );
    assert!(inbox.is_empty(), "inbox empty: {inbox:?}");
    let deleted = folder(&env, "deleteditems");
    assert!(deleted.is_empty(), "nothing deleted: {deleted:?}");
}

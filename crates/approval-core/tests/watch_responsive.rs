//! The watch loop stays responsive (issue 29, "A loop that stays responsive"): while a 10 MiB
//! hostile mail is read and the journal's disk is slow, `/healthz` keeps answering within 2 s
//! on every probe. In-process against pam-sim (PVWA + Exchange) and a real slapd, on the
//! production runtime (one thread: mails, `/metrics` and the watchdog share it).
//!
//! The slow disk: another connection holds the journal's write lock for a few seconds (as a
//! backup or a second tool would), so every journal write of the watcher waits in SQLite's busy
//! handler (up to its 10 s busy timeout), which is how a slow fsync looks from the caller: a
//! call that does not return. Nothing in the product is changed for the test. Before journal
//! calls, the notice reader and the parsing of large EWS answers ran on the blocking pool,
//! probes waited for the lock (seconds) and for the 10 MiB answer to be parsed (8 s in a debug
//! build), and failed.
//!
//! The probes run on their own OS thread with plain blocking sockets, so they measure the
//! watcher's executor, not their own.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use approval_core::pipeline::watch;
use tokio_util::sync::CancellationToken;
use watcher_env::*;

/// The longest a probe may take (generous: a loaded 2-core machine answers in milliseconds).
const BOUND: Duration = Duration::from_secs(2);
/// How long the journal's write lock is held after the mails arrive.
const HOLD: Duration = Duration::from_secs(6);

async fn eventually(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "not within {secs}s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One `GET /healthz`: its status line, or `None` when nothing listens yet.
fn probe(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines().next().map(str::to_string)
}

/// alice's forward of request 9 followed by 10 MiB of text made to keep a reader busy: soft
/// line breaks, HTML, field names of the notice, over and over.
fn hostile(mid: &str) -> Vec<u8> {
    let mut m = mail(
        mid,
        "alice@example.test",
        "DBSafe",
        9,
        requester_of(9),
        true,
    );
    let line = "<b>Safe:</b> DBSafe Request Id: 9 =\r\n<i>Account name:</i> x&amp;y <a href=3D\"x\">Reason:</a> ==3D=\r\n";
    while m.len() < 10 << 20 {
        m.extend_from_slice(line.as_bytes());
    }
    m
}

#[tokio::test]
async fn healthz_answers_while_a_huge_mail_is_read_and_the_journal_is_slow() {
    let env = env!();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut text = config_text(
        &env,
        "static",
        "",
        "poll_secs = 60\nconcurrency = 4\nportal_rights = \"none-held\"",
    );
    text.push_str(&format!(
        "\n[notice]\nmax_bytes = {}\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
        20 << 20
    ));
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let journal = env.dir.path().join("state").join("journal.sqlite");

    // The prober: every 100 ms, from the first answer on, each probe's time.
    let stop = Arc::new(AtomicBool::new(false));
    let times: Arc<Mutex<Vec<(Instant, Duration)>>> = Arc::default();
    let prober = {
        let (stop, times) = (stop.clone(), times.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                if let Some(status) = probe(port) {
                    assert!(status.contains(" 200"), "/healthz: {status}");
                    times.lock().unwrap().push((t0, t0.elapsed()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // The watcher on a thread and runtime of its own, as in production (one thread for it all):
    // pam-sim, in-process, serves from the test's runtime and does not count against it.
    let token = CancellationToken::new();
    let watcher = {
        let token = token.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(watch(&loaded, None, token))
        })
    };
    let body = async {
        eventually(20, "/healthz answers", || !times.lock().unwrap().is_empty()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // The slow disk: the journal's write lock held by another connection, from before the
        // mails arrive until HOLD after they are in the mailbox (the watcher has them by then,
        // and waits for the journal to record them).
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (delivered_tx, delivered_rx) = std::sync::mpsc::channel::<()>();
        let path = journal.clone();
        let locker = std::thread::spawn(move || {
            let c = rusqlite::Connection::open(&path).expect("open the journal");
            c.execute_batch("BEGIN IMMEDIATE")
                .expect("take the write lock");
            locked_tx.send(Instant::now()).expect("signal");
            delivered_rx.recv().expect("delivered");
            std::thread::sleep(HOLD);
            c.execute_batch("COMMIT").expect("release");
            Instant::now()
        });
        let locked_at = locked_rx.recv().expect("locked");
        forward(&env, "plain", "alice@example.test", 7);
        deliver(&env, hostile("hostile"));
        delivered_tx.send(()).expect("locker");
        eventually(120, "both mails filed", || folder(&env, "inbox").is_empty()).await;
        let released_at = locker.join().expect("locker");
        token.cancel();
        (locked_at, released_at, Instant::now())
    };
    let (locked_at, released_at, done_at) = tokio::time::timeout(Duration::from_secs(180), body)
        .await
        .expect("both mails filed within 3 minutes");
    let result = tokio::task::spawn_blocking(move || watcher.join().expect("watcher thread"))
        .await
        .expect("join");
    stop.store(true, Ordering::Relaxed);
    prober.join().expect("prober");
    result.expect("the loop ends cleanly");

    // The setup did what it says: the mails waited for the journal.
    assert!(
        released_at.duration_since(locked_at) >= HOLD,
        "the lock was held"
    );
    assert!(
        folder(&env, "Processed").contains(&"plain@corp.example.test".to_string()),
        "{:?}",
        folder(&env, "Processed")
    );
    assert!(
        confirms(&env).iter().any(|c| c.0 == "DBSafe_7"),
        "{:?}",
        confirms(&env)
    );
    // Every probe from the lock to the end answered within the bound, and there were many.
    let times = times.lock().unwrap().clone();
    let during: Vec<Duration> = times
        .iter()
        .filter(|(t, _)| *t >= locked_at && *t <= done_at)
        .map(|(_, d)| *d)
        .collect();
    assert!(
        during.len() >= 20,
        "{} probes while the journal was slow and the mail read",
        during.len()
    );
    let worst = during.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{} probes in {:?}, the slowest {worst:?}",
        during.len(),
        done_at.duration_since(locked_at)
    );
    assert!(
        worst < BOUND,
        "a probe took {worst:?} (bound {BOUND:?}); all: {during:?}"
    );
}

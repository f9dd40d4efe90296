//! A paused active host resumed after another took over sends nothing (issue 33): two watcher
//! processes on one mailbox, one PVWA and one real PostgreSQL (short lease); a burst arrives,
//! the active host is stopped with SIGSTOP mid-burst, the standby takes over and handles every
//! mail (those the paused host left in flight only after its lock-delay, by reading back); then
//! the paused host is continued: it must not call PVWA or send a mail (its in-memory work is
//! fenced), and says it is a standby. pam-sim + a real slapd + a real PostgreSQL; the seed
//! (when to pause) is printed and can be replayed with `PAMTEST_SEED`.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;
#[path = "../../approval-core/tests/support/postgres.rs"]
mod postgres;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/ha_hosts.rs");

const MAILS: u32 = 60;

/// Poll `cond` every 100 ms; panic naming `what` (and the hosts' logs) after `secs`.
#[allow(clippy::print_stderr)]
async fn wait(hosts: &[Host], secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        if Instant::now() > until {
            for h in hosts {
                eprintln!("--- {} ---\n{}", h.name, h.log_tail(40));
            }
            panic!("not within {secs} s: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_active_host_resumed_after_a_takeover_sends_nothing() {
    let Some(env) = start_with(&scenario(MAILS)).await else {
        return;
    };
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let seed = seed();
    let mut rng = Rng(seed);
    let mut hosts = hosts(&env, &pg, 2);
    hosts[0].start();
    wait(&hosts, 60, "host1 active", || hosts[0].readyz() == "active").await;
    hosts[1].start();
    wait(&hosts, 60, "host2 standby", || {
        hosts[1].readyz().starts_with("standby")
    })
    .await;

    // The burst; host1 is stopped once it has confirmed some of it.
    for n in FIRST..FIRST + MAILS {
        deliver_with(&env.sim.state, env.backend, forwarded(n));
    }
    let after = rng.between(3, 20) as usize;
    wait(&hosts, 120, "host1 confirms part of the burst", || {
        confirms(&env).len() >= after
    })
    .await;
    hosts[0].signal("-STOP");
    let at_stop = (confirms(&env).len(), sent_count(&env), filed(&env));
    println!("host1 stopped after {after}+ confirms: (confirms, replies, filed) {at_stop:?}");
    assert!(
        at_stop.2 < MAILS as usize,
        "the pause must land mid-burst: {at_stop:?}"
    );

    // host2 takes over and finishes every mail, host1's in-flight ones by reading back.
    wait(&hosts, 60, "host2 takes over", || {
        hosts[1].readyz() == "active"
    })
    .await;
    wait(&hosts, 180, "host2 handles every mail", || {
        filed(&env) == MAILS as usize
            && sent_count(&env) >= MAILS as usize
            && open_rows(&pg) == Some(0)
    })
    .await;
    let calls = env.sim.state.pvwa.attempts().len();
    let sent = sent_count(&env);
    let moved = (folder(&env, "Processed"), folder(&env, "Refused"));

    // host1 resumes: it learns that it lost the lease and does nothing more.
    hosts[0].signal("-CONT");
    wait(&hosts, 60, "host1 says it is a standby", || {
        hosts[0].readyz().starts_with("standby")
    })
    .await;
    // Let anything host1 still held in memory show itself before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.sim.state.pvwa.attempts().len(),
        calls,
        "the resumed host called PVWA: {:?}",
        &env.sim.state.pvwa.attempts()[calls..]
    );
    assert_eq!(sent_count(&env), sent, "the resumed host sent mail");
    assert_eq!(
        (folder(&env, "Processed"), folder(&env, "Refused")),
        moved,
        "the resumed host moved mail"
    );

    for h in &hosts {
        h.signal("-TERM");
    }
    for h in &mut hosts {
        if let Some(mut c) = h.child.take() {
            let st = c.wait().expect("wait");
            assert_eq!(st.code(), Some(0), "{} stops on SIGTERM", h.name);
        }
    }
    assert_exactly_once(&env, &pg, &hosts, MAILS, seed);
}

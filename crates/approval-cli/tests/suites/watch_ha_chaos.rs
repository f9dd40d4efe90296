// The two-host chaos suite (issue 33), included by watch_ha_chaos.rs (EWS),
// watch_ha_chaos_graph.rs (Graph) and watch_ha_chaos_privilege_cloud.rs, which declare
// `watcher_env` and `postgres` with the backend and the PVWA.
//
// Three watcher processes (each its own state directory and `journal.host_name`, one short
// lease) on one pam-sim mailbox and PVWA and one real PostgreSQL. 200 forwarded mails arrive in
// batches while, at random points (seeded; `PAMTEST_SEED` replays), a random watcher is killed
// with SIGKILL and started again, the active one is stopped with SIGSTOP for longer than the
// lease and continued, every watcher session is ended with `pg_terminate_backend`, and
// PostgreSQL restarts once. At the end: no request confirmed or rejected twice (pam-sim's log of
// every confirm/reject call, carried out or refused), every mail answered exactly once and filed,
// nothing left open in the journal, and every confirm found in the shared audit trail on
// PostgreSQL (the row whose marker the PVWA reason carries, its `confirmed` history row naming
// the epoch and host that wrote it).

const HOSTS: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// SIGKILL of the active host (a random one when none says so), started again after.
    KillActive,
    /// SIGKILL of a random host, started again after.
    Kill,
    Pause,
    Terminate,
    Restart,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_under_kills_pauses_and_a_database_restart_act_exactly_once() {
    let mails = mails_count();
    let Some(env) = start_with(&scenario(mails)).await else {
        return;
    };
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let seed = seed();
    let mut rng = Rng(seed);
    let t0 = Instant::now();
    let mut hosts = hosts(&env, &pg, HOSTS);
    for h in &mut hosts {
        h.start();
    }

    // The mails: batches of 10 at random intervals, from another thread.
    let raw: Vec<Vec<u8>> = (FIRST..FIRST + mails).map(forwarded).collect();
    let gaps: Vec<u64> = raw.chunks(10).map(|_| rng.between(100, 700)).collect();
    let state = env.sim.state.clone();
    let backend = env.backend;
    let feeder = std::thread::spawn(move || {
        for (batch, gap) in raw.chunks(10).zip(gaps) {
            for m in batch {
                deliver_with(&state, backend, m.clone());
            }
            std::thread::sleep(Duration::from_millis(gap));
        }
    });

    // The faults, in a random order with random gaps, while the mails arrive and are handled:
    // from the first confirm on (the hosts' start-up is not what is tested here).
    let until = Instant::now() + Duration::from_secs(60);
    while confirms(&env).is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut faults = vec![
        Fault::KillActive,
        Fault::Kill,
        Fault::Pause,
        Fault::Terminate,
        Fault::Terminate,
        Fault::Restart,
    ];
    for i in (1..faults.len()).rev() {
        faults.swap(i, rng.pick(i + 1));
    }
    let mut journal_of_faults = Vec::new();
    // Hosts that ended on their own, started again as systemd would: (when, host, exit code).
    let mut ended: Vec<String> = Vec::new();
    let supervise = |hosts: &mut Vec<Host>, ended: &mut Vec<String>| {
        for h in hosts.iter_mut() {
            if let Some(code) = h.restart_if_ended() {
                let last = h.log_tail(3).replace('\n', " | ");
                ended.push(format!(
                    "{:.1}s {} exited {code}: {last}",
                    t0.elapsed().as_secs_f64(),
                    h.name
                ));
            }
        }
    };
    for f in faults {
        tokio::time::sleep(Duration::from_millis(rng.between(500, 2500))).await;
        supervise(&mut hosts, &mut ended);
        let at = t0.elapsed().as_secs_f64();
        let progress = (confirms(&env).len(), sent_count(&env), filed(&env));
        match f {
            Fault::Kill | Fault::KillActive => {
                let active = matches!(f, Fault::KillActive)
                    .then(|| hosts.iter().position(|h| h.readyz() == "active"))
                    .flatten();
                let i = active.unwrap_or_else(|| rng.pick(HOSTS));
                hosts[i].sigkill();
                tokio::time::sleep(Duration::from_millis(rng.between(200, 1500))).await;
                hosts[i].start();
                journal_of_faults.push(format!(
                    "{at:.1}s SIGKILL {} ({}) {progress:?}",
                    hosts[i].name,
                    if active.is_some() { "active" } else { "random" }
                ));
            }
            Fault::Pause => {
                // The active host if one says so (/readyz), else a random one.
                let active = hosts.iter().position(|h| h.readyz() == "active");
                let i = active.unwrap_or_else(|| rng.pick(HOSTS));
                let ms = LEASE_SECS * 1000 + rng.between(1000, 3000);
                hosts[i].signal("-STOP");
                tokio::time::sleep(Duration::from_millis(ms)).await;
                hosts[i].signal("-CONT");
                journal_of_faults.push(format!(
                    "{at:.1}s SIGSTOP {} ({}) for {ms} ms {progress:?}",
                    hosts[i].name,
                    if active.is_some() { "active" } else { "random" }
                ));
            }
            Fault::Terminate => {
                let n = pg.terminate_sessions();
                journal_of_faults.push(format!(
                    "{at:.1}s pg_terminate_backend: {n} sessions {progress:?}"
                ));
            }
            Fault::Restart => {
                pg.restart();
                journal_of_faults.push(format!("{at:.1}s PostgreSQL restarted {progress:?}"));
            }
        }
    }
    feeder.join().expect("all delivered");
    println!("faults (confirms, replies, filed):");
    for l in &journal_of_faults {
        println!("  {l}");
    }

    // Until every mail is filed and answered and the journal has nothing open.
    let until = Instant::now() + Duration::from_secs(240);
    loop {
        let (f, s) = (filed(&env), sent_count(&env));
        supervise(&mut hosts, &mut ended);
        if f >= mails as usize && s >= mails as usize && open_rows(&pg) == Some(0) {
            break;
        }
        if Instant::now() > until {
            for h in &hosts {
                eprintln!("--- {} ---\n{}", h.name, h.log_tail(40));
            }
            panic!(
                "not done within 240 s (seed {seed}): {f} filed, {s} replies, {} confirms, open rows {:?}",
                confirms(&env).len(),
                open_rows(&pg)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let anything still in flight (a host resumed late, a standby's read-back) show itself.
    tokio::time::sleep(Duration::from_secs(2 * LEASE_SECS)).await;
    supervise(&mut hosts, &mut ended);
    println!("hosts that ended on their own and were started again: {ended:#?}");
    for h in &mut hosts {
        h.signal("-CONT");
        h.signal("-TERM");
    }
    for h in &mut hosts {
        if let Some(mut c) = h.child.take() {
            let st = c.wait().expect("wait");
            assert_eq!(
                st.code(),
                Some(0),
                "{} stops on SIGTERM (seed {seed}); its log ends:\n{}",
                h.name,
                h.log_tail(30)
            );
        }
    }
    println!("done in {:.1} s", t0.elapsed().as_secs_f64());

    assert_exactly_once(&env, &pg, &hosts, mails, seed);
}

// The watcher end to end with its journal on a real PostgreSQL (`[journal] url`, TLS verified,
// the password a secret reference): pam-sim (PVWA + the suite's mailbox backend), a real slapd,
// and support/postgres.rs. Mails are confirmed, answered and filed exactly once; the journal's
// rows are in the database (not in a SQLite file), survive a restart of the watcher, and a
// read-only reader (what `--status` opens) sees the counts.

// (`watcher_env` and `postgres` are declared by the including file, with the backend.)

use approval_core::journal::{Journal, State};
use approval_core::pipeline::Pipeline;
use watcher_env::*;

fn loaded(env: &Env, pg: &postgres::Postgres) -> approval_core::settings::Loaded {
    let text = format!(
        "{}\n[journal]\nurl = \"{}\"\npassword = \"{}\"\nca_bundle = \"{}\"\nschema = \"watch\"\n",
        config_text(env, DEFAULT_APPROVERS, "", ""),
        pg.url(),
        secret(env.dir.path(), "pgpw", postgres::Postgres::PASSWORD),
        pg.ca.display()
    );
    approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config")
}

#[tokio::test]
async fn mails_are_confirmed_answered_and_filed_once_with_the_journal_on_postgresql() {
    let env = env!();
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let l = loaded(&env, &pg);
    let w = Pipeline::new(&l, false).await.expect("pipeline builds");
    assert_eq!(w.journal().engine(), "postgresql");
    // bob approves lfischer's DBSafe request at level 1: confirmed, answered, filed.
    let raw = mail(
        "pg1",
        "bob@example.test",
        "DBSafe",
        7,
        requester_of(7),
        true,
    );
    let m1 = deliver(&env, raw.clone());
    done(&w.process(&m1).await.expect("process"), "confirmed");
    // dave is not an approver of DBSafe: refused, answered, filed.
    let m2 = deliver(
        &env,
        mail(
            "pg2",
            "dave@example.test",
            "DBSafe",
            7,
            requester_of(7),
            true,
        ),
    );
    let p = w.process(&m2).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_an_approver"), "{p:?}");
    w.close().await;
    drop(w);

    // A restarted watcher (a new connection) finds the same mail known: no second confirm.
    let w = Pipeline::new(&l, false)
        .await
        .expect("pipeline builds again");
    let again = deliver(&env, raw);
    let p = w.process(&again).await.expect("process");
    assert_eq!(p.outcome.as_deref(), Some("already_processed"), "{p:?}");
    w.close().await;
    drop(w);

    let c = confirms(&env);
    assert_eq!(c.len(), 1, "one confirm: {c:?}");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("DBSafe_7", "svc_pam_level1")
    );
    assert_eq!(
        sent_to(&env, "bob@example.test").len(),
        2,
        "the reply and the already-processed one"
    );
    assert_eq!(sent_to(&env, "dave@example.test").len(), 1, "one refusal");
    assert_eq!(folder(&env, "Processed").len(), 2);
    assert_eq!(folder(&env, "Refused").len(), 1);
    assert!(folder(&env, "inbox").is_empty());

    // The rows live in PostgreSQL, in the configured schema; no SQLite journal was made.
    assert_eq!(
        pg.psql("SELECT state, outcome FROM watch.mail ORDER BY row"),
        "filed|confirmed\nfiled|refused\n"
    );
    assert_eq!(
        pg.psql("SELECT string_agg(state, ',' ORDER BY id) FROM watch.history WHERE row = 1")
            .trim(),
        "seen,decided,confirmed,notified,filed"
    );
    assert!(!env.dir.path().join("state/journal.sqlite").exists());

    // What --status opens: read only, the same counts.
    let t = l
        .config
        .journal
        .target(&l.origin)
        .expect("valid")
        .expect("postgres");
    let pw = approval_core::secret::SecretString::from(postgres::Postgres::PASSWORD.to_string());
    let r = Journal::open_postgres(&t, Some(pw), false).expect("reader");
    let s = r.stats().expect("stats");
    assert_eq!(s.unfinished, 0, "{s:?}");
    assert_eq!(
        s.finished,
        vec![
            ("confirmed".to_string(), String::new(), 1),
            ("refused".to_string(), "not_an_approver".to_string(), 1)
        ]
    );
    assert!(
        r.all()
            .expect("rows")
            .iter()
            .all(|e| e.state == State::Filed)
    );
}

/// The site check's journal section: connects over verified TLS and reads the schema version;
/// a CA that did not sign the server's certificate fails, saying so.
#[tokio::test]
async fn the_site_check_connects_to_the_journal_and_reads_its_schema_version() {
    let env = env!();
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let journal_items = |l: &approval_core::settings::Loaded| {
        let l = l.clone();
        async move {
            let opts = approval_core::site_check::Options {
                mails: 0,
                approver: None,
            };
            let r = approval_core::site_check::run(&l, opts).await;
            r.section("journal").to_vec()
        }
    };
    let l = loaded(&env, &pg);
    let items = journal_items(&l).await;
    let show = format!("{items:?}");
    assert_eq!(items.len(), 2, "{show}");
    assert_eq!(items[0].check, "connect", "{show}");
    assert_eq!(items[0].status.label(), "ok", "{show}");
    assert!(items[1].finding.contains("not created yet"), "{show}");
    // The watcher creates it; the check reads version 2 and creates nothing itself; it reports
    // the lease of the active host (none yet, then the one taking it).
    let w = Pipeline::new(&l, false).await.expect("pipeline builds");
    let items = journal_items(&l).await;
    assert!(items[1].finding.contains("at version 2"), "{items:?}");
    assert_eq!(items[2].check, "lease", "{items:?}");
    assert!(
        items[2].finding.starts_with("no host has taken the lease yet"),
        "{items:?}"
    );
    let mut h = approval_core::pipeline::ha::Holder::for_pipeline(&w).expect("on PostgreSQL");
    assert!(matches!(h.try_take().await, Ok(Some((1, _)))));
    let items = journal_items(&l).await;
    let host = &l.config.journal.target(&l).expect("valid").expect("pg").host_name;
    assert!(
        items[2]
            .finding
            .starts_with(&format!("active host: {host} (epoch 1, lease renewed ")),
        "{items:?}"
    );
    h.release(1).await;
    w.close().await;
    drop(w);
    // Another CA: the connection fails and says it is the certificate.
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = pam_sim::tls::ensure(other.path()).expect("ca").ca_cert;
    let text = format!(
        "{}\n[journal]\nurl = \"{}\"\npassword = \"{}\"\nca_bundle = \"{}\"\nschema = \"watch\"\n",
        config_text(&env, DEFAULT_APPROVERS, "", ""),
        pg.url(),
        secret(env.dir.path(), "pgpw", postgres::Postgres::PASSWORD),
        other_ca.display()
    );
    let bad = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let items = journal_items(&bad).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].status.label(), "FAIL", "{items:?}");
    assert!(
        items[0].finding.contains("certificate") || items[0].finding.contains("UnknownIssuer"),
        "{items:?}"
    );
}

/// The watch loop on the PostgreSQL journal: mail delivered while it runs is confirmed and
/// filed once, and the mailbox's catch-up position (EWS sync state, Graph delta link) is kept in
/// the journal's `kv`, not in a file of the state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_loop_keeps_its_catch_up_position_in_the_postgresql_journal() {
    use std::sync::Arc;
    use std::time::Duration;
    let env = env!();
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let p = Arc::new(
        Pipeline::new(&loaded(&env, &pg), false)
            .await
            .expect("pipeline builds"),
    );
    let token = tokio_util::sync::CancellationToken::new();
    let body = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        deliver(
            &env,
            mail("loop1", "bob@example.test", "DBSafe", 7, requester_of(7), true),
        );
        for _ in 0..200 {
            if confirms(&env).len() == 1 && folder(&env, "inbox").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        token.cancel();
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(
            approval_core::pipeline::watch_loop::run(p.clone(), token.clone()),
            body
        )
    })
    .await
    .expect("the loop returns after cancel");
    result.expect("the loop ends cleanly");
    p.close().await;
    assert_eq!(confirms(&env).len(), 1, "{:?}", confirms(&env));
    assert_eq!(sent_to(&env, "bob@example.test").len(), 1);
    let kv = pg.psql("SELECT length(value) > 0 FROM watch.kv WHERE name = 'mailbox.sync'");
    assert_eq!(kv.trim(), "t", "the catch-up position is in the journal");
    assert!(
        !env.dir.path().join("state/mailbox.sync").exists(),
        "and not in the state directory"
    );
}

/// Two or more hosts (issue 33): under the lease, the confirm starts only with at least 40 % of
/// the lease left (else the mail waits for the active host, no attempt counted); a row an
/// older epoch left `decided` is resolved by the next active host only after the lock-delay,
/// then by reading PVWA back, and confirmed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_lease_a_call_needs_enough_lease_left_and_an_older_epochs_row_waits() {
    use approval_core::journal::lease::boot_clock;
    use approval_core::pipeline::ha::Holder;
    use std::time::Duration;
    let env = env!();
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let l = loaded(&env, &pg);
    let w = Pipeline::new(&l, false).await.expect("pipeline builds");
    let mut h = Holder::for_pipeline(&w).expect("on PostgreSQL");
    let Ok(Some((epoch, how))) = h.try_take().await else {
        panic!("the lease is taken")
    };
    assert_eq!((epoch, how.as_str()), (1, "vacant"));
    let lease = h.lease().clone();
    assert_eq!(lease.ttl, Duration::from_secs(10));
    // 3.5 s of the 10 s lease left: journal writes still pass the fence, calls do not start.
    lease.took(epoch, boot_clock().saturating_sub(Duration::from_millis(6_500)));
    let m = deliver(
        &env,
        mail(
            "lease1",
            "bob@example.test",
            "DBSafe",
            7,
            requester_of(7),
            true,
        ),
    );
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.state, Some(State::Decided), "{p:?}");
    assert!(
        p.pending.as_deref().is_some_and(|t| t.contains("the PVWA confirm not started")),
        "{p:?}"
    );
    assert_eq!(p.attempts, 0, "no attempt counted: {p:?}");
    assert!(confirms(&env).is_empty(), "no confirm without enough lease");
    // This host stops; another takes the lease over (epoch 2).
    h.release(epoch).await;
    w.close().await;
    drop(w);
    let w2 = Pipeline::new(&l, false).await.expect("pipeline builds");
    let mut h2 = Holder::for_pipeline(&w2).expect("on PostgreSQL");
    let Ok(Some((epoch2, how))) = h2.try_take().await else {
        panic!("taken over")
    };
    assert_eq!((epoch2, how.as_str()), (2, "released"));
    // Within the lock-delay the row the older epoch left `decided` waits.
    let p = w2.process(&m).await.expect("process");
    assert_eq!(p.state, Some(State::Decided), "{p:?}");
    assert!(p.retry_in.is_some_and(|d| d > Duration::ZERO), "{p:?}");
    assert!(confirms(&env).is_empty(), "nothing done within the lock-delay");
    // Once the lock-delay (PVWA's or the mailbox's timeout + 5 s) has passed since the
    // takeover: read back (no marker in PVWA), decided again, confirmed once, answered, filed.
    let lease2 = h2.lease().clone();
    lease2.took(epoch2, boot_clock().saturating_sub(Duration::from_secs(60)));
    lease2.renewed(epoch2, boot_clock());
    let p = w2.process(&m).await.expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    let j = w2.journal();
    assert_eq!(j.row_epoch(p.row.expect("row")).expect("journal"), Some(2));
    h2.release(epoch2).await;
    w2.close().await;
}

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
    // The watcher creates it; the check reads version 1 and creates nothing itself.
    let w = Pipeline::new(&l, false).await.expect("pipeline builds");
    w.close().await;
    drop(w);
    let items = journal_items(&l).await;
    assert!(items[1].finding.contains("at version 1"), "{items:?}");
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

//! The lease of the active host on a real PostgreSQL (issue 33): taken only when vacant,
//! expired or released, the epoch growing with every takeover; a stale holder's journal write
//! refused (`Fenced`) and the row left as it was; a takeover waits for a fenced transaction in
//! progress; and a holder whose database stops answering stops acting at its local deadline,
//! without any answer. The server: `support/postgres.rs`.

#[path = "support/postgres.rs"]
mod postgres;

use std::sync::Arc;
use std::time::Duration;

use approval_core::journal::lease::{self, Lease, boot_clock, sql};
use approval_core::journal::{Begin, Journal, JournalError, PgTarget, State};
use approval_core::metrics::Metrics;
use approval_core::pipeline::ha::{Demotion, Holder};
use approval_core::secret::SecretString;

fn target(pg: &postgres::Postgres, schema: &str) -> PgTarget {
    let text = format!(
        "[journal]\nurl = \"{}\"\npassword = \"env:UNUSED\"\nschema = \"{schema}\"\nca_bundle = \"{}\"\nlease_secs = 3\nhost_name = \"web01\"\n",
        pg.url(),
        pg.ca.display()
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("parses");
    loaded
        .config
        .journal
        .target(&loaded.origin)
        .expect("valid")
        .expect("a PostgreSQL target")
}

fn pw() -> Option<SecretString> {
    Some(SecretString::from(postgres::Postgres::PASSWORD.to_string()))
}

/// One host: its journal (fenced with its lease) and its lease connection.
struct Host {
    j: Journal,
    lease: Arc<Lease>,
    c: tokio_postgres::Client,
}

async fn host(pg: &postgres::Postgres, schema: &str, name: &str) -> Host {
    let t = target(pg, schema);
    let j = Journal::open_postgres(&t, pw(), true).expect("opens");
    let lease = Lease::new(name, Duration::from_secs(3));
    j.attach_lease(lease.clone());
    let c = approval_core::journal::pg::connect_lease(&t, pw().as_ref(), Duration::from_secs(2))
        .await
        .expect("lease connection");
    Host { j, lease, c }
}

impl Host {
    async fn take(&self, ttl: f64) -> Option<(i64, String)> {
        let sent = boot_clock();
        let t = sql::acquire(&self.c, lease::LEASE_NAME, &self.lease.holder, ttl)
            .await
            .expect("acquire");
        if let Some((epoch, _)) = &t {
            self.lease.took(*epoch, sent);
        }
        t
    }
}

/// A journal in `schema` (migrated) whose holder, with a 3 s lease, took the vacant lease:
/// the journal, the lease, the metrics, the holder and its epoch.
async fn active(
    pg: &postgres::Postgres,
    schema: &str,
) -> (Journal, Arc<Lease>, Arc<Metrics>, Holder, i64) {
    let t = target(pg, schema);
    let j = Journal::open_postgres(&t, pw(), true).expect("opens");
    let l = Lease::new("web01", Duration::from_secs(3));
    j.attach_lease(l.clone());
    let metrics = Arc::new(Metrics::with_ha(true));
    let mut h = Holder::new(l.clone(), t, pw(), metrics.clone());
    let Ok(Some((epoch, how))) = h.try_take().await else {
        panic!("taken")
    };
    assert_eq!(how, "vacant");
    (j, l, metrics, h, epoch)
}

fn epoch_of(pg: &postgres::Postgres, schema: &str, key: &str) -> String {
    pg.psql(&format!(
        "SELECT state || '|' || COALESCE(epoch::text, '-') FROM {schema}.mail WHERE key = '{key}'"
    ))
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_taken_only_when_free_and_a_stale_holder_writes_nothing() {
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let a = host(&pg, "ls", "web01").await;
    let b = host(&pg, "ls", "web02").await;
    // Vacant: A takes it (epoch 1); B cannot while A's is live.
    assert_eq!(a.take(3.0).await, Some((1, "vacant".to_string())));
    assert_eq!(b.take(3.0).await, None);
    assert!(
        sql::renew(&a.c, lease::LEASE_NAME, &a.lease.holder, 1, 3.0)
            .await
            .expect("renew")
    );
    // A writes, recording its epoch; B (standing by) writes nothing.
    let Begin::New(row) = a.j.begin("mid:a@t", None, Some("I-a")).expect("A writes") else {
        panic!("new")
    };
    assert_eq!(epoch_of(&pg, "ls", "mid:a@t"), "seen|1");
    let e =
        b.j.begin("mid:b@t", None, Some("I-b"))
            .expect_err("B is fenced");
    assert!(e.is_fenced(), "{e}");
    assert_eq!(b.lease.fenced_writes(), 1);
    assert_eq!(pg.psql("SELECT count(*) FROM ls.mail").trim(), "1");
    // B takes over only once A's lease has expired (A stopped renewing): epoch 2.
    let mut taken = None;
    for _ in 0..100 {
        taken = b.take(3.0).await;
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(taken, Some((2, "expired".to_string())));
    // A, paused past its lease, believes it still holds it (its local deadline is refreshed
    // here, as if the pause fell between its check and its write): the database refuses.
    a.lease.took(1, boot_clock());
    let e =
        a.j.decided(row.row, "R1", 1, "alice", "mk-1")
            .expect_err("A is fenced");
    assert!(matches!(e, JournalError::Fenced(_)), "{e}");
    assert_eq!(a.lease.view().epoch, None, "A stops acting");
    assert_eq!(a.lease.fenced_writes(), 1);
    assert_eq!(
        epoch_of(&pg, "ls", "mid:a@t"),
        "seen|1",
        "the row is unchanged"
    );
    // The renewal of the stale epoch fails too.
    assert!(
        !sql::renew(&a.c, lease::LEASE_NAME, &a.lease.holder, 1, 3.0)
            .await
            .expect("renew")
    );
    // B moves the row, with its epoch.
    let d =
        b.j.decided(row.row, "R1", 1, "alice", "mk-1")
            .expect("B writes");
    assert_eq!(d.state, State::Decided);
    assert_eq!(epoch_of(&pg, "ls", "mid:a@t"), "decided|2");
    assert_eq!(b.j.row_epoch(row.row).expect("journal"), Some(2));
    // The audit trail names the epoch of each change: A saw it, B decided it.
    let trail = pg.psql(
        "SELECT string_agg(h.state || ':' || COALESCE(h.epoch::text, '-'), ',' ORDER BY h.id) \
         FROM ls.history h JOIN ls.mail m ON m.row = h.row WHERE m.key = 'mid:a@t'",
    );
    assert_eq!(trail.trim(), "seen:1,decided:2");
    // A clean stop releases it: taken at once (epoch 3), not counted as a failover.
    assert!(
        sql::release(&b.c, lease::LEASE_NAME, &b.lease.holder, 2)
            .await
            .expect("release")
    );
    a.lease.drop_lease();
    assert_eq!(a.take(3.0).await, Some((3, "released".to_string())));
    let info = a.j.lease_info().expect("journal").expect("a lease");
    assert_eq!(lease::host_of(&info.holder), "web01");
    assert_eq!((info.epoch, info.failovers), (3, 1));
    assert!(info.live() && info.last_failover_ms.is_some(), "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_for_a_fenced_transaction_in_progress() {
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let a = host(&pg, "lw", "web01").await;
    let b = host(&pg, "lw", "web02").await;
    // A holds a lease of 0.2 s, and has a fenced transaction open (the journal's first
    // statement), which outlives the lease.
    assert_eq!(a.take(0.2).await.map(|t| t.0), Some(1));
    let mut c = approval_core::journal::pg::connect_lease(
        &target(&pg, "lw"),
        pw().as_ref(),
        Duration::from_secs(30),
    )
    .await
    .expect("connect");
    let tx = c.transaction().await.expect("begin");
    let held = tx
        .query(
            lease::FENCE_SQL,
            &[&lease::LEASE_NAME, &a.lease.holder, &1i64],
        )
        .await
        .expect("fence");
    assert_eq!(held.len(), 1, "A holds epoch 1");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // B's takeover (the lease has expired) waits for A's transaction.
    let lease_c = b.c;
    let holder = b.lease.holder.clone();
    let takeover = tokio::spawn(async move {
        sql::acquire(&lease_c, lease::LEASE_NAME, &holder, 3.0)
            .await
            .expect("acquire")
    });
    let mut waiting = false;
    for _ in 0..100 {
        if pg
            .psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'pam-approval-lease'")
            .trim()
            == "1"
        {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(waiting, "the takeover waits for the fenced transaction");
    assert!(!takeover.is_finished());
    // A's write commits before the takeover; the new host sees it.
    tx.execute(
        "INSERT INTO kv (name, value) VALUES ('written-by', 'a')",
        &[],
    )
    .await
    .expect("write");
    tx.commit().await.expect("commit");
    assert_eq!(
        takeover.await.expect("task"),
        Some((2, "expired".to_string()))
    );
    assert_eq!(
        b.j.get_value("written-by").expect("journal").as_deref(),
        Some("a")
    );
    // After it, A's fenced transaction finds no lease.
    let tx = c.transaction().await.expect("begin");
    let held = tx
        .query(
            lease::FENCE_SQL,
            &[&lease::LEASE_NAME, &a.lease.holder, &1i64],
        )
        .await
        .expect("fence");
    assert!(held.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_database_stops_answering_stops_acting_at_its_deadline() {
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let (j, l, metrics, mut h, epoch) = active(&pg, "ld").await;
    assert_eq!(epoch, 1);
    assert!(l.may_act(Duration::from_millis(1200)).is_ok());
    // The lease connection's server process stops answering (SIGSTOP): no error, no answer.
    let pid = pg
        .psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'pam-approval-lease'")
        .trim()
        .to_string();
    assert!(!pid.is_empty() && !pid.contains('\n'), "{pid:?}");
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let why = h.keep(epoch).await;
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status();
    assert!(matches!(why, Demotion::DatabaseLost(_)), "{why:?}");
    assert_eq!(l.view().epoch, None);
    assert!(l.fence().is_none() && l.may_act(Duration::ZERO).is_err());
    assert!(j.set_value("x", "y").expect_err("not held").is_fenced());
    let text = metrics.encode();
    assert!(text.contains("pam_approval_ha_active 0"), "{text}");
    assert!(text.contains("pam_approval_ha_database_up 0"), "{text}");
    assert!(
        text.contains(r#"pam_approval_ha_demotions_total{reason="database_lost"} 1"#),
        "{text}"
    );
    let (ready, said) = metrics.readiness(Duration::from_secs(60));
    assert!(!ready);
    assert_eq!(said, "journal database unreachable: not acting\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_fails_is_tried_again_and_the_holder_keeps_its_epoch() {
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let (j, l, metrics, mut h, epoch) = active(&pg, "rt").await;
    let keeping = tokio::spawn(async move { h.keep(epoch).await });
    // For 1.2 s (two renewal periods of a 3 s lease) the lease table is not there under its
    // name: every renewal in that time fails at once with an error ("relation does not
    // exist"), whatever the timing, and none succeeds. Then it is back, well within the local
    // deadline (at most 0.6 s + 1.2 s after the last renewal, of 3 s).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pg = Arc::new(pg);
    let away = {
        let pg = pg.clone();
        tokio::task::spawn_blocking(move || {
            // Two psql runs: one would make it a single transaction, invisible to the holder.
            pg.psql("ALTER TABLE rt.lease RENAME TO lease_away");
            std::thread::sleep(Duration::from_millis(1200));
            pg.psql("ALTER TABLE rt.lease_away RENAME TO lease");
        })
    };
    away.await.expect("the table was renamed and back");
    // Two lease lengths later the holder still holds the lease at the same epoch.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        !keeping.is_finished(),
        "demoted after a failed renewal: {:?}",
        keeping.await
    );
    assert_eq!(l.view().epoch, Some(epoch));
    assert!(l.may_act(Duration::from_millis(1200)).is_ok());
    let row = pg.psql(
        "SELECT epoch || '|' || holder || '|' || (now() - renewed_at < interval '2 seconds') FROM rt.lease",
    );
    assert_eq!(row.trim(), format!("{epoch}|{}|true", l.holder));
    // The journal still writes under the same epoch; nothing was counted as a demotion.
    j.set_value("x", "y").expect("written under the lease");
    let text = metrics.encode();
    assert!(text.contains("pam_approval_ha_active 1"), "{text}");
    assert!(!text.contains("pam_approval_ha_demotions_total{"), "{text}");
    keeping.abort();
}

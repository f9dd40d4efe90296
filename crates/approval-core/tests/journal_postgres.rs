//! The journal on a real PostgreSQL (issue 33, first step): the same semantics as the SQLite
//! journal (every check below runs on both engines), the schema's migration, the URL and TLS
//! rules. The server: `support/postgres.rs` (skipped without PostgreSQL unless
//! `PAMTEST_REQUIRE_SERVERS=1`).

#[path = "support/postgres.rs"]
mod postgres;

use approval_core::journal::{Begin, Journal, JournalConfig, PgTarget, State, item_key};
use approval_core::secret::SecretString;

fn target(pg: &postgres::Postgres, schema: &str, ca: Option<&std::path::Path>) -> PgTarget {
    let text = format!(
        "[journal]\nurl = \"{}\"\npassword = \"env:UNUSED\"\nschema = \"{schema}\"\n{}",
        pg.url(),
        ca.map(|c| format!("ca_bundle = \"{}\"\n", c.display()))
            .unwrap_or_default()
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

fn open(pg: &postgres::Postgres, schema: &str) -> Journal {
    Journal::open_postgres(&target(pg, schema, Some(&pg.ca)), pw(), true).expect("opens")
}

/// The journal's semantics, engine-independent: every assertion holds on SQLite and PostgreSQL.
fn semantics(j: &Journal) {
    // A new mail, then the same mail again.
    let Begin::New(a) = j
        .begin("mid:a@t", Some("<a@t>"), Some("I-a"))
        .expect("journal call")
    else {
        panic!("new")
    };
    assert_eq!(a.state, State::Seen);
    let Begin::Known(again) = j
        .begin("mid:a@t", Some("<a@t>"), Some("I-a2"))
        .expect("journal call")
    else {
        panic!("known")
    };
    assert_eq!(
        (again.row, again.mailbox_item.as_deref()),
        (a.row, Some("I-a2"))
    );
    // Forward only: seen -> confirmed is refused.
    assert!(j.confirmed(a.row, "x").is_err());
    let d = j
        .decided_for(
            a.row,
            "R1",
            1,
            "Alice@Corp",
            "mk-a",
            &["ALICE".into(), "p:1".into()],
        )
        .expect("journal call");
    assert_eq!(
        (
            d.state,
            d.request_id.as_deref(),
            d.level,
            d.marker.as_deref()
        ),
        (State::Decided, Some("R1"), Some(1), Some("mk-a"))
    );
    // The send key (marker) is unique: a second row cannot take it.
    let Begin::New(b) = j.begin("mid:b@t", None, Some("I-b")).expect("journal call") else {
        panic!("new")
    };
    assert!(
        j.decided(b.row, "R1", 2, "bob", "mk-a").is_err(),
        "a marker used twice"
    );
    assert_eq!(
        j.get(b.row)
            .expect("journal call")
            .expect("journal call")
            .state,
        State::Seen,
        "rolled back"
    );
    // Whom this tool confirmed for, across mails.
    let acted = j.acted_for("R1", Some(b.row)).expect("journal call");
    assert_eq!(acted.len(), 1);
    assert_eq!(acted[0].identities, ["alice", "alice@corp", "p:1"]);
    assert!(
        j.acted_for("R1", Some(a.row))
            .expect("journal call")
            .is_empty()
    );
    assert_eq!(j.acted_for("R1", None).expect("journal call").len(), 1);
    // A reject decision is recorded in kv in the same transaction.
    j.decided_to_reject(b.row, "R2", 2, "bob", "mk-b", &[])
        .expect("journal call");
    assert!(j.is_reject(b.row).expect("journal call"));
    assert!(!j.is_reject(a.row).expect("journal call"));
    j.rejected(b.row, "pvwa holds the reject")
        .expect("journal call");
    // Faults counted.
    assert_eq!(j.attempt_failed(a.row, "timeout").expect("journal call"), 1);
    assert_eq!(j.attempt_failed(a.row, "timeout").expect("journal call"), 2);
    j.confirmed(a.row, "confirmed").expect("journal call");
    assert!(j.confirmed(a.row, "twice").is_err(), "confirmed twice");
    let stats = j.stats().expect("journal call");
    assert_eq!(
        (
            stats.unfinished,
            stats.unfinished_with_faults,
            stats.replies_owed
        ),
        (2, 1, 2)
    );
    assert!(stats.oldest_unfinished_ms.is_some() && stats.last_update_ms.is_some());
    j.notified(a.row).expect("journal call");
    j.filed(a.row, "Processed").expect("journal call");
    // Refused from seen.
    let Begin::New(c) = j.begin("mid:c@t", None, None).expect("journal call") else {
        panic!("new")
    };
    j.refused(c.row, "not_approver", "not an approver", Some("R3"), None)
        .expect("journal call");
    j.notified(c.row).expect("journal call");
    j.filed(c.row, "Refused").expect("journal call");
    let stats = j.stats().expect("journal call");
    assert_eq!(
        stats.finished,
        vec![
            ("confirmed".to_string(), String::new(), 1),
            ("refused".to_string(), "not_approver".to_string(), 1)
        ]
    );
    assert_eq!((stats.unfinished, stats.replies_owed), (1, 1));
    // The audit trail, in order.
    let h: Vec<String> = j
        .history(a.row)
        .expect("journal call")
        .into_iter()
        .map(|x| x.1)
        .collect();
    assert_eq!(h, ["seen", "decided", "confirmed", "notified", "filed"]);
    assert_eq!(
        j.history(a.row).expect("journal call")[4].2.as_deref(),
        Some("Processed")
    );
    // Unfinished work and lookups.
    let unf: Vec<i64> = j
        .unfinished()
        .expect("journal call")
        .iter()
        .map(|e| e.row)
        .collect();
    assert_eq!(unf, [b.row]);
    assert_eq!(
        j.unfinished_by_item("I-b")
            .expect("journal call")
            .expect("journal call")
            .row,
        b.row
    );
    assert!(
        j.unfinished_by_item("I-a2")
            .expect("journal call")
            .is_none(),
        "filed"
    );
    // The provisional row of an unreadable item becomes the mail's own.
    let Begin::New(p) = j
        .begin(&item_key("I9"), None, Some("I9"))
        .expect("journal call")
    else {
        panic!("new")
    };
    j.attempt_failed(p.row, "too large").expect("journal call");
    let Begin::Known(e) = j
        .begin("mid:z@t", Some("<z@t>"), Some("I9"))
        .expect("journal call")
    else {
        panic!("known")
    };
    assert_eq!((e.row, e.attempts, e.key.as_str()), (p.row, 1, "mid:z@t"));
    // Sync state of the mailbox.
    assert_eq!(j.get_value("graph.delta").expect("journal call"), None);
    j.set_value("graph.delta", "https://graph/delta?token=1")
        .expect("journal call");
    j.set_value("graph.delta", "https://graph/delta?token=2")
        .expect("journal call");
    assert_eq!(
        j.get_value("graph.delta").expect("journal call").as_deref(),
        Some("https://graph/delta?token=2")
    );
    assert_eq!(j.all().expect("journal call").len(), 4);
}

#[test]
fn the_journals_semantics_hold_on_sqlite() {
    semantics(&Journal::in_memory().expect("journal call"));
}

#[test]
fn the_journals_semantics_hold_on_postgresql() {
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let j = open(&pg, "pam_approval");
    assert_eq!(j.engine(), "postgresql");
    semantics(&j);
    // Written to the server, in the configured schema: a second connection reads it.
    drop(j);
    let j = open(&pg, "pam_approval");
    assert_eq!(j.all().expect("journal call").len(), 4);
    assert_eq!(
        pg.psql("SELECT count(*) FROM pam_approval.history").trim(),
        "13"
    );
}

#[test]
fn the_schema_is_created_migrated_once_and_a_newer_one_refused() {
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let t = target(&pg, "mig", Some(&pg.ca));
    // A reader (--status) on an empty database creates nothing.
    let r = Journal::open_postgres(&t, pw(), false).expect("reads");
    assert_eq!(r.schema_version().expect("journal call"), Some(0));
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'mig'")
            .trim(),
        "0"
    );
    drop(r);
    let j = Journal::open_postgres(&t, pw(), true).expect("creates");
    assert_eq!(j.schema_version().expect("journal call"), Some(2));
    drop(j);
    // Opening again migrates nothing.
    let j = Journal::open_postgres(&t, pw(), true).expect("reopens");
    assert_eq!(j.schema_version().expect("journal call"), Some(2));
    drop(j);
    assert_eq!(
        pg.psql("SELECT count(*) FROM mig.schema_version").trim(),
        "2"
    );
    // A journal of version 1 (step 1: one host) is brought to version 2: the lease, its
    // history, the epoch per mail row; its rows kept.
    pg.psql(
        "DROP TABLE mig.lease; DROP TABLE mig.lease_history; ALTER TABLE mig.mail DROP COLUMN epoch; \
         ALTER TABLE mig.history DROP COLUMN epoch; \
         DELETE FROM mig.schema_version WHERE version = 2; \
         INSERT INTO mig.mail (key, state, first_seen_ms, updated_ms) VALUES ('mid:v1@t', 'seen', 1, 1)",
    );
    let j = Journal::open_postgres(&t, pw(), true).expect("migrates");
    assert_eq!(j.schema_version().expect("journal call"), Some(2));
    assert_eq!(j.all().expect("journal call").len(), 1);
    let info = j.lease_info().expect("journal call").expect("a lease row");
    assert_eq!(
        (info.holder.as_str(), info.epoch, info.failovers),
        ("", 0, 0)
    );
    drop(j);
    // A newer program migrated it: this one refuses to write, and to read.
    pg.psql("INSERT INTO mig.schema_version VALUES (99, 0)");
    for writable in [true, false] {
        let e = Journal::open_postgres(&t, pw(), writable)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("version 99") && e.contains("newer"), "{e}");
    }
}

#[test]
fn tls_is_verified_and_the_password_is_checked() {
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    // Another CA than the server's: the handshake fails, and the error says why.
    let other = tempfile::tempdir().expect("journal call");
    let other_ca = pam_sim::tls::ensure(other.path())
        .expect("journal call")
        .ca_cert;
    let e = Journal::open_postgres(&target(&pg, "tls", Some(&other_ca)), pw(), true)
        .err()
        .expect("an unknown CA is refused")
        .to_string();
    assert!(
        e.contains("certificate") || e.contains("UnknownIssuer"),
        "{e}"
    );
    assert!(
        e.contains("cannot connect to postgres://pam@127.0.0.1"),
        "{e}"
    );
    // The system store does not hold the test CA either.
    assert!(Journal::open_postgres(&target(&pg, "tls", None), pw(), true).is_err());
    // A wrong password: refused by the server, and the password is not in the error.
    let e = Journal::open_postgres(
        &target(&pg, "tls", Some(&pg.ca)),
        Some(SecretString::from("wrong-pw".to_string())),
        true,
    )
    .err()
    .expect("a wrong password is refused")
    .to_string();
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains("wrong-pw"), "{e}");
    // And the right one works.
    Journal::open_postgres(&target(&pg, "tls", Some(&pg.ca)), pw(), true).expect("opens");
}

#[test]
fn a_lost_connection_is_opened_again() {
    let Some(pg) = postgres::Postgres::start() else {
        return;
    };
    let j = open(&pg, "re");
    let Begin::New(a) = j.begin("mid:a@t", None, None).expect("journal call") else {
        panic!("new")
    };
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pam'");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The call that finds the connection closed reconnects first; nothing is lost.
    let mut got = j.get(a.row);
    if got.is_err() {
        got = j.get(a.row);
    }
    assert_eq!(
        got.expect("journal call").expect("journal call").state,
        State::Seen
    );
}

#[test]
fn the_config_refuses_a_url_with_a_password() {
    // Refused when the configuration is loaded, naming the key, without echoing the password.
    let e = approval_core::settings::load_from_parts(
        Some("[journal]\nurl = \"postgres://pam:Secret1@db/pam\"\n"),
        None,
        &[],
    )
    .expect_err("refused at load")
    .to_string();
    assert!(
        e.contains("journal.url") && e.contains("journal.password"),
        "{e}"
    );
    assert!(!e.contains("Secret1"), "{e}");
    // One journal only.
    let e = approval_core::settings::load_from_parts(
        Some(
            "[journal]\nurl = \"postgres://pam@db/pam\"\n[watcher]\njournal = \"/tmp/j.sqlite\"\n",
        ),
        None,
        &[],
    )
    .expect_err("both refused")
    .to_string();
    assert!(
        e.contains("journal.url") && e.contains("watcher.journal"),
        "{e}"
    );
    assert!(JournalConfig::default().url.is_none());
}

//! The journal: one row per mail, a state machine, and the audit trail — in a SQLite file (the
//! default, one host) or in PostgreSQL (`[journal] url`, [`pg`]). Both engines run the same
//! statements through `Db`; every state change is one transaction in `Journal::write`.
//!
//! States move forward only:
//!
//! ```text
//! seen -> decided -> confirmed | refused -> notified -> filed
//!   \______________________________/
//!            (refused without a decision to confirm: seen -> refused)
//! ```
//!
//! `decided` is written *before* the confirm is sent, with a unique marker that goes into the
//! PVWA reason. After a crash, a row found in `decided` is resolved by reading the request's
//! confirmers for that marker — never by confirming again. A mail is keyed by its Internet
//! Message-ID (or a digest of its bytes), so the same forward arriving twice is recognised.
//!
//! A reject by mail (issue 32) takes the same path: `decided` records that the decision is a
//! reject ([`Journal::decided_to_reject`], kept in `kv` as `decision:<row>` in the same
//! transaction), the reject carries the marker, and `confirmed` with outcome `rejected` means PVWA
//! holds the reject. A `decided` reject is resolved from PVWA like a confirm, never sent twice.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;
use serde::Serialize;
use sha2::Digest;

use crate::exit::{Classify, Exit};

pub mod lease;
pub mod pg;
pub use lease::{Lease, LeaseInfo};
pub use pg::{JournalConfig, PgTarget};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("journal: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The PostgreSQL journal: connection, TLS, schema or statement (SQLSTATE and message).
    #[error("journal (PostgreSQL): {0}")]
    Postgres(String),
    /// The PostgreSQL journal's schema is one this program must not use (newer than it knows).
    #[error("journal (PostgreSQL): {0}")]
    Schema(String),
    #[error("journal: row {row} cannot move from {from} to {to}")]
    Transition { row: i64, from: String, to: String },
    /// The blocking task that ran a journal call failed (it panicked, or the runtime stops).
    #[error("journal: the call did not complete: {0}")]
    Worker(String),
    /// A write refused because this process does not hold the lease of the active host (or no
    /// longer: another host took over). Not a fault to retry here: it means stop acting.
    #[error("journal: write refused, not the active host: {0}")]
    Fenced(String),
}

impl JournalError {
    /// Whether this is a write refused by the lease ([`JournalError::Fenced`]).
    pub fn is_fenced(&self) -> bool {
        matches!(self, JournalError::Fenced(_))
    }
}

impl Classify for JournalError {
    fn service(&self) -> &'static str {
        match self {
            JournalError::Fenced(_) => lease::NOT_ACTIVE,
            _ => "journal",
        }
    }
    fn exit(&self) -> Exit {
        match self {
            JournalError::Open { .. } | JournalError::Schema(_) => Exit::Config,
            JournalError::Sql(_) | JournalError::Postgres(_) | JournalError::Fenced(_) => {
                Exit::TempFail
            }
            JournalError::Transition { .. } | JournalError::Worker(_) => Exit::Software,
        }
    }
}

/// A mail's place in the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Seen,
    Decided,
    Confirmed,
    Refused,
    Notified,
    Filed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Seen => "seen",
            State::Decided => "decided",
            State::Confirmed => "confirmed",
            State::Refused => "refused",
            State::Notified => "notified",
            State::Filed => "filed",
        }
    }

    fn parse(s: &str) -> Option<State> {
        Some(match s {
            "seen" => State::Seen,
            "decided" => State::Decided,
            "confirmed" => State::Confirmed,
            "refused" => State::Refused,
            "notified" => State::Notified,
            "filed" => State::Filed,
            _ => return None,
        })
    }

    /// Whether `self -> to` is a legal step.
    pub fn may_become(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Seen, Decided)
                | (Seen, Refused)
                | (Decided, Confirmed)
                | (Decided, Refused)
                | (Confirmed, Notified)
                | (Refused, Notified)
                | (Notified, Filed)
        )
    }
}

/// One journal row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry {
    pub row: i64,
    pub key: String,
    pub message_id: Option<String>,
    pub mailbox_item: Option<String>,
    pub state: State,
    /// `confirmed`, `rejected` (PVWA holds a reject by mail), `refused`, or null while undecided.
    pub outcome: Option<String>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub level: Option<u8>,
    pub forwarder: Option<String>,
    /// Unique text placed in the PVWA reason of our confirmation.
    pub marker: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub first_seen_ms: i64,
    pub updated_ms: i64,
}

/// One mail this tool confirmed (or is confirming) on a request, and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActedFor {
    pub row: i64,
    pub level: u8,
    pub forwarder: String,
    /// The forwarder's identities and person key, in lower case.
    pub identities: Vec<String>,
}

/// What [`Journal::stats`] counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JournalStats {
    /// Filed mails: (outcome, refusal code, count); an empty code for a confirmation.
    pub finished: Vec<(String, String, u64)>,
    /// Mails read but not filed yet.
    pub unfinished: u64,
    /// Of those, the ones a fault has left pending at least once.
    pub unfinished_with_faults: u64,
    /// Of those, the ones decided (confirmed or refused) whose reply is still owed: held back
    /// by the sending pace, or waiting for the mailbox.
    pub replies_owed: u64,
    /// When the oldest unfinished mail was first read (Unix ms).
    pub oldest_unfinished_ms: Option<i64>,
    /// The last change to any row (Unix ms).
    pub last_update_ms: Option<i64>,
}

/// The key of a mail: its Message-ID when it has a sane one, else a digest of its bytes.
pub fn mail_key(message_id: Option<&str>, raw: &[u8]) -> String {
    match message_id
        .map(str::trim)
        .filter(|m| !m.is_empty() && m.len() <= 998 && !m.chars().any(char::is_control))
    {
        Some(m) => format!(
            "mid:{}",
            m.trim_start_matches('<')
                .trim_end_matches('>')
                .to_ascii_lowercase()
        ),
        None => format!("sha256:{}", hex::encode(sha2::Sha256::digest(raw))),
    }
}

/// The key of a mail that could not be fetched (its bytes unknown): its mailbox item. When the
/// mail is read later, [`Journal::begin`] gives this row the mail's own key.
pub fn item_key(item: &str) -> String {
    format!("item:{item}")
}

/// What `begin` found.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// A new mail: a row in `seen`.
    New(Entry),
    /// Known already: its row, in whatever state it reached.
    Known(Entry),
}

pub struct Journal {
    path: PathBuf,
    conn: Mutex<Engine>,
    /// PostgreSQL with two or more hosts: the lease every write is fenced with
    /// ([`Journal::attach_lease`]). Unset: writes are not fenced (SQLite; one host).
    lease: std::sync::OnceLock<std::sync::Arc<Lease>>,
}

/// Where the rows live: the SQLite file (the default, one host) or PostgreSQL (`[journal]
/// url`). Every statement goes through [`Db`], written once for both.
enum Engine {
    Sqlite(Connection),
    Postgres(Box<pg::PgConn>),
}

/// A value crossing the journal's SQL, the same on both engines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<u8> for Val {
    fn from(v: u8) -> Val {
        Val::Int(v.into())
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_owned())
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

impl Val {
    fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
    fn text(&self) -> Option<String> {
        match self {
            Val::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// One engine's statements: SQL with `?1`, `?2`… placeholders, the same text on both engines.
/// Every state change of the journal is a call here, inside [`Journal::write`]: the one place
/// where a fencing condition (the lease's epoch, issue 33's next step) joins each transaction.
pub(crate) trait Db {
    /// Run a statement; the rows it changed.
    fn exec(&mut self, sql: &str, p: &[Val]) -> Result<u64, JournalError>;
    /// Run a query; its rows.
    fn rows(&mut self, sql: &str, p: &[Val]) -> Result<Vec<Vec<Val>>, JournalError>;
    /// Whether this is PostgreSQL (for the few statements that differ).
    fn postgres(&self) -> bool;
    /// The lease epoch this transaction was fenced with (PostgreSQL with a lease): recorded
    /// on each mail row it moves.
    fn epoch(&self) -> Option<i64> {
        None
    }
}

struct Lite<'a>(&'a Connection);

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl Db for Lite<'_> {
    fn exec(&mut self, sql: &str, p: &[Val]) -> Result<u64, JournalError> {
        Ok(self.0.execute(sql, rusqlite::params_from_iter(p))? as u64)
    }
    fn rows(&mut self, sql: &str, p: &[Val]) -> Result<Vec<Vec<Val>>, JournalError> {
        use rusqlite::types::ValueRef;
        let mut st = self.0.prepare(sql)?;
        let n = st.column_count();
        let rows = st.query_map(rusqlite::params_from_iter(p), |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Null => Val::Null,
                        ValueRef::Integer(i) => Val::Int(i),
                        ValueRef::Real(f) => Val::Int(f as i64),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Val::Text(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect::<rusqlite::Result<Vec<Val>>>()
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
    fn postgres(&self) -> bool {
        false
    }
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS mail (
    row            INTEGER PRIMARY KEY AUTOINCREMENT,
    key            TEXT NOT NULL UNIQUE,
    message_id     TEXT,
    mailbox_item   TEXT,
    state          TEXT NOT NULL,
    outcome        TEXT,
    reason_code    TEXT,
    reason         TEXT,
    request_id     TEXT,
    level          INTEGER,
    forwarder      TEXT,
    marker         TEXT UNIQUE,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    first_seen_ms  INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS mail_state ON mail(state);
CREATE INDEX IF NOT EXISTS mail_request ON mail(request_id);
CREATE TABLE IF NOT EXISTS history (
    row      INTEGER NOT NULL REFERENCES mail(row),
    at_ms    INTEGER NOT NULL,
    state    TEXT NOT NULL,
    note     TEXT
);
-- Who this tool confirms for: one line per identity (and person key) of the forwarder of a
-- mail that reached `decided`. Consulted across mails: one person counts once per request.
CREATE TABLE IF NOT EXISTS acted_for (
    row         INTEGER NOT NULL REFERENCES mail(row),
    request_id  TEXT NOT NULL,
    level       INTEGER NOT NULL,
    identity    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS acted_for_request ON acted_for(request_id);
CREATE TABLE IF NOT EXISTS kv (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"#;

/// The `kv` name recording that a row's decision is a reject, and its value.
fn decision_key(row: i64) -> String {
    format!("decision:{row}")
}
const REJECT: &str = "reject";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn missing() -> JournalError {
    JournalError::Sql(rusqlite::Error::QueryReturnedNoRows)
}

impl Journal {
    /// Open (creating) the journal at `path`; the directory is created owner-only.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let open_err = |m: String| JournalError::Open {
            path: path.to_path_buf(),
            message: m,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::perms::create_private_dir(dir)
                .map_err(|e| open_err(format!("cannot create its directory: {e}")))?;
        }
        // Owner-only whatever the umask: the journal is created 0600 before SQLite opens it
        // (SQLite would create it 0644), and SQLite gives its -wal and -shm files the journal's
        // mode. Files an older version left readable are made private again.
        crate::perms::open_private(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            path,
        )
        .map_err(|e| open_err(format!("cannot create it owner-only: {e}")))?;
        let private_wal = || -> Result<(), JournalError> {
            for suffix in ["-wal", "-shm"] {
                let mut side = path.as_os_str().to_owned();
                side.push(suffix);
                crate::perms::make_private(Path::new(&side)).map_err(|e| {
                    open_err(format!("cannot make its {suffix} file owner-only: {e}"))
                })?;
            }
            Ok(())
        };
        private_wal()?;
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| open_err(e.to_string()))?;
        // WAL + synchronous=FULL: a committed state survives a crash or power loss.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| open_err(e.to_string()))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| open_err(e.to_string()))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| open_err(format!("cannot create the schema: {e}")))?;
        private_wal()?;
        Ok(Journal {
            path: path.to_path_buf(),
            conn: Mutex::new(Engine::Sqlite(conn)),
            lease: Default::default(),
        })
    }

    /// Open an existing journal to read it only (`--status`): no schema, no journal mode, no
    /// write, and no new journal where there was none — a monitoring check never changes the
    /// state it reports. (SQLite may create the WAL index files beside it; run as root it gives
    /// them the journal's owner, so the watcher can still open them.)
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        use rusqlite::OpenFlags;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| JournalError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Journal {
            path: path.to_path_buf(),
            conn: Mutex::new(Engine::Sqlite(conn)),
            lease: Default::default(),
        })
    }

    /// Open the journal on PostgreSQL (`[journal] url`), creating or migrating its schema;
    /// `password` is the resolved `journal.password`. With `writable` false (`--status`, the
    /// site check) the schema is only checked, never created or changed.
    pub fn open_postgres(
        target: &PgTarget,
        password: Option<crate::secret::SecretString>,
        writable: bool,
    ) -> Result<Journal, JournalError> {
        let c = pg::PgConn::connect(target, password, writable)?;
        Ok(Journal {
            path: PathBuf::from(pg::shown_url(&target.url)),
            conn: Mutex::new(Engine::Postgres(Box::new(c))),
            lease: Default::default(),
        })
    }

    /// The schema version of a PostgreSQL journal (`None` for SQLite; 0 when not created yet).
    pub fn schema_version(&self) -> Result<Option<i64>, JournalError> {
        match &*self.lock() {
            Engine::Sqlite(_) => Ok(None),
            Engine::Postgres(c) => c.check_version().map(Some),
        }
    }

    /// Which engine: `sqlite` or `postgresql`.
    pub fn engine(&self) -> &'static str {
        match &*self.lock() {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgresql",
        }
    }

    /// An in-memory journal (tests).
    pub fn in_memory() -> Result<Journal, JournalError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Journal {
            path: PathBuf::from(":memory:"),
            conn: Mutex::new(Engine::Sqlite(conn)),
            lease: Default::default(),
        })
    }

    /// The SQLite file, or the PostgreSQL URL (without its query) for a PostgreSQL journal.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` in one write transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: read committed,
    /// the transitions conditional on the state they leave). Every state change goes through
    /// here.
    fn write<R>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<R, JournalError>,
    ) -> Result<R, JournalError> {
        match &mut *self.lock() {
            Engine::Sqlite(c) => {
                let tx = write_transaction(c)?;
                let r = f(&mut Lite(&tx))?;
                tx.commit()?;
                Ok(r)
            }
            Engine::Postgres(c) => {
                let Some(lease) = self.lease.get() else {
                    return c.transaction(None, f);
                };
                // Not held (standby, demoted, or its local deadline passed): nothing written.
                let Some(fence) = lease.fence() else {
                    lease.refused_write();
                    return Err(JournalError::Fenced(
                        "this process does not hold the lease".into(),
                    ));
                };
                let r = c.transaction(Some(&fence), f);
                if matches!(&r, Err(JournalError::Fenced(_))) {
                    lease.refused_write();
                }
                r
            }
        }
    }

    /// Fence every later write with `lease` (PostgreSQL, two or more hosts): a write is made
    /// only while this process holds it, checked in the write's own transaction. Once only.
    pub fn attach_lease(&self, lease: std::sync::Arc<Lease>) {
        let _ = self.lease.set(lease);
    }

    /// The lease attached to this journal, if any.
    pub fn lease(&self) -> Option<&std::sync::Arc<Lease>> {
        self.lease.get()
    }

    /// The epoch that last moved `row` (PostgreSQL; `None` on SQLite, or a row moved without a
    /// lease).
    pub fn row_epoch(&self, row: i64) -> Result<Option<i64>, JournalError> {
        self.read(|db| {
            if !db.postgres() {
                return Ok(None);
            }
            let r = db.rows("SELECT epoch FROM mail WHERE row = ?1", &[row.into()])?;
            Ok(r.first().and_then(|r| r.first()).and_then(Val::int))
        })
    }

    /// The lease of the active host as the database holds it, and the takeovers counted
    /// (PostgreSQL at schema 2 or later; `None` otherwise).
    pub fn lease_info(&self) -> Result<Option<LeaseInfo>, JournalError> {
        match &mut *self.lock() {
            Engine::Sqlite(_) => Ok(None),
            Engine::Postgres(c) => {
                if c.check_version()? < 2 {
                    return Ok(None);
                }
                c.plain(|db| lease::read_info(db, lease::LEASE_NAME))
            }
        }
    }

    /// Run `f` outside a transaction (reads, single statements).
    fn read<R>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<R, JournalError>,
    ) -> Result<R, JournalError> {
        match &mut *self.lock() {
            Engine::Sqlite(c) => f(&mut Lite(c)),
            Engine::Postgres(c) => c.plain(f),
        }
    }

    /// Record a mail as seen, or return what is known about it.
    pub fn begin(
        &self,
        key: &str,
        message_id: Option<&str>,
        mailbox_item: Option<&str>,
    ) -> Result<Begin, JournalError> {
        self.write(|tx| {
            // A row opened for this item when it could not be fetched: the mail is read now, so
            // the row becomes the mail's own (its attempts kept), unless the mail has a row
            // already.
            if let Some(item) = mailbox_item
                && let Some(p) = get_by_key(tx, &item_key(item))?
                && p.state == State::Seen
                && p.key != key
            {
                if get_by_key(tx, key)?.is_some() {
                    tx.exec("DELETE FROM history WHERE row = ?1", &[p.row.into()])?;
                    tx.exec("DELETE FROM mail WHERE row = ?1", &[p.row.into()])?;
                } else {
                    tx.exec(
                        "UPDATE mail SET key = ?1, message_id = ?2 WHERE row = ?3",
                        &[key.into(), message_id.into(), p.row.into()],
                    )?;
                }
            }
            if let Some(e) = get_by_key(tx, key)? {
                // The item id changes when a mail is moved; remember the newest one.
                if let Some(item) = mailbox_item
                    && e.mailbox_item.as_deref() != Some(item)
                {
                    tx.exec(
                        "UPDATE mail SET mailbox_item = ?1 WHERE row = ?2",
                        &[item.into(), e.row.into()],
                    )?;
                }
                let e = get_by_key(tx, key)?.unwrap_or(e);
                return Ok(Begin::Known(e));
            }
            let now = now_ms();
            let ins = tx.rows(
                "INSERT INTO mail (key, message_id, mailbox_item, state, first_seen_ms, updated_ms) VALUES (?1, ?2, ?3, 'seen', ?4, ?4) RETURNING row",
                &[key.into(), message_id.into(), mailbox_item.into(), now.into()],
            )?;
            let row = ins
                .first()
                .and_then(|r| r.first())
                .and_then(Val::int)
                .ok_or_else(missing)?;
            if let Some(epoch) = tx.epoch() {
                tx.exec(
                    "UPDATE mail SET epoch = ?1 WHERE row = ?2",
                    &[epoch.into(), row.into()],
                )?;
            }
            history(tx, row, now, State::Seen, None)?;
            let e = get_by_key(tx, key)?.ok_or_else(missing)?;
            Ok(Begin::New(e))
        })
    }

    /// Move a row to `to`, checking the transition, with the fields that go with it.
    fn advance(
        &self,
        row: i64,
        to: State,
        set: &[(&str, Val)],
        note: Option<&str>,
    ) -> Result<Entry, JournalError> {
        self.advance_with(row, to, set, note, |_| Ok(()))
    }

    /// [`Journal::advance`], running `also` in the same transaction.
    fn advance_with(
        &self,
        row: i64,
        to: State,
        set: &[(&str, Val)],
        note: Option<&str>,
        also: impl FnOnce(&mut dyn Db) -> Result<(), JournalError>,
    ) -> Result<Entry, JournalError> {
        self.write(|tx| {
            let cur = get_by_row(tx, row)?.ok_or_else(missing)?;
            if !cur.state.may_become(to) {
                return Err(JournalError::Transition {
                    row,
                    from: cur.state.as_str().into(),
                    to: to.as_str().into(),
                });
            }
            let now = now_ms();
            let mut sql = String::from("UPDATE mail SET state = ?1, updated_ms = ?2");
            let mut values: Vec<Val> = vec![to.as_str().into(), now.into()];
            let epoch = tx.epoch().map(|e| ("epoch", Val::Int(e)));
            for (i, (col, v)) in set.iter().chain(epoch.iter()).enumerate() {
                sql.push_str(&format!(", {col} = ?{}", i + 3));
                values.push(v.clone());
            }
            let set_len = set.len() + usize::from(epoch.is_some());
            // Conditional on the state it leaves: a row another writer moved meanwhile is not
            // moved again.
            sql.push_str(&format!(
                " WHERE row = ?{} AND state = ?{}",
                set_len + 3,
                set_len + 4
            ));
            values.push(row.into());
            values.push(cur.state.as_str().into());
            if tx.exec(&sql, &values)? != 1 {
                return Err(JournalError::Transition {
                    row,
                    from: cur.state.as_str().into(),
                    to: to.as_str().into(),
                });
            }
            history(tx, row, now, to, note)?;
            also(tx)?;
            get_by_row(tx, row)?.ok_or_else(missing)
        })
    }

    /// The decision to confirm, written before the confirm is sent.
    pub fn decided(
        &self,
        row: i64,
        request_id: &str,
        level: u8,
        forwarder: &str,
        marker: &str,
    ) -> Result<Entry, JournalError> {
        self.advance(
            row,
            State::Decided,
            &[
                ("request_id", request_id.into()),
                ("level", level.into()),
                ("forwarder", forwarder.into()),
                ("marker", marker.into()),
            ],
            None,
        )
    }

    /// [`Journal::decided`], and in the same transaction the record of whom this tool is about
    /// to confirm for: every identity of the forwarder (and their person key), compared in
    /// lower case. [`Journal::acted_for`] reads it back for later mails of the same request.
    pub fn decided_for(
        &self,
        row: i64,
        request_id: &str,
        level: u8,
        forwarder: &str,
        marker: &str,
        identities: &[String],
    ) -> Result<Entry, JournalError> {
        self.decided_with(row, request_id, level, forwarder, marker, identities, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn decided_with(
        &self,
        row: i64,
        request_id: &str,
        level: u8,
        forwarder: &str,
        marker: &str,
        identities: &[String],
        reject: bool,
    ) -> Result<Entry, JournalError> {
        let mut ids: Vec<String> = identities
            .iter()
            .chain(std::iter::once(&forwarder.to_string()))
            .map(|i| i.trim().to_lowercase())
            .filter(|i| !i.is_empty())
            .collect();
        ids.sort();
        ids.dedup();
        self.advance_with(
            row,
            State::Decided,
            &[
                ("request_id", request_id.into()),
                ("level", level.into()),
                ("forwarder", forwarder.into()),
                ("marker", marker.into()),
            ],
            None,
            |tx| {
                tx.exec("DELETE FROM acted_for WHERE row = ?1", &[row.into()])?;
                for i in &ids {
                    tx.exec(
                        "INSERT INTO acted_for (row, request_id, level, identity) VALUES (?1, ?2, ?3, ?4)",
                        &[row.into(), request_id.into(), level.into(), i.into()],
                    )?;
                }
                if reject {
                    tx.exec(
                        "INSERT INTO kv (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                        &[decision_key(row).as_str().into(), REJECT.into()],
                    )?;
                }
                Ok(())
            },
        )
    }

    /// What this tool confirmed, or is confirming, on `request_id` and for whom, from every
    /// mail but `except_row`: rows in `decided`, confirmed ones, and ones given up in
    /// `decided` (whether PVWA recorded them is unknown, so they count). A row refused after
    /// `decided` (PVWA refused the confirm, or the request moved on before it was sent) did not
    /// confirm and does not count.
    pub fn acted_for(
        &self,
        request_id: &str,
        except_row: Option<i64>,
    ) -> Result<Vec<ActedFor>, JournalError> {
        let rows = self.read(|db| {
            db.rows(
                "SELECT m.row, a.level, COALESCE(m.forwarder, ''), a.identity FROM acted_for a \
                 JOIN mail m ON m.row = a.row \
                 WHERE a.request_id = ?1 AND m.row <> ?2 \
                 AND (m.outcome IS NULL OR m.outcome IN ('confirmed', 'rejected') OR m.reason_code = 'gave_up') \
                 ORDER BY m.row, a.identity",
                // No row is numbered 0 (both engines count from 1).
                &[request_id.into(), except_row.unwrap_or(0).into()],
            )
        })?;
        let mut out: Vec<ActedFor> = Vec::new();
        for r in rows {
            let row = r[0].int().ok_or_else(missing)?;
            let level = r[1].int().unwrap_or(0);
            let forwarder = r[2].text().unwrap_or_default();
            let identity = r[3].text().unwrap_or_default();
            match out.last_mut() {
                Some(a) if a.row == row => a.identities.push(identity),
                _ => out.push(ActedFor {
                    row,
                    level: u8::try_from(level).unwrap_or(0),
                    forwarder,
                    identities: vec![identity],
                }),
            }
        }
        Ok(out)
    }

    /// [`Journal::decided_for`] for a reject: the same row, identities and marker, and in the
    /// same transaction the record that the decision is a reject (`decision:<row>` = `reject`).
    pub fn decided_to_reject(
        &self,
        row: i64,
        request_id: &str,
        level: u8,
        forwarder: &str,
        marker: &str,
        identities: &[String],
    ) -> Result<Entry, JournalError> {
        self.decided_with(row, request_id, level, forwarder, marker, identities, true)
    }

    /// Whether the decision of `row` is a reject ([`Journal::decided_to_reject`]).
    pub fn is_reject(&self, row: i64) -> Result<bool, JournalError> {
        Ok(self.get_value(&decision_key(row))?.as_deref() == Some(REJECT))
    }

    /// PVWA accepted (or already holds) our reject: `confirmed` with outcome `rejected`.
    pub fn rejected(&self, row: i64, note: &str) -> Result<Entry, JournalError> {
        self.advance(
            row,
            State::Confirmed,
            &[("outcome", "rejected".into())],
            Some(note),
        )
    }

    /// PVWA accepted (or already holds) our confirmation.
    pub fn confirmed(&self, row: i64, note: &str) -> Result<Entry, JournalError> {
        self.advance(
            row,
            State::Confirmed,
            &[("outcome", "confirmed".into())],
            Some(note),
        )
    }

    /// A final refusal with its stable code and sentence.
    pub fn refused(
        &self,
        row: i64,
        code: &str,
        reason: &str,
        request_id: Option<&str>,
        forwarder: Option<&str>,
    ) -> Result<Entry, JournalError> {
        self.advance(
            row,
            State::Refused,
            &[
                ("outcome", "refused".into()),
                ("reason_code", code.into()),
                ("reason", reason.into()),
                ("request_id", request_id.into()),
                ("forwarder", forwarder.into()),
            ],
            Some(code),
        )
    }

    pub fn notified(&self, row: i64) -> Result<Entry, JournalError> {
        self.advance(row, State::Notified, &[], None)
    }

    pub fn filed(&self, row: i64, folder: &str) -> Result<Entry, JournalError> {
        self.advance(row, State::Filed, &[], Some(folder))
    }

    /// Count a failed attempt (a transient fault); returns the new count.
    pub fn attempt_failed(&self, row: i64, error: &str) -> Result<u32, JournalError> {
        let cut: String = error.chars().take(500).collect();
        let rows = self.write(|tx| {
            tx.rows(
                "UPDATE mail SET attempts = attempts + 1, last_error = ?1, updated_ms = ?2 WHERE row = ?3 RETURNING attempts",
                &[cut.as_str().into(), now_ms().into(), row.into()],
            )
        })?;
        let n = rows
            .first()
            .and_then(|r| r.first())
            .and_then(Val::int)
            .ok_or_else(missing)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Rows not yet filed (work to finish after a restart), oldest first.
    pub fn unfinished(&self) -> Result<Vec<Entry>, JournalError> {
        self.entries(
            &format!("SELECT {COLS} FROM mail WHERE state != 'filed' ORDER BY row"),
            &[],
        )
    }

    fn entries(&self, sql: &str, p: &[Val]) -> Result<Vec<Entry>, JournalError> {
        self.read(|db| db.rows(sql, p))?
            .iter()
            .map(|r| entry(r))
            .collect()
    }

    /// Counts for monitoring: finished mails by outcome, unfinished ones, the oldest unfinished
    /// and the last change.
    pub fn stats(&self) -> Result<JournalStats, JournalError> {
        let (finished, agg, last) = self.read(|db| {
            let finished = db.rows(
                "SELECT COALESCE(outcome, ''), COALESCE(reason_code, ''), COUNT(*) FROM mail WHERE state = 'filed' GROUP BY 1, 2 ORDER BY 1, 2",
                &[],
            )?;
            let agg = db.rows(
                "SELECT COUNT(*), MIN(first_seen_ms), \
                 COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN state IN ('confirmed', 'refused') THEN 1 ELSE 0 END), 0) \
                 FROM mail WHERE state != 'filed'",
                &[],
            )?;
            let last = db.rows("SELECT MAX(updated_ms) FROM mail", &[])?;
            Ok((finished, agg, last))
        })?;
        let count = |v: Option<&Val>| v.and_then(Val::int).unwrap_or(0).max(0) as u64;
        let agg = agg.first().cloned().unwrap_or_default();
        Ok(JournalStats {
            finished: finished
                .iter()
                .map(|r| {
                    (
                        r[0].text().unwrap_or_default(),
                        r[1].text().unwrap_or_default(),
                        count(r.get(2)),
                    )
                })
                .collect(),
            unfinished: count(agg.first()),
            unfinished_with_faults: count(agg.get(2)),
            replies_owed: count(agg.get(3)),
            oldest_unfinished_ms: agg.get(1).and_then(Val::int),
            last_update_ms: last.first().and_then(|r| r.first()).and_then(Val::int),
        })
    }

    /// The unfinished row whose mail was last seen as mailbox item `item`.
    pub fn unfinished_by_item(&self, item: &str) -> Result<Option<Entry>, JournalError> {
        Ok(self
            .entries(
                &format!(
                    "SELECT {COLS} FROM mail WHERE mailbox_item = ?1 AND state != 'filed' ORDER BY row DESC LIMIT 1"
                ),
                &[item.into()],
            )?
            .into_iter()
            .next())
    }

    pub fn get(&self, row: i64) -> Result<Option<Entry>, JournalError> {
        self.read(|db| get_by_row(db, row))
    }

    /// Every row (audit export), oldest first.
    pub fn all(&self) -> Result<Vec<Entry>, JournalError> {
        self.entries(&format!("SELECT {COLS} FROM mail ORDER BY row"), &[])
    }

    /// The states a row went through, with times.
    pub fn history(&self, row: i64) -> Result<Vec<(i64, String, Option<String>)>, JournalError> {
        let rows = self.read(|db| {
            let order = if db.postgres() { "id" } else { "rowid" };
            db.rows(
                &format!("SELECT at_ms, state, note FROM history WHERE row = ?1 ORDER BY {order}"),
                &[row.into()],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r[0].int().unwrap_or(0),
                    r[1].text().unwrap_or_default(),
                    r[2].text(),
                )
            })
            .collect())
    }

    /// A small persistent value (sync state of the mailbox, etc.).
    pub fn get_value(&self, name: &str) -> Result<Option<String>, JournalError> {
        let rows =
            self.read(|db| db.rows("SELECT value FROM kv WHERE name = ?1", &[name.into()]))?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Val::text))
    }

    pub fn set_value(&self, name: &str, value: &str) -> Result<(), JournalError> {
        self.write(|tx| {
            tx.exec(
                "INSERT INTO kv (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                &[name.into(), value.into()],
            )
        })?;
        Ok(())
    }
}

/// The journal for async code: every call runs on tokio's blocking pool, so SQLite's fsync per
/// state change and its busy wait (up to 10 s while another process writes) never stall the
/// executor, which also serves every other mail in flight, `/metrics`, `/readyz` and systemd's
/// watchdog. Calls on one journal still run one at a time (its connection's lock), in the order
/// each caller awaits them. The methods are [`Journal`]'s, with owned copies of their arguments.
#[derive(Clone)]
pub struct AsyncJournal(std::sync::Arc<Journal>);

impl AsyncJournal {
    pub fn new(j: Journal) -> AsyncJournal {
        AsyncJournal(std::sync::Arc::new(j))
    }

    /// The journal itself, for synchronous callers (tools, tests).
    pub fn blocking(&self) -> &Journal {
        &self.0
    }

    /// Run `f` on the journal in the blocking pool.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> Result<R, JournalError> + Send + 'static,
    ) -> Result<R, JournalError> {
        let j = self.0.clone();
        tokio::task::spawn_blocking(move || f(&j))
            .await
            .map_err(|e| JournalError::Worker(e.to_string()))?
    }

    pub async fn begin(
        &self,
        key: &str,
        message_id: Option<&str>,
        mailbox_item: Option<&str>,
    ) -> Result<Begin, JournalError> {
        let (key, mid, item) = (key.to_owned(), owned(message_id), owned(mailbox_item));
        self.run(move |j| j.begin(&key, mid.as_deref(), item.as_deref()))
            .await
    }

    pub async fn decided_for(
        &self,
        row: i64,
        request_id: &str,
        level: u8,
        forwarder: &str,
        marker: &str,
        identities: &[String],
    ) -> Result<Entry, JournalError> {
        let (rid, fwd, marker, ids) = (
            request_id.to_owned(),
            forwarder.to_owned(),
            marker.to_owned(),
            identities.to_vec(),
        );
        self.run(move |j| j.decided_for(row, &rid, level, &fwd, &marker, &ids))
            .await
    }

    pub async fn acted_for(
        &self,
        request_id: &str,
        except_row: Option<i64>,
    ) -> Result<Vec<ActedFor>, JournalError> {
        let rid = request_id.to_owned();
        self.run(move |j| j.acted_for(&rid, except_row)).await
    }

    pub async fn decided_to_reject(
        &self,
        row: i64,
        request_id: &str,
        level: u8,
        forwarder: &str,
        marker: &str,
        identities: &[String],
    ) -> Result<Entry, JournalError> {
        let (rid, fwd, marker, ids) = (
            request_id.to_owned(),
            forwarder.to_owned(),
            marker.to_owned(),
            identities.to_vec(),
        );
        self.run(move |j| j.decided_to_reject(row, &rid, level, &fwd, &marker, &ids))
            .await
    }

    pub async fn is_reject(&self, row: i64) -> Result<bool, JournalError> {
        self.run(move |j| j.is_reject(row)).await
    }

    pub async fn rejected(&self, row: i64, note: &str) -> Result<Entry, JournalError> {
        let note = note.to_owned();
        self.run(move |j| j.rejected(row, &note)).await
    }

    pub async fn confirmed(&self, row: i64, note: &str) -> Result<Entry, JournalError> {
        let note = note.to_owned();
        self.run(move |j| j.confirmed(row, &note)).await
    }

    pub async fn refused(
        &self,
        row: i64,
        code: &str,
        reason: &str,
        request_id: Option<&str>,
        forwarder: Option<&str>,
    ) -> Result<Entry, JournalError> {
        let (code, reason, rid, fwd) = (
            code.to_owned(),
            reason.to_owned(),
            owned(request_id),
            owned(forwarder),
        );
        self.run(move |j| j.refused(row, &code, &reason, rid.as_deref(), fwd.as_deref()))
            .await
    }

    pub async fn notified(&self, row: i64) -> Result<Entry, JournalError> {
        self.run(move |j| j.notified(row)).await
    }

    pub async fn filed(&self, row: i64, folder: &str) -> Result<Entry, JournalError> {
        let folder = folder.to_owned();
        self.run(move |j| j.filed(row, &folder)).await
    }

    pub async fn attempt_failed(&self, row: i64, error: &str) -> Result<u32, JournalError> {
        let error = error.to_owned();
        self.run(move |j| j.attempt_failed(row, &error)).await
    }

    pub async fn unfinished(&self) -> Result<Vec<Entry>, JournalError> {
        self.run(|j| j.unfinished()).await
    }

    pub async fn stats(&self) -> Result<JournalStats, JournalError> {
        self.run(|j| j.stats()).await
    }

    pub async fn unfinished_by_item(&self, item: &str) -> Result<Option<Entry>, JournalError> {
        let item = item.to_owned();
        self.run(move |j| j.unfinished_by_item(&item)).await
    }

    pub async fn get(&self, row: i64) -> Result<Option<Entry>, JournalError> {
        self.run(move |j| j.get(row)).await
    }

    pub async fn get_value(&self, name: &str) -> Result<Option<String>, JournalError> {
        let name = name.to_owned();
        self.run(move |j| j.get_value(&name)).await
    }

    pub async fn set_value(&self, name: &str, value: &str) -> Result<(), JournalError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.run(move |j| j.set_value(&name, &value)).await
    }
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// A transaction that takes the write lock first (`BEGIN IMMEDIATE`): while another process
/// writes, it waits in the busy handler (the 10 s busy timeout). A deferred transaction that
/// reads first and writes then would fail at once with "database is locked" instead.
/// The audit trail's row of one state change; under a lease (PostgreSQL, two or more hosts)
/// with the epoch that made it, which `lease_history` maps to the host.
fn history(
    tx: &mut dyn Db,
    row: i64,
    now: i64,
    state: State,
    note: Option<&str>,
) -> Result<(), JournalError> {
    let mut values: Vec<Val> = vec![row.into(), now.into(), state.as_str().into(), note.into()];
    let sql = match tx.epoch() {
        Some(epoch) => {
            values.push(epoch.into());
            "INSERT INTO history (row, at_ms, state, note, epoch) VALUES (?1, ?2, ?3, ?4, ?5)"
        }
        None => "INSERT INTO history (row, at_ms, state, note) VALUES (?1, ?2, ?3, ?4)",
    };
    tx.exec(sql, &values)?;
    Ok(())
}

fn write_transaction(c: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

const COLS: &str = "row, key, message_id, mailbox_item, state, outcome, reason_code, reason, request_id, level, forwarder, marker, attempts, last_error, first_seen_ms, updated_ms";

fn entry(r: &[Val]) -> Result<Entry, JournalError> {
    let bad = |i: usize| {
        JournalError::Sql(rusqlite::Error::InvalidColumnType(
            i,
            format!("{:?}", r.get(i)),
            rusqlite::types::Type::Null,
        ))
    };
    let int = |i: usize| r.get(i).and_then(Val::int).ok_or_else(|| bad(i));
    let text = |i: usize| r.get(i).and_then(Val::text);
    let state = text(4).unwrap_or_default();
    Ok(Entry {
        row: int(0)?,
        key: text(1).ok_or_else(|| bad(1))?,
        message_id: text(2),
        mailbox_item: text(3),
        state: State::parse(&state).ok_or_else(|| bad(4))?,
        outcome: text(5),
        reason_code: text(6),
        reason: text(7),
        request_id: text(8),
        level: r
            .get(9)
            .and_then(Val::int)
            .map(|l| u8::try_from(l).map_err(|_| bad(9)))
            .transpose()?,
        forwarder: text(10),
        marker: text(11),
        attempts: u32::try_from(int(12)?).map_err(|_| bad(12))?,
        last_error: text(13),
        first_seen_ms: int(14)?,
        updated_ms: int(15)?,
    })
}

fn get_by_key(db: &mut dyn Db, key: &str) -> Result<Option<Entry>, JournalError> {
    let rows = db.rows(
        &format!("SELECT {COLS} FROM mail WHERE key = ?1"),
        &[key.into()],
    )?;
    rows.first().map(|r| entry(r)).transpose()
}

fn get_by_row(db: &mut dyn Db, row: i64) -> Result<Option<Entry>, JournalError> {
    let rows = db.rows(
        &format!("SELECT {COLS} FROM mail WHERE row = ?1"),
        &[row.into()],
    )?;
    rows.first().map(|r| entry(r)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_opened_for_an_unreadable_item_becomes_the_mails_own_once_read() {
        let j = Journal::in_memory().unwrap();
        let Begin::New(p) = j.begin(&item_key("I1"), None, Some("I1")).unwrap() else {
            panic!("new")
        };
        assert_eq!(j.attempt_failed(p.row, "too large").unwrap(), 1);
        // Read at last: the same row, its attempt kept, under the mail's key.
        let Begin::Known(e) = j.begin("mid:x@t", Some("<x@t>"), Some("I1")).unwrap() else {
            panic!("known")
        };
        assert_eq!((e.row, e.attempts, e.state), (p.row, 1, State::Seen));
        assert_eq!(e.key, "mid:x@t");
        assert_eq!(j.all().unwrap().len(), 1);
        // A second item of a mail the journal knows already: its provisional row goes.
        let Begin::New(q) = j.begin(&item_key("I2"), None, Some("I2")).unwrap() else {
            panic!("new")
        };
        let Begin::Known(e) = j.begin("mid:x@t", Some("<x@t>"), Some("I2")).unwrap() else {
            panic!("known")
        };
        assert_eq!(e.row, p.row);
        assert!(j.get(q.row).unwrap().is_none());
        assert!(j.history(q.row).unwrap().is_empty());
    }

    #[test]
    fn keys_prefer_the_message_id() {
        assert_eq!(mail_key(Some("<ABC@x.test>"), b"x"), "mid:abc@x.test");
        assert_eq!(mail_key(Some("  "), b"x"), mail_key(None, b"x"));
        assert!(mail_key(None, b"x").starts_with("sha256:"));
        assert_ne!(mail_key(None, b"x"), mail_key(None, b"y"));
        assert!(
            mail_key(Some("a\r\nb"), b"x").starts_with("sha256:"),
            "a header-injected id is not trusted"
        );
    }

    /// A decided mail whose reply has not gone (held back by the sending pace) is owed; once
    /// notified it is not.
    #[test]
    fn replies_owed_are_the_decided_rows_not_yet_notified() {
        let j = Journal::in_memory().expect("journal");
        let row = |k: &str| match j.begin(k, None, None).expect("begin") {
            Begin::New(e) | Begin::Known(e) => e.row,
        };
        let (a, _b) = (row("mid:a"), row("mid:b"));
        j.refused(a, "not_approver", "no", None, None)
            .expect("refused");
        let s = j.stats().expect("stats");
        assert_eq!((s.unfinished, s.replies_owed), (2, 1));
        j.notified(a).expect("notified");
        assert_eq!(j.stats().expect("stats").replies_owed, 0);
    }

    #[test]
    fn a_read_only_journal_reads_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("journal.sqlite");
        {
            let j = Journal::open(&path).expect("open");
            j.begin("mid:a", Some("<a>"), Some("item1")).expect("begin");
            j.set_value("k", "v").expect("kv");
        }
        let before = std::fs::read(&path).expect("bytes");
        let r = Journal::open_read_only(&path).expect("read only");
        assert_eq!(r.stats().expect("stats").unfinished, 1);
        assert_eq!(r.get_value("k").expect("kv").as_deref(), Some("v"));
        assert!(r.set_value("k", "w").is_err(), "no write through it");
        drop(r);
        // (SQLite may leave its shared-memory index beside a WAL journal; as root it gives it
        // the journal's owner. The journal itself is untouched.)
        assert_eq!(std::fs::read(&path).expect("bytes"), before);
        // While the watcher holds it open it reads the latest state.
        let w = Journal::open(&path).expect("writer");
        w.set_value("k", "x").expect("kv");
        let r = Journal::open_read_only(&path).expect("read only");
        assert_eq!(r.get_value("k").expect("kv").as_deref(), Some("x"));
        // A missing journal is an error, not a new file.
        assert!(Journal::open_read_only(&dir.path().join("none.sqlite")).is_err());
        assert!(!dir.path().join("none.sqlite").exists());
    }

    #[test]
    fn the_state_machine_moves_forward_only() {
        let j = Journal::in_memory().expect("journal");
        let Begin::New(e) = j.begin("mid:a", Some("<a>"), Some("item1")).expect("begin") else {
            panic!("new")
        };
        assert_eq!(e.state, State::Seen);
        let e = j
            .decided(e.row, "Safe_1", 1, "bob@x.test", "ref-1")
            .expect("decided");
        assert_eq!(
            (e.state, e.level, e.marker.as_deref()),
            (State::Decided, Some(1), Some("ref-1"))
        );
        assert!(matches!(
            j.filed(e.row, "Processed"),
            Err(JournalError::Transition { .. })
        ));
        let e = j.confirmed(e.row, "200").expect("confirmed");
        assert!(
            j.refused(e.row, "x", "y", None, None).is_err(),
            "no going back"
        );
        j.notified(e.row).expect("notified");
        let e = j.filed(e.row, "Processed").expect("filed");
        assert_eq!(e.state, State::Filed);
        let states: Vec<String> = j
            .history(e.row)
            .expect("history")
            .into_iter()
            .map(|h| h.1)
            .collect();
        assert_eq!(
            states,
            ["seen", "decided", "confirmed", "notified", "filed"]
        );
        assert!(j.unfinished().expect("unfinished").is_empty());
    }

    #[test]
    fn the_same_mail_twice_is_known() {
        let j = Journal::in_memory().expect("journal");
        let Begin::New(e) = j.begin("mid:a", Some("<a>"), Some("item1")).expect("begin") else {
            panic!("new")
        };
        j.refused(
            e.row,
            "self_approval",
            "You asked for it yourself.",
            Some("S_1"),
            Some("alice@x"),
        )
        .expect("refused");
        match j.begin("mid:a", Some("<a>"), Some("item2")).expect("again") {
            Begin::Known(k) => {
                assert_eq!(k.state, State::Refused);
                assert_eq!(k.reason_code.as_deref(), Some("self_approval"));
                assert_eq!(
                    k.mailbox_item.as_deref(),
                    Some("item2"),
                    "the new item id is kept"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn state_survives_reopening_and_markers_are_unique() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("state/journal.sqlite");
        {
            let j = Journal::open(&p).expect("open");
            let Begin::New(e) = j.begin("mid:a", None, None).expect("begin") else {
                panic!("new")
            };
            j.decided(e.row, "S_1", 2, "b@x", "ref-a").expect("decided");
            let Begin::New(e2) = j.begin("mid:b", None, None).expect("begin") else {
                panic!("new")
            };
            assert!(
                j.decided(e2.row, "S_1", 2, "b@x", "ref-a").is_err(),
                "a marker identifies one mail"
            );
            assert_eq!(j.attempt_failed(e2.row, "503").expect("attempt"), 1);
            j.set_value("sync", "state-1").expect("kv");
        }
        let j = Journal::open(&p).expect("reopen");
        let open = j.unfinished().expect("unfinished");
        assert_eq!(open.len(), 2);
        assert_eq!(open[0].state, State::Decided);
        assert_eq!(open[1].attempts, 1);
        assert_eq!(j.get_value("sync").expect("kv").as_deref(), Some("state-1"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.parent().expect("dir"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the state directory is private");
    }
    #[test]
    fn the_journal_records_whom_it_confirmed_for_across_mails() {
        let j = Journal::in_memory().expect("journal");
        let new = |key: &str| match j.begin(key, None, None).expect("begin") {
            Begin::New(e) => e.row,
            Begin::Known(_) => panic!("new"),
        };
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // bob's mail: decided (the confirm is on its way), then confirmed.
        let a = new("mid:a");
        j.decided_for(
            a,
            "S_1",
            1,
            "Bob@X",
            "m1",
            &ids(&["bob", "BOB@x", "person:eid=7"]),
        )
        .expect("decided");
        let got = j.acted_for("S_1", None).expect("acted");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].level, 1);
        assert_eq!(got[0].identities, ids(&["bob", "bob@x", "person:eid=7"]));
        assert!(
            j.acted_for("S_1", Some(a)).expect("acted").is_empty(),
            "not its own row"
        );
        assert!(j.acted_for("S_2", None).expect("acted").is_empty());
        j.confirmed(a, "ok").expect("confirmed");
        assert_eq!(j.acted_for("S_1", None).expect("acted").len(), 1);
        // carol's mail: PVWA refused the confirm: it does not count.
        let b = new("mid:b");
        j.decided_for(b, "S_1", 2, "carol@x", "m2", &ids(&["carol"]))
            .expect("decided");
        assert_eq!(j.acted_for("S_1", None).expect("acted").len(), 2);
        j.refused(
            b,
            "confirm_failed",
            "PVWA refused",
            Some("S_1"),
            Some("carol@x"),
        )
        .expect("refused");
        assert_eq!(j.acted_for("S_1", None).expect("acted").len(), 1);
        // dave's mail given up in `decided`: whether PVWA has it is unknown, so it counts.
        let c = new("mid:c");
        j.decided_for(c, "S_1", 2, "dave@x", "m3", &[])
            .expect("decided");
        j.refused(c, "gave_up", "unknown", Some("S_1"), Some("dave@x"))
            .expect("refused");
        let got = j.acted_for("S_1", None).expect("acted");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1].identities,
            ids(&["dave@x"]),
            "the forwarder at least"
        );
    }

    /// The modes of the journal and SQLite's `-wal`/`-shm` beside it (`None`: absent).
    fn journal_modes(p: &Path) -> Vec<(String, Option<u32>)> {
        use std::os::unix::fs::PermissionsExt;
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| {
                let f = PathBuf::from(format!("{}{suffix}", p.display()));
                let mode = std::fs::metadata(&f)
                    .ok()
                    .map(|m| m.permissions().mode() & 0o777);
                (suffix.to_string(), mode)
            })
            .collect()
    }

    #[test]
    fn the_journal_and_its_wal_files_are_owner_only_in_an_existing_open_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        // A state directory that already exists, readable by all (as an admin may create it).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let p = dir.path().join("journal.sqlite");
        let j = Journal::open(&p).expect("open");
        j.begin("mid:a", None, None).expect("begin");
        let modes = journal_modes(&p);
        for (suffix, mode) in &modes {
            let mode = mode.unwrap_or_else(|| panic!("journal{suffix} exists: {modes:?}"));
            assert_eq!(mode, 0o600, "journal{suffix}: {mode:o}");
        }
        drop(j);
        // A journal left readable by an older version is made private again when opened.
        for (suffix, _) in &modes {
            let f = PathBuf::from(format!("{}{suffix}", p.display()));
            if f.exists() {
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644))
                    .expect("chmod");
            }
        }
        let j = Journal::open(&p).expect("reopen");
        j.begin("mid:b", None, None).expect("begin");
        for (suffix, mode) in journal_modes(&p) {
            if let Some(mode) = mode {
                assert_eq!(mode, 0o600, "journal{suffix} after reopen: {mode:o}");
            }
        }
    }

    /// The same under `umask 000`: the test binary runs itself again in a shell that sets it.
    #[test]
    fn the_journal_is_owner_only_under_umask_000() {
        const CHILD: &str = "APPROVAL_TEST_UMASK_CHILD";
        if let Some(dir) = std::env::var_os(CHILD) {
            let p = Path::new(&dir).join("state/journal.sqlite");
            let j = Journal::open(&p).expect("open");
            j.begin("mid:a", None, None).expect("begin");
            for (suffix, mode) in journal_modes(&p) {
                let mode = mode.unwrap_or_else(|| panic!("journal{suffix} exists"));
                assert_eq!(mode, 0o600, "journal{suffix} under umask 000: {mode:o}");
            }
            return;
        }
        let dir = tempfile::tempdir().expect("tmp");
        let exe = std::env::current_exe().expect("exe");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 000 && exec \"$0\" \"$@\"")
            .arg(exe)
            .args([
                "--exact",
                "journal::tests::the_journal_is_owner_only_under_umask_000",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, dir.path())
            .output()
            .expect("run the test binary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran the test: {text}");
    }
}

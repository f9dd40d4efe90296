//! The journal on PostgreSQL (issue 33, first step: one host).
//!
//! `[journal] url = "postgres://USER@HOST:PORT/DB"`, the password as a secret reference
//! (`journal.password`, never in the URL), TLS always on and verified (rustls, the host name
//! checked against the certificate; trust from `journal.ca_bundle` or the system store), the
//! tool's tables in their own schema (`journal.schema`), created and migrated by the tool.
//!
//! The connection is tokio-postgres, driven by a small runtime of its own: the journal's calls
//! are synchronous (the pipeline runs them on tokio's blocking pool, like SQLite's), and they
//! wait on the client's futures with a plain executor, so a call never starts a runtime inside
//! another one. A lost connection is opened again on the next call.
//!
//! Schema versions live in `schema_version`; a schema newer than this program knows is refused
//! (an older program must not write into tables it does not understand). Migrations run in one
//! transaction holding a transaction-level advisory lock, so two hosts starting together migrate
//! once (and the lock works behind a transaction-mode pooler).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::{Db, JournalError, Val};

/// `[journal]`: where the journal lives when it is not the SQLite file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=verify-full]`. Without it the journal is
    /// the SQLite file (`watcher.journal`, default `STATE_DIR/journal.sqlite`).
    pub url: Option<String>,
    /// The database password as a secret reference (`vault:…`, `file:…`, `env:…`, `cred:…`).
    pub password: Option<crate::secret::SecretRef>,
    /// PEM bundle of the CA(s) that sign the database server's certificate; the system store
    /// when absent.
    pub ca_bundle: Option<PathBuf>,
    /// The schema holding the tool's tables (created when missing). Default `pam_approval`.
    pub schema: Option<String>,
    /// Seconds to wait for a connection (per host). Default 5.
    pub connect_timeout_secs: Option<u64>,
    /// Seconds one statement may run before the server cancels it. Default 10.
    pub statement_timeout_secs: Option<u64>,
    /// Two or more watcher hosts: the length of the active host's lease, in seconds (3..=120,
    /// default 10). Renewed every fifth of it; a standby takes over once it has expired.
    pub lease_secs: Option<u64>,
    /// The name this host shows as the lease's holder (`--status`, `/readyz`, the logs);
    /// default the system's host name.
    pub host_name: Option<String>,
}

/// `journal.lease_secs` when not set.
pub const DEFAULT_LEASE_SECS: u64 = 10;

pub const DEFAULT_SCHEMA: &str = "pam_approval";

/// A checked `[journal]` PostgreSQL target (the password still a reference).
#[derive(Debug, Clone)]
pub struct PgTarget {
    /// The URL as configured (it holds no password).
    pub url: String,
    pub config: tokio_postgres::Config,
    pub password: Option<crate::secret::SecretRef>,
    pub ca_bundle: Option<PathBuf>,
    pub schema: String,
    pub statement_timeout: Duration,
    /// `journal.lease_secs`.
    pub lease: Duration,
    /// `journal.host_name` (or the system's).
    pub host_name: String,
}

/// The system's host name (its first label kept whole), `localhost` when it cannot be read.
fn system_host_name() -> String {
    let u = rustix::system::uname();
    let n = u.nodename().to_string_lossy().trim().replace(':', "_");
    if n.is_empty() { "localhost".into() } else { n }
}

impl JournalConfig {
    /// Check the section; `Ok(None)` when no URL is set (the SQLite journal).
    pub fn target(
        &self,
        origin: &crate::config::Origin,
    ) -> Result<Option<PgTarget>, crate::config::ConfigError> {
        let Some(raw) = self.url.as_deref() else {
            for (key, set) in [
                ("journal.password", self.password.is_some()),
                ("journal.ca_bundle", self.ca_bundle.is_some()),
                ("journal.schema", self.schema.is_some()),
                ("journal.lease_secs", self.lease_secs.is_some()),
                ("journal.host_name", self.host_name.is_some()),
            ] {
                if set {
                    return Err(origin.error(
                        key,
                        "is set but journal.url is not: the PostgreSQL settings need journal.url",
                    ));
                }
            }
            return Ok(None);
        };
        let config = parse_url(raw).map_err(|m| origin.error("journal.url", m))?;
        let schema = self.schema.clone().unwrap_or_else(|| DEFAULT_SCHEMA.into());
        if !is_identifier(&schema) {
            return Err(origin.error(
                "journal.schema",
                "must be a plain lower-case name: letters a-z, digits and `_`, starting with a letter or `_`, at most 63 characters",
            ));
        }
        let mut config = config;
        let connect = self.connect_timeout_secs.unwrap_or(5);
        if !(1..=300).contains(&connect) {
            return Err(origin.error("journal.connect_timeout_secs", "must be between 1 and 300"));
        }
        let statement = self.statement_timeout_secs.unwrap_or(10);
        if !(1..=3600).contains(&statement) {
            return Err(origin.error(
                "journal.statement_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        config.connect_timeout(Duration::from_secs(connect));
        let lease = self.lease_secs.unwrap_or(DEFAULT_LEASE_SECS);
        if !(3..=120).contains(&lease) {
            return Err(origin.error("journal.lease_secs", "must be between 3 and 120"));
        }
        let host_name = match &self.host_name {
            Some(h) => {
                let h = h.trim();
                if h.is_empty()
                    || h.len() > 100
                    || h.contains(':')
                    || h.chars().any(|c| c.is_control() || c.is_whitespace())
                {
                    return Err(origin.error(
                        "journal.host_name",
                        "must be a host name: 1 to 100 characters, no spaces, control characters or `:`",
                    ));
                }
                h.to_string()
            }
            None => system_host_name(),
        };
        // The bundle itself is read when connecting (its error names the file).
        Ok(Some(PgTarget {
            url: raw.to_string(),
            config,
            password: self.password.clone(),
            ca_bundle: self.ca_bundle.clone(),
            schema,
            statement_timeout: Duration::from_secs(statement),
            lease: Duration::from_secs(lease),
            host_name,
        }))
    }
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some('a'..='z' | '_'))
        && s.len() <= 63
        && c.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// Parse and check `journal.url`: a `postgres://` URL with a user, a host and a database, no
/// password (it would sit in the configuration file and in `ps`-visible places: it belongs in
/// `journal.password`), and no TLS downgrade (`sslmode` may only ask for verification).
pub fn parse_url(raw: &str) -> Result<tokio_postgres::Config, String> {
    let url = url::Url::parse(raw)
        .map_err(|_| "is not a URL; write postgres://USER@HOST:PORT/DATABASE".to_string())?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "scheme `{}` is not supported; write postgres://USER@HOST:PORT/DATABASE",
            url.scheme()
        ));
    }
    let shown = redact(&url);
    if url.password().is_some() {
        return Err(format!(
            "`{shown}` carries a password; put a secret reference in journal.password instead (vault:…, file:…, env:…, cred:…)"
        ));
    }
    if url.username().is_empty() {
        return Err(format!(
            "`{shown}` names no user: postgres://USER@HOST:PORT/DATABASE"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{shown}` names no host"));
    }
    if url.path().trim_start_matches('/').is_empty() {
        return Err(format!(
            "`{shown}` names no database: postgres://USER@HOST:PORT/DATABASE"
        ));
    }
    // Every pair is checked, a repeated one too (tokio-postgres would take the last one:
    // `sslmode=verify-full&sslmode=disable` is refused here for its second pair). Names are
    // compared as written after percent-decoding, case and all, as tokio-postgres reads them
    // (`SSLMODE` is no parameter of its and is refused as unknown).
    for (k, v) in url.query_pairs() {
        match &*k {
            "sslmode" if matches!(&*v, "verify-full" | "require" | "verify-ca") => {}
            "sslmode" => {
                // The value is named only when it is a mode (a mistyped secret is not echoed).
                let v = if matches!(&*v, "disable" | "allow" | "prefer") {
                    format!("sslmode={v}")
                } else {
                    "this sslmode value".to_string()
                };
                return Err(format!(
                    "{v} is not accepted: the journal always uses TLS and verifies the server's certificate and name (sslmode=verify-full)"
                ));
            }
            "password" => {
                return Err(
                    "carries a password parameter; put a secret reference in journal.password instead"
                        .into(),
                );
            }
            "sslrootcert" => {
                return Err("sslrootcert is not read from the URL; set journal.ca_bundle".into());
            }
            // The host, port, user and database come from the URL itself only: a `host=`
            // parameter could name a Unix socket, where no TLS is spoken.
            "application_name"
            | "connect_timeout"
            | "target_session_attrs"
            | "keepalives"
            | "keepalives_idle" => {}
            // `host`/`hostaddr` (a socket or another host), `sslcert`/`sslkey`,
            // `sslnegotiation`, `channel_binding`, `options`, `user`, `dbname`, `port`, …
            other => {
                // The name is echoed when it looks like one (a stray secret is not).
                let named = other.len() <= 32
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                return Err(if named {
                    format!("parameter `{other}` is not supported")
                } else {
                    "holds a query parameter that is not supported".to_string()
                });
            }
        }
    }
    // tokio-postgres reads the URL itself (percent-decoding); our own
    // connector always speaks TLS, so the mode is pinned to `require` for it.
    let mut keep = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "sslmode")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    keep.set_query(None);
    if !pairs.is_empty() {
        keep.query_pairs_mut().extend_pairs(pairs);
    }
    let mut config: tokio_postgres::Config = keep
        .as_str()
        .parse()
        .map_err(|e| format!("`{shown}` is not a PostgreSQL URL: {e}"))?;
    if config.get_password().is_some() {
        return Err(format!(
            "`{shown}` carries a password; use journal.password"
        ));
    }
    if config
        .get_hosts()
        .iter()
        .any(|h| !matches!(h, tokio_postgres::config::Host::Tcp(_)))
    {
        return Err(format!(
            "`{shown}` names a Unix socket; the journal connects over TCP with TLS"
        ));
    }
    config.ssl_mode(tokio_postgres::config::SslMode::Require);
    config.application_name("pam-approval");
    Ok(config)
}

fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

/// The schema versions this program knows: `MIGRATIONS[i]` takes the schema from version `i`
/// to `i + 1`. Version 2 adds the lease of the active host (`lease`, one row named
/// [`super::lease::LEASE_NAME`]), the record of every takeover (`lease_history`), and the
/// epoch that last moved each mail row (`mail.epoch`) and the epoch of each state change
/// (`history.epoch`: which host did what), for two or more hosts with fencing.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE mail (
    row            BIGSERIAL PRIMARY KEY,
    key            TEXT NOT NULL UNIQUE,
    message_id     TEXT,
    mailbox_item   TEXT,
    state          TEXT NOT NULL,
    outcome        TEXT,
    reason_code    TEXT,
    reason         TEXT,
    request_id     TEXT,
    level          BIGINT,
    forwarder      TEXT,
    marker         TEXT UNIQUE,
    attempts       BIGINT NOT NULL DEFAULT 0,
    last_error     TEXT,
    first_seen_ms  BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL
);
CREATE INDEX mail_state ON mail(state);
CREATE INDEX mail_request ON mail(request_id);
CREATE TABLE history (
    id       BIGSERIAL PRIMARY KEY,
    row      BIGINT NOT NULL REFERENCES mail(row),
    at_ms    BIGINT NOT NULL,
    state    TEXT NOT NULL,
    note     TEXT
);
CREATE INDEX history_row ON history(row);
CREATE TABLE acted_for (
    row         BIGINT NOT NULL REFERENCES mail(row),
    request_id  TEXT NOT NULL,
    level       BIGINT NOT NULL,
    identity    TEXT NOT NULL
);
CREATE INDEX acted_for_request ON acted_for(request_id);
CREATE TABLE kv (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE lease (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    renewed_at  TIMESTAMPTZ NOT NULL,
    released    BOOLEAN NOT NULL DEFAULT false
);
INSERT INTO lease (name, holder, epoch, expires_at, renewed_at)
    VALUES ('watcher', '', 0, '-infinity', '-infinity');
CREATE TABLE lease_history (
    name        TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    holder      TEXT NOT NULL,
    taken_at    TIMESTAMPTZ NOT NULL,
    taken_from  TEXT NOT NULL,
    how         TEXT NOT NULL,
    PRIMARY KEY (name, epoch)
);
ALTER TABLE mail ADD COLUMN epoch BIGINT;
ALTER TABLE history ADD COLUMN epoch BIGINT;
"#,
];

/// The newest schema version this program knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A fixed key for the migration lock (`pg_advisory_xact_lock`): "pamappr" in ASCII.
const MIGRATION_LOCK: i64 = 0x70_61_6d_61_70_70_72;

/// One open connection, with the small runtime that drives it.
pub(crate) struct PgConn {
    rt: Option<tokio::runtime::Runtime>,
    client: tokio_postgres::Client,
    target: PgTarget,
    password: Option<crate::secret::SecretString>,
    /// `Some` when the journal may write (not a `--status` reader).
    writable: bool,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // Dropped from async code too: never block here.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn pg_err(e: tokio_postgres::Error) -> JournalError {
    JournalError::Postgres(describe(&e))
}

/// An error's useful text: the server's SQLSTATE and message (tokio-postgres' `Display` of a
/// server error says only "db error"), else the client's own chain (TLS, connection).
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

impl PgConn {
    /// Connect (TLS verified), set the session's timeouts and search path, and bring the
    /// schema to this program's version (`writable`) or check it (`--status`, the site check).
    pub fn connect(
        target: &PgTarget,
        password: Option<crate::secret::SecretString>,
        writable: bool,
    ) -> Result<PgConn, JournalError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("journal-pg")
            .enable_all()
            .build()
            .map_err(|e| JournalError::Postgres(format!("cannot start its runtime: {e}")))?;
        let client = match open(&rt, target, password.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                // Also from async code (the watcher's start, the site check): never block here.
                rt.shutdown_background();
                return Err(e);
            }
        };
        let mut c = PgConn {
            rt: Some(rt),
            client,
            target: target.clone(),
            password,
            writable,
        };
        c.prepare_session()?;
        Ok(c)
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime until drop")
    }

    fn prepare_session(&mut self) -> Result<(), JournalError> {
        let schema = self.target.schema.clone();
        let ms = self.target.statement_timeout.as_millis();
        // A transaction left idle (its process paused mid-way) is ended by the server within
        // the lease's length: its `FOR SHARE` on the lease row would hold back a takeover.
        let idle = (ms * 2).min(self.target.lease.as_millis()).max(1);
        // The schema is a checked identifier (JournalConfig::target); the numbers are ours.
        let set = format!(
            "SET statement_timeout = {ms}; SET lock_timeout = {ms}; \
             SET idle_in_transaction_session_timeout = {idle}; SET search_path TO {schema}"
        );
        self.block(|c| async move { c.batch_execute(&set).await })?;
        if self.writable {
            self.migrate()
        } else {
            self.check_version().map(|_| ())
        }
    }

    /// Wait for a client future (any thread, also inside async code).
    fn block<'a, R, F: std::future::Future<Output = Result<R, tokio_postgres::Error>>>(
        &'a self,
        f: impl FnOnce(&'a tokio_postgres::Client) -> F,
    ) -> Result<R, JournalError> {
        futures_executor::block_on(f(&self.client)).map_err(pg_err)
    }

    /// The schema version stored, after checking this program knows it. `Ok(0)`: none yet.
    pub fn check_version(&self) -> Result<i64, JournalError> {
        let rows = self.block(|c| async move {
            c.query("SELECT to_regclass('schema_version') IS NOT NULL", &[])
                .await
        })?;
        let exists: bool = rows.first().map(|r| r.get(0)).unwrap_or(false);
        if !exists {
            return Ok(0);
        }
        let rows = self.block(|c| async move {
            c.query("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
                .await
        })?;
        let v: i64 = rows.first().map(|r| r.get(0)).unwrap_or(0);
        refuse_newer(v)?;
        Ok(v)
    }

    /// Create the schema or bring it to [`SCHEMA_VERSION`]: one transaction under an advisory
    /// lock; idempotent.
    fn migrate(&mut self) -> Result<(), JournalError> {
        let schema = self.target.schema.clone();
        let rt_client = &mut self.client;
        futures_executor::block_on(async move {
            let tx = rt_client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}; \
                 CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL, applied_ms BIGINT NOT NULL)"
            ))
            .await?;
            let v: i64 = tx
                .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
                .await?
                .get(0);
            if v > SCHEMA_VERSION {
                // Leave it untouched; reported below.
                tx.rollback().await?;
                return Ok(Some(v));
            }
            for (i, m) in MIGRATIONS.iter().enumerate().skip(v.max(0) as usize) {
                tx.batch_execute(m).await?;
                tx.execute(
                    "INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)",
                    &[&(i as i64 + 1), &super::now_ms()],
                )
                .await?;
            }
            tx.commit().await?;
            Ok::<_, tokio_postgres::Error>(None)
        })
        .map_err(pg_err)?
        .map_or(Ok(()), refuse_newer)
    }

    /// A transaction for `f` (opening the connection again first when it was lost). With a
    /// `fence`, the transaction first locks the lease row `FOR SHARE` with this process's
    /// holder id and epoch, and stops with [`JournalError::Fenced`] when that row is no longer
    /// there: another host took the lease over. `FOR SHARE` (not `FOR KEY SHARE`) conflicts
    /// with the takeover's `UPDATE`, so every fenced write is ordered either before the
    /// takeover (the new host sees it) or after it (and is refused).
    pub(crate) fn transaction<R>(
        &mut self,
        fence: Option<&super::lease::Fence>,
        f: impl FnOnce(&mut dyn Db) -> Result<R, JournalError>,
    ) -> Result<R, JournalError> {
        self.reconnect_if_closed()?;
        let client = &mut self.client;
        let tx = futures_executor::block_on(client.transaction()).map_err(pg_err)?;
        if let Some(fence) = fence {
            let held = futures_executor::block_on(tx.query(
                super::lease::FENCE_SQL,
                &[&fence.name, &fence.holder, &fence.epoch],
            ))
            .map_err(pg_err)?;
            if held.is_empty() {
                // Dropped unfinished: rolled back.
                return Err(JournalError::Fenced(format!(
                    "the lease is no longer held by this process (epoch {}): another host took over",
                    fence.epoch
                )));
            }
        }
        let mut db = PgTx(&tx, fence.map(|f| f.epoch));
        let r = f(&mut db)?;
        futures_executor::block_on(tx.commit()).map_err(pg_err)?;
        Ok(r)
    }

    /// `f` outside a transaction (single statements, reads).
    pub(crate) fn plain<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Db) -> Result<R, JournalError>,
    ) -> Result<R, JournalError> {
        self.reconnect_if_closed()?;
        let mut db = PgPlain(&self.client);
        f(&mut db)
    }

    fn reconnect_if_closed(&mut self) -> Result<(), JournalError> {
        if !self.client.is_closed() {
            return Ok(());
        }
        log::warn!("journal: the PostgreSQL connection was lost; connecting again");
        self.client = open(self.rt(), &self.target, self.password.as_ref())?;
        self.prepare_session()
    }
}

fn refuse_newer(v: i64) -> Result<(), JournalError> {
    if v > SCHEMA_VERSION {
        return Err(JournalError::Schema(format!(
            "the journal's schema is version {v}, newer than this program knows ({SCHEMA_VERSION}): a newer pam-approval migrated it; run that version (an older one must not write into tables it does not understand)"
        )));
    }
    Ok(())
}

fn open(
    rt: &tokio::runtime::Runtime,
    target: &PgTarget,
    password: Option<&crate::secret::SecretString>,
) -> Result<tokio_postgres::Client, JournalError> {
    use secrecy::ExposeSecret;
    let tls = crate::tls::client_config(target.ca_bundle.as_deref())
        .map_err(|e| JournalError::Postgres(e.to_string()))?;
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
    let mut config = target.config.clone();
    if let Some(p) = password {
        config.password(p.expose_secret().as_bytes());
    }
    let connected = rt.block_on_safe(async move {
        let (client, conn) = config.connect(tls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                log::warn!("journal: PostgreSQL connection ended: {}", describe(&e));
            }
        });
        Ok::<_, tokio_postgres::Error>(client)
    });
    connected.map_err(|e| {
        JournalError::Postgres(format!(
            "cannot connect to {}: {}",
            crate::text::printable(&redact_str(&target.url)),
            describe(&e)
        ))
    })
}

/// A connection of its own for the lease (never the journal's, never pooled), driven by the
/// caller's runtime: its statements are awaited with a deadline, and a connection that does not
/// answer is dropped. Statements and lock waits are bounded by `statement`.
pub async fn connect_lease(
    target: &PgTarget,
    password: Option<&crate::secret::SecretString>,
    statement: Duration,
) -> Result<tokio_postgres::Client, JournalError> {
    use secrecy::ExposeSecret;
    let tls = crate::tls::client_config(target.ca_bundle.as_deref())
        .map_err(|e| JournalError::Postgres(e.to_string()))?;
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
    let mut config = target.config.clone();
    config.application_name("pam-approval-lease");
    if let Some(p) = password {
        config.password(p.expose_secret().as_bytes());
    }
    let fail = |e: tokio_postgres::Error| {
        JournalError::Postgres(format!(
            "cannot connect to {}: {}",
            crate::text::printable(&redact_str(&target.url)),
            describe(&e)
        ))
    };
    let (client, conn) = config.connect(tls).await.map_err(fail)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            log::debug!("lease: PostgreSQL connection ended: {}", describe(&e));
        }
    });
    let ms = statement.as_millis().max(1);
    client
        .batch_execute(&format!(
            "SET statement_timeout = {ms}; SET lock_timeout = {ms}; \
             SET idle_in_transaction_session_timeout = {}; SET search_path TO {}",
            ms * 2,
            target.schema
        ))
        .await
        .map_err(pg_err)?;
    Ok(client)
}

/// The URL as shown in `--status` and errors: no password (none is accepted anyway), no query.
pub fn shown_url(raw: &str) -> String {
    redact_str(raw)
}

fn redact_str(raw: &str) -> String {
    url::Url::parse(raw).map(|u| redact(&u)).unwrap_or_default()
}

/// Run a future on the journal's runtime and wait for it from any thread (also one inside
/// another runtime, where `Runtime::block_on` would panic).
trait BlockOnSafe {
    fn block_on_safe<F>(&self, f: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static;
}

impl BlockOnSafe for tokio::runtime::Runtime {
    fn block_on_safe<F>(&self, f: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = self.spawn(f);
        futures_executor::block_on(h).expect("the journal's connect task does not panic")
    }
}

/// `?1`, `?2`… (the journal's shared SQL) to PostgreSQL's `$1`, `$2`….
fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut it = sql.chars().peekable();
    while let Some(c) = it.next() {
        if c == '?' && it.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Val::Int(i) => i.to_sql(ty, out),
            Val::Text(s) => s.as_str().to_sql(ty, out),
        }
    }
    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::INT4 | Type::TEXT | Type::VARCHAR)
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Val {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Val::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Val::Int(i32::from_sql(ty, raw)?.into()),
            Type::BOOL => Val::Int(bool::from_sql(ty, raw)?.into()),
            _ => Val::Text(<&str>::from_sql(ty, raw)?.to_owned()),
        })
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Val::Null)
    }
    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8 | Type::INT4 | Type::BOOL | Type::TEXT | Type::VARCHAR
        )
    }
}

fn params(p: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn to_rows(rows: Vec<tokio_postgres::Row>) -> Result<Vec<Vec<Val>>, JournalError> {
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.try_get::<_, Val>(i).map_err(pg_err))
                .collect()
        })
        .collect()
}

struct PgTx<'a, 'b>(&'a tokio_postgres::Transaction<'b>, Option<i64>);
struct PgPlain<'a>(&'a tokio_postgres::Client);

impl Db for PgTx<'_, '_> {
    fn exec(&mut self, sql: &str, p: &[Val]) -> Result<u64, JournalError> {
        futures_executor::block_on(self.0.execute(&dollars(sql), &params(p))).map_err(pg_err)
    }
    fn rows(&mut self, sql: &str, p: &[Val]) -> Result<Vec<Vec<Val>>, JournalError> {
        to_rows(
            futures_executor::block_on(self.0.query(&dollars(sql), &params(p))).map_err(pg_err)?,
        )
    }
    fn postgres(&self) -> bool {
        true
    }
    fn epoch(&self) -> Option<i64> {
        self.1
    }
}

impl Db for PgPlain<'_> {
    fn exec(&mut self, sql: &str, p: &[Val]) -> Result<u64, JournalError> {
        futures_executor::block_on(self.0.execute(&dollars(sql), &params(p))).map_err(pg_err)
    }
    fn rows(&mut self, sql: &str, p: &[Val]) -> Result<Vec<Vec<Val>>, JournalError> {
        to_rows(
            futures_executor::block_on(self.0.query(&dollars(sql), &params(p))).map_err(pg_err)?,
        )
    }
    fn postgres(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            dollars("a = ?1 AND b = ?12, c = '?'"),
            "a = $1 AND b = $12, c = '?'"
        );
    }

    #[test]
    fn a_url_with_a_password_is_refused_without_echoing_it() {
        let e = parse_url("postgres://pam:S3cret@db.example:5432/pam").unwrap_err();
        assert!(e.contains("journal.password"), "{e}");
        assert!(!e.contains("S3cret"), "{e}");
        let e = parse_url("postgres://pam@db.example/pam?password=S3cret").unwrap_err();
        assert!(
            e.contains("journal.password") && !e.contains("S3cret"),
            "{e}"
        );
    }

    #[test]
    fn tls_cannot_be_turned_off_and_the_url_must_be_complete() {
        for bad in [
            "postgres://pam@db.example/pam?sslmode=disable",
            "postgres://pam@db.example/pam?sslmode=prefer",
            "postgres://pam@db.example/pam?sslmode=allow",
        ] {
            assert!(parse_url(bad).unwrap_err().contains("sslmode"), "{bad}");
        }
        assert!(
            parse_url("postgres://db.example/pam")
                .unwrap_err()
                .contains("no user")
        );
        assert!(
            parse_url("postgres://pam@db.example/")
                .unwrap_err()
                .contains("no database")
        );
        assert!(
            parse_url("mysql://pam@db.example/pam")
                .unwrap_err()
                .contains("scheme")
        );
        // No way around TLS through a Unix socket, nor around the URL's host.
        for bad in [
            "postgres://pam@db.example/pam?host=/var/run/postgresql",
            "postgres://pam@%2Fvar%2Frun%2Fpostgresql/pam",
            "postgres://pam@db.example/pam?sslrootcert=/tmp/x",
            "postgres://pam@db.example/pam?options=-csearch_path%3Dx",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let c = parse_url("postgres://pam@db.example:5433/pam?sslmode=verify-full").unwrap();
        assert_eq!(c.get_user(), Some("pam"));
        assert_eq!(c.get_dbname(), Some("pam"));
        assert_eq!(c.get_ports(), [5433]);
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    }

    /// Read as an attacker or a misconfigurer: every way to turn TLS off, reach a socket or
    /// another host, or slip a password in is refused, and no refusal echoes the secret.
    #[test]
    fn refusals_hold_against_encodings_repeats_and_odd_parameters() {
        for bad in [
            // Another case, percent-encoded name or value, a repeat where the last one
            // (tokio-postgres's pick) disables TLS, an empty value.
            "postgres://pam@db.example/pam?SSLMODE=disable",
            "postgres://pam@db.example/pam?SslMode=Disable",
            "postgres://pam@db.example/pam?sslmode=Disable",
            "postgres://pam@db.example/pam?ssl%6Dode=disable",
            "postgres://pam@db.example/pam?sslmode=%64isable",
            "postgres://pam@db.example/pam?sslmode=verify-full&sslmode=disable",
            "postgres://pam@db.example/pam?sslmode=disable&sslmode=verify-full",
            "postgres://pam@db.example/pam?sslmode=",
            "postgres://pam@db.example/pam?sslmode=verify-full%00",
            // Another host or a socket through the query.
            "postgres://pam@db.example/pam?host=evil.example",
            "postgres://pam@db.example/pam?ho%73t=/tmp",
            "postgres://pam@db.example/pam?hostaddr=203.0.113.9",
            "postgres://pam@db.example/pam?port=1",
            "postgres://pam@db.example/pam?user=postgres",
            "postgres://pam@db.example/pam?dbname=postgres",
            // TLS client keys, negotiation and channel binding are not taken from the URL.
            "postgres://pam@db.example/pam?sslcert=/tmp/c.pem",
            "postgres://pam@db.example/pam?sslkey=/tmp/k.pem",
            "postgres://pam@db.example/pam?sslnegotiation=direct",
            "postgres://pam@db.example/pam?channel_binding=disable",
            // A socket as the host, percent-encoded.
            "postgres://pam@%2Ftmp/pam",
        ] {
            let e = parse_url(bad).expect_err(bad);
            assert!(!e.is_empty(), "{bad}");
        }
        // Passwords, however spelled, are refused and never echoed.
        for (bad, secret) in [
            ("postgres://pam:S3cret@db.example/pam", "S3cret"),
            ("postgres://pam%40corp:S3cret@db.example/pam", "S3cret"),
            ("postgres://pam:S3cr%40t@db.example/pam", "S3cr"),
            ("postgres://pam:S3cret@x@db.example/pam", "S3cret"),
            (
                "postgres://pam:S3cret%40db.example@other.example/pam",
                "S3cret",
            ),
            ("postgres://pam@db.example/pam?password=S3cret", "S3cret"),
            ("postgres://pam@db.example/pam?pass%77ord=S3cret", "S3cret"),
            ("postgres://pam:S3cret@[::1]:5432/pam", "S3cret"),
            // A secret pasted as a parameter name or an sslmode value is not echoed either.
            ("postgres://pam@db.example/pam?S3cret%21%23", "S3cret"),
            ("postgres://pam@db.example/pam?sslmode=S3cret", "S3cret"),
        ] {
            let e = parse_url(bad).expect_err(bad);
            assert!(!e.contains(secret), "{bad}: {e}");
        }
        // Through the configuration, the refusal names journal.url.
        let e = crate::settings::load_from_parts(
            Some("[journal]\nurl = \"postgres://u@h/d?sslmode=verify-full&sslmode=disable\"\n"),
            None,
            &[],
        )
        .expect_err("refused")
        .to_string();
        assert!(e.contains("journal.url") && e.contains("sslmode"), "{e}");
        // An IPv6 host is a TCP host, and the mode stays pinned.
        let c = parse_url("postgres://pam@[::1]:5433/pam?sslmode=verify-full").expect("ipv6");
        assert_eq!(c.get_ports(), [5433]);
        assert!(
            matches!(c.get_hosts(), [tokio_postgres::config::Host::Tcp(h)] if h == "::1"),
            "{:?}",
            c.get_hosts()
        );
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        // A repeated verifying mode is fine, and pinned.
        let c = parse_url("postgres://pam@db.example/pam?sslmode=require&sslmode=verify-full")
            .expect("repeat");
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        // A user name with an encoded `@` is a user name, not a password.
        let c = parse_url("postgres://pam%40corp@db.example/pam").expect("user");
        assert_eq!(c.get_user(), Some("pam@corp"));
        assert!(c.get_password().is_none());
    }

    #[test]
    fn config_errors_name_the_key() {
        // Checked when the configuration is loaded.
        let err = |t: &str| {
            crate::settings::load_from_parts(Some(t), None, &[])
                .expect_err("refused")
                .to_string()
        };
        let e = err("[journal]\nurl = \"postgres://u:pw@h/d\"\n");
        assert!(e.contains("journal.url"), "{e}");
        let e = err("[journal]\nurl = \"postgres://u@h/d\"\nschema = \"Bad;drop\"\n");
        assert!(e.contains("journal.schema"), "{e}");
        let e = err("[journal]\npassword = \"env:PGPW\"\n");
        assert!(e.contains("journal.password"), "{e}");
        let e = err("[journal]\nurl = \"postgres://u@h/d\"\nstatement_timeout_secs = 0\n");
        assert!(e.contains("journal.statement_timeout_secs"), "{e}");
        for bad in ["lease_secs = 2", "lease_secs = 121"] {
            let e = err(&format!("[journal]\nurl = \"postgres://u@h/d\"\n{bad}\n"));
            assert!(e.contains("journal.lease_secs"), "{e}");
        }
        for bad in ["\"a b\"", "\"\"", "\"web:01\""] {
            let e = err(&format!(
                "[journal]\nurl = \"postgres://u@h/d\"\nhost_name = {bad}\n"
            ));
            assert!(e.contains("journal.host_name"), "{e}");
        }
        let e = err("[journal]\nlease_secs = 10\n");
        assert!(e.contains("journal.lease_secs"), "{e}");
        let l = crate::settings::load_from_parts(
            Some("[journal]\nurl = \"postgres://u@h/d\"\nlease_secs = 3\nhost_name = \"web01\"\n"),
            None,
            &[],
        )
        .expect("valid");
        let t = l
            .config
            .journal
            .target(&l.origin)
            .expect("valid")
            .expect("pg");
        assert_eq!((t.lease.as_secs(), t.host_name.as_str()), (3, "web01"));
        let l = crate::settings::load_from_parts(
            Some("[journal]\nurl = \"postgres://u@h/d\"\n"),
            None,
            &[],
        )
        .expect("valid");
        let t = l
            .config
            .journal
            .target(&l.origin)
            .expect("valid")
            .expect("pg");
        assert_eq!(t.lease.as_secs(), DEFAULT_LEASE_SECS);
        assert!(!t.host_name.is_empty() && !t.host_name.contains(':'));
        // A literal password in journal.password is not a reference: refused, not echoed.
        let e = err("[journal]\nurl = \"postgres://u@h/d\"\npassword = \"hunter2\"\n");
        assert!(
            e.contains("journal.password") && !e.contains("hunter2"),
            "{e}"
        );
        for ok in [
            "[journal]\nurl = \"postgres://u@h/d\"\npassword = \"env:PGPW\"\n",
            "",
        ] {
            let l = crate::settings::load_from_parts(Some(ok), None, &[]).expect("valid");
            assert_eq!(
                l.config.journal.target(&l.origin).expect("valid").is_some(),
                !ok.is_empty()
            );
        }
    }
}

//! The two-host figures (issue 33): the watcher with its journal on PostgreSQL on loopback, an
//! active host and a standby on one mailbox — mail-to-confirm latency next to the SQLite run,
//! a burst, and failover time (SIGKILL of the active host until the next mail is confirmed by
//! the other).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::postgres::Postgres;
use crate::proc::Watcher;
use anyhow::{Result, bail};

/// A PostgreSQL journal for one run: its own schema, so runs do not share rows or sync state.
#[derive(Clone, Copy)]
pub struct PgJournal<'a> {
    pub pg: &'a Postgres,
    pub schema: &'a str,
}

impl PgJournal<'_> {
    /// The `[journal]` section for a host named `host` (the password file `pw`), with
    /// `lease_secs`, and a `[metrics]` listener on `port` (for `/readyz`).
    pub fn config(&self, pw: &str, host: &str, lease_secs: u64, port: u16) -> String {
        format!(
            "\n[journal]\nurl = \"{}\"\npassword = \"{pw}\"\nca_bundle = \"{}\"\nschema = \"{}\"\n\
             lease_secs = {lease_secs}\nhost_name = \"{host}\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
            self.pg.url(),
            self.pg.ca.display(),
            self.schema,
        )
    }

    /// Has a watcher stored the mailbox's sync position (its start-up catch-up is done)?
    pub fn caught_up(&self) -> bool {
        self.pg
            .try_psql(&format!(
                "SELECT count(*) FROM {}.kv WHERE name = '{}'",
                self.schema,
                approval_core::pipeline::watch_loop::SYNC_STATE_KV
            ))
            .is_ok_and(|s| s.trim() == "1")
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The first line of `/readyz` on `port` ("active", "standby (active: HOST)"; "" when nothing
/// answers).
pub fn readyz(port: u16) -> String {
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(300),
    ) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .and_then(|(_, b)| b.lines().next())
        .map(|l| l.trim().to_string())
        .unwrap_or_default()
}

/// One watcher host of the failover run.
pub struct Host {
    pub cfg: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
    pub port: u16,
    pub w: Option<Watcher>,
}

impl Host {
    pub fn start(&mut self, bin: &Path, verbose: bool) -> Result<()> {
        self.w = Some(Watcher::start(
            bin,
            &self.cfg,
            &self.state,
            &self.log,
            verbose,
        )?);
        Ok(())
    }
    pub fn is_active(&self) -> bool {
        self.w.is_some() && readyz(self.port) == "active"
    }
    pub fn is_standby(&self) -> bool {
        self.w.is_some() && readyz(self.port).starts_with("standby")
    }
}

/// Poll `cond` every 50 ms until it holds; fail after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let until = Instant::now() + limit;
    while !cond() {
        if Instant::now() > until {
            bail!("not within {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

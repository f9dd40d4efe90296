//! The long-running watch loop (see `docs/watcher.md`): catch up at start, then wait for new
//! mail (streaming notifications, or polling) and process it with bounded concurrency, until
//! the shutdown token is cancelled.
//!
//! Every source of mail ids is only a hint: `Pipeline::process` works from the journal, so a
//! mail seen twice (a notification and a resync) is harmless. The loop never dispatches the same
//! mailbox item twice at once, and the pipeline serialises calls per mail and per request id.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::watcher::{Pipeline, Processed};
use crate::config::ConfigError;
use crate::error::{Error, Result};
use crate::exit::{Classify, Exit};
use crate::http::Backoff;
use crate::journal::State;
use crate::mailbox::{FileSyncState, MailboxError, MessageRef, SyncStateStore, WaitOutcome};
use crate::runtime::systemd::{self, Heartbeat};
use crate::runtime::{InstanceLock, PidFile, RuntimeError};
use crate::settings::Loaded;

/// Name of the catch-up position file in the state directory.
pub const SYNC_STATE_FILE: &str = "mailbox.sync";
/// The `kv` name of the same position in a PostgreSQL journal.
pub const SYNC_STATE_KV: &str = "mailbox.sync";

/// The catch-up position in the journal's `kv` (PostgreSQL). A short statement, bounded by the
/// session's statement timeout; run in place like the file store's write.
struct JournalSyncState<'a>(&'a crate::journal::Journal);

impl SyncStateStore for JournalSyncState<'_> {
    fn load(&self) -> std::result::Result<Option<String>, MailboxError> {
        self.0
            .get_value(SYNC_STATE_KV)
            .map(|v| v.filter(|s| !s.trim().is_empty()))
            .map_err(|e| self.error(e))
    }
    fn save(&self, state: &str) -> std::result::Result<(), MailboxError> {
        self.0
            .set_value(SYNC_STATE_KV, state)
            .map_err(|e| self.error(e))
    }
}

impl JournalSyncState<'_> {
    fn error(&self, e: crate::journal::JournalError) -> MailboxError {
        MailboxError::State {
            path: std::path::PathBuf::from(format!("journal kv {SYNC_STATE_KV}")),
            detail: e.to_string(),
        }
    }
}

/// The journal value holding when the mailbox last answered (Unix ms), for `--status`.
pub const LAST_MAILBOX_OK: &str = "last_mailbox_ok_ms";
/// Journal key: the end of the mailbox app's certificate (Unix seconds), for `--status`.
pub const MAILBOX_CERTIFICATE_END: &str = "mailbox_certificate_end";

/// What a watch run did, for the final log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSummary {
    /// Mails answered or filed (approved, refused, already processed).
    pub processed: u64,
    /// Mails left pending by a fault and not answered since (retried later): a mail that was
    /// pending and then answered counts as processed only.
    pub pending: u64,
    /// Mails that could not even be read, or whose journal failed.
    pub failed: u64,
}

/// Refuse to start on what the watcher trusts when group or others can change it: the
/// configuration file, the reply templates (`notify.templates_dir` and every file in it), the
/// state directory and the journal's directory (when they exist; what the watcher creates is
/// 0700/0600); and root working in a state directory that belongs to another user (the
/// service's). The error (exit 78) names the path, its mode and the key; the files and
/// directories themselves are checked, not their parents.
pub fn check_trusted_paths(loaded: &Loaded) -> std::result::Result<(), ConfigError> {
    let check = |path: &Path| -> std::result::Result<Option<String>, String> {
        crate::perms::writable_by_others(path)
            .map_err(|e| format!("cannot check the mode of {}: {e}", path.display()))
    };
    if let Some(file) = &loaded.origin.file {
        let why = match check(file) {
            Ok(None) => None,
            Ok(Some(why)) => Some(why),
            Err(e) => Some(e),
        };
        if let Some(message) = why {
            return Err(ConfigError {
                file: Some(file.clone()),
                key: None,
                env_var: None,
                message,
            });
        }
    }
    let refuse = |key: &str, what: &str, path: &Path| -> std::result::Result<(), ConfigError> {
        match check(path) {
            Ok(None) => Ok(()),
            Ok(Some(why)) => Err(loaded.error(key, format!("{what} {why}"))),
            Err(e) => Err(loaded.error(key, e)),
        }
    };
    let w = &loaded.config.watcher;
    let state_dir = w.state_dir(loaded)?;
    refuse("watcher.state_dir", "the state directory", &state_dir)?;
    let foreign = crate::perms::foreign_for_root(&state_dir).map_err(|e| {
        loaded.error(
            "watcher.state_dir",
            format!("cannot read the owner of {}: {e}", state_dir.display()),
        )
    })?;
    if let Some(why) = foreign {
        return Err(loaded.error("watcher.state_dir", format!("the state directory {why}")));
    }
    let journal = w.journal_path(loaded)?;
    if let Some(dir) = journal.parent().filter(|d| !d.as_os_str().is_empty())
        && dir != state_dir
    {
        refuse("watcher.journal", "the journal's directory", dir)?;
    }
    if let Some(dir) = &loaded.config.notify.templates_dir {
        refuse("notify.templates_dir", "the reply template directory", dir)?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            files.sort();
            for f in files {
                refuse("notify.templates_dir", "the reply template", &f)?;
            }
        }
    }
    Ok(())
}

/// Take the instance lock, build the pipeline, run [`run`] until `shutdown`, close.
/// Errors: another watcher holds the state directory (75), the configuration (78), and faults of
/// the start-up that are not transient; a transient fault while running never ends the loop.
/// With `pid_file`, this process's id is written there once the lock is held (so a second
/// instance never overwrites the first one's) and removed on return.
pub async fn watch(
    loaded: &Loaded,
    pid_file: Option<&Path>,
    shutdown: CancellationToken,
) -> Result<WatchSummary> {
    check_trusted_paths(loaded)?;
    let _lock = InstanceLock::acquire(&loaded.config.watcher.state_dir(loaded)?)?;
    let _pid = match pid_file {
        Some(path) => Some(PidFile::write(path).map_err(|e| RuntimeError::StateDir {
            path: path.to_path_buf(),
            message: format!("cannot write the pid file: {e}"),
        })?),
        None => None,
    };
    let p = Arc::new(Pipeline::new(loaded, false).await?);
    let server = match &loaded.config.metrics {
        Some(m) => {
            let addr = m.address(loaded)?;
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                loaded.error("metrics.listen", format!("cannot listen on {addr}: {e}"))
            })?;
            if !addr.ip().is_loopback() {
                log::warn!(
                    "metrics and health are served on {addr}, beyond this host: they hold no secret, but tell when approvals happen"
                );
            }
            log::info!("metrics on http://{addr}/metrics, health on /healthz and /readyz");
            let within = Duration::from_secs(m.ready_within_secs);
            let metrics = p.metrics().clone();
            Some(tokio::spawn(async move {
                if let Err(e) = crate::metrics::serve(listener, metrics, within).await {
                    log::error!("the metrics listener stopped: {e}");
                }
            }))
        }
        None => None,
    };
    let r = if p.postgres().is_some() {
        // Two or more hosts may share the journal: act only while holding the lease.
        super::ha::supervise(p.clone(), shutdown).await
    } else {
        run(p.clone(), shutdown).await
    };
    if let Some(s) = server {
        s.abort();
    }
    p.close().await;
    r
}

/// The end of the certificate the mailbox signs in with (a renewed one included), for
/// `--status`.
pub(crate) async fn record_certificate_end(p: &Pipeline) {
    if let Some(end) = crate::mailbox::oauth::certificate_not_after()
        && let Err(e) = p
            .journal_async()
            .set_value(MAILBOX_CERTIFICATE_END, &end.to_string())
            .await
    {
        log::warn!("journal: cannot record the mailbox certificate's end: {e}");
    }
}

/// The mailbox answered: for `/readyz`, the metrics, and (at most every 30 s) `--status`.
async fn mailbox_answered(p: &Pipeline, persisted: &mut Option<tokio::time::Instant>) {
    p.metrics().mailbox_ok();
    let now = tokio::time::Instant::now();
    if persisted.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(30)) {
        *persisted = Some(now);
        let ms = chrono::Utc::now().timestamp_millis().to_string();
        if let Err(e) = p.journal_async().set_value(LAST_MAILBOX_OK, &ms).await {
            log::warn!("journal: cannot record the mailbox's last answer: {e}");
        }
        record_certificate_end(p).await;
    }
}

/// The pending-mail gauges, from the journal (at most every 5 s).
async fn refresh_pending(p: &Pipeline, refreshed: &mut Option<tokio::time::Instant>) {
    let now = tokio::time::Instant::now();
    if refreshed.is_some_and(|t| now.duration_since(t) < Duration::from_secs(5)) {
        return;
    }
    *refreshed = Some(now);
    if let Ok(s) = p.journal_async().stats().await {
        let age = s.oldest_unfinished_ms.map(|t| {
            Duration::from_millis((chrono::Utc::now().timestamp_millis() - t).max(0) as u64)
        });
        p.metrics().set_pending(s.unfinished, age);
    }
}

/// Whether a mailbox fault may go away by itself (server busy, network, timeouts).
fn transient(e: &MailboxError) -> bool {
    matches!(e.exit(), Exit::TempFail | Exit::Unavailable)
}

/// Mailbox items being handled, and items this run has finished (answered and filed): a late
/// or repeated announcement of a finished item is stale and is not handled again.
#[derive(Default)]
struct Items {
    in_flight: HashSet<String>,
    done: HashSet<String>,
    /// Items left pending by a fault, and when they may be tried again.
    retry_at: HashMap<String, tokio::time::Instant>,
}

impl Items {
    /// When the earliest retry of a mail not in flight is due. Mails left pending by a fault
    /// are tried again on `[watcher] retry_first_secs`..`retry_max_secs` (so that
    /// `max_attempts` spans an outage of several minutes, not a few polls), whatever else the
    /// mailbox reports meanwhile.
    fn next_retry(&self) -> Option<tokio::time::Instant> {
        self.retry_at
            .iter()
            .filter(|(id, _)| !self.in_flight.contains(*id))
            .map(|(_, t)| *t)
            .min()
    }

    /// After a listing: a due retry of a mail the listing no longer has (filed or moved by
    /// someone else, its journal row finished) is dropped, so it does not keep the loop listing.
    fn forget_vanished(&mut self, listed: &[MessageRef]) {
        let now = tokio::time::Instant::now();
        let listed: HashSet<&str> = listed.iter().map(|r| r.id.as_str()).collect();
        let in_flight = &self.in_flight;
        self.retry_at
            .retain(|id, t| *t > now || in_flight.contains(id) || listed.contains(id.as_str()));
    }
}

/// What ended a wait for new mail: a mail's task finished, or the mailbox answered.
enum Woke<T> {
    Finished(T),
    Mailbox(WaitOutcome),
}

/// The shortest wait for new mail: a retry falling due a moment ago does not make the loop spin.
const MIN_WAIT: Duration = Duration::from_millis(50);

/// Finished items remembered; beyond this the memory is cleared (the journal still knows).
const DONE_MAX: usize = 10_000;

struct Dispatcher {
    pipeline: Arc<Pipeline>,
    permits: Arc<Semaphore>,
    in_flight: Arc<Mutex<Items>>,
    tasks: JoinSet<Option<std::result::Result<Processed, Error>>>,
    summary: WatchSummary,
    /// Journal rows (else Message-IDs) of the mails left pending and not answered since.
    pending: std::collections::HashSet<String>,
    /// Signs of life for systemd's watchdog.
    heartbeat: Heartbeat,
}

impl Dispatcher {
    /// Start processing each mail not already in flight; waits for a free slot when all are busy.
    async fn dispatch(&mut self, refs: Vec<MessageRef>, shutdown: &CancellationToken) {
        for r in refs {
            self.heartbeat.beat();
            {
                let mut f = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if f.done.contains(&r.id)
                    || f.retry_at
                        .get(&r.id)
                        .is_some_and(|t| tokio::time::Instant::now() < *t)
                    || !f.in_flight.insert(r.id.clone())
                {
                    continue;
                }
            }
            let permit = tokio::select! {
                biased;
                _ = shutdown.cancelled() => None,
                p = self.permits.clone().acquire_owned() => p.ok(),
            };
            let Some(permit) = permit else {
                self.in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .in_flight
                    .remove(&r.id);
                return;
            };
            let p = self.pipeline.clone();
            let in_flight = self.in_flight.clone();
            self.tasks.spawn_local(async move {
                let out = p.process(&r).await;
                let cfg = p.config();
                {
                    let mut f = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                    f.in_flight.remove(&r.id);
                    f.retry_at.remove(&r.id);
                    match &out {
                        Ok(p) if p.pending.is_none() => {
                            if f.done.len() >= DONE_MAX {
                                f.done.clear();
                            }
                            f.done.insert(r.id.clone());
                        }
                        Ok(done) => {
                            // A reply owed to the sending pace comes back at its turn (no
                            // attempt was counted); other faults back off.
                            let owed =
                                matches!(done.state, Some(State::Confirmed | State::Refused));
                            let turn = if owed { p.mailbox().send_turn() } else { None };
                            let d = done
                                .retry_in
                                .or(turn)
                                .unwrap_or_else(|| cfg.retry_delay(done.attempts));
                            f.retry_at
                                .insert(r.id.clone(), tokio::time::Instant::now() + d);
                        }
                        // Gone from the folder (filed, or moved by someone): nothing to retry.
                        Err(Error::Mailbox(MailboxError::NotFound { .. })) => {
                            f.done.insert(r.id.clone());
                        }
                        // Not even read (mailbox busy, journal fault): no attempt was counted;
                        // tried again after the first retry interval, or at the next listing
                        // when that comes sooner.
                        Err(_) => {
                            let d = cfg.retry_delay(1).min(Duration::from_secs(cfg.poll_secs));
                            f.retry_at
                                .insert(r.id.clone(), tokio::time::Instant::now() + d);
                        }
                    }
                }
                drop(permit);
                match out {
                    Err(Error::Mailbox(MailboxError::NotFound { .. })) => {
                        log::info!("mailbox item gone since it was announced; skipped");
                        None
                    }
                    other => Some(other),
                }
            });
            self.reap();
        }
    }

    fn count(
        &mut self,
        r: std::result::Result<
            Option<std::result::Result<Processed, Error>>,
            tokio::task::JoinError,
        >,
    ) {
        self.heartbeat.beat();
        match r {
            Ok(Some(Ok(p))) if p.pending.is_some() => {
                if let Some(k) = pending_key(&p) {
                    self.pending.insert(k);
                }
                self.summary.pending = self.pending.len() as u64;
            }
            Ok(Some(Ok(p))) => {
                if let Some(k) = pending_key(&p) {
                    self.pending.remove(&k);
                }
                self.summary.pending = self.pending.len() as u64;
                log::info!(
                    "mail {} (request {}): {}",
                    p.message_id.as_deref().unwrap_or("-"),
                    p.request_id.as_deref().unwrap_or("-"),
                    p.outcome.as_deref().unwrap_or("-")
                );
                self.summary.processed += 1;
            }
            Ok(Some(Err(e))) => {
                log::warn!("mail could not be processed (left for a later pass): {e}");
                self.summary.failed += 1;
            }
            Ok(None) => {}
            // Abandoned on losing the lease.
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                log::error!("a mail task ended abnormally: {e}");
                self.summary.failed += 1;
            }
        }
    }

    /// How long to wait for new mail: until the next listing (`poll` after the last one) or the
    /// next retry falls due, whichever comes first.
    fn next_wait(&self, poll: Duration, last_list: tokio::time::Instant) -> Duration {
        let now = tokio::time::Instant::now();
        let mut w = (last_list + poll).saturating_duration_since(now);
        if let Some(t) = self.items().next_retry() {
            w = w.min(t.saturating_duration_since(now));
        }
        w.max(MIN_WAIT)
    }

    /// Whether the folder must be listed now although the mailbox reported only new mail: the
    /// listing interval has passed, or a retry is due. (Under steady new mail the stream never
    /// goes idle; without this, mails left pending would never be tried again.)
    fn listing_due(&self, poll: Duration, last_list: tokio::time::Instant) -> bool {
        let now = tokio::time::Instant::now();
        now >= last_list + poll || self.items().next_retry().is_some_and(|t| t <= now)
    }

    fn items(&self) -> std::sync::MutexGuard<'_, Items> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Collect the tasks that have finished, without waiting.
    fn reap(&mut self) {
        while let Some(r) = self.tasks.try_join_next() {
            self.count(r);
        }
    }

    /// Wait for every task still running.
    async fn drain(&mut self) {
        while let Some(r) = self.tasks.join_next().await {
            self.count(r);
        }
    }
}

/// Every unread mail plus every unfinished journal row whose mail is still in the mailbox
/// (with `catch_up`, also what was created since the stored sync position).
async fn pending_refs(p: &Pipeline, catch_up: bool) -> Result<Vec<MessageRef>> {
    let mut refs = p.mailbox().list_new().await?;
    // With the journal on PostgreSQL the position lives in its `kv` table, beside the rows it
    // belongs to; with SQLite, in a file of the state directory.
    let (file, kv);
    let store: Option<&dyn SyncStateStore> = if !catch_up {
        None
    } else if p.journal().engine() == "postgresql" {
        kv = JournalSyncState(p.journal());
        Some(&kv)
    } else if let Some(dir) = p.state_dir() {
        file = FileSyncState::new(dir.join(SYNC_STATE_FILE));
        Some(&file)
    } else {
        None
    };
    if let Some(store) = store {
        match p.mailbox().catch_up(store).await {
            Ok(more) => {
                for m in more {
                    if !refs.iter().any(|r| r.id == m.id) {
                        refs.push(m);
                    }
                }
            }
            // The unread list above already covers new mail; the position is only an aid.
            Err(e) => log::warn!("mailbox catch-up failed ({e}); continuing with unread mail"),
        }
    }
    p.with_unfinished(refs).await
}

/// What identifies a mail across its attempts: its journal row, else its Message-ID.
fn pending_key(p: &Processed) -> Option<String> {
    p.row
        .map(|r| format!("row:{r}"))
        .or_else(|| p.message_id.as_ref().map(|m| format!("mid:{m}")))
}

/// The `STATUS=` line of a running watcher.
fn status_line(s: &WatchSummary) -> String {
    format!(
        "watching the mailbox; since start: {} answered, {} left pending by a fault, {} unreadable",
        s.processed, s.pending, s.failed
    )
}

/// Sleep `d` unless shut down first; returns false on shutdown. A pause is a sign of life.
async fn pause(d: Duration, shutdown: &CancellationToken, heartbeat: &Heartbeat) -> bool {
    let end = tokio::time::Instant::now() + d;
    loop {
        heartbeat.beat();
        let now = tokio::time::Instant::now();
        if now >= end {
            return true;
        }
        let chunk = (end - now).min(Duration::from_secs(5));
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(chunk) => {}
        }
    }
}

/// The loop itself, on a built pipeline (the caller holds the instance lock). Returns when
/// `shutdown` is cancelled, after the mails in flight are done; or with an error when the
/// mailbox fails in a way that will not pass by itself (a refused logon, configuration).
///
/// The mails are handled concurrently on the caller's thread (a `LocalSet`): the work is
/// network-bound, and the pipeline's futures are not `Send`. So this future is not `Send` either:
/// await it (or `block_on` it), do not `tokio::spawn` it.
pub async fn run(pipeline: Arc<Pipeline>, shutdown: CancellationToken) -> Result<WatchSummary> {
    tokio::task::LocalSet::new()
        .run_until(run_local(pipeline, shutdown))
        .await
}

async fn run_local(pipeline: Arc<Pipeline>, shutdown: CancellationToken) -> Result<WatchSummary> {
    let cfg = pipeline.config().clone();
    let mut wait = Duration::from_secs(cfg.poll_secs);
    let heartbeat = Heartbeat::default();
    // systemd's watchdog (WatchdogSec=): fed while the loop shows signs of life; the loop wakes
    // at least twice per watchdog interval, whatever watcher.poll_secs says.
    let watchdog = systemd::watchdog_interval().map(|iv| {
        if wait > iv / 2 {
            log::info!(
                "systemd watchdog of {} s: listing the mailbox every {} s instead of watcher.poll_secs = {}",
                iv.as_secs(),
                (iv / 2).as_secs(),
                cfg.poll_secs
            );
            wait = iv / 2;
        }
        tokio::task::spawn_local(systemd::feed_watchdog(iv, heartbeat.clone()))
    });
    let mut d = Dispatcher {
        pipeline: pipeline.clone(),
        permits: Arc::new(Semaphore::new(cfg.concurrency)),
        in_flight: Arc::default(),
        tasks: JoinSet::new(),
        summary: WatchSummary::default(),
        pending: Default::default(),
        heartbeat: heartbeat.clone(),
    };
    let mut ready = false;
    let mut shown = WatchSummary::default();
    let mut persisted = None;
    let mut refreshed = None;
    let backoff = Backoff {
        retries: u32::MAX,
        first: Duration::from_secs(1),
        max: Duration::from_secs(300),
    };
    let mut failures: u32 = 0;
    let mut last_list = tokio::time::Instant::now();
    // Start (and after every mailbox fault): the full list, with the catch-up position.
    let mut resync = true;
    let mut catch_up = true;
    log::info!(
        "watch loop started (concurrency {}, listing interval {}s, pending mails retried after {}s doubling up to {}s)",
        cfg.concurrency,
        cfg.poll_secs,
        cfg.retry_first_secs,
        cfg.retry_max_secs
    );
    let result = loop {
        if shutdown.is_cancelled() {
            break Ok(());
        }
        heartbeat.beat();
        d.reap();
        refresh_pending(&pipeline, &mut refreshed).await;
        if ready && d.summary != shown {
            shown = d.summary.clone();
            systemd::status(&status_line(&shown));
        }
        let step: Result<()> = async {
            if resync {
                let refs = pending_refs(&pipeline, catch_up).await?;
                mailbox_answered(&pipeline, &mut persisted).await;
                last_list = tokio::time::Instant::now();
                if !refs.is_empty() {
                    log::debug!("{} mail(s) to look at", refs.len());
                }
                let found = refs.len();
                d.items().forget_vanished(&refs);
                d.dispatch(refs, &shutdown).await;
                resync = false;
                catch_up = false;
                if !ready {
                    // The start-up catch-up is listed and handed out: the service is up.
                    ready = true;
                    systemd::ready(&format!(
                        "watching the mailbox; {found} mail(s) to look at from before the start"
                    ));
                }
            }
            let timeout = d.next_wait(wait, last_list);
            // A mail finishing (perhaps left pending, with its retry time) ends the wait early,
            // so the next wait accounts for its retry. Waiting again is harmless: the stream's
            // events stay queued.
            let woke = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                Some(r) = d.tasks.join_next(), if !d.tasks.is_empty() => Woke::Finished(r),
                o = pipeline.mailbox().wait_for_new(timeout) => Woke::Mailbox(o?),
            };
            if let Woke::Mailbox(_) = &woke {
                mailbox_answered(&pipeline, &mut persisted).await;
            }
            match woke {
                Woke::Finished(task) => d.count(task),
                Woke::Mailbox(WaitOutcome::NewMail(refs)) => d.dispatch(refs, &shutdown).await,
                // Events may be lost, or polling: list the folder. Idle: the listing interval
                // passed or a retry fell due.
                Woke::Mailbox(WaitOutcome::Resync | WaitOutcome::Idle) => resync = true,
            }
            resync |= d.listing_due(wait, last_list);
            Ok(())
        }
        .await;
        match step {
            Ok(()) => failures = 0,
            Err(Error::Mailbox(e)) if transient(&e) => {
                failures = failures.saturating_add(1);
                let delay = backoff.delay(failures);
                log::warn!(
                    "mailbox fault ({e}); retrying in {}s (failure {failures})",
                    delay.as_secs()
                );
                resync = true;
                catch_up = true;
                systemd::status(&format!(
                    "mailbox fault, retrying in {} s: {e}",
                    delay.as_secs()
                ));
                if !pause(delay, &shutdown, &heartbeat).await {
                    break Ok(());
                }
            }
            Err(e) if matches!(e.exit(), Exit::TempFail | Exit::Unavailable) => {
                // The journal busy, a directory hiccup while listing: same treatment.
                failures = failures.saturating_add(1);
                let delay = backoff.delay(failures);
                log::warn!("fault ({e}); retrying in {}s", delay.as_secs());
                resync = true;
                systemd::status(&format!("fault, retrying in {} s: {e}", delay.as_secs()));
                if !pause(delay, &shutdown, &heartbeat).await {
                    break Ok(());
                }
            }
            Err(e) => {
                log::error!("watch loop stops: {e}");
                break Err(e);
            }
        }
    };
    let demoted = pipeline.lease().is_some_and(|l| l.view().epoch.is_none());
    if demoted {
        // No longer the active host: nothing more is done here, at once (what was under way
        // is the next active host's to read back).
        if !d.tasks.is_empty() {
            log::info!(
                "not the active host any more: {} mail(s) in flight abandoned to the active host",
                d.tasks.len()
            );
        }
        d.tasks.abort_all();
    } else if shutdown.is_cancelled() {
        log::info!(
            "shutdown requested: waiting for {} mail(s) in flight",
            d.tasks.len()
        );
    }
    d.drain().await;
    if let Some(w) = watchdog {
        w.abort();
    }
    log::info!(
        "watch loop ended: {} processed, {} pending, {} failed",
        d.summary.processed,
        d.summary.pending,
        d.summary.failed
    );
    result.map(|()| d.summary)
}

//! Two or more watcher hosts on one PostgreSQL journal (issue 33, docs/high-availability.md):
//! the process starts as a standby, asks for the lease every second, and only while it holds
//! the lease drives the mailbox (`watch_loop::run`). It renews the lease every fifth of its
//! length on a connection of its own; a renewal that fails is tried again on a new connection
//! until the local deadline. When a renewal finds the lease taken, or the local deadline
//! passes without one (a pause, a database gone), it stops acting at once — the watch loop is
//! cancelled and its mails in flight abandoned — logs `lost the lease (…): not acting; standing
//! by`, and stands by again. On a clean stop it releases the lease, so a standby takes over at
//! its next poll.
//!
//! What protects a mail while this happens is elsewhere: every journal write is fenced with the
//! epoch (`journal::lease`), every outside call is gated on the local deadline
//! (`Pipeline::gate`), and rows an older epoch left in flight wait for the lock-delay before
//! they are read back (`Pipeline::process`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::watch_loop::{WatchSummary, run};
use super::watcher::{Pipeline, Processed};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::journal::lease::{self, Lease, boot_clock};
use crate::journal::{JournalError, PgTarget};
use crate::metrics::Metrics;
use crate::runtime::systemd::{self, Heartbeat};
use crate::secret::SecretString;

/// Why this process stopped being the active host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Demotion {
    /// Another host holds the lease, or the local deadline passed without a renewal.
    LeaseLost(String),
    /// No renewal succeeded before the local deadline: the journal's database did not answer,
    /// or every attempt failed.
    DatabaseLost(String),
    /// A journal write was refused by the fence.
    Fenced,
}

impl Demotion {
    /// The metric's `reason` label.
    pub fn label(&self) -> &'static str {
        match self {
            Demotion::LeaseLost(_) => "lease_lost",
            Demotion::DatabaseLost(_) => "database_lost",
            Demotion::Fenced => "fenced",
        }
    }
}

impl std::fmt::Display for Demotion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Demotion::LeaseLost(why) => write!(f, "{why}"),
            Demotion::DatabaseLost(why) => write!(f, "the journal database did not answer: {why}"),
            Demotion::Fenced => f.write_str("a journal write was refused: another host took over"),
        }
    }
}

/// A lock wait or statement cancelled by its timeout (SQLSTATE 55P03, 57014).
fn busy(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code()
        .is_some_and(|c| *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::QUERY_CANCELED)
}

/// The standby's poll interval.
const POLL: Duration = Duration::from_secs(1);

/// The task side of the lease: its own connection, the statements, the metrics.
pub struct Holder {
    lease: Arc<Lease>,
    target: PgTarget,
    password: Option<SecretString>,
    metrics: Arc<Metrics>,
    client: Option<tokio_postgres::Client>,
    /// The active host last logged by this standby.
    shown_active: Option<String>,
    database_lost: bool,
    /// Signs of life for systemd's watchdog while standing by (the watch loop feeds it while
    /// active).
    heartbeat: Heartbeat,
}

impl Holder {
    /// A holder for `p`'s PostgreSQL journal, its lease attached to the pipeline.
    pub fn for_pipeline(p: &Pipeline) -> Option<Holder> {
        let (target, password) = p.postgres()?;
        let lease = Lease::new(&target.host_name, target.lease);
        p.attach_lease(lease.clone());
        Some(Holder::new(
            lease,
            target.clone(),
            password.as_ref().map(|s| {
                use secrecy::ExposeSecret;
                SecretString::from(s.expose_secret().to_owned())
            }),
            p.metrics().clone(),
        ))
    }

    /// A holder of `lease` on the database of `target`.
    pub fn new(
        lease: Arc<Lease>,
        target: PgTarget,
        password: Option<SecretString>,
        metrics: Arc<Metrics>,
    ) -> Holder {
        Holder {
            lease,
            target,
            password,
            metrics,
            client: None,
            shown_active: None,
            database_lost: false,
            heartbeat: Heartbeat::default(),
        }
    }

    pub fn lease(&self) -> &Arc<Lease> {
        &self.lease
    }

    /// The lease connection, opened when needed.
    async fn client(&mut self) -> std::result::Result<&tokio_postgres::Client, String> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            // Statements of the lease are short; each must end well within the lease.
            let statement = self.lease.ttl.mul_f64(0.4);
            let c = tokio::time::timeout(
                self.lease.ttl,
                crate::journal::pg::connect_lease(&self.target, self.password.as_ref(), statement),
            )
            .await
            .map_err(|_| "no connection within the lease's length".to_string())?
            .map_err(|e| e.to_string())?;
            self.client = Some(c);
        }
        Ok(self.client.as_ref().expect("just opened"))
    }

    /// One standby step: take the lease if it is free; `Some((epoch, how))` when taken.
    pub async fn try_take(&mut self) -> std::result::Result<Option<(i64, String)>, String> {
        let (name, holder) = (self.lease.name.clone(), self.lease.holder.clone());
        let ttl = self.lease.ttl;
        let bound = ttl;
        let step = async {
            let c = self.client().await.map_err(|e| (false, e))?;
            let sent = boot_clock();
            let taken = match lease::sql::acquire(c, &name, &holder, ttl.as_secs_f64()).await {
                Ok(t) => t,
                // The row is locked by the holder's fenced write in progress (or one its
                // paused process left open, until the server ends it): not a lost database.
                Err(e) if busy(&e) => return Err((true, crate::journal::pg::describe(&e))),
                Err(e) => return Err((false, crate::journal::pg::describe(&e))),
            };
            if let Some(t) = taken {
                return Ok((Some(t), sent, None));
            }
            let who = lease::sql::holder(c, &name)
                .await
                .map_err(|e| (false, crate::journal::pg::describe(&e)))?;
            Ok::<_, (bool, String)>((None, sent, who))
        };
        let r = tokio::time::timeout(bound, step).await.unwrap_or_else(|_| {
            Err((
                false,
                "the journal database did not answer in time".to_string(),
            ))
        });
        let (taken, sent, who) = match r {
            Ok(x) => x,
            Err((true, e)) => {
                log::debug!("the lease row is busy ({e}); standing by");
                return Ok(None);
            }
            Err((false, e)) => {
                self.client = None;
                return Err(e);
            }
        };
        if self.database_lost {
            self.database_lost = false;
            log::info!("journal database reachable again: standing by");
        }
        if let Some((epoch, how)) = taken {
            self.lease.took(epoch, sent);
            self.metrics.ha_took(epoch, &how);
            self.shown_active = None;
            return Ok(Some((epoch, how)));
        }
        let active = who
            .as_ref()
            .filter(|(_, _, live)| *live)
            .map(|(h, _, _)| lease::host_of(h).to_string());
        if let Some((_, age, _)) = &who {
            self.metrics.ha_lease_age(*age);
        }
        if active != self.shown_active {
            let line = match &active {
                Some(h) => format!("standing by: the active host is {h}"),
                None => "standing by: no active host at the moment".to_string(),
            };
            log::info!("{line}");
            systemd::status(&line);
            self.shown_active = active.clone();
        }
        self.metrics.ha_standby(active);
        Ok(None)
    }

    /// Stand by until the lease is taken (`Some`), or shutdown (`None`). While the database does
    /// not answer: not acting, said in the log and `/readyz`, connecting again with backoff.
    pub async fn stand_by(&mut self, shutdown: &CancellationToken) -> Option<(i64, String)> {
        let mut failures: u32 = 0;
        loop {
            if shutdown.is_cancelled() {
                return None;
            }
            self.heartbeat.beat();
            self.metrics.ha_fenced_writes(self.lease.fenced_writes());
            match self.try_take().await {
                Ok(Some(t)) => return Some(t),
                Ok(None) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if !self.database_lost {
                        log::warn!(
                            "journal database unreachable ({e}): not acting; connecting again"
                        );
                        self.database_lost = true;
                    }
                    self.metrics.ha_database_lost();
                }
            }
            let wait = if failures == 0 {
                POLL
            } else {
                Duration::from_secs(1u64 << failures.min(3).saturating_sub(1)).min(self.lease.ttl)
            };
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Keep the lease held at `epoch`: renew every fifth of its length; returns when it is
    /// lost, the lease already dropped (nothing acts under it any more).
    pub async fn keep(&mut self, epoch: i64) -> Demotion {
        let why = self.renewing(epoch).await;
        self.lease.drop_lease();
        self.metrics.ha_fenced_writes(self.lease.fenced_writes());
        self.metrics.ha_demoted(why.label());
        if matches!(why, Demotion::DatabaseLost(_)) {
            self.client = None;
            self.metrics.ha_database_lost();
            self.database_lost = true;
        } else {
            self.metrics.ha_standby(None);
        }
        why
    }

    async fn renewing(&mut self, epoch: i64) -> Demotion {
        let mut changes = self.lease.subscribe();
        let every = self.lease.ttl / 5;
        // After a failed renewal (a dropped connection, a server restarting, our own fenced
        // write holding the row past the statement timeout): again on a new connection this
        // often, until the local deadline. The gate stops outside calls well before that.
        let retry = (self.lease.ttl / 20).max(Duration::from_millis(100));
        let (name, holder) = (self.lease.name.clone(), self.lease.holder.clone());
        let ttl = self.lease.ttl.as_secs_f64();
        // The last failure since the last renewal that succeeded, and how many there were.
        let mut failed: Option<(String, u32)> = None;
        loop {
            if self.lease.view().epoch != Some(epoch) {
                return Demotion::Fenced;
            }
            let deadline = self.lease.view().deadline;
            let wait = if failed.is_some() { retry } else { every };
            let until = deadline.saturating_sub(boot_clock()).min(wait);
            tokio::select! {
                _ = tokio::time::sleep(until) => {}
                _ = changes.changed() => continue,
            }
            self.heartbeat.beat();
            self.metrics.ha_fenced_writes(self.lease.fenced_writes());
            // Taken before the renewal is sent: the server's expiry is computed later.
            let sent = boot_clock();
            let left = deadline.saturating_sub(sent);
            if left.is_zero() {
                return match failed {
                    Some((e, n)) => Demotion::DatabaseLost(format!(
                        "no renewal succeeded before the lease's local deadline ({n} failed, the last: {e})"
                    )),
                    None => Demotion::LeaseLost(
                        "its local deadline passed before a renewal succeeded".into(),
                    ),
                };
            }
            let renew = async {
                let c = self.client().await?;
                lease::sql::renew(c, &name, &holder, epoch, ttl)
                    .await
                    .map_err(|e| crate::journal::pg::describe(&e))
            };
            match tokio::time::timeout(left, renew).await {
                Err(_) => {
                    return Demotion::DatabaseLost(
                        "no answer to the renewal before the lease's local deadline".into(),
                    );
                }
                Ok(Err(e)) => {
                    // A connection that failed once is not used again.
                    self.client = None;
                    let n = failed.as_ref().map_or(1, |(_, n)| n + 1);
                    if n == 1 {
                        log::warn!(
                            "the lease could not be renewed ({e}); trying again until its local deadline in {:.1} s",
                            left.as_secs_f64()
                        );
                    }
                    failed = Some((e, n));
                }
                Ok(Ok(false)) => {
                    return Demotion::LeaseLost("another host holds the lease".into());
                }
                Ok(Ok(true)) => {
                    self.lease.renewed(epoch, sent);
                    self.metrics.ha_lease_age(0.0);
                    if let Some((_, n)) = failed.take() {
                        log::info!(
                            "lease renewed again (epoch {epoch}) after {n} failed attempt(s)"
                        );
                    }
                }
            }
        }
    }

    /// Hand the lease over on a clean stop (best effort, bounded).
    pub async fn release(&mut self, epoch: i64) {
        self.lease.drop_lease();
        let (name, holder) = (self.lease.name.clone(), self.lease.holder.clone());
        let done = tokio::time::timeout(Duration::from_secs(3), async {
            let c = self.client().await?;
            lease::sql::release(c, &name, &holder, epoch)
                .await
                .map_err(|e| crate::journal::pg::describe(&e))
        })
        .await;
        match done {
            Ok(Ok(true)) => log::info!("lease released (epoch {epoch}): a standby takes over"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => log::warn!("the lease could not be released ({e}); it expires by itself"),
            Err(_) => log::warn!("the lease could not be released in time; it expires by itself"),
        }
        self.metrics.ha_demoted("shutdown");
        self.metrics.ha_standby(None);
    }
}

/// The watcher on a PostgreSQL journal: stand by, act while holding the lease, stand by again
/// when it is lost; until `shutdown`, then release it.
pub async fn supervise(p: Arc<Pipeline>, shutdown: CancellationToken) -> Result<WatchSummary> {
    let Some(mut h) = Holder::for_pipeline(&p) else {
        return run(p, shutdown).await;
    };
    log::info!(
        "journal on PostgreSQL: this host ({}) acts on the mailbox only while it holds the lease ({} s); standing by",
        h.lease().host,
        h.lease().ttl.as_secs()
    );
    // Under systemd (Type=notify): a standby is up, and alive, too.
    systemd::ready("standing by for the lease of the active host");
    let watchdog = systemd::watchdog_interval()
        .map(|iv| tokio::spawn(systemd::feed_watchdog(iv, h.heartbeat.clone())));
    let r = alternate(&p, &mut h, &shutdown).await;
    if let Some(w) = watchdog {
        w.abort();
    }
    r
}

async fn alternate(
    p: &Arc<Pipeline>,
    h: &mut Holder,
    shutdown: &CancellationToken,
) -> Result<WatchSummary> {
    let mut total = WatchSummary::default();
    loop {
        let Some((epoch, how)) = h.stand_by(shutdown).await else {
            return Ok(total);
        };
        log::info!("took the lease (epoch {epoch}, {how}): acting on the mailbox");
        let child = shutdown.child_token();
        let acting = run(p.clone(), child.clone());
        tokio::pin!(acting);
        let (lost, ended) = tokio::select! {
            r = &mut acting => (None, Some(r)),
            why = h.keep(epoch) => (Some(why), None),
        };
        let r = match ended {
            Some(r) => r,
            None => {
                child.cancel();
                acting.await
            }
        };
        if let Ok(s) = &r {
            total.processed += s.processed;
            total.pending = s.pending;
            total.failed += s.failed;
        }
        match lost {
            Some(why) => {
                log::warn!("lost the lease ({why}): not acting; standing by");
                p.mailbox().stop_watching().await;
            }
            None => {
                // Shutdown, or the loop stopped on an error that does not pass by itself.
                h.release(epoch).await;
                return r.map(|_| total);
            }
        }
    }
}

/// `--once` on a PostgreSQL journal: take the lease (when another live host holds it, nothing is
/// done: `Ok(None)`), run one pass while renewing it, release it.
pub async fn once(p: &Pipeline) -> Result<Option<(Vec<Processed>, Exit)>> {
    let Some(mut h) = Holder::for_pipeline(p) else {
        return p.run_once().await.map(Some);
    };
    let (epoch, how) = match h.try_take().await {
        Ok(Some(t)) => t,
        Ok(None) => {
            let active = h.shown_active.clone().unwrap_or_else(|| "unknown".into());
            log::info!("another host ({active}) is active; nothing done");
            return Ok(None);
        }
        Err(e) => return Err(Error::Journal(JournalError::Postgres(e))),
    };
    log::info!("took the lease (epoch {epoch}, {how}): one pass over the mailbox");
    let r = tokio::select! {
        r = p.run_once() => Ok(r),
        why = h.keep(epoch) => Err(why),
    };
    match r {
        Ok(r) => {
            h.release(epoch).await;
            r.map(Some)
        }
        Err(why) => {
            log::warn!("lost the lease ({why}): not acting; the pass stopped");
            Err(Error::Journal(JournalError::Fenced(why.to_string())))
        }
    }
}

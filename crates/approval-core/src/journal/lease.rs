//! The lease of the active watcher host (issue 33): two or more watcher hosts share one
//! PostgreSQL journal and one mailbox; the one holding the lease acts, the others stand by.
//!
//! The lease is one row of the `lease` table, named [`LEASE_NAME`] (one journal schema serves one
//! mailbox: its rows, its sync state; a second mailbox uses a second schema). A standby takes it
//! over only when it has expired or was released, and every takeover increments its epoch and
//! records a `lease_history` row; the active host renews it with a statement conditional on its
//! holder id and epoch. The database clock (`now()`) alone decides expiry; each lease statement
//! is one statement (one transaction).
//!
//! This process's side is a [`Lease`]: the epoch it holds (if any) and its **local deadline**, a
//! time on `CLOCK_BOOTTIME` (which, unlike `CLOCK_MONOTONIC`, keeps counting while the machine
//! is suspended) taken *before* the renewal was sent, plus the lease's length. The server
//! computed `expires_at` from a later instant, so until the local deadline the lease is still
//! ours whatever the network did; past it, this process acts no more. Every journal write is
//! fenced with the epoch ([`super::Journal::attach_lease`]); every call to PVWA or the mailbox
//! starts only when enough of the lease is left ([`Lease::may_act`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Db, JournalError, Val};

/// The name of the lease row (one per journal schema).
pub const LEASE_NAME: &str = "watcher";

/// The service named by a fault that is not a fault: this process is not the active host (a
/// write refused by the fence, a call not started for lack of lease). Such a mail is left to the
/// active host, no attempt counted.
pub const NOT_ACTIVE: &str = "lease";

/// The first statement of every fenced journal transaction: the lease row, locked `FOR SHARE`
/// (which conflicts with the `UPDATE` of a takeover; `FOR KEY SHARE` would not), with this
/// process's holder id and epoch. No row: another host took over.
pub const FENCE_SQL: &str =
    "SELECT 1 FROM lease WHERE name = $1 AND holder = $2 AND epoch = $3 FOR SHARE";

/// Now on `CLOCK_BOOTTIME` (counts suspend; never steps).
pub fn boot_clock() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// What a fenced write proves it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
}

/// This process's view of the lease.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// The epoch this process holds; `None` while standing by.
    pub epoch: Option<i64>,
    /// While held: acting stops at this time of [`boot_clock`].
    pub deadline: Duration,
    /// While held: when this process took the lease ([`boot_clock`]).
    pub took_at: Duration,
}

/// This process's lease: shared by the journal (the fence), the pipeline (the gate) and the
/// task that takes and renews it.
#[derive(Debug)]
pub struct Lease {
    pub name: String,
    /// `journal.host_name`, shown as the holder.
    pub host: String,
    /// The holder id written in the row: the host name and a random id of this process start,
    /// so a restarted process never resumes an old epoch.
    pub holder: String,
    /// `journal.lease_secs`.
    pub ttl: Duration,
    view: tokio::sync::watch::Sender<View>,
    fenced: AtomicU64,
}

impl Lease {
    pub fn new(host: &str, ttl: Duration) -> Arc<Lease> {
        Arc::new(Lease {
            name: LEASE_NAME.into(),
            host: host.into(),
            holder: format!("{host}:{}", hex::encode(rand::random::<[u8; 6]>())),
            ttl,
            view: tokio::sync::watch::Sender::new(View::default()),
            fenced: AtomicU64::new(0),
        })
    }

    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// Told of every change (taken, renewed, lost).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<View> {
        self.view.subscribe()
    }

    /// Record a takeover (`epoch`), whose statement was sent at `sent` ([`boot_clock`]).
    pub fn took(&self, epoch: i64, sent: Duration) {
        self.view.send_replace(View {
            epoch: Some(epoch),
            deadline: sent + self.ttl,
            took_at: sent,
        });
    }

    /// A renewal sent at `sent` succeeded.
    pub fn renewed(&self, epoch: i64, sent: Duration) {
        self.view.send_if_modified(|v| {
            if v.epoch == Some(epoch) && sent + self.ttl > v.deadline {
                v.deadline = sent + self.ttl;
                true
            } else {
                false
            }
        });
    }

    /// Stop acting at once (lost, released, or the database gone).
    pub fn drop_lease(&self) {
        self.view.send_if_modified(|v| {
            let was = v.epoch.is_some();
            *v = View::default();
            was
        });
    }

    /// The fence for a journal write: the epoch while it is held and its deadline not passed.
    pub fn fence(&self) -> Option<Fence> {
        let v = self.view.borrow();
        let epoch = v.epoch?;
        (boot_clock() < v.deadline).then(|| Fence {
            name: self.name.clone(),
            holder: self.holder.clone(),
            epoch,
        })
    }

    /// Whether an outside call may start now: the lease is held and at least `margin` of it is
    /// left (a call that starts later could land after another host took over). The error says
    /// why not.
    pub fn may_act(&self, margin: Duration) -> Result<(), String> {
        let v = self.view.borrow();
        if v.epoch.is_none() {
            return Err("this host is not the active host (it does not hold the lease)".into());
        }
        let left = v.deadline.saturating_sub(boot_clock());
        if left.is_zero() || left < margin {
            return Err(format!(
                "only {:.1} s of the lease is left (a call starts with at least {:.1} s): left to the active host",
                left.as_secs_f64(),
                margin.as_secs_f64()
            ));
        }
        Ok(())
    }

    /// A journal write was refused: this process does not (or no longer) hold the lease.
    pub fn refused_write(&self) {
        self.fenced.fetch_add(1, Ordering::Relaxed);
        self.drop_lease();
    }

    /// Journal writes refused so far.
    pub fn fenced_writes(&self) -> u64 {
        self.fenced.load(Ordering::Relaxed)
    }
}

/// The host name part of a holder id (`HOST:RANDOM`).
pub fn host_of(holder: &str) -> &str {
    holder.rsplit_once(':').map_or(holder, |(h, _)| h)
}

/// The lease as the database holds it, and the takeovers counted.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeaseInfo {
    /// The holder id (`HOST:RANDOM`), empty when no host ever took it.
    pub holder: String,
    pub epoch: i64,
    /// Milliseconds since the holder last renewed it (`None`: never taken).
    pub renewed_ms_ago: Option<i64>,
    /// Milliseconds since it expired (negative: still valid for that long); `None`: never taken.
    pub expired_ms_ago: Option<i64>,
    /// Its holder released it on a clean stop.
    pub released: bool,
    /// Takeovers of an expired lease (the previous holder stopped renewing): failovers.
    pub failovers: u64,
    /// When the last failover happened (Unix ms).
    pub last_failover_ms: Option<i64>,
}

impl LeaseInfo {
    /// Whether a host holds it now (taken, not released, not expired).
    pub fn live(&self) -> bool {
        !self.holder.is_empty() && !self.released && self.expired_ms_ago.is_some_and(|e| e < 0)
    }
}

/// Read the lease row `name` and its failovers.
pub(crate) fn read_info(db: &mut dyn Db, name: &str) -> Result<Option<LeaseInfo>, JournalError> {
    let rows = db.rows(
        "SELECT holder, epoch, \
         CASE WHEN holder = '' THEN NULL ELSE CAST(EXTRACT(EPOCH FROM (now() - renewed_at)) * 1000 AS BIGINT) END, \
         CASE WHEN holder = '' THEN NULL ELSE CAST(EXTRACT(EPOCH FROM (now() - expires_at)) * 1000 AS BIGINT) END, \
         released FROM lease WHERE name = ?1",
        &[name.into()],
    )?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let hist = db.rows(
        "SELECT COUNT(*), CAST(EXTRACT(EPOCH FROM MAX(taken_at)) * 1000 AS BIGINT) \
         FROM lease_history WHERE name = ?1 AND how = 'expired'",
        &[name.into()],
    )?;
    let h = hist.first().cloned().unwrap_or_default();
    Ok(Some(LeaseInfo {
        holder: r.first().and_then(Val::text).unwrap_or_default(),
        epoch: r.get(1).and_then(Val::int).unwrap_or(0),
        renewed_ms_ago: r.get(2).and_then(Val::int),
        expired_ms_ago: r.get(3).and_then(Val::int),
        released: r.get(4).and_then(Val::int).unwrap_or(0) != 0,
        failovers: h.first().and_then(Val::int).unwrap_or(0).max(0) as u64,
        last_failover_ms: h.get(1).and_then(Val::int),
    }))
}

/// How a takeover found the lease: `vacant` (never taken), `released` (its holder stopped
/// cleanly), `expired` (its holder stopped renewing: a failover).
pub type TakenFrom = String;

/// The lease's statements, on the dedicated connection of the task that holds it (never the
/// journal's, never pooled). Each is a single statement.
pub mod sql {
    use tokio_postgres::Client;

    /// Take the lease if it is vacant, expired or released: the epoch grows, a history row
    /// records the takeover. `Some((epoch, how))` when taken.
    pub async fn acquire(
        c: &Client,
        name: &str,
        holder: &str,
        ttl_secs: f64,
    ) -> Result<Option<(i64, super::TakenFrom)>, tokio_postgres::Error> {
        let rows = c
            .query(
                "WITH old AS (SELECT holder, released FROM lease WHERE name = $1), \
                 up AS (UPDATE lease SET holder = $2, epoch = epoch + 1, \
                        expires_at = now() + make_interval(secs => $3), renewed_at = now(), released = false \
                        WHERE name = $1 AND expires_at < now() RETURNING epoch), \
                 hist AS (INSERT INTO lease_history (name, epoch, holder, taken_at, taken_from, how) \
                        SELECT $1, up.epoch, $2, now(), old.holder, \
                        CASE WHEN old.holder = '' THEN 'vacant' WHEN old.released THEN 'released' ELSE 'expired' END \
                        FROM up, old RETURNING how) \
                 SELECT up.epoch, hist.how FROM up, hist",
                &[&name, &holder, &ttl_secs],
            )
            .await?;
        Ok(rows.first().map(|r| (r.get(0), r.get(1))))
    }

    /// Renew the lease held at `epoch`; `false` when it is no longer this holder's.
    pub async fn renew(
        c: &Client,
        name: &str,
        holder: &str,
        epoch: i64,
        ttl_secs: f64,
    ) -> Result<bool, tokio_postgres::Error> {
        let n = c
            .execute(
                "UPDATE lease SET expires_at = now() + make_interval(secs => $4), renewed_at = now() \
                 WHERE name = $1 AND holder = $2 AND epoch = $3",
                &[&name, &holder, &epoch, &ttl_secs],
            )
            .await?;
        Ok(n == 1)
    }

    /// Hand the lease over without waiting for it to expire (a clean stop).
    pub async fn release(
        c: &Client,
        name: &str,
        holder: &str,
        epoch: i64,
    ) -> Result<bool, tokio_postgres::Error> {
        let n = c
            .execute(
                "UPDATE lease SET expires_at = now(), released = true \
                 WHERE name = $1 AND holder = $2 AND epoch = $3",
                &[&name, &holder, &epoch],
            )
            .await?;
        Ok(n == 1)
    }

    /// Who holds the lease and since when it was renewed: `(holder, seconds since the last
    /// renewal, live)`; `None` for a vacant lease.
    pub async fn holder(
        c: &Client,
        name: &str,
    ) -> Result<Option<(String, f64, bool)>, tokio_postgres::Error> {
        let rows = c
            .query(
                "SELECT holder, CAST(EXTRACT(EPOCH FROM (now() - renewed_at)) AS FLOAT8), \
                 (NOT released AND expires_at > now()) FROM lease WHERE name = $1 AND holder <> ''",
                &[&name],
            )
            .await?;
        Ok(rows.first().map(|r| (r.get(0), r.get(1), r.get(2))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_gates_on_its_local_deadline_and_fences_with_its_epoch() {
        let l = Lease::new("web01", Duration::from_secs(10));
        assert!(l.holder.starts_with("web01:") && l.holder.len() > 7);
        assert_eq!(host_of(&l.holder), "web01");
        assert!(l.fence().is_none());
        assert!(l.may_act(Duration::ZERO).is_err());
        let now = boot_clock();
        l.took(7, now);
        assert_eq!(l.fence().map(|f| f.epoch), Some(7));
        assert!(l.may_act(Duration::from_secs(4)).is_ok());
        // 10 s lease sent 8 s ago: 2 s left, less than the 4 s margin.
        l.took(8, now.saturating_sub(Duration::from_secs(8)));
        let e = l.may_act(Duration::from_secs(4)).unwrap_err();
        assert!(e.contains("of the lease is left"), "{e}");
        // Past its deadline: no fence, no call, without asking any database.
        l.took(9, now.saturating_sub(Duration::from_secs(11)));
        assert!(l.fence().is_none());
        assert!(l.may_act(Duration::ZERO).is_err());
        l.took(10, now);
        l.refused_write();
        assert_eq!(l.fenced_writes(), 1);
        assert_eq!(l.view().epoch, None);
    }
}

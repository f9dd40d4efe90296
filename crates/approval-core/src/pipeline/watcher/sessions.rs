//! PVWA sessions: the one session helper ([`crate::pvwa::sessions::Sessions`]: one per level
//! account, reused, opened again once when PVWA drops one), with the watcher's metrics; and the
//! lease's gate every step asks before an outside call that changes something.

use super::*;

impl Pipeline {
    /// Run `f` with the role's session ([`Sessions::run`]: on a 401, log on again once and
    /// repeat), counting PVWA's faults for the metrics.
    pub(super) async fn pvwa<T, F>(&self, role: AccountRole, f: F) -> Result<T, PvwaError>
    where
        F: AsyncFn(&Session) -> Result<T, PvwaError>,
    {
        let r = self.sessions.run(role, f).await;
        match &r {
            Err(e) if e.is_transient() => self.metrics.pvwa_fault(),
            _ => self.metrics.pvwa_ok(),
        }
        r
    }

    /// The gate of every outside call that changes something (a PVWA confirm or reject, a mail
    /// sent, marked read or moved): under a lease, it starts only while this process holds the
    /// lease with at least 40 % of its length left, so that it cannot still be on its way when
    /// another host takes over. Otherwise the mail is left for the active host.
    pub(super) fn gate(&self, what: &str) -> Result<(), Fault> {
        let Some(l) = self.journal.blocking().lease() else {
            return Ok(());
        };
        l.may_act(l.ttl.mul_f64(0.4)).map_err(|why| Fault {
            message: format!("{what} not started: {why}"),
            exit: Exit::TempFail,
            service: journal::lease::NOT_ACTIVE,
            deferred: None,
        })
    }

    pub(super) fn account(&self, level: u8) -> String {
        AccountRole::for_level(level)
            .and_then(|r| self.sessions.user(r))
            .map(str::to_string)
            .unwrap_or_default()
    }
}

//! PVWA sessions: the one session helper ([`crate::pvwa::sessions::Sessions`]: one per level
//! account, reused, opened again once when PVWA drops one), with the watcher's metrics.

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

    pub(super) fn account(&self, level: u8) -> String {
        AccountRole::for_level(level)
            .and_then(|r| self.sessions.user(r))
            .map(str::to_string)
            .unwrap_or_default()
    }
}

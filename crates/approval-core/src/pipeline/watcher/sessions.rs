//! PVWA sessions: one per level account, reused, renewed when PVWA drops one.

use super::*;

impl Pipeline {
    // ----- PVWA sessions: one per role, reused, renewed when PVWA drops it -----

    pub(super) async fn session(&self, role: AccountRole) -> Result<Arc<Session>, PvwaError> {
        let mut map = self.sessions.lock().await;
        if let Some(s) = map.get(&role) {
            return Ok(s.clone());
        }
        let (user, pw) = self
            .creds
            .get(&role)
            .ok_or_else(|| PvwaError::LogonRefused {
                user: role.key().into(),
                detail: "no account configured for this role".into(),
            })?;
        let s = Arc::new(self.pvwa.logon(user, pw).await?);
        map.insert(role, s.clone());
        Ok(s)
    }

    pub(super) async fn forget(&self, role: AccountRole, old: &Arc<Session>) {
        let mut map = self.sessions.lock().await;
        if map.get(&role).is_some_and(|s| Arc::ptr_eq(s, old)) {
            map.remove(&role);
        }
    }

    /// Run `f` with the role's session; on `SessionInvalid` (PVWA answered 401: nothing was
    /// done) log on again once and repeat. A Privilege Cloud session renews its Identity token
    /// itself, once, so its 401 is final here.
    pub(super) async fn pvwa<T, F>(&self, role: AccountRole, f: F) -> Result<T, PvwaError>
    where
        F: AsyncFn(&Session) -> Result<T, PvwaError>,
    {
        let r = async {
            let s = self.session(role).await?;
            match f(&s).await {
                Err(PvwaError::SessionInvalid { .. }) if !s.renews_itself() => {
                    self.forget(role, &s).await;
                    let s = self.session(role).await?;
                    f(&s).await
                }
                other => other,
            }
        }
        .await;
        match &r {
            Err(e) if e.is_transient() => self.metrics.pvwa_fault(),
            _ => self.metrics.pvwa_ok(),
        }
        r
    }

    pub(super) fn account(&self, level: u8) -> String {
        AccountRole::for_level(level)
            .and_then(|r| self.creds.get(&r))
            .map(|(u, _)| u.clone())
            .unwrap_or_default()
    }
}

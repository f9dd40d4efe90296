//! PVWA sessions for every caller (the watcher and the single-request tools): one per account
//! role, opened on first use and reused; when PVWA drops one (401: nothing was done) it is
//! opened again once and the call repeated; [`Sessions::close`] logs every one off.
//! [`Sessions::scoped`] closes them whatever the work returned, so no path leaves a session
//! open on the vault.

use std::collections::HashMap;
use std::sync::Arc;

use secrecy::SecretString;

use super::{AccountRole, Pvwa, PvwaError, Session};

/// The sessions of a set of accounts on one PVWA.
pub struct Sessions {
    pvwa: Pvwa,
    creds: HashMap<AccountRole, (String, SecretString)>,
    open: tokio::sync::Mutex<HashMap<AccountRole, Arc<Session>>>,
}

impl Sessions {
    /// Sessions of the accounts `creds` (user name and password per role); none is opened yet.
    pub fn new(pvwa: Pvwa, creds: HashMap<AccountRole, (String, SecretString)>) -> Sessions {
        Sessions {
            pvwa,
            creds,
            open: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The user name of `role`'s account, when one is configured.
    pub fn user(&self, role: AccountRole) -> Option<&str> {
        self.creds.get(&role).map(|(u, _)| u.as_str())
    }

    /// The user names of every account (this tool's own accounts).
    pub fn users(&self) -> Vec<String> {
        self.creds.values().map(|(u, _)| u.clone()).collect()
    }

    /// Log on with `role`'s account now (a refused logon is then the caller's error, before any
    /// work), unless its session is open already.
    pub async fn open(&self, role: AccountRole) -> Result<(), PvwaError> {
        self.session(role).await.map(|_| ())
    }

    async fn session(&self, role: AccountRole) -> Result<Arc<Session>, PvwaError> {
        let mut map = self.open.lock().await;
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

    /// Drop `old` (PVWA no longer knows it) unless it was replaced meanwhile.
    async fn forget(&self, role: AccountRole, old: &Arc<Session>) {
        let mut map = self.open.lock().await;
        if map.get(&role).is_some_and(|s| Arc::ptr_eq(s, old)) {
            map.remove(&role);
        }
    }

    /// Run `f` with the role's session; on `SessionInvalid` (PVWA answered 401: nothing was
    /// done) log on again once and repeat. A Privilege Cloud session renews its Identity token
    /// itself, once, so its 401 is final here.
    pub async fn run<T, F>(&self, role: AccountRole, f: F) -> Result<T, PvwaError>
    where
        F: AsyncFn(&Session) -> Result<T, PvwaError>,
    {
        let s = self.session(role).await?;
        match f(&s).await {
            Err(PvwaError::SessionInvalid { .. }) if !s.renews_itself() => {
                log::info!("PVWA dropped the session of {}; logging on again", s.user());
                self.forget(role, &s).await;
                let s = self.session(role).await?;
                f(&s).await
            }
            other => other,
        }
    }

    /// Log off every open session (errors are logged: the work is done).
    pub async fn close(&self) {
        let open: Vec<Arc<Session>> = self.open.lock().await.drain().map(|(_, s)| s).collect();
        for s in open {
            match Arc::try_unwrap(s) {
                Ok(s) => s.logoff().await,
                Err(s) => log::warn!(
                    "the PVWA session of {} is still in use and was not logged off",
                    s.user()
                ),
            }
        }
    }

    /// Run `f` with these sessions, then log every one off, whatever `f` returned.
    pub async fn scoped<T>(self, f: impl AsyncFnOnce(&Sessions) -> T) -> T {
        let r = f(&self).await;
        self.close().await;
        r
    }
}

//! One forwarded mail end to end, exactly once (see `docs/watcher.md`).
//!
//! `process` reads the mail, records it in the journal and moves its row forward, one state at
//! a time, from wherever it is: a new mail starts at `seen`; a row left in `decided` by a crash
//! or an unknown confirm outcome is resolved by reading the request's confirmers for our marker
//! (never by a blind second confirm); `confirmed`/`refused` rows get their reply; `notified`
//! rows are filed. A transient fault leaves the row where it is, counts an attempt, and the mail
//! stays in the inbox for the next pass; after `max_attempts` it is refused (`gave_up`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;

use super::WatcherConfig;
use crate::directory::approvers::Approvers;
use crate::directory::config::ApproverMode;
use crate::directory::{self, Directory, LdapDirectory};
use crate::error::{Error, Result};
use crate::exit::{Classify, Exit};
use crate::journal::{self, Begin, Entry, Journal, State};
use crate::mailbox::{FetchedMessage, Mailbox, MessageRef, OutgoingMail};
use crate::metrics::Metrics;
use crate::notice::{self, Examination, NoticeConfig};
use crate::notice_check;
use crate::notify::{self, Notifier, Outcome, Values};
use crate::policy::{
    self, Approver, Decision, Facts, MailClaims, PortalRight, PortalRights, TicketCheck, ToolActed,
};
use crate::pvwa::{AccountRole, Pvwa, PvwaError, Request, Session};
use crate::runtime::{Audit, RequestLocks};
use crate::secret::Resolver;
use crate::sender::{self, SenderPolicyConfig};
use crate::settings::Loaded;
use crate::ticketing::{self, Applies, TicketNeed, Validator};

/// Refusal codes of the pipeline itself (the policy's and the notice reader's come on top).
pub mod codes {
    /// PVWA does not know the request the mail names.
    pub const REQUEST_NOT_FOUND: &str = "request_not_found";
    /// The request id in the mail cannot be a PVWA id.
    pub const INVALID_REQUEST_ID: &str = "invalid_request_id";
    /// PVWA refused our confirm, or the request moved on before it could be confirmed.
    pub const CONFIRM_FAILED: &str = "confirm_failed";
    /// The mail kept failing on faults; nothing was approved by this mail.
    pub const GAVE_UP: &str = "gave_up";
    /// The same mail was already processed (a second copy).
    pub const ALREADY_PROCESSED: &str = "already_processed";
    /// The directory does not know the forwarder, or knows several.
    pub const UNKNOWN_SENDER: &str = "unknown_sender";
    /// The mail has no transport headers from Exchange (it was not delivered but put into the
    /// folder), so its sender cannot be verified.
    pub const NO_TRANSPORT_HEADERS: &str = "no_transport_headers";
    /// No member of the safe maps to a directory group (mode `safe-members`): a configuration
    /// fault, not the approver's; the reply copies the PAM team.
    pub const NO_APPROVER_GROUPS: &str = "no_approver_groups";
    /// The request's requester cannot be matched with the requester address the mail shows
    /// (site fact: the directory does not know the vault user); the reply copies the PAM team.
    pub const REQUESTER_UNRESOLVED: &str = "requester_unresolved";

    /// Refusals that are configuration facts of the site rather than the forwarder's doing:
    /// their replies go out as failures (the PAM team is copied).
    pub fn site_fault(code: &str) -> bool {
        matches!(code, NO_APPROVER_GROUPS | REQUESTER_UNRESOLVED)
    }

    /// Refusals because the request has moved on (confirmed, rejected, expired, invalid): their
    /// replies and `--json` name who acted on the request and when.
    pub fn no_longer_waiting(code: &str) -> bool {
        matches!(
            code,
            "not_waiting"
                | "expired"
                | "request_invalid"
                | "already_confirmed"
                | "already_confirmed_by_you"
                | CONFIRM_FAILED
        )
    }
}

/// The need-to-know answer: the refusal (code, sentence) or none, and the safe members read
/// for it (the claimed safe's members and records) for the decision to reuse.
type NeedToKnow = (
    Option<(&'static str, String)>,
    Option<directory::check::SafeApprovers>,
);

/// The reply when no group member of `safe` maps to a directory group: the site's
/// configuration, not the forwarder's doing. With `members` (the forwarder approves the safe at
/// another level, so may know them), names the members skipped and why; without, only the way
/// out (the need-to-know check: the forwarder may approve nothing there).
fn no_approver_groups_text(safe: &str, level: Option<u8>, members: Option<&Approvers>) -> String {
    let at = level.map(|l| format!(" at level {l}")).unwrap_or_default();
    let why = match members {
        Some(a) if !a.skipped.is_empty() => {
            let list: Vec<String> = a
                .skipped
                .iter()
                .take(8)
                .map(|s| format!("{} ({})", s.member, s.reason))
                .collect();
            format!(" Members not used: {}.", list.join("; "))
        }
        _ => String::new(),
    };
    format!(
        "No member of safe {safe} that may confirm requests{at} maps to a directory group, so nobody can approve its requests by mail; this is the site's configuration, not your doing, and the PAM team is copied.{why} The PAM team can check it with `check-approval-request --check-sender`; see docs/directory.md ([directory] approvers)."
    )
}

/// A fault: what failed, and its exit class (TempFail/Unavailable are transient).
#[derive(Debug, Clone)]
pub struct Fault {
    pub message: String,
    pub exit: Exit,
    /// The outside service at fault (`pvwa`, `mailbox`, …; empty for none), for metrics.
    pub service: &'static str,
}

impl Fault {
    pub fn of<E: Classify + std::fmt::Display>(e: E) -> Fault {
        Fault {
            message: e.to_string(),
            exit: e.exit(),
            service: e.service(),
        }
    }
}

/// What one `process` call did.
#[derive(Debug, Clone, Serialize)]
pub struct Processed {
    pub row: Option<i64>,
    pub message_id: Option<String>,
    /// The row's state after this call (`filed` when done).
    pub state: Option<State>,
    /// `confirmed`, `refused`, `already_processed`, `would_confirm`/`would_refuse` (dry run).
    pub outcome: Option<String>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    /// Set when the mail was left pending by a fault (the fault's text).
    pub pending: Option<String>,
    /// For a refusal because the request is no longer waiting: who acted on it and when, from
    /// PVWA (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub confirmers: Vec<crate::pvwa::view::ConfirmerView>,
    pub attempts: u32,
    pub dry_run: bool,
    /// Exit class: `ok` unless the mail was left pending by a fault.
    #[serde(skip)]
    pub exit: Exit,
}

/// What is learned about one mail during one call.
struct Work<'a> {
    fetched: &'a FetchedMessage,
    exam: Option<Examination>,
    request: Option<Request>,
    group: Option<String>,
    forwarder: Option<String>,
    /// The level the decision approved at (the request read after a confirm shows the next).
    level: Option<u8>,
    /// `request` is from before a confirm and could not be read again.
    stale: bool,
    /// The mail's journal row (none in a dry run): its own record does not count against it.
    row: Option<i64>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The pipeline's count of notice reads ([`Pipeline::notices_read`]).
    reads: &'a AtomicU64,
}

impl Work<'_> {
    fn exam(&mut self, cfg: &NoticeConfig) -> &Examination {
        let raw = &self.fetched.mime;
        let reads = self.reads;
        self.exam.get_or_insert_with(|| {
            reads.fetch_add(1, Ordering::Relaxed);
            notice::examine(raw, cfg)
        })
    }
}

/// The decision for a `seen` mail.
enum Verdict {
    Refuse {
        code: String,
        reason: String,
        request_id: Option<String>,
        forwarder: Option<String>,
    },
    Approve {
        request_id: String,
        level: u8,
        forwarder: String,
        /// Every identity of the forwarder (all their linked accounts, the person key): what
        /// the journal records as "confirmed for".
        identities: Vec<String>,
    },
}

struct Tickets {
    applies: Applies,
    validator: tokio::sync::Mutex<Validator>,
}

/// The watcher's pipeline, built once and used for every mail.
pub struct Pipeline {
    mailbox: Arc<dyn Mailbox>,
    journal: Journal,
    cfg: WatcherConfig,
    notice: NoticeConfig,
    sender: SenderPolicyConfig,
    directory: LdapDirectory,
    pvwa: Pvwa,
    creds: HashMap<AccountRole, (String, SecretString)>,
    sessions: tokio::sync::Mutex<HashMap<AccountRole, Arc<Session>>>,
    notifier: Notifier,
    locks: RequestLocks,
    /// One call per mail (by its journal key) at a time: two copies of a mail handled at once
    /// must not both decide from `seen`.
    mail_locks: RequestLocks,
    /// Where the watch loop keeps its catch-up position (`None` in a dry run).
    state_dir: Option<std::path::PathBuf>,
    tickets: Option<Tickets>,
    processed_folder: String,
    refused_folder: String,
    dry_run: bool,
    metrics: Arc<Metrics>,
    /// How many mails' bodies the notice reader has read (tests prove with it that the body of
    /// an unauthenticated mail is never read).
    notice_reads: AtomicU64,
    /// PVWA refused the lookup account the vault's user records (no "Audit users"): said once.
    vault_users_refused: AtomicBool,
}

impl Pipeline {
    /// Build from the configuration: validates every section the pipeline uses, resolves the
    /// secrets, opens the journal (an in-memory one with `dry_run`) and the mailbox.
    pub async fn new(loaded: &Loaded, dry_run: bool) -> Result<Pipeline> {
        let c = &loaded.config;
        c.watcher.validate(loaded)?;
        c.notice.validate(loaded)?;
        c.sender.validate(loaded)?;
        let mcfg = c.mailbox.as_ref().ok_or_else(|| {
            loaded.error(
                "mailbox.url",
                "the [mailbox] section is missing; the watcher reads the approval mailbox",
            )
        })?;
        let dir_settings = loaded.directory()?;
        let metrics = Arc::new(Metrics::new());
        let mut pvwa = Pvwa::new(loaded.pvwa()?)?;
        let counts = metrics.clone();
        pvwa.on_sign_in(Arc::new(move |kind| counts.sign_in("pvwa", kind)));
        let notifier = Notifier::new(&c.notify)?;
        let tickets = match &c.ticketing {
            Some(t) => {
                let compiled = t.compile(loaded)?;
                let applies = compiled.applies.clone();
                let resolver = Resolver::new(c.vault.as_ref())?;
                Some(Tickets {
                    applies,
                    validator: tokio::sync::Mutex::new(Validator::new(compiled, resolver)),
                })
            }
            None => None,
        };
        let resolver = Resolver::new(c.vault.as_ref())?;
        let built = async {
            let mut creds = HashMap::new();
            for role in [
                AccountRole::Level1,
                AccountRole::Level2,
                AccountRole::Lookup,
            ] {
                creds.insert(role, loaded.credentials(&resolver, role).await?);
            }
            let dir_pw = resolver.resolve(&dir_settings.bind_password).await?;
            let mailbox = crate::mailbox::open(mcfg, &resolver).await?;
            Ok::<_, Error>((creds, dir_pw, mailbox))
        }
        .await;
        resolver.close().await;
        let (creds, dir_pw, mailbox) = built?;
        let directory = LdapDirectory::new(dir_settings, dir_pw)?;
        let journal = if dry_run {
            Journal::in_memory()?
        } else {
            Journal::open(&c.watcher.journal_path(loaded)?)?
        };
        Ok(Pipeline {
            mailbox,
            journal,
            cfg: c.watcher.clone(),
            notice: c.notice.clone(),
            sender: c.sender.clone(),
            directory,
            pvwa,
            creds,
            sessions: tokio::sync::Mutex::new(HashMap::new()),
            notifier,
            locks: RequestLocks::default(),
            mail_locks: RequestLocks::default(),
            state_dir: if dry_run {
                None
            } else {
                c.watcher.state_dir(loaded).ok()
            },
            tickets,
            processed_folder: mcfg.processed_folder.clone(),
            refused_folder: mcfg.refused_folder.clone(),
            dry_run,
            metrics,
            notice_reads: AtomicU64::new(0),
            vault_users_refused: AtomicBool::new(false),
        })
    }

    /// How many mails' bodies the notice reader has read so far.
    pub fn notices_read(&self) -> u64 {
        self.notice_reads.load(Ordering::Relaxed)
    }

    /// The watcher's counters (served by [`crate::metrics::serve`] when `[metrics]` is set).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn mailbox(&self) -> &Arc<dyn Mailbox> {
        &self.mailbox
    }

    pub(crate) fn config(&self) -> &WatcherConfig {
        &self.cfg
    }

    pub(crate) fn state_dir(&self) -> Option<&std::path::Path> {
        self.state_dir.as_deref()
    }

    /// Log off every PVWA session and close the directory and ticketing connections.
    pub async fn close(&self) {
        let sessions: Vec<Arc<Session>> =
            self.sessions.lock().await.drain().map(|(_, s)| s).collect();
        for s in sessions {
            if let Ok(s) = Arc::try_unwrap(s) {
                s.logoff().await;
            }
        }
        self.directory.close().await;
        if let Some(t) = &self.tickets {
            t.validator.lock().await.close().await;
        }
    }

    /// `refs` and, after them, the mailbox item of every unfinished journal row not among them
    /// (a mail left pending, or interrupted mid-way, is resumed even when it is no longer unread).
    pub fn with_unfinished(&self, mut refs: Vec<MessageRef>) -> Result<Vec<MessageRef>> {
        for e in self.journal.unfinished()? {
            if let Some(item) = e.mailbox_item
                && !refs.iter().any(|r| r.id == item)
            {
                refs.push(MessageRef {
                    id: item,
                    change_key: None,
                });
            }
        }
        Ok(refs)
    }

    /// One pass: every unread mail of the watched folder plus every unfinished journal row
    /// whose mail is still there, each processed. Returns the results and the worst exit class
    /// (`ok` when every mail was answered or correctly left for later without a fault).
    pub async fn run_once(&self) -> Result<(Vec<Processed>, Exit)> {
        let refs = self.mailbox.list_new().await?;
        self.metrics.mailbox_ok();
        if !self.dry_run {
            let ms = chrono::Utc::now().timestamp_millis().to_string();
            self.journal
                .set_value(super::watch_loop::LAST_MAILBOX_OK, &ms)?;
        }
        let refs = self.with_unfinished(refs)?;
        let mut out = Vec::new();
        let mut worst = Exit::Ok;
        for r in &refs {
            match self.process(r).await {
                Ok(p) => {
                    worst = worst.worst(p.exit);
                    out.push(p);
                }
                Err(Error::Mailbox(crate::mailbox::MailboxError::NotFound { .. })) => {
                    log::info!("mailbox item gone since it was listed; skipped");
                }
                Err(e) => {
                    log::warn!("mail could not be processed: {e}");
                    worst = worst.worst(e.exit());
                }
            }
        }
        Ok((out, worst))
    }

    // ----- PVWA sessions: one per role, reused, renewed when PVWA drops it -----

    async fn session(&self, role: AccountRole) -> Result<Arc<Session>, PvwaError> {
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

    async fn forget(&self, role: AccountRole, old: &Arc<Session>) {
        let mut map = self.sessions.lock().await;
        if map.get(&role).is_some_and(|s| Arc::ptr_eq(s, old)) {
            map.remove(&role);
        }
    }

    /// Run `f` with the role's session; on `SessionInvalid` (PVWA answered 401: nothing was
    /// done) log on again once and repeat. A Privilege Cloud session renews its Identity token
    /// itself, once, so its 401 is final here.
    async fn pvwa<T, F>(&self, role: AccountRole, f: F) -> Result<T, PvwaError>
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

    fn account(&self, level: u8) -> String {
        AccountRole::for_level(level)
            .and_then(|r| self.creds.get(&r))
            .map(|(u, _)| u.clone())
            .unwrap_or_default()
    }

    // ----- one mail -----

    /// Process one mail of the watched folder, from wherever its journal row stands.
    /// `Err` only when the mail could not even be read or the journal failed.
    pub async fn process(&self, msg: &MessageRef) -> Result<Processed> {
        let fetched = match self.mailbox.fetch(msg).await {
            Ok(f) => f,
            Err(err @ crate::mailbox::MailboxError::NotFound { .. }) => {
                if !self.dry_run {
                    self.moved_before_interruption(&msg.id)?;
                }
                return Err(err.into());
            }
            Err(err) => return Err(err.into()),
        };
        let mid = fetched.internet_message_id.clone();
        let key = journal::mail_key(mid.as_deref(), &fetched.mime);
        let _mail_guard = self.mail_locks.lock(&key).await;
        let mut w = Work {
            fetched: &fetched,
            exam: None,
            request: None,
            group: None,
            forwarder: None,
            stale: false,
            level: None,
            row: None,
            _guard: None,
            reads: &self.notice_reads,
        };
        if self.dry_run {
            return self.dry(&mut w).await;
        }
        let begin = self
            .journal
            .begin(&key, mid.as_deref(), Some(&fetched.reference.id))?;
        let mut e = match begin {
            Begin::Known(e) if e.state == State::Filed => return self.duplicate(e, &mut w).await,
            Begin::Known(e) | Begin::New(e) => e,
        };
        w.row = Some(e.row);
        loop {
            let step = match e.state {
                State::Seen => self.seen(&mut w, &e).await,
                State::Decided => self.resolve(&mut w, &e).await,
                State::Confirmed | State::Refused => self.reply(&mut w, &e).await,
                State::Notified => self.file(&w, &e).await,
                State::Filed => break,
            };
            match step {
                Ok(next) => e = next,
                Err(f) => {
                    let n = self.journal.attempt_failed(e.row, &f.message)?;
                    log::warn!(
                        "mail {} (journal row {}) left pending in state {} after attempt {n}: {}",
                        mid.as_deref().unwrap_or("?"),
                        e.row,
                        e.state.as_str(),
                        f.message
                    );
                    if n >= self.cfg.max_attempts && matches!(e.state, State::Seen | State::Decided)
                    {
                        let reason = if e.state == State::Decided {
                            format!(
                                "The approval could not be completed after {n} attempts ({}); whether PVWA recorded it must be checked by hand.",
                                f.message
                            )
                        } else {
                            format!(
                                "The mail could not be processed after {n} attempts ({}); nothing was approved.",
                                f.message
                            )
                        };
                        e = self.journal.refused(
                            e.row,
                            codes::GAVE_UP,
                            &reason,
                            e.request_id.clone().as_deref(),
                            e.forwarder.clone().as_deref(),
                        )?;
                        continue;
                    }
                    let e = self.journal.get(e.row)?.unwrap_or(e);
                    let p = self.result(&e, &w, Some(f.message.clone()), f.exit);
                    self.audit(&p, &w);
                    self.metrics.fault(f.service);
                    return Ok(p);
                }
            }
        }
        let p = self.result(&e, &w, None, Exit::Ok);
        self.audit(&p, &w);
        self.metrics.mail(
            p.outcome.as_deref().unwrap_or("unknown"),
            p.reason_code.as_deref(),
        );
        Ok(p)
    }

    fn result(&self, e: &Entry, w: &Work<'_>, pending: Option<String>, exit: Exit) -> Processed {
        let confirmers = match (&w.request, e.reason_code.as_deref()) {
            (Some(r), Some(code)) if codes::no_longer_waiting(code) => {
                crate::pvwa::view::RequestView::new(r, chrono::Utc::now().timestamp()).confirmed_by
            }
            _ => Vec::new(),
        };
        Processed {
            confirmers,
            row: Some(e.row),
            message_id: e.message_id.clone(),
            state: Some(e.state),
            outcome: e.outcome.clone(),
            reason_code: e.reason_code.clone(),
            reason: e.reason.clone(),
            request_id: e
                .request_id
                .clone()
                .or_else(|| w.request.as_ref().map(|r| r.request_id.clone())),
            pending,
            attempts: e.attempts,
            dry_run: self.dry_run,
            exit,
        }
    }

    fn audit(&self, p: &Processed, w: &Work<'_>) {
        let n = w.exam.as_ref().and_then(|x| x.outcome.as_ref().ok());
        Audit {
            event: if p.pending.is_some() {
                "mail_pending"
            } else {
                "mail_processed"
            },
            journal_row: p.row.unwrap_or(0),
            message_id: p.message_id.clone(),
            forwarder: w.forwarder.clone(),
            request_id: p.request_id.clone(),
            safe: w
                .request
                .as_ref()
                .map(|r| r.safe_name.clone())
                .or_else(|| n.map(|n| n.safe.clone())),
            requester: w.request.as_ref().map(|r| r.requestor_user_name.clone()),
            level: w.level.or_else(|| {
                w.request
                    .as_ref()
                    .and_then(|r| u8::try_from(r.current_confirmation_level).ok())
            }),
            account: w.request.as_ref().map(|r| {
                crate::pvwa::view::RequestView::new(r, chrono::Utc::now().timestamp()).account
            }),
            group: w.group.clone(),
            outcome: p.outcome.clone().unwrap_or_else(|| "pending".into()),
            reason_code: p.reason_code.clone(),
            reason: p.reason.clone().or_else(|| p.pending.clone()),
            dry_run: self.dry_run,
        }
        .emit();
    }

    /// Gather the facts and decide (no journal, no confirm).
    async fn decide(&self, w: &mut Work<'_>) -> Result<Verdict, Fault> {
        let refuse = |code: &str, reason: String, rid: Option<String>, fw: Option<String>| {
            Ok(Verdict::Refuse {
                code: code.into(),
                reason,
                request_id: rid,
                forwarder: fw,
            })
        };
        // Who sent it comes first: an unauthenticated mail is refused before a byte of its
        // body is read (the notice reader is the larger attack surface).
        let forwarder = match self.authenticate(w.fetched) {
            Ok(v) => v,
            Err((code, reason)) => return refuse(&code, reason, None, None),
        };
        w.forwarder = Some(forwarder.clone());
        let exam = w.exam(&self.notice).clone();
        let n = match exam.outcome {
            Ok(n) => n,
            Err(r) => return refuse(r.reason.code(), r.message, None, Some(forwarder)),
        };
        // Need to know: whoever does not approve the safe the mail names, at any level, gets
        // the refusal alone; nothing of the request is read from PVWA or quoted to them.
        let (refusal, mut read_members) = self.need_to_know(&forwarder, &n.safe).await?;
        if let Some((code, reason)) = refusal {
            return refuse(code, reason, None, Some(forwarder));
        }
        let rid = n.request_id.clone();
        w._guard = Some(self.locks.lock(&rid).await);
        let request = match self
            .pvwa(AccountRole::Lookup, async |s: &Session| {
                s.get_request(&rid).await
            })
            .await
        {
            Ok(r) => r,
            Err(PvwaError::NotFound { .. }) => {
                // An edited Safe line changes the id the mail leads to: when the number exists
                // under another safe, say so rather than blame a missing request, without
                // naming that safe (its approvers are not necessarily the forwarder).
                if self.same_number_elsewhere(&n.request_number, &n.safe).await {
                    return refuse(
                        "safe_mismatch",
                        format!(
                            "The mail names safe {}, which has no request number {}; that number belongs to a request of another safe, so the forward looks edited and nothing was approved. Forward the original notification unedited, or use the PVWA portal.",
                            n.safe, n.request_number
                        ),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                return refuse(
                    codes::REQUEST_NOT_FOUND,
                    format!(
                        "PVWA has no request {rid}; it may have been deleted or the mail names another vault."
                    ),
                    Some(rid),
                    Some(forwarder),
                );
            }
            Err(e @ PvwaError::BadId { .. }) => {
                return refuse(
                    codes::INVALID_REQUEST_ID,
                    e.to_string(),
                    Some(rid),
                    Some(forwarder),
                );
            }
            Err(e) => return Err(Fault::of(e)),
        };
        w.request = Some(request.clone());
        let level = u8::try_from(request.current_confirmation_level)
            .ok()
            .filter(|l| matches!(l, 1 | 2));
        let (approver, identities, safe_members) = match level {
            None => (
                Approver::Denied {
                    reason: "the request is at no level this tool handles".into(),
                },
                Vec::new(),
                None,
            ),
            Some(level) => {
                let s = self.directory.settings();
                let safe_members = match s.approvers {
                    ApproverMode::Static => None,
                    // Read once per mail: the need-to-know check read the safe the mail
                    // names, which is the request's safe unless the mail lies.
                    ApproverMode::SafeMembers => Some(
                        match read_members.take().filter(|m| m.safe == request.safe_name) {
                            Some(m) => m,
                            None => self
                                .safe_approvers(&request.safe_name)
                                .await
                                .map_err(Fault::of)?,
                        },
                    ),
                };
                let groups: Approvers = directory::check::approvers_at(
                    s,
                    &request.safe_name,
                    safe_members.as_ref(),
                    level,
                    chrono::Utc::now().timestamp(),
                );
                if groups.groups.is_empty() && matches!(s.approvers, ApproverMode::SafeMembers) {
                    return refuse(
                        codes::NO_APPROVER_GROUPS,
                        no_approver_groups_text(&request.safe_name, Some(level), Some(&groups)),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                let v = directory::authorize(
                    &self.directory,
                    &forwarder,
                    &request.safe_name,
                    level,
                    groups,
                )
                .await
                .map_err(Fault::of)?;
                let mut ids = v
                    .user
                    .as_ref()
                    .map(|u| {
                        let mut ids = vec![u.dn.clone()];
                        ids.extend(u.sam_account_name.clone());
                        ids.extend(u.user_principal_name.clone());
                        ids.extend(u.mail.clone());
                        ids.extend(u.aliases.iter().cloned());
                        ids
                    })
                    .unwrap_or_default();
                let mut linked_is_requester = false;
                if let Some(u) = &v.user {
                    match self.person_identities(u).await? {
                        Ok((more, requester)) => {
                            ids.extend(more);
                            linked_is_requester = requester
                                .iter()
                                .any(|a| a.is_same_person(&request.requestor_user_name));
                        }
                        Err(reason) => {
                            return refuse("person_unknown", reason, Some(rid), Some(forwarder));
                        }
                    }
                }
                if linked_is_requester
                    || v.user
                        .as_ref()
                        .is_some_and(|u| u.is_same_person(&request.requestor_user_name))
                {
                    return refuse(
                        "self_approval",
                        format!(
                            "You ({forwarder}) made request {rid} yourself; a request needs someone else's approval."
                        ),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                if v.user.is_none() {
                    return refuse(
                        codes::UNKNOWN_SENDER,
                        format!(
                            "The directory does not know you as one person: {}.",
                            v.reason
                        ),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                let a = match (&v.granted_by, v.may_approve) {
                    (Some(g), true) => Approver::Granted {
                        level,
                        group: g.group.clone(),
                        path: g.path_names.clone(),
                    },
                    _ => Approver::Denied {
                        reason: v.reason.clone(),
                    },
                };
                (a, ids, safe_members)
            }
        };
        if let Approver::Granted { group, .. } = &approver {
            w.group = Some(group.clone());
        }
        let ticket = self.ticket(&request).await?;
        let account = self.account(level.unwrap_or(0));
        let service_accounts: Vec<String> = self.creds.values().map(|(u, _)| u.clone()).collect();
        let tool_acted: Vec<ToolActed> = self
            .journal
            .acted_for(&rid, w.row)
            .map_err(Fault::of)?
            .into_iter()
            .map(|a| ToolActed {
                level: a.level,
                forwarder: a.forwarder,
                identities: a.identities,
            })
            .collect();
        let portal = match (&approver, level) {
            (Approver::Granted { .. }, Some(l)) => {
                self.portal_rights(&request, l, &forwarder, &identities, safe_members)
                    .await?
            }
            _ => PortalRights::NotChecked,
        };
        let requester = match n.requester.as_deref().filter(|r| !r.trim().is_empty()) {
            Some(_) => {
                self.requester_identity(&request.requestor_user_name)
                    .await?
            }
            None => policy::RequesterIdentity::NotLookedUp,
        };
        // The vault's e-mail addresses of the requester, read only when the directory does not
        // already vouch for the mail's requester address.
        let vault_emails = match n.requester.as_deref().filter(|r| !r.trim().is_empty()) {
            Some(claimed)
                if !policy::requester_matches(
                    claimed,
                    &request.requestor_user_name,
                    &requester,
                    &[],
                ) =>
            {
                self.requester_vault_emails(&request.requestor_user_name)
                    .await?
            }
            _ => Vec::new(),
        };
        let d = policy::decide(&Facts {
            mail: MailClaims {
                request_id: &rid,
                safe: &n.safe,
                requester: n.requester.as_deref(),
                forwarder: &forwarder,
            },
            forwarder_identities: &identities,
            request: &request,
            approver: &approver,
            level_account: &account,
            reason_template: &self.cfg.reason_template,
            ticket: &ticket,
            now: chrono::Utc::now().timestamp(),
            service_accounts: &service_accounts,
            tool_acted: &tool_acted,
            portal: &portal,
            requester: &requester,
            requester_vault_emails: &vault_emails,
        });
        match d {
            Decision::Refuse(r) => refuse(r.code, r.message, Some(rid), Some(forwarder)),
            Decision::Approve { level, .. } => {
                // Defence in depth: everything else the notification shows must be this
                // request (checked last, so only an approver of the request learns of it).
                if let Err(m) = notice_check::check(&n, &request, &self.notice.date_formats) {
                    return refuse(
                        notice_check::NOTICE_MISMATCH,
                        m.message(&rid),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                w.level = Some(level);
                Ok(Verdict::Approve {
                    request_id: rid,
                    level,
                    forwarder,
                    identities,
                })
            }
        }
    }

    /// The identities of the forwarder's other accounts and their person key (`[directory]
    /// person_attribute`), and those accounts; nothing when no attribute is configured. `Ok(Err)`
    /// is a refusal: the attribute is configured but the forwarder's account has no value, so
    /// their other accounts cannot be known.
    async fn person_identities(
        &self,
        u: &directory::UserView,
    ) -> Result<Result<(Vec<String>, Vec<directory::DirUser>), String>, Fault> {
        let Some(attr) = self.directory.settings().person_attribute.clone() else {
            return Ok(Ok((Vec::new(), Vec::new())));
        };
        let Some(value) = u.person.clone().filter(|v| !v.trim().is_empty()) else {
            return Ok(Err(format!(
                "Your directory account ({}) has no {attr}, so the tool cannot tell which other accounts are yours; nothing was approved. Ask the directory team to set it, or use the PVWA portal.",
                u.sam_account_name.as_deref().unwrap_or(&u.dn)
            )));
        };
        let accounts = self
            .directory
            .accounts_of_person(&value)
            .await
            .map_err(Fault::of)?;
        let mut ids: Vec<String> = accounts.iter().flat_map(|a| a.identities()).collect();
        ids.extend(directory::person_key(Some(&attr), Some(&value)));
        Ok(Ok((ids, accounts)))
    }

    /// The forwarder's own PVWA rights on the request's safe for the confirmations the request
    /// still needs after the one at `level` (`policy::levels_still_needed`): a user member that
    /// is one of their accounts, or a directory group member they belong to, with the level's
    /// authorisation permission. This tool's own accounts are not the forwarder's rights, and
    /// Vault-internal groups cannot be read here (docs/watcher.md). The members are those read
    /// for the decision (`safe-members` mode) or read now with the lookup account; when PVWA
    /// refuses them, the rights are unknown (the mail is refused), unless `[watcher]
    /// portal_rights = "none-held"`.
    async fn portal_rights(
        &self,
        request: &Request,
        level: u8,
        forwarder: &str,
        identities: &[String],
        members: Option<directory::check::SafeApprovers>,
    ) -> Result<PortalRights, Fault> {
        let needed = policy::levels_still_needed(request, level);
        if needed.is_empty() || self.cfg.portal_rights == super::config::PortalRightsCheck::NoneHeld
        {
            return Ok(PortalRights::NotChecked);
        }
        let read = match members {
            Some(m) => m,
            None => match self.safe_approvers(&request.safe_name).await {
                Ok(m) => m,
                Err(e) if e.is_transient() => return Err(Fault::of(e)),
                Err(e) => {
                    return Ok(PortalRights::Unknown(format!(
                        "the safe's members could not be read: {e}"
                    )));
                }
            },
        };
        let members = &read.members;
        let ours: Vec<String> = self.creds.values().map(|(u, _)| u.clone()).collect();
        let mut me: Vec<String> = identities.to_vec();
        me.push(forwarder.to_string());
        let now = chrono::Utc::now().timestamp();
        let s = self.directory.settings();
        let mut rights = Vec::new();
        for n in needed {
            for m in members
                .iter()
                .filter(|m| !m.is_group() && m.approves_at(n, now))
            {
                if policy::is_same_person(&m.member_name, &me)
                    && !policy::is_same_person(&m.member_name, &ours)
                {
                    rights.push(PortalRight {
                        level: n,
                        member: crate::text::printable(&m.member_name),
                    });
                }
            }
            let groups = read.at(s, n, now);
            if groups.groups.is_empty() {
                continue;
            }
            let v = directory::authorize(&self.directory, forwarder, &request.safe_name, n, groups)
                .await
                .map_err(Fault::of)?;
            if let (Some(g), true) = (&v.granted_by, v.may_approve) {
                rights.push(PortalRight {
                    level: n,
                    member: crate::text::printable(&g.group),
                });
            }
        }
        Ok(PortalRights::Known(rights))
    }

    /// Need to know: `None` when the verified `forwarder` approves the `claimed` safe at some
    /// level (static table, or the safe's members read with the lookup account, and the
    /// directory); otherwise the refusal (code, sentence), which names nothing but the claimed
    /// safe. Decided before the request is read, so that nobody who approves nothing there
    /// learns its requester, confirmers, status or real safe from a reply to a look-alike mail.
    async fn need_to_know(&self, forwarder: &str, claimed: &str) -> Result<NeedToKnow, Fault> {
        let s = self.directory.settings();
        let members = match s.approvers {
            ApproverMode::Static => None,
            ApproverMode::SafeMembers => match self.safe_approvers(claimed).await {
                Ok(m) => Some(m),
                Err(e) if e.is_transient() => return Err(Fault::of(e)),
                // The lookup account may not read group records: a configuration fault.
                Err(e @ PvwaError::NoPermission { .. }) => return Err(Fault::of(e)),
                // No such safe (or one the lookup account may not read): nobody approves
                // it through this tool.
                Err(e) => {
                    log::info!("members of the safe a mail names: {e}");
                    Some(directory::check::SafeApprovers {
                        safe: claimed.to_string(),
                        ..Default::default()
                    })
                }
            },
        };
        let keep = |m: Option<directory::check::SafeApprovers>| m.filter(|m| !m.members.is_empty());
        let now = chrono::Utc::now().timestamp();
        let mut any_groups = false;
        let mut skipped = Approvers::default();
        for level in [1u8, 2] {
            let groups = directory::check::approvers_at(s, claimed, members.as_ref(), level, now);
            if groups.groups.is_empty() {
                skipped.skipped.extend(groups.skipped.iter().cloned());
            } else {
                any_groups = true;
            }
            if groups.groups.is_empty() {
                continue;
            }
            let v = directory::authorize(&self.directory, forwarder, claimed, level, groups)
                .await
                .map_err(Fault::of)?;
            if v.user.is_none() {
                return Ok((
                    Some((
                        codes::UNKNOWN_SENDER,
                        format!(
                            "The directory does not know you as one person: {}. Nothing about the request was read.",
                            v.reason
                        ),
                    )),
                    None,
                ));
            }
            if v.may_approve {
                return Ok((None, keep(members)));
            }
        }
        // A safe whose group members the vault lists but none of which maps to a directory
        // group is the site's configuration, not the forwarder's fault. Only a forwarder the
        // directory knows gets here; the sentence names the safe they named, nothing of the
        // request.
        if !any_groups
            && let Some(m) = &members
            && !m.members.is_empty()
            && !skipped.skipped.is_empty()
            && self.directory.find_user(forwarder).await.is_ok()
        {
            return Ok((
                Some((
                    codes::NO_APPROVER_GROUPS,
                    no_approver_groups_text(claimed, None, None),
                )),
                None,
            ));
        }
        Ok((
            Some((
                "not_an_approver",
                format!(
                    "You ({forwarder}) do not approve requests of safe {claimed} at any level, so nothing about the request was read or is shown here. If you should approve them, ask the PAM team to add you to the safe's approver group; otherwise leave the request to its approvers."
                ),
            )),
            None,
        ))
    }

    /// The request's requester (PVWA's `RequestorUserName`) as the directory knows them: the
    /// one enabled account of that name (`sAMAccountName` or `userPrincipalName`), with its
    /// person's other accounts under `[directory] person_attribute`. A fault of the directory
    /// is a fault (the mail waits); no account, or several, is `Unknown`.
    async fn requester_identity(&self, name: &str) -> Result<policy::RequesterIdentity, Fault> {
        let accounts = self
            .directory
            .accounts_named(name)
            .await
            .map_err(Fault::of)?;
        let shown = crate::text::printable(name);
        let u = match accounts.as_slice() {
            [] => {
                return Ok(policy::RequesterIdentity::Unknown(format!(
                    "no enabled directory account is named {shown}"
                )));
            }
            [u] => u.clone(),
            _ => {
                return Ok(policy::RequesterIdentity::Unknown(format!(
                    "several directory accounts are named {shown}"
                )));
            }
        };
        let mut ids = u.identities();
        if self.directory.settings().person_attribute.is_some()
            && let Some(value) = u.person.clone().filter(|v| !v.trim().is_empty())
        {
            let more = self
                .directory
                .accounts_of_person(&value)
                .await
                .map_err(Fault::of)?;
            ids.extend(more.iter().flat_map(|a| a.identities()));
        }
        Ok(policy::RequesterIdentity::Known(ids))
    }

    /// The e-mail addresses the vault holds for the user `name` (`GET /API/Users`), read with
    /// the lookup account. A transient fault is a fault (the mail waits); when PVWA refuses the
    /// account the user records (no Vault permission "Audit users") the rule is the directory's
    /// alone, said once at info; any other failure gives no address.
    async fn requester_vault_emails(&self, name: &str) -> Result<Vec<String>, Fault> {
        match self
            .pvwa(AccountRole::Lookup, async |x: &Session| {
                x.user_emails(name).await
            })
            .await
        {
            Ok(v) => Ok(v),
            Err(e) if e.is_transient() => Err(Fault::of(e)),
            Err(PvwaError::NoPermission { user, detail, .. }) => {
                if !self.vault_users_refused.swap(true, Ordering::Relaxed) {
                    log::info!(
                        "PVWA does not let the lookup account {user} read the vault's user records ({detail}): it lacks the Vault permission \"Audit users\", so the requester's e-mail in the vault is not read and the requester rule uses the directory alone"
                    );
                }
                Ok(Vec::new())
            }
            Err(e) => {
                log::info!("the requester's e-mail in the vault could not be read: {e}");
                Ok(Vec::new())
            }
        }
    }

    /// The members of `safe` and the vault group records of its group members, read with the
    /// lookup account (records cached with the directory look-up TTL).
    async fn safe_approvers(
        &self,
        safe: &str,
    ) -> Result<directory::check::SafeApprovers, PvwaError> {
        let cache = self.directory.group_records();
        self.pvwa(AccountRole::Lookup, async |x: &Session| {
            directory::check::read_safe_approvers(x, safe, cache).await
        })
        .await
    }

    /// Whether PVWA lists a request with this number (`<Safe>_<number>`) under a safe other
    /// than `claimed`. Which safe is never told: the forwarder may not approve it. Best effort:
    /// a fault gives `false`.
    async fn same_number_elsewhere(&self, number: &str, claimed: &str) -> bool {
        let suffix = format!("_{number}");
        // PVWA lists to each account the requests it may confirm: ask every role.
        for role in [
            AccountRole::Lookup,
            AccountRole::Level1,
            AccountRole::Level2,
        ] {
            let list = match self
                .pvwa(role, async |s: &Session| s.list_incoming(false, true).await)
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    log::info!("looking for request number {number} in other safes: {e}");
                    return false;
                }
            };
            if list.iter().any(|r| {
                r.request_id.ends_with(&suffix)
                    && r.request_id.len() == r.safe_name.len() + suffix.len()
                    && !r.safe_name.eq_ignore_ascii_case(claimed)
            }) {
                return true;
            }
        }
        false
    }

    async fn ticket(&self, request: &Request) -> Result<TicketCheck, Fault> {
        let Some(t) = &self.tickets else {
            return Ok(TicketCheck::NotRequired);
        };
        match t.applies.ticket_for(request) {
            TicketNeed::NotRequired => Ok(TicketCheck::NotRequired),
            TicketNeed::Missing => Ok(TicketCheck::Invalid {
                code: "ticket_missing".into(),
                message: "the request needs a ticket and names none".into(),
            }),
            TicketNeed::Ambiguous { candidates } => Ok(TicketCheck::Invalid {
                code: "ticket_ambiguous".into(),
                message: format!(
                    "the request names several tickets ({})",
                    candidates.join(", ")
                ),
            }),
            TicketNeed::Found { ticket, .. } => {
                let ctx = ticketing::rules::Context {
                    user: Some(request.requestor_user_name.clone()),
                    at: chrono::Utc::now(),
                };
                let v = t.validator.lock().await.validate(&ticket, 0, &ctx).await;
                match v.outcome {
                    ticketing::validate::Outcome::Valid | ticketing::validate::Outcome::Bypass => {
                        Ok(TicketCheck::Valid {
                            summary: v.summary(),
                        })
                    }
                    ticketing::validate::Outcome::Invalid => Ok(TicketCheck::Invalid {
                        code: v.reason.clone().unwrap_or_else(|| "invalid".into()),
                        message: v.summary(),
                    }),
                    ticketing::validate::Outcome::CannotValidate => Err(Fault {
                        message: format!("the ticket could not be validated: {}", v.summary()),
                        exit: Exit::Unavailable,
                        service: "ticketing",
                    }),
                }
            }
        }
    }

    /// `seen`: decide, and on approval record the decision and confirm.
    async fn seen(&self, w: &mut Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        match self.decide(w).await? {
            Verdict::Refuse {
                code,
                reason,
                request_id,
                forwarder,
            } => self
                .journal
                .refused(
                    e.row,
                    &code,
                    &reason,
                    request_id.as_deref(),
                    forwarder.as_deref(),
                )
                .map_err(Fault::of),
            Verdict::Approve {
                request_id,
                level,
                forwarder,
                identities,
            } => {
                let marker = hex::encode(rand::random::<[u8; 6]>());
                let e = self
                    .journal
                    .decided_for(e.row, &request_id, level, &forwarder, &marker, &identities)
                    .map_err(Fault::of)?;
                self.confirm(w, &e).await
            }
        }
    }

    /// Send the confirm of a `decided` row whose absence in PVWA is known.
    async fn confirm(&self, w: &mut Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        let (Some(rid), Some(level), Some(fw), Some(marker)) =
            (&e.request_id, e.level, &e.forwarder, &e.marker)
        else {
            return Err(Fault {
                message: format!("journal row {} is decided without its decision", e.row),
                exit: Exit::Software,
                service: "",
            });
        };
        let role = AccountRole::for_level(level).ok_or_else(|| Fault {
            message: format!("level {level} has no account"),
            exit: Exit::Software,
            service: "",
        })?;
        let reason: String = self
            .cfg
            .reason_template
            .replace("{forwarder}", &notify::one_line(fw, 254))
            .replace("{marker}", marker)
            .chars()
            .take(crate::pvwa::MAX_REASON)
            .collect();
        match self
            .pvwa(role, async |s: &Session| s.confirm(rid, &reason).await)
            .await
        {
            Ok(()) => {
                let done = self
                    .journal
                    .confirmed(e.row, &format!("confirmed by {}", self.account(level)))
                    .map_err(Fault::of)?;
                let waited = chrono::Utc::now().timestamp_millis() - e.first_seen_ms;
                self.metrics
                    .confirm(level, Duration::from_millis(waited.max(0) as u64));
                // The reply names the request as PVWA shows it after the confirm (its status
                // has moved on), not as it was read before.
                self.reread(w, rid).await;
                Ok(done)
            }
            Err(err) if err.is_transient() => Err(Fault::of(err)),
            Err(err) => {
                // A final refusal by PVWA: say who confirmed and when.
                self.reread(w, rid).await;
                self.journal
                    .refused(
                        e.row,
                        codes::CONFIRM_FAILED,
                        &format!("PVWA refused the confirmation: {err}"),
                        Some(rid),
                        Some(fw),
                    )
                    .map_err(Fault::of)
            }
        }
    }

    /// Read the request again for the reply (best effort: on a fault the reply says the status
    /// could not be read rather than show a stale one).
    async fn reread(&self, w: &mut Work<'_>, rid: &str) {
        match self
            .pvwa(AccountRole::Lookup, async |s: &Session| {
                s.get_request(rid).await
            })
            .await
        {
            Ok(r) => {
                w.request = Some(r);
                w.stale = false;
            }
            Err(e) => {
                log::warn!("request {rid} could not be read again for the reply: {e}");
                w.stale = true;
            }
        }
    }

    /// `decided` found at the start of a call: resolve from PVWA's confirmers, never blind.
    async fn resolve(&self, w: &mut Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        let (Some(rid), Some(level), Some(marker)) =
            (e.request_id.clone(), e.level, e.marker.clone())
        else {
            return Err(Fault {
                message: format!("journal row {} is decided without its decision", e.row),
                exit: Exit::Software,
                service: "",
            });
        };
        w.forwarder = e.forwarder.clone();
        w._guard = Some(self.locks.lock(&rid).await);
        let r = self
            .pvwa(AccountRole::Lookup, async |s: &Session| {
                s.get_request(&rid).await
            })
            .await;
        let r = match r {
            Ok(r) => r,
            Err(err @ PvwaError::NotFound { .. }) => {
                return self
                    .journal
                    .refused(e.row, codes::CONFIRM_FAILED, &format!("The request is gone from PVWA ({err}); it was not confirmed by this mail."), Some(&rid), e.forwarder.as_deref())
                    .map_err(Fault::of);
            }
            Err(err) => return Err(Fault::of(err)),
        };
        w.request = Some(r.clone());
        let ours = r
            .confirmers
            .iter()
            .any(|c| c.acted() && c.reason.contains(marker.as_str()));
        if ours {
            return self
                .journal
                .confirmed(
                    e.row,
                    &format!("found our marker {marker} among the confirmers"),
                )
                .map_err(Fault::of);
        }
        let account = self.account(level);
        let we_acted = r.confirmers.iter().filter(|c| c.acted()).any(|c| {
            policy::is_same_person(&c.name, std::slice::from_ref(&account))
                || c.members
                    .iter()
                    .any(|m| policy::is_same_person(&m.user_name, std::slice::from_ref(&account)))
        });
        let now = chrono::Utc::now().timestamp();
        let waiting = r.confirmations_left > 0
            && r.invalid_request_reason == 0
            && r.current_confirmation_level == i64::from(level)
            && (r.expiration_date == 0 || r.expiration_date > now);
        if waiting && !we_acted {
            return self.decide_again(w, e, &rid, level).await;
        }
        self.journal
            .refused(
                e.row,
                codes::CONFIRM_FAILED,
                &format!(
                    "Request {rid} was not confirmed by this mail: it is no longer waiting for the level-{level} confirmation ({}).",
                    if r.status_title.is_empty() { format!("status {}", r.status) } else { r.status_title.clone() }
                ),
                Some(&rid),
                e.forwarder.as_deref(),
            )
            .map_err(Fault::of)
    }

    /// A `decided` row whose confirm is known not to have arrived: every attempt re-reads the
    /// request and re-runs the whole decision (sender, notice, directory, policy, journal,
    /// portal rights) before the confirm, so that what changed in between (a portal confirm by
    /// the forwarder, a directory change) refuses it. The confirm goes out only for the same
    /// request, level and forwarder as decided, with the recorded marker.
    async fn decide_again(
        &self,
        w: &mut Work<'_>,
        e: &Entry,
        rid: &str,
        level: u8,
    ) -> Result<Entry, Fault> {
        // `decide` takes the request's lock itself.
        w._guard = None;
        let v = self.decide(w).await?;
        match v {
            Verdict::Approve {
                request_id,
                level: l,
                forwarder,
                ..
            } if request_id == rid
                && l == level
                && e.forwarder
                    .as_deref()
                    .is_some_and(|f| f.eq_ignore_ascii_case(&forwarder)) =>
            {
                self.confirm(w, e).await
            }
            Verdict::Approve { level: l, .. } => self
                .journal
                .refused(
                    e.row,
                    codes::CONFIRM_FAILED,
                    &format!(
                        "Request {rid} was not confirmed by this mail: it was decided for level {level}, and deciding again gave another answer (level {l})."
                    ),
                    Some(rid),
                    e.forwarder.as_deref(),
                )
                .map_err(Fault::of),
            Verdict::Refuse { code, reason, .. } => self
                .journal
                .refused(e.row, &code, &reason, Some(rid), e.forwarder.as_deref())
                .map_err(Fault::of),
        }
    }

    /// The verified forwarder of a mail, or the refusal (code, sentence) of the sender check.
    /// Only the transport headers Exchange stamped on delivery are trusted: an item put into the
    /// folder some other way (CreateItem, drag and drop, an import) has none, and its MIME
    /// header block is whatever its author wrote.
    fn authenticate(&self, m: &FetchedMessage) -> Result<String, (String, String)> {
        let headers = match &m.transport_headers {
            Some(t) if !t.trim().is_empty() => sender::headers_from_raw(t.as_bytes()),
            _ => {
                return Err((
                    codes::NO_TRANSPORT_HEADERS.into(),
                    "The mail carries no transport headers from Exchange (it was put into the folder rather than delivered), so its sender cannot be verified.".into(),
                ));
            }
        };
        sender::verify(&headers, &self.sender)
            .map(|v| v.address)
            .map_err(|r| (r.reason.code().to_string(), r.message))
    }

    /// Where a reply may go: the verified forwarder only. A mail whose sender is not authentic
    /// gets no reply (its claimed sender may be a colleague an attacker wants to mail); the PAM
    /// team gets a report instead (`report_unauthentic`).
    fn reply_to(&self, w: &Work<'_>, e: &Entry) -> Option<String> {
        if let Some(f) = &e.forwarder {
            return Some(f.clone());
        }
        self.authenticate(w.fetched).ok()
    }

    fn silent(&self, w: &mut Work<'_>, e: &Entry) -> bool {
        match &w.exam(&self.notice).outcome {
            Err(r) => r.reason.silent() && e.reason_code.as_deref() == Some(r.reason.code()),
            Ok(_) => false,
        }
    }

    /// The reply's values. Need to know: a row refused before its request was read (no request
    /// id: the forwarder does not approve the safe the mail names, or the mail could not be
    /// read) shows nothing of the request but the id the forwarder's own mail names, neither
    /// from PVWA nor from the mail. Every value
    /// from outside that a person typed (requester, reason, account, confirmers) is quoted as
    /// data on one bounded line (`notify::quote`).
    fn values(&self, w: &mut Work<'_>, e: &Entry) -> Values {
        let known = e.request_id.is_some();
        // (Only a verified mail is answered, so reading its notice here is safe.)
        let exam = w.exam(&self.notice).outcome.as_ref().ok().cloned();
        // The request id the forwarder's own mail names is theirs to see; the rest only when
        // the request was read for them.
        let claimed_id = exam.as_ref().map(|n| n.request_id.clone());
        let n = exam.as_ref().filter(|_| known);
        let r = if known { w.request.as_ref() } else { None };
        let now = chrono::Utc::now();
        let mut v = Values::new();
        let unknown = || "(unknown)".to_string();
        let quoted = |s: String, max: usize| notify::quote(&s, max);
        v.insert(
            "request_id",
            e.request_id.clone().or(claimed_id).unwrap_or_else(unknown),
        );
        v.insert(
            "safe",
            r.map(|r| r.safe_name.clone())
                .or_else(|| n.map(|n| n.safe.clone()))
                .unwrap_or_else(unknown),
        );
        v.insert(
            "requester",
            r.map(|r| r.requestor_user_name.clone())
                .or_else(|| n.and_then(|n| n.requester.clone()))
                .map(|s| quoted(s, 120))
                .unwrap_or_else(unknown),
        );
        let level = e
            .level
            .map(i64::from)
            .or(r.map(|r| r.current_confirmation_level));
        v.insert(
            "level",
            level.map(|l| l.to_string()).unwrap_or_else(unknown),
        );
        v.insert("account", self.account(e.level.unwrap_or(0)));
        v.insert("reason", e.reason.clone().unwrap_or_default());
        v.insert("reason_code", e.reason_code.clone().unwrap_or_default());
        v.insert(
            "forwarder",
            e.forwarder
                .clone()
                .or_else(|| w.forwarder.clone())
                .unwrap_or_else(unknown),
        );
        v.insert(
            "time",
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        v.insert(
            "status",
            if !known {
                unknown()
            } else if w.stale {
                "(the request could not be read again after the confirm; see the PVWA portal)"
                    .to_string()
            } else {
                r.map(|r| r.status_title.clone()).unwrap_or_default()
            },
        );
        let view = r.map(|r| crate::pvwa::view::RequestView::new(r, now.timestamp()));
        v.insert(
            "target_account",
            view.as_ref()
                .map(|x| match (x.account.is_empty(), x.address.is_empty()) {
                    (false, false) => format!("{} on {}", x.account, x.address),
                    (false, true) => x.account.clone(),
                    (true, _) => x.address.clone(),
                })
                .filter(|s| !s.is_empty())
                .map(|s| quoted(s, 200))
                .unwrap_or_else(unknown),
        );
        v.insert(
            "request_reason",
            view.map(|x| x.reason)
                .filter(|s| !s.is_empty())
                .map(|s| quoted(s, notify::MAX_QUOTED))
                .unwrap_or_else(unknown),
        );
        v.insert(
            "expires",
            r.and_then(|r| chrono::DateTime::from_timestamp(r.expiration_date, 0))
                .filter(|_| r.is_some_and(|r| r.expiration_date != 0))
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(unknown),
        );
        v.insert(
            "confirmers",
            r.map(confirmers_text)
                .unwrap_or_else(|| "  (not known)".into()),
        );
        // In a refusal, only when the request has moved on: who acted, from PVWA.
        v.insert(
            "acted",
            match (r, e.reason_code.as_deref()) {
                (Some(r), Some(code)) if codes::no_longer_waiting(code) => {
                    format!(
                        "\nWho acted on the request and when (from PVWA; names and reasons quoted as typed):\n{}\n",
                        confirmers_text(r)
                    )
                }
                _ => String::new(),
            },
        );
        // The request's lines of a refusal: none when it was not read for this forwarder.
        v.insert(
            "details",
            if known {
                format!(
                    "  Request:    {}\n  Safe:       {}\n  Requester:  {}\n  Level:      {}\n",
                    v["request_id"], v["safe"], v["requester"], v["level"]
                )
            } else {
                String::new()
            },
        );
        v
    }

    /// `confirmed`/`refused`: answer the forwarder (unless silent), then `notified`.
    async fn reply(&self, w: &mut Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        let outcome = match (e.outcome.as_deref(), e.reason_code.as_deref()) {
            (Some("confirmed"), _) => Outcome::Approved,
            (_, Some(codes::CONFIRM_FAILED | codes::GAVE_UP)) => Outcome::Failed,
            (_, Some(c)) if codes::site_fault(c) => Outcome::Failed,
            _ => Outcome::Refused,
        };
        // Who may be answered is settled first, from the transport headers alone: the body of
        // a mail whose sender is not verified is never read, not even to decide on silence.
        let unanswered = self.unanswered(w, e);
        if self.notifier.enabled()
            && let Some(why) = unanswered
        {
            self.report_unanswered(e, why).await?;
        } else if self.notifier.enabled() && !self.silent(w, e) {
            if w.request.is_none()
                && let Some(rid) = e.request_id.clone()
                && (outcome != Outcome::Refused || e.forwarder.is_some())
            {
                // After a restart: the request as PVWA shows it now (best effort).
                if let Ok(r) = self
                    .pvwa(AccountRole::Lookup, async |s: &Session| {
                        s.get_request(&rid).await
                    })
                    .await
                {
                    w.request = Some(r);
                }
            }
            match self.reply_to(w, e) {
                Some(to) => {
                    let values = self.values(w, e);
                    match self.notifier.render(outcome, &to, &values) {
                        Ok(reply) => {
                            self.send_once(reply, crate::mailbox::send_key("reply", &e.key, ""))
                                .await?;
                            self.metrics.reply(match outcome {
                                Outcome::Approved => "approved",
                                Outcome::Refused => "refused",
                                Outcome::Failed => "failed",
                                Outcome::Already => codes::ALREADY_PROCESSED,
                            });
                        }
                        Err(err) => log::warn!("journal row {}: no reply sent: {err}", e.row),
                    }
                }
                None => log::info!("journal row {}: no address to answer; no reply sent", e.row),
            }
        }
        self.journal.notified(e.row).map_err(Fault::of)
    }

    /// Why a refused mail gets no reply but a report to the PAM team, if it does: its sender
    /// is not verified (the claimed sender may be a colleague an attacker wants to mail), or a
    /// mailbox rule forwarded it (answering a rule mails its owner about what they did not do,
    /// and can loop).
    fn unanswered(&self, w: &Work<'_>, e: &Entry) -> Option<&'static str> {
        if e.forwarder.is_none() && self.authenticate(w.fetched).is_err() {
            return Some("its sender could not be verified");
        }
        if e.reason_code.as_deref() == Some("auto_forwarded") {
            return Some("a mailbox rule forwarded it, not a person");
        }
        None
    }

    /// Tell the PAM team (when configured) that a mail was refused without a reply (`why`):
    /// the refusal and where the mail lies, never its subject or text.
    async fn report_unanswered(&self, e: &Entry, why: &str) -> Result<(), Fault> {
        let mut v = Values::new();
        v.insert("unanswered", why.to_string());
        v.insert("reason_code", e.reason_code.clone().unwrap_or_default());
        v.insert("reason", e.reason.clone().unwrap_or_default());
        v.insert(
            "message_id",
            e.message_id.clone().unwrap_or_else(|| "(none)".into()),
        );
        v.insert("row", e.row.to_string());
        v.insert("folder", self.refused_folder.clone());
        match self.notifier.render_report(&v) {
            Some(report) => {
                self.send_once(report, crate::mailbox::send_key("report", &e.key, ""))
                    .await?;
                self.metrics.reply("pam_team_report");
                Ok(())
            }
            None => {
                log::info!(
                    "journal row {}: {why}; no reply, no report configured",
                    e.row
                );
                Ok(())
            }
        }
    }

    /// A mail item the journal still has open is gone from the folder: when its row was being
    /// filed (the move was sent, then the watcher was interrupted), the move happened; the row
    /// is closed. Any other row is left as it is (someone moved the mail away mid-way; it is
    /// processed again if it comes back).
    fn moved_before_interruption(&self, item: &str) -> Result<()> {
        let Some(e) = self.journal.unfinished_by_item(item)? else {
            return Ok(());
        };
        if e.state != State::Notified {
            return Ok(());
        }
        if let Some(folder) = self.journal.get_value(&format!("filing:{}", e.row))? {
            self.journal.filed(e.row, &folder)?;
            log::info!(
                "mail {} (journal row {}) left the folder after its move into {folder} was sent, before an interruption; row closed",
                e.message_id.as_deref().unwrap_or("?"),
                e.row
            );
        }
        Ok(())
    }

    /// Send `reply` at most once for `key`, across crashes too: the attempt is recorded in the
    /// journal before the mail leaves, and the mail carries `key`; when a recorded attempt is
    /// found (a crash or an unknown outcome between sending and recording it), the mailbox is
    /// asked whether the mail was sent before it is sent again.
    async fn send_once(&self, reply: notify::Reply, key: String) -> Result<(), Fault> {
        let kv = format!("send_attempt:{key}");
        if self.journal.get_value(&kv).map_err(Fault::of)?.is_some()
            && self.mailbox.was_sent(&key).await.map_err(Fault::of)?
        {
            log::info!("reply {key} was sent before an interruption; not sent again");
            return Ok(());
        }
        self.journal
            .set_value(&kv, &chrono::Utc::now().to_rfc3339())
            .map_err(Fault::of)?;
        let mail = OutgoingMail {
            to: reply.to,
            cc: reply.cc,
            subject: reply.subject,
            text: reply.text,
            html: reply.html,
            send_key: Some(key),
            headers: crate::mailbox::AUTO_REPLY_HEADERS
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        self.mailbox.send(&mail).await.map_err(Fault::of)
    }

    /// `notified`: file the mail (never delete it), then `filed`. The folder is recorded before
    /// the move, so that a mail moved just before an interruption is recognised afterwards.
    async fn file(&self, w: &Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        let folder = if e.outcome.as_deref() == Some("confirmed") {
            &self.processed_folder
        } else {
            &self.refused_folder
        };
        self.journal
            .set_value(&format!("filing:{}", e.row), folder)
            .map_err(Fault::of)?;
        self.file_as_read(&w.fetched.reference, folder)
            .await
            .map_err(Fault::of)?;
        self.journal.filed(e.row, folder).map_err(Fault::of)
    }

    /// Mark the mail read, then file it. Marking is best effort: a failure leaves the filed
    /// mail unread, which harms nothing (the watcher never reads the filing folders).
    async fn file_as_read(
        &self,
        m: &crate::mailbox::MessageRef,
        folder: &str,
    ) -> Result<crate::mailbox::MessageRef, crate::mailbox::MailboxError> {
        let m = match self.mailbox.mark_read(m).await {
            Ok(read) => read,
            Err(e) => {
                log::warn!("could not mark the mail read before filing it ({e}); filing it unread");
                m.clone()
            }
        };
        self.mailbox.file(&m, folder).await
    }

    /// A second copy of a mail already filed: answer "already processed" once, file it.
    async fn duplicate(&self, e: Entry, w: &mut Work<'_>) -> Result<Processed> {
        let kv = format!("duplicate_replied:{}", w.fetched.reference.id);
        let pending = async {
            if self.journal.get_value(&kv).map_err(Fault::of)?.is_none() {
                if self.notifier.enabled()
                    && self.unanswered(w, &e).is_none()
                    && let Some(to) = self.reply_to(w, &e)
                    && !self.silent(w, &e)
                {
                    let mut values = self.values(w, &e);
                    values.insert("reason_code", codes::ALREADY_PROCESSED.into());
                    let approved = e.outcome.as_deref() == Some("confirmed");
                    let reason = if approved {
                        format!(
                            "An earlier copy of this mail (journal row {}) approved request {} at level {} on your behalf; it stays approved.",
                            e.row,
                            e.request_id.as_deref().unwrap_or("(unknown)"),
                            e.level.map(|l| l.to_string()).unwrap_or_else(|| "(unknown)".into()),
                        )
                    } else {
                        format!(
                            "This mail was already processed ({}{}); nothing more was done.",
                            e.outcome.as_deref().unwrap_or("done"),
                            e.reason_code
                                .as_deref()
                                .map(|c| format!(": {c}"))
                                .unwrap_or_default()
                        )
                    };
                    values.insert("reason", reason);
                    let outcome = if approved {
                        Outcome::Already
                    } else {
                        Outcome::Refused
                    };
                    if let Ok(reply) = self.notifier.render(outcome, &to, &values) {
                        let key =
                            crate::mailbox::send_key("duplicate", &e.key, &w.fetched.reference.id);
                        self.send_once(reply, key).await?;
                        self.metrics.reply(codes::ALREADY_PROCESSED);
                    }
                }
                self.journal.set_value(&kv, "replied").map_err(Fault::of)?;
            }
            let folder = if e.outcome.as_deref() == Some("confirmed") {
                &self.processed_folder
            } else {
                &self.refused_folder
            };
            self.file_as_read(&w.fetched.reference, folder)
                .await
                .map_err(Fault::of)?;
            Ok::<(), Fault>(())
        }
        .await
        .err();
        let mut p = self.result(&e, w, None, Exit::Ok);
        p.outcome = Some(codes::ALREADY_PROCESSED.into());
        match pending {
            Some(f) => {
                p.exit = f.exit;
                p.pending = Some(f.message);
                self.metrics.fault(f.service);
            }
            None => self.metrics.mail(codes::ALREADY_PROCESSED, None),
        }
        self.audit(&p, w);
        Ok(p)
    }

    /// `--dry-run`: decide and report; no journal row, no confirm, no reply, no filing.
    async fn dry(&self, w: &mut Work<'_>) -> Result<Processed> {
        let mut p = Processed {
            confirmers: Vec::new(),
            row: None,
            message_id: w.fetched.internet_message_id.clone(),
            state: None,
            outcome: None,
            reason_code: None,
            reason: None,
            request_id: None,
            pending: None,
            attempts: 0,
            dry_run: true,
            exit: Exit::Ok,
        };
        match self.decide(w).await {
            Ok(Verdict::Approve { request_id, .. }) => {
                p.outcome = Some("would_confirm".into());
                p.request_id = Some(request_id);
            }
            Ok(Verdict::Refuse {
                code,
                reason,
                request_id,
                ..
            }) => {
                p.outcome = Some("would_refuse".into());
                p.reason_code = Some(code);
                p.reason = Some(reason);
                p.request_id = request_id;
            }
            Err(f) => {
                p.pending = Some(f.message);
                p.exit = f.exit;
            }
        }
        self.audit(&p, w);
        Ok(p)
    }
}

/// Who acted on the request and when, one line each.
fn confirmers_text(r: &Request) -> String {
    let lines: Vec<String> = r
        .confirmers
        .iter()
        .filter(|c| c.acted())
        .map(|c| {
            let who: Vec<&str> = c.members.iter().map(|m| m.user_name.as_str()).collect();
            let when = chrono::DateTime::from_timestamp(c.action_date, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| c.action_date.to_string());
            format!(
                "  - {}{} at {when}{}",
                notify::quote(&c.name, 120),
                if who.is_empty() {
                    String::new()
                } else {
                    let who: Vec<String> = who.iter().map(|m| notify::quote(m, 120)).collect();
                    format!(" ({})", notify::one_line(&who.join(", "), 400))
                },
                if c.reason.is_empty() {
                    String::new()
                } else {
                    format!(", reason: {}", notify::quote(&c.reason, notify::MAX_QUOTED))
                }
            )
        })
        .collect();
    if lines.is_empty() {
        "  (nobody yet)".into()
    } else {
        lines.join("\n")
    }
}

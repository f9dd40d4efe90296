//! One forwarded mail end to end, exactly once (see `docs/watcher.md`).
//!
//! `process` reads the mail, records it in the journal and moves its row forward, one state at
//! a time, from wherever it is: a new mail starts at `seen`; a row left in `decided` by a crash
//! or an unknown confirm outcome is resolved by reading the request's confirmers for our marker
//! (never by a blind second confirm); `confirmed`/`refused` rows get their reply; `notified`
//! rows are filed. A transient fault leaves the row where it is, counts an attempt, and the mail
//! stays in the inbox for the next pass; after `max_attempts` it is refused (`gave_up`).
//!
//! One file per step of the journal's state machine: [`decide`] (who sent it, may they approve
//! it now), [`confirm`] (`seen` → `decided` → `confirmed`), [`outcome`] (a `decided` row whose
//! confirm outcome is unknown), [`reply`] (→ `notified`), [`filing`] (→ `filed`, and second
//! copies), [`dry_run`], [`report`] (the result and the audit line), [`unreadable`] (a mail
//! that cannot be fetched: counted, then refused and reported) and [`sessions`] (the PVWA
//! sessions every step shares). This file holds the pipeline itself and `process`, which moves
//! a row from step to step; docs/architecture.md maps which step calls which.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::WatcherConfig;
use crate::directory::approvers::Approvers;
use crate::directory::config::ApproverMode;
use crate::directory::{self, AnyDirectory, Directory};
use crate::error::{Error, Result};
use crate::exit::{Classify, Exit};
use crate::journal::{self, AsyncJournal, Begin, Entry, Journal, State};
use crate::mailbox::{FetchedMessage, Mailbox, MessageRef, OutgoingMail};
use crate::metrics::Metrics;
use crate::notice::{self, Examination, NoticeConfig};
use crate::notice_check;
use crate::notify::{self, Notifier, Outcome, Values};
use crate::policy::{
    self, Approver, Decision, Facts, MailClaims, PortalRight, PortalRights, TicketCheck, ToolActed,
};
use crate::pvwa::sessions::Sessions;
use crate::pvwa::{AccountRole, Pvwa, PvwaError, Request, Session};
use crate::runtime::{Audit, RequestLocks};
use crate::secret::Resolver;
use crate::sender::SenderPolicyConfig;
use crate::settings::Loaded;
use crate::ticketing::{self, Applies, TicketNeed, Validator};

mod confirm;
mod decide;
mod dry_run;
mod filing;
mod outcome;
mod reply;
mod report;
mod sessions;
mod unreadable;

/// Refusal codes of the pipeline itself (the policy's and the notice reader's come on top).
pub mod codes {
    /// PVWA does not know the request the mail names.
    pub const REQUEST_NOT_FOUND: &str = "request_not_found";
    /// The request id in the mail cannot be a PVWA id.
    pub const INVALID_REQUEST_ID: &str = "invalid_request_id";
    /// PVWA refused our confirm, or the request moved on before it could be confirmed.
    pub const CONFIRM_FAILED: &str = "confirm_failed";
    /// PVWA refused our reject (issue 32), or the request moved on before it could be rejected.
    pub const REJECT_FAILED: &str = "reject_failed";
    /// The requester asked to reject their own request by mail: a requester withdraws it in the
    /// portal.
    pub const SELF_REJECT: &str = "self_reject";
    /// The mail kept failing on faults; nothing was approved by this mail.
    pub const GAVE_UP: &str = "gave_up";
    /// The mail could not be fetched or read (larger than `mailbox.max_mail_mib`, an answer
    /// that cannot be read) through `watcher.max_attempts` attempts; the PAM team is told.
    pub const UNREADABLE_MAIL: &str = "unreadable_mail";
    /// The same mail was already processed (a second copy).
    pub const ALREADY_PROCESSED: &str = "already_processed";
    /// The directory does not know the forwarder, or knows several.
    pub const UNKNOWN_SENDER: &str = "unknown_sender";
    /// The mail has no transport headers from Exchange (it was not delivered but put into the
    /// folder), so its sender cannot be verified.
    pub const NO_TRANSPORT_HEADERS: &str = crate::screen::NO_TRANSPORT_HEADERS;
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
                | REJECT_FAILED
        )
    }
}

/// A fault: what failed, and its exit class (TempFail/Unavailable are transient).
#[derive(Debug, Clone)]
pub struct Fault {
    pub message: String,
    pub exit: Exit,
    /// The outside service at fault (`pvwa`, `mailbox`, …; empty for none), for metrics.
    pub service: &'static str,
    /// Not a fault but a mail held back by the mailbox's sending pace or quota, for this long:
    /// the row keeps its state, no attempt is counted (`mailbox::pace`).
    pub deferred: Option<Duration>,
}

impl Fault {
    pub fn of<E: Classify + std::fmt::Display>(e: E) -> Fault {
        Fault {
            message: e.to_string(),
            exit: e.exit(),
            service: e.service(),
            deferred: None,
        }
    }

    /// A mailbox fault; a send held back ([`crate::mailbox::MailboxError::SendDeferred`]) is a
    /// deferral.
    pub fn of_mailbox(e: crate::mailbox::MailboxError) -> Fault {
        let deferred = e.send_deferred();
        Fault {
            deferred,
            ..Fault::of(e)
        }
    }

    /// A send that must wait `wait` for the mailbox's pace (or a delay the server asked for
    /// after refusing a send).
    pub fn deferred(wait: Duration) -> Fault {
        Fault::of_mailbox(crate::mailbox::MailboxError::SendDeferred {
            wait,
            by_server: false,
            detail: "mailbox.max_sends_per_minute, or the server's delay after a refused send"
                .into(),
        })
    }
}

/// What one `process` call did.
#[derive(Debug, Clone, Serialize)]
pub struct Processed {
    pub row: Option<i64>,
    pub message_id: Option<String>,
    /// The row's state after this call (`filed` when done).
    pub state: Option<State>,
    /// `confirmed`, `rejected`, `refused`, `already_processed`, `would_confirm`/`would_reject`/
    /// `would_refuse` (dry run).
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
    /// Left for later without a fault (the lock-delay after a takeover): try again after this.
    #[serde(skip)]
    pub retry_in: Option<Duration>,
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
    /// The notice read from the mail, read once, off the executor: a hostile mail of many MiB
    /// keeps the reader busy for a while, and other mails, `/metrics` and the watchdog go on.
    async fn notice(&mut self, cfg: &NoticeConfig) -> &Examination {
        if self.exam.is_none() {
            let (raw, c) = (self.fetched.mime.clone(), cfg.clone());
            let read = tokio::task::spawn_blocking(move || notice::examine(&raw, &c)).await;
            if let Ok(exam) = read {
                self.reads.fetch_add(1, Ordering::Relaxed);
                self.exam = Some(exam);
            }
        }
        // (A failed blocking task — the runtime stopping — reads it here instead.)
        self.exam(cfg)
    }

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
        /// A reject by mail (issue 32): the forwarder's reason (empty when none). The same
        /// checks passed as for an approval; the level's account rejects instead.
        reject: Option<String>,
    },
}

struct Tickets {
    applies: Applies,
    validator: tokio::sync::Mutex<Validator>,
}

/// The watcher's pipeline, built once and used for every mail.
pub struct Pipeline {
    mailbox: Arc<dyn Mailbox>,
    journal: AsyncJournal,
    cfg: WatcherConfig,
    notice: NoticeConfig,
    sender: SenderPolicyConfig,
    directory: AnyDirectory,
    /// The PVWA sessions of the level and lookup accounts.
    sessions: Sessions,
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
    /// The PostgreSQL journal's target and password (for the lease's own connection).
    pg: Option<(journal::PgTarget, Option<crate::secret::SecretString>)>,
    /// The lock-delay after a takeover: the longest HTTP call (PVWA's or the mailbox's
    /// request timeout) plus 5 s.
    lock_delay: Duration,
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
        let pg = c.journal.target(loaded)?;
        let metrics = Arc::new(Metrics::with_ha(pg.is_some() && !dry_run));
        let lock_delay = Duration::from_secs(
            loaded
                .pvwa()?
                .request_timeout_secs
                .max(mcfg.request_timeout_secs)
                + 5,
        );
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
            let dir_pw = directory::read_credentials(&dir_settings, &resolver).await?;
            let mailbox = crate::mailbox::open(mcfg, &resolver).await?;
            // The PostgreSQL journal's password (`journal.password`), when one is configured.
            let journal_pw = match (&pg, dry_run) {
                (Some(t), false) => match &t.password {
                    Some(r) => Some(resolver.resolve(r).await?),
                    None => None,
                },
                _ => None,
            };
            Ok::<_, Error>((creds, dir_pw, mailbox, journal_pw))
        }
        .await;
        resolver.close().await;
        let (creds, dir_pw, mailbox, journal_pw) = built?;
        let directory = AnyDirectory::new(dir_settings, dir_pw)?;
        let copy = |pw: &Option<crate::secret::SecretString>| {
            use secrecy::ExposeSecret;
            pw.as_ref()
                .map(|p| crate::secret::SecretString::from(p.expose_secret().to_owned()))
        };
        let lease_pg = match (&pg, dry_run) {
            (Some(t), false) => Some((t.clone(), copy(&journal_pw))),
            _ => None,
        };
        let journal = AsyncJournal::new(match (dry_run, &pg) {
            (true, _) => Journal::in_memory()?,
            (false, Some(t)) => Journal::open_postgres(t, journal_pw, true)?,
            (false, None) => Journal::open(&c.watcher.journal_path(loaded)?)?,
        });
        Ok(Pipeline {
            mailbox,
            journal,
            cfg: c.watcher.clone(),
            notice: c.notice.clone(),
            sender: c.sender.clone(),
            directory,
            sessions: Sessions::new(pvwa, creds),
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
            pg: lease_pg,
            lock_delay,
        })
    }

    /// The PostgreSQL journal's target and password (none on SQLite or in a dry run): two or
    /// more hosts may share it, one acting at a time under the lease (`pipeline::ha`).
    pub fn postgres(&self) -> Option<&(journal::PgTarget, Option<crate::secret::SecretString>)> {
        self.pg.as_ref()
    }

    /// Act under `lease` from now on: every journal write fenced with it, every call to PVWA
    /// or the mailbox gated on it.
    pub fn attach_lease(&self, lease: Arc<journal::Lease>) {
        self.journal().attach_lease(lease);
    }

    /// The lease this pipeline acts under, if any.
    pub fn lease(&self) -> Option<&Arc<journal::Lease>> {
        self.journal().lease()
    }

    /// After a takeover, a row an older epoch left where an outside call may still be on its way
    /// (`decided`: a confirm; `confirmed`/`refused`: a reply; `notified`: a move) is resolved
    /// (read back) only once the lock-delay has passed since the takeover: the time left, or
    /// `None` when it may go on now.
    async fn lock_delay_left(&self, e: &Entry) -> Result<Option<Duration>> {
        let Some(l) = self.lease() else {
            return Ok(None);
        };
        if e.state == State::Seen || e.state == State::Filed {
            return Ok(None);
        }
        let v = l.view();
        let Some(mine) = v.epoch else {
            return Ok(None);
        };
        let left = (v.took_at + self.lock_delay).saturating_sub(journal::lease::boot_clock());
        if left.is_zero() {
            return Ok(None);
        }
        let row = e.row;
        let theirs = self.journal.run(move |j| j.row_epoch(row)).await?;
        Ok(theirs.is_none_or(|t| t < mine).then_some(left))
    }

    /// How many mails' bodies the notice reader has read so far.
    pub fn notices_read(&self) -> u64 {
        self.notice_reads.load(Ordering::Relaxed)
    }

    /// The watcher's counters (served by [`crate::metrics::serve`] when `[metrics]` is set).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The journal, for synchronous callers (tools, tests); the pipeline itself goes through
    /// [`Pipeline::journal_async`].
    pub fn journal(&self) -> &Journal {
        self.journal.blocking()
    }

    /// The journal, off the executor.
    pub fn journal_async(&self) -> &AsyncJournal {
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
        self.sessions.close().await;
        self.directory.close().await;
        if let Some(t) = &self.tickets {
            t.validator.lock().await.close().await;
        }
    }

    /// `refs` and, after them, the mailbox item of every unfinished journal row not among them
    /// (a mail left pending, or interrupted mid-way, is resumed even when it is no longer unread).
    pub async fn with_unfinished(&self, mut refs: Vec<MessageRef>) -> Result<Vec<MessageRef>> {
        for e in self.journal.unfinished().await? {
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
                .set_value(super::watch_loop::LAST_MAILBOX_OK, &ms)
                .await?;
            super::watch_loop::record_certificate_end(self).await;
        }
        let refs = self.with_unfinished(refs).await?;
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

    // ----- one mail -----

    /// Process one mail of the watched folder, from wherever its journal row stands.
    /// `Err` only when the mail could not even be read or the journal failed.
    pub async fn process(&self, msg: &MessageRef) -> Result<Processed> {
        let fetched = match self.mailbox.fetch(msg).await {
            Ok(f) => f,
            Err(err @ crate::mailbox::MailboxError::NotFound { .. }) => {
                if !self.dry_run {
                    self.moved_before_interruption(&msg.id).await?;
                }
                return Err(err.into());
            }
            // The item's own fault (too large, unreadable): counted, and refused in the end.
            Err(err) if !self.dry_run && err.is_item_fault() => {
                return self.unreadable(msg, err).await;
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
            .begin(&key, mid.as_deref(), Some(&fetched.reference.id))
            .await?;
        let mut e = match begin {
            Begin::Known(e) if e.state == State::Filed => return self.duplicate(e, &mut w).await,
            Begin::Known(e) | Begin::New(e) => e,
        };
        w.row = Some(e.row);
        if let Some(left) = self.lock_delay_left(&e).await? {
            log::info!(
                "mail {} (journal row {}): left in state {} by the previous active host; resolved {:.0} s from now, once anything it had sent has landed",
                mid.as_deref().unwrap_or("?"),
                e.row,
                e.state.as_str(),
                left.as_secs_f64().ceil()
            );
            let mut p = self.result(
                &e,
                &w,
                Some("waiting for the lock-delay after a takeover".into()),
                Exit::Ok,
            );
            p.retry_in = Some(left);
            return Ok(p);
        }
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
                Err(f) if f.deferred.is_some() => {
                    // Owed, not failed: the row keeps its state and its attempts; the watch
                    // loop comes back once the pace or the server allows (`mailbox::pace`).
                    log::info!(
                        "mail {} (journal row {}): reply owed, {}",
                        mid.as_deref().unwrap_or("?"),
                        e.row,
                        f.message
                    );
                    self.metrics.reply_deferred();
                    let p = self.result(&e, &w, Some(f.message.clone()), Exit::Ok);
                    self.audit(&p, &w);
                    return Ok(p);
                }
                Err(f) if f.service == journal::lease::NOT_ACTIVE => {
                    // Not a fault: this host is not (or no longer) the active host. Nothing
                    // counted; the mail stays for the active host.
                    log::info!(
                        "mail {} (journal row {}) left in state {} for the active host: {}",
                        mid.as_deref().unwrap_or("?"),
                        e.row,
                        e.state.as_str(),
                        f.message
                    );
                    let e = self.journal.get(e.row).await.ok().flatten().unwrap_or(e);
                    let p = self.result(&e, &w, Some(f.message.clone()), Exit::TempFail);
                    return Ok(p);
                }
                Err(f) => {
                    let n = self.journal.attempt_failed(e.row, &f.message).await?;
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
                        e = self
                            .journal
                            .refused(
                                e.row,
                                codes::GAVE_UP,
                                &reason,
                                e.request_id.clone().as_deref(),
                                e.forwarder.clone().as_deref(),
                            )
                            .await?;
                        continue;
                    }
                    let e = self.journal.get(e.row).await?.unwrap_or(e);
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
}

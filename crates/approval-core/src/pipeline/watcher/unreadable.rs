//! A mail that cannot be fetched or read (larger than `mailbox.max_mail_mib`, an answer the
//! client cannot read, an error code for this one item): never retried forever. Its first
//! failure opens a journal row keyed by its mailbox item (its bytes are unknown); each further
//! failure counts an attempt; after `watcher.max_attempts` the row is refused
//! (`unreadable_mail`), reported to the PAM team (its sender is unknown: nobody else can be
//! answered) and the mail filed in the refused folder. When a later fetch succeeds, the row
//! becomes the mail's own ([`Journal::begin`]) and the mail is processed as any other.

use super::*;
use crate::mailbox::MailboxError;

impl Pipeline {
    /// `msg` could not be fetched because of `err`, a fault of the item itself.
    pub(super) async fn unreadable(
        &self,
        msg: &MessageRef,
        err: MailboxError,
    ) -> Result<Processed> {
        let key = journal::item_key(&msg.id);
        let _mail_guard = self.mail_locks.lock(&key).await;
        let why = err.to_string();
        let mut e = match self.journal.begin(&key, None, Some(&msg.id)).await? {
            Begin::New(e) | Begin::Known(e) => e,
        };
        let step: std::result::Result<Entry, Fault> = async {
            if e.state == State::Seen {
                let n = self.journal.attempt_failed(e.row, &why).await.map_err(Fault::of)?;
                if n < self.cfg.max_attempts {
                    return Err(Fault::of(err));
                }
                let reason = format!(
                    "The mail could not be read after {n} attempts ({why}); nothing was approved. Forward the notification again (without attachments)."
                );
                e = self
                    .journal
                    .refused(e.row, codes::UNREADABLE_MAIL, &reason, None, None).await
                    .map_err(Fault::of)?;
            }
            if matches!(e.state, State::Refused) {
                self.report_unanswered(&e, "it could not be read").await?;
                e = self.journal.notified(e.row).await.map_err(Fault::of)?;
            }
            if e.state == State::Notified {
                let folder = &self.refused_folder;
                self.journal
                    .set_value(&format!("filing:{}", e.row), folder).await
                    .map_err(Fault::of)?;
                self.file_as_read(msg, folder).await.map_err(Fault::of)?;
                e = self.journal.filed(e.row, folder).await.map_err(Fault::of)?;
            }
            Ok(e.clone())
        }
        .await;
        let (e, pending) = match step {
            Ok(e) => (e, None),
            Err(f) => {
                // A fault after the refusal (the report or the move failed) counts too.
                if e.state != State::Seen {
                    self.journal.attempt_failed(e.row, &f.message).await?;
                }
                log::warn!(
                    "mail item {} (journal row {}) could not be read or finished, left pending in state {}: {}",
                    crate::text::printable(&msg.id),
                    e.row,
                    e.state.as_str(),
                    f.message
                );
                self.metrics.fault(f.service);
                (self.journal.get(e.row).await?.unwrap_or(e), Some(f))
            }
        };
        let p = Processed {
            row: Some(e.row),
            message_id: None,
            state: Some(e.state),
            outcome: e.outcome.clone(),
            reason_code: e.reason_code.clone(),
            reason: e.reason.clone(),
            request_id: None,
            pending: pending.as_ref().map(|f| f.message.clone()),
            confirmers: Vec::new(),
            attempts: e.attempts,
            dry_run: false,
            exit: pending.as_ref().map(|f| f.exit).unwrap_or(Exit::Ok),
            retry_in: None,
        };
        Audit {
            event: if p.pending.is_some() {
                "mail_pending"
            } else {
                "mail_processed"
            },
            journal_row: e.row,
            message_id: None,
            forwarder: None,
            request_id: None,
            safe: None,
            requester: None,
            level: None,
            account: None,
            group: None,
            outcome: p.outcome.clone().unwrap_or_else(|| "pending".into()),
            reason_code: p.reason_code.clone(),
            reason: p.reason.clone().or_else(|| p.pending.clone()),
            dry_run: false,
        }
        .emit();
        if p.pending.is_none() {
            self.metrics.mail(
                p.outcome.as_deref().unwrap_or("unknown"),
                p.reason_code.as_deref(),
            );
        }
        Ok(p)
    }
}

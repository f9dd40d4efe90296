//! `notified` to `filed`: the mail moved to its folder (never deleted), and second copies of a
//! filed mail.

use super::*;

impl Pipeline {
    /// A mail item the journal still has open is gone from the folder: when its row was being
    /// filed (the move was sent, then the watcher was interrupted), the move happened; the row
    /// is closed. Any other row is left as it is (someone moved the mail away mid-way; it is
    /// processed again if it comes back).
    pub(super) async fn moved_before_interruption(&self, item: &str) -> Result<()> {
        let Some(e) = self.journal.unfinished_by_item(item).await? else {
            return Ok(());
        };
        if e.state != State::Notified {
            return Ok(());
        }
        if let Some(folder) = self.journal.get_value(&format!("filing:{}", e.row)).await? {
            self.journal.filed(e.row, &folder).await?;
            log::info!(
                "mail {} (journal row {}) left the folder after its move into {folder} was sent, before an interruption; row closed",
                e.message_id.as_deref().unwrap_or("?"),
                e.row
            );
        }
        Ok(())
    }

    /// `notified`: file the mail (never delete it), then `filed`. The folder is recorded before
    /// the move, so that a mail moved just before an interruption is recognised afterwards.
    pub(super) async fn file(&self, w: &Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        let folder = if matches!(e.outcome.as_deref(), Some("confirmed" | "rejected")) {
            &self.processed_folder
        } else {
            &self.refused_folder
        };
        self.journal
            .set_value(&format!("filing:{}", e.row), folder)
            .await
            .map_err(Fault::of)?;
        self.gate("the mail's move")?;
        self.file_as_read(&w.fetched.reference, folder)
            .await
            .map_err(Fault::of)?;
        self.journal.filed(e.row, folder).await.map_err(Fault::of)
    }

    /// Mark the mail read, then file it. Marking is best effort: a failure leaves the filed
    /// mail unread, which harms nothing (the watcher never reads the filing folders).
    pub(super) async fn file_as_read(
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
    pub(super) async fn duplicate(&self, e: Entry, w: &mut Work<'_>) -> Result<Processed> {
        let kv = format!("duplicate_replied:{}", w.fetched.reference.id);
        let pending = async {
            if self.journal.get_value(&kv).await.map_err(Fault::of)?.is_none() {
                if self.notifier.enabled()
                    && self.unanswered(w, &e).is_none()
                    && let Some(to) = self.reply_to(w, &e)
                    && !self.silent(w, &e).await
                {
                    let mut values = self.values(w, &e);
                    values.insert("reason_code", codes::ALREADY_PROCESSED.into());
                    let approved = e.outcome.as_deref() == Some("confirmed");
                    let rid = e.request_id.as_deref().unwrap_or("(unknown)");
                    let level = e
                        .level
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "(unknown)".into());
                    let reason = if approved {
                        format!(
                            "An earlier copy of this mail (journal row {}) approved request {rid} at level {level} on your behalf; it stays approved.",
                            e.row,
                        )
                    } else if e.outcome.as_deref() == Some("rejected") {
                        format!(
                            "An earlier copy of this mail (journal row {}) rejected request {rid} at level {level} on your behalf; it stays rejected and nothing more was done.",
                            e.row,
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
                self.journal.set_value(&kv, "replied").await.map_err(Fault::of)?;
            }
            let folder = if matches!(e.outcome.as_deref(), Some("confirmed" | "rejected")) {
                &self.processed_folder
            } else {
                &self.refused_folder
            };
            self.gate("the mail's move")?;
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
}

//! `seen` to `decided` to `confirmed`: record the decision, then confirm (or, for a reject by
//! mail, reject) with the level's account.

use super::*;

impl Pipeline {
    /// `seen`: decide, and on approval record the decision and confirm.
    pub(super) async fn seen(&self, w: &mut Work<'_>, e: &Entry) -> Result<Entry, Fault> {
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
                .await
                .map_err(Fault::of),
            Verdict::Approve {
                request_id,
                level,
                forwarder,
                identities,
                reject,
            } => {
                let marker = hex::encode(rand::random::<[u8; 6]>());
                let e = if reject.is_some() {
                    self.journal
                        .decided_to_reject(
                            e.row,
                            &request_id,
                            level,
                            &forwarder,
                            &marker,
                            &identities,
                        )
                        .await
                } else {
                    self.journal
                        .decided_for(e.row, &request_id, level, &forwarder, &marker, &identities)
                        .await
                }
                .map_err(Fault::of)?;
                self.confirm(w, &e).await
            }
        }
    }

    /// Send the confirm (or the reject) of a `decided` row whose absence in PVWA is known.
    pub(super) async fn confirm(&self, w: &mut Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        if self.journal.is_reject(e.row).await.map_err(Fault::of)? {
            return self.reject(w, e).await;
        }
        let (Some(rid), Some(level), Some(fw), Some(marker)) =
            (&e.request_id, e.level, &e.forwarder, &e.marker)
        else {
            return Err(Fault {
                message: format!("journal row {} is decided without its decision", e.row),
                exit: Exit::Software,
                service: "",
                deferred: None,
            });
        };
        let role = AccountRole::for_level(level).ok_or_else(|| Fault {
            message: format!("level {level} has no account"),
            exit: Exit::Software,
            service: "",
            deferred: None,
        })?;
        let reason: String = self
            .cfg
            .reason_template
            .replace("{forwarder}", &notify::one_line(fw, 254))
            .replace("{marker}", marker)
            .chars()
            .take(crate::pvwa::MAX_REASON)
            .collect();
        self.gate("the PVWA confirm")?;
        match self
            .pvwa(role, async |s: &Session| s.confirm(rid, &reason).await)
            .await
        {
            Ok(()) => {
                let done = self
                    .journal
                    .confirmed(e.row, &format!("confirmed by {}", self.account(level)))
                    .await
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
                    .await
                    .map_err(Fault::of)
            }
        }
    }

    /// Send the reject of a `decided` reject row whose absence in PVWA is known, with the
    /// reason "Rejected on behalf of <forwarder> by mail: <their reason> [ref <marker>]" (one
    /// bounded line; the forwarder's reason is read from the mail again, the same each time).
    pub(super) async fn reject(&self, w: &mut Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        let (Some(rid), Some(level), Some(fw), Some(marker)) =
            (&e.request_id, e.level, &e.forwarder, &e.marker)
        else {
            return Err(Fault {
                message: format!("journal row {} is decided without its decision", e.row),
                exit: Exit::Software,
                service: "",
                deferred: None,
            });
        };
        let role = AccountRole::for_level(level).ok_or_else(|| Fault {
            message: format!("level {level} has no account"),
            exit: Exit::Software,
            service: "",
            deferred: None,
        })?;
        let theirs = match w.notice(&self.notice).await.outcome.as_ref() {
            Ok(n) => match &n.decision.decision {
                notice::Decision::Reject { reason } => reason.clone(),
                notice::Decision::Approve => String::new(),
            },
            Err(_) => String::new(),
        };
        let reason = reject_reason(fw, &theirs, marker);
        self.gate("the PVWA reject")?;
        match self
            .pvwa(role, async |s: &Session| s.reject(rid, &reason).await)
            .await
        {
            Ok(()) => {
                let done = self
                    .journal
                    .rejected(e.row, &format!("rejected by {}", self.account(level)))
                    .await
                    .map_err(Fault::of)?;
                self.metrics.reject(level);
                self.reread(w, rid).await;
                Ok(done)
            }
            Err(err) if err.is_transient() => Err(Fault::of(err)),
            Err(err) => {
                // A final refusal by PVWA: say who acted on the request and when.
                self.reread(w, rid).await;
                self.journal
                    .refused(
                        e.row,
                        codes::REJECT_FAILED,
                        &format!("PVWA refused the rejection: {err}"),
                        Some(rid),
                        Some(fw),
                    )
                    .await
                    .map_err(Fault::of)
            }
        }
    }

    /// Read the request again for the reply (best effort: on a fault the reply says the status
    /// could not be read rather than show a stale one).
    pub(super) async fn reread(&self, w: &mut Work<'_>, rid: &str) {
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
}

/// The PVWA reason of a reject by mail: "Rejected on behalf of <forwarder> by mail: <their
/// reason> [ref <marker>]", one line, within PVWA's bound with the marker always kept.
pub(super) fn reject_reason(forwarder: &str, theirs: &str, marker: &str) -> String {
    let fw = notify::one_line(forwarder, 254);
    let theirs = notify::one_line(theirs, crate::notice::decision::MAX_REASON_CHARS);
    let tail = format!(" [ref {marker}]");
    let head = if theirs.is_empty() {
        format!("Rejected on behalf of {fw} by mail")
    } else {
        format!("Rejected on behalf of {fw} by mail: {theirs}")
    };
    let room = crate::pvwa::MAX_REASON.saturating_sub(tail.chars().count());
    let head: String = head.chars().take(room).collect();
    format!("{head}{tail}")
}

#[cfg(test)]
mod tests {
    use super::reject_reason;

    #[test]
    fn the_reject_reason_is_one_bounded_line_with_its_marker() {
        assert_eq!(
            reject_reason("bob@example.test", "no ticket", "abc123"),
            "Rejected on behalf of bob@example.test by mail: no ticket [ref abc123]"
        );
        assert_eq!(
            reject_reason("bob@example.test", "", "abc123"),
            "Rejected on behalf of bob@example.test by mail [ref abc123]"
        );
        let long = reject_reason(&"f".repeat(5000), &"x\ny".repeat(5000), "abc123");
        assert!(
            long.chars().count() <= crate::pvwa::MAX_REASON,
            "{}",
            long.len()
        );
        assert!(long.ends_with(" [ref abc123]"));
        assert!(!long.contains('\n'));
    }
}

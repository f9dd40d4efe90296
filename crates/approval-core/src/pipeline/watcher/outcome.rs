//! A `decided` row whose confirm outcome is unknown (a crash, a lost answer): settled by reading
//! the request's confirmers, never by a blind second confirm.

use super::*;

impl Pipeline {
    /// `decided` found at the start of a call: resolve from PVWA's confirmers, never blind.
    pub(super) async fn resolve(&self, w: &mut Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        let (Some(rid), Some(level), Some(marker)) =
            (e.request_id.clone(), e.level, e.marker.clone())
        else {
            return Err(Fault {
                message: format!("journal row {} is decided without its decision", e.row),
                exit: Exit::Software,
                service: "",
                deferred: None,
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
                    .refused(e.row, codes::CONFIRM_FAILED, &format!("The request is gone from PVWA ({err}); it was not confirmed by this mail."), Some(&rid), e.forwarder.as_deref()).await
                    .map_err(Fault::of);
            }
            Err(err) => return Err(Fault::of(err)),
        };
        w.request = Some(r.clone());
        let reject = self.journal.is_reject(e.row).await.map_err(Fault::of)?;
        let ours = r
            .confirmers
            .iter()
            .any(|c| c.acted() && c.reason.contains(marker.as_str()));
        if ours && reject {
            return self
                .journal
                .rejected(
                    e.row,
                    &format!("found our marker {marker} among those who acted (a reject)"),
                )
                .await
                .map_err(Fault::of);
        }
        if ours {
            return self
                .journal
                .confirmed(
                    e.row,
                    &format!("found our marker {marker} among the confirmers"),
                )
                .await
                .map_err(Fault::of);
        }
        let account = self.account(level);
        let we_acted = policy::acted_at_current_level(&r, &account);
        let now = chrono::Utc::now().timestamp();
        // The decision's own definition of "still waiting" (Status included).
        let waiting = policy::waiting_at(&r, level, now);
        if waiting && !we_acted {
            return self.decide_again(w, e, &rid, level).await;
        }
        let (code, done) = if reject {
            (codes::REJECT_FAILED, "rejected")
        } else {
            (codes::CONFIRM_FAILED, "confirmed")
        };
        self.journal
            .refused(
                e.row,
                code,
                &format!(
                    "Request {rid} was not {done} by this mail: it is no longer waiting for the level-{level} confirmation ({}).",
                    if r.status_title.is_empty() { format!("status {}", r.status) } else { r.status_title.clone() }
                ),
                Some(&rid),
                e.forwarder.as_deref(),
            ).await
            .map_err(Fault::of)
    }

    /// A `decided` row whose confirm is known not to have arrived: every attempt re-reads the
    /// request and re-runs the whole decision (sender, notice, directory, policy, journal,
    /// portal rights) before the confirm, so that what changed in between (a portal confirm by
    /// the forwarder, a directory change) refuses it. The confirm goes out only for the same
    /// request, level and forwarder as decided, with the recorded marker.
    pub(super) async fn decide_again(
        &self,
        w: &mut Work<'_>,
        e: &Entry,
        rid: &str,
        level: u8,
    ) -> Result<Entry, Fault> {
        // `decide` takes the request's lock itself.
        w._guard = None;
        let v = self.decide(w).await?;
        let was_reject = self.journal.is_reject(e.row).await.map_err(Fault::of)?;
        match v {
            Verdict::Approve {
                request_id,
                level: l,
                forwarder,
                reject,
                ..
            } if request_id == rid
                && l == level
                && reject.is_some() == was_reject
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
                    if was_reject { codes::REJECT_FAILED } else { codes::CONFIRM_FAILED },
                    &format!(
                        "Request {rid} was not acted on by this mail: it was decided for level {level}, and deciding again gave another answer (level {l})."
                    ),
                    Some(rid),
                    e.forwarder.as_deref(),
                ).await
                .map_err(Fault::of),
            Verdict::Refuse { code, reason, .. } => self
                .journal
                .refused(e.row, &code, &reason, Some(rid), e.forwarder.as_deref()).await
                .map_err(Fault::of),
        }
    }
}

//! `confirmed`/`refused` to `notified`: the answer to the forwarder (or the PAM team), sent at most
//! once.

use super::*;

impl Pipeline {
    /// Where a reply may go: the verified forwarder only. A mail whose sender is not authentic
    /// gets no reply (its claimed sender may be a colleague an attacker wants to mail); the PAM
    /// team gets a report instead (`report_unauthentic`).
    pub(super) fn reply_to(&self, w: &Work<'_>, e: &Entry) -> Option<String> {
        if let Some(f) = &e.forwarder {
            return Some(f.clone());
        }
        self.authenticate(w.fetched).ok()
    }

    pub(super) async fn silent(&self, w: &mut Work<'_>, e: &Entry) -> bool {
        match &w.notice(&self.notice).await.outcome {
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
    pub(super) fn values(&self, w: &mut Work<'_>, e: &Entry) -> Values {
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
        // What the forwarder asked for, in the refused and failed texts' words.
        let rejects = exam
            .as_ref()
            .is_some_and(|n| n.decision.decision.is_reject());
        let (verb, done, noun) = if rejects {
            ("reject", "rejected", "rejection")
        } else {
            ("approve", "approved", "approval")
        };
        v.insert("verb", verb.into());
        v.insert("done", done.into());
        v.insert("noun", noun.into());
        // The forwarder's reason of a reject, as read from their own text (quoted as data).
        v.insert(
            "reject_reason",
            match exam.as_ref().map(|n| &n.decision.decision) {
                Some(notice::Decision::Reject { reason }) if !reason.is_empty() => {
                    quoted(reason.clone(), notice::decision::MAX_REASON_CHARS)
                }
                _ => "(none given)".into(),
            },
        );
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
    pub(super) async fn reply(&self, w: &mut Work<'_>, e: &Entry) -> Result<Entry, Fault> {
        let outcome = match (e.outcome.as_deref(), e.reason_code.as_deref()) {
            (Some("confirmed"), _) => Outcome::Approved,
            (Some("rejected"), _) => Outcome::Rejected,
            (_, Some(codes::CONFIRM_FAILED | codes::REJECT_FAILED | codes::GAVE_UP)) => {
                Outcome::Failed
            }
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
        } else if self.notifier.enabled() && !self.silent(w, e).await {
            // Held back by the sending pace: owed, before any work for it (`mailbox::pace`).
            if let Some(wait) = self.mailbox.send_wait() {
                return Err(Fault::deferred(wait));
            }
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
                                Outcome::Rejected => "rejected",
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
        self.journal.notified(e.row).await.map_err(Fault::of)
    }

    /// Why a refused mail gets no reply but a report to the PAM team, if it does: its sender
    /// is not verified (the claimed sender may be a colleague an attacker wants to mail), or a
    /// mailbox rule forwarded it (answering a rule mails its owner about what they did not do,
    /// and can loop).
    pub(super) fn unanswered(&self, w: &Work<'_>, e: &Entry) -> Option<&'static str> {
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
    pub(super) async fn report_unanswered(&self, e: &Entry, why: &str) -> Result<(), Fault> {
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

    /// Send `reply` at most once for `key`, across crashes too: the attempt is recorded in the
    /// journal before the mail leaves, and the mail carries `key`; when a recorded attempt is
    /// found (a crash or an unknown outcome between sending and recording it), the mailbox is
    /// asked whether the mail was sent before it is sent again.
    ///
    /// A send the mailbox's pace or the server's quota holds back is a deferral
    /// ([`Fault::deferred`]): asked first, so a held-back reply records no attempt.
    pub(super) async fn send_once(&self, reply: notify::Reply, key: String) -> Result<(), Fault> {
        if let Some(wait) = self.mailbox.send_wait() {
            return Err(Fault::deferred(wait));
        }
        let kv = format!("send_attempt:{key}");
        if self
            .journal
            .get_value(&kv)
            .await
            .map_err(Fault::of)?
            .is_some()
            && self.mailbox.was_sent(&key).await.map_err(Fault::of)?
        {
            log::info!("reply {key} was sent before an interruption; not sent again");
            return Ok(());
        }
        self.journal
            .set_value(&kv, &chrono::Utc::now().to_rfc3339())
            .await
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
        self.gate("the mail's send")?;
        self.mailbox.send(&mail).await.map_err(Fault::of_mailbox)
    }
}

/// Who acted on the request and when, one line each.
pub(super) fn confirmers_text(r: &Request) -> String {
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

//! The record of one call: the [`Processed`] result a caller gets, and the audit line every
//! decision writes (`AUDIT …`, docs/watcher.md). Used by every step that ends a call.

use super::*;

impl Pipeline {
    pub(super) fn result(
        &self,
        e: &Entry,
        w: &Work<'_>,
        pending: Option<String>,
        exit: Exit,
    ) -> Processed {
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
            retry_in: None,
        }
    }

    pub(super) fn audit(&self, p: &Processed, w: &Work<'_>) {
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
}

//! `--dry-run`: decide and report; no journal row, no confirm, no reply, no filing.

use super::*;

impl Pipeline {
    /// `--dry-run`: decide and report; no journal row, no confirm, no reply, no filing.
    pub(super) async fn dry(&self, w: &mut Work<'_>) -> Result<Processed> {
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
            retry_in: None,
        };
        match self.decide(w).await {
            Ok(Verdict::Approve {
                request_id, reject, ..
            }) => {
                p.outcome = Some(
                    if reject.is_some() {
                        "would_reject"
                    } else {
                        "would_confirm"
                    }
                    .into(),
                );
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

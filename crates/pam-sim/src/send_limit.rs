//! Exchange's per-mailbox sending rate, as the Graph and EWS stand-ins enforce it: at most
//! `messages` sends per `window_ms` from one mailbox (Exchange Online: 30 a minute); a send
//! beyond it is refused, not carried out, and says when the next one may go. Off unless a
//! scenario or a test sets it; the window is configurable so tests run in seconds.
//! (ASSUMPTIONS.md G30–G32: the answers' shapes.)

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// The code a send refused for the sender's submission quota carries (EWS `ResponseCode`,
/// Graph `error.code`).
pub const QUOTA_CODE: &str = "ErrorSubmissionQuotaExceeded";
/// Its text (the EWS schema's description of the code).
pub const QUOTA_TEXT: &str = "The message couldn't be sent because the sender's submission quota was exceeded. Please try again later.";

/// The limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendLimit {
    /// Sends allowed per window from one mailbox.
    pub messages: u32,
    /// The window, in milliseconds (Exchange Online: 60,000).
    #[serde(default = "default_window")]
    pub window_ms: u64,
}

fn default_window() -> u64 {
    60_000
}

/// The sends of each mailbox in the window, and how many were refused.
#[derive(Debug, Default)]
pub struct SendRate {
    limit: Option<SendLimit>,
    sent: HashMap<String, VecDeque<i64>>,
    /// Sends refused for the rate.
    pub refused: u64,
}

impl SendRate {
    pub fn new(limit: Option<SendLimit>) -> SendRate {
        SendRate {
            limit,
            ..SendRate::default()
        }
    }

    /// Set (or lift) the limit; counting starts anew (sends before it do not count).
    pub fn set(&mut self, limit: Option<SendLimit>) {
        self.limit = limit;
        self.sent.clear();
    }

    /// May `mailbox` send at `now_ms`? `Err(ms)`: refused (counted), the next send may go in
    /// `ms` milliseconds.
    pub fn check(&mut self, mailbox: &str, now_ms: i64) -> Result<(), u64> {
        let Some(l) = self.limit else {
            return Ok(());
        };
        let window = l.window_ms as i64;
        let q = self.sent.entry(mailbox.to_ascii_lowercase()).or_default();
        while q.front().is_some_and(|t| now_ms - t >= window) {
            q.pop_front();
        }
        if q.len() < l.messages as usize {
            return Ok(());
        }
        self.refused += 1;
        let oldest = q.front().copied().unwrap_or(now_ms);
        Err((oldest + window - now_ms).max(1) as u64)
    }

    /// `mailbox` sent a mail at `now_ms`.
    pub fn record(&mut self, mailbox: &str, now_ms: i64) {
        self.sent
            .entry(mailbox.to_ascii_lowercase())
            .or_default()
            .push_back(now_ms);
    }
}

/// `Retry-After` in whole seconds for a wait of `ms` (at least 1).
pub fn retry_after_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_per_window_and_the_wait_until_the_oldest_leaves_it() {
        let mut r = SendRate::new(Some(SendLimit {
            messages: 2,
            window_ms: 1000,
        }));
        for t in [0, 100] {
            r.check("Bot@x", t).expect("within");
            r.record("Bot@x", t);
        }
        assert_eq!(r.check("bot@x", 300), Err(700));
        assert_eq!(r.check("other@x", 300), Ok(()), "per mailbox");
        assert_eq!(r.check("bot@x", 1000), Ok(()));
        assert_eq!(r.refused, 1);
        r.set(None);
        assert_eq!(r.check("bot@x", 1000), Ok(()));
        // A new limit counts from now.
        r.record("bot@x", 1000);
        r.set(Some(SendLimit {
            messages: 1,
            window_ms: 1000,
        }));
        assert_eq!(r.check("bot@x", 1001), Ok(()));
        assert_eq!(retry_after_secs(700), 1);
        assert_eq!(retry_after_secs(1001), 2);
    }
}

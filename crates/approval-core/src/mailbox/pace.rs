//! Pacing of outgoing mail: one limiter per mailbox, shared by every mail the watcher sends
//! (replies to forwarders, reports to the PAM team), that keeps sends within the server's rate
//! (`[mailbox] max_sends_per_minute`; Exchange Online allows 30 messages a minute per mailbox)
//! and honours the delay a server asks for after refusing a send for its quota.
//!
//! The limiter never waits: [`Paced::send`] either sends now or answers
//! [`MailboxError::SendDeferred`] with the time until a send may go, and the caller keeps the
//! reply owed (its journal state) and tries again then. The daily recipient count is watched
//! too: a warning once the mailbox nears `daily_recipient_budget` (Exchange Online: 10,000
//! recipients a day), nothing is held back for it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{
    BoxFuture, FetchedMessage, FolderRights, Mailbox, MailboxError, MessageRef, OutgoingMail,
    Probe, SyncStateStore, WaitOutcome,
};

/// The EWS (and Exchange) response code of a send refused for the sender's submission quota.
pub const SUBMISSION_QUOTA_EXCEEDED: &str = "ErrorSubmissionQuotaExceeded";

/// The period the daily recipient budget counts over (Exchange Online: a rolling 24 hours).
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The warning is given once the budget is this far used (in percent).
const WARN_PERCENT: u64 = 80;

/// The limits of one mailbox's sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceLimits {
    /// Sends allowed per `window`; 0: not paced (a server's quota answer is still honoured).
    pub max_sends: u32,
    /// The period `max_sends` counts over (one minute outside tests).
    pub window: Duration,
    /// Recipients a day before a warning is logged; 0: no warning.
    pub daily_recipients: u32,
    /// The longest delay honoured from a server's quota answer.
    pub max_server_delay: Duration,
}

/// What became of a send the limiter let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Sent, to this many recipients.
    Done(u32),
    /// Refused by the server for its rate or quota: not sent; no send before `Duration`.
    Refused(Duration),
    /// Failed otherwise (it may or may not have gone out): counted as sent.
    Unsure,
}

#[derive(Debug, Default)]
struct State {
    /// Sends in the window: (ticket, when). A finished send's time is its end, so the server,
    /// which counts a send when it receives it, never sees more than the limit in its window.
    sends: VecDeque<(u64, Instant)>,
    next_ticket: u64,
    /// No send before this (a server's quota answer).
    server_until: Option<Instant>,
    /// Recipients sent to in the last day: (when, how many), and their sum.
    recipients: VecDeque<(Instant, u32)>,
    recipients_sum: u64,
    /// The budget warning has been given and the count has not dropped below it since.
    warned: bool,
    /// The next turn to hand out to a held-back send ([`Pacer::turn_at`]).
    next_turn: Option<Instant>,
}

/// The limiter (pure: every call takes the time, so tests need no clock).
#[derive(Debug)]
pub struct Pacer {
    limits: PaceLimits,
    state: Mutex<State>,
}

impl Pacer {
    pub fn new(limits: PaceLimits) -> Pacer {
        Pacer {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    pub fn limits(&self) -> PaceLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long until a send may go at `now` (`None`: now).
    pub fn wait_at(&self, now: Instant) -> Option<Duration> {
        let mut s = self.lock();
        self.wait_locked(&mut s, now)
    }

    fn wait_locked(&self, s: &mut State, now: Instant) -> Option<Duration> {
        if let Some(until) = s.server_until {
            if until > now {
                return Some(until - now);
            }
            s.server_until = None;
        }
        if self.limits.max_sends == 0 {
            return None;
        }
        let window = self.limits.window;
        s.sends
            .retain(|(_, t)| now.saturating_duration_since(*t) < window);
        if s.sends.len() < self.limits.max_sends as usize {
            return None;
        }
        // The earliest time in the window, which may not be the front (a send that ended after
        // a later one started).
        let oldest = s.sends.iter().map(|(_, t)| *t).min()?;
        Some(
            (oldest + window)
                .saturating_duration_since(now)
                .max(Duration::from_millis(1)),
        )
    }

    /// For a send held back at `now`: how long until its turn (`None`: it may go now). Turns
    /// are handed out a send's share of the window apart (`window / max_sends`), so a queue of
    /// held-back replies comes back one by one at the pace, not all at once whenever a place
    /// frees (each return costs a read of the mail from the server).
    pub fn turn_at(&self, now: Instant) -> Option<Duration> {
        let mut s = self.lock();
        let wait = self.wait_locked(&mut s, now)?;
        let spacing = match self.limits.max_sends {
            0 => Duration::ZERO,
            n => self.limits.window / n,
        };
        let earliest = now + wait;
        let turn = s.next_turn.filter(|t| *t > earliest).unwrap_or(earliest);
        s.next_turn = Some(turn + spacing);
        Some(turn - now)
    }

    /// Take a place for one send at `now`, or say how long to wait.
    pub fn reserve_at(&self, now: Instant) -> Result<u64, Duration> {
        let mut s = self.lock();
        if let Some(wait) = self.wait_locked(&mut s, now) {
            return Err(wait);
        }
        s.next_ticket += 1;
        let t = s.next_ticket;
        if self.limits.max_sends > 0 {
            s.sends.push_back((t, now));
        }
        Ok(t)
    }

    /// The send of `ticket` ended at `now` as `how`.
    pub fn finished_at(&self, ticket: u64, now: Instant, how: Sent) {
        let mut s = self.lock();
        let pos = s.sends.iter().position(|(t, _)| *t == ticket);
        match how {
            Sent::Refused(delay) => {
                if let Some(i) = pos {
                    s.sends.remove(i);
                }
                let delay = delay.min(self.limits.max_server_delay);
                let until = now + delay;
                s.server_until = Some(s.server_until.map_or(until, |u| u.max(until)));
            }
            Sent::Done(_) | Sent::Unsure => {
                if let Some(i) = pos
                    && let Some((_, t)) = s.sends.get_mut(i)
                {
                    *t = now;
                }
            }
        }
        if let Sent::Done(n) = how {
            self.count_recipients(&mut s, now, n);
        }
    }

    /// Recipients in the last day; the warning when the budget nears.
    fn count_recipients(&self, s: &mut State, now: Instant, n: u32) {
        s.recipients.push_back((now, n));
        s.recipients_sum += u64::from(n);
        while let Some((t, k)) = s.recipients.front().copied()
            && now.saturating_duration_since(t) >= DAY
        {
            s.recipients.pop_front();
            s.recipients_sum -= u64::from(k);
        }
        let budget = u64::from(self.limits.daily_recipients);
        if budget == 0 {
            return;
        }
        let near = s.recipients_sum * 100 >= budget * WARN_PERCENT;
        if near && !s.warned {
            log::warn!(
                "the approval mailbox has sent to {} recipients in the last 24 hours, near its budget of {budget} a day (mailbox.daily_recipient_budget; Exchange Online refuses sends beyond 10,000): look for a flood of mail to the watched folder",
                s.recipients_sum
            );
        }
        s.warned = near;
    }

    /// Recipients sent to in the last day (as of the last send).
    pub fn recipients_today(&self) -> u64 {
        self.lock().recipients_sum
    }
}

/// A mailbox whose sends go through a [`Pacer`]; everything else passes through.
pub struct Paced {
    inner: Arc<dyn Mailbox>,
    pacer: Pacer,
}

impl Paced {
    pub fn new(inner: Arc<dyn Mailbox>, limits: PaceLimits) -> Paced {
        Paced {
            inner,
            pacer: Pacer::new(limits),
        }
    }

    /// What a refused send means for the pacer: the server's quota answer (its delay, or the
    /// window when it named none), or another failure.
    fn outcome(&self, r: &Result<(), MailboxError>, recipients: u32) -> Sent {
        match r {
            Ok(()) => Sent::Done(recipients),
            Err(MailboxError::SendDeferred {
                by_server: true,
                wait,
                ..
            }) => Sent::Refused(*wait),
            Err(_) => Sent::Unsure,
        }
    }
}

/// A send refused by the server for its quota, whatever the backend said: Graph's 429 on the
/// send (already [`MailboxError::SendDeferred`]), an Exchange `ErrorSubmissionQuotaExceeded`
/// (EWS, or Graph passing Exchange's code through).
fn as_deferral(e: MailboxError, window: Duration) -> MailboxError {
    match e {
        MailboxError::Ews { op, code, text } if code == SUBMISSION_QUOTA_EXCEEDED => {
            MailboxError::SendDeferred {
                wait: window,
                by_server: true,
                detail: format!(
                    "{op}: {code}{}",
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!(": {text}")
                    }
                ),
            }
        }
        other => other,
    }
}

impl Mailbox for Paced {
    fn list_new(&self) -> BoxFuture<'_, Result<Vec<MessageRef>, MailboxError>> {
        self.inner.list_new()
    }
    fn fetch<'a>(
        &'a self,
        msg: &'a MessageRef,
    ) -> BoxFuture<'a, Result<FetchedMessage, MailboxError>> {
        self.inner.fetch(msg)
    }
    fn mark_read<'a>(
        &'a self,
        msg: &'a MessageRef,
    ) -> BoxFuture<'a, Result<MessageRef, MailboxError>> {
        self.inner.mark_read(msg)
    }
    fn file<'a>(
        &'a self,
        msg: &'a MessageRef,
        folder: &'a str,
    ) -> BoxFuture<'a, Result<MessageRef, MailboxError>> {
        self.inner.file(msg, folder)
    }
    fn send<'a>(&'a self, mail: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailboxError>> {
        Box::pin(async move {
            let limits = self.pacer.limits();
            let ticket = self.pacer.reserve_at(Instant::now()).map_err(|wait| {
                MailboxError::SendDeferred {
                    wait,
                    by_server: false,
                    detail: format!(
                        "at most {} mails per {} s (mailbox.max_sends_per_minute)",
                        limits.max_sends,
                        limits.window.as_secs()
                    ),
                }
            })?;
            let r = self
                .inner
                .send(mail)
                .await
                .map_err(|e| as_deferral(e, limits.window));
            let n = u32::try_from(mail.to.len() + mail.cc.len()).unwrap_or(u32::MAX);
            self.pacer
                .finished_at(ticket, Instant::now(), self.outcome(&r, n));
            r
        })
    }
    fn send_wait(&self) -> Option<Duration> {
        self.pacer.wait_at(Instant::now())
    }
    fn send_turn(&self) -> Option<Duration> {
        self.pacer.turn_at(Instant::now())
    }
    fn was_sent<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, MailboxError>> {
        self.inner.was_sent(key)
    }
    fn wait_for_new(&self, max: Duration) -> BoxFuture<'_, Result<WaitOutcome, MailboxError>> {
        self.inner.wait_for_new(max)
    }
    fn stop_watching(&self) -> BoxFuture<'_, ()> {
        self.inner.stop_watching()
    }
    fn catch_up<'a>(
        &'a self,
        state: &'a dyn SyncStateStore,
    ) -> BoxFuture<'a, Result<Vec<MessageRef>, MailboxError>> {
        self.inner.catch_up(state)
    }
    fn probe<'a>(&'a self, folders: &'a [&'a str]) -> BoxFuture<'a, Result<Probe, MailboxError>> {
        self.inner.probe(folders)
    }
    fn folder_rights(&self) -> BoxFuture<'_, FolderRights> {
        self.inner.folder_rights()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(max: u32, window_ms: u64, daily: u32) -> Pacer {
        Pacer::new(PaceLimits {
            max_sends: max,
            window: Duration::from_millis(window_ms),
            daily_recipients: daily,
            max_server_delay: Duration::from_secs(300),
        })
    }

    #[test]
    fn at_most_the_limit_goes_out_in_any_window() {
        let p = pacer(3, 1000, 0);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        for i in 0..3 {
            let t = p.reserve_at(ms(i * 10)).expect("within the limit");
            p.finished_at(t, ms(i * 10 + 5), Sent::Done(1));
        }
        // The fourth waits until the first send's end (5 ms) is a window old.
        let wait = p.reserve_at(ms(100)).expect_err("over the limit");
        assert_eq!(wait, Duration::from_millis(905));
        assert_eq!(p.wait_at(ms(100)), Some(Duration::from_millis(905)));
        assert_eq!(p.wait_at(ms(1005)), None);
        assert!(p.reserve_at(ms(1005)).is_ok());
        // Now the window holds the sends that ended at 15 and 25 ms, and the new one.
        assert!(p.reserve_at(ms(1006)).is_err());
        assert!(p.reserve_at(ms(1015)).is_ok());
    }

    #[test]
    fn a_send_counts_from_its_end_and_in_flight_sends_count_too() {
        let p = pacer(1, 1000, 0);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let a = p.reserve_at(ms(0)).expect("first");
        assert!(
            p.reserve_at(ms(1)).is_err(),
            "one in flight fills the window"
        );
        // It took 400 ms: its place frees a window after its end, not its start.
        p.finished_at(a, ms(400), Sent::Done(1));
        assert_eq!(p.wait_at(ms(1001)), Some(Duration::from_millis(399)));
        assert!(p.reserve_at(ms(1400)).is_ok());
    }

    #[test]
    fn a_server_refusal_frees_the_place_and_holds_every_send_for_its_delay() {
        let p = pacer(30, 60_000, 0);
        let t0 = Instant::now();
        let t = p.reserve_at(t0).expect("first");
        p.finished_at(t, t0, Sent::Refused(Duration::from_secs(7)));
        assert_eq!(
            p.wait_at(t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(5))
        );
        assert!(p.reserve_at(t0 + Duration::from_secs(7)).is_ok());
        // A server's delay is capped: a hostile or broken answer cannot stop replies for good.
        let t = p.reserve_at(t0 + Duration::from_secs(8)).expect("again");
        p.finished_at(
            t,
            t0 + Duration::from_secs(8),
            Sent::Refused(Duration::MAX / 2),
        );
        assert_eq!(
            p.wait_at(t0 + Duration::from_secs(8)),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn held_back_sends_get_turns_a_share_of_the_window_apart() {
        let p = pacer(2, 1000, 0);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(p.turn_at(t0), None, "a free place: no turn needed");
        for i in 0..2 {
            let t = p.reserve_at(ms(i)).expect("within");
            p.finished_at(t, ms(i), Sent::Done(1));
        }
        // Three replies held back at 10 ms: the first when the first place frees (1000 ms),
        // the next ones 500 ms (1000 / 2) apart, whatever the places say.
        assert_eq!(p.turn_at(ms(10)), Some(Duration::from_millis(990)));
        assert_eq!(p.turn_at(ms(10)), Some(Duration::from_millis(1490)));
        assert_eq!(p.turn_at(ms(20)), Some(Duration::from_millis(1980)));
        // Asking whether a send may go hands out no turn.
        assert_eq!(p.wait_at(ms(20)), Some(Duration::from_millis(980)));
        // Once the queue's turns are past, a new one starts from the next free place.
        let t = p.reserve_at(ms(1000)).expect("free");
        p.finished_at(t, ms(1000), Sent::Done(1));
        let t = p.reserve_at(ms(1001)).expect("free");
        p.finished_at(t, ms(1001), Sent::Done(1));
        assert_eq!(p.turn_at(ms(5000)), None);
    }

    #[test]
    fn without_a_limit_only_the_servers_delay_holds_sends() {
        let p = pacer(0, 60_000, 0);
        let t0 = Instant::now();
        for _ in 0..1000 {
            let t = p.reserve_at(t0).expect("unpaced");
            p.finished_at(t, t0, Sent::Done(1));
        }
        let t = p.reserve_at(t0).expect("unpaced");
        p.finished_at(t, t0, Sent::Refused(Duration::from_secs(1)));
        assert!(p.reserve_at(t0).is_err());
        assert!(p.reserve_at(t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn recipients_are_counted_over_a_rolling_day() {
        let p = pacer(0, 60_000, 10);
        let t0 = Instant::now();
        for i in 0..4 {
            let t = p.reserve_at(t0).expect("go");
            p.finished_at(t, t0 + Duration::from_secs(i), Sent::Done(2));
        }
        // A failed or refused send adds no recipient.
        let t = p.reserve_at(t0).expect("go");
        p.finished_at(t, t0, Sent::Unsure);
        assert_eq!(p.recipients_today(), 8);
        let t = p.reserve_at(t0).expect("go");
        p.finished_at(t, t0 + DAY + Duration::from_secs(2), Sent::Done(1));
        // The sends of seconds 0..=2 are a day old.
        assert_eq!(p.recipients_today(), 3);
    }

    #[test]
    fn the_exchange_quota_code_is_a_deferral() {
        let e = as_deferral(
            MailboxError::Ews {
                op: "CreateItem".into(),
                code: SUBMISSION_QUOTA_EXCEEDED.into(),
                text: "The message couldn't be sent because the sender's submission quota was exceeded.".into(),
            },
            Duration::from_secs(60),
        );
        assert!(
            matches!(e, MailboxError::SendDeferred { by_server: true, wait, .. } if wait == Duration::from_secs(60)),
            "{e}"
        );
        let other = as_deferral(
            MailboxError::Ews {
                op: "CreateItem".into(),
                code: "ErrorInvalidRecipients".into(),
                text: String::new(),
            },
            Duration::from_secs(60),
        );
        assert!(matches!(other, MailboxError::Ews { .. }), "{other}");
    }
}

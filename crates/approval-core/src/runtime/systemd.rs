//! What the watcher tells systemd under `Type=notify` (sd_notify(3)): `READY=1` once the start-up
//! catch-up has been listed and handed out, `STATUS=` lines an operator sees in
//! `systemctl status`, `WATCHDOG=1` while the main loop makes progress (`WatchdogSec=`), and
//! `STOPPING=1` when a signal asks it to stop. Outside systemd (`NOTIFY_SOCKET` unset) every call
//! does nothing.
//!
//! The watchdog is fed by a timer, but only while the loop has shown a sign of life (an
//! iteration, a mail dispatched, a pause for a fault) within the watchdog interval: a loop hung
//! for longer stops the pings, and systemd restarts the service. A long wait for mail does not
//! count as hung: the loop wakes at least every `watcher.poll_secs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Send states to the service manager; failures are logged once at debug level and ignored
/// (the watcher's work does not depend on them).
fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::debug!("systemd notification failed: {e}");
    }
}

/// `READY=1` with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A `STATUS=` line (one line; longer text is cut).
pub fn status(status: &str) {
    let line: String = status
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    send(&[NotifyState::Status(&line)]);
}

/// `STOPPING=1`: a signal asked the watcher to stop; it finishes the mails in flight.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: finishing the mails in flight"),
    ]);
}

/// The loop's sign of life, shared with the watchdog timer.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    started: Instant,
    /// Milliseconds since `started` of the last sign of life.
    last: Arc<AtomicU64>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            started: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Heartbeat {
    /// The loop is alive now.
    pub fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time since the last sign of life.
    pub fn since(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// The watchdog interval systemd asks for (`WATCHDOG_USEC` for this process), if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// Feed the watchdog every third of `interval` while `heartbeat` is younger than `interval`;
/// run on the watcher's runtime until the task is dropped or aborted.
pub async fn feed_watchdog(interval: Duration, heartbeat: Heartbeat) {
    let mut tick = tokio::time::interval(interval / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tick.tick().await;
        let quiet = heartbeat.since();
        if quiet < interval {
            send(&[NotifyState::Watchdog]);
            warned = false;
        } else if !warned {
            log::error!(
                "the watch loop has shown no sign of life for {} s: not feeding systemd's watchdog (it will restart the service)",
                quiet.as_secs()
            );
            warned = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_measures_the_quiet_time() {
        let h = Heartbeat::default();
        std::thread::sleep(Duration::from_millis(30));
        assert!(h.since() >= Duration::from_millis(30));
        h.beat();
        assert!(h.since() < Duration::from_millis(30));
        // Clones share the beat.
        let c = h.clone();
        std::thread::sleep(Duration::from_millis(20));
        c.beat();
        assert!(h.since() < Duration::from_millis(20));
    }
}

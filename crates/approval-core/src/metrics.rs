//! The watcher's metrics and health, served on an optional listener (`[metrics] listen`, off by
//! default): `/metrics` in the Prometheus/OpenMetrics text format, `/healthz` (the process
//! answers) and `/readyz` (the mailbox answered within `ready_within_secs`, and the last contact
//! with PVWA did not fail).
//!
//! Labels come from fixed sets only — an outcome, a refusal code, a level, a service name — never
//! an address, a request id or any text from a mail or a server: a scrape reveals how much
//! happened, not to whom.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use serde::Deserialize;

use crate::config::{ConfigError, Origin};

/// `[metrics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where to listen, e.g. `127.0.0.1:9464` (the default). Another address exposes the
    /// counters to that network: they hold no secret, but tell when approvals happen.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `/readyz` fails when the mailbox has not answered for this long.
    #[serde(default = "default_ready_within")]
    pub ready_within_secs: u64,
}

fn default_listen() -> String {
    "127.0.0.1:9464".into()
}
fn default_ready_within() -> u64 {
    120
}

impl MetricsConfig {
    /// The address to listen on; errors name the key.
    pub fn address(&self, origin: &Origin) -> Result<SocketAddr, ConfigError> {
        let a: SocketAddr = self.listen.trim().parse().map_err(|_| {
            origin.error(
                "metrics.listen",
                format!(
                    "`{}` is not an address and port such as 127.0.0.1:9464",
                    self.listen
                ),
            )
        })?;
        if self.ready_within_secs == 0 {
            return Err(origin.error("metrics.ready_within_secs", "must be at least 1"));
        }
        Ok(a)
    }
}

type Labels = Vec<(&'static str, String)>;

/// A label value from a fixed vocabulary: lower-case words and underscores, or `other`.
fn word(s: &str) -> String {
    if !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
    {
        s.to_string()
    } else {
        "other".into()
    }
}

/// The counters and gauges of one watcher.
pub struct Metrics {
    registry: Registry,
    mails: Family<Labels, Counter>,
    confirms: Family<Labels, Counter>,
    rejects: Family<Labels, Counter>,
    replies: Family<Labels, Counter>,
    replies_deferred: Counter,
    faults: Family<Labels, Counter>,
    sign_ins: Family<Labels, Counter>,
    mail_to_confirm: Histogram,
    pending: Gauge,
    oldest_pending: Gauge<f64, AtomicU64>,
    last_mailbox_ok: Gauge<f64, AtomicU64>,
    last_pvwa_ok: Gauge<f64, AtomicU64>,
    certificate_expiry: Gauge,
    health: Mutex<Health>,
    /// Mailbox tokens already counted (the mailbox keeps its own process-wide count).
    mailbox_tokens_seen: AtomicU64,
    /// Two or more hosts on a PostgreSQL journal: the lease (absent on SQLite).
    ha: Option<HaMetrics>,
}

/// The lease's metrics (`pam_approval_ha_*`), exported by a watcher whose journal is PostgreSQL.
struct HaMetrics {
    active: Gauge,
    epoch: Gauge,
    lease_age: Gauge<f64, AtomicU64>,
    takeovers: Family<Labels, Counter>,
    demotions: Family<Labels, Counter>,
    fenced_writes: Counter,
    database_up: Gauge,
    role: Mutex<HaRole>,
}

/// What `/readyz` says of a watcher on a PostgreSQL journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaRole {
    /// Holds the lease and acts on the mailbox.
    Active,
    /// Stands by; the active host's name, when one is live.
    Standby(Option<String>),
    /// The journal's database does not answer: not acting.
    DatabaseLost,
}

#[derive(Default)]
struct Health {
    mailbox_ok: Option<Instant>,
    pvwa_ok: Option<Instant>,
    pvwa_fault: Option<Instant>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn unix_now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_ha(false)
    }

    /// The metrics of a watcher; with `ha` (a PostgreSQL journal) also the lease's.
    pub fn with_ha(ha: bool) -> Self {
        let mut registry = Registry::with_prefix("pam_approval");
        let m = Metrics {
            mails: Family::default(),
            confirms: Family::default(),
            rejects: Family::default(),
            replies: Family::default(),
            replies_deferred: Counter::default(),
            faults: Family::default(),
            sign_ins: Family::default(),
            mail_to_confirm: Histogram::new([
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
            pending: Gauge::default(),
            oldest_pending: Gauge::default(),
            last_mailbox_ok: Gauge::default(),
            last_pvwa_ok: Gauge::default(),
            certificate_expiry: Gauge::default(),
            health: Mutex::default(),
            mailbox_tokens_seen: AtomicU64::new(0),
            registry: Registry::default(),
            ha: ha.then(|| HaMetrics {
                active: Gauge::default(),
                epoch: Gauge::default(),
                lease_age: Gauge::default(),
                takeovers: Family::default(),
                demotions: Family::default(),
                fenced_writes: Counter::default(),
                database_up: Gauge::default(),
                role: Mutex::new(HaRole::Standby(None)),
            }),
        };
        if let Some(h) = &m.ha {
            registry.register(
                "ha_active",
                "1 while this process holds the lease and acts on the mailbox, else 0",
                h.active.clone(),
            );
            registry.register(
                "ha_epoch",
                "The lease epoch this process holds (0 while standing by)",
                h.epoch.clone(),
            );
            registry.register_with_unit(
                "ha_lease_age",
                "Seconds since the lease was last renewed by its holder, as last read from the database (stale above journal.lease_secs)",
                Unit::Seconds,
                h.lease_age.clone(),
            );
            registry.register(
                "ha_takeovers",
                "Times this process became the active host, by what it found: vacant, expired (a failover), released",
                h.takeovers.clone(),
            );
            registry.register(
                "ha_demotions",
                "Times this process stopped being the active host, by reason: lease_lost, database_lost, fenced, shutdown",
                h.demotions.clone(),
            );
            registry.register(
                "ha_fenced_writes",
                "Journal writes refused because this process no longer held the lease",
                h.fenced_writes.clone(),
            );
            registry.register(
                "ha_database_up",
                "1 if the last statement to the journal database succeeded",
                h.database_up.clone(),
            );
        }
        registry.register(
            "mails",
            "Mails finished, by outcome (confirmed, rejected, refused, already_processed) and refusal code",
            m.mails.clone(),
        );
        registry.register(
            "confirms",
            "Confirmations sent to PVWA, by level",
            m.confirms.clone(),
        );
        registry.register(
            "rejects",
            "Rejections sent to PVWA by mail (issue 32), by level",
            m.rejects.clone(),
        );
        registry.register(
            "replies",
            "Replies sent to forwarders by the mail's outcome, and reports to the PAM team on mails refused without a reply (outcome pam_team_report)",
            m.replies.clone(),
        );
        registry.register(
            "replies_deferred",
            "Times a reply or report was held back, owed, by the mailbox's sending pace or the server's sending limit (mailbox.max_sends_per_minute)",
            m.replies_deferred.clone(),
        );
        registry.register(
            "faults",
            "Faults that left a mail pending, by service (pvwa, mailbox, directory, ticketing, journal, secrets)",
            m.faults.clone(),
        );
        registry.register(
            "sign_ins",
            "Sign-ins: PVWA logons and Identity tokens, mailbox (Entra ID) tokens, first and renewed",
            m.sign_ins.clone(),
        );
        registry.register_with_unit(
            "mail_to_confirm",
            "From the watcher first reading a mail to PVWA accepting its confirmation",
            Unit::Seconds,
            m.mail_to_confirm.clone(),
        );
        registry.register(
            "pending_mails",
            "Mails read but not finished (waiting for a retry, or in flight)",
            m.pending.clone(),
        );
        registry.register_with_unit(
            "oldest_pending_age",
            "Age of the oldest mail not finished (0 when none)",
            Unit::Seconds,
            m.oldest_pending.clone(),
        );
        registry.register_with_unit(
            "last_mailbox_success_timestamp",
            "When the mailbox last answered a listing or a wait for mail (Unix time)",
            Unit::Seconds,
            m.last_mailbox_ok.clone(),
        );
        registry.register_with_unit(
            "last_pvwa_success_timestamp",
            "When PVWA last answered a call (Unix time; 0 before the first)",
            Unit::Seconds,
            m.last_pvwa_ok.clone(),
        );
        registry.register_with_unit(
            "mailbox_certificate_expiry_timestamp",
            "When the certificate the mailbox app signs in with ends (Unix time; 0 without one): alert well before",
            Unit::Seconds,
            m.certificate_expiry.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A mail finished: `outcome` and, for a refusal, its code.
    pub fn mail(&self, outcome: &str, reason_code: Option<&str>) {
        self.mails
            .get_or_create(&vec![
                ("outcome", word(outcome)),
                ("reason", reason_code.map(word).unwrap_or_default()),
            ])
            .inc();
    }

    /// PVWA accepted a confirmation at `level`, `latency` after the mail was first read.
    pub fn confirm(&self, level: u8, latency: Duration) {
        self.confirms
            .get_or_create(&vec![("level", level.to_string())])
            .inc();
        self.mail_to_confirm.observe(latency.as_secs_f64());
    }

    /// PVWA accepted a rejection at `level`.
    pub fn reject(&self, level: u8) {
        self.rejects
            .get_or_create(&vec![("level", level.to_string())])
            .inc();
    }

    /// A reply went to a forwarder about a mail with this outcome.
    pub fn reply(&self, outcome: &str) {
        self.replies
            .get_or_create(&vec![("outcome", word(outcome))])
            .inc();
    }

    /// A reply (or report) was held back by the sending pace or the server's limit: still owed.
    pub fn reply_deferred(&self) {
        self.replies_deferred.inc();
    }

    /// A fault of `service` left a mail pending.
    pub fn fault(&self, service: &str) {
        self.faults
            .get_or_create(&vec![("service", word(service))])
            .inc();
    }

    /// A sign-in to `service` of `kind` (`logon`, `identity_token`).
    pub fn sign_in(&self, service: &str, kind: &str) {
        self.sign_ins
            .get_or_create(&vec![("service", word(service)), ("kind", word(kind))])
            .inc();
    }

    /// The mailbox answered.
    pub fn mailbox_ok(&self) {
        self.last_mailbox_ok.set(unix_now());
        self.health().mailbox_ok = Some(Instant::now());
    }

    /// PVWA answered (even with a refusal: it is reachable).
    pub fn pvwa_ok(&self) {
        self.last_pvwa_ok.set(unix_now());
        self.health().pvwa_ok = Some(Instant::now());
    }

    /// PVWA could not be reached, or failed.
    pub fn pvwa_fault(&self) {
        self.health().pvwa_fault = Some(Instant::now());
    }

    /// Mails not finished, and the age of the oldest.
    pub fn set_pending(&self, count: u64, oldest: Option<Duration>) {
        self.pending.set(count as i64);
        self.oldest_pending
            .set(oldest.map(|d| d.as_secs_f64()).unwrap_or(0.0));
    }

    /// This process took the lease at `epoch`, finding it `from` (vacant, expired, released).
    pub fn ha_took(&self, epoch: i64, from: &str) {
        if let Some(h) = &self.ha {
            h.takeovers.get_or_create(&vec![("from", word(from))]).inc();
            h.active.set(1);
            h.epoch.set(epoch);
            h.lease_age.set(0.0);
            h.database_up.set(1);
            *lock(&h.role) = HaRole::Active;
        }
    }

    /// The lease was renewed (by this process, or as a standby read it): its age.
    pub fn ha_lease_age(&self, secs: f64) {
        if let Some(h) = &self.ha {
            h.lease_age.set(secs.max(0.0));
            h.database_up.set(1);
        }
    }

    /// This process stopped being the active host (`lease_lost`, `database_lost`, `fenced`,
    /// `shutdown`).
    pub fn ha_demoted(&self, reason: &str) {
        if let Some(h) = &self.ha {
            h.demotions
                .get_or_create(&vec![("reason", word(reason))])
                .inc();
            h.active.set(0);
            h.epoch.set(0);
        }
    }

    /// Standing by; `active` the live active host's name, if any.
    pub fn ha_standby(&self, active: Option<String>) {
        if let Some(h) = &self.ha {
            h.active.set(0);
            h.epoch.set(0);
            h.database_up.set(1);
            *lock(&h.role) = HaRole::Standby(active);
        }
    }

    /// The journal's database did not answer: not acting.
    pub fn ha_database_lost(&self) {
        if let Some(h) = &self.ha {
            h.database_up.set(0);
            h.active.set(0);
            h.epoch.set(0);
            *lock(&h.role) = HaRole::DatabaseLost;
        }
    }

    /// The journal's count of fenced writes so far.
    pub fn ha_fenced_writes(&self, total: u64) {
        if let Some(h) = &self.ha {
            let seen = h.fenced_writes.get();
            if total > seen {
                h.fenced_writes.inc_by(total - seen);
            }
        }
    }

    /// What `/readyz` says of the lease (`None` without one).
    pub fn ha_role(&self) -> Option<HaRole> {
        self.ha.as_ref().map(|h| lock(&h.role).clone())
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the watcher is ready, and one line per check. On a PostgreSQL journal: a
    /// standby is ready ("standby (active: HOST)"), the active host says "active" before its
    /// checks, and a host whose database does not answer is not ready.
    pub fn readiness(&self, within: Duration) -> (bool, String) {
        let head = match self.ha_role() {
            None => String::new(),
            Some(HaRole::DatabaseLost) => {
                return (false, "journal database unreachable: not acting\n".into());
            }
            Some(HaRole::Standby(active)) => {
                return (
                    true,
                    format!(
                        "standby (active: {})\n",
                        active.as_deref().unwrap_or("none")
                    ),
                );
            }
            Some(HaRole::Active) => "active\n".to_string(),
        };
        let (ok, text) = self.checks(within);
        (ok, format!("{head}{text}"))
    }

    fn checks(&self, within: Duration) -> (bool, String) {
        let h = self.health();
        let now = Instant::now();
        let age = |t: Option<Instant>| t.map(|t| now.duration_since(t));
        let mailbox = match age(h.mailbox_ok) {
            Some(a) if a <= within => {
                (true, format!("mailbox: ok, answered {} s ago", a.as_secs()))
            }
            Some(a) => (false, format!("mailbox: no answer for {} s", a.as_secs())),
            None => (false, "mailbox: not answered yet".to_string()),
        };
        let failed_last = h.pvwa_fault.filter(|f| h.pvwa_ok.is_none_or(|o| *f > o));
        let pvwa = match (failed_last, h.pvwa_ok) {
            (Some(f), _) => (
                false,
                format!(
                    "pvwa: the last contact failed, {} s ago",
                    now.duration_since(f).as_secs()
                ),
            ),
            (None, Some(o)) => (
                true,
                format!(
                    "pvwa: ok, answered {} s ago",
                    now.duration_since(o).as_secs()
                ),
            ),
            (None, None) => (
                true,
                "pvwa: not contacted yet (no mail needed it)".to_string(),
            ),
        };
        (mailbox.0 && pvwa.0, format!("{}\n{}\n", mailbox.1, pvwa.1))
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let fetched = crate::mailbox::oauth::tokens_fetched();
        let seen = self
            .mailbox_tokens_seen
            .swap(fetched, std::sync::atomic::Ordering::Relaxed);
        if fetched > seen {
            self.sign_ins
                .get_or_create(&vec![
                    ("service", "mailbox".into()),
                    ("kind", "oauth_token".into()),
                ])
                .inc_by(fetched - seen);
        }
        self.certificate_expiry
            .set(crate::mailbox::oauth::certificate_not_after().unwrap_or(0));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    ready_within: Duration,
) -> std::io::Result<()> {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let m = metrics.clone();
    let r = metrics;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.encode(),
                    )
                        .into_response()
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let r = r.clone();
                async move {
                    let (ok, text) = r.readiness(ready_within);
                    let status = if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (status, text).into_response()
                }
            }),
        );
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_words_from_a_fixed_set_never_free_text() {
        let m = Metrics::new();
        m.mail("refused", Some("self_approval"));
        m.mail("refused", Some("bob@example.com tried <x>"));
        m.mail("confirmed", None);
        m.confirm(1, Duration::from_millis(300));
        m.fault("pvwa");
        m.sign_in("pvwa", "identity_token");
        let text = m.encode();
        assert!(
            text.contains(
                r#"pam_approval_mails_total{outcome="refused",reason="self_approval"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"pam_approval_mails_total{outcome="refused",reason="other"} 1"#));
        assert!(text.contains(r#"pam_approval_mails_total{outcome="confirmed",reason=""} 1"#));
        assert!(text.contains(r#"pam_approval_confirms_total{level="1"} 1"#));
        assert!(text.contains("pam_approval_mail_to_confirm_seconds_count 1"));
        assert!(text.contains(r#"pam_approval_faults_total{service="pvwa"} 1"#));
        assert!(!text.contains("example.com"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn on_postgresql_ready_says_active_or_standby_and_fails_without_the_database() {
        let w = Duration::from_secs(60);
        let m = Metrics::with_ha(true);
        assert_eq!(
            m.readiness(w),
            (true, "standby (active: none)\n".to_string())
        );
        m.ha_standby(Some("web02".into()));
        assert_eq!(
            m.readiness(w),
            (true, "standby (active: web02)\n".to_string())
        );
        m.ha_took(3, "expired");
        m.mailbox_ok();
        let (ok, text) = m.readiness(w);
        assert!(ok && text.starts_with("active\nmailbox: ok"), "{text}");
        let text = m.encode();
        for line in [
            "pam_approval_ha_active 1",
            "pam_approval_ha_epoch 3",
            r#"pam_approval_ha_takeovers_total{from="expired"} 1"#,
            "pam_approval_ha_database_up 1",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        m.ha_demoted("database_lost");
        m.ha_database_lost();
        m.ha_fenced_writes(2);
        assert_eq!(
            m.readiness(w),
            (
                false,
                "journal database unreachable: not acting\n".to_string()
            )
        );
        let text = m.encode();
        for line in [
            "pam_approval_ha_active 0",
            "pam_approval_ha_epoch 0",
            r#"pam_approval_ha_demotions_total{reason="database_lost"} 1"#,
            "pam_approval_ha_fenced_writes_total 2",
            "pam_approval_ha_database_up 0",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        // SQLite: none of them.
        assert!(!Metrics::new().encode().contains("pam_approval_ha_"));
    }

    #[test]
    fn ready_needs_a_recent_mailbox_answer_and_no_later_pvwa_fault() {
        let m = Metrics::new();
        let within = Duration::from_secs(60);
        assert!(!m.readiness(within).0, "no mailbox answer yet");
        m.mailbox_ok();
        let (ok, text) = m.readiness(within);
        assert!(ok, "{text}");
        m.pvwa_fault();
        assert!(!m.readiness(within).0);
        m.pvwa_ok();
        assert!(m.readiness(within).0);
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            !m.readiness(Duration::from_millis(1)).0,
            "an old answer is not enough"
        );
    }
}

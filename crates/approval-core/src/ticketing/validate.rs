//! The validator: runs the checks in their order for one ticket id and returns a [`Verdict`]
//! with every check's outcome; and the batch behind `validate-ticket`.
//!
//! Systems are connected on first use and kept for the validator's life (one Remedy login for a
//! batch, logged out in [`Validator::close`]). A system that failed once (unreachable, refused
//! the account) is not asked again by the same validator: later ids get "cannot validate" at
//! once. Make a new validator per batch or per watcher pass.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::bypass;
use super::config::{Compiled, CompiledType, SystemKind, TicketKind};
use super::remedy::Remedy;
use super::rules::{self, Check, CheckName, CheckVerdict, Context};
use super::servicenow::ServiceNow;
use super::{Lookup, TicketId, TicketSystem, TicketingError};
use crate::exit::ErrorView;
use crate::exit::{Classify, Exit};
use crate::secret::Resolver;

/// The overall result for one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every configured validation passed.
    Valid,
    /// A failsafe bypass code was given instead of a ticket: accepted, and audited as such.
    Bypass,
    /// A validation failed: `reason` names the first one.
    Invalid,
    /// The ticketing system could not be asked: never taken as valid.
    CannotValidate,
}

/// What became of one ticket id.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The id as validated; absent when it failed the format check or was a bypass code (so a
    /// mistyped or real bypass code is never echoed).
    pub ticket: Option<String>,
    /// Position in the input (argument index or stdin line).
    pub line: usize,
    pub outcome: Outcome,
    pub valid: bool,
    /// Stable reason code of the first failure (`state_not_allowed`, `cannot_validate`, …).
    pub reason: Option<String>,
    pub system: Option<SystemKind>,
    pub ticket_type: Option<String>,
    pub kind: Option<TicketKind>,
    /// The CyberArk requester the ticket was checked against.
    pub user: Option<String>,
    /// The time the window was checked at (RFC 3339, UTC).
    pub at: String,
    pub checks: Vec<Check>,
    pub error: Option<ErrorView>,
    #[serde(skip)]
    pub exit: Exit,
}

impl Verdict {
    /// The first failed check, if any.
    pub fn failed(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.verdict == CheckVerdict::Fail)
    }

    /// One line for a refusal message or a log: what was wrong with the ticket.
    pub fn summary(&self) -> String {
        let t = self
            .ticket
            .as_deref()
            .map(|t| format!("ticket {t}"))
            .unwrap_or_else(|| "the ticket".into());
        match self.outcome {
            Outcome::Valid => format!("{t} is valid"),
            Outcome::Bypass => "a failsafe bypass code was accepted instead of a ticket".into(),
            Outcome::Invalid => match self.failed() {
                Some(c) => format!(
                    "{t} is not valid: {} ({})",
                    c.detail,
                    c.reason.unwrap_or("invalid")
                ),
                None => format!("{t} is not valid"),
            },
            Outcome::CannotValidate => format!(
                "{t} cannot be validated: {}",
                self.error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or("the ticketing system could not be asked")
            ),
        }
    }
}

#[derive(Clone)]
struct Broken {
    exit: Exit,
    view: ErrorView,
    /// The ticket whose lookup failed (none when the system could not even be set up): a later
    /// ticket's error must not read as that ticket's.
    ticket: Option<String>,
}

impl Broken {
    /// The error for `tid`, not asked because the system failed earlier in this run.
    fn for_later(&self, system: SystemKind, tid: &TicketId) -> Broken {
        if self.ticket.is_none() || self.ticket.as_deref() == Some(tid.as_str()) {
            return self.clone();
        }
        let mut b = self.clone();
        let earlier = self.ticket.as_deref().unwrap_or_default();
        b.view.message = format!(
            "{system} was not asked about {tid}: it failed on an earlier ticket of this run ({})",
            self.view.message.replace(earlier, "an earlier ticket")
        );
        b
    }
}

enum Slot {
    Ready(Box<dyn TicketSystem>),
    Broken(Broken),
}

/// Runs the validations; see the module header.
pub struct Validator {
    cfg: Compiled,
    resolver: Option<Resolver>,
    systems: BTreeMap<SystemKind, Slot>,
}

impl Validator {
    /// A validator over a checked config; secrets are resolved with `resolver` on first use.
    pub fn new(cfg: Compiled, resolver: Resolver) -> Self {
        Validator {
            cfg,
            resolver: Some(resolver),
            systems: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &Compiled {
        &self.cfg
    }

    async fn connect(&mut self, kind: SystemKind) {
        if self.systems.contains_key(&kind) {
            return;
        }
        let made: Result<Box<dyn TicketSystem>, TicketingError> = match &self.resolver {
            None => {
                Err(crate::config::ConfigError::new(format!("{kind} is not configured")).into())
            }
            Some(res) => match kind {
                SystemKind::ServiceNow => match &self.cfg.servicenow {
                    Some(c) => ServiceNow::new(c, res)
                        .await
                        .map(|s| Box::new(s) as Box<dyn TicketSystem>),
                    None => Err(crate::config::ConfigError::new(
                        "[ticketing.servicenow] is not configured",
                    )
                    .into()),
                },
                SystemKind::Remedy => match &self.cfg.remedy {
                    Some(c) => Remedy::new(c, res)
                        .await
                        .map(|s| Box::new(s) as Box<dyn TicketSystem>),
                    None => Err(crate::config::ConfigError::new(
                        "[ticketing.remedy] is not configured",
                    )
                    .into()),
                },
            },
        };
        let slot = match made {
            Ok(s) => Slot::Ready(s),
            Err(e) => Slot::Broken(broken(&e)),
        };
        self.systems.insert(kind, slot);
    }

    /// Validate one ticket id for the requester and time in `ctx`.
    pub async fn validate(&mut self, raw: &str, line: usize, ctx: &Context) -> Verdict {
        let id = raw.trim();
        let mut v = Verdict {
            ticket: None,
            line,
            outcome: Outcome::Invalid,
            valid: false,
            reason: None,
            system: None,
            ticket_type: None,
            kind: None,
            user: ctx.user.clone(),
            at: ctx.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            checks: Vec::new(),
            error: None,
            exit: Exit::Refused,
        };
        let rest_after = |v: &mut Verdict, from: usize, verdict: CheckVerdict, detail: &str| {
            const ORDER: [CheckName; 7] = [
                CheckName::Bypass,
                CheckName::Format,
                CheckName::Record,
                CheckName::State,
                CheckName::Approval,
                CheckName::Window,
                CheckName::Requester,
            ];
            for c in &ORDER[from..] {
                v.checks.push(Check::new(*c, verdict, detail));
            }
        };

        log::debug!(
            "validating input {line} ({} bypass code(s) configured)",
            self.cfg.bypass.len()
        );
        // 1. Bypass: before anything else, and never echoed.
        if self.cfg.bypass.is_empty() {
            v.checks.push(Check::new(
                CheckName::Bypass,
                CheckVerdict::Skipped,
                "no bypass codes configured",
            ));
        } else if bypass::matches_any(id, &self.cfg.bypass) {
            log::warn!(
                "AUDIT ticket validation bypassed with a failsafe bypass code (requester: {}, at {})",
                ctx.user.as_deref().unwrap_or("-"),
                v.at
            );
            v.checks.push(Check::new(
                CheckName::Bypass,
                CheckVerdict::Pass,
                "a failsafe bypass code was given instead of a ticket",
            ));
            rest_after(&mut v, 1, CheckVerdict::Skipped, "bypassed");
            v.outcome = Outcome::Bypass;
            v.valid = true;
            v.reason = Some("bypass".into());
            v.exit = Exit::Ok;
            return v;
        } else {
            v.checks.push(Check::new(
                CheckName::Bypass,
                CheckVerdict::Skipped,
                "not a bypass code",
            ));
        }

        // 2. Format: the allow-list, then exactly one type's pattern.
        let Some(tid) = TicketId::new(id) else {
            v.checks.push(Check::fail(
                CheckName::Format,
                "format_invalid",
                format!(
                    "not a ticket id: only letters, digits, `_` and `-` are allowed, 1 to {} of them",
                    rules::MAX_ID_LEN
                ),
            ));
            rest_after(&mut v, 2, CheckVerdict::NotRun, "not reached");
            v.reason = Some("format_invalid".into());
            return v;
        };
        let matching: Vec<&CompiledType> = self
            .cfg
            .types
            .iter()
            .filter(|t| t.pattern.is_match(tid.as_str()))
            .collect();
        let t = match matching.as_slice() {
            [one] => (*one).clone(),
            [] => {
                v.checks.push(Check::fail(
                    CheckName::Format,
                    "format_invalid",
                    "matches no configured ticket pattern",
                ));
                rest_after(&mut v, 2, CheckVerdict::NotRun, "not reached");
                v.reason = Some("format_invalid".into());
                return v;
            }
            many => {
                let names: Vec<&str> = many.iter().map(|t| t.name.as_str()).collect();
                v.ticket = Some(tid.to_string());
                v.checks.push(Check::fail(
                    CheckName::Format,
                    "format_ambiguous",
                    format!(
                        "matches the patterns of several types ({})",
                        names.join(", ")
                    ),
                ));
                rest_after(&mut v, 2, CheckVerdict::NotRun, "not reached");
                v.reason = Some("format_ambiguous".into());
                return v;
            }
        };
        v.ticket = Some(tid.to_string());
        v.system = Some(t.system);
        v.ticket_type = Some(t.name.clone());
        v.kind = Some(t.kind);
        v.checks.push(Check::new(
            CheckName::Format,
            CheckVerdict::Pass,
            format!("a {} {} ({})", t.system, t.kind.key(), t.name),
        ));

        // 3. Exactly one record.
        log::debug!("validating {tid} as {} ({})", t.name, t.system);
        self.connect(t.system).await;
        let fields: Vec<String> = t
            .requester
            .as_ref()
            .map(|r| r.fields.clone())
            .unwrap_or_default();
        let looked = match self.systems.get(&t.system) {
            Some(Slot::Ready(s)) => s.lookup(t.kind, &tid, &fields).await.map_err(|e| {
                let mut b = broken(&e);
                b.ticket = Some(tid.to_string());
                b
            }),
            Some(Slot::Broken(b)) => Err(b.for_later(t.system, &tid)),
            None => Err(broken(&TicketingError::Config(
                crate::config::ConfigError::new("system missing"),
            ))),
        };
        let rec = match looked {
            Err(b) => {
                log::warn!("cannot validate {tid}: {}", b.view.message);
                // The system is not asked again by this validator; a session it opened (a
                // Remedy login) is ended now, not left to a background task that may never run.
                if matches!(self.systems.get(&t.system), Some(Slot::Ready(_)))
                    && let Some(Slot::Ready(old)) =
                        self.systems.insert(t.system, Slot::Broken(b.clone()))
                {
                    old.close().await;
                }
                v.checks.push(Check::fail(
                    CheckName::Record,
                    "cannot_validate",
                    format!("{} could not be asked", t.system),
                ));
                rest_after(&mut v, 3, CheckVerdict::NotRun, "not reached");
                v.outcome = Outcome::CannotValidate;
                v.reason = Some("cannot_validate".into());
                v.exit = b.exit;
                v.error = Some(b.view);
                return v;
            }
            Ok(Lookup::NotFound { rows }) => {
                v.checks.push(Check::fail(
                    CheckName::Record,
                    "not_found",
                    match rows {
                        0 => format!("no {} {} has this number", t.system, t.kind.key()),
                        1 => "the only record found has another number".into(),
                        n => format!("{n} records matched instead of exactly one"),
                    },
                ));
                rest_after(&mut v, 3, CheckVerdict::NotRun, "not reached");
                v.reason = Some("not_found".into());
                return v;
            }
            Ok(Lookup::Found(rec)) => rec,
        };
        v.checks.push(Check::new(
            CheckName::Record,
            CheckVerdict::Pass,
            "exactly one record with this number",
        ));

        // 4–7. State, approval, window, requester.
        v.checks
            .extend(rules::evaluate(&t, &rec, ctx, self.cfg.skew));
        match v.failed().and_then(|c| c.reason) {
            Some(reason) => {
                log::info!("ticket {tid}: {reason}");
                v.reason = Some(reason.to_string());
            }
            None => {
                log::info!(
                    "ticket {tid} is valid for {}",
                    ctx.user.as_deref().unwrap_or("-")
                );
                v.outcome = Outcome::Valid;
                v.valid = true;
                v.exit = Exit::Ok;
            }
        }
        v
    }

    /// End every session (Remedy logout). Call on every path.
    pub async fn close(&mut self) {
        for slot in self.systems.values() {
            if let Slot::Ready(s) = slot {
                s.close().await;
            }
        }
        if let Some(r) = &self.resolver {
            r.close().await;
        }
    }
}

fn broken(e: &TicketingError) -> Broken {
    Broken {
        exit: e.exit(),
        view: ErrorView::of(e, None),
        ticket: None,
    }
}

/// Validate ids (argument index or stdin line, id) with the configured systems; `emit` gets each
/// verdict as soon as it is known. Returns the worst exit: 0 all valid, 1 one invalid, else the
/// fault's code.
pub async fn validate_batch(
    cfg: Compiled,
    vault: Option<&crate::secret::vault::VaultConfig>,
    ids: &[(usize, String)],
    user: Option<&str>,
    at: Option<DateTime<Utc>>,
    mut emit: impl FnMut(&Verdict),
) -> Result<Exit, TicketingError> {
    let resolver = Resolver::new(vault)?;
    let mut validator = Validator::new(cfg, resolver);
    let mut worst = Exit::Ok;
    for (line, id) in ids {
        // The clock is read per ticket, so a long batch checks each window when it is asked.
        let ctx = Context {
            user: user.map(str::to_string),
            at: at.unwrap_or_else(Utc::now),
        };
        let v = validator.validate(id, *line, &ctx).await;
        worst = worst.worst(v.exit);
        emit(&v);
    }
    validator.close().await;
    Ok(worst)
}

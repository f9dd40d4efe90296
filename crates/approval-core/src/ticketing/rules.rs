//! The validations as pure functions: the id allow-list, CyberArk's abstract states and
//! approvals mapped to each system's values (reference: ticketing.md §5), the operation window,
//! and the requester comparison. No I/O here; every rule is tested with fixtures.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::config::{CompiledType, RequesterRule, SystemKind, TicketKind};

/// The longest ticket id we ever send anywhere.
pub const MAX_ID_LEN: usize = 40;

/// The allow-list every id must pass before any request, whatever the configured pattern says:
/// letters, digits, `_` and `-`, 1 to 40 characters. This alone rules out `^`, `=`, quotes,
/// `:`, spaces, `,`, `@`, `%` — every joiner and operator of both query languages.
pub fn allow_listed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// CyberArk's abstract state names, in their order.
pub const ABSTRACT_STATES: &[&str] = &[
    "New",
    "Assigned",
    "In Progress",
    "Pending",
    "Resolved",
    "Closed",
    "Cancelled",
];

/// CyberArk's abstract approval names.
pub const ABSTRACT_APPROVALS: &[&str] = &["Approved", "Not Yet Requested", "Requested", "Rejected"];

/// ServiceNow incident `state`: raw value and label.
pub const SN_INCIDENT_STATES: &[(&str, &str)] = &[
    ("1", "New"),
    ("2", "In Progress"),
    ("3", "On Hold"),
    ("6", "Resolved"),
    ("7", "Closed"),
    ("8", "Canceled"),
];

/// ServiceNow change `state`: raw value and label.
pub const SN_CHANGE_STATES: &[(&str, &str)] = &[
    ("-5", "New"),
    ("-4", "Assess"),
    ("-3", "Authorize"),
    ("-2", "Scheduled"),
    ("-1", "Implement"),
    ("0", "Review"),
    ("3", "Closed"),
    ("4", "Canceled"),
];

/// ServiceNow change `approval`: raw value and label.
pub const SN_APPROVALS: &[(&str, &str)] = &[
    ("not requested", "Not Yet Requested"),
    ("requested", "Requested"),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
];

/// Remedy incident `Status` labels (the abstract list itself).
pub const REMEDY_INCIDENT_STATUSES: &[&str] = ABSTRACT_STATES;

/// Remedy change `Change Request Status` labels, in workflow order.
pub const REMEDY_CHANGE_STATUSES: &[&str] = &[
    "Draft",
    "Request For Authorization",
    "Request For Change",
    "Planning In Progress",
    "Scheduled For Review",
    "Scheduled For Approval",
    "Scheduled",
    "Implementation In Progress",
    "Pending",
    "Rejected",
    "Completed",
    "Closed",
    "Cancelled",
];

/// Native values an abstract state stands for; `true` when an on-hold flag also counts.
fn abstract_state(
    system: SystemKind,
    kind: TicketKind,
    name: &str,
) -> (&'static [&'static str], bool) {
    use SystemKind::*;
    use TicketKind::*;
    match (system, kind, name) {
        (ServiceNow, Incident, "New") => (&["1"], false),
        (ServiceNow, Incident, "Assigned" | "In Progress") => (&["2"], false),
        // 4 and 5 are the pre-Helsinki "Awaiting User Info" / "Awaiting Evidence".
        (ServiceNow, Incident, "Pending") => (&["3", "4", "5"], false),
        (ServiceNow, Incident, "Resolved") => (&["6"], false),
        (ServiceNow, Incident, "Closed") => (&["7"], false),
        (ServiceNow, Incident, "Cancelled") => (&["8"], false),
        (ServiceNow, Change, "New") => (&["-5"], false),
        (ServiceNow, Change, "Assigned") => (&["-4", "-2"], false),
        (ServiceNow, Change, "In Progress") => (&["-1"], false),
        (ServiceNow, Change, "Pending") => (&["-3"], true),
        (ServiceNow, Change, "Resolved") => (&["0"], false),
        (ServiceNow, Change, "Closed") => (&["3"], false),
        (ServiceNow, Change, "Cancelled") => (&["4"], false),
        (Remedy, Incident, "New") => (&["New"], false),
        (Remedy, Incident, "Assigned") => (&["Assigned"], false),
        (Remedy, Incident, "In Progress") => (&["In Progress"], false),
        (Remedy, Incident, "Pending") => (&["Pending"], false),
        (Remedy, Incident, "Resolved") => (&["Resolved"], false),
        (Remedy, Incident, "Closed") => (&["Closed"], false),
        (Remedy, Incident, "Cancelled") => (&["Cancelled"], false),
        (Remedy, Change, "New") => (&["Draft"], false),
        (Remedy, Change, "Assigned") => (
            &["Planning In Progress", "Scheduled For Review", "Scheduled"],
            false,
        ),
        (Remedy, Change, "In Progress") => (&["Implementation In Progress"], false),
        (Remedy, Change, "Pending") => (
            &[
                "Pending",
                "Request For Authorization",
                "Request For Change",
                "Scheduled For Approval",
            ],
            false,
        ),
        (Remedy, Change, "Resolved") => (&["Completed"], false),
        (Remedy, Change, "Closed") => (&["Closed"], false),
        (Remedy, Change, "Cancelled") => (&["Cancelled"], false),
        _ => (&[], false),
    }
}

fn canonical(list: &[&'static str], name: &str) -> Option<&'static str> {
    list.iter()
        .find(|a| a.eq_ignore_ascii_case(name.trim()))
        .copied()
}

/// The set of native values a state must be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedStates {
    pub values: BTreeSet<String>,
    /// A ServiceNow change on hold counts as allowed (abstract `Pending` was listed).
    pub on_hold_ok: bool,
    /// The list as configured, for messages.
    pub shown: Vec<String>,
}

/// Turn the configured list into native values. An entry is an abstract name (case-insensitive),
/// else a native value: `native:` forces the native reading (Remedy's `Pending`). ServiceNow
/// natives are raw values (`-2`, any integer) or labels (`Scheduled`); Remedy natives are labels.
pub fn compile_states(
    system: SystemKind,
    kind: TicketKind,
    list: &[String],
) -> Result<AllowedStates, String> {
    if list.is_empty() {
        return Err(
            "an empty list would refuse every ticket; remove the key to skip the check".into(),
        );
    }
    let mut out = AllowedStates {
        values: BTreeSet::new(),
        on_hold_ok: false,
        shown: list.to_vec(),
    };
    for entry in list {
        let (forced, name) = match entry.strip_prefix("native:") {
            Some(rest) => (true, rest.trim()),
            None => (false, entry.trim()),
        };
        if !forced && let Some(a) = canonical(ABSTRACT_STATES, name) {
            let (natives, hold) = abstract_state(system, kind, a);
            out.values.extend(natives.iter().map(|s| s.to_string()));
            out.on_hold_ok |= hold;
            continue;
        }
        let native = native_state(system, kind, name).ok_or_else(|| {
            format!(
                "`{}` is neither one of CyberArk's states ({}) nor a {} {} state ({})",
                crate::text::printable(entry),
                ABSTRACT_STATES.join(", "),
                system.title(),
                kind.key(),
                native_state_names(system, kind)
            )
        })?;
        out.values.insert(native);
    }
    Ok(out)
}

fn native_state(system: SystemKind, kind: TicketKind, name: &str) -> Option<String> {
    match system {
        SystemKind::ServiceNow => {
            let table = match kind {
                TicketKind::Incident => SN_INCIDENT_STATES,
                TicketKind::Change => SN_CHANGE_STATES,
            };
            if let Some((raw, _)) = table
                .iter()
                .find(|(raw, label)| *raw == name || label.eq_ignore_ascii_case(name))
            {
                return Some(raw.to_string());
            }
            // A site's own state values are integers too.
            name.parse::<i64>().ok().map(|n| n.to_string())
        }
        SystemKind::Remedy => {
            let table = match kind {
                TicketKind::Incident => REMEDY_INCIDENT_STATUSES,
                TicketKind::Change => REMEDY_CHANGE_STATUSES,
            };
            canonical(table, name).map(str::to_string)
        }
    }
}

fn native_state_names(system: SystemKind, kind: TicketKind) -> String {
    match (system, kind) {
        (SystemKind::ServiceNow, TicketKind::Incident) => labels(SN_INCIDENT_STATES),
        (SystemKind::ServiceNow, TicketKind::Change) => labels(SN_CHANGE_STATES),
        (SystemKind::Remedy, TicketKind::Incident) => REMEDY_INCIDENT_STATUSES.join(", "),
        (SystemKind::Remedy, TicketKind::Change) => REMEDY_CHANGE_STATUSES.join(", "),
    }
}

fn labels(t: &[(&str, &str)]) -> String {
    t.iter()
        .map(|(r, l)| format!("{l} ({r})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Label of a native state value, for messages.
pub fn state_label(system: SystemKind, kind: TicketKind, raw: &str) -> Option<&'static str> {
    match (system, kind) {
        (SystemKind::ServiceNow, TicketKind::Incident) => SN_INCIDENT_STATES
            .iter()
            .find(|(r, _)| *r == raw)
            .map(|(_, l)| *l),
        (SystemKind::ServiceNow, TicketKind::Change) => SN_CHANGE_STATES
            .iter()
            .find(|(r, _)| *r == raw)
            .map(|(_, l)| *l),
        _ => None,
    }
}

/// The set of approval values a change must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedApprovals {
    /// ServiceNow: raw `approval` values. Remedy: change status labels (approval is derived).
    pub values: BTreeSet<String>,
    pub shown: Vec<String>,
}

fn remedy_approval(name: &str) -> &'static [&'static str] {
    match name {
        "Not Yet Requested" => &["Draft"],
        "Requested" => &[
            "Request For Authorization",
            "Request For Change",
            "Planning In Progress",
            "Scheduled For Review",
            "Scheduled For Approval",
        ],
        "Approved" => &[
            "Scheduled",
            "Implementation In Progress",
            "Completed",
            "Closed",
        ],
        "Rejected" => &["Rejected"],
        _ => &[],
    }
}

/// Turn the configured approval list into values. Abstract names first; ServiceNow natives are
/// raw `approval` values (any lower-case word: the full choice list is unverified), Remedy
/// natives are change status labels.
pub fn compile_approvals(system: SystemKind, list: &[String]) -> Result<AllowedApprovals, String> {
    if list.is_empty() {
        return Err(
            "an empty list would refuse every change; remove the key to skip the check".into(),
        );
    }
    let mut out = AllowedApprovals {
        values: BTreeSet::new(),
        shown: list.to_vec(),
    };
    for entry in list {
        let (forced, name) = match entry.strip_prefix("native:") {
            Some(rest) => (true, rest.trim()),
            None => (false, entry.trim()),
        };
        if !forced && let Some(a) = canonical(ABSTRACT_APPROVALS, name) {
            match system {
                SystemKind::ServiceNow => {
                    if let Some((raw, _)) = SN_APPROVALS.iter().find(|(_, l)| *l == a) {
                        out.values.insert(raw.to_string());
                    }
                }
                SystemKind::Remedy => {
                    out.values
                        .extend(remedy_approval(a).iter().map(|s| s.to_string()));
                }
            }
            continue;
        }
        let bad = || {
            format!(
                "`{}` is neither one of CyberArk's approval states ({}) nor a {} value",
                crate::text::printable(entry),
                ABSTRACT_APPROVALS.join(", "),
                system.title()
            )
        };
        match system {
            SystemKind::ServiceNow => {
                let ok = !name.is_empty()
                    && name.len() <= 40
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b' ' || b == b'_');
                if !ok {
                    return Err(bad());
                }
                out.values.insert(name.to_string());
            }
            SystemKind::Remedy => {
                let label = canonical(REMEDY_CHANGE_STATUSES, name).ok_or_else(bad)?;
                out.values.insert(label.to_string());
            }
        }
    }
    Ok(out)
}

/// A ticket as read from a system: the fields the checks need, as the system sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TicketRecord {
    /// The ticket number exactly as stored.
    pub number: String,
    /// Native state value (ServiceNow raw value, Remedy label).
    pub state: Option<String>,
    /// ServiceNow change `on_hold`.
    pub on_hold: Option<bool>,
    /// ServiceNow change `approval` raw value (Remedy derives approval from the state).
    pub approval: Option<String>,
    /// Planned start and end, as sent.
    pub start: Option<String>,
    pub end: Option<String>,
    /// The requester's login and the field it came from.
    pub requester: Option<String>,
    pub requester_field: Option<String>,
}

/// Parse a date as the system sends it: ServiceNow raw values are UTC `YYYY-MM-DD HH:MM:SS`;
/// Remedy sends ISO 8601 with an offset (`2022-06-21T11:08:05.000+0000`), with or without
/// milliseconds or a colon in the offset. A value without a zone is never guessed.
pub fn parse_time(system: SystemKind, s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    match system {
        SystemKind::ServiceNow => NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|n| n.and_utc()),
        SystemKind::Remedy => DateTime::parse_from_rfc3339(s)
            .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .ok()
            .map(|d| d.with_timezone(&Utc)),
    }
}

/// A user name as compared: trimmed, `DOMAIN\` cut, optionally `@domain` cut, lower case.
pub fn normalise_user(name: &str, upn_local_part: bool) -> String {
    let mut n = name.trim();
    if let Some((_, rest)) = n.rsplit_once('\\') {
        n = rest;
    }
    if upn_local_part && let Some((local, _)) = n.split_once('@') {
        n = local;
    }
    n.to_lowercase()
}

/// Which validation a check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    Bypass,
    Format,
    Record,
    State,
    Approval,
    Window,
    Requester,
}

impl CheckName {
    pub fn key(self) -> &'static str {
        match self {
            CheckName::Bypass => "bypass",
            CheckName::Format => "format",
            CheckName::Record => "record",
            CheckName::State => "state",
            CheckName::Approval => "approval",
            CheckName::Window => "window",
            CheckName::Requester => "requester",
        }
    }
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckVerdict {
    Pass,
    Fail,
    /// Not configured for this ticket type (or no bypass code matched).
    Skipped,
    /// Not reached: an earlier step failed or the system could not be asked.
    NotRun,
}

/// One validation's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: CheckName,
    pub verdict: CheckVerdict,
    /// Stable reason code on failure (`state_not_allowed`, …).
    pub reason: Option<&'static str>,
    pub detail: String,
}

impl Check {
    pub fn new(check: CheckName, verdict: CheckVerdict, detail: impl Into<String>) -> Self {
        Check {
            check,
            verdict,
            reason: None,
            detail: detail.into(),
        }
    }
    pub fn fail(check: CheckName, reason: &'static str, detail: impl Into<String>) -> Self {
        Check {
            check,
            verdict: CheckVerdict::Fail,
            reason: Some(reason),
            detail: detail.into(),
        }
    }
}

/// Who asks and when: the CyberArk requester and the time the access is for.
#[derive(Debug, Clone)]
pub struct Context {
    pub user: Option<String>,
    pub at: DateTime<Utc>,
}

fn shown(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("`{}`", crate::text::printable(s)),
        None => "nothing".into(),
    }
}

/// The checks after the record was found, in order: state, approval, window, requester.
pub fn evaluate(
    t: &CompiledType,
    rec: &TicketRecord,
    ctx: &Context,
    skew: chrono::Duration,
) -> Vec<Check> {
    vec![
        check_state(t, rec),
        check_approval(t, rec),
        check_window(t, rec, ctx, skew),
        check_requester(t.requester.as_ref(), rec, ctx),
    ]
}

fn state_shown(t: &CompiledType, rec: &TicketRecord) -> String {
    match (
        &rec.state,
        rec.state
            .as_deref()
            .and_then(|s| state_label(t.system, t.kind, s)),
    ) {
        (Some(raw), Some(label)) => format!("{label} ({raw})"),
        _ => shown(&rec.state),
    }
}

fn check_state(t: &CompiledType, rec: &TicketRecord) -> Check {
    let Some(allowed) = &t.states else {
        return Check::new(CheckName::State, CheckVerdict::Skipped, "not configured");
    };
    let Some(state) = rec.state.as_deref().filter(|s| !s.is_empty()) else {
        return Check::fail(
            CheckName::State,
            "state_missing",
            "the ticket shows no state",
        );
    };
    let on_hold = rec.on_hold == Some(true);
    // A change on hold is Pending whatever its state says: only an allowed Pending lets it by.
    let ok = if on_hold {
        allowed.on_hold_ok
    } else {
        allowed.values.contains(state)
    };
    let what = format!(
        "state {}{}",
        state_shown(t, rec),
        if on_hold { ", on hold" } else { "" }
    );
    if ok {
        Check::new(CheckName::State, CheckVerdict::Pass, what)
    } else {
        Check::fail(
            CheckName::State,
            "state_not_allowed",
            format!("{what} is not among {}", allowed.shown.join(", ")),
        )
    }
}

fn check_approval(t: &CompiledType, rec: &TicketRecord) -> Check {
    let Some(allowed) = &t.approvals else {
        return Check::new(CheckName::Approval, CheckVerdict::Skipped, "not configured");
    };
    let (value, what) = match t.system {
        SystemKind::ServiceNow => (rec.approval.clone(), "approval"),
        SystemKind::Remedy => (rec.state.clone(), "status (approval is read from it)"),
    };
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Check::fail(
            CheckName::Approval,
            "approval_missing",
            format!("the change shows no {what}"),
        );
    };
    let text = format!("{what} `{}`", crate::text::printable(&v));
    if allowed.values.contains(&v) {
        Check::new(CheckName::Approval, CheckVerdict::Pass, text)
    } else {
        Check::fail(
            CheckName::Approval,
            "approval_not_allowed",
            format!("{text} is not among {}", allowed.shown.join(", ")),
        )
    }
}

fn check_window(
    t: &CompiledType,
    rec: &TicketRecord,
    ctx: &Context,
    skew: chrono::Duration,
) -> Check {
    if !t.check_window {
        return Check::new(CheckName::Window, CheckVerdict::Skipped, "not configured");
    }
    let bound = |v: &Option<String>, which: &str| -> Result<DateTime<Utc>, Check> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Err(Check::fail(
                CheckName::Window,
                "window_missing",
                format!("the change has no planned {which}"),
            )),
            Some(s) => parse_time(t.system, s).ok_or_else(|| {
                Check::fail(
                    CheckName::Window,
                    "window_unreadable",
                    format!(
                        "the planned {which} `{}` is not a readable time",
                        crate::text::printable(s)
                    ),
                )
            }),
        }
    };
    let start = match bound(&rec.start, "start") {
        Ok(s) => s,
        Err(c) => return c,
    };
    let end = match bound(&rec.end, "end") {
        Ok(s) => s,
        Err(c) => return c,
    };
    let fmt = |d: DateTime<Utc>| d.format("%Y-%m-%d %H:%M:%SZ").to_string();
    let window = format!("{} – {}", fmt(start), fmt(end));
    let at = fmt(ctx.at);
    if end < start {
        Check::fail(
            CheckName::Window,
            "window_invalid",
            format!("the planned window {window} ends before it starts"),
        )
    } else if ctx.at < start - skew {
        Check::fail(
            CheckName::Window,
            "window_not_started",
            format!("{at} is before the planned window {window}"),
        )
    } else if ctx.at > end + skew {
        Check::fail(
            CheckName::Window,
            "window_ended",
            format!("{at} is after the planned window {window}"),
        )
    } else {
        Check::new(
            CheckName::Window,
            CheckVerdict::Pass,
            format!("{at} is within {window}"),
        )
    }
}

fn check_requester(rule: Option<&RequesterRule>, rec: &TicketRecord, ctx: &Context) -> Check {
    let Some(rule) = rule else {
        return Check::new(
            CheckName::Requester,
            CheckVerdict::Skipped,
            "not configured",
        );
    };
    let Some(user) = ctx.user.as_deref().filter(|u| !u.trim().is_empty()) else {
        return Check::fail(
            CheckName::Requester,
            "requester_not_given",
            "the requester check needs the CyberArk user (--user)",
        );
    };
    let Some(req) = rec.requester.as_deref().filter(|r| !r.trim().is_empty()) else {
        return Check::fail(
            CheckName::Requester,
            "requester_missing",
            format!(
                "the ticket names no requester in {}",
                rule.fields.join(" / ")
            ),
        );
    };
    let field = rec.requester_field.clone().unwrap_or_default();
    if normalise_user(req, rule.upn_local_part) == normalise_user(user, rule.upn_local_part) {
        Check::new(
            CheckName::Requester,
            CheckVerdict::Pass,
            format!(
                "{field} `{}` is the CyberArk user",
                crate::text::printable(req)
            ),
        )
    } else {
        Check::fail(
            CheckName::Requester,
            "requester_mismatch",
            format!(
                "{field} `{}` is not the CyberArk user `{}`",
                crate::text::printable(req),
                crate::text::printable(user)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ty(system: SystemKind, kind: TicketKind) -> CompiledType {
        CompiledType {
            name: "t".into(),
            system,
            kind,
            pattern: regex::Regex::new("^.*$").expect("re"),
            states: None,
            approvals: None,
            check_window: false,
            requester: None,
        }
    }

    fn ctx(user: Option<&str>) -> Context {
        Context {
            user: user.map(str::to_string),
            at: Utc
                .with_ymd_and_hms(2026, 5, 1, 23, 0, 0)
                .single()
                .expect("time"),
        }
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn allow_list_refuses_every_query_metacharacter() {
        for ok in ["INC0010001", "CHG0030001", "INC000000000430", "RITM-1_2"] {
            assert!(allow_listed(ok), "{ok}");
        }
        for bad in [
            "",
            "INC0010001^NQnumberANYTHING",
            "INC0010001^ORnumber!=x",
            "javascript:gs.getUserID()",
            "INC\"0010001",
            "INC'0010001",
            "INC0010001 OR 1=1",
            "numbr=INC0010001",
            "INC0010001,INC0010002",
            "INC%5E",
            "INC0010001\n",
            "ÍNC0010001",
            &"A".repeat(41),
        ] {
            assert!(!allow_listed(bad), "{bad:?}");
        }
    }

    #[test]
    fn abstract_and_native_states_map_per_system() {
        let sn_chg = compile_states(
            SystemKind::ServiceNow,
            TicketKind::Change,
            &strs(&["assigned", "Implement", "0"]),
        )
        .expect("ok");
        assert_eq!(
            sn_chg.values,
            ["-4", "-2", "-1", "0"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert!(!sn_chg.on_hold_ok);
        let pending = compile_states(
            SystemKind::ServiceNow,
            TicketKind::Change,
            &strs(&["Pending"]),
        )
        .expect("ok");
        assert!(pending.on_hold_ok);
        let sn_inc = compile_states(
            SystemKind::ServiceNow,
            TicketKind::Incident,
            &strs(&["Pending", "Canceled", "101"]),
        )
        .expect("ok");
        assert_eq!(
            sn_inc.values,
            ["3", "4", "5", "8", "101"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        let rm_chg = compile_states(
            SystemKind::Remedy,
            TicketKind::Change,
            &strs(&["native:Pending", "scheduled"]),
        )
        .expect("ok");
        assert_eq!(
            rm_chg.values,
            ["Pending", "Scheduled"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        let rm_abstract =
            compile_states(SystemKind::Remedy, TicketKind::Change, &strs(&["Pending"]))
                .expect("ok");
        assert_eq!(rm_abstract.values.len(), 4);
        for bad in [&["Sheduled"][..], &[][..], &["Active"][..]] {
            assert!(
                compile_states(SystemKind::Remedy, TicketKind::Change, &strs(bad)).is_err(),
                "{bad:?}"
            );
        }
        assert!(
            compile_states(
                SystemKind::ServiceNow,
                TicketKind::Change,
                &strs(&["Sheduled"])
            )
            .is_err()
        );
    }

    #[test]
    fn approvals_map_per_system() {
        let sn = compile_approvals(SystemKind::ServiceNow, &strs(&["Approved", "not_required"]))
            .expect("ok");
        assert_eq!(
            sn.values,
            ["approved", "not_required"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        let rm = compile_approvals(SystemKind::Remedy, &strs(&["approved"])).expect("ok");
        assert!(rm.values.contains("Scheduled") && rm.values.contains("Closed"));
        assert!(!rm.values.contains("Pending"));
        assert!(compile_approvals(SystemKind::ServiceNow, &strs(&["Approved^NQ"])).is_err());
        assert!(compile_approvals(SystemKind::Remedy, &strs(&["Yes"])).is_err());
    }

    #[test]
    fn state_check_passes_fails_and_respects_hold() {
        let mut t = ty(SystemKind::ServiceNow, TicketKind::Change);
        t.states = Some(
            compile_states(t.system, t.kind, &strs(&["Assigned", "In Progress"])).expect("ok"),
        );
        let mut rec = TicketRecord {
            number: "CHG0030001".into(),
            state: Some("-2".into()),
            ..Default::default()
        };
        let c = check_state(&t, &rec);
        assert_eq!(c.verdict, CheckVerdict::Pass, "{c:?}");
        assert!(c.detail.contains("Scheduled (-2)"), "{}", c.detail);
        rec.on_hold = Some(true);
        assert_eq!(check_state(&t, &rec).reason, Some("state_not_allowed"));
        rec.on_hold = Some(false);
        rec.state = Some("3".into());
        assert_eq!(check_state(&t, &rec).reason, Some("state_not_allowed"));
        rec.state = None;
        assert_eq!(check_state(&t, &rec).reason, Some("state_missing"));
        t.states = None;
        assert_eq!(check_state(&t, &rec).verdict, CheckVerdict::Skipped);
    }

    #[test]
    fn remedy_approval_is_read_from_status() {
        let mut t = ty(SystemKind::Remedy, TicketKind::Change);
        t.approvals = Some(compile_approvals(t.system, &strs(&["Approved"])).expect("ok"));
        let mut rec = TicketRecord {
            state: Some("Scheduled".into()),
            ..Default::default()
        };
        assert_eq!(check_approval(&t, &rec).verdict, CheckVerdict::Pass);
        for s in [
            "Scheduled For Approval",
            "Pending",
            "Cancelled",
            "Rejected",
            "Draft",
            "scheduled",
        ] {
            rec.state = Some(s.into());
            assert_eq!(
                check_approval(&t, &rec).reason,
                Some("approval_not_allowed"),
                "{s}"
            );
        }
    }

    #[test]
    fn sn_approval_unknown_value_fails_closed() {
        let mut t = ty(SystemKind::ServiceNow, TicketKind::Change);
        t.approvals = Some(compile_approvals(t.system, &strs(&["Approved"])).expect("ok"));
        let mut rec = TicketRecord {
            approval: Some("approved".into()),
            ..Default::default()
        };
        assert_eq!(check_approval(&t, &rec).verdict, CheckVerdict::Pass);
        for a in ["requested", "cancelled", "Approved", ""] {
            rec.approval = Some(a.into());
            assert_eq!(check_approval(&t, &rec).verdict, CheckVerdict::Fail, "{a}");
        }
        rec.approval = None;
        assert_eq!(check_approval(&t, &rec).reason, Some("approval_missing"));
    }

    #[test]
    fn window_bounds_zones_and_skew() {
        let mut t = ty(SystemKind::ServiceNow, TicketKind::Change);
        t.check_window = true;
        let skew = chrono::Duration::seconds(60);
        let rec = |s: Option<&str>, e: Option<&str>| TicketRecord {
            start: s.map(str::to_string),
            end: e.map(str::to_string),
            ..Default::default()
        };
        // at = 2026-05-01 23:00:00 UTC
        let c = check_window(
            &t,
            &rec(Some("2026-05-01 22:00:00"), Some("2026-05-02 02:00:00")),
            &ctx(None),
            skew,
        );
        assert_eq!(c.verdict, CheckVerdict::Pass, "{c:?}");
        let c = check_window(
            &t,
            &rec(Some("2026-05-01 23:00:30"), Some("2026-05-02 02:00:00")),
            &ctx(None),
            skew,
        );
        assert_eq!(c.verdict, CheckVerdict::Pass, "within skew: {c:?}");
        let c = check_window(
            &t,
            &rec(Some("2026-05-01 23:02:00"), Some("2026-05-02 02:00:00")),
            &ctx(None),
            skew,
        );
        assert_eq!(c.reason, Some("window_not_started"));
        let c = check_window(
            &t,
            &rec(Some("2026-05-01 20:00:00"), Some("2026-05-01 22:58:00")),
            &ctx(None),
            skew,
        );
        assert_eq!(c.reason, Some("window_ended"));
        let c = check_window(
            &t,
            &rec(Some("2026-05-01 20:00:00"), None),
            &ctx(None),
            skew,
        );
        assert_eq!(c.reason, Some("window_missing"));
        let c = check_window(
            &t,
            &rec(Some(""), Some("2026-05-01 22:58:00")),
            &ctx(None),
            skew,
        );
        assert_eq!(c.reason, Some("window_missing"));
        let c = check_window(
            &t,
            &rec(Some("01/05/2026 22:00"), Some("2026-05-02 02:00:00")),
            &ctx(None),
            skew,
        );
        assert_eq!(c.reason, Some("window_unreadable"));
        let c = check_window(
            &t,
            &rec(Some("2026-05-02 02:00:00"), Some("2026-05-01 22:00:00")),
            &ctx(None),
            skew,
        );
        assert_eq!(c.reason, Some("window_invalid"));
        // Remedy: offsets are honoured. 2026-05-02T01:30+0200 = 23:30Z.
        t.system = SystemKind::Remedy;
        let c = check_window(
            &t,
            &rec(
                Some("2026-05-02T01:30:00.000+0200"),
                Some("2026-05-02T04:00:00+02:00"),
            ),
            &ctx(None),
            skew,
        );
        assert_eq!(c.reason, Some("window_not_started"), "{c:?}");
        let c = check_window(
            &t,
            &rec(
                Some("2026-05-01T22:00:00.000+0000"),
                Some("2026-05-02T02:00:00.000+0000"),
            ),
            &ctx(None),
            skew,
        );
        assert_eq!(c.verdict, CheckVerdict::Pass, "{c:?}");
        // A Remedy time without zone is not guessed.
        let c = check_window(
            &t,
            &rec(
                Some("2026-05-01T22:00:00"),
                Some("2026-05-02T02:00:00.000+0000"),
            ),
            &ctx(None),
            skew,
        );
        assert_eq!(c.reason, Some("window_unreadable"));
    }

    #[test]
    fn requester_comparison() {
        assert_eq!(normalise_user(" CORP\\Alice ", false), "alice");
        assert_eq!(
            normalise_user("alice@corp.example", false),
            "alice@corp.example"
        );
        assert_eq!(normalise_user("alice@corp.example", true), "alice");
        let rule = RequesterRule {
            fields: vec!["caller_id.user_name".into()],
            upn_local_part: false,
        };
        let rec = TicketRecord {
            requester: Some("Alice".into()),
            requester_field: Some("caller_id.user_name".into()),
            ..Default::default()
        };
        assert_eq!(
            check_requester(Some(&rule), &rec, &ctx(Some("CORP\\alice"))).verdict,
            CheckVerdict::Pass
        );
        assert_eq!(
            check_requester(Some(&rule), &rec, &ctx(Some("bob"))).reason,
            Some("requester_mismatch")
        );
        assert_eq!(
            check_requester(Some(&rule), &rec, &ctx(Some("alicex"))).reason,
            Some("requester_mismatch")
        );
        assert_eq!(
            check_requester(Some(&rule), &rec, &ctx(None)).reason,
            Some("requester_not_given")
        );
        let empty = TicketRecord::default();
        assert_eq!(
            check_requester(Some(&rule), &empty, &ctx(Some("alice"))).reason,
            Some("requester_missing")
        );
        assert_eq!(
            check_requester(None, &empty, &ctx(None)).verdict,
            CheckVerdict::Skipped
        );
    }
}

//! The approval decision, as a pure function over the facts gathered for one mail.
//!
//! Everything here comes from PVWA and the directory except what the mail itself claims (its
//! request id, safe and requester), and those claims are only compared with PVWA's truth: an
//! edited forward is refused, never believed. The first failing check decides; each has a
//! stable reason code and a sentence for the forwarder.

use serde::Serialize;

use crate::pvwa::model::{Confirmer, Request};

/// A refusal: a stable code (for logs, JSON and tests) and a sentence a person understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// What the mail claims (already parsed and its sender verified).
#[derive(Debug, Clone)]
pub struct MailClaims<'a> {
    pub request_id: &'a str,
    pub safe: &'a str,
    /// The requester named in the notification (`Requester email:`), when present.
    pub requester: Option<&'a str>,
    /// The verified forwarder's address.
    pub forwarder: &'a str,
}

/// The directory's answer for the forwarder at the request's current level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Approver {
    /// May approve at `level`, through `group`, reached by `path` (user -> ... -> group).
    Granted {
        level: u8,
        group: String,
        path: Vec<String>,
    },
    /// May not; the reason says why (no matching group, disabled account, ...).
    Denied { reason: String },
}

/// The ticket check, when the request's safe needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketCheck {
    NotRequired,
    Valid { summary: String },
    Invalid { code: String, message: String },
}

/// A mail this tool confirmed (or is confirming) on the same request, from the journal: the
/// record of whom the tool acted for, whatever PVWA's confirmer reasons say now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolActed {
    pub level: u8,
    /// The forwarder of that mail.
    pub forwarder: String,
    /// Their identities and person key, in lower case.
    pub identities: Vec<String>,
}

/// A direct PVWA right of the forwarder on the request's safe: a safe member (the user, or a
/// directory group they are in) with `requestsAuthorizationLevel<level>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalRight {
    pub level: u8,
    /// The safe member that holds it.
    pub member: String,
}

/// What is known about the forwarder's own PVWA rights for the confirmations the request still
/// needs after this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalRights {
    /// Not looked at: the request needs nothing after this confirmation, or the configuration
    /// asserts that mail approvers hold no portal right (`[watcher] portal_rights`).
    NotChecked,
    /// The rights found (none: empty).
    Known(Vec<PortalRight>),
    /// They could not be read (why); the mail is refused.
    Unknown(String),
}

/// Everything the decision needs.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub mail: MailClaims<'a>,
    /// Every identity of the forwarder from the directory (sAMAccountName, UPN, mail, aliases).
    pub forwarder_identities: &'a [String],
    /// The request as PVWA has it now.
    pub request: &'a Request,
    /// The directory's verdict for the request's current level.
    pub approver: &'a Approver,
    /// User name of the service account that would confirm at the current level.
    pub level_account: &'a str,
    /// The reason this tool writes with a confirm (`{forwarder}`, `{marker}`): how a
    /// confirmation given through a service account is traced back to the person.
    pub reason_template: &'a str,
    pub ticket: &'a TicketCheck,
    /// Unix seconds.
    pub now: i64,
    /// This tool's own PVWA accounts (level 1, level 2, lookup): only their confirmations are
    /// read for this tool's reason trace.
    pub service_accounts: &'a [String],
    /// What this tool already confirmed on the request, and for whom (the journal).
    pub tool_acted: &'a [ToolActed],
    /// The forwarder's own PVWA rights for what the request still needs.
    pub portal: &'a PortalRights,
    /// The request's requester (`RequestorUserName`) as the directory knows them.
    pub requester: &'a RequesterIdentity,
    /// The e-mail addresses PVWA holds for the requester's vault user (`GET /API/Users`):
    /// empty when it has none or they were not read. They serve the requester comparison only,
    /// never the forwarder's identities.
    pub requester_vault_emails: &'a [String],
}

/// The request's requester resolved through the directory, as the forwarder is: PVWA names
/// them by their vault user name (often the `sAMAccountName`, `lfischer`), the notification by
/// their mail address (`lena.fischer@…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequesterIdentity {
    /// Not looked up (the mail names no requester).
    NotLookedUp,
    /// One directory person: the account's (and, with `person_attribute`, the person's other
    /// accounts') names and addresses.
    Known(Vec<String>),
    /// The directory does not resolve the user name to one person: why.
    Unknown(String),
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Decision {
    Approve { level: u8, group: String },
    Refuse(Refusal),
}

/// Whether a user name from PVWA names one of `identities`: [`crate::person::is_one_of`], the
/// one "same person" rule.
pub fn is_same_person(pvwa_user: &str, identities: &[String]) -> bool {
    crate::person::is_one_of(pvwa_user, identities)
}

/// Whether the mail's requester address `claimed` belongs to PVWA's requester `pvwa_user`: its
/// local part is the user name, or it is one of the addresses the directory holds for them
/// (`directory`), or one of the e-mail addresses the vault holds for that user (`vault_emails`).
/// Whole addresses are compared, in any case.
pub fn requester_matches(
    claimed: &str,
    pvwa_user: &str,
    directory: &RequesterIdentity,
    vault_emails: &[String],
) -> bool {
    let claimed = claimed.trim();
    if claimed.is_empty() {
        return false;
    }
    let same = |i: &String| i.trim().eq_ignore_ascii_case(claimed);
    crate::person::address_of_user(claimed, pvwa_user)
        || matches!(directory, RequesterIdentity::Known(ids) if ids.iter().any(same))
        || vault_emails.iter().any(same)
}

/// " (the vault's e-mail: a, b)" for the e-mail addresses the vault holds for the requester,
/// when it has any.
fn vault_text(vault: &[&str]) -> String {
    if vault.is_empty() {
        String::new()
    } else {
        format!(" (the vault's e-mail: {})", vault.join(", "))
    }
}

fn why_text(r: &RequesterIdentity) -> Option<&str> {
    match r {
        RequesterIdentity::Unknown(w) => Some(w.as_str()),
        _ => None,
    }
}

/// Decide. Pure: no I/O, no clock.
pub fn decide(f: &Facts<'_>) -> Decision {
    let r = f.request;
    let refuse = |code, msg: String| Decision::Refuse(Refusal::new(code, msg));

    if r.request_id != f.mail.request_id {
        return refuse(
            "request_mismatch",
            format!(
                "PVWA answered for request {} when asked for {}; nothing was approved.",
                r.request_id, f.mail.request_id
            ),
        );
    }
    if !r.safe_name.eq_ignore_ascii_case(f.mail.safe) {
        return refuse(
            "safe_mismatch",
            format!(
                "The mail names safe {}, but request {} is for safe {}: the forward looks edited.",
                f.mail.safe, r.request_id, r.safe_name
            ),
        );
    }
    let mut me: Vec<String> = f.forwarder_identities.to_vec();
    me.push(f.mail.forwarder.to_string());
    if is_same_person(&r.requestor_user_name, &me) {
        return refuse(
            "self_approval",
            format!(
                "You ({}) made request {} yourself; a request needs someone else's approval.",
                f.mail.forwarder, r.request_id
            ),
        );
    }
    // The mail's requester address must belong to the person who made the request: one of
    // the addresses the directory knows for PVWA's requester, one of the e-mail addresses the
    // vault holds for that user, or (as before) the address whose local part is PVWA's user
    // name.
    if let Some(claimed) = f.mail.requester.filter(|c| !c.trim().is_empty()) {
        let matched = requester_matches(
            claimed,
            &r.requestor_user_name,
            f.requester,
            f.requester_vault_emails,
        );
        let vault: Vec<&str> = f
            .requester_vault_emails
            .iter()
            .map(String::as_str)
            .take(3)
            .collect();
        match f.requester {
            // The vault holds one of the forwarder's own addresses for the requester: the
            // same person (fail closed; never the other way round).
            _ if f.requester_vault_emails.iter().any(|e| {
                e.contains('@') && me.iter().any(|i| i.trim().eq_ignore_ascii_case(e.trim()))
            }) =>
            {
                return refuse(
                    "self_approval",
                    format!(
                        "You ({}) made request {} yourself (the vault holds your address for its requester {}); a request needs someone else's approval.",
                        f.mail.forwarder, r.request_id, r.requestor_user_name
                    ),
                );
            }
            _ if matched => {}
            RequesterIdentity::Known(ids) => {
                let known: Vec<&str> = ids
                    .iter()
                    .map(String::as_str)
                    .filter(|i| i.contains('@'))
                    .take(4)
                    .collect();
                return refuse(
                    "requester_mismatch",
                    format!(
                        "The mail names {} as requester, but request {} was made by PVWA user {}, whom the directory knows as {}{}: the mail names someone else, so it is not this request's notification as sent; nothing was approved.",
                        claimed,
                        r.request_id,
                        r.requestor_user_name,
                        if known.is_empty() {
                            "an account without a mail address".to_string()
                        } else {
                            known.join(", ")
                        },
                        vault_text(&vault)
                    ),
                );
            }
            RequesterIdentity::Unknown(_) | RequesterIdentity::NotLookedUp => {
                let why = why_text(f.requester).unwrap_or("it was not looked up");
                return refuse(
                    "requester_unresolved",
                    format!(
                        "The mail names {} as requester and PVWA says request {} was made by {}{}, but the directory does not resolve that PVWA user to a person ({}), so the two cannot be matched; nothing was approved. This is a fact of the site, not your doing, and the PAM team is copied: the directory ([directory] base_dn, user accounts by sAMAccountName or userPrincipalName) must know the vault user, or the requester check is switched off with [notice.labels] requester = [] (docs/notice-and-sender.md).",
                        claimed,
                        r.request_id,
                        r.requestor_user_name,
                        vault_text(&vault),
                        why
                    ),
                );
            }
        }
    }
    if let Some(refusal) = not_waiting(r, f.now) {
        return Decision::Refuse(refusal);
    }
    if let Some(c) = confirmed_by_person(r, &me, f.reason_template, f.service_accounts) {
        return refuse(
            "already_confirmed_by_you",
            format!(
                "You ({}) already acted on request {} ({}); Dual Control needs another person's approval, and one person counts once.",
                f.mail.forwarder,
                r.request_id,
                confirmer_text(c)
            ),
        );
    }
    if let Some(a) = acted_for_me(f.tool_acted, &me) {
        return refuse(
            "already_confirmed_by_you",
            format!(
                "You ({}) already approved request {} by mail (level {}, forwarded by {}); Dual Control needs another person's approval, and one person counts once.",
                f.mail.forwarder, r.request_id, a.level, a.forwarder
            ),
        );
    }
    let level = match r.current_confirmation_level {
        1 => 1u8,
        2 => 2u8,
        other => {
            return refuse(
                "unknown_level",
                format!(
                    "Request {} is at confirmation level {other}, which this tool does not handle.",
                    r.request_id
                ),
            );
        }
    };
    let group = match f.approver {
        Approver::Granted {
            level: l, group, ..
        } if *l == level => group.clone(),
        Approver::Granted { level: l, .. } => {
            return refuse(
                "not_an_approver",
                format!(
                    "Request {} waits at level {level}; you approve safe {} at level {l} only.",
                    r.request_id, r.safe_name
                ),
            );
        }
        Approver::Denied { reason } => {
            return refuse(
                "not_an_approver",
                format!(
                    "You are not an approver of safe {} at level {level}: {reason}.",
                    r.safe_name
                ),
            );
        }
    };
    if is_same_person(&r.requestor_user_name, &[f.level_account.to_string()]) {
        return refuse(
            "level_account_is_requester",
            format!(
                "The level-{level} service account made request {} itself and cannot confirm it.",
                r.request_id
            ),
        );
    }
    if acted_at_current_level(r, f.level_account) {
        return refuse(
            "already_confirmed",
            format!(
                "Request {} was already confirmed by this tool's level-{level} account; it needs another approver.",
                r.request_id
            ),
        );
    }
    match f.portal {
        PortalRights::NotChecked => {}
        PortalRights::Unknown(why) => {
            return refuse(
                "portal_rights_unknown",
                format!(
                    "Request {} still needs a confirmation after this one, and whether you hold a PVWA right for it yourself could not be read ({why}); nothing was approved. Confirm it in the PVWA portal, or ask the PAM team.",
                    r.request_id
                ),
            );
        }
        PortalRights::Known(rights) => {
            if let Some((right, what)) = still_needed_by_you(r, level, rights) {
                return refuse(
                    "use_the_portal",
                    format!(
                        "You hold a PVWA right of your own on safe {} ({} at level {}), and request {} still needs {what} after this one: an approval by mail and another in the portal would count you twice. Confirm the request in the PVWA portal instead.",
                        r.safe_name, right.member, right.level, r.request_id
                    ),
                );
            }
        }
    }
    match f.ticket {
        TicketCheck::Invalid { code, message } => {
            return refuse(
                "ticket_invalid",
                format!("The request's ticket does not hold ({code}): {message}"),
            );
        }
        TicketCheck::NotRequired | TicketCheck::Valid { .. } => {}
    }
    Decision::Approve { level, group }
}

/// PVWA's `Status` for a request waiting for confirmations, the one value known for sure
/// (`reference/pvwa.md` §9: `1` with "Waiting: N more user(s) must confirm the request"). Any
/// other value is treated as not waiting: the enumeration is not documented, so fail closed.
pub const STATUS_WAITING: i64 = 1;

/// Why request `r` is no longer waiting for a confirmation at `now` (Unix seconds), or `None`
/// while it waits: PVWA marks it invalid, it has expired, or its `Status` is not
/// [`STATUS_WAITING`] or it needs no more confirmations. The one definition of "still waiting",
/// for the decision and for settling a confirm whose outcome is unknown.
pub fn not_waiting(r: &Request, now: i64) -> Option<Refusal> {
    // Expiry first, from the documented `ExpirationDate` (Unix seconds, pvwa.md §9): whatever
    // PVWA writes in `Status` or `InvalidRequestReason` for an expired request (unpublished), it
    // is refused as expired.
    if r.expiration_date != 0 && r.expiration_date <= now {
        return Some(Refusal::new(
            "expired",
            format!(
                "Request {} has expired; the requester must raise a new one.",
                r.request_id
            ),
        ));
    }
    if r.invalid_request_reason != 0 {
        return Some(Refusal::new(
            "request_invalid",
            format!(
                "PVWA marks request {} as invalid ({}); it can no longer be approved.",
                r.request_id,
                title_or(r)
            ),
        ));
    }
    if r.status != STATUS_WAITING || r.confirmations_left <= 0 {
        return Some(Refusal::new(
            "not_waiting",
            format!(
                "Request {} is not waiting for approval ({}).",
                r.request_id,
                title_or(r)
            ),
        ));
    }
    None
}

/// Whether request `r` still waits for a confirmation at `level` at `now`: [`not_waiting`] has
/// nothing against it and it waits at that level.
pub fn waiting_at(r: &Request, level: u8, now: i64) -> bool {
    not_waiting(r, now).is_none() && r.current_confirmation_level == i64::from(level)
}

/// The first confirmer that acted and is the person `me` names: directly (the confirmer, a
/// listed member or its e-mail detail is one of `me`), or through one of this tool's own
/// accounts (`ours`, by name or as the acting member) whose reason is this tool's reason for
/// one of `me` (`reason_template` with a marker). A reason written by anyone else, whatever it
/// says about whom, is not a trace.
pub fn confirmed_by_person<'r>(
    r: &'r Request,
    me: &[String],
    reason_template: &str,
    ours: &[String],
) -> Option<&'r Confirmer> {
    r.confirmers.iter().filter(|c| c.acted()).find(|c| {
        is_same_person(&c.name, me)
            || c.members.iter().any(|m| is_same_person(&m.user_name, me))
            || c.additional_details
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("email") && is_same_person(v, me))
            || (by_our_account(c, ours) && reason_names(&c.reason, reason_template, me))
    })
}

/// Whether `c` is one of this tool's accounts, or lists one as a member that acted.
fn by_our_account(c: &Confirmer, ours: &[String]) -> bool {
    let ours: Vec<String> = ours
        .iter()
        .filter(|a| !a.trim().is_empty())
        .cloned()
        .collect();
    !ours.is_empty()
        && (is_same_person(&c.name, &ours)
            || c.members
                .iter()
                .any(|m| is_same_person(&m.user_name, &ours)))
}

/// Whether a confirm reason is this tool's reason for one of `me`: `template` with
/// `{forwarder}` set to one of them and `{marker}` a marker this tool writes (hex). Nothing
/// else counts: "not on behalf of bob" or "on behalf of bob" typed by a person is no trace.
pub fn reason_names(reason: &str, template: &str, me: &[String]) -> bool {
    let reason = reason.trim().to_lowercase();
    if reason.is_empty() || !template.contains("{forwarder}") {
        return false;
    }
    let template = template.trim().to_lowercase();
    me.iter()
        .map(|i| i.trim().to_lowercase())
        .filter(|i| !i.is_empty())
        .any(|i| {
            let rendered = template.replace("{forwarder}", &i);
            match rendered.split_once("{marker}") {
                Some((a, b)) => {
                    reason.len() > a.len() + b.len()
                        && reason.starts_with(a)
                        && reason.ends_with(b)
                        && is_marker(&reason[a.len()..reason.len() - b.len()])
                }
                None => reason == rendered,
            }
        })
}

/// A marker as this tool writes it: hex digits (12 today; 8 to 64 accepted).
fn is_marker(s: &str) -> bool {
    (8..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The journal's record of a mail confirmed for one of `me` (identities compared exactly, in
/// lower case: both sides come from the directory).
fn acted_for_me<'a>(acted: &'a [ToolActed], me: &[String]) -> Option<&'a ToolActed> {
    acted
        .iter()
        .find(|a| crate::person::any_same(&a.identities, me))
}

/// A right of the forwarder for a confirmation the request still needs after the one at
/// `level`: a later level (level 2 to come), or more confirmations at this level.
fn still_needed_by_you<'a>(
    r: &Request,
    level: u8,
    rights: &'a [PortalRight],
) -> Option<(&'a PortalRight, String)> {
    rights.iter().find_map(|p| {
        if p.level == level && r.confirmations_left > 1 {
            Some((
                p,
                format!(
                    "{} more confirmation(s) at level {level}",
                    r.confirmations_left - 1
                ),
            ))
        } else if level == 1 && p.level == 2 && r.required_confirmers_count_level2 > 0 {
            Some((p, "the level-2 confirmation".to_string()))
        } else {
            None
        }
    })
}

/// Which levels the request still needs after the confirmation at `level` (for the caller to
/// read the rights of): `level` itself when more than one confirmation is left there, and level
/// 2 when at level 1 with a second level to come.
pub fn levels_still_needed(r: &Request, level: u8) -> Vec<u8> {
    let mut out = Vec::new();
    if r.confirmations_left > 1 {
        out.push(level);
    }
    if level == 1 && r.required_confirmers_count_level2 > 0 {
        out.push(2);
    }
    out
}

/// "confirmed by X at <time>, reason …" for a refusal naming an earlier action.
fn confirmer_text(c: &Confirmer) -> String {
    let when = crate::pvwa::view::Time::from_unix(c.action_date)
        .map(|t| t.utc)
        .unwrap_or_else(|| c.action_date.to_string());
    format!("{} acted at {when}", c.name)
}

/// PVWA does not say at which level a confirmer acted; the level-1 and level-2 accounts differ,
/// so an action of `account` means an action at the level that account serves.
pub fn acted_at_current_level(r: &Request, account: &str) -> bool {
    r.confirmers.iter().filter(|c| c.acted()).any(|c| {
        c.members
            .iter()
            .any(|m| is_same_person(&m.user_name, &[account.to_string()]))
            || is_same_person(&c.name, &[account.to_string()])
    })
}

fn title_or(r: &Request) -> String {
    if r.status_title.is_empty() {
        format!("status {}", r.status)
    } else {
        r.status_title.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pvwa::{Confirmer, ConfirmerMember};

    const NOW: i64 = 1_800_000_000;

    fn request() -> Request {
        Request {
            request_id: "InfraSafe_12".into(),
            safe_name: "InfraSafe".into(),
            requestor_user_name: "alice".into(),
            expiration_date: NOW + 3600,
            confirmations_left: 1,
            current_confirmation_level: 1,
            required_confirmers_count_level2: 1,
            status: 1,
            status_title: "Waiting: 1 more user(s) must confirm the request".into(),
            ..Request::default()
        }
    }

    fn acted(name: &str, reason: &str, members: Vec<&str>) -> Confirmer {
        Confirmer {
            name: name.into(),
            reason: reason.into(),
            action_date: NOW - 120,
            members: members
                .into_iter()
                .map(|m| ConfirmerMember {
                    user_id: 7,
                    user_name: m.into(),
                })
                .collect(),
            ..Confirmer::default()
        }
    }

    /// The request now waits at level 2; the level-1 account confirmed it by mail for `who`.
    fn confirmed_at_level_1_for(
        r: &mut Request,
        a: &mut Approver,
        m: &mut MailOverride,
        who: &str,
    ) {
        r.current_confirmation_level = 2;
        *a = granted(2);
        m.account = Some("svc_pam_level2");
        r.confirmers = vec![acted(
            "svc_pam_level1",
            &format!("Approved on behalf of {who} by mail [ref 0a1b2c3d4e5f]"),
            vec![],
        )];
    }

    fn granted(level: u8) -> Approver {
        Approver::Granted {
            level,
            group: "PAM_Infra_Approvers".into(),
            path: vec!["bob".into(), "PAM_Infra_Approvers".into()],
        }
    }

    struct Case {
        name: &'static str,
        edit:
            fn(&mut Request, &mut Vec<String>, &mut Approver, &mut TicketCheck, &mut MailOverride),
        want: Result<u8, &'static str>,
    }

    #[derive(Default)]
    struct MailOverride {
        safe: Option<&'static str>,
        requester: Option<Option<&'static str>>,
        id: Option<&'static str>,
        forwarder: Option<&'static str>,
        account: Option<&'static str>,
        portal: Option<PortalRights>,
        acted: Vec<ToolActed>,
        requester_ids: Option<RequesterIdentity>,
        vault_emails: Vec<&'static str>,
    }

    fn run(c: &Case) -> Decision {
        let mut r = request();
        let mut ids = vec![
            "bob".to_string(),
            "bob@example.test".to_string(),
            "CORP\\bob".to_string(),
        ];
        let mut appr = granted(1);
        let mut ticket = TicketCheck::NotRequired;
        let mut m = MailOverride::default();
        (c.edit)(&mut r, &mut ids, &mut appr, &mut ticket, &mut m);
        let vault: Vec<String> = m.vault_emails.iter().map(|e| e.to_string()).collect();
        let f = Facts {
            mail: MailClaims {
                request_id: m.id.unwrap_or("InfraSafe_12"),
                safe: m.safe.unwrap_or("InfraSafe"),
                requester: m.requester.unwrap_or(Some("alice@example.test")),
                forwarder: m.forwarder.unwrap_or("bob@example.test"),
            },
            forwarder_identities: &ids,
            request: &r,
            approver: &appr,
            level_account: m.account.unwrap_or("svc_pam_level1"),
            reason_template: "Approved on behalf of {forwarder} by mail [ref {marker}]",
            ticket: &ticket,
            now: NOW,
            service_accounts: &[
                "svc_pam_level1".to_string(),
                "svc_pam_level2".to_string(),
                "svc_pam_lookup".to_string(),
            ],
            tool_acted: &m.acted,
            portal: m.portal.as_ref().unwrap_or(&PortalRights::NotChecked),
            requester: m
                .requester_ids
                .as_ref()
                .unwrap_or(&RequesterIdentity::NotLookedUp),
            requester_vault_emails: &vault,
        };
        decide(&f)
    }

    #[test]
    fn the_decision_table() {
        let cases = [
            Case {
                name: "approvable at level 1",
                edit: |_, _, _, _, _| {},
                want: Ok(1),
            },
            Case {
                name: "approvable at level 2",
                edit: |r, _, a, _, m| {
                    r.current_confirmation_level = 2;
                    *a = granted(2);
                    m.account = Some("svc_pam_level2");
                },
                want: Ok(2),
            },
            Case {
                name: "requester without mail requester line",
                edit: |_, _, _, _, m| m.requester = Some(None),
                want: Ok(1),
            },
            Case {
                name: "self approval by user name",
                edit: |r, _, _, _, _| r.requestor_user_name = "BOB".into(),
                want: Err("self_approval"),
            },
            Case {
                name: "self approval by domain name",
                edit: |r, _, _, _, _| r.requestor_user_name = "corp\\Bob".into(),
                want: Err("self_approval"),
            },
            Case {
                name: "self approval by UPN",
                edit: |r, i, _, _, m| {
                    r.requestor_user_name = "bob@corp.local".into();
                    i.push("bob@corp.local".into());
                    m.requester = Some(Some("bob@corp.local"));
                },
                want: Err("self_approval"),
            },
            Case {
                name: "edited safe",
                edit: |_, _, _, _, m| m.safe = Some("DBSafe"),
                want: Err("safe_mismatch"),
            },
            Case {
                name: "edited requester: the directory knows the requester as someone else",
                edit: |_, _, _, _, m| {
                    m.requester = Some(Some("mallory@example.test"));
                    m.requester_ids = Some(RequesterIdentity::Known(vec![
                        "CN=Alice,OU=Users,DC=example,DC=test".into(),
                        "alice".into(),
                        "alice@example.test".into(),
                    ]));
                },
                want: Err("requester_mismatch"),
            },
            Case {
                name: "requester the directory does not resolve, address not the PVWA name",
                edit: |_, _, _, _, m| {
                    m.requester = Some(Some("mallory@example.test"));
                    m.requester_ids = Some(RequesterIdentity::Unknown(
                        "no directory account is named alice".into(),
                    ));
                },
                want: Err("requester_unresolved"),
            },
            Case {
                name: "requester not looked up, address not the PVWA name",
                edit: |_, _, _, _, m| m.requester = Some(Some("mallory@example.test")),
                want: Err("requester_unresolved"),
            },
            Case {
                name: "requester's account name is not their mail's local part (lfischer)",
                edit: |r, _, _, _, m| {
                    r.requestor_user_name = "lfischer".into();
                    m.requester = Some(Some("Lena.Fischer@example.test"));
                    m.requester_ids = Some(RequesterIdentity::Known(vec![
                        "lfischer".into(),
                        "lena.fischer@example.test".into(),
                    ]));
                },
                want: Ok(1),
            },
            Case {
                name: "requester lfischer, the mail names another person of the directory",
                edit: |r, _, _, _, m| {
                    r.requestor_user_name = "lfischer".into();
                    m.requester = Some(Some("carol@example.test"));
                    m.requester_ids = Some(RequesterIdentity::Known(vec![
                        "lfischer".into(),
                        "lena.fischer@example.test".into(),
                    ]));
                },
                want: Err("requester_mismatch"),
            },
            Case {
                name: "requester the directory does not resolve, the vault's e-mail is the mail's",
                edit: |r, _, _, _, m| {
                    r.requestor_user_name = "hvogel".into();
                    m.requester = Some(Some(" Hanna.Vogel@Example.test "));
                    m.requester_ids = Some(RequesterIdentity::Unknown(
                        "no enabled directory account is named hvogel".into(),
                    ));
                    m.vault_emails = vec!["h.private@example.test", "hanna.vogel@example.test"];
                },
                want: Ok(1),
            },
            Case {
                name: "requester the directory does not resolve, the vault's e-mail differs",
                edit: |r, _, _, _, m| {
                    r.requestor_user_name = "hvogel".into();
                    m.requester = Some(Some("mallory@example.test"));
                    m.requester_ids = Some(RequesterIdentity::Unknown(
                        "no enabled directory account is named hvogel".into(),
                    ));
                    m.vault_emails = vec!["hanna.vogel@example.test"];
                },
                want: Err("requester_unresolved"),
            },
            Case {
                name: "the directory knows the requester, the vault's e-mail is the mail's",
                edit: |r, _, _, _, m| {
                    r.requestor_user_name = "lfischer".into();
                    m.requester = Some(Some("lena@private.example"));
                    m.requester_ids = Some(RequesterIdentity::Known(vec![
                        "lfischer".into(),
                        "lena.fischer@example.test".into(),
                    ]));
                    m.vault_emails = vec!["lena@private.example"];
                },
                want: Ok(1),
            },
            Case {
                name: "neither the directory's nor the vault's address is the mail's",
                edit: |r, _, _, _, m| {
                    r.requestor_user_name = "lfischer".into();
                    m.requester = Some(Some("carol@example.test"));
                    m.requester_ids = Some(RequesterIdentity::Known(vec![
                        "lfischer".into(),
                        "lena.fischer@example.test".into(),
                    ]));
                    m.vault_emails = vec!["lena@private.example"];
                },
                want: Err("requester_mismatch"),
            },
            Case {
                name: "the vault holds the forwarder's address for the requester: one person",
                edit: |r, _, _, _, m| {
                    r.requestor_user_name = "hvogel".into();
                    m.requester = Some(Some("hanna.vogel@example.test"));
                    m.requester_ids = Some(RequesterIdentity::Unknown("none".into()));
                    m.vault_emails = vec!["hanna.vogel@example.test", "BOB@example.test"];
                },
                want: Err("self_approval"),
            },
            Case {
                name: "another id answered",
                edit: |r, _, _, _, _| r.request_id = "InfraSafe_13".into(),
                want: Err("request_mismatch"),
            },
            Case {
                name: "expired",
                edit: |r, _, _, _, _| r.expiration_date = NOW - 1,
                want: Err("expired"),
            },
            Case {
                name: "fully confirmed",
                edit: |r, _, _, _, _| {
                    r.confirmations_left = 0;
                    r.status_title = "Confirmed".into();
                },
                want: Err("not_waiting"),
            },
            Case {
                name: "status other than waiting, confirmations left",
                edit: |r, _, _, _, _| {
                    r.status = 2;
                    r.status_title = "Confirmed".into();
                },
                want: Err("not_waiting"),
            },
            Case {
                name: "already_confirmed_by_you: confirmed in the portal, forwards for a second",
                edit: |r, _, _, _, _| {
                    r.confirmers = vec![acted("CORP\\Bob", "", vec![])];
                },
                want: Err("already_confirmed_by_you"),
            },
            Case {
                name: "already_confirmed_by_you: as a member of a group confirmer",
                edit: |r, _, _, _, _| {
                    r.confirmers = vec![acted("PAM_Infra_Approvers", "", vec!["bob@example.test"])];
                },
                want: Err("already_confirmed_by_you"),
            },
            Case {
                name: "already_confirmed_by_you: level 1 by mail, now forwards at level 2",
                edit: |r, _, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "BOB@example.test");
                },
                want: Err("already_confirmed_by_you"),
            },
            Case {
                name: "already_confirmed_by_you: through an alias, this tool's reason",
                edit: |r, i, _, _, _| {
                    i.push("robert@example.test".into());
                    r.confirmers = vec![acted(
                        "svc_pam_level1",
                        "Approved on behalf of Robert@example.test by mail [ref 00ff00ff00ff]",
                        vec![],
                    )];
                },
                want: Err("already_confirmed_by_you"),
            },
            Case {
                name: "already_confirmed_by_you: this tool's account acting through a group",
                edit: |r, _, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "bob@example.test");
                    r.confirmers[0].name = "PAM_Approvers_L1".into();
                    r.confirmers[0].members = vec![ConfirmerMember {
                        user_id: 3,
                        user_name: "svc_pam_level1".into(),
                    }];
                },
                want: Err("already_confirmed_by_you"),
            },
            Case {
                name: "already_confirmed_by_you: the journal, whatever PVWA's reasons say now",
                edit: |r, _, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "bob@example.test");
                    // A colleague's portal confirm through the same group replaced the reason.
                    r.confirmers = vec![acted(
                        "PAM_Approvers_L1",
                        "fine by me",
                        vec!["svc_pam_level1", "carol"],
                    )];
                    m.acted = vec![ToolActed {
                        level: 1,
                        forwarder: "bob@example.test".into(),
                        identities: vec!["bob".into(), "bob@example.test".into()],
                    }];
                },
                want: Err("already_confirmed_by_you"),
            },
            Case {
                name: "the journal: another person's mail does not block",
                edit: |r, _, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "alice@example.test");
                    m.acted = vec![ToolActed {
                        level: 1,
                        forwarder: "alice@example.test".into(),
                        identities: vec!["alice".into(), "alice@example.test".into()],
                    }];
                },
                want: Ok(2),
            },
            Case {
                name: "the journal: the person key links a second account",
                edit: |r, i, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "bob.adm@example.test");
                    i.push("person:employeeid=e1001".into());
                    m.acted = vec![ToolActed {
                        level: 1,
                        forwarder: "bob.adm@example.test".into(),
                        identities: vec![
                            "bob.adm".into(),
                            "bob.adm@example.test".into(),
                            "person:employeeid=e1001".into(),
                        ],
                    }];
                },
                want: Err("already_confirmed_by_you"),
            },
            Case {
                name: "already_confirmed_by_you: a portal login whose email detail is an alias",
                edit: |r, i, _, _, _| {
                    i.push("robert.smith@example.test".into());
                    let mut c = acted("u12345@tenant", "", vec![]);
                    c.additional_details
                        .insert("Email".into(), "Robert.Smith@example.test".into());
                    r.confirmers = vec![c];
                },
                want: Err("already_confirmed_by_you"),
            },
            Case {
                name: "an Identity login without an email detail cannot be linked",
                edit: |r, _, _, _, _| {
                    r.confirmers = vec![acted("u12345@tenant", "", vec![])];
                },
                want: Ok(1),
            },
            Case {
                name: "false positive: a person's reason saying not on behalf of bob",
                edit: |r, _, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "alice@example.test");
                    r.confirmers =
                        vec![acted("alice", "not on behalf of bob@example.test", vec![])];
                },
                want: Ok(2),
            },
            Case {
                name: "false positive: a person typing this tool's wording",
                edit: |r, _, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "alice@example.test");
                    r.confirmers = vec![acted(
                        "PAM_Infra_Approvers",
                        "Approved on behalf of bob@example.test by mail [ref 0a1b2c3d4e5f]",
                        vec!["carol"],
                    )];
                },
                want: Ok(2),
            },
            Case {
                name: "false positive: this tool's account with a reason not its own",
                edit: |r, _, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "alice@example.test");
                    r.confirmers = vec![acted(
                        "svc_pam_level1",
                        "ok on behalf of bob@example.test",
                        vec![],
                    )];
                },
                want: Ok(2),
            },
            Case {
                name: "false positive: this tool's wording without a marker",
                edit: |r, _, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "alice@example.test");
                    r.confirmers = vec![acted(
                        "svc_pam_level1",
                        "Approved on behalf of bob@example.test by mail [ref not-a-marker]",
                        vec![],
                    )];
                },
                want: Ok(2),
            },
            Case {
                name: "use_the_portal: a level-2 right while at level 1 with level 2 to come",
                edit: |_, _, _, _, m| {
                    m.portal = Some(PortalRights::Known(vec![PortalRight {
                        level: 2,
                        member: "DB_L2@corp".into(),
                    }]));
                },
                want: Err("use_the_portal"),
            },
            Case {
                name: "use_the_portal: a level-1 right while a quorum of two waits at level 1",
                edit: |r, _, _, _, m| {
                    r.confirmations_left = 2;
                    m.portal = Some(PortalRights::Known(vec![PortalRight {
                        level: 1,
                        member: "bob".into(),
                    }]));
                },
                want: Err("use_the_portal"),
            },
            Case {
                name: "no friction: a level-1 right only, the last level-1 confirmation",
                edit: |_, _, _, _, m| {
                    m.portal = Some(PortalRights::Known(vec![PortalRight {
                        level: 1,
                        member: "DB_Team@corp".into(),
                    }]));
                },
                want: Ok(1),
            },
            Case {
                name: "no friction: a level-2 right on a single-level request",
                edit: |r, _, _, _, m| {
                    r.required_confirmers_count_level2 = 0;
                    m.portal = Some(PortalRights::Known(vec![PortalRight {
                        level: 2,
                        member: "DB_L2@corp".into(),
                    }]));
                },
                want: Ok(1),
            },
            Case {
                name: "portal rights unknown: fail closed",
                edit: |_, _, _, _, m| {
                    m.portal = Some(PortalRights::Unknown("403 from PVWA".into()));
                },
                want: Err("portal_rights_unknown"),
            },
            Case {
                name: "someone else confirmed through the service account",
                edit: |r, _, a, _, m| {
                    confirmed_at_level_1_for(r, a, m, "bobby@example.test");
                },
                want: Ok(2),
            },
            Case {
                name: "a confirmer listed but not acted does not count",
                edit: |r, _, _, _, _| {
                    r.confirmers = vec![Confirmer {
                        name: "bob".into(),
                        ..Confirmer::default()
                    }];
                },
                want: Ok(1),
            },
            Case {
                name: "invalid request",
                edit: |r, _, _, _, _| r.invalid_request_reason = 3,
                want: Err("request_invalid"),
            },
            Case {
                // Whatever PVWA writes for an expired request, `ExpirationDate` decides.
                name: "expired, also marked invalid and no longer waiting",
                edit: |r, _, _, _, _| {
                    r.expiration_date = NOW - 1;
                    r.invalid_request_reason = 1;
                    r.status = 4;
                    r.status_title = "Expired".into();
                },
                want: Err("expired"),
            },
            Case {
                name: "odd level",
                edit: |r, _, _, _, _| r.current_confirmation_level = 3,
                want: Err("unknown_level"),
            },
            Case {
                name: "not an approver",
                edit: |_, _, a, _, _| {
                    *a = Approver::Denied {
                        reason: "no approver group of this safe".into(),
                    }
                },
                want: Err("not_an_approver"),
            },
            Case {
                name: "approver at the other level only",
                edit: |r, _, a, _, _| {
                    r.current_confirmation_level = 2;
                    *a = granted(1);
                },
                want: Err("not_an_approver"),
            },
            Case {
                name: "service account is the requester",
                edit: |r, _, _, _, m| {
                    r.requestor_user_name = "svc_pam_level1".into();
                    m.requester = Some(None);
                },
                want: Err("level_account_is_requester"),
            },
            Case {
                name: "service account already acted at this level",
                edit: |r, _, _, _, _| {
                    r.confirmations_left = 1;
                    r.confirmers = vec![Confirmer {
                        name: "PAM_Infra_Approvers".into(),
                        action_date: NOW - 60,
                        members: vec![ConfirmerMember {
                            user_id: 1,
                            user_name: "svc_pam_level1".into(),
                        }],
                        ..Confirmer::default()
                    }];
                },
                want: Err("already_confirmed"),
            },
            Case {
                name: "ticket invalid",
                edit: |_, _, _, t, _| {
                    *t = TicketCheck::Invalid {
                        code: "state".into(),
                        message: "INC0010001 is Closed".into(),
                    }
                },
                want: Err("ticket_invalid"),
            },
            Case {
                name: "ticket valid",
                edit: |_, _, _, t, _| {
                    *t = TicketCheck::Valid {
                        summary: "INC1".into(),
                    }
                },
                want: Ok(1),
            },
        ];
        for c in &cases {
            let got = match run(c) {
                Decision::Approve { level, .. } => Ok(level),
                Decision::Refuse(r) => {
                    assert!(!r.message.is_empty());
                    Err(r.code)
                }
            };
            assert_eq!(got, c.want, "case: {}", c.name);
        }
    }

    #[test]
    fn reason_trace_needs_this_tools_template_and_a_marker() {
        let t = "Approved on behalf of {forwarder} by mail [ref {marker}]";
        let me = vec!["bob@example.test".to_string()];
        assert!(reason_names(
            "Approved on behalf of bob@example.test by mail [ref 0a1b2c3d4e5f]",
            t,
            &me
        ));
        for other in [
            "not on behalf of bob@example.test",
            "ok on behalf of bob@example.test.",
            "Approved on behalf of bob@example.test by mail [ref ]",
            "Approved on behalf of bob@example.test by mail [ref zzzzzzzzzzzz]",
            "Approved on behalf of bobby@example.test by mail [ref 0a1b2c3d4e5f]",
            "",
        ] {
            assert!(!reason_names(other, t, &me), "{other}");
        }
        assert!(!reason_names(
            "Approved on behalf of bob@example.test",
            "Approved by mail",
            &me
        ));
    }

    /// The one "still waiting" rule: what the decision refuses as no longer waiting is what
    /// settling an unknown confirm outcome treats as no longer waiting (Status included).
    #[test]
    fn still_waiting_is_one_rule() {
        let waits = request();
        assert!(not_waiting(&waits, NOW).is_none());
        assert!(waiting_at(&waits, 1, NOW));
        assert!(!waiting_at(&waits, 2, NOW), "another level");
        let mut cases: Vec<(Request, &str)> = Vec::new();
        let mut r = request();
        r.status = 2;
        r.status_title = "Confirmed".into();
        cases.push((r, "not_waiting"));
        let mut r = request();
        r.confirmations_left = 0;
        cases.push((r, "not_waiting"));
        let mut r = request();
        r.invalid_request_reason = 3;
        cases.push((r, "request_invalid"));
        let mut r = request();
        r.expiration_date = NOW;
        cases.push((r, "expired"));
        for (r, code) in cases {
            assert_eq!(not_waiting(&r, NOW).map(|x| x.code), Some(code), "{r:?}");
            assert!(!waiting_at(&r, 1, NOW), "{code}");
        }
    }

    #[test]
    fn levels_still_needed_after_this_confirmation() {
        let mut r = request();
        assert_eq!(levels_still_needed(&r, 1), vec![2]);
        r.confirmations_left = 2;
        assert_eq!(levels_still_needed(&r, 1), vec![1, 2]);
        r.required_confirmers_count_level2 = 0;
        assert_eq!(levels_still_needed(&r, 1), vec![1]);
        r.confirmations_left = 1;
        assert!(levels_still_needed(&r, 1).is_empty());
        r.required_confirmers_count_level2 = 1;
        r.current_confirmation_level = 2;
        assert!(levels_still_needed(&r, 2).is_empty());
    }
}

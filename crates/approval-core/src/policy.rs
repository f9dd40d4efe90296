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
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Decision {
    Approve { level: u8, group: String },
    Refuse(Refusal),
}

/// A user name in comparable form: lower case, `DOMAIN\` stripped.
pub fn norm(s: &str) -> String {
    let s = s.trim();
    let s = s.rsplit_once('\\').map(|(_, u)| u).unwrap_or(s);
    s.to_lowercase()
}

fn local_part(s: &str) -> &str {
    s.split_once('@').map(|(l, _)| l).unwrap_or(s)
}

/// Whether a user name from PVWA names one of `identities` (any case, `DOMAIN\` stripped, a
/// bare name matching the local part of a UPN or address).
pub fn is_same_person(pvwa_user: &str, identities: &[String]) -> bool {
    let p = norm(pvwa_user);
    if p.is_empty() {
        return false;
    }
    identities
        .iter()
        .map(|i| norm(i))
        .filter(|i| !i.is_empty())
        .any(|i| {
            i == p
                || (!p.contains('@') && local_part(&i) == p)
                || (!i.contains('@') && local_part(&p) == i)
        })
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
    if let Some(claimed) = f.mail.requester.filter(|c| !c.trim().is_empty())
        && !is_same_person(&r.requestor_user_name, &[claimed.to_string()])
    {
        return refuse(
            "requester_mismatch",
            format!(
                "The mail names {} as requester, but PVWA says request {} was made by {}: the forward looks edited.",
                claimed, r.request_id, r.requestor_user_name
            ),
        );
    }
    if r.invalid_request_reason != 0 {
        return refuse(
            "request_invalid",
            format!(
                "PVWA marks request {} as invalid ({}); it can no longer be approved.",
                r.request_id,
                title_or(r)
            ),
        );
    }
    if r.expiration_date != 0 && r.expiration_date <= f.now {
        return refuse(
            "expired",
            format!(
                "Request {} has expired; the requester must raise a new one.",
                r.request_id
            ),
        );
    }
    if r.status != STATUS_WAITING || r.confirmations_left <= 0 {
        return refuse(
            "not_waiting",
            format!(
                "Request {} is not waiting for approval ({}).",
                r.request_id,
                title_or(r)
            ),
        );
    }
    if let Some(c) = confirmed_by_person(r, &me, f.reason_template) {
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

/// The first confirmer that acted and is the person `me` names: directly (the confirmer, a
/// listed member or its e-mail detail is one of `me`), or through a service account whose
/// reason carries this tool's "on behalf of" text for one of `me`.
pub fn confirmed_by_person<'r>(
    r: &'r Request,
    me: &[String],
    reason_template: &str,
) -> Option<&'r Confirmer> {
    r.confirmers.iter().filter(|c| c.acted()).find(|c| {
        is_same_person(&c.name, me)
            || c.members.iter().any(|m| is_same_person(&m.user_name, me))
            || c.additional_details
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("email") && is_same_person(v, me))
            || reason_names(&c.reason, reason_template, me)
    })
}

/// Whether a confirm reason was written for one of `me`: it matches `template` with
/// `{forwarder}` set to one of them (any marker), or it says "on behalf of `<one of them>`"
/// (the default wording, kept recognisable after a template change).
pub fn reason_names(reason: &str, template: &str, me: &[String]) -> bool {
    let reason = reason.trim().to_lowercase();
    if reason.is_empty() {
        return false;
    }
    me.iter()
        .map(|i| i.trim().to_lowercase())
        .filter(|i| !i.is_empty())
        .any(|i| {
            let rendered = template.to_lowercase().replace("{forwarder}", &i);
            let by_template = match rendered.split_once("{marker}") {
                Some((a, b)) => {
                    template.contains("{forwarder}")
                        && reason.len() >= a.len() + b.len()
                        && reason.starts_with(a)
                        && reason.ends_with(b)
                }
                None => template.contains("{forwarder}") && reason == rendered,
            };
            by_template || says_on_behalf_of(&reason, &i)
        })
}

/// "on behalf of <who>" followed by the end or a character no address holds.
fn says_on_behalf_of(reason: &str, who: &str) -> bool {
    let needle = format!("on behalf of {who}");
    let continues = |c: char| c.is_alphanumeric() || "@_-+'".contains(c);
    reason.match_indices(&needle).any(|(at, _)| {
        let mut rest = reason[at + needle.len()..].chars();
        match rest.next() {
            None => true,
            // A full stop ends the sentence unless the address goes on after it.
            Some('.') => rest.next().is_none_or(|c| !continues(c) && c != '.'),
            Some(c) => !continues(c),
        }
    })
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
fn acted_at_current_level(r: &Request, account: &str) -> bool {
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
                name: "edited requester",
                edit: |_, _, _, _, m| m.requester = Some(Some("mallory@example.test")),
                want: Err("requester_mismatch"),
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
                name: "already_confirmed_by_you: through an alias, older wording",
                edit: |r, i, _, _, _| {
                    i.push("robert@example.test".into());
                    r.confirmers = vec![acted(
                        "svc_pam_level1",
                        "ok on behalf of robert@example.test.",
                        vec![],
                    )];
                },
                want: Err("already_confirmed_by_you"),
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
    fn identity_matching() {
        let ids = vec!["bob".to_string(), "Bob.Smith@Example.test".to_string()];
        assert!(is_same_person("BOB", &ids));
        assert!(is_same_person("EXAMPLE\\bob", &ids));
        assert!(is_same_person("bob.smith@example.test", &ids));
        assert!(
            is_same_person("bob.smith", &ids),
            "a bare name matches an address's local part"
        );
        assert!(!is_same_person("bobby", &ids));
        assert!(!is_same_person("", &ids));
        assert!(!is_same_person("alice", &[]));
    }
}

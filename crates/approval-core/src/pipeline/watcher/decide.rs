//! The decision for a `seen` mail: who sent it, what it asks, and whether that person may approve
//! it now (no journal, no confirm).

use super::*;

/// The need-to-know answer: the refusal (code, sentence) or none, and the safe members read
/// for it (the claimed safe's members and records) for the decision to reuse.
pub(super) type NeedToKnow = (
    Option<(&'static str, String)>,
    Option<directory::check::SafeApprovers>,
);

/// The reply when no group member of `safe` maps to a directory group: the site's
/// configuration, not the forwarder's doing. With `members` (the forwarder approves the safe at
/// another level, so may know them), names the members skipped and why; without, only the way
/// out (the need-to-know check: the forwarder may approve nothing there).
pub(super) fn no_approver_groups_text(
    safe: &str,
    level: Option<u8>,
    members: Option<&Approvers>,
) -> String {
    let at = level.map(|l| format!(" at level {l}")).unwrap_or_default();
    let why = match members {
        Some(a) if !a.skipped.is_empty() => {
            let list: Vec<String> = a
                .skipped
                .iter()
                .take(8)
                .map(|s| format!("{} ({})", s.member, s.reason))
                .collect();
            format!(" Members not used: {}.", list.join("; "))
        }
        _ => String::new(),
    };
    format!(
        "No member of safe {safe} that may confirm requests{at} maps to a directory group, so nobody can approve its requests by mail; this is the site's configuration, not your doing, and the PAM team is copied.{why} The PAM team can check it with `check-approval-request --check-sender`; see docs/directory.md ([directory] approvers)."
    )
}

/// A refusal of a mail that rejects (issue 32), in a reject's words: the requester's own
/// request is theirs to withdraw in the portal (`self_reject`), and nothing was rejected.
fn as_reject_refusal(
    code: String,
    reason: String,
    request_id: Option<&str>,
    forwarder: Option<&str>,
) -> (String, String) {
    if code == "self_approval" {
        return (
            codes::SELF_REJECT.into(),
            format!(
                "You ({}) made request {} yourself and cannot reject it by mail; a requester withdraws their own request in the PVWA portal (My requests). Nothing was rejected.",
                forwarder.unwrap_or("?"),
                request_id.unwrap_or("?")
            ),
        );
    }
    let reason = reason
        .replace("nothing was approved", "nothing was rejected")
        .replace("Nothing was approved", "Nothing was rejected");
    (code, reason)
}

impl Pipeline {
    /// Gather the facts and decide (no journal, no confirm). A mail whose forwarder rejects
    /// (issue 32) goes through the same checks; its refusals speak of a reject.
    pub(super) async fn decide(&self, w: &mut Work<'_>) -> Result<Verdict, Fault> {
        let v = self.decide_mail(w).await?;
        let rejects = w
            .exam
            .as_ref()
            .and_then(|x| x.outcome.as_ref().ok())
            .is_some_and(|n| n.decision.decision.is_reject());
        Ok(match v {
            Verdict::Refuse {
                code,
                reason,
                request_id,
                forwarder,
            } if rejects => {
                let (code, reason) =
                    as_reject_refusal(code, reason, request_id.as_deref(), forwarder.as_deref());
                Verdict::Refuse {
                    code,
                    reason,
                    request_id,
                    forwarder,
                }
            }
            v => v,
        })
    }

    async fn decide_mail(&self, w: &mut Work<'_>) -> Result<Verdict, Fault> {
        let refuse = |code: &str, reason: String, rid: Option<String>, fw: Option<String>| {
            Ok(Verdict::Refuse {
                code: code.into(),
                reason,
                request_id: rid,
                forwarder: fw,
            })
        };
        // Who sent it comes first: an unauthenticated mail is refused before a byte of its
        // body is read (the notice reader is the larger attack surface).
        // `screen` is the one reading of a mail before any server (shared with `--explain`):
        // its two halves in its order, the notice read on the blocking pool (a hostile mail
        // must not stall the other mails, /metrics or the watchdog).
        let forwarder = match crate::screen::forwarder(transport(w.fetched), &self.sender) {
            Ok(f) => f,
            Err(r) => return refuse(&r.code, r.message, None, r.forwarder),
        };
        w.forwarder = Some(forwarder.clone());
        let exam = w.notice(&self.notice).await.clone();
        let n = match exam.outcome {
            Ok(n) => n,
            Err(r) => {
                let r = crate::screen::MailRefusal::of(r, Some(forwarder));
                return refuse(&r.code, r.message, None, r.forwarder);
            }
        };
        // The forwarder's decision, read from their own text (issue 32).
        let reject = match &n.decision.decision {
            notice::Decision::Reject { reason } => Some(reason.clone()),
            notice::Decision::Approve => None,
        };
        // Need to know: whoever does not approve the safe the mail names, at any level, gets
        // the refusal alone; nothing of the request is read from PVWA or quoted to them.
        let (refusal, mut read_members) = self.need_to_know(&forwarder, &n.safe).await?;
        if let Some((code, reason)) = refusal {
            return refuse(code, reason, None, Some(forwarder));
        }
        let rid = n.request_id.clone();
        w._guard = Some(self.locks.lock(&rid).await);
        let request = match self
            .pvwa(AccountRole::Lookup, async |s: &Session| {
                s.get_request(&rid).await
            })
            .await
        {
            Ok(r) => r,
            Err(PvwaError::NotFound { .. }) => {
                // An edited Safe line changes the id the mail leads to: when the number exists
                // under another safe, say so rather than blame a missing request, without
                // naming that safe (its approvers are not necessarily the forwarder).
                if self.same_number_elsewhere(&n.request_number, &n.safe).await {
                    return refuse(
                        "safe_mismatch",
                        format!(
                            "The mail names safe {}, which has no request number {}; that number belongs to a request of another safe, so the forward looks edited and nothing was approved. Forward the original notification unedited, or use the PVWA portal.",
                            n.safe, n.request_number
                        ),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                return refuse(
                    codes::REQUEST_NOT_FOUND,
                    format!(
                        "PVWA has no request {rid}; it may have been deleted or the mail names another vault."
                    ),
                    Some(rid),
                    Some(forwarder),
                );
            }
            Err(e @ PvwaError::BadId { .. }) => {
                return refuse(
                    codes::INVALID_REQUEST_ID,
                    e.to_string(),
                    Some(rid),
                    Some(forwarder),
                );
            }
            Err(e) => return Err(Fault::of(e)),
        };
        w.request = Some(request.clone());
        let level = u8::try_from(request.current_confirmation_level)
            .ok()
            .filter(|l| matches!(l, 1 | 2));
        let (approver, identities, safe_members) = match level {
            None => (
                Approver::Denied {
                    reason: "the request is at no level this tool handles".into(),
                },
                Vec::new(),
                None,
            ),
            Some(level) => {
                let s = self.directory.settings();
                let safe_members = match s.approvers {
                    ApproverMode::Static => None,
                    // Read once per mail: the need-to-know check read the safe the mail
                    // names, which is the request's safe unless the mail lies.
                    ApproverMode::SafeMembers => Some(
                        match read_members.take().filter(|m| m.safe == request.safe_name) {
                            Some(m) => m,
                            None => self
                                .safe_approvers(&request.safe_name)
                                .await
                                .map_err(Fault::of)?,
                        },
                    ),
                };
                // The one approver look-up, shared with `--check-sender`.
                let v = directory::check::approver_verdict(
                    &self.directory,
                    s,
                    &forwarder,
                    &request.safe_name,
                    level,
                    safe_members.as_ref(),
                    chrono::Utc::now().timestamp(),
                )
                .await
                .map_err(Fault::of)?;
                if v.approvers.is_empty() && matches!(s.approvers, ApproverMode::SafeMembers) {
                    return refuse(
                        codes::NO_APPROVER_GROUPS,
                        no_approver_groups_text(
                            &request.safe_name,
                            Some(level),
                            Some(&v.approvers),
                        ),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                let mut ids = v
                    .user
                    .as_ref()
                    .map(|u| {
                        let mut ids = vec![u.dn.clone()];
                        ids.extend(u.sam_account_name.clone());
                        ids.extend(u.user_principal_name.clone());
                        ids.extend(u.mail.clone());
                        ids.extend(u.aliases.iter().cloned());
                        ids
                    })
                    .unwrap_or_default();
                let mut linked_is_requester = false;
                if let Some(u) = &v.user {
                    match self.person_identities(u).await? {
                        Ok((more, requester)) => {
                            ids.extend(more);
                            linked_is_requester = requester
                                .iter()
                                .any(|a| a.is_same_person(&request.requestor_user_name));
                        }
                        Err(reason) => {
                            return refuse("person_unknown", reason, Some(rid), Some(forwarder));
                        }
                    }
                }
                if linked_is_requester
                    || v.user
                        .as_ref()
                        .is_some_and(|u| u.is_same_person(&request.requestor_user_name))
                {
                    return refuse(
                        "self_approval",
                        format!(
                            "You ({forwarder}) made request {rid} yourself; a request needs someone else's approval."
                        ),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                if v.user.is_none() {
                    return refuse(
                        codes::UNKNOWN_SENDER,
                        format!(
                            "The directory does not know you as one person: {}.",
                            v.reason
                        ),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                let a = match (&v.granted_by, v.may_approve) {
                    (Some(g), true) => Approver::Granted {
                        level,
                        group: g.group.clone(),
                        path: g.path_names.clone(),
                    },
                    _ => Approver::Denied {
                        reason: v.reason.clone(),
                    },
                };
                (a, ids, safe_members)
            }
        };
        if let Approver::Granted { group, .. } = &approver {
            w.group = Some(group.clone());
        }
        // A reject needs no valid ticket (a request without one is what gets rejected).
        let ticket = if reject.is_some() {
            TicketCheck::NotRequired
        } else {
            self.ticket(&request).await?
        };
        let account = self.account(level.unwrap_or(0));
        let service_accounts: Vec<String> = self.sessions.users();
        let tool_acted: Vec<ToolActed> = self
            .journal
            .acted_for(&rid, w.row)
            .await
            .map_err(Fault::of)?
            .into_iter()
            .map(|a| ToolActed {
                level: a.level,
                forwarder: a.forwarder,
                identities: a.identities,
            })
            .collect();
        // Rights kept for later levels matter to an approval only (a reject ends the request).
        let portal = match (&approver, level) {
            (Approver::Granted { .. }, Some(l)) if reject.is_none() => {
                self.portal_rights(&request, l, &forwarder, &identities, safe_members)
                    .await?
            }
            _ => PortalRights::NotChecked,
        };
        let requester = match n.requester.as_deref().filter(|r| !r.trim().is_empty()) {
            Some(_) => {
                self.requester_identity(&request.requestor_user_name)
                    .await?
            }
            None => policy::RequesterIdentity::NotLookedUp,
        };
        // The vault's e-mail addresses of the requester, read only when the directory does not
        // already vouch for the mail's requester address.
        let vault_emails = match n.requester.as_deref().filter(|r| !r.trim().is_empty()) {
            Some(claimed)
                if !policy::requester_matches(
                    claimed,
                    &request.requestor_user_name,
                    &requester,
                    &[],
                ) =>
            {
                self.requester_vault_emails(&request.requestor_user_name)
                    .await?
            }
            _ => Vec::new(),
        };
        let d = policy::decide(&Facts {
            mail: MailClaims {
                request_id: &rid,
                safe: &n.safe,
                requester: n.requester.as_deref(),
                forwarder: &forwarder,
            },
            forwarder_identities: &identities,
            request: &request,
            approver: &approver,
            level_account: &account,
            reason_template: &self.cfg.reason_template,
            ticket: &ticket,
            now: chrono::Utc::now().timestamp(),
            service_accounts: &service_accounts,
            tool_acted: &tool_acted,
            portal: &portal,
            requester: &requester,
            requester_vault_emails: &vault_emails,
        });
        match d {
            Decision::Refuse(r) => refuse(r.code, r.message, Some(rid), Some(forwarder)),
            Decision::Approve { level, .. } => {
                // Defence in depth: everything else the notification shows must be this
                // request (checked last, so only an approver of the request learns of it).
                if let Err(m) = notice_check::check(&n, &request, &self.notice.date_formats) {
                    return refuse(
                        notice_check::NOTICE_MISMATCH,
                        m.message(&rid),
                        Some(rid),
                        Some(forwarder),
                    );
                }
                w.level = Some(level);
                Ok(Verdict::Approve {
                    request_id: rid,
                    level,
                    forwarder,
                    identities,
                    reject,
                })
            }
        }
    }

    /// The identities of the forwarder's other accounts and their person key (`[directory]
    /// person_attribute`), and those accounts; nothing when no attribute is configured. `Ok(Err)`
    /// is a refusal: the attribute is configured but the forwarder's account has no value, so
    /// their other accounts cannot be known.
    pub(super) async fn person_identities(
        &self,
        u: &directory::UserView,
    ) -> Result<Result<(Vec<String>, Vec<directory::DirUser>), String>, Fault> {
        let Some(attr) = self.directory.settings().person_attribute.clone() else {
            return Ok(Ok((Vec::new(), Vec::new())));
        };
        let Some(value) = u.person.clone().filter(|v| !v.trim().is_empty()) else {
            return Ok(Err(format!(
                "Your directory account ({}) has no {attr}, so the tool cannot tell which other accounts are yours; nothing was approved. Ask the directory team to set it, or use the PVWA portal.",
                u.sam_account_name.as_deref().unwrap_or(&u.dn)
            )));
        };
        let accounts = self
            .directory
            .accounts_of_person(&value)
            .await
            .map_err(Fault::of)?;
        let mut ids: Vec<String> = accounts.iter().flat_map(|a| a.identities()).collect();
        ids.extend(directory::person_key(Some(&attr), Some(&value)));
        Ok(Ok((ids, accounts)))
    }

    /// The forwarder's own PVWA rights on the request's safe for the confirmations the request
    /// still needs after the one at `level` (`policy::levels_still_needed`): a user member that
    /// is one of their accounts, or a directory group member they belong to, with the level's
    /// authorisation permission. This tool's own accounts are not the forwarder's rights, and
    /// Vault-internal groups cannot be read here (docs/watcher.md). The members are those read
    /// for the decision (`safe-members` mode) or read now with the lookup account; when PVWA
    /// refuses them, the rights are unknown (the mail is refused), unless `[watcher]
    /// portal_rights = "none-held"`.
    pub(super) async fn portal_rights(
        &self,
        request: &Request,
        level: u8,
        forwarder: &str,
        identities: &[String],
        members: Option<directory::check::SafeApprovers>,
    ) -> Result<PortalRights, Fault> {
        let needed = policy::levels_still_needed(request, level);
        if needed.is_empty()
            || self.cfg.portal_rights == crate::pipeline::config::PortalRightsCheck::NoneHeld
        {
            return Ok(PortalRights::NotChecked);
        }
        let read = match members {
            Some(m) => m,
            None => match self.safe_approvers(&request.safe_name).await {
                Ok(m) => m,
                Err(e) if e.is_transient() => return Err(Fault::of(e)),
                Err(e) => {
                    return Ok(PortalRights::Unknown(format!(
                        "the safe's members could not be read: {e}"
                    )));
                }
            },
        };
        let members = &read.members;
        let ours: Vec<String> = self.sessions.users();
        let mut me: Vec<String> = identities.to_vec();
        me.push(forwarder.to_string());
        let now = chrono::Utc::now().timestamp();
        let s = self.directory.settings();
        let mut rights = Vec::new();
        for n in needed {
            for m in members
                .iter()
                .filter(|m| !m.is_group() && m.approves_at(n, now))
            {
                if policy::is_same_person(&m.member_name, &me)
                    && !policy::is_same_person(&m.member_name, &ours)
                {
                    rights.push(PortalRight {
                        level: n,
                        member: crate::text::printable(&m.member_name),
                    });
                }
            }
            let groups = read.at(s, n, now);
            if groups.is_empty() {
                continue;
            }
            let v = directory::authorize(&self.directory, forwarder, &request.safe_name, n, groups)
                .await
                .map_err(Fault::of)?;
            if let (Some(g), true) = (&v.granted_by, v.may_approve) {
                rights.push(PortalRight {
                    level: n,
                    member: crate::text::printable(&g.group),
                });
            }
        }
        Ok(PortalRights::Known(rights))
    }

    /// Need to know: `None` when the verified `forwarder` approves the `claimed` safe at some
    /// level (static table, or the safe's members read with the lookup account, and the
    /// directory); otherwise the refusal (code, sentence), which names nothing but the claimed
    /// safe. Decided before the request is read, so that nobody who approves nothing there
    /// learns its requester, confirmers, status or real safe from a reply to a look-alike mail.
    pub(super) async fn need_to_know(
        &self,
        forwarder: &str,
        claimed: &str,
    ) -> Result<NeedToKnow, Fault> {
        let s = self.directory.settings();
        let members = match s.approvers {
            ApproverMode::Static => None,
            ApproverMode::SafeMembers => match self.safe_approvers(claimed).await {
                Ok(m) => Some(m),
                Err(e) if e.is_transient() => return Err(Fault::of(e)),
                // The lookup account may not read group records: a configuration fault.
                Err(e @ PvwaError::NoPermission { .. }) => return Err(Fault::of(e)),
                // No such safe (or one the lookup account may not read): nobody approves
                // it through this tool.
                Err(e) => {
                    log::info!("members of the safe a mail names: {e}");
                    Some(directory::check::SafeApprovers {
                        safe: claimed.to_string(),
                        ..Default::default()
                    })
                }
            },
        };
        let keep = |m: Option<directory::check::SafeApprovers>| m.filter(|m| !m.members.is_empty());
        let now = chrono::Utc::now().timestamp();
        let mut any_groups = false;
        let mut skipped = Approvers::default();
        for level in [1u8, 2] {
            // The one approver look-up, shared with `--check-sender`.
            let v = directory::check::approver_verdict(
                &self.directory,
                s,
                forwarder,
                claimed,
                level,
                members.as_ref(),
                now,
            )
            .await
            .map_err(Fault::of)?;
            if v.approvers.is_empty() {
                skipped.skipped.extend(v.approvers.skipped.iter().cloned());
                continue;
            }
            any_groups = true;
            if v.user.is_none() {
                return Ok((
                    Some((
                        codes::UNKNOWN_SENDER,
                        format!(
                            "The directory does not know you as one person: {}. Nothing about the request was read.",
                            v.reason
                        ),
                    )),
                    None,
                ));
            }
            if v.may_approve {
                return Ok((None, keep(members)));
            }
        }
        // A safe whose group members the vault lists but none of which maps to a directory
        // group is the site's configuration, not the forwarder's fault. Only a forwarder the
        // directory knows gets here; the sentence names the safe they named, nothing of the
        // request.
        if !any_groups
            && let Some(m) = &members
            && !m.members.is_empty()
            && !skipped.skipped.is_empty()
            && self.directory.find_user(forwarder).await.is_ok()
        {
            return Ok((
                Some((
                    codes::NO_APPROVER_GROUPS,
                    no_approver_groups_text(claimed, None, None),
                )),
                None,
            ));
        }
        Ok((
            Some((
                "not_an_approver",
                format!(
                    "You ({forwarder}) do not approve requests of safe {claimed} at any level, so nothing about the request was read or is shown here. If you should approve them, ask the PAM team to add you to the safe's approver group; otherwise leave the request to its approvers."
                ),
            )),
            None,
        ))
    }

    /// The request's requester (PVWA's `RequestorUserName`) as the directory knows them: the
    /// one enabled account of that name (`sAMAccountName` or `userPrincipalName`), with its
    /// person's other accounts under `[directory] person_attribute`. A fault of the directory
    /// is a fault (the mail waits); no account, or several, is `Unknown`.
    pub(super) async fn requester_identity(
        &self,
        name: &str,
    ) -> Result<policy::RequesterIdentity, Fault> {
        let accounts = self
            .directory
            .accounts_named(name)
            .await
            .map_err(Fault::of)?;
        let shown = crate::text::printable(name);
        let u = match accounts.as_slice() {
            [] => {
                return Ok(policy::RequesterIdentity::Unknown(format!(
                    "no enabled directory account is named {shown}"
                )));
            }
            [u] => u.clone(),
            _ => {
                return Ok(policy::RequesterIdentity::Unknown(format!(
                    "several directory accounts are named {shown}"
                )));
            }
        };
        let mut ids = u.identities();
        if self.directory.settings().person_attribute.is_some()
            && let Some(value) = u.person.clone().filter(|v| !v.trim().is_empty())
        {
            let more = self
                .directory
                .accounts_of_person(&value)
                .await
                .map_err(Fault::of)?;
            ids.extend(more.iter().flat_map(|a| a.identities()));
        }
        Ok(policy::RequesterIdentity::Known(ids))
    }

    /// The e-mail addresses the vault holds for the user `name` (`GET /API/Users`), read with
    /// the lookup account. A transient fault is a fault (the mail waits); when PVWA refuses the
    /// account the user records (no Vault permission "Audit users") the rule is the directory's
    /// alone, said once at info; any other failure gives no address.
    pub(super) async fn requester_vault_emails(&self, name: &str) -> Result<Vec<String>, Fault> {
        match self
            .pvwa(AccountRole::Lookup, async |x: &Session| {
                x.user_emails(name).await
            })
            .await
        {
            Ok(v) => Ok(v),
            Err(e) if e.is_transient() => Err(Fault::of(e)),
            Err(PvwaError::NoPermission { user, detail, .. }) => {
                if !self.vault_users_refused.swap(true, Ordering::Relaxed) {
                    log::info!(
                        "PVWA does not let the lookup account {user} read the vault's user records ({detail}): it lacks the Vault permission \"Audit users\", so the requester's e-mail in the vault is not read and the requester rule uses the directory alone"
                    );
                }
                Ok(Vec::new())
            }
            Err(e) => {
                log::info!("the requester's e-mail in the vault could not be read: {e}");
                Ok(Vec::new())
            }
        }
    }

    /// The members of `safe` and the vault group records of its group members, read with the
    /// lookup account (records cached with the directory look-up TTL).
    pub(super) async fn safe_approvers(
        &self,
        safe: &str,
    ) -> Result<directory::check::SafeApprovers, PvwaError> {
        let cache = self.directory.group_records();
        let roles = self.directory.role_records();
        let rule = &self.directory.settings().group_names;
        self.pvwa(AccountRole::Lookup, async |x: &Session| {
            let mut read = directory::check::read_safe_approvers(x, safe, cache).await?;
            directory::check::resolve_roles(x, &mut read, rule, roles).await?;
            Ok(read)
        })
        .await
    }

    /// Whether PVWA lists a request with this number (`<Safe>_<number>`) under a safe other
    /// than `claimed`. Which safe is never told: the forwarder may not approve it. Best effort:
    /// a fault gives `false`.
    pub(super) async fn same_number_elsewhere(&self, number: &str, claimed: &str) -> bool {
        let suffix = format!("_{number}");
        // PVWA lists to each account the requests it may confirm: ask every role.
        for role in [
            AccountRole::Lookup,
            AccountRole::Level1,
            AccountRole::Level2,
        ] {
            let list = match self
                .pvwa(role, async |s: &Session| s.list_incoming(false, true).await)
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    log::info!("looking for request number {number} in other safes: {e}");
                    return false;
                }
            };
            if list.iter().any(|r| {
                r.request_id.ends_with(&suffix)
                    && r.request_id.len() == r.safe_name.len() + suffix.len()
                    && !r.safe_name.eq_ignore_ascii_case(claimed)
            }) {
                return true;
            }
        }
        false
    }

    pub(super) async fn ticket(&self, request: &Request) -> Result<TicketCheck, Fault> {
        let Some(t) = &self.tickets else {
            return Ok(TicketCheck::NotRequired);
        };
        match t.applies.ticket_for(request) {
            TicketNeed::NotRequired => Ok(TicketCheck::NotRequired),
            TicketNeed::Missing => Ok(TicketCheck::Invalid {
                code: "ticket_missing".into(),
                message: "the request needs a ticket and names none".into(),
            }),
            TicketNeed::Ambiguous { candidates } => Ok(TicketCheck::Invalid {
                code: "ticket_ambiguous".into(),
                message: format!(
                    "the request names several tickets ({})",
                    candidates.join(", ")
                ),
            }),
            TicketNeed::Found { ticket, .. } => {
                let ctx = ticketing::rules::Context {
                    user: Some(request.requestor_user_name.clone()),
                    at: chrono::Utc::now(),
                };
                let v = t.validator.lock().await.validate(&ticket, 0, &ctx).await;
                match v.outcome {
                    ticketing::validate::Outcome::Valid | ticketing::validate::Outcome::Bypass => {
                        Ok(TicketCheck::Valid {
                            summary: v.summary(),
                        })
                    }
                    ticketing::validate::Outcome::Invalid => Ok(TicketCheck::Invalid {
                        code: v.reason.clone().unwrap_or_else(|| "invalid".into()),
                        message: v.summary(),
                    }),
                    ticketing::validate::Outcome::CannotValidate => Err(Fault {
                        message: format!("the ticket could not be validated: {}", v.summary()),
                        exit: Exit::Unavailable,
                        service: "ticketing",
                        deferred: None,
                    }),
                }
            }
        }
    }

    /// The verified forwarder of a mail, or the refusal (code, sentence) of the sender check.
    /// Only the transport headers Exchange stamped on delivery are trusted: an item put into the
    /// folder some other way (CreateItem, drag and drop, an import) has none, and its MIME
    /// header block is whatever its author wrote.
    pub(super) fn authenticate(&self, m: &FetchedMessage) -> Result<String, (String, String)> {
        crate::screen::forwarder(transport(m), &self.sender).map_err(|r| (r.code, r.message))
    }
}

/// The transport headers Exchange stamped on delivery, the only headers the sender check reads.
fn transport(m: &FetchedMessage) -> Option<&[u8]> {
    m.transport_headers.as_deref().map(str::as_bytes)
}

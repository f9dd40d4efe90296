//! Lifecycle operations behind the `remote-access` binary (reference §9).
//!
//! - **Onboard**: validate, resolve `<site>/<application>` names (once per run), look for an
//!   invitation (`searchIn=EMAIL`) or a vendor (`searchIn=ALL`, exact `emailAddress`) of the
//!   same mail address, then make sure the approved vendor ends with a way in:
//!   - an active (or awaiting confirmation) account, or an invitation still valid: skipped;
//!   - a deactivated account: reactivated, when what it would restore (applications, access
//!     end) lies within what was approved; otherwise the record fails naming the account;
//!   - only expired invitations: revoked, and a new invitation sent;
//!   - nothing: invited.
//! - **Offboard**: revoke every outstanding invitation of the address (404 = already gone),
//!   then deactivate each matching vendor (or delete it, or leave it, when asked). A second run
//!   changes nothing and says so; an address Remote Access does not know is `not_found`.
//!
//! Each record gives one outcome with its own exit class; a batch exits with the worst.

use serde::Serialize;
use tokio::sync::OnceCell;

use super::RemoteAccessError;
use super::client::{Gone, RemoteAccess, Search};
use super::input::{Validated, VendorRequest};
use super::model::{AppRef, Application, Group, NewInvitation, Site, VendorStatus};
use crate::exit::ErrorView;
use crate::exit::{Classify, Exit};

/// Names resolved once per run.
pub struct Catalogue<'a> {
    ra: &'a RemoteAccess,
    apps: OnceCell<Vec<(Site, Vec<Application>)>>,
    groups: OnceCell<Vec<Group>>,
}

impl<'a> Catalogue<'a> {
    pub fn new(ra: &'a RemoteAccess) -> Self {
        Catalogue {
            ra,
            apps: OnceCell::new(),
            groups: OnceCell::new(),
        }
    }

    /// Every site with its applications.
    pub async fn applications(&self) -> Result<&[(Site, Vec<Application>)], RemoteAccessError> {
        let v = self
            .apps
            .get_or_try_init(|| async {
                let mut out = Vec::new();
                for site in self.ra.sites().await? {
                    let Some(id) = site.id.clone() else { continue };
                    let apps = self.ra.applications(&id).await?;
                    out.push((site, apps));
                }
                Ok::<_, RemoteAccessError>(out)
            })
            .await?;
        Ok(v)
    }

    /// Resolve `<site>/<application>` names to IDs: missing, ambiguous or disabled ones refused.
    pub async fn resolve_apps(&self, names: &[String]) -> Result<Vec<AppRef>, RemoteAccessError> {
        let catalogue = self.applications().await?;
        let mut out: Vec<AppRef> = Vec::new();
        for name in names {
            let r = resolve_app(catalogue, name)?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Resolve group names (or IDs) to IDs.
    pub async fn resolve_groups(&self, names: &[String]) -> Result<Vec<String>, RemoteAccessError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let groups = self.groups.get_or_try_init(|| self.ra.groups(None)).await?;
        let mut out = Vec::new();
        for name in names {
            let found: Vec<&Group> = groups
                .iter()
                .filter(|g| {
                    g.id.as_deref() == Some(name.as_str())
                        || g.name
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .collect();
            let id = match found.as_slice() {
                [g] => g.id.clone().unwrap_or_default(),
                [] => {
                    return Err(RemoteAccessError::Input(format!(
                        "provisioning group `{}` does not exist",
                        crate::text::printable(name)
                    )));
                }
                _ => {
                    return Err(RemoteAccessError::Input(format!(
                        "provisioning group `{}` is ambiguous ({} groups match)",
                        crate::text::printable(name),
                        found.len()
                    )));
                }
            };
            super::model::check_id(&id)?;
            if !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }
}

/// Resolve one `<site>/<application>` name. Site names may contain `/`: every split is tried,
/// and the name must match exactly one application (names compared without regard to case).
pub fn resolve_app(
    catalogue: &[(Site, Vec<Application>)],
    name: &str,
) -> Result<AppRef, RemoteAccessError> {
    let fail = |message: String| RemoteAccessError::Resolve {
        name: crate::text::printable(name),
        message,
    };
    let mut found: Vec<(&Site, &Application)> = Vec::new();
    for (i, _) in name.match_indices('/') {
        let (site_name, app_name) = (name[..i].trim(), name[i + 1..].trim());
        for (site, apps) in catalogue {
            if !site
                .display_name
                .as_deref()
                .is_some_and(|d| d.trim().eq_ignore_ascii_case(site_name))
            {
                continue;
            }
            for app in apps {
                if app
                    .name
                    .as_deref()
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case(app_name))
                {
                    found.push((site, app));
                }
            }
        }
    }
    match found.as_slice() {
        [] => Err(fail("no such application".into())),
        [(site, app)] => {
            if app.enabled == Some(false) {
                return Err(fail("the application is disabled".into()));
            }
            let site_id = site.id.clone().unwrap_or_default();
            let application_id = app.id.clone().unwrap_or_default();
            super::model::check_id(&site_id)
                .map_err(|_| fail("the site has no usable ID".into()))?;
            super::model::check_id(&application_id)
                .map_err(|_| fail("the application has no usable ID".into()))?;
            Ok(AppRef {
                site_id,
                application_id,
            })
        }
        many => Err(fail(format!(
            "ambiguous: {} applications have this name (ids {})",
            many.len(),
            many.iter()
                .map(|(_, a)| a.id.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Invitations and vendors already there for a mail address.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Existing {
    /// Every invitation, expired or not.
    pub invitations: Vec<String>,
    /// Those of `invitations` whose `expiredAt` has passed: the vendor can no longer use them.
    pub expired_invitations: Vec<String>,
    /// `(id, status)`
    pub vendors: Vec<(String, Option<String>)>,
}

impl Existing {
    pub fn is_empty(&self) -> bool {
        self.invitations.is_empty() && self.vendors.is_empty()
    }

    /// Invitations the vendor can still accept (an unknown expiry counts as valid).
    pub fn valid_invitations(&self) -> Vec<String> {
        self.invitations
            .iter()
            .filter(|i| !self.expired_invitations.contains(i))
            .cloned()
            .collect()
    }
}

/// Look up a mail address: invitations by `searchIn=EMAIL`, vendors by `searchIn=ALL` (there
/// is no vendor EMAIL search, P15); both filtered on an exact, case-insensitive match. An
/// invitation whose `expiredAt` is at or before `now_ms` is listed as expired too.
pub async fn existing(
    ra: &RemoteAccess,
    email: &str,
    now_ms: i64,
) -> Result<Existing, RemoteAccessError> {
    let inv = ra
        .invitations(Some(&Search {
            field: "EMAIL".into(),
            text: email.into(),
        }))
        .await?;
    let vendors = ra
        .vendors(Some(&Search {
            field: "ALL".into(),
            text: email.into(),
        }))
        .await?;
    let same = |e: &Option<String>| {
        e.as_deref()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
    };
    let inv: Vec<_> = inv.into_iter().filter(|i| same(&i.email_address)).collect();
    Ok(Existing {
        invitations: inv.iter().filter_map(|i| i.invitation_id.clone()).collect(),
        expired_invitations: inv
            .iter()
            .filter(|i| i.expired_at.is_some_and(|t| t <= now_ms))
            .filter_map(|i| i.invitation_id.clone())
            .collect(),
        vendors: vendors
            .into_iter()
            .filter(|v| same(&v.email_address))
            .filter_map(|v| v.id.map(|id| (id, v.status)))
            .collect(),
    })
}

/// A time for messages: `2027-03-31 23:59 UTC`.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// What happened to one onboarding record.
#[derive(Debug, Clone, Serialize)]
pub struct OnboardOutcome {
    /// Line of stdin, when the record came from there.
    pub line: Option<usize>,
    pub email: Option<String>,
    /// `invited`, `would_invite`, `reactivated`, `would_reactivate`, `skipped`, `failed`,
    /// `invalid`.
    pub result: &'static str,
    pub invitation_id: Option<String>,
    /// The vendor account reactivated (or that would be).
    pub vendor_id: Option<String>,
    pub reason: Option<String>,
    pub existing_invitations: Vec<String>,
    /// Expired invitations revoked before inviting anew (or that would be).
    pub revoked_invitations: Vec<String>,
    pub existing_vendors: Vec<String>,
    /// The body that was (or, in a dry run, would be) sent.
    pub request: Option<NewInvitation>,
    pub error: Option<ErrorView>,
    #[serde(skip)]
    pub exit: Exit,
}

impl OnboardOutcome {
    fn new(line: Option<usize>, email: Option<String>) -> Self {
        OnboardOutcome {
            line,
            email,
            result: "failed",
            invitation_id: None,
            vendor_id: None,
            reason: None,
            existing_invitations: Vec::new(),
            revoked_invitations: Vec::new(),
            existing_vendors: Vec::new(),
            request: None,
            error: None,
            exit: Exit::Ok,
        }
    }

    fn failed(mut self, e: &RemoteAccessError) -> Self {
        self.result = if e.exit() == Exit::DataErr {
            "invalid"
        } else {
            "failed"
        };
        self.reason = Some(e.to_string());
        self.error = Some(ErrorView::of(e, None));
        self.exit = e.exit();
        self
    }
}

/// Options of invite/onboard.
#[derive(Debug, Clone, Copy)]
pub struct OnboardOptions {
    /// Look for an existing invitation or vendor first (onboard: yes; invite: no).
    pub check_existing: bool,
    /// Invite even when one exists.
    pub force: bool,
    pub dry_run: bool,
    /// The zone a date-only `access_start`/`access_end` is a day of
    /// (`remote_access.date_time_zone`).
    pub zone: chrono_tz::Tz,
}

impl Default for OnboardOptions {
    fn default() -> Self {
        OnboardOptions {
            check_existing: false,
            force: false,
            dry_run: false,
            zone: chrono_tz::Tz::UTC,
        }
    }
}

/// Onboard one record (`Err` = a record that could not be read, with its message).
pub async fn onboard_one(
    catalogue: &Catalogue<'_>,
    line: Option<usize>,
    record: Result<VendorRequest, String>,
    opts: OnboardOptions,
    now_ms: i64,
) -> OnboardOutcome {
    let email = record.as_ref().ok().map(|r| r.email.trim().to_string());
    let out = OnboardOutcome::new(line, email);
    let valid: Validated = match record.and_then(|r| r.validate(now_ms, opts.zone)) {
        Ok(v) => v,
        Err(m) => {
            let m = match line {
                Some(l) if !m.starts_with("line ") => format!("line {l}: {m}"),
                _ => m,
            };
            return out.failed(&RemoteAccessError::Input(m));
        }
    };
    match onboard_valid(catalogue, valid, opts, out.clone(), now_ms).await {
        Ok(o) => o,
        Err(e) => out.failed(&e),
    }
}

async fn onboard_valid(
    catalogue: &Catalogue<'_>,
    valid: Validated,
    opts: OnboardOptions,
    mut out: OnboardOutcome,
    now_ms: i64,
) -> Result<OnboardOutcome, RemoteAccessError> {
    let mut body = valid.base;
    out.email = Some(body.email_address.clone());
    body.applications = catalogue.resolve_apps(&valid.application_names).await?;
    let groups = catalogue.resolve_groups(&valid.group_names).await?;
    if !groups.is_empty() {
        body.provisioning_groups = Some(groups);
    }
    let mut expired = Vec::new();
    if opts.check_existing {
        let found = existing(catalogue.ra, &body.email_address, now_ms).await?;
        out.existing_invitations = found.invitations.clone();
        out.existing_vendors = found.vendors.iter().map(|(id, _)| id.clone()).collect();
        expired = found.expired_invitations.clone();
        if !opts.force {
            let email = &body.email_address;
            let deactivated: Vec<&String> = found
                .vendors
                .iter()
                .filter(|(_, s)| s.as_deref() == Some("Deactivated"))
                .map(|(id, _)| id)
                .collect();
            if let Some((id, status)) = found
                .vendors
                .iter()
                .find(|(_, s)| s.as_deref() != Some("Deactivated"))
            {
                out.result = "skipped";
                out.reason = Some(match status.as_deref() {
                    Some("PendingActivation") => format!(
                        "{email} already has vendor account {id}, awaiting an administrator's confirmation in the portal; use --force to invite anyway"
                    ),
                    other => format!(
                        "{email} already has vendor account {id} ({}); use --force to invite anyway",
                        other.unwrap_or("status unknown")
                    ),
                });
                return Ok(out);
            }
            if !deactivated.is_empty() {
                return reactivate(catalogue.ra, &body, &deactivated, opts, out, now_ms).await;
            }
            let valid_inv = found.valid_invitations();
            if let Some(id) = valid_inv.first() {
                out.result = "skipped";
                out.reason = Some(format!(
                    "{email} already has {} invitation(s) still valid ({id}); use --force to invite anyway",
                    valid_inv.len()
                ));
                return Ok(out);
            }
        }
    }
    // An expired invitation is of no use to the vendor and may block a new one for the same
    // phone number: revoke it first.
    for id in &expired {
        if !opts.dry_run {
            catalogue.ra.revoke_invitation(id).await?;
            log::info!(
                "Remote Access: revoked expired invitation {id} of {}",
                body.email_address
            );
        }
        out.revoked_invitations.push(id.clone());
    }
    if opts.dry_run {
        out.result = "would_invite";
        out.request = Some(body);
        return Ok(out);
    }
    let id = catalogue.ra.create_invitation(&body).await?;
    log::info!(
        "Remote Access: invited {} ({}), invitation {id}",
        body.email_address,
        body.company_name
    );
    out.result = "invited";
    out.invitation_id = Some(id);
    out.request = Some(body);
    Ok(out)
}

/// A returning vendor whose account was deactivated: reactivate the account (the documented
/// way back in; whether a new invitation for the same phone is accepted is not), but only when
/// what it restores lies within what was just approved: its applications among the approved
/// ones, its access ending in the future and no later than the approved end. Otherwise fail
/// naming the account and what to do.
async fn reactivate(
    ra: &RemoteAccess,
    body: &NewInvitation,
    deactivated: &[&String],
    opts: OnboardOptions,
    mut out: OnboardOutcome,
    now_ms: i64,
) -> Result<OnboardOutcome, RemoteAccessError> {
    let email = body.email_address.clone();
    let refuse = |message: String| RemoteAccessError::VendorState {
        email: email.clone(),
        message,
    };
    let id = match deactivated {
        [one] => (*one).clone(),
        many => {
            return Err(refuse(format!(
                "{} deactivated vendor accounts have this address ({}); choose one in the portal and \
                 run `remote-access vendors activate ID`, or delete the others",
                many.len(),
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let v = ra.vendor(&id).await?;
    let after = format!(
        "delete it (`remote-access offboard --delete --email {email}`) and onboard again, or \
         change it in the portal and run `remote-access vendors activate {id}`"
    );
    let end = match v.access_end_date {
        Some(end) if end > 0 => end,
        _ => {
            return Err(refuse(format!(
                "vendor account {id} is deactivated and shows no access end: reactivating it could \
                 grant more than approved; {after}"
            )));
        }
    };
    if end <= now_ms {
        return Err(refuse(format!(
            "vendor account {id} is deactivated and its access ended {}: reactivating it would \
             not let the vendor in; {after}",
            when(end)
        )));
    }
    if end > body.access_end_date {
        return Err(refuse(format!(
            "vendor account {id} is deactivated; reactivating it would restore access until {}, \
             later than approved ({}); {after}",
            when(end),
            when(body.access_end_date)
        )));
    }
    let apps: Option<Vec<AppRef>> = v
        .applications
        .clone()
        .and_then(|a| serde_json::from_value(a).ok());
    let Some(apps) = apps else {
        return Err(refuse(format!(
            "vendor account {id} is deactivated and its applications cannot be read: reactivating \
             it could grant more than approved; {after}"
        )));
    };
    let extra: Vec<String> = apps
        .iter()
        .filter(|a| !body.applications.contains(a))
        .map(|a| format!("{}/{}", a.site_id, a.application_id))
        .collect();
    if !extra.is_empty() {
        return Err(refuse(format!(
            "vendor account {id} is deactivated; reactivating it would restore application(s) not \
             approved now ({}); {after}",
            extra.join(", ")
        )));
    }
    // Fewer applications than approved still lets the vendor in: say which are missing.
    let missing = body
        .applications
        .iter()
        .filter(|a| !apps.contains(a))
        .count();
    let note = if missing > 0 {
        format!(
            "; {missing} approved application(s) are not on the account: add them in the portal"
        )
    } else {
        String::new()
    };
    out.vendor_id = Some(id.clone());
    if opts.dry_run {
        out.result = "would_reactivate";
        out.reason = Some(format!(
            "would reactivate vendor account {id} (access until {}){note}",
            when(end)
        ));
        return Ok(out);
    }
    ra.set_vendor_status(&id, VendorStatus::Activated).await?;
    log::info!("Remote Access: reactivated vendor account {id} of {email}");
    out.result = "reactivated";
    out.reason = Some(format!(
        "reactivated vendor account {id} (access until {}){note}",
        when(end)
    ));
    Ok(out)
}

/// One step of an offboarding.
#[derive(Debug, Clone, Serialize)]
pub struct OffboardAction {
    /// `revoke_invitation`, `deactivate_vendor`, `delete_vendor`.
    pub action: &'static str,
    pub id: String,
    /// `done`, `already_done`, `would_do`, `failed`.
    pub result: &'static str,
    pub detail: Option<String>,
}

/// What happened to one offboarding.
#[derive(Debug, Clone, Serialize)]
pub struct OffboardOutcome {
    pub line: Option<usize>,
    pub email: Option<String>,
    /// `offboarded`, `would_offboard`, `nothing_to_do` (already offboarded), `not_found` (no
    /// invitation and no vendor account has this address: a mistyped address looks like this),
    /// `failed`, `invalid`.
    pub result: &'static str,
    /// Whether this run changed anything.
    pub changed: bool,
    pub actions: Vec<OffboardAction>,
    pub message: String,
    pub error: Option<ErrorView>,
    #[serde(skip)]
    pub exit: Exit,
}

/// Options of offboard.
#[derive(Debug, Clone, Copy, Default)]
pub struct OffboardOptions {
    /// Delete the vendor instead of deactivating it (irreversible).
    pub delete: bool,
    /// Only revoke outstanding invitations; leave the vendor account as it is.
    pub keep_account: bool,
    pub dry_run: bool,
}

/// Offboard one mail address (`Err` = a record that could not be read).
pub async fn offboard_one(
    ra: &RemoteAccess,
    line: Option<usize>,
    email: Result<String, String>,
    opts: OffboardOptions,
) -> OffboardOutcome {
    let mut out = OffboardOutcome {
        line,
        email: email.as_ref().ok().cloned(),
        result: "failed",
        changed: false,
        actions: Vec::new(),
        message: String::new(),
        error: None,
        exit: Exit::Ok,
    };
    let email = match email.and_then(|e| super::input::check_email(&e)) {
        Ok(e) => e,
        Err(m) => {
            let m = match line {
                Some(l) if !m.starts_with("line ") => format!("line {l}: {m}"),
                _ => m,
            };
            let e = RemoteAccessError::Input(m);
            out.result = "invalid";
            out.message = e.to_string();
            out.error = Some(ErrorView::of(&e, None));
            out.exit = e.exit();
            return out;
        }
    };
    out.email = Some(email.clone());
    let mut first_error: Option<RemoteAccessError> = None;
    let mut note = |out: &mut OffboardOutcome,
                    action,
                    id: &str,
                    r: Result<&'static str, RemoteAccessError>| {
        let (result, detail) = match r {
            Ok(x) => (x, None),
            Err(e) => {
                let d = e.to_string();
                out.exit = out.exit.worst(e.exit());
                if first_error.is_none() {
                    first_error = Some(e);
                }
                ("failed", Some(d))
            }
        };
        out.actions.push(OffboardAction {
            action,
            id: id.to_string(),
            result,
            detail,
        });
    };
    let found = match existing(ra, &email, chrono::Utc::now().timestamp_millis()).await {
        Ok(f) => f,
        Err(e) => {
            out.message = format!("could not look up {email}: {e}");
            out.exit = e.exit();
            out.error = Some(ErrorView::of(&e, None));
            return out;
        }
    };
    for id in &found.invitations {
        let r = if opts.dry_run {
            Ok("would_do")
        } else {
            ra.revoke_invitation(id).await.map(|g| match g {
                Gone::Done => "done",
                Gone::AlreadyGone => "already_done",
            })
        };
        note(&mut out, "revoke_invitation", id, r);
    }
    for (id, status) in &found.vendors {
        if opts.keep_account {
            continue;
        }
        if opts.delete {
            let r = if opts.dry_run {
                Ok("would_do")
            } else {
                ra.delete_vendor(id).await.map(|g| match g {
                    Gone::Done => "done",
                    Gone::AlreadyGone => "already_done",
                })
            };
            note(&mut out, "delete_vendor", id, r);
        } else if status.as_deref() == Some("Deactivated") {
            note(&mut out, "deactivate_vendor", id, Ok("already_done"));
        } else {
            let r = if opts.dry_run {
                Ok("would_do")
            } else {
                ra.set_vendor_status(id, VendorStatus::Deactivated)
                    .await
                    .map(|()| "done")
            };
            note(&mut out, "deactivate_vendor", id, r);
        }
    }
    let count = |a: &str, r: &str| {
        out.actions
            .iter()
            .filter(|x| x.action == a && x.result == r)
            .count()
    };
    out.changed = out.actions.iter().any(|a| a.result == "done");
    let would = out.actions.iter().any(|a| a.result == "would_do");
    let (revoked, deactivated, deleted) = (
        count("revoke_invitation", "done"),
        count("deactivate_vendor", "done"),
        count("delete_vendor", "done"),
    );
    if let Some(e) = first_error {
        out.result = "failed";
        out.message = format!("offboarding {email} is incomplete: {e}");
        out.error = Some(ErrorView::of(&e, None));
    } else if found.is_empty() {
        // Not "already done": Remote Access has never heard of this address (or it was deleted).
        // A mistyped leaver must not look like a success.
        let e = RemoteAccessError::NotFound {
            what: format!("offboard {email}"),
            detail: "no invitation and no vendor account has this address; check its spelling"
                .into(),
        };
        out.result = "not_found";
        out.message = e.to_string();
        out.error = Some(ErrorView::of(&e, None));
        out.exit = e.exit();
    } else if would {
        out.result = "would_offboard";
        out.message = format!(
            "would revoke {} invitation(s) and {} {} vendor(s) of {email}",
            count("revoke_invitation", "would_do"),
            if opts.delete { "delete" } else { "deactivate" },
            count("deactivate_vendor", "would_do") + count("delete_vendor", "would_do"),
        );
    } else if out.changed {
        out.result = "offboarded";
        out.message = format!(
            "{email}: revoked {revoked} invitation(s), deactivated {deactivated} and deleted {deleted} vendor(s)"
        );
        log::info!("Remote Access: {}", out.message);
    } else {
        out.result = "nothing_to_do";
        out.message = if opts.keep_account {
            format!("nothing to change: {email} has no outstanding invitation")
        } else {
            format!("nothing to change: {email} is already offboarded")
        };
    }
    if opts.keep_account && !found.vendors.is_empty() && out.error.is_none() {
        out.message.push_str(&format!(
            " (vendor account(s) {} left as they are: --keep-account)",
            found
                .vendors
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: &str, name: &str) -> Site {
        Site {
            id: Some(id.into()),
            display_name: Some(name.into()),
            ..Site::default()
        }
    }

    fn app(id: &str, name: &str, enabled: bool) -> Application {
        Application {
            id: Some(id.into()),
            name: Some(name.into()),
            enabled: Some(enabled),
            ..Application::default()
        }
    }

    fn catalogue() -> Vec<(Site, Vec<Application>)> {
        vec![
            (
                site("s1", "Main DC"),
                vec![app("a1", "Linux SSH", true), app("a2", "Old RDP", false)],
            ),
            (site("s2", "Lab/East"), vec![app("a3", "Web", true)]),
            (
                site("s3", "Lab"),
                vec![
                    app("a4", "East/Web", true),
                    app("a5", "Dup", true),
                    app("a6", "dup", true),
                ],
            ),
        ]
    }

    #[test]
    fn names_resolve_to_ids() {
        let c = catalogue();
        assert_eq!(
            resolve_app(&c, "main dc/LINUX SSH").expect("found"),
            AppRef {
                site_id: "s1".into(),
                application_id: "a1".into()
            }
        );
    }

    #[test]
    fn missing_disabled_and_ambiguous_names_are_refused() {
        let c = catalogue();
        for (name, needle) in [
            ("Main DC/Windows", "no such application"),
            ("Nowhere/Linux SSH", "no such application"),
            ("Main DC/Old RDP", "disabled"),
            ("Lab/East/Web", "ambiguous: 2"),
            ("Lab/Dup", "ambiguous: 2"),
        ] {
            let e = resolve_app(&c, name).expect_err(name);
            assert!(e.to_string().contains(needle), "{name}: {e}");
            assert_eq!(e.exit(), Exit::DataErr);
        }
    }
}

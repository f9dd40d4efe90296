//! `check-approval-request --check-site`: one read-only pass over everything the watcher relies
//! on (configuration, secret references, file modes, PVWA accounts and safe members, the
//! mailbox, the directory, ticketing, Remote Access), reported per section. Changes nothing:
//! no confirm, no move, no mark-as-read, no send; every PVWA session is signed out. No secret
//! value is ever put in the report (a reference is shown, its value never).

pub mod report;

use std::collections::BTreeSet;

use secrecy::SecretString;

use crate::directory::approvers::Approvers;
use crate::directory::cache::TtlCache;
use crate::directory::check::{SafeApprovers, approvers_at, read_safe_approvers, resolve_roles};
use crate::directory::config::ApproverMode;
use crate::directory::{AnyDirectory, LdapDirectory};
use crate::pvwa::{AccountRole, Pvwa, Session};
use crate::secret::{Resolver, SecretRef};
use crate::settings::Loaded;

pub use report::{Item, Report, Section, Status};

/// What the check may look at.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// How many recent mails of the watched folder to look at (0: none).
    pub mails: usize,
    /// The approver to resolve; without one, the sender of the first recent mail [sender]
    /// accepts is tried against the safes and levels seen.
    pub approver: Option<Approver>,
}

/// One approver to resolve end to end (`--check-site --check-sender EMAIL --safe S --level L`):
/// the same resolution as `--check-sender`, as an item of the directory section.
#[derive(Debug, Clone)]
pub struct Approver {
    pub address: String,
    pub safe: String,
    pub level: u8,
}

/// A configuration that did not load: the report says so in `config` and nothing else runs.
pub fn config_failed(message: &str) -> Report {
    let mut r = Report::default();
    r.fail(
        "config",
        "load",
        message,
        "fix the file and key named above (every key: /usr/share/doc/pam-approval/examples/config.toml \
         (installed) or examples/config.toml (source tree), and config.d/ beside it)",
    );
    r
}

/// Run every check against the real systems.
pub async fn run(loaded: &Loaded, opts: Options) -> Report {
    let (mut r, resolver) = start(loaded);
    if let Some(res) = &resolver {
        secrets(loaded, res, &mut r).await;
    }
    files(loaded, &mut r);
    if let Some(res) = &resolver {
        journal(loaded, res, &mut r).await;
    }
    let safes = if let Some(res) = &resolver {
        pvwa(loaded, res, &mut r).await
    } else {
        Vec::new()
    };
    if let Some(res) = &resolver {
        let senders = mailbox(loaded, res, opts.mails, &mut r).await;
        directory(loaded, res, &safes, &mut r).await;
        approver(
            loaded,
            res,
            &safes,
            opts.approver.as_ref(),
            &senders,
            &mut r,
        )
        .await;
    }
    ticketing(loaded, resolver.as_ref(), &mut r).await;
    remote_access(loaded, &mut r).await;
    if let Some(res) = resolver {
        res.close().await;
    }
    r
}

/// The report's first item (where the configuration came from) and the secret resolver, or a
/// failure saying why the Vault client cannot be set up.
fn start(loaded: &Loaded) -> (Report, Option<Resolver>) {
    let mut r = Report::default();
    r.ok(
        "config",
        "load",
        match &loaded.origin.file {
            Some(f) => format!("loaded {}", f.display()),
            None => "loaded from the environment".to_string(),
        },
    );
    let resolver = match Resolver::new(loaded.config.vault.as_ref()) {
        Ok(res) => Some(res),
        Err(e) => {
            r.fail(
                "secrets",
                "vault",
                format!("the Vault client cannot be set up: {e}"),
                "check the [vault] section",
            );
            None
        }
    };
    (r, resolver)
}

/// `validate-ticket --check`: the configuration, the ticketing secret references, and the
/// ticketing section of the site check (sign-in, every configured table or form read, the
/// bypass-code list). Reads only.
pub async fn run_ticketing(loaded: &Loaded) -> Report {
    let (mut r, resolver) = start(loaded);
    if let Some(res) = &resolver {
        let refs: Vec<(String, SecretRef)> = secret_refs(loaded)
            .into_iter()
            .filter(|(k, _)| k.starts_with("ticketing."))
            .collect();
        check_refs(&refs, res, &mut r).await;
    }
    ticketing(loaded, resolver.as_ref(), &mut r).await;
    if let Some(res) = resolver {
        res.close().await;
    }
    r
}

/// Every secret reference of the configuration, by its key.
fn secret_refs(loaded: &Loaded) -> Vec<(String, SecretRef)> {
    let c = &loaded.config;
    let mut out: Vec<(String, SecretRef)> = Vec::new();
    for (role, acc) in [
        ("level1", &c.accounts.level1),
        ("level2", &c.accounts.level2),
        ("lookup", &c.accounts.lookup),
    ] {
        if let Some(a) = acc {
            out.push((format!("accounts.{role}.password"), a.password.clone()));
        }
    }
    if let Some(d) = &c.directory {
        if let Some(p) = &d.bind_password {
            out.push(("directory.bind_password".into(), p.clone()));
        }
        if let Some(g) = &d.graph {
            for (k, v) in [
                ("certificate", &g.certificate),
                ("private_key", &g.private_key),
                ("client_secret", &g.client_secret),
            ] {
                if let Some(v) = v {
                    out.push((format!("directory.graph.{k}"), v.clone()));
                }
            }
        }
    }
    if let Some(m) = &c.mailbox {
        if let Some(p) = &m.password {
            out.push(("mailbox.password".into(), p.clone()));
        }
        if let Some(o) = &m.oauth {
            out.push((
                "mailbox.oauth.client_secret".into(),
                o.client_secret.clone(),
            ));
        }
        if let Some(g) = &m.graph {
            for (k, v) in [
                ("certificate", &g.certificate),
                ("private_key", &g.private_key),
                ("client_secret", &g.client_secret),
            ] {
                if let Some(v) = v {
                    out.push((format!("mailbox.graph.{k}"), v.clone()));
                }
            }
        }
    }
    if let Some(t) = &c.ticketing {
        if let Some(s) = &t.servicenow {
            for (k, v) in [
                ("password", &s.password),
                ("client_secret", &s.client_secret),
            ] {
                if let Some(v) = v {
                    out.push((format!("ticketing.servicenow.{k}"), v.clone()));
                }
            }
        }
        if let Some(rm) = &t.remedy {
            out.push(("ticketing.remedy.password".into(), rm.password.clone()));
        }
    }
    if let Some(ra) = &c.remote_access {
        out.push(("remote_access.key_file".into(), ra.key_file.clone()));
    }
    if let Some(p) = &c.journal.password {
        out.push(("journal.password".into(), p.clone()));
    }
    out
}

/// The journal on PostgreSQL (`[journal] url`): connect over verified TLS, sign in, read the
/// schema's version. Reads only (nothing is created); no section for the SQLite journal.
async fn journal(loaded: &Loaded, res: &Resolver, r: &mut Report) {
    use crate::journal::pg::SCHEMA_VERSION;
    let target = match loaded.config.journal.target(loaded) {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(e) => {
            r.fail("journal", "config", e.to_string(), "correct [journal]");
            return;
        }
    };
    let password = match &target.password {
        Some(p) => match res.resolve(p).await {
            Ok(v) => Some(v),
            Err(e) => {
                r.fail(
                    "journal",
                    "password",
                    format!("{p} does not resolve: {e}"),
                    "see the secrets section",
                );
                return;
            }
        },
        None => None,
    };
    let shown = crate::journal::pg::shown_url(&target.url);
    let j = match crate::journal::Journal::open_postgres(&target, password, false) {
        Ok(j) => j,
        Err(e) => {
            r.fail(
                "journal",
                "connect",
                e.to_string(),
                "check journal.url, journal.password and journal.ca_bundle (the CA that signs the database server's certificate), and that the server accepts this host over TLS",
            );
            return;
        }
    };
    r.ok(
        "journal",
        "connect",
        format!("signed in to {shown} over TLS, the server's certificate and name verified"),
    );
    match j.schema_version() {
        Ok(Some(0)) => r.ok(
            "journal",
            "schema",
            format!(
                "schema {} not created yet: the watcher creates it (version {SCHEMA_VERSION}) on its first start; the account needs CREATE on the database, or create the schema beforehand owned by it",
                target.schema
            ),
        ),
        Ok(Some(v)) if v == SCHEMA_VERSION => r.ok(
            "journal",
            "schema",
            format!("schema {} at version {v}, this program's", target.schema),
        ),
        Ok(Some(v)) => r.ok(
            "journal",
            "schema",
            format!(
                "schema {} at version {v}: the watcher migrates it to {SCHEMA_VERSION} on start",
                target.schema
            ),
        ),
        Ok(None) => {}
        Err(e) => r.fail(
            "journal",
            "schema",
            e.to_string(),
            "run the pam-approval version that migrated the schema, or a newer one",
        ),
    }
    // Two or more hosts: who holds the lease of the active host, and how fresh it is.
    match j.lease_info() {
        Ok(Some(i)) if i.live() => r.ok(
            "journal",
            "lease",
            format!(
                "active host: {} (epoch {}, lease renewed {:.1} s ago; this host: {})",
                crate::journal::lease::host_of(&i.holder),
                i.epoch,
                i.renewed_ms_ago.unwrap_or(0) as f64 / 1000.0,
                target.host_name
            ),
        ),
        Ok(Some(i)) if i.holder.is_empty() => r.ok(
            "journal",
            "lease",
            format!(
                "no host has taken the lease yet (this host: {})",
                target.host_name
            ),
        ),
        Ok(Some(i)) => r.ok(
            "journal",
            "lease",
            format!(
                "no active host: the lease of {} {} {:.0} s ago (a running watcher takes it within a second)",
                crate::journal::lease::host_of(&i.holder),
                if i.released { "was released" } else { "expired" },
                i.expired_ms_ago.unwrap_or(0).max(0) as f64 / 1000.0
            ),
        ),
        Ok(None) => {}
        Err(e) => r.fail(
            "journal",
            "lease",
            e.to_string(),
            "check the journal database",
        ),
    }
}

async fn secrets(loaded: &Loaded, res: &Resolver, r: &mut Report) {
    check_refs(&secret_refs(loaded), res, r).await;
}

/// Each reference resolves to a value that is not empty (the value is never shown).
async fn check_refs(refs: &[(String, SecretRef)], res: &Resolver, r: &mut Report) {
    if refs.is_empty() {
        r.skip("secrets", "references", "no secret reference is configured");
    }
    for (key, sref) in refs {
        match res.resolve(sref).await {
            Ok(v) => {
                use secrecy::ExposeSecret;
                if v.expose_secret().is_empty() {
                    r.fail(
                        "secrets",
                        key.as_str(),
                        format!("{sref} resolves to an empty value"),
                        format!("put the secret where {sref} points, or change {key}"),
                    );
                } else {
                    r.ok("secrets", key.as_str(), format!("{sref} resolves"));
                }
            }
            Err(e) => r.fail(
                "secrets",
                key.as_str(),
                format!("{sref} does not resolve: {e}"),
                format!("make {sref} readable by this account, or change {key}"),
            ),
        }
    }
}

fn files(loaded: &Loaded, r: &mut Report) {
    match crate::pipeline::watch_loop::check_trusted_paths(loaded) {
        Ok(()) => r.ok(
            "files",
            "modes",
            "the configuration, reply templates and state directory are not writable by group or others",
        ),
        Err(e) => r.fail(
            "files",
            "modes",
            e.to_string(),
            "chmod go-w the path named (the watcher refuses to start until then)",
        ),
    }
}

/// A ticketing system as built from the configuration, or why it could not be.
type SystemOrError =
    Result<Box<dyn crate::ticketing::TicketSystem>, crate::ticketing::TicketingError>;

/// Sign each account in and out; with the lookup account read the incoming requests and the
/// members of the safes seen. Returns the approver groups found, per safe and level.
async fn pvwa(loaded: &Loaded, res: &Resolver, r: &mut Report) -> Vec<(String, u8, Approvers)> {
    let cfg = match loaded.pvwa() {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "pvwa",
                "configuration",
                e.to_string(),
                "set pvwa.url (see docs/configuration.md)",
            );
            return Vec::new();
        }
    };
    let client = match Pvwa::new(cfg) {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "pvwa",
                "client",
                e.to_string(),
                "check pvwa.url and pvwa.ca_bundle",
            );
            return Vec::new();
        }
    };
    let mode = if client.is_privilege_cloud() {
        "Privilege Cloud"
    } else {
        "self-hosted PVWA"
    };
    let mut found = Vec::new();
    // The safes of the requests the level accounts may confirm: the lookup account, which
    // holds no Authorize right (docs/vault-permissions.md), may list none of them itself.
    let mut confirmable: BTreeSet<String> = BTreeSet::new();
    for role in [
        AccountRole::Level1,
        AccountRole::Level2,
        AccountRole::Lookup,
    ] {
        let key = role.key();
        let account = match role {
            AccountRole::Level1 => &loaded.config.accounts.level1,
            AccountRole::Level2 => &loaded.config.accounts.level2,
            AccountRole::Lookup => &loaded.config.accounts.lookup,
        };
        if account.is_none() {
            let finding = if role == AccountRole::Lookup {
                "[accounts.lookup] is not set: the level2 account reads requests and safe members"
            } else {
                "not configured"
            };
            r.skip("pvwa", format!("account {key}"), finding);
            if role != AccountRole::Lookup {
                continue;
            }
        }
        let (user, pw): (String, SecretString) = match loaded.credentials(res, role).await {
            Ok(c) => c,
            Err(e) => {
                r.fail(
                    "pvwa",
                    format!("account {key}"),
                    format!("no credentials: {e}"),
                    format!("set [accounts.{key}] (see the secrets section)"),
                );
                continue;
            }
        };
        let session = match client.logon(&user, &pw).await {
            Ok(s) => s,
            Err(e) => {
                r.fail(
                    "pvwa",
                    format!("account {key}"),
                    format!("{user} cannot sign in to the {mode}: {e}"),
                    format!("check accounts.{key}.username and its password, and that the account is enabled"),
                );
                continue;
            }
        };
        r.ok(
            "pvwa",
            format!("account {key}"),
            format!("{user} signs in to the {mode}"),
        );
        if role == AccountRole::Lookup {
            found = lookup(loaded, &session, &user, &confirmable, r).await;
        } else if let Ok(list) = session.list_incoming(false, false).await {
            confirmable.extend(list.into_iter().map(|q| q.safe_name));
        }
        session.logoff().await;
    }
    found
}

async fn lookup(
    loaded: &Loaded,
    session: &Session,
    user: &str,
    confirmable: &BTreeSet<String>,
    r: &mut Report,
) -> Vec<(String, u8, Approvers)> {
    let mut safes: BTreeSet<String> = BTreeSet::new();
    match session.list_incoming(false, false).await {
        Ok(list) => {
            let statuses: BTreeSet<i64> = list.iter().map(|q| q.status).collect();
            for q in &list {
                safes.insert(q.safe_name.clone());
            }
            let mut finding = format!(
                "{user} reads IncomingRequests: {} request(s) on {} safe(s), status values seen {:?}",
                list.len(),
                safes.len(),
                statuses
            );
            let more: Vec<&str> = confirmable
                .iter()
                .filter(|s| !safes.contains(*s))
                .map(String::as_str)
                .collect();
            if !more.is_empty() {
                finding.push_str(&format!(
                    "; the level accounts may confirm requests on {} as well",
                    more.join(", ")
                ));
            }
            r.ok("pvwa", "incoming requests", finding);
        }
        Err(e) => r.fail(
            "pvwa",
            "incoming requests",
            format!("{user} cannot read IncomingRequests: {e}"),
            "the lookup account must be an approver (Authorize requests) on the safes it watches",
        ),
    }
    safes.extend(confirmable.iter().cloned());
    let Ok(s) = loaded.directory() else {
        return Vec::new();
    };
    for rule in &s.static_rules {
        for safe in &rule.safes {
            safes.insert(safe.clone());
        }
    }
    let mut out = Vec::new();
    let none_held =
        loaded.config.watcher.portal_rights == crate::pipeline::config::PortalRightsCheck::NoneHeld;
    let static_mode = s.approvers != ApproverMode::SafeMembers;
    let cache = TtlCache::new(std::time::Duration::from_secs(300));
    let role_cache = TtlCache::new(std::time::Duration::from_secs(300));
    for safe in &safes {
        // Read in both approver modes: under portal_rights = "check" the watcher reads them
        // before each confirm that leaves confirmations to go, and refuses the mail when it
        // cannot (portal_rights_unknown).
        // Mode safe-members reads each approver group's vault record too (the watcher's own
        // read, directory::check); mode static needs only the members (portal rights).
        let read = if static_mode {
            session
                .safe_members(safe)
                .await
                .map(|members| SafeApprovers {
                    safe: safe.clone(),
                    members,
                    records: Default::default(),
                    roles: Default::default(),
                })
        } else {
            match read_safe_approvers(session, safe, &cache).await {
                Ok(mut m) => resolve_roles(session, &mut m, &s.group_names, &role_cache)
                    .await
                    .map(|()| m),
                Err(e) => Err(e),
            }
        };
        let read = match read {
            Ok(m) => Some(m),
            Err(e) => {
                let why = if !static_mode {
                    "its approver groups cannot be known, every mail on it is refused"
                } else if none_held {
                    "portal_rights = \"none-held\" cannot be verified"
                } else {
                    "the watcher refuses mails on its requests portal_rights_unknown (portal_rights = \"check\")"
                };
                let fix = if matches!(e, crate::pvwa::PvwaError::Identity { .. }) {
                    format!(
                        "{user} reads the Role members' holders in CyberArk Identity (roles_from = \"identity\"): {}",
                        crate::pvwa::roles::RIGHT_HINT
                    )
                } else if matches!(e, crate::pvwa::PvwaError::NoPermission { .. }) && !static_mode {
                    format!(
                        "give {user} the safe member right \"View Safe members\" on {safe} and the vault permission \"Audit users\" (group records)"
                    )
                } else {
                    format!("give {user} the safe member right \"View Safe members\" on {safe}")
                };
                r.fail(
                    "pvwa",
                    format!("safe {safe}"),
                    format!("{user} cannot read the approvers of safe {safe} ({why}): {e}"),
                    fix,
                );
                None
            }
        };
        let now = chrono::Utc::now().timestamp();
        let per_level: Vec<(String, u8, Approvers)> = [1u8, 2]
            .into_iter()
            .map(|level| {
                let a = match (&read, static_mode) {
                    (_, true) => crate::directory::check::static_approvers(&s, safe, level),
                    (Some(m), false) => approvers_at(&s, safe, Some(m), level, now),
                    (None, false) => Approvers::default(),
                };
                (safe.clone(), level, a)
            })
            .collect();
        if let Some(m) = &read {
            role_checks(&s, user, m, r);
        }
        let members = read.map(|r| r.members);
        if let Some(m) = &members {
            service_account_checks(loaded, safe, m, r);
            none_held_checks(loaded, safe, m, &per_level, r);
        }
        if members.is_some() || static_mode {
            out.extend(per_level);
        }
    }
    if static_mode {
        r.ok(
            "pvwa",
            "approver source",
            "directory.approvers = \"static\": approver groups come from [[directory.static]]",
        );
    }
    report_approvers(&out, r);
    out
}

/// How each Role member of a safe (a CyberArk Identity role) with an authorisation right is
/// resolved: the explicit `[directory.group_names.roles]` table, CyberArk Identity (and that
/// the read worked), or not at all.
fn role_checks(s: &crate::directory::Settings, user: &str, read: &SafeApprovers, r: &mut Report) {
    use crate::directory::check::RoleResolution as How;
    let safe = &read.safe;
    for (role, how) in read.role_members(&s.group_names) {
        let check = format!("safe {safe} role {role}");
        match how {
            How::Table(dn) => r.ok(
                "directory",
                check,
                format!(
                    "Role member \"{role}\" resolved by the explicit table [directory.group_names.roles]: the directory group {dn}"
                ),
            ),
            How::Skipped => r.skip(
                "directory",
                check,
                format!(
                    "Role member \"{role}\" is skipped: it is not in [directory.group_names.roles] and roles_from is not \"identity\", so nobody approves through it"
                ),
            ),
            How::Identity {
                users,
                groups,
                notes,
            } => {
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    format!("; not used: {}", notes.join("; "))
                };
                r.ok(
                    "directory",
                    check,
                    format!(
                        "Role member \"{role}\" resolved through CyberArk Identity (read as {user}): {users} user(s), {groups} group(s){notes}"
                    ),
                );
            }
            How::Missing => r.fail(
                "directory",
                check,
                format!("CyberArk Identity has no role named \"{role}\""),
                "correct the safe member, or create the role in CyberArk Identity",
            ),
            How::Unusable(why) => r.fail(
                "directory",
                check,
                format!("CyberArk Identity role \"{role}\" cannot be used: {why}"),
                "give the role a unique name and fewer members, or map it with [directory.group_names.roles]",
            ),
            How::NotRead => r.skip(
                "directory",
                check,
                format!("Role member \"{role}\" was not read from CyberArk Identity"),
            ),
        }
    }
}

fn report_approvers(found: &[(String, u8, Approvers)], r: &mut Report) {
    for (safe, level, a) in found {
        let check = format!("safe {safe} level {level}");
        let groups: Vec<&str> = a.groups.iter().map(|g| g.name.as_str()).collect();
        let skipped: Vec<String> = a
            .skipped
            .iter()
            .map(|s| format!("{} ({})", s.member, s.reason))
            .collect();
        let skipped = if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped: {}", skipped.join("; "))
        };
        let roles: Vec<String> = a
            .roles
            .iter()
            .map(|x| format!("{} ({} user(s))", x.role, x.users.len()))
            .collect();
        let roles = if roles.is_empty() {
            String::new()
        } else {
            format!("; CyberArk Identity roles {}", roles.join(", "))
        };
        if groups.is_empty() && a.roles.is_empty() {
            r.skip("pvwa", check, format!("no approver group{skipped}"));
        } else if groups.is_empty() {
            r.ok("pvwa", check, format!("no approver group{roles}{skipped}"));
        } else {
            r.ok(
                "pvwa",
                check,
                format!("approver groups {}{roles}{skipped}", groups.join(", ")),
            );
        }
    }
}

/// A service account of this tool that confirms through a safe member people also use: PVWA
/// then shows one confirmer entry for that member.
fn service_account_checks(
    loaded: &Loaded,
    safe: &str,
    members: &[crate::pvwa::SafeMember],
    r: &mut Report,
) {
    let accounts = &loaded.config.accounts;
    for (level, acc) in [(1u8, &accounts.level1), (2, &accounts.level2)] {
        let Some(acc) = acc else { continue };
        let direct = members.iter().any(|m| {
            m.member_name.eq_ignore_ascii_case(&acc.username)
                && match level {
                    1 => m.permissions.requests_authorization_level1,
                    _ => m.permissions.requests_authorization_level2,
                }
        });
        if !direct {
            let shared: Vec<&str> = members
                .iter()
                .filter(|m| {
                    m.is_group()
                        && match level {
                            1 => m.permissions.requests_authorization_level1,
                            _ => m.permissions.requests_authorization_level2,
                        }
                })
                .map(|m| m.member_name.as_str())
                .collect();
            if !shared.is_empty() {
                r.warn(
                    "pvwa",
                    format!("safe {safe} level {level} service account"),
                    format!(
                        "{} is not a direct level-{level} member of {safe}; if it confirms through {} (a group people also use), PVWA shows one confirmer entry for that group and a colleague's portal confirm replaces the reason trace (the journal stays the record)",
                        acc.username,
                        shared.join(", ")
                    ),
                    format!("make {} a direct member of {safe} with level-{level} authorization, or accept the weaker PVWA trace (docs/site-check.md)", acc.username),
                );
            }
        }
    }
}

/// The last `n` unread mails of the watched folder: what the watcher would decide about each
/// sender and why, from the transport headers Exchange stamped (read only: fetched, never
/// marked read, moved or answered).
async fn recent_mails(
    loaded: &Loaded,
    mb: &dyn crate::mailbox::Mailbox,
    n: usize,
    r: &mut Report,
) -> Vec<String> {
    let mut accepted = Vec::new();
    if n == 0 {
        return accepted;
    }
    let list = match mb.list_new().await {
        Ok(l) => l,
        Err(e) => {
            r.fail(
                "mailbox",
                "recent mails",
                format!("the watched folder cannot be listed: {e}"),
                "check the account's read right on mailbox.folder",
            );
            return accepted;
        }
    };
    if list.is_empty() {
        r.skip(
            "mailbox",
            "recent mails",
            "no unread mail in the watched folder to judge (forward one to try [sender])",
        );
        return accepted;
    }
    let skip = list.len().saturating_sub(n);
    for (i, m) in list.iter().skip(skip).enumerate() {
        let check = format!("mail {}", i + 1);
        let fetched = match mb.fetch(m).await {
            Ok(f) => f,
            Err(e) => {
                r.fail(
                    "mailbox",
                    check,
                    format!("cannot be read: {e}"),
                    "check the account's read right on mailbox.folder",
                );
                continue;
            }
        };
        let headers = match &fetched.transport_headers {
            Some(t) if !t.trim().is_empty() => crate::sender::headers_from_raw(t.as_bytes()),
            _ => {
                r.warn(
                    "mailbox",
                    check,
                    "carries no transport headers (put into the folder rather than delivered): the watcher refuses it no_transport_headers",
                    "only delivered mail can be verified; find out who can create items in the folder (see the rights item)",
                );
                continue;
            }
        };
        let header = |name: &str| -> String {
            let v: Vec<&str> = headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.trim())
                .collect();
            if v.is_empty() {
                "none".into()
            } else {
                v.join(" | ")
            }
        };
        let mut seen = format!(
            "AuthAs {}, AuthSource {}, Authentication-Results {}",
            header("X-MS-Exchange-Organization-AuthAs"),
            header("X-MS-Exchange-Organization-AuthSource"),
            header("Authentication-Results"),
        );
        if loaded.config.sender.pinned_tenant().is_some() {
            seen.push_str(&format!(
                ", CrossTenant-Id {}",
                header(crate::sender::CROSS_TENANT_ID)
            ));
        }
        let a = crate::sender::assess(&headers, &loaded.config.sender);
        let from = a.address.clone().unwrap_or_else(|| "(no sender)".into());
        match a.verdict() {
            Ok(v) => {
                r.ok(
                    "mailbox",
                    check,
                    format!("from {}: accepted ({seen})", v.address),
                );
                accepted.push(v.address.clone());
            }
            Err(refusal) => r.warn(
                "mailbox",
                check,
                format!(
                    "from {from}: would be refused {}: {} ({seen})",
                    refusal.reason.code(),
                    refusal.message
                ),
                "if this mail is a genuine forward from inside, [sender] does not fit the site (compare auth_sources, allowed_domains and authserv_ids with the values seen)",
            ),
        }
    }
    accepted
}

/// Under `[watcher] portal_rights = "none-held"` the watcher reads no safe member before it
/// confirms: the deployment states that mail approvers hold no PVWA right on the safes served.
/// Every member with an authorisation right other than this tool's accounts contradicts it: a
/// mail approver group (or a person) is a failure, another group a warning (its members may be
/// mail approvers).
fn none_held_checks(
    loaded: &Loaded,
    safe: &str,
    members: &[crate::pvwa::SafeMember],
    approvers: &[(String, u8, Approvers)],
    r: &mut Report,
) {
    use crate::pipeline::config::PortalRightsCheck;
    if loaded.config.watcher.portal_rights != PortalRightsCheck::NoneHeld {
        return;
    }
    let a = &loaded.config.accounts;
    let ours: Vec<&str> = [&a.level1, &a.level2, &a.lookup]
        .into_iter()
        .flatten()
        .map(|acc| acc.username.as_str())
        .collect();
    let mut clean = true;
    for m in members {
        let p = &m.permissions;
        if !(p.requests_authorization_level1 || p.requests_authorization_level2) {
            continue;
        }
        if ours.iter().any(|o| o.eq_ignore_ascii_case(&m.member_name)) {
            continue;
        }
        clean = false;
        let quoted = format!("\"{}\"", m.member_name);
        let is_approver = approvers
            .iter()
            .any(|(_, _, ap)| ap.groups.iter().any(|g| g.source.contains(&quoted)));
        let check = format!("safe {safe} portal rights");
        let fix = format!(
            "remove the authorisation right of {} on {safe} (only this tool's accounts may hold one), or set [watcher] portal_rights = \"check\"",
            m.member_name
        );
        if !m.is_group() || is_approver {
            r.fail(
                "pvwa",
                check,
                format!(
                    "portal_rights = \"none-held\" but {} {} holds an authorisation right on {safe}: a mail approver could confirm twice (by mail and in the portal)",
                    if m.is_group() { "mail approver group" } else { "user" },
                    m.member_name
                ),
                fix,
            );
        } else {
            r.warn(
                "pvwa",
                check,
                format!(
                    "portal_rights = \"none-held\" but group {} holds an authorisation right on {safe}; if a mail approver is in it, they could confirm twice",
                    m.member_name
                ),
                fix,
            );
        }
    }
    if clean {
        r.ok(
            "pvwa",
            format!("safe {safe} portal rights"),
            "portal_rights = \"none-held\": only this tool's accounts hold an authorisation right",
        );
    }
}

/// The mailbox's sign-in: open it (for Graph, a token from Entra ID), read the watched folder
/// and look for the Processed and Refused folders. Changes nothing. The mailbox section of the
/// site check and `--check-mailbox` (which prints only this) both go through here.
pub async fn sign_in_mailbox(
    cfg: &crate::mailbox::MailboxConfig,
    res: &Resolver,
) -> Result<
    (
        std::sync::Arc<dyn crate::mailbox::Mailbox>,
        crate::mailbox::Probe,
    ),
    crate::mailbox::MailboxError,
> {
    let mb = crate::mailbox::open(cfg, res).await?;
    let names = [cfg.processed_folder.as_str(), cfg.refused_folder.as_str()];
    let probe = mb.probe(&names).await?;
    Ok((mb, probe))
}

/// The mailbox section; returns the senders of the recent mails `[sender]` accepts.
async fn mailbox(loaded: &Loaded, res: &Resolver, mails: usize, r: &mut Report) -> Vec<String> {
    let Some(cfg) = loaded.config.mailbox.as_ref() else {
        r.skip("mailbox", "mailbox", "no [mailbox] section");
        return Vec::new();
    };
    if let Err((key, message)) = cfg.validate() {
        r.fail("mailbox", "configuration", message, format!("set {key}"));
        return Vec::new();
    }
    let kind = match cfg.kind {
        crate::mailbox::MailboxKind::Ews => "EWS",
        crate::mailbox::MailboxKind::Graph => "Graph",
    };
    let (mb, p) = match sign_in_mailbox(cfg, res).await {
        Ok(x) => x,
        Err(e) => {
            let hint = crate::error::classify(&e).1.unwrap_or_else(|| {
                format!(
                    "check the [mailbox] credentials, the mailbox address, mailbox.folder ({:?}) and the account's rights on it",
                    cfg.folder
                )
            });
            r.fail(
                "mailbox",
                "sign in",
                format!("{} ({kind}): {e}", cfg.mailbox),
                hint,
            );
            return Vec::new();
        }
    };
    r.ok(
        "mailbox",
        "sign in",
        format!(
            "{} ({kind}) signs in; folder {:?} readable, {} unread",
            cfg.mailbox, cfg.folder, p.unread
        ),
    );
    for (name, exists) in p.folders {
        r.ok(
            "mailbox",
            format!("folder {name}"),
            if exists {
                "exists"
            } else {
                "missing, created at the first filing"
            },
        );
    }
    certificate_end(r);
    sending_pace(cfg, r);
    tenant_pin(cfg, &loaded.config.sender, r);
    rights(cfg, mb.as_ref(), r).await;
    recent_mails(loaded, mb.as_ref(), mails, r).await
}

/// The end of the certificate the mailbox app signed in with: a warning within
/// [`EXPIRY_WARNING_DAYS`](crate::mailbox::oauth::EXPIRY_WARNING_DAYS) of it (an expired one
/// does not load at all, and the sign-in above failed naming it).
fn certificate_end(r: &mut Report) {
    use crate::mailbox::oauth::{EXPIRY_WARNING_DAYS, certificate_not_after};
    let Some(end) = certificate_not_after() else {
        return;
    };
    let days = (end - chrono::Utc::now().timestamp()).div_euclid(86_400);
    let date = chrono::DateTime::from_timestamp(end, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    if days < EXPIRY_WARNING_DAYS {
        r.warn(
            "mailbox",
            "certificate",
            format!("the app's certificate ends on {date}, in {days} day(s)"),
            "create a new certificate, upload its public part to the app registration, and replace the files mailbox.graph.certificate and private_key point to (picked up at the next sign-in, no restart)",
        );
    } else {
        r.ok(
            "mailbox",
            "certificate",
            format!("the app's certificate is valid until {date} ({days} days)"),
        );
    }
}

/// The sending pace against Exchange Online's limit of 30 messages a minute (docs/graph.md,
/// "Sending limits"): above it, or off, Exchange refuses the excess and the replies wait.
fn sending_pace(cfg: &crate::mailbox::MailboxConfig, r: &mut Report) {
    let n = cfg.max_sends();
    // Sends a minute, whatever window they are counted over (send_window_secs is 60 outside
    // tests).
    let per_minute = u64::from(n) * 60 / cfg.send_window_secs.max(1);
    let online = cfg.exchange_online();
    let fix =
        "leave mailbox.max_sends_per_minute out (30 on Exchange Online) or set it to 30 or less";
    if online && n == 0 {
        r.warn(
            "mailbox",
            "sending pace",
            "not paced (max_sends_per_minute = 0): Exchange Online refuses more than 30 messages a minute, and the replies to a burst wait for it",
            fix,
        );
    } else if online && per_minute > 30 {
        r.warn(
            "mailbox",
            "sending pace",
            format!(
                "{n} mails per {} s (max_sends_per_minute, send_window_secs) is above Exchange Online's 30 messages a minute: Exchange refuses the excess, and those replies wait",
                cfg.send_window_secs
            ),
            format!("{fix}, with send_window_secs = 60"),
        );
    } else if n == 0 {
        r.ok(
            "mailbox",
            "sending pace",
            "not paced (max_sends_per_minute = 0); a send the server refuses for its quota waits and goes later",
        );
    } else {
        let pace = if cfg.send_window_secs == 60 {
            format!("at most {n} mails a minute")
        } else {
            format!(
                "at most {n} mails per {} s ({per_minute} a minute)",
                cfg.send_window_secs
            )
        };
        r.ok(
            "mailbox",
            "sending pace",
            format!("{pace}; more wait, owed, and go at the pace (approvals are never held back)"),
        );
    }
}

/// The tenant pin (docs/graph.md, "The tenant pin"): on Exchange Online the tenant whose stamps
/// a mail must carry. Off on Exchange Online is a warning (`*.prod.outlook.com` are every
/// tenant's servers); a pin that is not the Graph mailbox's own tenant is a failure (that
/// tenant stamps this organisation's mail, so every mail would be refused `foreign_tenant`).
fn tenant_pin(
    cfg: &crate::mailbox::MailboxConfig,
    sender: &crate::sender::SenderPolicyConfig,
    r: &mut Report,
) {
    let own = cfg
        .graph
        .as_ref()
        .filter(|_| cfg.kind == crate::mailbox::MailboxKind::Graph)
        .map(|g| g.tenant_id.trim())
        .filter(|t| crate::text::is_guid(t));
    match sender.pinned_tenant() {
        Some(t) => {
            if let Some(own) = own.filter(|o| !o.eq_ignore_ascii_case(t.trim())) {
                r.fail(
                    "mailbox",
                    "tenant pin",
                    format!(
                        "sender.tenant_id {t} is not the mailbox's tenant ({own}, mailbox.graph.tenant_id): Exchange Online stamps this organisation's mail with {own}, so every mail would be refused foreign_tenant"
                    ),
                    "leave sender.tenant_id out (it defaults to mailbox.graph.tenant_id) or set it to the mailbox's tenant id",
                );
                return;
            }
            let whence = if own.is_some() {
                "sender.tenant_id, by default mailbox.graph.tenant_id"
            } else {
                "sender.tenant_id"
            };
            r.ok(
                "mailbox",
                "tenant pin",
                format!(
                    "mail must carry X-MS-Exchange-CrossTenant-Id {t} ({whence}), X-MS-Exchange-CrossTenant-AuthAs Internal and one X-MS-Exchange-CrossTenant-AuthSource; any other is refused foreign_tenant"
                ),
            );
        }
        None if cfg.exchange_online() => r.warn(
            "mailbox",
            "tenant pin",
            "not pinned (sender.tenant_id = \"none\", or unset on EWS): on Exchange Online sender.auth_sources (*.prod.outlook.com) names servers every tenant shares, so it alone does not tie a mail to this organisation",
            "set [sender] tenant_id to the tenant's id (a GUID: Entra admin center, Overview; docs/graph.md, The tenant pin)",
        ),
        None => {}
    }
}

/// Why the rights items matter, for their hints.
const RIGHTS_WHY: &str = "whoever can create items in the watched folder may plant transport headers (Exchange keeps X-MS-Exchange-Organization-AuthAs/AuthSource from imported MIME, MS-OXCMAIL 2.2.3.2.29; docs/notice-and-sender.md)";

/// Who else holds rights on the mailbox and its watched folder, as far as the protocol shows
/// it (read-only). EWS: the folder's permission set and the delegates; Full Access and
/// application access policies are never visible through the mailbox protocol.
async fn rights(
    cfg: &crate::mailbox::MailboxConfig,
    mb: &dyn crate::mailbox::Mailbox,
    r: &mut Report,
) {
    let fr = mb.folder_rights().await;
    // The service account's own entry (a folder permission held by the account that signs in).
    let own: Vec<String> = [Some(cfg.mailbox.as_str()), cfg.username.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| s.contains('@'))
        .map(str::to_ascii_lowercase)
        .collect();
    let is_own = |smtp: &Option<String>| {
        smtp.as_ref()
            .is_some_and(|a| own.contains(&a.to_ascii_lowercase()))
    };
    let graph = cfg.kind == crate::mailbox::MailboxKind::Graph;
    if graph {
        r.skip(
            "mailbox",
            "rights: folder permissions and delegates",
            format!(
                "not readable on Graph ({}); check them in Exchange (Get-MailboxFolderPermission, delegates): {RIGHTS_WHY}",
                fr.folder.as_ref().err().map(String::as_str).unwrap_or("not read")
            ),
        );
    } else {
        let check = format!("rights: folder {:?} permissions", cfg.folder);
        match &fr.folder {
            Err(why) => r.skip(
                "mailbox",
                check,
                format!(
                    "not readable ({why}); check them in Exchange (Get-MailboxFolderPermission): {RIGHTS_WHY}"
                ),
            ),
            Ok(grants) => {
                let risky: Vec<_> = grants
                    .iter()
                    .filter(|g| g.can_create && !is_own(&g.smtp))
                    .collect();
                if risky.is_empty() {
                    r.ok(
                        "mailbox",
                        check.clone(),
                        format!(
                            "{} entr{}, none but the service account can create items",
                            grants.len(),
                            if grants.len() == 1 { "y" } else { "ies" }
                        ),
                    );
                }
                for g in risky {
                    r.warn(
                        "mailbox",
                        check.clone(),
                        format!(
                            "{}{} holds {} on folder {:?} and can create items in it",
                            g.who,
                            match g.distinguished.as_deref() {
                                Some("Default") => " (every user not listed)",
                                Some("Anonymous") => " (unauthenticated users)",
                                _ => "",
                            },
                            g.level,
                            cfg.folder
                        ),
                        format!(
                            "remove the permission (Remove-MailboxFolderPermission) or lower it to None/Reviewer: {RIGHTS_WHY}"
                        ),
                    );
                }
            }
        }
        let check = "rights: delegates";
        match &fr.delegates {
            Err(why) => r.skip(
                "mailbox",
                check,
                format!("not readable ({why}); check the mailbox's delegates in Exchange or Outlook: {RIGHTS_WHY}"),
            ),
            Ok(ds) if ds.is_empty() => r.ok("mailbox", check, "the mailbox has no delegates"),
            Ok(ds) => {
                for d in ds {
                    r.warn(
                        "mailbox",
                        check,
                        format!(
                            "{} is a delegate of {} (Inbox: {})",
                            d.who,
                            cfg.mailbox,
                            d.inbox_level.as_deref().unwrap_or("level not given")
                        ),
                        format!("remove the delegate: {RIGHTS_WHY}"),
                    );
                }
            }
        }
    }
    r.skip(
        "mailbox",
        "rights: Full Access and application access",
        format!(
            "not readable through EWS or Graph; in Exchange only the service account should hold Full Access (Get-MailboxPermission) or app access (application access policies, RBAC for Applications): {RIGHTS_WHY}"
        ),
    );
}

async fn directory(
    loaded: &Loaded,
    res: &Resolver,
    found: &[(String, u8, Approvers)],
    r: &mut Report,
) {
    if loaded.config.directory.is_none() {
        r.skip("directory", "directory", "no [directory] section");
        return;
    }
    let s = match loaded.directory() {
        Ok(s) => s,
        Err(e) => {
            r.fail(
                "directory",
                "configuration",
                e.to_string(),
                "fix the key named",
            );
            return;
        }
    };
    if s.entra.is_some() {
        return entra_directory(s, res, found, r).await;
    }
    let Some(pw_ref) = s.bind_password.clone() else {
        return;
    };
    let pw = match res.resolve(&pw_ref).await {
        Ok(p) => p,
        Err(e) => {
            r.fail(
                "directory",
                "bind",
                format!("directory.bind_password does not resolve: {e}"),
                "fix directory.bind_password",
            );
            return;
        }
    };
    let servers = s.servers();
    let bind_dn = s.bind_dn.clone();
    let dir = match LdapDirectory::new(s, pw) {
        Ok(d) => d,
        Err(e) => {
            r.fail(
                "directory",
                "bind",
                e.to_string(),
                "check directory.url and directory.ca_bundle",
            );
            return;
        }
    };
    match dir.effective_strategy().await {
        Ok(st) => {
            r.ok("directory", "bind", format!("{bind_dn} binds to {servers}"));
            r.ok("directory", "membership", format!("strategy {}", st.name()));
            let mut groups = Vec::new();
            for (_, _, a) in found {
                for g in &a.groups {
                    if !groups
                        .iter()
                        .any(|x: &crate::directory::approvers::ApproverGroup| x.name == g.name)
                    {
                        groups.push(g.clone());
                    }
                }
            }
            if groups.is_empty() {
                r.skip(
                    "directory",
                    "approver groups",
                    "no approver group was found to resolve",
                );
            } else {
                match dir.resolve_groups(&groups).await {
                    Ok(resolved) => {
                        for g in resolved {
                            match g.status {
                                "found" => r.ok("directory", format!("group {}", g.name), format!("maps to {}", g.dns.join(", "))),
                                "not_found" => r.fail(
                                    "directory",
                                    format!("group {}", g.name),
                                    format!("no directory group answers to {} ({})", g.name, g.source),
                                    "check directory.group_base_dn, directory.group_names and the group's name",
                                ),
                                _ => r.fail(
                                    "directory",
                                    format!("group {}", g.name),
                                    format!("{} directory groups answer to {}: {}", g.dns.len(), g.name, g.dns.join("; ")),
                                    "narrow directory.group_base_dn or directory.group_filter so one group answers",
                                ),
                            }
                        }
                    }
                    Err(e) => r.fail(
                        "directory",
                        "approver groups",
                        e.to_string(),
                        "check that the bind account may search directory.group_base_dn",
                    ),
                }
            }
        }
        Err(e) => r.fail(
            "directory",
            "bind",
            format!("{bind_dn} at {servers}: {e}"),
            "check directory.url, directory.bind_dn and directory.bind_password",
        ),
    }
    dir.close().await;
}

/// The approver groups of every safe seen, each once.
fn approver_groups(found: &[(String, u8, Approvers)]) -> Vec<crate::directory::ApproverGroup> {
    let mut groups: Vec<crate::directory::ApproverGroup> = Vec::new();
    for (_, _, a) in found {
        for g in &a.groups {
            if !groups.iter().any(|x| x.name == g.name && x.dn == g.dn) {
                groups.push(g.clone());
            }
        }
    }
    groups
}

/// `[directory] kind = "entra"`: the app signs in to Graph, may read users and group
/// memberships, and every approver group seen answers to exactly one Entra ID group.
async fn entra_directory(
    s: crate::directory::Settings,
    res: &Resolver,
    found: &[(String, u8, Approvers)],
    r: &mut Report,
) {
    use crate::directory::entra::{GROUP_PERMISSION, USER_PERMISSION};
    let Some(e) = s.entra.clone() else {
        return;
    };
    let cred = match crate::mailbox::graph::app_credential(&e.app, res, e.app_key).await {
        Ok(c) => c,
        Err(err) => {
            r.fail(
                "directory",
                "sign-in",
                format!("the app's credential ({}) does not load: {err}", e.app_key),
                format!(
                    "fix {}.certificate / private_key / client_secret",
                    e.app_key
                ),
            );
            return;
        }
    };
    let dir = match crate::directory::GraphDirectory::new(s, cred) {
        Ok(d) => d,
        Err(err) => {
            r.fail(
                "directory",
                "sign-in",
                err.to_string(),
                "check directory.ca_bundle",
            );
            return;
        }
    };
    match dir.sign_in().await {
        Ok(()) => r.ok(
            "directory",
            "sign-in",
            format!(
                "app {} signs in to Microsoft Graph at {} (Entra ID)",
                dir.app(),
                e.graph_url
            ),
        ),
        Err(err) => {
            r.fail(
                "directory",
                "sign-in",
                err.to_string(),
                format!("check {}.tenant_id, client_id, authority and the credential registered on the app", e.app_key),
            );
            return;
        }
    }
    let mut readable = true;
    for (check, perm, result) in [
        ("read users", USER_PERMISSION, dir.probe_users().await),
        (
            "read group membership",
            GROUP_PERMISSION,
            dir.probe_groups().await,
        ),
    ] {
        match result {
            Ok(()) => r.ok(
                "directory",
                check,
                format!("the app holds {perm} (or more)"),
            ),
            Err(err) => {
                readable = false;
                r.fail(
                    "directory",
                    check,
                    err.to_string(),
                    format!("grant the app the Microsoft Graph application permission {perm} and give admin consent"),
                );
            }
        }
    }
    if !readable {
        return;
    }
    r.ok(
        "directory",
        "membership",
        format!(
            "nesting resolved by Entra ID (transitiveMemberOf); groups matched by {} or object id",
            dir.settings().group_names.attribute().ldap_name()
        ),
    );
    let groups = approver_groups(found);
    if groups.is_empty() {
        r.skip(
            "directory",
            "approver groups",
            "no approver group was found to resolve",
        );
        return;
    }
    match dir.resolve_groups(&groups).await {
        Ok(resolved) => {
            for g in resolved {
                match g.status {
                    "found" => r.ok("directory", format!("group {}", g.name), format!("maps to the Entra ID group {}", g.dns.join(", "))),
                    "not_found" => r.fail(
                        "directory",
                        format!("group {}", g.name),
                        format!("no Entra ID group answers to {} ({})", g.name, g.source),
                        "check directory.group_names (attribute, roles) and the group's name in Entra ID",
                    ),
                    _ => r.fail(
                        "directory",
                        format!("group {}", g.name),
                        format!("{} Entra ID groups answer to {}: {}", g.dns.len(), g.name, g.dns.join("; ")),
                        "rename one of the groups, match by mailNickname (directory.group_names.attribute) or map the name to the group's object id",
                    ),
                }
            }
        }
        Err(err) => r.fail(
            "directory",
            "approver groups",
            err.to_string(),
            format!("the app needs {GROUP_PERMISSION}"),
        ),
    }
}

async fn ticketing(loaded: &Loaded, res: Option<&Resolver>, r: &mut Report) {
    use crate::ticketing::config::TicketKind;
    use crate::ticketing::{Lookup, TicketId, TicketSystem};
    let Some(t) = &loaded.config.ticketing else {
        r.skip("ticketing", "ticketing", "no [ticketing] section");
        return;
    };
    let compiled = match loaded.ticketing() {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "ticketing",
                "configuration",
                e.to_string(),
                "fix the key named",
            );
            return;
        }
    };
    match compiled.bypass.len() {
        0 => r.skip(
            "ticketing",
            "bypass codes",
            "no failsafe bypass code is configured (ticketing.bypass_codes)",
        ),
        n => r.ok(
            "ticketing",
            "bypass codes",
            format!("{n} bypass code hash(es) load (the codes themselves are never stored)"),
        ),
    }
    let Some(res) = res else {
        r.skip(
            "ticketing",
            "sign in",
            "not tried: the secret references cannot be resolved (see [secrets])",
        );
        return;
    };
    // A read of a ticket number no site uses: "not found" proves the sign-in and the read
    // right; nothing is written.
    let probe = TicketId::new(PROBE_TICKET).expect("an allow-listed id");
    let mut systems: Vec<(&str, SystemOrError)> = Vec::new();
    if let Some(c) = &t.servicenow {
        let s = crate::ticketing::servicenow::ServiceNow::new(c, res).await;
        systems.push((
            "servicenow",
            s.map(|s| Box::new(s) as Box<dyn TicketSystem>),
        ));
    }
    if let Some(c) = &t.remedy {
        let s = crate::ticketing::remedy::Remedy::new(c, res).await;
        systems.push(("remedy", s.map(|s| Box::new(s) as Box<dyn TicketSystem>)));
    }
    for (name, system) in systems {
        let key = format!("ticketing.{name}.url");
        let system = match system {
            Ok(s) => s,
            Err(e) => {
                let hint = crate::error::classify(&e)
                    .1
                    .unwrap_or_else(|| format!("check [ticketing.{name}]"));
                r.fail("ticketing", name, e.to_string(), hint);
                continue;
            }
        };
        let signed_in = match system.lookup(TicketKind::Incident, &probe, &[]).await {
            Ok(found) => {
                r.ok(
                    "ticketing",
                    name,
                    format!(
                        "signs in and reads incidents (probe {PROBE_TICKET}: {})",
                        match found {
                            Lookup::Found(_) => "found".to_string(),
                            Lookup::NotFound { rows } => format!("not found, {rows} row(s)"),
                        }
                    ),
                );
                true
            }
            Err(e) => {
                let hint = crate::error::classify(&e)
                    .1
                    .unwrap_or_else(|| format!("check {key} and the connection account"));
                r.fail("ticketing", name, e.to_string(), hint);
                false
            }
        };
        // Each ticket type of this system: its table or form, read with its requester fields.
        for t in compiled.types.iter().filter(|t| t.system.key() == name) {
            let check = format!("type {}", t.name);
            if !signed_in {
                r.skip(
                    "ticketing",
                    check,
                    format!("not tried: {name} failed above"),
                );
                continue;
            }
            let fields: Vec<String> = t
                .requester
                .as_ref()
                .map(|q| q.fields.clone())
                .unwrap_or_default();
            match system.lookup(t.kind, &probe, &fields).await {
                Ok(_) => r.ok(
                    "ticketing",
                    check,
                    format!(
                        "{} {}s are readable{}",
                        t.system,
                        t.kind.key(),
                        if fields.is_empty() {
                            String::new()
                        } else {
                            format!(" with the requester field(s) {}", fields.join(", "))
                        }
                    ),
                ),
                Err(e) => {
                    let hint = crate::error::classify(&e).1.unwrap_or_else(|| {
                        format!("check the type's table or form and requester_fields ({check})")
                    });
                    r.fail("ticketing", check, e.to_string(), hint);
                }
            }
        }
        system.close().await;
    }
}

/// The ticket number the ticketing check reads (allow-listed, and no real number format).
const PROBE_TICKET: &str = "SITECHECK0000000";

/// Remote Access: the key file resolves and parses, a token is issued (the sign-in), and the
/// API answers a read (`GET sites`). Nothing is created or changed.
async fn remote_access(loaded: &Loaded, r: &mut Report) {
    use crate::remote_access::RemoteAccess;
    if loaded.config.remote_access.is_none() {
        r.skip(
            "remote_access",
            "remote_access",
            "no [remote_access] section",
        );
        return;
    }
    let cfg = match loaded.remote_access() {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "remote_access",
                "configuration",
                e.to_string(),
                "fix the key named",
            );
            return;
        }
    };
    let fail = |r: &mut Report, check: &str, e: &crate::remote_access::RemoteAccessError| {
        let hint = crate::error::classify(e).1.unwrap_or_else(|| {
            "check remote_access.tenant_id, remote_access.key_file and the service account's roles"
                .into()
        });
        r.fail("remote_access", check, e.to_string(), hint);
    };
    let ra = match RemoteAccess::connect(cfg, loaded.config.vault.as_ref()).await {
        Ok(ra) => ra,
        Err(e) => return fail(r, "key file", &e),
    };
    match ra.check().await {
        Ok(secs) => r.ok(
            "remote_access",
            "sign in",
            format!(
                "client {} gets a token from {} (valid {secs} s)",
                ra.tokens().client_id(),
                ra.endpoints().token
            ),
        ),
        Err(e) => return fail(r, "sign in", &e),
    }
    match ra.sites().await {
        Ok(sites) => r.ok(
            "remote_access",
            "api",
            format!("{} answers: {} site(s)", ra.endpoints().api, sites.len()),
        ),
        Err(e) => fail(r, "api", &e),
    }
}

/// One approver resolved end to end: with `--check-sender EMAIL --safe S --level L` exactly what
/// `--check-sender` decides (the same code, `check_sender::check_sender`); otherwise the sender
/// of the first recent mail `[sender]` accepts, against the safes and levels seen, until one
/// grants.
async fn approver(
    loaded: &Loaded,
    res: &Resolver,
    found: &[(String, u8, Approvers)],
    given: Option<&Approver>,
    senders: &[String],
    r: &mut Report,
) {
    if loaded.config.directory.is_none() {
        return;
    }
    if r.section("directory")
        .iter()
        .any(|i| i.status == Status::Fail)
    {
        r.skip(
            "directory",
            "approver",
            "not tried end to end: the directory check above failed",
        );
        return;
    }
    if let Some(a) = given {
        let check = format!("approver {} safe {} level {}", a.address, a.safe, a.level);
        match crate::check_sender::check_sender(loaded, &a.address, &a.safe, a.level).await {
            Ok(v) if v.may_approve => r.ok("directory", check, granted(&v)),
            Ok(v) => r.warn(
                "directory",
                check,
                format!("may not approve: {}", v.reason),
                "if this person should approve, put them into one of the safe's approver groups in the directory (run --check-sender for the details)",
            ),
            Err(e) => {
                let hint = crate::error::classify(&e)
                    .1
                    .unwrap_or_else(|| "see the sections above for the failing system".into());
                r.fail("directory", check, e.to_string(), hint);
            }
        }
        return;
    }
    let Some(address) = senders.first() else {
        r.skip(
            "directory",
            "approver",
            "no approver tried end to end: none of the recent mails has an accepted sender; pass --check-sender EMAIL --safe S --level N",
        );
        return;
    };
    let candidates: Vec<&(String, u8, Approvers)> =
        found.iter().filter(|(_, _, a)| !a.is_empty()).collect();
    if candidates.is_empty() {
        r.skip(
            "directory",
            "approver",
            format!("{address} not tried: no safe with approver groups was seen"),
        );
        return;
    }
    let (s, pw) = match loaded.directory() {
        Ok(s) => match crate::directory::read_credentials(&s, res).await {
            Ok(pw) => (s, pw),
            Err(_) => return,
        },
        Err(_) => return,
    };
    let Ok(dir) = AnyDirectory::new(s, pw) else {
        return;
    };
    let mut refused = Vec::new();
    for (safe, level, a) in candidates {
        match crate::directory::authorize(&dir, address, safe, *level, a.clone()).await {
            Ok(v) if v.may_approve => {
                r.ok(
                    "directory",
                    format!("approver {address}"),
                    format!("(the sender of a recent mail) {}", granted(&v)),
                );
                dir.close().await;
                return;
            }
            Ok(v) => refused.push(format!("{safe} level {level}: {}", v.reason)),
            Err(e) => {
                r.fail(
                    "directory",
                    format!("approver {address}"),
                    format!("{address} cannot be resolved: {e}"),
                    "check directory.base_dn, directory.user_filter and the bind account's read rights",
                );
                dir.close().await;
                return;
            }
        }
    }
    dir.close().await;
    r.skip(
        "directory",
        format!("approver {address}"),
        format!(
            "(the sender of a recent mail) may approve none of the safes seen: {}; pass --check-sender EMAIL --safe S --level N to try a known approver",
            refused.join("; ")
        ),
    );
}

fn granted(v: &crate::directory::Verdict) -> String {
    match &v.granted_by {
        Some(g) => format!(
            "{} may approve safe {} at level {} through {} ({})",
            v.address,
            v.safe,
            v.level,
            g.group,
            g.path_text()
        ),
        None => format!(
            "{} may approve safe {} at level {}",
            v.address, v.safe, v.level
        ),
    }
}

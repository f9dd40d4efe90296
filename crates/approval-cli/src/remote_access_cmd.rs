//! `remote-access`: flags, and printing the core's results (human text or JSON Lines).
//! The work is done by `approval_core::remote_access`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use approval_core::exit::Exit;
use approval_core::remote_access::client::{
    Gone, INVITATION_SEARCH_FIELDS, Search, VENDOR_SEARCH_FIELDS,
};
use approval_core::remote_access::input::{
    self, AccessTimeInput, OffboardRequest, TimeInput, VendorRequest,
};
use approval_core::remote_access::model::VendorStatus;
use approval_core::remote_access::ops::{
    self, Catalogue, OffboardOptions, OffboardOutcome, OnboardOptions, OnboardOutcome,
};
use approval_core::remote_access::{RemoteAccess, RemoteAccessError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::common::Common;
use crate::printer::Printer;

pub const EXAMPLES: &str = "  remote-access check
  remote-access applications
  remote-access invite --first-name Jane --last-name Doe --company 'Acme Inc.' \\
      --email jane.doe@acme.example --phone +17035550100 --app 'Main DC/Linux SSH' --days 30
  idm-export | remote-access onboard - --json
  remote-access offboard --email jane.doe@acme.example
  remote-access invitations list --search acme --search-in COMPANY
  remote-access vendors deactivate 11eb2b7c4e3a4f0a9b0c1d2e3f405162";

/// Invite, onboard and offboard CyberArk Remote Access (formerly Alero) vendors, as the service
/// account of `[remote_access]` (its key file is read through a secret reference, never from the
/// command line).
#[derive(Debug, clap::Parser)]
#[command(name = "remote-access", version, after_help = crate::common::after_help(EXAMPLES))]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Get a token and show the endpoints in use (a setup check).
    Check,
    /// List the applications as `<site>/<application>`, the names `invite` takes.
    Applications,
    /// Send one vendor invitation (no check for an existing one: see `onboard`).
    Invite(Box<InviteArgs>),
    /// Invite vendors read as JSON from stdin (one object, or JSON Lines), for identity-system
    /// hooks.
    ///
    /// A vendor who already has an account or a still valid invitation is skipped unless
    /// --force. Expired invitations are revoked and a new one sent; a deactivated account is
    /// reactivated when its applications and access end lie within the approval, otherwise the
    /// record fails naming it. A record with a key given twice, or with invisible,
    /// text-direction or line-break characters in a text, is refused.
    Onboard {
        /// `-` for stdin, or a file.
        #[arg(value_name = "SOURCE")]
        source: String,
        /// Invite even when the vendor already has an account or a valid invitation.
        #[arg(long)]
        force: bool,
        /// Resolve and check everything, send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revoke a vendor's outstanding invitations, then deactivate the vendor (or delete it with
    /// --delete). Running it twice changes nothing the second time.
    ///
    /// With --keep-account only the invitations are revoked; the vendor account stays as it is.
    ///
    /// Exit 0 when everything was done or already done (result offboarded or nothing_to_do).
    /// Exit 1, result not_found, when no invitation and no vendor account has the address: a
    /// mistyped address, or a vendor deleted before. With several addresses the worst decides.
    Offboard {
        /// The vendor's mail address (repeatable).
        #[arg(long, value_name = "EMAIL")]
        email: Vec<String>,
        /// `-`: read JSON objects with an `email` field from stdin.
        #[arg(value_name = "SOURCE")]
        source: Option<String>,
        /// Delete the vendor instead of deactivating it (irreversible).
        #[arg(long)]
        delete: bool,
        /// Only revoke outstanding invitations; leave the vendor account as it is.
        #[arg(long, conflicts_with = "delete")]
        keep_account: bool,
        /// Look everything up and show what would be revoked, deactivated or deleted; change
        /// nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Vendor invitations.
    #[command(subcommand)]
    Invitations(InvitationsCmd),
    /// Vendors (registered remote users).
    #[command(subcommand)]
    Vendors(VendorsCmd),
}

#[derive(Debug, clap::Subcommand)]
pub enum InvitationsCmd {
    /// List invitations; one past its expiry says `expired` (`"expired": true` in JSON).
    List(SearchArgs),
    /// Show one invitation.
    Show { id: String },
    /// Revoke invitations (an unknown or already revoked one counts as done).
    Revoke {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum VendorsCmd {
    /// List vendors.
    List(SearchArgs),
    /// Show one vendor.
    Show { id: String },
    /// Deactivate vendors (reversible).
    Deactivate {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Activate vendors again.
    Activate {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// Text to search for.
    #[arg(long)]
    pub search: Option<String>,
    /// Field to search in: ALL, FULLNAME, COMPANY, GROUPS (invitations also PHONE, EMAIL).
    #[arg(long, default_value = "ALL", requires = "search")]
    pub search_in: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct InviteArgs {
    #[arg(long)]
    pub first_name: String,
    #[arg(long)]
    pub last_name: String,
    #[arg(long)]
    pub company: String,
    #[arg(long)]
    pub email: String,
    /// International, with + and country code.
    #[arg(long)]
    pub phone: String,
    /// `<site>/<application>` (repeatable).
    #[arg(long = "app", value_name = "SITE/APPLICATION", required = true)]
    pub applications: Vec<String>,
    /// Start of access: YYYY-MM-DD (the start of that day), RFC 3339 or `now` (default now).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// End of access: YYYY-MM-DD (the end of that day: the vendor keeps it) or RFC 3339. A date
    /// alone is a day of `remote_access.date_time_zone` (default UTC).
    #[arg(
        long,
        value_name = "TIME",
        required_unless_present = "days",
        conflicts_with = "days"
    )]
    pub end: Option<String>,
    /// Length of access in days.
    #[arg(long)]
    pub days: Option<u32>,
    /// Activated or RequiresAdminConfirmation.
    #[arg(long, default_value = "Activated")]
    pub initial_status: String,
    /// The vendor may invite others.
    #[arg(long)]
    pub can_invite: bool,
    /// How many vendors the vendor may invite (0 = unlimited).
    #[arg(long)]
    pub max_invited_vendors: Option<u32>,
    /// Initial status of vendors the vendor invites.
    #[arg(long)]
    pub invited_vendors_initial_status: Option<String>,
    /// SMS/call and mail codes instead of the QR code.
    #[arg(long)]
    pub phone_and_email_auth: bool,
    #[arg(long)]
    pub comments: Option<String>,
    /// Name of a predefined invitation text.
    #[arg(long)]
    pub custom_text: Option<String>,
    /// ProvisionedByAlero, ManagedByAdmin or None.
    #[arg(long)]
    pub provisioning_type: Option<String>,
    #[arg(long)]
    pub provisioning_username: Option<String>,
    /// Group name or ID (repeatable).
    #[arg(long = "provisioning-group")]
    pub provisioning_groups: Vec<String>,
    /// Identity role (repeatable).
    #[arg(long = "identity-role")]
    pub identity_roles: Vec<String>,
    #[arg(long)]
    pub enable_web_apps_access: bool,
    /// Time zone of the allowed hours, e.g. Europe/Berlin.
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Allowed day (repeatable): MONDAY … SUNDAY.
    #[arg(long = "allowed-day", requires = "time_zone")]
    pub allowed_days: Vec<String>,
    /// Allowed hours, HH:MM-HH:MM.
    #[arg(long, requires = "time_zone")]
    pub hours: Option<String>,
    #[arg(long)]
    pub dry_run: bool,
}

impl InviteArgs {
    fn request(&self) -> anyhow::Result<VendorRequest> {
        let (from, to) = match &self.hours {
            Some(h) => {
                let (a, b) = h.split_once('-').ok_or_else(|| {
                    RemoteAccessError::Input("--hours must be HH:MM-HH:MM".into())
                })?;
                (Some(a.to_string()), Some(b.to_string()))
            }
            None => (None, None),
        };
        Ok(VendorRequest {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            company: self.company.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            applications: self.applications.clone(),
            access_start: self.start.clone().map(TimeInput::Text),
            access_end: self.end.clone().map(TimeInput::Text),
            access_days: self.days,
            initial_status: Some(self.initial_status.clone()),
            can_invite: Some(self.can_invite),
            max_invited_vendors: self.max_invited_vendors,
            invited_vendors_initial_status: self.invited_vendors_initial_status.clone(),
            phone_and_email_auth: self.phone_and_email_auth.then_some(true),
            comments: self.comments.clone(),
            custom_text: self.custom_text.clone(),
            provisioning_type: self.provisioning_type.clone(),
            provisioning_username: self.provisioning_username.clone(),
            provisioning_groups: self.provisioning_groups.clone(),
            identity_roles: self.identity_roles.clone(),
            enable_web_apps_access: self.enable_web_apps_access.then_some(true),
            access_time: self.time_zone.as_ref().map(|tz| AccessTimeInput {
                time_zone: tz.clone(),
                allowed_days: self.allowed_days.clone(),
                from,
                to,
            }),
        })
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

fn or_dash(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

/// Read the whole of stdin or a file, bounded.
fn read_source(source: &str) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    if source == "-" {
        std::io::stdin()
            .lock()
            .take(input::MAX_INPUT_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .context("reading stdin")?;
    } else {
        let p = PathBuf::from(source);
        std::fs::File::open(&p)
            .with_context(|| format!("opening {}", p.display()))?
            .take(input::MAX_INPUT_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {}", p.display()))?;
    }
    if buf.len() > input::MAX_INPUT_BYTES {
        return Err(RemoteAccessError::Input(format!(
            "the input is larger than {} MiB",
            input::MAX_INPUT_BYTES >> 20
        ))
        .into());
    }
    String::from_utf8(buf)
        .map_err(|_| RemoteAccessError::Input("the input is not UTF-8 text".into()).into())
}

fn search(args: &SearchArgs, allowed: &[&str]) -> anyhow::Result<Option<Search>> {
    let Some(text) = &args.search else {
        return Ok(None);
    };
    let field = args.search_in.to_ascii_uppercase();
    if !allowed.contains(&field.as_str()) {
        return Err(approval_core::error::Error::Usage(format!(
            "--search-in must be one of {}",
            allowed.join(", ")
        ))
        .into());
    }
    Ok(Some(Search {
        field,
        text: text.clone(),
    }))
}

/// Print a value as `key: value` lines (human `show`).
fn show(p: &Printer, v: &impl Serialize) -> anyhow::Result<()> {
    if p.json() {
        p.json_line(v)?;
        return Ok(());
    }
    if let Value::Object(o) = serde_json::to_value(v)? {
        for (k, v) in o {
            let text = match &v {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Number(n)
                    if k.ends_with("_date") || k.ends_with("_at") || k == "last_login" =>
                {
                    when(n.as_i64())
                }
                other => other.to_string(),
            };
            p.line(&format!("{k}: {text}"))?;
        }
    }
    Ok(())
}

fn print_onboard(p: &Printer, o: &OnboardOutcome) -> std::io::Result<()> {
    if p.json() {
        return p.json_line(o);
    }
    let at = o.line.map(|l| format!("line {l}: ")).unwrap_or_default();
    let who = o.email.as_deref().unwrap_or("?");
    let text = match o.result {
        "invited" => format!(
            "{at}invited {who}: invitation {}",
            o.invitation_id.as_deref().unwrap_or("?")
        ),
        "would_invite" => format!(
            "{at}would invite {who}: {}",
            o.request
                .as_ref()
                .and_then(|r| serde_json::to_string(r).ok())
                .unwrap_or_default()
        ),
        "skipped" => format!("{at}skipped {who}: {}", o.reason.as_deref().unwrap_or("")),
        "reactivated" | "would_reactivate" => {
            format!("{at}{who}: {}", o.reason.as_deref().unwrap_or(""))
        }
        other => format!(
            "{}{other}: {}{}",
            if o.reason.as_deref().is_some_and(|r| r.starts_with("line ")) {
                ""
            } else {
                at.as_str()
            },
            o.reason.as_deref().unwrap_or(""),
            o.error
                .as_ref()
                .and_then(|e| e.hint.clone())
                .map(|h| format!("\n  hint: {h}"))
                .unwrap_or_default()
        ),
    };
    if !o.revoked_invitations.is_empty() {
        p.line(&format!(
            "  {} expired invitation(s) {}: {}",
            if o.result == "would_invite" {
                "would revoke"
            } else {
                "revoked"
            },
            if o.result == "would_invite" {
                "first"
            } else {
                "before inviting"
            },
            o.revoked_invitations.join(", ")
        ))?;
    }
    p.line(&text)
}

fn print_offboard(p: &Printer, o: &OffboardOutcome) -> std::io::Result<()> {
    if p.json() {
        return p.json_line(o);
    }
    for a in &o.actions {
        let what = match a.action {
            "revoke_invitation" => "revoke invitation",
            "deactivate_vendor" => "deactivate vendor",
            _ => "delete vendor",
        };
        let result = match a.result {
            "done" => "done",
            "already_done" => "already done",
            "would_do" => "would do",
            _ => "FAILED",
        };
        let detail = a
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        p.line(&format!("  {what} {}: {result}{detail}", a.id))?;
    }
    p.line(&o.message)
}

/// Run one `remote-access` command.
pub async fn execute(args: &Args, p: &Printer) -> anyhow::Result<Exit> {
    let loaded = approval_core::settings::load(args.common.config.as_deref())?;
    let zone = loaded.remote_access()?.date_zone();
    // Input problems are found before any network call.
    let early = match &args.command {
        Cmd::Invite(i) => Some(i.request()?),
        _ => None,
    };
    let ra = RemoteAccess::connect(loaded.remote_access()?, loaded.config.vault.as_ref()).await?;
    match &args.command {
        Cmd::Check => {
            let secs = ra.check().await?;
            let e = ra.endpoints();
            let v = json!({"client_id": ra.tokens().client_id(), "realm": e.realm.as_str(), "token_url": e.token.as_str(), "api": e.api.as_str(), "expires_in": secs});
            if p.json() {
                p.json_line(&v)?;
            } else {
                p.line(&format!(
                    "token service OK: client {}, token valid {secs} s\nrealm {}\napi   {}",
                    ra.tokens().client_id(),
                    e.realm,
                    e.api
                ))?;
            }
            Ok(Exit::Ok)
        }
        Cmd::Applications => {
            let cat = Catalogue::new(&ra);
            for (site, apps) in cat.applications().await? {
                for a in apps {
                    let name = format!("{}/{}", or_dash(&site.display_name), or_dash(&a.name));
                    if p.json() {
                        p.json_line(
                            &json!({"name": name, "site": site.display_name, "application": a.name,
                            "site_id": site.id, "application_id": a.id, "enabled": a.enabled}),
                        )?;
                    } else {
                        p.line(&format!(
                            "{name}{}",
                            if a.enabled == Some(false) {
                                "  (disabled)"
                            } else {
                                ""
                            }
                        ))?;
                    }
                }
            }
            Ok(Exit::Ok)
        }
        Cmd::Invite(i) => {
            let req = early.context("invite request")?;
            let cat = Catalogue::new(&ra);
            let opts = OnboardOptions {
                check_existing: false,
                force: true,
                dry_run: i.dry_run,
                zone,
            };
            let o = ops::onboard_one(&cat, None, Ok(req), opts, now_ms()).await;
            print_onboard(p, &o)?;
            Ok(o.exit)
        }
        Cmd::Onboard {
            source,
            force,
            dry_run,
        } => {
            let text = read_source(source)?;
            let records = input::read_records::<VendorRequest>(&text);
            if records.is_empty() {
                return Err(
                    RemoteAccessError::Input("no onboarding record in the input".into()).into(),
                );
            }
            let cat = Catalogue::new(&ra);
            let opts = OnboardOptions {
                check_existing: true,
                force: *force,
                dry_run: *dry_run,
                zone,
            };
            let mut worst = Exit::Ok;
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for (line, rec) in records {
                let o = ops::onboard_one(&cat, Some(line), rec, opts, now_ms()).await;
                worst = worst.worst(o.exit);
                *counts.entry(o.result).or_default() += 1;
                print_onboard(p, &o)?;
            }
            p.note(&summary(&counts));
            Ok(worst)
        }
        Cmd::Offboard {
            email,
            source,
            delete,
            keep_account,
            dry_run,
        } => {
            let mut items: Vec<(Option<usize>, Result<String, String>)> =
                email.iter().map(|e| (None, Ok(e.clone()))).collect();
            match source.as_deref() {
                Some("-") => {
                    let text = read_source("-")?;
                    for (line, r) in input::read_records::<OffboardRequest>(&text) {
                        items.push((Some(line), r.map(|x| x.email)));
                    }
                }
                Some(other) => {
                    return Err(approval_core::error::Error::Usage(format!(
                        "offboard takes `-` (stdin) or --email, not `{other}`"
                    ))
                    .into());
                }
                None => {}
            }
            if items.is_empty() {
                return Err(approval_core::error::Error::Usage(
                    "give --email EMAIL, or `-` to read JSON from stdin".into(),
                )
                .into());
            }
            let opts = OffboardOptions {
                delete: *delete,
                keep_account: *keep_account,
                dry_run: *dry_run,
            };
            let mut worst = Exit::Ok;
            for (line, e) in items {
                let o = ops::offboard_one(&ra, line, e, opts).await;
                worst = worst.worst(o.exit);
                print_offboard(p, &o)?;
            }
            Ok(worst)
        }
        Cmd::Invitations(InvitationsCmd::List(s)) => {
            let list = ra
                .invitations(search(s, INVITATION_SEARCH_FIELDS)?.as_ref())
                .await?;
            if list.is_empty() {
                p.note("no invitations");
            }
            let now = now_ms();
            for i in &list {
                if p.json() {
                    let mut v = serde_json::to_value(i)?;
                    v["expired"] = json!(i.expired_at.is_some_and(|t| t <= now));
                    p.json_line(&v)?;
                } else {
                    // `expiredAt` is when it expires: past it, the invitation is of no use.
                    let expiry = match i.expired_at {
                        Some(t) if t <= now => format!("expired {}", when(Some(t))),
                        t => format!("expires {}", when(t)),
                    };
                    p.line(&format!(
                        "{}  {}  {}  {}  {}  {expiry}",
                        or_dash(&i.invitation_id),
                        or_dash(&i.email_address),
                        or_dash(&i.full_name),
                        or_dash(&i.company_name),
                        or_dash(&i.phone_number),
                    ))?;
                }
            }
            Ok(Exit::Ok)
        }
        Cmd::Invitations(InvitationsCmd::Show { id }) => {
            show(p, &ra.invitation(id).await?)?;
            Ok(Exit::Ok)
        }
        Cmd::Invitations(InvitationsCmd::Revoke { ids, dry_run }) => {
            let mut worst = Exit::Ok;
            for id in ids {
                let r = if *dry_run {
                    ra.invitation(id).await.map(|_| "would_revoke")
                } else {
                    ra.revoke_invitation(id).await.map(|g| match g {
                        Gone::Done => "revoked",
                        Gone::AlreadyGone => "already_gone",
                    })
                };
                worst = worst.worst(item_line(p, "invitation", id, r)?);
            }
            Ok(worst)
        }
        Cmd::Vendors(VendorsCmd::List(s)) => {
            let list = ra
                .vendors(search(s, VENDOR_SEARCH_FIELDS)?.as_ref())
                .await?;
            if list.is_empty() {
                p.note("no vendors");
            }
            for v in &list {
                if p.json() {
                    p.json_line(v)?;
                } else {
                    p.line(&format!(
                        "{}  {}  {}  {}  {}",
                        or_dash(&v.id),
                        or_dash(&v.status),
                        or_dash(&v.email_address),
                        or_dash(&v.full_name),
                        or_dash(&v.company_name)
                    ))?;
                }
            }
            Ok(Exit::Ok)
        }
        Cmd::Vendors(VendorsCmd::Show { id }) => {
            show(p, &ra.vendor(id).await?)?;
            Ok(Exit::Ok)
        }
        Cmd::Vendors(VendorsCmd::Deactivate { ids, dry_run }) => {
            set_status(&ra, p, ids, VendorStatus::Deactivated, *dry_run).await
        }
        Cmd::Vendors(VendorsCmd::Activate { ids, dry_run }) => {
            set_status(&ra, p, ids, VendorStatus::Activated, *dry_run).await
        }
    }
}

fn summary(counts: &std::collections::BTreeMap<&str, usize>) -> String {
    let total: usize = counts.values().sum();
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!("{total} record(s): {}", parts.join(", "))
}

/// One line for an action on one ID; failures are printed as data and classified.
fn item_line(
    p: &Printer,
    kind: &str,
    id: &str,
    r: Result<&'static str, RemoteAccessError>,
) -> anyhow::Result<Exit> {
    use approval_core::exit::Classify;
    let (result, exit, error) = match r {
        Ok(x) => (x, Exit::Ok, None),
        Err(e) => (
            "failed",
            e.exit(),
            Some(approval_core::exit::ErrorView::of(&e, None)),
        ),
    };
    if p.json() {
        p.json_line(&json!({"kind": kind, "id": id, "result": result, "error": error}))?;
    } else {
        let detail = error
            .map(|e| {
                format!(
                    ": {}{}",
                    e.message,
                    e.hint.map(|h| format!("\n  hint: {h}")).unwrap_or_default()
                )
            })
            .unwrap_or_default();
        p.line(&format!(
            "{kind} {id}: {}{detail}",
            result.replace('_', " ")
        ))?;
    }
    Ok(exit)
}

async fn set_status(
    ra: &RemoteAccess,
    p: &Printer,
    ids: &[String],
    status: VendorStatus,
    dry_run: bool,
) -> anyhow::Result<Exit> {
    let mut worst = Exit::Ok;
    let (done, already, would) = match status {
        VendorStatus::Deactivated => ("deactivated", "already_deactivated", "would_deactivate"),
        VendorStatus::Activated => ("activated", "already_activated", "would_activate"),
    };
    for id in ids {
        let r = async {
            let v = ra.vendor(id).await?;
            if v.status.as_deref() == Some(status.as_str()) {
                return Ok(already);
            }
            if dry_run {
                return Ok(would);
            }
            ra.set_vendor_status(id, status).await.map(|()| done)
        }
        .await;
        worst = worst.worst(item_line(p, "vendor", id, r)?);
    }
    Ok(worst)
}

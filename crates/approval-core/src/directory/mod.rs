//! Directory (LDAP / Active Directory, or Microsoft Entra ID): who a mail sender is, which
//! groups they belong to (nested), and whether one of those groups approves a safe at a level.
//!
//! - [`Directory`] is the seam the watcher and the by-hand check use; [`ldap::LdapDirectory`]
//!   implements it on `ldap3` (LDAPS or StartTLS, our rustls trust, reconnect, timeouts, cache),
//!   [`entra::GraphDirectory`] on Microsoft Graph (`kind = "entra"`), and [`any::AnyDirectory`]
//!   holds either.
//! - [`approvers`] turns PVWA's safe members (or the static table) into directory group names.
//! - [`authorize`] puts them together into a [`Verdict`]. Any error means no approval: the
//!   caller gets an `Err`, never a verdict that may approve.

pub mod any;
pub mod approvers;
pub mod cache;
pub mod check;
pub mod config;
pub mod entra;
pub mod ldap;
pub mod names;

use std::future::Future;

use serde::Serialize;

pub use any::{AnyDirectory, Credentials, read_credentials};
pub use approvers::{ApproverGroup, ApproverRole, Approvers, RoleUser};
pub use config::{DirectoryConfig, DirectoryKind, Settings, Strategy};
pub use entra::GraphDirectory;
pub use ldap::LdapDirectory;

use crate::exit::{Classify, Exit};

/// Errors from the directory. They name the server; never a password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory {server} is unreachable: {detail}")]
    Unreachable { server: String, detail: String },
    #[error("directory {server} did not answer within {secs}s ({what})")]
    Timeout {
        server: String,
        secs: u64,
        what: String,
    },
    #[error("directory {server} refused the bind of {bind_dn}: {detail}")]
    BindRefused {
        server: String,
        bind_dn: String,
        detail: String,
    },
    #[error("directory {server} requires a protected connection: {detail}")]
    NeedsTls { server: String, detail: String },
    #[error(
        "directory {server} answered {what} with a referral to {refs}; referrals are not followed"
    )]
    Referral {
        server: String,
        what: String,
        refs: String,
    },
    #[error("directory {server} failed {what}: {detail}")]
    Protocol {
        server: String,
        what: String,
        detail: String,
    },
    #[error("no enabled directory user has the address {address}")]
    UnknownUser { address: String },
    #[error("the address {address} belongs to {count} directory users; it must be exactly one")]
    Ambiguous { address: String, count: usize },
    #[error("sender address `{address}`: {reason}")]
    BadAddress { address: String, reason: String },
    #[error("directory TLS setup: {0}")]
    Tls(String),
}

impl DirectoryError {
    /// A final negative answer about the sender (not a fault of the directory).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            DirectoryError::UnknownUser { .. }
                | DirectoryError::Ambiguous { .. }
                | DirectoryError::BadAddress { .. }
        )
    }

    /// A fault worth retrying later (the watcher leaves the mail pending on these).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DirectoryError::Unreachable { .. }
                | DirectoryError::Timeout { .. }
                | DirectoryError::Protocol { .. }
        )
    }
}

impl Classify for DirectoryError {
    fn service(&self) -> &'static str {
        "directory"
    }
    fn exit(&self) -> Exit {
        match self {
            DirectoryError::Unreachable { .. }
            | DirectoryError::Timeout { .. }
            | DirectoryError::Referral { .. }
            | DirectoryError::Protocol { .. } => Exit::Unavailable,
            DirectoryError::BindRefused { .. } => Exit::NoPerm,
            DirectoryError::NeedsTls { .. } | DirectoryError::Tls(_) => Exit::Config,
            DirectoryError::UnknownUser { .. } | DirectoryError::Ambiguous { .. } => Exit::Refused,
            DirectoryError::BadAddress { .. } => Exit::DataErr,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            DirectoryError::Unreachable { detail, .. }
                if detail.contains("certificate") || detail.contains("Certificate") =>
            {
                Some("the server's TLS certificate is not trusted or does not name the host: set directory.ca_bundle to your CA's PEM bundle and use the name in the certificate".into())
            }
            DirectoryError::Unreachable { .. } | DirectoryError::Timeout { .. } => Some(
                "check directory.url(s) and that the server is up and reachable from this host; no request is approved meanwhile".into(),
            ),
            DirectoryError::BindRefused { .. } => {
                Some("check directory.bind_dn and the bind_password reference".into())
            }
            DirectoryError::NeedsTls { .. } => Some(
                "use ldaps:// or keep starttls = true; the server refuses simple binds in clear".into(),
            ),
            DirectoryError::Referral { .. } => Some(
                "point directory.url at a server that holds directory.base_dn (on AD a domain controller of that domain, or the Global Catalog)".into(),
            ),
            DirectoryError::Ambiguous { .. } => Some(
                "give each person a unique mail and proxyAddresses value, or narrow directory.user_filter".into(),
            ),
            _ => None,
        }
    }
}

/// A directory user found by mail address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DirUser {
    pub dn: String,
    pub sam_account_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    /// Mail aliases from `proxyAddresses` (`smtp:`/`SMTP:` prefix removed).
    pub aliases: Vec<String>,
    pub display_name: Option<String>,
    /// Direct groups (`memberOf`), as the server spelled them.
    #[serde(skip)]
    pub member_of: Vec<String>,
    /// The value of `[directory] person_attribute` (e.g. `employeeID`), when configured and set.
    pub person: Option<String>,
}

impl DirUser {
    /// Every name this person goes by: DN, sAMAccountName, UPN, mail, aliases (deduplicated,
    /// case-insensitively).
    pub fn identities(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = std::iter::once(&self.dn)
            .chain(self.sam_account_name.iter())
            .chain(self.user_principal_name.iter())
            .chain(self.mail.iter())
            .chain(self.aliases.iter());
        for v in all {
            if !v.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(v)) {
                out.push(v.clone());
            }
        }
        out
    }

    /// Whether a PVWA user name (`RequestorUserName`) is this person: the one "same person"
    /// rule ([`crate::person::same_person`]) against each of [`DirUser::identities`].
    pub fn is_same_person(&self, pvwa_user: &str) -> bool {
        crate::person::is_one_of(pvwa_user, &self.identities())
    }

    /// The person key this account shares with the other accounts of its owner:
    /// `person:<attribute>=<value>` in lower case, when `attribute` is configured and set.
    pub fn person_key(&self, attribute: Option<&str>) -> Option<String> {
        person_key(attribute, self.person.as_deref())
    }

    /// A short name for messages: sAMAccountName, else mail, else the DN.
    pub fn short_name(&self) -> String {
        self.sam_account_name
            .clone()
            .or_else(|| self.mail.clone())
            .unwrap_or_else(|| names::rdn_value(&self.dn))
    }
}

/// `person:<attribute>=<value>` in lower case (both set and not blank).
pub fn person_key(attribute: Option<&str>, value: Option<&str>) -> Option<String> {
    let a = attribute.map(str::trim).filter(|a| !a.is_empty())?;
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    Some(format!("person:{}={}", a.to_lowercase(), v.to_lowercase()))
}

/// Which approver group granted, and through which nesting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// The approver group's name (as mapped) and where its right comes from.
    pub group: String,
    pub source: String,
    pub group_dn: String,
    /// DNs from the user to the approver group: `[user, g1, …, group]`.
    pub path: Vec<String>,
    /// The same as display names: `["alice", "DB_Team", "DB_PAMapprover"]`.
    pub path_names: Vec<String>,
    /// False when the server confirmed membership (in-chain) but the intermediate groups could
    /// not be listed.
    pub path_complete: bool,
    /// The strategy that decided: `in_chain` or `recursive`; `auto` for a grant through a
    /// CyberArk Identity role (no directory walk).
    pub strategy: Strategy,
}

impl Grant {
    /// `alice -> DB_Team -> DB_PAMapprover`.
    pub fn path_text(&self) -> String {
        let mut s = self.path_names.join(" -> ");
        if !self.path_complete {
            s.push_str(" (nesting resolved by the server)");
        }
        s
    }
}

/// An approver group name and what the directory made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedGroup {
    pub name: String,
    pub source: String,
    /// `found`, `not_found`, or `ambiguous` (several groups answer to the name: not used).
    pub status: &'static str,
    pub dns: Vec<String>,
}

/// The answer to "is this user in one of these groups?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub grant: Option<Grant>,
    pub groups: Vec<ResolvedGroup>,
    /// The strategy actually used (after `auto`).
    pub strategy: Strategy,
    /// The walk stopped at `max_depth` somewhere before finding a grant.
    pub depth_limited: bool,
}

/// What the tools need from a directory. Every method fails closed: an `Err` is never an
/// approval.
pub trait Directory {
    /// The server(s), for messages.
    fn server(&self) -> String;

    /// The one enabled user with this address (`mail` or an `smtp:` proxy address).
    fn find_user(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<DirUser, DirectoryError>> + Send;

    /// Whether `user` belongs, directly or nested, to one of `groups`; the first grant found.
    fn membership(
        &self,
        user: &DirUser,
        groups: &[ApproverGroup],
    ) -> impl Future<Output = Result<Membership, DirectoryError>> + Send;
}

/// Why a sender may not approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The address is not a usable mail address.
    BadAddress,
    /// No enabled directory user has the address.
    UnknownSender,
    /// Several directory users have the address.
    AmbiguousSender,
    /// No group approves this safe at this level.
    NoApproverGroups,
    /// The user is in none of the approver groups.
    NotAnApprover,
}

/// The answer to "may this sender approve this safe at this level?".
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub address: String,
    pub safe: String,
    pub level: u8,
    pub may_approve: bool,
    /// Set when `may_approve` is false.
    pub refusal: Option<Refusal>,
    /// One sentence for people.
    pub reason: String,
    pub user: Option<UserView>,
    pub granted_by: Option<Grant>,
    pub approvers: Approvers,
    pub groups: Vec<ResolvedGroup>,
    pub strategy: Option<Strategy>,
    pub server: String,
}

/// The user's identities, for output.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub dn: String,
    pub sam_account_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub aliases: Vec<String>,
    pub display_name: Option<String>,
    /// The person attribute's value (`[directory] person_attribute`).
    pub person: Option<String>,
}

impl UserView {
    /// Every name this person goes by (as [`DirUser::identities`]).
    pub fn identities(&self) -> Vec<String> {
        DirUser {
            dn: self.dn.clone(),
            sam_account_name: self.sam_account_name.clone(),
            user_principal_name: self.user_principal_name.clone(),
            mail: self.mail.clone(),
            aliases: self.aliases.clone(),
            display_name: self.display_name.clone(),
            member_of: Vec::new(),
            person: self.person.clone(),
        }
        .identities()
    }

    /// [`DirUser::is_same_person`] on the identities kept in a verdict.
    pub fn is_same_person(&self, pvwa_user: &str) -> bool {
        crate::person::is_one_of(pvwa_user, &self.identities())
    }
}

impl From<&DirUser> for UserView {
    fn from(u: &DirUser) -> Self {
        UserView {
            dn: u.dn.clone(),
            sam_account_name: u.sam_account_name.clone(),
            user_principal_name: u.user_principal_name.clone(),
            mail: u.mail.clone(),
            aliases: u.aliases.clone(),
            display_name: u.display_name.clone(),
            person: u.person.clone(),
        }
    }
}

impl RoleUser {
    /// Whether this holder of a CyberArk Identity role is the directory user `user`. Strict,
    /// because a match grants (fail closed: a name that might be someone else is not a match):
    /// - the Identity e-mail address (it must hold an `@`) equal to the user's mail, one of
    ///   their aliases or their UPN;
    /// - the Identity login name with an `@` equal to the user's UPN, mail or an alias; a login
    ///   name equal to the user's DN;
    /// - a bare login name (no `@`, no `\`) equal to the user's sAMAccountName.
    ///
    /// Equal means whole, ignoring ASCII case only: no Unicode case folding (the Kelvin sign
    /// `\u{212A}` is not `k`), no trimming or normalising of either side beyond surrounding
    /// ASCII blanks, never by display name, never a part of a name, never a domain-qualified
    /// name by its bare part (`alice@cyberark.cloud.12345`, `alice@evil.example` and
    /// `OTHER\alice` are not the directory's `alice`), never an empty field.
    pub fn is(&self, user: &DirUser) -> bool {
        fn same(a: &str, b: &str) -> bool {
            let (a, b) = (
                a.trim_matches(|c: char| c.is_ascii_whitespace()),
                b.trim_matches(|c: char| c.is_ascii_whitespace()),
            );
            !a.is_empty() && a.eq_ignore_ascii_case(b)
        }
        let addresses: Vec<&str> = user
            .user_principal_name
            .iter()
            .chain(user.mail.iter())
            .chain(user.aliases.iter())
            .map(String::as_str)
            .filter(|a| a.contains('@'))
            .collect();
        let by_address = |x: &str| x.contains('@') && addresses.iter().any(|a| same(x, a));
        if self.email.as_deref().is_some_and(by_address) {
            return true;
        }
        let name = self.name.as_str();
        if name.contains('@') {
            return by_address(name);
        }
        if same(name, &user.dn) {
            return true;
        }
        !name.contains('\\')
            && user
                .sam_account_name
                .as_deref()
                .is_some_and(|sam| !sam.contains(['@', '\\']) && same(name, sam))
    }
}

/// The grant of the first role in `roles` that `user` holds ([`RoleUser::is`]).
fn role_grant(user: &DirUser, roles: &[ApproverRole]) -> Option<Grant> {
    roles.iter().find_map(|r| {
        let holder = r.users.iter().find(|u| u.is(user))?;
        let mut path_names = vec![user.short_name(), holder.name.clone()];
        path_names.extend(holder.via.iter().rev().cloned());
        Some(Grant {
            group: format!(
                "CyberArk Identity role \"{}\"",
                crate::text::printable(&r.role)
            ),
            source: r.source.clone(),
            group_dn: format!(
                "held as CyberArk Identity lists it: {}",
                crate::text::printable(&holder.via.join(" -> "))
            ),
            path: vec![user.dn.clone()],
            path_names: path_names
                .iter()
                .map(|n| crate::text::printable(n))
                .collect(),
            path_complete: true,
            strategy: Strategy::Auto,
        })
    })
}

/// Decide whether `address` may approve `safe` at `level`, given the approver groups. Sender
/// refusals (unknown, ambiguous, bad address) become a refusing verdict; directory faults are
/// returned as errors, and mean no approval.
pub async fn authorize<D: Directory>(
    dir: &D,
    address: &str,
    safe: &str,
    level: u8,
    approvers: Approvers,
) -> Result<Verdict, DirectoryError> {
    let mut v = Verdict {
        address: crate::text::printable(address.trim()),
        safe: safe.to_string(),
        level,
        may_approve: false,
        refusal: None,
        reason: String::new(),
        user: None,
        granted_by: None,
        approvers,
        groups: Vec::new(),
        strategy: None,
        server: dir.server(),
    };
    let refuse = |mut v: Verdict, r: Refusal, reason: String| {
        v.refusal = Some(r);
        v.reason = reason;
        v
    };
    let user = match dir.find_user(address).await {
        Ok(u) => u,
        Err(e) if e.is_refusal() => {
            let r = match e {
                DirectoryError::Ambiguous { .. } => Refusal::AmbiguousSender,
                DirectoryError::BadAddress { .. } => Refusal::BadAddress,
                _ => Refusal::UnknownSender,
            };
            return Ok(refuse(v, r, e.to_string()));
        }
        Err(e) => return Err(e),
    };
    v.user = Some(UserView::from(&user));
    // CyberArk Identity roles first: their holders are known without asking the directory.
    if let Some(g) = role_grant(&user, &v.approvers.roles) {
        v.may_approve = true;
        v.reason = format!(
            "{} may approve safe {safe} at level {level} through {} ({})",
            user.short_name(),
            g.group,
            g.path_text()
        );
        v.granted_by = Some(g);
        return Ok(v);
    }
    if v.approvers.groups.is_empty() {
        let reason = if v.approvers.roles.is_empty() {
            format!("no group approves safe {safe} at level {level}")
        } else {
            let names: Vec<String> = v
                .approvers
                .roles
                .iter()
                .map(|r| format!("CyberArk Identity role {}", crate::text::printable(&r.role)))
                .collect();
            format!(
                "{} holds none of the roles that approve safe {safe} at level {level} ({})",
                user.short_name(),
                names.join(", ")
            )
        };
        let r = if v.approvers.roles.is_empty() {
            Refusal::NoApproverGroups
        } else {
            Refusal::NotAnApprover
        };
        return Ok(refuse(v, r, reason));
    }
    let m = dir.membership(&user, &v.approvers.groups).await?;
    v.groups = m.groups;
    v.strategy = Some(m.strategy);
    match m.grant {
        Some(g) => {
            v.may_approve = true;
            v.reason = format!(
                "{} may approve safe {safe} at level {level} as a member of {} ({})",
                user.short_name(),
                g.group,
                g.path_text()
            );
            v.granted_by = Some(g);
            Ok(v)
        }
        None => {
            let names: Vec<&str> = v.approvers.groups.iter().map(|g| g.name.as_str()).collect();
            let mut reason = format!(
                "{} is not a member of any group that approves safe {safe} at level {level} ({})",
                user.short_name(),
                names.join(", ")
            );
            if m.depth_limited {
                reason.push_str("; nesting deeper than directory.max_depth was not followed");
            }
            Ok(refuse(v, Refusal::NotAnApprover, reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> DirUser {
        DirUser {
            dn: "CN=Alice Approver,OU=Users,DC=corp,DC=example".into(),
            sam_account_name: Some("alice".into()),
            user_principal_name: Some("alice.a@corp.example".into()),
            mail: Some("Alice@Example.test".into()),
            aliases: vec![
                "alice@example.test".into(),
                "a.approver@example.test".into(),
            ],
            display_name: None,
            member_of: vec![],
            person: None,
        }
    }

    #[test]
    fn identities_are_deduplicated_case_insensitively() {
        let ids = alice().identities();
        assert_eq!(
            ids,
            vec![
                "CN=Alice Approver,OU=Users,DC=corp,DC=example",
                "alice",
                "alice.a@corp.example",
                "Alice@Example.test",
                "a.approver@example.test"
            ]
        );
    }

    #[test]
    fn same_person_in_every_form_pvwa_may_use() {
        let a = alice();
        for u in [
            "alice",
            "ALICE",
            "CORP\\alice",
            "alice@corp.example",
            "alice.a@corp.example",
            "alice.a",
            "a.approver@example.test",
        ] {
            assert!(a.is_same_person(u), "{u}");
        }
        for u in ["bob", "", "alic", "CORP\\bob", "alice2@corp.example"] {
            assert!(!a.is_same_person(u), "{u}");
        }
        let view = UserView::from(&a);
        assert!(view.is_same_person("corp\\ALICE"));
        assert!(!view.is_same_person("bob"));
    }

    /// A directory with fixed answers, to test `authorize` without a server.
    struct Fixed {
        user: Result<DirUser, DirectoryError>,
        grant: Result<Option<Grant>, DirectoryError>,
    }

    impl Directory for Fixed {
        fn server(&self) -> String {
            "ldaps://fixed:636".into()
        }
        async fn find_user(&self, _a: &str) -> Result<DirUser, DirectoryError> {
            self.user.clone()
        }
        async fn membership(
            &self,
            _u: &DirUser,
            _g: &[ApproverGroup],
        ) -> Result<Membership, DirectoryError> {
            Ok(Membership {
                grant: self.grant.clone()?,
                groups: vec![],
                strategy: Strategy::Recursive,
                depth_limited: false,
            })
        }
    }

    fn approvers() -> Approvers {
        Approvers {
            groups: vec![ApproverGroup {
                dn: None,
                name: "DB_PAMapprover".into(),
                source: "static rule 1".into(),
            }],
            skipped: vec![],
            roles: vec![],
        }
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn faults_are_errors_never_approvals() {
        let down = DirectoryError::Unreachable {
            server: "ldaps://fixed:636".into(),
            detail: "connection refused".into(),
        };
        let d = Fixed {
            user: Err(down.clone()),
            grant: Ok(None),
        };
        let e = run(authorize(&d, "a@x", "DB", 1, approvers())).expect_err("error");
        assert_eq!(e.exit(), Exit::Unavailable);
        let d = Fixed {
            user: Ok(alice()),
            grant: Err(down),
        };
        assert!(run(authorize(&d, "a@x", "DB", 1, approvers())).is_err());
    }

    #[test]
    fn sender_problems_are_refusals() {
        let d = Fixed {
            user: Err(DirectoryError::Ambiguous {
                address: "s@x".into(),
                count: 2,
            }),
            grant: Ok(None),
        };
        let v = run(authorize(&d, "s@x", "DB", 1, approvers())).expect("verdict");
        assert!(!v.may_approve);
        assert_eq!(v.refusal, Some(Refusal::AmbiguousSender));
        let d = Fixed {
            user: Ok(alice()),
            grant: Ok(None),
        };
        let v = run(authorize(&d, "a@x", "DB", 1, Approvers::default())).expect("verdict");
        assert_eq!(v.refusal, Some(Refusal::NoApproverGroups));
        let v = run(authorize(&d, "a@x", "DB", 1, approvers())).expect("verdict");
        assert_eq!(v.refusal, Some(Refusal::NotAnApprover));
        assert!(v.reason.contains("DB_PAMapprover"), "{}", v.reason);
    }
}

#[cfg(test)]
mod role_holders {
    use super::*;

    fn alice() -> DirUser {
        DirUser {
            dn: "CN=Alice Approver,OU=Users,DC=corp,DC=example".into(),
            sam_account_name: Some("alice".into()),
            user_principal_name: Some("alice.a@corp.example".into()),
            mail: Some("Alice@Example.test".into()),
            aliases: vec!["a.approver@example.test".into()],
            display_name: Some("Alice Approver".into()),
            member_of: vec![],
            person: None,
        }
    }

    fn holder(name: &str, email: Option<&str>) -> RoleUser {
        RoleUser {
            name: name.into(),
            email: email.map(str::to_string),
            via: vec!["PAM Approvers L1".into()],
        }
    }

    /// A match grants, so it is strict: e-mail or login name equal to one of the user's
    /// identities, or a domain-less login name that is the sAMAccountName; never a display name
    /// or the part before the `@` of another domain's name.
    #[test]
    fn a_role_holder_is_the_sender_only_by_an_exact_identity() {
        let a = alice();
        for (name, email) in [
            ("someone@cyberark.cloud.1234", Some("alice@example.test")),
            ("x", Some("A.Approver@example.test")),
            ("alice.a@corp.example", None),
            ("ALICE", None),
            ("CN=Alice Approver,OU=Users,DC=corp,DC=example", None),
        ] {
            assert!(holder(name, email).is(&a), "{name} {email:?}");
        }
        for (name, email) in [
            ("alice@cyberark.cloud.1234", None),
            ("CORP\\alice", None),
            ("OTHER\\alice", Some("alice@other.example")),
            ("alice@other.example", Some("alice@other.example")),
            ("Alice Approver", None),
            ("alic", None),
            ("", Some("")),
            ("bob", Some("bob@example.test")),
        ] {
            assert!(!holder(name, email).is(&a), "{name} {email:?}");
        }
    }

    /// Read as an attacker: every near miss of a holder's name or e-mail is no match.
    #[test]
    fn a_role_holder_near_the_sender_is_not_the_sender() {
        let a = alice();
        for (name, email) in [
            // The e-mail field is an address: a bare name or a DN there is no match (the old
            // rule matched the sAMAccountName and the DN through it).
            ("x", Some("alice")),
            ("x", Some("CN=Alice Approver,OU=Users,DC=corp,DC=example")),
            ("x", Some("Alice Approver")),
            // Another domain, a longer or shorter domain, a trailing dot, a partial name.
            ("alice.a@evil.example", None),
            ("x", Some("alice@evil.example")),
            ("alice.a@corp.example.evil", None),
            ("alice.a@example", None),
            ("x", Some("alice@example.test.")),
            ("alice@corp.example", None),
            ("alice.a", None),
            ("lice", None),
            ("alice2", None),
            // Empty and blank fields.
            ("", None),
            ("   ", Some("   ")),
            ("@", Some("@")),
            // Invisible or lookalike characters.
            ("alice\u{200B}", None),
            ("x", Some("alice@example\u{2024}test")),
            ("\u{0430}lice", None),
            // A bare name is the sAMAccountName only, never matched against a domain form.
            ("CORP\\alice", Some("x@other.example")),
        ] {
            assert!(!holder(name, email).is(&a), "{name:?} {email:?}");
        }
        // The same account's UPN in the e-mail field is the same account.
        assert!(holder("x", Some("ALICE.A@corp.example")).is(&a));
        // Unicode case folding is not applied: the Kelvin sign lower-cases to `k`, but a
        // holder named with it is not the directory's `kim` (the old rule matched it).
        let kim = DirUser {
            sam_account_name: Some("kim".into()),
            dn: "CN=Kim,OU=Users,DC=corp,DC=example".into(),
            user_principal_name: Some("kim@corp.example".into()),
            mail: Some("kim@example.test".into()),
            aliases: vec![],
            ..alice()
        };
        assert!(holder("KIM", None).is(&kim));
        assert!(!holder("\u{212A}im", None).is(&kim));
        assert!(!holder("x", Some("\u{212A}im@example.test")).is(&kim));
        assert!(!holder("\u{212A}im@corp.example", None).is(&kim));
    }

    struct NoGroups;

    impl Directory for NoGroups {
        fn server(&self) -> String {
            "ldaps://fixed:636".into()
        }
        async fn find_user(&self, _a: &str) -> Result<DirUser, DirectoryError> {
            Ok(alice())
        }
        async fn membership(
            &self,
            _u: &DirUser,
            _g: &[ApproverGroup],
        ) -> Result<Membership, DirectoryError> {
            Ok(Membership {
                grant: None,
                groups: vec![],
                strategy: Strategy::Recursive,
                depth_limited: false,
            })
        }
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn authorize_grants_through_a_held_role_and_names_it() {
        let role = |users| {
            Approvers {
            roles: vec![ApproverRole {
                role: "PAM Approvers L1".into(),
                source: "PVWA safe member \"PAM Approvers L1\" (level 1), through CyberArk Identity role \"PAM Approvers L1\"".into(),
                users,
            }],
            ..Approvers::default()
        }
        };
        let v = run(authorize(
            &NoGroups,
            "alice@example.test",
            "RoleSafe",
            1,
            role(vec![holder("alice", Some("alice@example.test"))]),
        ))
        .expect("verdict");
        assert!(v.may_approve, "{}", v.reason);
        assert!(
            v.reason
                .contains("through CyberArk Identity role \"PAM Approvers L1\""),
            "{}",
            v.reason
        );
        let g = v.granted_by.expect("grant");
        assert_eq!(g.group, "CyberArk Identity role \"PAM Approvers L1\"");
        let v = run(authorize(
            &NoGroups,
            "alice@example.test",
            "RoleSafe",
            1,
            role(vec![holder("bob", Some("bob@example.test"))]),
        ))
        .expect("verdict");
        assert!(!v.may_approve);
        assert_eq!(v.refusal, Some(Refusal::NotAnApprover));
        assert!(v.reason.contains("PAM Approvers L1"), "{}", v.reason);
    }
}

//! The directory on Microsoft Entra ID, through Microsoft Graph with application permissions
//! (`[directory] kind = "entra"`, docs/entra-directory.md): for organisations whose users and
//! groups live in Entra ID and no domain controller is reachable.
//!
//! - A sender is the one enabled user (`accountEnabled eq true`) whose `mail`,
//!   `userPrincipalName` or an `smtp:` entry of `proxyAddresses` is the address; the answer is
//!   checked again here (a server that ignored the filter never picks the user).
//! - Approver groups are found by the configured group property (`displayName` by default,
//!   `mailNickname` or `onPremisesSamAccountName`) or by object id; a name two groups share is
//!   not used.
//! - Membership is the user's `transitiveMemberOf` cast to groups (Entra resolves nesting; the
//!   path between user and group is not known, so a grant says "nesting resolved by the
//!   server"), read page by page through `@odata.nextLink` (bounded in pages and objects, only
//!   on Graph's own origin and the same resource, never a page twice: the token never goes
//!   elsewhere and a hostile answer cannot loop).
//! - Every query is sent with the advanced query parameters (`ConsistencyLevel: eventual`,
//!   `$count=true`): Graph requires them for the cast on `transitiveMemberOf` and for
//!   `onPremisesSamAccountName`, and accepts them everywhere else.
//! - 429 and 5xx are waited out briefly (`Retry-After`), then reported as a fault the watcher
//!   retries later; 401 once renews the token; 403 names the permission the app lacks.
//!
//! Facts: Microsoft's "Advanced query capabilities on Microsoft Entra ID objects" and "List a
//! user's memberships (direct and transitive)" pages; pam-sim's guesses in its ASSUMPTIONS.md.

use std::collections::HashSet;
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, RETRY_AFTER};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::cache::TtlCache;
use super::config::{EntraSettings, GroupNameAttribute, Settings, Strategy};
use super::names::check_address;
use super::{ApproverGroup, DirUser, Directory, DirectoryError, Grant, Membership, ResolvedGroup};
use crate::http::{self, Backoff, HttpSettings};
use crate::mailbox::graph::AppCredential;
use crate::mailbox::oauth::TokenClient;

/// The application permission that reads users (and their `transitiveMemberOf` ids).
pub const USER_PERMISSION: &str = "User.Read.All";
/// The application permission that reads groups and their names (least privilege for
/// `GET /groups`; without it `transitiveMemberOf` answers ids without names).
pub const GROUP_PERMISSION: &str = "GroupMember.Read.All";

/// Pages of `transitiveMemberOf` read at most (999 groups each): more is an error, never a
/// partial answer.
const MAX_PAGES: usize = 20;
/// Objects read at most over all pages of one collection (a page holds at most 999).
const MAX_OBJECTS: usize = MAX_PAGES * 999;
/// The largest answer read.
const MAX_BODY: http::BodyCap = http::BodyCap::fixed("Microsoft Graph directory", 8 << 20);
/// Attempts of one request on 429 / 5xx (the first included).
const ATTEMPTS: u32 = 3;
/// Longest `Retry-After` waited for within one lookup; longer is reported as a fault.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// The next page of a collection read from `first`, checked before the token goes with it:
/// a URL on the same scheme, host and port, for the same resource (the same path, ASCII case
/// aside: only the query, Graph's `$skiptoken`, moves on), with no user part and no fragment,
/// and not a page already read (a link that repeats would loop). `Err` says why not.
fn next_page(
    first: &url::Url,
    link: &Value,
    seen: &mut HashSet<String>,
) -> Result<String, &'static str> {
    let link = link.as_str().ok_or("is not a string")?;
    let u = url::Url::parse(link).map_err(|_| "is not a URL")?;
    if u.origin() != first.origin() || u.scheme() != first.scheme() {
        return Err("points away from Microsoft Graph");
    }
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() {
        return Err("carries a user part or a fragment");
    }
    if !u.path().eq_ignore_ascii_case(first.path()) {
        return Err("points at another resource of Microsoft Graph");
    }
    if !seen.insert(u.as_str().to_string()) {
        return Err("repeats a page already read");
    }
    Ok(u.to_string())
}

/// An OData string literal's content: single quotes doubled (`O'Brien` → `O''Brien`).
pub fn odata_literal(s: &str) -> String {
    s.replace('\'', "''")
}

/// A query string value, percent-encoded.
fn q(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The `$filter` that finds the enabled users with `address` (already checked).
pub fn user_filter(address: &str) -> String {
    let a = odata_literal(address);
    format!(
        "accountEnabled eq true and (mail eq '{a}' or userPrincipalName eq '{a}' or proxyAddresses/any(p:p eq 'smtp:{a}'))"
    )
}

/// The user properties read.
fn user_select(person: Option<&str>) -> String {
    let mut s = String::from(
        "id,displayName,userPrincipalName,mail,proxyAddresses,onPremisesSamAccountName,accountEnabled",
    );
    if let Some(p) = person {
        s.push(',');
        s.push_str(p);
    }
    s
}

const GROUP_SELECT: &str = "id,displayName,mailNickname,onPremisesSamAccountName";

/// The directory on Microsoft Graph.
pub struct GraphDirectory {
    s: Settings,
    e: EntraSettings,
    http: reqwest::Client,
    tokens: TokenClient,
    users: TtlCache<DirUser>,
    memberships: TtlCache<Membership>,
    groups: TtlCache<ResolvedGroup>,
    group_records: TtlCache<super::approvers::GroupRecord>,
    role_records: TtlCache<super::approvers::RoleRecord>,
}

impl std::fmt::Debug for GraphDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphDirectory")
            .field("graph", &self.e.graph_url)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// The text of an OData error body: `Code: message`.
fn odata_error(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v
        .pointer("/error/code")
        .and_then(Value::as_str)
        .unwrap_or("");
    let msg = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("");
    let text = match (code.is_empty(), msg.is_empty()) {
        (true, true) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        (false, true) => code.to_string(),
        (true, false) => msg.to_string(),
        (false, false) => format!("{code}: {msg}"),
    };
    crate::text::printable(&text)
}

impl GraphDirectory {
    /// Build from validated settings (`kind = "entra"`) and the app's credential, read while
    /// the secret resolver was open. Nothing is sent yet.
    pub fn new(settings: Settings, cred: AppCredential) -> Result<Self, DirectoryError> {
        let e = settings
            .entra
            .clone()
            .ok_or_else(|| DirectoryError::Tls("directory: not kind = \"entra\"".into()))?;
        let hs = HttpSettings {
            ca_bundle: settings.ca_bundle.clone(),
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.op_timeout,
            ..HttpSettings::default()
        };
        let http = http::builder(&hs)
            .map_err(|err| DirectoryError::Tls(err.to_string()))?
            .build()
            .map_err(|err| DirectoryError::Tls(format!("HTTP client: {err}")))?;
        let tokens = crate::mailbox::graph::token_client(
            http.clone(),
            &e.app,
            &e.graph_url,
            cred,
            Backoff::new(1, 200),
        );
        Ok(GraphDirectory {
            users: TtlCache::new(settings.cache_ttl),
            memberships: TtlCache::new(settings.cache_ttl),
            groups: TtlCache::new(settings.cache_ttl),
            group_records: TtlCache::new(settings.cache_ttl),
            role_records: TtlCache::new(settings.cache_ttl),
            s: settings,
            e,
            http,
            tokens,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.s
    }

    /// The cache of the vault's group records (as the LDAP directory keeps it).
    pub fn group_records(&self) -> &TtlCache<super::approvers::GroupRecord> {
        &self.group_records
    }

    /// The cache of CyberArk Identity role records (as the LDAP directory keeps it).
    pub fn role_records(&self) -> &TtlCache<super::approvers::RoleRecord> {
        &self.role_records
    }

    pub fn clear_cache(&self) {
        self.users.clear();
        self.memberships.clear();
        self.groups.clear();
        self.group_records.clear();
        self.role_records.clear();
    }

    /// The app registration's client id and where it is configured, for messages.
    pub fn app(&self) -> String {
        format!("{} ({})", self.e.app.client_id.trim(), self.e.app_key)
    }

    fn server_name(&self) -> String {
        self.e.graph_url.clone()
    }

    /// A token, or the directory error that says why not.
    async fn token(&self) -> Result<secrecy::SecretString, DirectoryError> {
        self.tokens.token().await.map_err(|err| {
            if err.is_transient() {
                DirectoryError::Unreachable {
                    server: self.server_name(),
                    detail: format!("signing in: {err}"),
                }
            } else {
                DirectoryError::BindRefused {
                    server: self.server_name(),
                    bind_dn: format!("app {}", self.app()),
                    detail: err.to_string(),
                }
            }
        })
    }

    /// Sign in (a token for Graph), for the site check.
    pub async fn sign_in(&self) -> Result<(), DirectoryError> {
        self.token().await.map(|_| ())
    }

    /// One user read (`GET /users?$top=1`): the app may read users.
    pub async fn probe_users(&self) -> Result<(), DirectoryError> {
        let url = format!("{}/users?$select=id&$top=1", self.e.graph_url);
        self.get("reading users", &url, USER_PERMISSION)
            .await
            .map(|_| ())
    }

    /// One group read (`GET /groups?$top=1`): the app may read groups and their members.
    pub async fn probe_groups(&self) -> Result<(), DirectoryError> {
        let url = format!("{}/groups?$select=id&$top=1", self.e.graph_url);
        self.get("reading groups", &url, GROUP_PERMISSION)
            .await
            .map(|_| ())
    }

    /// GET `url` (on Graph) as JSON, with the advanced query parameters' header. `permission`
    /// names what a 403 lacks.
    async fn get(&self, what: &str, url: &str, permission: &str) -> Result<Value, DirectoryError> {
        let server = self.server_name();
        let mut renewed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let token = self.token().await?;
            let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| DirectoryError::Protocol {
                    server: server.clone(),
                    what: what.into(),
                    detail: "the token is not a header value".into(),
                })?;
            auth.set_sensitive(true);
            let sent = self
                .http
                .get(url)
                .header(AUTHORIZATION, auth)
                .header(ACCEPT, "application/json")
                .header("ConsistencyLevel", "eventual")
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(err) if err.is_timeout() => {
                    return Err(DirectoryError::Timeout {
                        server,
                        secs: self.s.op_timeout.as_secs(),
                        what: what.into(),
                    });
                }
                Err(err) => {
                    return Err(DirectoryError::Unreachable {
                        server,
                        detail: http::error_chain(&err),
                    });
                }
            };
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = http::read_capped(resp, MAX_BODY).await.map_err(|err| {
                DirectoryError::Protocol {
                    server: server.clone(),
                    what: what.into(),
                    detail: err.to_string(),
                }
            })?;
            match status {
                s if s.is_success() => {
                    return serde_json::from_slice(&body).map_err(|err| DirectoryError::Protocol {
                        server,
                        what: what.into(),
                        detail: format!("the answer is not JSON: {err}"),
                    });
                }
                StatusCode::UNAUTHORIZED if !renewed => {
                    renewed = true;
                    self.tokens.forget().await;
                    attempt -= 1;
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(DirectoryError::BindRefused {
                        server,
                        bind_dn: format!("app {}", self.app()),
                        detail: format!("Graph refused the token: {}", odata_error(&body)),
                    });
                }
                StatusCode::FORBIDDEN => {
                    return Err(DirectoryError::BindRefused {
                        server,
                        bind_dn: format!("app {}", self.app()),
                        detail: format!(
                            "{what} was denied ({}): grant the app the application permission {permission} (Microsoft Graph, admin consent)",
                            odata_error(&body)
                        ),
                    });
                }
                s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                    let wait = Duration::from_secs(retry_after.unwrap_or(1));
                    if attempt >= ATTEMPTS || wait > MAX_WAIT {
                        return Err(DirectoryError::Unreachable {
                            server,
                            detail: format!(
                                "{what}: Graph answered {} ({}) {attempt} time(s){}",
                                s.as_u16(),
                                odata_error(&body),
                                retry_after
                                    .map(|r| format!("; it asks to retry after {r}s"))
                                    .unwrap_or_default()
                            ),
                        });
                    }
                    log::info!(
                        "directory: Graph answered {} to {what}; retrying in {}s",
                        s.as_u16(),
                        wait.as_secs()
                    );
                    tokio::time::sleep(wait).await;
                }
                s => {
                    return Err(DirectoryError::Protocol {
                        server,
                        what: what.into(),
                        detail: format!("Graph answered {}: {}", s.as_u16(), odata_error(&body)),
                    });
                }
            }
        }
    }

    /// Every object of a collection, following `@odata.nextLink` (at most [`MAX_PAGES`] pages
    /// and [`MAX_OBJECTS`] objects, and only links [`next_page`] accepts: the same origin and
    /// resource, never a page twice).
    async fn get_all(
        &self,
        what: &str,
        first: String,
        permission: &str,
    ) -> Result<Vec<Value>, DirectoryError> {
        let first_url = url::Url::parse(&first)
            .map_err(|err| DirectoryError::Tls(format!("directory.url: {err}")))?;
        let mut seen: HashSet<String> = HashSet::from([first_url.as_str().to_string()]);
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(DirectoryError::Protocol {
                    server: self.server_name(),
                    what: what.into(),
                    detail: format!("more than {MAX_PAGES} pages; the answer is not used"),
                });
            }
            let v = self.get(what, &url, permission).await?;
            let items = v.get("value").and_then(Value::as_array).ok_or_else(|| {
                DirectoryError::Protocol {
                    server: self.server_name(),
                    what: what.into(),
                    detail: "the answer has no `value` list".into(),
                }
            })?;
            if out.len() + items.len() > MAX_OBJECTS {
                return Err(DirectoryError::Protocol {
                    server: self.server_name(),
                    what: what.into(),
                    detail: format!("more than {MAX_OBJECTS} objects; the answer is not used"),
                });
            }
            out.extend(items.iter().cloned());
            if let Some(link) = v.get("@odata.nextLink").filter(|l| !l.is_null()) {
                let link = next_page(&first_url, link, &mut seen).map_err(|why| {
                    DirectoryError::Protocol {
                        server: self.server_name(),
                        what: what.into(),
                        detail: format!("the next page link {why}; not followed"),
                    }
                })?;
                next = Some(link);
            }
        }
        Ok(out)
    }

    fn users_url(&self, filter: &str, top: u32) -> String {
        format!(
            "{}/users?$filter={}&$select={}&$top={top}&$count=true",
            self.e.graph_url,
            q(filter),
            q(&user_select(self.s.person_attribute.as_deref()))
        )
    }

    /// The users `filter` finds, `top` a page; a server that pages below `top` is followed
    /// (bounded), so that a second match on a later page is never missed.
    async fn users(
        &self,
        what: &str,
        filter: &str,
        top: u32,
    ) -> Result<Vec<Value>, DirectoryError> {
        self.get_all(what, self.users_url(filter, top), USER_PERMISSION)
            .await
    }

    fn user_of(&self, v: &Value) -> Option<DirUser> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
        };
        let id = s("id")?;
        let mut aliases: Vec<String> = Vec::new();
        for p in v
            .get("proxyAddresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if let Some((kind, addr)) = p.split_once(':')
                && kind.eq_ignore_ascii_case("smtp")
                && !addr.trim().is_empty()
                && !aliases.iter().any(|a| a.eq_ignore_ascii_case(addr.trim()))
            {
                aliases.push(addr.trim().to_string());
            }
        }
        Some(DirUser {
            dn: id,
            sam_account_name: s("onPremisesSamAccountName"),
            user_principal_name: s("userPrincipalName"),
            mail: s("mail"),
            aliases,
            display_name: s("displayName"),
            member_of: Vec::new(),
            person: self.s.person_attribute.as_deref().and_then(s),
        })
    }

    async fn lookup_user(&self, address: &str) -> Result<DirUser, DirectoryError> {
        let addr = check_address(address).map_err(|reason| DirectoryError::BadAddress {
            address: crate::text::printable(address),
            reason,
        })?;
        let what = format!("looking up {addr}");
        let found = self.users(&what, &user_filter(&addr), 5).await?;
        // Checked again here: enabled, and the address really is one of the user's.
        let users: Vec<DirUser> = found
            .iter()
            .filter(|v| v.get("accountEnabled").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| self.user_of(v))
            .filter(|u| {
                u.mail
                    .iter()
                    .chain(u.user_principal_name.iter())
                    .chain(u.aliases.iter())
                    .any(|a| a.eq_ignore_ascii_case(&addr))
            })
            .collect();
        if users.len() < found.len() {
            log::warn!(
                "directory: Graph answered {} user(s) for {addr}, {} of them enabled with the address",
                found.len(),
                users.len()
            );
        }
        match users.len() {
            0 => Err(DirectoryError::UnknownUser { address: addr }),
            1 => Ok(users.into_iter().next().unwrap_or_default()),
            n => Err(DirectoryError::Ambiguous {
                address: addr,
                count: n.max(found.len()),
            }),
        }
    }

    /// Every user (enabled or not) whose person attribute has `value` (at most 50).
    pub async fn accounts_of_person(&self, value: &str) -> Result<Vec<DirUser>, DirectoryError> {
        let Some(attr) = self.s.person_attribute.clone() else {
            return Ok(Vec::new());
        };
        let value = value.trim();
        if value.is_empty() || value.chars().any(char::is_control) {
            return Ok(Vec::new());
        }
        let what = format!(
            "looking up the accounts with {attr} {}",
            crate::text::printable(value)
        );
        let filter = format!("{attr} eq '{}'", odata_literal(value));
        let found = self.users(&what, &filter, 51).await?;
        if found.len() > 50 {
            return Err(DirectoryError::Protocol {
                server: self.server_name(),
                what,
                detail: "more than 50 accounts share the value; it cannot name one person".into(),
            });
        }
        Ok(found
            .iter()
            .filter_map(|v| self.user_of(v))
            .filter(|u| {
                u.person
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(value))
            })
            .collect())
    }

    /// The enabled users whose account name is `name` (`DOMAIN\` stripped): the user principal
    /// name or the on-premises sAMAccountName.
    pub async fn accounts_named(&self, name: &str) -> Result<Vec<DirUser>, DirectoryError> {
        let Some(name) = super::names::account_name(name) else {
            return Ok(Vec::new());
        };
        let v = odata_literal(name);
        let filter = format!(
            "accountEnabled eq true and (userPrincipalName eq '{v}' or onPremisesSamAccountName eq '{v}')"
        );
        let what = format!("looking up the account {}", crate::text::printable(name));
        let found = self.users(&what, &filter, 2).await?;
        Ok(found
            .iter()
            .filter(|v| v.get("accountEnabled").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| self.user_of(v))
            .filter(|u| {
                u.user_principal_name
                    .iter()
                    .chain(u.sam_account_name.iter())
                    .any(|a| a.eq_ignore_ascii_case(name))
            })
            .collect())
    }

    fn attribute(&self) -> GroupNameAttribute {
        self.s.group_names.attribute()
    }

    /// Find the Entra group each approver name (or object id) answers to.
    pub async fn resolve_groups(
        &self,
        groups: &[ApproverGroup],
    ) -> Result<Vec<ResolvedGroup>, DirectoryError> {
        let mut out = Vec::new();
        for g in groups {
            out.push(self.resolve_group(g).await?);
        }
        Ok(out)
    }

    async fn resolve_group(&self, g: &ApproverGroup) -> Result<ResolvedGroup, DirectoryError> {
        // An object id given by a mapping (roles, a static row, a name that is an id) is the
        // group; a DN from a vault record cannot be checked in Entra ID: the name is used.
        let id =
            g.dn.as_deref()
                .filter(|d| crate::text::is_guid(d.trim()))
                .or_else(|| crate::text::is_guid(g.name.trim()).then_some(g.name.as_str()))
                .map(|s| s.trim().to_ascii_lowercase());
        let key = match &id {
            Some(i) => format!("id:{i}"),
            None => format!("name:{}", g.name.trim().to_lowercase()),
        };
        if let Some(mut r) = self.groups.get(&key) {
            r.source = g.source.clone();
            return Ok(r);
        }
        let attr = self.attribute().ldap_name();
        let (filter, what) = match &id {
            Some(i) => (format!("id eq '{i}'"), format!("looking up the group {i}")),
            None => (
                format!("{attr} eq '{}'", odata_literal(g.name.trim())),
                format!(
                    "looking up the group {} ({attr})",
                    crate::text::printable(g.name.trim())
                ),
            ),
        };
        let url = format!(
            "{}/groups?$filter={}&$select={GROUP_SELECT}&$top=5&$count=true",
            self.e.graph_url,
            q(&filter),
        );
        let v = self.get(&what, &url, GROUP_PERMISSION).await?;
        let items =
            v.get("value")
                .and_then(Value::as_array)
                .ok_or_else(|| DirectoryError::Protocol {
                    server: self.server_name(),
                    what: what.clone(),
                    detail: "the answer has no `value` list".into(),
                })?;
        let ids: Vec<String> = items
            .iter()
            .filter(|x| match &id {
                Some(i) => x
                    .get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(i)),
                None => x
                    .get(attr)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case(g.name.trim())),
            })
            .filter_map(|x| x.get("id").and_then(Value::as_str))
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let status = match ids.len() {
            0 => "not_found",
            1 => "found",
            _ => "ambiguous",
        };
        let r = ResolvedGroup {
            name: g.name.clone(),
            source: g.source.clone(),
            status,
            dns: ids,
        };
        self.groups.put(key, r.clone());
        Ok(r)
    }

    /// The ids of every group the user is a member of, directly or nested.
    pub async fn transitive_groups(
        &self,
        user_id: &str,
    ) -> Result<HashSet<String>, DirectoryError> {
        let what = format!("reading the group memberships of {user_id}");
        let url = format!(
            "{}/users/{}/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=999&$count=true",
            self.e.graph_url,
            q(user_id)
        );
        let items = self.get_all(&what, url, GROUP_PERMISSION).await?;
        Ok(items
            .iter()
            .filter_map(|x| x.get("id").and_then(Value::as_str))
            .map(|s| s.to_ascii_lowercase())
            .collect())
    }

    async fn compute_membership(
        &self,
        user: &DirUser,
        groups: &[ApproverGroup],
    ) -> Result<Membership, DirectoryError> {
        let resolved = self.resolve_groups(groups).await?;
        let usable: Vec<&ResolvedGroup> = resolved.iter().filter(|r| r.status == "found").collect();
        let mut grant = None;
        if !usable.is_empty() {
            let mine = self.transitive_groups(&user.dn).await?;
            for r in usable {
                let id = &r.dns[0];
                if mine.contains(id) {
                    grant = Some(Grant {
                        group: r.name.clone(),
                        source: r.source.clone(),
                        group_dn: id.clone(),
                        path: vec![user.dn.clone(), id.clone()],
                        path_names: vec![user.short_name(), r.name.clone()],
                        path_complete: false,
                        strategy: Strategy::InChain,
                    });
                    break;
                }
            }
        }
        Ok(Membership {
            grant,
            groups: resolved,
            strategy: Strategy::InChain,
            depth_limited: false,
        })
    }
}

impl Directory for GraphDirectory {
    fn server(&self) -> String {
        self.server_name()
    }

    async fn find_user(&self, address: &str) -> Result<DirUser, DirectoryError> {
        let key = address.trim().to_lowercase();
        if let Some(u) = self.users.get(&key) {
            return Ok(u);
        }
        let u = self.lookup_user(address).await?;
        self.users.put(key, u.clone());
        Ok(u)
    }

    async fn membership(
        &self,
        user: &DirUser,
        groups: &[ApproverGroup],
    ) -> Result<Membership, DirectoryError> {
        let mut names: Vec<String> = groups
            .iter()
            .map(|g| {
                format!(
                    "{}\t{}",
                    g.name.to_lowercase(),
                    g.dn.as_deref().unwrap_or("").to_lowercase()
                )
            })
            .collect();
        names.sort();
        let key = format!("{}\n{}", user.dn.to_lowercase(), names.join("\n"));
        if let Some(m) = self.memberships.get(&key) {
            return Ok(m);
        }
        let m = self.compute_membership(user, groups).await?;
        self.memberships.put(key, m.clone());
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_single_quotes() {
        assert_eq!(odata_literal("o'brien@x.test"), "o''brien@x.test");
        assert_eq!(odata_literal("''"), "''''");
        // A hostile address cannot close the literal and add a clause of its own.
        let f = user_filter("x' or accountEnabled eq false or mail eq 'y@x.test");
        assert_eq!(
            f,
            "accountEnabled eq true and (mail eq 'x'' or accountEnabled eq false or mail eq ''y@x.test' or userPrincipalName eq 'x'' or accountEnabled eq false or mail eq ''y@x.test' or proxyAddresses/any(p:p eq 'smtp:x'' or accountEnabled eq false or mail eq ''y@x.test'))"
        );
        // Every quote in the value is doubled: the literal holds an even number of quotes
        // between its delimiters.
        let inner = odata_literal("a'b''c'''");
        assert_eq!(inner.matches('\'').count(), 12);
    }

    /// A hostile or buggy `@odata.nextLink` is never followed: another host, scheme or port,
    /// another resource on Graph, a user part, a fragment, a repeated page, not a string.
    #[test]
    fn only_a_next_page_of_the_same_collection_is_followed() {
        let first = url::Url::parse(
            "https://graph.microsoft.com/v1.0/users/0f1e/transitiveMemberOf/microsoft.graph.group?$top=999",
        )
        .expect("url");
        let mut seen = HashSet::from([first.as_str().to_string()]);
        let ok = "https://graph.microsoft.com/v1.0/users/0F1E/transitiveMemberOf/microsoft.graph.group?$top=999&$skiptoken=a";
        assert_eq!(
            next_page(&first, &Value::from(ok), &mut seen).as_deref(),
            Ok(ok)
        );
        for (link, why) in [
            (ok, "repeats"),
            (first.as_str(), "repeats"),
            (
                "https://graph.microsoft.com:443/v1.0/users/0F1E/transitiveMemberOf/microsoft.graph.group?$top=999&$skiptoken=a",
                "repeats",
            ),
            (
                "https://graph.microsoft.com.evil.example/v1.0/users/0f1e/transitiveMemberOf/microsoft.graph.group?$skiptoken=b",
                "away",
            ),
            (
                "http://graph.microsoft.com/v1.0/users/0f1e/transitiveMemberOf/microsoft.graph.group?$skiptoken=b",
                "away",
            ),
            (
                "https://graph.microsoft.com:8443/v1.0/users/0f1e/transitiveMemberOf/microsoft.graph.group?$skiptoken=b",
                "away",
            ),
            (
                "https://graph.microsoft.com/v1.0/me/messages?$skiptoken=b",
                "another resource",
            ),
            (
                "https://graph.microsoft.com/beta/users/0f1e/transitiveMemberOf/microsoft.graph.group?$skiptoken=b",
                "another resource",
            ),
            (
                "https://graph.microsoft.com/v1.0/users/0f1e/transitiveMemberOf/microsoft.graph.group/../../../groups?$skiptoken=b",
                "another resource",
            ),
            (
                "https://graph.microsoft.com/v1.0/users/0f1e/transitiveMemberOf?$skiptoken=b",
                "another resource",
            ),
            (
                "https://x:y@graph.microsoft.com/v1.0/users/0f1e/transitiveMemberOf/microsoft.graph.group?$skiptoken=b",
                "user part",
            ),
            (
                "https://graph.microsoft.com/v1.0/users/0f1e/transitiveMemberOf/microsoft.graph.group?$skiptoken=b#x",
                "fragment",
            ),
            (
                "/v1.0/users/0f1e/transitiveMemberOf/microsoft.graph.group?$skiptoken=b",
                "not a URL",
            ),
        ] {
            let got = next_page(&first, &Value::from(link), &mut seen);
            assert!(
                got.as_ref().is_err_and(|e| e.contains(why)),
                "{link}: {got:?}"
            );
        }
        assert_eq!(
            next_page(&first, &Value::from(7), &mut seen),
            Err("is not a string")
        );
    }

    #[test]
    fn user_filter_is_encoded_for_the_query_string() {
        let e = q(&user_filter("a+b@x.test"));
        assert!(e.contains("a%2Bb%40x%2Etest"), "{e}");
        assert!(!e.contains(' '), "{e}");
        assert!(!e.contains('&'), "{e}");
    }
}

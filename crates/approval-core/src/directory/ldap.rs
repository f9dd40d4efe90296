//! [`Directory`] on `ldap3`: simple bind over LDAPS or StartTLS with our rustls trust, one reused
//! connection (reconnected and the operation retried once when the server dropped it), a timeout
//! on every step, referrals never followed, entries parsed without panicking, and an optional
//! short-TTL cache. Every failure is an `Err` naming the server: no approval.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ldap3::asn1::StructureTag;
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, ResultEntry, Scope,
    SearchOptions, ldap_escape,
};
use secrecy::{ExposeSecret, SecretString};

use super::cache::TtlCache;
use super::config::{Settings, Strategy, server_name};
use super::names::{check_address, normalize_dn, rdn_value};
use super::{ApproverGroup, DirUser, Directory, DirectoryError, Grant, Membership, ResolvedGroup};

/// `LDAP_CAP_ACTIVE_DIRECTORY_OID` in the root DSE's `supportedCapabilities`.
pub const AD_CAPABILITY: &str = "1.2.840.113556.1.4.800";
/// `LDAP_MATCHING_RULE_IN_CHAIN`.
pub const IN_CHAIN_RULE: &str = "1.2.840.113556.1.4.1941";

/// Groups read at most by one recursive walk (a safety net besides `max_depth`).
const MAX_WALK_READS: usize = 2000;
/// Approver names per group search.
const NAMES_PER_SEARCH: usize = 40;

const USER_ATTRS: &[&str] = &[
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "proxyAddresses",
    "userAccountControl",
    "memberOf",
    "displayName",
    "cn",
];

/// A connection in use and the server it goes to.
struct Live {
    ldap: Ldap,
    server: String,
}

/// The LDAP directory client. Cheap to share behind an `Arc`; operations may run concurrently
/// over the one connection.
pub struct LdapDirectory {
    s: Settings,
    password: SecretString,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: tokio::sync::Mutex<Option<Live>>,
    strategy: tokio::sync::OnceCell<Strategy>,
    users: TtlCache<DirUser>,
    memberships: TtlCache<Membership>,
    group_records: TtlCache<super::approvers::GroupRecord>,
    /// CyberArk Identity role records (`roles_from = "identity"`).
    role_records: TtlCache<super::approvers::RoleRecord>,
}

impl std::fmt::Debug for LdapDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("servers", &self.s.servers())
            .field("bind_dn", &self.s.bind_dn)
            .finish()
    }
}

/// An entry as plain strings: DN and attributes (keys as the server spelled them).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<String>)>,
}

impl Entry {
    /// All values of an attribute, its name compared case-insensitively.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter().cloned())
            .collect()
    }

    pub fn first(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().find(|v| !v.is_empty())
    }

    /// Whether the server sent this attribute with range retrieval (`memberOf;range=0-1499`).
    fn ranged(&self, name: &str) -> bool {
        let prefix = format!("{};range=", name.to_ascii_lowercase());
        self.attrs
            .iter()
            .any(|(k, _)| k.to_ascii_lowercase().starts_with(&prefix))
    }
}

/// Parse a search result entry without `SearchEntry::construct`, which panics on malformed
/// input. `None` for anything that is not a well-formed entry.
pub fn parse_entry(re: ResultEntry) -> Option<Entry> {
    let utf8 = |t: StructureTag| t.expect_primitive().and_then(|b| String::from_utf8(b).ok());
    let mut parts = re.0.match_id(4)?.expect_constructed()?.into_iter();
    let dn = utf8(parts.next()?)?;
    let mut attrs = Vec::new();
    for pa in parts.next()?.expect_constructed()? {
        let mut pa = pa.expect_constructed()?.into_iter();
        let name = utf8(pa.next()?)?;
        let values = pa
            .next()?
            .expect_constructed()?
            .into_iter()
            // Binary values (SIDs, GUIDs) are not used here: drop them.
            .filter_map(utf8)
            .collect();
        attrs.push((name, values));
    }
    Some(Entry { dn, attrs })
}

/// How one attempt of an operation failed.
enum Failure {
    /// The connection is gone (server restart, idle cut-off): reconnect and retry.
    Lost(String),
    Timeout,
    Other(DirectoryError),
}

impl LdapDirectory {
    /// Build the client; nothing is contacted until the first operation.
    pub fn new(settings: Settings, password: SecretString) -> Result<Self, DirectoryError> {
        if password.expose_secret().is_empty() {
            // An empty password makes a simple bind anonymous, which servers accept.
            return Err(DirectoryError::BindRefused {
                server: settings.servers(),
                bind_dn: settings.bind_dn.clone(),
                detail: "the bind password is empty (that would be an anonymous bind)".into(),
            });
        }
        let tls = if settings.urls.iter().any(|u| settings.uses_tls(u)) {
            let cfg = crate::tls::client_config(settings.ca_bundle.as_deref())
                .map_err(|e| DirectoryError::Tls(e.to_string()))?;
            Some(Arc::new(cfg))
        } else {
            None
        };
        Ok(LdapDirectory {
            users: TtlCache::new(settings.cache_ttl),
            memberships: TtlCache::new(settings.cache_ttl),
            group_records: TtlCache::new(settings.cache_ttl),
            role_records: TtlCache::new(settings.cache_ttl),
            s: settings,
            password,
            tls,
            conn: tokio::sync::Mutex::new(None),
            strategy: tokio::sync::OnceCell::new(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.s
    }

    /// Forget cached answers (the next lookups ask the server).
    pub fn clear_cache(&self) {
        self.users.clear();
        self.memberships.clear();
        self.group_records.clear();
        self.role_records.clear();
    }

    /// The cache of vault group records (`directory::check::read_safe_approvers`), with the
    /// directory look-up TTL.
    pub fn group_records(&self) -> &TtlCache<super::approvers::GroupRecord> {
        &self.group_records
    }

    /// The cache of CyberArk Identity role records (`directory::check::resolve_roles`), with
    /// the directory look-up TTL.
    pub fn role_records(&self) -> &TtlCache<super::approvers::RoleRecord> {
        &self.role_records
    }

    /// Unbind and close the connection, if one is open.
    pub async fn close(&self) {
        if let Some(mut live) = self.conn.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), live.ldap.unbind()).await;
        }
    }

    /// Connect and bind to the first server that answers.
    async fn connect(&self) -> Result<Live, DirectoryError> {
        let mut last = None;
        for url in &self.s.urls {
            match self.connect_one(url).await {
                Ok(ldap) => {
                    return Ok(Live {
                        ldap,
                        server: server_name(url),
                    });
                }
                Err(e @ (DirectoryError::Unreachable { .. } | DirectoryError::Timeout { .. })) => {
                    // With one server the caller reports it; with several, say which failed over.
                    if self.s.urls.len() > 1 {
                        log::warn!("{e}; trying the next server");
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(match last {
            Some(e) if self.s.urls.len() == 1 => e,
            Some(e) => DirectoryError::Unreachable {
                server: self.s.servers(),
                detail: format!("no server answered; last: {e}"),
            },
            None => DirectoryError::Unreachable {
                server: self.s.servers(),
                detail: "no server configured".into(),
            },
        })
    }

    async fn connect_one(&self, url: &url::Url) -> Result<Ldap, DirectoryError> {
        let server = server_name(url);
        let secs = self.s.connect_timeout.as_secs();
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.s.connect_timeout);
        if url.scheme() == "ldap" {
            settings = settings.set_starttls(self.s.starttls);
        }
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        log::debug!(
            "directory: connecting to {server}{}",
            if url.scheme() == "ldap" && self.s.starttls {
                " (StartTLS)"
            } else {
                ""
            }
        );
        let (conn, mut ldap) = match LdapConnAsync::from_url_with_settings(settings, url).await {
            Ok(pair) => pair,
            Err(LdapError::Timeout { .. }) => {
                return Err(DirectoryError::Unreachable {
                    server,
                    detail: format!("no connection within {secs}s (TCP, TLS or StartTLS)"),
                });
            }
            Err(e) => {
                return Err(DirectoryError::Unreachable {
                    server,
                    detail: error_text(&e),
                });
            }
        };
        ldap3::drive!(conn);
        let bind = tokio::time::timeout(
            self.s.connect_timeout,
            ldap.simple_bind(&self.s.bind_dn, self.password.expose_secret()),
        )
        .await;
        let res = match bind {
            Err(_) => {
                return Err(DirectoryError::Timeout {
                    server,
                    secs,
                    what: "bind".into(),
                });
            }
            Ok(Err(e)) => {
                return Err(DirectoryError::Unreachable {
                    server,
                    detail: format!("bind failed: {}", error_text(&e)),
                });
            }
            Ok(Ok(res)) => res,
        };
        match res.rc {
            0 => {
                log::debug!("directory: bound to {server} as {}", self.s.bind_dn);
                Ok(ldap)
            }
            49 | 50 | 53 => Err(DirectoryError::BindRefused {
                server,
                bind_dn: self.s.bind_dn.clone(),
                detail: result_text(&res),
            }),
            8 | 13 => Err(DirectoryError::NeedsTls {
                server,
                detail: result_text(&res),
            }),
            10 => Err(DirectoryError::Referral {
                server,
                what: "the bind".into(),
                refs: res.refs.join(" "),
            }),
            _ => Err(DirectoryError::Protocol {
                server,
                what: "the bind".into(),
                detail: result_text(&res),
            }),
        }
    }

    /// A handle on the live connection, connecting first when there is none or it closed.
    async fn handle(&self) -> Result<(Ldap, String), DirectoryError> {
        let mut guard = self.conn.lock().await;
        if let Some(live) = guard.as_mut() {
            if !live.ldap.is_closed() {
                return Ok((live.ldap.clone(), live.server.clone()));
            }
            log::info!(
                "directory: the connection to {} was closed; reconnecting",
                live.server
            );
            *guard = None;
        }
        let live = self.connect().await?;
        let out = (live.ldap.clone(), live.server.clone());
        *guard = Some(live);
        Ok(out)
    }

    /// Forget the stored connection after a failure on it; the next operation reconnects.
    /// (A concurrent operation may already have replaced it: at worst that one reconnects once
    /// more.)
    async fn discard(&self) {
        *self.conn.lock().await = None;
    }

    /// Run one read operation with the op timeout; when the connection turns out to be gone,
    /// reconnect and run it once more. Returns the result and the server that answered.
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<(T, String), DirectoryError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, LdapError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (ldap, server) = self.handle().await?;
            let failure = match tokio::time::timeout(self.s.op_timeout, op(ldap.clone())).await {
                Ok(Ok(v)) => return Ok((v, server)),
                Err(_) => Failure::Timeout,
                Ok(Err(e)) => classify_ldap_error(e, &server, what),
            };
            match failure {
                Failure::Lost(detail) => {
                    self.discard().await;
                    if attempt >= 2 {
                        return Err(DirectoryError::Unreachable {
                            server,
                            detail: format!("connection lost during {what}: {detail}"),
                        });
                    }
                    log::info!(
                        "directory: connection to {server} lost during {what} ({detail}); reconnecting"
                    );
                }
                Failure::Timeout => {
                    self.discard().await;
                    return Err(DirectoryError::Timeout {
                        server,
                        secs: self.s.op_timeout.as_secs(),
                        what: what.into(),
                    });
                }
                Failure::Other(e) => return Err(e),
            }
        }
    }

    /// The strategy in force: the configured one, or for `auto` what the root DSE says.
    pub async fn effective_strategy(&self) -> Result<Strategy, DirectoryError> {
        self.strategy
            .get_or_try_init(|| async {
                let chosen = match self.s.strategy {
                    Strategy::Recursive => Strategy::Recursive,
                    Strategy::Auto if self.is_active_directory().await? => Strategy::InChain,
                    Strategy::Auto => Strategy::Recursive,
                    Strategy::InChain => {
                        if let Ok(false) = self.is_active_directory().await {
                            log::warn!(
                                "directory: membership = \"in_chain\" but {} does not announce Active Directory; \
                                 in-chain checks will find no member there (use \"recursive\")",
                                self.s.servers()
                            );
                        }
                        Strategy::InChain
                    }
                };
                log::debug!("directory: membership strategy {}", chosen.name());
                Ok(chosen)
            })
            .await
            .copied()
    }

    /// Whether the root DSE announces Active Directory.
    pub async fn is_active_directory(&self) -> Result<bool, DirectoryError> {
        let what = "reading the root DSE";
        let (res, server) = self
            .run(what, |mut l| async move {
                l.search(
                    "",
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["supportedCapabilities"],
                )
                .await
            })
            .await?;
        let entries = self.entries(res, &server, what, false)?;
        Ok(entries.iter().any(|e| {
            e.all("supportedCapabilities")
                .iter()
                .any(|c| c.trim() == AD_CAPABILITY)
        }))
    }

    /// Check a search result's code and parse its entries. `size_ok`: rc=4 is acceptable
    /// (the caller asked for a size limit).
    fn entries(
        &self,
        res: ldap3::SearchResult,
        server: &str,
        what: &str,
        size_ok: bool,
    ) -> Result<Vec<Entry>, DirectoryError> {
        let ldap3::SearchResult(raw, result) = res;
        check_rc(&result, server, what, size_ok)?;
        if !result.refs.is_empty() {
            log::debug!(
                "directory: {what}: ignoring continuation references {}",
                result.refs.join(" ")
            );
        }
        raw.into_iter()
            .map(|re| {
                parse_entry(re).ok_or_else(|| DirectoryError::Protocol {
                    server: server.into(),
                    what: what.into(),
                    detail: "the server sent a malformed entry".into(),
                })
            })
            .collect()
    }

    async fn lookup_user(&self, address: &str) -> Result<DirUser, DirectoryError> {
        let addr = check_address(address).map_err(|reason| DirectoryError::BadAddress {
            address: crate::text::printable(address),
            reason,
        })?;
        let filter = self
            .s
            .user_filter
            .replace("{mail}", &ldap_escape(addr.as_str()));
        let what = format!("looking up {addr}");
        let entries = self.search_users(&what, filter).await?;
        match entries.len() {
            0 => Err(DirectoryError::UnknownUser { address: addr }),
            1 => {
                let e = entries
                    .into_iter()
                    .next()
                    .ok_or_else(|| DirectoryError::UnknownUser {
                        address: addr.clone(),
                    })?;
                // The filter excludes disabled accounts; check again in case a custom filter
                // forgot to.
                let uac = e
                    .first("userAccountControl")
                    .and_then(|v| v.trim().parse::<i64>().ok());
                if uac.is_some_and(|v| v & 2 != 0) {
                    log::info!("directory: {} is disabled", e.dn);
                    return Err(DirectoryError::UnknownUser { address: addr });
                }
                if e.ranged("memberOf") {
                    log::warn!(
                        "directory: {} has more memberOf values than one read returns; \
                         only the first range is used",
                        e.dn
                    );
                }
                Ok(user_of(e, self.s.person_attribute.as_deref()))
            }
            n => Err(DirectoryError::Ambiguous {
                address: addr,
                count: n,
            }),
        }
    }

    /// The attributes read for a user: [`USER_ATTRS`] and the person attribute.
    /// The user entries `filter` finds below the base DN, at most two (one is the answer; two say
    /// the filter is ambiguous), with the user attributes.
    async fn search_users(&self, what: &str, filter: String) -> Result<Vec<Entry>, DirectoryError> {
        let base = self.s.base_dn.as_str();
        let attrs = self.user_attrs();
        let (res, server) = self
            .run(what, |mut l| {
                let filter = filter.clone();
                let attrs = attrs.clone();
                async move {
                    l.with_search_options(SearchOptions::new().sizelimit(2))
                        .search(base, Scope::Subtree, &filter, attrs)
                        .await
                }
            })
            .await?;
        self.entries(res, &server, what, true)
    }

    fn user_attrs(&self) -> Vec<String> {
        let mut a: Vec<String> = USER_ATTRS.iter().map(|s| s.to_string()).collect();
        a.extend(self.s.person_attribute.clone());
        a
    }

    /// Every directory user (enabled or not) whose person attribute has `value`: the accounts
    /// of one person (`[directory] person_attribute`). Empty when no attribute is configured.
    /// More than 50 accounts for one value is an error (a shared or default value links
    /// nothing trustworthy).
    pub async fn accounts_of_person(&self, value: &str) -> Result<Vec<DirUser>, DirectoryError> {
        let Some(attr) = self.s.person_attribute.clone() else {
            return Ok(Vec::new());
        };
        let value = value.trim();
        if value.is_empty() {
            return Ok(Vec::new());
        }
        let filter = format!("(&(objectClass=user)({attr}={}))", ldap_escape(value));
        let what = format!(
            "looking up the accounts with {attr} {}",
            crate::text::printable(value)
        );
        let base = self.s.base_dn.as_str();
        let attrs = self.user_attrs();
        let (res, server) = self
            .run(&what, |mut l| {
                let filter = filter.clone();
                let attrs = attrs.clone();
                async move {
                    l.with_search_options(SearchOptions::new().sizelimit(51))
                        .search(base, Scope::Subtree, &filter, attrs)
                        .await
                }
            })
            .await?;
        let entries = self.entries(res, &server, &what, true)?;
        if entries.len() > 50 {
            return Err(DirectoryError::Protocol {
                server,
                what,
                detail: "more than 50 accounts share the value; it cannot name one person".into(),
            });
        }
        Ok(entries
            .into_iter()
            .map(|e| user_of(e, Some(&attr)))
            .collect())
    }

    /// The enabled directory users whose account name is `name` (a PVWA user name such as a
    /// request's `RequestorUserName`): `sAMAccountName` or `userPrincipalName`, `DOMAIN\`
    /// stripped. Empty when none; two at most are read (more than one names nobody).
    pub async fn accounts_named(&self, name: &str) -> Result<Vec<DirUser>, DirectoryError> {
        let Some(name) = super::names::account_name(name) else {
            return Ok(Vec::new());
        };
        let v = ldap_escape(name);
        let filter = format!(
            "(&(objectClass=user)(|(sAMAccountName={v})(userPrincipalName={v}))(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
        );
        let what = format!("looking up the account {}", crate::text::printable(name));
        let entries = self.search_users(&what, filter).await?;
        let attr = self.s.person_attribute.clone();
        Ok(entries
            .into_iter()
            .map(|e| user_of(e, attr.as_deref()))
            .collect())
    }

    /// Find the directory groups answering to each approver name.
    pub async fn resolve_groups(
        &self,
        groups: &[ApproverGroup],
    ) -> Result<Vec<ResolvedGroup>, DirectoryError> {
        let attr = self.s.group_names.attribute().ldap_name();
        let mut found: Vec<Entry> = Vec::new();
        for chunk in groups.chunks(NAMES_PER_SEARCH) {
            let alts: String = chunk
                .iter()
                .map(|g| format!("({attr}={})", ldap_escape(g.name.as_str())))
                .collect();
            let filter = format!("(&{}(|{alts}))", self.s.group_filter);
            let what = "looking up the approver groups";
            let base = self.s.group_base_dn.as_str();
            let (res, server) = self
                .run(what, |mut l| {
                    let filter = filter.clone();
                    async move {
                        l.search(base, Scope::Subtree, &filter, vec![attr, "cn"])
                            .await
                    }
                })
                .await?;
            found.extend(self.entries(res, &server, what, false)?);
        }
        Ok(groups
            .iter()
            .map(|g| {
                // A group the vault names by its DN is that entry and no other of the name.
                let mut dns: Vec<String> = found
                    .iter()
                    .filter(|e| e.all(attr).iter().any(|v| v.eq_ignore_ascii_case(&g.name)))
                    .filter(|e| {
                        g.dn.as_deref()
                            .is_none_or(|dn| normalize_dn(dn) == normalize_dn(&e.dn))
                    })
                    .map(|e| e.dn.clone())
                    .collect();
                dns.dedup_by(|a, b| normalize_dn(a) == normalize_dn(b));
                let status = match dns.len() {
                    0 => "not_found",
                    1 => "found",
                    _ => "ambiguous",
                };
                if status != "found" {
                    log::warn!(
                        "directory: approver group {} ({}): {status}; it grants nothing",
                        g.name,
                        g.source
                    );
                }
                ResolvedGroup {
                    name: g.name.clone(),
                    source: g.source.clone(),
                    status,
                    dns,
                }
            })
            .collect())
    }

    /// Direct groups of an entry (`memberOf`). `None` when the entry cannot be read here
    /// (no such object, or it lives in another naming context): the walk does not go on there.
    async fn member_of(&self, dn: &str) -> Result<Option<Vec<String>>, DirectoryError> {
        let what = format!("reading the groups of {dn}");
        let (res, server) = self
            .run(&what, |mut l| async move {
                l.search(dn, Scope::Base, "(objectClass=*)", vec!["memberOf"])
                    .await
            })
            .await?;
        if matches!(res.1.rc, 10 | 32) {
            log::warn!(
                "directory: {dn} cannot be read at {server} ({}); not followed",
                result_text(&res.1)
            );
            return Ok(None);
        }
        let entries = self.entries(res, &server, &what, false)?;
        if let Some(e) = entries.first()
            && e.ranged("memberOf")
        {
            log::warn!("directory: {dn} has more memberOf values than one read returns");
        }
        Ok(Some(
            entries.iter().flat_map(|e| e.all("memberOf")).collect(),
        ))
    }

    /// Breadth-first walk up `memberOf` from the user until one of `targets` (normalised DN ->
    /// index) is reached: cycle-safe, at most `max_depth` levels. Returns the target index and
    /// the DN path, and whether the depth limit cut the walk short.
    async fn walk(
        &self,
        user: &DirUser,
        targets: &HashMap<String, usize>,
    ) -> Result<(Option<(usize, Vec<String>)>, bool), DirectoryError> {
        // nodes[i] = (dn, parent index); node 0 is the user.
        let mut nodes: Vec<(String, usize)> = vec![(user.dn.clone(), 0)];
        let mut visited: HashSet<String> = HashSet::from([normalize_dn(&user.dn)]);
        let mut queue: VecDeque<(usize, u32)> = VecDeque::new();
        let mut depth_limited = false;
        let path_to = |nodes: &Vec<(String, usize)>, mut i: usize| {
            let mut path = vec![nodes[i].0.clone()];
            while i != 0 {
                i = nodes[i].1;
                path.push(nodes[i].0.clone());
            }
            path.reverse();
            path
        };
        let mut parents: Vec<String> = user.member_of.clone();
        let mut parent_node = 0usize;
        let mut depth = 1u32;
        let mut reads = 0usize;
        loop {
            for g in parents {
                let key = normalize_dn(&g);
                if !visited.insert(key.clone()) {
                    continue;
                }
                nodes.push((g, parent_node));
                let idx = nodes.len() - 1;
                if let Some(t) = targets.get(&key) {
                    return Ok((Some((*t, path_to(&nodes, idx))), depth_limited));
                }
                queue.push_back((idx, depth));
            }
            let Some((idx, d)) = queue.pop_front() else {
                return Ok((None, depth_limited));
            };
            if d >= self.s.max_depth {
                depth_limited = true;
                parents = Vec::new();
                parent_node = idx;
                continue;
            }
            reads += 1;
            if reads > MAX_WALK_READS {
                log::warn!(
                    "directory: group walk from {} stopped after {MAX_WALK_READS} reads",
                    user.dn
                );
                return Ok((None, true));
            }
            let dn = nodes[idx].0.clone();
            parents = self.member_of(&dn).await?.unwrap_or_default();
            parent_node = idx;
            depth = d + 1;
        }
    }

    /// Server-side transitive membership test (AD). On other servers it finds nothing.
    async fn in_chain(&self, user_dn: &str, group_dn: &str) -> Result<bool, DirectoryError> {
        let filter = format!("(memberOf:{IN_CHAIN_RULE}:={})", ldap_escape(group_dn));
        let what = format!("checking membership of {user_dn} in {group_dn}");
        let (res, server) = self
            .run(&what, |mut l| {
                let filter = filter.clone();
                async move { l.search(user_dn, Scope::Base, &filter, vec!["1.1"]).await }
            })
            .await?;
        Ok(!self.entries(res, &server, &what, false)?.is_empty())
    }

    async fn compute_membership(
        &self,
        user: &DirUser,
        groups: &[ApproverGroup],
    ) -> Result<Membership, DirectoryError> {
        let strategy = self.effective_strategy().await?;
        let resolved = self.resolve_groups(groups).await?;
        let mut targets: HashMap<String, usize> = HashMap::new();
        for (i, r) in resolved.iter().enumerate() {
            if r.status == "found" {
                targets.insert(normalize_dn(&r.dns[0]), i);
            }
        }
        let mut m = Membership {
            grant: None,
            groups: resolved.clone(),
            strategy,
            depth_limited: false,
        };
        if targets.is_empty() {
            return Ok(m);
        }
        let grant = |i: usize, path: Vec<String>, complete: bool| {
            let r = &resolved[i];
            let mut names: Vec<String> = vec![user.short_name()];
            names.extend(path.iter().skip(1).map(|dn| rdn_value(dn)));
            Grant {
                group: r.name.clone(),
                source: r.source.clone(),
                group_dn: r.dns[0].clone(),
                path,
                path_names: names,
                path_complete: complete,
                strategy,
            }
        };
        match strategy {
            Strategy::InChain => {
                let mut order: Vec<(&String, &usize)> = targets.iter().collect();
                order.sort_by_key(|(_, i)| **i);
                for (_, &i) in order {
                    let dn = &resolved[i].dns[0];
                    if self.in_chain(&user.dn, dn).await? {
                        // The server said yes; list the nesting for people, best effort.
                        let only = HashMap::from([(normalize_dn(dn), i)]);
                        let g = match self.walk(user, &only).await {
                            Ok((Some((_, path)), _)) => grant(i, path, true),
                            _ => grant(i, vec![user.dn.clone(), dn.clone()], false),
                        };
                        m.grant = Some(g);
                        return Ok(m);
                    }
                }
            }
            Strategy::Recursive | Strategy::Auto => {
                let (found, limited) = self.walk(user, &targets).await?;
                m.depth_limited = limited;
                if let Some((i, path)) = found {
                    m.grant = Some(grant(i, path, true));
                }
            }
        }
        Ok(m)
    }
}

impl Directory for LdapDirectory {
    fn server(&self) -> String {
        self.s.servers()
    }

    async fn find_user(&self, address: &str) -> Result<DirUser, DirectoryError> {
        let key = address.trim().to_lowercase();
        if let Some(u) = self.users.get(&key) {
            log::debug!("directory: {key} from cache");
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
            .map(|g| match &g.dn {
                Some(dn) => format!("{}\t{}", g.name.to_lowercase(), normalize_dn(dn)),
                None => g.name.to_lowercase(),
            })
            .collect();
        names.sort();
        let key = format!("{}\n{}", normalize_dn(&user.dn), names.join("\n"));
        if let Some(m) = self.memberships.get(&key) {
            log::debug!("directory: membership of {} from cache", user.dn);
            return Ok(m);
        }
        let m = self.compute_membership(user, groups).await?;
        self.memberships.put(key, m.clone());
        Ok(m)
    }
}

fn user_of(e: Entry, person_attribute: Option<&str>) -> DirUser {
    let aliases = e
        .all("proxyAddresses")
        .into_iter()
        .filter_map(|p| {
            let (kind, addr) = p.split_once(':')?;
            (kind.eq_ignore_ascii_case("smtp") && !addr.trim().is_empty())
                .then(|| addr.trim().to_string())
        })
        .fold(Vec::<String>::new(), |mut acc, a| {
            if !acc.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                acc.push(a);
            }
            acc
        });
    DirUser {
        sam_account_name: e.first("sAMAccountName"),
        user_principal_name: e.first("userPrincipalName"),
        mail: e.first("mail"),
        aliases,
        display_name: e.first("displayName").or_else(|| e.first("cn")),
        member_of: e.all("memberOf"),
        person: person_attribute.and_then(|a| e.first(a)),
        dn: e.dn,
    }
}

/// Sort an ldap3 error into "connection gone" or a final error.
fn classify_ldap_error(e: LdapError, server: &str, what: &str) -> Failure {
    match e {
        LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::EndOfStream
        | LdapError::Io { .. } => Failure::Lost(error_text(&e)),
        LdapError::Timeout { .. } => Failure::Timeout,
        LdapError::LdapResult { result } => match check_rc(&result, server, what, false) {
            Err(e) => Failure::Other(e),
            Ok(()) => Failure::Other(DirectoryError::Protocol {
                server: server.into(),
                what: what.into(),
                detail: result_text(&result),
            }),
        },
        LdapError::FilterParsing => Failure::Other(DirectoryError::Protocol {
            server: server.into(),
            what: what.into(),
            detail: "the search filter does not parse (check directory.user_filter / group_filter)"
                .into(),
        }),
        other => Failure::Other(DirectoryError::Protocol {
            server: server.into(),
            what: what.into(),
            detail: error_text(&other),
        }),
    }
}

/// Map a result code to an error; 0 (and 4 when `size_ok`) pass.
fn check_rc(r: &LdapResult, server: &str, what: &str, size_ok: bool) -> Result<(), DirectoryError> {
    match r.rc {
        0 => Ok(()),
        4 if size_ok => Ok(()),
        10 => Err(DirectoryError::Referral {
            server: server.into(),
            what: what.into(),
            refs: if r.refs.is_empty() {
                r.matched.clone()
            } else {
                r.refs.join(" ")
            },
        }),
        8 | 13 => Err(DirectoryError::NeedsTls {
            server: server.into(),
            detail: result_text(r),
        }),
        51 | 52 => Err(DirectoryError::Unreachable {
            server: server.into(),
            detail: format!("{what}: {}", result_text(r)),
        }),
        _ => Err(DirectoryError::Protocol {
            server: server.into(),
            what: what.into(),
            detail: result_text(r),
        }),
    }
}

/// `rc=49 (invalidCredentials): text` without ldap3's long prefix.
fn result_text(r: &LdapResult) -> String {
    let text = r.text.trim();
    let base = r.to_string();
    if text.is_empty() || base.contains(text) {
        base
    } else {
        format!("{base}: {text}")
    }
}

fn error_text(e: &LdapError) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::{PL, StructureTag, TagClass};

    fn prim(id: u64, b: &[u8]) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id,
            payload: PL::P(b.to_vec()),
        }
    }
    fn cons(id: u64, inner: Vec<StructureTag>) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id,
            payload: PL::C(inner),
        }
    }

    #[test]
    fn malformed_entries_are_none_not_a_panic() {
        let good = cons(
            4,
            vec![
                prim(4, b"cn=a,dc=x"),
                cons(
                    16,
                    vec![cons(
                        16,
                        vec![
                            prim(4, b"memberOf"),
                            cons(17, vec![prim(4, b"cn=g,dc=x"), prim(4, &[0xff, 0xfe])]),
                        ],
                    )],
                ),
            ],
        );
        let e = parse_entry(ResultEntry::new(good)).expect("parses");
        assert_eq!(e.dn, "cn=a,dc=x");
        assert_eq!(e.all("MEMBEROF"), vec!["cn=g,dc=x"]);
        for bad in [
            cons(3, vec![]),
            cons(4, vec![]),
            cons(4, vec![prim(4, &[0xff]), cons(16, vec![])]),
            cons(4, vec![prim(4, b"cn=a"), prim(4, b"not constructed")]),
            cons(4, vec![prim(4, b"cn=a"), cons(16, vec![prim(4, b"x")])]),
            prim(4, b"x"),
        ] {
            assert!(parse_entry(ResultEntry::new(bad)).is_none());
        }
    }

    #[test]
    fn aliases_keep_only_smtp_addresses() {
        let e = Entry {
            dn: "cn=a".into(),
            attrs: vec![(
                "proxyaddresses".into(),
                vec![
                    "SMTP:a@x.test".into(),
                    "smtp:A@x.test".into(),
                    "smtp:alias@x.test".into(),
                    "X500:/o=Org/cn=a".into(),
                    "sip:a@x.test".into(),
                ],
            )],
        };
        assert_eq!(user_of(e, None).aliases, vec!["a@x.test", "alias@x.test"]);
    }

    #[test]
    fn result_codes() {
        let r = |rc: u32| LdapResult {
            rc,
            matched: String::new(),
            text: "t".into(),
            refs: vec!["ldap://far/".into()],
            ctrls: vec![],
        };
        assert!(check_rc(&r(0), "s", "w", false).is_ok());
        assert!(check_rc(&r(4), "s", "w", true).is_ok());
        assert!(check_rc(&r(4), "s", "w", false).is_err());
        assert!(matches!(
            check_rc(&r(10), "s", "w", false),
            Err(DirectoryError::Referral { .. })
        ));
        assert!(matches!(
            check_rc(&r(13), "s", "w", false),
            Err(DirectoryError::NeedsTls { .. })
        ));
    }
}

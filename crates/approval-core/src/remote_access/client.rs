//! The `v2-edge` REST client: endpoints from the data centre (or overrides), bearer token from
//! [`TokenSource`], retries, paging, and error bodies in the three observed shapes.
//!
//! Retries: 429 always (the call was not carried out) and honouring `Retry-After`; 5xx and
//! timeouts only for calls that can be repeated safely (GET, PUT status, DELETE). Creating an
//! invitation is never repeated once it may have reached the server: a 5xx or a lost answer
//! there is "outcome unknown". Other 4xx are final. A 401 drops the token and the call is tried
//! once more with a fresh one.

use std::collections::HashSet;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::keyfile::{self, Credential, ServiceAccountKey};
use super::model::{
    Application, Group, Invitation, InvitationSummary, Keyed, NewInvitation, Site, Vendor,
    VendorStatus, VendorSummary, check_id,
};
use super::token::{self, TokenSettings, TokenSource};
use super::{RemoteAccessConfig, RemoteAccessError};
use crate::http::{self, Backoff, HttpSettings};

/// The largest Remote Access API answer read.
const MAX_BODY: http::BodyCap = http::BodyCap::fixed("Remote Access", 4 << 20);

/// The three URLs of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `https://auth.<dc>/auth/realms/serviceaccounts`: the assertion's audience.
    pub realm: url::Url,
    pub token: url::Url,
    /// `https://api.<dc>/v2-edge/`
    pub api: url::Url,
}

/// Work out the endpoints from the configuration and the key file's discovery URL.
pub fn endpoints(
    cfg: &RemoteAccessConfig,
    key: &ServiceAccountKey,
) -> Result<Endpoints, RemoteAccessError> {
    let setup = |key: &str, message: String| RemoteAccessError::Setup {
        key: key.to_string(),
        message,
    };
    let key_dc = match &key.discovery_url {
        Some(u) => match keyfile::datacenter_of_discovery(u) {
            Some(dc) => Some(dc),
            None if cfg.datacenter.is_some()
                || (cfg.auth_url.is_some() && cfg.api_url.is_some()) =>
            {
                None
            }
            None => {
                return Err(setup(
                    "remote_access.datacenter",
                    format!(
                        "the key file's discovery URL `{}` names no known data centre; set datacenter (or auth_url and api_url)",
                        crate::text::printable(u)
                    ),
                ));
            }
        },
        None => None,
    };
    let cfg_dc = cfg.datacenter.as_deref().and_then(keyfile::datacenter);
    if let (Some(a), Some(b)) = (cfg_dc, key_dc)
        && a != b
        && cfg.auth_url.is_none()
    {
        return Err(setup(
            "remote_access.datacenter",
            format!("is {a}, but the key file was issued for {b}"),
        ));
    }
    let dc = cfg_dc.or(key_dc);
    let parse = |key: &str, s: &str| -> Result<url::Url, RemoteAccessError> {
        crate::tls::check_url(s).map_err(|m| setup(key, m))
    };
    let realm = match &cfg.auth_url {
        Some(u) => parse(
            "remote_access.auth_url",
            &realm_url(u).map_err(|m| setup("remote_access.auth_url", m))?,
        )?,
        None => match dc {
            Some(dc) => parse(
                "remote_access.datacenter",
                &format!("https://auth.{dc}/{}", token::REALM_PATH),
            )?,
            None => {
                return Err(setup(
                    "remote_access.datacenter",
                    "is not set and the key file names no discovery URL; set datacenter (e.g. \"eu\")".into(),
                ));
            }
        },
    };
    let token = parse(
        "remote_access.auth_url",
        &format!(
            "{}/{}",
            realm.as_str().trim_end_matches('/'),
            token::TOKEN_PATH
        ),
    )?;
    let api_base = match &cfg.api_url {
        Some(u) => parse("remote_access.api_url", u)?
            .as_str()
            .trim_end_matches('/')
            .to_string(),
        None => match dc {
            Some(dc) => format!("https://api.{dc}"),
            None => {
                return Err(setup(
                    "remote_access.api_url",
                    "is not set and no data centre is known; set datacenter or api_url".into(),
                ));
            }
        },
    };
    let api = parse(
        "remote_access.api_url",
        &format!("{api_base}/{}/", cfg.api_version),
    )?;
    Ok(Endpoints { realm, token, api })
}

/// The realm URL an `auth_url` names. Accepted: the token service base (`https://auth.<dc>`,
/// or a proxy's base with a path prefix), Keycloak's base with its `/auth` context path, the
/// realm URL (`…/auth/realms/serviceaccounts`, the key file's discovery URL), its discovery
/// document (`…/.well-known/openid-configuration`) and its token URL
/// (`…/protocol/openid-connect/token`, the "Access token url" of integration guides). Anything
/// else below `/realms/` is refused: it could only end in a 404 from the token service.
pub fn realm_url(auth_url: &str) -> Result<String, String> {
    let url = crate::tls::check_url(auth_url)?;
    let shown = crate::text::printable(auth_url);
    let expected = "give the token service base (https://auth.<dc>), the realm URL \
         (https://auth.<dc>/auth/realms/serviceaccounts) or its token URL \
         (…/auth/realms/serviceaccounts/protocol/openid-connect/token)";
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{shown}` carries a query or fragment; {expected}"));
    }
    let mut base = url.clone();
    base.set_path("");
    let origin = base.as_str().trim_end_matches('/').to_string();
    let path = url.path().trim_end_matches('/');
    let path = path
        .strip_suffix(&format!("/{}", token::TOKEN_PATH))
        .or_else(|| path.strip_suffix("/.well-known/openid-configuration"))
        .unwrap_or(path);
    match path.split_once("/realms/") {
        None if path.ends_with("/auth") => Ok(format!("{origin}{path}/realms/serviceaccounts")),
        None => Ok(format!("{origin}{path}/{}", token::REALM_PATH)),
        Some((_, "serviceaccounts")) => Ok(format!("{origin}{path}")),
        Some((_, rest)) => Err(format!(
            "`{shown}` does not name the service-account realm (`/realms/{}`); {expected}",
            crate::text::printable(rest)
        )),
    }
}

/// Whether a call may be repeated after it may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Idempotent,
    NotAfterSend,
}

/// What a revoke or delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    Done,
    AlreadyGone,
}

/// A search: `searchIn` and `searchString`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub field: String,
    pub text: String,
}

/// `searchIn` values of invitations (reference §6.2) and vendors (§7.1: no EMAIL).
pub const INVITATION_SEARCH_FIELDS: &[&str] =
    &["ALL", "FULLNAME", "COMPANY", "PHONE", "EMAIL", "GROUPS"];
pub const VENDOR_SEARCH_FIELDS: &[&str] = &["ALL", "GROUPS", "COMPANY", "FULLNAME"];

/// The Remote Access API of one tenant.
pub struct RemoteAccess {
    http: reqwest::Client,
    endpoints: Endpoints,
    tokens: TokenSource,
    backoff: Backoff,
    max_retry_after: Duration,
    page_size: u32,
    timeout_secs: u64,
}

impl std::fmt::Debug for RemoteAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAccess")
            .field("api", &self.endpoints.api.as_str())
            .field("client_id", &self.tokens.client_id())
            .finish()
    }
}

impl RemoteAccess {
    /// Build from a validated `[remote_access]` (`Loaded::remote_access`): resolve the key file
    /// reference (through `vault` when it names one), parse it, set up the client.
    pub async fn connect(
        cfg: &RemoteAccessConfig,
        vault: Option<&crate::secret::vault::VaultConfig>,
    ) -> Result<Self, RemoteAccessError> {
        let resolver = crate::secret::Resolver::new(vault)?;
        let text = resolver.resolve(&cfg.key_file).await;
        resolver.close().await;
        let key = keyfile::parse(&cfg.key_file.to_string(), &text?)?;
        Self::new(cfg, key)
    }

    /// Build from a validated section and a parsed key file.
    pub fn new(
        cfg: &RemoteAccessConfig,
        key: ServiceAccountKey,
    ) -> Result<Self, RemoteAccessError> {
        let endpoints = endpoints(cfg, &key)?;
        let client_id = match &key.credential {
            Credential::PrivateKey(_) => {
                let sa = match (&cfg.service_account_id, &key.service_account_id) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(RemoteAccessError::Setup {
                            key: "remote_access.service_account_id".into(),
                            message: "differs from the key file's serviceAccountId".into(),
                        });
                    }
                    (Some(a), _) => a.clone(),
                    (None, Some(b)) => b.clone(),
                    (None, None) => {
                        return Err(RemoteAccessError::Setup {
                            key: "remote_access.service_account_id".into(),
                            message: "is not set and the key file has no serviceAccountId".into(),
                        });
                    }
                };
                token::client_id(&cfg.tenant_id, &sa)
            }
            Credential::ClientSecret { client_id, .. } => client_id.clone(),
        };
        let settings = HttpSettings {
            ca_bundle: cfg.ca_bundle.clone(),
            connect_timeout: Duration::from_secs(cfg.connect_timeout_secs),
            request_timeout: Duration::from_secs(cfg.request_timeout_secs),
            ..HttpSettings::default()
        };
        let http = http::client(&settings, None)?;
        let backoff = Backoff::new(cfg.retries, cfg.backoff_ms);
        let max_retry_after = Duration::from_secs(cfg.max_retry_after_secs);
        let tokens = TokenSource::new(
            http.clone(),
            TokenSettings {
                token_url: endpoints.token.clone(),
                audience: endpoints.realm.as_str().trim_end_matches('/').to_string(),
                client_id,
                credential: key.credential,
                backoff,
                max_retry_after,
                renew_margin: Duration::from_secs(cfg.token_renew_secs),
                timeout_secs: cfg.request_timeout_secs,
            },
        );
        Ok(RemoteAccess {
            http,
            endpoints,
            tokens,
            backoff,
            max_retry_after,
            page_size: cfg.page_size,
            timeout_secs: cfg.request_timeout_secs,
        })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        what: &str,
        retry: Retry,
    ) -> Result<(u16, String), RemoteAccessError> {
        let mut url = self
            .endpoints
            .api
            .join(path)
            .map_err(|e| RemoteAccessError::Input(format!("{what}: bad path: {e}")))?;
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        let mut attempt: u32 = 0;
        let mut renewed = false;
        loop {
            let (token, generation) = self.tokens.get().await?;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {}", token.expose_secret()),
                )
                .header(reqwest::header::ACCEPT, "application/json, text/plain, */*");
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.to_string());
            }
            log::debug!("Remote Access {method} {}", url.path());
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 401 && !renewed {
                        renewed = true;
                        self.tokens.invalidate(generation).await;
                        log::info!("Remote Access {what}: 401; trying once more with a new token");
                        continue;
                    }
                    let transient = status == 429 || (status >= 500 && retry == Retry::Idempotent);
                    if transient && attempt < self.backoff.retries {
                        attempt += 1;
                        let d = match http::retry_after(resp.headers()) {
                            Some(d) => d.min(self.max_retry_after),
                            None => self.backoff.delay(attempt),
                        };
                        log::warn!("Remote Access {what}: {status}; retry {attempt} in {d:?}");
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    let text = match http::read_capped_text(resp, MAX_BODY).await {
                        Ok(mut t) => std::mem::take(&mut *t),
                        Err(too_large @ http::BodyError::TooLarge(_)) => {
                            return Err(RemoteAccessError::Protocol {
                                what: what.into(),
                                detail: too_large.to_string(),
                            });
                        }
                        Err(http::BodyError::Transport(e)) if retry == Retry::NotAfterSend => {
                            return Err(RemoteAccessError::OutcomeUnknown {
                                what: what.into(),
                                detail: http::error_chain(&e),
                            });
                        }
                        Err(http::BodyError::Transport(e)) => {
                            return Err(self.transport_error(e, what));
                        }
                    };
                    log::debug!("Remote Access {what}: {status}");
                    if status == 429 {
                        return Err(RemoteAccessError::RateLimited {
                            what: what.into(),
                            attempts: attempt + 1,
                            detail: error_detail(&text),
                        });
                    }
                    return Ok((status, text));
                }
                // Not connected: nothing was sent, so any call may be tried again.
                Err(e) if e.is_connect() && attempt < self.backoff.retries => {
                    attempt += 1;
                    let d = self.backoff.delay(attempt);
                    log::warn!(
                        "Remote Access {what}: {}; retry {attempt} in {d:?}",
                        http::error_chain(&e)
                    );
                    tokio::time::sleep(d).await;
                }
                Err(e)
                    if e.is_timeout()
                        && retry == Retry::Idempotent
                        && attempt < self.backoff.retries =>
                {
                    attempt += 1;
                    let d = self.backoff.delay(attempt);
                    log::warn!("Remote Access {what}: timed out; retry {attempt} in {d:?}");
                    tokio::time::sleep(d).await;
                }
                Err(e) if retry == Retry::NotAfterSend && !e.is_connect() => {
                    return Err(RemoteAccessError::OutcomeUnknown {
                        what: what.into(),
                        detail: http::error_chain(&e),
                    });
                }
                Err(e) => return Err(self.transport_error(e, what)),
            }
        }
    }

    fn transport_error(&self, e: reqwest::Error, what: &str) -> RemoteAccessError {
        let url = self.endpoints.api.to_string();
        if e.is_timeout() {
            RemoteAccessError::Timeout {
                service: "API",
                url,
                secs: self.timeout_secs,
                what: what.into(),
            }
        } else {
            RemoteAccessError::Unreachable {
                service: "API",
                url,
                detail: http::error_chain(&e),
            }
        }
    }

    fn fail(&self, what: &str, status: u16, text: &str) -> RemoteAccessError {
        let detail = error_detail(text);
        match status {
            401 => RemoteAccessError::Unauthorized { what: what.into() },
            403 => RemoteAccessError::Forbidden {
                what: what.into(),
                detail,
            },
            404 => RemoteAccessError::NotFound {
                what: what.into(),
                detail,
            },
            409 => RemoteAccessError::Conflict {
                what: what.into(),
                detail,
            },
            _ => RemoteAccessError::Api {
                what: what.into(),
                status,
                detail,
            },
        }
    }

    fn parse<T: DeserializeOwned>(&self, what: &str, text: &str) -> Result<T, RemoteAccessError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| RemoteAccessError::Protocol {
            what: what.into(),
            detail: format!("at `{}`: {}", e.path(), e.inner()),
        })
    }

    async fn get_one<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<T, RemoteAccessError> {
        let (status, text) = self
            .call(
                reqwest::Method::GET,
                path,
                &[],
                None,
                what,
                Retry::Idempotent,
            )
            .await?;
        if status != 200 {
            return Err(self.fail(what, status, &text));
        }
        self.parse(what, &text)
    }

    /// Every item of a list, page by page: until `totalCount`, an empty page or a repeated page.
    async fn list<T: DeserializeOwned + Keyed>(
        &self,
        path: &str,
        items_key: &str,
        search: Option<&Search>,
        what: &str,
    ) -> Result<Vec<T>, RemoteAccessError> {
        let limit = self.page_size;
        let mut out: Vec<T> = Vec::new();
        let mut keys: HashSet<String> = HashSet::new();
        let mut offset: u64 = 0;
        for _ in 0..1000 {
            let mut q: Vec<(&str, String)> =
                vec![("offset", offset.to_string()), ("limit", limit.to_string())];
            if let Some(s) = search {
                q.push(("searchIn", s.field.clone()));
                q.push(("searchString", s.text.clone()));
            }
            let (status, text) = self
                .call(
                    reqwest::Method::GET,
                    path,
                    &q,
                    None,
                    what,
                    Retry::Idempotent,
                )
                .await?;
            if status != 200 {
                return Err(self.fail(what, status, &text));
            }
            let page: Value = self.parse(what, &text)?;
            let total = page.get("totalCount").and_then(Value::as_u64);
            let items = match page.get(items_key) {
                Some(Value::Array(a)) => a.clone(),
                Some(Value::Null) | None => Vec::new(),
                Some(_) => {
                    return Err(RemoteAccessError::Protocol {
                        what: what.into(),
                        detail: format!("`{items_key}` is not a list"),
                    });
                }
            };
            let items: Vec<T> = self.parse(what, &Value::Array(items).to_string())?;
            let page_keys: Vec<Option<&str>> = items.iter().map(Keyed::key).collect();
            let step = page_step(&keys, &page_keys, offset, total, limit);
            if step.repeated {
                log::warn!("Remote Access {what}: the server sent the same page again; stopping");
            }
            if step.keep {
                keys.extend(page_keys.iter().flatten().map(|k| k.to_string()));
                out.extend(items);
            }
            match step.next {
                Some(next) => offset = next,
                None => return Ok(out),
            }
        }
        Err(RemoteAccessError::Protocol {
            what: what.into(),
            detail: "paging did not end after 1000 pages".into(),
        })
    }

    /// Get a token now (setup check). Returns its lifetime in seconds.
    pub async fn check(&self) -> Result<u64, RemoteAccessError> {
        Ok(self.tokens.fetch().await?.expires_in)
    }

    /// `GET sites`
    pub async fn sites(&self) -> Result<Vec<Site>, RemoteAccessError> {
        self.list("sites", "sites", None, "list sites").await
    }

    /// `GET sites/{siteId}/applications`
    pub async fn applications(&self, site_id: &str) -> Result<Vec<Application>, RemoteAccessError> {
        let id = check_id(site_id)?;
        self.list(
            &format!("sites/{id}/applications"),
            "applications",
            None,
            &format!("list applications of site {id}"),
        )
        .await
    }

    /// `GET groups`
    pub async fn groups(&self, search: Option<&Search>) -> Result<Vec<Group>, RemoteAccessError> {
        self.list("groups", "groups", search, "list groups").await
    }

    /// `GET invitations/vendor-invitations/`
    pub async fn invitations(
        &self,
        search: Option<&Search>,
    ) -> Result<Vec<InvitationSummary>, RemoteAccessError> {
        self.list(
            "invitations/vendor-invitations/",
            "invitations",
            search,
            "list invitations",
        )
        .await
    }

    /// `GET invitations/vendor-invitations/{id}`
    pub async fn invitation(&self, id: &str) -> Result<Invitation, RemoteAccessError> {
        let id = check_id(id)?;
        self.get_one(
            &format!("invitations/vendor-invitations/{id}"),
            &format!("invitation {id}"),
        )
        .await
    }

    /// `POST invitations/vendor-invitations`: the new invitation's ID. Never repeated once sent.
    pub async fn create_invitation(
        &self,
        body: &NewInvitation,
    ) -> Result<String, RemoteAccessError> {
        let what = format!("invite {}", crate::text::printable(&body.email_address));
        let v = serde_json::to_value(body).map_err(|e| RemoteAccessError::Input(e.to_string()))?;
        let (status, text) = self
            .call(
                reqwest::Method::POST,
                "invitations/vendor-invitations",
                &[],
                Some(&v),
                &what,
                Retry::NotAfterSend,
            )
            .await?;
        match status {
            200 | 201 => super::model::parse_created_id(&text).ok_or_else(|| {
                RemoteAccessError::OutcomeUnknown {
                    what: what.clone(),
                    detail: format!(
                        "the server answered {status} without a readable invitation ID ({})",
                        http::body_excerpt(&text, 80)
                    ),
                }
            }),
            s if s >= 500 => Err(RemoteAccessError::OutcomeUnknown {
                what,
                detail: format!("the server answered {s}: {}", error_detail(&text)),
            }),
            s => Err(self.fail(&what, s, &text)),
        }
    }

    /// `DELETE invitations/vendor-invitations/{id}`; 404 counts as already gone (P7).
    pub async fn revoke_invitation(&self, id: &str) -> Result<Gone, RemoteAccessError> {
        let id = check_id(id)?;
        self.delete(
            &format!("invitations/vendor-invitations/{id}"),
            &format!("revoke invitation {id}"),
        )
        .await
    }

    /// `GET vendors`
    pub async fn vendors(
        &self,
        search: Option<&Search>,
    ) -> Result<Vec<VendorSummary>, RemoteAccessError> {
        self.list("vendors", "vendors", search, "list vendors")
            .await
    }

    /// `GET vendors/{id}`
    pub async fn vendor(&self, id: &str) -> Result<Vendor, RemoteAccessError> {
        let id = check_id(id)?;
        self.get_one(&format!("vendors/{id}"), &format!("vendor {id}"))
            .await
    }

    /// `PUT vendors/{id}/status` with a JSON string body.
    pub async fn set_vendor_status(
        &self,
        id: &str,
        status: VendorStatus,
    ) -> Result<(), RemoteAccessError> {
        let id = check_id(id)?;
        let what = format!("set vendor {id} {}", status.as_str());
        let body = Value::String(status.as_str().into());
        let (s, text) = self
            .call(
                reqwest::Method::PUT,
                &format!("vendors/{id}/status"),
                &[],
                Some(&body),
                &what,
                Retry::Idempotent,
            )
            .await?;
        if (200..300).contains(&s) {
            Ok(())
        } else {
            Err(self.fail(&what, s, &text))
        }
    }

    /// `DELETE vendors/{id}`; 404 counts as already gone.
    pub async fn delete_vendor(&self, id: &str) -> Result<Gone, RemoteAccessError> {
        let id = check_id(id)?;
        self.delete(&format!("vendors/{id}"), &format!("delete vendor {id}"))
            .await
    }

    async fn delete(&self, path: &str, what: &str) -> Result<Gone, RemoteAccessError> {
        let (s, text) = self
            .call(
                reqwest::Method::DELETE,
                path,
                &[],
                None,
                what,
                Retry::Idempotent,
            )
            .await?;
        match s {
            200..=299 => Ok(Gone::Done),
            404 => Ok(Gone::AlreadyGone),
            _ => Err(self.fail(what, s, &text)),
        }
    }
}

/// One step of paging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageStep {
    /// Keep this page's items.
    pub keep: bool,
    /// The server sent a page already seen (it ignores `offset`).
    pub repeated: bool,
    /// The next offset, or `None` when done.
    pub next: Option<u64>,
}

/// Decide what to do with a page: stop on an empty page, on a page whose first item was seen
/// before, or when `totalCount` is reached (or, without one, on a short page).
pub(crate) fn page_step(
    seen: &HashSet<String>,
    page: &[Option<&str>],
    offset: u64,
    total: Option<u64>,
    limit: u32,
) -> PageStep {
    if page.is_empty() {
        return PageStep {
            keep: false,
            repeated: false,
            next: None,
        };
    }
    if page[0].is_some_and(|k| seen.contains(k)) {
        return PageStep {
            keep: false,
            repeated: true,
            next: None,
        };
    }
    let next = offset + page.len() as u64;
    let done = match total {
        Some(t) => next >= t,
        None => (page.len() as u64) < limit as u64,
    };
    PageStep {
        keep: true,
        repeated: false,
        next: (!done).then_some(next),
    }
}

/// A readable detail from an error body in any of the three shapes (reference §5): Spring
/// ProblemDetail, Spring default, or a bare JSON string; HTML reduced; capped.
pub fn error_detail(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => http::body_excerpt(&s, 300),
        Ok(Value::Object(o)) => {
            let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
            let msg = match (s("title"), s("detail"), s("error"), s("message")) {
                (Some(t), Some(d), _, _) => format!("{t}: {d}"),
                (_, Some(d), _, _) => d,
                (_, _, Some(e), Some(m)) if !m.is_empty() => format!("{e}: {m}"),
                (_, _, Some(e), _) => match s("path") {
                    Some(p) => format!("{e} ({p})"),
                    None => e,
                },
                (Some(t), None, None, _) => t,
                (None, None, None, Some(m)) => m,
                _ => text.to_string(),
            };
            http::body_excerpt(&msg, 300)
        }
        _ => {
            let x = http::body_excerpt(text, 200);
            if x.is_empty() { "empty body".into() } else { x }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn seen(keys: &[&str]) -> HashSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn paging_follows_total_count() {
        let s = page_step(&seen(&[]), &[Some("a"), Some("b")], 0, Some(3), 2);
        assert_eq!(
            s,
            PageStep {
                keep: true,
                repeated: false,
                next: Some(2)
            }
        );
        let s = page_step(&seen(&["a", "b"]), &[Some("c")], 2, Some(3), 2);
        assert_eq!(
            s,
            PageStep {
                keep: true,
                repeated: false,
                next: None
            }
        );
    }

    #[test]
    fn paging_stops_on_an_empty_or_repeated_page() {
        let s = page_step(&seen(&["a"]), &[], 2, Some(10), 2);
        assert_eq!(
            s,
            PageStep {
                keep: false,
                repeated: false,
                next: None
            }
        );
        // A server that ignores offset sends page one again.
        let s = page_step(&seen(&["a", "b"]), &[Some("a"), Some("b")], 2, Some(10), 2);
        assert_eq!(
            s,
            PageStep {
                keep: false,
                repeated: true,
                next: None
            }
        );
    }

    #[test]
    fn paging_without_total_stops_on_a_short_page() {
        let s = page_step(&seen(&[]), &[Some("a"), Some("b")], 0, None, 2);
        assert_eq!(s.next, Some(2));
        let s = page_step(&seen(&["a", "b"]), &[Some("c")], 2, None, 2);
        assert_eq!(s.next, None);
    }

    #[test]
    fn error_shapes() {
        assert_eq!(
            error_detail(
                r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"No endpoint GET /v2-edge/vendors/.","instance":"/v2-edge/vendors/"}"#
            ),
            "Not Found: No endpoint GET /v2-edge/vendors/."
        );
        assert_eq!(
            error_detail(
                r#"{"timestamp":1729863245810,"status":400,"error":"Bad Request","path":"/v2-edge/vendors//"}"#
            ),
            "Bad Request (/v2-edge/vendors//)"
        );
        assert_eq!(
            error_detail(r#""User is not a Vendor Manager""#),
            "User is not a Vendor Manager"
        );
        assert_eq!(error_detail(""), "empty body");
        assert_eq!(
            error_detail("<html><title>Bad Gateway</title></html>"),
            "HTML page: Bad Gateway"
        );
    }

    #[test]
    fn ids_are_checked_before_use_in_paths() {
        assert!(check_id("11eba29cf4a601b08dbdad6a70500894").is_ok());
        for bad in ["", "../x", "a/b", "a b", "a?x=1", "%2e%2e", &"a".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    fn cfg(extra: &str) -> RemoteAccessConfig {
        let text = format!(
            "[remote_access]\ntenant_id = \"{}\"\nkey_file = \"env:X\"\n{extra}",
            "a".repeat(32)
        );
        crate::settings::load_from_parts(Some(&text), None, &[])
            .expect("parses")
            .config
            .remote_access
            .expect("section")
    }

    fn key(discovery: Option<&str>) -> ServiceAccountKey {
        ServiceAccountKey {
            service_account_id: Some("b".repeat(32)),
            discovery_url: discovery.map(str::to_string),
            credential: Credential::ClientSecret {
                client_id: "c".into(),
                secret: SecretString::from("s".to_string()),
            },
        }
    }

    #[test]
    fn endpoints_from_the_key_files_datacenter() {
        let e = endpoints(
            &cfg(""),
            &key(Some("https://auth.alero.eu/auth/realms/serviceaccounts")),
        )
        .expect("ok");
        assert_eq!(
            e.realm.as_str(),
            "https://auth.alero.eu/auth/realms/serviceaccounts"
        );
        assert_eq!(
            e.token.as_str(),
            "https://auth.alero.eu/auth/realms/serviceaccounts/protocol/openid-connect/token"
        );
        assert_eq!(e.api.as_str(), "https://api.alero.eu/v2-edge/");
    }

    #[test]
    fn endpoints_from_config_and_overrides() {
        let e = endpoints(
            &cfg("datacenter = \"uk\"\napi_version = \"v1-edge\""),
            &key(None),
        )
        .expect("ok");
        assert_eq!(e.api.as_str(), "https://api.uk.alero.io/v1-edge/");
        let e = endpoints(
            &cfg("auth_url = \"https://127.0.0.1:8443\"\napi_url = \"https://127.0.0.1:8443/\""),
            &key(Some("https://auth.alero.io/auth/realms/serviceaccounts")),
        )
        .expect("ok");
        assert_eq!(
            e.realm.as_str(),
            "https://127.0.0.1:8443/auth/realms/serviceaccounts"
        );
        assert_eq!(e.api.as_str(), "https://127.0.0.1:8443/v2-edge/");
    }

    #[test]
    fn auth_url_may_be_the_token_url_of_the_integration_guides() {
        let realm = "https://auth.alero.eu/auth/realms/serviceaccounts";
        let token = format!("{realm}/protocol/openid-connect/token");
        for given in [
            "https://auth.alero.eu",
            "https://auth.alero.eu/",
            "https://auth.alero.eu/auth",
            realm,
            &format!("{realm}/"),
            &token,
            &format!("{realm}/.well-known/openid-configuration"),
        ] {
            let e = endpoints(
                &cfg(&format!(
                    "auth_url = \"{given}\"\napi_url = \"https://api.alero.eu\""
                )),
                &key(None),
            )
            .expect(given);
            assert_eq!(e.realm.as_str(), realm, "{given}");
            assert_eq!(e.token.as_str(), token, "{given}");
        }
        // A proxy prefix stays.
        assert_eq!(
            realm_url("https://proxy.example/ra-auth/").expect("ok"),
            "https://proxy.example/ra-auth/auth/realms/serviceaccounts"
        );
    }

    #[test]
    fn an_auth_url_that_can_only_404_is_refused_at_load_naming_the_key() {
        for bad in [
            "https://auth.alero.eu/auth/realms/master",
            "https://auth.alero.eu/auth/realms/serviceaccounts/protocol/openid-connect/auth",
            "https://auth.alero.eu/auth/realms/serviceaccounts?x=1",
        ] {
            let text = format!(
                "[remote_access]\ntenant_id = \"{}\"\nkey_file = \"env:X\"\nauth_url = \"{bad}\"\n",
                "a".repeat(32)
            );
            let l = crate::settings::load_from_parts(Some(&text), None, &[]).expect("parses");
            let e = l.remote_access().expect_err(bad);
            assert_eq!(e.key.as_deref(), Some("remote_access.auth_url"), "{e}");
            assert!(
                e.to_string().contains("protocol/openid-connect/token"),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_or_conflicting_datacentres_are_refused() {
        let e = endpoints(
            &cfg(""),
            &key(Some(
                "https://auth.evil.example/auth/realms/serviceaccounts",
            )),
        )
        .expect_err("unknown");
        assert!(e.to_string().contains("no known data centre"), "{e}");
        let e = endpoints(
            &cfg("datacenter = \"us\""),
            &key(Some("https://auth.alero.eu/auth/realms/serviceaccounts")),
        )
        .expect_err("conflict");
        assert!(e.to_string().contains("alero.eu"), "{e}");
        let e = endpoints(&cfg(""), &key(None)).expect_err("none");
        assert!(e.to_string().contains("datacenter"), "{e}");
    }
}

//! ServiceNow Table API client (reference: ticketing.md §2): one ticket by number from
//! `incident` or `change_request`, requester logins by dot-walk into `sys_user`.
//!
//! The query is `number=<id>` only — a constant field, an allow-listed id, percent-encoded —
//! with `sysparm_limit=2` and raw values (`sysparm_display_value=false`): ServiceNow has no
//! escape for `^` and drops conditions on unknown fields, so nothing else ever goes in. Basic
//! authentication, or an OAuth bearer token from `/oauth_token.do` (password or client
//! credentials grant), re-fetched once on a 401.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::config::{ServiceNowAuth, ServiceNowConfig, SystemKind, TicketKind};
use super::transport::{Reply, Transport, encode};
use super::{BoxFuture, Lookup, TicketId, TicketRecord, TicketSystem, TicketingError};
use crate::secret::Resolver;

enum Auth {
    Basic {
        user: String,
        password: SecretString,
    },
    OAuth {
        client_id: String,
        client_secret: SecretString,
        /// The account for the password grant; `None` for client credentials.
        account: Option<(String, SecretString)>,
    },
}

struct Token {
    access: SecretString,
    renew_at: Instant,
}

/// A ServiceNow instance.
pub struct ServiceNow {
    t: Transport,
    auth: Auth,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl std::fmt::Debug for ServiceNow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceNow")
            .field("url", &self.t.base)
            .finish()
    }
}

/// The error envelope `{"error":{"message","detail"},"status":"failure"}`.
#[derive(Deserialize)]
struct Envelope {
    error: Option<EnvelopeError>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    message: Option<serde_json::Value>,
    detail: Option<serde_json::Value>,
}

fn text_of(v: &Option<serde_json::Value>) -> Option<String> {
    match v {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A readable detail from an error answer: the envelope's message and detail, else an excerpt.
fn error_detail(r: &Reply) -> String {
    if let Ok(env) = serde_json::from_str::<Envelope>(&r.body)
        && let Some(e) = env.error
    {
        let parts: Vec<String> = [text_of(&e.message), text_of(&e.detail)]
            .into_iter()
            .flatten()
            .collect();
        if !parts.is_empty() {
            return crate::http::body_excerpt(&parts.join(": "), 300);
        }
    }
    r.excerpt()
}

/// A field's raw value: a string, or the `value` of an object (when an instance sends display
/// values anyway), else nothing.
fn raw_value(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("value").and_then(raw_value),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The record from a `{"result":[…]}` answer, or `NotFound` unless exactly one row carries
/// exactly `id` as its number.
pub fn parse_lookup(
    body: &str,
    id: &TicketId,
    kind: TicketKind,
    requester_fields: &[String],
    total_count: Option<u64>,
) -> Result<Lookup, String> {
    #[derive(Deserialize)]
    struct List {
        result: Vec<serde_json::Map<String, serde_json::Value>>,
    }
    let list: List =
        serde_json::from_str(body).map_err(|e| format!("not a {{\"result\":[…]}} list: {e}"))?;
    let rows = list.result.len();
    if rows != 1 || total_count.is_some_and(|n| n != 1) {
        return Ok(Lookup::NotFound {
            rows: rows.max(total_count.unwrap_or(0) as usize),
        });
    }
    let row = &list.result[0];
    let get = |f: &str| row.get(f).and_then(raw_value);
    if get("number").as_deref() != Some(id.as_str()) {
        return Ok(Lookup::NotFound { rows: 1 });
    }
    let (requester_field, requester) = requester_fields
        .iter()
        .find_map(|f| {
            get(f)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (f.clone(), v))
        })
        .unzip();
    let on_hold = match kind {
        TicketKind::Incident => None,
        // Anything but a plain false counts as on hold (fail closed on odd values).
        TicketKind::Change => get("on_hold").map(|v| !matches!(v.trim(), "false" | "")),
    };
    Ok(Lookup::Found(TicketRecord {
        number: id.as_str().to_string(),
        state: get("state"),
        on_hold,
        approval: match kind {
            TicketKind::Incident => None,
            TicketKind::Change => get("approval"),
        },
        start: get("start_date"),
        end: get("end_date"),
        requester,
        requester_field,
    }))
}

/// The request line's path and query for one ticket. Pure: the injection tests read it.
pub fn lookup_path(kind: TicketKind, id: &TicketId, requester_fields: &[String]) -> String {
    let table = match kind {
        TicketKind::Incident => "incident",
        TicketKind::Change => "change_request",
    };
    let mut fields: Vec<&str> = vec!["number", "state"];
    if kind == TicketKind::Change {
        fields.extend(["approval", "on_hold", "start_date", "end_date"]);
    }
    for f in requester_fields {
        if !fields.contains(&f.as_str()) {
            fields.push(f);
        }
    }
    format!(
        "/api/now/table/{table}?sysparm_query={}&sysparm_fields={}&sysparm_display_value=false&sysparm_exclude_reference_link=true&sysparm_limit=2",
        encode(&format!("number={id}")),
        encode(&fields.join(",")),
    )
}

impl ServiceNow {
    /// Build from `[ticketing.servicenow]`, resolving the secrets now.
    pub async fn new(cfg: &ServiceNowConfig, resolver: &Resolver) -> Result<Self, TicketingError> {
        let t = Transport::new(SystemKind::ServiceNow, &cfg.url, &cfg.connection())?;
        let missing = |k: &str| {
            crate::config::ConfigError::new(format!("ticketing.servicenow.{k} is missing"))
        };
        let account = match (&cfg.username, &cfg.password) {
            (Some(u), Some(p)) => Some((u.clone(), resolver.resolve(p).await?)),
            _ => None,
        };
        let auth = match cfg.auth {
            ServiceNowAuth::Basic => {
                let (user, password) = account.ok_or_else(|| missing("username"))?;
                Auth::Basic { user, password }
            }
            ServiceNowAuth::OauthPassword | ServiceNowAuth::OauthClientCredentials => {
                let client_id = cfg.client_id.clone().ok_or_else(|| missing("client_id"))?;
                let secret = cfg
                    .client_secret
                    .as_ref()
                    .ok_or_else(|| missing("client_secret"))?;
                let client_secret = resolver.resolve(secret).await?;
                let account = if cfg.auth == ServiceNowAuth::OauthPassword {
                    Some(account.ok_or_else(|| missing("username"))?)
                } else {
                    None
                };
                Auth::OAuth {
                    client_id,
                    client_secret,
                    account,
                }
            }
        };
        Ok(ServiceNow {
            t,
            auth,
            token: tokio::sync::Mutex::new(None),
        })
    }

    fn who(&self) -> String {
        match &self.auth {
            Auth::Basic { user, .. } => user.clone(),
            Auth::OAuth {
                account: Some((u, _)),
                ..
            } => u.clone(),
            Auth::OAuth { client_id, .. } => format!("OAuth client {client_id}"),
        }
    }

    /// A bearer token, fetched when missing or about to expire.
    async fn bearer(&self, force: bool) -> Result<SecretString, TicketingError> {
        let mut guard = self.token.lock().await;
        if !force
            && let Some(t) = guard.as_ref()
            && Instant::now() < t.renew_at
        {
            return Ok(t.access.clone());
        }
        let Auth::OAuth {
            client_id,
            client_secret,
            account,
        } = &self.auth
        else {
            return Err(self.t.protocol("token", "not an OAuth configuration"));
        };
        let body = zeroize::Zeroizing::new({
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            match account {
                Some((u, p)) => {
                    form.append_pair("grant_type", "password")
                        .append_pair("username", u)
                        .append_pair("password", p.expose_secret());
                }
                None => {
                    form.append_pair("grant_type", "client_credentials");
                }
            }
            form.append_pair("client_id", client_id)
                .append_pair("client_secret", client_secret.expose_secret());
            form.finish()
        });
        let url = format!("{}/oauth_token.do", self.t.base);
        log::debug!("ServiceNow OAuth token for {}", self.who());
        let r = self
            .t
            .send("OAuth token request", true, |c| {
                c.post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded; charset=UTF-8",
                    )
                    .header(reqwest::header::ACCEPT, "application/json")
                    .body(body.to_string())
            })
            .await?;
        #[derive(Deserialize)]
        struct TokenReply {
            access_token: Option<String>,
            expires_in: Option<serde_json::Value>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let parsed = serde_json::from_str::<TokenReply>(&r.body).ok();
        if r.status != 200 {
            let detail = match parsed.as_ref() {
                Some(p) if p.error.is_some() || p.error_description.is_some() => format!(
                    "{}: {}",
                    r.status,
                    crate::http::body_excerpt(
                        &[p.error.clone(), p.error_description.clone()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" / "),
                        200
                    )
                ),
                _ => format!("{}: {}", r.status, r.excerpt()),
            };
            return Err(match r.status {
                400 | 401 | 403 => TicketingError::AuthFailed {
                    system: SystemKind::ServiceNow,
                    user: self.who(),
                    detail,
                },
                _ => self.t.status_error(&r, "OAuth token request", detail),
            });
        }
        let p = parsed.ok_or_else(|| self.t.protocol("OAuth token request", r.excerpt()))?;
        let access = p
            .access_token
            .filter(|t| !t.is_empty() && t.len() < 8192 && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                self.t
                    .protocol("OAuth token request", "no usable access_token")
            })?;
        let secs = p
            .expires_in
            .and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            })
            .unwrap_or(1799);
        let token = Token {
            access: SecretString::from(access),
            renew_at: Instant::now() + Duration::from_secs(secs.saturating_sub(60).max(1)),
        };
        let out = token.access.clone();
        *guard = Some(token);
        Ok(out)
    }

    async fn get(
        &self,
        path: &str,
        what: &str,
        force_token: bool,
    ) -> Result<Reply, TicketingError> {
        let url = format!("{}{path}", self.t.base);
        let auth_header = match &self.auth {
            Auth::Basic { .. } => None,
            Auth::OAuth { .. } => Some(self.bearer(force_token).await?),
        };
        self.t
            .send(what, true, |c| {
                let rb = c
                    .get(&url)
                    .header(reqwest::header::ACCEPT, "application/json");
                match (&self.auth, &auth_header) {
                    (Auth::Basic { user, password }, _) => {
                        rb.basic_auth(user, Some(password.expose_secret()))
                    }
                    (_, Some(tok)) => rb.bearer_auth(tok.expose_secret()),
                    (_, None) => rb,
                }
            })
            .await
    }

    async fn lookup_impl(
        &self,
        kind: TicketKind,
        id: &TicketId,
        requester_fields: &[String],
    ) -> Result<Lookup, TicketingError> {
        let path = lookup_path(kind, id, requester_fields);
        let what = format!("the lookup of {id}");
        log::debug!("ServiceNow GET {} number={id}", kind.key());
        let mut r = self.get(&path, &what, false).await?;
        if r.status == 401 && matches!(self.auth, Auth::OAuth { .. }) {
            log::info!("ServiceNow answered 401; fetching a new token once");
            r = self.get(&path, &what, true).await?;
        }
        match r.status {
            200 => {}
            401 => {
                return Err(TicketingError::AuthFailed {
                    system: SystemKind::ServiceNow,
                    user: self.who(),
                    detail: format!("401: {}", error_detail(&r)),
                });
            }
            400 => {
                return Err(TicketingError::Api {
                    system: SystemKind::ServiceNow,
                    status: 400,
                    what,
                    detail: error_detail(&r),
                    hint: Some(
                        "check the ticket type's requester_fields and that the instance has the incident and change_request tables".into(),
                    ),
                });
            }
            _ => return Err(self.t.status_error(&r, &what, error_detail(&r))),
        }
        if !r.is_json() {
            return Err(self.t.protocol(
                &what,
                format!(
                    "a {} answer instead of JSON ({})",
                    if r.content_type.is_empty() {
                        "untyped"
                    } else {
                        r.content_type.as_str()
                    },
                    r.excerpt()
                ),
            ));
        }
        let total = r
            .headers
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let found = parse_lookup(&r.body, id, kind, requester_fields, total)
            .map_err(|m| self.t.protocol(&what, m))?;
        if let Lookup::NotFound { rows } = &found {
            log::info!(
                "ServiceNow {} {id}: {rows} matching record(s), not exactly one",
                kind.key()
            );
        }
        Ok(found)
    }
}

impl TicketSystem for ServiceNow {
    fn kind(&self) -> SystemKind {
        SystemKind::ServiceNow
    }

    fn lookup<'a>(
        &'a self,
        kind: TicketKind,
        id: &'a TicketId,
        requester_fields: &'a [String],
    ) -> BoxFuture<'a, Result<Lookup, TicketingError>> {
        Box::pin(self.lookup_impl(kind, id, requester_fields))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TicketId {
        TicketId::new(s).expect("allow-listed")
    }

    #[test]
    fn the_query_holds_only_the_number_condition() {
        let p = lookup_path(
            TicketKind::Change,
            &id("CHG0030001"),
            &["requested_by.user_name".to_string()],
        );
        assert_eq!(
            p,
            "/api/now/table/change_request?sysparm_query=number%3DCHG0030001&sysparm_fields=number%2Cstate%2Capproval%2Con_hold%2Cstart_date%2Cend_date%2Crequested_by.user_name&sysparm_display_value=false&sysparm_exclude_reference_link=true&sysparm_limit=2"
        );
    }

    #[test]
    fn exactly_one_row_with_exactly_the_number() {
        let f = vec![
            "caller_id.user_name".to_string(),
            "opened_by.user_name".to_string(),
        ];
        let one = r#"{"result":[{"number":"INC0010001","state":"2","caller_id.user_name":"","opened_by.user_name":"alice"}]}"#;
        match parse_lookup(one, &id("INC0010001"), TicketKind::Incident, &f, Some(1)).expect("ok") {
            Lookup::Found(r) => {
                assert_eq!(r.state.as_deref(), Some("2"));
                assert_eq!(r.requester.as_deref(), Some("alice"));
                assert_eq!(r.requester_field.as_deref(), Some("opened_by.user_name"));
            }
            other => panic!("{other:?}"),
        }
        let lower = one.replace("INC0010001", "inc0010001");
        assert_eq!(
            parse_lookup(&lower, &id("INC0010001"), TicketKind::Incident, &f, None).expect("ok"),
            Lookup::NotFound { rows: 1 }
        );
        let two = r#"{"result":[{"number":"INC0010001"},{"number":"INC0010002"}]}"#;
        assert_eq!(
            parse_lookup(two, &id("INC0010001"), TicketKind::Incident, &f, Some(2)).expect("ok"),
            Lookup::NotFound { rows: 2 }
        );
        // One row on the page but the count says more matched: not exactly one.
        assert_eq!(
            parse_lookup(one, &id("INC0010001"), TicketKind::Incident, &f, Some(57)).expect("ok"),
            Lookup::NotFound { rows: 57 }
        );
        assert_eq!(
            parse_lookup(
                r#"{"result":[]}"#,
                &id("INC0010001"),
                TicketKind::Incident,
                &f,
                Some(0)
            )
            .expect("ok"),
            Lookup::NotFound { rows: 0 }
        );
        assert!(
            parse_lookup(
                r#"{"result":{}}"#,
                &id("INC0010001"),
                TicketKind::Incident,
                &f,
                None
            )
            .is_err()
        );
        assert!(
            parse_lookup("<html/>", &id("INC0010001"), TicketKind::Incident, &f, None).is_err()
        );
    }

    #[test]
    fn display_objects_and_odd_hold_values_are_read_safely() {
        let body = r#"{"result":[{"number":{"value":"CHG0030001","display_value":"CHG0030001"},"state":{"value":"-2","display_value":"Scheduled"},"on_hold":"maybe","approval":"approved"}]}"#;
        match parse_lookup(body, &id("CHG0030001"), TicketKind::Change, &[], None).expect("ok") {
            Lookup::Found(r) => {
                assert_eq!(r.state.as_deref(), Some("-2"));
                assert_eq!(r.on_hold, Some(true));
                assert_eq!(r.approval.as_deref(), Some("approved"));
            }
            other => panic!("{other:?}"),
        }
    }
}

//! BMC Remedy / Helix AR System REST API client (reference: ticketing.md §4): JWT login,
//! one entry by its id field from the configured incident or change form, logout on every path.
//!
//! The qualification is `'<id field>' = "<id>"` with a constant field name and an allow-listed
//! id (quotes doubled all the same), percent-encoded; `limit=2`; exactly one entry whose id
//! equals the input byte for byte. A 401 on a read (expired token) logs in again once.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::config::{RemedyConfig, SystemKind, TicketKind};
use super::transport::{Reply, Transport, encode};
use super::{BoxFuture, Lookup, TicketId, TicketRecord, TicketSystem, TicketingError};
use crate::secret::Resolver;

/// Fields of the two forms (`HPD:IncidentInterface`, `CHG:ChangeInterface` and their bases).
pub const INCIDENT_ID_FIELD: &str = "Incident Number";
pub const INCIDENT_STATE_FIELD: &str = "Status";
pub const CHANGE_ID_FIELD: &str = "Infrastructure Change ID";
pub const CHANGE_STATE_FIELD: &str = "Change Request Status";
pub const CHANGE_START_FIELD: &str = "Scheduled Start Date";
pub const CHANGE_END_FIELD: &str = "Scheduled End Date";

/// A Remedy server with one JWT session, opened on first use.
pub struct Remedy {
    t: Transport,
    user: String,
    password: SecretString,
    auth_string: Option<String>,
    incident_form: String,
    change_form: String,
    token: tokio::sync::Mutex<Option<SecretString>>,
}

impl std::fmt::Debug for Remedy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remedy")
            .field("url", &self.t.base)
            .field("user", &self.user)
            .finish()
    }
}

/// One AR error message; `appendedText` is seen in some fixtures instead.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArMessage {
    message_text: Option<String>,
    message_appended_text: Option<String>,
    appended_text: Option<String>,
    message_number: Option<serde_json::Value>,
}

/// A readable detail from an AR error answer: an array of messages, one object, or anything.
fn error_detail(r: &Reply) -> String {
    let msgs: Vec<ArMessage> = serde_json::from_str::<Vec<ArMessage>>(&r.body)
        .or_else(|_| serde_json::from_str::<ArMessage>(&r.body).map(|m| vec![m]))
        .unwrap_or_default();
    let parts: Vec<String> = msgs
        .iter()
        .filter_map(|m| {
            let text = m.message_text.clone()?;
            let num = m
                .message_number
                .as_ref()
                .map(|n| format!("ARERR {} ", n.to_string().trim_matches('"')))
                .unwrap_or_default();
            let app = m
                .message_appended_text
                .clone()
                .or_else(|| m.appended_text.clone())
                .filter(|a| !a.trim().is_empty())
                .map(|a| format!(" ({a})"))
                .unwrap_or_default();
            Some(format!("{num}{text}{app}"))
        })
        .collect();
    if parts.is_empty() {
        r.excerpt()
    } else {
        crate::http::body_excerpt(&parts.join("; "), 300)
    }
}

fn value_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The request line's path and query. Pure: the injection tests read it.
pub fn lookup_path(
    form: &str,
    kind: TicketKind,
    id: &TicketId,
    requester_fields: &[String],
) -> String {
    let (id_field, state_field) = fields_of(kind);
    let mut fields: Vec<&str> = vec![id_field, state_field];
    if kind == TicketKind::Change {
        fields.extend([CHANGE_START_FIELD, CHANGE_END_FIELD]);
    }
    for f in requester_fields {
        if !fields.contains(&f.as_str()) {
            fields.push(f);
        }
    }
    let q = format!(
        "'{}' = \"{}\"",
        id_field.replace('\'', "''"),
        id.as_str().replace('"', "\"\"")
    );
    format!(
        "/api/arsys/v1/entry/{}?q={}&fields={}&limit=2",
        encode(form),
        encode(&q),
        encode(&format!("values({})", fields.join(",")))
    )
}

fn fields_of(kind: TicketKind) -> (&'static str, &'static str) {
    match kind {
        TicketKind::Incident => (INCIDENT_ID_FIELD, INCIDENT_STATE_FIELD),
        TicketKind::Change => (CHANGE_ID_FIELD, CHANGE_STATE_FIELD),
    }
}

/// The record from an `{"entries":[…]}` answer, or `NotFound` unless exactly one entry carries
/// exactly `id`.
pub fn parse_lookup(
    body: &str,
    id: &TicketId,
    kind: TicketKind,
    requester_fields: &[String],
) -> Result<Lookup, String> {
    #[derive(Deserialize)]
    struct Entry {
        values: serde_json::Map<String, serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct List {
        entries: Vec<Entry>,
    }
    let list: List =
        serde_json::from_str(body).map_err(|e| format!("not an {{\"entries\":[…]}} list: {e}"))?;
    if list.entries.len() != 1 {
        return Ok(Lookup::NotFound {
            rows: list.entries.len(),
        });
    }
    let values = &list.entries[0].values;
    let get = |f: &str| values.get(f).and_then(value_string);
    let (id_field, state_field) = fields_of(kind);
    if get(id_field).as_deref() != Some(id.as_str()) {
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
    let change = kind == TicketKind::Change;
    Ok(Lookup::Found(TicketRecord {
        number: id.as_str().to_string(),
        state: get(state_field),
        on_hold: None,
        approval: None,
        start: if change {
            get(CHANGE_START_FIELD)
        } else {
            None
        },
        end: if change { get(CHANGE_END_FIELD) } else { None },
        requester,
        requester_field,
    }))
}

impl Remedy {
    /// Build from `[ticketing.remedy]`, resolving the password now.
    pub async fn new(cfg: &RemedyConfig, resolver: &Resolver) -> Result<Self, TicketingError> {
        let t = Transport::new(SystemKind::Remedy, &cfg.url, &cfg.connection())?;
        let password = resolver.resolve(&cfg.password).await?;
        Ok(Remedy {
            t,
            user: cfg.username.clone(),
            password,
            auth_string: cfg.auth_string.clone(),
            incident_form: cfg.incident_form.clone(),
            change_form: cfg.change_form.clone(),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// `POST /api/jwt/login` → the JWT as plain text.
    async fn login(&self) -> Result<SecretString, TicketingError> {
        let body = zeroize::Zeroizing::new({
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("username", &self.user)
                .append_pair("password", self.password.expose_secret());
            if let Some(a) = &self.auth_string {
                form.append_pair("authString", a);
            }
            form.finish()
        });
        let url = format!("{}/api/jwt/login", self.t.base);
        log::debug!("Remedy login of {}", self.user);
        let r = self
            .t
            .send("login", true, |c| {
                c.post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body.to_string())
            })
            .await?;
        if r.status != 200 {
            let detail = format!("{}: {}", r.status, error_detail(&r));
            return Err(match r.status {
                400 | 401 => TicketingError::AuthFailed {
                    system: SystemKind::Remedy,
                    user: self.user.clone(),
                    detail,
                },
                _ => self.t.status_error(&r, "login", detail),
            });
        }
        let token = r.body.trim();
        // A JWT is base64url parts joined by dots; anything else (an HTML page) is not a token.
        let ok = !token.is_empty()
            && token.len() < 16 * 1024
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.=+/".contains(&b));
        if !ok {
            return Err(self.t.protocol("login", "the answer holds no token"));
        }
        log::debug!("Remedy login of {}: token received", self.user);
        Ok(SecretString::from(token.to_string()))
    }

    async fn token(&self, fresh: bool) -> Result<SecretString, TicketingError> {
        let mut guard = self.token.lock().await;
        if !fresh && let Some(t) = guard.as_ref() {
            return Ok(t.clone());
        }
        if fresh && let Some(old) = guard.take() {
            // The old token is dead on the server's side; a logout is still polite and cheap.
            self.logout(&old).await;
        }
        let t = self.login().await?;
        *guard = Some(t.clone());
        Ok(t)
    }

    async fn get(&self, path: &str, what: &str, fresh: bool) -> Result<Reply, TicketingError> {
        let token = self.token(fresh).await?;
        let url = format!("{}{path}", self.t.base);
        self.t
            .send(what, true, |c| {
                c.get(&url)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .header(
                        reqwest::header::AUTHORIZATION,
                        format!("AR-JWT {}", token.expose_secret()),
                    )
            })
            .await
    }

    async fn lookup_impl(
        &self,
        kind: TicketKind,
        id: &TicketId,
        requester_fields: &[String],
    ) -> Result<Lookup, TicketingError> {
        let form = match kind {
            TicketKind::Incident => &self.incident_form,
            TicketKind::Change => &self.change_form,
        };
        let path = lookup_path(form, kind, id, requester_fields);
        let what = format!("the lookup of {id}");
        log::debug!("Remedy GET {form} {id}");
        let mut r = self.get(&path, &what, false).await?;
        if r.status == 401 {
            log::info!("Remedy answered 401 (token expired?); logging in again once");
            r = self.get(&path, &what, true).await?;
        }
        let detail = || error_detail(&r);
        match r.status {
            200 => {}
            401 => {
                return Err(TicketingError::AuthFailed {
                    system: SystemKind::Remedy,
                    user: self.user.clone(),
                    detail: format!("401 after a fresh login: {}", detail()),
                });
            }
            400 | 404 => {
                return Err(TicketingError::Api {
                    system: SystemKind::Remedy,
                    status: r.status,
                    what,
                    detail: detail(),
                    hint: Some(format!(
                        "check ticketing.remedy.{}_form (`{form}`) and the ticket type's requester_fields",
                        kind.key()
                    )),
                });
            }
            _ => return Err(self.t.status_error(&r, &what, detail())),
        }
        if !r.is_json() {
            return Err(self
                .t
                .protocol(&what, format!("not a JSON answer ({})", r.excerpt())));
        }
        let found = parse_lookup(&r.body, id, kind, requester_fields)
            .map_err(|m| self.t.protocol(&what, m))?;
        if let Lookup::NotFound { rows } = &found {
            log::info!("Remedy {form} {id}: {rows} matching entr(ies), not exactly one");
        }
        Ok(found)
    }

    /// `POST /api/jwt/logout`. Errors are logged: the work is done.
    async fn logout(&self, token: &SecretString) {
        let url = format!("{}/api/jwt/logout", self.t.base);
        let r = self
            .t
            .client()
            .post(&url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("AR-JWT {}", token.expose_secret()),
            )
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() => log::debug!("Remedy logout of {}", self.user),
            Ok(resp) => log::warn!(
                "Remedy logout of {} answered {}",
                self.user,
                resp.status().as_u16()
            ),
            Err(e) => log::warn!(
                "Remedy logout of {} failed: {}",
                self.user,
                crate::http::error_chain(&e)
            ),
        }
    }
}

impl TicketSystem for Remedy {
    fn kind(&self) -> SystemKind {
        SystemKind::Remedy
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
        Box::pin(async {
            let token = self.token.lock().await.take();
            if let Some(t) = token {
                self.logout(&t).await;
            }
        })
    }
}

impl Drop for Remedy {
    fn drop(&mut self) {
        // Last resort for a client dropped on an error path: log out in the background.
        let Some(token) = self.token.get_mut().take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let http = self.t.client().clone();
            let url = format!("{}/api/jwt/logout", self.t.base);
            handle.spawn(async move {
                let _ = http
                    .post(url)
                    .header(
                        reqwest::header::AUTHORIZATION,
                        format!("AR-JWT {}", token.expose_secret()),
                    )
                    .header(reqwest::header::CONTENT_LENGTH, "0")
                    .send()
                    .await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TicketId {
        TicketId::new(s).expect("allow-listed")
    }

    #[test]
    fn the_qualification_is_constant_plus_the_id() {
        let p = lookup_path(
            "HPD:IncidentInterface",
            TicketKind::Incident,
            &id("INC000000000430"),
            &["Customer Login ID".to_string()],
        );
        assert_eq!(
            p,
            "/api/arsys/v1/entry/HPD%3AIncidentInterface?q=%27Incident%20Number%27%20%3D%20%22INC000000000430%22&fields=values%28Incident%20Number%2CStatus%2CCustomer%20Login%20ID%29&limit=2"
        );
    }

    #[test]
    fn exactly_one_entry_with_exactly_the_id() {
        let f = vec!["Requestor ID".to_string()];
        let one = r#"{"entries":[{"values":{"Infrastructure Change ID":"CRQ000000000101","Change Request Status":"Scheduled","Scheduled Start Date":"2026-05-01T22:00:00.000+0000","Scheduled End Date":null,"Requestor ID":"Alice"},"_links":{}}],"_links":{}}"#;
        match parse_lookup(one, &id("CRQ000000000101"), TicketKind::Change, &f).expect("ok") {
            Lookup::Found(r) => {
                assert_eq!(r.state.as_deref(), Some("Scheduled"));
                assert_eq!(r.end, None);
                assert_eq!(r.requester.as_deref(), Some("Alice"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_lookup(
                &one.replace("CRQ000000000101", "crq000000000101"),
                &id("CRQ000000000101"),
                TicketKind::Change,
                &f
            )
            .expect("ok"),
            Lookup::NotFound { rows: 1 }
        );
        assert_eq!(
            parse_lookup(
                r#"{"entries":[]}"#,
                &id("CRQ000000000101"),
                TicketKind::Change,
                &f
            )
            .expect("ok"),
            Lookup::NotFound { rows: 0 }
        );
        assert!(parse_lookup("[]", &id("CRQ000000000101"), TicketKind::Change, &f).is_err());
    }

    #[test]
    fn error_arrays_objects_and_html_are_read() {
        let r = |body: &str| Reply {
            status: 401,
            content_type: "application/json".into(),
            headers: Default::default(),
            body: body.into(),
        };
        assert_eq!(
            error_detail(&r(
                r#"[{"messageType":"ERROR","messageText":"Authentication failed","messageAppendedText":"svc","messageNumber":623}]"#
            )),
            "ARERR 623 Authentication failed (svc)"
        );
        assert_eq!(
            error_detail(&r(
                r#"{"messageType":"ERROR","messageText":"Field does not exist on current form","appendedText":"HPD:IncidentInterface : X","messageNumber":314}"#
            )),
            "ARERR 314 Field does not exist on current form (HPD:IncidentInterface : X)"
        );
        assert_eq!(
            error_detail(&r("<html><title>Oops</title></html>")),
            "HTML page: Oops"
        );
    }
}

//! The Graph v1.0 mail endpoints the approval mailbox uses (reference/graph.md §2–§4, §6.5):
//! list and read messages (`$select`, `$filter`, `$top`, `$expand` of extended properties,
//! `internetMessageHeaders` only when selected), raw MIME (`$value`), mark read (PATCH), move,
//! drafts with named extended properties, send, the extended-property `$filter`, child folders,
//! and delta on a folder with absolute paging links, `@removed` entries and a 410 reset.
//!
//! Requests are checked as Graph checks them: a Bearer token issued by the stand-in's token
//! endpoint, the app's mailbox scope (403 `ErrorAccessDenied`), at most `max_concurrent` calls in
//! flight per mailbox (429 `ApplicationThrottled` with `Retry-After`). Paths are read in every
//! spelling real clients use: percent-encoded `@`, `mailFolders('inbox')`, well-known names in
//! any case, `delta`, `delta()`, `microsoft.graph.delta()`, `microsoft.graph.send`/`move`.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::store::{Change, Mailbox, Message, Store};

/// An OData error answer.
pub fn error(status: u16, code: &str, message: &str) -> Response {
    let when = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {"date": when, "request-id": "00000000-0000-0000-0000-0000pamsim01", "client-request-id": "00000000-0000-0000-0000-0000pamsim01"}
    }});
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}

/// One request, parsed.
pub struct Call<'a> {
    pub method: &'a Method,
    /// Path segments after `/v1.0/`, decoded, key syntax split, function names shortened.
    pub segs: Vec<String>,
    pub query: HashMap<String, String>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// `https://host:port` of the stand-in.
    pub base: &'a str,
    pub now_ms: i64,
}

/// Split `/v1.0/users/bot%40x/mailFolders('Inbox')/messages/microsoft.graph.delta()`.
pub fn segments(path: &str) -> Option<Vec<String>> {
    let rest = path
        .strip_prefix("/v1.0/")
        .or_else(|| path.strip_prefix("/V1.0/"))?;
    let mut out = Vec::new();
    for raw in rest.split('/').filter(|s| !s.is_empty()) {
        let s = percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned();
        if let Some(open) = s.find("('")
            && s.ends_with("')")
        {
            out.push(s[..open].to_string());
            out.push(s[open + 2..s.len() - 2].replace("''", "'"));
            continue;
        }
        let short = s.strip_prefix("microsoft.graph.").unwrap_or(&s);
        let short = short.strip_suffix("()").unwrap_or(short);
        out.push(short.to_string());
    }
    Some(out)
}

/// Query parameters, decoded (`%24filter` and `$filter` alike).
pub fn query(q: &str) -> HashMap<String, String> {
    crate::remote_access::token::parse_form(q.as_bytes())
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

struct Prefer {
    immutable: bool,
    page: Option<usize>,
}

fn prefer(h: &HeaderMap) -> Prefer {
    let mut p = Prefer {
        immutable: false,
        page: None,
    };
    for v in h.get_all("prefer").iter().filter_map(|v| v.to_str().ok()) {
        for part in v.split(',') {
            let part = part.trim();
            let norm = part.replace(' ', "").to_ascii_lowercase();
            if norm == "idtype=\"immutableid\"" {
                p.immutable = true;
            } else if let Some(n) = norm.strip_prefix("odata.maxpagesize=") {
                p.page = n.parse().ok();
            }
        }
    }
    p
}

fn seg_is(s: &str, want: &str) -> bool {
    s.eq_ignore_ascii_case(want)
}

/// Whether a path segment (as [`segments`] gives it) is the action `want` (`send`, `move`).
pub fn is_action(s: &str, want: &str) -> bool {
    seg_is(s, want)
}

/// Serve one mail call for `mailbox` (already authorised).
pub fn serve(store: &mut Store, delta_epoch: u64, c: &Call<'_>) -> Response {
    let p = prefer(c.headers);
    let mut resp = route(store, delta_epoch, c, &p);
    if p.immutable {
        resp.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_static("IdType=\"ImmutableId\""),
        );
    }
    resp
}

fn route(store: &mut Store, epoch: u64, c: &Call<'_>, p: &Prefer) -> Response {
    let s: Vec<&str> = c.segs.iter().map(String::as_str).collect();
    if s.len() < 2 || !seg_is(s[0], "users") {
        return error(400, "BadRequest", "Resource not found for the segment.");
    }
    let address = s[1].to_string();
    if store.mailbox_mut(&address).is_none() {
        return error(
            404,
            "ErrorInvalidUser",
            &format!("The requested user '{address}' is invalid."),
        );
    }
    let rest = &s[2..];
    // `/mailFolders/{f}/messages/{id}/…` reads as `/messages/{id}/…`.
    let msg_path: Option<&[&str]> = match rest {
        [m, id, tail @ ..] if seg_is(m, "messages") && !seg_is(id, "delta") => {
            Some(&rest[1..2 + tail.len()])
        }
        [f, _, m, id, ..]
            if seg_is(f, "mailFolders") && seg_is(m, "messages") && !seg_is(id, "delta") =>
        {
            Some(&rest[3..])
        }
        _ => None,
    };
    if let Some(mp) = msg_path {
        let id = mp[0];
        return match (c.method, &mp[1..]) {
            (&Method::GET, []) => get_message(store, &address, id, c, p),
            (&Method::PATCH, []) => patch_message(store, &address, id, c, p),
            (&Method::GET, [v]) if seg_is(v, "$value") => get_mime(store, &address, id),
            (&Method::POST, [a]) if seg_is(a, "move") => move_message(store, &address, id, c, p),
            (&Method::POST, [a]) if seg_is(a, "send") => send_draft(store, &address, id, c),
            _ => error(
                405,
                "ErrorInvalidRequest",
                "The OData request is not supported.",
            ),
        };
    }
    match (c.method, rest) {
        (&Method::GET, [m]) if seg_is(m, "messages") => list_all(store, &address, c, p),
        (&Method::POST, [m]) if seg_is(m, "messages") => create_draft(store, &address, c, p),
        (&Method::GET, [f, folder, m]) if seg_is(f, "mailFolders") && seg_is(m, "messages") => {
            list_folder(store, &address, folder, c, p)
        }
        (&Method::GET, [f, folder, m, d])
            if seg_is(f, "mailFolders") && seg_is(m, "messages") && seg_is(d, "delta") =>
        {
            delta(store, epoch, &address, folder, c, p)
        }
        (&Method::GET, [f, folder]) if seg_is(f, "mailFolders") => {
            get_folder(store, &address, folder)
        }
        (&Method::GET, [f, folder, cf])
            if seg_is(f, "mailFolders") && seg_is(cf, "childFolders") =>
        {
            child_folders(store, &address, folder, c)
        }
        (&Method::POST, [f, folder, cf])
            if seg_is(f, "mailFolders") && seg_is(cf, "childFolders") =>
        {
            create_folder(store, &address, folder, c)
        }
        _ => error(400, "BadRequest", "Resource not found for the segment."),
    }
}

fn folder_not_found() -> Response {
    error(
        404,
        "ErrorItemNotFound",
        "The specified folder could not be found in the store.",
    )
}

fn not_found() -> Response {
    error(
        404,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn email(a: &(Option<String>, String)) -> Value {
    json!({"emailAddress": {"name": a.0.clone().unwrap_or_else(|| a.1.clone()), "address": a.1}})
}

/// Property names in `$select` (none: the default set).
fn select(c: &Call<'_>) -> Option<Vec<String>> {
    c.query.get("$select").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
}

const DEFAULT_FIELDS: &[&str] = &[
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
];

fn message_json(
    m: &Message,
    immutable: bool,
    sel: Option<&[String]>,
    expand: Option<&str>,
) -> Value {
    let mut o = Map::new();
    o.insert(
        "@odata.etag".into(),
        json!(format!("W/\"CQAAABYAAAB{:08x}\"", m.change)),
    );
    o.insert(
        "id".into(),
        json!(if immutable { &m.immutable_id } else { &m.id }),
    );
    let fields: Vec<&str> = match sel {
        Some(s) => s.iter().map(String::as_str).collect(),
        None => DEFAULT_FIELDS.to_vec(),
    };
    for f in fields {
        let v = match f.to_ascii_lowercase().as_str() {
            "id" => continue,
            "createddatetime" | "receiveddatetime" => json!(iso(m.received_ms)),
            "lastmodifieddatetime" => json!(iso(m.received_ms)),
            "sentdatetime" => m
                .sent_ms
                .map(|t| json!(iso(t)))
                .unwrap_or(json!(iso(m.received_ms))),
            "changekey" => json!(format!("CQAAABYAAAB{:08x}", m.change)),
            "hasattachments" => json!(false),
            "internetmessageid" => json!(m.internet_message_id),
            "subject" => json!(m.subject),
            "bodypreview" => json!(m.body.chars().take(255).collect::<String>()),
            "importance" => json!("normal"),
            "parentfolderid" => json!(m.folder),
            "conversationid" => json!(format!(
                "AAQkConv{}",
                &m.immutable_id[m.immutable_id.len().saturating_sub(8)..]
            )),
            "isdeliveryreceiptrequested" | "isreadreceiptrequested" => json!(false),
            "isread" => json!(m.is_read),
            "isdraft" => json!(m.is_draft),
            "body" => json!({"contentType": m.body_type, "content": m.body}),
            "sender" => m.sender.as_ref().map(email).unwrap_or(Value::Null),
            "from" => m.from.as_ref().map(email).unwrap_or(Value::Null),
            "torecipients" => json!(
                m.to.iter()
                    .map(|a| email(&(None, a.clone())))
                    .collect::<Vec<_>>()
            ),
            "ccrecipients" => json!(
                m.cc.iter()
                    .map(|a| email(&(None, a.clone())))
                    .collect::<Vec<_>>()
            ),
            "bccrecipients" | "replyto" => json!([]),
            "internetmessageheaders" => match &m.transport_headers {
                Some(block) => json!(
                    crate::ews::mime::headers(block.as_bytes())
                        .into_iter()
                        .map(|(name, value)| json!({"name": name, "value": value}))
                        .collect::<Vec<_>>()
                ),
                None => continue,
            },
            _ => continue,
        };
        o.insert(f.to_string(), v);
    }
    if let Some(x) = expand {
        o.insert(
            "singleValueExtendedProperties".into(),
            json!(expanded(m, x)),
        );
    }
    Value::Object(o)
}

/// `singleValueExtendedProperties($filter=id eq '…')`: the matching properties.
fn expanded(m: &Message, expand: &str) -> Vec<Value> {
    let want = expand
        .split_once("id eq '")
        .and_then(|(_, r)| r.split_once('\''))
        .map(|(id, _)| id.to_string());
    let mut out = Vec::new();
    let is_headers = |id: &str| {
        let id = id.replace(' ', "").to_ascii_lowercase();
        id == "string0x007d" || id == "string0x7d"
    };
    match want {
        Some(id) if is_headers(&id) => {
            if let Some(h) = &m.transport_headers {
                out.push(json!({"id": "String 0x7d", "value": h}));
            }
        }
        Some(id) => {
            for (pid, v) in &m.properties {
                if same_property(pid, &id) {
                    out.push(json!({"id": pid, "value": v}));
                }
            }
        }
        None => {
            for (pid, v) in &m.properties {
                out.push(json!({"id": pid, "value": v}));
            }
        }
    }
    out
}

/// Property ids match with the GUID in any case and the name exactly (graph.md §4.2).
fn same_property(a: &str, b: &str) -> bool {
    match (a.split_once(" Name "), b.split_once(" Name ")) {
        (Some((ta, na)), Some((tb, nb))) => ta.eq_ignore_ascii_case(tb) && na == nb,
        _ => a.eq_ignore_ascii_case(b),
    }
}

fn ok_json(status: u16, v: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        axum::Json(v),
    )
        .into_response()
}

fn mailbox<'a>(store: &'a mut Store, address: &str) -> &'a mut Mailbox {
    store.mailbox_mut(address).expect("checked by route")
}

fn get_message(store: &mut Store, address: &str, id: &str, c: &Call<'_>, p: &Prefer) -> Response {
    let m = mailbox(store, address);
    let Some(msg) = m.find(id) else {
        return not_found();
    };
    let sel = select(c);
    ok_json(
        200,
        message_json(
            msg,
            p.immutable,
            sel.as_deref(),
            c.query.get("$expand").map(String::as_str),
        ),
    )
}

fn get_mime(store: &mut Store, address: &str, id: &str) -> Response {
    let unreadable = store.unreadable.clone();
    let m = mailbox(store, address);
    let Some(msg) = m.find(id) else {
        return not_found();
    };
    if unreadable.contains(&crate::ews::norm_mid(&msg.internet_message_id)) {
        return error(
            500,
            "ErrorInternalServerError",
            "An internal server error occurred. The operation failed.",
        );
    }
    // Graph serves MIME as text/plain (the description says octet-stream; graph.md §5.1).
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        msg.mime.clone(),
    )
        .into_response()
}

/// A JSON object body, or the error to answer.
fn body_object(c: &Call<'_>) -> Result<Map<String, Value>, Box<Response>> {
    match serde_json::from_slice::<Value>(c.body) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(Box::new(error(
            400,
            "RequestBodyRead",
            "Cannot read the request body: a JSON object is expected.",
        ))),
    }
}

/// One string parameter of the JSON object body, or the 400 to answer.
fn body_param(c: &Call<'_>, name: &str, missing: &str) -> Result<String, Box<Response>> {
    let o = body_object(c)?;
    match param(&o, name).and_then(Value::as_str) {
        Some(v) => Ok(v.to_string()),
        None => Err(Box::new(error(400, "ErrorInvalidRequest", missing))),
    }
}

/// A parameter of an action, any case (`destinationId` or `DestinationId`).
fn param<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn patch_message(store: &mut Store, address: &str, id: &str, c: &Call<'_>, p: &Prefer) -> Response {
    let o = match body_object(c) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let seq = store.next_seq();
    let m = mailbox(store, address);
    let Some(key) = m.find_key(id) else {
        return not_found();
    };
    let msg = m.messages.get_mut(&key).expect("found");
    // OData annotations (`@odata.type`, which SDKs send) are not properties.
    for (k, v) in o.iter().filter(|(k, _)| !k.starts_with('@')) {
        match (k.as_str(), v) {
            ("isRead", Value::Bool(b)) => msg.is_read = *b,
            ("isRead", _) => {
                return error(
                    400,
                    "BadRequest",
                    "Cannot convert the literal to the expected type 'Edm.Boolean'.",
                );
            }
            ("singleValueExtendedProperties", Value::Array(props)) => {
                for pr in props {
                    if let (Some(pid), Some(val)) = (
                        pr.get("id").and_then(Value::as_str),
                        pr.get("value").and_then(Value::as_str),
                    ) {
                        msg.properties.retain(|(x, _)| !same_property(x, pid));
                        msg.properties.push((pid.to_string(), val.to_string()));
                    }
                }
            }
            _ => {
                return error(
                    400,
                    "ErrorInvalidProperty",
                    &format!("pam-sim: updating `{k}` is not modelled"),
                );
            }
        }
    }
    msg.change = seq;
    let sel = select(c);
    ok_json(200, message_json(msg, p.immutable, sel.as_deref(), None))
}

fn move_message(store: &mut Store, address: &str, id: &str, c: &Call<'_>, p: &Prefer) -> Response {
    let dest = match body_param(
        c,
        "destinationId",
        "The destinationId parameter is missing.",
    ) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let seq = store.next_seq();
    let new_id = store.new_id("AAMkAGI2TG93AAA=");
    let m = mailbox(store, address);
    let Some(key) = m.find_key(id) else {
        return not_found();
    };
    let Some(to) = m.folder_id(&dest) else {
        return folder_not_found();
    };
    let from = m.messages[&key].folder.clone();
    if from != to {
        m.log(&from, seq, &key, Change::Removed);
        m.log(&to, seq, &key, Change::Created);
    }
    let msg = m.messages.get_mut(&key).expect("found");
    msg.folder = to;
    msg.id = new_id;
    msg.change = seq;
    let sel = select(c);
    ok_json(201, message_json(msg, p.immutable, sel.as_deref(), None))
}

fn recipients(o: &Map<String, Value>, name: &str) -> Vec<String> {
    param(o, name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.pointer("/emailAddress/address").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn create_draft(store: &mut Store, address: &str, c: &Call<'_>, p: &Prefer) -> Response {
    let o = match body_object(c) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let seq = store.next_seq();
    let id = store.new_id("AAMkAGI2TG93AAA=");
    let immutable_id = store.new_id("AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A");
    let m = mailbox(store, address);
    let drafts = m.folder_id("drafts").expect("well-known folder");
    let mut properties = Vec::new();
    if let Some(Value::Array(props)) = param(&o, "singleValueExtendedProperties") {
        for pr in props {
            match (
                pr.get("id").and_then(Value::as_str),
                pr.get("value").and_then(Value::as_str),
            ) {
                (Some(pid), Some(val)) => properties.push((pid.to_string(), val.to_string())),
                _ => {
                    return error(
                        400,
                        "ErrorInvalidExtendedProperty",
                        "An extended property needs an id and a string value.",
                    );
                }
            }
        }
    }
    // Graph takes at most 5 custom headers, each named `x-…`; other headers (Auto-Submitted)
    // can only be set as PS_INTERNET_HEADERS named properties.
    let mut internet_headers = Vec::new();
    if let Some(v) = param(&o, "internetMessageHeaders") {
        let list = v.as_array().cloned().unwrap_or_default();
        let bad = !v.is_array()
            || list.len() > 5
            || list.iter().any(|h| {
                !h.get("name").and_then(Value::as_str).is_some_and(|n| {
                    n.len() > 2 && n.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x-"))
                }) || !h.get("value").is_some_and(Value::is_string)
            });
        if bad {
            return error(
                400,
                "InvalidInternetMessageHeaderCollection",
                "Maximum number of headers in one message should be less than or equal to 5, and each header name should start with 'x-' or 'X-'.",
            );
        }
        for h in list {
            internet_headers.push((
                h["name"].as_str().unwrap_or_default().to_string(),
                h["value"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    let body = param(&o, "body");
    let body_type = match body
        .and_then(|b| b.get("contentType"))
        .and_then(Value::as_str)
    {
        Some(t) if t.eq_ignore_ascii_case("html") => "html",
        _ => "text",
    };
    let msg = Message {
        immutable_id: immutable_id.clone(),
        id,
        folder: drafts.clone(),
        mime: Vec::new(),
        transport_headers: None,
        subject: param(&o, "subject")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        from: Some((None, m.address.clone())),
        sender: Some((None, m.address.clone())),
        to: recipients(&o, "toRecipients"),
        cc: recipients(&o, "ccRecipients"),
        internet_message_id: format!(
            "<{}@pam-sim.graph>",
            &immutable_id[immutable_id.len() - 16..]
        ),
        body: body
            .and_then(|b| b.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        body_type,
        is_read: true,
        is_draft: true,
        received_ms: c.now_ms,
        sent_ms: None,
        change: seq,
        properties,
        internet_headers,
    };
    m.log(&drafts, seq, &immutable_id, Change::Created);
    let out = message_json(&msg, p.immutable, None, None);
    m.messages.insert(immutable_id, msg);
    ok_json(201, out)
}

/// A sent mail as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sent {
    pub mailbox: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub content_type: String,
    /// Named extended properties the sender set.
    pub properties: Vec<(String, String)>,
    /// The Internet headers the mail went out with: PS_INTERNET_HEADERS named properties and
    /// `internetMessageHeaders`.
    pub headers: Vec<(String, String)>,
    pub immutable_id: String,
    pub sent_ms: i64,
}

fn send_draft(store: &mut Store, address: &str, id: &str, c: &Call<'_>) -> Response {
    let seq = store.next_seq();
    let m = mailbox(store, address);
    let Some(key) = m.find_key(id) else {
        return not_found();
    };
    if !m.messages[&key].is_draft {
        return error(
            400,
            "ErrorInvalidOperation",
            "pam-sim: only a draft can be sent.",
        );
    }
    if m.messages[&key].to.is_empty() && m.messages[&key].cc.is_empty() {
        return error(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid.",
        );
    }
    let sent = m.folder_id("sentitems").expect("well-known folder");
    let from = m.messages[&key].folder.clone();
    m.log(&from, seq, &key, Change::Removed);
    m.log(&sent, seq, &key, Change::Created);
    let addr = m.address.clone();
    let msg = m.messages.get_mut(&key).expect("found");
    msg.folder = sent;
    msg.is_draft = false;
    msg.sent_ms = Some(c.now_ms);
    msg.change = seq;
    msg.mime = compose(&addr, msg, c.now_ms).into_bytes();
    let record = Sent {
        mailbox: addr.clone(),
        to: msg.to.clone(),
        cc: msg.cc.clone(),
        subject: msg.subject.clone(),
        body: msg.body.clone(),
        content_type: msg.body_type.to_string(),
        properties: msg.properties.clone(),
        headers: sent_headers(msg),
        immutable_id: key.clone(),
        sent_ms: c.now_ms,
    };
    let mime = msg.mime.clone();
    let rcpts: Vec<String> = msg.to.iter().chain(&msg.cc).cloned().collect();
    store.sent.push(record);
    for r in rcpts {
        if store.mailbox_mut(&r).is_some() {
            let _ = store.place(&r, "inbox", mime.clone(), c.now_ms, true);
        }
    }
    StatusCode::ACCEPTED.into_response()
}

/// PS_INTERNET_HEADERS, the named-property set whose string properties are Internet headers.
const INTERNET_HEADERS_SET: &str = "String {00020386-0000-0000-C000-000000000046}";

/// The Internet headers a draft sets: its PS_INTERNET_HEADERS named properties, then its
/// `internetMessageHeaders`.
fn sent_headers(m: &Message) -> Vec<(String, String)> {
    m.properties
        .iter()
        .filter_map(|(id, v)| {
            let (set, name) = id.split_once(" Name ")?;
            set.eq_ignore_ascii_case(INTERNET_HEADERS_SET)
                .then(|| (name.to_string(), v.clone()))
        })
        .chain(m.internet_headers.iter().cloned())
        .collect()
}

/// The RFC 5322 form of a sent draft.
fn compose(from: &str, m: &Message, now_ms: i64) -> String {
    let date = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.to_rfc2822())
        .unwrap_or_default();
    let mut s = format!("From: {from}\r\nTo: {}\r\n", m.to.join(", "));
    if !m.cc.is_empty() {
        s.push_str(&format!("Cc: {}\r\n", m.cc.join(", ")));
    }
    for (name, value) in sent_headers(m) {
        s.push_str(&format!(
            "{}: {}\r\n",
            name.replace(['\r', '\n', ':'], ""),
            value.replace(['\r', '\n'], " ")
        ));
    }
    s.push_str(&format!(
        "Subject: {}\r\nDate: {date}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/{}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
        m.subject.replace(['\r', '\n'], " "),
        m.internet_message_id,
        if m.body_type == "html" { "html" } else { "plain" },
        m.body.replace("\r\n", "\n").replace('\n', "\r\n")
    ));
    s
}

fn page_size(c: &Call<'_>, p: &Prefer, default: usize) -> usize {
    c.query
        .get("$top")
        .and_then(|t| t.parse().ok())
        .or(p.page)
        .unwrap_or(default)
        .clamp(1, 1000)
}

/// `$filter` forms the stand-in reads; anything else is a 400 rather than unfiltered mail.
enum Filter {
    None,
    IsRead(bool),
    Property { id: String, value: String },
}

fn filter(c: &Call<'_>) -> Result<Filter, Box<Response>> {
    let Some(f) = c.query.get("$filter") else {
        return Ok(Filter::None);
    };
    let t = f.trim();
    let compact = t.replace(' ', "").to_ascii_lowercase();
    if compact == "isreadeqfalse" {
        return Ok(Filter::IsRead(false));
    }
    if compact == "isreadeqtrue" {
        return Ok(Filter::IsRead(true));
    }
    static PROPERTY_FILTER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
        r"(?i)^singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*(\w+)/id\s+eq\s+'((?:[^']|'')*)'\s+and\s+(\w+)/value\s+eq\s+'((?:[^']|'')*)'\s*\)$",
        )
        .expect("regex")
    });
    if let Some(m) = PROPERTY_FILTER.captures(t)
        && m[1] == m[2]
        && m[1] == m[4]
    {
        return Ok(Filter::Property {
            id: m[3].replace("''", "'"),
            value: m[5].replace("''", "'"),
        });
    }
    Err(Box::new(error(
        400,
        "BadRequest",
        &format!("Invalid filter clause: pam-sim does not model `{t}`"),
    )))
}

fn matches(m: &Message, f: &Filter) -> bool {
    match f {
        Filter::None => true,
        Filter::IsRead(b) => m.is_read == *b,
        Filter::Property { id, value } => m
            .properties
            .iter()
            .any(|(pid, v)| same_property(pid, id) && v.eq_ignore_ascii_case(value)),
    }
}

fn list(
    store: &mut Store,
    address: &str,
    folder: Option<&str>,
    c: &Call<'_>,
    p: &Prefer,
    link_path: &str,
) -> Response {
    let f = match filter(c) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let m = mailbox(store, address);
    let fid = match folder {
        Some(x) => match m.folder_id(x) {
            Some(id) => Some(id),
            None => return not_found(),
        },
        None => None,
    };
    let mut all: Vec<&Message> = m
        .messages
        .values()
        .filter(|msg| fid.as_ref().is_none_or(|id| &msg.folder == id))
        .filter(|msg| matches(msg, &f))
        .collect();
    // Newest first, as Graph lists messages by default.
    all.sort_by(|a, b| {
        b.received_ms
            .cmp(&a.received_ms)
            .then(b.change.cmp(&a.change))
    });
    let skip: usize = c
        .query
        .get("$skip")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let top = page_size(c, p, 10);
    let sel = select(c);
    let expand = c.query.get("$expand").map(String::as_str);
    let page: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(top)
        .map(|msg| message_json(msg, p.immutable, sel.as_deref(), expand))
        .collect();
    let mut o = Map::new();
    o.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/v1.0/$metadata#users('{address}')/messages",
            c.base
        )),
    );
    o.insert("value".into(), json!(page));
    if skip + top < all.len() {
        let mut q: Vec<(String, String)> = c
            .query
            .iter()
            .filter(|(k, _)| k.as_str() != "$skip" && k.as_str() != "$top")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        q.sort();
        q.push(("$top".into(), top.to_string()));
        q.push(("$skip".into(), (skip + top).to_string()));
        o.insert("@odata.nextLink".into(), json!(link(c.base, link_path, &q)));
    }
    ok_json(200, Value::Object(o))
}

fn link(base: &str, path: &str, q: &[(String, String)]) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    format!("{base}/v1.0/{path}?{}", qs.join("&"))
}

fn list_all(store: &mut Store, address: &str, c: &Call<'_>, p: &Prefer) -> Response {
    list(
        store,
        address,
        None,
        c,
        p,
        &format!("users/{address}/messages"),
    )
}

fn list_folder(
    store: &mut Store,
    address: &str,
    folder: &str,
    c: &Call<'_>,
    p: &Prefer,
) -> Response {
    list(
        store,
        address,
        Some(folder),
        c,
        p,
        &format!("users/{address}/mailFolders('{folder}')/messages"),
    )
}

/// A delta token: the reset epoch, the folder, the round's window of the folder's change log
/// (`from` exclusive, `upto` inclusive; round one starts at 0), created-only, the page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeltaState {
    epoch: u64,
    folder: String,
    from: u64,
    upto: u64,
    created_only: bool,
    skip: usize,
    page: usize,
    select: String,
}

impl DeltaState {
    fn encode(&self) -> String {
        hex::encode(format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            self.epoch,
            self.folder,
            self.from,
            self.upto,
            self.created_only as u8,
            self.skip,
            self.page,
            self.select
        ))
    }
    fn decode(t: &str) -> Option<Self> {
        let raw = String::from_utf8(hex::decode(t).ok()?).ok()?;
        let mut it = raw.splitn(8, '|');
        Some(DeltaState {
            epoch: it.next()?.parse().ok()?,
            folder: it.next()?.to_string(),
            from: it.next()?.parse().ok()?,
            upto: it.next()?.parse().ok()?,
            created_only: it.next()? == "1",
            skip: it.next()?.parse().ok()?,
            page: it.next()?.parse().ok()?,
            select: it.next()?.to_string(),
        })
    }
}

fn delta(
    store: &mut Store,
    epoch: u64,
    address: &str,
    folder: &str,
    c: &Call<'_>,
    p: &Prefer,
) -> Response {
    let now_seq = store.seq;
    let m = mailbox(store, address);
    let Some(fid) = m.folder_id(folder) else {
        return not_found();
    };
    let state = match (c.query.get("$deltatoken"), c.query.get("$skiptoken")) {
        (Some(t), _) | (None, Some(t)) => {
            let Some(s) = DeltaState::decode(t).filter(|s| s.folder == fid) else {
                return error(400, "BadRequest", "The delta token is not valid.");
            };
            if s.epoch != epoch {
                let fresh = format!(
                    "{}/v1.0/users/{address}/mailFolders('{folder}')/messages/delta()",
                    c.base
                );
                let mut r = error(
                    410,
                    "syncStateNotFound",
                    "The sync state generation is not found. Start a new delta round.",
                );
                if let Ok(v) = HeaderValue::from_str(&fresh) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                return r;
            }
            if c.query.contains_key("$deltatoken") {
                // A new round: what changed since the last one ended.
                DeltaState {
                    from: s.upto,
                    upto: now_seq,
                    skip: 0,
                    ..s
                }
            } else {
                s
            }
        }
        (None, None) => DeltaState {
            epoch,
            folder: fid.clone(),
            from: 0,
            upto: now_seq,
            created_only: c
                .query
                .get("changetype")
                .is_some_and(|t| t.eq_ignore_ascii_case("created")),
            skip: 0,
            page: p.page.unwrap_or(10).clamp(1, 1000),
            select: c.query.get("$select").cloned().unwrap_or_default(),
        },
    };
    let round_one = state.from == 0;
    let f = m.folder(&fid).expect("folder");
    // Each message once, with its latest change inside the window, in log order.
    let mut latest: Vec<(String, Change)> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (seq, id, ch) in &f.log {
        if *seq <= state.from || *seq > state.upto {
            continue;
        }
        match seen.get(id.as_str()) {
            Some(&i) => latest[i].1 = *ch,
            None => {
                seen.insert(id, latest.len());
                latest.push((id.clone(), *ch));
            }
        }
    }
    let sel: Option<Vec<String>> = (!state.select.is_empty()).then(|| {
        state
            .select
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    });
    let entries: Vec<Value> = latest
        .iter()
        .filter_map(|(id, ch)| match ch {
            Change::Removed if round_one || state.created_only => None,
            Change::Removed => Some(json!({
                "@odata.type": "#microsoft.graph.message",
                "id": id,
                "@removed": {"reason": "deleted"}
            })),
            Change::Created => m
                .messages
                .get(id)
                .filter(|msg| msg.folder == fid)
                .map(|msg| {
                    let mut v = message_json(msg, p.immutable, sel.as_deref(), None);
                    if let Value::Object(o) = &mut v {
                        o.insert("@odata.type".into(), json!("#microsoft.graph.message"));
                    }
                    v
                }),
        })
        .collect();
    let page: Vec<Value> = entries
        .iter()
        .skip(state.skip)
        .take(state.page)
        .cloned()
        .collect();
    let mut o = Map::new();
    o.insert(
        "@odata.context".into(),
        json!(format!("{}/v1.0/$metadata#Collection(message)", c.base)),
    );
    o.insert("value".into(), json!(page));
    let path = format!("users/{address}/mailFolders('{folder}')/messages/delta()");
    if state.skip + state.page < entries.len() {
        let next = DeltaState {
            skip: state.skip + state.page,
            ..state.clone()
        };
        o.insert(
            "@odata.nextLink".into(),
            json!(link(c.base, &path, &[("$skiptoken".into(), next.encode())])),
        );
    } else {
        let done = DeltaState { skip: 0, ..state };
        o.insert(
            "@odata.deltaLink".into(),
            json!(link(
                c.base,
                &path,
                &[("$deltatoken".into(), done.encode())]
            )),
        );
    }
    ok_json(200, Value::Object(o))
}

fn folder_json(f: &super::store::Folder, m: &Mailbox) -> Value {
    let total = m.messages.values().filter(|x| x.folder == f.id).count();
    let unread = m
        .messages
        .values()
        .filter(|x| x.folder == f.id && !x.is_read)
        .count();
    let children = m
        .folders
        .iter()
        .filter(|x| x.parent.as_deref() == Some(&f.id))
        .count();
    json!({
        "id": f.id,
        "displayName": f.name,
        "parentFolderId": f.parent.clone().unwrap_or_else(|| "AQMkRoot".into()),
        "childFolderCount": children,
        "unreadItemCount": unread,
        "totalItemCount": total,
        "isHidden": false,
    })
}

fn get_folder(store: &mut Store, address: &str, folder: &str) -> Response {
    let m = mailbox(store, address);
    match m.folder_id(folder).and_then(|id| m.folder(&id)) {
        Some(f) => ok_json(200, folder_json(f, m)),
        None => folder_not_found(),
    }
}

fn child_folders(store: &mut Store, address: &str, folder: &str, c: &Call<'_>) -> Response {
    let want = match c.query.get("$filter") {
        None => None,
        Some(f) => {
            static NAME_FILTER: std::sync::LazyLock<regex::Regex> =
                std::sync::LazyLock::new(|| {
                    regex::Regex::new(r"(?i)^\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*$")
                        .expect("regex")
                });
            match NAME_FILTER.captures(f) {
                Some(cap) => Some(cap[1].replace("''", "'")),
                None => return error(400, "BadRequest", "Invalid filter clause"),
            }
        }
    };
    let m = mailbox(store, address);
    let Some(parent) = m.folder_id(folder) else {
        return folder_not_found();
    };
    let list: Vec<Value> = m
        .folders
        .iter()
        .filter(|f| f.parent.as_deref() == Some(parent.as_str()))
        .filter(|f| want.as_ref().is_none_or(|w| f.name.eq_ignore_ascii_case(w)))
        .map(|f| folder_json(f, m))
        .collect();
    ok_json(
        200,
        json!({"@odata.context": format!("{}/v1.0/$metadata#users('{address}')/mailFolders('{folder}')/childFolders", c.base), "value": list}),
    )
}

fn create_folder(store: &mut Store, address: &str, folder: &str, c: &Call<'_>) -> Response {
    let name = match body_param(c, "displayName", "The displayName property is required.") {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let id = store.new_id("AQMkFolder");
    let m = mailbox(store, address);
    let Some(parent) = m.folder_id(folder) else {
        return folder_not_found();
    };
    if m.folders
        .iter()
        .any(|f| f.parent.as_deref() == Some(parent.as_str()) && f.name.eq_ignore_ascii_case(&name))
    {
        return error(
            409,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        );
    }
    m.folders.push(super::store::Folder {
        id: id.clone(),
        name,
        well_known: None,
        parent: Some(parent),
        log: Vec::new(),
    });
    let f = m.folder(&id).expect("just added").clone();
    ok_json(201, folder_json(&f, m))
}

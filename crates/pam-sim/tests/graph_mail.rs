//! The Graph mail stand-in spoken to over HTTP as a client would: bearer and scope checks,
//! every path spelling, `$select` and the header views, MIME, mark read, move (ids that change
//! unless immutable ids are asked for), drafts with a named extended property, send, the
//! extended-property filter, child folders, delta rounds with `@removed` and the 410 reset, and
//! the per-mailbox concurrency limit.

use pam_sim::{Scenario, Sim, SimOptions};
use serde_json::{Value, json};

const TENANT: &str = "5a1f0000-0000-4000-8000-0000000000aa";
const APP: &str = "0c1e0000-0000-4000-8000-0000000000bb";
const BOT: &str = "pam-bot@example.com";
const KEY_ID: &str = "String {00020329-0000-0000-C000-000000000046} Name PamApprovalSendKey";

struct Env {
    sim: Sim,
    http: reqwest::Client,
    token: String,
    base: String,
}

async fn start(extra: &str) -> Env {
    let scenario = Scenario::from_toml(&format!(
        r#"
[graph]
tenant_id = "{TENANT}"
mailboxes = ["{BOT}", "alice@example.com", "other@example.com"]
{extra}
[[graph.apps]]
client_id = "{APP}"
client_secret = "pw"
mailboxes = ["{BOT}", "alice@example.com"]
"#
    ))
    .expect("scenario");
    let sim = Sim::start(scenario, SimOptions::default())
        .await
        .expect("sim");
    let http = reqwest::Client::new();
    let base = sim.url();
    let t: Value = http
        .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={APP}&client_secret=pw&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        ))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = t["access_token"].as_str().expect("token").to_string();
    Env {
        sim,
        http,
        token,
        base,
    }
}

impl Env {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/v1.0/{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .req(reqwest::Method::GET, path)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn deliver(&self, mailbox: &str, subject: &str) -> String {
        let raw = format!(
            "Received: from mx.example.com by pam-sim\r\nX-MS-Exchange-Organization-AuthAs: Internal\r\nFrom: Alice <alice@example.com>\r\nTo: {BOT}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.com>\r\n\r\nbody of {subject}\r\n"
        );
        self.sim
            .state
            .graph
            .deliver(
                mailbox,
                None,
                raw.into_bytes(),
                self.sim.state.clock.now_ms(),
            )
            .expect("deliver")
    }
}

#[tokio::test]
async fn read_mark_move_and_the_two_id_kinds() {
    let env = start("").await;
    env.deliver(BOT, "first").await;
    // Every spelling of the path reaches the inbox.
    for path in [
        "users/pam-bot%40example.com/mailFolders/inbox/messages?$filter=isRead%20eq%20false&$select=id,subject",
        "users/pam-bot@example.com/mailFolders('Inbox')/messages?%24select=id,subject",
        "users/PAM-BOT@example.com/mailFolders/INBOX/messages",
    ] {
        let (status, v) = env.get(path).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v["value"].as_array().map(Vec::len), Some(1), "{path}: {v}");
        assert_eq!(v["value"][0]["subject"], "first");
    }
    let (_, v) = env
        .get("users/pam-bot@example.com/mailFolders/inbox/messages?$select=id,subject")
        .await;
    let id = v["value"][0]["id"].as_str().expect("id").to_string();
    assert!(
        v["value"][0].get("from").is_none(),
        "only what $select names: {v}"
    );
    // Headers appear only when selected; the raw block through the 0x007D property.
    let (_, m) = env.get(&format!("users/{BOT}/messages/{id}")).await;
    assert!(m.get("internetMessageHeaders").is_none());
    assert_eq!(m["from"]["emailAddress"]["address"], "alice@example.com");
    let (_, m) = env
        .get(&format!(
            "users/{BOT}/messages/{id}?$select=internetMessageHeaders,internetMessageId&$expand=singleValueExtendedProperties($filter=id%20eq%20'String%200x007D')"
        ))
        .await;
    assert!(
        m["internetMessageHeaders"]
            .as_array()
            .expect("headers")
            .iter()
            .any(|h| h["name"] == "X-MS-Exchange-Organization-AuthAs" && h["value"] == "Internal"),
        "{m}"
    );
    let block = m["singleValueExtendedProperties"][0]["value"]
        .as_str()
        .expect("0x7d");
    assert!(
        block.starts_with("Received: from mx.example.com"),
        "{block}"
    );
    // MIME.
    let r = env
        .req(
            reqwest::Method::GET,
            &format!("users/{BOT}/messages/{id}/$value"),
        )
        .send()
        .await
        .expect("mime");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.expect("text").contains("body of first"));
    // Mark read.
    let r = env
        .req(
            reqwest::Method::PATCH,
            &format!("users/{BOT}/messages/{id}"),
        )
        .json(&json!({"isRead": true}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status().as_u16(), 200);
    let (_, v) = env
        .get(&format!(
            "users/{BOT}/mailFolders/inbox/messages?$filter=isRead eq false"
        ))
        .await;
    assert_eq!(v["value"].as_array().map(Vec::len), Some(0));
    // Move: a regular id changes, the old one is gone.
    let r = env
        .req(
            reqwest::Method::POST,
            &format!("users/{BOT}/messages/{id}/microsoft.graph.move"),
        )
        .json(&json!({"DestinationId": "deleteditems"}))
        .send()
        .await
        .expect("move");
    assert_eq!(r.status().as_u16(), 201);
    let moved: Value = r.json().await.expect("json");
    let new_id = moved["id"].as_str().expect("id");
    assert_ne!(new_id, id);
    assert_eq!(env.get(&format!("users/{BOT}/messages/{id}")).await.0, 404);
    // With immutable ids, a move keeps the id.
    let r = env
        .req(
            reqwest::Method::GET,
            &format!("users/{BOT}/messages/{new_id}"),
        )
        .header("Prefer", "IdType=\"ImmutableId\"")
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.headers()
            .get("preference-applied")
            .and_then(|v| v.to_str().ok()),
        Some("IdType=\"ImmutableId\"")
    );
    let imm = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = env
        .req(
            reqwest::Method::POST,
            &format!("users/{BOT}/messages/{imm}/move"),
        )
        .header("Prefer", "IdType=\"ImmutableId\"")
        .json(&json!({"destinationId": "inbox"}))
        .send()
        .await
        .expect("move");
    assert_eq!(r.json::<Value>().await.expect("json")["id"], imm.as_str());
}

#[tokio::test]
async fn drafts_carry_the_send_key_and_are_found_by_it_after_sending() {
    let env = start("").await;
    let prefer = "IdType=\"ImmutableId\"";
    let r = env
        .req(reqwest::Method::POST, &format!("users/{BOT}/messages"))
        .header("Prefer", prefer)
        .json(&json!({
            "subject": "Re: request 42",
            "body": {"contentType": "text", "content": "Approved."},
            "toRecipients": [{"emailAddress": {"address": "alice@example.com"}}],
            "singleValueExtendedProperties": [{"id": KEY_ID, "value": "pam-approval-reply-abc"}]
        }))
        .send()
        .await
        .expect("draft");
    assert_eq!(r.status().as_u16(), 201);
    let draft: Value = r.json().await.expect("json");
    assert_eq!(draft["isDraft"], true);
    assert!(
        draft.get("singleValueExtendedProperties").is_none(),
        "not echoed"
    );
    let id = draft["id"].as_str().expect("id").to_string();
    let find = |value: &str| {
        format!(
            "users/{BOT}/messages?$filter=singleValueExtendedProperties/Any(ep:%20ep/id%20eq%20'{}'%20and%20ep/value%20eq%20'{value}')&$select=id,isDraft,parentFolderId",
            KEY_ID.replace(' ', "%20")
        )
    };
    let (_, v) = env.get(&find("PAM-APPROVAL-REPLY-ABC")).await;
    assert_eq!(
        v["value"][0]["isDraft"], true,
        "value compared in any case: {v}"
    );
    // The name part is case-sensitive.
    let (_, v) = env
        .get(&find("pam-approval-reply-abc").replace("PamApprovalSendKey", "pamapprovalsendkey"))
        .await;
    assert_eq!(v["value"].as_array().map(Vec::len), Some(0), "{v}");
    let r = env
        .req(
            reqwest::Method::POST,
            &format!("users/{BOT}/messages/{id}/send"),
        )
        .header("Prefer", prefer)
        .header("Content-Length", "0")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 202);
    assert!(r.text().await.expect("body").is_empty());
    let r = env
        .req(reqwest::Method::GET, &format!("users/{BOT}/messages/{id}"))
        .header("Prefer", prefer)
        .send()
        .await
        .expect("get");
    let sent: Value = r.json().await.expect("json");
    assert_eq!(sent["isDraft"], false, "{sent}");
    let (_, v) = env.get(&find("pam-approval-reply-abc")).await;
    assert_eq!(v["value"][0]["isDraft"], false);
    // The recipient is a mailbox of the stand-in: delivered to its inbox.
    let (_, v) = env
        .get("users/alice@example.com/mailFolders/inbox/messages")
        .await;
    assert_eq!(v["value"][0]["subject"], "Re: request 42");
    let log = env.sim.state.graph.sent();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].properties[0].1, "pam-approval-reply-abc");
    // A second send of the same item is refused.
    let r = env
        .req(
            reqwest::Method::POST,
            &format!("users/{BOT}/messages/{id}/send"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn delta_rounds_report_arrivals_and_removals_and_a_lost_state_is_410() {
    let env = start("").await;
    for n in 0..3 {
        env.deliver(BOT, &format!("m{n}")).await;
    }
    // Round one in pages of two: absolute links on the stand-in's origin.
    let r = env
        .req(
            reqwest::Method::GET,
            &format!("users/{BOT}/mailFolders/inbox/messages/delta?$select=id,subject"),
        )
        .header("Prefer", "odata.maxpagesize=2")
        .send()
        .await
        .expect("delta");
    let p1: Value = r.json().await.expect("json");
    assert_eq!(p1["value"].as_array().map(Vec::len), Some(2), "{p1}");
    assert_eq!(p1["value"][0]["@odata.type"], "#microsoft.graph.message");
    let next = p1["@odata.nextLink"].as_str().expect("nextLink");
    assert!(
        next.starts_with(&env.base) && next.contains("mailFolders('inbox')"),
        "{next}"
    );
    let p2: Value = env
        .http
        .get(next)
        .bearer_auth(&env.token)
        .send()
        .await
        .expect("p2")
        .json()
        .await
        .expect("json");
    assert_eq!(p2["value"].as_array().map(Vec::len), Some(1));
    let delta_link = p2["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();
    // Nothing new: an empty round with a fresh link.
    let idle: Value = env
        .http
        .get(&delta_link)
        .bearer_auth(&env.token)
        .send()
        .await
        .expect("idle")
        .json()
        .await
        .expect("json");
    assert_eq!(idle["value"].as_array().map(Vec::len), Some(0));
    let delta_link = idle["@odata.deltaLink"].as_str().expect("link").to_string();
    // One arrives, one leaves.
    env.deliver(BOT, "m3").await;
    let gone = p1["value"][0]["id"].as_str().expect("id");
    env.req(
        reqwest::Method::POST,
        &format!("users/{BOT}/messages/{gone}/move"),
    )
    .json(&json!({"destinationId": "deleteditems"}))
    .send()
    .await
    .expect("move");
    let r2: Value = env
        .http
        .get(&delta_link)
        .bearer_auth(&env.token)
        .send()
        .await
        .expect("r2")
        .json()
        .await
        .expect("json");
    let v = r2["value"].as_array().expect("value");
    assert!(v.iter().any(|e| e["subject"] == "m3"), "{r2}");
    assert!(
        v.iter().any(|e| e["@removed"]["reason"] == "deleted"),
        "{r2}"
    );
    // The server loses the sync state: 410 with a Location to start over.
    env.sim.state.graph.expire_delta();
    let r = env
        .http
        .get(r2["@odata.deltaLink"].as_str().expect("link"))
        .bearer_auth(&env.token)
        .send()
        .await
        .expect("410");
    assert_eq!(r.status().as_u16(), 410);
    assert!(r.headers().get("location").is_some());
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn tokens_scope_folders_and_the_concurrency_limit_are_enforced() {
    let env = start("call_latency_ms = 150\nmax_concurrent = 4").await;
    // No token, a wrong token.
    let r = env
        .http
        .get(format!("{}/v1.0/users/{BOT}/messages", env.base))
        .send()
        .await
        .expect("r");
    assert_eq!(r.status().as_u16(), 401);
    let r = env
        .http
        .get(format!("{}/v1.0/users/{BOT}/messages", env.base))
        .bearer_auth("forged")
        .send()
        .await
        .expect("r");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"]["code"],
        "InvalidAuthenticationToken"
    );
    // A mailbox outside the app's scope, and one that does not exist.
    let (status, v) = env.get("users/other@example.com/messages").await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "ErrorAccessDenied");
    let (status, v) = env.get("users/nobody@example.com/messages").await;
    assert!(status == 403 || status == 404, "{status} {v}");
    // Child folders: created once, found by name, a second create is 409.
    let create = || {
        env.req(
            reqwest::Method::POST,
            &format!("users/{BOT}/mailFolders/inbox/childFolders"),
        )
        .json(&json!({"displayName": "Processed"}))
        .send()
    };
    assert_eq!(create().await.expect("c").status().as_u16(), 201);
    assert_eq!(create().await.expect("c").status().as_u16(), 409);
    let (_, v) = env
        .get(&format!(
            "users/{BOT}/mailFolders/inbox/childFolders?$filter=displayName eq 'Processed'"
        ))
        .await;
    assert_eq!(v["value"][0]["displayName"], "Processed");
    // Six calls at once against a limit of four: some are 429 with Retry-After.
    let calls = (0..6).map(|_| {
        env.req(
            reqwest::Method::GET,
            &format!("users/{BOT}/mailFolders/inbox"),
        )
        .send()
    });
    let results = futures_util::future::join_all(calls).await;
    let throttled: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|r| r.status().as_u16() == 429)
        .collect();
    assert!(!throttled.is_empty(), "no 429 among six concurrent calls");
    assert!(
        throttled
            .iter()
            .all(|r| r.headers().get("retry-after").is_some())
    );
    assert_eq!(results.len() - throttled.len(), 4, "four got through");
    assert!(env.sim.state.graph.stats().throttled >= 2);
    // An unknown filter is refused, never answered unfiltered.
    let (status, _) = env
        .get(&format!("users/{BOT}/messages?$filter=subject eq 'x'"))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn internet_headers_take_x_names_only_and_others_come_as_ps_internet_headers_properties() {
    let env = start("").await;
    let draft = |body: Value| {
        env.req(reqwest::Method::POST, &format!("users/{BOT}/messages"))
            .json(&body)
            .send()
    };
    let base = || {
        json!({
            "subject": "Re: request 42",
            "body": {"contentType": "text", "content": "Approved."},
            "toRecipients": [{"emailAddress": {"address": "alice@example.com"}}],
        })
    };
    // Graph refuses a custom header whose name does not start with x-, and more than five.
    let mut b = base();
    b["internetMessageHeaders"] = json!([{"name": "Auto-Submitted", "value": "auto-replied"}]);
    let r = draft(b).await.expect("draft");
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        v["error"]["code"], "InvalidInternetMessageHeaderCollection",
        "{v}"
    );
    let mut b = base();
    b["internetMessageHeaders"] = json!(
        (0..6)
            .map(|i| json!({"name": format!("x-h{i}"), "value": "v"}))
            .collect::<Vec<_>>()
    );
    assert_eq!(draft(b).await.expect("draft").status().as_u16(), 400);
    // An x- header as such, Auto-Submitted as a named property of PS_INTERNET_HEADERS.
    let mut b = base();
    b["internetMessageHeaders"] = json!([{"name": "X-Auto-Response-Suppress", "value": "All"}]);
    b["singleValueExtendedProperties"] = json!([{
        "id": "String {00020386-0000-0000-C000-000000000046} Name Auto-Submitted",
        "value": "auto-replied"
    }]);
    let r = draft(b).await.expect("draft");
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = env
        .req(
            reqwest::Method::POST,
            &format!("users/{BOT}/messages/{id}/send"),
        )
        .header("Content-Length", "0")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 202);
    let log = env.sim.state.graph.sent();
    assert_eq!(
        log[0].headers,
        [
            ("Auto-Submitted".to_string(), "auto-replied".to_string()),
            ("X-Auto-Response-Suppress".to_string(), "All".to_string()),
        ]
    );
}

#[tokio::test]
async fn a_mail_made_unreadable_answers_500_on_its_mime_only() {
    let env = start("").await;
    let id = env.deliver(BOT, "broken").await;
    let ok = env.deliver(BOT, "fine").await;
    let r = env
        .http
        .post(format!("{}/sim/graph/unreadable", env.base))
        .json(&json!({"message_id": "<BROKEN@example.com>"}))
        .send()
        .await
        .expect("control");
    assert_eq!(r.status().as_u16(), 204);
    let mime = |id: String| {
        env.req(
            reqwest::Method::GET,
            &format!("users/{BOT}/messages/{id}/$value"),
        )
        .send()
    };
    let r = mime(id.clone()).await.expect("send");
    assert_eq!(r.status().as_u16(), 500);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "ErrorInternalServerError");
    let r = mime(ok).await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    // Its properties still read.
    let (status, v) = env.get(&format!("users/{BOT}/messages/{id}")).await;
    assert_eq!(status, 200, "{v}");
}

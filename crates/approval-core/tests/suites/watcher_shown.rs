// Issue 25, defence in depth: every field a forwarded notification shows (account name, device
// user name, address, reason, issued on, access window) must match the request PVWA holds for
// the id it names, or the mail is refused `notice_mismatch`. A look-alike notification can then
// at best get approved a request identical to the one it displays. End to end through the
// watcher: pam-sim (PVWA + the mailbox over HTTPS) and a real slapd (alice approves DBSafe).

// (`watcher_env` is declared by the including file, with the backend.)

use approval_core::pipeline::Pipeline;
use watcher_env::*;

/// dave's request 40 on DBSafe (single level, with an access window), and request 41 whose
/// account a look-alike displays instead.
const REQUESTS: &str = r#"
[[pvwa.requests]]
number = 40
safe = "DBSafe"
requester = "dave"
account = "oracle"
address = "db01.example.test"
reason = "Rotate listener log"
levels = [1, 0]
access_from_in_secs = 3600
access_to_in_secs = 7200

[[pvwa.requests]]
number = 41
safe = "DBSafe"
requester = "dave"
account = "readonly"
address = "web01.example.test"
reason = "Read the web logs"
levels = [1, 0]
"#;

const ALICE: &str = "alice@example.test";

async fn env_with_requests() -> Option<Env> {
    start_with(REQUESTS).await
}

/// Unix seconds as a vault in UTC+1 would show them in an en-US template.
fn us_local(unix: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(3600).expect("offset");
    chrono::DateTime::from_timestamp(unix, 0)
        .expect("instant")
        .with_timezone(&offset)
        .format("%-m/%-d/%Y %-I:%M:%S %p")
        .to_string()
}

/// Every field the notification of request `number` shows, as CyberArk would write them
/// (from pam-sim's request): (label, value).
fn genuine_fields(env: &Env, number: u32) -> Vec<(String, String)> {
    let r = env
        .sim
        .state
        .pvwa
        .request(&format!("DBSafe_{number}"))
        .expect("request");
    let prop = |k: &str| {
        r["AccountDetails"]["Properties"][k]
            .as_str()
            .expect("property")
            .to_string()
    };
    let date = |k: &str| us_local(r[k].as_i64().expect("date"));
    vec![
        ("Account name".into(), prop("Name")),
        ("Device User Name".into(), prop("UserName")),
        ("Address".into(), prop("Address")),
        (
            "Reason".into(),
            r["UserReason"].as_str().expect("reason").to_string(),
        ),
        ("Issued on".into(), date("CreationDate")),
        ("Request start date".into(), date("AccessFrom")),
        ("Request end date".into(), date("AccessTo")),
    ]
}

/// `fields` with the value of `label` replaced.
fn with(mut fields: Vec<(String, String)>, label: &str, value: &str) -> Vec<(String, String)> {
    let f = fields
        .iter_mut()
        .find(|(l, _)| l == label)
        .expect("label");
    f.1 = value.to_string();
    fields
}

/// alice forwards (from inside the organisation) a notification naming DBSafe request
/// `number` and showing `fields`.
fn shown_mail(mid: &str, number: u32, fields: &[(String, String)]) -> Vec<u8> {
    let lines: String = fields
        .iter()
        .map(|(l, v)| format!("{l}: {v}\r\n"))
        .collect();
    format!(
        "Received: from EX01.corp.example.test (10.1.2.11) by EX02.corp.example.test\r\n (10.1.2.12) with Microsoft SMTP Server; Tue, 4 Mar 2025 09:20:11 +0100\r\n\
From: Alice <{ALICE}>\r\n\
To: PAM Approvals <{BOX}>\r\n\
Subject: FW: Notification: Password access request\r\n\
Date: Tue, 4 Mar 2025 09:20:11 +0100\r\n\
Message-ID: <{mid}@corp.example.test>\r\n\
X-MS-Exchange-Organization-AuthSource: EX01.corp.example.test\r\n\
X-MS-Exchange-Organization-AuthAs: Internal\r\n\
X-MS-Exchange-Organization-AuthMechanism: 04\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
\r\n\
Please approve.\r\n\
\r\n\
-----Original Message-----\r\n\
From: CyberArk Vault <vault-notifications@example.test>\r\n\
Sent: Tuesday, March 4, 2025 9:12 AM\r\n\
To: Alice <{ALICE}>\r\n\
Subject: Notification: Password access request\r\n\
\r\n\
The following user has requested access to an account that requires your confirmation:\r\n\
\r\n\
Requester email: dave@example.test\r\n\
Safe: DBSafe\r\n\
Request Id: {number}\r\n\
{lines}\
\r\n\
To confirm or reject this request, log on to the Password Vault Web Access.\r\n"
    )
    .into_bytes()
}

/// The mail is refused `notice_mismatch` naming `field`, nothing is confirmed, the reply to
/// alice says so and the mail is filed under Refused. Returns the reply's body.
async fn refused_mismatch(env: &Env, w: &Pipeline, mid: &str, raw: Vec<u8>, field: &str) -> String {
    let p = w.process(&deliver(env, raw)).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("notice_mismatch"), "{p:?}");
    let reason = p.reason.clone().unwrap_or_default();
    assert!(reason.contains(field), "names the field {field}: {reason}");
    assert!(confirms(env).is_empty(), "nothing confirmed");
    assert!(
        folder(env, "Refused").contains(&format!("{mid}@corp.example.test")),
        "filed as refused"
    );
    let replies = sent_to(env, ALICE);
    let reply = replies.last().expect("a reply");
    assert!(reply.0.starts_with("Not approved"), "{}", reply.0);
    assert!(reply.1.contains("notice_mismatch"), "{}", reply.1);
    assert!(reply.1.contains(field), "{}", reply.1);
    reply.1.clone()
}

#[tokio::test]
async fn a_genuine_notification_showing_every_field_is_confirmed() {
    let Some(env) = env_with_requests().await else {
        return;
    };
    let w = pipeline(&env).await;
    let fields = genuine_fields(&env, 40);
    let p = w
        .process(&deliver(&env, shown_mail("genuine", 40, &fields)))
        .await
        .expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "DBSafe_40");
    w.close().await;
}

#[tokio::test]
async fn a_look_alike_naming_a_real_request_but_showing_another_account_is_refused() {
    let Some(env) = env_with_requests().await else {
        return;
    };
    let w = pipeline(&env).await;
    // The id and safe of request 40 (oracle on db01), the account of request 41.
    let other = genuine_fields(&env, 41);
    let fields = with(genuine_fields(&env, 40), "Account name", &other[0].1);
    let body = refused_mismatch(
        &env,
        &w,
        "account",
        shown_mail("account", 40, &fields),
        "account name",
    )
    .await;
    assert!(body.contains("web01.example.test-readonly"), "{body}");
    // The device user name and the address alone, too.
    let fields = with(genuine_fields(&env, 40), "Device User Name", "readonly");
    refused_mismatch(
        &env,
        &w,
        "device",
        shown_mail("device", 40, &fields),
        "device user name",
    )
    .await;
    let fields = with(genuine_fields(&env, 40), "Address", "web01.example.test");
    refused_mismatch(
        &env,
        &w,
        "address",
        shown_mail("address", 40, &fields),
        "address",
    )
    .await;
    w.close().await;
}

#[tokio::test]
async fn a_look_alike_showing_another_reason_or_window_is_refused() {
    let Some(env) = env_with_requests().await else {
        return;
    };
    let w = pipeline(&env).await;
    let fields = with(genuine_fields(&env, 40), "Reason", "Read the web logs");
    refused_mismatch(
        &env,
        &w,
        "reason",
        shown_mail("reason", 40, &fields),
        "reason",
    )
    .await;
    // An access window that ends three hours later than PVWA's.
    let r = env.sim.state.pvwa.request("DBSafe_40").expect("request");
    let later = us_local(r["AccessTo"].as_i64().expect("to") + 3 * 3600);
    let fields = with(genuine_fields(&env, 40), "Request end date", &later);
    refused_mismatch(
        &env,
        &w,
        "window",
        shown_mail("window", 40, &fields),
        "request end date",
    )
    .await;
    // Request 41 has no access window: a notification that shows one is refused.
    let fields: Vec<(String, String)> = genuine_fields(&env, 41)
        .into_iter()
        .map(|(l, v)| if l == "Request start date" { (l, us_local(r["AccessFrom"].as_i64().expect("from"))) } else { (l, v) })
        .collect();
    refused_mismatch(
        &env,
        &w,
        "nowindow",
        shown_mail("nowindow", 41, &fields),
        "request start date",
    )
    .await;
    w.close().await;
}

#[tokio::test]
async fn a_date_in_no_known_format_is_refused_until_the_site_configures_it() {
    let Some(env) = env_with_requests().await else {
        return;
    };
    let r = env.sim.state.pvwa.request("DBSafe_40").expect("request");
    let offset = chrono::FixedOffset::east_opt(3600).expect("offset");
    let german = chrono::DateTime::from_timestamp(r["CreationDate"].as_i64().expect("c"), 0)
        .expect("instant")
        .with_timezone(&offset)
        .format("%d.%m.%Y, %H.%M Uhr")
        .to_string();
    let fields = with(genuine_fields(&env, 40), "Issued on", &german);
    let w = pipeline(&env).await;
    let body = refused_mismatch(
        &env,
        &w,
        "german",
        shown_mail("german", 40, &fields),
        "issued-on date",
    )
    .await;
    assert!(body.contains("notice.date_formats"), "{body}");
    w.close().await;
    // With the site's format configured, the same notification is confirmed.
    let text = format!(
        "{}\n[notice]\ndate_formats = [\"%d.%m.%Y, %H.%M Uhr\"]\n",
        config_text(&env, DEFAULT_APPROVERS, "", "")
    );
    let cfg = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let w = Pipeline::new(&cfg, false).await.expect("pipeline");
    let p = w
        .process(&deliver(&env, shown_mail("german2", 40, &fields)))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}

#[tokio::test]
async fn dry_run_reports_the_mismatch_and_confirms_nothing() {
    let Some(env) = env_with_requests().await else {
        return;
    };
    let fields = with(genuine_fields(&env, 40), "Account name", "adm_root");
    deliver(&env, shown_mail("dry", 40, &fields));
    let dry = Pipeline::new(&config(&env, DEFAULT_APPROVERS), true)
        .await
        .expect("dry");
    let (out, _) = dry.run_once().await.expect("pass");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].outcome.as_deref(), Some("would_refuse"), "{out:?}");
    assert_eq!(out[0].reason_code.as_deref(), Some("notice_mismatch"));
    assert!(confirms(&env).is_empty());
    dry.close().await;
}

/// alice forwards a mail whose text/plain rendering shows `plain` and whose text/html
/// rendering (what most clients display) shows `html`.
fn two_renderings(mid: &str, number: u32, plain: &[(String, String)], html: &[(String, String)]) -> Vec<u8> {
    let text: String = plain
        .iter()
        .map(|(l, v)| format!("{l}: {v}\r\n"))
        .collect();
    let rows: String = html
        .iter()
        .map(|(l, v)| format!("<tr><td><b>{l}:</b></td><td>{v}</td></tr>\r\n"))
        .collect();
    format!(
        "Received: from EX01.corp.example.test (10.1.2.11) by EX02.corp.example.test\r\n (10.1.2.12) with Microsoft SMTP Server; Tue, 4 Mar 2025 09:20:11 +0100\r\n\
From: Alice <{ALICE}>\r\n\
To: PAM Approvals <{BOX}>\r\n\
Subject: FW: Notification: Password access request\r\n\
Date: Tue, 4 Mar 2025 09:20:11 +0100\r\n\
Message-ID: <{mid}@corp.example.test>\r\n\
X-MS-Exchange-Organization-AuthSource: EX01.corp.example.test\r\n\
X-MS-Exchange-Organization-AuthAs: Internal\r\n\
X-MS-Exchange-Organization-AuthMechanism: 04\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
\r\n\
-----Original Message-----\r\n\
From: CyberArk Vault <vault-notifications@example.test>\r\n\
Sent: Tuesday, March 4, 2025 9:12 AM\r\n\
To: Alice <{ALICE}>\r\n\
Subject: Notification: Password access request\r\n\
\r\n\
Requester email: dave@example.test\r\n\
Safe: DBSafe\r\n\
Request Id: {number}\r\n\
{text}\
\r\n\
--b1\r\n\
Content-Type: text/html; charset=\"utf-8\"\r\n\
\r\n\
<html><body><div>-----Original Message-----<br>\r\n\
From: CyberArk Vault &lt;vault-notifications@example.test&gt;<br>\r\n\
Sent: Tuesday, March 4, 2025 9:12 AM<br>\r\n\
To: Alice &lt;{ALICE}&gt;<br>\r\n\
Subject: Notification: Password access request<br></div>\r\n\
<table>\r\n\
<tr><td><b>Requester email:</b></td><td>dave@example.test</td></tr>\r\n\
<tr><td><b>Safe:</b></td><td>DBSafe</td></tr>\r\n\
<tr><td><b>Request Id:</b></td><td>{number}</td></tr>\r\n\
{rows}\
</table></body></html>\r\n\
--b1--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn every_rendering_is_compared_not_only_the_one_read_first() {
    let Some(env) = env_with_requests().await else {
        return;
    };
    let w = pipeline(&env).await;
    let genuine = genuine_fields(&env, 40);
    // Both renderings genuine: confirmed.
    let p = w
        .process(&deliver(&env, two_renderings("both", 40, &genuine, &genuine)))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    // The plain text (read first) is genuine; the HTML a mail client displays shows request
    // 41's account.
    let env2 = match env_with_requests().await {
        Some(e) => e,
        None => return,
    };
    w.close().await;
    let w = pipeline(&env2).await;
    let genuine = genuine_fields(&env2, 40);
    let other = genuine_fields(&env2, 41);
    let shown = with(genuine.clone(), "Account name", &other[0].1);
    // The reader compares the renderings with each other first (issue 25): two accounts in
    // one mail are refused before PVWA is asked, and nothing is confirmed.
    let raw = two_renderings("html", 40, &genuine, &shown);
    let p = w.process(&deliver(&env2, raw)).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("conflicting_fields"), "{p:?}");
    assert!(p.reason.clone().unwrap_or_default().contains("account"), "{p:?}");
    assert!(confirms(&env2).is_empty(), "nothing confirmed");
    w.close().await;
}

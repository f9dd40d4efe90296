//! The EWS mailbox client against pam-sim's Exchange over HTTPS with the test CA: the watcher's
//! whole flow, throttling in both shapes, auth failures, wrong URL, missing mailbox, NTLM,
//! OAuth2 app-only with impersonation, streaming with reconnects, catch-up. Every SOAP document
//! of every test (our requests as the server received them, the server's answers) is validated
//! against Microsoft's schema at the end of each test.

// A skipped schema check says so on the test output.
#![allow(clippy::print_stderr)]

use std::time::Duration;

use approval_core::exit::{Classify, Exit};
use approval_core::mailbox::ews::EwsMailbox;
use approval_core::mailbox::{
    FileSyncState, Mailbox, MailboxConfig, MailboxError, OutgoingMail, WaitOutcome,
};
use approval_core::secret::Resolver;
#[path = "../../ews/tests/support/schema.rs"]
mod schema;
use pam_sim::{Scenario, Sim, SimOptions};
use schema::Outcome;

const SCENARIO: &str = r#"
[ews]
heartbeat_ms = 200
stream_minute_ms = 1500
mailboxes = ["shared@example.com"]
users = [
  { username = "bot@example.com", password = "bot-password", mailbox = "bot@example.com" },
  { username = "CORP\\svc", password = "svc-password", mailbox = "svc@example.com" },
  { username = "app-client", password = "app-secret", mailbox = "app@example.com", impersonation = true },
]
"#;

fn eml(n: u32) -> Vec<u8> {
    format!(
        "Received: from mx1.example.com (10.0.0.1) by exch01.example.com\r\n with SMTP; Mon, 5 Jan 2026 10:00:0{n} +0000\r\n\
Authentication-Results: exch01.example.com; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com\r\n\
From: \"Alice Approver\" <alice@example.com>\r\n\
To: bot@example.com\r\n\
Subject: FW: Notification: Password access request {n}\r\n\
Message-ID: <fw-{n}@example.com>\r\n\
Date: Mon, 5 Jan 2026 10:00:0{n} +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n\
Please approve request {n} & thanks <3\r\n"
    )
    .into_bytes()
}

struct Env {
    sim: Sim,
    _dir: tempfile::TempDir,
    dir_path: std::path::PathBuf,
}

async fn start() -> Env {
    start_with(SCENARIO).await
}

async fn start_with(scenario: &str) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Sim::start(
        Scenario::from_toml(scenario).expect("scenario"),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("pam-sim starts");
    let dir_path = dir.path().to_path_buf();
    Env {
        sim,
        _dir: dir,
        dir_path,
    }
}

fn secret_file(env: &Env, name: &str, value: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = env.dir_path.join(name);
    std::fs::write(&p, value).expect("write secret");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    format!("file:{}", p.display())
}

fn config(env: &Env, extra: &str) -> MailboxConfig {
    let ca = env
        .sim
        .ca_cert
        .as_ref()
        .expect("https")
        .display()
        .to_string();
    let pw = secret_file(env, "pw", "bot-password");
    let text = format!(
        r#"
url = "{}/EWS/Exchange.asmx"
username = "bot@example.com"
password = "{pw}"
mailbox = "bot@example.com"
ca_bundle = "{ca}"
retries = 3
backoff_ms = 20
request_timeout_secs = 10
poll_interval_secs = 1
{extra}
"#,
        env.sim.url()
    );
    toml::from_str(&text).expect("mailbox config parses")
}

/// Replace a top-level key of the generated config text.
fn config_with(env: &Env, replace: &[(&str, &str)], extra: &str) -> MailboxConfig {
    let mut c = config(env, extra);
    for (k, v) in replace {
        match *k {
            "url" => c.url = v.to_string(),
            "mailbox" => c.mailbox = v.to_string(),
            "password" => {
                c.password = Some(secret_file(env, "pw2", v).parse().expect("secret ref"))
            }
            "username" => c.username = Some(v.to_string()),
            other => panic!("unknown key {other}"),
        }
    }
    c
}

async fn mailbox(cfg: &MailboxConfig) -> EwsMailbox {
    EwsMailbox::new(cfg, &Resolver::new(None).expect("resolver"))
        .await
        .expect("mailbox client")
}

/// Validate every SOAP document the simulator saw and sent.
fn validate_transcript(sim: &Sim) {
    let docs = sim.state.ews.transcript();
    assert!(!docs.is_empty(), "no SOAP traffic recorded");
    match schema::validate(&docs).expect("every SOAP document validates against the EWS schema") {
        Outcome::Valid(n) => assert_eq!(n, docs.len()),
        Outcome::Skipped(why) => eprintln!("SKIPPED schema validation: {why}"),
    }
}

fn folder_items(sim: &Sim, name: &str) -> Vec<serde_json::Value> {
    let v = sim
        .state
        .ews
        .folders_json("bot@example.com")
        .expect("mailbox");
    v["folders"]
        .as_array()
        .expect("folders")
        .iter()
        .filter(|f| f["name"] == name)
        .flat_map(|f| f["items"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watchers_flow_works_end_to_end() {
    let env = start().await;
    let mb = mailbox(&config(&env, "")).await;
    assert!(mb.list_new().await.expect("list").is_empty());

    let now = env.sim.state.clock.now_ms();
    env.sim
        .state
        .ews
        .deliver("bot@example.com", None, eml(1), now)
        .expect("deliver");
    env.sim
        .state
        .ews
        .deliver("bot@example.com", None, eml(2), now + 1)
        .expect("deliver");
    let new = mb.list_new().await.expect("list");
    assert_eq!(new.len(), 2);

    let m = mb.fetch(&new[0]).await.expect("fetch");
    assert_eq!(m.mime, eml(1), "MIME comes back byte for byte");
    let th = m
        .transport_headers
        .as_deref()
        .expect("PR_TRANSPORT_MESSAGE_HEADERS");
    assert!(th.starts_with("Received: from mx1.example.com"), "{th}");
    assert!(th.contains("\r\n with SMTP"), "folded lines kept: {th}");
    assert!(
        m.internet_headers
            .iter()
            .any(|(k, v)| k == "Authentication-Results" && v.contains("spf=pass"))
    );
    assert_eq!(
        m.from.as_ref().and_then(|a| a.email.as_deref()),
        Some("alice@example.com")
    );
    assert_eq!(
        m.sender.as_ref().and_then(|a| a.name.as_deref()),
        Some("Alice Approver")
    );
    assert_eq!(m.internet_message_id.as_deref(), Some("<fw-1@example.com>"));
    assert_eq!(
        m.subject.as_deref(),
        Some("FW: Notification: Password access request 1")
    );
    assert_eq!(m.is_read, Some(false));

    let read = mb.mark_read(&new[0]).await.expect("mark read");
    assert_eq!(read.id, new[0].id);
    assert_ne!(
        read.change_key, new[0].change_key,
        "the change key changes on update"
    );
    assert_eq!(mb.list_new().await.expect("list").len(), 1);

    let filed = mb.file(&read, "Processed").await.expect("file");
    assert_ne!(filed.id, read.id, "a moved item gets a new id");
    let filed2 = mb.file(&new[1], "Processed").await.expect("file again");
    let processed = folder_items(&env.sim, "Processed");
    assert_eq!(processed.len(), 2);
    let ids: Vec<&str> = processed.iter().filter_map(|i| i["id"].as_str()).collect();
    assert!(ids.contains(&filed.id.as_str()) && ids.contains(&filed2.id.as_str()));
    let v = env
        .sim
        .state
        .ews
        .folders_json("bot@example.com")
        .expect("mailbox");
    let n_processed = v["folders"]
        .as_array()
        .expect("folders")
        .iter()
        .filter(|f| f["name"] == "Processed")
        .count();
    assert_eq!(n_processed, 1, "the folder is created once and then found");
    // the old id is gone
    let gone = mb.fetch(&new[1]).await.expect_err("moved away");
    assert!(matches!(gone, MailboxError::NotFound { .. }), "{gone}");
    assert_eq!(gone.exit(), Exit::Refused);

    mb.send(&OutgoingMail {
        to: vec!["alice@example.com".into()],
        cc: vec!["pam-team@example.com".into()],
        subject: "Request Safe1_42 confirmed".into(),
        text: "Approved on behalf of alice.\nBye & <thanks>".into(),
        html: None,
        send_key: Some("pam-approval-reply-0001".into()),
        headers: vec![("Auto-Submitted".into(), "auto-replied".into())],
    })
    .await
    .expect("send");
    // The saved copy carries the send key: the server can say the mail went out.
    assert!(
        mb.was_sent("pam-approval-reply-0001")
            .await
            .expect("FindItem by send key")
    );
    assert!(
        !mb.was_sent("pam-approval-reply-0002")
            .await
            .expect("FindItem by send key"),
        "another key is not found"
    );
    let sent = env.sim.state.ews.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, vec!["alice@example.com"]);
    assert_eq!(sent[0].cc, vec!["pam-team@example.com"]);
    assert_eq!(sent[0].body, "Approved on behalf of alice.\nBye & <thanks>");
    assert_eq!(sent[0].disposition, "SendAndSaveCopy");
    assert_eq!(
        sent[0].headers,
        [("Auto-Submitted".to_string(), "auto-replied".to_string())],
        "an Internet header set as an InternetHeaders extended property"
    );
    assert_eq!(
        folder_items(&env.sim, "Sent Items").len(),
        1,
        "a copy is saved"
    );

    mb.send(&OutgoingMail {
        to: vec!["bob@example.com".into()],
        subject: "Refused".into(),
        text: "no".into(),
        html: Some("<p>Refused: <b>not an approver</b></p>".into()),
        ..OutgoingMail::default()
    })
    .await
    .expect("send html");
    assert_eq!(env.sim.state.ews.sent()[1].body_type, "HTML");
    validate_transcript(&env.sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_up_resumes_from_the_persisted_sync_state() {
    let env = start().await;
    let mb = mailbox(&config(&env, "")).await;
    let state = FileSyncState::new(env.dir_path.join("sync.state"));
    let now = env.sim.state.clock.now_ms();
    for n in 1..=3 {
        env.sim
            .state
            .ews
            .deliver("bot@example.com", None, eml(n), now + n as i64)
            .expect("deliver");
    }
    let first = mb.catch_up(&state).await.expect("first catch-up");
    assert_eq!(first.len(), 3);
    assert!(
        std::fs::read_to_string(env.dir_path.join("sync.state"))
            .expect("state saved")
            .len()
            > 4
    );
    assert!(mb.catch_up(&state).await.expect("nothing new").is_empty());

    // A restart: a new client with the same state file sees only what came meanwhile.
    drop(mb);
    let id4 = env
        .sim
        .state
        .ews
        .deliver("bot@example.com", None, eml(4), now + 10)
        .expect("deliver");
    let mb = mailbox(&config(&env, "")).await;
    let again = mb.catch_up(&state).await.expect("after restart");
    assert_eq!(
        again.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        vec![id4.as_str()]
    );

    // A corrupt state starts over instead of failing forever.
    std::fs::write(env.dir_path.join("sync.state"), "garbage").expect("write");
    assert_eq!(mb.catch_up(&state).await.expect("reset").len(), 4);
    validate_transcript(&env.sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_busy_is_retried_in_both_shapes_and_reported_when_it_persists() {
    let env = start().await;
    let mb = mailbox(&config(&env, "")).await;
    env.sim
        .state
        .ews
        .deliver("bot@example.com", None, eml(1), 0)
        .expect("deliver");
    let busy = |count, shape: &str, op: &str| pam_sim::ews::Busy {
        count,
        back_off_ms: 40,
        shape: shape.into(),
        operation: Some(op.into()),
    };

    env.sim.state.ews.inject_busy(busy(2, "fault", "FindItem"));
    let t = std::time::Instant::now();
    assert_eq!(
        mb.list_new().await.expect("retried past the fault").len(),
        1
    );
    assert!(
        t.elapsed() >= Duration::from_millis(80),
        "BackOffMilliseconds honoured"
    );

    env.sim
        .state
        .ews
        .inject_busy(busy(2, "message", "FindItem"));
    assert_eq!(
        mb.list_new().await.expect("retried past the message").len(),
        1
    );

    // retries = 3: four attempts, all busy
    env.sim.state.ews.inject_busy(busy(4, "fault", "FindItem"));
    let e = mb.list_new().await.expect_err("stays busy");
    assert!(matches!(e, MailboxError::Busy { .. }), "{e}");
    assert_eq!(e.exit(), Exit::TempFail);

    // HTTP 503 from a load balancer, then success.
    env.sim.state.faults.set(
        "ews",
        serde_json::from_value(serde_json::json!({"fail": {"status": 503, "count": 2, "headers": {"Retry-After": "0"}}}))
            .expect("faults"),
    );
    let after_503 = mb.list_new().await;
    env.sim.state.faults.clear();
    assert_eq!(after_503.expect("retried past two 503s").len(), 1);
    let transcript = env.sim.state.ews.transcript();
    assert!(
        transcript
            .iter()
            .any(|(n, _)| n == "response-fault-ErrorServerBusy")
    );
    assert!(
        transcript
            .iter()
            .any(|(n, _)| n == "response-FindItem-busy")
    );
    validate_transcript(&env.sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_url_and_mailbox_give_specific_errors() {
    let env = start().await;

    let bad_pw = mailbox(&config_with(&env, &[("password", "wrong")], "")).await;
    let e = bad_pw.list_new().await.expect_err("refused");
    assert!(matches!(e, MailboxError::AuthFailed { .. }), "{e}");
    assert_eq!(e.exit(), Exit::NoPerm);
    assert!(!e.to_string().contains("wrong"), "no secret in errors: {e}");

    let bad_url = mailbox(&config_with(
        &env,
        &[("url", &format!("{}/owa/", env.sim.url()))],
        "",
    ))
    .await;
    let e = bad_url.list_new().await.expect_err("not EWS");
    assert!(matches!(e, MailboxError::WrongUrl { .. }), "{e}");
    assert_eq!(e.exit(), Exit::Config);

    let no_mbx = mailbox(&config_with(&env, &[("mailbox", "nobody@example.com")], "")).await;
    let e = no_mbx.list_new().await.expect_err("no such mailbox");
    assert!(matches!(e, MailboxError::NoSuchMailbox { .. }), "{e}");

    // Nothing listens: unreachable, after retries.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dead = mailbox(&config_with(
        &env,
        &[(
            "url",
            &format!("https://127.0.0.1:{closed}/EWS/Exchange.asmx"),
        )],
        "",
    ))
    .await;
    let e = dead.list_new().await.expect_err("unreachable");
    assert!(matches!(e, MailboxError::Unreachable { .. }), "{e}");
    assert_eq!(e.exit(), Exit::Unavailable);
    validate_transcript(&env.sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn ntlm_authenticates_on_one_connection() {
    let env = start().await;
    let mut cfg = config_with(
        &env,
        &[
            ("username", "CORP\\svc"),
            ("password", "svc-password"),
            ("mailbox", "svc@example.com"),
        ],
        "auth = \"ntlm\"",
    );
    cfg.auth = approval_core::mailbox::EwsAuth::Ntlm;
    let mb = mailbox(&cfg).await;
    env.sim
        .state
        .ews
        .deliver("svc@example.com", None, eml(1), 0)
        .expect("deliver");
    let new = mb.list_new().await.expect("list over NTLM");
    assert_eq!(new.len(), 1);
    assert_eq!(mb.fetch(&new[0]).await.expect("fetch").mime, eml(1));
    // streaming over NTLM too
    assert_eq!(
        mb.wait_for_new(Duration::from_secs(5)).await.expect("wait"),
        WaitOutcome::Resync
    );

    let mut bad = cfg.clone();
    bad.password = Some(secret_file(&env, "pw3", "nope").parse().expect("ref"));
    let e = mailbox(&bad).await.list_new().await.expect_err("refused");
    assert!(matches!(e, MailboxError::AuthFailed { .. }), "{e}");
    validate_transcript(&env.sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth2_app_only_impersonates_the_mailbox() {
    let env = start().await;
    let secret = secret_file(&env, "client-secret", "app-secret");
    let extra = format!(
        "auth = \"oauth2\"\n[oauth]\ntoken_url = \"{}/sim/ews/oauth2/token\"\nclient_id = \"app-client\"\nclient_secret = \"{secret}\"\n",
        env.sim.url()
    );
    let cfg = config_with(&env, &[("mailbox", "shared@example.com")], &extra);
    let mb = mailbox(&cfg).await;
    env.sim
        .state
        .ews
        .deliver("shared@example.com", None, eml(7), 0)
        .expect("deliver");
    let new = mb.list_new().await.expect("list as app");
    assert_eq!(new.len(), 1);
    let transcript = env.sim.state.ews.transcript();
    let req = transcript
        .iter()
        .find(|(n, _)| n == "request-FindItem")
        .expect("request seen");
    let text = String::from_utf8_lossy(&req.1);
    assert!(
        text.contains("<t:PrimarySmtpAddress>shared@example.com</t:PrimarySmtpAddress>"),
        "{text}"
    );

    let bad_extra = extra.replace("client-secret", "client-secret-bad");
    secret_file(&env, "client-secret-bad", "wrong");
    let e = mailbox(&config_with(
        &env,
        &[("mailbox", "shared@example.com")],
        &bad_extra,
    ))
    .await
    .list_new()
    .await
    .expect_err("no token");
    assert!(matches!(e, MailboxError::AuthFailed { .. }), "{e}");
    validate_transcript(&env.sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_reports_new_mail_and_survives_closes_and_drops() {
    let env = start().await;
    let mb = mailbox(&config(&env, "stream_timeout_minutes = 1")).await;
    // The first wait subscribes and asks for a listing (mail may predate the subscription).
    assert_eq!(
        mb.wait_for_new(Duration::from_secs(5)).await.expect("wait"),
        WaitOutcome::Resync
    );

    let id = env
        .sim
        .state
        .ews
        .deliver("bot@example.com", None, eml(1), 0)
        .expect("deliver");
    match mb.wait_for_new(Duration::from_secs(5)).await.expect("wait") {
        WaitOutcome::NewMail(ids) => assert!(ids.iter().any(|m| m.id == id), "{ids:?}"),
        other => panic!("expected new mail, got {other:?}"),
    }

    // The server closes each stream after its "minute" (1.5 s here): the client reconnects
    // on the same subscription and still hears new mail.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        mb.wait_for_new(Duration::from_millis(300))
            .await
            .expect("idle"),
        WaitOutcome::Idle
    );
    let id2 = env
        .sim
        .state
        .ews
        .deliver("bot@example.com", None, eml(2), 0)
        .expect("deliver");
    match mb.wait_for_new(Duration::from_secs(5)).await.expect("wait") {
        WaitOutcome::NewMail(ids) => assert!(ids.iter().any(|m| m.id == id2), "{ids:?}"),
        other => panic!("expected new mail after Closed, got {other:?}"),
    }

    // A dropped connection: the client says Resync, reconnects, and hears the next mail.
    env.sim.state.ews.drop_streams();
    assert_eq!(
        mb.wait_for_new(Duration::from_secs(5)).await.expect("wait"),
        WaitOutcome::Resync
    );
    let id3 = env
        .sim
        .state
        .ews
        .deliver("bot@example.com", None, eml(3), 0)
        .expect("deliver");
    let mut seen = false;
    for _ in 0..5 {
        match mb.wait_for_new(Duration::from_secs(5)).await.expect("wait") {
            WaitOutcome::NewMail(ids) if ids.iter().any(|m| m.id == id3) => {
                seen = true;
                break;
            }
            _ => {}
        }
    }
    assert!(seen, "new mail after a dropped stream");
    let streams = env
        .sim
        .state
        .ews
        .transcript()
        .iter()
        .filter(|(n, _)| n == "request-GetStreamingEvents")
        .count();
    assert!(streams >= 3, "reconnected: {streams} GetStreamingEvents");
    assert_eq!(
        env.sim.state.ews.subscription_count(),
        1,
        "one subscription, reused"
    );
    validate_transcript(&env.sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn folder_rights_reads_the_permission_set_and_the_delegates() {
    let scenario = format!(
        r#"{SCENARIO}
get_delegate_denied = ["shared@example.com"]
[[ews.folder_permissions]]
mailbox = "bot@example.com"
user = "colleague@example.com"
display_name = "A Colleague"
level = "Author"
[[ews.folder_permissions]]
mailbox = "bot@example.com"
user = "Default"
level = "FolderVisible"
[[ews.folder_permissions]]
mailbox = "bot@example.com"
folder = "sentitems"
user = "other@example.com"
level = "Editor"
[[ews.delegates]]
mailbox = "bot@example.com"
user = "assistant@example.com"
display_name = "An Assistant"
inbox = "Reviewer"
"#
    );
    let env = start_with(&scenario).await;
    let mb = mailbox(&config(&env, "")).await;
    let r = mb.folder_rights().await;
    let grants = r.folder.expect("permission set read");
    // Default (FolderVisible, shown as Custom), Anonymous (None), the colleague; the Sent Items
    // entry belongs to another folder.
    assert_eq!(grants.len(), 3, "{grants:?}");
    let creators: Vec<_> = grants.iter().filter(|g| g.can_create).collect();
    assert_eq!(creators.len(), 1, "{grants:?}");
    assert_eq!(creators[0].who, "A Colleague <colleague@example.com>");
    assert_eq!(creators[0].level, "Author");
    let d = r.delegates.expect("delegates read");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].smtp.as_deref(), Some("assistant@example.com"));
    assert_eq!(d[0].inbox_level.as_deref(), Some("Reviewer"));

    // A mailbox whose delegates the account may not read: the reason, not an empty list.
    let shared = mailbox(&config_with(&env, &[("mailbox", "shared@example.com")], "")).await;
    let r = shared.folder_rights().await;
    assert_eq!(r.folder.expect("permission set read").len(), 2);
    let why = r.delegates.expect_err("GetDelegate refused");
    assert!(why.contains("ErrorAccessDenied"), "{why}");
    validate_transcript(&env.sim);
}

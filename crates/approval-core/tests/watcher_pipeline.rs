//! `Pipeline::process` end to end: pam-sim (PVWA + Exchange over HTTPS) and a real slapd
//! (scripts/start-slapd.sh, scripts/ldap/ad-data.ldif: alice and bob approve DBSafe, bob
//! through a nested group; dave approves InfraSafe only). Each test has its own servers.
//! Assertions are on pam-sim's confirm log, the mails it received, its folders, and the journal.

#[path = "support/slapd.rs"]
mod slapd;

use approval_core::exit::Exit;
use approval_core::journal::{Begin, State};
use approval_core::mailbox::MessageRef;
use approval_core::pipeline::{Pipeline, Processed};
use pam_sim::faults::{FailNext, Faults};
use pam_sim::{Scenario, Sim, SimOptions};
use slapd::{Opts, Slapd};

const BOX: &str = "pam-approvals@example.test";

const SCENARIO: &str = r#"
[ews]
users = [ { username = "pam-approvals@example.test", password = "box-pass", mailbox = "pam-approvals@example.test" } ]

[pvwa]
[[pvwa.users]]
name = "svc_pam_level1"
password = "l1-pass"
groups = ["PAM_Approvers_L1"]
[[pvwa.users]]
name = "svc_pam_level2"
password = "l2-pass"
groups = ["PAM_Approvers_L2"]
[[pvwa.users]]
name = "svc_pam_lookup"
password = "lookup-pass"
groups = ["PAM_Readers"]
[[pvwa.users]]
name = "alice"
password = "x"
email = "alice@example.test"
[[pvwa.users]]
name = "dave"
password = "x"
email = "dave@example.test"

[[pvwa.safes]]
name = "DBSafe"
members = [
  { name = "PAM_Approvers_L1", type = "group", level1 = true },
  { name = "PAM_Approvers_L2", type = "group", level2 = true },
  { name = "PAM_Readers", type = "group" },
]
[[pvwa.safes]]
name = "InfraSafe"
members = [
  { name = "PAM_Approvers_L1", type = "group", level1 = true },
  { name = "PAM_Approvers_L2", type = "group", level2 = true },
  { name = "PAM_Readers", type = "group" },
]

# dave's request on DBSafe, two levels.
[[pvwa.requests]]
number = 7
safe = "DBSafe"
requester = "dave"
levels = [1, 1]

# alice's own request on DBSafe.
[[pvwa.requests]]
number = 8
safe = "DBSafe"
requester = "alice"
levels = [1, 0]

# dave's request, single level.
[[pvwa.requests]]
number = 9
safe = "DBSafe"
requester = "dave"
levels = [1, 0]

# expired.
[[pvwa.requests]]
number = 10
safe = "DBSafe"
requester = "dave"
levels = [1, 0]
expires_in_secs = -3600

# a request on InfraSafe by alice.
[[pvwa.requests]]
number = 11
safe = "InfraSafe"
requester = "alice"
levels = [1, 0]
"#;

struct Env {
    sim: Sim,
    slapd: Option<Slapd>,
    dir: tempfile::TempDir,
}

fn secret(dir: &std::path::Path, name: &str, value: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, value).expect("write secret");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    format!("file:{}", p.display())
}

async fn start() -> Option<Env> {
    let slapd = Slapd::start(Opts::default())?;
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Sim::start(
        Scenario::from_toml(SCENARIO).expect("scenario"),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("pam-sim starts");
    Some(Env {
        sim,
        slapd: Some(slapd),
        dir,
    })
}

fn config(env: &Env, approvers: &str) -> approval_core::config::Loaded {
    let d = env.dir.path();
    let ca = env
        .sim
        .ca_cert
        .as_ref()
        .expect("https")
        .display()
        .to_string();
    let slapd = env.slapd.as_ref().expect("slapd");
    let text = format!(
        r#"
[pvwa]
url = "{url}"
ca_bundle = "{ca}"
retries = 0
backoff_ms = 10
request_timeout_secs = 10

[accounts.level1]
username = "svc_pam_level1"
password = "{l1}"
[accounts.level2]
username = "svc_pam_level2"
password = "{l2}"
[accounts.lookup]
username = "svc_pam_lookup"
password = "{lk}"

[mailbox]
url = "{url}/EWS/Exchange.asmx"
username = "{BOX}"
password = "{mb}"
mailbox = "{BOX}"
ca_bundle = "{ca}"
retries = 0
backoff_ms = 10

[sender]
allowed_domains = ["example.test"]
require_internal = true
auth_sources = ["EX01.corp.example.test"]

[directory]
url = "{ldap}"
bind_dn = "cn=svc_pamtool,ou=Users,dc=example,dc=test"
bind_password = "{lp}"
base_dn = "dc=example,dc=test"
ca_bundle = "{lca}"
connect_timeout_secs = 3
timeout_secs = 5
approvers = "{approvers}"
[[directory.static]]
group = "DB_PAMapprover"
level = 1
safes = ["DBSafe"]
[[directory.static]]
group = "DB_PAMapprover"
level = 2
safes = ["DBSafe"]
[[directory.static]]
group = "Infra_PAMapprover"
level = 1
safes = ["InfraSafe"]

[watcher]
state_dir = "{state}"
max_attempts = 3

[notify]
pam_team = ["pam-team@example.test"]
"#,
        url = env.sim.url(),
        l1 = secret(d, "l1", "l1-pass"),
        l2 = secret(d, "l2", "l2-pass"),
        lk = secret(d, "lk", "lookup-pass"),
        mb = secret(d, "mb", "box-pass"),
        lp = secret(d, "lp", "svcpw"),
        ldap = slapd.url(),
        lca = slapd.ca.display(),
        state = d.join("state").display(),
    );
    approval_core::config::load_from_parts(Some(&text), None, &[]).expect("config")
}

/// A forwarded notification as Exchange delivers it (internal, authenticated submission).
fn mail(
    mid: &str,
    from: &str,
    safe: &str,
    number: u32,
    requester: &str,
    internal: bool,
) -> Vec<u8> {
    let auth = if internal {
        "X-MS-Exchange-Organization-AuthSource: EX01.corp.example.test\r\n\
X-MS-Exchange-Organization-AuthAs: Internal\r\n\
X-MS-Exchange-Organization-AuthMechanism: 04\r\n"
    } else {
        ""
    };
    format!(
        "Received: from EX01.corp.example.test (10.1.2.11) by EX02.corp.example.test\r\n (10.1.2.12) with Microsoft SMTP Server; Tue, 4 Mar 2025 09:20:11 +0100\r\n\
From: Someone <{from}>\r\n\
To: PAM Approvals <{BOX}>\r\n\
Subject: FW: Notification: Password access request\r\n\
Date: Tue, 4 Mar 2025 09:20:11 +0100\r\n\
Message-ID: <{mid}@corp.example.test>\r\n\
{auth}MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=\"us-ascii\"\r\n\
\r\n\
Please approve.\r\n\
\r\n\
-----Original Message-----\r\n\
From: CyberArk Vault <vault-notifications@example.test>\r\n\
Sent: Tuesday, March 4, 2025 9:12 AM\r\n\
To: Someone <{from}>\r\n\
Subject: Notification: Password access request\r\n\
\r\n\
The following user has requested access to an account that requires your confirmation:\r\n\
\r\n\
Requester email: {requester}\r\n\
Safe: {safe}\r\n\
Request Id: {number}\r\n\
Account name: Operating System-UnixSSH-db01-oracle\r\n\
Reason: Maintenance\r\n\
\r\n\
To confirm or reject this request, log on to the Password Vault Web Access.\r\n"
    )
    .into_bytes()
}

fn deliver(env: &Env, raw: Vec<u8>) -> MessageRef {
    let id = env
        .sim
        .state
        .ews
        .deliver(BOX, None, raw, chrono::Utc::now().timestamp_millis())
        .expect("deliver");
    MessageRef {
        id,
        change_key: None,
    }
}

/// Message-ids (without brackets, lower case) in the folder named `name`.
fn folder(env: &Env, name: &str) -> Vec<String> {
    let j = env.sim.state.ews.folders_json(BOX).expect("mailbox");
    j["folders"]
        .as_array()
        .expect("folders")
        .iter()
        .filter(|f| {
            f["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
                || f["distinguished"].as_str() == Some(name)
        })
        .flat_map(|f| f["items"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| {
            i["message_id"]
                .as_str()
                .map(|m| m.trim_matches(['<', '>']).to_ascii_lowercase())
        })
        .collect()
}

fn confirms(env: &Env) -> Vec<(String, String, String)> {
    env.sim
        .state
        .pvwa
        .actions()
        .into_iter()
        .filter(|a| a.action.eq_ignore_ascii_case("confirm"))
        .map(|a| (a.request_id, a.user, a.reason))
        .collect()
}

fn sent_to(env: &Env, who: &str) -> Vec<(String, String, Vec<String>)> {
    env.sim
        .state
        .ews
        .sent()
        .into_iter()
        .filter(|s| s.to.iter().any(|t| t.eq_ignore_ascii_case(who)))
        .map(|s| (s.subject, s.body, s.cc))
        .collect()
}

macro_rules! env {
    () => {
        match start().await {
            Some(e) => e,
            None => return,
        }
    };
}

async fn pipeline(env: &Env) -> Pipeline {
    Pipeline::new(&config(env, "static"), false)
        .await
        .expect("pipeline builds")
}

fn done(p: &Processed, outcome: &str) {
    assert_eq!(p.state, Some(State::Filed), "{p:?}");
    assert_eq!(p.outcome.as_deref(), Some(outcome), "{p:?}");
    assert_eq!(p.exit, Exit::Ok, "{p:?}");
}

#[tokio::test]
async fn approvable_at_level_1_then_level_2_each_confirmed_once_with_the_level_account() {
    let env = env!();
    let w = pipeline(&env).await;
    // alice is a direct member of DB_PAMapprover.
    let m1 = deliver(
        &env,
        mail(
            "l1",
            "alice@example.test",
            "DBSafe",
            7,
            "dave@example.test",
            true,
        ),
    );
    let p = w.process(&m1).await.expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("DBSafe_7", "svc_pam_level1")
    );
    let marker = w
        .journal()
        .get(p.row.expect("row"))
        .expect("get")
        .expect("row")
        .marker
        .expect("marker");
    assert!(
        c[0].2.contains(&marker) && c[0].2.contains("alice@example.test"),
        "{}",
        c[0].2
    );
    let replies = sent_to(&env, "alice@example.test");
    assert_eq!(replies.len(), 1);
    assert!(replies[0].0.starts_with("Approved:"), "{}", replies[0].0);
    assert!(replies[0].1.contains("DBSafe_7") && replies[0].1.contains("dave"));
    assert!(replies[0].2.is_empty(), "no CC on success");
    assert_eq!(folder(&env, "Processed"), vec!["l1@corp.example.test"]);
    // Now at level 2: bob (nested through DB_Team) forwards it.
    let m2 = deliver(
        &env,
        mail(
            "l2",
            "bob@example.test",
            "DBSafe",
            7,
            "dave@example.test",
            true,
        ),
    );
    let p = w.process(&m2).await.expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(
        (c[1].0.as_str(), c[1].1.as_str()),
        ("DBSafe_7", "svc_pam_level2")
    );
    assert_eq!(folder(&env, "Processed").len(), 2);
    assert!(
        folder(&env, "inbox").is_empty(),
        "nothing left, nothing deleted"
    );
    w.close().await;
}

async fn refused_case(from: &str, number: u32, requester: &str, internal: bool, code: &str) {
    let env = env!();
    let w = pipeline(&env).await;
    let m = deliver(&env, mail("r", from, "DBSafe", number, requester, internal));
    let p = w.process(&m).await.expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some(code), "{p:?}");
    assert!(confirms(&env).is_empty(), "nothing confirmed");
    assert_eq!(folder(&env, "Refused"), vec!["r@corp.example.test"]);
    let replies = sent_to(&env, from);
    assert_eq!(replies.len(), 1, "one reply");
    assert!(replies[0].0.starts_with("Not approved"), "{}", replies[0].0);
    assert!(replies[0].1.contains(code), "{}", replies[0].1);
    w.close().await;
}

#[tokio::test]
async fn self_approval_is_refused() {
    refused_case(
        "alice@example.test",
        8,
        "alice@example.test",
        true,
        "self_approval",
    )
    .await;
}

#[tokio::test]
async fn another_teams_approver_is_refused() {
    // dave approves InfraSafe only.
    refused_case(
        "carol@example.test",
        9,
        "dave@example.test",
        true,
        "not_an_approver",
    )
    .await;
}

#[tokio::test]
async fn an_expired_request_is_refused() {
    // PVWA (and pam-sim) mark an expired request invalid ("Expired"): refused before the
    // expiry date is even looked at.
    refused_case(
        "alice@example.test",
        10,
        "dave@example.test",
        true,
        "request_invalid",
    )
    .await;
}

#[tokio::test]
async fn an_edited_forward_is_refused() {
    // The mail claims alice asked; PVWA says dave.
    refused_case(
        "bob@example.test",
        9,
        "alice@example.test",
        true,
        "requester_mismatch",
    )
    .await;
}

#[tokio::test]
async fn a_forged_sender_is_refused() {
    refused_case(
        "alice@example.test",
        9,
        "dave@example.test",
        false,
        "not_internal",
    )
    .await;
}

#[tokio::test]
async fn the_same_mail_twice_is_confirmed_once_and_answered_already_processed() {
    let env = env!();
    let w = pipeline(&env).await;
    let raw = mail(
        "dup",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        true,
    );
    let m1 = deliver(&env, raw.clone());
    done(&w.process(&m1).await.expect("first"), "confirmed");
    let m2 = deliver(&env, raw);
    let p = w.process(&m2).await.expect("second");
    assert_eq!(p.outcome.as_deref(), Some("already_processed"), "{p:?}");
    // A third pass over the same copy (e.g. filing failed before) does not answer again.
    assert_eq!(confirms(&env).len(), 1, "one confirm");
    let replies = sent_to(&env, "alice@example.test");
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies[1].1.contains("already_processed"),
        "{}",
        replies[1].1
    );
    assert_eq!(folder(&env, "Processed").len(), 2, "both copies filed");
    assert!(folder(&env, "inbox").is_empty());
    assert_eq!(
        w.journal().all().expect("all").len(),
        1,
        "one row for both copies"
    );
    w.close().await;
}

/// A crash after `decided`: the row is in the journal with its marker.
async fn crashed_decided(env: &Env, w: &Pipeline, m: &MessageRef, mid: &str, marker: &str) -> i64 {
    let key = approval_core::journal::mail_key(Some(&format!("<{mid}@corp.example.test>")), b"");
    let Begin::New(e) = w.journal().begin(&key, None, Some(&m.id)).expect("begin") else {
        panic!("new row")
    };
    w.journal()
        .decided(e.row, "DBSafe_9", 1, "alice@example.test", marker)
        .expect("decided");
    let _ = env;
    e.row
}

#[tokio::test]
async fn after_a_crash_a_confirm_already_in_pvwa_is_not_repeated() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "crash1",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    let row = crashed_decided(&env, &w, &m, "crash1", "c0ffee123456").await;
    // The confirm reached PVWA before the crash.
    let loaded = config(&env, "static");
    let pvwa = approval_core::pvwa::Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client");
    let s = pvwa
        .logon("svc_pam_level1", &secrecy::SecretString::from("l1-pass"))
        .await
        .expect("logon");
    s.confirm(
        "DBSafe_9",
        "Approved on behalf of alice@example.test by mail [ref c0ffee123456]",
    )
    .await
    .expect("confirm");
    s.logoff().await;
    let p = w.process(&m).await.expect("process");
    done(&p, "confirmed");
    assert_eq!(p.row, Some(row));
    assert_eq!(confirms(&env).len(), 1, "never a second confirm");
    let hist: Vec<String> = w
        .journal()
        .history(row)
        .expect("history")
        .into_iter()
        .map(|h| h.1)
        .collect();
    assert_eq!(hist, ["seen", "decided", "confirmed", "notified", "filed"]);
    assert_eq!(sent_to(&env, "alice@example.test").len(), 1);
    w.close().await;
}

#[tokio::test]
async fn after_a_crash_before_the_confirm_it_is_sent_once() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "crash2",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    crashed_decided(&env, &w, &m, "crash2", "abcdefabcdef").await;
    let p = w.process(&m).await.expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].2.contains("abcdefabcdef"),
        "the recorded marker is used: {}",
        c[0].2
    );
    w.close().await;
}

#[tokio::test]
async fn pvwa_503_leaves_the_mail_pending_then_it_is_confirmed() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "busy",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            fail: Some(FailNext {
                status: 503,
                count: 1000,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            path_contains: Some("incomingrequests".into()),
            ..Default::default()
        },
    );
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.state, Some(State::Seen), "{p:?}");
    assert!(p.pending.is_some() && p.exit != Exit::Ok, "{p:?}");
    assert_eq!(p.attempts, 1);
    let p = w.process(&m).await.expect("again");
    assert_eq!(p.attempts, 2);
    assert!(confirms(&env).is_empty());
    assert_eq!(
        folder(&env, "inbox"),
        vec!["busy@corp.example.test"],
        "the mail stays"
    );
    assert!(
        env.sim.state.ews.sent().is_empty(),
        "no reply while pending"
    );
    env.sim.state.faults.clear();
    let p = w.process(&m).await.expect("recovered");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}

#[tokio::test]
async fn a_mail_that_keeps_failing_is_given_up_with_a_failed_reply_to_the_team() {
    let env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "gone",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            fail: Some(FailNext {
                status: 503,
                count: 1000,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            path_contains: Some("incomingrequests".into()),
            ..Default::default()
        },
    );
    for _ in 0..2 {
        assert!(w.process(&m).await.expect("p").pending.is_some());
    }
    let p = w.process(&m).await.expect("third");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("gave_up"));
    let r = sent_to(&env, "alice@example.test");
    assert_eq!(r.len(), 1);
    assert!(r[0].0.starts_with("Failed"), "{}", r[0].0);
    assert_eq!(r[0].2, vec!["pam-team@example.test".to_string()]);
    assert!(confirms(&env).is_empty());
    w.close().await;
}

#[tokio::test]
async fn ldap_down_means_no_approval_and_the_mail_pending() {
    let mut env = env!();
    let w = pipeline(&env).await;
    let m = deliver(
        &env,
        mail(
            "ldap",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    drop(env.slapd.take());
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.state, Some(State::Seen), "{p:?}");
    assert!(
        p.pending
            .as_deref()
            .is_some_and(|e| e.contains("directory")),
        "{p:?}"
    );
    assert_eq!(p.exit, Exit::Unavailable);
    assert!(confirms(&env).is_empty());
    assert!(env.sim.state.ews.sent().is_empty());
    assert_eq!(folder(&env, "inbox").len(), 1);
    w.close().await;
}

#[tokio::test]
async fn safe_members_mode_and_run_once_and_dry_run() {
    let env = env!();
    // In safe-members mode PVWA's level-1 group PAM_Approvers_L1 must map to a directory group:
    // none exists, so nobody is an approver: refused, not approved.
    let loaded = config(&env, "safe-members");
    deliver(
        &env,
        mail(
            "sm",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    let dry = Pipeline::new(&loaded, true).await.expect("dry");
    let (out, exit) = dry.run_once().await.expect("dry pass");
    assert_eq!(exit, Exit::Ok);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].outcome.as_deref(), Some("would_refuse"), "{out:?}");
    assert_eq!(out[0].reason_code.as_deref(), Some("not_an_approver"));
    assert!(env.sim.state.ews.sent().is_empty() && confirms(&env).is_empty());
    assert_eq!(folder(&env, "inbox").len(), 1, "dry run files nothing");
    dry.close().await;
    let w = Pipeline::new(&loaded, false).await.expect("pipeline");
    let (out, exit) = w.run_once().await.expect("pass");
    assert_eq!(exit, Exit::Ok);
    done(&out[0], "refused");
    assert_eq!(out[0].reason_code.as_deref(), Some("not_an_approver"));
    let (out, _) = w.run_once().await.expect("second pass");
    assert!(out.is_empty(), "nothing left: {out:?}");
    w.close().await;
}

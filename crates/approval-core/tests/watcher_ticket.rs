//! The watcher's ticket check end to end (issue 9, point 4): `[ticketing]` against pam-sim's
//! ServiceNow, InfraSafe needs a ticket, PVWA (pam-sim) names it in the request's
//! `TicketingSystemProperties`. A valid ticket is confirmed; an invalid one is refused
//! `ticket_invalid`, nothing is confirmed, and the reply names the validation that failed.
//! Setup as in `watcher_pipeline.rs`: pam-sim over HTTPS and a real slapd
//! (scripts/ldap/ad-data.ldif: dave approves InfraSafe, as PVWA lists Infra_PAMapprover among its
//! members: the default approver mode, safe-members).

#[path = "support/slapd.rs"]
mod slapd;

use approval_core::exit::Exit;
use approval_core::journal::State;
use approval_core::mailbox::MessageRef;
use approval_core::pipeline::{Pipeline, Processed};
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

[[pvwa.safes]]
name = "InfraSafe"
members = [
  { name = "PAM_Approvers_L1", type = "group", level1 = true },
  { name = "PAM_Approvers_L2", type = "group", level2 = true },
  { name = "PAM_Readers", type = "group" },
  { name = "Infra_PAMapprover", type = "group", level1 = true },
]

# The directory group of InfraSafe's mail approvers (dave), as the vault's group records show it.
[[pvwa.groups]]
name = "Infra_PAMapprover"
type = "Directory"
directory = "example.test"
dn = "CN=Infra PAM Approvers,OU=Groups,DC=example,DC=test"

# alice's request with her open incident.
[[pvwa.requests]]
number = 21
safe = "InfraSafe"
requester = "alice"
levels = [1, 0]
ticket_system = "ServiceNow"
ticket = "INC0010001"

# alice's request with a closed incident.
[[pvwa.requests]]
number = 22
safe = "InfraSafe"
requester = "alice"
levels = [1, 0]
ticket_system = "ServiceNow"
ticket = "INC0010005"

# alice's request with a change still waiting for approval.
[[pvwa.requests]]
number = 23
safe = "InfraSafe"
requester = "alice"
levels = [1, 0]
ticket_system = "ServiceNow"
ticket = "CHG0030004"

# alice's request naming no ticket at all.
[[pvwa.requests]]
number = 24
safe = "InfraSafe"
requester = "alice"
levels = [1, 0]

[servicenow]
[[servicenow.users]]
user_name = "svc_ticketing"
password = "sn-pass"
roles = ["itil"]
[[servicenow.users]]
user_name = "alice"
email = "alice@example.test"

[[servicenow.incidents]]
number = "INC0010001"
state = "2"
caller = "alice"
[[servicenow.incidents]]
number = "INC0010005"
state = "7"
caller = "alice"

[[servicenow.changes]]
number = "CHG0030004"
state = "-4"
approval = "requested"
start_in_secs = -3600
end_in_secs = 10800
requested_by = "alice"
"#;

struct Env {
    sim: Sim,
    slapd: Slapd,
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
    Some(Env { sim, slapd, dir })
}

fn config(env: &Env) -> approval_core::settings::Loaded {
    let d = env.dir.path();
    let ca = env
        .sim
        .ca_cert
        .as_ref()
        .expect("https")
        .display()
        .to_string();
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
approvers = "safe-members"

[ticketing.servicenow]
url = "{url}"
auth = "basic"
username = "svc_ticketing"
password = "{sn}"
ca_bundle = "{ca}"
retries = 0
backoff_ms = 10

[[ticketing.types]]
name = "sn-incident"
system = "servicenow"
kind = "incident"
pattern = "INC[0-9]{{7}}"
allowed_states = ["New", "In Progress"]
check_requester = true

[[ticketing.types]]
name = "sn-change"
system = "servicenow"
kind = "change"
pattern = "CHG[0-9]{{7}}"
allowed_states = ["Assigned", "In Progress"]
allowed_approvals = ["Approved"]
check_window = true
check_requester = true

[ticketing.applies]
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
        sn = secret(d, "sn", "sn-pass"),
        ldap = env.slapd.url(),
        lca = env.slapd.ca.display(),
        state = d.join("state").display(),
    );
    approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config")
}

/// A forwarded notification as Exchange delivers it (internal, authenticated submission).
fn mail(mid: &str, from: &str, number: u32) -> Vec<u8> {
    format!(
        "Received: from EX01.corp.example.test (10.1.2.11) by EX02.corp.example.test\r\n (10.1.2.12) with Microsoft SMTP Server; Tue, 4 Mar 2025 09:20:11 +0100\r\n\
From: Someone <{from}>\r\n\
To: PAM Approvals <{BOX}>\r\n\
Subject: FW: Notification: Password access request\r\n\
Date: Tue, 4 Mar 2025 09:20:11 +0100\r\n\
Message-ID: <{mid}@corp.example.test>\r\n\
X-MS-Exchange-Organization-AuthSource: EX01.corp.example.test\r\n\
X-MS-Exchange-Organization-AuthAs: Internal\r\n\
X-MS-Exchange-Organization-AuthMechanism: 04\r\n\
MIME-Version: 1.0\r\n\
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
Requester email: alice@example.test\r\n\
Safe: InfraSafe\r\n\
Request Id: {number}\r\n\
Account name: Operating System-UnixSSH-server01.example.test-root\r\n\
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

fn confirms(env: &Env) -> Vec<(String, String)> {
    env.sim
        .state
        .pvwa
        .actions()
        .into_iter()
        .filter(|a| a.action.eq_ignore_ascii_case("confirm"))
        .map(|a| (a.request_id, a.user))
        .collect()
}

/// (subject, body) of every reply sent to `who`.
fn sent_to(env: &Env, who: &str) -> Vec<(String, String)> {
    env.sim
        .state
        .ews
        .sent()
        .into_iter()
        .filter(|s| s.to.iter().any(|t| t.eq_ignore_ascii_case(who)))
        .map(|s| (s.subject, s.body))
        .collect()
}

fn filed(p: &Processed, outcome: &str) {
    assert_eq!(p.state, Some(State::Filed), "{p:?}");
    assert_eq!(p.outcome.as_deref(), Some(outcome), "{p:?}");
    assert_eq!(p.exit, Exit::Ok, "{p:?}");
}

#[tokio::test]
async fn a_valid_ticket_is_confirmed_and_invalid_ones_are_refused_naming_the_failed_check() {
    let Some(env) = start().await else {
        return;
    };
    let w = Pipeline::new(&config(&env), false)
        .await
        .expect("pipeline builds");
    const DAVE: &str = "dave@example.test";

    // The open incident holds: confirmed with the level-1 account.
    let p = w
        .process(&deliver(&env, mail("ok", DAVE, 21)))
        .await
        .expect("process");
    filed(&p, "confirmed");
    assert_eq!(
        confirms(&env),
        vec![("InfraSafe_21".to_string(), "svc_pam_level1".to_string())]
    );
    let r = sent_to(&env, DAVE);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].0.starts_with("Approved:"), "{}", r[0].0);

    // Each invalid ticket: refused `ticket_invalid`, nothing confirmed, and the reply names
    // the ticket's own reason code (which validation failed).
    for (n, mid, why) in [
        (22u32, "closed", "state_not_allowed"),
        (23, "unapproved", "approval_not_allowed"),
        (24, "none", "ticket_missing"),
    ] {
        let p = w
            .process(&deliver(&env, mail(mid, DAVE, n)))
            .await
            .expect("process");
        filed(&p, "refused");
        assert_eq!(p.reason_code.as_deref(), Some("ticket_invalid"), "{p:?}");
        assert_eq!(confirms(&env).len(), 1, "request {n} was not confirmed");
        let r = sent_to(&env, DAVE);
        let last = r.last().expect("a reply");
        assert!(last.0.starts_with("Not approved"), "{}", last.0);
        assert!(
            last.1.contains("ticket_invalid") && last.1.contains(why),
            "request {n}: reply must name {why}: {}",
            last.1
        );
        if n != 24 {
            let t = if n == 22 { "INC0010005" } else { "CHG0030004" };
            assert!(last.1.contains(t), "reply names the ticket: {}", last.1);
        }
    }
    assert_eq!(sent_to(&env, DAVE).len(), 4, "one reply per mail");
    let actions = env.sim.state.pvwa.actions();
    assert!(
        actions
            .iter()
            .all(|a| a.request_id == "InfraSafe_21" && a.action.eq_ignore_ascii_case("confirm")),
        "nothing but the one confirm reached PVWA: {actions:?}"
    );
    w.close().await;
}

//! The watcher's test environment, shared by the pipeline and watch-loop tests of the core and
//! the CLI's binary test (`#[path]`-included): pam-sim (PVWA + Exchange over HTTPS) and a real
//! slapd (scripts/start-slapd.sh, scripts/ldap/ad-data.ldif: alice and bob approve DBSafe at
//! level 1, bob through a nested group, alice at level 2; dave approves InfraSafe only; lfischer
//! requests), the configuration for them, forwarded mails, and what pam-sim saw. The suites run
//! in the default approver mode, `safe-members` ([`pipeline`]); the static table in
//! [`config_text`] serves the tests that pass `"static"`.
//!
//! One suite, two mailbox backends and two PVWAs: the including crate names its backend in
//! `SUITE_BACKEND` (EWS, or Graph for Exchange Online), and every helper here (the mailbox
//! section, delivering, importing, folders, sent mail) follows it; `SUITE_PVWA` names the PVWA
//! pam-sim plays (self-hosted, or Privilege Cloud with Identity sign-in) and the `[pvwa]`
//! section follows that.

#![allow(dead_code, unused_macros)]

#[path = "slapd.rs"]
pub mod slapd;

use approval_core::exit::Exit;
use approval_core::journal::State;
use approval_core::mailbox::MessageRef;
use approval_core::pipeline::{Pipeline, Processed};
use pam_sim::{Scenario, Sim, SimOptions};
use slapd::{Opts, Slapd};

pub const BOX: &str = "pam-approvals@example.test";

pub const SCENARIO: &str = r#"
[ews]
users = [ { username = "pam-approvals@example.test", password = "box-pass", mailbox = "pam-approvals@example.test" } ]

[pvwa]
# As a real vault lists them: the tool's accounts are direct user members (level 1, level 2, and
# the lookup account, which reads requests, safe members and, with "Audit users", the vault's
# group records); people approve through directory groups, safe members by their bare names,
# which the vault's group records (GET /API/UserGroups) say are Directory groups, with their DNs.
# One approver group per level, so that a level-1 approver holds no portal right for the level
# still to come (the one-person rule, docs/watcher.md): DBSafe DB_PAMapprover (alice, bob nested)
# at level 1 and DB_PAMlevel2 (alice) at level 2; InfraSafe Infra_PAMapprover (dave) at level 1.
[[pvwa.users]]
name = "svc_pam_level1"
password = "l1-pass"
audit_users = false
[[pvwa.users]]
name = "svc_pam_level2"
password = "l2-pass"
audit_users = false
[[pvwa.users]]
name = "svc_pam_lookup"
password = "lookup-pass"
[[pvwa.users]]
name = "alice"
password = "x"
email = "alice@example.test"
audit_users = false
[[pvwa.users]]
name = "dave"
password = "x"
email = "dave@example.test"
audit_users = false
# Lena Fischer: her vault name is not her mail's local part (lena.fischer@example.test), as on
# most AD sites; the watcher finds her in the directory.
[[pvwa.users]]
name = "lfischer"
password = "x"
full_name = "Lena Fischer"
audit_users = false

[[pvwa.safes]]
name = "DBSafe"
members = [
  { name = "svc_pam_level1", type = "user", level1 = true },
  { name = "svc_pam_level2", type = "user", level2 = true },
  { name = "svc_pam_lookup", type = "user" },
  { name = "DB_PAMapprover", type = "group", level1 = true },
  { name = "DB_PAMlevel2", type = "group", level2 = true },
]
[[pvwa.safes]]
name = "InfraSafe"
members = [
  { name = "svc_pam_level1", type = "user", level1 = true },
  { name = "svc_pam_level2", type = "user", level2 = true },
  { name = "svc_pam_lookup", type = "user" },
  { name = "Infra_PAMapprover", type = "group", level1 = true },
]

[[pvwa.groups]]
name = "DB_PAMapprover"
type = "Directory"
directory = "example.test"
dn = "CN=DB_PAMapprover,OU=Groups,DC=example,DC=test"
[[pvwa.groups]]
name = "DB_PAMlevel2"
type = "Directory"
directory = "example.test"
dn = "CN=DB_PAMlevel2,OU=Groups,DC=example,DC=test"
[[pvwa.groups]]
name = "Infra_PAMapprover"
type = "Directory"
directory = "example.test"
dn = "CN=Infra PAM Approvers,OU=Groups,DC=example,DC=test"

# lfischer's request on DBSafe, two levels (her mails name lena.fischer@example.test).
[[pvwa.requests]]
number = 7
safe = "DBSafe"
requester = "lfischer"
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

/// Which mailbox backend the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Ews,
    Graph,
}

pub const GRAPH_TENANT: &str = "5a1f0000-0000-4000-8000-00000000c0de";
pub const GRAPH_APP: &str = "0c1e0000-0000-4000-8000-0000000a9907";

pub struct Env {
    pub sim: Sim,
    pub slapd: Option<Slapd>,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub pvwa: pam_sim::pvwa::PvwaMode,
}

pub fn secret(dir: &std::path::Path, name: &str, value: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, value).expect("write secret");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    format!("file:{}", p.display())
}

pub async fn start() -> Option<Env> {
    start_with("").await
}

/// The environment with more scenario TOML (e.g. further `[[pvwa.requests]]`) after SCENARIO.
pub async fn start_with(extra_scenario: &str) -> Option<Env> {
    start_edited(extra_scenario, |_| {}).await
}

/// [`start_with`], then `edit` changes the scenario (e.g. turns on the load balancer's cookie).
pub async fn start_edited(extra_scenario: &str, edit: impl FnOnce(&mut Scenario)) -> Option<Env> {
    let slapd = Slapd::start(Opts::default())?;
    let dir = tempfile::tempdir().expect("tempdir");
    // The Graph app signs in with a certificate pam-sim generates for it.
    let graph = format!(
        "[graph]\ntenant_id = \"{GRAPH_TENANT}\"\nmailboxes = [\"{BOX}\"]\n[[graph.apps]]\nclient_id = \"{GRAPH_APP}\"\ngenerate_certificate = \"{}\"\nmailboxes = [\"{BOX}\"]\n",
        dir.path().join("graph-app").display()
    );
    let mut scenario =
        Scenario::from_toml(&format!("{SCENARIO}\n{graph}\n{extra_scenario}")).expect("scenario");
    scenario.pvwa.mode = crate::SUITE_PVWA;
    edit(&mut scenario);
    let sim = Sim::start(
        scenario,
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
        backend: crate::SUITE_BACKEND,
        pvwa: crate::SUITE_PVWA,
    })
}

/// The configuration for `env`; `mailbox_extra` and `watcher_extra` are appended to those
/// sections (e.g. `streaming = false`).
pub fn config_text(env: &Env, approvers: &str, mailbox_extra: &str, watcher_extra: &str) -> String {
    config_text_on(env, env.backend, approvers, mailbox_extra, watcher_extra)
}

/// [`config_text`] with the mailbox of `backend` (pam-sim serves both at once).
pub fn config_text_on(
    env: &Env,
    backend: Backend,
    approvers: &str,
    mailbox_extra: &str,
    watcher_extra: &str,
) -> String {
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
{sign_in}
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

{mailbox_section}

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
{watcher_extra}

[notify]
pam_team = ["pam-team@example.test"]
"#,
        url = env.sim.url(),
        sign_in = sign_in(env),
        mailbox_section = mailbox_section(env, backend, &ca, mailbox_extra),
        l1 = secret(d, "l1", "l1-pass"),
        l2 = secret(d, "l2", "l2-pass"),
        lk = secret(d, "lk", "lookup-pass"),
        lp = secret(d, "lp", "svcpw"),
        ldap = slapd.url(),
        lca = slapd.ca.display(),
        state = d.join("state").display(),
    );
    text
}

/// How the accounts sign in: a PVWA logon, or on Privilege Cloud an Identity platform token
/// (pam-sim plays the Identity tenant on the same address).
pub fn sign_in(env: &Env) -> String {
    match env.pvwa {
        pam_sim::pvwa::PvwaMode::SelfHosted => "auth_method = \"ldap\"".into(),
        pam_sim::pvwa::PvwaMode::PrivilegeCloud => {
            format!(
                "auth_method = \"identity\"\nidentity_url = \"{}\"",
                env.sim.url()
            )
        }
    }
}

/// The watcher signed in `roles` times, once per account role it used: PVWA logons on a
/// self-hosted PVWA, Identity platform tokens (and no logon, no raw token) on Privilege Cloud.
pub fn assert_signed_in_per_role(env: &Env, roles: u64) {
    let st = env.sim.state.pvwa.stats();
    match env.pvwa {
        pam_sim::pvwa::PvwaMode::SelfHosted => {
            assert_eq!((st.logons, st.platform_tokens), (roles, 0), "{st:?}");
        }
        pam_sim::pvwa::PvwaMode::PrivilegeCloud => {
            assert_eq!((st.logons, st.platform_tokens), (0, roles), "{st:?}");
            assert_eq!(
                (st.raw_refused, st.platform_token_rejected),
                (0, 0),
                "{st:?}"
            );
        }
    }
}

/// `[mailbox]` for the suite's backend, with `extra` keys (backend-specific keys of the other
/// backend are harmless: `streaming` is EWS's, ignored on Graph).
fn mailbox_section(env: &Env, backend: Backend, ca: &str, extra: &str) -> String {
    let d = env.dir.path();
    let url = env.sim.url();
    match backend {
        Backend::Ews => format!(
            "[mailbox]\nurl = \"{url}/EWS/Exchange.asmx\"\nusername = \"{BOX}\"\npassword = \"{mb}\"\nmailbox = \"{BOX}\"\nca_bundle = \"{ca}\"\nretries = 0\nbackoff_ms = 10\n{extra}\n",
            mb = secret(d, "mb", "box-pass"),
        ),
        Backend::Graph => format!(
            "[mailbox]\nkind = \"graph\"\nurl = \"{url}/v1.0\"\nmailbox = \"{BOX}\"\nca_bundle = \"{ca}\"\nretries = 0\nbackoff_ms = 10\n{extra}\n[mailbox.graph]\ntenant_id = \"{GRAPH_TENANT}\"\nclient_id = \"{GRAPH_APP}\"\nauthority = \"{url}\"\ncertificate = \"file:{crt}\"\nprivate_key = \"file:{key}\"\n",
            crt = d.join("graph-app.crt").display(),
            key = d.join("graph-app.key").display(),
        ),
    }
}

pub fn config(env: &Env, approvers: &str) -> approval_core::settings::Loaded {
    let text = config_text(env, approvers, "", "");
    approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config")
}

/// A forwarded notification as Exchange delivers it (internal, authenticated submission).
pub fn mail(
    mid: &str,
    from: &str,
    safe: &str,
    number: u32,
    requester: &str,
    internal: bool,
) -> Vec<u8> {
    mail_saying(
        mid,
        from,
        safe,
        number,
        requester,
        internal,
        "Please approve.",
    )
}

/// [`mail`] with `own` as the forwarder's own text above the forwarded notification.
pub fn mail_saying(
    mid: &str,
    from: &str,
    safe: &str,
    number: u32,
    requester: &str,
    internal: bool,
    own: &str,
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
{own}\r\n\
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
Account name: Operating System-UnixSSH-server01.example.test-root\r\n\
Reason: Maintenance\r\n\
\r\n\
To confirm or reject this request, log on to the Password Vault Web Access.\r\n"
    )
    .into_bytes()
}

pub fn deliver(env: &Env, raw: Vec<u8>) -> MessageRef {
    let now = chrono::Utc::now().timestamp_millis();
    let id = match env.backend {
        Backend::Ews => env.sim.state.ews.deliver(BOX, None, raw, now),
        Backend::Graph => env.sim.state.graph.deliver(BOX, None, raw, now),
    }
    .expect("deliver");
    MessageRef {
        id,
        change_key: None,
    }
}

/// Put a mail into the inbox the way an import or drag and drop does: no transport headers.
pub fn import(env: &Env, raw: Vec<u8>) -> MessageRef {
    let now = chrono::Utc::now().timestamp_millis();
    let id = match env.backend {
        Backend::Ews => env.sim.state.ews.import(BOX, None, raw, now),
        Backend::Graph => env.sim.state.graph.import(BOX, None, raw, now),
    }
    .expect("import");
    MessageRef {
        id,
        change_key: None,
    }
}

/// pam-sim's HTTP path that delivers a raw mail into the bot mailbox's inbox.
pub fn deliver_path(env: &Env) -> String {
    match env.backend {
        Backend::Ews => "/sim/ews/deliver".into(),
        Backend::Graph => format!("/sim/graph/deliver?mailbox={BOX}"),
    }
}

/// Deliver into the bot mailbox's inbox from any thread, given pam-sim's state.
pub fn deliver_with(state: &pam_sim::server::SimState, backend: Backend, raw: Vec<u8>) {
    let now = chrono::Utc::now().timestamp_millis();
    match backend {
        Backend::Ews => state.ews.deliver(BOX, None, raw, now),
        Backend::Graph => state.graph.deliver(BOX, None, raw, now),
    }
    .expect("deliver");
}

/// Every mail the bot mailbox sent: (recipients, subject).
pub fn sent_all(env: &Env) -> Vec<(Vec<String>, String)> {
    match env.backend {
        Backend::Ews => env
            .sim
            .state
            .ews
            .sent()
            .into_iter()
            .map(|s| (s.to, s.subject))
            .collect(),
        Backend::Graph => env
            .sim
            .state
            .graph
            .sent()
            .into_iter()
            .map(|s| (s.to, s.subject))
            .collect(),
    }
}

/// How many mails the bot mailbox sent.
pub fn sent_count(env: &Env) -> usize {
    match env.backend {
        Backend::Ews => env.sim.state.ews.sent().len(),
        Backend::Graph => env.sim.state.graph.sent().len(),
    }
}

/// The mail address of the requester of SCENARIO's request `number` as the notice names it:
/// request 7 is lfischer's (lena.fischer@example.test), 8 and 11 alice's, the others dave's.
pub fn requester_of(number: u32) -> &'static str {
    match number {
        7 => "lena.fischer@example.test",
        8 | 11 => "alice@example.test",
        _ => "dave@example.test",
    }
}

/// `n` requests of dave's on DBSafe (numbers from 100), each approvable by alice at level 1.
pub fn burst_requests(n: u32) -> String {
    (100..100 + n)
        .map(|k| {
            format!(
                "[[pvwa.requests]]\nnumber = {k}\nsafe = \"DBSafe\"\nrequester = \"dave\"\nlevels = [1, 0]\n"
            )
        })
        .collect()
}

/// `from` forwards, from inside the organisation, the notification of SCENARIO's DBSafe request
/// `number` (Message-ID `<mid@corp.example.test>`), naming its requester ([`requester_of`]).
pub fn forward(env: &Env, mid: &str, from: &str, number: u32) -> MessageRef {
    deliver(
        env,
        mail(mid, from, "DBSafe", number, requester_of(number), true),
    )
}

/// Message-ids (without brackets, lower case) in the folder named `name`.
pub fn folder(env: &Env, name: &str) -> Vec<String> {
    folder_on(env, env.backend, name)
}

/// [`folder`] in the mailbox of `backend`.
pub fn folder_on(env: &Env, backend: Backend, name: &str) -> Vec<String> {
    if backend == Backend::Graph {
        return env
            .sim
            .state
            .graph
            .folder_message_ids(BOX, name)
            .into_iter()
            .map(|m| m.trim_matches(['<', '>']).to_ascii_lowercase())
            .collect();
    }
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

pub fn confirms(env: &Env) -> Vec<(String, String, String)> {
    env.sim
        .state
        .pvwa
        .actions()
        .into_iter()
        .filter(|a| a.action.eq_ignore_ascii_case("confirm"))
        .map(|a| (a.request_id, a.user, a.reason))
        .collect()
}

pub fn sent_to(env: &Env, who: &str) -> Vec<(String, String, Vec<String>)> {
    if env.backend == Backend::Graph {
        return env
            .sim
            .state
            .graph
            .sent()
            .into_iter()
            .filter(|s| s.to.iter().any(|t| t.eq_ignore_ascii_case(who)))
            .map(|s| (s.subject, s.body, s.cc))
            .collect();
    }
    env.sim
        .state
        .ews
        .sent()
        .into_iter()
        .filter(|s| s.to.iter().any(|t| t.eq_ignore_ascii_case(who)))
        .map(|s| (s.subject, s.body, s.cc))
        .collect()
}

/// The environment, or return (skip) when slapd cannot run here.
macro_rules! env {
    () => {
        match start().await {
            Some(e) => e,
            None => return,
        }
    };
    ($skipped:expr) => {
        match start().await {
            Some(e) => e,
            None => return $skipped,
        }
    };
}

/// The approver mode the suites run in: the product's default, the safe's members as PVWA
/// lists them. Tests of the static table pass `"static"` to [`config`] / [`config_text`].
pub const DEFAULT_APPROVERS: &str = "safe-members";

/// The watcher on the default mode ([`DEFAULT_APPROVERS`]).
pub async fn pipeline(env: &Env) -> Pipeline {
    pipeline_in(env, DEFAULT_APPROVERS).await
}

/// The watcher with `approvers` (`"safe-members"` or `"static"`).
pub async fn pipeline_in(env: &Env, approvers: &str) -> Pipeline {
    Pipeline::new(&config(env, approvers), false)
        .await
        .expect("pipeline builds")
}

pub fn done(p: &Processed, outcome: &str) {
    assert_eq!(p.state, Some(State::Filed), "{p:?}");
    assert_eq!(p.outcome.as_deref(), Some(outcome), "{p:?}");
    assert_eq!(p.exit, Exit::Ok, "{p:?}");
}

/// Edit SCENARIO so that PVWA lists DB_PAMapprover (alice, bob) for level 2 of DBSafe as well:
/// for the tests that race alice and bob on request 7 in the default mode, where then any
/// order confirms each level once, one person once ([`start_edited`]).
pub fn db_approvers_at_both_levels(s: &mut Scenario) {
    let db = s
        .pvwa
        .safes
        .iter_mut()
        .find(|x| x.name == "DBSafe")
        .expect("DBSafe");
    db.members
        .iter_mut()
        .find(|m| m.name == "DB_PAMapprover")
        .expect("DB_PAMapprover")
        .level2 = true;
}

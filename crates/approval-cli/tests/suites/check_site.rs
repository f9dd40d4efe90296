// The site check's suite, included by check_site.rs (self-hosted PVWA) and
// check_site_privilege_cloud.rs (Privilege Cloud), which declare `watcher_env` and `SUITE_PVWA`.
// The real binary against pam-sim (EWS and Graph) and the real slapd: a clean site exits 0 and
// changes nothing; each fault makes its check fail with the fix, and no secret is ever shown.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use watcher_env::*;

/// The secret values the configuration refers to: none may appear in any output.
const SECRETS: [&str; 5] = ["l1-pass", "l2-pass", "lookup-pass", "svcpw", "box-pass"];

fn site(env: &Env, text: &str, json: bool) -> (Output, String) {
    let cfg = env.dir.path().join("site.toml");
    std::fs::write(&cfg, text).expect("config");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    run_on(&cfg, json)
}

fn run_on(cfg: &std::path::Path, json: bool) -> (Output, String) {
    let mut c = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"));
    c.arg("--config").arg(cfg).arg("--check-site");
    if json {
        c.arg("--json");
    }
    let o = c.output().expect("runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for s in SECRETS {
        assert!(!out.contains(s), "secret {s} shown:\n{out}");
    }
    (o, out)
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

/// The item `check` of `section` in a JSON report.
fn item<'a>(v: &'a serde_json::Value, section: &str, check: &str) -> &'a serde_json::Value {
    v["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .find(|s| s["name"] == section)
        .and_then(|s| {
            s["items"]
                .as_array()
                .expect("items")
                .iter()
                .find(|i| i["check"] == check)
        })
        .unwrap_or_else(|| panic!("no {section}/{check} in {v}"))
}

/// Reload pam-sim's PVWA with the suite's scenario edited by `edit`.
fn reload_pvwa(env: &Env, edit: impl Fn(&str) -> String) {
    let text = edit(SCENARIO);
    assert_ne!(text, SCENARIO, "the edit changed nothing");
    let mut sc = pam_sim::Scenario::from_toml(&text).expect("scenario");
    sc.pvwa.mode = SUITE_PVWA;
    env.sim
        .state
        .pvwa
        .load(&sc.pvwa, chrono::Utc::now().timestamp())
        .expect("reload");
}

const LOOKUP: &str = "{ name = \"svc_pam_lookup\", type = \"user\" },";

/// Put back the suite's PVWA as SCENARIO has it (the service accounts as direct members with
/// their level's right: the shape in which PVWA shows this tool's confirm as its own).
fn reset_pvwa(env: &Env) {
    let mut sc = pam_sim::Scenario::from_toml(SCENARIO).expect("scenario");
    sc.pvwa.mode = SUITE_PVWA;
    env.sim
        .state
        .pvwa
        .load(&sc.pvwa, chrono::Utc::now().timestamp())
        .expect("reload");
}

/// Issue 26's shape: the service accounts confirm through the Vault groups PAM_Approvers_L1/L2
/// (groups people may be in) instead of as direct members.
fn service_accounts_through_groups(env: &Env) {
    reload_pvwa(env, |s| {
        s.replace(
            "{ name = \"svc_pam_level1\", type = \"user\", level1 = true },",
            "{ name = \"PAM_Approvers_L1\", type = \"group\", level1 = true },",
        )
        .replace(
            "{ name = \"svc_pam_level2\", type = \"user\", level2 = true },",
            "{ name = \"PAM_Approvers_L2\", type = \"group\", level2 = true },",
        )
        .replace(
            "name = \"svc_pam_level1\"\npassword = \"l1-pass\"\n",
            "name = \"svc_pam_level1\"\npassword = \"l1-pass\"\ngroups = [\"PAM_Approvers_L1\"]\n",
        )
        .replace(
            "name = \"svc_pam_level2\"\npassword = \"l2-pass\"\n",
            "name = \"svc_pam_level2\"\npassword = \"l2-pass\"\ngroups = [\"PAM_Approvers_L2\"]\n",
        )
    });
}

/// A clean site in mode `approvers` passes and changes nothing.
fn clean_site_changes_nothing(env: &Env, approvers: &str) {
    forward(env, "c1", "alice@example.test", 9);
    let text = config_text(env, approvers, "", "");
    let (o, out) = site(env, &text, false);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.starts_with("SITE CHECK OK:"), "{out}");
    for line in [
        "[secrets]",
        "ok   accounts.lookup.password: file:",
        "ok   account level1: svc_pam_level1 signs in",
        "ok   account lookup: svc_pam_lookup signs in",
        "ok   incoming requests: svc_pam_lookup reads IncomingRequests",
        "ok   safe DBSafe level 1: approver groups DB_PAMapprover",
        "ok   group DB_PAMapprover: maps to cn=DB_PAMapprover",
        "ok   bind: cn=svc_pamtool",
        "skip rights:",
        // One approver end to end: the sender of the forwarded mail, through the directory.
        "ok   approver alice@example.test: (the sender of a recent mail) alice@example.test may approve safe",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }
    // The forwarded mail is judged as the watcher would, from its transport headers.
    assert!(
        out.contains("ok   mail 1: from alice@example.test: accepted (AuthAs Internal, AuthSource EX01.corp.example.test"),
        "{out}"
    );
    let (o, out) = site(env, &text, true);
    let v = json_of(&o);
    assert_eq!(v["exit"], 0);
    // Still unread after two runs.
    assert!(out.contains("1 unread"), "{out}");
    assert_eq!(v["status"], "ok");
    // Who else may create items in the watched folder: read on EWS (nobody here), not on Graph.
    match env.backend {
        Backend::Ews => {
            let i = item(&v, "mailbox", "rights: folder \"inbox\" permissions");
            assert_eq!(i["status"], "ok", "{i}");
            assert!(i["finding"].as_str().expect("finding").contains("none but the service account"), "{i}");
            assert_eq!(item(&v, "mailbox", "rights: delegates")["status"], "ok");
        }
        Backend::Graph => {
            let i = item(&v, "mailbox", "rights: folder permissions and delegates");
            assert_eq!(i["status"], "skip", "{i}");
            assert!(i["finding"].as_str().expect("finding").contains("not readable on Graph"), "{i}");
        }
    }
    let i = item(&v, "mailbox", "rights: Full Access and application access");
    assert_eq!(i["status"], "skip", "{i}");
    let f = i["finding"].as_str().expect("finding");
    assert!(f.contains("Get-MailboxPermission") && f.contains("AuthAs"), "{i}");
    // The sending pace by default: Exchange Online's 30 a minute on Graph, 60 on EWS to a
    // server that is not Exchange Online.
    let i = item(&v, "mailbox", "sending pace");
    assert_eq!(i["status"], "ok", "{i}");
    let pace = match env.backend {
        Backend::Ews => "at most 60 mails a minute",
        Backend::Graph => "at most 30 mails a minute",
    };
    assert!(i["finding"].as_str().expect("finding").contains(pace), "{i}");
    // Nothing changed: the mail is still unread where it was, nothing confirmed, nothing sent.
    assert_eq!(folder(env, "inbox"), vec!["c1@corp.example.test"]);
    assert!(confirms(env).is_empty(), "{:?}", confirms(env));
    assert_eq!(sent_count(env), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_a_clean_site_passes_and_changes_nothing() {
    let env = env!();
    clean_site_changes_nothing(&env, DEFAULT_APPROVERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_a_clean_site_passes_and_changes_nothing() {
    let mut env = env!();
    env.backend = Backend::Ews;
    // The static mode, a supported mode, on one backend.
    clean_site_changes_nothing(&env, "static");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_fails_its_check_with_the_fix() {
    let mut env = env!();
    env.backend = Backend::Ews;
    let d = env.dir.path().to_path_buf();
    let text = config_text(&env, DEFAULT_APPROVERS, "", "");

    // A wrong password of the lookup account: the sign-in fails, the others still pass.
    secret(&d, "lk", "not-the-lookup-password");
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let v = json_of(&o);
    assert_eq!(v["status"], "fail");
    let i = item(&v, "pvwa", "account lookup");
    assert_eq!(i["status"], "fail", "{i}");
    assert!(i["fix"].as_str().unwrap().contains("accounts.lookup"), "{i}");
    assert_eq!(item(&v, "pvwa", "account level1")["status"], "ok");
    assert!(!out.contains("not-the-lookup-password"), "{out}");
    secret(&d, "lk", "lookup-pass");

    // A secret reference that does not resolve.
    std::fs::remove_file(d.join("l2")).expect("rm");
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let v = json_of(&o);
    let i = item(&v, "secrets", "accounts.level2.password");
    assert_eq!(i["status"], "fail", "{i}");
    assert!(i["fix"].as_str().unwrap().contains("accounts.level2.password"), "{i}");
    secret(&d, "l2", "l2-pass");

    // A group-writable configuration file.
    let cfg = d.join("site.toml");
    std::fs::write(&cfg, &text).expect("config");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o620)).expect("chmod");
    let (o, out) = run_on(&cfg, true);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let v = json_of(&o);
    let i = item(&v, "files", "modes");
    assert_eq!(i["status"], "fail", "{i}");
    assert!(i["finding"].as_str().unwrap().contains("group"), "{i}");

    // A directory bind refused.
    secret(&d, "lp", "not-the-bind-password");
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let v = json_of(&o);
    let i = item(&v, "directory", "bind");
    assert_eq!(i["status"], "fail", "{i}");
    assert!(i["fix"].as_str().unwrap().contains("directory.bind_password"), "{i}");
    secret(&d, "lp", "svcpw");

    // The mailbox password refused.
    secret(&d, "mb", "not-the-box-password");
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let v = json_of(&o);
    assert_eq!(item(&v, "mailbox", "sign in")["status"], "fail");
    secret(&d, "mb", "box-pass");

    // Ticketing configured but unreachable (a port nothing listens on).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let with_ticketing = format!(
        "{text}\n[ticketing.servicenow]\nurl = \"https://127.0.0.1:{port}\"\nusername = \"svc\"\npassword = \"{}\"\n[[ticketing.types]]\nname = \"sn-incident\"\nsystem = \"servicenow\"\nkind = \"incident\"\npattern = \"INC[0-9]{{7}}\"\nallowed_states = [\"New\"]\n",
        secret(&d, "sn", "sn-pass")
    );
    let (o, out) = site(&env, &with_ticketing, true);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let v = json_of(&o);
    let i = item(&v, "ticketing", "servicenow");
    assert_eq!(i["status"], "fail", "{i}");
    assert!(i["fix"].as_str().unwrap().contains("ticketing.servicenow.url"), "{i}");
    assert!(!out.contains("sn-pass"), "{out}");

    // A wrong auth_sources: the mail in the folder would be refused, and the report says why.
    forward(&env, "c2", "alice@example.test", 9);
    let wrong = text.replace(
        "auth_sources = [\"EX01.corp.example.test\"]",
        "auth_sources = [\"EX99.corp.example.test\"]",
    );
    assert_ne!(wrong, text);
    let (o, out) = site(&env, &wrong, true);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let v = json_of(&o);
    let i = item(&v, "mailbox", "mail 1");
    assert_eq!(i["status"], "warn", "{i}");
    let f = i["finding"].as_str().unwrap();
    assert!(f.contains("would be refused") && f.contains("EX01.corp.example.test"), "{i}");
    assert!(i["fix"].as_str().unwrap().contains("auth_sources"), "{i}");

    // The lookup account may not list the safes' members: in the default mode the approver
    // groups cannot be known, and the watcher would refuse every mail on the safe.
    reload_pvwa(&env, |s| {
        s.replace(
            LOOKUP,
            "{ name = \"svc_pam_lookup\", type = \"user\", view_members = false },",
        )
    });
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let v = json_of(&o);
    let i = item(&v, "pvwa", "safe DBSafe");
    assert_eq!(i["status"], "fail", "{i}");
    assert!(i["finding"].as_str().unwrap().contains("cannot read the approvers"), "{i}");
    assert!(i["fix"].as_str().unwrap().contains("View Safe members"), "{i}");

    // The clean site again: exit 0.
    reset_pvwa(&env);
    let (o, out) = site(&env, &text, false);
    assert_eq!(o.status.code(), Some(0), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_members_mode_shows_groups_per_safe_and_level() {
    let env = env!();
    // Besides DBSafe's directory groups, a Vault group with the level-1 right: skipped, with
    // the reason (a Vault group never maps to the directory).
    reload_pvwa(&env, |s| {
        s.replacen(
            LOOKUP,
            &format!("{LOOKUP}\n  {{ name = \"PAM_Ops\", type = \"group\", level1 = true }},"),
            1,
        ) + "\n[[pvwa.groups]]\nname = \"PAM_Ops\"\ntype = \"Vault\"\n"
    });
    let text = config_text(&env, "safe-members", "", "");
    let (o, out) = site(&env, &text, false);
    // Per safe and level: the groups PVWA grants the level, mapped through their vault records
    // (by DN), and what was skipped and why.
    for line in [
        "ok   safe DBSafe level 1: approver groups DB_PAMapprover; skipped: svc_pam_level1 (a User member, not a group); PAM_Ops (a Vault group",
        "ok   safe DBSafe level 2: approver groups DB_PAMlevel2;",
        "ok   safe InfraSafe level 1: approver groups Infra_PAMapprover;",
        "skip safe InfraSafe level 2: no approver group",
        "ok   group Infra_PAMapprover: maps to cn=Infra PAM Approvers,ou=Groups,dc=example,dc=test",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }
    // The service accounts are direct members: no shared-group warning.
    assert!(!out.contains("level 1 service account"), "{out}");
    assert_eq!(o.status.code(), Some(0), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_that_does_not_load_is_a_failure_of_the_config_section() {
    let env = env!();
    let (o, out) = site(&env, "[pvwa]\nurl = 3\n", true);
    assert_eq!(o.status.code(), Some(2), "{out}");
    let v = json_of(&o);
    assert_eq!(item(&v, "config", "load")["status"], "fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_held_is_verified_against_the_safe_members() {
    let env = env!();
    // pam-sim's safes give the people's directory groups (DB_PAMapprover, DB_PAMlevel2) the
    // authorisation rights: "none-held" is contradicted, per safe.
    let text = config_text(&env, DEFAULT_APPROVERS, "", "portal_rights = \"none-held\"");
    let (o, out) = site(&env, &text, true);
    let v = json_of(&o);
    let i = item(&v, "pvwa", "safe DBSafe portal rights");
    assert_ne!(i["status"], "ok", "{out}");
    assert!(i["finding"].as_str().unwrap().contains("DB_PAMapprover"), "{i}");
    assert!(i["fix"].as_str().unwrap().contains("portal_rights"), "{i}");
    assert!(matches!(o.status.code(), Some(1 | 2)), "{out}");
    // Without the statement the watcher checks by itself: no such item.
    let text = config_text(&env, DEFAULT_APPROVERS, "", "");
    let (o, _) = site(&env, &text, true);
    let v = json_of(&o);
    let pvwa = v["sections"][3]["items"].as_array().expect("items");
    assert!(!pvwa.iter().any(|i| i["check"] == "safe DBSafe portal rights"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_given_is_resolved_end_to_end_as_check_sender_does() {
    let env = env!();
    let text = config_text(&env, DEFAULT_APPROVERS, "", "");
    let cfg = env.dir.path().join("site.toml");
    std::fs::write(&cfg, &text).expect("config");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = |who: &str| {
        let o = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"))
            .arg("--config")
            .arg(&cfg)
            .args(["--check-site", "--json", "--check-sender", who])
            .args(["--safe", "DBSafe", "--level", "1"])
            .output()
            .expect("runs");
        let v = json_of(&o);
        (o.status.code(), v)
    };
    let (code, v) = run("alice@example.test");
    let i = item(&v, "directory", "approver alice@example.test safe DBSafe level 1");
    assert_eq!(i["status"], "ok", "{v}");
    assert!(i["finding"].as_str().unwrap().contains("through DB_PAMapprover"), "{i}");
    assert_eq!(code, Some(0), "{v}");
    // The same question through --check-sender alone: the same answer.
    let o = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"))
        .arg("--config")
        .arg(&cfg)
        .args(["--check-sender", "alice@example.test", "--safe", "DBSafe", "--level", "1"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0));
    // Someone who is no approver: a warning with the reason, exit 1.
    let (code, v) = run("nobody@example.test");
    let i = item(&v, "directory", "approver nobody@example.test safe DBSafe level 1");
    assert_eq!(i["status"], "warn", "{v}");
    assert!(i["finding"].as_str().unwrap().starts_with("may not approve"), "{i}");
    assert_eq!(code, Some(1), "{v}");
}

/// A configuration with only `[ticketing]` (the demo's, against pam-sim's ServiceNow and
/// Remedy): both sign in with a read that changes nothing; a wrong password fails with the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticketing_signs_in_and_a_wrong_password_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = pam_sim::Sim::start(
        pam_sim::Scenario::from_toml(include_str!("../../../../examples/demo/ticketing-scenario.toml"))
            .expect("scenario"),
        pam_sim::SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..pam_sim::SimOptions::default()
        },
    )
    .await
    .expect("sim");
    let text = include_str!("../../../../examples/demo/ticketing-config.toml")
        .replace("https://127.0.0.1:8443", &sim.url())
        .replace(
            "/tmp/pam-sim-tls/ca.crt",
            &sim.ca_cert.as_ref().expect("https").display().to_string(),
        )
        .replace("retries = 1", "retries = 0");
    let cfg = dir.path().join("t.toml");
    std::fs::write(&cfg, text).expect("config");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = |sn: &str| {
        let o = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"))
            .arg("--config")
            .arg(&cfg)
            .args(["--check-site", "--json"])
            .env("DEMO_SN_PASSWORD", sn)
            .env("DEMO_REMEDY_PASSWORD", "Remedy-Demo-Pass")
            .output()
            .expect("runs");
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!all.contains("Remedy-Demo-Pass") && !all.contains(sn), "secret shown: {all}");
        json_of(&o)
    };
    let v = run("Ticketing-Demo-Pass");
    for name in ["servicenow", "remedy"] {
        let i = item(&v, "ticketing", name);
        assert_eq!(i["status"], "ok", "{v}");
        assert!(i["finding"].as_str().unwrap().contains("signs in"), "{i}");
    }
    let v = run("not-the-sn-password");
    let i = item(&v, "ticketing", "servicenow");
    assert_eq!(i["status"], "fail", "{v}");
    assert!(i["fix"].as_str().unwrap().contains("ticketing.servicenow.username"), "{i}");
    assert_eq!(item(&v, "ticketing", "remedy")["status"], "ok");
    assert_eq!(v["exit"], 2);
    sim.stop().await;
}

/// A configuration with only `[remote_access]`: a token and a read of the sites; a key file
/// of another service account is refused and the report says what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_access_signs_in_and_a_foreign_key_fails() {
    use pam_sim::remote_access::keys;
    const TENANT: &str = "11eaab2463a4d3399816d3b7450c5b10";
    const SA: &str = "11ea6140f94d5f82a3712de9ac6f6b24";
    let kp = keys::generate().expect("keygen");
    let dir = tempfile::tempdir().expect("tmp");
    let scenario = pam_sim::Scenario::from_toml(&format!(
        "[remote_access]\ntenant_id = \"{TENANT}\"\nservice_account_id = \"{SA}\"\npublic_key = \"\"\"{}\"\"\"\n[[remote_access.sites]]\nname = \"Main DC\"\napplications = [ {{ name = \"Linux SSH\" }} ]\n",
        kp.public_pem
    ))
    .expect("scenario");
    let sim = pam_sim::Sim::start(
        scenario,
        pam_sim::SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..pam_sim::SimOptions::default()
        },
    )
    .await
    .expect("sim");
    let key = dir.path().join("sa.json");
    keys::write_key_file(&key, &keys::key_file_json(SA, &kp.pkcs1_pem)).expect("key");
    let cfg = dir.path().join("ra.toml");
    std::fs::write(
        &cfg,
        format!(
            "[remote_access]\ntenant_id = \"{TENANT}\"\nkey_file = \"file:{}\"\nauth_url = \"{u}\"\napi_url = \"{u}\"\nca_bundle = \"{}\"\nbackoff_ms = 20\n",
            key.display(),
            sim.ca_cert.clone().expect("ca").display(),
            u = sim.url()
        ),
    )
    .expect("config");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = || {
        let o = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"))
            .arg("--config")
            .arg(&cfg)
            .args(["--check-site", "--json"])
            .output()
            .expect("runs");
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!all.contains("PRIVATE KEY"), "key shown: {all}");
        json_of(&o)
    };
    let v = run();
    assert_eq!(item(&v, "remote_access", "sign in")["status"], "ok", "{v}");
    let i = item(&v, "remote_access", "api");
    assert_eq!(i["status"], "ok", "{v}");
    assert!(i["finding"].as_str().unwrap().contains("1 site(s)"), "{i}");
    // Another key pair for the same service account: the token service refuses it.
    let other = keys::generate().expect("keygen");
    keys::write_key_file(&key, &keys::key_file_json(SA, &other.pkcs1_pem)).expect("key");
    let v = run();
    let i = item(&v, "remote_access", "sign in");
    assert_eq!(i["status"], "fail", "{v}");
    assert!(i["fix"].as_str().is_some_and(|f| !f.is_empty()), "{i}");
    assert_eq!(v["exit"], 2);
    sim.stop().await;
}

/// Issue 26's shape: the service accounts confirm through the people's approver groups. It keeps
/// working, and the report warns per safe and level that PVWA then shows one confirmer entry
/// for the group (whatever the approver mode); as direct members the warning goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_confirming_through_a_shared_group_is_a_warning() {
    let env = env!();
    service_accounts_through_groups(&env);
    let text = config_text(&env, DEFAULT_APPROVERS, "", "");
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let v = json_of(&o);
    for (level, account, group) in [
        (1, "svc_pam_level1", "PAM_Approvers_L1"),
        (2, "svc_pam_level2", "PAM_Approvers_L2"),
    ] {
        let i = item(&v, "pvwa", &format!("safe DBSafe level {level} service account"));
        assert_eq!(i["status"], "warn", "{i}");
        let f = i["finding"].as_str().unwrap();
        assert!(f.contains(account) && f.contains(group) && f.contains("one confirmer entry"), "{i}");
        assert!(i["fix"].as_str().unwrap().contains("direct member"), "{i}");
    }
    reset_pvwa(&env);
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("service account\""), "{out}");
}

/// Set pam-sim's EWS folder permissions and delegates from a `[ews]` snippet.
fn ews_rights(env: &Env, snippet: &str) {
    let sc = pam_sim::Scenario::from_toml(&format!("[ews]\n{snippet}")).expect("rights scenario");
    env.sim.state.ews.set_rights(&sc.ews).expect("rights");
}

/// EWS shows who else may create items in the watched folder and who is a delegate: each is
/// a warning naming them (exit 1); delegates the account may not read are a skip, not a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_rights_on_the_watched_folder_are_read_and_warned() {
    let mut env = env!();
    env.backend = Backend::Ews;
    let text = config_text(&env, DEFAULT_APPROVERS, "", "");

    // A colleague with Author on the inbox; the service account's own entry and a Reviewer
    // (reads only) are fine.
    ews_rights(
        &env,
        concat!(
            "[[ews.folder_permissions]]\nmailbox = \"pam-approvals@example.test\"\nuser = \"erik.colleague@example.test\"\ndisplay_name = \"Erik Colleague\"\nlevel = \"Author\"\n",
            "[[ews.folder_permissions]]\nmailbox = \"pam-approvals@example.test\"\nuser = \"pam-approvals@example.test\"\nlevel = \"Owner\"\n",
            "[[ews.folder_permissions]]\nmailbox = \"pam-approvals@example.test\"\nuser = \"auditor@example.test\"\nlevel = \"Reviewer\"\n",
        ),
    );
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let v = json_of(&o);
    let i = item(&v, "mailbox", "rights: folder \"inbox\" permissions");
    assert_eq!(i["status"], "warn", "{i}");
    let f = i["finding"].as_str().unwrap();
    assert!(f.contains("Erik Colleague <erik.colleague@example.test>") && f.contains("Author"), "{i}");
    assert!(i["fix"].as_str().unwrap().contains("AuthAs"), "{i}");
    let (_, text_out) = site(&env, &text, false);
    assert!(!text_out.contains("auditor@example.test"), "{text_out}");
    assert!(!text_out.contains("pam-approvals@example.test holds"), "{text_out}");
    assert_eq!(item(&v, "mailbox", "rights: delegates")["status"], "ok");

    // Everyone (the Default entry) may create items: a warning that says who that is.
    ews_rights(
        &env,
        "[[ews.folder_permissions]]\nmailbox = \"pam-approvals@example.test\"\nuser = \"Default\"\nlevel = \"Contributor\"\n",
    );
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let v = json_of(&o);
    let i = item(&v, "mailbox", "rights: folder \"inbox\" permissions");
    assert_eq!(i["status"], "warn", "{i}");
    assert!(
        i["finding"].as_str().unwrap().starts_with("Default (every user not listed) holds Contributor"),
        "{i}"
    );

    // A delegate of the mailbox: a warning naming them and their Inbox level.
    ews_rights(
        &env,
        "[[ews.delegates]]\nmailbox = \"pam-approvals@example.test\"\nuser = \"assistant@example.test\"\ndisplay_name = \"An Assistant\"\ninbox = \"Editor\"\n",
    );
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let v = json_of(&o);
    let i = item(&v, "mailbox", "rights: delegates");
    assert_eq!(i["status"], "warn", "{i}");
    let f = i["finding"].as_str().unwrap();
    assert!(f.contains("An Assistant <assistant@example.test>") && f.contains("Inbox: Editor"), "{i}");
    assert_eq!(
        item(&v, "mailbox", "rights: folder \"inbox\" permissions")["status"],
        "ok"
    );

    // GetDelegate refused: a skip with the reason, the site still passes.
    ews_rights(&env, "get_delegate_denied = [\"pam-approvals@example.test\"]\n");
    let (o, out) = site(&env, &text, true);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let v = json_of(&o);
    let i = item(&v, "mailbox", "rights: delegates");
    assert_eq!(i["status"], "skip", "{i}");
    assert!(i["finding"].as_str().unwrap().contains("ErrorAccessDenied"), "{i}");
}

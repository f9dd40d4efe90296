//! The LDAP directory client against a real OpenLDAP slapd with AD-like users and nested groups
//! (scripts/start-slapd.sh, scripts/ldap/ad-data.ldif). Each test starts its own server.

#[path = "support/slapd.rs"]
mod slapd;

use std::time::Duration;

use approval_core::directory::approvers::{ApproverGroup, Approvers};
use approval_core::directory::{
    Directory, DirectoryError, LdapDirectory, Refusal, Settings, Strategy, authorize,
};
use approval_core::exit::{Classify, Exit};
use approval_core::settings::load_from_parts;
use secrecy::SecretString;
use slapd::{Opts, Slapd};

const BIND_DN: &str = "cn=svc_pamtool,ou=Users,dc=example,dc=test";

/// `[directory]` for a test server: `url_line` is e.g. `url = "ldap://…"`.
fn settings_with(url_line: &str, ca: &std::path::Path, extra: &str) -> Settings {
    let text = format!(
        r#"
[directory]
{url_line}
bind_dn = "{BIND_DN}"
bind_password = "env:UNUSED_IN_TESTS"
base_dn = "dc=example,dc=test"
ca_bundle = "{}"
connect_timeout_secs = 3
timeout_secs = 5
{extra}
"#,
        ca.display()
    );
    load_from_parts(Some(&text), None, &[])
        .expect("config parses")
        .directory()
        .expect("config valid")
}

fn settings(s: &Slapd, extra: &str) -> Settings {
    settings_with(&format!("url = \"{}\"", s.url()), &s.ca, extra)
}

fn dir(settings: Settings) -> LdapDirectory {
    LdapDirectory::new(settings, SecretString::from("svcpw")).expect("client")
}

fn approvers(names: &[&str]) -> Approvers {
    Approvers {
        groups: names
            .iter()
            .map(|n| ApproverGroup {
                dn: None,
                name: n.to_string(),
                source: "test".into(),
            })
            .collect(),
        skipped: vec![],
        roles: vec![],
    }
}

fn db() -> Approvers {
    approvers(&["DB_PAMapprover"])
}

macro_rules! server {
    ($opts:expr) => {
        match Slapd::start($opts) {
            Some(s) => s,
            None => return,
        }
    };
}

#[tokio::test]
async fn direct_member_is_approved_with_its_path_over_starttls() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    let v = authorize(&d, "alice@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    let g = v.granted_by.expect("grant");
    assert_eq!(g.group, "DB_PAMapprover");
    assert_eq!(g.path_names, vec!["alice", "DB_PAMapprover"]);
    assert_eq!(g.strategy, Strategy::Recursive);
    assert!(g.path_complete);
    let u = v.user.expect("user");
    assert_eq!(u.sam_account_name.as_deref(), Some("alice"));
    assert_eq!(u.user_principal_name.as_deref(), Some("alice@example.test"));
    assert!(u.aliases.iter().any(|a| a == "a.approver@example.test"));
}

#[tokio::test]
async fn alias_address_finds_the_same_user() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    let u = d
        .find_user("A.Approver@Example.TEST")
        .await
        .expect("alias found");
    assert_eq!(u.sam_account_name.as_deref(), Some("alice"));
    assert!(u.is_same_person("ALICE"));
    assert!(u.is_same_person("EXAMPLE\\alice"));
    assert!(!u.is_same_person("bob"));
}

#[tokio::test]
async fn nested_member_is_approved_through_its_team_group() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    let v = authorize(&d, "bob@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    let g = v.granted_by.expect("grant");
    assert_eq!(g.path_names, vec!["bob", "DB_Team", "DB_PAMapprover"]);
    assert_eq!(g.path.len(), 3);
    assert!(
        v.reason.contains("bob -> DB_Team -> DB_PAMapprover"),
        "{}",
        v.reason
    );
}

#[tokio::test]
async fn non_member_is_refused() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    let v = authorize(&d, "carol@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(!v.may_approve);
    assert_eq!(v.refusal, Some(Refusal::NotAnApprover));
    assert!(v.granted_by.is_none());
}

#[tokio::test]
async fn member_of_another_teams_group_only_is_refused() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    let v = authorize(&d, "dave@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(!v.may_approve, "an Infra approver approved a DB safe");
    assert_eq!(v.refusal, Some(Refusal::NotAnApprover));
    // The same person approves the Infra safe (sAMAccountName differs from the CN).
    let v = authorize(
        &d,
        "dave@example.test",
        "InfraSafe",
        1,
        approvers(&["Infra_PAMapprover"]),
    )
    .await
    .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    assert_eq!(
        v.granted_by.expect("grant").path_names,
        vec!["dave", "Infra PAM Approvers"]
    );
}

#[tokio::test]
async fn disabled_account_is_not_found_even_as_a_direct_member() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    let v = authorize(&d, "erin@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(!v.may_approve);
    assert_eq!(v.refusal, Some(Refusal::UnknownSender));
    // The same with a custom filter that forgot the disabled clause: checked client-side too.
    let d = dir(settings(
        &s,
        "user_filter = \"(&(objectClass=user)(mail={mail}))\"",
    ));
    let e = d
        .find_user("erin@example.test")
        .await
        .expect_err("disabled");
    assert!(matches!(e, DirectoryError::UnknownUser { .. }), "{e}");
}

#[tokio::test]
async fn two_users_with_one_address_are_ambiguous() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    // frank1 has it as mail, frank2 as an smtp: proxy address.
    let e = d
        .find_user("shared@example.test")
        .await
        .expect_err("ambiguous");
    assert!(
        matches!(e, DirectoryError::Ambiguous { count: 2, .. }),
        "{e}"
    );
    assert_eq!(e.exit(), Exit::Refused);
    let v = authorize(&d, "shared@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert_eq!(v.refusal, Some(Refusal::AmbiguousSender));
}

#[tokio::test]
async fn filter_injection_in_the_address_matches_nothing() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    for evil in [
        "*@example.test",
        "alice@example.test)(mail=*",
        "x*)(|(mail=*@example.test",
        "alice@example.test)(!(userAccountControl=0)",
        "*)(sAMAccountName=alice)(mail=*@x",
        "\\2a@example.test",
    ] {
        let v = authorize(&d, evil, "DBSafe", 1, db())
            .await
            .expect("verdict");
        assert!(!v.may_approve, "{evil} approved");
        assert_eq!(
            v.refusal,
            Some(Refusal::UnknownSender),
            "{evil}: {}",
            v.reason
        );
    }
    // A bare `*` is not even an address.
    let v = authorize(&d, "*", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert_eq!(v.refusal, Some(Refusal::BadAddress));
}

#[tokio::test]
async fn deep_nesting_respects_max_depth_and_cycles_end() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    let v = authorize(&d, "gina@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    assert_eq!(
        v.granted_by.expect("grant").path_names,
        vec!["gina", "Deep1", "Deep2", "Deep3", "Deep4", "DB_PAMapprover"]
    );
    let shallow = dir(settings(&s, "max_depth = 4"));
    let v = authorize(&shallow, "gina@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(!v.may_approve);
    assert!(v.reason.contains("max_depth"), "{}", v.reason);
    // henry sits in the CycleA <-> CycleB loop: the walk ends, no approval.
    let v = tokio::time::timeout(
        Duration::from_secs(10),
        authorize(&d, "henry@example.test", "DBSafe", 1, db()),
    )
    .await
    .expect("the walk ends")
    .expect("verdict");
    assert_eq!(v.refusal, Some(Refusal::NotAnApprover));
}

#[tokio::test]
async fn auto_picks_recursive_and_in_chain_fails_closed_on_openldap() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    assert!(!d.is_active_directory().await.expect("root DSE"));
    assert_eq!(
        d.effective_strategy().await.expect("strategy"),
        Strategy::Recursive
    );
    let chain = dir(settings(&s, "membership = \"in_chain\""));
    let v = authorize(&chain, "alice@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(!v.may_approve, "in-chain on OpenLDAP must never approve");
    assert_eq!(v.strategy, Some(Strategy::InChain));
}

#[tokio::test]
async fn dynlist_server_with_flattened_member_of() {
    let s = server!(Opts {
        dynlist: true,
        ..Opts::default()
    });
    let d = dir(settings(&s, ""));
    let v = authorize(&d, "bob@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    // dynlist lists nested groups as direct memberOf values (lower-cased).
    let g = v.granted_by.expect("grant");
    assert_eq!(g.path.len(), 2, "{:?}", g.path);
    assert!(g.path_names[1].eq_ignore_ascii_case("DB_PAMapprover"));
    let v = authorize(&d, "carol@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(!v.may_approve);
}

#[tokio::test]
async fn ldaps_with_the_test_ca_and_an_untrusted_ca_fails() {
    let s = server!(Opts {
        ldaps: true,
        ..Opts::default()
    });
    let d = dir(settings_with(
        &format!("url = \"{}\"", s.ldaps_url()),
        &s.ca,
        "",
    ));
    let v = authorize(&d, "bob@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    // A CA that did not sign the server's certificate: no connection, no approval.
    let other = tempfile::tempdir().expect("tmp");
    let other_ca = other.path().join("ca.crt");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(other.path().join("ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .args(["-days", "2", "-subj", "/CN=Other CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .output()
        .expect("openssl");
    assert!(made.status.success());
    for url in [s.ldaps_url(), s.url()] {
        let d = dir(settings_with(&format!("url = \"{url}\""), &other_ca, ""));
        let e = authorize(&d, "bob@example.test", "DBSafe", 1, db())
            .await
            .expect_err("untrusted certificate");
        assert!(matches!(e, DirectoryError::Unreachable { .. }), "{e}");
        assert_eq!(e.exit(), Exit::Unavailable);
        assert!(e.hint().expect("hint").contains("ca_bundle"), "{e}");
    }
}

#[tokio::test]
async fn server_refusing_plain_binds_needs_tls_and_starttls_works() {
    let s = server!(Opts {
        simple_bind_ssf: Some(128),
        ..Opts::default()
    });
    let plain = dir(settings(&s, "starttls = false\nallow_plain = true"));
    let e = plain
        .find_user("alice@example.test")
        .await
        .expect_err("plain bind refused");
    assert!(matches!(e, DirectoryError::NeedsTls { .. }), "{e}");
    assert_eq!(e.exit(), Exit::Config);
    let tls = dir(settings(&s, ""));
    assert!(tls.find_user("alice@example.test").await.is_ok());
}

#[tokio::test]
async fn wrong_bind_password_is_a_permission_error() {
    let s = server!(Opts::default());
    let d = LdapDirectory::new(settings(&s, ""), SecretString::from("wrong")).expect("client");
    let e = d
        .find_user("alice@example.test")
        .await
        .expect_err("bind refused");
    assert!(matches!(e, DirectoryError::BindRefused { .. }), "{e}");
    assert_eq!(e.exit(), Exit::NoPerm);
    assert!(!e.to_string().contains("wrong"), "password in message: {e}");
    // An empty password would be an anonymous bind: refused before connecting.
    let e = LdapDirectory::new(settings(&s, ""), SecretString::from("")).expect_err("empty");
    assert!(matches!(e, DirectoryError::BindRefused { .. }), "{e}");
}

#[tokio::test]
async fn server_down_is_a_clear_error_and_no_approval() {
    let port = slapd::free_port();
    let tmp = tempfile::tempdir().expect("tmp");
    let ca = tmp.path().join("ca.crt");
    // Any PEM CA will do: nothing answers.
    std::fs::write(&ca, include_str!("fixtures/any-ca.pem")).expect("write ca");
    let d = dir(settings_with(
        &format!("url = \"ldap://127.0.0.1:{port}\""),
        &ca,
        "",
    ));
    let e = authorize(&d, "alice@example.test", "DBSafe", 1, db())
        .await
        .expect_err("no server, no verdict");
    assert!(matches!(e, DirectoryError::Unreachable { .. }), "{e}");
    assert_eq!(e.exit(), Exit::Unavailable);
    assert!(
        e.to_string().contains(&format!("ldap://127.0.0.1:{port}")),
        "the message names the server: {e}"
    );
}

#[tokio::test]
async fn second_server_is_used_when_the_first_is_down() {
    let s = server!(Opts::default());
    let down = slapd::free_port();
    let d = dir(settings_with(
        &format!("urls = [\"ldap://127.0.0.1:{down}\", \"{}\"]", s.url()),
        &s.ca,
        "",
    ));
    let v = authorize(&d, "alice@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
}

#[tokio::test]
async fn server_that_never_answers_times_out() {
    // Accepts TCP, never speaks: StartTLS waits until connect_timeout_secs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hold = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(Duration::from_secs(4));
        drop(conn);
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let ca = tmp.path().join("ca.crt");
    std::fs::write(&ca, include_str!("fixtures/any-ca.pem")).expect("write ca");
    let mut st = settings_with(&format!("url = \"ldap://127.0.0.1:{port}\""), &ca, "");
    st.connect_timeout = Duration::from_secs(1);
    let d = dir(st);
    let started = std::time::Instant::now();
    let e = d
        .find_user("alice@example.test")
        .await
        .expect_err("timeout");
    let took = started.elapsed();
    assert!(matches!(e, DirectoryError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("within 1s"), "{e}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let _ = hold.join();
}

#[tokio::test]
async fn server_restarted_mid_run_is_reconnected() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    assert!(d.find_user("alice@example.test").await.is_ok());
    s.stop();
    // While it is down: an error, never a verdict.
    let e = authorize(&d, "bob@example.test", "DBSafe", 1, db())
        .await
        .expect_err("down");
    assert_eq!(e.exit(), Exit::Unavailable, "{e}");
    s.restart();
    let v = authorize(&d, "bob@example.test", "DBSafe", 1, db())
        .await
        .expect("reconnected");
    assert!(v.may_approve, "{}", v.reason);
    // A restart between two operations on a live connection: the next one reconnects too.
    s.stop();
    s.restart();
    let v = authorize(&d, "alice@example.test", "DBSafe", 1, db())
        .await
        .expect("reconnected again");
    assert!(v.may_approve, "{}", v.reason);
}

#[tokio::test]
async fn cache_answers_within_its_ttl_only() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, "cache_ttl_secs = 60"));
    let v = authorize(&d, "alice@example.test", "DBSafe", 1, db())
        .await
        .expect("verdict");
    assert!(v.may_approve);
    s.stop();
    let v = authorize(&d, "alice@example.test", "DBSafe", 1, db())
        .await
        .expect("from cache");
    assert!(v.may_approve);
    assert!(
        authorize(&d, "bob@example.test", "DBSafe", 1, db())
            .await
            .is_err()
    );
    d.clear_cache();
    assert!(
        authorize(&d, "alice@example.test", "DBSafe", 1, db())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn referral_is_reported_not_followed() {
    let s = server!(Opts::default());
    // Searching below the referral object: the server answers with a referral.
    let mut st = settings(&s, "");
    st.base_dn = "ou=Far,dc=example,dc=test".into();
    let d = dir(st);
    let e = d
        .find_user("alice@example.test")
        .await
        .expect_err("referral");
    assert!(matches!(e, DirectoryError::Referral { .. }), "{e}");
    assert!(e.to_string().contains("far.invalid"), "{e}");
    assert_eq!(e.exit(), Exit::Unavailable);
}

#[tokio::test]
async fn group_names_by_cn_and_with_a_domain_suffix() {
    let s = server!(Opts::default());
    let by_cn = dir(settings(&s, "[directory.group_names]\nattribute = \"cn\""));
    let v = authorize(
        &by_cn,
        "dave@example.test",
        "InfraSafe",
        1,
        approvers(&["infra pam approvers"]),
    )
    .await
    .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    // Static table with PVWA-style domain names, mapped by the rule.
    let st = settings(
        &s,
        r#"approvers = "static"
[directory.group_names]
domains = ["example.test", "EXAMPLE"]
[[directory.static]]
group = "DB_PAMapprover@example.test"
level = 1
safes = ["DB*"]
[[directory.static]]
group = "OTHER\\Infra_PAMapprover"
level = 1
safes = ["Infra*"]
"#,
    );
    let a = approval_core::directory::check::static_approvers(&st, "DBSafe", 1);
    let d = dir(st.clone());
    let v = authorize(&d, "bob@example.test", "DBSafe", 1, a)
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    // The Infra row carries a domain that is not ours: never mapped, so dave is refused.
    let a = approval_core::directory::check::static_approvers(&st, "InfraSafe", 1);
    assert!(a.groups.is_empty());
    assert_eq!(a.skipped.len(), 1);
    let v = authorize(&d, "dave@example.test", "InfraSafe", 1, a)
        .await
        .expect("verdict");
    assert_eq!(v.refusal, Some(Refusal::NoApproverGroups));
}

#[tokio::test]
async fn unknown_approver_group_grants_nothing() {
    let s = server!(Opts::default());
    let d = dir(settings(&s, ""));
    let v = authorize(
        &d,
        "alice@example.test",
        "DBSafe",
        1,
        approvers(&["No_Such_Group", "*"]),
    )
    .await
    .expect("verdict");
    assert!(!v.may_approve);
    assert!(
        v.groups.iter().all(|g| g.status == "not_found"),
        "{:?}",
        v.groups
    );
}

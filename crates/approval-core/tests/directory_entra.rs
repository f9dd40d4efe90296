//! The Entra ID directory (`[directory] kind = "entra"`, `GraphDirectory`) against pam-sim's
//! Microsoft Graph over HTTPS with the test CA, signed in with a certificate pam-sim generated
//! for the app: users found by mail, alias and user principal name; disabled and ambiguous
//! addresses refused; nested groups granted through `transitiveMemberOf` read over several
//! pages; non-members refused; a hostile address; throttling waited out or reported as a fault;
//! a missing permission named.

#[path = "support/entra.rs"]
mod entra;

use approval_core::directory::{
    AnyDirectory, ApproverGroup, Approvers, Directory, DirectoryError, Refusal, authorize,
    read_credentials,
};
use approval_core::exit::{Classify, Exit};
use pam_sim::{Scenario, Sim, SimOptions};

const TENANT: &str = "5a1f0000-0000-4000-8000-00000000d1e0";
const APP: &str = "0c1e0000-0000-4000-8000-0000000d1e01";
/// An app that may read users but not groups.
const USERS_ONLY: &str = "0c1e0000-0000-4000-8000-0000000d1e02";

struct Env {
    sim: Sim,
    dir: tempfile::TempDir,
}

async fn start(page: usize) -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let mut scenario = Scenario::from_toml(&format!(
        r#"
[graph]
tenant_id = "{TENANT}"
[[graph.apps]]
client_id = "{APP}"
generate_certificate = "{app}"
directory_roles = ["User.Read.All", "GroupMember.Read.All"]
[[graph.apps]]
client_id = "{USERS_ONLY}"
client_secret = "users-only-secret"
directory_roles = ["User.Read.All"]
"#,
        app = dir.path().join("app").display()
    ))
    .expect("scenario");
    scenario.graph.directory = entra::directory();
    scenario.graph.directory.max_page_size = Some(page);
    let sim = Sim::start(
        scenario,
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("sim");
    Env { sim, dir }
}

impl Env {
    /// The configuration: an EWS mailbox (so the directory names its own app), the directory
    /// on pam-sim's Graph, `extra` appended to `[directory]`, `app` the `[directory.graph]`.
    fn config(&self, extra: &str, app: &str) -> approval_core::settings::Loaded {
        let d = self.dir.path();
        let url = self.sim.url();
        let text = format!(
            r#"
[mailbox]
url = "{url}/EWS/Exchange.asmx"
username = "x"
password = "env:NOPE"
mailbox = "pam-approvals@example.test"

[directory]
kind = "entra"
url = "{url}/v1.0"
ca_bundle = "{ca}"
timeout_secs = 5
{extra}
{app}
"#,
            ca = self.sim.ca_cert.as_ref().expect("https").display(),
        );
        let _ = d;
        approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config")
    }

    fn cert_app(&self) -> String {
        let d = self.dir.path();
        format!(
            "[directory.graph]\ntenant_id = \"{TENANT}\"\nclient_id = \"{APP}\"\nauthority = \"{}\"\ncertificate = \"file:{}\"\nprivate_key = \"file:{}\"\n",
            self.sim.url(),
            d.join("app.crt").display(),
            d.join("app.key").display()
        )
    }

    fn secret_app(&self) -> String {
        let p = self.dir.path().join("users-only");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&p, "users-only-secret").expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        format!(
            "[directory.graph]\ntenant_id = \"{TENANT}\"\nclient_id = \"{USERS_ONLY}\"\nauthority = \"{}\"\nauth = \"client_secret\"\nclient_secret = \"file:{}\"\n",
            self.sim.url(),
            p.display()
        )
    }

    async fn directory(&self, extra: &str, app: &str) -> AnyDirectory {
        let loaded = self.config(extra, app);
        let s = loaded.directory().expect("directory settings");
        let res = approval_core::secret::Resolver::new(None).expect("resolver");
        let cred = read_credentials(&s, &res).await.expect("credential");
        res.close().await;
        AnyDirectory::new(s, cred).expect("directory")
    }
}

fn group(name: &str) -> ApproverGroup {
    ApproverGroup {
        name: name.into(),
        dn: None,
        source: format!("test group {name}"),
    }
}

fn approvers(names: &[&str]) -> Approvers {
    Approvers {
        groups: names.iter().map(|n| group(n)).collect(),
        skipped: vec![],
        roles: vec![],
    }
}

#[tokio::test]
async fn users_are_found_by_mail_alias_and_user_principal_name() {
    let env = start(999).await;
    let d = env
        .directory("person_attribute = \"employeeId\"\n", &env.cert_app())
        .await;
    let alice_id = env
        .sim
        .state
        .graph
        .directory_id("alice@example.test")
        .expect("id");
    for address in [
        "alice@example.test",
        "A.Approver@Example.test",
        "ALICE@example.test",
    ] {
        let u = d.find_user(address).await.expect(address);
        assert_eq!(u.dn, alice_id, "{address}");
        assert_eq!(u.sam_account_name.as_deref(), Some("alice"));
        assert_eq!(u.person.as_deref(), Some("E1000"));
        // Only smtp: entries become aliases (x500: is not an address).
        assert_eq!(
            u.aliases,
            vec!["alice@example.test", "a.approver@example.test"]
        );
        assert!(u.is_same_person("alice"));
        assert!(u.is_same_person("EXAMPLE\\alice"));
    }
    // By user principal name: lfischer's differs from her mail.
    let u = d
        .find_user("lfischer@corp.example.test")
        .await
        .expect("upn");
    assert_eq!(u.mail.as_deref(), Some("lena.fischer@example.test"));
    assert_eq!(u.display_name.as_deref(), Some("Lena Fischer"));
    // The one-person lookups.
    let bobs = d.accounts_of_person("E1001").await.expect("accounts");
    let mut upns: Vec<String> = bobs
        .iter()
        .filter_map(|u| u.user_principal_name.clone())
        .collect();
    upns.sort();
    assert_eq!(upns, vec!["bob.adm@example.test", "bob@example.test"]);
    let named = d.accounts_named("EXAMPLE\\lfischer").await.expect("named");
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].mail.as_deref(), Some("lena.fischer@example.test"));
    assert!(d.accounts_named("erin").await.expect("named").is_empty());
}

#[tokio::test]
async fn disabled_unknown_ambiguous_and_hostile_addresses_are_refused() {
    let env = start(999).await;
    let d = env.directory("", &env.cert_app()).await;
    let e = d
        .find_user("erin@example.test")
        .await
        .expect_err("disabled");
    assert!(matches!(e, DirectoryError::UnknownUser { .. }), "{e}");
    let e = d
        .find_user("nobody@example.test")
        .await
        .expect_err("unknown");
    assert!(matches!(e, DirectoryError::UnknownUser { .. }), "{e}");
    let e = d
        .find_user("shared@example.test")
        .await
        .expect_err("ambiguous");
    assert!(
        matches!(e, DirectoryError::Ambiguous { count: 2, .. }),
        "{e}"
    );
    assert_eq!(e.exit(), Exit::Refused);
    // Spaces never reach the filter ...
    let hostile = "x' or accountEnabled eq true or mail eq 'y@example.test";
    let e = d.find_user(hostile).await.expect_err("hostile");
    assert!(matches!(e, DirectoryError::BadAddress { .. }), "{e}");
    // ... and a quote is a literal, not the end of one (unescaped, Graph would read a broken
    // filter and the lookup would fail instead of finding nobody).
    for hostile in ["x'or'1@example.test", "alice@example.test'", "'@x"] {
        let e = d.find_user(hostile).await.expect_err(hostile);
        assert!(
            matches!(e, DirectoryError::UnknownUser { .. }),
            "{hostile}: {e}"
        );
    }
    // A real address with a quote is found (and only that user).
    let u = d.find_user("o'brien@example.test").await.expect("o'brien");
    assert_eq!(u.display_name.as_deref(), Some("Olivia O'Brien"));
    let v = authorize(
        &d,
        "erin@example.test",
        "DBSafe",
        1,
        approvers(&["DB_PAMapprover"]),
    )
    .await
    .expect("verdict");
    assert_eq!(v.refusal, Some(Refusal::UnknownSender));
    let v = authorize(
        &d,
        "shared@example.test",
        "DBSafe",
        1,
        approvers(&["DB_PAMapprover"]),
    )
    .await
    .expect("verdict");
    assert_eq!(v.refusal, Some(Refusal::AmbiguousSender));
}

#[tokio::test]
async fn nested_groups_grant_through_paged_transitive_membership() {
    // Two groups per page: gina's five groups (Deep1..Deep4, DB_PAMapprover) take three pages.
    let env = start(2).await;
    let d = env.directory("", &env.cert_app()).await;
    let before = env.sim.state.graph.directory_calls();
    let v = authorize(
        &d,
        "gina@example.test",
        "DBSafe",
        1,
        approvers(&["DB_PAMapprover"]),
    )
    .await
    .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    let g = v.granted_by.expect("grant");
    assert_eq!(g.group, "DB_PAMapprover");
    assert_eq!(
        g.group_dn,
        env.sim
            .state
            .graph
            .directory_id("DB_PAMapprover")
            .expect("id")
    );
    assert!(!g.path_complete);
    assert!(
        v.reason.contains("nesting resolved by the server"),
        "{}",
        v.reason
    );
    // user, group, three pages of memberships.
    assert_eq!(env.sim.state.graph.directory_calls() - before, 5);
    // bob through DB_Team, the disabled erin never, carol not a member, henry's cycle ends.
    let v = authorize(
        &d,
        "bob@example.test",
        "DBSafe",
        1,
        approvers(&["DB_PAMapprover"]),
    )
    .await
    .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    for (who, want) in [
        ("carol@example.test", Refusal::NotAnApprover),
        ("henry@example.test", Refusal::NotAnApprover),
        ("dave@example.test", Refusal::NotAnApprover),
    ] {
        let v = authorize(
            &d,
            who,
            "DBSafe",
            1,
            approvers(&["DB_PAMapprover", "DB_PAMlevel2"]),
        )
        .await
        .expect("verdict");
        assert!(!v.may_approve, "{who}: {}", v.reason);
        assert_eq!(v.refusal, Some(want), "{who}");
    }
    // A name two groups share is not used; an unknown group is not found.
    let v = authorize(
        &d,
        "alice@example.test",
        "DBSafe",
        1,
        approvers(&["Twin", "NoSuchGroup"]),
    )
    .await
    .expect("verdict");
    assert!(!v.may_approve);
    let statuses: Vec<&str> = v.groups.iter().map(|g| g.status).collect();
    assert_eq!(statuses, vec!["ambiguous", "not_found"]);
    // A group given by its object id.
    let id = env
        .sim
        .state
        .graph
        .directory_id("DB_PAMlevel2")
        .expect("id");
    let v = authorize(&d, "alice@example.test", "DBSafe", 2, approvers(&[&id]))
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
}

#[tokio::test]
async fn the_group_name_attribute_is_configurable() {
    let env = start(999).await;
    // By display name (the default), dave's synced group is "Infra PAM Approvers" ...
    let d = env.directory("", &env.cert_app()).await;
    let v = authorize(
        &d,
        "dave@example.test",
        "InfraSafe",
        1,
        approvers(&["Infra_PAMapprover"]),
    )
    .await
    .expect("verdict");
    assert!(!v.may_approve);
    assert_eq!(v.groups[0].status, "not_found");
    // ... and by its on-premises sAMAccountName it is the PVWA name.
    let d = env
        .directory(
            "[directory.group_names]\nattribute = \"onPremisesSamAccountName\"\n",
            &env.cert_app(),
        )
        .await;
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
}

#[tokio::test]
async fn throttling_is_waited_out_once_then_reported_as_a_fault() {
    let env = start(999).await;
    let d = env.directory("", &env.cert_app()).await;
    env.sim.state.graph.throttle_directory(1, 1);
    let t = std::time::Instant::now();
    let u = d
        .find_user("alice@example.test")
        .await
        .expect("after one 429");
    assert_eq!(u.sam_account_name.as_deref(), Some("alice"));
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(900),
        "Retry-After honoured"
    );
    // Throttled throughout: a fault the watcher retries later, never a refusal or approval.
    env.sim.state.graph.throttle_directory(10, 1);
    let e = d
        .find_user("bob@example.test")
        .await
        .expect_err("throttled");
    assert!(e.is_transient(), "{e}");
    assert!(!e.is_refusal(), "{e}");
    assert_eq!(e.exit(), Exit::Unavailable);
    assert!(e.to_string().contains("429"), "{e}");
    // A Retry-After beyond what one lookup waits is not slept through.
    env.sim.state.graph.throttle_directory(1, 120);
    let t = std::time::Instant::now();
    let e = d
        .find_user("carol@example.test")
        .await
        .expect_err("long wait");
    assert!(e.is_transient(), "{e}");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn a_missing_permission_is_named() {
    let env = start(999).await;
    let d = env.directory("", &env.secret_app()).await;
    // Users can be read ...
    let u = d.find_user("alice@example.test").await.expect("users");
    // ... groups cannot: the error names the permission to grant, and nobody is approved.
    let e = authorize(
        &d,
        "alice@example.test",
        "DBSafe",
        1,
        approvers(&["DB_PAMapprover"]),
    )
    .await
    .expect_err("no group permission");
    assert!(e.to_string().contains("GroupMember.Read.All"), "{e}");
    assert_eq!(e.exit(), Exit::NoPerm);
    assert!(!u.dn.is_empty());
    // A wrong certificate or unknown app: the sign-in is refused, naming the app's section.
    let bad = env
        .cert_app()
        .replace(APP, "0c1e0000-0000-4000-8000-00000000dead");
    let d = env.directory("", &bad).await;
    let e = d
        .find_user("alice@example.test")
        .await
        .expect_err("unknown app");
    assert!(matches!(e, DirectoryError::BindRefused { .. }), "{e}");
    assert!(e.to_string().contains("directory.graph"), "{e}");
}

#[tokio::test]
async fn a_second_match_on_a_later_page_still_makes_the_address_ambiguous() {
    // One user a page: frank1 on the first, frank2 (the alias) on the next.
    let env = start(1).await;
    let d = env.directory("", &env.cert_app()).await;
    let e = d
        .find_user("shared@example.test")
        .await
        .expect_err("ambiguous");
    assert!(
        matches!(e, DirectoryError::Ambiguous { count: 2, .. }),
        "{e}"
    );
    let u = d
        .find_user("alice@example.test")
        .await
        .expect("one page, one user");
    assert_eq!(u.sam_account_name.as_deref(), Some("alice"));
}

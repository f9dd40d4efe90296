//! `check-approval-request --check-site` on a cloud-only site: the mailbox on Graph, the
//! directory on Entra ID (`kind = "entra"`, the mailbox's app), PVWA on Privilege Cloud, all
//! pam-sim. The directory section shows the sign-in, the permissions to read users and group
//! memberships, each approver group resolved in Entra ID and one approver end to end; without
//! the group permission its item fails and names the permission to grant.

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;
#[path = "../../approval-core/tests/support/entra.rs"]
mod entra;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use watcher_env::*;

const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::PrivilegeCloud;

fn check_site(env: &Env, text: &str) -> (Option<i32>, serde_json::Value, String) {
    let cfg = env.dir.path().join("site.toml");
    std::fs::write(&cfg, text).expect("config");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let o = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"))
        .arg("--config")
        .arg(&cfg)
        .arg("--check-site")
        .arg("--json")
        .output()
        .expect("runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for s in [
        "l1-pass",
        "l2-pass",
        "lookup-pass",
        "BEGIN PRIVATE KEY",
        "pamsim-graph-",
    ] {
        assert!(!out.contains(s), "secret {s} shown:\n{out}");
    }
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("JSON: {out}"));
    (o.status.code(), v, out)
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_check_covers_the_entra_directory() {
    let Some(mut env) = start_edited("", |s| {
        s.graph.directory = entra::directory();
        for a in &mut s.graph.apps {
            a.directory_roles = entra::ROLES.iter().map(|r| r.to_string()).collect();
        }
    })
    .await
    else {
        return;
    };
    forward(&env, "c1", "alice@example.test", 9);
    let text = config_text(&env, DEFAULT_APPROVERS, "", "");
    // The LDAP keys replaced by Entra ID's; the static rows stay (the site check reads the
    // safes they name).
    let (a, b) = (
        text.find("[directory]").expect("directory"),
        text.find("[[directory.static]]").expect("static rows"),
    );
    let ca = env
        .sim
        .ca_cert
        .as_ref()
        .expect("https")
        .display()
        .to_string();
    let with = |extra: &str| {
        format!(
            "{}[directory]\nkind = \"entra\"\nca_bundle = \"{ca}\"\napprovers = \"{DEFAULT_APPROVERS}\"\n{}{extra}",
            &text[..a],
            &text[b..]
        )
    };
    // The groups are synced from AD: PVWA names them by their sAMAccountName.
    let text = with("[directory.group_names]\nattribute = \"onPremisesSamAccountName\"\n");
    assert!(!text.contains("bind_dn"), "{text}");
    drop(env.slapd.take());
    let (code, v, out) = check_site(&env, &text);
    assert_eq!(code, Some(0), "{out}");
    let i = item(&v, "directory", "sign-in");
    assert_eq!(i["status"], "ok", "{i}");
    assert!(
        i["finding"]
            .as_str()
            .expect("finding")
            .contains("mailbox.graph"),
        "{i}"
    );
    for (check, perm) in [
        ("read users", "User.Read.All"),
        ("read group membership", "GroupMember.Read.All"),
    ] {
        let i = item(&v, "directory", check);
        assert_eq!(i["status"], "ok", "{i}");
        assert!(
            i["finding"].as_str().expect("finding").contains(perm),
            "{i}"
        );
    }
    let id = env
        .sim
        .state
        .graph
        .directory_id("DB_PAMapprover")
        .expect("id");
    let i = item(&v, "directory", "group DB_PAMapprover");
    assert_eq!(i["status"], "ok", "{i}");
    assert!(i["finding"].as_str().expect("finding").contains(&id), "{i}");
    let i = item(&v, "directory", "approver alice@example.test");
    assert_eq!(i["status"], "ok", "{i}");

    // --check-sender decides as the watcher does, on Entra ID: bob through DB_Team, carol not.
    let run = |args: &[&str]| {
        let o = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"))
            .arg("--config")
            .arg(env.dir.path().join("site.toml"))
            .args(args)
            .output()
            .expect("runs");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = run(&[
        "--check-sender",
        "bob@example.test",
        "--safe",
        "DBSafe",
        "--level",
        "1",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("MAY APPROVE"), "{out}");
    assert!(out.contains("nesting resolved by the server"), "{out}");
    let (code, out) = run(&[
        "--check-sender",
        "carol@example.test",
        "--safe",
        "DBSafe",
        "--level",
        "1",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("MAY NOT APPROVE"), "{out}");
    // --explain reads the same configuration.
    let eml = env.dir.path().join("fw.eml");
    std::fs::write(
        &eml,
        mail(
            "x1",
            "bob@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    )
    .expect("eml");
    let o = Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"))
        .arg("--config")
        .arg(env.dir.path().join("site.toml"))
        .arg("--explain")
        .arg(&eml)
        .arg("--json")
        .output()
        .expect("runs");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("explain JSON");
    assert_eq!(j["request_id"], "DBSafe_9", "{j}");

    // By display name (the default) the synced group "Infra PAM Approvers" is not
    // Infra_PAMapprover: its item fails and says where to look.
    let (code, v, out) = check_site(&env, &with(""));
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(
        item(&v, "directory", "group DB_PAMapprover")["status"],
        "ok"
    );
    let i = item(&v, "directory", "group Infra_PAMapprover");
    assert_eq!(i["status"], "fail", "{i}");
    assert!(
        i["fix"]
            .as_str()
            .expect("fix")
            .contains("directory.group_names"),
        "{i}"
    );

    // The group permission revoked: its item fails with the permission to grant.
    env.sim
        .state
        .graph
        .set_directory_roles(GRAPH_APP, &["User.Read.All"]);
    let (code, v, out) = check_site(&env, &text);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(item(&v, "directory", "read users")["status"], "ok");
    let i = item(&v, "directory", "read group membership");
    assert_eq!(i["status"], "fail", "{i}");
    assert!(
        i["fix"]
            .as_str()
            .expect("fix")
            .contains("GroupMember.Read.All"),
        "{i}"
    );
    assert!(
        i["finding"]
            .as_str()
            .expect("finding")
            .contains("Authorization_RequestDenied"),
        "{i}"
    );
    // Nothing changed by either run.
    assert!(confirms(&env).is_empty());
    assert_eq!(sent_count(&env), 0);
}

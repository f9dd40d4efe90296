//! CyberArk Identity roles as approvers, end to end (issue 31): the watcher on the EWS mailbox
//! and PVWA on Privilege Cloud, a safe whose approvers are Role members, their holders read
//! from pam-sim's Identity tenant with the lookup account's platform token
//! (`[directory.group_names] roles_from = "identity"`), the senders found in a real slapd
//! (support/watcher_env.rs). alice holds "PAM Approvers L1"; the directory group
//! Infra_PAMapprover (dave) is a member of "PAM Infra Role"; bob holds neither.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::PrivilegeCloud;

use approval_core::journal::State;
use approval_core::pipeline::Pipeline;
use watcher_env::*;

const ROLES: &str = r#"
[pvwa.identity]
readers = ["svc_pam_lookup"]
[[pvwa.identity.roles]]
name = "PAM Approvers L1"
members = [{ type = "User", name = "alice" }]
[[pvwa.identity.roles]]
name = "PAM Infra Role"
members = [{ type = "Group", name = "Infra_PAMapprover@example.test" }]

[[pvwa.safes]]
name = "RoleSafe"
members = [
  { name = "svc_pam_level1", type = "user", level1 = true },
  { name = "svc_pam_level2", type = "user", level2 = true },
  { name = "svc_pam_lookup", type = "user" },
  { name = "PAM Approvers L1", type = "role", level1 = true },
  { name = "PAM Infra Role", type = "role", level1 = true },
]

# A safe whose only approver at level 1 is a role of users.
[[pvwa.safes]]
name = "UserRoleSafe"
members = [
  { name = "svc_pam_level1", type = "user", level1 = true },
  { name = "svc_pam_level2", type = "user", level2 = true },
  { name = "svc_pam_lookup", type = "user" },
  { name = "PAM Approvers L1", type = "role", level1 = true },
]
[[pvwa.requests]]
number = 24
safe = "UserRoleSafe"
requester = "lfischer"
levels = [1, 0]

# lfischer's requests, and alice's own.
[[pvwa.requests]]
number = 21
safe = "RoleSafe"
requester = "lfischer"
levels = [1, 0]
[[pvwa.requests]]
number = 22
safe = "RoleSafe"
requester = "alice"
levels = [1, 0]
[[pvwa.requests]]
number = 23
safe = "RoleSafe"
requester = "lfischer"
levels = [1, 0]
"#;

/// The configuration with the roles resolved through Identity (`roles_from`), or not.
fn loaded(env: &Env, roles_from: Option<&str>) -> approval_core::settings::Loaded {
    let text = config_text(env, "safe-members", "", "");
    let names = match roles_from {
        Some(r) => {
            format!("group_names = {{ domains = [\"example.test\"], roles_from = \"{r}\" }}")
        }
        None => "group_names = { domains = [\"example.test\"] }".into(),
    };
    let text = text.replacen(
        "approvers = \"safe-members\"",
        &format!("approvers = \"safe-members\"\n{names}"),
        1,
    );
    approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config")
}

async fn watcher(env: &Env, roles_from: Option<&str>) -> Pipeline {
    Pipeline::new(&loaded(env, roles_from), false)
        .await
        .expect("pipeline builds")
}

fn role_mail(mid: &str, from: &str, number: u32) -> Vec<u8> {
    let requester = if number == 22 {
        "alice@example.test"
    } else {
        "lena.fischer@example.test"
    };
    mail(mid, from, "RoleSafe", number, requester, true)
}

#[tokio::test]
async fn a_role_holder_approves_through_identity_others_and_the_requester_are_refused() {
    let Some(env) = start_with(ROLES).await else {
        return;
    };
    let w = watcher(&env, Some("identity")).await;
    // bob holds neither role, and is in no group of one.
    let p = w
        .process(&deliver(&env, role_mail("r0", "bob@example.test", 21)))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_an_approver"), "{p:?}");
    assert!(confirms(&env).is_empty());
    // alice holds "PAM Approvers L1" (her Identity user's e-mail is her directory mail).
    let p = w
        .process(&deliver(&env, role_mail("r1", "alice@example.test", 21)))
        .await
        .expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("RoleSafe_21", "svc_pam_level1")
    );
    // A safe approved through a role of users alone: alice approves, bob does not.
    let p = w
        .process(&deliver(
            &env,
            mail(
                "u0",
                "bob@example.test",
                "UserRoleSafe",
                24,
                "lena.fischer@example.test",
                true,
            ),
        ))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("not_an_approver"), "{p:?}");
    let p = w
        .process(&deliver(
            &env,
            mail(
                "u1",
                "alice@example.test",
                "UserRoleSafe",
                24,
                "lena.fischer@example.test",
                true,
            ),
        ))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 2);
    assert_eq!(confirms(&env)[1].0, "UserRoleSafe_24");
    // dave approves through the directory group that is a member of "PAM Infra Role".
    let p = w
        .process(&deliver(&env, role_mail("r2", "dave@example.test", 23)))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 3);
    // alice holds the role, but request 22 is her own.
    let p = w
        .process(&deliver(&env, role_mail("r3", "alice@example.test", 22)))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("self_approval"), "{p:?}");
    assert_eq!(confirms(&env).len(), 3, "nothing confirmed for 22");
    w.close().await;
    // `--check-sender` says through which role.
    let cfg = loaded(&env, Some("identity"));
    let v = approval_core::check_sender::check_sender(&cfg, "alice@example.test", "RoleSafe", 1)
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    assert!(
        v.reason
            .contains("through CyberArk Identity role \"PAM Approvers L1\""),
        "{}",
        v.reason
    );
    let v = approval_core::check_sender::check_sender(&cfg, "dave@example.test", "RoleSafe", 1)
        .await
        .expect("verdict");
    assert!(v.may_approve, "{}", v.reason);
    let g = v.granted_by.expect("grant");
    assert!(g.source.contains("PAM Infra Role"), "{}", g.source);
}

#[tokio::test]
async fn without_roles_from_identity_a_role_approves_nobody() {
    let Some(env) = start_with(ROLES).await else {
        return;
    };
    let w = watcher(&env, None).await;
    let p = w
        .process(&deliver(&env, role_mail("t1", "alice@example.test", 21)))
        .await
        .expect("process");
    done(&p, "refused");
    assert!(confirms(&env).is_empty());
    assert_eq!(env.sim.state.pvwa.sim.stats().identity_reads, 0);
    w.close().await;
}

#[tokio::test]
async fn identity_refusing_the_lookup_account_leaves_the_mail_pending() {
    // The lookup account lacks the right to read roles: no approval, and no refusal either
    // (a fault of the site's set-up): the mail waits, and the watcher says why.
    let Some(env) = start_edited(ROLES, |s| s.pvwa.identity.readers.clear()).await else {
        return;
    };
    let w = watcher(&env, Some("identity")).await;
    let p = w
        .process(&deliver(&env, role_mail("f1", "alice@example.test", 21)))
        .await
        .expect("process");
    assert_eq!(p.state, Some(State::Seen), "{p:?}");
    assert!(
        p.pending
            .as_deref()
            .is_some_and(|t| t.contains("CyberArk Identity")),
        "{p:?}"
    );
    assert!(confirms(&env).is_empty());
    assert!(env.sim.state.pvwa.sim.stats().identity_reads_refused > 0);
    w.close().await;
}

/// The site check with RoleSafe among the safes it looks at (a static row names it).
async fn site_check(env: &Env) -> Vec<approval_core::site_check::Item> {
    let text = config_text(env, "safe-members", "", "").replacen(
        "approvers = \"safe-members\"",
        "approvers = \"safe-members\"\ngroup_names = { domains = [\"example.test\"], roles_from = \"identity\", roles = { \"Mapped Role\" = \"CN=DB_PAMapprover,OU=Groups,DC=example,DC=test\" } }",
        1,
    );
    let text = text.replacen(
        "[watcher]",
        "[[directory.static]]\ngroup = \"DB_PAMapprover\"\nlevel = 1\nsafes = [\"RoleSafe\"]\n\n[watcher]",
        1,
    );
    let cfg = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let report =
        approval_core::site_check::run(&cfg, approval_core::site_check::Options::default()).await;
    report.sections.into_iter().flat_map(|s| s.items).collect()
}

fn add_roles(s: &mut pam_sim::Scenario) {
    let safe = s
        .pvwa
        .safes
        .iter_mut()
        .find(|x| x.name == "RoleSafe")
        .expect("RoleSafe");
    for name in ["Ghost Role", "Mapped Role", "Unused Role"] {
        let mut m = safe.members[3].clone();
        m.name = name.into();
        m.level1 = name != "Unused Role";
        safe.members.push(m);
    }
}

#[tokio::test]
async fn the_site_check_says_how_each_role_member_is_resolved() {
    let Some(env) = start_edited(ROLES, add_roles).await else {
        return;
    };
    let items = site_check(&env).await;
    let find = |check: &str| {
        items
            .iter()
            .find(|i| i.check == check)
            .unwrap_or_else(|| panic!("no item {check}: {items:#?}"))
    };
    use approval_core::site_check::Status;
    let l1 = find("safe RoleSafe role PAM Approvers L1");
    assert_eq!(l1.status, Status::Ok, "{l1:?}");
    assert!(
        l1.finding.contains(
            "resolved through CyberArk Identity (read as svc_pam_lookup): 1 user(s), 0 group(s)"
        ),
        "{l1:?}"
    );
    let infra = find("safe RoleSafe role PAM Infra Role");
    assert!(infra.finding.contains("0 user(s), 1 group(s)"), "{infra:?}");
    let level = find("safe RoleSafe level 1");
    assert_eq!(level.status, Status::Ok, "{level:?}");
    assert!(
        level
            .finding
            .contains("CyberArk Identity roles PAM Approvers L1 (1 user(s))"),
        "{level:?}"
    );
    let mapped = find("safe RoleSafe role Mapped Role");
    assert_eq!(mapped.status, Status::Ok);
    assert!(mapped.finding.contains("explicit table"), "{mapped:?}");
    let ghost = find("safe RoleSafe role Ghost Role");
    assert_eq!(ghost.status, Status::Fail, "{ghost:?}");
    assert!(
        ghost.finding.contains("no role named \"Ghost Role\""),
        "{ghost:?}"
    );
    assert!(
        !items
            .iter()
            .any(|i| i.check == "safe RoleSafe role Unused Role"),
        "a role without an authorisation right is not an approver"
    );
}

#[tokio::test]
async fn the_site_check_fails_when_identity_refuses_the_lookup_account() {
    let Some(env) = start_edited(ROLES, |s| s.pvwa.identity.readers.clear()).await else {
        return;
    };
    let items = site_check(&env).await;
    let safe = items
        .iter()
        .find(|i| i.check == "safe RoleSafe")
        .unwrap_or_else(|| panic!("{items:#?}"));
    assert_eq!(safe.status, approval_core::site_check::Status::Fail);
    assert!(safe.finding.contains("CyberArk Identity"), "{safe:?}");
    assert!(
        safe.fix
            .as_deref()
            .is_some_and(|f| f.contains("Read Only System Administration")),
        "{safe:?}"
    );
}

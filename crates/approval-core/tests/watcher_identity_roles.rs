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
    // dave approves through the directory group that is a member of "PAM Infra Role".
    let p = w
        .process(&deliver(&env, role_mail("r2", "dave@example.test", 23)))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 2);
    // alice holds the role, but request 22 is her own.
    let p = w
        .process(&deliver(&env, role_mail("r3", "alice@example.test", 22)))
        .await
        .expect("process");
    done(&p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some("self_approval"), "{p:?}");
    assert_eq!(confirms(&env).len(), 2, "nothing confirmed for 22");
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

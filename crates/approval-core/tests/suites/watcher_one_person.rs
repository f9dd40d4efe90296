// One person, one confirmation, in any order (issue 26), end to end: pam-sim (PVWA, EWS or
// Graph, self-hosted or Privilege Cloud) and a real slapd (scripts/ldap/ad-data.ldif: alice and
// bob approve DBSafe, bob through DB_Team; bob.adm is bob's second account, same employeeID,
// also in DB_Team; dave approves InfraSafe only). People who act in the portal are pam-sim users
// who sign in through the same PVWA REST client. Each test has its own servers.

// (`watcher_env` is declared by the including file, with the backend.)

use approval_core::exit::Exit;
use approval_core::journal::State;
use approval_core::pipeline::Pipeline;
use pam_sim::faults::{FailNext, Faults};
use watcher_env::*;

/// The configuration with `directory_extra` keys in `[directory]` and `watcher_extra` in
/// `[watcher]`.
fn loaded(
    env: &Env,
    approvers: &str,
    directory_extra: &str,
    watcher_extra: &str,
) -> approval_core::settings::Loaded {
    let text = config_text(env, approvers, "", watcher_extra);
    let line = format!("approvers = \"{approvers}\"\n");
    assert!(text.contains(&line));
    let text = text.replacen(&line, &format!("{line}{directory_extra}\n"), 1);
    approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config")
}

async fn pipeline_with(env: &Env, approvers: &str, directory_extra: &str) -> Pipeline {
    Pipeline::new(&loaded(env, approvers, directory_extra, ""), false)
        .await
        .expect("pipeline builds")
}

/// `user` confirms `rid` in the portal (signs in with `password` through the REST API, as the
/// portal would act for them).
async fn portal_confirm(env: &Env, user: &str, password: &str, rid: &str, reason: &str) {
    let loaded = config(env, DEFAULT_APPROVERS);
    let pvwa = approval_core::pvwa::Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client");
    let s = pvwa
        .logon(user, &secrecy::SecretString::from(password.to_string()))
        .await
        .expect("logon");
    s.confirm(rid, reason).await.expect("portal confirm");
    s.logoff().await;
}

/// `from` forwards the notification of request `number` on `safe` by `requester`.
fn forward_on(
    env: &Env,
    mid: &str,
    from: &str,
    safe: &str,
    number: u32,
    requester: &str,
) -> approval_core::mailbox::MessageRef {
    deliver(env, mail(mid, from, safe, number, requester, true))
}

/// Confirms by this tool's accounts (`svc_pam_level1/2`) and by anyone else.
fn confirms_by(env: &Env, rid: &str) -> (Vec<String>, Vec<String>) {
    let (ours, theirs): (Vec<_>, Vec<_>) = confirms(env)
        .into_iter()
        .filter(|c| c.0 == rid)
        .map(|c| c.1)
        .partition(|u| u.starts_with("svc_pam_level"));
    (ours, theirs)
}

fn refused_with(p: &approval_core::pipeline::Processed, code: &str) {
    done(p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some(code), "{p:?}");
}

/// The environment with `extra`, and DBSafe as these tests were written for: the tool's
/// accounts confirm through the vault groups PAM_Approvers_L1/L2, which people share (a portal
/// confirm by carol, bob or bob.adm lands in the same confirmer entry). The directory group
/// DB_PAMapprover (alice, bob through DB_Team, bob.adm) approves both levels: in the default
/// mode (safe-members) it is the mail approvers' group, which also gives them a portal right,
/// so these tests' watcher says mail approvers hold none ([`vault_groups_pipeline`]) and the
/// one-person rule alone decides.
async fn start_vault_groups(extra: &str) -> Option<Env> {
    start_edited(extra, |s| {
        let member = |name: &str, level1: bool, level2: bool| pam_sim::pvwa::MemberDef {
            name: name.into(),
            r#type: "group".into(),
            level1,
            level2,
            view_members: true,
            expires_at: None,
        };
        let db = s
            .pvwa
            .safes
            .iter_mut()
            .find(|x| x.name == "DBSafe")
            .expect("DBSafe");
        db.members = vec![
            member("PAM_Approvers_L1", true, false),
            member("PAM_Approvers_L2", false, true),
            member("PAM_Readers", false, false),
            member("DB_PAMapprover", true, true),
        ];
        for u in &mut s.pvwa.users {
            let group = match u.name.as_str() {
                "svc_pam_level1" => "PAM_Approvers_L1",
                "svc_pam_level2" => "PAM_Approvers_L2",
                "svc_pam_lookup" => "PAM_Readers",
                _ => continue,
            };
            u.groups.push(group.into());
        }
    })
    .await
}

/// The watcher of the [`start_vault_groups`] tests: the default approver mode, `directory_extra`
/// in `[directory]`, and no portal right held by mail approvers.
async fn vault_groups_pipeline(env: &Env, directory_extra: &str) -> Pipeline {
    let loaded = loaded(
        env,
        DEFAULT_APPROVERS,
        directory_extra,
        "portal_rights = \"none-held\"",
    );
    Pipeline::new(&loaded, false)
        .await
        .expect("pipeline builds")
}

const CAROL_IN_THE_LEVEL1_GROUP: &str = r#"
[[pvwa.users]]
name = "carol"
password = "x"
email = "carol@example.test"
groups = ["PAM_Approvers_L1"]

# dave's request on DBSafe: two confirmations at level 1, one at level 2.
[[pvwa.requests]]
number = 21
safe = "DBSafe"
requester = "dave"
levels = [2, 1]
"#;

#[tokio::test]
async fn the_journal_is_the_record_a_replaced_reason_does_not_let_bob_confirm_level_2() {
    let env = match start_vault_groups(CAROL_IN_THE_LEVEL1_GROUP).await {
        Some(e) => e,
        None => return,
    };
    let w = vault_groups_pipeline(&env, "").await;
    let p = w
        .process(&forward(&env, "j1", "bob@example.test", 21))
        .await
        .expect("process");
    done(&p, "confirmed");
    // carol confirms in the portal through the same vault group as the level-1 service
    // account: PVWA shows one confirmer entry for the group, with carol's reason now.
    portal_confirm(&env, "carol", "x", "DBSafe_21", "fine by me").await;
    // The request waits at level 2; bob forwards again.
    let p = w
        .process(&forward(&env, "j2", "bob@example.test", 21))
        .await
        .expect("process");
    refused_with(&p, "already_confirmed_by_you");
    assert!(
        p.reason.as_deref().is_some_and(|r| r.contains("by mail")),
        "{p:?}"
    );
    let (ours, theirs) = confirms_by(&env, "DBSafe_21");
    assert_eq!(ours, vec!["svc_pam_level1"], "one person, one confirmation");
    assert_eq!(theirs, vec!["carol"]);
    // Another person still can.
    let p = w
        .process(&forward(&env, "j3", "alice@example.test", 21))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(
        confirms_by(&env, "DBSafe_21").0,
        vec!["svc_pam_level1", "svc_pam_level2"]
    );
    w.close().await;
}

const BOB_IN_THE_LEVEL1_GROUP: &str = r#"
[[pvwa.users]]
name = "bob"
password = "x"
email = "bob@example.test"
groups = ["PAM_Approvers_L1"]

# dave's request on DBSafe: two confirmations at level 1, single level.
[[pvwa.requests]]
number = 22
safe = "DBSafe"
requester = "dave"
levels = [2, 0]
"#;

#[tokio::test]
async fn a_retry_re_runs_the_decision_a_portal_confirm_in_between_is_refused() {
    let env = match start_vault_groups(BOB_IN_THE_LEVEL1_GROUP).await {
        Some(e) => e,
        None => return,
    };
    let w = vault_groups_pipeline(&env, "").await;
    let m = forward(&env, "r1", "bob@example.test", 22);
    // PVWA answers the confirm with 503: the outcome is a fault, the row stays `decided`.
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            fail: Some(FailNext {
                status: 503,
                count: 1,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            path_contains: Some("/confirm".into()),
            ..Default::default()
        },
    );
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.state, Some(State::Decided), "{p:?}");
    assert!(p.pending.is_some() && p.exit != Exit::Ok, "{p:?}");
    env.sim.state.faults.clear();
    assert!(confirms(&env).is_empty(), "{:?}", confirms(&env));
    // Meanwhile bob confirms in the portal himself.
    portal_confirm(&env, "bob", "x", "DBSafe_22", "ok").await;
    // The retry decides again: bob acted already.
    let p = w.process(&m).await.expect("retry");
    refused_with(&p, "already_confirmed_by_you");
    let (ours, theirs) = confirms_by(&env, "DBSafe_22");
    assert!(ours.is_empty(), "never confirmed for bob by mail: {ours:?}");
    assert_eq!(theirs, vec!["bob"]);
    let hist: Vec<String> = w
        .journal()
        .history(p.row.expect("row"))
        .expect("history")
        .into_iter()
        .map(|h| h.1)
        .collect();
    assert_eq!(hist, ["seen", "decided", "refused", "notified", "filed"]);
    w.close().await;
}

#[tokio::test]
async fn a_retry_without_a_change_in_between_confirms_once() {
    let env = match start_vault_groups(BOB_IN_THE_LEVEL1_GROUP).await {
        Some(e) => e,
        None => return,
    };
    let w = vault_groups_pipeline(&env, "").await;
    let m = forward(&env, "r2", "alice@example.test", 22);
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            fail: Some(FailNext {
                status: 503,
                count: 1,
                body: None,
                content_type: None,
                headers: Default::default(),
            }),
            path_contains: Some("/confirm".into()),
            ..Default::default()
        },
    );
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.state, Some(State::Decided), "{p:?}");
    env.sim.state.faults.clear();
    let p = w.process(&m).await.expect("retry");
    done(&p, "confirmed");
    assert_eq!(confirms_by(&env, "DBSafe_22").0, vec!["svc_pam_level1"]);
    // The journal holds alice's confirmation: she cannot give the second one by mail either.
    let p = w
        .process(&forward(&env, "r3", "alice@example.test", 22))
        .await
        .expect("process");
    refused_with(&p, "already_confirmed_by_you");
    assert_eq!(confirms_by(&env, "DBSafe_22").0.len(), 1);
    w.close().await;
}

/// TeamSafe: each team's directory group approves level 1 (DB_Team: bob and bob.adm;
/// Infra_PAMapprover: dave), a common group level 2 (DB_PAMapprover: alice, and bob through
/// DB_Team); the service accounts are direct members.
const TEAM_SAFE: &str = r#"
[[pvwa.safes]]
name = "TeamSafe"
members = [
  { name = "svc_pam_level1", type = "user", level1 = true },
  { name = "svc_pam_level2", type = "user", level2 = true },
  { name = "svc_pam_lookup", type = "user" },
  { name = "DB_Team@example.test", type = "group", level1 = true },
  { name = "Infra_PAMapprover@example.test", type = "group", level1 = true },
  { name = "DB_PAMapprover@example.test", type = "group", level2 = true },
]

# carol's request, one confirmation per level.
[[pvwa.requests]]
number = 31
safe = "TeamSafe"
requester = "carol"
levels = [1, 1]

# carol's request, two confirmations at level 1, single level.
[[pvwa.requests]]
number = 32
safe = "TeamSafe"
requester = "carol"
levels = [2, 0]
"#;

const DOMAINS: &str = "group_names = { domains = [\"example.test\"] }";

#[tokio::test]
async fn mail_first_portal_second_a_forwarder_with_a_later_portal_right_is_told_to_use_the_portal()
{
    let env = match start_with(TEAM_SAFE).await {
        Some(e) => e,
        None => return,
    };
    let w = pipeline_with(&env, "safe-members", DOMAINS).await;
    // bob approves level 1 (DB_Team) and holds the level-2 right himself (DB_PAMapprover).
    let p = w
        .process(&forward_on(
            &env,
            "p1",
            "bob@example.test",
            "TeamSafe",
            31,
            "carol@example.test",
        ))
        .await
        .expect("process");
    refused_with(&p, "use_the_portal");
    let reason = p.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("portal") && reason.contains("DB_PAMapprover"),
        "{reason}"
    );
    assert!(confirms(&env).is_empty());
    let reply = sent_to(&env, "bob@example.test");
    assert_eq!(reply.len(), 1);
    assert!(reply[0].1.contains("use_the_portal"), "{}", reply[0].1);
    // dave is only in his team's level-1 group: approved by mail without friction.
    let p = w
        .process(&forward_on(
            &env,
            "p2",
            "dave@example.test",
            "TeamSafe",
            31,
            "carol@example.test",
        ))
        .await
        .expect("process");
    done(&p, "confirmed");
    // Level 2 is the last confirmation: alice's own right there is no second one.
    let p = w
        .process(&forward_on(
            &env,
            "p3",
            "alice@example.test",
            "TeamSafe",
            31,
            "carol@example.test",
        ))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(
        confirms_by(&env, "TeamSafe_31").0,
        vec!["svc_pam_level1", "svc_pam_level2"]
    );
    w.close().await;
}

#[tokio::test]
async fn mail_first_portal_second_a_level_1_quorum_of_two_needs_the_portal() {
    let env = match start_with(TEAM_SAFE).await {
        Some(e) => e,
        None => return,
    };
    let w = pipeline_with(&env, "safe-members", DOMAINS).await;
    // Two confirmations at level 1: dave's own level-1 right could give the second one.
    let p = w
        .process(&forward_on(
            &env,
            "q1",
            "dave@example.test",
            "TeamSafe",
            32,
            "carol@example.test",
        ))
        .await
        .expect("process");
    refused_with(&p, "use_the_portal");
    assert!(confirms(&env).is_empty());
    w.close().await;
}

const HIDDEN_MEMBERS: &str = r#"
[[pvwa.safes]]
name = "DBSafeHidden"
members = [
  { name = "svc_pam_level1", type = "user", level1 = true },
  { name = "svc_pam_level2", type = "user", level2 = true },
  { name = "svc_pam_lookup", type = "user", view_members = false },
]

[[pvwa.requests]]
number = 41
safe = "DBSafeHidden"
requester = "dave"
levels = [1, 1]

[[pvwa.requests]]
number = 42
safe = "DBSafeHidden"
requester = "dave"
levels = [1, 0]
"#;

const HIDDEN_RULE: &str = "[[directory.static]]\ngroup = \"DB_PAMapprover\"\nlevel = 1\nsafes = [\"DBSafeHidden\"]\n";

#[tokio::test]
async fn static_mode_fails_closed_when_the_safe_members_cannot_be_read() {
    let env = match start_with(HIDDEN_MEMBERS).await {
        Some(e) => e,
        None => return,
    };
    let w = pipeline_with(&env, "static", HIDDEN_RULE).await;
    // Level 2 is still to come, and the lookup account may not read the safe's members.
    let p = w
        .process(&forward_on(
            &env,
            "h1",
            "alice@example.test",
            "DBSafeHidden",
            41,
            "dave@example.test",
        ))
        .await
        .expect("process");
    refused_with(&p, "portal_rights_unknown");
    // Nothing needed after this confirmation: the members are not needed.
    let p = w
        .process(&forward_on(
            &env,
            "h2",
            "alice@example.test",
            "DBSafeHidden",
            42,
            "dave@example.test",
        ))
        .await
        .expect("process");
    done(&p, "confirmed");
    w.close().await;
    // The explicit opt-out: the deployment asserts mail approvers hold no portal right.
    let loaded = loaded(
        &env,
        "static",
        HIDDEN_RULE,
        "portal_rights = \"none-held\"",
    );
    let w = Pipeline::new(&loaded, false).await.expect("pipeline");
    let p = w
        .process(&forward_on(
            &env,
            "h3",
            "alice@example.test",
            "DBSafeHidden",
            41,
            "dave@example.test",
        ))
        .await
        .expect("process");
    done(&p, "confirmed");
    w.close().await;
}

const PERSON: &str = "person_attribute = \"employeeID\"";

const BOB_ADM_REQUESTS: &str = r#"
# bob's admin account asks for access.
[[pvwa.requests]]
number = 51
safe = "DBSafe"
requester = "bob.adm"
levels = [1, 0]
"#;

#[tokio::test]
async fn a_second_account_is_the_same_person() {
    let env = match start_vault_groups(BOB_ADM_REQUESTS).await {
        Some(e) => e,
        None => return,
    };
    let w = vault_groups_pipeline(&env, PERSON).await;
    // bob confirms level 1 by mail; his admin account forwards for level 2.
    let p = w
        .process(&forward(&env, "s1", "bob@example.test", 7))
        .await
        .expect("process");
    done(&p, "confirmed");
    let p = w
        .process(&forward(&env, "s2", "bob.adm@example.test", 7))
        .await
        .expect("process");
    refused_with(&p, "already_confirmed_by_you");
    assert_eq!(confirms_by(&env, "DBSafe_7").0, vec!["svc_pam_level1"]);
    // bob approving his admin account's request approves his own.
    let p = w
        .process(&forward_on(
            &env,
            "s3",
            "bob@example.test",
            "DBSafe",
            51,
            "bob.adm@example.test",
        ))
        .await
        .expect("process");
    refused_with(&p, "self_approval");
    assert!(confirms_by(&env, "DBSafe_51").0.is_empty());
    // Someone else is not linked: alice confirms level 2.
    let p = w
        .process(&forward(&env, "s4", "alice@example.test", 7))
        .await
        .expect("process");
    done(&p, "confirmed");
    w.close().await;
}

const BOB_ADM_IN_THE_PORTAL: &str = r#"
[[pvwa.users]]
name = "bob.adm"
password = "x"
email = "bob.adm@example.test"
groups = ["PAM_Approvers_L1"]

# dave's request on DBSafe: two confirmations at level 1, single level.
[[pvwa.requests]]
number = 52
safe = "DBSafe"
requester = "dave"
levels = [2, 0]
"#;

#[tokio::test]
async fn a_portal_confirm_by_a_second_account_counts_as_its_owner() {
    let env = match start_vault_groups(BOB_ADM_IN_THE_PORTAL).await {
        Some(e) => e,
        None => return,
    };
    let w = vault_groups_pipeline(&env, PERSON).await;
    // bob's admin account confirms in the portal; bob forwards for the second confirmation.
    portal_confirm(&env, "bob.adm", "x", "DBSafe_52", "ok").await;
    let p = w
        .process(&forward(&env, "t1", "bob@example.test", 52))
        .await
        .expect("process");
    refused_with(&p, "already_confirmed_by_you");
    assert!(confirms_by(&env, "DBSafe_52").0.is_empty());
    // alice is another person.
    let p = w
        .process(&forward(&env, "t2", "alice@example.test", 52))
        .await
        .expect("process");
    done(&p, "confirmed");
    w.close().await;
}

#[tokio::test]
async fn a_mail_left_in_seen_by_a_fault_decides_again_from_scratch() {
    let env = match start_vault_groups(BOB_IN_THE_LEVEL1_GROUP).await {
        Some(e) => e,
        None => return,
    };
    let w = vault_groups_pipeline(&env, "").await;
    let m = forward(&env, "u1", "bob@example.test", 22);
    // PVWA cannot be read: the mail stays in `seen`.
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            fail: Some(FailNext {
                status: 503,
                count: 1,
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
    env.sim.state.faults.clear();
    portal_confirm(&env, "bob", "x", "DBSafe_22", "ok").await;
    let p = w.process(&m).await.expect("retry");
    refused_with(&p, "already_confirmed_by_you");
    assert!(confirms_by(&env, "DBSafe_22").0.is_empty());
    w.close().await;
}

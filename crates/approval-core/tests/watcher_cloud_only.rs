//! A cloud-only site end to end: the mailbox on Exchange Online (Microsoft Graph), the
//! directory on Microsoft Entra ID (`[directory] kind = "entra"`, the mailbox's app
//! registration, no LDAP server at all), PVWA on Privilege Cloud (CyberArk Identity platform
//! tokens), all played by pam-sim. The watcher confirms by mail at level 1 for a member of a
//! nested Entra group, refuses a non-approver, a disabled account and the requester, counts a
//! second account (same `employeeId`) as its owner (approving its request is approving one's own), and leaves a mail pending while Graph is
//! throttling.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;
#[path = "support/entra.rs"]
mod entra;

use approval_core::journal::State;
use approval_core::pipeline::{Pipeline, Processed};
use watcher_env::*;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::PrivilegeCloud;

/// bob's admin account asks for access (request 51).
const BOB_ADM_REQUEST: &str = r#"
[[pvwa.requests]]
number = 51
safe = "DBSafe"
requester = "bob.adm"
levels = [1, 0]
"#;

/// pam-sim with the Entra directory and the app's directory permissions.
async fn cloud_env() -> Option<Env> {
    start_edited(BOB_ADM_REQUEST, |s| {
        s.graph.directory = entra::directory();
        for a in &mut s.graph.apps {
            a.directory_roles = entra::ROLES.iter().map(|r| r.to_string()).collect();
        }
    })
    .await
}

/// The site's configuration: the suite's text (written while slapd is up: it names it) with
/// `[directory]` replaced by Entra ID; the pipeline is then built with no LDAP server at all.
fn cloud_config(env: &Env, directory_extra: &str) -> approval_core::settings::Loaded {
    let text = config_text(env, DEFAULT_APPROVERS, "", "");
    let start = text.find("[directory]").expect("directory section");
    let end = text.find("[watcher]").expect("watcher section");
    let ca = env
        .sim
        .ca_cert
        .as_ref()
        .expect("https")
        .display()
        .to_string();
    let directory = format!(
        "[directory]\nkind = \"entra\"\nca_bundle = \"{ca}\"\ntimeout_secs = 5\n{directory_extra}\n\n"
    );
    let text = format!("{}{directory}{}", &text[..start], &text[end..]);
    assert!(!text.contains("ldap"), "no LDAP left: {text}");
    approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config")
}

async fn cloud_pipeline(env: &mut Env, directory_extra: &str) -> Pipeline {
    let loaded = cloud_config(env, directory_extra);
    drop(env.slapd.take());
    let s = loaded.directory().expect("directory");
    assert_eq!(s.kind, approval_core::directory::DirectoryKind::Entra);
    assert_eq!(s.entra.as_ref().expect("entra").app_key, "mailbox.graph");
    Pipeline::new(&loaded, false)
        .await
        .expect("pipeline builds")
}

fn refused_with(p: &Processed, code: &str) {
    done(p, "refused");
    assert_eq!(p.reason_code.as_deref(), Some(code), "{p:?}");
}

#[tokio::test]
async fn a_cloud_only_site_approves_by_mail_and_refuses_who_may_not() {
    let Some(mut env) = cloud_env().await else {
        return;
    };
    let w = cloud_pipeline(&mut env, "").await;
    // bob (DB_Team nested in DB_PAMapprover in Entra ID) confirms lfischer's request at level 1;
    // the requester is named by her mail, which Entra ID says is hers.
    let p = w
        .process(&forward(&env, "c1", "bob@example.test", 7))
        .await
        .expect("process");
    done(&p, "confirmed");
    let c = confirms(&env);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].0.as_str(), c[0].1.as_str()),
        ("DBSafe_7", "svc_pam_level1")
    );
    let replies = sent_to(&env, "bob@example.test");
    assert_eq!(replies.len(), 1);
    assert!(replies[0].0.starts_with("Approved:"), "{}", replies[0].0);
    // carol is in no approver group.
    let p = w
        .process(&forward(&env, "c2", "carol@example.test", 9))
        .await
        .expect("process");
    refused_with(&p, "not_an_approver");
    // erin is in DB_PAMapprover, but her account is disabled.
    let p = w
        .process(&forward(&env, "c3", "erin@example.test", 9))
        .await
        .expect("process");
    refused_with(&p, "unknown_sender");
    // alice approves DBSafe, but request 8 is her own.
    let p = w
        .process(&deliver(
            &env,
            mail(
                "c4",
                "alice@example.test",
                "DBSafe",
                8,
                "alice@example.test",
                true,
            ),
        ))
        .await
        .expect("process");
    refused_with(&p, "self_approval");
    assert_eq!(confirms(&env).len(), 1, "only bob's confirm");
    assert_eq!(folder(&env, "Refused").len(), 3);
    assert_signed_in_per_role(&env, 2);
    assert!(
        env.sim.state.graph.directory_calls() > 0,
        "Entra ID was asked"
    );
    w.close().await;
}

#[tokio::test]
async fn a_second_entra_account_is_the_same_person() {
    let Some(mut env) = cloud_env().await else {
        return;
    };
    let w = cloud_pipeline(&mut env, "person_attribute = \"employeeId\"").await;
    // bob approving his admin account's request approves his own.
    let p = w
        .process(&deliver(
            &env,
            mail(
                "p3",
                "bob@example.test",
                "DBSafe",
                51,
                "bob.adm@example.test",
                true,
            ),
        ))
        .await
        .expect("process");
    refused_with(&p, "self_approval");
    assert!(confirms(&env).is_empty());
    // alice is another person: she confirms it.
    let p = w
        .process(&deliver(
            &env,
            mail(
                "p4",
                "alice@example.test",
                "DBSafe",
                51,
                "bob.adm@example.test",
                true,
            ),
        ))
        .await
        .expect("process");
    done(&p, "confirmed");
    assert_eq!(confirms(&env).len(), 1);
    w.close().await;
}

#[tokio::test]
async fn a_throttled_directory_leaves_the_mail_pending() {
    let Some(mut env) = cloud_env().await else {
        return;
    };
    let w = cloud_pipeline(&mut env, "").await;
    env.sim.state.graph.throttle_directory(1000, 1);
    let m = forward(&env, "t1", "bob@example.test", 7);
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.state, Some(State::Seen), "{p:?}");
    assert!(confirms(&env).is_empty());
    assert!(sent_to(&env, "bob@example.test").is_empty(), "no reply yet");
    env.sim.state.graph.throttle_directory(0, 1);
    let p = w.process(&m).await.expect("retry");
    done(&p, "confirmed");
    w.close().await;
}

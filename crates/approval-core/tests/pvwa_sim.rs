//! The PVWA client against pam-sim's PVWA over HTTPS with the simulator's CA: the Dual Control
//! flow, logoff on every path, cookies, id encoding, error bodies, retries for reads only, and no
//! blind repeat of a confirm.

use std::time::Duration;

use approval_core::exit::{Classify, Exit};
use approval_core::pvwa::PvwaConfig;
use approval_core::pvwa::{Pvwa, PvwaError};
use approval_core::settings as config;
use pam_sim::faults::{FailNext, Faults};
use pam_sim::{Scenario, Sim, SimOptions};
use secrecy::SecretString;

const SCENARIO: &str = r#"
[pvwa]
# The load balancer needs its cookie back: the client keeps a jar per session.
sticky_cookie = true
[[pvwa.users]]
name = "svc_l1"
password = "pw-l1"
groups = ["Infra_L1"]
[[pvwa.users]]
name = "svc_l2"
password = "pw-l2"
groups = ["All_L2"]
[[pvwa.users]]
name = "alice"
password = "pw-alice"
groups = ["Infra_L1"]
[[pvwa.users]]
name = "svc_noaudit"
password = "pw-na"
groups = ["All_L2"]
audit_users = false
# The vault's user records (GET /API/Users): the search for lfischer also finds lfischer2.
[[pvwa.users]]
name = "lfischer"
password = "x"
email = " lena.fischer@example.test "
[[pvwa.users]]
name = "lfischer2"
password = "x"
email = "other@example.test"
[[pvwa.groups]]
name = "Infra_L1"
type = "Directory"
directory = "corp.example"
dn = "CN=Infra_L1,OU=Groups,DC=corp,DC=example"
[[pvwa.groups]]
name = "Infra_L1_old"
type = "Directory"
directory = "corp.example"
[[pvwa.groups]]
name = "All_L2"
type = "Vault"
[[pvwa.safes]]
name = "InfraSafe"
members = [
  { name = "Infra_L1", level1 = true },
  { name = "All_L2", level2 = true },
  { name = "M1" }, { name = "M2" }, { name = "M3" },
]
[[pvwa.safes]]
name = "My Safe.v2"
members = [{ name = "Infra_L1", level1 = true }]
[[pvwa.safes]]
name = "OtherSafe"
members = [{ name = "Other_L1", level1 = true }, { name = "All_L2", level2 = true }]
[[pvwa.requests]]
number = 1
safe = "InfraSafe"
requester = "alice"
levels = [1, 1]
[[pvwa.requests]]
number = 2
safe = "InfraSafe"
requester = "bob"
levels = [1, 0]
expires_in_secs = -10
[[pvwa.requests]]
number = 3
safe = "My Safe.v2"
requester = "bob"
levels = [1, 0]
[[pvwa.requests]]
number = 4
safe = "OtherSafe"
requester = "bob"
[[pvwa.requests]]
number = 5
safe = "InfraSafe"
requester = "bob"
levels = [1, 0]
"#;

struct Env {
    sim: Sim,
    _dir: tempfile::TempDir,
}

async fn start() -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(
        Scenario::from_toml(SCENARIO).expect("scenario"),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..Default::default()
        },
    )
    .await
    .expect("sim starts");
    Env { sim, _dir: dir }
}

fn cfg(env: &Env, extra: &str) -> PvwaConfig {
    let text = format!(
        "[pvwa]\nurl = \"{}\"\nca_bundle = \"{}\"\nbackoff_ms = 10\n{extra}\n",
        env.sim.url(),
        env.sim.ca_cert.as_ref().expect("ca").display()
    );
    let loaded = config::load_from_parts(Some(&text), None, &[]).expect("config");
    loaded.pvwa().expect("pvwa").clone()
}

/// Faults: the next `count` calls whose path contains `path` answer `status` (with a body).
fn fail(status: u16, count: u32, path: &str, body: Option<(&str, &str)>) -> Faults {
    Faults {
        fail: Some(FailNext {
            status,
            count,
            body: body.map(|b| b.1.to_string()),
            content_type: body.map(|b| b.0.to_string()),
            headers: Default::default(),
        }),
        path_contains: Some(path.into()),
        ..Default::default()
    }
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

#[tokio::test]
async fn two_level_flow_with_logoff_and_sticky_cookie() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "")).expect("client");
    pvwa.with_session("svc_l1", &pw("pw-l1"), async |s| -> Result<(), PvwaError> {
        let r = s.get_request("InfraSafe_1").await?;
        assert_eq!(r.current_confirmation_level, 1);
        assert_eq!(r.requestor_user_name, "alice");
        s.confirm("InfraSafe_1", "Approved on behalf of bob@example.test")
            .await?;
        let r = s.get_request("InfraSafe_1").await?;
        assert_eq!(r.current_confirmation_level, 2, "moved to level 2");
        assert_eq!(r.confirmers.iter().filter(|c| c.acted()).count(), 1);
        Ok(())
    })
    .await
    .expect("level 1");
    pvwa.with_session("svc_l2", &pw("pw-l2"), async |s| {
        s.confirm("InfraSafe_1", "level two").await
    })
    .await
    .expect("level 2");
    let actions = env.sim.state.pvwa.actions();
    assert_eq!(actions.len(), 2);
    assert_eq!((actions[0].level, actions[0].user.as_str()), (1, "svc_l1"));
    assert_eq!(actions[0].reason, "Approved on behalf of bob@example.test");
    assert_eq!((actions[1].level, actions[1].user.as_str()), (2, "svc_l2"));
    let stats = env.sim.state.pvwa.stats();
    assert_eq!((stats.logons, stats.logoffs, stats.open), (2, 2, 0));
    assert_eq!(
        stats.cookie_refused, 0,
        "the cookie jar kept the load balancer cookie"
    );
    assert_eq!(stats.bearer_refused, 0, "the token is sent raw");
}

#[tokio::test]
async fn logoff_happens_on_error_paths_and_on_drop() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "")).expect("client");
    let r = pvwa
        .with_session("svc_l1", &pw("pw-l1"), async |s| {
            s.get_request("InfraSafe_999").await
        })
        .await;
    let e = r.expect_err("not found");
    assert!(matches!(e, PvwaError::NotFound { .. }), "{e}");
    assert_eq!(e.exit(), Exit::Refused);
    assert_eq!(env.sim.state.pvwa.stats().logoffs, 1);

    let s = pvwa.logon("svc_l1", &pw("pw-l1")).await.expect("logon");
    drop(s);
    for _ in 0..100 {
        if env.sim.state.pvwa.stats().logoffs == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        env.sim.state.pvwa.stats().logoffs,
        2,
        "a dropped session logs off in the background"
    );
}

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "")).expect("client");
    let e = pvwa
        .logon("svc_l1", &pw("wrong-password-123"))
        .await
        .expect_err("refused");
    assert!(matches!(e, PvwaError::LogonRefused { .. }), "{e}");
    assert_eq!(e.exit(), Exit::NoPerm);
    assert!(!e.to_string().contains("wrong-password-123"));
    assert!(e.to_string().contains("PASWS013E"), "{e}");
}

#[tokio::test]
async fn refusals_are_final_answers_with_the_request_readable_afterwards() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "")).expect("client");
    pvwa.with_session("svc_l1", &pw("pw-l1"), async |s| -> Result<(), PvwaError> {
        // expired
        let e = s.confirm("InfraSafe_2", "x").await.expect_err("expired");
        assert_eq!(e.exit(), Exit::Refused, "{e}");
        assert!(!e.is_transient());
        // What tells expiry is documented: `ExpirationDate` in the past (pvwa.md §9). The
        // status a real PVWA shows then is not (ASSUMPTIONS.md P1, P2, P20).
        let r = s.get_request("InfraSafe_2").await?;
        assert!(
            r.expiration_date != 0 && r.expiration_date <= chrono::Utc::now().timestamp(),
            "{r:?}"
        );
        // not an authorised confirmer of that safe at level 1
        let e = s
            .confirm("OtherSafe_4", "x")
            .await
            .expect_err("not authorised");
        assert_eq!(e.exit(), Exit::Refused, "{e}");
        // already confirmed
        s.confirm("InfraSafe_5", "x").await?;
        let e = s.confirm("InfraSafe_5", "x").await.expect_err("already");
        // The error code is the stand-in's (P3: real codes are unpublished); the client
        // reads a final refusal, and the request says why: no confirmation is left.
        assert_eq!(e.exit(), Exit::Refused, "{e}");
        assert!(!e.is_transient());
        let r = s.get_request("InfraSafe_5").await?;
        assert_eq!(r.confirmations_left, 0, "{r:?}");
        assert!(r.confirmers.iter().any(|c| c.acted()), "{r:?}");
        Ok(())
    })
    .await
    .expect("flow");
    // the requester cannot confirm her own request
    let e = pvwa
        .with_session("alice", &pw("pw-alice"), async |s| {
            s.confirm("InfraSafe_1", "mine").await
        })
        .await
        .expect_err("self");
    assert_eq!(e.exit(), Exit::Refused, "{e}");
    assert!(!e.is_transient());
    assert_eq!(
        env.sim.state.pvwa.actions().len(),
        1,
        "only the one valid confirm happened"
    );
}

#[tokio::test]
async fn ids_with_spaces_and_dots_are_encoded() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "")).expect("client");
    pvwa.with_session("svc_l1", &pw("pw-l1"), async |s| -> Result<(), PvwaError> {
        let r = s.get_request("My Safe.v2_3").await?;
        assert_eq!(r.safe_name, "My Safe.v2");
        s.confirm("My Safe.v2_3", "ok").await?;
        Ok(())
    })
    .await
    .expect("encoded ids work");
    assert_eq!(env.sim.state.pvwa.actions()[0].request_id, "My Safe.v2_3");
}

#[tokio::test]
async fn safe_members_are_paged_and_listing_filters_waiting() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "page_size = 2")).expect("client");
    pvwa.with_session("svc_l1", &pw("pw-l1"), async |s| -> Result<(), PvwaError> {
        let members = s.safe_members("InfraSafe").await?;
        let names: Vec<_> = members.iter().map(|m| m.member_name.as_str()).collect();
        assert_eq!(names, ["Infra_L1", "All_L2", "M1", "M2", "M3"]);
        assert!(members[0].approves_at(1, 0) && !members[0].approves_at(2, 0));
        let e = s
            .safe_members("NoSuchSafe")
            .await
            .expect_err("missing safe");
        assert_eq!(e.exit(), Exit::Refused);
        let waiting = s.list_incoming(true, false).await?;
        let ids: Vec<_> = waiting.iter().map(|r| r.request_id.as_str()).collect();
        assert!(
            ids.contains(&"InfraSafe_5") && ids.contains(&"My Safe.v2_3"),
            "{ids:?}"
        );
        assert!(!ids.contains(&"InfraSafe_2"), "expired left out");
        assert!(
            !ids.contains(&"OtherSafe_4"),
            "another team's safe left out"
        );
        Ok(())
    })
    .await
    .expect("members");
}

#[tokio::test]
async fn reads_are_retried_on_transient_faults() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "retries = 3")).expect("client");
    let s = pvwa.logon("svc_l1", &pw("pw-l1")).await.expect("logon");
    env.sim
        .state
        .faults
        .set("pvwa", fail(503, 2, "incomingrequests", None));
    let r = s
        .get_request("InfraSafe_1")
        .await
        .expect("third attempt succeeds");
    assert_eq!(r.request_id, "InfraSafe_1");
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            drop_next: 1,
            path_contains: Some("incomingrequests".into()),
            ..Default::default()
        },
    );
    s.get_request("InfraSafe_1")
        .await
        .expect("a dropped read is repeated");
    s.logoff().await;
}

#[tokio::test]
async fn a_confirm_is_never_repeated_blindly() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "retries = 3")).expect("client");
    let s = pvwa.logon("svc_l1", &pw("pw-l1")).await.expect("logon");
    // A 503 on confirm: reported, not retried.
    env.sim
        .state
        .faults
        .set("pvwa", fail(503, 5, "/confirm", None));
    let e = s.confirm("InfraSafe_5", "x").await.expect_err("503");
    assert!(e.is_transient(), "{e}");
    let left = env.sim.state.faults.snapshot()["pvwa"]
        .fail
        .as_ref()
        .map(|f| f.count);
    assert_eq!(left, Some(4), "exactly one attempt was made");
    // A connection dropped mid-answer: outcome unknown, not retried.
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            drop_next: 1,
            path_contains: Some("/confirm".into()),
            ..Default::default()
        },
    );
    let e = s.confirm("InfraSafe_5", "x").await.expect_err("dropped");
    assert!(matches!(e, PvwaError::OutcomeUnknown { .. }), "{e}");
    assert_eq!(e.exit(), Exit::TempFail);
    assert!(
        env.sim.state.pvwa.actions().is_empty(),
        "no second, blind confirm reached the server"
    );
    s.logoff().await;
}

#[tokio::test]
async fn timeouts_and_html_error_pages() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "retries = 0\nrequest_timeout_secs = 1")).expect("client");
    let s = pvwa.logon("svc_l1", &pw("pw-l1")).await.expect("logon");
    env.sim.state.faults.set(
        "pvwa",
        Faults {
            latency_ms: 1500,
            path_contains: Some("incomingrequests".into()),
            ..Default::default()
        },
    );
    let e = s.get_request("InfraSafe_1").await.expect_err("timeout");
    assert!(matches!(e, PvwaError::Timeout { .. }), "{e}");
    assert_eq!(e.exit(), Exit::TempFail);
    env.sim.state.faults.set(
        "pvwa",
        fail(
            500,
            1,
            "incomingrequests",
            Some((
                "text/html",
                "<html><head><title>Runtime Error</title></head><body>stack…</body></html>",
            )),
        ),
    );
    let e = s.get_request("InfraSafe_1").await.expect_err("html");
    assert!(e.to_string().contains("HTML page: Runtime Error"), "{e}");
    assert_eq!(e.exit(), Exit::Unavailable);
    env.sim.state.faults.clear();
    s.logoff().await;
}

#[tokio::test]
async fn an_answer_over_the_cap_is_refused_with_the_cap_named() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "retries = 0")).expect("client");
    let s = pvwa.logon("svc_l1", &pw("pw-l1")).await.expect("logon");
    // 16 MiB and one byte of JSON-looking text where a request is expected.
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat((16 << 20) - 7));
    env.sim.state.faults.set(
        "pvwa",
        fail(
            200,
            1,
            "incomingrequests",
            Some(("application/json", big.as_str())),
        ),
    );
    let e = s.get_request("InfraSafe_1").await.expect_err("too large");
    assert!(
        e.to_string()
            .contains("the PVWA answer is larger than 16 MiB (a fixed limit of this version)"),
        "{e}"
    );
    assert!(matches!(e, PvwaError::Protocol { .. }), "{e}");
    // The next answer, of normal size, is read.
    s.get_request("InfraSafe_1").await.expect("normal answer");
    s.logoff().await;
}

#[tokio::test]
async fn down_server_and_untrusted_certificate() {
    let env = start().await;
    // Untrusted: the system store does not know the simulator's CA.
    let text = format!("[pvwa]\nurl = \"{}\"\nretries = 0\n", env.sim.url());
    let loaded = config::load_from_parts(Some(&text), None, &[]).expect("config");
    let pvwa = Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client");
    let e = pvwa
        .logon("svc_l1", &pw("pw-l1"))
        .await
        .expect_err("untrusted");
    assert_eq!(e.exit(), Exit::Unavailable, "{e}");
    assert!(
        e.hint().unwrap_or_default().contains("ca_bundle"),
        "{e} / {:?}",
        e.hint()
    );
    // Down: nothing listens there any more.
    let url = env.sim.url();
    let ca = env.sim.ca_cert.clone().expect("ca");
    env.sim.stop().await;
    let text = format!(
        "[pvwa]\nurl = \"{url}\"\nca_bundle = \"{}\"\nretries = 1\nbackoff_ms = 10\n",
        ca.display()
    );
    let loaded = config::load_from_parts(Some(&text), None, &[]).expect("config");
    let pvwa = Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client");
    let e = pvwa.logon("svc_l1", &pw("pw-l1")).await.expect_err("down");
    assert!(matches!(e, PvwaError::Unreachable { .. }), "{e}");
    assert_eq!(e.exit(), Exit::Unavailable);
}

#[tokio::test]
async fn reject_ends_the_request() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "")).expect("client");
    pvwa.with_session("svc_l1", &pw("pw-l1"), async |s| -> Result<(), PvwaError> {
        s.reject("InfraSafe_5", "not during the freeze").await?;
        let r = s.get_request("InfraSafe_5").await?;
        assert_eq!(r.status_title, "Rejected");
        let c = r
            .confirmers
            .iter()
            .find(|c| c.acted())
            .expect("the rejecter is listed");
        assert_eq!(c.reason, "not during the freeze");
        let e = s
            .confirm("InfraSafe_5", "x")
            .await
            .expect_err("rejected requests cannot be confirmed");
        assert_eq!(e.exit(), Exit::Refused, "{e}");
        assert!(!e.is_transient());
        assert_eq!(s.get_request("InfraSafe_5").await?.confirmations_left, 0);
        Ok(())
    })
    .await
    .expect("reject");
    let a = env.sim.state.pvwa.actions();
    assert_eq!((a.len(), a[0].action.as_str()), (1, "reject"));
}

#[tokio::test]
async fn the_logon_method_selects_the_endpoint() {
    let dir = tempfile::tempdir().expect("tmp");
    let scenario = "[[pvwa.users]]\nname = \"vaultuser\"\npassword = \"pw\"\nauth = [\"cyberark\"]\n[[pvwa.users]]\nname = \"radiususer\"\npassword = \"pw\"\nauth = [\"radius\"]\n";
    let sim = Sim::start(
        Scenario::from_toml(scenario).expect("scenario"),
        SimOptions {
            tls_dir: Some(dir.path().into()),
            ..Default::default()
        },
    )
    .await
    .expect("sim");
    let env = Env { sim, _dir: dir };
    for (method, user, ok) in [
        ("cyberark", "vaultuser", true),
        ("ldap", "vaultuser", false),
        ("radius", "radiususer", true),
        ("cyberark", "radiususer", false),
    ] {
        let pvwa = Pvwa::new(&cfg(&env, &format!("auth_method = \"{method}\""))).expect("client");
        let r = pvwa.logon(user, &pw("pw")).await;
        assert_eq!(r.is_ok(), ok, "{method} {user}: {r:?}");
        if let Ok(s) = r {
            s.logoff().await;
        }
    }
    let e = config::load_from_parts(
        Some("[pvwa]\nurl = \"https://x.test\"\nauth_method = \"saml\"\n"),
        None,
        &[],
    )
    .expect_err("unknown method");
    assert_eq!(e.key.as_deref(), Some("pvwa.auth_method"));
}

#[tokio::test]
async fn the_admin_api_seeds_requests_and_injects_faults_over_http() {
    let env = start().await;
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(env.sim.ca_cert.as_ref().expect("ca")).expect("ca"),
        )
        .expect("pem")])
        .build()
        .expect("client");
    let base = env.sim.url();
    let r = http
        .post(format!("{base}/sim/pvwa/requests"))
        .json(&serde_json::json!({"number": 77, "safe": "InfraSafe", "requester": "carol", "levels": [1, 0]}))
        .send()
        .await
        .expect("seed");
    assert_eq!(r.status().as_u16(), 201);
    let r = http
        .post(format!("{base}/sim/faults/pvwa"))
        .json(
            &serde_json::json!({"fail": {"status": 503, "count": 1}, "path_contains": "/confirm"}),
        )
        .send()
        .await
        .expect("fault");
    assert_eq!(r.status().as_u16(), 204);
    let pvwa = Pvwa::new(&cfg(&env, "")).expect("client");
    let s = pvwa.logon("svc_l1", &pw("pw-l1")).await.expect("logon");
    let e = s
        .confirm("InfraSafe_77", "x")
        .await
        .expect_err("injected 503");
    assert!(e.is_transient());
    s.confirm("InfraSafe_77", "x").await.expect("fault used up");
    s.logoff().await;
    let actions: serde_json::Value = http
        .get(format!("{base}/sim/pvwa/actions"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(actions[0]["request_id"], "InfraSafe_77");
    assert!(actions[0]["time_ms"].as_i64().expect("ms") > 0);
    let sessions: serde_json::Value = http
        .get(format!("{base}/sim/pvwa/sessions"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(sessions["open"], 0);
    let r = http
        .delete(format!("{base}/sim/pvwa/requests/InfraSafe_77"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 204);
    let s = pvwa.logon("svc_l1", &pw("pw-l1")).await.expect("logon");
    let e = s.get_request("InfraSafe_77").await.expect_err("deleted");
    assert!(matches!(e, PvwaError::NotFound { .. }), "{e}");
    s.logoff().await;
}

#[tokio::test]
async fn group_records_by_name_and_the_audit_users_permission() {
    use approval_core::directory::approvers::GroupRecord;
    use approval_core::directory::cache::TtlCache;
    use approval_core::directory::check::read_safe_approvers;
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "")).expect("client");
    let cache = TtlCache::new(Duration::from_secs(60));
    pvwa.with_session("svc_l1", &pw("pw-l1"), async |s| -> Result<(), PvwaError> {
        // PVWA's search matches parts of names; the record named exactly is the one used.
        let found = s.user_groups("Infra_L1").await?;
        assert_eq!(found.len(), 2, "{found:?}");
        let read = read_safe_approvers(s, "InfraSafe", &cache).await?;
        assert_eq!(
            read.records.get("infra_l1"),
            Some(&GroupRecord::Directory {
                name: "Infra_L1".into(),
                directory: Some("corp.example".into()),
                dn: Some("CN=Infra_L1,OU=Groups,DC=corp,DC=example".into()),
            })
        );
        assert_eq!(read.records.get("all_l2"), Some(&GroupRecord::Vault));
        // Members without an approval permission are not looked up.
        assert!(!read.records.contains_key("m1"), "{:?}", read.records);
        Ok(())
    })
    .await
    .expect("records");
    // A lookup account without "Audit users": a configuration error naming the permission, the
    // account and the alternative.
    let e = pvwa
        .with_session("svc_noaudit", &pw("pw-na"), async |s| {
            read_safe_approvers(s, "OtherSafe", &TtlCache::new(Duration::ZERO)).await
        })
        .await
        .expect_err("403");
    assert!(matches!(e, PvwaError::NoPermission { .. }), "{e:?}");
    let text = e.to_string();
    for part in ["Audit users", "svc_noaudit", "approvers = \"static\""] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert_eq!(e.exit(), Exit::Config);
}

#[tokio::test]
async fn the_vaults_e_mail_of_the_user_named_exactly_and_the_audit_users_permission() {
    let env = start().await;
    let pvwa = Pvwa::new(&cfg(&env, "")).expect("client");
    pvwa.with_session("svc_l1", &pw("pw-l1"), async |s| -> Result<(), PvwaError> {
        // The search finds lfischer and lfischer2; only the record named exactly counts.
        assert_eq!(
            s.user_emails("LFischer").await?,
            vec!["lena.fischer@example.test".to_string()]
        );
        // A user without an e-mail, and a name no record has: nothing.
        assert!(s.user_emails("alice").await?.is_empty());
        assert!(s.user_emails("fischer").await?.is_empty());
        assert!(matches!(
            s.user_emails(" ").await,
            Err(PvwaError::BadId { .. })
        ));
        Ok(())
    })
    .await
    .expect("user records");
    let e = pvwa
        .with_session("svc_noaudit", &pw("pw-na"), async |s| {
            s.user_emails("lfischer").await
        })
        .await
        .expect_err("403");
    assert!(
        matches!(&e, PvwaError::NoPermission { permission, .. } if *permission == "Audit users"),
        "{e:?}"
    );
}

//! The PVWA client signing in to Privilege Cloud (`auth_method = "identity"`) against pam-sim's
//! Identity token endpoint and Privilege Cloud PVWA over HTTPS: no logon or logoff, one token
//! per session kept and renewed at 80 % of its life, a 401 renews once (a confirm too, and only
//! once), and Identity's refusals as the exit codes of their cause.

use std::time::Duration;

use approval_core::exit::{Classify, Exit};
use approval_core::pvwa::{Pvwa, PvwaError};
use approval_core::settings as config;
use pam_sim::faults::{FailNext, Faults};
use pam_sim::pvwa::PvwaMode;
use pam_sim::{Scenario, Sim, SimOptions};
use secrecy::SecretString;

const SCENARIO: &str = r#"
[pvwa]
mode = "privilege-cloud"
[pvwa.identity]
token_lifetime_secs = 3600
[[pvwa.users]]
name = "pam-l1@cyberark.cloud.12345"
password = "l1-secret"
auth = ["identity"]
groups = ["Infra_L1"]
[[pvwa.users]]
name = "pam-l2@cyberark.cloud.12345"
password = "l2-secret"
groups = ["Infra_L2"]
[[pvwa.users]]
name = "alice@example.test"
password = "alice-password"
auth = ["cyberark"]
groups = ["Infra_L1"]
[[pvwa.safes]]
name = "InfraSafe"
members = [{ name = "Infra_L1", level1 = true }, { name = "Infra_L2", level2 = true }]
[[pvwa.requests]]
number = 1
safe = "InfraSafe"
requester = "bob@example.test"
levels = [1, 1]
[[pvwa.requests]]
number = 2
safe = "InfraSafe"
requester = "bob@example.test"
levels = [1, 0]
"#;

const L1: &str = "pam-l1@cyberark.cloud.12345";

struct Env {
    sim: Sim,
    _dir: tempfile::TempDir,
}

async fn start_with(lifetime: u64, mode: PvwaMode) -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let mut scenario = Scenario::from_toml(SCENARIO).expect("scenario");
    scenario.pvwa.identity.token_lifetime_secs = lifetime;
    scenario.pvwa.mode = mode;
    let sim = Sim::start(
        scenario,
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..Default::default()
        },
    )
    .await
    .expect("sim starts");
    Env { sim, _dir: dir }
}

async fn start() -> Env {
    start_with(3600, PvwaMode::PrivilegeCloud).await
}

/// A Privilege Cloud client of `env` (pam-sim plays both the API and the Identity tenant).
fn client(env: &Env, identity_url: &str, extra: &str) -> Pvwa {
    let text = format!(
        "[pvwa]\nurl = \"{}\"\nauth_method = \"identity\"\nidentity_url = \"{identity_url}\"\nca_bundle = \"{}\"\nbackoff_ms = 10\n{extra}\n",
        env.sim.url(),
        env.sim.ca_cert.as_ref().expect("ca").display()
    );
    let loaded = config::load_from_parts(Some(&text), None, &[]).expect("config");
    Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client")
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn fail(status: u16, count: u32, path: &str) -> Faults {
    Faults {
        fail: Some(FailNext {
            status,
            count,
            body: None,
            content_type: None,
            headers: Default::default(),
        }),
        path_contains: Some(path.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn two_levels_confirmed_with_identity_tokens_and_no_logon() {
    let env = start().await;
    let pvwa = client(&env, &env.sim.url(), "");
    assert!(pvwa.is_privilege_cloud());
    pvwa.with_session(L1, &pw("l1-secret"), async |s| -> Result<(), PvwaError> {
        let list = s.list_incoming(true, false).await?;
        assert_eq!(list.len(), 2);
        s.confirm("InfraSafe_1", "level one").await?;
        let r = s.get_request("InfraSafe_1").await?;
        assert_eq!(r.current_confirmation_level, 2);
        Ok(())
    })
    .await
    .expect("level 1");
    pvwa.with_session("pam-l2@cyberark.cloud.12345", &pw("l2-secret"), async |s| {
        s.confirm("InfraSafe_1", "level two").await
    })
    .await
    .expect("level 2");
    let actions = env.sim.state.pvwa.actions();
    let who: Vec<(&str, i64)> = actions.iter().map(|a| (a.user.as_str(), a.level)).collect();
    assert_eq!(
        who,
        vec![(L1, 1), ("pam-l2@cyberark.cloud.12345", 2)],
        "each level confirmed by its own service user"
    );
    let st = env.sim.state.pvwa.stats();
    // One token per session, kept for its calls; nothing logged on or off.
    assert_eq!(st.platform_tokens, 2, "{st:?}");
    assert_eq!((st.logons, st.logoffs), (0, 0), "{st:?}");
    assert_eq!(
        (st.raw_refused, st.platform_token_rejected),
        (0, 0),
        "{st:?}"
    );
}

#[tokio::test]
async fn a_token_is_renewed_before_it_runs_out() {
    // Tokens live 3 s: the client renews after 2.4 s, before the API would refuse it.
    let env = start_with(3, PvwaMode::PrivilegeCloud).await;
    let pvwa = client(&env, &env.sim.url(), "");
    let s = pvwa.logon(L1, &pw("l1-secret")).await.expect("sign-in");
    s.list_incoming(true, false).await.expect("first");
    s.list_incoming(true, false).await.expect("same token");
    assert_eq!(env.sim.state.pvwa.stats().platform_tokens, 1);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    s.list_incoming(true, false).await.expect("renewed");
    let st = env.sim.state.pvwa.stats();
    assert_eq!(st.platform_tokens, 2, "{st:?}");
    assert_eq!(
        st.platform_token_rejected, 0,
        "renewed before expiry: {st:?}"
    );
}

#[tokio::test]
async fn a_401_renews_the_token_once_and_a_confirm_is_carried_out_once() {
    let env = start().await;
    let pvwa = client(&env, &env.sim.url(), "");
    let s = pvwa.logon(L1, &pw("l1-secret")).await.expect("sign-in");
    // The tenant ends every token (a revocation, a restart): the confirm gets a 401, the
    // session fetches a new token and sends the confirm again: the vault acts once.
    assert_eq!(env.sim.state.pvwa.expire_platform_tokens(), 1);
    s.confirm("InfraSafe_2", "approved")
        .await
        .expect("confirm after renewal");
    let st = env.sim.state.pvwa.stats();
    assert_eq!(
        (st.platform_tokens, st.platform_token_rejected),
        (2, 1),
        "{st:?}"
    );
    let acts = env.sim.state.pvwa.actions();
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!(acts[0].request_id, "InfraSafe_2");

    // Two 401s in a row: renewed once, then the refusal stands (77), nothing carried out.
    env.sim.state.faults.set(
        "pvwa",
        fail(401, 2, "/incomingrequests/infrasafe_1/confirm"),
    );
    let e = s
        .confirm("InfraSafe_1", "approved")
        .await
        .expect_err("refused twice");
    assert!(matches!(e, PvwaError::SessionInvalid { .. }), "{e}");
    assert_eq!(e.exit(), Exit::NoPerm);
    assert!(e.to_string().contains("fresh Identity token"), "{e}");
    let st = env.sim.state.pvwa.stats();
    assert_eq!(
        st.platform_tokens, 3,
        "one renewal for the two 401s: {st:?}"
    );
    assert_eq!(env.sim.state.pvwa.actions().len(), 1);
}

#[tokio::test]
async fn identity_refusals_name_their_cause_with_the_exit_code() {
    let env = start().await;
    let pvwa = client(&env, &env.sim.url(), "retries = 1");
    // A wrong secret: 77, the service user named, the secret not.
    let e = pvwa
        .logon(L1, &pw("not-the-secret"))
        .await
        .expect_err("bad secret");
    assert!(matches!(e, PvwaError::IdentityRefused { .. }), "{e}");
    assert_eq!(e.exit(), Exit::NoPerm);
    let shown = format!("{e} {}", e.hint().unwrap_or_default());
    assert!(
        shown.contains(L1) && shown.contains("invalid_client"),
        "{shown}"
    );
    assert!(!shown.contains("not-the-secret"), "{shown}");
    // A user that is not an OAuth confidential client: 77 too.
    let e = pvwa
        .logon("alice@example.test", &pw("alice-password"))
        .await
        .expect_err("not a service user");
    assert!(e.to_string().contains("unauthorized_client"), "{e}");
    assert_eq!(e.exit(), Exit::NoPerm);
    assert_eq!(env.sim.state.pvwa.stats().platform_token_refusals, 2);

    // The tenant answering 503 once: retried, then signed in.
    env.sim
        .state
        .faults
        .set("identity", fail(503, 1, "platformtoken"));
    pvwa.logon(L1, &pw("l1-secret")).await.expect("after a 503");

    // No tenant there: a self-hosted PVWA has no /oauth2/platformtoken (78).
    let selfhosted = start_with(3600, PvwaMode::SelfHosted).await;
    let p = client(&selfhosted, &selfhosted.sim.url(), "");
    let e = p.logon(L1, &pw("l1-secret")).await.expect_err("no tenant");
    assert!(matches!(e, PvwaError::IdentityEndpoint { .. }), "{e}");
    assert_eq!(e.exit(), Exit::Config);
    assert!(e.hint().unwrap_or_default().contains("identity_url"));

    // The tenant unreachable: 69, with the Identity URL and the setting named.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let p = client(&env, &format!("https://127.0.0.1:{closed}"), "retries = 0");
    let e = p
        .logon(L1, &pw("l1-secret"))
        .await
        .expect_err("unreachable");
    assert!(matches!(e, PvwaError::IdentityUnreachable { .. }), "{e}");
    assert_eq!(e.exit(), Exit::Unavailable);
    assert!(
        e.to_string()
            .contains(&format!("127.0.0.1:{closed}/oauth2/platformtoken"))
    );
    assert!(e.hint().unwrap_or_default().contains("pvwa.identity_url"));
}

#[tokio::test]
async fn the_privilege_cloud_api_takes_no_logon_and_no_session_token() {
    let env = start().await;
    let ca = env.sim.ca_cert.as_ref().expect("ca");
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(ca).expect("ca")).expect("pem"),
        )
        .build()
        .expect("client");
    let base = env.sim.url();
    let r = http
        .post(format!("{base}/PasswordVault/API/auth/CyberArk/Logon"))
        .json(&serde_json::json!({"username": L1, "password": "l1-secret"}))
        .send()
        .await
        .expect("logon");
    assert_eq!(r.status(), 404, "no logon on Privilege Cloud");
    let r = http
        .get(format!("{base}/PasswordVault/API/IncomingRequests"))
        .header("Authorization", "some-raw-session-token")
        .send()
        .await
        .expect("raw");
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["code"].is_string() && body["message"].is_string(),
        "{body}"
    );
    // The path of the token endpoint is matched without regard to case.
    let r = http
        .post(format!("{base}/OAuth2/PlatformToken"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=pam-l1%40cyberark.cloud.12345&client_secret=l1-secret")
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    let t: serde_json::Value = r.json().await.expect("json");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(
        t["access_token"].as_str().expect("token"),
    )
    .expect("a JWT")
    .claims;
    for k in [
        "unique_name",
        "tenant_id",
        "subdomain",
        "platform_domain",
        "exp",
        "iat",
    ] {
        assert!(!claims[k].is_null(), "claim {k}: {claims}");
    }
    let st = env.sim.state.pvwa.stats();
    assert_eq!(st.raw_refused, 1, "{st:?}");
}

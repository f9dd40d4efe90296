//! App-only tokens from Microsoft Entra ID (the mailbox backends' OAuth client) against
//! pam-sim's token endpoint, over HTTPS with the test CA: a certificate assertion and a client
//! secret, caching and renewal, a 401 forgotten, and every refusal named with its exit code.

use std::time::Duration;

use approval_core::exit::{Classify, Exit};
use approval_core::http::{Backoff, HttpSettings};
use approval_core::mailbox::MailboxError;
use approval_core::mailbox::oauth::{CertificateKey, ClientAuth, TokenClient, TokenRequest};
use pam_sim::{Scenario, Sim, SimOptions};
use secrecy::{ExposeSecret, SecretString};

const TENANT: &str = "5a1f0000-0000-4000-8000-0000000000aa";
const APP: &str = "0c1e0000-0000-4000-8000-0000000000bb";
const SECRET_APP: &str = "0c1e0000-0000-4000-8000-0000000000cc";
const SECRET: &str = "s3cr3t~value-of-the-app";

struct Env {
    sim: Sim,
    dir: tempfile::TempDir,
}

async fn start(lifetime: i64) -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let scenario = Scenario::from_toml(&format!(
        r#"
[graph]
tenant_id = "{TENANT}"
token_lifetime_secs = {lifetime}
[[graph.apps]]
client_id = "{APP}"
generate_certificate = "{}"
[[graph.apps]]
client_id = "{SECRET_APP}"
client_secret = "{SECRET}"
"#,
        dir.path().join("app").display()
    ))
    .expect("scenario");
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
    fn client(&self, tenant: &str, client_id: &str, auth: ClientAuth) -> TokenClient {
        let http = approval_core::http::builder(&HttpSettings {
            ca_bundle: self.sim.ca_cert.clone(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ..HttpSettings::default()
        })
        .expect("builder")
        .build()
        .expect("client");
        TokenClient::new(
            http,
            TokenRequest {
                token_url: format!("{}/{tenant}/oauth2/v2.0/token", self.sim.url()),
                client_id: client_id.into(),
                scope: "https://graph.microsoft.com/.default".into(),
                auth,
            },
            Backoff::new(2, 10),
        )
    }

    fn certificate(&self) -> ClientAuth {
        let read = |ext: &str| {
            std::fs::read_to_string(self.dir.path().join(format!("app{ext}"))).expect("read")
        };
        ClientAuth::Certificate(
            CertificateKey::from_pem(&read(".crt"), &read(".key"), chrono::Utc::now().timestamp())
                .expect("key"),
        )
    }

    fn stats(&self) -> pam_sim::graph::Stats {
        self.sim.state.graph.stats()
    }
}

#[tokio::test]
async fn a_certificate_assertion_gets_a_token_that_is_cached_and_forgotten_after_a_401() {
    let env = start(3599).await;
    let c = env.client(TENANT, APP, env.certificate());
    let t1 = c.token().await.expect("token");
    assert!(
        env.sim
            .state
            .graph
            .token_app(t1.expose_secret(), env.sim.state.clock.now_ms())
            .is_some()
    );
    let t2 = c.token().await.expect("cached");
    assert_eq!(t1.expose_secret(), t2.expose_secret());
    assert_eq!(
        env.stats().granted_certificate,
        1,
        "the second call used the cache"
    );
    c.forget().await;
    let t3 = c.token().await.expect("new");
    assert_ne!(t1.expose_secret(), t3.expose_secret());
    assert_eq!(env.stats().granted_certificate, 2);
}

#[tokio::test]
async fn a_token_is_renewed_before_it_runs_out() {
    // A two-second token is renewed once less than a tenth of its life is left.
    let env = start(2).await;
    let c = env.client(TENANT, APP, env.certificate());
    let t1 = c.token().await.expect("token");
    tokio::time::sleep(Duration::from_millis(1900)).await;
    let t2 = c.token().await.expect("renewed");
    assert_ne!(t1.expose_secret(), t2.expose_secret());
    assert_eq!(env.stats().granted_certificate, 2);
}

#[tokio::test]
async fn a_client_secret_gets_a_token_and_a_wrong_one_is_refused_without_showing_it() {
    let env = start(3599).await;
    let ok = env.client(
        TENANT,
        SECRET_APP,
        ClientAuth::Secret(SecretString::from(SECRET)),
    );
    ok.token().await.expect("token");
    assert_eq!(env.stats().granted_secret, 1);
    let bad = env.client(
        TENANT,
        SECRET_APP,
        ClientAuth::Secret(SecretString::from("not-the-secret-xyz")),
    );
    let e = bad.token().await.expect_err("refused");
    assert_eq!(e.exit(), Exit::NoPerm);
    let shown = format!("{e} {}", e.hint().unwrap_or_default());
    assert!(shown.contains("AADSTS7000215"), "{shown}");
    assert!(shown.contains("client secret"), "{shown}");
    assert!(
        !shown.contains("not-the-secret-xyz") && !shown.contains(SECRET),
        "{shown}"
    );
    assert!(!shown.contains("Trace ID"), "{shown}");
}

#[tokio::test]
async fn refusals_name_the_tenant_the_app_and_the_certificate() {
    let env = start(3599).await;
    // Wrong tenant.
    let e = env
        .client("not-our-tenant", APP, env.certificate())
        .token()
        .await
        .expect_err("tenant");
    assert_eq!(e.exit(), Exit::Config);
    assert!(e.to_string().contains("AADSTS90002"), "{e}");
    assert!(
        e.hint().unwrap_or_default().contains("tenant_id"),
        "{:?}",
        e.hint()
    );
    // Unknown app (wrong client id, or no consent in this tenant).
    let other_app = "0c1e0000-0000-4000-8000-0000000000dd";
    let e = env
        .client(TENANT, other_app, env.certificate())
        .token()
        .await
        .expect_err("app");
    assert_eq!(e.exit(), Exit::Config);
    assert!(e.to_string().contains("AADSTS700016"), "{e}");
    // A certificate that is not registered on the app.
    let g = pam_sim::graph::generate_certificate("someone else").expect("cert");
    let stranger = ClientAuth::Certificate(
        CertificateKey::from_pem(
            &g.certificate_pem,
            &g.private_key_pem,
            chrono::Utc::now().timestamp(),
        )
        .expect("key"),
    );
    let e = env
        .client(TENANT, APP, stranger)
        .token()
        .await
        .expect_err("not registered");
    assert_eq!(e.exit(), Exit::NoPerm);
    assert!(e.to_string().contains("AADSTS700027"), "{e}");
    assert!(
        e.hint()
            .unwrap_or_default()
            .contains("upload the certificate"),
        "{:?}",
        e.hint()
    );
    // The registered certificate with someone else's key: the signature fails.
    let read = |ext: &str| {
        std::fs::read_to_string(env.dir.path().join(format!("app{ext}"))).expect("read")
    };
    let mixed = ClientAuth::Certificate(
        CertificateKey::from_pem(
            &read(".crt"),
            &g.private_key_pem,
            chrono::Utc::now().timestamp(),
        )
        .expect("key"),
    );
    let e = env
        .client(TENANT, APP, mixed)
        .token()
        .await
        .expect_err("bad signature");
    assert!(e.to_string().contains("signature validation"), "{e}");
    let refused = env.stats().refused;
    for code in [90002, 700016, 700027] {
        assert!(refused.contains_key(&code), "{code}: {refused:?}");
    }
}

#[tokio::test]
async fn a_busy_or_unreachable_token_endpoint_is_retried_then_classified() {
    let env = start(3599).await;
    let fail = |count: u32, retry_after: Option<&str>| {
        let mut headers = serde_json::Map::new();
        if let Some(s) = retry_after {
            headers.insert("Retry-After".into(), s.into());
        }
        serde_json::from_value::<pam_sim::faults::Faults>(serde_json::json!({
            "fail": {"status": 503, "count": count, "headers": headers}
        }))
        .expect("faults")
    };
    // Two 503s (one with Retry-After), then the endpoint answers: retried within the budget.
    env.sim.state.faults.set("graph", fail(2, Some("0")));
    let c = env.client(TENANT, APP, env.certificate());
    c.token().await.expect("token after retries");
    assert_eq!(env.stats().granted_certificate, 1);
    // More 503s than retries: a temporary failure.
    env.sim.state.faults.set("graph", fail(10, None));
    c.forget().await;
    let e = c.token().await.expect_err("busy");
    assert!(matches!(e, MailboxError::Busy { .. }), "{e:?}");
    assert_eq!(e.exit(), Exit::TempFail);
    // Nobody listening on the port any more.
    let url = env.sim.url();
    let cert = env.certificate();
    let http = reqwest::Client::new();
    drop(env);
    let gone = TokenClient::new(
        http,
        TokenRequest {
            token_url: format!("{url}/{TENANT}/oauth2/v2.0/token"),
            client_id: APP.into(),
            scope: "https://graph.microsoft.com/.default".into(),
            auth: cert,
        },
        Backoff::new(1, 10),
    );
    let e = gone.token().await.expect_err("unreachable");
    assert_eq!(e.exit(), Exit::Unavailable, "{e}");
}

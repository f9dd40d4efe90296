//! Ticket validation against pam-sim's ServiceNow and Remedy over HTTPS with the test CA: every
//! validation passing and failing on both systems, bypass codes, injection attempts, and the
//! faults that mean "cannot validate" (system down, wrong credentials, expired token, 429,
//! 5xx/HTML, slow replies).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use approval_core::exit::Exit;
use approval_core::secret::Resolver;
use approval_core::settings::{Loaded, load_from_parts};
use approval_core::ticketing::rules::Context;
use approval_core::ticketing::{Outcome, Validator, Verdict};
use pam_sim::faults::{FailNext, Faults};
use pam_sim::{Scenario, Sim, SimOptions};

const DEMO_CONFIG: &str = include_str!("../../../examples/demo/ticketing-config.toml");
const DEMO_SCENARIO: &str = include_str!("../../../examples/demo/ticketing-scenario.toml");
const BYPASS: &str = "Demo-Bypass-Code-2026";

struct Env {
    sim: Sim,
    dir: tempfile::TempDir,
}

async fn start() -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(
        Scenario::from_toml(DEMO_SCENARIO).expect("scenario"),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("sim");
    Env { sim, dir }
}

fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, value).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    format!("file:{}", p.display())
}

impl Env {
    /// The demo config pointed at this simulator, with `edit` applied to its text.
    fn config(&self, edit: impl Fn(String) -> String) -> Loaded {
        let sn = secret_file(self.dir.path(), "sn", "Ticketing-Demo-Pass");
        let rm = secret_file(self.dir.path(), "rm", "Remedy-Demo-Pass");
        let ca = self
            .sim
            .ca_cert
            .as_ref()
            .expect("https")
            .display()
            .to_string();
        let text = DEMO_CONFIG
            .replace("https://127.0.0.1:8443", &self.sim.url())
            .replace("/tmp/pam-sim-tls/ca.crt", &ca)
            .replace("env:DEMO_SN_PASSWORD", &sn)
            .replace("env:DEMO_REMEDY_PASSWORD", &rm)
            .replace("retries = 1", "retries = 1\nbackoff_ms = 50");
        load_from_parts(Some(&edit(text)), None, &[]).expect("config")
    }

    fn validator(&self, loaded: &Loaded) -> Validator {
        Validator::new(
            loaded.ticketing().expect("ticketing"),
            Resolver::new(None).expect("resolver"),
        )
    }
}

fn ctx(user: Option<&str>) -> Context {
    Context {
        user: user.map(str::to_string),
        at: chrono::Utc::now(),
    }
}

async fn check(v: &mut Validator, id: &str, user: Option<&str>) -> Verdict {
    v.validate(id, 1, &ctx(user)).await
}

/// (ticket, user, expected reason; None = valid)
type Case = (&'static str, Option<&'static str>, Option<&'static str>);

async fn run_cases(env: &Env, cases: &[Case]) {
    let loaded = env.config(|t| t);
    let mut v = env.validator(&loaded);
    for (id, user, want) in cases {
        let got = check(&mut v, id, *user).await;
        match want {
            None => assert_eq!(got.outcome, Outcome::Valid, "{id}: {got:#?}"),
            Some(reason) => {
                assert_eq!(got.outcome, Outcome::Invalid, "{id}: {got:#?}");
                assert_eq!(got.reason.as_deref(), Some(*reason), "{id}: {got:#?}");
                assert_eq!(got.exit, Exit::Refused);
            }
        }
    }
    v.close().await;
}

#[tokio::test]
async fn servicenow_every_validation_passes_and_fails() {
    let env = start().await;
    let a = Some("alice");
    run_cases(
        &env,
        &[
            ("INC0010001", a, None),
            ("INC0010001", Some("CORP\\ALICE"), None),
            ("INC0010002", a, None),
            ("INC0010008", a, None),
            ("CHG0030001", a, None),
            ("CHG0030002", a, None),
            ("INC0010003", a, Some("state_not_allowed")),
            ("INC0010004", a, Some("state_not_allowed")),
            ("INC0010005", a, Some("state_not_allowed")),
            ("INC0010006", a, Some("state_not_allowed")),
            ("CHG0030003", a, Some("state_not_allowed")),
            ("CHG0030005", a, Some("state_not_allowed")),
            ("CHG0030007", a, Some("state_not_allowed")),
            ("CHG0030008", a, Some("state_not_allowed")),
            ("CHG0030009", a, Some("state_not_allowed")),
            ("CHG0030013", a, Some("state_not_allowed")),
            ("CHG0030004", a, Some("approval_not_allowed")),
            ("CHG0030006", a, Some("approval_not_allowed")),
            ("CHG0030015", a, Some("approval_not_allowed")),
            ("CHG0030010", a, Some("window_not_started")),
            ("CHG0030011", a, Some("window_ended")),
            ("CHG0030012", a, Some("window_missing")),
            ("INC0010007", a, Some("requester_mismatch")),
            ("CHG0030014", a, Some("requester_mismatch")),
            ("INC0010009", a, Some("requester_missing")),
            ("INC0010001", None, Some("requester_not_given")),
            ("INC0019999", a, Some("not_found")),
            ("CHG9999999", a, Some("not_found")),
            ("INC001000", a, Some("format_invalid")),
            ("RITM0010001", a, Some("format_invalid")),
        ],
    )
    .await;
}

#[tokio::test]
async fn remedy_every_validation_passes_and_fails_and_logs_out() {
    let env = start().await;
    let a = Some("alice");
    run_cases(
        &env,
        &[
            ("INC000000000101", a, None),
            ("INC000000000102", Some("Alice"), None),
            ("INC000000000109", a, None),
            ("CRQ000000000201", a, None),
            ("CRQ000000000202", a, None),
            ("INC000000000103", a, Some("state_not_allowed")),
            ("INC000000000104", a, Some("state_not_allowed")),
            ("INC000000000105", a, Some("state_not_allowed")),
            ("INC000000000106", a, Some("state_not_allowed")),
            ("INC000000000107", a, Some("state_not_allowed")),
            ("CRQ000000000203", a, Some("state_not_allowed")),
            ("CRQ000000000204", a, Some("state_not_allowed")),
            ("CRQ000000000205", a, Some("state_not_allowed")),
            ("CRQ000000000206", a, Some("state_not_allowed")),
            ("CRQ000000000207", a, Some("state_not_allowed")),
            ("CRQ000000000208", a, Some("state_not_allowed")),
            ("CRQ000000000209", a, Some("state_not_allowed")),
            ("CRQ000000000210", a, Some("state_not_allowed")),
            ("CRQ000000000215", a, Some("approval_not_allowed")),
            ("CRQ000000000211", a, Some("window_not_started")),
            ("CRQ000000000212", a, Some("window_ended")),
            ("CRQ000000000213", a, Some("window_missing")),
            ("INC000000000108", a, Some("requester_mismatch")),
            ("CRQ000000000214", a, Some("requester_mismatch")),
            ("INC000000000110", a, Some("requester_missing")),
            ("INC000000000999", a, Some("not_found")),
            ("CRQ00000000020", a, Some("format_invalid")),
        ],
    )
    .await;
    let stats = env.sim.state.remedy.stats();
    assert_eq!(stats.logins, 1, "one login for the batch: {stats:?}");
    assert_eq!(stats.logouts, 1, "{stats:?}");
    assert_eq!(stats.open, 0, "{stats:?}");
}

#[tokio::test]
async fn approval_alone_fails_when_states_are_not_checked() {
    // With the state check off, an approved change passes and a requested one fails on approval.
    let env = start().await;
    let loaded = env.config(|t| {
        t.replace(
            "allowed_states = [\"Assigned\", \"In Progress\"]\nallowed_approvals",
            "allowed_approvals",
        )
    });
    let mut v = env.validator(&loaded);
    let r = check(&mut v, "CHG0030007", Some("alice")).await;
    assert_eq!(r.outcome, Outcome::Valid, "{r:#?}");
    let r = check(&mut v, "CHG0030003", Some("alice")).await;
    assert_eq!(r.reason.as_deref(), Some("approval_not_allowed"));
    let r = check(&mut v, "CRQ000000000208", Some("alice")).await;
    assert_eq!(
        r.outcome,
        Outcome::Valid,
        "Closed counts as approved: {r:#?}"
    );
    let r = check(&mut v, "CRQ000000000206", Some("alice")).await;
    assert_eq!(r.reason.as_deref(), Some("approval_not_allowed"));
    v.close().await;
}

#[tokio::test]
async fn window_uses_the_given_time_and_skew() {
    let env = start().await;
    let loaded = env.config(|t| t);
    let mut v = env.validator(&loaded);
    // CHG0030010's window starts two hours after the simulator's start.
    let later = Context {
        user: Some("alice".into()),
        at: chrono::Utc::now() + chrono::Duration::hours(3),
    };
    assert_eq!(
        v.validate("CHG0030010", 1, &later).await.outcome,
        Outcome::Valid
    );
    let almost = Context {
        user: Some("alice".into()),
        at: chrono::Utc::now() + chrono::Duration::seconds(7200 - 30),
    };
    assert_eq!(
        v.validate("CRQ000000000211", 1, &almost).await.outcome,
        Outcome::Valid,
        "30 s early is within the 60 s skew"
    );
    v.close().await;
}

#[tokio::test]
async fn bypass_code_right_and_wrong() {
    let env = start().await;
    let loaded = env.config(|t| t);
    let mut v = env.validator(&loaded);
    let before = env.sim.state.servicenow.requests().len();
    let r = check(&mut v, BYPASS, Some("alice")).await;
    assert_eq!(r.outcome, Outcome::Bypass, "{r:#?}");
    assert!(r.valid);
    assert_eq!(r.exit, Exit::Ok);
    assert_eq!(r.ticket, None, "a bypass code is never echoed");
    let text = serde_json::to_string(&r).expect("json");
    assert!(!text.contains(BYPASS), "{text}");
    for wrong in [
        "Demo-Bypass-Code-2025",
        "demo-bypass-code-2026",
        "Demo-Bypass-Code-202",
    ] {
        let r = check(&mut v, wrong, Some("alice")).await;
        assert_eq!(r.outcome, Outcome::Invalid, "{wrong}");
        assert_eq!(r.reason.as_deref(), Some("format_invalid"));
        assert_eq!(r.ticket, None, "a near-miss is not echoed either");
        assert!(!serde_json::to_string(&r).expect("json").contains(wrong));
    }
    assert_eq!(
        env.sim.state.servicenow.requests().len(),
        before,
        "no lookup for a bypass"
    );
    v.close().await;
}

#[tokio::test]
async fn injection_attempts_never_validate_and_never_reach_a_server() {
    let env = start().await;
    let loaded = env.config(|t| t);
    let mut v = env.validator(&loaded);
    let attacks = [
        "INC0010001^NQnumberANYTHING",
        "INC0010001^ORnumber!=x",
        "INC0010001^NQanyfieldANYTHING",
        "CHG0030001^EQ",
        "numbr=INC0010001",
        "INC0010001^numbrISNOTEMPTY",
        "javascript:gs.getUserID()",
        "INC0010001'",
        "INC0010001\"",
        "INC000000000101\" OR \"1\" = \"1",
        "INC000000000101' OR 'Status' != \"x",
        "INC0010001 ",
        "INC0010001%5ENQ",
        "INC0010001,INC0010002",
        "INC0010001@INC0010002",
        "INC0010001\nINC0010002",
    ];
    for a in attacks {
        let r = check(&mut v, a, Some("alice")).await;
        // "INC0010001 " is trimmed to a plain id and is valid; everything else is refused.
        if a == "INC0010001 " {
            assert_eq!(r.outcome, Outcome::Valid);
            continue;
        }
        assert_eq!(r.outcome, Outcome::Invalid, "{a:?}: {r:#?}");
        assert_eq!(r.reason.as_deref(), Some("format_invalid"), "{a:?}");
    }
    // Only the one legitimate id was looked up.
    let sn = env.sim.state.servicenow.requests();
    assert_eq!(sn.len(), 1, "{sn:#?}");
    assert!(
        sn[0]
            .query
            .starts_with("sysparm_query=number%3DINC0010001&")
    );
    assert!(env.sim.state.remedy.requests().is_empty());
    v.close().await;
}

#[tokio::test]
async fn the_traps_are_real_and_the_exact_match_still_holds() {
    let env = start().await;
    // The stand-in keeps ServiceNow's traps: a caret opens a match-all group, an unknown field's
    // condition is dropped.
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(
            approval_core::tls::client_config(env.sim.ca_cert.as_deref()).expect("tls"),
        )
        .build()
        .expect("client");
    for q in [
        "number%3DINC0010001%5ENQnumberANYTHING",
        "numbr%3DINC0010001",
    ] {
        let r = http
            .get(format!(
                "{}/api/now/table/incident?sysparm_query={q}&sysparm_fields=number",
                env.sim.url()
            ))
            .basic_auth("svc_ticketing", Some("Ticketing-Demo-Pass"))
            .send()
            .await
            .expect("send");
        let n: u64 = r.headers()["x-total-count"]
            .to_str()
            .expect("header")
            .parse()
            .expect("number");
        assert!(n > 1, "{q}: {n}");
    }
    // A permissive pattern lets a lower-case id through to the server, which matches it
    // case-insensitively: the byte-for-byte check still refuses it.
    let loaded = env.config(|t| {
        t.replace("pattern = \"INC[0-9]{7}\"", "pattern = \"(?i)INC[0-9]{7}\"")
            .replace(
                "pattern = \"CRQ[0-9]{12}\"",
                "pattern = \"(?i)CRQ[0-9]{12}\"",
            )
    });
    let mut v = env.validator(&loaded);
    for id in ["inc0010001", "crq000000000201"] {
        let r = check(&mut v, id, Some("alice")).await;
        assert_eq!(r.reason.as_deref(), Some("not_found"), "{id}: {r:#?}");
    }
    assert_eq!(
        check(&mut v, "INC0010001", Some("alice")).await.outcome,
        Outcome::Valid
    );
    v.close().await;
}

#[tokio::test]
async fn overlapping_patterns_are_ambiguous_not_guessed() {
    let env = start().await;
    let loaded = env.config(|t| t.replace("pattern = \"INC[0-9]{12}\"", "pattern = \"INC[0-9]+\""));
    let mut v = env.validator(&loaded);
    let r = check(&mut v, "INC0010001", Some("alice")).await;
    assert_eq!(r.reason.as_deref(), Some("format_ambiguous"), "{r:#?}");
    v.close().await;
}

#[tokio::test]
async fn system_down_is_cannot_validate_and_fails_closed() {
    let env = start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = env.sim.url();
    let loaded = env.config(|t| t.replace(&url, &format!("https://127.0.0.1:{closed}")));
    let mut v = env.validator(&loaded);
    for id in ["CHG0030001", "INC0010001", "CRQ000000000201"] {
        let r = check(&mut v, id, Some("alice")).await;
        assert_eq!(r.outcome, Outcome::CannotValidate, "{id}: {r:#?}");
        assert!(!r.valid);
        assert_eq!(r.exit, Exit::Unavailable);
        assert_eq!(r.reason.as_deref(), Some("cannot_validate"));
        assert!(
            r.error
                .as_ref()
                .expect("error")
                .message
                .contains("unreachable")
        );
    }
    v.close().await;
}

#[tokio::test]
async fn wrong_credentials_and_missing_role() {
    let env = start().await;
    let loaded = env.config(|t| {
        t.replace("username = \"svc_ticketing\"", "username = \"svc_noroles\"")
            .replace("username = \"svc_remedy\"", "username = \"svc_nobody\"")
    });
    let mut v = env.validator(&loaded);
    // svc_noroles with the wrong password: 401.
    let r = check(&mut v, "INC0010001", Some("alice")).await;
    assert_eq!(r.outcome, Outcome::CannotValidate, "{r:#?}");
    assert_eq!(r.exit, Exit::NoPerm);
    let r = check(&mut v, "INC000000000101", Some("alice")).await;
    assert_eq!(r.outcome, Outcome::CannotValidate, "{r:#?}");
    assert_eq!(r.exit, Exit::NoPerm);
    assert!(
        r.error.as_ref().expect("e").message.contains("623"),
        "{r:#?}"
    );
    assert_eq!(env.sim.state.remedy.stats().failed_logins, 1);
    v.close().await;

    // The right password but no itil role: 403.
    let dir = tempfile::tempdir().expect("tmp");
    let pw = secret_file(dir.path(), "pw", "Noroles-Demo-Pass");
    let loaded = env.config(|t| {
        let sn_pw = t
            .lines()
            .find(|l| l.starts_with("password = \"file:") && l.ends_with("/sn\""))
            .expect("sn password line")
            .to_string();
        t.replace("username = \"svc_ticketing\"", "username = \"svc_noroles\"")
            .replace(&sn_pw, &format!("password = \"{pw}\""))
    });
    let mut v = env.validator(&loaded);
    let r = check(&mut v, "INC0010001", Some("alice")).await;
    assert_eq!(r.exit, Exit::NoPerm, "{r:#?}");
    assert!(
        r.error
            .as_ref()
            .expect("e")
            .message
            .contains("Insufficient rights")
    );
    assert!(
        r.error
            .as_ref()
            .expect("e")
            .hint
            .as_deref()
            .expect("hint")
            .contains("itil")
    );
    v.close().await;
}

#[tokio::test]
async fn expired_remedy_token_logs_in_again_once() {
    let env = start().await;
    let loaded = env.config(|t| t);
    let mut v = env.validator(&loaded);
    assert_eq!(
        check(&mut v, "INC000000000101", Some("alice"))
            .await
            .outcome,
        Outcome::Valid
    );
    env.sim.state.remedy.expire_tokens();
    let r = check(&mut v, "CRQ000000000201", Some("alice")).await;
    assert_eq!(r.outcome, Outcome::Valid, "{r:#?}");
    v.close().await;
    let s = env.sim.state.remedy.stats();
    assert_eq!(s.expired_refused, 1, "{s:?}");
    assert_eq!(s.logins, 2, "{s:?}");
    assert_eq!(s.open, 0, "both tokens logged out: {s:?}");
}

#[tokio::test]
async fn remedy_clock_expiry_is_handled_like_a_real_ttl() {
    let env = start().await;
    let loaded = env.config(|t| t);
    let mut v = env.validator(&loaded);
    assert_eq!(
        check(&mut v, "INC000000000101", Some("alice"))
            .await
            .outcome,
        Outcome::Valid
    );
    env.sim.state.clock.advance(3601);
    // The window moved on too; the incident has none.
    assert_eq!(
        check(&mut v, "INC000000000102", Some("alice"))
            .await
            .outcome,
        Outcome::Valid
    );
    v.close().await;
    assert_eq!(env.sim.state.remedy.stats().expired_refused, 1);
}

#[tokio::test]
async fn servicenow_oauth_password_and_client_credentials() {
    let env = start().await;
    let secret = secret_file(env.dir.path(), "client", "Demo-OAuth-Secret");
    for grant in ["oauth_password", "oauth_client_credentials"] {
        let loaded = env.config(|t| {
            t.replace(
                "auth = \"basic\"",
                &format!(
                    "auth = \"{grant}\"\nclient_id = \"pam-approval\"\nclient_secret = \"{secret}\""
                ),
            )
        });
        let mut v = env.validator(&loaded);
        let before = env.sim.state.servicenow.requests().len();
        assert_eq!(
            check(&mut v, "CHG0030001", Some("alice")).await.outcome,
            Outcome::Valid,
            "{grant}"
        );
        // Expired token: one new token, then the read succeeds.
        env.sim.state.servicenow.expire_tokens();
        assert_eq!(
            check(&mut v, "INC0010001", Some("alice")).await.outcome,
            Outcome::Valid,
            "{grant}"
        );
        v.close().await;
        let reqs = &env.sim.state.servicenow.requests()[before..];
        let statuses: Vec<u16> = reqs.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![200, 401, 200], "{grant}: {reqs:#?}");
    }
    // A wrong client secret is an authentication failure.
    let bad = secret_file(env.dir.path(), "bad", "wrong");
    let loaded = env.config(|t| {
        t.replace(
            "auth = \"basic\"",
            &format!("auth = \"oauth_client_credentials\"\nclient_id = \"pam-approval\"\nclient_secret = \"{bad}\""),
        )
    });
    let mut v = env.validator(&loaded);
    let r = check(&mut v, "CHG0030001", Some("alice")).await;
    assert_eq!(r.exit, Exit::NoPerm, "{r:#?}");
    assert!(
        r.error
            .as_ref()
            .expect("e")
            .message
            .contains("access_denied")
    );
    v.close().await;
}

fn fail(status: u16, count: u32, body: &str, ct: &str, headers: &[(&str, &str)]) -> Faults {
    Faults {
        fail: Some(FailNext {
            status,
            count,
            body: Some(body.into()),
            content_type: Some(ct.into()),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }),
        ..Faults::default()
    }
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_servers_delay_then_given_up() {
    let env = start().await;
    let loaded = env.config(|t| t);
    let body = r#"{"error":{"message":"Too many requests","detail":null},"status":"failure"}"#;
    env.sim.state.faults.set(
        "servicenow",
        fail(429, 1, body, "application/json", &[("Retry-After", "1")]),
    );
    let mut v = env.validator(&loaded);
    let t0 = std::time::Instant::now();
    assert_eq!(
        check(&mut v, "INC0010001", Some("alice")).await.outcome,
        Outcome::Valid
    );
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(900),
        "Retry-After honoured"
    );
    v.close().await;
    env.sim.state.faults.set(
        "servicenow",
        fail(429, 10, body, "application/json", &[("Retry-After", "0")]),
    );
    let mut v = env.validator(&loaded);
    let r = check(&mut v, "INC0010001", Some("alice")).await;
    assert_eq!(r.outcome, Outcome::CannotValidate);
    assert_eq!(r.exit, Exit::TempFail);
    v.close().await;
}

#[tokio::test]
async fn built_in_rate_limit_rule_answers_429_with_headers() {
    let env = start().await;
    let loaded = env.config(|t| t.replace("retries = 1", "retries = 0"));
    {
        let mut sc = Scenario::from_toml(DEMO_SCENARIO)
            .expect("scenario")
            .servicenow;
        sc.rate_limit = Some(1);
        env.sim
            .state
            .servicenow
            .load(&sc, env.sim.state.clock.now())
            .expect("load");
    }
    let mut v = env.validator(&loaded);
    assert_eq!(
        check(&mut v, "INC0010001", Some("alice")).await.outcome,
        Outcome::Valid
    );
    let r = check(&mut v, "INC0010002", Some("alice")).await;
    assert_eq!(r.exit, Exit::TempFail, "{r:#?}");
    assert!(
        r.error.as_ref().expect("e").message.contains("retry after"),
        "{r:#?}"
    );
    v.close().await;
}

#[tokio::test]
async fn server_errors_html_pages_and_hibernation_cannot_validate() {
    let env = start().await;
    let loaded = env.config(|t| t);
    let html = "<html><head><title>503 Service Unavailable</title></head><body>down</body></html>";
    env.sim
        .state
        .faults
        .set("remedy", fail(503, 10, html, "text/html", &[]));
    let mut v = env.validator(&loaded);
    let r = check(&mut v, "INC000000000101", Some("alice")).await;
    assert_eq!(r.outcome, Outcome::CannotValidate, "{r:#?}");
    assert_eq!(r.exit, Exit::Unavailable);
    assert!(
        r.error
            .as_ref()
            .expect("e")
            .message
            .contains("503 Service Unavailable")
    );
    v.close().await;

    env.sim
        .state
        .faults
        .set("servicenow", fail(500, 1, html, "text/html", &[]));
    let mut v = env.validator(&loaded);
    let r = check(&mut v, "INC0010001", Some("alice")).await;
    assert_eq!(r.exit, Exit::Unavailable, "500 is not retried: {r:#?}");
    v.close().await;

    let mut sc = Scenario::from_toml(DEMO_SCENARIO)
        .expect("scenario")
        .servicenow;
    sc.hibernating = true;
    env.sim
        .state
        .servicenow
        .load(&sc, env.sim.state.clock.now())
        .expect("load");
    let mut v = env.validator(&loaded);
    let r = check(&mut v, "INC0010001", Some("alice")).await;
    assert_eq!(r.outcome, Outcome::CannotValidate, "{r:#?}");
    assert_eq!(r.exit, Exit::Unavailable);
    let e = r.error.expect("e");
    assert!(e.message.contains("Hibernating"), "{e:?}");
    assert!(e.hint.expect("hint").contains("hibernating"));
    v.close().await;
}

#[tokio::test]
async fn slow_replies_time_out() {
    let env = start().await;
    let loaded = env.config(|t| t.replace("retries = 1", "retries = 0\nrequest_timeout_secs = 1"));
    env.sim.state.faults.set(
        "all",
        Faults {
            latency_ms: 1500,
            ..Faults::default()
        },
    );
    let mut v = env.validator(&loaded);
    for id in ["INC0010001", "INC000000000101"] {
        let r = check(&mut v, id, Some("alice")).await;
        assert_eq!(r.outcome, Outcome::CannotValidate, "{id}: {r:#?}");
        assert_eq!(r.exit, Exit::TempFail, "{id}");
    }
    v.close().await;
}

#[tokio::test]
async fn a_wrong_remedy_field_is_a_configuration_error() {
    let env = start().await;
    let loaded = env.config(|t| {
        t.replace(
            "requester_fields = [\"Requestor ID\"]",
            "requester_fields = [\"Requested By\"]",
        )
    });
    let mut v = env.validator(&loaded);
    let r = check(&mut v, "CRQ000000000201", Some("alice")).await;
    assert_eq!(r.outcome, Outcome::CannotValidate);
    assert_eq!(r.exit, Exit::Config, "{r:#?}");
    let e = r.error.expect("e");
    assert!(e.message.contains("314"), "{e:?}");
    assert!(e.hint.expect("hint").contains("requester_fields"));
    v.close().await;
}

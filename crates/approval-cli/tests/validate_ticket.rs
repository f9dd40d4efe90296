//! `validate-ticket` end to end against pam-sim (HTTPS, the demo scenario and config): verdicts
//! and exit codes, stdin mode, JSON, bypass codes never in output or logs at -vvv, the hash
//! command, and the faults that mean "cannot validate".

use std::path::PathBuf;

use assert_cmd::Command;
use pam_sim::{Scenario, Sim, SimOptions};

const DEMO_CONFIG: &str = include_str!("../../../examples/demo/ticketing-config.toml");
const DEMO_SCENARIO: &str = include_str!("../../../examples/demo/ticketing-scenario.toml");
const BYPASS: &str = "Demo-Bypass-Code-2026";

struct Env {
    sim: Sim,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(edit: impl Fn(String) -> String) -> Env {
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
    let text = DEMO_CONFIG
        .replace("https://127.0.0.1:8443", &sim.url())
        .replace(
            "/tmp/pam-sim-tls/ca.crt",
            &sim.ca_cert.as_ref().expect("https").display().to_string(),
        )
        .replace("retries = 1", "retries = 0");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, edit(text)).expect("write");
    Env {
        sim,
        config,
        _dir: dir,
    }
}

impl Env {
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("validate-ticket").expect("binary");
        c.arg("--config")
            .arg(&self.config)
            .env("DEMO_SN_PASSWORD", "Ticketing-Demo-Pass")
            .env("DEMO_REMEDY_PASSWORD", "Remedy-Demo-Pass")
            .env_remove("RUST_LOG")
            .env_remove("APPROVAL_LOG_FILE");
        c
    }
}

/// Run a prepared command off the runtime's thread, so the in-process simulator keeps serving.
async fn output(mut c: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || c.output().expect("run"))
        .await
        .expect("join")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_and_invalid_tickets_on_both_systems() {
    let env = start(|t| t).await;
    for (id, code, needle) in [
        (
            "CHG0030001",
            0,
            "CHG0030001: valid (ServiceNow change, sn-change)",
        ),
        (
            "CRQ000000000201",
            0,
            "CRQ000000000201: valid (Remedy change, remedy-change)",
        ),
        ("CHG0030004", 1, "approval_not_allowed"),
        ("CHG0030011", 1, "window_ended"),
        ("INC0010005", 1, "state_not_allowed"),
        ("INC000000000108", 1, "requester_mismatch"),
        ("CRQ000000000212", 1, "window_ended"),
        ("INC0019999", 1, "not_found"),
    ] {
        let mut c = env.cmd();
        c.args(["--user", "alice", id]);
        let out = output(c).await;
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{id}: {stdout}{}",
            text(&out.stderr)
        );
        assert!(stdout.contains(needle), "{id}: {stdout}");
        // Every validation is listed, in order.
        let order: Vec<usize> = [
            "bypass",
            "format",
            "record",
            "state",
            "approval",
            "window",
            "requester",
        ]
        .iter()
        .map(|k| {
            stdout
                .find(&format!("\n  {k} "))
                .unwrap_or_else(|| panic!("{k} in {stdout}"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_shape_and_stdin_lines() {
    let env = start(|t| t).await;
    let mut c = env.cmd();
    c.args(["--json", "--user", "CORP\\alice", "-"])
        .write_stdin("CHG0030001\n\n# a comment\nCRQ000000000215\nINC0010001^NQnumberANYTHING\n");
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["ticket"], "CHG0030001");
    assert_eq!(lines[0]["outcome"], "valid");
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["system"], "servicenow");
    assert_eq!(lines[0]["kind"], "change");
    assert_eq!(lines[0]["checks"].as_array().expect("checks").len(), 7);
    assert_eq!(lines[0]["checks"][6]["check"], "requester");
    assert_eq!(lines[0]["checks"][6]["verdict"], "pass");
    assert_eq!(lines[1]["outcome"], "invalid");
    assert_eq!(lines[1]["reason"], "approval_not_allowed");
    assert_eq!(lines[1]["line"], 4);
    assert_eq!(lines[2]["reason"], "format_invalid");
    assert_eq!(lines[2]["ticket"], serde_json::Value::Null);

    // Human stdin mode: one line per ticket.
    let mut c = env.cmd();
    c.args(["--user", "alice", "-"])
        .write_stdin("INC0010001\nINC0010003\n");
    let out = output(c).await;
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout
            .lines()
            .nth(1)
            .expect("line")
            .contains("state_not_allowed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypass_code_accepted_and_never_in_output_or_logs() {
    let env = start(|t| t).await;
    let mut c = env.cmd();
    c.args(["-vvv", "--user", "alice", "-"])
        .write_stdin(format!("{BYPASS}\n"));
    let out = output(c).await;
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{so}{se}");
    assert!(so.contains("accepted (bypass)"), "{so}");
    assert!(se.contains("AUDIT ticket validation bypassed"), "{se}");
    assert!(
        se.contains("DEBUG") || se.contains("TRACE"),
        "-vvv logs: {se}"
    );
    assert!(!so.contains(BYPASS) && !se.contains(BYPASS), "{so}{se}");
    // The JSON form does not carry it either; a near miss is refused and not echoed.
    let mut c = env.cmd();
    c.args(["-vvv", "--json", "--user", "alice", "-"])
        .write_stdin(format!("{BYPASS}\nDemo-Bypass-Code-2025\n"));
    let out = output(c).await;
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{so}{se}");
    assert!(so.contains("\"outcome\":\"bypass\""), "{so}");
    assert!(so.contains("\"reason\":\"format_invalid\""), "{so}");
    for code in [BYPASS, "Demo-Bypass-Code-2025"] {
        assert!(!so.contains(code) && !se.contains(code), "{code}: {so}{se}");
    }
    // The passwords of the connection accounts never show either.
    assert!(!se.contains("Ticketing-Demo-Pass") && !se.contains("Remedy-Demo-Pass"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_verbose_logs_during_lookups() {
    let env = start(|t| t).await;
    let mut c = env.cmd();
    c.args(["-vvv", "--user", "alice", "CHG0030001", "CRQ000000000201"]);
    let out = output(c).await;
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{so}{se}");
    assert!(se.contains("Remedy logout"), "{se}");
    for secret in [
        "Ticketing-Demo-Pass",
        "Remedy-Demo-Pass",
        "AR-JWT",
        "Basic ",
    ] {
        assert!(
            !se.contains(secret) && !so.contains(secret),
            "{secret}: {se}"
        );
    }
    assert_eq!(env.sim.state.remedy.stats().open, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_command_reads_stdin_and_the_hash_verifies() {
    let mut c = Command::cargo_bin("validate-ticket").expect("binary");
    c.args(["-vvv", "--hash-bypass-code"])
        .write_stdin("A-New-Break-Glass-Code\n");
    let out = output(c).await;
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{se}");
    assert!(!so.contains("A-New-Break-Glass-Code") && !se.contains("A-New-Break-Glass-Code"));
    let hash = so.trim();
    let h = approval_core::ticketing::bypass::BypassHash::parse(hash).expect("parses");
    assert!(approval_core::ticketing::bypass::matches_any(
        "A-New-Break-Glass-Code",
        std::slice::from_ref(&h)
    ));
    assert!(!approval_core::ticketing::bypass::matches_any(
        "A-New-Break-Glass-Cod",
        &[h]
    ));
    // No code on the command line: the flag takes none, and a short one is refused.
    let mut c = Command::cargo_bin("validate-ticket").expect("binary");
    c.args(["--hash-bypass-code", "A-New-Break-Glass-Code"]);
    assert_eq!(output(c).await.status.code(), Some(2));
    let mut c = Command::cargo_bin("validate-ticket").expect("binary");
    c.args(["--hash-bypass-code"]).write_stdin("short\n");
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains("short\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_down_wrong_credentials_and_usage_errors() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let env = start(|t| t).await;
    let down = start(move |t| {
        t.lines()
            .map(|l| {
                if l.starts_with("url = ") {
                    format!("url = \"https://127.0.0.1:{closed}\"")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
    .await;
    let mut c = down.cmd();
    c.args(["--user", "alice", "CHG0030001"]);
    let out = output(c).await;
    let so = text(&out.stdout);
    assert_eq!(out.status.code(), Some(69), "{so}{}", text(&out.stderr));
    assert!(so.contains("cannot validate"), "{so}");
    assert!(so.contains("hint: check ticketing.servicenow.url"), "{so}");

    let mut c = env.cmd();
    c.env("DEMO_REMEDY_PASSWORD", "not-the-password")
        .args(["--user", "alice", "INC000000000101"]);
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(77), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("not-the-password"));

    let mut c = env.cmd();
    c.args(["--at", "2026-05-01 22:00", "CHG0030001"]);
    assert_eq!(output(c).await.status.code(), Some(2));

    // A ticket-less config section is a configuration error.
    let mut c = Command::cargo_bin("validate-ticket").expect("binary");
    let empty = tempfile::NamedTempFile::new().expect("tmp");
    c.arg("--config").arg(empty.path()).arg("CHG0030001");
    assert_eq!(output(c).await.status.code(), Some(78));
}

/// A Remedy read that fails (an error status, an HTML page, a timeout) still ends the session
/// it opened: one login, one logout, nothing left open. Every later id of the batch is named in
/// its own error, never the first ticket's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_remedy_read_logs_out_and_names_each_ticket() {
    use pam_sim::faults::{FailNext, Faults};
    let read_fault = |status: u16, body: &str, content_type: &str| Faults {
        fail: Some(FailNext {
            status,
            count: 10,
            body: Some(body.to_string()),
            content_type: Some(content_type.to_string()),
            headers: Default::default(),
        }),
        path_contains: Some("/api/arsys/".into()),
        ..Faults::default()
    };
    let cases = [
        ("503", read_fault(503, "busy", "text/plain")),
        (
            "500",
            read_fault(500, r#"[{"messageText":"ARERR 552"}]"#, "application/json"),
        ),
        (
            "an HTML page",
            read_fault(200, "<html><body>Sign in</body></html>", "text/html"),
        ),
        (
            "a timeout",
            Faults {
                latency_ms: 4000,
                path_contains: Some("/api/arsys/".into()),
                ..Faults::default()
            },
        ),
    ];
    for (what, fault) in cases {
        let env =
            start(|t| t.replace("retries = 0", "retries = 0\nrequest_timeout_secs = 1")).await;
        env.sim.state.faults.set("remedy", fault);
        let mut c = env.cmd();
        c.args(["--user", "alice", "INC000000000101", "INC000000000102"]);
        let out = output(c).await;
        let (so, se) = (text(&out.stdout), text(&out.stderr));
        assert_ne!(out.status.code(), Some(0), "{what}: {so}{se}");
        let st = env.sim.state.remedy.stats();
        assert_eq!(st.logins, 1, "{what}: {st:?}");
        assert_eq!(st.logouts, 1, "{what}: the session is ended: {st:?}\n{se}");
        assert_eq!(st.open, 0, "{what}: {st:?}");
        let second: String = so
            .lines()
            .skip_while(|l| !l.starts_with("INC000000000102"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(second.contains("cannot validate"), "{what}: {so}");
        assert!(
            !second.contains("INC000000000101"),
            "{what}: the second ticket's error names the first: {so}"
        );
    }
}

/// `--check` proves the set-up without a ticket: the secret references, the sign-in to each
/// system, every configured type's table or form with its requester fields, the bypass-code
/// list; a wrong password or an unreadable form is a failure naming what to fix, and every
/// Remedy session it opened is ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_proves_the_set_up_without_a_ticket() {
    let env = start(|t| t).await;
    let mut c = env.cmd();
    c.arg("--check");
    let out = output(c).await;
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{so}{se}");
    for want in [
        "ticketing.servicenow.password",
        "ticketing.remedy.password",
        "1 bypass code hash(es) load",
        "type sn-incident",
        "type sn-change",
        "type remedy-incident",
        "type remedy-change",
        "with the requester field(s) Requestor ID",
    ] {
        assert!(so.contains(want), "{want}: {so}");
    }
    assert!(!so.contains("Demo-Bypass-Code") && !so.contains("Remedy-Demo-Pass"));
    let st = env.sim.state.remedy.stats();
    assert!(st.logins >= 1 && st.open == 0, "{st:?}");

    // JSON: one document with the items.
    let mut c = env.cmd();
    c.args(["--check", "--json"]);
    let out = output(c).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["exit"], 0, "{doc}");

    // A wrong Remedy password: a failure naming the account; the types are not tried.
    let mut c = env.cmd();
    c.env("DEMO_REMEDY_PASSWORD", "wrong").arg("--check");
    let out = output(c).await;
    let so = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{so}");
    assert!(so.contains("svc_remedy"), "{so}");
    assert!(!so.contains("wrong"), "{so}");

    // A requester field the Remedy form does not have: that type fails, the others pass.
    let bad = start(|t| {
        t.replace(
            "requester_fields = [\"Requestor ID\"]",
            "requester_fields = [\"No Such Field\"]",
        )
    })
    .await;
    let mut c = bad.cmd();
    c.arg("--check");
    let out = output(c).await;
    let so = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{so}");
    let line = so
        .lines()
        .find(|l| l.contains("type remedy-change"))
        .unwrap_or_default();
    assert!(
        line.contains("FAIL") || line.to_lowercase().contains("fail"),
        "{so}"
    );

    // No ticket and no --check is a usage error.
    let out = output(env.cmd()).await;
    assert_eq!(out.status.code(), Some(2));
}

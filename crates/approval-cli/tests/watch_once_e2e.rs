//! `check-approval-request --once --json` end to end: the binary against pam-sim (PVWA, Exchange,
//! ServiceNow over HTTPS) and a real slapd, with the demo's own scenario, config and mails
//! (examples/demo/watcher-*.toml, examples/demo/mails/): exit code, one JSON line per mail,
//! PVWA's confirm log, the replies sent, the mails filed; a second pass does nothing new. The
//! same pass with PVWA on Privilege Cloud (Identity sign-in set through the environment) at
//! `-vvv`: confirmed with platform tokens, and no token or secret in the output.

#[path = "../../approval-core/tests/support/slapd.rs"]
mod slapd;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use slapd::{Opts, Slapd};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Run {
    code: Option<i32>,
    lines: Vec<serde_json::Value>,
    stderr: String,
}

fn once(sim_url: &str, sim_ca: &Path, ldap: &Slapd, state: &Path) -> Run {
    once_with(sim_url, sim_ca, ldap, state, &[], &[])
}

fn once_with(
    sim_url: &str,
    sim_ca: &Path,
    ldap: &Slapd,
    state: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = Command::cargo_bin("check-approval-request").expect("binary");
    cmd.args(args).envs(env.iter().copied());
    if !args.contains(&"--config") {
        cmd.arg("--config")
            .arg(repo().join("examples/demo/watcher-config.toml"));
    }
    let out = cmd
        .args(["--once", "--json"])
        .env_remove("APPROVAL_CONFIG")
        .env("APPROVAL__PVWA__URL", sim_url)
        .env("APPROVAL__PVWA__CA_BUNDLE", sim_ca)
        .env(
            "APPROVAL__MAILBOX__URL",
            format!("{sim_url}/EWS/Exchange.asmx"),
        )
        .env("APPROVAL__MAILBOX__CA_BUNDLE", sim_ca)
        .env("APPROVAL__TICKETING__SERVICENOW__URL", sim_url)
        .env("APPROVAL__TICKETING__SERVICENOW__CA_BUNDLE", sim_ca)
        .env("APPROVAL__DIRECTORY__URL", ldap.url())
        .env("APPROVAL__DIRECTORY__CA_BUNDLE", &ldap.ca)
        .env("APPROVAL__WATCHER__STATE_DIR", state)
        .env("DEMO_LEVEL1_PASSWORD", "Level1-Demo-Pass")
        .env("DEMO_LEVEL2_PASSWORD", "Level2-Demo-Pass")
        .env("DEMO_LOOKUP_PASSWORD", "Lookup-Demo-Pass")
        .env("DEMO_MAILBOX_PASSWORD", "Mailbox-Demo-Pass")
        .env("DEMO_LDAP_PASSWORD", "svcpw")
        .env("DEMO_SN_PASSWORD", "Ticketing-Demo-Pass")
        .output()
        .expect("run");
    let stdout = text(&out.stdout);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    Run {
        code: out.status.code(),
        lines,
        stderr: text(&out.stderr),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_confirms_the_approvable_mail_refuses_the_other_and_a_second_pass_does_nothing() {
    let Some(ldap) = Slapd::start(Opts::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let scenario = std::fs::read_to_string(repo().join("examples/demo/watcher-scenario.toml"))
        .expect("scenario");
    let sim = pam_sim::Sim::start(
        pam_sim::Scenario::from_toml(&scenario).expect("scenario parses"),
        pam_sim::SimOptions {
            tls_dir: Some(tmp.path().join("sim-tls")),
            ..pam_sim::SimOptions::default()
        },
    )
    .await
    .expect("pam-sim");
    let url = sim.url();
    let ca = sim.ca_cert.clone().expect("sim CA");
    let state = tmp.path().join("state");
    let mailbox = "pam-approvals@example.test";
    for m in ["01-approvable-level1.eml", "03-self-approval.eml"] {
        let raw = std::fs::read(repo().join("examples/demo/mails").join(m)).expect("mail");
        sim.state
            .ews
            .deliver(mailbox, None, raw, chrono::Utc::now().timestamp_millis())
            .expect("deliver");
    }

    let pass = {
        let (url, ca, state) = (url.clone(), ca.clone(), state.clone());
        let ldap = &ldap;
        move || once(&url, &ca, ldap, &state)
    };
    // The binary blocks; pam-sim runs on this runtime's other worker.
    let r = tokio::task::block_in_place(&pass);
    assert_eq!(r.code, Some(0), "{:?}\n{}", r.lines, r.stderr);
    assert_eq!(r.lines.len(), 2, "one JSON line per mail: {:?}", r.lines);
    let by_mid = |mid: &str| {
        r.lines
            .iter()
            .find(|l| l["message_id"].as_str().is_some_and(|m| m.contains(mid)))
            .unwrap_or_else(|| panic!("no line for {mid}: {:?}", r.lines))
            .clone()
    };
    let ok = by_mid("demo-01");
    assert_eq!(ok["outcome"], "confirmed", "{ok}");
    assert_eq!(ok["request_id"], "DBSafe_31", "{ok}");
    assert_eq!(ok["state"], "filed", "{ok}");
    let no = by_mid("demo-03");
    assert_eq!(no["outcome"], "refused", "{no}");
    assert_eq!(no["reason_code"], "self_approval", "{no}");
    assert_eq!(no["state"], "filed", "{no}");

    // PVWA: exactly one confirm, by the level-1 account, on request 31.
    let acts = sim.state.pvwa.actions();
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!(
        (
            acts[0].request_id.as_str(),
            acts[0].user.as_str(),
            acts[0].action.to_ascii_lowercase().as_str()
        ),
        ("DBSafe_31", "svc_pam_level1", "confirm")
    );
    assert!(acts[0].reason.contains("bob@example.test"), "{acts:?}");

    // One reply to each forwarder.
    let sent = sim.state.ews.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let to = |who: &str| {
        sent.iter()
            .find(|s| s.to.iter().any(|t| t.eq_ignore_ascii_case(who)))
            .unwrap_or_else(|| panic!("no reply to {who}: {sent:?}"))
    };
    assert!(to("bob@example.test").subject.starts_with("Approved"));
    let alice = to("alice@example.test");
    assert!(
        alice.subject.starts_with("Not approved"),
        "{}",
        alice.subject
    );
    assert!(alice.body.contains("self_approval"), "{}", alice.body);

    // Filed: the confirmed mail in Processed, the refused one in Refused, none left unread.
    let folders = sim.state.ews.folders_json(mailbox).expect("folders");
    let ids_in = |name: &str| -> Vec<String> {
        folders["folders"]
            .as_array()
            .expect("folders")
            .iter()
            .filter(|f| {
                f["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
                    || f["distinguished"].as_str() == Some(name)
            })
            .flat_map(|f| f["items"].as_array().cloned().unwrap_or_default())
            .filter_map(|i| i["message_id"].as_str().map(str::to_ascii_lowercase))
            .collect()
    };
    assert_eq!(ids_in("Processed"), vec!["<demo-01@corp.example.test>"]);
    assert_eq!(ids_in("Refused"), vec!["<demo-03@corp.example.test>"]);
    assert!(ids_in("inbox").is_empty(), "inbox emptied, nothing deleted");

    // A second pass: nothing to do, nothing sent, nothing confirmed.
    let r2 = tokio::task::block_in_place(&pass);
    assert_eq!(r2.code, Some(0), "{:?}\n{}", r2.lines, r2.stderr);
    assert!(r2.lines.is_empty(), "{:?}", r2.lines);
    assert_eq!(sim.state.pvwa.actions().len(), 1);
    assert_eq!(sim.state.ews.sent().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_privilege_cloud_the_pass_confirms_with_identity_tokens_and_shows_none_at_vvv() {
    let Some(ldap) = Slapd::start(Opts::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(repo().join("examples/demo/watcher-scenario.toml"))
        .expect("scenario");
    let mut scenario = pam_sim::Scenario::from_toml(&text).expect("scenario parses");
    scenario.pvwa.mode = pam_sim::pvwa::PvwaMode::PrivilegeCloud;
    let sim = pam_sim::Sim::start(
        scenario,
        pam_sim::SimOptions {
            tls_dir: Some(tmp.path().join("sim-tls")),
            ..pam_sim::SimOptions::default()
        },
    )
    .await
    .expect("pam-sim");
    let url = sim.url();
    let ca = sim.ca_cert.clone().expect("sim CA");
    let state = tmp.path().join("state");
    let raw =
        std::fs::read(repo().join("examples/demo/mails/01-approvable-level1.eml")).expect("mail");
    sim.state
        .ews
        .deliver(
            "pam-approvals@example.test",
            None,
            raw,
            chrono::Utc::now().timestamp_millis(),
        )
        .expect("deliver");
    let r = tokio::task::block_in_place(|| {
        once_with(
            &url,
            &ca,
            &ldap,
            &state,
            &["-vvv"],
            &[
                ("APPROVAL__PVWA__AUTH_METHOD", "identity"),
                ("APPROVAL__PVWA__IDENTITY_URL", &url),
            ],
        )
    });
    assert_eq!(r.code, Some(0), "{:?}\n{}", r.lines, r.stderr);
    assert_eq!(r.lines.len(), 1, "{:?}", r.lines);
    assert_eq!(r.lines[0]["outcome"], "confirmed", "{:?}", r.lines);
    let acts = sim.state.pvwa.actions();
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!(acts[0].user, "svc_pam_level1");
    let st = sim.state.pvwa.stats();
    assert_eq!((st.logons, st.raw_refused), (0, 0), "{st:?}");
    assert!(st.platform_tokens >= 2, "lookup and level 1: {st:?}");
    // Full verbosity: the trace is there, no token and no secret is.
    assert!(r.stderr.contains("TRACE"), "{}", r.stderr);
    assert!(
        r.stderr.contains("Identity token"),
        "the sign-in is visible: {}",
        r.stderr
    );
    let tokens = sim.state.pvwa.issued_tokens();
    assert_eq!(tokens.len() as u64, st.platform_tokens);
    for t in &tokens {
        // The whole token and its signature part alone.
        let sig = t.rsplit('.').next().unwrap_or(t);
        assert!(
            !r.stderr.contains(t.as_str()) && !r.stderr.contains(sig),
            "token leaked"
        );
    }
    for secret in ["Level1-Demo-Pass", "Level2-Demo-Pass", "Lookup-Demo-Pass"] {
        assert!(!r.stderr.contains(secret), "{secret} leaked:\n{}", r.stderr);
    }
}

/// The audit line of each mail is written at the default verbosity (no `-v`): to `[log] file`
/// when the configuration names one (and not to stderr), else to stderr (journald under systemd).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_v_the_audit_line_goes_to_the_configured_log_file_else_to_stderr() {
    let Some(ldap) = Slapd::start(Opts::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let scenario = std::fs::read_to_string(repo().join("examples/demo/watcher-scenario.toml"))
        .expect("scenario");
    let sim = pam_sim::Sim::start(
        pam_sim::Scenario::from_toml(&scenario).expect("scenario parses"),
        pam_sim::SimOptions {
            tls_dir: Some(tmp.path().join("sim-tls")),
            ..pam_sim::SimOptions::default()
        },
    )
    .await
    .expect("pam-sim");
    let url = sim.url();
    let ca = sim.ca_cert.clone().expect("sim CA");
    let state = tmp.path().join("state");
    let mailbox = "pam-approvals@example.test";
    let deliver = |m: &str| {
        let raw = std::fs::read(repo().join("examples/demo/mails").join(m)).expect("mail");
        sim.state
            .ews
            .deliver(mailbox, None, raw, chrono::Utc::now().timestamp_millis())
            .expect("deliver");
    };
    // The demo's configuration with a [log] section naming a file.
    let log = tmp.path().join("pam-approval.log");
    let demo = std::fs::read_to_string(repo().join("examples/demo/watcher-config.toml"))
        .expect("demo config");
    assert!(!demo.contains("[log]"), "the demo config sets no [log]");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!("{demo}\n[log]\nfile = {:?}\n", log.display().to_string()),
    )
    .expect("config");

    deliver("01-approvable-level1.eml");
    let r = {
        let (url, ca, state, config) = (url.clone(), ca.clone(), state.clone(), config.clone());
        let ldap = &ldap;
        tokio::task::block_in_place(move || {
            once_with(
                &url,
                &ca,
                ldap,
                &state,
                &["--config", config.to_str().unwrap()],
                &[],
            )
        })
    };
    assert_eq!(r.code, Some(0), "{:?}\n{}", r.lines, r.stderr);
    let written = std::fs::read_to_string(&log).expect("the configured log file was written");
    let audit: Vec<&str> = written.lines().filter(|l| l.contains(" audit]")).collect();
    assert_eq!(audit.len(), 1, "one audit line per mail in {written}");
    assert!(
        audit[0].contains("\"outcome\":\"confirmed\"") && audit[0].contains("DBSafe_31"),
        "{}",
        audit[0]
    );
    assert!(
        !r.stderr.contains(" audit]"),
        "not on stderr too: {}",
        r.stderr
    );

    // No [log] file: the audit line goes to stderr, still without -v.
    deliver("03-self-approval.eml");
    let r = {
        let (url, ca, state) = (url.clone(), ca.clone(), state.clone());
        let ldap = &ldap;
        tokio::task::block_in_place(move || once(&url, &ca, ldap, &state))
    };
    assert_eq!(r.code, Some(0), "{:?}\n{}", r.lines, r.stderr);
    let audit: Vec<&str> = r.stderr.lines().filter(|l| l.contains(" audit]")).collect();
    assert_eq!(audit.len(), 1, "one audit line on stderr: {}", r.stderr);
    assert!(
        audit[0].contains("\"reason_code\":\"self_approval\""),
        "{}",
        audit[0]
    );
    assert_eq!(
        std::fs::read_to_string(&log).expect("log").lines().count(),
        written.lines().count(),
        "nothing more in the file of the first run"
    );
}

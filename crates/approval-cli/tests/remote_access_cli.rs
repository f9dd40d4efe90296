//! `remote-access` end to end against pam-sim's Remote Access stand-in: the shell flow, the
//! JSON Lines pipe of identity-system hooks, exit codes, and no key material in output or logs.

use std::path::PathBuf;

use assert_cmd::Command;
use pam_sim::remote_access::keys::{self, TestKeyPair};
use pam_sim::{Scenario, Sim, SimOptions};
use serde_json::Value;

const TENANT: &str = "11eaab2463a4d3399816d3b7450c5b10";
const SA: &str = "11ea6140f94d5f82a3712de9ac6f6b24";

struct Env {
    rt: tokio::runtime::Runtime,
    sim: Option<Sim>,
    dir: tempfile::TempDir,
    kp: TestKeyPair,
    config: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.stop());
        }
    }
}

impl Env {
    fn sim(&self) -> &Sim {
        self.sim.as_ref().expect("sim")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("remote-access").expect("binary");
        c.arg("--config").arg(&self.config);
        c.env_remove("RUST_LOG").env_remove("APPROVAL_CONFIG");
        c
    }

    fn invitation_ids(&self) -> Vec<String> {
        self.sim().state.remote_access.state()["invitations"]
            .as_array()
            .expect("list")
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_string())
            .collect()
    }
}

fn start() -> Env {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let kp = keys::generate().expect("keygen");
    let dir = tempfile::tempdir().expect("tmp");
    let scenario = Scenario::from_toml(&format!(
        r#"
[remote_access]
tenant_id = "{TENANT}"
service_account_id = "{SA}"
public_key = """{}"""

[[remote_access.sites]]
name = "Main DC"
applications = [ {{ name = "Linux SSH" }}, {{ name = "Windows RDP" }} ]
"#,
        kp.public_pem
    ))
    .expect("scenario");
    let sim = rt
        .block_on(Sim::start(
            scenario,
            SimOptions {
                tls_dir: Some(dir.path().join("tls")),
                ..SimOptions::default()
            },
        ))
        .expect("sim");
    let key = dir.path().join("sa.json");
    keys::write_key_file(&key, &keys::key_file_json(SA, &kp.pkcs1_pem)).expect("key");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[remote_access]\ntenant_id = \"{TENANT}\"\nkey_file = \"file:{}\"\nauth_url = \"{u}\"\napi_url = \"{u}\"\nca_bundle = \"{}\"\nbackoff_ms = 20\n",
            key.display(),
            sim.ca_cert.clone().expect("ca").display(),
            u = sim.url()
        ),
    )
    .expect("config");
    Env {
        rt,
        sim: Some(sim),
        dir,
        kp,
        config,
    }
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn vendor(first: &str, email: &str, phone: &str) -> String {
    format!(
        r#"{{"first_name":"{first}","last_name":"Doe","company":"Acme Inc.","email":"{email}","phone":"{phone}","applications":["Main DC/Linux SSH"],"access_days":30}}"#
    )
}

#[test]
fn onboard_and_offboard_from_a_json_lines_pipe() {
    let env = start();
    let input = format!(
        "{}\n{{\"first_name\": \"Broken\",\n{}\n",
        vendor("Jane", "jane.doe@acme.example", "+17035550100"),
        vendor("Bob", "bob@acme.example", "+17035550101")
    );
    let out = env
        .cmd()
        .args(["onboard", "-", "--json"])
        .write_stdin(input.clone())
        .assert()
        .code(65)
        .get_output()
        .clone();
    let results = lines(&out.stdout);
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0]["result"], "invited");
    assert_eq!(results[0]["line"], 1);
    assert_eq!(results[1]["result"], "invalid");
    assert_eq!(results[1]["line"], 2);
    assert!(
        results[1]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("line 2:")
    );
    assert_eq!(results[1]["error"]["kind"], "bad_data");
    assert_eq!(results[2]["result"], "invited");
    assert_eq!(results[2]["email"], "bob@acme.example");
    assert_eq!(env.invitation_ids().len(), 2);

    // The hook runs again (say, after fixing line 2): both vendors are skipped, exit 0.
    let fixed = format!(
        "{}\n{}\n",
        vendor("Jane", "jane.doe@acme.example", "+17035550100"),
        vendor("Bob", "bob@acme.example", "+17035550101")
    );
    let out = env
        .cmd()
        .args(["onboard", "-"])
        .write_stdin(fixed)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("skipped").count(), 2, "{text}");

    // Jane accepts; then she is offboarded from a pipe, twice.
    let jane = results[0]["invitation_id"]
        .as_str()
        .expect("id")
        .to_string();
    env.sim().state.remote_access.accept(&jane).expect("accept");
    let out = env
        .cmd()
        .args(["offboard", "-", "--json"])
        .write_stdin("{\"email\":\"jane.doe@acme.example\",\"first_name\":\"Jane\"}\n")
        .assert()
        .code(0)
        .get_output()
        .clone();
    let r = lines(&out.stdout);
    assert_eq!(r[0]["result"], "offboarded");
    assert_eq!(r[0]["changed"], true);
    assert_eq!(r[0]["actions"][0]["action"], "deactivate_vendor");
    let out = env
        .cmd()
        .args(["offboard", "--email", "jane.doe@acme.example"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nothing to change"), "{text}");
    assert!(text.contains("already done"), "{text}");
}

#[test]
fn the_shell_flow() {
    let env = start();
    let out = env
        .cmd()
        .args([
            "invite",
            "--first-name",
            "Jane",
            "--last-name",
            "Doe",
            "--company",
            "Acme Inc.",
            "--email",
            "jane.doe@acme.example",
            "--phone",
            "+1 703 555 0100",
            "--app",
            "Main DC/Linux SSH",
            "--days",
            "14",
            "--time-zone",
            "Europe/Berlin",
            "--allowed-day",
            "MONDAY",
            "--hours",
            "08:00-18:00",
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.starts_with("invited jane.doe@acme.example: invitation "),
        "{text}"
    );
    let id = env.invitation_ids().pop().expect("created");
    let stored = env.sim().state.remote_access.state()["invitations"][0].clone();
    assert_eq!(stored["phoneNumber"], "+17035550100");
    assert_eq!(
        stored["accessTimeDetails"]["workingHoursStartSeconds"],
        28800
    );

    let out = env
        .cmd()
        .args(["invitations", "list"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
    let out = env
        .cmd()
        .args(["invitations", "show", &id, "--json"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(
        lines(&out.stdout)[0]["email_address"],
        "jane.doe@acme.example"
    );

    // Unknown and ambiguous inputs are refused before anything is sent.
    env.cmd()
        .args([
            "invite",
            "--first-name",
            "X",
            "--last-name",
            "Y",
            "--company",
            "Z",
            "--email",
            "x@z.example",
            "--phone",
            "+17035550199",
            "--app",
            "Main DC/Telnet",
            "--days",
            "1",
        ])
        .assert()
        .code(65)
        .stdout(predicates::str::contains("Main DC/Telnet"));

    env.sim().state.remote_access.accept(&id).expect("accept");
    let out = env
        .cmd()
        .args(["vendors", "list", "--json"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let v = lines(&out.stdout);
    let vid = v[0]["id"].as_str().expect("id").to_string();
    assert_eq!(v[0]["status"], "Activated");
    env.cmd()
        .args(["vendors", "deactivate", &vid])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("deactivated"));
    env.cmd()
        .args(["vendors", "deactivate", &vid])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("already deactivated"));
    env.cmd()
        .args(["vendors", "show", "ffffffffffffffffffffffffffffffff"])
        .assert()
        .code(1);
    env.cmd()
        .args(["invitations", "revoke", &id])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("already gone"));
}

#[test]
fn the_key_never_shows_in_output_or_logs() {
    let env = start();
    let log = env.dir.path().join("ra.log");
    let out = env
        .cmd()
        .args(["-vvv", "--log-file"])
        .arg(&log)
        .args(["onboard", "-"])
        .write_stdin(vendor("Jane", "jane.doe@acme.example", "+17035550100"))
        .assert()
        .code(0)
        .get_output()
        .clone();
    let out2 = env
        .cmd()
        .args(["-vvv", "check"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let everything = format!(
        "{}{}{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out2.stdout),
        String::from_utf8_lossy(&out2.stderr),
        std::fs::read_to_string(&log).expect("log")
    );
    assert!(
        everything.contains("Remote Access"),
        "no logs at -vvv: {everything}"
    );
    let body: String = env
        .kp
        .pkcs1_pem
        .lines()
        .nth(5)
        .expect("a key line")
        .to_string();
    for secret in [
        body.as_str(),
        "PRIVATE KEY",
        "eyJhbGciOi",
        "client_assertion=",
        "Bearer ",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
    // The key is only ever read from the key file reference: no flag takes it.
    let help = env.cmd().arg("--help").output().expect("help");
    let help = String::from_utf8_lossy(&help.stdout).to_lowercase();
    assert!(!help.contains("--key"), "{help}");
}

#[test]
fn a_bad_key_file_is_a_configuration_error_naming_the_reference() {
    let env = start();
    let key = env.dir.path().join("sa.json");
    std::fs::remove_file(&key).expect("rm");
    keys::write_key_file(&key, "{\"serviceAccountId\":\"nope\",\"privateKey\":\"-----BEGIN RSA PRIVATE KEY-----SECRETBITS\"}").expect("w");
    let out = env
        .cmd()
        .arg("check")
        .assert()
        .code(78)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sa.json"), "{err}");
    assert!(!err.contains("SECRETBITS"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

/// The records sent so far (POSTs of invitations).
fn invitations_sent(env: &Env) -> usize {
    env.sim()
        .state
        .remote_access
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path.contains("vendor-invitations"))
        .count()
}

#[test]
fn a_hook_record_with_a_key_given_twice_is_refused() {
    let env = start();
    let twice = r#"{"first_name":"Jane","last_name":"Doe","company":"Acme Inc.","email":"jane.doe@acme.example","phone":"+17035550100","applications":["Main DC/Linux SSH"],"access_days":30,"email":"mallory@evil.example"}"#;
    let nested = r#"{"first_name":"Bob","last_name":"Doe","company":"Acme Inc.","email":"bob@acme.example","phone":"+17035550101","applications":["Main DC/Linux SSH"],"access_days":30,"access_time":{"time_zone":"UTC","from":"08:00","to":"18:00","to":"23:00"}}"#;
    let out = env
        .cmd()
        .args(["onboard", "-", "--json"])
        .write_stdin(format!("{twice}\n{nested}\n"))
        .assert()
        .code(65)
        .get_output()
        .clone();
    let r = lines(&out.stdout);
    assert_eq!(r[0]["result"], "invalid", "{r:?}");
    assert!(
        r[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("`email` is given twice"),
        "{r:?}"
    );
    assert_eq!(r[1]["result"], "invalid");
    assert!(
        r[1]["reason"]
            .as_str()
            .expect("reason")
            .contains("`access_time.to` is given twice"),
        "{r:?}"
    );
    assert_eq!(invitations_sent(&env), 0);
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(
        !all.contains("mallory@evil.example\",\"result\":\"invited"),
        "{all}"
    );
}

#[test]
fn names_that_display_otherwise_never_reach_the_invitation() {
    let env = start();
    for (n, bad) in ["\u{202E}", "\u{200B}", "\u{00AD}", "\u{2028}"]
        .iter()
        .enumerate()
    {
        let record = serde_json::json!({
            "first_name": format!("Jane{bad}"), "last_name": "Doe", "company": "Acme Inc.",
            "email": format!("jane{n}@acme.example"), "phone": format!("+1703555010{n}"),
            "applications": ["Main DC/Linux SSH"], "access_days": 30,
        });
        let out = env
            .cmd()
            .args(["onboard", "-", "--json"])
            .write_stdin(record.to_string())
            .assert()
            .code(65)
            .get_output()
            .clone();
        let r = lines(&out.stdout);
        let reason = r[0]["reason"].as_str().expect("reason");
        assert!(reason.contains("first_name"), "{reason}");
        assert!(
            reason.contains(&format!(
                "U+{:04X}",
                u32::from(bad.chars().next().expect("c"))
            )),
            "{reason}"
        );
        // The command line too.
        env.cmd()
            .args([
                "invite",
                "--first-name",
                "Jane",
                "--last-name",
                &format!("Doe{bad}"),
                "--company",
                "Acme",
                "--email",
                "j@acme.example",
                "--phone",
                "+17035550100",
                "--app",
                "Main DC/Linux SSH",
                "--days",
                "3",
            ])
            .assert()
            .code(65)
            .stdout(predicates::str::contains("last_name"));
    }
    assert_eq!(invitations_sent(&env), 0);
}

#[test]
fn auth_url_may_be_the_access_token_url_of_the_integration_document() {
    let env = start();
    let text = std::fs::read_to_string(&env.config).expect("config");
    let u = env.sim().url();
    let text = text.replacen(
        &format!("auth_url = \"{u}\""),
        &format!("auth_url = \"{u}/auth/realms/serviceaccounts/protocol/openid-connect/token\""),
        1,
    );
    std::fs::write(&env.config, &text).expect("write");
    let out = env
        .cmd()
        .args(["check", "--json"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let v = &lines(&out.stdout)[0];
    assert_eq!(
        v["token_url"],
        format!("{u}/auth/realms/serviceaccounts/protocol/openid-connect/token")
    );
    assert_eq!(v["realm"], format!("{u}/auth/realms/serviceaccounts"));
    // A path that can only 404 is refused at load, naming the key and the form expected.
    std::fs::write(
        &env.config,
        text.replace("openid-connect/token", "openid-connect/auth"),
    )
    .expect("write");
    let out = env
        .cmd()
        .arg("check")
        .assert()
        .code(78)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("remote_access.auth_url") && err.contains("protocol/openid-connect/token"),
        "{err}"
    );
}

#[test]
fn a_date_only_end_keeps_the_last_day() {
    let env = start();
    let today = chrono::Utc::now().date_naive();
    let record = serde_json::json!({
        "first_name": "Jane", "last_name": "Doe", "company": "Acme Inc.",
        "email": "jane.doe@acme.example", "phone": "+17035550100",
        "applications": ["Main DC/Linux SSH"], "access_end": today.format("%Y-%m-%d").to_string(),
    });
    // Ending today: the vendor still has the rest of today (UTC by default).
    env.cmd()
        .args(["onboard", "-"])
        .write_stdin(record.to_string())
        .assert()
        .code(0)
        .stdout(predicates::str::contains("invited"));
    let end_of_today = today
        .succ_opt()
        .expect("tomorrow")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis()
        - 1;
    let stored = env.sim().state.remote_access.state()["invitations"][0].clone();
    assert_eq!(stored["accessEndDate"], end_of_today);
    // In a configured zone: the end of that day there.
    let text = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!("{text}date_time_zone = \"Pacific/Auckland\"\n"),
    )
    .expect("write");
    env.cmd()
        .args([
            "invite",
            "--first-name",
            "Bob",
            "--last-name",
            "Roe",
            "--company",
            "Acme",
            "--email",
            "bob@acme.example",
            "--phone",
            "+17035550101",
            "--app",
            "Main DC/Linux SSH",
            "--start",
            "2099-01-10",
            "--end",
            "2099-01-31",
        ])
        .assert()
        .code(0);
    let inv = env.sim().state.remote_access.state()["invitations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|i| i["emailAddress"] == "bob@acme.example")
        .cloned()
        .expect("bob");
    // Auckland is UTC+13 in January.
    assert_eq!(
        inv["accessStartDate"],
        4_071_686_400_000_i64 - 13 * 3_600_000
    );
    assert_eq!(
        inv["accessEndDate"],
        4_073_587_200_000_i64 - 13 * 3_600_000 - 1
    );
}

#[test]
fn an_expired_invitation_is_listed_as_expired_and_replaced_on_onboarding() {
    let env = start();
    let record = vendor("Jane", "jane.doe@acme.example", "+17035550100");
    env.cmd()
        .args(["onboard", "-"])
        .write_stdin(record.clone())
        .assert()
        .code(0);
    let old = env.invitation_ids().pop().expect("id");
    assert!(
        env.sim()
            .state
            .remote_access
            .expire(&old, chrono::Utc::now().timestamp_millis())
    );
    let out = env
        .cmd()
        .args(["invitations", "list"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&old) && text.contains(" expired 2"), "{text}");
    assert!(!text.contains("expires"), "{text}");
    let out = env
        .cmd()
        .args(["invitations", "list", "--json"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(lines(&out.stdout)[0]["expired"], true);
    // The hook runs again for the approved vendor: a new invitation, the expired one revoked.
    let out = env
        .cmd()
        .args(["onboard", "-", "--json"])
        .write_stdin(record)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let r = &lines(&out.stdout)[0];
    assert_eq!(r["result"], "invited", "{r}");
    assert_eq!(r["revoked_invitations"][0], old.as_str());
    let ids = env.invitation_ids();
    assert_eq!(ids.len(), 1);
    assert_ne!(ids[0], old);
    env.sim()
        .state
        .remote_access
        .accept(&ids[0])
        .expect("accept");
}

#[test]
fn a_returning_deactivated_vendor_is_reactivated() {
    let env = start();
    let record = vendor("Jane", "jane.doe@acme.example", "+17035550100");
    env.cmd()
        .args(["onboard", "-"])
        .write_stdin(record.clone())
        .assert()
        .code(0);
    let id = env.invitation_ids().pop().expect("id");
    env.sim().state.remote_access.accept(&id).expect("accept");
    env.cmd()
        .args(["offboard", "--email", "jane.doe@acme.example"])
        .assert()
        .code(0);
    let out = env
        .cmd()
        .args(["onboard", "-", "--json"])
        .write_stdin(record)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let r = &lines(&out.stdout)[0];
    assert_eq!(r["result"], "reactivated", "{r}");
    let state = env.sim().state.remote_access.state();
    assert_eq!(state["vendors"][0]["status"], "Activated");
}

#[test]
fn offboarding_an_unknown_address_exits_1_and_says_not_found() {
    let env = start();
    env.cmd()
        .args(["onboard", "-"])
        .write_stdin(vendor("Jane", "jane.doe@acme.example", "+17035550100"))
        .assert()
        .code(0);
    let out = env
        .cmd()
        .args(["offboard", "-", "--json"])
        .write_stdin("{\"email\":\"jane.deo@acme.example\"}\n")
        .assert()
        .code(1)
        .get_output()
        .clone();
    let r = &lines(&out.stdout)[0];
    assert_eq!(r["result"], "not_found", "{r}");
    assert_eq!(r["error"]["kind"], "refused");
    let out = env
        .cmd()
        .args(["offboard", "--email", "jane.deo@acme.example"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not found"), "{text}");
    // --keep-account revokes the invitation only; the real address is found.
    env.cmd()
        .args([
            "offboard",
            "--keep-account",
            "--email",
            "jane.doe@acme.example",
        ])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("revoke invitation"));
    assert!(env.invitation_ids().is_empty());
    env.cmd()
        .args([
            "offboard",
            "--keep-account",
            "--delete",
            "--email",
            "jane.doe@acme.example",
        ])
        .assert()
        .code(2);
}

#[test]
fn every_offboard_flag_has_a_help_line() {
    let env = start();
    let out = env
        .cmd()
        .args(["offboard", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--dry-run", "--delete", "--keep-account", "--email"] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} missing: {help}"));
        let described = line.trim_start().len() > flag.len() + 12
            || help
                .lines()
                .skip_while(|l| !l.trim_start().starts_with(flag))
                .nth(1)
                .is_some_and(|next| !next.trim().is_empty() && !next.trim_start().starts_with('-'));
        assert!(described, "{flag} has no help text:\n{help}");
    }
}

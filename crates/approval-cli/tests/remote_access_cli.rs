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

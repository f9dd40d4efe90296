//! The cyberark.pas Ansible collection (shipped in the `ansible` package), an independent
//! CyberArk client, at its default settings against the PVWA stand-in: logon, an account
//! look-up pam-sim does not model, logoff. Certificates are verified (the module's default
//! `validate_certs: true`, with the test CA as the trusted bundle). The collection keeps no
//! load-balancer cookie, so this also checks that stickiness is off by default; and a path
//! pam-sim does not model must make the module fail, not read as "no such account".
//!
//! Needs the test venv (`$PAMTEST_VENV`, made by scripts/install-test-deps.sh). Without it the
//! test says so and passes, unless `PAMTEST_REQUIRE_SERVERS=1`.

#[path = "support/venv.rs"]
mod venv;

use pam_sim::{Scenario, Sim, SimOptions};

const SCENARIO: &str = r#"
[pvwa]
[[pvwa.users]]
name = "svc_ansible"
password = "pw-ansible"
groups = ["Infra_L1"]
[[pvwa.safes]]
name = "InfraSafe"
members = [{ name = "Infra_L1", level1 = true }]
"#;

const PLAYBOOK: &str = r#"
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: logon
      cyberark.pas.cyberark_authentication:
        api_base_url: "{{ pvwa_url }}"
        username: svc_ansible
        password: pw-ansible
    - name: an account look-up pam-sim does not model
      cyberark.pas.cyberark_account:
        cyberark_session: "{{ cyberark_session }}"
        identified_by: address,username
        safe: InfraSafe
        address: web01.example.test
        username: root
        platform_id: UnixSSH
        state: retrieve
      register: found_account
      ignore_errors: true
    - name: the look-up failed and says why
      ansible.builtin.assert:
        that:
          - found_account is failed
          - "'501' in (found_account.msg | default(''))"
        fail_msg: "the account look-up did not fail on a path pam-sim does not model: {{ found_account }}"
    - name: logoff
      cyberark.pas.cyberark_authentication:
        cyberark_session: "{{ cyberark_session }}"
        state: absent
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_ansible_collection_logs_on_and_off_at_its_defaults() {
    let Some(playbook_bin) = venv::program("ansible-playbook", "Ansible conformance") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Sim::start(
        Scenario::from_toml(SCENARIO).expect("scenario"),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("pam-sim starts");
    let playbook = dir.path().join("flow.yml");
    std::fs::write(&playbook, PLAYBOOK).expect("playbook");
    let home = dir.path().join("ansible-home");
    let out = tokio::process::Command::new(&playbook_bin)
        .arg("-i")
        .arg("localhost,")
        .arg("-e")
        .arg(format!("pvwa_url={}", sim.url().trim_end_matches('/')))
        .arg(&playbook)
        // The trusted bundle: the test CA (the module verifies certificates by default).
        .env("SSL_CERT_FILE", sim.ca_cert.as_ref().expect("https"))
        .env("ANSIBLE_HOME", &home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .output()
        .await
        .expect("ansible-playbook runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the playbook failed:\n{stdout}\n{stderr}"
    );
    // Four tasks through, one of them (the look-up) a failure let through.
    assert!(
        stdout.contains("ok=4") && stdout.contains("failed=0") && stdout.contains("ignored=1"),
        "{stdout}"
    );
    let stats = sim.state.pvwa.stats();
    assert_eq!(
        (stats.logons, stats.logoffs, stats.open),
        (1, 1, 0),
        "{stdout}"
    );
    assert_eq!(stats.cookie_refused, 0);
    assert!(sim.state.pvwa.actions().is_empty());
}

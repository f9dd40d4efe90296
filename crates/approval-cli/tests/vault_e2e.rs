//! End to end: `get-inco-req` against pam-sim's PVWA, with the lookup account's password read
//! from a real OpenBao (scripts/start-openbao.sh) — by AppRole, by VAULT_TOKEN, and failing.
//! At `-vvv` nothing secret may reach stderr or stdout: not the password, not the secret-id,
//! not a Vault token, not the PVWA session token.

#[path = "../../approval-core/tests/support/openbao.rs"]
mod openbao;

use std::path::Path;
use std::process::Output;

use openbao::{OpenBao, assert_no_secret};
use pam_sim::{Scenario, Sim, SimOptions};

/// pam-sim with the demo scenario, the lookup account's password replaced by OpenBao's.
async fn sim(tmp: &Path, lookup_password: &str) -> Sim {
    let text = std::fs::read_to_string(openbao::repo().join("examples/demo/scenario.toml"))
        .expect("demo scenario");
    assert!(text.contains("Lookup-Demo-Pass"));
    let text = text.replace("Lookup-Demo-Pass", lookup_password);
    Sim::start(
        Scenario::from_toml(&text).expect("scenario"),
        SimOptions {
            tls_dir: Some(tmp.join("sim-tls")),
            ..Default::default()
        },
    )
    .await
    .expect("pam-sim")
}

fn config(tmp: &Path, sim: &Sim, vault: &str) -> std::path::PathBuf {
    let path = tmp.join("config.toml");
    let text = format!(
        "[pvwa]\nurl = \"{}\"\nca_bundle = \"{}\"\nretries = 0\n\n\
         [accounts.lookup]\nusername = \"svc_pam_lookup\"\npassword = \"vault:secret/pamtool/lookup#password\"\n\n\
         [vault]\n{vault}",
        sim.url(),
        sim.ca_cert.as_ref().expect("sim CA").display(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Run get-inco-req with a clean environment plus `env`.
async fn get_inco_req(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_get-inco-req"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args)
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("run get-inco-req"))
        .await
        .expect("join")
}

/// Nothing secret in either stream, nor anything shaped like a PVWA session token (pam-sim's
/// are 200 letters and digits).
fn assert_clean(out: &Output, secrets: &[String]) {
    for text in [
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
    ] {
        assert_no_secret(&text, secrets);
        let mut run = 0;
        for c in text.chars() {
            run = if c.is_ascii_alphanumeric() {
                run + 1
            } else {
                0
            };
            assert!(
                run < 100,
                "something shaped like a session token leaked: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_inco_req_reads_the_password_from_openbao_by_approle_and_logs_no_secret() {
    let Some(bao) = OpenBao::start(true) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let password = bao.seeded("lookup", "password");
    let sim = sim(tmp.path(), &password).await;
    let cfg = config(tmp.path(), &sim, &bao.vault_toml("pamtool"));

    let out = get_inco_req(
        &[
            "-vvv",
            "--config",
            cfg.to_str().expect("utf-8"),
            "InfraSafe_12",
        ],
        &[],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("InfraSafe_12"), "{stdout}");
    assert!(stdout.contains("alice"), "{stdout}");
    // -vvv really logged, including the Vault steps.
    assert!(stderr.contains("DEBUG"), "{stderr}");
    assert!(stderr.contains("Vault AppRole login ok"), "{stderr}");
    assert_clean(&out, &bao.secrets());

    let stats = sim.state.pvwa.stats();
    assert_eq!(
        (stats.logons, stats.logoffs, stats.open, stats.failed_logons),
        (1, 1, 0, 0),
        "{stats:?}"
    );
    assert_eq!(
        bao.live_approle_tokens("pamtool"),
        0,
        "the run's Vault token is revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_inco_req_with_vault_token_from_the_environment() {
    let Some(bao) = OpenBao::start(false) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = sim(tmp.path(), &bao.seeded("lookup", "password")).await;
    let cfg = config(
        tmp.path(),
        &sim,
        &format!("addr = \"{}\"\nauth = \"token\"\n", bao.addr),
    );
    let token = bao.read("token");
    let out = get_inco_req(
        &[
            "-vvv",
            "--json",
            "--config",
            cfg.to_str().expect("utf-8"),
            "InfraSafe_13",
        ],
        &[("VAULT_TOKEN", &token)],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(v["request_id"], "InfraSafe_13", "{v}");
    assert_clean(&out, &bao.secrets());
    // Not ours: still valid after the run.
    let body = serde_json::json!({ "token": token }).to_string();
    assert_eq!(bao.root("POST", "auth/token/lookup", Some(&body)).0, 200);

    // Without the variable: a configuration error naming what to set.
    let out = get_inco_req(
        &["--config", cfg.to_str().expect("utf-8"), "InfraSafe_13"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("VAULT_TOKEN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_exits_77_and_a_vault_that_is_down_exits_69() {
    let Some(mut bao) = OpenBao::start(false) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = sim(tmp.path(), &bao.seeded("lookup", "password")).await;
    let wrong = tmp.path().join("wrong-secret-id");
    std::fs::write(&wrong, "11111111-2222-3333-4444-555555555555").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let vault = bao.vault_toml("pamtool").replace(
        &bao.secret_id_file("pamtool").display().to_string(),
        &wrong.display().to_string(),
    );
    let cfg = config(tmp.path(), &sim, &vault);
    let args = [
        "-vvv",
        "--json",
        "--config",
        cfg.to_str().expect("utf-8"),
        "InfraSafe_12",
    ];

    let out = get_inco_req(&args, &[]).await;
    assert_eq!(out.status.code(), Some(77), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last: serde_json::Value =
        serde_json::from_str(stderr.lines().last().expect("error line")).expect("JSON error");
    assert_eq!(last["error"]["kind"], "permission", "{last}");
    assert!(
        last["error"]["message"]
            .as_str()
            .expect("message")
            .contains("AppRole login refused"),
        "{last}"
    );
    let mut secrets = bao.secrets();
    secrets.push("11111111-2222-3333-4444-555555555555".into());
    assert_clean(&out, &secrets);
    assert_eq!(
        sim.state.pvwa.stats().logons,
        0,
        "no PVWA logon without a password"
    );

    bao.stop();
    let cfg = config(tmp.path(), &sim, &bao.vault_toml("pamtool"));
    let args = ["--config", cfg.to_str().expect("utf-8"), "InfraSafe_12"];
    let out = get_inco_req(&args, &[]).await;
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Vault/OpenBao unavailable"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert_clean(&out, &bao.secrets());
}

/// `first-level-approve` whose password reference cannot be resolved (no such secret in
/// OpenBao): the run fails, and its Vault token is revoked all the same (the single-request
/// tools close the Vault session on every path, as the watcher does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_that_cannot_be_read_still_closes_the_vault_session() {
    let Some(bao) = OpenBao::start(true) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let password = bao.seeded("lookup", "password");
    let sim = sim(tmp.path(), &password).await;
    let path = tmp.path().join("approve.toml");
    std::fs::write(
        &path,
        format!(
            "[pvwa]\nurl = \"{}\"\nca_bundle = \"{}\"\nretries = 0\n\n\
             [accounts.level1]\nusername = \"svc_pam_level1\"\npassword = \"vault:secret/pamtool/no-such-secret#password\"\n\n\
             [vault]\n{}",
            sim.url(),
            sim.ca_cert.as_ref().expect("sim CA").display(),
            bao.vault_toml("pamtool"),
        ),
    )
    .expect("write config");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_first-level-approve"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--config", path.to_str().expect("utf-8"), "InfraSafe_12"])
        .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no-such-secret"), "{stderr}");
    assert_clean(&out, &bao.secrets());
    let stats = sim.state.pvwa.stats();
    assert_eq!((stats.logons, stats.open), (0, 0), "{stats:?}");
    assert!(sim.state.pvwa.actions().is_empty(), "nothing confirmed");
    assert_eq!(
        bao.live_approle_tokens("pamtool"),
        0,
        "the run's Vault token is revoked although its credential failed"
    );
}

// The single-request tools' suite (included by pvwa_tools.rs for a self-hosted PVWA and by
// pvwa_tools_privilege_cloud.rs for Privilege Cloud; `SUITE_PVWA` names the mode).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use pam_sim::pvwa::PvwaMode;
use pam_sim::{Scenario, Sim, SimOptions};

const SCENARIO: &str = include_str!("../../../../examples/demo/scenario.toml");

struct Env {
    sim: Sim,
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, value).expect("write secret");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    p
}

async fn start() -> Env {
    start_with(|_| {}).await
}

/// [`start`] on the demo scenario as `edit` changes it.
async fn start_with(edit: impl FnOnce(&mut Scenario)) -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let mut scenario = Scenario::from_toml(SCENARIO).expect("scenario");
    scenario.pvwa.mode = SUITE_PVWA;
    edit(&mut scenario);
    let sim = Sim::start(
        scenario,
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..Default::default()
        },
    )
    .await
    .expect("sim");
    let l1 = secret_file(dir.path(), "l1", "Level1-Demo-Pass\n");
    let l2 = secret_file(dir.path(), "l2", "Level2-Demo-Pass\n");
    let lk = secret_file(dir.path(), "lk", "Lookup-Demo-Pass\n");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[pvwa]
url = "{url}"
{sign_in}
ca_bundle = "{ca}"
backoff_ms = 10
[accounts.level1]
username = "svc_pam_level1"
password = "file:{l1}"
[accounts.level2]
username = "svc_pam_level2"
password = "file:{l2}"
[accounts.lookup]
username = "svc_pam_lookup"
password = "file:{lk}"
"#,
            url = sim.url(),
            sign_in = sign_in(&sim),
            ca = sim.ca_cert.as_ref().expect("ca").display(),
            l1 = l1.display(),
            l2 = l2.display(),
            lk = lk.display()
        ),
    )
    .expect("config");
    Env { sim, dir, config }
}

/// How the suite's accounts sign in: a PVWA logon, or on Privilege Cloud an Identity token
/// (pam-sim plays the Identity tenant on the same address).
fn sign_in(sim: &Sim) -> String {
    match SUITE_PVWA {
        PvwaMode::SelfHosted => "auth_method = \"ldap\"".into(),
        PvwaMode::PrivilegeCloud => format!(
            "auth_method = \"identity\"\nidentity_url = \"{}\"",
            sim.url()
        ),
    }
}

/// Every run signed in and, on a self-hosted PVWA, logged off again; on Privilege Cloud no
/// logon at all, one Identity token per run.
fn assert_signed_in_and_out(env: &Env, runs: u64) {
    let st = env.sim.state.pvwa.stats();
    match SUITE_PVWA {
        PvwaMode::SelfHosted => {
            assert_eq!((st.logons, st.logoffs), (runs, runs), "{st:?}");
        }
        PvwaMode::PrivilegeCloud => {
            assert_eq!((st.logons, st.logoffs), (0, 0), "{st:?}");
            assert_eq!(st.platform_tokens, runs, "{st:?}");
        }
    }
}

fn bin(name: &str) -> PathBuf {
    assert_cmd::cargo::cargo_bin(name)
}

/// Run a tool with the env's config (blocking: the simulator runs on other runtime threads).
async fn tool(env: &Env, name: &str, args: &[&str], stdin: &str) -> Output {
    let mut cmd = std::process::Command::new(bin(name));
    cmd.args(args)
        .env("APPROVAL_CONFIG", &env.config)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let input = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().expect("spawn");
        let mut sin = child.stdin.take().expect("stdin");
        sin.write_all(input.as_bytes()).expect("write stdin");
        drop(sin);
        child.wait_with_output().expect("wait")
    })
    .await
    .expect("join")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_level_one_then_two_and_look_up_who_confirmed() {
    let env = start().await;
    let o = tool(
        &env,
        "first-level-approve",
        &["InfraSafe_12", "--on-behalf-of", "bob@example.test"],
        "",
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("confirmed InfraSafe_12 at level 1 as svc_pam_level1"),
        "{}",
        out(&o)
    );

    let o = tool(&env, "get-inco-req", &["InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("Level:          2 (1 confirmation(s) left"),
        "{text}"
    );
    assert!(
        text.contains("PAM_Infra_Approvers [svc_pam_level1] acted at"),
        "{text}"
    );
    assert!(
        text.contains("UTC): Approved on behalf of bob@example.test"),
        "{text}"
    );

    let o = tool(
        &env,
        "second-level-approve",
        &["InfraSafe_12", "--on-behalf-of", "carol@example.test"],
        "",
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));

    let o = tool(&env, "get-inco-req", &["--json", "InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_str(out(&o).trim()).expect("one JSON object");
    assert_eq!(v["request_id"], "InfraSafe_12");
    assert_eq!(v["status_title"], "Confirmed");
    let by = v["confirmed_by"].as_array().expect("confirmed_by");
    assert_eq!(by.len(), 2);
    assert_eq!(by[0]["members"][0], "svc_pam_level1");
    assert_eq!(by[1]["reason"], "Approved on behalf of carol@example.test");
    assert!(by[1]["time"]["utc"].as_str().expect("utc").ends_with('Z'));
    assert!(by[1]["time"]["local"].as_str().is_some());

    let actions = env.sim.state.pvwa.actions();
    assert_eq!(
        actions
            .iter()
            .map(|a| (a.level, a.user.as_str()))
            .collect::<Vec<_>>(),
        [(1, "svc_pam_level1"), (2, "svc_pam_level2")]
    );
    // first-level-approve, get-inco-req, second-level-approve, get-inco-req --json.
    assert_signed_in_and_out(&env, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_list_pipes_through_jq_into_first_level_approve() {
    let env = start().await;
    if std::process::Command::new("jq")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("PAMTEST_REQUIRE_SERVERS").is_none(),
            "jq is required (scripts/install-test-deps.sh)"
        );
        eprintln!("skipping: jq is not installed");
        return;
    }
    // PVWA's list items carry no account properties: the listing reads each request, so the
    // account and its address are shown.
    let o = tool(&env, "get-inco-req", &["--waiting", "--level", "1", "--json"], "").await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let listed = out(&o);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    for l in listed.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
        assert!(
            v["account"].as_str().is_some_and(|a| !a.is_empty())
                && v["address"].as_str().is_some_and(|a| !a.is_empty()),
            "{v}"
        );
    }
    let script = format!(
        "'{}' --waiting --level 1 --json | jq -r .request_id | '{}' - --json --reason 'batch from pipeline'",
        bin("get-inco-req").display(),
        bin("first-level-approve").display()
    );
    let config = env.config.clone();
    let o = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-o", "pipefail", "-c", &script])
            .env("APPROVAL_CONFIG", config)
            .output()
            .expect("bash")
    })
    .await
    .expect("join");
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let lines: Vec<serde_json::Value> = out(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .map(|v| v["request_id"].as_str().expect("id"))
        .collect();
    // Level-1 waiting requests the level-1 account may confirm: both InfraSafe ones and DBSafe_7,
    // not the expired InfraSafe_14.
    assert_eq!(ids, ["DBSafe_7", "InfraSafe_12", "InfraSafe_13"]);
    assert!(lines.iter().all(|v| v["outcome"] == "confirmed"));
    assert_eq!(env.sim.state.pvwa.actions().len(), 3);
    assert!(
        env.sim
            .state
            .pvwa
            .actions()
            .iter()
            .all(|a| a.reason == "batch from pipeline")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_confirms_exit_1_and_show_who_confirmed_and_when() {
    let env = start().await;
    assert_eq!(
        tool(&env, "first-level-approve", &["InfraSafe_13"], "")
            .await
            .status
            .code(),
        Some(0)
    );
    // Already confirmed.
    let o = tool(&env, "first-level-approve", &["InfraSafe_13"], "").await;
    assert_eq!(o.status.code(), Some(1));
    let text = out(&o);
    assert!(text.contains("FAILED InfraSafe_13 at level 1"), "{text}");
    assert!(text.contains("Status:         Confirmed"), "{text}");
    assert!(
        text.contains("PAM_Infra_Approvers [svc_pam_level1] acted at"),
        "{text}"
    );
    // Expired, in JSON.
    let o = tool(&env, "first-level-approve", &["--json", "InfraSafe_14"], "").await;
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(out(&o).trim()).expect("json");
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["request"]["expired"], true);
    assert!(v["request"]["expires"]["utc"].is_string());
    assert_eq!(v["error"]["kind"], "refused");
    // The level-2 account on a request at level 1: refused before any confirm is sent
    // (PVWA would record it at level 1 if the account were a level-1 confirmer too).
    let o = tool(&env, "second-level-approve", &["DBSafe_7"], "").await;
    assert_eq!(o.status.code(), Some(65));
    assert!(
        out(&o).contains("waits at confirmation level 1, not 2"),
        "{}",
        out(&o)
    );
    // Dry run confirms nothing.
    let before = env.sim.state.pvwa.actions().len();
    let o = tool(
        &env,
        "first-level-approve",
        &["--dry-run", "InfraSafe_12"],
        "",
    )
    .await;
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out(&o).contains("would confirm InfraSafe_12 at level 1"),
        "{}",
        out(&o)
    );
    assert_eq!(env.sim.state.pvwa.actions().len(), before);
    // A malformed id from stdin is bad data; the good one is still confirmed.
    let o = tool(
        &env,
        "first-level-approve",
        &["-"],
        "bad+id\nInfraSafe_12\n",
    )
    .await;
    assert_eq!(o.status.code(), Some(65), "{}", out(&o));
    assert!(out(&o).contains("confirmed InfraSafe_12"), "{}", out(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvwa_down_exits_69_and_bad_config_exits_78_naming_the_key() {
    let env = start().await;
    let config = std::fs::read_to_string(&env.config).expect("read");
    // Down.
    let down = config
        .replace(&env.sim.url(), "https://127.0.0.1:9")
        .replace("backoff_ms = 10", "backoff_ms = 10\nretries = 1");
    std::fs::write(&env.config, &down).expect("write");
    let o = tool(&env, "get-inco-req", &["InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(69), "{}", err(&o));
    assert!(err(&o).contains("unreachable"), "{}", err(&o));
    if SUITE_PVWA == PvwaMode::PrivilegeCloud {
        // The first call goes to the Identity tenant, and the error says so.
        assert!(
            err(&o).contains("CyberArk Identity at https://127.0.0.1:9/oauth2/platformtoken"),
            "{}",
            err(&o)
        );
    }
    // Unknown key.
    std::fs::write(
        &env.config,
        config.replace("backoff_ms = 10", "backoff_ms = 10\ntimeout = 5"),
    )
    .expect("write");
    let o = tool(&env, "first-level-approve", &["InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(78));
    assert!(err(&o).contains("key `pvwa.timeout`"), "{}", err(&o));
    assert!(
        err(&o).contains(env.config.to_str().expect("utf8")),
        "{}",
        err(&o)
    );
    // The same as JSON on stderr.
    let o = tool(&env, "first-level-approve", &["--json", "InfraSafe_12"], "").await;
    let v: serde_json::Value = serde_json::from_str(err(&o).trim()).expect("json error");
    assert_eq!(v["error"]["kind"], "config");
    assert_eq!(v["error"]["exit"], 78);
    // A world-readable password file is a config error naming the reference.
    std::fs::write(&env.config, &config).expect("write");
    let l1 = env.dir.path().join("l1");
    std::fs::set_permissions(&l1, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = tool(&env, "first-level-approve", &["InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(78));
    assert!(err(&o).contains("chmod 600"), "{}", err(&o));
    assert!(!err(&o).contains("Level1-Demo-Pass"));
    // Wrong password: 77.
    std::fs::write(&l1, "not-the-password").expect("write");
    std::fs::set_permissions(&l1, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let o = tool(&env, "first-level-approve", &["InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(77), "{}", err(&o));
    assert!(!err(&o).contains("not-the-password"));
    if SUITE_PVWA == PvwaMode::PrivilegeCloud {
        assert!(
            err(&o).contains("refused the token request of svc_pam_level1")
                && err(&o).contains("OAuth confidential client"),
            "{}",
            err(&o)
        );
    }
    assert!(env.sim.state.pvwa.actions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_session_token_or_cookie_at_any_verbosity() {
    let env = start().await;
    let mut runs = Vec::new();
    for v in ["-q", "-v", "-vv", "-vvv"] {
        runs.push((
            v,
            tool(&env, "get-inco-req", &[v, "InfraSafe_12"], "").await,
        ));
    }
    runs.push((
        "-vvv",
        tool(
            &env,
            "first-level-approve",
            &["-vvv", "InfraSafe_12", "--on-behalf-of", "bob@example.test"],
            "",
        )
        .await,
    ));
    // Fails (already acted): the error path at full verbosity.
    runs.push((
        "-vvv",
        tool(&env, "first-level-approve", &["-vvv", "InfraSafe_12"], "").await,
    ));
    let tokens = env.sim.state.pvwa.issued_tokens();
    let cookies = env.sim.state.pvwa.issued_cookies();
    // A session token (and a stickiness cookie) per run; on Privilege Cloud an Identity token.
    let cookies_per_run = usize::from(SUITE_PVWA == PvwaMode::SelfHosted);
    assert_eq!(
        (tokens.len(), cookies.len()),
        (runs.len(), cookies_per_run * runs.len()),
        "one sign-in per run: {}",
        runs.iter()
            .map(|(_, o)| err(o))
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    let mut saw = std::collections::BTreeSet::new();
    for (v, o) in &runs {
        let all = format!("{}{}", out(o), err(o));
        for (level, tag) in [("debug", "DEBUG"), ("trace", "TRACE")] {
            if all.contains(tag) {
                saw.insert((*v, level));
            }
        }
        for secret in ["Level1-Demo-Pass", "Lookup-Demo-Pass"] {
            assert!(!all.contains(secret), "{v}: password leaked:\n{all}");
        }
        for t in &tokens {
            assert!(
                !all.contains(t.as_str()),
                "{v}: session token leaked:\n{all}"
            );
        }
        for c in &cookies {
            let value = c.split_once('=').map_or(c.as_str(), |(_, v)| v);
            assert!(!all.contains(value), "{v}: cookie {c} leaked:\n{all}");
        }
        assert!(
            !all.to_ascii_lowercase().contains("set-cookie"),
            "{v}: a Set-Cookie header was logged:\n{all}"
        );
    }
    assert!(saw.contains(&("-vv", "debug")), "-vv gives debug: {saw:?}");
    assert!(
        !saw.contains(&("-vv", "trace")),
        "-vv is not trace: {saw:?}"
    );
    assert!(
        saw.contains(&("-vvv", "trace")),
        "-vvv adds trace detail: {saw:?}"
    );
}

/// Run a tool with the env's config and extra environment variables.
async fn tool_with_env(env: &Env, name: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(bin(name));
    cmd.args(args)
        .env("APPROVAL_CONFIG", &env.config)
        .env_remove("RUST_LOG")
        .envs(vars.iter().copied())
        .stdin(std::process::Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join")
}

/// `RUST_LOG` opens the HTTP, TLS and cookie crates' own debug and trace lines, which print raw
/// headers: the session cookie, the token, the password still never reach stderr or the log file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_session_token_or_cookie_whatever_rust_log_says() {
    let env = start().await;
    let log = env.dir.path().join("tools.log");
    let log_s = log.display().to_string();
    let mut runs = Vec::new();
    for filter in ["trace", "debug", "reqwest=trace,hyper=trace,hyper_util=trace,cookie_store=trace"] {
        for v in [&[][..], &["-vvv"][..]] {
            let mut args = v.to_vec();
            args.push("InfraSafe_12");
            let o = tool_with_env(&env, "get-inco-req", &args, &[("RUST_LOG", filter)]).await;
            assert_eq!(o.status.code(), Some(0), "{filter}: {}", err(&o));
            runs.push((filter, err(&o) + &out(&o)));
        }
        let o = tool_with_env(
            &env,
            "get-inco-req",
            &["--log-file", &log_s, "InfraSafe_12"],
            &[("RUST_LOG", filter)],
        )
        .await;
        assert_eq!(o.status.code(), Some(0), "{filter}: {}", err(&o));
        runs.push((filter, err(&o) + &out(&o)));
    }
    let o = tool_with_env(
        &env,
        "first-level-approve",
        &["InfraSafe_12", "--on-behalf-of", "bob@example.test"],
        &[("RUST_LOG", "trace")],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    runs.push(("trace", err(&o) + &out(&o)));
    runs.push((
        "log file",
        std::fs::read_to_string(&log).expect("the log file was written"),
    ));
    let tokens = env.sim.state.pvwa.issued_tokens();
    let cookies = env.sim.state.pvwa.issued_cookies();
    assert!(!tokens.is_empty());
    let mut debug_lines = 0;
    for (filter, all) in &runs {
        debug_lines += all.matches("DEBUG").count() + all.matches("TRACE").count();
        for secret in ["Level1-Demo-Pass", "Lookup-Demo-Pass"] {
            assert!(!all.contains(secret), "{filter}: password leaked:\n{all}");
        }
        for t in &tokens {
            assert!(
                !all.contains(t.as_str()),
                "{filter}: session token leaked:\n{all}"
            );
        }
        for c in &cookies {
            let value = c.split_once('=').map_or(c.as_str(), |(_, v)| v);
            assert!(!all.contains(value), "{filter}: cookie {c} leaked:\n{all}");
        }
    }
    // RUST_LOG still works: the debug and trace lines are there, only the secrets are not.
    assert!(debug_lines > 0, "RUST_LOG=trace gave no debug line");
}

/// A request waiting at the other level is not confirmed: PVWA would record the confirmation
/// at the level the request is at, not the tool's. Here the level-1 account is also in the
/// level-2 group (a service account put into the people's groups), so PVWA would take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_at_the_other_level_is_not_confirmed_and_what_pvwa_recorded_is_reported() {
    let env = start_with(|s| {
        let l1 = s
            .pvwa
            .users
            .iter_mut()
            .find(|u| u.name == "svc_pam_level1")
            .expect("level-1 account");
        l1.groups.push("PAM_L2_Approvers".into());
        let mut hank = l1.clone();
        hank.name = "hank".into();
        hank.password = "Hank-Demo-Pass".into();
        hank.groups = vec!["PAM_Infra_Approvers".into()];
        s.pvwa.users.push(hank);
    })
    .await;
    // hank, a person, confirms level 1 in the portal: the request moves to level 2.
    let hank_pw = secret_file(env.dir.path(), "hank", "Hank-Demo-Pass\n");
    let config = std::fs::read_to_string(&env.config).expect("config");
    let hank_config = env.dir.path().join("hank.toml");
    std::fs::write(
        &hank_config,
        config
            .replace("\"svc_pam_level1\"", "\"hank\"")
            .replace(&env.dir.path().join("l1").display().to_string(), &hank_pw.display().to_string()),
    )
    .expect("write");
    let hank_s = hank_config.display().to_string();
    let o = tool_with_env(
        &env,
        "first-level-approve",
        &["InfraSafe_12"],
        &[("APPROVAL_CONFIG", &hank_s)],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("confirmed InfraSafe_12 at level 1 as hank (PVWA now: level 2, 1 confirmation(s) left)"),
        "{}",
        out(&o)
    );

    // first-level-approve on it now: refused before any confirm, exit 65, naming both levels.
    let o = tool(
        &env,
        "first-level-approve",
        &["InfraSafe_12", "--on-behalf-of", "bob@example.test"],
        "",
    )
    .await;
    assert_eq!(o.status.code(), Some(65), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(
        text.contains("NOT CONFIRMED InfraSafe_12: it waits at confirmation level 2, not 1"),
        "{text}"
    );
    assert!(text.contains("second-level-approve"), "{text}");
    assert!(text.contains("Level:          2"), "{text}");
    // A dry run says the same instead of "would confirm".
    let o = tool(&env, "first-level-approve", &["--dry-run", "InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(65), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("NOT CONFIRMED InfraSafe_12: it waits at confirmation level 2, not 1"),
        "{}",
        out(&o)
    );
    let o = tool(&env, "first-level-approve", &["--json", "InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(65), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_str(out(&o).trim()).expect("json");
    assert_eq!(v["outcome"], "wrong_level");
    assert_eq!(v["error"]["code"], "wrong_level");
    assert_eq!(v["request"]["current_level"], 2);
    assert_eq!(
        env.sim
            .state
            .pvwa
            .actions()
            .iter()
            .map(|a| (a.level, a.user.as_str()))
            .collect::<Vec<_>>(),
        [(1, "hank")],
        "nothing confirmed by the level-1 account"
    );

    // The right tool confirms, and says what PVWA recorded.
    let o = tool(&env, "second-level-approve", &["--json", "InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let v: serde_json::Value = serde_json::from_str(out(&o).trim()).expect("json");
    assert_eq!(v["outcome"], "confirmed");
    assert_eq!(v["level"], 2);
    assert_eq!(v["recorded"]["status_title"], "Confirmed");
    assert_eq!(v["recorded"]["confirmations_left"], 0);
    assert_eq!(v["recorded"]["as_expected"], true, "exactly this confirmation");

    // A single-level request: confirmed, PVWA shows it Confirmed.
    let o = tool(&env, "first-level-approve", &["InfraSafe_13"], "").await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("confirmed InfraSafe_13 at level 1 as svc_pam_level1 (PVWA now: Confirmed)"),
        "{}",
        out(&o)
    );
    assert!(!out(&o).contains("note:"), "{}", out(&o));
    // A level-1 request given to second-level-approve: nothing sent.
    let before = env.sim.state.pvwa.actions().len();
    let o = tool(&env, "second-level-approve", &["DBSafe_7"], "").await;
    assert_eq!(o.status.code(), Some(65), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains("NOT CONFIRMED DBSafe_7: it waits at confirmation level 1, not 2"),
        "{}",
        out(&o)
    );
    assert_eq!(env.sim.state.pvwa.actions().len(), before);
}

/// Issue 28: without `--level`, the list is what the accounts that confirm see (PVWA lists a
/// request only to an account that may confirm it; the demo's lookup account confirms nothing),
/// each request once: the level-1 and the level-2 lists together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_without_a_level_lists_what_both_confirming_accounts_see() {
    let env = start().await;
    let ids = |o: &Output| -> Vec<String> {
        assert_eq!(o.status.code(), Some(0), "{}{}", out(o), err(o));
        out(o)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                v["request_id"].as_str().expect("id").to_string()
            })
            .collect()
    };
    // InfraSafe_12 confirmed at level 1: it waits at level 2, the others at level 1.
    let o = tool(&env, "first-level-approve", &["InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let all = ids(&tool(&env, "get-inco-req", &["--waiting", "--json"], "").await);
    let l1 = ids(&tool(&env, "get-inco-req", &["--waiting", "--level", "1", "--json"], "").await);
    let l2 = ids(&tool(&env, "get-inco-req", &["--waiting", "--level", "2", "--json"], "").await);
    assert!(!l1.is_empty() && l2 == ["InfraSafe_12"], "{l1:?} {l2:?}");
    let mut want: Vec<String> = l1.iter().chain(l2.iter()).cloned().collect();
    want.sort();
    let mut got = all.clone();
    got.sort();
    assert_eq!(got, want, "every waiting request, once");
    // With no level account configured, the lookup account is asked, and the empty answer says
    // who was asked.
    let text = std::fs::read_to_string(&env.config).expect("config");
    let start = text.find("[accounts.level1]").expect("level1");
    let end = text.find("[accounts.lookup]").expect("lookup");
    let lookup_only = format!("{}{}", &text[..start], &text[end..]);
    std::fs::write(&env.config, lookup_only).expect("config");
    let o = tool(&env, "get-inco-req", &["--waiting"], "").await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(
        err(&o).contains("no waiting requests that svc_pam_lookup may confirm"),
        "{}",
        err(&o)
    );
}

/// Rejecting by hand (issue 32): `--reject` on the approve tools, ids from stdin, `--dry-run`,
/// `--json`; PVWA records the reject with the level's account and the reason, and a later
/// confirm or reject fails showing who rejected and when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_by_hand_with_dry_run_json_and_stdin() {
    let env = start().await;
    let o = tool(
        &env,
        "first-level-approve",
        &["--reject", "--dry-run", "InfraSafe_12"],
        "",
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).contains(
            "would reject InfraSafe_12 at level 1 as svc_pam_level1 with reason \"Rejected with first-level-approve\""
        ),
        "{}",
        out(&o)
    );
    assert!(env.sim.state.pvwa.actions().is_empty(), "dry run sends nothing");
    let o = tool(
        &env,
        "first-level-approve",
        &[
            "--reject",
            "--json",
            "--on-behalf-of",
            "alice@example.com",
            "--reason",
            "no change ticket",
            "-",
        ],
        "# to reject\nInfraSafe_12\n",
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let v: serde_json::Value = serde_json::from_str(out(&o).trim()).expect("json");
    assert_eq!(v["outcome"], "rejected", "{v}");
    assert_eq!(v["action"], "reject", "{v}");
    assert_eq!(v["recorded"]["status_title"], "Rejected", "{v}");
    assert_eq!(v["recorded"]["as_expected"], true, "{v}");
    let acts = env.sim.state.pvwa.actions();
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!(
        (
            acts[0].action.as_str(),
            acts[0].user.as_str(),
            acts[0].reason.as_str()
        ),
        (
            "reject",
            "svc_pam_level1",
            "Rejected on behalf of alice@example.com: no change ticket"
        )
    );
    // A confirm after the reject fails, and shows who rejected it and when.
    let o = tool(&env, "first-level-approve", &["InfraSafe_12"], "").await;
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("FAILED InfraSafe_12 at level 1"), "{text}");
    assert!(text.contains("Status:         Rejected"), "{text}");
    assert!(
        text.contains("[svc_pam_level1] rejected at")
            && text.contains("Rejected on behalf of alice@example.com: no change ticket"),
        "{text}"
    );
    // The level-2 account on a request at level 1: nothing is rejected.
    let o = tool(&env, "second-level-approve", &["--reject", "DBSafe_7"], "").await;
    assert_eq!(o.status.code(), Some(65), "{}", out(&o));
    assert!(
        out(&o).contains("NOT REJECTED DBSafe_7") && out(&o).contains("nothing was rejected"),
        "{}",
        out(&o)
    );
    assert_eq!(env.sim.state.pvwa.actions().len(), 1);
}

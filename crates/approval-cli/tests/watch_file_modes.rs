//! The watcher's files are owner-only whatever the umask, and it does not start on a
//! configuration, reply template or state directory that group or others can change
//! (`check-approval-request`, against pam-sim and a real slapd, as the service runs it).

#[macro_use]
#[path = "../../approval-core/tests/support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Ews;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use watcher_env::*;

fn bin() -> PathBuf {
    // `std::` because the test environment's `env!` macro shadows the standard one here.
    PathBuf::from(std::env!("CARGO_BIN_EXE_check-approval-request"))
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

/// `check-approval-request ARGS` under `umask`, waited for.
fn run(umask: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(bin())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run the watcher")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Refused with 78, naming the path and its mode.
fn assert_refused(o: &Output, path: &Path, mode: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains(&format!("mode {mode}")), "{err}");
    assert!(err.contains("chmod go-w"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_or_world_writable_config_template_or_state_directory_stops_the_watcher() {
    let env = env!();
    let d = env.dir.path();
    let templates = d.join("templates");
    std::fs::create_dir(&templates).expect("mkdir");
    chmod(&templates, 0o755);
    let template = templates.join("approved.txt");
    std::fs::write(&template, "Approved: {request_id}\n").expect("template");
    chmod(&template, 0o644);
    let cfg = d.join("config.toml");
    let text = config_text(&env, DEFAULT_APPROVERS, "", "poll_secs = 2").replace(
        "[notify]\n",
        &format!("[notify]\ntemplates_dir = \"{}\"\n", templates.display()),
    );
    std::fs::write(&cfg, text).expect("config");
    let state = d.join("state");
    let once = |cfg: &Path| {
        run(
            "022",
            &["--once".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        )
    };

    // The configuration file, 0666: refused before anything is read or written.
    chmod(&cfg, 0o666);
    let o = once(&cfg);
    assert_refused(&o, &cfg, "0666");
    assert!(!state.exists(), "nothing written: {}", stderr(&o));
    // The service (no --once) refuses it the same way.
    assert_refused(
        &run("022", &["--config".as_ref(), cfg.as_os_str()]),
        &cfg,
        "0666",
    );
    // Group-writable is refused too.
    chmod(&cfg, 0o664);
    assert_refused(&once(&cfg), &cfg, "0664");
    chmod(&cfg, 0o644);

    // A reply template anyone may edit, or its directory.
    chmod(&template, 0o666);
    assert_refused(&once(&cfg), &template, "0666");
    chmod(&template, 0o644);
    chmod(&templates, 0o777);
    assert_refused(&once(&cfg), &templates, "0777");
    chmod(&templates, 0o755);

    // A state directory that already exists, world-writable.
    std::fs::create_dir(&state).expect("mkdir");
    chmod(&state, 0o777);
    let o = once(&cfg);
    assert_refused(&o, &state, "0777");
    assert!(stderr(&o).contains("watcher.state_dir"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_dir(&state).expect("list").count(),
        0,
        "nothing written into it"
    );

    // Owner-writable only (an admin's 0755 state directory, 0644 files): it runs.
    chmod(&state, 0o755);
    let o = once(&cfg);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_umask_000_every_file_the_watcher_writes_is_owner_only() {
    let env = env!();
    let d = env.dir.path();
    let cfg = d.join("config.toml");
    std::fs::write(
        &cfg,
        config_text(&env, DEFAULT_APPROVERS, "", "poll_secs = 1"),
    )
    .expect("config");
    chmod(&cfg, 0o600);
    let run_dir = d.join("run");
    let pid_file = run_dir.join("watcher.pid");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("--pid-file")
        .arg(&pid_file)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the watcher");
    let until = Instant::now() + Duration::from_secs(20);
    while !pid_file.exists() {
        assert!(Instant::now() < until, "no pid file");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A mail, so that the journal, its WAL and the sync state are written.
    deliver(
        &env,
        mail(
            "m1",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    let until = Instant::now() + Duration::from_secs(20);
    while confirms(&env).is_empty() {
        assert!(Instant::now() < until, "not confirmed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = d.join("state");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&state).expect("state dir") {
        let p = e.expect("entry").path();
        seen.push((
            p.file_name().expect("name").to_string_lossy().into_owned(),
            mode(&p),
        ));
    }
    seen.sort();
    seen.push(("run/watcher.pid".into(), mode(&pid_file)));
    seen.push(("state/".into(), mode(&state)));
    seen.push(("run/".into(), mode(&run_dir)));
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        e.read_to_string(&mut err).expect("stderr");
    }
    assert_eq!(status.code(), Some(0), "{err}");
    for name in [
        "journal.sqlite",
        "journal.sqlite-wal",
        "journal.sqlite-shm",
        "watcher.lock",
    ] {
        assert!(
            seen.iter().any(|(n, _)| n == name),
            "{name} was written: {seen:?}"
        );
    }
    for (name, m) in &seen {
        let want = if name.ends_with('/') { 0o700 } else { 0o600 };
        assert_eq!(*m, want, "{name} is {m:o} under umask 000: {seen:?}");
    }
}

/// Issue 28: root running the watcher in the service user's state directory would leave
/// root-owned files there (the journal, its WAL, the lock) that lock the service out: refused,
/// naming the owner and the fix, before anything is written. Only as root (CI runs as root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_is_refused_in_a_state_directory_that_belongs_to_another_user() {
    let env = env!();
    let d = env.dir.path();
    let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if !as_root {
        assert!(
            std::env::var_os("PAMTEST_REQUIRE_SERVERS").is_none(),
            "scripts/test.sh runs as root (CI); this test needs it"
        );
        return;
    }
    let cfg = d.join("config.toml");
    std::fs::write(
        &cfg,
        config_text(&env, DEFAULT_APPROVERS, "", "poll_secs = 2"),
    )
    .expect("config");
    chmod(&cfg, 0o600);
    let state = d.join("state");
    std::fs::create_dir(&state).expect("mkdir");
    chmod(&state, 0o700);
    // nobody:nogroup, as the package's pamapproval would own /var/lib/pam-approval.
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).expect("chown");
    let once = || {
        run(
            "022",
            &["--once".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        )
    };
    let o = once();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&state.display().to_string())
            && err.contains("belongs to")
            && err.contains("watcher.state_dir")
            && err.contains("sudo -u"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&state).expect("list").count(),
        0,
        "nothing written into it"
    );
    // Root's own state directory: it runs.
    std::os::unix::fs::chown(&state, Some(0), Some(0)).expect("chown");
    let o = once();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

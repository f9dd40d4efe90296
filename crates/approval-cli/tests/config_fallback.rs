//! Where the tools look for their configuration when none is named (issue 28): the user's
//! `~/.config/pam-approval/config.toml`, then the installed `/etc/pam-approval/config.toml`;
//! with none found, the error names every path tried instead of a missing section.

use std::path::Path;
use std::process::{Command, Output};

const SYSTEM: &str = "/etc/pam-approval/config.toml";

fn run(home: &Path) -> Output {
    Command::new(std::env!("CARGO_BIN_EXE_check-approval-request"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .arg("--check-mailbox")
        .output()
        .expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn no_configuration_file_names_every_path_tried() {
    if Path::new(SYSTEM).exists() {
        eprintln!("skipped: {SYSTEM} exists on this machine (the package is installed)");
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    let o = run(home.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(78), "{err}");
    let user = home.path().join(".config/pam-approval/config.toml");
    assert!(
        err.contains(&format!(
            "no configuration file found (tried {}, {SYSTEM}",
            user.display()
        )),
        "{err}"
    );
    // The hint points to the annotated example where it is installed, and in the source tree.
    assert!(
        err.contains("/usr/share/doc/pam-approval/examples/"),
        "{err}"
    );
}

#[test]
fn the_users_file_is_read_when_it_exists() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join(".config/pam-approval");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("config.toml");
    std::fs::write(&file, "[pvwa]\nurl = \"https://pvwa.example.test\"\n").expect("write");
    let o = run(home.path());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(78), "{err}");
    // The file was read: the error is about its missing [mailbox], naming it, not the search.
    assert!(err.contains(&format!("file {}", file.display())), "{err}");
    assert!(err.contains("[mailbox] section is missing"), "{err}");
    assert!(!err.contains("no configuration file found"), "{err}");
}

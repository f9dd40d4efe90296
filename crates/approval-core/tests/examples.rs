//! Every shipped example configuration parses, with the same loader the tools use, and the main
//! example validates section by section.

use std::path::{Path, PathBuf};

use approval_core::pvwa::AccountRole;
use approval_core::settings as config;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config_examples() -> Vec<PathBuf> {
    let mut out = vec![repo().join("examples/config.toml")];
    for dir in ["examples/config.d", "examples/demo"] {
        let Ok(rd) = std::fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Scenario files are pam-sim's, not ours (pam-sim's tests parse them).
            if p.extension().is_some_and(|x| x == "toml") && !name.contains("scenario") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_shipped_config_example_parses() {
    let files = config_examples();
    assert!(!files.is_empty());
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read example");
        if let Err(e) = config::load_from_parts(Some(&text), Some(f.clone()), &[]) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_main_example_validates() {
    let f = repo().join("examples/config.toml");
    let text = std::fs::read_to_string(&f).expect("read");
    let l = config::load_from_parts(Some(&text), Some(f), &[]).expect("parses");
    l.pvwa().expect("[pvwa] valid");
    for role in [
        AccountRole::Level1,
        AccountRole::Level2,
        AccountRole::Lookup,
    ] {
        l.account(role).expect("account present");
    }
    // The whole configuration of a site in one file (issue 28): the mailbox, the directory, the
    // sender policy (empty lists refuse every mail), the PAM team, the one state directory.
    let m = l.config.mailbox.as_ref().expect("[mailbox]");
    m.validate().expect("[mailbox] valid");
    l.directory().expect("[directory] valid");
    assert!(!l.config.sender.allowed_domains.is_empty());
    assert!(!l.config.notify.pam_team.is_empty());
    assert_eq!(
        l.config.watcher.state_dir.as_deref(),
        Some(Path::new("/var/lib/pam-approval"))
    );
    // One secret layout that the service, cron and a by-hand run all read: no cred: (systemd
    // only) and no vault: without a [vault] section.
    assert!(
        !text.contains("\"cred:"),
        "the installed example uses cred:"
    );
    assert!(l.config.vault.is_some() || !text.contains("\"vault:"));
}

#[test]
fn the_privilege_cloud_example_validates_with_identity_sign_in() {
    let f = repo().join("examples/config.d/pvwa-privilege-cloud.toml");
    let text = std::fs::read_to_string(&f).expect("read");
    let l = config::load_from_parts(Some(&text), Some(f), &[]).expect("parses");
    let p = l.pvwa().expect("[pvwa] valid");
    assert_eq!(p.auth_method, approval_core::pvwa::AuthMethod::Identity);
    assert_eq!(
        p.token_url().as_deref(),
        Some("https://abc1234.id.cyberark.cloud/oauth2/platformtoken")
    );
    for role in [
        AccountRole::Level1,
        AccountRole::Level2,
        AccountRole::Lookup,
    ] {
        l.account(role).expect("account present");
    }
}

#[test]
fn a_typo_in_an_example_would_be_caught() {
    let f = repo().join("examples/config.toml");
    let text = std::fs::read_to_string(&f)
        .expect("read")
        .replace("request_timeout_secs", "request_timeout_sec");
    let e = config::load_from_parts(Some(&text), Some(f), &[]).expect_err("refused");
    assert_eq!(e.key.as_deref(), Some("pvwa.request_timeout_sec"));
}

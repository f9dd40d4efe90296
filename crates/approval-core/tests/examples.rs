//! Every shipped example configuration loads with the same loader the tools use and passes the
//! check of every section it holds; an unknown key in any section, or a value out of range,
//! fails with the key named.

use std::path::{Path, PathBuf};

use approval_core::config::ConfigError;
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

/// Load `text` with the tools' loader, then run the check of every section it holds, as the
/// tool that reads the section does before it connects anywhere. The error names the key.
fn load_and_validate(text: &str, file: &Path) -> Result<config::Loaded, ConfigError> {
    let l = config::load_from_parts(Some(text), Some(file.to_path_buf()), &[])?;
    let c = &l.config;
    if c.pvwa.is_some() {
        l.pvwa()?;
    }
    for (role, present) in [
        (AccountRole::Level1, c.accounts.level1.is_some()),
        (AccountRole::Level2, c.accounts.level2.is_some()),
        (AccountRole::Lookup, c.accounts.lookup.is_some()),
    ] {
        if present {
            l.account(role)?;
        }
    }
    if let Some(m) = &c.mailbox {
        m.validate().map_err(|(key, msg)| l.error(&key, msg))?;
    }
    if c.directory.is_some() {
        l.directory()?;
    }
    if c.ticketing.is_some() {
        l.ticketing()?;
    }
    if c.remote_access.is_some() {
        l.remote_access()?;
    }
    if let Some(m) = &c.metrics {
        m.address(&l)?;
    }
    c.watcher.validate(&l)?;
    c.notice.validate(&l)?;
    c.sender.validate(&l)?;
    Ok(l)
}

#[test]
fn every_shipped_config_example_loads_and_validates() {
    let files = config_examples();
    assert!(files.len() > 5, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read example");
        if let Err(e) = load_and_validate(&text, f) {
            panic!("{}: {e}", f.display());
        }
    }
}

/// The section headers of a TOML text (`[watcher]`, `[[directory.static]]`), by line index.
fn section_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let t = l.trim();
            (t.starts_with('[') && t.ends_with(']')).then(|| (i, t.to_string()))
        })
        .collect()
}

#[test]
fn an_unknown_key_in_any_section_of_any_example_is_refused() {
    // A misspelt key must never be ignored silently: in every section of every example, an
    // added unknown key fails the load and the error names it.
    let mut checked = 0;
    for f in &config_examples() {
        let text = std::fs::read_to_string(f).expect("read example");
        for (at, header) in section_lines(&text) {
            let mut lines: Vec<&str> = text.lines().collect();
            lines.insert(at + 1, "pamtest_unknown_key = 1");
            let edited = lines.join("\n");
            let e = load_and_validate(&edited, f).err().unwrap_or_else(|| {
                panic!("{}: an unknown key in {header} was accepted", f.display())
            });
            assert!(
                e.to_string().contains("pamtest_unknown_key"),
                "{}: {header}: {e}",
                f.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} sections");
}

#[test]
fn an_invalid_value_in_an_example_is_refused_naming_its_key() {
    // Values that parse but are out of range: the loader with validation refuses each, naming
    // the key, where parsing alone accepted them.
    let cases = [
        (
            "examples/config.d/watcher.toml",
            "concurrency = 8",
            "concurrency = 0",
            "watcher.concurrency",
        ),
        (
            "examples/config.d/watcher.toml",
            "max_attempts = 5",
            "max_attempts = 0",
            "watcher.max_attempts",
        ),
        (
            "examples/config.d/watcher.toml",
            "poll_secs = 15",
            "poll_secs = 0",
            "watcher.poll_secs",
        ),
        (
            "examples/config.d/watcher.toml",
            "retry_max_secs = 900",
            "retry_max_secs = 10",
            "watcher.retry_max_secs",
        ),
        (
            "examples/config.d/watcher.toml",
            "[ref {marker}]\"",
            "[ref]\"",
            "watcher.reason_template",
        ),
        (
            "examples/config.d/metrics.toml",
            "listen = \"127.0.0.1:9464\"",
            "listen = \"localhost\"",
            "metrics.listen",
        ),
    ];
    for (file, from, to, key) in cases {
        let f = repo().join(file);
        let text = std::fs::read_to_string(&f).expect("read example");
        assert!(text.contains(from), "{file} no longer holds {from:?}");
        load_and_validate(&text, &f).expect("the example as shipped");
        let bad = text.replacen(from, to, 1);
        let e = load_and_validate(&bad, &f)
            .err()
            .unwrap_or_else(|| panic!("{file}: {to:?} was accepted"));
        assert_eq!(e.key.as_deref(), Some(key), "{file}: {to:?}: {e}");
        // Parsing alone accepts it: the validation is what refuses.
        config::load_from_parts(Some(&bad), Some(f.clone()), &[]).expect("parses");
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

/// The shipped alert rules and dashboard (examples/monitoring/) may name only the metrics of
/// scripts/checks/monitoring/metric-names.txt (scripts/checks/80-monitoring.sh checks that).
/// Here the list meets the code: every metric the watcher exports is listed, and every one
/// listed as `code` is exported, by that name.
#[test]
fn the_monitoring_list_of_metric_names_is_what_the_watcher_exports() {
    use std::collections::BTreeSet;
    use std::time::Duration;
    let list = std::fs::read_to_string(repo().join("scripts/checks/monitoring/metric-names.txt"))
        .expect("scripts/checks/monitoring/metric-names.txt");
    let mut listed = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    let mut from_code = BTreeSet::new();
    for line in list.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            f.len(),
            3,
            "metric-names.txt: {line:?} is not `name type source`"
        );
        listed.insert(f[0].to_string());
        if f[1] == "histogram" {
            histograms.insert(f[0].to_string());
        }
        if f[2] == "code" {
            from_code.insert(f[0].to_string());
        }
    }
    // Every series of every metric present: labelled families appear with their first value.
    let m = approval_core::metrics::Metrics::new();
    m.mail("confirmed", None);
    m.confirm(1, Duration::from_secs(2));
    m.reject(2);
    m.reply("approved");
    m.reply_deferred();
    m.fault("pvwa");
    m.sign_in("pvwa", "logon");
    m.mailbox_ok();
    m.pvwa_ok();
    m.set_pending(1, Some(Duration::from_secs(5)));
    let text = m.encode();
    let mut exported = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| histograms.contains(*b)))
            .unwrap_or(name);
        exported.insert(base.to_string());
    }
    let unlisted: Vec<_> = exported.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "exported but not in metric-names.txt (add them, and to the dashboard): {unlisted:?}"
    );
    let missing: Vec<_> = from_code.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "listed as `code` in metric-names.txt but not exported (the rules and dashboard name them): {missing:?}"
    );
}

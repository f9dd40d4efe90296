//! The man pages and shell completions the packages ship (`crates/approval-cli/dist/man`,
//! `dist/completions`) are generated from the tools' clap definitions (`approval_cli::cli`), and
//! must match them: a flag added, renamed or re-documented without regenerating fails here. Regenerate with
//! `scripts/gen-docs.sh` (which runs this test with `PAM_APPROVAL_REGENERATE=1`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use approval_cli::cli::{TOOLS, command};
use clap_complete::Shell;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist")
}

/// Every generated file: its path under `dist/`, and its content.
fn generate() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let tmp = tempfile::tempdir().expect("tmp");
    for tool in TOOLS {
        let cmd = command(tool).expect("a tool of TOOLS");
        // One page per tool and per subcommand (remote-access invite, …).
        let dir = tmp.path().join(tool);
        std::fs::create_dir_all(&dir).expect("mkdir");
        clap_mangen::generate_to(cmd.clone(), &dir).expect("man page");
        for e in std::fs::read_dir(&dir).expect("read").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            out.insert(
                format!("man/man1/{name}"),
                std::fs::read(e.path()).expect("read page"),
            );
        }
        for (shell, path) in [
            (Shell::Bash, format!("completions/bash/{tool}")),
            (Shell::Zsh, format!("completions/zsh/_{tool}")),
            (Shell::Fish, format!("completions/fish/{tool}.fish")),
        ] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), tool, &mut buf);
            out.insert(path, buf);
        }
    }
    out
}

/// The files under `dist/` now.
fn shipped() -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under dist");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read(&p).expect("read"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    // The generated parts of dist/ (the packaging scripts beside them are written by hand).
    for part in ["man", "completions"] {
        walk(&dist(), &dist().join(part), &mut out);
    }
    out
}

#[test]
fn man_pages_and_completions_match_the_command_lines() {
    let want = generate();
    if std::env::var_os("PAM_APPROVAL_REGENERATE").is_some() {
        let _ = std::fs::remove_dir_all(dist().join("man"));
        let _ = std::fs::remove_dir_all(dist().join("completions"));
        for (rel, bytes) in &want {
            let p = dist().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, bytes).expect("write");
        }
    }
    let have = shipped();
    let missing: Vec<&String> = want.keys().filter(|k| !have.contains_key(*k)).collect();
    let extra: Vec<&String> = have.keys().filter(|k| !want.contains_key(*k)).collect();
    let stale: Vec<&String> = want
        .iter()
        .filter(|(k, v)| have.get(*k).is_some_and(|h| h != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && stale.is_empty(),
        "dist/ is out of date with the command lines (run scripts/gen-docs.sh):\n  missing {missing:?}\n  not generated {extra:?}\n  stale {stale:?}"
    );
}

#[test]
fn every_tool_has_a_page_and_a_completion_for_each_shell_naming_its_flags() {
    let files = generate();
    for tool in TOOLS {
        let page = String::from_utf8(files[&format!("man/man1/{tool}.1")].clone()).expect("utf8");
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "roff: {tool}");
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH VERSION"] {
            assert!(page.contains(section), "{tool}: {section}");
        }
        // The examples, exit codes and environment of --help are in the page too.
        for text in ["Examples:", "Exit codes:", "APPROVAL_CONFIG"] {
            assert!(page.contains(text), "{tool}: {text}");
        }
        let bash =
            String::from_utf8(files[&format!("completions/bash/{tool}")].clone()).expect("utf8");
        assert!(
            bash.contains(&format!("complete -F _{}", tool.replace('-', "__"))),
            "{tool}: {bash}"
        );
        for flag in ["--config", "--json", "--verbose"] {
            assert!(bash.contains(flag), "{tool} bash: {flag}");
            let zsh = String::from_utf8(files[&format!("completions/zsh/_{tool}")].clone())
                .expect("utf8");
            assert!(zsh.contains(flag), "{tool} zsh: {flag}");
            let fish = String::from_utf8(files[&format!("completions/fish/{tool}.fish")].clone())
                .expect("utf8");
            assert!(
                fish.contains(&format!("-l {}", &flag[2..])),
                "{tool} fish: {flag}"
            );
        }
    }
    // remote-access's subcommands have pages of their own.
    assert!(
        files
            .keys()
            .any(|k| k.starts_with("man/man1/remote-access-")),
        "{:?}",
        files.keys().collect::<Vec<_>>()
    );
}

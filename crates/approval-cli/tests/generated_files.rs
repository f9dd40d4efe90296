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

/// The page of `cmd` and of each of its subcommands: clap_mangen's page with a synopsis that
/// names each option's value, and FILES and SEE ALSO sections before VERSION.
fn pages(cmd: clap::Command, tool: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        pages(sub, tool, out);
    }
    let usage = synopsis(&cmd);
    let man = clap_mangen::Man::new(cmd.override_usage(usage));
    let mut page = Vec::new();
    man.render(&mut page).expect("render");
    let page = String::from_utf8(page).expect("utf8");
    let extra = format!("{}{}", files_section(tool), see_also_section(tool));
    let page = match page.find(".SH VERSION") {
        Some(at) => format!("{}{extra}{}", &page[..at], &page[at..]),
        None => format!("{page}{extra}"),
    };
    out.insert(
        format!("man/man1/{}", man.get_filename()),
        page.into_bytes(),
    );
}

/// The synopsis line: every option with its value's name (`[--config <PATH>]`), then the
/// positionals and the subcommand.
fn synopsis(cmd: &clap::Command) -> String {
    let mut parts = vec![cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string()];
    for a in cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
    {
        let flag = match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}|--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => continue,
        };
        let value = if a.get_action().takes_values() {
            match a.get_value_names() {
                Some(names) if !names.is_empty() => {
                    names.iter().map(|n| format!(" <{n}>")).collect::<String>()
                }
                _ => format!(" <{}>", a.get_id().as_str().to_uppercase()),
            }
        } else {
            String::new()
        };
        let again = if matches!(
            a.get_action(),
            clap::ArgAction::Count | clap::ArgAction::Append
        ) {
            "..."
        } else {
            ""
        };
        parts.push(if a.is_required_set() {
            format!("{flag}{value}{again}")
        } else {
            format!("[{flag}{value}]{again}")
        });
    }
    for a in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let name = a
            .get_value_names()
            .and_then(|v| v.first().map(|n| n.to_string()))
            .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
        let many = a.get_num_args().is_some_and(|r| r.max_values() > 1);
        let p = format!("<{name}>{}", if many { "..." } else { "" });
        parts.push(if a.is_required_set() {
            p
        } else {
            format!("[{p}]")
        });
    }
    if cmd.has_subcommands() {
        parts.push("<COMMAND>".into());
    }
    parts.join(" ")
}

/// A FILES entry: a path in italics and what it is.
fn file_entry(path: &str, what: &str) -> String {
    format!(
        ".TP\n\\fI{}\\fR\n{}\n",
        path.replace('-', "\\-"),
        what.replace('-', "\\-")
    )
}

/// FILES: where the package puts what the tool reads and writes.
fn files_section(tool: &str) -> String {
    let mut s = String::from(".SH FILES\n");
    s.push_str(&file_entry(
        "/etc/pam-approval/config.toml",
        "The configuration (installed annotated, 0640 root:pamapproval). Read when neither --config nor APPROVAL_CONFIG names a file and there is no ~/.config/pam-approval/config.toml (under XDG_CONFIG_HOME when set).",
    ));
    s.push_str(&file_entry(
        "/etc/pam-approval/secrets/",
        "The secret files the configuration's file: references name (pamapproval, 0700; each file owner-only).",
    ));
    if tool == "check-approval-request" {
        s.push_str(&file_entry(
            "/var/lib/pam-approval/",
            "The state directory of the installed configuration: journal.sqlite (every mail and decision, the audit trail), the lock that keeps one watcher per mailbox, the mailbox's sync position.",
        ));
        s.push_str(&file_entry(
            "/var/log/pam-approval/pam-approval.log",
            "The log of the installed configuration ([log] file), with one JSON audit line per mail; rotated by /etc/logrotate.d/pam-approval.",
        ));
        s.push_str(&file_entry(
            "/usr/lib/systemd/system/pam-approval.service",
            "The watcher as a service; pam-approval-once.timer runs --once every minute instead.",
        ));
        s.push_str(&file_entry(
            "/usr/lib/pam-approval/check_approval_request.sh",
            "The cron wrapper: keeps one watcher running, its pid file in /run/pam-approval/ (created at boot by /usr/lib/tmpfiles.d/pam-approval.conf).",
        ));
    }
    s
}

/// SEE ALSO: the other tools and the installed documentation.
fn see_also_section(tool: &str) -> String {
    let others: Vec<String> = TOOLS
        .iter()
        .filter(|t| **t != tool)
        .map(|t| format!("\\fB{}\\fR(1)", t.replace('-', "\\-")))
        .collect();
    format!(
        ".SH \"SEE ALSO\"\n{}\n.PP\n/usr/share/doc/pam\\-approval/README.md and the guides beside it in docs/: watcher.md, site\\-check.md, secrets.md, vault\\-permissions.md, notice\\-and\\-sender.md, directory.md, ticketing.md, remote\\-access.md, privilege\\-cloud.md, graph.md, migration.md.\n",
        others.join(", ")
    )
}

/// Every generated file: its path under `dist/`, and its content.
fn generate() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for tool in TOOLS {
        let cmd = command(tool).expect("a tool of TOOLS");
        // One page per tool and per subcommand (remote-access invite, …).
        let mut built = cmd.clone().disable_help_subcommand(true);
        built.build();
        pages(built, tool, &mut out);
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
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH FILES",
            ".SH \"SEE ALSO\"",
            ".SH VERSION",
        ] {
            assert!(page.contains(section), "{tool}: {section}");
        }
        // The synopsis names the values (issue 28): `[--config <PATH>]`, not `[--config]`.
        assert!(
            page.contains("\\-\\-config <"),
            "{tool}: synopsis without the value's name"
        );
        assert!(
            page.contains("/etc/pam\\-approval/config.toml"),
            "{tool}: FILES"
        );
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

//! `check-approval-request --check-mailbox`: prove the `[mailbox]` configuration before the
//! watcher runs: sign in (for Graph, a token from Entra ID), read the watched folder, and look
//! for the Processed and Refused folders. Changes nothing and sends nothing (so the right to
//! send is proven by the first reply, not here). A failure prints what failed with its hint:
//! wrong tenant or app, a secret or certificate refused, the app not allowed on this mailbox
//! (the RBAC scope), an unknown mailbox.
//!
//! The same sign-in as the mailbox section of `--check-site` (`site_check::sign_in_mailbox`),
//! which adds the recent mails' sender verdicts and who else holds rights on the mailbox.
//!
//! Exit: 0 the mailbox works, 69 unreachable, 75 busy, 77 credentials or permissions refused,
//! 78 configuration.

use approval_core::exit::Exit;
use approval_core::mailbox::MailboxKind;
use approval_core::secret::Resolver;
use approval_core::settings::Loaded;
use approval_core::site_check;

use crate::Printer;

pub async fn run(p: &Printer, loaded: &Loaded) -> anyhow::Result<Exit> {
    let cfg = loaded.config.mailbox.as_ref().ok_or_else(|| {
        loaded.error(
            "mailbox.mailbox",
            "the [mailbox] section is missing; see config.d/mailbox.toml or mailbox-graph.toml in \
             /usr/share/doc/pam-approval/examples/ (installed) or examples/ (source tree)",
        )
    })?;
    cfg.validate()
        .map_err(|(key, message)| loaded.error(&key, message))?;
    let backend = match cfg.kind {
        MailboxKind::Ews => "ews",
        MailboxKind::Graph => "graph",
    };
    let resolver = Resolver::new(loaded.config.vault.as_ref())?;
    let opened = site_check::sign_in_mailbox(cfg, &resolver).await;
    resolver.close().await;
    let (_mb, probe) = opened?;
    if p.json() {
        let folders: serde_json::Map<String, serde_json::Value> = probe
            .folders
            .iter()
            .map(|(n, exists)| (n.clone(), serde_json::json!({"exists": exists})))
            .collect();
        p.json_line(&serde_json::json!({
            "ok": true,
            "backend": backend,
            "mailbox": cfg.mailbox,
            "folder": cfg.folder,
            "unread": probe.unread,
            "folders": folders,
        }))?;
    } else {
        p.line(&format!(
            "MAILBOX OK: {} ({backend}), signed in, folder {:?} readable, {} unread",
            cfg.mailbox, cfg.folder, probe.unread
        ))?;
        for (name, exists) in &probe.folders {
            p.line(&format!(
                "  folder {name:?}: {}",
                if *exists {
                    "exists"
                } else {
                    "missing, created at the first filing"
                }
            ))?;
        }
        p.line("  sending is not tried here (nothing is sent); the first reply proves it")?;
    }
    Ok(Exit::Ok)
}

//! `check-approval-request` without `--once`: the long-running watch loop
//! (`approval_core::pipeline::watch`). Signals: SIGTERM/SIGINT stop taking new mail, let the
//! mails in flight finish, and exit 0; SIGHUP reopens the log file (logrotate). Under systemd
//! (`Type=notify`): `READY=1` after the start-up catch-up, `WATCHDOG=1` while the loop lives,
//! `STOPPING=1` on SIGTERM/SIGINT (approval_core::runtime::systemd).
//!
//! Exit: 0 after a signal; 75 when another watcher holds the state directory; 78 configuration;
//! 77 a refused logon; transient faults while running never end the loop.

use std::path::Path;

use approval_core::exit::Exit;
use approval_core::settings::Loaded;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::Printer;

pub async fn run(_p: &Printer, loaded: &Loaded, pid_file: Option<&Path>) -> anyhow::Result<Exit> {
    let shutdown = CancellationToken::new();
    // Registered before anything else, so a signal during start-up is not lost.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let token = shutdown.clone();
    let signals = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {
                    log::info!("SIGTERM: finishing the mails in flight, then exiting");
                    approval_core::runtime::systemd::stopping();
                    token.cancel();
                }
                _ = int.recv() => {
                    log::info!("SIGINT: finishing the mails in flight, then exiting");
                    approval_core::runtime::systemd::stopping();
                    token.cancel();
                }
                _ = hup.recv() => match crate::logging::reopen() {
                    Ok(()) => log::info!("SIGHUP: log file reopened"),
                    // Keep writing to the old file rather than stop: the error goes there.
                    Err(e) => log::error!("SIGHUP: the log file could not be reopened: {e:#}"),
                },
            }
        }
    });
    let result = approval_core::pipeline::watch(loaded, pid_file, shutdown).await;
    signals.abort();
    result?;
    Ok(Exit::Ok)
}

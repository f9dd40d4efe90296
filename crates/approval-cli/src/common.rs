//! Flags every binary takes, and `run`: the one place that turns a result into an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use approval_core::exit::{self, Exit};

use crate::printer::Printer;

/// Flags shared by every tool.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then
    /// /etc/pam-approval/config.toml).
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace); the audit lines are always written.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output (-q errors only, -qq nothing).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file).
    #[arg(long, value_name = "PATH", global = true)]
    pub log_file: Option<PathBuf>,
}

/// Run a tool body on a current-thread runtime and map its outcome to an exit code.
/// Errors are printed once, with the chain and a `hint:` line; a broken pipe exits 0 quietly.
pub fn run<F>(common: &Common, body: F) -> ExitCode
where
    F: AsyncFnOnce(&Printer) -> anyhow::Result<Exit>,
{
    let printer = Printer::new(common.json);
    let log_config = match approval_core::config::peek_log(common.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            let e = anyhow::Error::from(e);
            let (code, hint) = approval_core::error::classify(e.as_ref());
            printer.error(&e, code, hint.as_deref());
            return ExitCode::from(code.code());
        }
    };
    if let Err(e) = crate::logging::init(
        common.verbose,
        common.quiet,
        common.log_file.as_deref(),
        &log_config,
    ) {
        printer.error(&e, Exit::Config, None);
        return ExitCode::from(Exit::Config.code());
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&anyhow::Error::from(e), Exit::Software, None);
            return ExitCode::from(Exit::Software.code());
        }
    };
    let result = rt.block_on(body(&printer));
    // Background work (a session's logoff on drop) gets a moment to finish.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => ExitCode::from(code.code()),
        Err(e) => {
            let (code, hint) = approval_core::error::classify(e.as_ref());
            if printer.broken_pipe() || code == Exit::Ok {
                return ExitCode::SUCCESS;
            }
            printer.error(&e, code, hint.as_deref());
            ExitCode::from(code.code())
        }
    }
}

/// The `--help` footer: exit codes and the environment.
pub fn after_help(examples: &str) -> String {
    let mut s = format!("Examples:\n{examples}\n\n");
    s.push_str(&exit::help_footer());
    s.push_str("\nEnvironment:\n");
    for (name, what) in approval_core::env::VARS {
        s.push_str(&format!("  {name:<28} {what}\n"));
    }
    s
}

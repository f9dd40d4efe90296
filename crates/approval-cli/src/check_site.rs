//! `check-approval-request --check-site`: one read-only report of everything the watcher relies
//! on (approval_core::site_check). Text for people, `--json` one stable document. Exit as a
//! Nagios check: 0 every item ok or skipped, 1 a warning, 2 a failure.

use approval_core::exit::Exit;
use approval_core::settings::Loaded;
use approval_core::site_check::{self, Options, Report};

use crate::Printer;

/// The configuration as loaded (or why it did not load), then every check.
pub async fn run(
    p: &Printer,
    loaded: Result<&Loaded, String>,
    opts: Options,
) -> anyhow::Result<Exit> {
    let r = match loaded {
        Ok(l) => site_check::run(l, opts).await,
        Err(message) => site_check::config_failed(&message),
    };
    report(p, &r)
}

/// Print a report (text or `--json`) and map it to the exit of a Nagios check.
pub fn report(p: &Printer, report: &Report) -> anyhow::Result<Exit> {
    print(p, report)?;
    Ok(match report.exit {
        0 => Exit::Ok,
        1 => Exit::Refused,
        _ => Exit::Usage,
    })
}

fn print(p: &Printer, r: &Report) -> std::io::Result<()> {
    if p.json() {
        return p.json_line(r);
    }
    for line in r.render() {
        p.line(&line)?;
    }
    Ok(())
}

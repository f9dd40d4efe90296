//! `check-approval-request --explain FILE.eml`: what the watcher would read from a mail and why
//! it would act or refuse, with no server contacted. (Built by the notice issue.)

use std::path::Path;

use approval_core::config::Loaded;
use approval_core::exit::Exit;

use crate::Printer;

pub async fn run(p: &Printer, _loaded: &Loaded, _file: &Path) -> anyhow::Result<Exit> {
    p.note("--explain is not built yet in this version");
    Ok(Exit::Unavailable)
}

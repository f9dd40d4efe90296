//! `check-approval-request --check-sender EMAIL --safe SAFE --level N`: may this person approve
//! this safe at this level, and through which group? (Built by the directory issue.)

use approval_core::config::Loaded;
use approval_core::exit::Exit;

use crate::Printer;

pub async fn run(
    p: &Printer,
    _loaded: &Loaded,
    _email: &str,
    _safe: &str,
    _level: u8,
) -> anyhow::Result<Exit> {
    p.note("--check-sender is not built yet in this version");
    Ok(Exit::Unavailable)
}

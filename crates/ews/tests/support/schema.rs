//! Test support: validate whole EWS SOAP documents against Microsoft's schema with `xmllint`,
//! many documents per call (compiling the schema takes about 0.3 s). It runs a program, so it
//! lives on the tests' side, not in the I/O-free `ews-soap` crate: the tests of ews-soap,
//! approval-core and pam-sim include this file (`#[path]`).
//!
//! The schema folder is `$PAMTEST_EWS_SCHEMA_DIR`, else `../shared/ews-schema` beside the
//! repository. When it is absent, or `xmllint` is missing, the check is skipped (and says so),
//! unless `PAMTEST_REQUIRE_SERVERS` is set (as by `scripts/test.sh` and CI), where either is an
//! error: a required check never passes as "skipped".

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Environment variable naming the schema folder (tests only).
pub const SCHEMA_DIR_VAR: &str = "PAMTEST_EWS_SCHEMA_DIR";
/// Set by `scripts/test.sh`: missing tools are failures, not skips.
pub const REQUIRE_VAR: &str = "PAMTEST_REQUIRE_SERVERS";

const ENVELOPE_XSD: &str = include_str!("../../schema/soap-envelope.xsd");

/// The outcome of one validation run.
#[derive(Debug)]
pub enum Outcome {
    /// Every document validated; how many.
    Valid(usize),
    /// The check could not run; why.
    Skipped(String),
}

/// The schema folder, if there is one: `$PAMTEST_EWS_SCHEMA_DIR` or `../shared/ews-schema`, and
/// only when it holds `messages.xsd` (a variable naming an empty folder is "not found").
pub fn schema_dir() -> Option<PathBuf> {
    let d = match std::env::var_os(SCHEMA_DIR_VAR).filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        // crates/ews -> repository root -> ../shared/ews-schema
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ews-schema"),
    };
    d.join("messages.xsd").is_file().then_some(d)
}

/// Set and not empty or `0`: the same reading as the tests' slapd and OpenBao helpers.
fn required() -> bool {
    std::env::var_os(REQUIRE_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Microsoft's servers (and the EWS Managed API) write `m:Notification` inside
/// `m:Notifications` of GetStreamingEvents, where the published schema declares `t:`. This is
/// the one deviation tolerated: such documents are validated with the element renamed.
fn schema_view(doc: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(doc);
    if s.contains("GetStreamingEventsResponseMessage") {
        s.replace("<m:Notification>", "<t:Notification>")
            .replace("</m:Notification>", "</t:Notification>")
            .into_bytes()
    } else {
        doc.to_vec()
    }
}

/// Validate documents (name, bytes). Returns the failures as one message naming each
/// document and violation.
pub fn validate(docs: &[(String, Vec<u8>)]) -> Result<Outcome, String> {
    let Some(dir) = schema_dir() else {
        let msg = format!(
            "EWS schema folder not found (set {SCHEMA_DIR_VAR} or put it at ../shared/ews-schema)"
        );
        return if required() {
            Err(format!("{msg} and {REQUIRE_VAR} is set"))
        } else {
            Ok(Outcome::Skipped(msg))
        };
    };
    if Command::new("xmllint").arg("--version").output().is_err() {
        let msg = "xmllint is not installed (Debian package libxml2-utils)".to_string();
        return if required() {
            Err(format!("{msg} and {REQUIRE_VAR} is set"))
        } else {
            Ok(Outcome::Skipped(msg))
        };
    }
    if docs.is_empty() {
        return Err("no documents to validate".into());
    }
    static RUN: AtomicU32 = AtomicU32::new(0);
    let work = std::env::temp_dir().join(format!(
        "ews-schema-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = run(&work, &dir, docs);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run(work: &Path, dir: &Path, docs: &[(String, Vec<u8>)]) -> Result<Outcome, String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let xsd = work.join("soap-envelope.xsd");
    std::fs::write(
        &xsd,
        ENVELOPE_XSD.replace("@EWS_SCHEMA_DIR@", &dir.display().to_string()),
    )
    .map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for (i, (name, bytes)) in docs.iter().enumerate() {
        let clean: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let f = work.join(format!("{i:04}-{clean}.xml"));
        std::fs::write(&f, schema_view(bytes)).map_err(|e| e.to_string())?;
        files.push(f);
    }
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(&xsd)
        .args(&files)
        .output()
        .map_err(|e| format!("running xmllint: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ok = stderr.lines().filter(|l| l.ends_with(" validates")).count();
    if out.status.success() && ok == docs.len() {
        return Ok(Outcome::Valid(ok));
    }
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.ends_with(" validates"))
        .take(60)
        .collect();
    Err(format!(
        "{} of {} EWS documents do not validate against {}:\n{}",
        docs.len() - ok,
        docs.len(),
        dir.display(),
        problems.join("\n")
    ))
}

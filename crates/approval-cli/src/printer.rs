//! The one owner of stdout and stderr. Data goes to stdout (human text or JSON Lines); talk
//! and errors go to stderr (JSON objects under `--json`). A closed stdout (`| head`) is
//! remembered so the tool can stop quietly with exit 0.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use approval_core::exit::Exit;
use serde::Serialize;

pub struct Printer {
    json: bool,
    broken: AtomicBool,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Printer {
            json,
            broken: AtomicBool::new(false),
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// Whether stdout was closed by the reader.
    pub fn broken_pipe(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// One line of data. Returns an error once stdout is closed, so loops can stop.
    pub fn line(&self, s: &str) -> std::io::Result<()> {
        if self.broken_pipe() {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let mut out = std::io::stdout().lock();
        let r = writeln!(out, "{s}").and_then(|_| out.flush());
        if let Err(e) = &r
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            self.broken.store(true, Ordering::Relaxed);
        }
        r
    }

    /// One JSON value on one line.
    pub fn json_line<T: Serialize>(&self, v: &T) -> std::io::Result<()> {
        let s = serde_json::to_string(v).map_err(std::io::Error::other)?;
        self.line(&s)
    }

    /// A message for the operator on stderr (not data).
    pub fn note(&self, s: &str) {
        if !self.json {
            let _ = writeln!(std::io::stderr().lock(), "{s}");
        }
    }

    /// Print an error: the chain on one line, then `hint:`; JSON under `--json`.
    pub fn error(&self, e: &anyhow::Error, code: Exit, hint: Option<&str>) {
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        let mut parts: Vec<String> = Vec::new();
        for c in chain {
            if !parts.iter().any(|p| p.contains(&c)) {
                parts.push(c);
            }
        }
        let message = parts.join(": ");
        let mut err = std::io::stderr().lock();
        if self.json {
            let v = serde_json::json!({"error": {"kind": code.name(), "exit": code.code(), "message": message, "hint": hint}});
            let _ = writeln!(err, "{v}");
        } else {
            let _ = writeln!(err, "error: {message}");
            if let Some(h) = hint {
                let _ = writeln!(err, "hint: {h}");
            }
        }
    }
}

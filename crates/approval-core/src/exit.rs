//! Exit codes shared by every binary, and the classification of errors into them.
//!
//! The numbers follow BSD `sysexits.h` where one fits; the README documents the same table.

use std::fmt;

/// A documented process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Exit {
    /// 0: everything asked for was done.
    Ok,
    /// 1: a negative answer: refused, not found, failed confirm, invalid ticket.
    Refused,
    /// 2: usage error (clap's own code).
    Usage,
    /// 65: bad input data (a mail, an id, a stdin line that cannot be read).
    DataErr,
    /// 69: a service is unavailable (PVWA, Exchange, LDAP, Vault down or unreachable).
    Unavailable,
    /// 75: a temporary failure; trying again later may succeed (timeouts, lock held).
    TempFail,
    /// 77: authentication or permission denied.
    NoPerm,
    /// 78: configuration error.
    Config,
    /// 70: an internal error (a bug): should never be seen.
    Software,
}

impl Exit {
    /// The numeric code passed to the operating system.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Refused => 1,
            Exit::Usage => 2,
            Exit::DataErr => 65,
            Exit::Unavailable => 69,
            Exit::Software => 70,
            Exit::TempFail => 75,
            Exit::NoPerm => 77,
            Exit::Config => 78,
        }
    }

    /// A stable lowercase name, used in JSON error objects.
    pub const fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Refused => "refused",
            Exit::Usage => "usage",
            Exit::DataErr => "bad_data",
            Exit::Unavailable => "unavailable",
            Exit::Software => "internal",
            Exit::TempFail => "temporary",
            Exit::NoPerm => "permission",
            Exit::Config => "config",
        }
    }

    /// Combine the outcomes of several items (ids of one batch): the most severe wins, where a
    /// service or configuration fault outranks a plain refusal.
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    fn severity(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Refused => 1,
            Exit::DataErr => 2,
            Exit::TempFail => 3,
            Exit::Unavailable => 4,
            Exit::NoPerm => 5,
            Exit::Usage => 6,
            Exit::Config => 7,
            Exit::Software => 8,
        }
    }

    /// Every code with its meaning, for `--help` texts and the README.
    pub const TABLE: &'static [(Exit, &'static str)] = &[
        (Exit::Ok, "done"),
        (
            Exit::Refused,
            "refused, failed or not found (a negative answer)",
        ),
        (Exit::Usage, "usage error"),
        (Exit::DataErr, "bad input data"),
        (Exit::Unavailable, "a service is unavailable"),
        (Exit::Software, "internal error"),
        (Exit::TempFail, "temporary failure, try again"),
        (Exit::NoPerm, "authentication or permission denied"),
        (Exit::Config, "configuration error"),
    ];
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.name())
    }
}

/// Errors that know which exit code they mean.
pub trait Classify {
    fn exit(&self) -> Exit;
    /// A short piece of advice for the operator, printed as `hint:` under the error.
    fn hint(&self) -> Option<String> {
        None
    }
    /// The outside service at fault (`pvwa`, `mailbox`, …), for metrics; empty when none.
    fn service(&self) -> &'static str {
        ""
    }
}

/// Help-text footer listing the exit codes, shared by every binary.
pub fn help_footer() -> String {
    let mut s = String::from("Exit codes:\n");
    for (e, what) in Exit::TABLE {
        s.push_str(&format!("  {:>3}  {what}\n", e.code()));
    }
    s
}

/// A serialisable error for JSON output: its exit class name, an optional code, the message and
/// the hint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ErrorView {
    pub kind: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl ErrorView {
    pub fn of<E: Classify + fmt::Display>(e: &E, code: Option<String>) -> Self {
        ErrorView {
            kind: e.exit().name(),
            code,
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_prefers_service_faults_over_refusals() {
        assert_eq!(Exit::Ok.worst(Exit::Refused), Exit::Refused);
        assert_eq!(Exit::Refused.worst(Exit::Unavailable), Exit::Unavailable);
        assert_eq!(Exit::Unavailable.worst(Exit::Refused), Exit::Unavailable);
        assert_eq!(Exit::Config.worst(Exit::NoPerm), Exit::Config);
    }

    #[test]
    fn codes_match_the_documented_table() {
        let codes: Vec<u8> = Exit::TABLE.iter().map(|(e, _)| e.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 65, 69, 70, 75, 77, 78]);
    }
}

//! The command lines of every tool, in one place: the binaries parse them, and the man pages
//! and shell completions shipped in the packages are generated from them
//! (`tests/generated_files.rs` checks that the shipped files are up to date).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser};

use crate::Common;

/// Every tool this crate installs, by its binary name.
pub const TOOLS: [&str; 6] = [
    "check-approval-request",
    "first-level-approve",
    "second-level-approve",
    "get-inco-req",
    "validate-ticket",
    "remote-access",
];

/// The clap command of a tool, as its binary parses it.
pub fn command(tool: &str) -> Option<clap::Command> {
    Some(match tool {
        "check-approval-request" => WatcherArgs::command(),
        "first-level-approve" => crate::approve_cmd::command(1, "first-level-approve"),
        "second-level-approve" => crate::approve_cmd::command(2, "second-level-approve"),
        "get-inco-req" => GetIncoReqArgs::command(),
        "validate-ticket" => ValidateTicketArgs::command(),
        "remote-access" => crate::remote_access_cmd::Args::command(),
        _ => return None,
    })
}

// ---------------------------------------------------------------- check-approval-request

const WATCHER_EXAMPLES: &str = "  check-approval-request --log-file /var/log/pam-approval/pam-approval.log --pid-file /run/pam-approval/watcher.pid
  check-approval-request --once
  check-approval-request --explain forwarded.eml --json
  check-approval-request --check-sender bob@example.com --safe InfraSafe --level 1
  check-approval-request --check-mailbox
  check-approval-request --check-site      # read-only site report: exit 0 ok, 1 warnings, 2 failures
  check-approval-request --status          # Nagios-style: exit 0 OK, 1 WARNING, 2 CRITICAL";

/// Watch the approval mailbox and confirm the Dual Control requests approvers forward to it.
#[derive(Debug, Parser)]
#[command(name = "check-approval-request", version, after_help = crate::common::after_help(WATCHER_EXAMPLES))]
pub struct WatcherArgs {
    /// One pass over the mailbox, then exit (for cron).
    #[arg(long)]
    pub once: bool,
    /// Decide, but confirm nothing, send nothing, file nothing.
    #[arg(long, requires = "once")]
    pub dry_run: bool,
    /// Write this process's id here while it runs (for logrotate's SIGHUP); removed on exit.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Print what the watcher would read from this mail and its verdict; contacts no server.
    #[arg(long, value_name = "FILE.eml", conflicts_with_all = ["once", "check_sender"])]
    pub explain: Option<PathBuf>,
    /// Check whether this address may approve --safe at --level, and through which group.
    /// With --check-site: the approver the report resolves end to end.
    #[arg(long, value_name = "EMAIL", requires_all = ["safe", "level"], conflicts_with = "once")]
    pub check_sender: Option<String>,
    /// Prove the [mailbox] configuration: sign in, read the watched folder, look for the
    /// Processed and Refused folders; changes nothing, sends nothing. The mailbox section of
    /// --check-site alone (which adds the recent mails' senders).
    #[arg(long, conflicts_with_all = ["once", "explain", "check_sender"])]
    pub check_mailbox: bool,
    /// Check, read-only, everything the watcher relies on (configuration, secret references,
    /// file modes, PVWA accounts and safe members, mailbox, directory, ticketing, Remote
    /// Access) and print a report; exit 0 all ok, 1 warnings, 2 failures. Changes nothing.
    /// With --check-sender EMAIL --safe S --level N, that approver is resolved end to end.
    #[arg(long, conflicts_with_all = ["once", "explain", "check_mailbox", "status"])]
    pub check_site: bool,
    /// With --check-site: how many recent mails of the watched folder to look at.
    #[arg(long, value_name = "N", default_value_t = 20, requires = "check_site")]
    pub mails: usize,
    /// Print the watcher's state from its state directory in one line (journal counts, pending
    /// mails, when the mailbox last answered) and exit as a Nagios plugin: 0 OK, 1 WARNING,
    /// 2 CRITICAL. Asks no server.
    #[arg(long, conflicts_with_all = ["once", "explain", "check_sender", "check_mailbox"])]
    pub status: bool,
    /// With --status: WARNING when the mailbox has not answered, or a mail has waited
    /// unfinished, for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900, requires = "status")]
    pub warning_secs: u64,
    /// With --status: CRITICAL past this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600, requires = "status")]
    pub critical_secs: u64,
    /// With --check-sender: the safe.
    #[arg(long, value_name = "SAFE")]
    pub safe: Option<String>,
    /// With --check-sender: the confirmation level (1 or 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub level: Option<u8>,
    #[command(flatten)]
    pub common: Common,
}

// ---------------------------------------------------------------- get-inco-req

const GET_INCO_REQ_EXAMPLES: &str = "  get-inco-req InfraSafe_12
  get-inco-req --json InfraSafe_12 | jq '.confirmed_by'
  get-inco-req --waiting --level 1 --json | jq -r .request_id | first-level-approve -";

/// Show Dual Control requests as PVWA sees them: status, requester, level, expiry, access window,
/// ticket, and every confirmer that acted (name, members, reason, time in local time and UTC).
#[derive(Debug, Parser)]
#[command(name = "get-inco-req", version, after_help = crate::common::after_help(GET_INCO_REQ_EXAMPLES))]
pub struct GetIncoReqArgs {
    /// Request ids (`<Safe>_<number>`), or `-` to read them from stdin.
    #[arg(
        value_name = "ID",
        required_unless_present = "waiting",
        conflicts_with = "waiting"
    )]
    pub ids: Vec<String>,
    /// List the incoming requests still waiting for confirmation, as the level-1 and level-2
    /// accounts see them (PVWA lists a request only to an account that may confirm it).
    #[arg(long)]
    pub waiting: bool,
    /// With --waiting: list as the level's service account, only requests waiting at that level.
    #[arg(long, requires = "waiting", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub level: Option<u8>,
    /// With --waiting: include expired requests.
    #[arg(long, requires = "waiting")]
    pub expired: bool,
    #[command(flatten)]
    pub common: Common,
}

// ---------------------------------------------------------------- validate-ticket

const VALIDATE_TICKET_EXAMPLES: &str = "  validate-ticket --user alice CHG0030001
  validate-ticket --user 'CORP\\alice' --at 2026-05-01T22:30:00Z --json CRQ000000000201
  printf 'INC0010001\\nCHG0030001\\n' | validate-ticket --user alice -
  validate-ticket --hash-bypass-code < /dev/tty    # type the code; prints its Argon2id hash";

/// Check a ticket as CyberArk's ticketing integration does: failsafe bypass code, format, exactly
/// one record, state, change approval, operation window, requester. Prints each validation's
/// verdict (one line per ticket with `-`; JSON Lines with --json). Exit 0 when every ticket is
/// valid, 1 when one is not, another code when the ticketing system cannot be asked.
#[derive(Debug, Parser)]
#[command(name = "validate-ticket", version, after_help = crate::common::after_help(VALIDATE_TICKET_EXAMPLES))]
pub struct ValidateTicketArgs {
    /// Ticket ids, or `-` to read them from stdin, one per line (use stdin for bypass codes:
    /// arguments are visible to other users of the host).
    #[arg(
        value_name = "TICKET",
        required_unless_present_any = ["hash_bypass_code", "check"],
        conflicts_with_all = ["hash_bypass_code", "check"]
    )]
    pub tickets: Vec<String>,
    /// The CyberArk requester the ticket must belong to (`DOMAIN\` is ignored, any case).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Check the operation window at this time instead of now (RFC 3339 with a zone, e.g.
    /// 2026-05-01T22:30:00Z or 2026-05-02T00:30:00+02:00).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<DateTime<Utc>>,
    /// Read a bypass code from stdin (first line) and print its hash for
    /// `ticketing.bypass_codes`; the code itself is never printed or logged.
    #[arg(long)]
    pub hash_bypass_code: bool,
    /// Check the set-up without a ticket: the configuration and its secret references, the
    /// sign-in to each system, each configured ticket table or form readable (a read of a
    /// number no site uses), and the bypass-code list. Reads only; exit 0 ok, 2 a failure.
    #[arg(long, conflicts_with_all = ["hash_bypass_code", "user", "at"])]
    pub check: bool,
    #[command(flatten)]
    pub common: Common,
}

pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time with a zone ({e})"))
}

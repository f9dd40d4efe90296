//! Defence in depth: every field a notification shows must be what PVWA holds for the request
//! the mail leads to (`notice_mismatch`).
//!
//! The notice reader decides which request a mail names (safe and request id) and the policy
//! compares the safe and the requester with PVWA. A look-alike notification could still name a
//! real waiting request and display another account, another reason or another date, so that
//! the approver believes they approve something else. Here every other field the notification
//! shows (account name, device user name, address, reason, issued on, access window) is
//! compared with the request read by that id; a field the notification does not show is not
//! compared. A look-alike can then at best get approved a request identical to the one it
//! displays.
//!
//! The ENE templates' exact value formats are not verified (reference/pvwa.md §12; the guesses
//! are listed in crates/pam-sim/ASSUMPTIONS.md), so each rule accepts what any plausible
//! template shows and nothing else:
//! - account name: the account's `Name` or `UserName` property, case-insensitively;
//! - device user name: `UserName`; address: `Address` (case-insensitively);
//! - reason: with spaces normalised, `UserReason` or `RequestorReason`, or their first line,
//!   or (when the reader cut the line at its bound) a prefix of one of them;
//! - dates (`Issued on` ↔ `CreationDate`, start/end ↔ `AccessFrom`/`AccessTo`): read with
//!   common formats and `notice.date_formats`; a date without a zone is the vault's local time,
//!   whose offset is unknown, so it must differ from PVWA's UTC instant by a valid UTC offset (a
//!   multiple of 15 minutes within ±14 h) give or take 60 s; a date with a zone must be the
//!   instant ± 60 s. A date that cannot be read refuses (fail closed), and so does a date shown
//!   where PVWA has none (0).
//!
//! Pure: no I/O, no clock.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::notice::text::{MAX_VALUE_CHARS, clean};
use crate::notice::{Field, Notice};
use crate::pvwa::model::Request;

/// The refusal code.
pub const NOTICE_MISMATCH: &str = "notice_mismatch";

/// Date and time formats tried on a shown date without a zone (chrono syntax). Numbers may
/// come without leading zeros; a space matches any run of spaces.
const DATE_TIME_FORMATS: &[&str] = &[
    // ISO 8601
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    // en-US: M/d/yyyy h:mm:ss tt
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    // en-GB, fr-FR, es-ES, it-IT: d/M/yyyy HH:mm:ss
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %I:%M:%S %p",
    "%d/%m/%Y %I:%M %p",
    // de-DE, ru-RU: dd.MM.yyyy HH:mm:ss
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    // nl-NL: d-M-yyyy HH:mm:ss
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    // Long English forms (.NET "F"/"f", RFC 2822 without zone, C `asctime`).
    "%A, %B %d, %Y %I:%M:%S %p",
    "%A, %B %d, %Y %I:%M %p",
    "%B %d, %Y %I:%M:%S %p",
    "%B %d, %Y %I:%M %p",
    "%a, %d %b %Y %H:%M:%S",
    "%d %B %Y %H:%M:%S",
    "%d %B %Y %H:%M",
    "%a %b %d %H:%M:%S %Y",
];

/// Date-only formats: the shown day must be PVWA's day under some valid UTC offset.
const DATE_FORMATS: &[&str] = &["%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"];

/// Formats with an explicit offset: the instant must be PVWA's.
const ZONED_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f %:z",
    "%Y-%m-%d %H:%M:%S%.f %z",
    "%a, %d %b %Y %H:%M:%S %z",
];

/// Seconds of tolerance on a date (a template may drop the seconds).
const SLACK_SECS: i64 = 60;
/// UTC offsets are multiples of 15 minutes…
const OFFSET_STEP_SECS: i64 = 15 * 60;
/// …within ±14 hours.
const MAX_OFFSET_SECS: i64 = 14 * 3600;

/// Why a field does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// PVWA holds something else (or nothing) for this field.
    Differs,
    /// The shown date is in no known format (`notice.date_formats`).
    UnreadableDate,
}

/// A field the notification shows that does not match PVWA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub field: Field,
    /// What the notification shows (as read, cleaned).
    pub shown: String,
    pub problem: Problem,
}

impl Mismatch {
    /// The field as a person reads it in the notification.
    pub fn field_name(&self) -> &'static str {
        field_name(self.field)
    }

    /// The sentence for the forwarder. It names the field and what the mail shows, never what
    /// PVWA holds.
    pub fn message(&self, request_id: &str) -> String {
        let shown = clean(&self.shown, 120);
        let shown = if shown.chars().count() < self.shown.chars().count() {
            format!("{shown}…")
        } else {
            shown
        };
        let name = self.field_name();
        match self.problem {
            Problem::Differs => format!(
                "The notification's {name} (\"{shown}\") is not what PVWA holds for request \
                 {request_id}: the mail may be edited or a look-alike of another request, so \
                 nothing was approved. Forward the original notification unedited, or check and \
                 approve the request in the portal."
            ),
            Problem::UnreadableDate => format!(
                "The notification's {name} (\"{shown}\") is in no date format this tool knows, \
                 so it cannot be compared with request {request_id} in PVWA; nothing was \
                 approved. Approve in the portal, and ask the PAM team to add the format to \
                 notice.date_formats."
            ),
        }
    }
}

/// The field as a person reads it in the notification.
pub fn field_name(f: Field) -> &'static str {
    match f {
        Field::Requester => "requester",
        Field::Safe => "safe",
        Field::RequestId => "request id",
        Field::Account => "account name",
        Field::DeviceUser => "device user name",
        Field::Address => "address",
        Field::Reason => "reason",
        Field::IssuedOn => "issued-on date",
        Field::StartDate => "request start date",
        Field::EndDate => "request end date",
    }
}

/// Compare every field the notification shows (besides the safe, the request id and the
/// requester, which the policy compares) with the request PVWA holds. `date_formats` are the
/// site's extra formats (`notice.date_formats`). The first field that does not match is
/// returned; fields are checked in the order the notification usually shows them.
pub fn check(n: &Notice, r: &Request, date_formats: &[String]) -> Result<(), Mismatch> {
    let prop = |k: &str| r.account_details.properties.get(k).map(String::as_str);
    let fail = |field: Field, shown: &str, problem: Problem| {
        Err(Mismatch {
            field,
            shown: shown.to_string(),
            problem,
        })
    };
    for v in shown(n, Field::Account, n.account.as_deref()) {
        if !same_text_ci(v, prop("Name")) && !same_text_ci(v, prop("UserName")) {
            return fail(Field::Account, v, Problem::Differs);
        }
    }
    for v in shown(n, Field::DeviceUser, n.device_user.as_deref()) {
        if !same_text_ci(v, prop("UserName")) {
            return fail(Field::DeviceUser, v, Problem::Differs);
        }
    }
    for v in shown(n, Field::Address, n.address.as_deref()) {
        if !same_text_ci(v, prop("Address")) {
            return fail(Field::Address, v, Problem::Differs);
        }
    }
    for v in shown(n, Field::Reason, n.reason.as_deref()) {
        if !reason_matches(v, &[&r.user_reason, &r.requestor_reason]) {
            return fail(Field::Reason, v, Problem::Differs);
        }
    }
    // Each value of each date (two renderings may show a date twice) joins the one-zone rule.
    let mut dates = Vec::new();
    for (field, first, instant) in [
        (Field::IssuedOn, n.issued_on.as_deref(), r.creation_date),
        (Field::StartDate, n.start_date.as_deref(), r.access_from),
        (Field::EndDate, n.end_date.as_deref(), r.access_to),
    ] {
        for v in shown(n, field, first) {
            dates.push((field, v, instant));
        }
    }
    check_dates(&dates, date_formats).or_else(|(field, v, problem)| fail(field, v, problem))
}

/// Every value the notification shows for a field: its first value and any other the reader
/// found for it (another rendering, a repeated line), each once.
fn shown<'a>(n: &'a Notice, f: Field, first: Option<&'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = first.into_iter().collect();
    for v in n.shown_values.get(&f).into_iter().flatten() {
        if !out.contains(&v.as_str()) {
            out.push(v);
        }
    }
    out
}

/// A value as the reader keeps it: control characters and runs of spaces made one space,
/// invisible characters dropped, at most [`MAX_VALUE_CHARS`] characters.
fn norm(s: &str) -> String {
    clean(s, MAX_VALUE_CHARS)
}

/// Whether the shown value is PVWA's (non-empty) value, spaces normalised, ignoring case.
fn same_text_ci(shown: &str, pvwa: Option<&str>) -> bool {
    let Some(p) = pvwa else { return false };
    let (a, b) = (norm(shown), norm(p));
    !b.is_empty() && a.to_lowercase() == b.to_lowercase()
}

/// The reason rule: the shown line equals one of PVWA's reasons, or its first line, or (when
/// the reader cut the line at its bound) starts it.
fn reason_matches(shown: &str, pvwa: &[&str]) -> bool {
    let shown = norm(shown);
    if shown.is_empty() {
        return false;
    }
    let cut = shown.chars().count() + 1 >= MAX_VALUE_CHARS;
    pvwa.iter().filter(|p| !p.trim().is_empty()).any(|p| {
        let whole = clean(p, p.chars().count() + 1);
        let first = p.lines().find(|l| !l.trim().is_empty()).map(norm);
        whole == shown
            || norm(p) == shown
            || first.as_deref() == Some(shown.as_str())
            || (cut && whole.starts_with(&shown))
    })
}

/// Number of valid UTC offsets (-14 h … +14 h in steps of 15 minutes).
const OFFSETS: usize = (2 * MAX_OFFSET_SECS / OFFSET_STEP_SECS + 1) as usize;
/// Offsets one vault can use for dates of one request: its standard and daylight-saving time
/// differ by at most one hour (4 steps).
const DST_STEPS: usize = 4;

/// What a shown date says about PVWA's instant.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DateRead {
    /// In no known format.
    Unreadable,
    /// The UTC offsets (index 0 = -14 h) under which the shown date is PVWA's instant; all
    /// of them when the date carries its own zone and is the instant, none when it matches
    /// under no offset.
    Offsets([bool; OFFSETS]),
}

/// The offset index `i` in seconds.
fn offset_secs(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(0) * OFFSET_STEP_SECS - MAX_OFFSET_SECS
}

/// Whether `diff` (shown local time read as UTC, minus PVWA's instant) is offset `i`, give or
/// take the slack.
fn is_offset(diff: i64, i: usize) -> bool {
    (diff - offset_secs(i)).abs() <= SLACK_SECS
}

/// A shown date against PVWA's instant (Unix seconds; 0 = none). Every format that reads the
/// value is tried: `3/4/2025` may be 4 March or 3 April, and either matching is enough (the
/// other fields and the id still pin the request).
fn read_date(shown: &str, instant: i64, extra: &[String]) -> DateRead {
    let s = norm(shown);
    let s = s.trim();
    let mut read = false;
    let mut ok = [false; OFFSETS];
    let mut exact = |t: i64, read: &mut bool| {
        *read = true;
        if (t - instant).abs() <= SLACK_SECS {
            ok = [true; OFFSETS];
        }
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        exact(t.timestamp(), &mut read);
    }
    for f in ZONED_FORMATS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            exact(t.timestamp(), &mut read);
        }
    }
    // "… UTC" / "… GMT": the instant itself.
    if let Some(bare) = strip_utc(s) {
        for f in DATE_TIME_FORMATS
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
        {
            if let Ok(t) = NaiveDateTime::parse_from_str(bare, f) {
                exact(t.and_utc().timestamp(), &mut read);
            }
        }
    }
    let mut local = [false; OFFSETS];
    for f in DATE_TIME_FORMATS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            read = true;
            let diff = t.and_utc().timestamp() - instant;
            for (i, o) in local.iter_mut().enumerate() {
                *o |= is_offset(diff, i);
            }
        }
    }
    // Date-only formats, for a value no date-and-time format read (a configured format with
    // a time would otherwise read its date and drop the time).
    let timed = read;
    for f in DATE_FORMATS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        if timed {
            break;
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            read = true;
            for (i, o) in local.iter_mut().enumerate() {
                *o |= DateTime::from_timestamp(instant + offset_secs(i), 0)
                    .is_some_and(|t| t.date_naive() == d);
            }
        }
    }
    if !read {
        return DateRead::Unreadable;
    }
    // PVWA has no such date (an access window of 0): nothing shown can match it.
    if instant == 0 {
        return DateRead::Offsets([false; OFFSETS]);
    }
    for (o, l) in ok.iter_mut().zip(local) {
        *o |= l;
    }
    DateRead::Offsets(ok)
}

/// The dates a notification shows, each against its PVWA instant: each must be read, must be
/// the instant under some valid UTC offset, and all together under one vault time zone (their
/// offsets at most an hour apart, for daylight-saving time). The first date that breaks this
/// is the mismatch.
fn check_dates<'a>(
    dates: &[(Field, &'a str, i64)],
    extra: &[String],
) -> Result<(), (Field, &'a str, Problem)> {
    // feasible[k]: every date so far fits a zone whose offsets lie in k ..= k + DST_STEPS.
    let mut feasible = [true; OFFSETS];
    for (field, v, instant) in dates {
        // "No date" written out: right only where PVWA has none.
        if is_placeholder(v) {
            if *instant == 0 {
                continue;
            }
            return Err((*field, v, Problem::Differs));
        }
        let offsets = match read_date(v, *instant, extra) {
            DateRead::Unreadable => return Err((*field, v, Problem::UnreadableDate)),
            DateRead::Offsets(o) => o,
        };
        let mut any = false;
        for (k, f) in feasible.iter_mut().enumerate() {
            let end = (k + DST_STEPS).min(OFFSETS - 1);
            *f = *f && offsets.get(k..=end).is_some_and(|w| w.contains(&true));
            any |= *f;
        }
        if !any {
            return Err((*field, v, Problem::Differs));
        }
    }
    Ok(())
}

/// Words a template may show for a date it does not have (a request without an access
/// window): accepted only where PVWA's date is 0.
const PLACEHOLDERS: &[&str] = &[
    "-",
    "--",
    "\u{2013}",
    "\u{2014}",
    "n/a",
    "na",
    "none",
    "not set",
    "not specified",
    "unlimited",
    "no limit",
];

fn is_placeholder(v: &str) -> bool {
    let v = norm(v).to_lowercase();
    PLACEHOLDERS.contains(&v.trim())
}

/// The value without a trailing `UTC`/`GMT` zone name, if it has one.
fn strip_utc(s: &str) -> Option<&str> {
    for zone in [" UTC", " GMT", "(UTC)", "(GMT)"] {
        if s.len() > zone.len()
            && let Some(tail) = s.get(s.len() - zone.len()..)
            && tail.eq_ignore_ascii_case(zone)
        {
            return s.get(..s.len() - zone.len()).map(str::trim_end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notice::{Envelope, Shape};

    /// 2025-03-04T08:12:45Z
    const CREATED: i64 = 1_741_075_965;
    /// 2025-03-04T08:00:00Z and 16:00:00Z
    const FROM: i64 = 1_741_075_200;
    const TO: i64 = 1_741_104_000;

    fn request() -> Request {
        let mut r = Request {
            request_id: "InfraSafe_1234".into(),
            safe_name: "InfraSafe".into(),
            user_reason: "Patch window CHG0012345".into(),
            requestor_reason: "(ConnectionClient=PSM-RDP) Patch window CHG0012345".into(),
            creation_date: CREATED,
            access_from: FROM,
            access_to: TO,
            ..Request::default()
        };
        for (k, v) in [
            (
                "Name",
                "Operating System-WinDomain-corp.example.com-adm_alice",
            ),
            ("UserName", "adm_alice"),
            ("Address", "corp.example.com"),
        ] {
            r.account_details.properties.insert(k.into(), v.into());
        }
        r
    }

    /// A notice that shows nothing but the id fields.
    fn bare() -> Notice {
        Notice {
            request_id: "InfraSafe_1234".into(),
            request_number: "1234".into(),
            safe: "InfraSafe".into(),
            requester: Some("dave@example.test".into()),
            account: None,
            device_user: None,
            address: None,
            reason: None,
            issued_on: None,
            start_date: None,
            end_date: None,
            notice_subject: None,
            shape: Shape::Inline,
            forward_depth: 1,
            envelope: Envelope::default(),
            decision: Default::default(),
            shown_values: Default::default(),
        }
    }

    /// The notice of outlook-desktop-en.eml (dates in US format, vault at UTC+1).
    fn full() -> Notice {
        Notice {
            account: Some("Operating System-WinDomain-corp.example.com-adm_alice".into()),
            device_user: Some("adm_alice".into()),
            address: Some("corp.example.com".into()),
            reason: Some("Patch window CHG0012345".into()),
            issued_on: Some("3/4/2025 9:12:45 AM".into()),
            start_date: Some("3/4/2025 9:00:00 AM".into()),
            end_date: Some("3/4/2025 5:00:00 PM".into()),
            ..bare()
        }
    }

    fn refused(n: &Notice, r: &Request) -> (Field, Problem) {
        let m = check(n, r, &[]).expect_err("refused");
        (m.field, m.problem)
    }

    #[test]
    fn a_genuine_notice_matches_and_absent_fields_are_not_compared() {
        assert_eq!(check(&full(), &request(), &[]), Ok(()));
        // PVWA knows nothing of the account: a notice that shows no account field passes.
        let mut r = request();
        r.account_details.properties.clear();
        r.user_reason.clear();
        r.requestor_reason.clear();
        assert_eq!(check(&bare(), &r, &[]), Ok(()));
    }

    #[test]
    fn account_name_is_the_name_or_the_user_name_ignoring_case() {
        let r = request();
        for ok in [
            "Operating System-WinDomain-corp.example.com-adm_alice",
            "operating system-windomain-CORP.example.com-ADM_ALICE",
            "adm_alice",
            "ADM_Alice",
        ] {
            let n = Notice {
                account: Some(ok.into()),
                ..bare()
            };
            assert_eq!(check(&n, &r, &[]), Ok(()), "{ok}");
        }
        for bad in [
            "Operating System-WinDomain-corp.example.com-adm_bob",
            "adm_alice2",
            "corp.example.com",
        ] {
            let n = Notice {
                account: Some(bad.into()),
                ..bare()
            };
            assert_eq!(refused(&n, &r), (Field::Account, Problem::Differs), "{bad}");
        }
        // A property PVWA does not have never matches.
        let mut r2 = request();
        r2.account_details.properties.remove("Name");
        let n = Notice {
            account: Some("Operating System-WinDomain-corp.example.com-adm_alice".into()),
            ..bare()
        };
        assert_eq!(refused(&n, &r2), (Field::Account, Problem::Differs));
    }

    #[test]
    fn device_user_and_address() {
        let r = request();
        let n = |d: &str, a: &str| Notice {
            device_user: Some(d.into()),
            address: Some(a.into()),
            ..bare()
        };
        assert_eq!(check(&n("ADM_ALICE", "Corp.Example.com"), &r, &[]), Ok(()));
        assert_eq!(
            refused(&n("adm_bob", "corp.example.com"), &r),
            (Field::DeviceUser, Problem::Differs)
        );
        // The device user name is the UserName, not the account's Name.
        assert_eq!(
            refused(
                &n(
                    "Operating System-WinDomain-corp.example.com-adm_alice",
                    "corp.example.com"
                ),
                &r
            ),
            (Field::DeviceUser, Problem::Differs)
        );
        assert_eq!(
            refused(&n("adm_alice", "db01.example.com"), &r),
            (Field::Address, Problem::Differs)
        );
    }

    #[test]
    fn reason_whole_first_line_prefix_or_different() {
        let mut r = request();
        let n = |v: &str| Notice {
            reason: Some(v.into()),
            ..bare()
        };
        // As typed, or with PVWA's extra information, spaces normalised.
        assert_eq!(check(&n("Patch window CHG0012345"), &r, &[]), Ok(()));
        assert_eq!(check(&n("Patch  window   CHG0012345"), &r, &[]), Ok(()));
        assert_eq!(
            check(
                &n("(ConnectionClient=PSM-RDP) Patch window CHG0012345"),
                &r,
                &[]
            ),
            Ok(())
        );
        // Different, a prefix of a short reason, or a different case: refused.
        for bad in [
            "Patch window CHG0099999",
            "Patch window",
            "patch window chg0012345",
        ] {
            assert_eq!(
                refused(&n(bad), &r),
                (Field::Reason, Problem::Differs),
                "{bad}"
            );
        }
        // A reason of several lines: the reader takes the first.
        r.user_reason = "Patch window CHG0012345\r\nthen reboot db01".into();
        r.requestor_reason = format!("(ConnectionClient=PSM-RDP) {}", r.user_reason);
        assert_eq!(check(&n("Patch window CHG0012345"), &r, &[]), Ok(()));
        assert_eq!(
            refused(&n("then reboot db01"), &r),
            (Field::Reason, Problem::Differs)
        );
        // A reason longer than the reader's bound: the cut line is a prefix of it.
        let long: String = "word ".repeat(200);
        r.user_reason = long.clone();
        let cut = clean(&long, MAX_VALUE_CHARS);
        assert_eq!(check(&n(&cut), &r, &[]), Ok(()));
        // A short prefix is not a cut line.
        assert_eq!(
            refused(&n("word word"), &r),
            (Field::Reason, Problem::Differs)
        );
        // A cut line that PVWA's reason does not start with.
        let other = format!("x{}", &cut[1..]);
        assert_eq!(refused(&n(&other), &r), (Field::Reason, Problem::Differs));
        // PVWA has no reason: any shown reason is refused.
        r.user_reason.clear();
        r.requestor_reason.clear();
        assert_eq!(refused(&n("word"), &r), (Field::Reason, Problem::Differs));
    }

    fn issued(v: &str) -> Notice {
        Notice {
            issued_on: Some(v.into()),
            ..bare()
        }
    }

    #[test]
    fn every_builtin_date_format_is_read() {
        let r = request();
        // 2025-03-04T08:12:45Z shown in UTC+1 (09:12:45), in many formats.
        for ok in [
            "2025-03-04T09:12:45",
            "2025-03-04 09:12:45",
            "2025-03-04T09:12:45.123",
            "2025-03-04 09:12",
            "2025/03/04 09:12:45",
            "3/4/2025 9:12:45 AM",
            "03/04/2025 09:12 AM",
            "3/4/2025 09:12:45",
            "4/3/2025 09:12:45",
            "04/03/2025 09:12",
            "4/3/2025 9:12:45 am",
            "04.03.2025 09:12:45",
            "4.3.2025 09:12",
            "04-03-2025 09:12:45",
            "Tuesday, March 4, 2025 9:12:45 AM",
            "Tuesday, March 4, 2025 9:12 AM",
            "March 4, 2025 9:12:45 AM",
            "Tue, 04 Mar 2025 09:12:45",
            "4 March 2025 09:12:45",
            "Tue Mar 4 09:12:45 2025",
            // zoned: the instant itself
            "2025-03-04T09:12:45+01:00",
            "2025-03-04T08:12:45Z",
            "2025-03-04 09:12:45 +0100",
            "Tue, 04 Mar 2025 09:12:45 +0100",
            "2025-03-04 08:12:45 UTC",
            // date only: PVWA's day under some offset
            "2025-03-04",
            "3/4/2025",
            "04.03.2025",
        ] {
            assert_eq!(check(&issued(ok), &r, &[]), Ok(()), "{ok}");
        }
    }

    #[test]
    fn a_local_time_differs_from_utc_by_a_valid_offset_only() {
        let r = request();
        // 08:12:45Z at UTC-14 … UTC+14, at :30 and :45 offsets, and 59 s off.
        for ok in [
            "2025-03-03 18:12:45",
            "2025-03-04 22:12:45",
            "2025-03-04 13:42:45",
            "2025-03-04 14:57:45",
            "2025-03-04 08:12:45",
            "2025-03-04 09:13:44",
            "2025-03-04 09:11:46",
        ] {
            assert_eq!(check(&issued(ok), &r, &[]), Ok(()), "{ok}");
        }
        // Not a multiple of 15 minutes, more than 60 s off, or beyond ±14 h.
        for bad in [
            "2025-03-04 09:20:45",
            "2025-03-04 09:14:00",
            "2025-03-04 09:11:30",
            "2025-03-04 22:27:45",
            "2025-03-03 17:57:45",
            "2025-03-05 09:12:45",
            // zoned: must be the instant
            "2025-03-04T09:12:45+02:00",
            "2025-03-04 09:12:45 UTC",
            // a day no offset reaches
            "2025-03-06",
        ] {
            assert_eq!(
                refused(&issued(bad), &r),
                (Field::IssuedOn, Problem::Differs),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_access_window_is_compared_and_absent_in_pvwa_refuses() {
        let mut r = request();
        let n = |from: &str, to: &str| Notice {
            start_date: Some(from.into()),
            end_date: Some(to.into()),
            ..bare()
        };
        assert_eq!(
            check(&n("3/4/2025 9:00:00 AM", "3/4/2025 5:00:00 PM"), &r, &[]),
            Ok(())
        );
        assert_eq!(
            refused(&n("3/4/2025 9:00:00 AM", "3/4/2025 5:20:00 PM"), &r),
            (Field::EndDate, Problem::Differs)
        );
        // Each date is a valid offset from its instant (UTC+1 and UTC+3), but one vault shows
        // them all in one time zone, whose offsets differ by at most an hour (daylight-saving
        // time): a window shifted by whole hours is refused.
        assert_eq!(
            refused(&n("3/4/2025 9:00:00 AM", "3/4/2025 7:00:00 PM"), &r),
            (Field::EndDate, Problem::Differs)
        );
        assert_eq!(
            check(&n("3/4/2025 9:00:00 AM", "3/4/2025 6:00:00 PM"), &r, &[]),
            Ok(())
        );
        let issued_too = Notice {
            issued_on: Some("3/4/2025 11:12:45 AM".into()),
            ..n("3/4/2025 9:00:00 AM", "3/4/2025 5:00:00 PM")
        };
        assert_eq!(
            refused(&issued_too, &r),
            (Field::StartDate, Problem::Differs)
        );
        assert_eq!(
            refused(&n("3/4/2025 9:07:00 AM", "3/4/2025 5:00:00 PM"), &r),
            (Field::StartDate, Problem::Differs)
        );
        // PVWA has no access window (0): a shown window is refused, even 1970-01-01.
        r.access_from = 0;
        r.access_to = 0;
        assert_eq!(
            refused(&n("1/1/1970 12:00:00 AM", "1/1/1970 12:00:00 AM"), &r),
            (Field::StartDate, Problem::Differs)
        );
        assert_eq!(
            refused(&n("1970-01-01T00:00:00Z", "1970-01-01"), &r),
            (Field::StartDate, Problem::Differs)
        );
        // A template that writes "no window" out: accepted where PVWA has none, refused
        // where it has one.
        assert_eq!(check(&n("N/A", "-"), &r, &[]), Ok(()));
        assert_eq!(check(&n("None", "Unlimited"), &r, &[]), Ok(()));
        assert_eq!(
            refused(&n("N/A", "tomorrow"), &r),
            (Field::EndDate, Problem::UnreadableDate)
        );
        let r2 = request();
        assert_eq!(
            refused(&n("N/A", "N/A"), &r2),
            (Field::StartDate, Problem::Differs)
        );
        let mut r = request();
        r.creation_date = 0;
        assert_eq!(
            refused(&issued("1970-01-01 00:00:00"), &r),
            (Field::IssuedOn, Problem::Differs)
        );
    }

    #[test]
    fn an_unreadable_date_refuses_and_names_the_setting() {
        let r = request();
        for v in [
            "4. März 2025 09:12",
            "yesterday",
            "2025-13-45 09:12:45",
            "9:12:45 AM",
        ] {
            let m = check(&issued(v), &r, &[]).expect_err(v);
            assert_eq!(
                (m.field, m.problem),
                (Field::IssuedOn, Problem::UnreadableDate)
            );
            let text = m.message("InfraSafe_1234");
            assert!(text.contains("notice.date_formats"), "{text}");
            assert!(text.contains("issued-on date"), "{text}");
        }
        // A configured format reads it.
        let v = "4.3.2025, 09.12 Uhr";
        assert_eq!(
            refused(&issued(v), &r),
            (Field::IssuedOn, Problem::UnreadableDate)
        );
        let extra = vec!["%d.%m.%Y, %H.%M Uhr".to_string()];
        assert_eq!(check(&issued(v), &r, &extra), Ok(()));
        let extra = vec!["%Y%m%d%H%M%S".to_string()];
        assert_eq!(check(&issued("20250304091245"), &r, &extra), Ok(()));
        assert_eq!(
            check(&issued("20250304091845"), &r, &extra)
                .expect_err("6 minutes off")
                .problem,
            Problem::Differs
        );
    }

    #[test]
    fn every_value_shown_is_compared_not_only_the_first() {
        let r = request();
        // The plain-text rendering shows the genuine account, the HTML one another: both are
        // compared (the reader keeps both in `shown_values`).
        let mut n = Notice {
            account: Some("adm_alice".into()),
            ..bare()
        };
        n.shown_values
            .insert(Field::Account, vec!["adm_alice".into(), "adm_bob".into()]);
        let m = check(&n, &r, &[]).expect_err("refused");
        assert_eq!((m.field, m.shown.as_str()), (Field::Account, "adm_bob"));
        let mut n = Notice {
            issued_on: Some("3/4/2025 9:12:45 AM".into()),
            ..bare()
        };
        n.shown_values.insert(
            Field::IssuedOn,
            vec!["3/4/2025 9:12:45 AM".into(), "3/5/2025 9:12:45 AM".into()],
        );
        let m = check(&n, &r, &[]).expect_err("refused");
        assert_eq!(
            (m.field, m.shown.as_str()),
            (Field::IssuedOn, "3/5/2025 9:12:45 AM")
        );
        // Both renderings agreeing pass.
        let mut n = full();
        n.shown_values
            .insert(Field::Reason, vec!["Patch window CHG0012345".into()]);
        assert_eq!(check(&n, &r, &[]), Ok(()));
    }

    /// Genuine forwards stay actionable: in every mail of the corpus the reader accepts, all
    /// renderings show the same value for each field, and every date is in a built-in format.
    #[test]
    fn the_corpus_renderings_agree_and_their_dates_are_read() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mails");
        let mut read = 0;
        for e in std::fs::read_dir(&dir).expect("corpus") {
            let p = e.expect("entry").path();
            if p.extension().is_none_or(|x| x != "eml") {
                continue;
            }
            let raw = std::fs::read(&p).expect("mail");
            let Ok(n) = crate::notice::parse(&raw, &crate::notice::NoticeConfig::default()) else {
                continue;
            };
            read += 1;
            for (f, vs) in &n.shown_values {
                assert!(
                    vs.iter().all(|v| v.to_lowercase() == vs[0].to_lowercase()),
                    "{}: {f:?} {vs:?}",
                    p.display()
                );
                if matches!(f, Field::IssuedOn | Field::StartDate | Field::EndDate) {
                    for v in vs {
                        assert_ne!(
                            read_date(v, CREATED, &[]),
                            DateRead::Unreadable,
                            "{}: {v}",
                            p.display()
                        );
                    }
                }
            }
        }
        assert!(read >= 20, "{read} mails read");
    }

    #[test]
    fn date_formats_are_validated_and_the_address_label_is_read() {
        use crate::notice::NoticeConfig;
        let origin = crate::config::Origin::default();
        for bad in ["", "  ", "%d.%m.%Y %Q", "%"] {
            let cfg = NoticeConfig {
                date_formats: vec!["%Y-%m-%d".into(), bad.into()],
                ..NoticeConfig::default()
            };
            let e = cfg.validate(&origin).expect_err(bad);
            assert_eq!(e.key.as_deref(), Some("notice.date_formats[1]"), "{bad}");
        }
        let cfg = NoticeConfig {
            date_formats: vec!["%d.%m.%Y, %H.%M Uhr".into()],
            ..NoticeConfig::default()
        };
        assert!(cfg.validate(&origin).is_ok());
        // `Address:` is a notice field (default label), read like the others.
        let raw = "From: Vault <vault@example.test>\r\nTo: a@example.test\r\nSubject: Notification: Password access request\r\nDate: Tue, 4 Mar 2025 09:12:45 +0100\r\nMessage-ID: <a@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nRequester email: dave@example.test\r\nSafe: InfraSafe\r\nRequest Id: 1234\r\nAddress: corp.example.com\r\n";
        let n = crate::notice::parse(raw.as_bytes(), &NoticeConfig::default()).expect("read");
        assert_eq!(n.address.as_deref(), Some("corp.example.com"));
        assert_eq!(check(&n, &request(), &[]), Ok(()));
        let n = Notice {
            address: Some("db01.example.test".into()),
            ..n
        };
        assert_eq!(refused(&n, &request()), (Field::Address, Problem::Differs));
    }

    #[test]
    fn the_message_names_the_field_and_the_shown_value_not_pvwa_s() {
        let n = Notice {
            account: Some("Operating System-UnixSSH-db09-postgres".into()),
            ..full()
        };
        let m = check(&n, &request(), &[]).expect_err("refused");
        assert_eq!(m.field_name(), "account name");
        let text = m.message("InfraSafe_1234");
        assert!(text.contains("account name"), "{text}");
        assert!(text.contains("db09-postgres"), "{text}");
        assert!(text.contains("InfraSafe_1234"), "{text}");
        assert!(!text.contains("adm_alice"), "{text}");
        assert_eq!(NOTICE_MISMATCH, "notice_mismatch");
    }
}

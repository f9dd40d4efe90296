//! Onboarding and offboarding records: from flags, or JSON on stdin for identity-system hooks.
//!
//! Input is one JSON object (it may span lines) or JSON Lines (one object per line). When the
//! whole input does not read as a sequence of JSON values, it is read line by line, so one
//! malformed line is refused with its number while the others are processed. Blank lines and
//! lines starting with `#` are skipped in line mode.
//!
//! A record names applications as `<site>/<application>`; [`super::ops`] resolves them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest input read from stdin.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// A time: epoch milliseconds, `now`, `YYYY-MM-DD` (a whole day in the configured zone) or
/// RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TimeInput {
    Millis(i64),
    Text(String),
}

/// Which instant of a date-only day a time means: its first (a start of access) or its last (an
/// end of access, so the vendor keeps the whole of the last day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayEdge {
    Start,
    End,
}

impl TimeInput {
    pub fn to_millis(
        &self,
        now_ms: i64,
        zone: chrono_tz::Tz,
        edge: DayEdge,
    ) -> Result<i64, String> {
        match self {
            TimeInput::Millis(ms) if *ms >= 100_000_000_000 => Ok(*ms),
            TimeInput::Millis(n) => Err(format!(
                "{n} is not a time in epoch milliseconds (seconds are not accepted)"
            )),
            TimeInput::Text(s) => parse_time_in(s, now_ms, zone, edge),
        }
    }
}

/// Parse `now`, `YYYY-MM-DD` (midnight UTC), RFC 3339, or a number of epoch milliseconds.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    parse_time_in(s, now_ms, chrono_tz::Tz::UTC, DayEdge::Start)
}

/// Parse `now`, `YYYY-MM-DD`, RFC 3339, or a number of epoch milliseconds. A date alone is a day
/// of `zone`: its first millisecond for [`DayEdge::Start`], its last for [`DayEdge::End`].
pub fn parse_time_in(
    s: &str,
    now_ms: i64,
    zone: chrono_tz::Tz,
    edge: DayEdge,
) -> Result<i64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Ok(ms) = t.parse::<i64>() {
        return TimeInput::Millis(ms).to_millis(now_ms, zone, edge);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let day = match edge {
            DayEdge::Start => Some(d),
            DayEdge::End => d.succ_opt(),
        };
        if let Some(ms) = day.and_then(|d| day_start(zone, d)) {
            return Ok(match edge {
                DayEdge::Start => ms,
                DayEdge::End => ms - 1,
            });
        }
    }
    Err(format!(
        "`{}` is not a time: use YYYY-MM-DD, RFC 3339 (2026-01-31T18:00:00Z), `now`, or epoch milliseconds",
        crate::text::printable(t)
    ))
}

/// The first instant of a day in a zone (midnight, or the end of a daylight-saving gap at
/// midnight), in epoch milliseconds.
fn day_start(zone: chrono_tz::Tz, day: chrono::NaiveDate) -> Option<i64> {
    use chrono::TimeZone;
    (0..=8).find_map(|quarter| {
        let local = day.and_hms_opt(0, 0, 0)? + chrono::Duration::minutes(15 * quarter);
        zone.from_local_datetime(&local)
            .earliest()
            .map(|t| t.timestamp_millis())
    })
}

/// Allowed days and hours (`accessTimeDetails`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessTimeInput {
    #[serde(alias = "timeZone")]
    pub time_zone: String,
    #[serde(default, alias = "allowedDays")]
    pub allowed_days: Vec<String>,
    /// `HH:MM`; with `to`, access is limited to those hours.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// One vendor to invite. Our snake_case names; the API's camelCase names are accepted too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VendorRequest {
    #[serde(alias = "firstName")]
    pub first_name: String,
    #[serde(alias = "lastName")]
    pub last_name: String,
    #[serde(alias = "company_name", alias = "companyName")]
    pub company: String,
    #[serde(alias = "email_address", alias = "emailAddress")]
    pub email: String,
    #[serde(alias = "phone_number", alias = "phoneNumber")]
    pub phone: String,
    /// `<site>/<application>` names.
    #[serde(default)]
    pub applications: Vec<String>,
    #[serde(default, alias = "accessStartDate", alias = "access_start_date")]
    pub access_start: Option<TimeInput>,
    #[serde(default, alias = "accessEndDate", alias = "access_end_date")]
    pub access_end: Option<TimeInput>,
    /// Access length in days from the start, when `access_end` is absent.
    #[serde(default)]
    pub access_days: Option<u32>,
    /// `Activated` (default) or `RequiresAdminConfirmation`.
    #[serde(default, alias = "initialStatus")]
    pub initial_status: Option<String>,
    #[serde(default, alias = "canInvite")]
    pub can_invite: Option<bool>,
    #[serde(default, alias = "maxNumOfInvitedVendors")]
    pub max_invited_vendors: Option<u32>,
    #[serde(default, alias = "invitedVendorsInitialStatus")]
    pub invited_vendors_initial_status: Option<String>,
    #[serde(default, alias = "phoneAndEmailAuth")]
    pub phone_and_email_auth: Option<bool>,
    #[serde(default)]
    pub comments: Option<String>,
    #[serde(default, alias = "customText")]
    pub custom_text: Option<String>,
    /// `ProvisionedByAlero`, `ManagedByAdmin` or `None`.
    #[serde(default, alias = "provisioningType")]
    pub provisioning_type: Option<String>,
    #[serde(default, alias = "provisioningUsername")]
    pub provisioning_username: Option<String>,
    /// Group names or IDs.
    #[serde(default, alias = "provisioningGroups")]
    pub provisioning_groups: Vec<String>,
    #[serde(default, alias = "idaptiveRoles")]
    pub identity_roles: Vec<String>,
    #[serde(default, alias = "enableWebAppsAccess")]
    pub enable_web_apps_access: Option<bool>,
    #[serde(default, alias = "accessTimeDetails")]
    pub access_time: Option<AccessTimeInput>,
}

/// One vendor to offboard. Other fields (a whole onboarding record) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct OffboardRequest {
    #[serde(alias = "email_address", alias = "emailAddress")]
    pub email: String,
}

/// A validated request: the invitation minus the resolved IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub base: super::model::NewInvitation,
    pub application_names: Vec<String>,
    pub group_names: Vec<String>,
}

const STATUSES: &[&str] = &["Activated", "RequiresAdminConfirmation"];
const PROVISIONING: &[&str] = &["ProvisionedByAlero", "ManagedByAdmin", "None"];
const DAYS: &[&str] = &[
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
    "SUNDAY",
];

fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<String, String> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(v.trim()))
        .map(|a| a.to_string())
        .ok_or_else(|| {
            format!(
                "{field}: `{}` is not one of {}",
                crate::text::printable(v),
                allowed.join(", ")
            )
        })
}

fn text(field: &str, v: &str, max: usize) -> Result<String, String> {
    let t = v.trim();
    if t.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if t.chars().count() > max {
        return Err(format!("{field} is longer than {max} characters"));
    }
    // What the mail watcher refuses in a field: text that may display as something other than
    // what it says. Here it would reach the invitation CyberArk mails to the vendor. A line
    // separator counts even at an end, where `trim` would have hidden it.
    let mut hidden = crate::text::hidden_characters(t);
    if hidden.is_empty() && v.chars().any(crate::text::is_line_separator) {
        hidden = crate::text::hidden_characters(v);
    }
    if !hidden.is_empty() {
        return Err(format!(
            "{field} holds control, line-break, invisible or text-direction characters ({}): \
             they would reach the invitation mail; remove them",
            hidden.join(" ")
        ));
    }
    Ok(t.to_string())
}

/// A plausible mail address: one `@`, a dotted domain, no spaces or controls.
pub fn check_email(v: &str) -> Result<String, String> {
    let e = text("email", v, 254)?;
    let ok = match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !e
                    .chars()
                    .any(|c| c.is_whitespace() || "<>,;\"()[]\\".contains(c))
        }
        None => false,
    };
    if ok {
        Ok(e)
    } else {
        Err(format!(
            "email `{}` is not a mail address",
            crate::text::printable(&e)
        ))
    }
}

/// An international phone number, normalised to `+` and digits (the API wants `+17035550100`).
pub fn check_phone(v: &str) -> Result<String, String> {
    let t = v.trim();
    let bad = || {
        format!(
            "phone `{}` is not an international number (+ and country code, e.g. +17035550100)",
            crate::text::printable(t)
        )
    };
    let rest = t.strip_prefix('+').ok_or_else(bad)?;
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || " -().".contains(c))
    {
        return Err(bad());
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 7 || digits.len() > 15 || digits.starts_with('0') {
        return Err(bad());
    }
    Ok(format!("+{digits}"))
}

fn hhmm(field: &str, v: &str) -> Result<u32, String> {
    let (h, m) = v
        .trim()
        .split_once(':')
        .ok_or_else(|| format!("{field}: `{}` is not HH:MM", crate::text::printable(v)))?;
    match (h.parse::<u32>(), m.parse::<u32>()) {
        (Ok(h), Ok(m)) if h <= 24 && m < 60 && (h < 24 || m == 0) && m.to_string().len() <= 2 => {
            Ok(h * 3600 + m * 60)
        }
        _ => Err(format!(
            "{field}: `{}` is not HH:MM",
            crate::text::printable(v)
        )),
    }
}

impl VendorRequest {
    /// Check every field; times relative to `now_ms`, a date alone read as a whole day of
    /// `zone`. The first problem is reported.
    pub fn validate(&self, now_ms: i64, zone: chrono_tz::Tz) -> Result<Validated, String> {
        let first_name = text("first_name", &self.first_name, 100)?;
        let last_name = text("last_name", &self.last_name, 100)?;
        let company = text("company", &self.company, 200)?;
        let email = check_email(&self.email)?;
        let phone = check_phone(&self.phone)?;
        if self.applications.is_empty() {
            return Err("applications: name at least one as <site>/<application>".into());
        }
        let mut application_names = Vec::new();
        for a in &self.applications {
            let a = text("applications", a, 300)?;
            if !a.contains('/') {
                return Err(format!(
                    "applications: `{}` is not <site>/<application>",
                    crate::text::printable(&a)
                ));
            }
            application_names.push(a);
        }
        let start = match &self.access_start {
            Some(t) => t
                .to_millis(now_ms, zone, DayEdge::Start)
                .map_err(|e| format!("access_start: {e}"))?,
            None => now_ms,
        };
        let end = match (&self.access_end, self.access_days) {
            (Some(_), Some(_)) => return Err("give access_end or access_days, not both".into()),
            (Some(t), None) => t
                .to_millis(now_ms, zone, DayEdge::End)
                .map_err(|e| format!("access_end: {e}"))?,
            (None, Some(d)) if (1..=3650).contains(&d) => start + i64::from(d) * 86_400_000,
            (None, Some(_)) => return Err("access_days must be between 1 and 3650".into()),
            (None, None) => return Err("access_end or access_days is required".into()),
        };
        if end <= start {
            return Err("access_end must be after access_start".into());
        }
        if end <= now_ms {
            return Err("access_end is in the past".into());
        }
        let initial_status = match &self.initial_status {
            Some(s) => one_of("initial_status", s, STATUSES)?,
            None => "Activated".into(),
        };
        let invited_vendors_initial_status = self
            .invited_vendors_initial_status
            .as_deref()
            .map(|s| one_of("invited_vendors_initial_status", s, STATUSES))
            .transpose()?;
        let provisioning_type = self
            .provisioning_type
            .as_deref()
            .map(|s| one_of("provisioning_type", s, PROVISIONING))
            .transpose()?;
        let opt_text =
            |field: &str, v: &Option<String>, max: usize| -> Result<Option<String>, String> {
                v.as_deref().map(|s| text(field, s, max)).transpose()
            };
        let access_time_details = match &self.access_time {
            None => None,
            Some(a) => {
                let tz = text("access_time.time_zone", &a.time_zone, 64)?;
                if !tz
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
                {
                    return Err(format!(
                        "access_time.time_zone: `{tz}` is not a time zone name"
                    ));
                }
                let days = if a.allowed_days.is_empty() {
                    DAYS.iter().map(|d| d.to_string()).collect()
                } else {
                    a.allowed_days
                        .iter()
                        .map(|d| one_of("access_time.allowed_days", d, DAYS))
                        .collect::<Result<Vec<_>, _>>()?
                };
                let (all_day, s, e) = match (&a.from, &a.to) {
                    (None, None) => (true, 0, 0),
                    (Some(f), Some(t)) => {
                        let (s, e) = (hhmm("access_time.from", f)?, hhmm("access_time.to", t)?);
                        if e <= s {
                            return Err("access_time.to must be after access_time.from".into());
                        }
                        (false, s, e)
                    }
                    _ => return Err("access_time needs both from and to, or neither".into()),
                };
                Some(super::model::AccessTimeDetails {
                    time_zone: tz,
                    allowed_days: days,
                    all_day,
                    working_hours_start_seconds: s,
                    working_hours_end_seconds: e,
                })
            }
        };
        let identity_roles = if self.identity_roles.is_empty() {
            None
        } else {
            Some(
                self.identity_roles
                    .iter()
                    .map(|r| text("identity_roles", r, 200))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        let group_names = self
            .provisioning_groups
            .iter()
            .map(|g| text("provisioning_groups", g, 200))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Validated {
            base: super::model::NewInvitation {
                company_name: company,
                email_address: email,
                first_name,
                last_name,
                phone_number: phone,
                initial_status,
                access_start_date: start,
                access_end_date: end,
                can_invite: self.can_invite.unwrap_or(false),
                applications: Vec::new(),
                access_time_details,
                comments: opt_text("comments", &self.comments, 1000)?,
                provisioning_type,
                provisioning_username: opt_text(
                    "provisioning_username",
                    &self.provisioning_username,
                    200,
                )?,
                provisioning_groups: None,
                idaptive_roles: identity_roles,
                custom_text: opt_text("custom_text", &self.custom_text, 200)?,
                max_num_of_invited_vendors: self.max_invited_vendors,
                phone_and_email_auth: self.phone_and_email_auth,
                invited_vendors_initial_status,
                enable_web_apps_access: self.enable_web_apps_access,
            },
            application_names,
            group_names,
        })
    }
}

/// A JSON value read with its first duplicate key, if any (serde_json keeps the last value of a
/// key given twice; a record with `"email"` twice must be refused, not read as the second).
struct Checked {
    value: Value,
    /// Path of the first key given twice, as `access_time.time_zone` or `applications[1].x`.
    duplicate: Option<String>,
}

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Checked, E> {
        Ok(Checked::plain(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Checked, E> {
        Ok(Checked::plain(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Checked, E> {
        Ok(Checked::plain(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Checked, E> {
        Ok(Checked::plain(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Checked, E> {
        Ok(Checked::plain(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Checked, E> {
        Ok(Checked::plain(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked::plain(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Checked, E> {
        Ok(Checked::plain(Value::Null))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
        Checked::deserialize(d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        let mut items = Vec::new();
        let mut duplicate = None;
        while let Some(c) = seq.next_element::<Checked>()? {
            if duplicate.is_none() {
                duplicate = c
                    .duplicate
                    .map(|p| format!("[{}]{}", items.len(), dotted(&p)));
            }
            items.push(c.value);
        }
        Ok(Checked {
            value: Value::Array(items),
            duplicate,
        })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut out = serde_json::Map::new();
        let mut duplicate = None;
        while let Some(key) = map.next_key::<String>()? {
            let c: Checked = map.next_value()?;
            if duplicate.is_none() {
                if out.contains_key(&key) {
                    duplicate = Some(key.clone());
                } else if let Some(p) = c.duplicate {
                    duplicate = Some(format!("{key}{}", dotted(&p)));
                }
            }
            out.insert(key, c.value);
        }
        Ok(Checked {
            value: Value::Object(out),
            duplicate,
        })
    }
}

impl Checked {
    fn plain(value: Value) -> Self {
        Checked {
            value,
            duplicate: None,
        }
    }

    /// The record as `T`: refused when not an object or when a key is given twice.
    fn record<T: DeserializeOwned>(self, line: usize) -> Result<T, String> {
        if let Some(p) = self.duplicate {
            return Err(format!(
                "line {line}: the key `{}` is given twice; a record names each field once",
                crate::text::printable(&p)
            ));
        }
        match self.value {
            v @ Value::Object(_) => {
                serde_json::from_value::<T>(v).map_err(|e| format!("line {line}: {e}"))
            }
            _ => Err(format!("line {line}: expected a JSON object")),
        }
    }
}

/// `x` → `.x`, `[1].x` stays.
fn dotted(path: &str) -> String {
    if path.starts_with('[') {
        path.to_string()
    } else {
        format!(".{path}")
    }
}

/// Records of stdin with their line numbers; a record that cannot be read is an error naming
/// its line, and the others are still returned.
pub fn read_records<T: DeserializeOwned>(input: &str) -> Vec<(usize, Result<T, String>)> {
    let line_of = |offset: usize| input[..offset].matches('\n').count() + 1;
    // A sequence of JSON values: one object over several lines, or JSON Lines.
    let mut values: Vec<(usize, Checked)> = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(input).into_iter::<Checked>();
    let mut whole = true;
    loop {
        let before = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(v)) => {
                let skip = input[before..]
                    .char_indices()
                    .find(|(_, c)| !c.is_whitespace())
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                values.push((line_of(before + skip), v));
            }
            Some(Err(_)) => {
                whole = false;
                break;
            }
        }
    }
    if whole {
        return values
            .into_iter()
            .map(|(line, v)| (line, v.record::<T>(line)))
            .collect();
    }
    input
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map(|(n, l)| {
            let line = n + 1;
            let r = match serde_json::from_str::<Checked>(l.trim()) {
                Ok(v) => v.record::<T>(line),
                Err(e) => Err(format!(
                    "line {line}: not valid JSON ({})",
                    e.to_string()
                        .split(" at line")
                        .next()
                        .unwrap_or("syntax error")
                )),
            };
            (line, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn req() -> VendorRequest {
        VendorRequest {
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            company: "Acme Inc.".into(),
            email: "jane.doe@acme.example".into(),
            phone: "+1 (703) 555-0100".into(),
            applications: vec!["Main DC/Linux SSH".into()],
            access_days: Some(30),
            ..VendorRequest::default()
        }
    }

    #[test]
    fn a_valid_request_becomes_an_invitation() {
        let v = req().validate(NOW, chrono_tz::Tz::UTC).expect("valid");
        assert_eq!(v.base.phone_number, "+17035550100");
        assert_eq!(v.base.initial_status, "Activated");
        assert_eq!(v.base.access_start_date, NOW);
        assert_eq!(v.base.access_end_date, NOW + 30 * 86_400_000);
        assert!(!v.base.can_invite);
        assert_eq!(v.application_names, vec!["Main DC/Linux SSH"]);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: Vec<(VendorRequest, &str)> = vec![
            (
                VendorRequest {
                    email: "jane".into(),
                    ..req()
                },
                "email",
            ),
            (
                VendorRequest {
                    phone: "7035550100".into(),
                    ..req()
                },
                "phone",
            ),
            (
                VendorRequest {
                    applications: vec![],
                    ..req()
                },
                "applications",
            ),
            (
                VendorRequest {
                    applications: vec!["SSH".into()],
                    ..req()
                },
                "applications",
            ),
            (
                VendorRequest {
                    access_days: None,
                    ..req()
                },
                "access_end or access_days",
            ),
            (
                VendorRequest {
                    initial_status: Some("Open".into()),
                    ..req()
                },
                "initial_status",
            ),
            (
                VendorRequest {
                    first_name: " ".into(),
                    ..req()
                },
                "first_name",
            ),
            (
                VendorRequest {
                    access_days: None,
                    access_start: Some(TimeInput::Text("2024-01-01".into())),
                    access_end: Some(TimeInput::Text("2025-01-01".into())),
                    ..req()
                },
                "past",
            ),
            (
                VendorRequest {
                    access_start: Some(TimeInput::Millis(1_767_225_600)),
                    ..req()
                },
                "seconds",
            ),
        ];
        for (r, needle) in cases {
            let e = r.validate(NOW, chrono_tz::Tz::UTC).expect_err(needle);
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn text_that_displays_otherwise_is_refused_in_every_field_naming_it() {
        for bad in [
            "\u{202E}", "\u{200B}", "\u{200D}", "\u{00AD}", "\u{2028}", "\u{2066}", "\u{FEFF}",
        ] {
            let code = format!("U+{:04X}", u32::from(bad.chars().next().expect("c")));
            let cases: Vec<(VendorRequest, &str)> = vec![
                (
                    VendorRequest {
                        first_name: format!("Ja{bad}ne"),
                        ..req()
                    },
                    "first_name",
                ),
                (
                    VendorRequest {
                        last_name: format!("Doe{bad}"),
                        ..req()
                    },
                    "last_name",
                ),
                (
                    VendorRequest {
                        company: format!("{bad}Acme"),
                        ..req()
                    },
                    "company",
                ),
                (
                    VendorRequest {
                        email: format!("jane{bad}@acme.example"),
                        ..req()
                    },
                    "email",
                ),
                (
                    VendorRequest {
                        comments: Some(format!("ok{bad}x")),
                        ..req()
                    },
                    "comments",
                ),
                (
                    VendorRequest {
                        custom_text: Some(format!("t{bad}")),
                        ..req()
                    },
                    "custom_text",
                ),
                (
                    VendorRequest {
                        applications: vec![format!("Main DC/Linux{bad} SSH")],
                        ..req()
                    },
                    "applications",
                ),
            ];
            for (r, field) in cases {
                let e = r.validate(NOW, chrono_tz::Tz::UTC).expect_err(field);
                assert!(
                    e.starts_with(field) && e.contains(&code),
                    "{field} {code}: {e}"
                );
            }
        }
        // Letters of any script stay welcome.
        let r = VendorRequest {
            first_name: "José".into(),
            last_name: "Müller-Lüdenscheidt".into(),
            company: "株式会社 Acme".into(),
            ..req()
        };
        assert!(r.validate(NOW, chrono_tz::Tz::UTC).is_ok());
    }

    #[test]
    fn a_date_only_end_keeps_the_whole_day_in_the_configured_zone() {
        let day = |s: &str, zone: chrono_tz::Tz| {
            VendorRequest {
                access_days: None,
                access_end: Some(TimeInput::Text(s.into())),
                ..req()
            }
            .validate(NOW, zone)
            .map(|v| (v.base.access_start_date, v.base.access_end_date))
        };
        // 2026-01-01 itself (NOW is its midnight UTC): the vendor keeps that whole day.
        assert_eq!(
            day("2026-01-01", chrono_tz::Tz::UTC),
            Ok((NOW, NOW + 86_400_000 - 1))
        );
        assert_eq!(
            day("2026-01-31", chrono_tz::Tz::UTC).expect("ok").1,
            NOW + 31 * 86_400_000 - 1
        );
        // In Berlin (UTC+1 in winter) the day ends an hour earlier in UTC.
        assert_eq!(
            day("2026-01-31", chrono_tz::Europe::Berlin).expect("ok").1,
            NOW + 31 * 86_400_000 - 3_600_000 - 1
        );
        // A date-only start is the first moment of its day in that zone.
        let r = VendorRequest {
            access_start: Some(TimeInput::Text("2026-01-02".into())),
            ..req()
        };
        assert_eq!(
            r.validate(NOW, chrono_tz::Europe::Berlin)
                .expect("ok")
                .base
                .access_start_date,
            NOW + 86_400_000 - 3_600_000
        );
        // An explicit time is taken as given.
        assert_eq!(
            day("2026-01-31T18:00:00Z", chrono_tz::Europe::Berlin)
                .expect("ok")
                .1,
            NOW + 30 * 86_400_000 + 18 * 3_600_000
        );
        // The same day as start and end is one whole day.
        let r = VendorRequest {
            access_days: None,
            access_start: Some(TimeInput::Text("2026-01-05".into())),
            access_end: Some(TimeInput::Text("2026-01-05".into())),
            ..req()
        };
        let v = r.validate(NOW, chrono_tz::Tz::UTC).expect("one day");
        assert_eq!(
            v.base.access_end_date - v.base.access_start_date,
            86_400_000 - 1
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth_naming_it() {
        let jane = r#""first_name":"J","last_name":"D","company":"A","phone":"+15555550100""#;
        let input = format!(
            "{{{jane},\"email\":\"j@a.example\",\"email\":\"evil@x.example\"}}\n\
             {{{jane},\"email\":\"j@a.example\",\"access_time\":{{\"time_zone\":\"UTC\",\"time_zone\":\"Asia/Tokyo\"}}}}\n\
             {{{jane},\"email\":\"j@a.example\",\"emailAddress\":\"k@a.example\"}}\n\
             {{{jane},\"email\":\"j@a.example\"}}\n"
        );
        let r = read_records::<VendorRequest>(&input);
        assert_eq!(r.len(), 4);
        let e = r[0].1.as_ref().expect_err("twice");
        assert!(
            e.starts_with("line 1:") && e.contains("`email` is given twice"),
            "{e}"
        );
        let e = r[1].1.as_ref().expect_err("nested");
        assert!(e.contains("`access_time.time_zone` is given twice"), "{e}");
        // A field under two of its names is refused too (serde's own duplicate check).
        assert!(r[2].1.is_err(), "{:?}", r[2].1);
        assert!(r[3].1.is_ok());
        // Inside a list, and in line mode (a broken line elsewhere).
        let input = "{\"email\":\"a@x.example\",\"x\":[{\"k\":1,\"k\":2}]}\n{\"email\":\n";
        let r = read_records::<OffboardRequest>(input);
        let e = r[0].1.as_ref().expect_err("in a list");
        assert!(e.contains("`x[0].k` is given twice"), "{e}");
        let r = read_records::<OffboardRequest>(
            "{\"email\":\"a@x.example\",\"email\":\"b@x.example\"}\n",
        );
        assert!(r[0].1.as_ref().expect_err("offboard").contains("`email`"));
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("2026-01-01", 0), Ok(NOW));
        assert_eq!(parse_time("2026-01-01T01:00:00+01:00", 0), Ok(NOW));
        assert_eq!(parse_time("now", 5), Ok(5));
        assert_eq!(parse_time("1767225600000", 0), Ok(NOW));
        assert!(parse_time("tomorrow", 0).is_err());
    }

    #[test]
    fn access_time_details() {
        let r = VendorRequest {
            access_time: Some(AccessTimeInput {
                time_zone: "Europe/Berlin".into(),
                allowed_days: vec!["monday".into(), "Friday".into()],
                from: Some("08:00".into()),
                to: Some("18:30".into()),
            }),
            ..req()
        };
        let d = r
            .validate(NOW, chrono_tz::Tz::UTC)
            .expect("valid")
            .base
            .access_time_details
            .expect("set");
        assert_eq!(d.allowed_days, vec!["MONDAY", "FRIDAY"]);
        assert!(!d.all_day);
        assert_eq!(
            (d.working_hours_start_seconds, d.working_hours_end_seconds),
            (28_800, 66_600)
        );
    }

    #[test]
    fn one_object_over_several_lines() {
        let input = "{\n  \"email\": \"a@x.example\"\n}\n";
        let r = read_records::<OffboardRequest>(input);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, 1);
        assert_eq!(r[0].1.as_ref().expect("ok").email, "a@x.example");
    }

    #[test]
    fn a_malformed_line_is_refused_with_its_number_and_the_others_read() {
        let input = "{\"email\":\"a@x.example\"}\n{\"email\": \"b@x.example\",\n\n# comment\n{\"email\":\"c@x.example\"}\n[1]\n";
        let r = read_records::<OffboardRequest>(input);
        let lines: Vec<usize> = r.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 5, 6]);
        assert!(r[0].1.is_ok());
        let e = r[1].1.as_ref().expect_err("bad");
        assert!(e.starts_with("line 2: not valid JSON"), "{e}");
        assert_eq!(r[2].1.as_ref().expect("ok").email, "c@x.example");
        assert!(r[3].1.as_ref().expect_err("array").contains("line 6"));
    }

    #[test]
    fn unknown_fields_in_onboarding_records_are_refused_with_the_line() {
        let input = "{\"first_name\":\"J\",\"last_name\":\"D\",\"company\":\"A\",\"email\":\"j@a.example\",\"phone\":\"+15555550100\"}\n{\"first_name\":\"J\",\"last_name\":\"D\",\"company\":\"A\",\"email\":\"j@a.example\",\"phone\":\"+15555550100\",\"colour\":\"red\"}\n";
        let r = read_records::<VendorRequest>(input);
        assert!(r[0].1.is_ok());
        let e = r[1].1.as_ref().expect_err("unknown");
        assert!(e.starts_with("line 2:") && e.contains("colour"), "{e}");
    }
}

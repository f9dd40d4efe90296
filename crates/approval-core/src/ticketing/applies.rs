//! Which requests need a valid ticket, and where their ticket comes from (for the watcher).
//!
//! A request needs a ticket when its safe matches one of the safe patterns OR its platform
//! (`PolicyID` or `PlatformName`) matches one of the platform patterns — the wider reading, so a
//! half-matching request is checked rather than waved through. The ticket id is PVWA's
//! `TicketingSystemProperties.Number`; only when that is empty is the request's reason searched
//! with the configured pattern, and a reason naming two different tickets is ambiguous.

use serde::Serialize;

use super::config::{AppliesConfig, anchored};
use crate::pvwa::Request;

/// The compiled `[ticketing.applies]`.
#[derive(Debug, Clone, Default)]
pub struct Applies {
    safes: Vec<regex::Regex>,
    platforms: Vec<regex::Regex>,
    reason: Option<regex::Regex>,
}

/// Where a request's ticket id was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketSource {
    /// `TicketingSystemProperties.Number`.
    Pvwa,
    /// The configured pattern over `UserReason` / `RequestorReason`.
    Reason,
}

/// What the watcher must do about tickets for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "need", rename_all = "snake_case")]
pub enum TicketNeed {
    /// Neither the safe nor the platform asks for a ticket.
    NotRequired,
    /// A ticket is required and none was found: refuse (`ticket_missing`).
    Missing,
    /// The reason names several different tickets: refuse (`ticket_ambiguous`).
    Ambiguous { candidates: Vec<String> },
    /// Validate this id.
    Found {
        ticket: String,
        source: TicketSource,
    },
}

impl Applies {
    /// Compile; errors are (key, message).
    pub fn compile(c: &AppliesConfig) -> Result<Self, (String, String)> {
        let list = |key: &str, v: &[String]| -> Result<Vec<regex::Regex>, (String, String)> {
            v.iter()
                .enumerate()
                .map(|(n, p)| anchored(p, true).map_err(|m| (format!("{key}[{n}]"), m)))
                .collect()
        };
        let reason = match &c.reason_pattern {
            None => None,
            Some(p) => Some(
                regex::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        (
                            "reason_pattern".to_string(),
                            format!("not a valid regular expression: {e}"),
                        )
                    })?,
            ),
        };
        Ok(Applies {
            safes: list("safes", &c.safes)?,
            platforms: list("platforms", &c.platforms)?,
            reason,
        })
    }

    /// Whether a request on this safe and platform needs a ticket.
    pub fn required(&self, safe: &str, platform_ids: &[&str]) -> bool {
        self.safes.iter().any(|r| r.is_match(safe))
            || self
                .platforms
                .iter()
                .any(|r| platform_ids.iter().any(|p| !p.is_empty() && r.is_match(p)))
    }

    /// The ticket the request carries, when it needs one.
    pub fn ticket_for(&self, req: &Request) -> TicketNeed {
        let props = &req.account_details.properties;
        let platforms: Vec<&str> = ["PolicyID", "PlatformID", "PlatformName"]
            .iter()
            .filter_map(|k| props.get(*k).map(String::as_str))
            .collect();
        if !self.required(&req.safe_name, &platforms) {
            return TicketNeed::NotRequired;
        }
        let number = req.ticketing_system_properties.number.trim();
        if !number.is_empty() {
            return TicketNeed::Found {
                ticket: number.to_string(),
                source: TicketSource::Pvwa,
            };
        }
        let Some(re) = &self.reason else {
            return TicketNeed::Missing;
        };
        let mut found: Vec<String> = Vec::new();
        for text in [&req.user_reason, &req.requestor_reason] {
            for c in re.captures_iter(text) {
                let m = c.get(1).or_else(|| c.get(0)).map(|m| m.as_str().trim());
                if let Some(m) = m.filter(|m| !m.is_empty())
                    && !found.iter().any(|f| f == m)
                {
                    found.push(m.to_string());
                }
            }
        }
        match found.len() {
            0 => TicketNeed::Missing,
            1 => TicketNeed::Found {
                ticket: found.remove(0),
                source: TicketSource::Reason,
            },
            _ => TicketNeed::Ambiguous { candidates: found },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applies(safes: &[&str], platforms: &[&str], reason: Option<&str>) -> Applies {
        Applies::compile(&AppliesConfig {
            safes: safes.iter().map(|s| s.to_string()).collect(),
            platforms: platforms.iter().map(|s| s.to_string()).collect(),
            reason_pattern: reason.map(str::to_string),
        })
        .expect("compiles")
    }

    fn request(safe: &str, platform: &str, number: &str, reason: &str) -> Request {
        let mut r = Request {
            safe_name: safe.into(),
            user_reason: reason.into(),
            requestor_reason: format!("(ConnectionClient=PSM-SSH) {reason}"),
            ..Request::default()
        };
        r.ticketing_system_properties.number = number.into();
        r.account_details
            .properties
            .insert("PlatformName".into(), platform.into());
        r.account_details
            .properties
            .insert("PolicyID".into(), platform.replace(' ', ""));
        r
    }

    #[test]
    fn safes_and_platforms_decide_case_insensitively_on_the_whole_name() {
        let a = applies(&["Prod-.*", "InfraSafe"], &["WinDomain"], None);
        assert!(a.required("prod-db", &[]));
        assert!(a.required("INFRASAFE", &[]));
        assert!(!a.required("InfraSafe2", &[]), "whole name");
        assert!(!a.required("Test-Prod-x", &[]));
        assert!(a.required("Other", &["windomain"]));
        assert!(!a.required("Other", &["UnixSSH", ""]));
        assert!(!applies(&[], &[], None).required("anything", &["x"]));
    }

    #[test]
    fn pvwa_number_wins_over_the_reason() {
        let a = applies(&["InfraSafe"], &[], Some(r"\b((?:INC|CHG)[0-9]{7})\b"));
        let r = request("InfraSafe", "Unix via SSH", "CHG0030001", "see INC0010001");
        assert_eq!(
            a.ticket_for(&r),
            TicketNeed::Found {
                ticket: "CHG0030001".into(),
                source: TicketSource::Pvwa
            }
        );
        let r = request("InfraSafe", "Unix via SSH", "", "patching per INC0010001");
        assert_eq!(
            a.ticket_for(&r),
            TicketNeed::Found {
                ticket: "INC0010001".into(),
                source: TicketSource::Reason
            }
        );
        let r = request(
            "InfraSafe",
            "Unix via SSH",
            " ",
            "INC0010001 and CHG0030001",
        );
        assert_eq!(
            a.ticket_for(&r),
            TicketNeed::Ambiguous {
                candidates: vec!["INC0010001".into(), "CHG0030001".into()]
            }
        );
        let r = request("InfraSafe", "Unix via SSH", "", "no ticket here");
        assert_eq!(a.ticket_for(&r), TicketNeed::Missing);
        let r = request("DBSafe", "Unix via SSH", "", "INC0010001");
        assert_eq!(a.ticket_for(&r), TicketNeed::NotRequired);
    }

    #[test]
    fn platform_rule_reads_policy_id_and_name_and_no_reason_pattern_means_missing() {
        let a = applies(&[], &["UnixviaSSH"], None);
        let r = request("Any", "Unix via SSH", "", "INC0010001");
        assert_eq!(a.ticket_for(&r), TicketNeed::Missing);
        let a = applies(&[], &["Windows.*"], None);
        assert_eq!(a.ticket_for(&r), TicketNeed::NotRequired);
    }

    #[test]
    fn bad_patterns_name_their_key() {
        let e = Applies::compile(&AppliesConfig {
            safes: vec!["ok".into(), "(".into()],
            ..Default::default()
        })
        .expect_err("bad");
        assert_eq!(e.0, "safes[1]");
    }
}

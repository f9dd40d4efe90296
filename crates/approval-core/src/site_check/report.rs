//! The site check's report: sections of items, each ok / warn / fail / skip with a one-line
//! finding and, for warn and fail, the fix. Serialised as a stable JSON document; the exit
//! status follows a Nagios check (0 all ok or skip, 1 a warning, 2 a failure).

use serde::Serialize;

/// The verdict of one item. Ordered by severity (`Skip` < `Ok` is not meaningful; see
/// [`Report::exit_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Not checked: not configured, or not readable by this tool (the finding says what to
    /// check by hand). Never stands for "fine".
    Skip,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// What was checked, e.g. `account lookup` or `safe DBSafe level 1`.
    pub check: String,
    pub status: Status,
    /// One line: what was found (never a secret value).
    pub finding: String,
    /// For warn and fail: what to change (the key, the permission, the value seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The sections, in report order.
pub const SECTIONS: [&str; 9] = [
    "config",
    "secrets",
    "files",
    "pvwa",
    "mailbox",
    "directory",
    "ticketing",
    "remote_access",
    // Last, so that the earlier sections keep their places in the JSON.
    "journal",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub name: &'static str,
    pub items: Vec<Item>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `ok`, `warn` or `fail`: the worst item.
    pub status: &'static str,
    /// 0, 1 or 2, as the process exits.
    pub exit: u8,
    pub sections: Vec<Section>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            status: "ok",
            exit: 0,
            sections: SECTIONS
                .iter()
                .map(|name| Section {
                    name,
                    items: Vec::new(),
                })
                .collect(),
        }
    }
}

impl Report {
    fn push(&mut self, section: &str, item: Item) {
        if let Some(s) = self.sections.iter_mut().find(|s| s.name == section) {
            s.items.push(item);
        }
        self.exit = self.exit_status();
        self.status = match self.exit {
            0 => "ok",
            1 => "warn",
            _ => "fail",
        };
    }

    pub fn ok(&mut self, section: &str, check: impl Into<String>, finding: impl Into<String>) {
        self.push(section, item(check, Status::Ok, finding, None));
    }

    pub fn skip(&mut self, section: &str, check: impl Into<String>, finding: impl Into<String>) {
        self.push(section, item(check, Status::Skip, finding, None));
    }

    pub fn warn(
        &mut self,
        section: &str,
        check: impl Into<String>,
        finding: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(
            section,
            item(check, Status::Warn, finding, Some(fix.into())),
        );
    }

    pub fn fail(
        &mut self,
        section: &str,
        check: impl Into<String>,
        finding: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(
            section,
            item(check, Status::Fail, finding, Some(fix.into())),
        );
    }

    /// 0 when every item is ok or skip, 1 when one warns, 2 when one fails.
    pub fn exit_status(&self) -> u8 {
        let all = self.sections.iter().flat_map(|s| s.items.iter());
        all.map(|i| match i.status {
            Status::Ok | Status::Skip => 0,
            Status::Warn => 1,
            Status::Fail => 2,
        })
        .max()
        .unwrap_or(0)
    }

    /// The items of a section.
    pub fn section(&self, name: &str) -> &[Item] {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.items.as_slice())
            .unwrap_or(&[])
    }

    /// The report for people: a headline, then each section and its items, fixes indented.
    pub fn render(&self) -> Vec<String> {
        let mut out = vec![format!(
            "SITE CHECK {}: {} ok, {} warning(s), {} failure(s), {} skipped",
            match self.exit {
                0 => "OK",
                1 => "WARNING",
                _ => "CRITICAL",
            },
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail),
            self.count(Status::Skip),
        )];
        for s in &self.sections {
            if s.items.is_empty() {
                continue;
            }
            out.push(format!("[{}]", s.name));
            for i in &s.items {
                out.push(format!(
                    "  {:<4} {}: {}",
                    i.status.label(),
                    i.check,
                    one_line(&i.finding)
                ));
                if let Some(fix) = &i.fix {
                    out.push(format!("       fix: {}", one_line(fix)));
                }
            }
        }
        out
    }

    fn count(&self, st: Status) -> usize {
        self.sections
            .iter()
            .flat_map(|s| s.items.iter())
            .filter(|i| i.status == st)
            .count()
    }
}

/// Control characters shown as `?`, bounded (a server's text may be hostile).
fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(400)
        .collect();
    if s.chars().count() > 400 {
        out.push('…');
    }
    out
}

fn item(
    check: impl Into<String>,
    status: Status,
    finding: impl Into<String>,
    fix: Option<String>,
) -> Item {
    Item {
        check: check.into(),
        status,
        finding: finding.into(),
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_item_sets_the_exit_and_skip_is_not_a_warning() {
        let mut r = Report::default();
        assert_eq!(r.exit, 0);
        r.skip(
            "mailbox",
            "full access",
            "not readable over EWS; check in Exchange admin",
        );
        r.ok("config", "load", "loaded");
        assert_eq!((r.exit, r.status), (0, "ok"));
        r.warn(
            "pvwa",
            "safe S level 1",
            "shared group",
            "use a group of its own",
        );
        assert_eq!((r.exit, r.status), (1, "warn"));
        r.fail(
            "secrets",
            "accounts.lookup.password",
            "unresolved",
            "set it",
        );
        assert_eq!((r.exit, r.status), (2, "fail"));
        r.ok("files", "config", "0600");
        assert_eq!(r.exit, 2);
        let text = r.render().join("\n");
        assert!(
            text.starts_with("SITE CHECK CRITICAL: 2 ok, 1 warning(s), 1 failure(s), 1 skipped"),
            "{text}"
        );
        assert!(text.contains("       fix: set it"), "{text}");
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["sections"][1]["name"], "secrets");
        assert_eq!(v["sections"][1]["items"][0]["status"], "fail");
        assert!(v["sections"][0]["items"][0].get("fix").is_none());
    }
}

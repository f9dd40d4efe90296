//! `check-approval-request --check-sender EMAIL --safe SAFE --level N`: may this person approve
//! this safe at this level, and through which group? Prints the verdict and the group path that
//! granted, or the reason it refused (`--json`: one stable object).
//!
//! Exit: 0 may approve, 1 may not, 69 directory (or PVWA) unreachable, 77 bind refused,
//! 78 configuration.

use approval_core::check_sender::check_sender;
use approval_core::directory::Verdict;
use approval_core::exit::Exit;
use approval_core::settings::Loaded;

use crate::Printer;

pub async fn run(
    p: &Printer,
    loaded: &Loaded,
    email: &str,
    safe: &str,
    level: u8,
) -> anyhow::Result<Exit> {
    let v = check_sender(loaded, email, safe, level).await?;
    if p.json() {
        p.json_line(&v)?;
    } else {
        for line in render(&v) {
            p.line(&line)?;
        }
    }
    Ok(if v.may_approve {
        Exit::Ok
    } else {
        Exit::Refused
    })
}

/// The verdict for people: a headline, then indented details.
pub fn render(v: &Verdict) -> Vec<String> {
    let mut out = Vec::new();
    if v.may_approve {
        out.push(format!(
            "MAY APPROVE: {} may approve safe {} at level {}",
            v.address, v.safe, v.level
        ));
    } else {
        out.push(format!(
            "MAY NOT APPROVE: {} may not approve safe {} at level {}",
            v.address, v.safe, v.level
        ));
        out.push(format!("  reason:   {}", v.reason));
    }
    if let Some(u) = &v.user {
        let mut ids: Vec<&str> = Vec::new();
        for x in [&u.sam_account_name, &u.user_principal_name, &u.mail]
            .into_iter()
            .flatten()
        {
            if !ids.iter().any(|i| i.eq_ignore_ascii_case(x)) {
                ids.push(x);
            }
        }
        for a in &u.aliases {
            if !ids.iter().any(|i| i.eq_ignore_ascii_case(a)) {
                ids.push(a);
            }
        }
        out.push(format!("  user:     {} ({})", u.dn, ids.join(", ")));
    }
    if let Some(g) = &v.granted_by {
        out.push(format!("  group:    {} ({})", g.group, g.group_dn));
        out.push(format!("  right:    {}", g.source));
        out.push(format!("  path:     {}", g.path_text()));
    }
    if !v.may_approve {
        for g in &v.groups {
            let status = match g.status {
                "found" => "in the directory".to_string(),
                "not_found" => "NOT FOUND in the directory".to_string(),
                _ => format!("AMBIGUOUS: {} groups answer to it", g.dns.len()),
            };
            out.push(format!("  approver: {} — {status}; {}", g.name, g.source));
        }
        if v.groups.is_empty() {
            for g in &v.approvers.groups {
                out.push(format!("  approver: {}; {}", g.name, g.source));
            }
        }
        for r in &v.approvers.roles {
            out.push(format!(
                "  approver: CyberArk Identity role {} ({} user(s)); {}",
                r.role,
                r.users.len(),
                r.source
            ));
        }
    }
    for s in &v.approvers.skipped {
        out.push(format!("  skipped:  {}: {}", s.member, s.reason));
    }
    let strategy = v
        .strategy
        .map(|s| format!("membership {}, ", s.name()))
        .unwrap_or_default();
    out.push(format!("  checked:  {strategy}directory {}", v.server));
    out
}

//! Pure name handling: DN comparison, display names, the safe-member-to-group mapping rule, safe
//! patterns and mail address checks. No I/O.

use super::config::GroupNameRule;

/// A DN in a form that compares equal for the spellings one server may hand back for the same
/// entry: attribute types and values lower-cased, spaces around `,` `=` `+` dropped, escapes kept.
/// (Not full RFC 4514 normalisation: hex escapes of plain characters stay as they are, so two
/// spellings may compare unequal — which only ever loses a match, never invents one.)
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars().peekable();
    let mut pending_space = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push_str(&pending_space);
                pending_space.clear();
                out.push('\\');
                if let Some(n) = chars.next() {
                    out.extend(n.to_lowercase());
                }
            }
            ',' | '=' | '+' => {
                pending_space.clear();
                out.push(c);
                while chars.peek().is_some_and(|n| *n == ' ') {
                    chars.next();
                }
            }
            ' ' => pending_space.push(' '),
            _ => {
                out.push_str(&pending_space);
                pending_space.clear();
                out.extend(c.to_lowercase());
            }
        }
    }
    out
}

/// The value of a DN's first RDN, unescaped, for display: `CN=DB Team,OU=…` -> `DB Team`.
pub fn rdn_value(dn: &str) -> String {
    let mut value = String::new();
    let mut seen_eq = false;
    let mut chars = dn.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next()
                    && seen_eq
                {
                    value.push(n);
                }
            }
            '=' if !seen_eq => seen_eq = true,
            ',' | '+' => break,
            _ if seen_eq => value.push(c),
            _ => {}
        }
    }
    let v = value.trim();
    if v.is_empty() {
        dn.to_string()
    } else {
        v.to_string()
    }
}

/// Map a safe member name (or a static table group) to the directory group name under `rule`.
/// `None` when the name carries a domain not listed in the rule, or no domain while one is
/// required, or is not a usable name.
pub fn map_group_name(name: &str, rule: &GroupNameRule) -> Option<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return None;
    }
    let listed = |d: &str| {
        rule.domains
            .iter()
            .any(|x| x.trim().eq_ignore_ascii_case(d))
    };
    let (domain, bare) = if let Some((d, n)) = name.split_once('\\') {
        (Some(d), n)
    } else if let Some((n, d)) = name.rsplit_once('@') {
        (Some(d), n)
    } else {
        (None, name)
    };
    let bare = bare.trim();
    match domain {
        // No domain rule: names are used verbatim (a suffixed name simply finds no group).
        _ if rule.domains.is_empty() => Some(name.to_string()),
        Some(d) if listed(d.trim()) && !bare.is_empty() => Some(bare.to_string()),
        Some(_) => None,
        None if rule.require_domain => None,
        None => Some(bare.to_string()),
    }
}

/// The account name a PVWA user name (a request's `RequestorUserName`) looks up in the
/// directory: `DOMAIN\` stripped, trimmed; `None` when empty or holding control characters.
pub fn account_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let name = name
        .rsplit_once('\\')
        .map(|(_, n)| n)
        .unwrap_or(name)
        .trim();
    (!name.is_empty() && !name.chars().any(char::is_control)).then_some(name)
}

/// Case-insensitive glob: `*` any run of characters, `?` exactly one.
pub fn safe_matches(pattern: &str, safe: &str) -> bool {
    let p: Vec<char> = pattern
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .collect();
    let s: Vec<char> = safe.trim().chars().flat_map(char::to_lowercase).collect();
    // Iterative matcher with single-star backtracking: linear in practice, no recursion.
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Check a sender address before it goes near a filter: one `@`, something on each side, no
/// whitespace or control characters, at most 254 bytes. Returns the trimmed address.
pub fn check_address(address: &str) -> Result<String, String> {
    let a = address.trim();
    if a.is_empty() {
        return Err("the address is empty".into());
    }
    if a.len() > 254 {
        return Err("the address is longer than 254 bytes".into());
    }
    if a.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the address contains spaces or control characters".into());
    }
    match a.split_once('@') {
        Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@') => Ok(a.to_string()),
        _ => Err("the address is not of the form local@domain".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_drop_the_domain_and_refuse_blank_or_control() {
        assert_eq!(account_name(" CORP\\alice "), Some("alice"));
        assert_eq!(
            account_name("alice@corp.example"),
            Some("alice@corp.example")
        );
        assert_eq!(account_name("a\\b\\carol"), Some("carol"));
        for bad in ["", "  ", "CORP\\", "al\nice", "x\\\u{7}"] {
            assert_eq!(account_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dns_compare_case_and_space_insensitively() {
        assert_eq!(
            normalize_dn("CN=DB_Team, OU=Groups,DC=Example ,DC=test"),
            normalize_dn("cn=db_team,ou=groups,dc=example,dc=test")
        );
        assert_eq!(
            normalize_dn("cn = Smith\\, John , ou=Users"),
            "cn=smith\\, john,ou=users"
        );
        // An escaped comma is not a separator.
        assert_ne!(
            normalize_dn("cn=a\\,b,dc=x"),
            normalize_dn("cn=a,cn=b,dc=x")
        );
        // Inner spaces are kept.
        assert_ne!(
            normalize_dn("cn=DB Team,dc=x"),
            normalize_dn("cn=DBTeam,dc=x")
        );
    }

    #[test]
    fn rdn_values_for_display() {
        assert_eq!(rdn_value("CN=DB Team,OU=Groups,DC=x"), "DB Team");
        assert_eq!(rdn_value("cn=Smith\\, John,ou=Users"), "Smith, John");
        assert_eq!(rdn_value("garbage"), "garbage");
    }

    fn rule(domains: &[&str], require: bool) -> GroupNameRule {
        GroupNameRule {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            require_domain: require,
            ..GroupNameRule::default()
        }
    }

    #[test]
    fn group_name_mapping() {
        let none = rule(&[], false);
        assert_eq!(
            map_group_name("DB_PAMapprover", &none).as_deref(),
            Some("DB_PAMapprover")
        );
        assert_eq!(
            map_group_name("DB@corp.example", &none).as_deref(),
            Some("DB@corp.example")
        );
        let corp = rule(&["corp.example", "CORP"], false);
        assert_eq!(
            map_group_name("DB_PAMapprover@Corp.Example", &corp).as_deref(),
            Some("DB_PAMapprover")
        );
        assert_eq!(
            map_group_name("corp\\DB_PAMapprover", &corp).as_deref(),
            Some("DB_PAMapprover")
        );
        assert_eq!(map_group_name("DB_PAMapprover@other.example", &corp), None);
        assert_eq!(map_group_name("OTHER\\DB_PAMapprover", &corp), None);
        assert_eq!(
            map_group_name("DB_PAMapprover", &corp).as_deref(),
            Some("DB_PAMapprover")
        );
        let strict = rule(&["corp.example"], true);
        assert_eq!(map_group_name("DB_PAMapprover", &strict), None);
        assert_eq!(map_group_name("@corp.example", &strict), None);
        assert_eq!(map_group_name("", &none), None);
        assert_eq!(map_group_name("a\nb", &none), None);
    }

    #[test]
    fn safe_patterns() {
        assert!(safe_matches("DB*", "db_prod"));
        assert!(safe_matches("*", "anything"));
        assert!(safe_matches("Infra-??", "infra-01"));
        assert!(!safe_matches("Infra-??", "infra-001"));
        assert!(safe_matches("Oracle-Prod", "ORACLE-PROD"));
        assert!(!safe_matches("Oracle-Prod", "Oracle-Prod2"));
        assert!(safe_matches("*-Prod*", "DB-Prod-EU"));
        assert!(!safe_matches("DB*", "XDB"));
        assert!(safe_matches("a*b*c", "aXbYbZc"));
        assert!(!safe_matches("", "x"));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            check_address(" alice@example.test ").as_deref(),
            Ok("alice@example.test")
        );
        assert!(check_address("alice").is_err());
        assert!(check_address("a@b@c").is_err());
        assert!(check_address("@b").is_err());
        assert!(check_address("a b@c").is_err());
        assert!(check_address("a\0@c").is_err());
        // Filter metacharacters are allowed here: they are escaped, not refused.
        assert!(check_address("x*)(mail=*@example.test").is_ok());
    }
}

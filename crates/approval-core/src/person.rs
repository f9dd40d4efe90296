//! Who a user name names: the one rule for "the same person" (requester and forwarder, a
//! confirmer and the forwarder, the two level accounts, a safe member and the forwarder), and
//! the one rule for "this address belongs to that user name".
//!
//! PVWA names a user by its vault user name, which for an LDAP user may be the
//! `sAMAccountName`, `DOMAIN\sam`, or the UPN; the directory knows the same person by DN,
//! `sAMAccountName`, UPN, mail and aliases. [`same_person`] is generous on purpose: a false
//! "same person" refuses an approval (the mail goes to the portal), a false "different person"
//! would let someone approve their own request or count twice. Fail closed.

/// A name in comparable form: trimmed, lower case.
fn full(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A name without its domain: trimmed, lower case, a `DOMAIN\` prefix and an `@domain` suffix
/// removed (`CORP\alice`, `alice@corp.example` and `Alice` are all `alice`).
pub fn bare(s: &str) -> String {
    let s = s.trim();
    let s = s.rsplit_once('\\').map_or(s, |(_, u)| u);
    let s = s.split_once('@').map_or(s, |(u, _)| u);
    s.trim().to_lowercase()
}

/// Whether `a` and `b` name the same person: equal ignoring case and surrounding blanks, or
/// equal once the domain is removed from both ([`bare`]). An empty name is nobody.
pub fn same_person(a: &str, b: &str) -> bool {
    let (fa, fb) = (full(a), full(b));
    if fa.is_empty() || fb.is_empty() {
        return false;
    }
    if fa == fb {
        return true;
    }
    let (ba, bb) = (bare(a), bare(b));
    !ba.is_empty() && ba == bb
}

/// Whether `name` is the same person ([`same_person`]) as one of `identities`.
pub fn is_one_of<S: AsRef<str>>(name: &str, identities: &[S]) -> bool {
    identities.iter().any(|i| same_person(name, i.as_ref()))
}

/// Whether one of `a` is the same person as one of `b`.
pub fn any_same<S: AsRef<str>, T: AsRef<str>>(a: &[S], b: &[T]) -> bool {
    a.iter().any(|x| is_one_of(x.as_ref(), b))
}

/// Whether the mail address `address` belongs to the user name `user` by its form alone: the
/// same address (any case), or, for a user name without a domain of its own (`lfischer`,
/// `CORP\lfischer`), an address whose local part is that name. Strict on purpose (a match lets
/// a mail's requester line stand): a user name with a domain (`lf@corp.example`) only matches
/// that address, and a text without `@` is no address.
pub fn address_of_user(address: &str, user: &str) -> bool {
    let (a, u) = (full(address), full(user));
    if a.is_empty() || u.is_empty() || !a.contains('@') {
        return false;
    }
    if a == u {
        return true;
    }
    !u.contains('@') && {
        let local = a.split_once('@').map_or("", |(l, _)| l);
        let name = bare(user);
        !name.is_empty() && local == name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case the three former checks (policy, directory, account names) covered, and the
    /// forms PVWA and the directory use, in one table: (a, b, same person).
    const CASES: &[(&str, &str, bool)] = &[
        // Case and blanks.
        ("alice", "alice", true),
        ("ALICE", "alice", true),
        ("  alice ", "Alice", true),
        // Domain-qualified (NetBIOS) names.
        ("CORP\\alice", "alice", true),
        ("corp\\ALICE", "OTHER\\alice", true),
        ("EXAMPLE\\bob", "bob", true),
        // UPN and sAMAccountName; e-mail forms.
        ("alice@corp.example", "alice", true),
        ("alice.a@corp.example", "alice.a", true),
        ("Bob.Smith@Example.test", "bob.smith@example.test", true),
        ("bob.smith", "Bob.Smith@Example.test", true),
        ("CORP\\alice", "alice@corp.example", true),
        ("CORP\\alice@corp.example", "alice", true),
        // The same local part at another domain: treated as the same person (fail closed).
        ("alice@corp.example", "alice@partner.example", true),
        // The level accounts, as configured.
        ("svc_l1", "CORP\\SVC_L1", true),
        ("svc_l1@corp.example", "svc_l1", true),
        ("svc_l1", "svc_l2", false),
        // Different people.
        ("alice", "bob", false),
        ("alice", "alic", false),
        ("alice", "alice2@corp.example", false),
        ("CORP\\bob", "alice", false),
        ("bobby", "bob", false),
        (
            "alice",
            "CN=Alice Approver,OU=Users,DC=corp,DC=example",
            false,
        ),
        // A directory DN equals only itself.
        (
            "cn=alice approver,ou=users,dc=corp,dc=example",
            "CN=Alice Approver,OU=Users,DC=corp,DC=example",
            true,
        ),
        // Linked accounts share a person key.
        ("person:employeeid=4711", "PERSON:employeeID=4711", true),
        ("person:employeeid=4711", "person:employeeid=4712", false),
        // Nobody.
        ("", "alice", false),
        ("  ", "  ", false),
        ("@corp.example", "@other.example", false),
        ("CORP\\", "OTHER\\", false),
    ];

    #[test]
    fn same_person_table() {
        for &(a, b, want) in CASES {
            assert_eq!(same_person(a, b), want, "same_person({a:?}, {b:?})");
            assert_eq!(same_person(b, a), want, "same_person({b:?}, {a:?})");
        }
    }

    #[test]
    fn one_of_a_list() {
        let ids = ["bob", "Bob.Smith@Example.test"];
        assert!(is_one_of("EXAMPLE\\bob", &ids));
        assert!(is_one_of("bob.smith", &ids));
        assert!(!is_one_of("bobby", &ids));
        assert!(!is_one_of("", &ids));
        assert!(!is_one_of::<&str>("alice", &[]));
        assert!(any_same(&["x", "BOB"], &ids));
        assert!(!any_same(&["x"], &ids));
    }

    #[test]
    fn an_address_belongs_to_a_user_name() {
        for (address, user, want) in [
            ("lfischer@corp.example", "lfischer", true),
            ("LFischer@Corp.Example", "CORP\\lfischer", true),
            ("lf@corp.example", "lf@corp.example", true),
            // A user name with a domain matches that address only.
            ("lf@evil.example", "lf@corp.example", false),
            ("lena.fischer@corp.example", "lfischer", false),
            // Not an address.
            ("lfischer", "lfischer", false),
            ("", "lfischer", false),
            ("lfischer@corp.example", "", false),
        ] {
            assert_eq!(
                address_of_user(address, user),
                want,
                "address_of_user({address:?}, {user:?})"
            );
        }
    }
}

//! The trust policy over transport headers.

use super::*;

fn h(pairs: &[(&str, &str)]) -> Vec<HeaderField> {
    pairs
        .iter()
        .map(|(n, v)| HeaderField::new(*n, *v))
        .collect()
}

fn policy() -> SenderPolicyConfig {
    SenderPolicyConfig {
        allowed_domains: vec!["example.com".into()],
        auth_sources: vec!["EX01.corp.example.com".into(), "*.prod.outlook.com".into()],
        authserv_ids: vec!["mx.example.com".into()],
        ..SenderPolicyConfig::default()
    }
}

fn internal(from: &str) -> Vec<HeaderField> {
    h(&[
        ("From", from),
        (AUTH_SOURCE, "ex01.corp.example.com"),
        (AUTH_AS, "Internal"),
        (AUTH_MECHANISM, "04"),
    ])
}

fn refusal(headers: &[HeaderField], cfg: &SenderPolicyConfig) -> Reason {
    verify(headers, cfg).expect_err("refused").reason
}

#[test]
fn an_internal_submission_through_a_trusted_server_is_verified() {
    let v = verify(&internal("Bob Berger <Bob.Berger@Example.com>"), &policy()).expect("ok");
    assert_eq!(v.address, "Bob.Berger@Example.com");
    assert_eq!(v.name.as_deref(), Some("Bob Berger"));
    assert_eq!(v.auth_source.as_deref(), Some("ex01.corp.example.com"));
}

#[test]
fn strict_defaults_refuse_and_name_the_keys() {
    let a = assess(&internal("bob@example.com"), &SenderPolicyConfig::default());
    let codes: Vec<Reason> = a.refusals.iter().map(|r| r.reason).collect();
    assert_eq!(
        codes,
        vec![Reason::AuthSourceNotAllowed, Reason::SenderDomainNotAllowed]
    );
    assert!(
        a.refusals
            .iter()
            .any(|r| r.message.contains("sender.auth_sources"))
    );
    assert!(
        a.refusals
            .iter()
            .any(|r| r.message.contains("sender.allowed_domains"))
    );
}

#[test]
fn org_headers_must_be_internal_unique_and_from_a_trusted_server() {
    let mut hs = internal("bob@example.com");
    hs.push(HeaderField::new(AUTH_AS, "Anonymous"));
    assert_eq!(refusal(&hs, &policy()), Reason::DuplicateOrgHeader);
    // A name with a space before the colon is the same header to a lenient reader.
    let mut hs = internal("bob@example.com");
    hs.push(HeaderField::new(
        "X-MS-Exchange-Organization-AuthAs ",
        "Internal",
    ));
    assert_eq!(refusal(&hs, &policy()), Reason::DuplicateOrgHeader);
    let hs = h(&[
        ("From", "bob@example.com"),
        (AUTH_AS, "Anonymous"),
        (AUTH_SOURCE, "ex01.corp.example.com"),
    ]);
    assert_eq!(refusal(&hs, &policy()), Reason::NotInternal);
    let hs = h(&[("From", "bob@example.com")]);
    assert_eq!(refusal(&hs, &policy()), Reason::NotInternal);
    let hs = h(&[
        ("From", "bob@example.com"),
        (AUTH_AS, "internal"),
        (AUTH_SOURCE, "relay.attacker.example"),
    ]);
    assert_eq!(refusal(&hs, &policy()), Reason::AuthSourceNotAllowed);
    let hs = h(&[("From", "bob@example.com"), (AUTH_AS, "Internal")]);
    assert_eq!(refusal(&hs, &policy()), Reason::AuthSourceNotAllowed);
}

#[test]
fn host_patterns_match_only_below_the_suffix() {
    assert!(host_matches(
        "AM6PR04MB5678.eurprd04.prod.outlook.com",
        "*.prod.outlook.com"
    ));
    assert!(!host_matches("prod.outlook.com", "*.prod.outlook.com"));
    assert!(!host_matches("evilprod.outlook.com", "*.prod.outlook.com"));
    assert!(!host_matches(
        "ex01.corp.example.com.attacker.example",
        "ex01.corp.example.com"
    ));
    assert!(host_matches(
        "EX01.corp.example.com.",
        "ex01.corp.example.com"
    ));
}

#[test]
fn authentication_results_count_by_authserv_id() {
    let with_ar = |ar: &str| {
        let mut hs = internal("bob@example.com");
        hs.push(HeaderField::new("Authentication-Results", ar));
        hs
    };
    let fail =
        "mx.example.com; spf=pass smtp.mailfrom=example.com; dmarc=fail header.from=example.com";
    assert_eq!(refusal(&with_ar(fail), &policy()), Reason::DmarcFail);
    // Another host's verdict is ignored when authserv_ids are configured...
    let foreign = "mx.attacker.example; dmarc=fail header.from=example.com";
    verify(&with_ar(foreign), &policy()).expect("foreign authserv-id ignored");
    // ...but counts when none is configured (strictest).
    let open = SenderPolicyConfig {
        authserv_ids: vec![],
        ..policy()
    };
    assert_eq!(refusal(&with_ar(foreign), &open), Reason::DmarcFail);
    // Exchange Online writes no authserv-id.
    let exo = "spf=pass smtp.mailfrom=example.com; dkim=none; dmarc=none; compauth=fail reason=601";
    assert_eq!(refusal(&with_ar(exo), &policy()), Reason::CompauthFail);
    let ignore_bare = SenderPolicyConfig {
        count_results_without_authserv_id: false,
        ..policy()
    };
    verify(&with_ar(exo), &ignore_bare).expect("bare results ignored");
    // Only configured methods refuse.
    let dkim_only = SenderPolicyConfig {
        refuse_failed_methods: vec!["dkim".into()],
        ..policy()
    };
    verify(&with_ar(fail), &dkim_only).expect("dmarc not checked");
    // Results other than fail do not refuse.
    verify(
        &with_ar("mx.example.com; spf=softfail; dmarc=none"),
        &policy(),
    )
    .expect("not fail");
}

#[test]
fn from_and_sender_must_be_one_mailbox() {
    let p = policy();
    let mut hs = internal("bob@example.com");
    hs.push(HeaderField::new("From", "eve@example.com"));
    assert_eq!(refusal(&hs, &p), Reason::AmbiguousFrom);
    // One From header with anything but exactly one mailbox in it.
    assert_eq!(
        refusal(&internal("bob@example.com, eve@example.com"), &p),
        Reason::InvalidAddress
    );
    assert_eq!(
        refusal(&internal("Team: bob@example.com, eve@example.com;"), &p),
        Reason::InvalidAddress
    );
    assert_eq!(
        refusal(&internal("not an address"), &p),
        Reason::InvalidAddress
    );
    assert_eq!(
        refusal(&internal("bob@example.com").split_off(1), &p),
        Reason::MissingFrom
    );
}

#[test]
fn sender_mismatch_follows_the_policy() {
    let mut hs = internal("Boss <boss@example.com>");
    hs.push(HeaderField::new(
        "Sender",
        "Assistant <assistant@example.com>",
    ));
    assert_eq!(refusal(&hs, &policy()), Reason::FromSenderMismatch);
    let use_sender = SenderPolicyConfig {
        from_sender_mismatch: MismatchPolicy::UseSender,
        ..policy()
    };
    assert_eq!(
        verify(&hs, &use_sender).expect("ok").address,
        "assistant@example.com"
    );
    let use_from = SenderPolicyConfig {
        from_sender_mismatch: MismatchPolicy::UseFrom,
        ..policy()
    };
    assert_eq!(
        verify(&hs, &use_from).expect("ok").address,
        "boss@example.com"
    );
    // A Sender equal to From (any case) is no mismatch.
    let mut same = internal("boss@example.com");
    same.push(HeaderField::new("Sender", "BOSS@example.com"));
    verify(&same, &policy()).expect("same mailbox");
    // The delegate's domain is checked too.
    let mut outside = internal("boss@example.com");
    outside.push(HeaderField::new("Sender", "helper@partner.example.net"));
    assert_eq!(
        refusal(&outside, &use_sender),
        Reason::SenderDomainNotAllowed
    );
}

#[test]
fn domains_exact_or_by_wildcard() {
    let p = SenderPolicyConfig {
        allowed_domains: vec!["*.example.com".into()],
        ..policy()
    };
    verify(&internal("bob@de.example.com"), &p).expect("subdomain");
    assert_eq!(
        refusal(&internal("bob@example.com"), &p),
        Reason::SenderDomainNotAllowed
    );
    assert_eq!(
        refusal(&internal("bob@example.com.evil.example"), &policy()),
        Reason::SenderDomainNotAllowed
    );
}

#[test]
fn without_the_internal_requirement_only_domain_and_results_count() {
    let p = SenderPolicyConfig {
        require_internal: false,
        ..policy()
    };
    verify(&h(&[("From", "bob@example.com")]), &p).expect("ok");
}

#[test]
fn header_block_keeps_every_instance_and_unfolds() {
    let raw = b"Received: from a\r\n by b; Tue, 4 Mar 2025\r\nX-MS-Exchange-Organization-AuthAs: Internal\r\n\
X-MS-Exchange-Organization-AuthAs: Anonymous\r\nAuthentication-Results: mx.example.com;\r\n\tdmarc=fail\r\n\r\n\
X-MS-Exchange-Organization-AuthAs: InBody\r\n";
    let hs = headers_from_raw(raw);
    let names: Vec<&str> = hs.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["Received", AUTH_AS, AUTH_AS, "Authentication-Results"]
    );
    assert_eq!(
        hs.get(3).map(|h| h.value.as_str()),
        Some("mx.example.com;\tdmarc=fail")
    );
    // A bare header block (PR_TRANSPORT_MESSAGE_HEADERS) without a blank line works too.
    let hs =
        headers_from_raw(b"From: bob@example.com\r\nX-MS-Exchange-Organization-AuthAs: Internal");
    assert_eq!(hs.len(), 2);
}

#[test]
fn config_validation() {
    let loaded = crate::config::Origin::default();
    policy().validate(&loaded).expect("valid");
    let bad = SenderPolicyConfig {
        auth_sources: vec!["ex01 corp".into()],
        ..policy()
    };
    assert_eq!(
        bad.validate(&loaded).expect_err("bad").key.as_deref(),
        Some("sender.auth_sources")
    );
    let text =
        "[sender]\nallowed_domains = [\"example.com\"]\nfrom_sender_mismatch = \"use_sender\"\n";
    let l = crate::settings::load_from_parts(Some(text), None, &[]).expect("parses");
    assert_eq!(
        l.config.sender.from_sender_mismatch,
        MismatchPolicy::UseSender
    );
    assert!(l.config.sender.require_internal);
    let text = "[sender]\nallowed_domain = [\"example.com\"]\n";
    assert!(crate::settings::load_from_parts(Some(text), None, &[]).is_err());
}

#[test]
fn invalid_address_malformed_from_is_not_read_as_an_address() {
    // Each of these was read by the lenient parser as one valid address.
    let p = policy();
    for from in [
        "Bob <bob@example.com",
        "\"Bob\" bob@example.com",
        "\"eve@example.com\" bob@example.com",
        "<> bob@example.com",
        "<<bob@example.com>>",
        "<bob@example.com> eve@example.com",
    ] {
        assert_eq!(
            refusal(&internal(from), &p),
            Reason::InvalidAddress,
            "{from}"
        );
    }
    let mut hs = internal("bob@example.com");
    hs.push(HeaderField::new("Sender", "<<eve@example.com>>"));
    assert_eq!(refusal(&hs, &p), Reason::InvalidAddress);
    // The usual forms still verify.
    for from in [
        "bob@example.com",
        "\"Berger, Bob\" <bob@example.com>",
        "=?utf-8?q?B=C3=B6b?= <bob@example.com>",
        "Bob (IT) <bob@example.com>",
    ] {
        let v = verify(&internal(from), &p).expect(from);
        assert_eq!(v.address, "bob@example.com");
    }
}

#[test]
fn unparsable_auth_results_a_quote_cannot_hide_dmarc_fail() {
    let with_ar = |ar: &str| {
        let mut hs = internal("bob@example.com");
        hs.push(HeaderField::new("Authentication-Results", ar));
        hs
    };
    // An escaped quote inside a property value: the dmarc=fail after it is read.
    let escaped =
        r#"mx.example.com; spf=pass smtp.mailfrom="x\"y"; dmarc=fail header.from=example.com"#;
    assert_eq!(refusal(&with_ar(escaped), &policy()), Reason::DmarcFail);
    // An unbalanced quote from the trusted authserv-id: the header cannot be read; refused.
    let unbalanced =
        r#"mx.example.com; spf=pass smtp.mailfrom="x; dmarc=fail header.from=example.com"#;
    assert_eq!(
        refusal(&with_ar(unbalanced), &policy()),
        Reason::UnparsableAuthResults
    );
    let comment = "mx.example.com; spf=pass (unclosed; dmarc=fail";
    assert_eq!(
        refusal(&with_ar(comment), &policy()),
        Reason::UnparsableAuthResults
    );
    // Exchange Online's form without an authserv-id counts as trusted by default.
    let exo = r#"spf=pass smtp.mailfrom="x; compauth=fail reason=601"#;
    assert_eq!(
        refusal(&with_ar(exo), &policy()),
        Reason::UnparsableAuthResults
    );
    // A broken header from another host is ignored like its results would be.
    let foreign = r#"mx.attacker.example; spf=pass smtp.mailfrom="x"#;
    verify(&with_ar(foreign), &policy()).expect("foreign authserv-id ignored");
    // One whose authserv-id cannot even be read refuses.
    assert_eq!(
        refusal(&with_ar(r#""mx.example.com; dmarc=pass"#), &policy()),
        Reason::UnparsableAuthResults
    );
}

#[test]
fn a_resent_mail_is_refused_whatever_the_mismatch_policy() {
    // A resent (redirected, bounced) mail keeps the original author in From: here bob's old
    // forward, resent to the mailbox by mallory. From is not who sent it to us.
    for (name, value) in [
        ("Resent-From", "Mallory <mallory@example.com>"),
        ("Resent-Sender", "mallory@example.com"),
        ("resent-from", "bob@example.com"),
        ("Resent-Date", "Tue, 4 Mar 2025 09:30:00 +0100"),
        ("Resent-To", "pam-approvals@example.com"),
        ("Resent-Message-ID", "<x@example.com>"),
    ] {
        for mismatch in [
            MismatchPolicy::Refuse,
            MismatchPolicy::UseSender,
            MismatchPolicy::UseFrom,
        ] {
            let mut hs = internal("Bob Berger <bob@example.com>");
            hs.push(HeaderField::new(name, value));
            let cfg = SenderPolicyConfig {
                from_sender_mismatch: mismatch,
                ..policy()
            };
            let r = verify(&hs, &cfg).expect_err(name);
            assert_eq!(r.reason, Reason::Resent, "{name}: {r}");
            assert_eq!(r.reason.code(), "resent");
            assert!(r.message.contains(name), "{name}: {r}");
            assert!(
                r.message.contains("Forward the original notification"),
                "{name}: {r}"
            );
        }
    }
    // A header that merely starts alike is not a resent block.
    let mut hs = internal("bob@example.com");
    hs.push(HeaderField::new("X-Resent-From", "x@example.com"));
    verify(&hs, &policy()).expect("not a Resent- header");
}

/// Exchange Online: with the tenant pinned, a mail must carry exactly one stamp of each kind,
/// naming this tenant and an internal submission; `*.prod.outlook.com` alone is shared by
/// every tenant. A copy written into the mail before Exchange stamped it is a second copy.
#[test]
fn the_tenant_stamps_tie_a_mail_to_this_organisation() {
    const OURS: &str = "5a1f0000-0000-4000-8000-00000000c0de";
    const THEIRS: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    let pinned = SenderPolicyConfig {
        tenant_id: Some(OURS.into()),
        ..policy()
    };
    let online = |extra: &[(&str, &str)]| {
        let mut v = h(&[
            ("From", "bob@example.com"),
            (AUTH_SOURCE, "AM6PR04MB5678.eurprd04.prod.outlook.com"),
            (AUTH_AS, "Internal"),
        ]);
        v.extend(h(extra));
        v
    };
    let stamps = |id: &'static str, auth_as: &'static str| {
        vec![
            (CROSS_TENANT_ID, id),
            (CROSS_TENANT_AUTH_AS, auth_as),
            (
                CROSS_TENANT_AUTH_SOURCE,
                "AM6PR04MB5678.eurprd04.prod.outlook.com",
            ),
        ]
    };
    // Ours, any case of the GUID.
    let ok = online(&stamps("5A1F0000-0000-4000-8000-00000000C0DE", "Internal"));
    verify(&ok, &pinned).expect("this tenant's internal mail");
    let a = assess(&ok, &pinned);
    assert!(
        a.passed.iter().any(|p| p.contains(CROSS_TENANT_ID)),
        "{:?}",
        a.passed
    );
    // Without the pin the same mail passes on auth_sources alone, and so does another
    // tenant's: the point of the pin.
    verify(&online(&stamps(THEIRS, "Internal")), &policy()).expect("unpinned");
    // Another tenant, an anonymous submission, a missing stamp: foreign_tenant.
    assert_eq!(
        refusal(&online(&stamps(THEIRS, "Internal")), &pinned),
        Reason::ForeignTenant
    );
    assert_eq!(
        refusal(&online(&stamps(OURS, "Anonymous")), &pinned),
        Reason::ForeignTenant
    );
    assert_eq!(refusal(&online(&[]), &pinned), Reason::ForeignTenant);
    let mut no_source = stamps(OURS, "Internal");
    no_source.pop();
    assert_eq!(refusal(&online(&no_source), &pinned), Reason::ForeignTenant);
    // A forged copy above (or below) Exchange's own: two copies, refused.
    let mut forged = stamps(OURS, "Internal");
    forged.push((CROSS_TENANT_ID, THEIRS));
    assert_eq!(
        refusal(&online(&forged), &pinned),
        Reason::DuplicateOrgHeader
    );
    let mut forged = vec![(CROSS_TENANT_ID, OURS)];
    forged.extend(stamps(OURS, "Internal"));
    assert_eq!(
        refusal(&online(&forged), &pinned),
        Reason::DuplicateOrgHeader
    );
    // "none" turns the check off; anything but a GUID is refused at load.
    let off = SenderPolicyConfig {
        tenant_id: Some("None".into()),
        ..policy()
    };
    verify(&online(&[]), &off).expect("check off");
    let origin = crate::config::Origin::default();
    for bad in ["contoso.onmicrosoft.com", "5a1f0000", ""] {
        let cfg = SenderPolicyConfig {
            tenant_id: Some(bad.into()),
            ..policy()
        };
        let e = cfg.validate(&origin).expect_err(bad);
        assert_eq!(e.key.as_deref(), Some("sender.tenant_id"), "{e}");
    }
}

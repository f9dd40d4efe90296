//! One complete example configuration per kind of site, loaded as the watcher loads it: the
//! loader (unknown keys refused, overrides, cross-section rules), then the check of every
//! section the watcher builds from (the same calls `Pipeline::new` makes before it signs in
//! anywhere). A key renamed in the code and not in an example fails here.
//!
//! - on premises (EWS, self-hosted PVWA): examples/config.toml;
//! - Exchange Online + self-hosted PVWA: examples/sites/exchange-online.toml;
//! - Exchange Online + Privilege Cloud: examples/sites/exchange-online-privilege-cloud.toml;
//! - cloud-only (Exchange Online, Entra ID, Privilege Cloud): examples/sites/cloud-only.toml.

use approval_core::directory::DirectoryKind;
use approval_core::directory::config::RolesFrom;
use approval_core::mailbox::MailboxKind;
use approval_core::pvwa::AuthMethod;
use approval_core::settings::{Loaded, load_from_parts};

const SITES: [(&str, &str); 4] = [
    ("on premises", include_str!("../../../examples/config.toml")),
    (
        "Exchange Online",
        include_str!("../../../examples/sites/exchange-online.toml"),
    ),
    (
        "Exchange Online + Privilege Cloud",
        include_str!("../../../examples/sites/exchange-online-privilege-cloud.toml"),
    ),
    (
        "cloud-only: Exchange Online + Entra ID + Privilege Cloud",
        include_str!("../../../examples/sites/cloud-only.toml"),
    ),
];

/// Every section the watcher needs, checked as `Pipeline::new` checks them.
fn check_all(name: &str, l: &Loaded) {
    let c = &l.config;
    l.pvwa().unwrap_or_else(|e| panic!("{name}: [pvwa]: {e}"));
    l.directory()
        .unwrap_or_else(|e| panic!("{name}: [directory]: {e}"));
    c.watcher
        .validate(l)
        .unwrap_or_else(|e| panic!("{name}: [watcher]: {e}"));
    c.notice
        .validate(l)
        .unwrap_or_else(|e| panic!("{name}: [notice]: {e}"));
    c.sender
        .validate(l)
        .unwrap_or_else(|e| panic!("{name}: [sender]: {e}"));
    let m = c
        .mailbox
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: no [mailbox]"));
    m.validate()
        .unwrap_or_else(|(k, e)| panic!("{name}: {k}: {e}"));
    approval_core::notify::Notifier::new(&c.notify)
        .unwrap_or_else(|e| panic!("{name}: [notify]: {e}"));
    assert!(
        !c.sender.allowed_domains.is_empty() && !c.sender.auth_sources.is_empty(),
        "{name}: a sender policy that refuses every mail"
    );
    assert!(!c.notify.pam_team.is_empty(), "{name}: nobody to report to");
}

#[test]
fn each_kind_of_site_has_a_complete_example_that_loads() {
    for (name, text) in SITES {
        let l = load_from_parts(Some(text), None, &[])
            .unwrap_or_else(|e| panic!("{name}: does not load: {e}"));
        check_all(name, &l);
        let m = l.config.mailbox.as_ref().expect("mailbox");
        let pvwa = l.pvwa().expect("pvwa");
        match name {
            "on premises" => {
                assert_eq!(m.kind, MailboxKind::Ews);
                assert_ne!(pvwa.auth_method, AuthMethod::Identity);
                assert_eq!(l.config.sender.pinned_tenant(), None);
            }
            _ => {
                assert_eq!(m.kind, MailboxKind::Graph, "{name}");
                // On Graph the sender check is pinned to the mailbox's tenant.
                let g = m.graph.as_ref().expect("[mailbox.graph]");
                assert_eq!(
                    l.config.sender.pinned_tenant(),
                    Some(g.tenant_id.as_str()),
                    "{name}"
                );
                assert!(
                    l.config
                        .sender
                        .auth_sources
                        .iter()
                        .any(|s| s == "*.prod.outlook.com"),
                    "{name}"
                );
                let cloud = name.contains("Privilege Cloud");
                assert_eq!(pvwa.auth_method == AuthMethod::Identity, cloud, "{name}");
                // The cloud-only site has no LDAP: Entra ID through the mailbox's app.
                let d = l.directory().expect("directory");
                let entra_site = name.starts_with("cloud-only");
                assert_eq!(d.kind == DirectoryKind::Entra, entra_site, "{name}");
                if entra_site {
                    let e = d.entra.as_ref().expect("entra");
                    assert_eq!(e.app_key, "mailbox.graph");
                    assert_eq!(e.app.client_id, g.client_id);
                    assert_eq!(e.graph_url, m.graph_url());
                }
                // On Privilege Cloud, Role safe members are read from CyberArk Identity, and
                // a role the table lists still maps to its group.
                assert_eq!(
                    d.group_names.roles_from == RolesFrom::Identity,
                    cloud,
                    "{name}"
                );
                if cloud {
                    assert!(d.group_names.role_group("PAM Approvers L1").is_some());
                }
            }
        }
    }
}

/// The examples hold no secret: every password and key is a reference, each to the secrets
/// directory the package makes (one layout for the service, cron and a by-hand run).
#[test]
fn the_examples_reference_their_secrets_in_the_secrets_directory() {
    for (name, text) in SITES {
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if matches!(
                key,
                "password" | "bind_password" | "certificate" | "private_key" | "client_secret"
            ) {
                let v = value.trim().trim_matches('"');
                assert!(
                    v.starts_with("file:/etc/pam-approval/secrets/"),
                    "{name}: {key} = {v}"
                );
            }
        }
    }
}

/// A mistake in a site example's key is named (the loader refuses unknown keys).
#[test]
fn a_misspelt_key_in_a_site_example_is_named() {
    for (name, text) in SITES {
        let bad = text.replacen("[sender]\n", "[sender]\nallowed_domain = [\"x.test\"]\n", 1);
        let e = load_from_parts(Some(&bad), None, &[]).expect_err(name);
        assert!(e.to_string().contains("allowed_domain"), "{name}: {e}");
    }
}

/// `roles_from = "identity"` needs Privilege Cloud's Identity tenant: on a self-hosted PVWA it
/// is refused at load time, naming the key and the alternative.
#[test]
fn roles_from_identity_is_refused_on_a_self_hosted_pvwa() {
    let (name, text) = SITES[1];
    assert!(!text.contains("roles_from"), "{name}");
    let bad = text.replacen(
        "[directory.group_names]\n",
        "[directory.group_names]\nroles_from = \"identity\"\n",
        1,
    );
    assert_ne!(bad, text, "{name}: no [directory.group_names]");
    let e = load_from_parts(Some(&bad), None, &[]).expect_err(name);
    let e = e.to_string();
    assert!(e.contains("directory.group_names.roles_from"), "{e}");
    assert!(e.contains("[directory.group_names.roles]"), "{e}");
}

//! CyberArk Identity roles as approvers (`[directory.group_names] roles_from = "identity"`)
//! against pam-sim's Identity tenant and Privilege Cloud PVWA over HTTPS: a Role safe member's
//! users (with their e-mail addresses) and groups read with the lookup account's platform
//! token, nested roles followed to a bound and each once, a role Identity lacks named as
//! missing, and Identity's refusals and faults as errors (never an approval).

use std::time::Duration;

use approval_core::directory::approvers::{RoleRecord, from_safe_members, record_key};
use approval_core::directory::cache::TtlCache;
use approval_core::directory::check::{
    MAX_ROLE_DEPTH, MAX_ROLES_READ, read_safe_approvers, resolve_roles,
};
use approval_core::directory::config::{GroupNameRule, RolesFrom};
use approval_core::exit::{Classify, Exit};
use approval_core::pvwa::{Pvwa, PvwaError};
use approval_core::settings as config;
use pam_sim::faults::{FailNext, Faults};
use pam_sim::{Scenario, Sim, SimOptions};
use secrecy::SecretString;

const READER: &str = "pam-lookup@cyberark.cloud.12345";
const NOT_READER: &str = "pam-l1@cyberark.cloud.12345";

fn scenario() -> String {
    // A chain Deep 0 -> Deep 1 -> … -> Deep 7, each holding one user (deep0 … deep7).
    let mut deep = String::new();
    for n in 0..8 {
        deep.push_str(&format!(
            "[[pvwa.identity.roles]]\nname = \"Deep {n}\"\nmembers = [{{ type = \"User\", name = \"deep{n}\" }}, {{ type = \"Role\", name = \"Deep {}\" }}]\n[[pvwa.users]]\nname = \"deep{n}\"\npassword = \"x\"\nemail = \"deep{n}@example.test\"\n",
            n + 1
        ));
    }
    // A role with more nested roles than are read.
    let wide: Vec<String> = (0..=MAX_ROLES_READ)
        .map(|n| format!("{{ type = \"Role\", name = \"Wide {n}\" }}"))
        .collect();
    deep.push_str(&format!(
        "[[pvwa.identity.roles]]\nname = \"Wide\"\nmembers = [{}]\n",
        wide.join(", ")
    ));
    for n in 0..=MAX_ROLES_READ {
        deep.push_str(&format!("[[pvwa.identity.roles]]\nname = \"Wide {n}\"\n"));
    }
    format!(
        r#"
[pvwa]
mode = "privilege-cloud"
[pvwa.identity]
readers = ["{READER}"]
[[pvwa.identity.roles]]
name = "PAM Approvers L1"
members = [{{ type = "User", name = "alice" }}, {{ type = "User", name = "ghost" }}]
[[pvwa.identity.roles]]
name = "PAM Group Role"
members = [{{ type = "Group", name = "Infra_PAMapprover@example.test" }}, {{ type = "Role", name = "PAM Approvers L1" }}]
[[pvwa.identity.roles]]
name = "Loop A"
members = [{{ type = "User", name = "bob" }}, {{ type = "Role", name = "Loop B" }}]
[[pvwa.identity.roles]]
name = "Loop B"
members = [{{ type = "Role", name = "Loop A" }}, {{ type = "User", name = "dave" }}]
[[pvwa.identity.roles]]
name = "O'Brien Role"
members = [{{ type = "User", name = "dave" }}]
{deep}
[[pvwa.users]]
name = "{READER}"
password = "lookup-secret"
auth = ["identity"]
[[pvwa.users]]
name = "{NOT_READER}"
password = "l1-secret"
auth = ["identity"]
[[pvwa.users]]
name = "alice"
password = "x"
email = "alice@example.test"
[[pvwa.users]]
name = "bob"
password = "x"
email = "bob@example.test"
[[pvwa.users]]
name = "dave"
password = "x"
[[pvwa.safes]]
name = "RoleSafe"
members = [
  {{ name = "{READER}", type = "user" }},
  {{ name = "{NOT_READER}", type = "user" }},
  {{ name = "PAM Approvers L1", type = "role", level1 = true }},
  {{ name = "PAM Group Role", type = "role", level2 = true }},
  {{ name = "Loop A", type = "role", level1 = true }},
  {{ name = "Deep 0", type = "role", level1 = true }},
  {{ name = "O'Brien Role", type = "role", level1 = true }},
  {{ name = "No Such Role", type = "role", level1 = true }},
  {{ name = "Wide", type = "role", level1 = true }},
  {{ name = "Mapped Role", type = "role", level1 = true }},
  {{ name = "Readers Role", type = "role" }},
]
"#
    )
}

struct Env {
    sim: Sim,
    _dir: tempfile::TempDir,
}

async fn start() -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let scenario = Scenario::from_toml(&scenario()).expect("scenario");
    let sim = Sim::start(
        scenario,
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..Default::default()
        },
    )
    .await
    .expect("sim starts");
    Env { sim, _dir: dir }
}

fn client(env: &Env) -> Pvwa {
    let text = format!(
        "[pvwa]\nurl = \"{}\"\nauth_method = \"identity\"\nidentity_url = \"{}\"\nca_bundle = \"{}\"\nbackoff_ms = 10\nretries = 1\n",
        env.sim.url(),
        env.sim.url(),
        env.sim.ca_cert.as_ref().expect("ca").display()
    );
    let loaded = config::load_from_parts(Some(&text), None, &[]).expect("config");
    Pvwa::new(loaded.pvwa().expect("pvwa")).expect("client")
}

fn rule() -> GroupNameRule {
    GroupNameRule {
        domains: vec!["example.test".into()],
        roles: [(
            "Mapped Role".to_string(),
            "CN=Mapped,OU=Groups,DC=example,DC=test".to_string(),
        )]
        .into(),
        roles_from: RolesFrom::Identity,
        ..GroupNameRule::default()
    }
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

#[tokio::test]
async fn role_members_resolved_through_identity_with_the_lookup_token() {
    let env = start().await;
    let pvwa = client(&env);
    let cache = TtlCache::new(Duration::from_secs(60));
    let roles = TtlCache::new(Duration::from_secs(60));
    let read = pvwa
        .with_session(READER, &pw("lookup-secret"), async |s| {
            let mut read = read_safe_approvers(s, "RoleSafe", &cache).await?;
            resolve_roles(s, &mut read, &rule(), &roles).await?;
            Ok::<_, PvwaError>(read)
        })
        .await
        .expect("read");
    let get = |name: &str| read.roles.get(&record_key(name)).cloned();
    // Users with their e-mail addresses; a member without a user record is noted, not used.
    let Some(RoleRecord::Resolved {
        name, users, notes, ..
    }) = get("PAM Approvers L1")
    else {
        panic!("{:?}", read.roles)
    };
    assert_eq!(name, "PAM Approvers L1");
    let got: Vec<(&str, Option<&str>)> = users
        .iter()
        .map(|u| (u.name.as_str(), u.email.as_deref()))
        .collect();
    assert_eq!(got, vec![("alice", Some("alice@example.test"))]);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("no CyberArk Identity user record")),
        "{notes:?}"
    );
    // A group member, and a nested role's users with the way through it.
    let Some(RoleRecord::Resolved { users, groups, .. }) = get("PAM Group Role") else {
        panic!("{:?}", read.roles)
    };
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "Infra_PAMapprover@example.test");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].via, vec!["PAM Group Role", "PAM Approvers L1"]);
    // A cycle ends: each role once.
    let Some(RoleRecord::Resolved { users, .. }) = get("Loop A") else {
        panic!("{:?}", read.roles)
    };
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, vec!["bob", "dave"]);
    // Nesting is followed to a bound, and what lies deeper is said.
    let Some(RoleRecord::Resolved { users, notes, .. }) = get("Deep 0") else {
        panic!("{:?}", read.roles)
    };
    assert_eq!(users.len(), MAX_ROLE_DEPTH + 1, "{users:?}");
    assert!(
        !users
            .iter()
            .any(|u| u.name == format!("deep{}", MAX_ROLE_DEPTH + 1))
    );
    assert!(
        notes.iter().any(|n| n.contains("nests deeper")),
        "{notes:?}"
    );
    // A quote in a role name is sent as SQL text, not as SQL.
    assert!(matches!(
        get("O'Brien Role"),
        Some(RoleRecord::Resolved { .. })
    ));
    // Too many nested roles: unusable, not cut short.
    assert!(
        matches!(get("Wide"), Some(RoleRecord::Unusable(ref w)) if w.contains("more than 100 roles")),
        "{:?}",
        get("Wide")
    );
    // A role Identity lacks; the table's role and one without an approval right are not read.
    assert_eq!(get("No Such Role"), Some(RoleRecord::Missing));
    assert_eq!(get("Mapped Role"), None);
    assert_eq!(get("Readers Role"), None);
    // The approvers at each level: the role's users, its groups, the table's group.
    let a1 = from_safe_members(&read.members, 1, 0, &rule(), &read.records, &read.roles);
    let roles1: Vec<&str> = a1.roles.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(
        roles1,
        vec!["PAM Approvers L1", "Loop A", "Deep 0", "O'Brien Role"]
    );
    assert!(
        a1.skipped
            .iter()
            .any(|s| s.member == "No Such Role" && s.reason.contains("no role named")),
        "{a1:?}"
    );
    let a2 = from_safe_members(&read.members, 2, 0, &rule(), &read.records, &read.roles);
    assert_eq!(a2.groups.len(), 1);
    assert_eq!(a2.groups[0].name, "Infra_PAMapprover");
    // Cached: a second read asks Identity nothing.
    let before = env.sim.state.pvwa.sim.stats().identity_reads;
    pvwa.with_session(READER, &pw("lookup-secret"), async |s| {
        let mut again = read_safe_approvers(s, "RoleSafe", &cache).await?;
        resolve_roles(s, &mut again, &rule(), &roles).await?;
        assert_eq!(again.roles, read.roles);
        Ok::<_, PvwaError>(())
    })
    .await
    .expect("again");
    assert_eq!(env.sim.state.pvwa.sim.stats().identity_reads, before);
    // roles_from = "table" reads nothing from Identity.
    let table = GroupNameRule {
        roles_from: RolesFrom::Table,
        ..rule()
    };
    pvwa.with_session(READER, &pw("lookup-secret"), async |s| {
        let mut r = read_safe_approvers(s, "RoleSafe", &cache).await?;
        resolve_roles(s, &mut r, &table, &TtlCache::new(Duration::ZERO)).await?;
        assert!(r.roles.is_empty());
        Ok::<_, PvwaError>(())
    })
    .await
    .expect("table");
    assert_eq!(env.sim.state.pvwa.sim.stats().identity_reads, before);
}

#[tokio::test]
async fn identity_refusals_and_faults_are_errors_never_approvals() {
    let env = start().await;
    let pvwa = client(&env);
    let resolve = async |user: &str, secret: &str| {
        pvwa.with_session(user, &pw(secret), async |s| {
            let mut read =
                read_safe_approvers(s, "RoleSafe", &TtlCache::new(Duration::ZERO)).await?;
            resolve_roles(s, &mut read, &rule(), &TtlCache::new(Duration::ZERO)).await?;
            Ok::<_, PvwaError>(read)
        })
        .await
    };
    // A service user without the right to read roles: Identity refuses, we say which right.
    let e = resolve(NOT_READER, "l1-secret").await.expect_err("refused");
    assert!(
        matches!(e, PvwaError::Identity { denied: true, .. }),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_eq!(e.exit(), Exit::Config);
    assert!(
        e.hint()
            .unwrap_or_default()
            .contains("Read Only System Administration"),
        "{:?}",
        e.hint()
    );
    assert!(env.sim.state.pvwa.sim.stats().identity_reads_refused > 0);
    // A server fault, and an HTML page where JSON belongs.
    for (status, body) in [
        (500u16, None),
        (200, Some("<html>sign in</html>".to_string())),
    ] {
        env.sim.state.faults.set(
            "identity",
            Faults {
                fail: Some(FailNext {
                    status,
                    count: 4,
                    body: body.clone(),
                    content_type: None,
                    headers: Default::default(),
                }),
                path_contains: Some("redrock".into()),
                ..Default::default()
            },
        );
        let e = resolve(READER, "lookup-secret").await.expect_err("fault");
        assert!(
            matches!(e, PvwaError::Identity { denied: false, .. }),
            "{status}: {e:?}"
        );
        assert!(e.is_transient(), "{e:?}");
        env.sim.state.faults.clear();
    }
}

//! The Remote Access client against pam-sim's stand-in, over HTTPS with the test CA and a
//! key pair generated for each test.

use std::time::{Duration, Instant};

use approval_core::exit::{Classify, Exit};
use approval_core::remote_access::client::Search;
use approval_core::remote_access::input::VendorRequest;
use approval_core::remote_access::model::VendorStatus;
use approval_core::remote_access::ops::{self, Catalogue, OffboardOptions, OnboardOptions};
use approval_core::remote_access::{RemoteAccess, RemoteAccessError, keyfile, token};
use pam_sim::remote_access::keys::{self, TestKeyPair};
use pam_sim::{Scenario, Sim, SimOptions};
use secrecy::ExposeSecret;

const TENANT: &str = "11eaab2463a4d3399816d3b7450c5b10";
const SA: &str = "11ea6140f94d5f82a3712de9ac6f6b24";

struct Env {
    sim: Sim,
    _dir: tempfile::TempDir,
    kp: TestKeyPair,
    ra: RemoteAccess,
}

fn scenario(public_pem: &str, extra: &str) -> Scenario {
    let text = format!(
        r#"
[remote_access]
tenant_id = "{TENANT}"
service_account_id = "{SA}"
public_key = """{public_pem}"""
{extra}

[[remote_access.sites]]
id = "5173e1d0000000000000000000000001"
name = "Main DC"
applications = [
  {{ id = "a0000000000000000000000000000001", name = "Linux SSH" }},
  {{ id = "a0000000000000000000000000000002", name = "Windows RDP" }},
]

[[remote_access.sites]]
id = "5173e1d0000000000000000000000002"
name = "Lab"
applications = [ {{ id = "a0000000000000000000000000000003", name = "Web" }} ]

[[remote_access.groups]]
id = "9000000000000000000000000000000a"
name = "Vendors"
"#
    );
    Scenario::from_toml(&text).expect("scenario")
}

async fn start_with(extra_scenario: &str, extra_config: &str, pem: Option<&str>) -> Env {
    let kp = keys::generate().expect("keygen");
    let dir = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(
        scenario(&kp.public_pem, extra_scenario),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("sim");
    let key_path = dir.path().join("sa.json");
    keys::write_key_file(
        &key_path,
        &keys::key_file_json(SA, pem.unwrap_or(&kp.pkcs1_pem)),
    )
    .expect("key file");
    let ca = sim.ca_cert.clone().expect("ca");
    let text = format!(
        r#"
[remote_access]
tenant_id = "{TENANT}"
key_file = "file:{}"
auth_url = "{url}"
api_url = "{url}"
ca_bundle = "{}"
backoff_ms = 20
{extra_config}
"#,
        key_path.display(),
        ca.display(),
        url = sim.url()
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let ra = RemoteAccess::connect(
        loaded.remote_access().expect("section"),
        loaded.config.vault.as_ref(),
    )
    .await
    .expect("connect");
    Env {
        sim,
        _dir: dir,
        kp,
        ra,
    }
}

async fn start() -> Env {
    start_with("", "", None).await
}

fn jane(email: &str, phone: &str) -> VendorRequest {
    VendorRequest {
        first_name: "Jane".into(),
        last_name: "Doe".into(),
        company: "Acme Inc.".into(),
        email: email.into(),
        phone: phone.into(),
        applications: vec!["Main DC/Linux SSH".into(), "lab/web".into()],
        access_days: Some(30),
        ..VendorRequest::default()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn invite(env: &Env, email: &str, phone: &str) -> String {
    let cat = Catalogue::new(&env.ra);
    let o = ops::onboard_one(
        &cat,
        None,
        Ok(jane(email, phone)),
        OnboardOptions::default(),
        now_ms(),
    )
    .await;
    assert_eq!(o.result, "invited", "{o:?}");
    o.invitation_id.expect("id")
}

fn refused(e: RemoteAccessError) -> String {
    assert_eq!(e.exit(), Exit::NoPerm, "{e}");
    match &e {
        RemoteAccessError::TokenRefused { description, .. } => description.clone(),
        other => panic!("not a token refusal: {other}"),
    }
}

#[tokio::test]
async fn a_valid_assertion_gets_a_token_and_a_foreign_key_is_refused() {
    let env = start().await;
    assert_eq!(env.ra.check().await.expect("token"), 300);
    drop(env);
    // A key file holding another key (PKCS#8, line breaks lost): read and used, then refused by
    // the token service for the right reason.
    let kp = keys::generate().expect("keygen");
    let env = start_with("", "", Some(&kp.pkcs8_pem.replace('\n', ""))).await;
    let e = env.ra.check().await.expect_err("other key");
    assert!(refused(e).contains("Signature on JWT token failed validation"));
}

#[tokio::test]
async fn pkcs8_key_of_the_service_account_is_accepted() {
    let kp = keys::generate().expect("keygen");
    // Start with a scenario trusting kp, and a key file holding kp as PKCS#8.
    let dir = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(
        scenario(&kp.public_pem, ""),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("sim");
    let key_path = dir.path().join("sa.json");
    keys::write_key_file(&key_path, &keys::key_file_json(SA, &kp.pkcs8_pem)).expect("write");
    let text = format!(
        "[remote_access]\ntenant_id = \"{TENANT}\"\nkey_file = \"file:{}\"\nauth_url = \"{u}\"\napi_url = \"{u}\"\nca_bundle = \"{}\"\n",
        key_path.display(),
        sim.ca_cert.clone().expect("ca").display(),
        u = sim.url()
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let ra = RemoteAccess::connect(
        loaded.remote_access().expect("section"),
        loaded.config.vault.as_ref(),
    )
    .await
    .expect("connect");
    assert_eq!(ra.check().await.expect("token"), 300);
}

#[tokio::test]
async fn bad_assertions_are_refused_naming_the_cause() {
    let env = start().await;
    let key = keyfile::signing_key(&env.kp.pkcs1_pem).expect("key");
    let other = keyfile::signing_key(&keys::generate().expect("kg").pkcs1_pem).expect("key");
    let tokens = env.ra.tokens();
    let now = chrono::Utc::now().timestamp();

    let good = tokens.claims(now);
    assert_eq!(
        good.aud,
        format!("{}/auth/realms/serviceaccounts", env.sim.url())
    );

    let send = |claims: token::AssertionClaims, key: keyfile::SigningKey| async move {
        let a = token::sign(&claims, &key).expect("sign");
        let r = tokens.exchange_assertion(&a).await;
        (a, r)
    };
    // Wrong key.
    let (a, r) = send(tokens.claims(now), other.clone()).await;
    let e = r.expect_err("wrong key");
    let msg = e.to_string();
    assert!(
        !msg.contains(a.expose_secret()),
        "the assertion leaked: {msg}"
    );
    assert!(refused(e).ends_with("Signature on JWT token failed validation"));
    // Expired.
    let mut c = tokens.claims(now - 400);
    c.exp = now - 100;
    let (_, r) = send(c, key.clone()).await;
    assert!(refused(r.expect_err("expired")).ends_with("Token is not active"));
    // Wrong audience.
    let mut c = tokens.claims(now);
    c.aud = "https://auth.alero.io/auth/realms/serviceaccounts".into();
    let (_, r) = send(c, key.clone()).await;
    let d = refused(r.expect_err("aud"));
    assert!(d.contains("Token audience doesn't match domain"), "{d}");
    assert!(d.contains("auth.alero.io"), "{d}");
    // iss != sub.
    let mut c = tokens.claims(now);
    c.iss = format!("{TENANT}.ffffffffffffffffffffffffffffffff.ExternalServiceAccount");
    let (_, r) = send(c, key.clone()).await;
    assert!(
        refused(r.expect_err("iss"))
            .ends_with("Issuer mismatch. The issuer should match the subject")
    );
    // Unknown client.
    let mut c = tokens.claims(now);
    c.iss = format!("{TENANT}.ffffffffffffffffffffffffffffffff.ExternalServiceAccount");
    c.sub = c.iss.clone();
    let (_, r) = send(c, key.clone()).await;
    match r.expect_err("unknown client") {
        RemoteAccessError::TokenRefused {
            status,
            description,
            ..
        } => {
            assert_eq!(status, 401);
            assert_eq!(description, "Invalid client or Invalid client credentials");
        }
        other => panic!("{other}"),
    }
    // Reused jti: the same assertion twice.
    let a = token::sign(&tokens.claims(now), &key).expect("sign");
    tokens.exchange_assertion(&a).await.expect("first use");
    let d = refused(tokens.exchange_assertion(&a).await.expect_err("replay"));
    assert!(d.ends_with("Token reuse detected"), "{d}");
    // Each refusal says what to do.
    let e = RemoteAccessError::TokenRefused {
        status: 400,
        error: "invalid_client".into(),
        description: "Client authentication with signed JWT failed: Token is not active".into(),
    };
    assert!(e.hint().expect("hint").contains("clock"));
}

#[tokio::test]
async fn invite_list_show_revoke_accept_deactivate() {
    let env = start().await;
    let id = invite(&env, "jane.doe@acme.example", "+17035550100").await;
    let second = invite(&env, "bob@acme.example", "+17035550101").await;

    let all = env.ra.invitations(None).await.expect("list");
    assert_eq!(all.len(), 2);
    let found = env
        .ra
        .invitations(Some(&Search {
            field: "EMAIL".into(),
            text: "JANE.DOE@acme.example".into(),
        }))
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].invitation_id.as_deref(), Some(id.as_str()));

    let shown = env.ra.invitation(&id).await.expect("show");
    assert_eq!(
        shown.email_address.as_deref(),
        Some("jane.doe@acme.example")
    );
    assert_eq!(shown.phone_number.as_deref(), Some("+17035550100"));
    let apps = shown.applications.expect("apps");
    assert_eq!(apps.as_array().expect("array").len(), 2);
    assert_eq!(apps[0]["applicationId"], "a0000000000000000000000000000001");

    assert_eq!(
        env.ra.revoke_invitation(&second).await.expect("revoke"),
        approval_core::remote_access::client::Gone::Done
    );
    assert_eq!(
        env.ra.revoke_invitation(&second).await.expect("again"),
        approval_core::remote_access::client::Gone::AlreadyGone
    );
    let e = env.ra.invitation(&second).await.expect_err("gone");
    assert_eq!(e.exit(), Exit::Refused);
    assert!(e.to_string().contains("not found"), "{e}");

    // The vendor accepts (test-control path), becoming a vendor linked to the invitation.
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(
                &std::fs::read(env.sim.ca_cert.clone().expect("ca")).expect("read"),
            )
            .expect("ca"),
        )
        .build()
        .expect("client");
    let r = http
        .post(format!(
            "{}/sim/remote_access/invitations/{id}/accept",
            env.sim.url()
        ))
        .send()
        .await
        .expect("accept");
    assert_eq!(r.status().as_u16(), 201);
    let vendors = env.ra.vendors(None).await.expect("vendors");
    assert_eq!(vendors.len(), 1);
    let vid = vendors[0].id.clone().expect("id");
    assert_eq!(vendors[0].status.as_deref(), Some("Activated"));
    let v = env.ra.vendor(&vid).await.expect("vendor");
    assert_eq!(v.invitation_id.as_deref(), Some(id.as_str()));
    assert!(env.ra.invitations(None).await.expect("list").is_empty());

    env.ra
        .set_vendor_status(&vid, VendorStatus::Deactivated)
        .await
        .expect("deactivate");
    assert_eq!(
        env.ra.vendor(&vid).await.expect("v").status.as_deref(),
        Some("Deactivated")
    );
    env.ra
        .set_vendor_status(&vid, VendorStatus::Activated)
        .await
        .expect("activate");
    assert_eq!(
        env.ra.vendor(&vid).await.expect("v").status.as_deref(),
        Some("Activated")
    );
    // One token served every call.
    assert_eq!(env.ra.tokens().fetched(), 1);
}

#[tokio::test]
async fn offboarding_twice_changes_nothing_the_second_time() {
    let env = start().await;
    let first = invite(&env, "jane.doe@acme.example", "+17035550100").await;
    env.sim
        .state
        .remote_access
        .accept(&first)
        .expect("accepted");
    // A newer invitation is still outstanding.
    let pending = invite(&env, "Jane.Doe@acme.example", "+17035550109").await;

    let o = ops::offboard_one(
        &env.ra,
        None,
        Ok("jane.doe@acme.example".into()),
        OffboardOptions::default(),
    )
    .await;
    assert_eq!(o.result, "offboarded", "{o:?}");
    assert!(o.changed);
    let actions: Vec<(&str, &str, &str)> = o
        .actions
        .iter()
        .map(|a| (a.action, a.id.as_str(), a.result))
        .collect();
    assert_eq!(actions[0], ("revoke_invitation", pending.as_str(), "done"));
    assert_eq!(actions[1].0, "deactivate_vendor");
    assert_eq!(actions[1].2, "done");
    assert_eq!(o.exit, Exit::Ok);

    let writes_before = env
        .sim
        .state
        .remote_access
        .calls()
        .iter()
        .filter(|c| c.method != "GET" && !c.path.starts_with("/auth"))
        .count();
    let o = ops::offboard_one(
        &env.ra,
        None,
        Ok("jane.doe@acme.example".into()),
        OffboardOptions::default(),
    )
    .await;
    assert_eq!(o.result, "nothing_to_do", "{o:?}");
    assert!(!o.changed);
    assert!(o.message.contains("already offboarded"), "{}", o.message);
    assert_eq!(o.actions.len(), 1);
    assert_eq!(o.actions[0].result, "already_done");
    let writes_after = env
        .sim
        .state
        .remote_access
        .calls()
        .iter()
        .filter(|c| c.method != "GET" && !c.path.starts_with("/auth"))
        .count();
    assert_eq!(
        writes_before, writes_after,
        "the second run wrote something"
    );

    // --delete removes the vendor; then there is nothing left.
    let o = ops::offboard_one(
        &env.ra,
        None,
        Ok("jane.doe@acme.example".into()),
        OffboardOptions {
            delete: true,
            ..OffboardOptions::default()
        },
    )
    .await;
    assert_eq!(o.actions[0].action, "delete_vendor");
    assert!(env.ra.vendors(None).await.expect("v").is_empty());
    // Deleted, Remote Access keeps nothing of the address: from here it cannot be told from a
    // mistyped one, and is reported as not found (see the next test).
    let o = ops::offboard_one(
        &env.ra,
        None,
        Ok("jane.doe@acme.example".into()),
        OffboardOptions::default(),
    )
    .await;
    assert_eq!(o.result, "not_found");
}

#[tokio::test]
async fn offboarding_an_unknown_address_is_not_found_not_already_done() {
    let env = start().await;
    invite(&env, "jane.doe@acme.example", "+17035550100").await;
    // A leaver's address with a typo: nothing matches.
    let o = ops::offboard_one(
        &env.ra,
        Some(3),
        Ok("jane.deo@acme.example".into()),
        OffboardOptions::default(),
    )
    .await;
    assert_eq!(o.result, "not_found", "{o:?}");
    assert_eq!(o.exit, Exit::Refused);
    assert!(!o.changed);
    assert!(o.message.contains("jane.deo@acme.example"), "{}", o.message);
    assert_eq!(o.error.as_ref().expect("error").kind, "refused");
    // The real one is still there, untouched.
    assert_eq!(env.ra.invitations(None).await.expect("l").len(), 1);
    // A dry run says the same.
    let o = ops::offboard_one(
        &env.ra,
        None,
        Ok("jane.deo@acme.example".into()),
        OffboardOptions {
            dry_run: true,
            ..OffboardOptions::default()
        },
    )
    .await;
    assert_eq!(o.result, "not_found");
}

#[tokio::test]
async fn offboarding_may_revoke_invitations_and_keep_the_account() {
    let env = start().await;
    let first = invite(&env, "jane.doe@acme.example", "+17035550100").await;
    env.sim
        .state
        .remote_access
        .accept(&first)
        .expect("accepted");
    let pending = invite(&env, "jane.doe@acme.example", "+17035550109").await;
    let keep = OffboardOptions {
        keep_account: true,
        ..OffboardOptions::default()
    };
    let o = ops::offboard_one(&env.ra, None, Ok("jane.doe@acme.example".into()), keep).await;
    assert_eq!(o.result, "offboarded", "{o:?}");
    let actions: Vec<(&str, &str, &str)> = o
        .actions
        .iter()
        .map(|a| (a.action, a.id.as_str(), a.result))
        .collect();
    assert_eq!(
        actions,
        vec![("revoke_invitation", pending.as_str(), "done")]
    );
    assert!(o.message.contains("left as they are"), "{}", o.message);
    assert!(env.ra.invitations(None).await.expect("l").is_empty());
    let vendors = env.ra.vendors(None).await.expect("v");
    assert_eq!(vendors[0].status.as_deref(), Some("Activated"));
    // Again: nothing to do, the account still untouched.
    let o = ops::offboard_one(&env.ra, None, Ok("jane.doe@acme.example".into()), keep).await;
    assert_eq!(o.result, "nothing_to_do", "{o:?}");
    assert_eq!(o.exit, Exit::Ok);
    assert!(o.actions.is_empty());
    let vendors = env.ra.vendors(None).await.expect("v");
    assert_eq!(vendors[0].status.as_deref(), Some("Activated"));
}

#[tokio::test]
async fn an_approved_vendor_whose_invitation_expired_is_invited_anew() {
    let env = start().await;
    let old = invite(&env, "jane.doe@acme.example", "+17035550100").await;
    assert!(env.sim.state.remote_access.expire(&old, now_ms()));
    // The stand-in's vendor can no longer register with it.
    assert!(env.sim.state.remote_access.accept(&old).is_none());
    let cat = Catalogue::new(&env.ra);
    let opts = OnboardOptions {
        check_existing: true,
        ..OnboardOptions::default()
    };
    // Dry run: says what it would do, changes nothing.
    let o = ops::onboard_one(
        &cat,
        Some(1),
        Ok(jane("jane.doe@acme.example", "+17035550100")),
        OnboardOptions {
            dry_run: true,
            ..opts
        },
        now_ms(),
    )
    .await;
    assert_eq!(o.result, "would_invite", "{o:?}");
    assert_eq!(o.revoked_invitations, vec![old.clone()]);
    assert_eq!(env.ra.invitations(None).await.expect("l").len(), 1);
    let o = ops::onboard_one(
        &cat,
        Some(1),
        Ok(jane("jane.doe@acme.example", "+17035550100")),
        opts,
        now_ms(),
    )
    .await;
    assert_eq!(o.result, "invited", "{o:?}");
    assert_eq!(o.exit, Exit::Ok);
    assert_eq!(o.revoked_invitations, vec![old.clone()]);
    let new = o.invitation_id.expect("id");
    let left: Vec<String> = env
        .ra
        .invitations(None)
        .await
        .expect("l")
        .into_iter()
        .filter_map(|i| i.invitation_id)
        .collect();
    assert_eq!(left, vec![new.clone()]);
    // This one works.
    env.sim.state.remote_access.accept(&new).expect("accepted");
    // --force with an expired invitation: revoked first, so no 409 for the phone number.
    let old = invite(&env, "bob@acme.example", "+17035550101").await;
    assert!(env.sim.state.remote_access.expire(&old, now_ms()));
    let o = ops::onboard_one(
        &cat,
        Some(2),
        Ok(jane("bob@acme.example", "+17035550101")),
        OnboardOptions {
            force: true,
            ..opts
        },
        now_ms(),
    )
    .await;
    assert_eq!(o.result, "invited", "{o:?}");
    assert_eq!(o.revoked_invitations, vec![old]);
}

/// Jane was invited, registered and offboarded (deactivated); `days` is the new approval.
async fn returning_vendor(env: &Env, days: u32, apps: &[&str]) -> (String, ops::OnboardOutcome) {
    let id = invite(env, "jane.doe@acme.example", "+17035550100").await;
    env.sim.state.remote_access.accept(&id).expect("accepted");
    let o = ops::offboard_one(
        &env.ra,
        None,
        Ok("jane.doe@acme.example".into()),
        OffboardOptions::default(),
    )
    .await;
    assert_eq!(o.result, "offboarded");
    let vid = env.ra.vendors(None).await.expect("v")[0]
        .id
        .clone()
        .expect("id");
    let mut r = jane("jane.doe@acme.example", "+17035550100");
    r.access_days = Some(days);
    r.applications = apps.iter().map(|a| a.to_string()).collect();
    let cat = Catalogue::new(&env.ra);
    let o = ops::onboard_one(
        &cat,
        Some(1),
        Ok(r),
        OnboardOptions {
            check_existing: true,
            ..OnboardOptions::default()
        },
        now_ms(),
    )
    .await;
    (vid, o)
}

#[tokio::test]
async fn a_returning_deactivated_vendor_is_reactivated_within_the_approval() {
    let env = start().await;
    // Approved again for longer, with the same applications: the account comes back.
    let (vid, o) = returning_vendor(&env, 60, &["Main DC/Linux SSH", "lab/web"]).await;
    assert_eq!(o.result, "reactivated", "{o:?}");
    assert_eq!(o.exit, Exit::Ok);
    assert_eq!(o.vendor_id.as_deref(), Some(vid.as_str()));
    assert_eq!(
        env.ra.vendor(&vid).await.expect("v").status.as_deref(),
        Some("Activated")
    );
    assert!(env.ra.invitations(None).await.expect("l").is_empty());
}

#[tokio::test]
async fn a_returning_vendor_whose_account_would_grant_more_fails_naming_it() {
    let env = start().await;
    // Approved for less time than the account still has: reactivating would grant more.
    let (vid, o) = returning_vendor(&env, 10, &["Main DC/Linux SSH", "lab/web"]).await;
    assert_eq!(o.result, "failed", "{o:?}");
    assert_eq!(o.exit, Exit::Refused);
    let reason = o.reason.expect("reason");
    assert!(
        reason.contains(&vid) && reason.contains("later than approved"),
        "{reason}"
    );
    assert!(reason.contains("--delete"), "{reason}");
    assert_eq!(
        env.ra.vendor(&vid).await.expect("v").status.as_deref(),
        Some("Deactivated")
    );
}

#[tokio::test]
async fn a_returning_vendor_whose_account_has_other_applications_fails_naming_it() {
    let env = start().await;
    let (vid, o) = returning_vendor(&env, 60, &["Main DC/Linux SSH"]).await;
    assert_eq!(o.result, "failed", "{o:?}");
    let reason = o.reason.expect("reason");
    assert!(
        reason.contains(&vid) && reason.contains("a0000000000000000000000000000003"),
        "{reason}"
    );
    assert_eq!(
        env.ra.vendor(&vid).await.expect("v").status.as_deref(),
        Some("Deactivated")
    );
}

#[tokio::test]
async fn onboarding_an_existing_vendor_is_skipped_unless_forced() {
    let env = start().await;
    let id = invite(&env, "jane.doe@acme.example", "+17035550100").await;
    let cat = Catalogue::new(&env.ra);
    let opts = OnboardOptions {
        check_existing: true,
        ..OnboardOptions::default()
    };
    // A pending invitation counts.
    let o = ops::onboard_one(
        &cat,
        Some(1),
        Ok(jane("jane.doe@acme.example", "+17035550100")),
        opts,
        now_ms(),
    )
    .await;
    assert_eq!(o.result, "skipped", "{o:?}");
    assert_eq!(o.existing_invitations, vec![id.clone()]);
    // So does an account.
    env.sim.state.remote_access.accept(&id).expect("accept");
    let o = ops::onboard_one(
        &cat,
        Some(2),
        Ok(jane("JANE.DOE@acme.example", "+17035550100")),
        opts,
        now_ms(),
    )
    .await;
    assert_eq!(o.result, "skipped");
    assert_eq!(o.existing_vendors.len(), 1);
    assert_eq!(o.exit, Exit::Ok);
    // Dry run and force.
    let o = ops::onboard_one(
        &cat,
        Some(3),
        Ok(jane("new@acme.example", "+17035550111")),
        OnboardOptions {
            dry_run: true,
            ..opts
        },
        now_ms(),
    )
    .await;
    assert_eq!(o.result, "would_invite");
    assert!(env.ra.invitations(None).await.expect("l").is_empty());
    let o = ops::onboard_one(
        &cat,
        Some(4),
        Ok(jane("jane.doe@acme.example", "+17035550100")),
        OnboardOptions {
            force: true,
            ..opts
        },
        now_ms(),
    )
    .await;
    assert_eq!(o.result, "invited");
    // Unknown applications are refused before anything is sent.
    let mut r = jane("x@acme.example", "+17035550122");
    r.applications = vec!["Main DC/Telnet".into()];
    let o = ops::onboard_one(&cat, Some(5), Ok(r), opts, now_ms()).await;
    assert_eq!(o.result, "invalid");
    assert_eq!(o.exit, Exit::DataErr);
    assert!(o.reason.expect("reason").contains("Main DC/Telnet"));
}

async fn set_fault(env: &Env, status: u16, count: u32, path: &str, retry_after: Option<&str>) {
    let mut headers = std::collections::BTreeMap::new();
    if let Some(r) = retry_after {
        headers.insert("Retry-After".to_string(), r.to_string());
    }
    env.sim.state.faults.set(
        "remote_access",
        pam_sim::faults::Faults {
            fail: Some(pam_sim::faults::FailNext {
                status,
                count,
                body: Some("{\"type\":\"about:blank\",\"title\":\"x\",\"status\":0,\"detail\":\"injected\"}".into()),
                content_type: Some("application/json".into()),
                headers,
            }),
            path_contains: Some(path.into()),
            ..Default::default()
        },
    );
}

fn fault_left(env: &Env) -> u32 {
    env.sim.state.faults.snapshot()["remote_access"]
        .fail
        .as_ref()
        .expect("fail")
        .count
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_backoff() {
    let env = start().await;
    env.ra.check().await.expect("token first");
    set_fault(&env, 429, 2, "/v2-edge/sites", Some("1")).await;
    let t = Instant::now();
    let sites = env.ra.sites().await.expect("retried");
    assert_eq!(sites.len(), 2);
    assert_eq!(fault_left(&env), 0);
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "Retry-After not honoured: {:?}",
        t.elapsed()
    );

    set_fault(&env, 503, 2, "/v2-edge/sites", None).await;
    assert_eq!(env.ra.sites().await.expect("retried").len(), 2);
    assert_eq!(fault_left(&env), 0);

    // More failures than retries: the error says so.
    set_fault(&env, 502, 10, "/v2-edge/sites", None).await;
    let e = env.ra.sites().await.expect_err("gives up");
    assert_eq!(e.exit(), Exit::Unavailable);
    assert_eq!(fault_left(&env), 6, "1 try + 3 retries");
}

#[tokio::test]
async fn client_errors_and_unsafe_writes_are_not_retried() {
    let env = start().await;
    env.ra.check().await.expect("token first");
    set_fault(&env, 400, 2, "/v2-edge/sites", None).await;
    let e = env.ra.sites().await.expect_err("400");
    assert_eq!(e.exit(), Exit::DataErr, "{e}");
    assert_eq!(fault_left(&env), 1, "a 4xx was retried");

    // A 503 to a create may have been carried out: it is not repeated.
    set_fault(&env, 503, 2, "vendor-invitations", None).await;
    let cat = Catalogue::new(&env.ra);
    let o = ops::onboard_one(
        &cat,
        None,
        Ok(jane("j@acme.example", "+17035550100")),
        OnboardOptions::default(),
        now_ms(),
    )
    .await;
    assert_eq!(o.result, "failed");
    assert_eq!(o.exit, Exit::TempFail);
    assert!(o.reason.expect("r").contains("may or may not"));
    assert_eq!(fault_left(&env), 1);
}

#[tokio::test]
async fn a_refused_token_is_renewed_once() {
    let env = start().await;
    assert_eq!(env.ra.sites().await.expect("sites").len(), 2);
    env.sim.state.remote_access.revoke_tokens();
    assert_eq!(env.ra.sites().await.expect("renewed").len(), 2);
    assert_eq!(env.ra.tokens().fetched(), 2);
    // A server that refuses every token: one renewal, then a clear error.
    set_fault(&env, 401, 5, "/v2-edge/", None).await;
    let e = env.ra.sites().await.expect_err("401");
    assert!(matches!(e, RemoteAccessError::Unauthorized { .. }), "{e}");
    assert_eq!(e.exit(), Exit::NoPerm);
    assert_eq!(fault_left(&env), 3);
}

#[tokio::test]
async fn paging_follows_total_count_and_stops_on_a_repeated_page() {
    let env = start_with("", "page_size = 1", None).await;
    assert_eq!(env.ra.sites().await.expect("sites").len(), 2);
    let calls = env
        .sim
        .state
        .remote_access
        .calls()
        .iter()
        .filter(|c| c.path == "/v2-edge/sites")
        .count();
    assert_eq!(calls, 2);
    let s = pam_sim::remote_access::Settings {
        ignore_offset: true,
        ..Default::default()
    };
    env.sim.state.remote_access.set_settings(s);
    assert_eq!(env.ra.sites().await.expect("sites").len(), 1);
}

#[tokio::test]
async fn a_viewer_cannot_invite() {
    let env = start_with("[remote_access.settings]\nrole = \"Viewer\"", "", None).await;
    assert_eq!(env.ra.sites().await.expect("read").len(), 2);
    let cat = Catalogue::new(&env.ra);
    let o = ops::onboard_one(
        &cat,
        None,
        Ok(jane("j@acme.example", "+17035550100")),
        OnboardOptions::default(),
        now_ms(),
    )
    .await;
    assert_eq!(o.exit, Exit::NoPerm, "{o:?}");
    assert!(
        o.error
            .expect("e")
            .hint
            .expect("hint")
            .contains("Administrator")
    );
}

#[tokio::test]
async fn secret_type_service_accounts_get_a_token() {
    let kp = keys::generate().expect("kg");
    let dir = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(
        scenario(&kp.public_pem, "client_secret = \"s3cret-value\""),
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("sim");
    let key_path = dir.path().join("sa.json");
    keys::write_key_file(
        &key_path,
        &format!(r#"{{"ClientID":"{TENANT}.{SA}","ClientSecret":"s3cret-value","discoveryURI":"https://auth.pam-sim.invalid/auth/realms/serviceaccounts"}}"#),
    )
    .expect("write");
    let text = format!(
        "[remote_access]\ntenant_id = \"{TENANT}\"\nkey_file = \"file:{}\"\nauth_url = \"{u}\"\napi_url = \"{u}\"\nca_bundle = \"{}\"\n",
        key_path.display(),
        sim.ca_cert.clone().expect("ca").display(),
        u = sim.url()
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let ra = RemoteAccess::connect(
        loaded.remote_access().expect("section"),
        loaded.config.vault.as_ref(),
    )
    .await
    .expect("connect");
    assert_eq!(ra.sites().await.expect("sites").len(), 2);
}

#[tokio::test]
async fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let kp = keys::generate().expect("kg");
    let p = dir.path().join("sa.json");
    std::fs::write(&p, keys::key_file_json(SA, &kp.pkcs1_pem)).expect("w");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let text = format!(
        "[remote_access]\ntenant_id = \"{TENANT}\"\nkey_file = \"file:{}\"\ndatacenter = \"eu\"\n",
        p.display()
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let e = RemoteAccess::connect(
        loaded.remote_access().expect("section"),
        loaded.config.vault.as_ref(),
    )
    .await
    .expect_err("mode");
    assert_eq!(e.exit(), Exit::Config);
    assert!(e.to_string().contains("chmod 600"), "{e}");
    assert!(!e.to_string().contains("PRIVATE"), "{e}");
}

//! The Vault client against a real OpenBao server (scripts/start-openbao.sh): AppRole and token
//! login, KV v2 reads, every refusal, renewal, re-login, revocation, TLS, a server that is down.
//! Each test starts its own server on its own port. Every error text is checked for secrets.

#[path = "support/openbao.rs"]
mod openbao;

use std::time::Duration;

use approval_core::exit::{Classify, Exit};
use approval_core::secret::vault::{VaultClient, VaultConfig};
use approval_core::secret::{ExposeSecret, Resolver, SecretError, SecretRef};
use openbao::{OpenBao, assert_no_secret};

fn vault_cfg(toml_text: &str) -> VaultConfig {
    toml::from_str(toml_text).expect("[vault] settings parse")
}

fn reference(s: &str) -> SecretRef {
    s.parse().expect("reference")
}

/// An error that must be of the given exit class, contain `needle`, and leak nothing.
fn check_err(e: &SecretError, exit: Exit, needle: &str, bao: &OpenBao) {
    let text = e.to_string();
    assert_eq!(e.exit(), exit, "{text}");
    assert!(text.contains(needle), "expected `{needle}` in: {text}");
    assert_no_secret(&text, &bao.secrets());
    assert_no_secret(&e.hint().unwrap_or_default(), &bao.secrets());
}

async fn read(client: &VaultClient, r: &str) -> Result<String, SecretError> {
    let SecretRef::Vault { mount, path, field } = reference(r) else {
        panic!("not a vault reference")
    };
    client
        .read_field(&reference(r), &mount, &path, &field)
        .await
        .map(|s| s.expose_secret().to_string())
}

#[tokio::test]
async fn approle_login_reads_kv_v2_and_revokes_its_token_at_close() {
    let Some(bao) = OpenBao::start(false) else {
        return;
    };
    let cfg = vault_cfg(&bao.vault_toml("pamtool"));
    let resolver = Resolver::new(Some(&cfg)).expect("resolver");
    let pw = resolver
        .resolve(&reference("vault:secret/pamtool/mailbox#password"))
        .await
        .expect("read password");
    assert_eq!(pw.expose_secret(), bao.seeded("mailbox", "password"));
    let user = resolver
        .resolve(&reference("vault:secret/pamtool/mailbox#username"))
        .await
        .expect("read username");
    assert_eq!(user.expose_secret(), "svc_mail");
    let vault = resolver.vault().expect("vault client");
    let stats = vault.stats().await;
    assert_eq!(stats.logins, 1, "one login serves both reads: {stats:?}");
    let accessor = vault.token_accessor().await.expect("accessor");
    assert!(bao.accessor_valid(&accessor));

    resolver.close().await;
    assert_eq!(vault.stats().await.revocations, 1);
    assert!(
        !bao.accessor_valid(&accessor),
        "the AppRole token must be revoked at close"
    );
}

#[tokio::test]
async fn token_auth_with_a_token_reference_is_not_revoked_and_a_dead_token_is_denied() {
    let Some(bao) = OpenBao::start(false) else {
        return;
    };
    let cfg = vault_cfg(&format!(
        "addr = \"{}\"\nauth = \"token\"\ntoken = \"file:{}\"\n",
        bao.addr,
        bao.path("token").display()
    ));
    let client = VaultClient::new(&cfg).expect("client");
    assert_eq!(
        read(&client, "vault:secret/pamtool/cyberark-approver1#password")
            .await
            .expect("read"),
        bao.seeded("cyberark-approver1", "password")
    );
    let accessor = client
        .token_accessor()
        .await
        .expect("lookup-self gave the accessor");
    client.revoke_own_token().await;
    assert!(
        bao.accessor_valid(&accessor),
        "a token we did not create must not be revoked"
    );

    // Revoked behind our back: no AppRole to fall back on, so the read is denied (77).
    let client = VaultClient::new(&cfg).expect("client");
    let body = serde_json::json!({ "accessor": accessor }).to_string();
    assert_eq!(
        bao.root("POST", "auth/token/revoke-accessor", Some(&body))
            .0,
        204
    );
    let e = read(&client, "vault:secret/pamtool/cyberark-approver1#password")
        .await
        .expect_err("revoked token");
    check_err(&e, Exit::NoPerm, "expired or revoked", &bao);
}

#[tokio::test]
async fn refusals_name_the_problem_and_never_a_secret() {
    let Some(bao) = OpenBao::start(false) else {
        return;
    };
    let client = VaultClient::new(&vault_cfg(&bao.vault_toml("pamtool"))).expect("client");

    let e = read(&client, "vault:secret/pamtool/mailbox#pasword")
        .await
        .expect_err("no such field");
    check_err(
        &e,
        Exit::Config,
        "no field `pasword` (fields: password, username)",
        &bao,
    );

    let e = read(&client, "vault:secret/pamtool/absent#password")
        .await
        .expect_err("no such path");
    check_err(&e, Exit::Config, "no secret at secret/pamtool/absent", &bao);

    let e = read(&client, "vault:secret/pamtool/deleted#password")
        .await
        .expect_err("soft-deleted");
    check_err(&e, Exit::Config, "(version 1) was deleted at", &bao);

    let e = read(&client, "vault:secret/other/forbidden#password")
        .await
        .expect_err("outside the policy");
    check_err(&e, Exit::NoPerm, "permission denied", &bao);
    check_err(&e, Exit::NoPerm, "secret/data/other/forbidden", &bao);

    // A policy denial is not taken for a dead token: still one login, no re-login.
    let stats = client.stats().await;
    assert_eq!((stats.logins, stats.relogins), (1, 0), "{stats:?}");

    // The token still works after all that.
    assert_eq!(
        read(&client, "vault:secret/pamtool/lookup#password")
            .await
            .expect("read"),
        bao.seeded("lookup", "password")
    );
}

#[tokio::test]
async fn a_wrong_secret_id_or_role_id_is_refused_without_echoing_it() {
    let Some(bao) = OpenBao::start(false) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let wrong = tmp.path().join("secret_id");
    let wrong_value = "0badc0de-aaaa-bbbb-cccc-000000000001";
    std::fs::write(&wrong, wrong_value).expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = bao.vault_toml("pamtool").replace(
        &bao.secret_id_file("pamtool").display().to_string(),
        &wrong.display().to_string(),
    );
    let client = VaultClient::new(&vault_cfg(&text)).expect("client");
    let e = read(&client, "vault:secret/pamtool/mailbox#password")
        .await
        .expect_err("wrong secret-id");
    check_err(&e, Exit::NoPerm, "AppRole login refused (400)", &bao);
    assert!(!e.to_string().contains(wrong_value), "{e}");
    assert!(e.hint().unwrap_or_default().contains("secret_id"));

    let text = bao
        .vault_toml("pamtool")
        .replace(&bao.role_id("pamtool"), "not-a-role-id");
    let client = VaultClient::new(&vault_cfg(&text)).expect("client");
    let e = read(&client, "vault:secret/pamtool/mailbox#password")
        .await
        .expect_err("wrong role-id");
    check_err(&e, Exit::NoPerm, "invalid role or secret ID", &bao);

    // A secret-id file others can read is refused before anything is sent.
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let text = bao.vault_toml("pamtool").replace(
        &bao.secret_id_file("pamtool").display().to_string(),
        &wrong.display().to_string(),
    );
    let client = VaultClient::new(&vault_cfg(&text)).expect("client");
    let e = read(&client, "vault:secret/pamtool/mailbox#password")
        .await
        .expect_err("readable secret-id file");
    check_err(&e, Exit::Config, "chmod 600", &bao);
}

#[tokio::test]
async fn a_token_is_renewed_once_two_thirds_of_its_lease_have_passed() {
    let Some(bao) = OpenBao::start(false) else {
        return;
    };
    // pamtool-short: token_ttl 8s. The secret-id comes through a command this time.
    let text = bao.vault_toml("pamtool-short").replace(
        &format!("\"file:{}\"", bao.secret_id_file("pamtool-short").display()),
        &format!(
            "\"cmd:cat {}\"",
            bao.secret_id_file("pamtool-short").display()
        ),
    );
    let client = VaultClient::new(&vault_cfg(&text)).expect("client");
    let want = bao.seeded("lookup", "password");
    let r = "vault:secret/pamtool/lookup#password";
    assert_eq!(read(&client, r).await.expect("first read"), want);
    let accessor = client.token_accessor().await.expect("accessor");

    // 6 s of 8: less than a third left, so this read renews first.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(read(&client, r).await.expect("read after 6s"), want);
    let s = client.stats().await;
    assert_eq!((s.logins, s.renewals), (1, 1), "{s:?}");

    // 10 s after login: the original lease is over, the renewed one is not.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(read(&client, r).await.expect("read after 10s"), want);
    let s = client.stats().await;
    assert_eq!(
        (s.logins, s.renewals, s.relogins),
        (1, 1, 0),
        "the renewed token must still be valid on the server: {s:?}"
    );
    assert_eq!(
        client.token_accessor().await.as_deref(),
        Some(accessor.as_str())
    );
    client.revoke_own_token().await;
    assert!(!bao.accessor_valid(&accessor));
}

#[tokio::test]
async fn a_renewal_capped_by_max_ttl_leads_to_a_fresh_login() {
    let Some(bao) = OpenBao::start(false) else {
        return;
    };
    let role = serde_json::json!({
        "token_policies": ["pamtool"], "token_ttl": "9s", "token_max_ttl": "9s"
    })
    .to_string();
    assert_eq!(
        bao.root("POST", "auth/approle/role/capped", Some(&role)).0,
        204
    );
    let (_, rid) = bao.root("GET", "auth/approle/role/capped/role-id", None);
    let (_, sid) = bao.root("POST", "auth/approle/role/capped/secret-id", Some("{}"));
    let sid_file = bao.path("capped-secret-id");
    std::fs::write(
        &sid_file,
        sid["data"]["secret_id"].as_str().expect("secret_id"),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sid_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = bao
        .vault_toml("pamtool")
        .replace(
            &bao.role_id("pamtool"),
            rid["data"]["role_id"].as_str().expect("role_id"),
        )
        .replace(
            &bao.secret_id_file("pamtool").display().to_string(),
            &sid_file.display().to_string(),
        );
    let client = VaultClient::new(&vault_cfg(&text)).expect("client");
    let r = "vault:secret/pamtool/mailbox#password";
    read(&client, r).await.expect("first read");
    let first = client.token_accessor().await.expect("accessor");
    tokio::time::sleep(Duration::from_millis(6500)).await;
    // Renewal can give at most the 2.5 s left to max_ttl (well under the 9 s lease): log in again.
    assert_eq!(
        read(&client, r).await.expect("read"),
        bao.seeded("mailbox", "password")
    );
    let s = client.stats().await;
    assert_eq!((s.logins, s.renewals), (2, 1), "{s:?}");
    assert_ne!(
        client.token_accessor().await.as_deref(),
        Some(first.as_str())
    );
    assert!(!bao.accessor_valid(&first), "the replaced token is revoked");
}

#[tokio::test]
async fn a_revoked_token_leads_to_a_new_approle_login() {
    let Some(bao) = OpenBao::start(false) else {
        return;
    };
    // secret-id through systemd's credentials directory this time.
    let text = bao.vault_toml("pamtool").replace(
        &format!("\"file:{}\"", bao.secret_id_file("pamtool").display()),
        "\"cred:secret_id\"",
    );
    let resolver = Resolver::new(Some(&vault_cfg(&text)))
        .expect("resolver")
        .with_credentials_dir(Some(bao.path("approle/pamtool")));
    let r = reference("vault:secret/pamtool/cyberark-approver2#password");
    let want = bao.seeded("cyberark-approver2", "password");
    assert_eq!(
        resolver.resolve(&r).await.expect("read").expose_secret(),
        want
    );
    let vault = resolver.vault().expect("vault");
    let accessor = vault.token_accessor().await.expect("accessor");
    let body = serde_json::json!({ "accessor": accessor }).to_string();
    assert_eq!(
        bao.root("POST", "auth/token/revoke-accessor", Some(&body))
            .0,
        204
    );
    assert_eq!(
        resolver
            .resolve(&r)
            .await
            .expect("read again")
            .expose_secret(),
        want
    );
    let s = vault.stats().await;
    assert_eq!((s.logins, s.relogins), (2, 1), "{s:?}");
    let second = vault.token_accessor().await.expect("accessor");
    assert_ne!(second, accessor);
    resolver.close().await;
    assert!(!bao.accessor_valid(&second));
}

#[tokio::test]
async fn tls_with_the_dev_ca_works_and_without_it_fails_clearly() {
    let Some(bao) = OpenBao::start(true) else {
        return;
    };
    let with_ca = bao.vault_toml("pamtool");
    assert!(with_ca.contains("ca_bundle"));
    assert!(bao.addr.starts_with("https://"));
    let client = VaultClient::new(&vault_cfg(&with_ca)).expect("client");
    assert_eq!(
        read(&client, "vault:secret/pamtool/mailbox#password")
            .await
            .expect("read over TLS"),
        bao.seeded("mailbox", "password")
    );
    client.revoke_own_token().await;

    let without: String = with_ca
        .lines()
        .filter(|l| !l.starts_with("ca_bundle"))
        .map(|l| format!("{l}\n"))
        .collect();
    let client = VaultClient::new(&vault_cfg(&without)).expect("client");
    let e = read(&client, "vault:secret/pamtool/mailbox#password")
        .await
        .expect_err("untrusted certificate");
    check_err(&e, Exit::Unavailable, "certificate", &bao);
    assert!(e.to_string().contains(&bao.addr), "{e}");
    assert!(
        e.hint().unwrap_or_default().contains("vault.ca_bundle"),
        "{:?}",
        e.hint()
    );

    let bad = with_ca.replace("vault-ca.pem", "missing.pem");
    let e = VaultClient::new(&vault_cfg(&bad)).expect_err("missing bundle");
    check_err(&e, Exit::Config, "vault.ca_bundle", &bao);
    assert!(e.to_string().contains("missing.pem"), "{e}");
}

#[tokio::test]
async fn a_server_that_is_down_is_unavailable() {
    let Some(mut bao) = OpenBao::start(false) else {
        return;
    };
    let cfg = vault_cfg(&bao.vault_toml("pamtool"));
    let cached = VaultClient::new(&cfg).expect("client");
    read(&cached, "vault:secret/pamtool/mailbox#password")
        .await
        .expect("read while up");
    bao.stop();
    // The cached client may first hit its pooled connection ("connection closed"), a new one
    // is refused at connect: both are 69 and name the server.
    for (client, needle) in [
        (&cached, bao.addr.as_str()),
        (
            &VaultClient::new(&cfg).expect("client"),
            "Connection refused",
        ),
    ] {
        let e = read(client, "vault:secret/pamtool/mailbox#password")
            .await
            .expect_err("down");
        check_err(&e, Exit::Unavailable, &bao.addr, &bao);
        check_err(&e, Exit::Unavailable, needle, &bao);
        assert_eq!(e.exit().code(), 69);
        assert!(e.hint().unwrap_or_default().contains("vault.addr"));
    }
}

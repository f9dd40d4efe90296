//! `Pipeline::process` end to end on the Graph mailbox (Exchange Online): the same suite as
//! watcher_pipeline.rs (suites/watcher_pipeline.rs), every test on pam-sim's Graph stand-in
//! with an app that signs in with a certificate.

#[macro_use]
#[path = "support/watcher_env.rs"]
mod watcher_env;

/// The mailbox backend of this suite (support/watcher_env.rs).
const SUITE_BACKEND: watcher_env::Backend = watcher_env::Backend::Graph;
/// The PVWA of this suite (support/watcher_env.rs).
const SUITE_PVWA: pam_sim::pvwa::PvwaMode = pam_sim::pvwa::PvwaMode::SelfHosted;

include!("suites/watcher_pipeline.rs");

/// Exchange Online: the sender check is pinned to the mailbox's tenant by default. A mail that
/// carries a tenant stamp written before Exchange added its own is refused as a forgery, and a
/// site whose tenant is another one than the mailbox stamps refuses every mail: nothing is
/// confirmed either way.
#[tokio::test]
async fn the_tenant_pin_refuses_a_forged_stamp_and_another_tenant() {
    let env = env!();
    let w = pipeline(&env).await;
    let forged = String::from_utf8(mail(
        "t1",
        "alice@example.test",
        "DBSafe",
        9,
        "dave@example.test",
        true,
    ))
    .expect("text")
    .replacen(
        "MIME-Version:",
        "X-MS-Exchange-CrossTenant-Id: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\r\nMIME-Version:",
        1,
    );
    let m = deliver(&env, forged.into_bytes());
    let p = w.process(&m).await.expect("process");
    assert_eq!(
        p.reason_code.as_deref(),
        Some("duplicate_org_header"),
        "{p:?}"
    );
    assert!(confirms(&env).is_empty(), "nothing confirmed");
    w.close().await;

    // The site pinned to another tenant than the one that stamps the mail.
    let text = config_text(&env, DEFAULT_APPROVERS, "", "").replace(
        "[sender]\n",
        "[sender]\ntenant_id = \"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\"\n",
    );
    let loaded = approval_core::settings::load_from_parts(Some(&text), None, &[]).expect("config");
    let w = approval_core::pipeline::Pipeline::new(&loaded, false)
        .await
        .expect("pipeline");
    let m = deliver(
        &env,
        mail(
            "t2",
            "alice@example.test",
            "DBSafe",
            9,
            "dave@example.test",
            true,
        ),
    );
    let p = w.process(&m).await.expect("process");
    assert_eq!(p.reason_code.as_deref(), Some("foreign_tenant"), "{p:?}");
    assert!(confirms(&env).is_empty(), "nothing confirmed");
    w.close().await;
}

/// A pass records the end of the app's certificate in the journal, where `--status` reads it
/// (a warning within 30 days of it, CRITICAL once past).
#[tokio::test]
async fn a_pass_records_the_certificate_end_for_status() {
    let env = env!();
    let w = pipeline(&env).await;
    w.run_once().await.expect("a pass");
    let end = approval_core::mailbox::oauth::certificate_not_after().expect("a certificate");
    assert!(end > chrono::Utc::now().timestamp(), "{end}");
    let recorded = w
        .journal()
        .get_value(approval_core::pipeline::watch_loop::MAILBOX_CERTIFICATE_END)
        .expect("journal")
        .expect("recorded");
    assert_eq!(recorded, end.to_string());
    w.close().await;
}

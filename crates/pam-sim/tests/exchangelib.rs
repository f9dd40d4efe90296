//! Conformance: the independent Python EWS client exchangelib runs its normal flow against the
//! Exchange stand-in over HTTPS with the test CA (tests/exchangelib_flow.py), with its default
//! settings (auth negotiated from the 401, NTLM; server version guessed with ConvertId): list
//! unread, read body, text body and headers, mark read, create a folder and move into it, send
//! and save, a new-mail event over a streaming subscription, pull notifications and sync, move
//! to the trash and delete. Every SOAP document of the run is then validated against
//! Microsoft's schema. A second test runs its documented delegate set-up on a shared mailbox
//! (tests/exchangelib_delegate_flow.py): read the inbox, a folder, move an item, reply.
//!
//! Needs the test venv (`$PAMTEST_VENV`, made by scripts/install-test-deps.sh). Without it the
//! test says so and passes, unless `PAMTEST_REQUIRE_SERVERS=1`.

// A skipped check says so on the test output.
#![allow(clippy::print_stderr)]

#[path = "support/venv.rs"]
mod venv;

use std::path::PathBuf;

#[path = "../../ews/tests/support/schema.rs"]
mod schema;
use pam_sim::{Scenario, Sim, SimOptions};
use schema::Outcome;

fn eml(n: u32) -> String {
    format!(
        "Received: from mx1.example.com (10.0.0.1) by exch01.example.com\r\n with SMTP; Mon, 5 Jan 2026 10:00:00 +0000\r\n\
Authentication-Results: exch01.example.com; spf=pass smtp.mailfrom=example.com\r\n\
From: \"Alice Approver\" <alice@example.com>\r\n\
To: bot@example.com\r\n\
Subject: FW: Notification: Password access request {n}\r\n\
Message-ID: <fw-{n}@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n\
Please approve request {n}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn exchangelib_runs_its_normal_flow_against_the_stand_in() {
    let required = venv::required();
    let Some(py) = venv::program("python", "exchangelib conformance") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = Scenario::from_toml("[ews]\nheartbeat_ms = 300\nstream_minute_ms = 1500\n")
        .expect("scenario");
    let sim = Sim::start(
        scenario,
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("pam-sim starts");
    sim.state
        .ews
        .deliver("bot@example.com", None, eml(1).into_bytes(), 0)
        .expect("deliver");
    let second = dir.path().join("second.eml");
    std::fs::write(&second, eml(2)).expect("write eml");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/exchangelib_flow.py");
    let out = tokio::process::Command::new(&py)
        .arg(&script)
        .arg(sim.url())
        .arg(sim.ca_cert.as_ref().expect("https"))
        .arg(&second)
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'exchangelib'") && !required {
        eprintln!("SKIPPED exchangelib conformance: exchangelib is not installed in the venv");
        return;
    }
    assert!(
        out.status.success(),
        "exchangelib failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("EXCHANGELIB FLOW OK"), "{stdout}");
    // The stand-in offers NTLM and Basic; exchangelib prefers NTLM, whose first leg is a 401
    // to a request with a body: the connection must survive it.
    assert!(stdout.contains("auth: NTLM"), "{stdout}");
    // TextBody read, DeleteItem (to Deleted Items, then for good) answered as Exchange does.
    assert!(stdout.contains("deleted"), "{stdout}");
    eprintln!("exchangelib said:\n{stdout}");
    assert!(
        stdout.contains("streaming events:") && stdout.contains("NewMailEvent"),
        "{stdout}"
    );

    // What exchangelib did is visible in the store.
    let v = sim
        .state
        .ews
        .folders_json("bot@example.com")
        .expect("mailbox");
    let folders = v["folders"].as_array().expect("folders");
    let processed = folders
        .iter()
        .find(|f| f["name"] == "Processed")
        .expect("Processed created");
    assert_eq!(
        processed["items"].as_array().map(Vec::len),
        Some(0),
        "moved to the trash, then deleted"
    );
    let sent = sim.state.ews.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, vec!["alice@example.com"]);
    assert_eq!(sent[0].subject, "Approved");

    // With its default settings exchangelib negotiated the auth type from our 401 and guessed
    // the server version with a dummy ConvertId: Exchange answers that per message with
    // ErrorInvalidIdMalformed, under a ServerVersionInfo header the client reads.
    let docs = sim.state.ews.transcript();
    let first = docs
        .iter()
        .position(|d| d.0 == "request-ConvertId")
        .expect("the version guess sent ConvertId");
    let answer = String::from_utf8_lossy(&docs[first + 1].1).into_owned();
    assert!(
        answer.contains("ServerVersionInfo") && answer.contains("ErrorInvalidIdMalformed"),
        "{answer}"
    );
    match schema::validate(&docs).expect("exchangelib's requests and our answers validate") {
        Outcome::Valid(n) => assert_eq!(n, docs.len()),
        Outcome::Skipped(why) => eprintln!("SKIPPED schema validation: {why}"),
    }
}

/// exchangelib's documented delegate set-up (`Account(primary_smtp_address=…, credentials=…,
/// autodiscover=False, config=Configuration(server=…, credentials=…), access_type=DELEGATE)`),
/// everything else at its defaults: a service account reads a shared mailbox's inbox, makes and
/// finds a folder there, moves an item into it and replies to the sender.
#[tokio::test(flavor = "multi_thread")]
async fn exchangelib_delegate_access_to_a_shared_mailbox() {
    let required = venv::required();
    let Some(py) = venv::program("python", "exchangelib delegate conformance") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = Scenario::from_toml(
        r#"
[ews]
mailboxes = ["approvals@example.com"]
users = [{ username = "CORP\\svc-mail", password = "svc-password", mailbox = "svc-mail@example.com" }]
"#,
    )
    .expect("scenario");
    let sim = Sim::start(
        scenario,
        SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..SimOptions::default()
        },
    )
    .await
    .expect("pam-sim starts");
    sim.state
        .ews
        .deliver("approvals@example.com", None, eml(1).into_bytes(), 0)
        .expect("deliver");
    let server = sim
        .url()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/exchangelib_delegate_flow.py");
    let out = tokio::process::Command::new(&py)
        .arg(&script)
        .arg(&server)
        .arg(sim.ca_cert.as_ref().expect("https"))
        .args(["CORP\\svc-mail", "svc-password", "approvals@example.com"])
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'exchangelib'") && !required {
        eprintln!("SKIPPED exchangelib delegate conformance: exchangelib is not installed");
        return;
    }
    assert!(
        out.status.success(),
        "exchangelib (delegate) failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("EXCHANGELIB DELEGATE FLOW OK"), "{stdout}");
    assert!(stdout.contains("auth: NTLM"), "{stdout}");
    assert!(
        stdout.contains(&format!("endpoint: https://{server}/EWS/Exchange.asmx")),
        "{stdout}"
    );

    // The shared mailbox, not the service account's own, holds the folder and the moved item.
    let shared = sim
        .state
        .ews
        .folders_json("approvals@example.com")
        .expect("shared mailbox");
    let folders = shared["folders"].as_array().expect("folders");
    let processed = folders
        .iter()
        .find(|f| f["name"] == "Processed")
        .expect("Processed created in the shared mailbox");
    assert_eq!(
        processed["items"].as_array().map(Vec::len),
        Some(1),
        "{shared}"
    );
    let own = sim
        .state
        .ews
        .folders_json("svc-mail@example.com")
        .expect("own mailbox");
    assert!(
        !own["folders"]
            .as_array()
            .expect("folders")
            .iter()
            .any(|f| f["name"] == "Processed"),
        "{own}"
    );
    // The reply went from the shared mailbox to the sender, as a reply.
    let sent = sim.state.ews.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].mailbox, "approvals@example.com");
    assert_eq!(sent[0].to, vec!["alice@example.com"]);
    assert_eq!(
        sent[0].subject,
        "Re: FW: Notification: Password access request 1"
    );
    assert!(sent[0].body.contains("Approved."), "{:?}", sent[0].body);
    let header = |n: &str| {
        sent[0]
            .headers
            .iter()
            .find(|h| h.0 == n)
            .map(|h| h.1.as_str())
    };
    assert_eq!(header("In-Reply-To"), Some("<fw-1@example.com>"));
    assert_eq!(header("References"), Some("<fw-1@example.com>"));
    let docs = sim.state.ews.transcript();
    match schema::validate(&docs).expect("exchangelib's requests and our answers validate") {
        Outcome::Valid(n) => assert_eq!(n, docs.len()),
        Outcome::Skipped(why) => eprintln!("SKIPPED schema validation: {why}"),
    }
}

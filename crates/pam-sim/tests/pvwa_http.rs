//! The PVWA stand-in spoken to over HTTP as a client that keeps no cookies would: stickiness is
//! off by default and an option, list items leave the account's properties empty, a waiting
//! confirmer reads `Action: 2`, the requester's view (`MyRequests`), bulk confirm/reject, and a
//! path the stand-in does not model answers a JSON 501.

use pam_sim::{Scenario, Sim, SimOptions};
use serde_json::{Value, json};

fn scenario(extra: &str) -> Scenario {
    Scenario::from_toml(&format!(
        r#"
[pvwa]
{extra}
[[pvwa.users]]
name = "svc_l1"
password = "pw-l1"
groups = ["Infra_L1"]
[[pvwa.users]]
name = "alice"
password = "pw-alice"
[[pvwa.safes]]
name = "InfraSafe"
members = [{{ name = "Infra_L1", level1 = true, view_members = true }}]
[[pvwa.requests]]
number = 1
safe = "InfraSafe"
requester = "alice"
levels = [1, 0]
[[pvwa.requests]]
number = 2
safe = "InfraSafe"
requester = "alice"
levels = [1, 0]
[[pvwa.requests]]
number = 3
safe = "InfraSafe"
requester = "alice"
levels = [1, 0]
"#
    ))
    .expect("scenario")
}

struct Env {
    sim: Sim,
    http: reqwest::Client,
}

async fn start(extra: &str) -> Env {
    let sim = Sim::start(scenario(extra), SimOptions::default())
        .await
        .expect("sim");
    Env {
        sim,
        http: reqwest::Client::new(),
    }
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}/PasswordVault/API/{path}", self.sim.url())
    }

    /// Logon; the token and the `Set-Cookie` the answer carried.
    async fn logon(&self, user: &str, pw: &str) -> (String, String) {
        let r = self
            .http
            .post(self.url("auth/CyberArk/Logon"))
            .json(&json!({"username": user, "password": pw}))
            .send()
            .await
            .expect("logon");
        assert_eq!(r.status(), 200);
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let token: String = r.json().await.expect("token");
        (token, cookie)
    }

    async fn call(
        &self,
        m: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, String, Value) {
        let mut b = self
            .http
            .request(m, self.url(path))
            .header("Authorization", token);
        if let Some(v) = body {
            b = b.json(&v);
        }
        let r = b.send().await.expect("send");
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, ctype, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn a_client_without_cookies_is_served_by_default_and_the_cookie_covers_every_path() {
    let env = start("").await;
    let (token, cookie) = env.logon("svc_l1", "pw-l1").await;
    assert!(cookie.contains("Path=/;"), "cookie path is /: {cookie}");
    let (status, _, v) = env
        .call(reqwest::Method::GET, "IncomingRequests", &token, None)
        .await;
    assert_eq!(status, 200, "no cookie needed by default: {v}");
    assert_eq!(env.sim.state.pvwa.stats().cookie_refused, 0);
}

#[tokio::test]
async fn with_stickiness_on_a_call_without_the_cookie_is_refused() {
    let env = start("sticky_cookie = true").await;
    let (token, cookie) = env.logon("svc_l1", "pw-l1").await;
    let (status, _, _) = env
        .call(reqwest::Method::GET, "IncomingRequests", &token, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(env.sim.state.pvwa.stats().cookie_refused, 1);
    let pair = cookie.split(';').next().expect("pair").to_string();
    let r = env
        .http
        .get(env.url("IncomingRequests"))
        .header("Authorization", &token)
        .header("Cookie", pair)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        200,
        "with the cookie back the call goes through"
    );
}

#[tokio::test]
async fn list_items_carry_no_account_properties_and_a_waiting_confirmer_reads_action_2() {
    let env = start("").await;
    let (token, _) = env.logon("svc_l1", "pw-l1").await;
    let (_, _, list) = env
        .call(
            reqwest::Method::GET,
            "IncomingRequests?onlywaiting=true",
            &token,
            None,
        )
        .await;
    let items = list["IncomingRequests"].as_array().expect("list");
    assert_eq!(items.len(), 3);
    for it in items {
        assert_eq!(it["AccountDetails"]["Properties"], json!({}), "{it}");
        assert_eq!(it["Confirmers"], json!([]));
    }
    let (_, _, one) = env
        .call(
            reqwest::Method::GET,
            "IncomingRequests/InfraSafe_1",
            &token,
            None,
        )
        .await;
    assert_eq!(one["AccountDetails"]["Properties"]["UserName"], "root");
    let c = &one["Confirmers"][0];
    assert_eq!(
        (c["Action"].clone(), c["ActionDate"].clone()),
        (json!(2), json!(0))
    );
}

#[tokio::test]
async fn the_requester_sees_their_own_requests_and_no_one_elses() {
    let env = start("").await;
    let (alice, _) = env.logon("alice", "pw-alice").await;
    let (status, _, v) = env
        .call(
            reqwest::Method::GET,
            "MyRequests?onlywaiting=true&expired=false",
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["Total"], 3);
    let first = &v["MyRequests"][0];
    assert_eq!(first["RequestorUserName"], "alice");
    assert!(
        first.get("RequestorFullName").is_none(),
        "the Request schema lacks it"
    );
    let (status, _, one) = env
        .call(reqwest::Method::GET, "MyRequests/InfraSafe_2", &alice, None)
        .await;
    assert_eq!(
        (status, one["RequestID"].clone()),
        (200, json!("InfraSafe_2"))
    );
    let (svc, _) = env.logon("svc_l1", "pw-l1").await;
    let (_, _, v) = env
        .call(reqwest::Method::GET, "MyRequests", &svc, None)
        .await;
    assert_eq!(v["Total"], 0, "svc_l1 requested nothing");
    let (status, _, _) = env
        .call(reqwest::Method::GET, "MyRequests/InfraSafe_2", &svc, None)
        .await;
    assert_eq!(status, 404, "another's request is not found");
}

#[tokio::test]
async fn bulk_confirm_and_reject_act_on_each_item_as_the_single_call_would() {
    let env = start("").await;
    let (svc, _) = env.logon("svc_l1", "pw-l1").await;
    let (status, _, v) = env
        .call(
            reqwest::Method::POST,
            "IncomingRequests/Confirm/Bulk",
            &svc,
            Some(json!({"BulkItems": [
                {"RequestId": "InfraSafe_1", "Reason": "one"},
                {"RequestId": "InfraSafe_9", "Reason": "none such"},
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let res = v["BulkActionResults"].as_array().expect("results");
    assert_eq!(res[0]["Success"], true);
    assert_eq!(res[1]["Success"], false);
    let (status, _, _) = env
        .call(
            reqwest::Method::POST,
            "IncomingRequests/Reject/Bulk",
            &svc,
            Some(json!({"BulkItems": [{"RequestId": "InfraSafe_2", "Reason": "no"}]})),
        )
        .await;
    assert_eq!(status, 200);
    let acts = env.sim.state.pvwa.actions();
    let got: Vec<_> = acts
        .iter()
        .map(|a| (a.request_id.as_str(), a.action.as_str(), a.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("InfraSafe_1", "confirm", "one"),
            ("InfraSafe_2", "reject", "no")
        ]
    );
    // The requester may not confirm their own request in bulk either.
    let (alice, _) = env.logon("alice", "pw-alice").await;
    let (_, _, v) = env
        .call(
            reqwest::Method::POST,
            "IncomingRequests/Confirm/Bulk",
            &alice,
            Some(json!({"BulkItems": [{"RequestId": "InfraSafe_3", "Reason": "self"}]})),
        )
        .await;
    assert_eq!(v["BulkActionResults"][0]["Success"], false);
    assert_eq!(env.sim.state.pvwa.actions().len(), 2);
    let (status, _, _) = env
        .call(
            reqwest::Method::POST,
            "IncomingRequests/Confirm/Bulk",
            &svc,
            Some(json!({"Items": []})),
        )
        .await;
    assert_eq!(status, 400, "a body without BulkItems is refused");
}

#[tokio::test]
async fn a_path_the_stand_in_does_not_model_answers_a_json_501() {
    let env = start("").await;
    let (svc, _) = env.logon("svc_l1", "pw-l1").await;
    let (status, ctype, v) = env
        .call(reqwest::Method::GET, "Accounts?search=root", &svc, None)
        .await;
    // P14: not a 404 a client could read as "not found", and it says what it is.
    assert_eq!(status, 501, "{v}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    assert!(
        v["ErrorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("pam-sim does not model")),
        "{v}"
    );
}

#[tokio::test]
async fn the_vaults_user_records_are_searched_by_part_of_a_name_with_audit_users_only() {
    let env = start(
        r#"
[[pvwa.users]]
name = "lfischer"
password = "x"
full_name = "Lena Fischer"
email = "lena.fischer@example.test"
source = "LDAP"
[[pvwa.users]]
name = "lfischer2"
password = "x"
[[pvwa.users]]
name = "clerk"
password = "pw-clerk"
audit_users = false
"#,
    )
    .await;
    let (svc, _) = env.logon("svc_l1", "pw-l1").await;
    // The search matches parts of names, in any case: the caller picks the exact one.
    let (status, _, v) = env
        .call(reqwest::Method::GET, "Users?search=LFischer", &svc, None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["Total"], 2, "{v}");
    let names: Vec<&str> = v["Users"]
        .as_array()
        .expect("Users")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, vec!["lfischer", "lfischer2"]);
    let u = &v["Users"][0];
    assert_eq!(u["source"], "LDAP");
    assert_eq!(u["internet"]["businessEmail"], "lena.fischer@example.test");
    assert_eq!(u["internet"]["homeEmail"], "");
    assert_eq!(u["personalDetails"]["lastName"], "Fischer");
    assert!(u["id"].is_number(), "{u}");
    assert_eq!(v["Users"][1]["source"], "CyberArk");
    assert_eq!(v["Users"][1]["internet"]["businessEmail"], "");
    // The full name is searched too; nothing found is an empty list.
    let (_, _, v) = env
        .call(
            reqwest::Method::GET,
            "Users?search=lena%20fisch",
            &svc,
            None,
        )
        .await;
    assert_eq!(v["Total"], 1, "{v}");
    let (_, _, v) = env
        .call(reqwest::Method::GET, "Users?search=nobody", &svc, None)
        .await;
    assert_eq!(v, json!({"Users": [], "Total": 0}));
    // Without the Vault permission "Audit users": 403.
    let (clerk, _) = env.logon("clerk", "pw-clerk").await;
    let (status, _, v) = env
        .call(reqwest::Method::GET, "Users?search=lfischer", &clerk, None)
        .await;
    // The permission is documented; the status is a guess and the code borrowed (U5).
    assert_eq!(status, 403, "{v}");
}

/// A rejected request as the stand-in shows it (ASSUMPTIONS P21): `Status` 3 `Rejected`, no
/// confirmation left, the rejecter listed with `Action` 3, its reason and `ActionDate`; no longer
/// among the waiting ones; a later confirm or reject, single or bulk, is refused.
#[tokio::test]
async fn a_rejected_request_shows_who_rejected_and_when_and_takes_no_further_act() {
    let env = start("").await;
    let (svc, _) = env.logon("svc_l1", "pw-l1").await;
    let (status, _, _) = env
        .call(
            reqwest::Method::POST,
            "IncomingRequests/InfraSafe_1/Reject",
            &svc,
            Some(json!({"Reason": "Rejected on behalf of bob by mail [ref 1]"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, r) = env
        .call(
            reqwest::Method::GET,
            "IncomingRequests/InfraSafe_1",
            &svc,
            None,
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["Status"].as_i64(), r["StatusTitle"].as_str()),
        (Some(3), Some("Rejected"))
    );
    assert_eq!(r["ConfirmationsLeft"], 0);
    let who = r["Confirmers"]
        .as_array()
        .expect("confirmers")
        .iter()
        .find(|c| c["ActionDate"].as_i64().unwrap_or(0) != 0)
        .expect("the rejecter");
    assert_eq!(who["Action"], 3);
    assert_eq!(who["Reason"], "Rejected on behalf of bob by mail [ref 1]");
    assert_eq!(who["Members"][0]["UserName"], "svc_l1");
    let (_, _, list) = env
        .call(
            reqwest::Method::GET,
            "IncomingRequests?onlywaiting=true&expired=false",
            &svc,
            None,
        )
        .await;
    let ids: Vec<&str> = list["IncomingRequests"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|x| x["RequestID"].as_str())
        .collect();
    assert!(!ids.contains(&"InfraSafe_1"), "{ids:?}");
    for verb in ["Confirm", "Reject"] {
        let (status, _, e) = env
            .call(
                reqwest::Method::POST,
                &format!("IncomingRequests/InfraSafe_1/{verb}"),
                &svc,
                Some(json!({"Reason": "again"})),
            )
            .await;
        assert_eq!(
            (status, e["ErrorCode"].as_str()),
            (500, Some("PAMSIM_REJECTED")),
            "{e}"
        );
    }
    let (_, _, v) = env
        .call(
            reqwest::Method::POST,
            "IncomingRequests/Reject/Bulk",
            &svc,
            Some(json!({"BulkItems": [{"RequestId": "InfraSafe_1", "Reason": "again"}]})),
        )
        .await;
    assert_eq!(v["BulkActionResults"][0]["Success"], false, "{v}");
    assert_eq!(v["BulkActionResults"][0]["StatusCode"], 500, "{v}");
    assert_eq!(env.sim.state.pvwa.actions().len(), 1);
}

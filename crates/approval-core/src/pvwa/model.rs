//! PVWA wire types, read defensively: unknown fields ignored, `null` taken as empty, enums kept
//! as raw integers (their value lists are unverified; see reference/pvwa.md §9).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// `null` or absent -> `Default`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A string map whose values may be strings, numbers, booleans or null on the wire.
fn loose_string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (k, s)
        })
        .collect())
}

/// One Dual Control request (`IncomingRequest`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    #[serde(rename = "RequestID", deserialize_with = "null_default", default)]
    pub request_id: String,
    #[serde(deserialize_with = "null_default", default)]
    pub safe_name: String,
    #[serde(deserialize_with = "null_default", default)]
    pub requestor_user_name: String,
    #[serde(deserialize_with = "null_default", default)]
    pub requestor_full_name: String,
    #[serde(deserialize_with = "null_default", default)]
    pub requestor_reason: String,
    #[serde(deserialize_with = "null_default", default)]
    pub user_reason: String,
    #[serde(deserialize_with = "null_default", default)]
    pub creation_date: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub operation: String,
    #[serde(deserialize_with = "null_default", default)]
    pub operation_type: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub expiration_date: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub access_type: String,
    #[serde(deserialize_with = "null_default", default)]
    pub confirmations_left: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub access_from: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub access_to: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub status: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub status_title: String,
    #[serde(deserialize_with = "null_default", default)]
    pub invalid_request_reason: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub current_confirmation_level: i64,
    #[serde(
        rename = "RequiredConfirmersCountLevel2",
        deserialize_with = "null_default",
        default
    )]
    pub required_confirmers_count_level2: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub ticketing_system_properties: TicketProperties,
    #[serde(deserialize_with = "loose_string_map", default)]
    pub additional_info: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default", default)]
    pub account_details: AccountDetails,
    #[serde(deserialize_with = "null_default", default)]
    pub confirmers: Vec<Confirmer>,
}

/// `TicketingSystemProperties`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TicketProperties {
    #[serde(deserialize_with = "null_default", default)]
    pub name: String,
    #[serde(deserialize_with = "null_default", default)]
    pub number: String,
    #[serde(deserialize_with = "null_default", default)]
    pub status: String,
}

/// `AccountDetails`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AccountDetails {
    #[serde(rename = "AccountID", deserialize_with = "null_default", default)]
    pub account_id: String,
    #[serde(rename = "Properties", deserialize_with = "loose_string_map", default)]
    pub properties: BTreeMap<String, String>,
}

/// One entry of `Confirmers[]` (ConfirmerStatus).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Confirmer {
    #[serde(deserialize_with = "null_default", default)]
    pub r#type: i64,
    #[serde(rename = "ID", deserialize_with = "null_default", default)]
    pub id: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub name: String,
    #[serde(deserialize_with = "null_default", default)]
    pub action: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub reason: String,
    #[serde(deserialize_with = "null_default", default)]
    pub action_date: i64,
    #[serde(deserialize_with = "loose_string_map", default)]
    pub additional_details: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default", default)]
    pub members: Vec<ConfirmerMember>,
}

impl Confirmer {
    /// A confirmer "acted" when it has an action date (`ActionDate` 0 means no action yet).
    pub fn acted(&self) -> bool {
        self.action_date != 0
    }
}

/// `ConfirmerMember`
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfirmerMember {
    #[serde(rename = "UserID", deserialize_with = "null_default", default)]
    pub user_id: i64,
    #[serde(deserialize_with = "null_default", default)]
    pub user_name: String,
}

/// `{"IncomingRequests":[…],"Total":N}` (or `MyRequests`, or a bare array).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RequestList {
    Wrapped {
        #[serde(
            rename = "IncomingRequests",
            alias = "MyRequests",
            alias = "Requests",
            deserialize_with = "null_default",
            default
        )]
        requests: Vec<Request>,
    },
    Bare(Vec<Request>),
}

impl RequestList {
    pub(crate) fn into_vec(self) -> Vec<Request> {
        match self {
            RequestList::Wrapped { requests } | RequestList::Bare(requests) => requests,
        }
    }
}

/// A vault group record (`GET /API/UserGroups`): a group of the vault itself (`groupType`
/// `Vault`) or a directory group the vault knows (`Directory`, with its `directory` and, where
/// PVWA gives it, its `dn`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultGroup {
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(deserialize_with = "null_default", default)]
    pub group_name: String,
    #[serde(deserialize_with = "null_default", default)]
    pub group_type: String,
    #[serde(deserialize_with = "null_default", default)]
    pub description: String,
    #[serde(deserialize_with = "null_default", default)]
    pub location: String,
    #[serde(default)]
    pub directory: Option<String>,
    #[serde(default)]
    pub dn: Option<String>,
}

impl VaultGroup {
    pub fn is_directory(&self) -> bool {
        self.group_type.eq_ignore_ascii_case("Directory")
    }
}

/// A vault user record (`GET /API/Users?search=`, psPAS `Get-PASUser`): the fields this project
/// reads. `internet` holds the user's e-mail addresses where the vault has them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultUser {
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(deserialize_with = "null_default", default)]
    pub username: String,
    #[serde(deserialize_with = "null_default", default)]
    pub source: String,
    #[serde(deserialize_with = "null_default", default)]
    pub user_type: String,
    #[serde(deserialize_with = "null_default", default)]
    pub internet: UserInternet,
}

/// A vault user's `internet` details.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInternet {
    #[serde(deserialize_with = "null_default", default)]
    pub business_email: String,
    #[serde(deserialize_with = "null_default", default)]
    pub home_email: String,
    #[serde(deserialize_with = "null_default", default)]
    pub other_email: String,
}

impl VaultUser {
    /// The user's e-mail addresses (business, home, other): trimmed, non-empty, each once. A
    /// value that cannot be an address (no `@`, whitespace or control characters inside, longer
    /// than 254 bytes) is left out.
    pub fn emails(&self) -> Vec<String> {
        let i = &self.internet;
        let mut out: Vec<String> = Vec::new();
        for e in [&i.business_email, &i.home_email, &i.other_email] {
            let e = e.trim();
            let plausible = e.contains('@')
                && e.len() <= 254
                && !e.chars().any(|c| c.is_whitespace() || c.is_control());
            if plausible && !out.iter().any(|o| o.eq_ignore_ascii_case(e)) {
                out.push(e.to_string());
            }
        }
        out
    }
}

/// `{"Users":[…],"Total":N}`.
#[derive(Debug, Deserialize)]
pub(crate) struct VaultUserPage {
    #[serde(rename = "Users", deserialize_with = "null_default", default)]
    pub users: Vec<VaultUser>,
}

/// `{"value":[…],"count":N}`.
#[derive(Debug, Deserialize)]
pub(crate) struct VaultGroupPage {
    #[serde(deserialize_with = "null_default", default)]
    pub value: Vec<VaultGroup>,
}

/// One safe member (Gen2 `SafeMemberResponse`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SafeMember {
    #[serde(deserialize_with = "null_default", default)]
    pub member_name: String,
    #[serde(deserialize_with = "null_default", default)]
    pub member_type: String,
    #[serde(default)]
    pub membership_expiration_date: Option<i64>,
    #[serde(deserialize_with = "null_default", default)]
    pub is_expired_membership_enable: bool,
    #[serde(deserialize_with = "null_default", default)]
    pub is_predefined_user: bool,
    #[serde(deserialize_with = "null_default", default)]
    pub permissions: SafePermissions,
}

impl SafeMember {
    pub fn is_group(&self) -> bool {
        self.member_type.eq_ignore_ascii_case("group")
    }

    /// Whether this member may confirm at `level` (1 or 2) now: permission set and membership
    /// not expired.
    pub fn approves_at(&self, level: u8, now_unix: i64) -> bool {
        let allowed = match level {
            1 => self.permissions.requests_authorization_level1,
            2 => self.permissions.requests_authorization_level2,
            _ => false,
        };
        let expired = self.is_expired_membership_enable
            || matches!(self.membership_expiration_date, Some(t) if t > 0 && t <= now_unix);
        allowed && !expired
    }
}

/// The permission booleans this project reads; others are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SafePermissions {
    #[serde(deserialize_with = "null_default", default)]
    pub requests_authorization_level1: bool,
    #[serde(deserialize_with = "null_default", default)]
    pub requests_authorization_level2: bool,
    #[serde(deserialize_with = "null_default", default)]
    pub view_safe_members: bool,
}

/// `{"value":[…],"count":N,"nextLink":…}`
#[derive(Debug, Deserialize)]
pub(crate) struct SafeMemberPage {
    #[serde(deserialize_with = "null_default", default)]
    pub value: Vec<SafeMember>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(rename = "nextLink", default)]
    pub next_link: Option<String>,
}

/// Gen2 error body; `Details` may be an object or an array.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(rename = "ErrorCode", alias = "errorCode", alias = "code", default)]
    pub code: Option<String>,
    #[serde(
        rename = "ErrorMessage",
        alias = "errorMessage",
        alias = "message",
        alias = "error_description",
        default
    )]
    pub message: Option<String>,
    #[serde(rename = "Details", alias = "details", default)]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    pub(crate) fn detail_messages(&self) -> Vec<String> {
        let one = |v: &serde_json::Value| -> Option<String> {
            v.get("ErrorMessage")
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str())
                .map(str::to_string)
        };
        match &self.details {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(one).collect(),
            Some(v @ serde_json::Value::Object(_)) => one(v).into_iter().collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VpasModule sample of reference/pvwa.md §9, as PVWA returns it.
    const SAMPLE: &str = r#"{"RequestorFullName":"vadim","RequestID":"VPASRequestSafe_20","SafeName":"VPASRequestSafe",
      "RequestorUserName":"vadim@vman.com","RequestorReason":"(ConnectionClient=PSM-RDP) Testing Account Request",
      "UserReason":"Testing Account Request","CreationDate":1724125545,"Operation":"Connect to VPASDualControl-DomainAdmin011-vman.com",
      "ExpirationDate":1726717545,"OperationType":4,"AccessType":"ManyTimes","ConfirmationsLeft":1,"AccessFrom":1724158800,
      "AccessTo":1724173200,"Status":1,"StatusTitle":"Waiting: 1 more user(s) must confirm the request","InvalidRequestReason":0,
      "CurrentConfirmationLevel":1,"RequiredConfirmersCountLevel2":1,
      "TicketingSystemProperties":{"Name":null,"Number":null,"Status":null},"AdditionalInfo":{},
      "AccountDetails":{"AccountID":"120_3","Properties":{"Address":"vman.com","Safe":"VPASRequestSafe","LogonDomain":null}},
      "Confirmers":[{"Type":1,"ID":41,"Name":"vadim@vman.com","Action":2,"Reason":"","ActionDate":0,
        "AdditionalDetails":{"fullname":"Vadim Melamed","email":"vadim@vman.com","phone":"1234567890"},"Members":null}]}"#;

    #[test]
    fn reads_the_real_sample() {
        let r: Request = serde_json::from_str(SAMPLE).expect("parses");
        assert_eq!(r.request_id, "VPASRequestSafe_20");
        assert_eq!(r.current_confirmation_level, 1);
        assert_eq!(r.ticketing_system_properties.number, "");
        assert_eq!(
            r.account_details
                .properties
                .get("LogonDomain")
                .map(String::as_str),
            Some("")
        );
        assert_eq!(r.confirmers.len(), 1);
        assert!(!r.confirmers[0].acted());
        assert!(r.confirmers[0].members.is_empty());
    }

    #[test]
    fn list_wrappers_are_all_accepted() {
        let w = format!(r#"{{"IncomingRequests":[{SAMPLE}],"Total":1}}"#);
        assert_eq!(
            serde_json::from_str::<RequestList>(&w)
                .expect("wrapped")
                .into_vec()
                .len(),
            1
        );
        let m = format!(r#"{{"MyRequests":[{SAMPLE}],"Total":1}}"#);
        assert_eq!(
            serde_json::from_str::<RequestList>(&m)
                .expect("my")
                .into_vec()
                .len(),
            1
        );
        let b = format!("[{SAMPLE}]");
        assert_eq!(
            serde_json::from_str::<RequestList>(&b)
                .expect("bare")
                .into_vec()
                .len(),
            1
        );
    }

    #[test]
    fn safe_member_levels_and_expiry() {
        let m: SafeMember = serde_json::from_str(
            r#"{"memberName":"PAM_Infra","memberType":"Group","membershipExpirationDate":null,
                "permissions":{"requestsAuthorizationLevel1":true,"requestsAuthorizationLevel2":false}}"#,
        )
        .expect("parses");
        assert!(m.is_group());
        assert!(m.approves_at(1, 1000));
        assert!(!m.approves_at(2, 1000));
        let expired = SafeMember {
            membership_expiration_date: Some(500),
            ..m.clone()
        };
        assert!(!expired.approves_at(1, 1000));
    }

    #[test]
    fn error_details_in_both_shapes() {
        let a: ErrorBody = serde_json::from_str(r#"{"ErrorCode":"X","ErrorMessage":"m","Details":[{"ErrorCode":"Y","ErrorMessage":"d1"}]}"#).expect("a");
        assert_eq!(a.detail_messages(), vec!["d1"]);
        let o: ErrorBody = serde_json::from_str(
            r#"{"ErrorCode":"X","ErrorMessage":"m","Details":{"ErrorMessage":"d2"}}"#,
        )
        .expect("o");
        assert_eq!(o.detail_messages(), vec!["d2"]);
    }
}

#[cfg(test)]
mod vault_user_tests {
    use super::*;

    #[test]
    fn a_vault_users_e_mails_are_plausible_addresses_each_once() {
        let u: VaultUser = serde_json::from_str(
            r#"{"id":7,"username":"lfischer","source":"LDAP","userType":"EPVUser",
                "internet":{"businessEmail":" Lena.Fischer@example.test ","homeEmail":"lena.fischer@EXAMPLE.test",
                "otherEmail":"evil@x.test\r\nBcc: y@x.test","homePage":"https://x.test"}}"#,
        )
        .expect("record");
        assert_eq!(u.emails(), vec!["Lena.Fischer@example.test".to_string()]);
        let none: VaultUser =
            serde_json::from_str(r#"{"username":"x","internet":null}"#).expect("record");
        assert!(none.emails().is_empty());
        let no_at: VaultUser =
            serde_json::from_str(r#"{"username":"x","internet":{"businessEmail":"x"}}"#)
                .expect("record");
        assert!(no_at.emails().is_empty());
    }
}

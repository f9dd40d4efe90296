//! Wire types of the `v2-edge` API (reference §6–§8). Read in the API's camelCase, written in
//! our stable snake_case for `--json`. Unknown fields are ignored: the Edge API changes.
//! Times are Unix epoch milliseconds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RemoteAccessError;

/// An item of a list, by the field that identifies it (for the repeated-page check).
pub trait Keyed {
    fn key(&self) -> Option<&str>;
}

/// Item of `GET invitations/vendor-invitations/`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "camelCase", serialize = "snake_case"))]
pub struct InvitationSummary {
    #[serde(alias = "id")]
    pub invitation_id: Option<String>,
    pub company_name: Option<String>,
    pub email_address: Option<String>,
    pub full_name: Option<String>,
    pub phone_number: Option<String>,
    pub groups: Option<Value>,
    pub expired_at: Option<i64>,
    pub phone_and_email_auth: Option<bool>,
}

impl Keyed for InvitationSummary {
    fn key(&self) -> Option<&str> {
        self.invitation_id.as_deref()
    }
}

/// `GET invitations/vendor-invitations/{id}`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "camelCase", serialize = "snake_case"))]
pub struct Invitation {
    #[serde(alias = "invitationId")]
    pub id: Option<String>,
    pub initializer_id: Option<String>,
    pub company_name: Option<String>,
    pub email_address: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
    pub initial_status: Option<String>,
    pub invited_vendors_initial_status: Option<String>,
    pub role: Option<String>,
    pub access_start_date: Option<i64>,
    pub access_end_date: Option<i64>,
    pub created_at: Option<i64>,
    pub expired_at: Option<i64>,
    pub applications: Option<Value>,
    pub can_invite: Option<bool>,
    pub provisioning_type: Option<String>,
    #[serde(alias = "provisioningUsername")]
    pub provisioning_user_name: Option<String>,
    pub provisioning_groups: Option<Value>,
    pub comments: Option<String>,
    pub custom_text: Option<String>,
    pub max_num_of_invited_vendors: Option<i64>,
    pub phone_and_email_auth: Option<bool>,
}

/// Item of `GET vendors`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "camelCase", serialize = "snake_case"))]
pub struct VendorSummary {
    pub id: Option<String>,
    pub invited_by: Option<String>,
    pub username: Option<String>,
    pub full_name: Option<String>,
    pub phone_number: Option<String>,
    pub can_invite: Option<bool>,
    pub status: Option<String>,
    pub expiration_status: Option<String>,
    pub company_name: Option<String>,
    pub email_address: Option<String>,
    pub groups: Option<Value>,
    pub idaptive_roles: Option<Value>,
}

impl Keyed for VendorSummary {
    fn key(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// `GET vendors/{id}`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "camelCase", serialize = "snake_case"))]
pub struct Vendor {
    pub id: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email_address: Option<String>,
    pub phone_number: Option<String>,
    pub company_name: Option<String>,
    pub phone_model: Option<String>,
    pub phone_os: Option<String>,
    pub app_version: Option<String>,
    pub phone_and_email_auth: Option<bool>,
    pub status: Option<String>,
    pub can_invite: Option<bool>,
    pub last_login: Option<i64>,
    pub applications: Option<Value>,
    pub access_start_date: Option<i64>,
    pub access_end_date: Option<i64>,
    pub email_confirmed_at: Option<i64>,
    pub groups: Option<Value>,
    pub max_num_of_invited_vendors: Option<i64>,
    pub invited_vendors_initial_status: Option<String>,
    pub provisioning_type: Option<String>,
    pub comments: Option<String>,
    pub invitation_id: Option<String>,
    pub invited_by: Option<String>,
}

/// Item of `GET sites`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "camelCase", serialize = "snake_case"))]
pub struct Site {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub site_type: Option<String>,
}

impl Keyed for Site {
    fn key(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// Item of `GET sites/{siteId}/applications`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "camelCase", serialize = "snake_case"))]
pub struct Application {
    pub id: Option<String>,
    pub name: Option<String>,
    pub authentication_method: Option<String>,
    pub internal_uri: Option<String>,
    pub external_uri: Option<String>,
    pub enabled: Option<bool>,
}

impl Keyed for Application {
    fn key(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// Item of `GET groups`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all(deserialize = "camelCase", serialize = "snake_case"))]
pub struct Group {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub group_type: Option<String>,
}

impl Keyed for Group {
    fn key(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// `{siteId, applicationId}` of an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRef {
    pub site_id: String,
    pub application_id: String,
}

/// `accessTimeDetails` (v2 only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessTimeDetails {
    pub time_zone: String,
    pub allowed_days: Vec<String>,
    pub all_day: bool,
    pub working_hours_start_seconds: u32,
    pub working_hours_end_seconds: u32,
}

/// Body of `POST invitations/vendor-invitations` (reference §6.1: the real field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewInvitation {
    pub company_name: String,
    pub email_address: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: String,
    pub initial_status: String,
    pub access_start_date: i64,
    pub access_end_date: i64,
    pub can_invite: bool,
    pub applications: Vec<AppRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_time_details: Option<AccessTimeDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idaptive_roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_num_of_invited_vendors: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_and_email_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invited_vendors_initial_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_web_apps_access: Option<bool>,
}

/// A vendor status that can be set (`PendingActivation` cannot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VendorStatus {
    Activated,
    Deactivated,
}

impl VendorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VendorStatus::Activated => "Activated",
            VendorStatus::Deactivated => "Deactivated",
        }
    }
}

/// Read the ID a create call answered: bare text, a quoted string, or `{"invitationId"|"id":…}`
/// (reference §6.1, P13). Only an ID-shaped answer is accepted.
pub fn parse_created_id(body: &str) -> Option<String> {
    let t = body.trim();
    let id = match serde_json::from_str::<Value>(t) {
        Ok(Value::String(s)) => s,
        Ok(Value::Object(o)) => o
            .get("invitationId")
            .or_else(|| o.get("id"))
            .and_then(Value::as_str)?
            .to_string(),
        _ => t
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(t)
            .to_string(),
    };
    let id = id.trim().to_string();
    check_id(&id).ok()?;
    Some(id)
}

/// Check an ID before it goes into a path: 1 to 64 of `A-Z a-z 0-9 - _`.
pub fn check_id(id: &str) -> Result<&str, RemoteAccessError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(RemoteAccessError::Input(format!(
            "`{}` is not a Remote Access ID (expected up to 64 letters, digits, `-` or `_`)",
            crate::text::printable(id)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_id_forms() {
        let id = "11eba29cf4a601b08dbdad6a70500894";
        for body in [
            format!(" {id}"),
            format!("\"{id}\""),
            format!("{{\"invitationId\":\"{id}\"}}"),
            format!("{{\"id\":\"{id}\"}}"),
            format!("{id}\n"),
        ] {
            assert_eq!(parse_created_id(&body).as_deref(), Some(id), "{body}");
        }
        for bad in ["", "<html>ok</html>", "\"../etc\"", "{}"] {
            assert_eq!(parse_created_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn invitation_reads_the_capital_n_and_writes_snake_case() {
        let v: Invitation = serde_json::from_str(
            r#"{"id":"abc","provisioningUserName":"jdoe","emailAddress":"j@x.example","newField":1}"#,
        )
        .expect("parse");
        assert_eq!(v.provisioning_user_name.as_deref(), Some("jdoe"));
        let out = serde_json::to_value(&v).expect("ser");
        assert_eq!(out["email_address"], "j@x.example");
        assert_eq!(out["provisioning_user_name"], "jdoe");
    }

    #[test]
    fn new_invitation_uses_the_real_field_names() {
        let n = NewInvitation {
            company_name: "Acme".into(),
            email_address: "j@acme.example".into(),
            first_name: "J".into(),
            last_name: "D".into(),
            phone_number: "+17035550100".into(),
            initial_status: "Activated".into(),
            access_start_date: 1,
            access_end_date: 2,
            can_invite: false,
            applications: vec![AppRef {
                site_id: "s".into(),
                application_id: "a".into(),
            }],
            access_time_details: None,
            comments: None,
            provisioning_type: None,
            provisioning_username: Some("jd".into()),
            provisioning_groups: None,
            idaptive_roles: None,
            custom_text: None,
            max_num_of_invited_vendors: Some(0),
            phone_and_email_auth: None,
            invited_vendors_initial_status: None,
            enable_web_apps_access: None,
        };
        let v = serde_json::to_value(&n).expect("ser");
        let mut keys: Vec<&String> = v.as_object().expect("obj").keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                "accessEndDate",
                "accessStartDate",
                "applications",
                "canInvite",
                "companyName",
                "emailAddress",
                "firstName",
                "initialStatus",
                "lastName",
                "maxNumOfInvitedVendors",
                "phoneNumber",
                "provisioningUsername"
            ]
        );
        assert_eq!(v["applications"][0]["applicationId"], "a");
    }
}

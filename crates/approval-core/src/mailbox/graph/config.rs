//! `[mailbox.graph]`: the app registration the Graph backend signs in as (app-only), and its
//! credential: a certificate (preferred; key and certificate through secret references) or a
//! client secret. docs/graph.md shows the registration and the RBAC scope.

use serde::Deserialize;

use crate::secret::SecretRef;

/// `[mailbox.graph]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// The directory (tenant) id, or a verified domain of the tenant.
    pub tenant_id: String,
    /// The application (client) id of the app registration.
    pub client_id: String,
    /// `certificate` (default) or `client_secret`.
    #[serde(default)]
    pub auth: GraphAuth,
    /// The certificate registered on the app, PEM (`file:` reference, or `vault:`…).
    pub certificate: Option<SecretRef>,
    /// Its RSA private key, PEM.
    pub private_key: Option<SecretRef>,
    /// The client secret's value (auth = "client_secret").
    pub client_secret: Option<SecretRef>,
    /// The sign-in service: `https://login.microsoftonline.com` (national clouds and the test
    /// stand-in differ).
    #[serde(default = "default_authority")]
    pub authority: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphAuth {
    #[default]
    Certificate,
    ClientSecret,
}

fn default_authority() -> String {
    "https://login.microsoftonline.com".into()
}

use crate::text::is_guid;

impl GraphConfig {
    /// Check the values; errors name the key (under `mailbox.graph.`).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
        let t = self.tenant_id.trim();
        let domain_like = t.contains('.')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !is_guid(t) && !domain_like {
            return e(
                "tenant_id",
                "must be the directory (tenant) id, a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47, or a verified domain of the tenant",
            );
        }
        if !is_guid(self.client_id.trim()) {
            return e(
                "client_id",
                "must be the application (client) id of the app registration, a GUID",
            );
        }
        let authority = match crate::tls::check_url(&self.authority) {
            Ok(u) => u,
            Err(m) => return Err(("authority".into(), m)),
        };
        if !matches!(authority.path(), "" | "/") || authority.query().is_some() {
            return Err((
                "authority".into(),
                format!(
                    "`{}` has a path: give the sign-in service alone, authority = \"{}\"; the tenant is mailbox.graph.tenant_id and the token path is added",
                    self.authority,
                    authority.origin().ascii_serialization()
                ),
            ));
        }
        match self.auth {
            GraphAuth::Certificate => {
                if self.certificate.is_none() {
                    return e(
                        "certificate",
                        "is required with auth = \"certificate\": a reference to the PEM certificate registered on the app (e.g. file:/etc/pam-approval/graph.crt)",
                    );
                }
                if self.private_key.is_none() {
                    return e(
                        "private_key",
                        "is required with auth = \"certificate\": a reference to the certificate's PEM RSA private key",
                    );
                }
                if self.client_secret.is_some() {
                    return e(
                        "client_secret",
                        "is for auth = \"client_secret\"; remove it (the certificate is used)",
                    );
                }
            }
            GraphAuth::ClientSecret => {
                if self.client_secret.is_none() {
                    return e(
                        "client_secret",
                        "is required with auth = \"client_secret\" (a secret reference to the secret's value)",
                    );
                }
                if self.certificate.is_some() || self.private_key.is_some() {
                    return e(
                        "certificate",
                        "is for auth = \"certificate\"; remove it or set auth = \"certificate\"",
                    );
                }
            }
        }
        Ok(())
    }

    /// The token endpoint: `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.trim_end_matches('/'),
            self.tenant_id.trim()
        )
    }
}

/// Microsoft's clouds: the Entra sign-in service and the Graph hosts of each (Microsoft's
/// "national cloud deployments" page: global, US Government L4 and L5, China by 21Vianet).
const CLOUDS: [(&str, &str, &[&str]); 3] = [
    (
        "the global service",
        "login.microsoftonline.com",
        &["graph.microsoft.com"],
    ),
    (
        "US Government",
        "login.microsoftonline.us",
        &["graph.microsoft.us", "dod-graph.microsoft.us"],
    ),
    (
        "China (21Vianet)",
        "login.chinacloudapi.cn",
        &["microsoftgraph.chinacloudapi.cn"],
    ),
];

/// A Microsoft sign-in service and a Microsoft Graph host of two different clouds never work
/// together (the app registration lives in one cloud): refused with the pair that fits. Hosts
/// Microsoft does not publish (a proxy, the test stand-in) are taken as given.
pub fn same_cloud(authority: &str, graph: &url::Url) -> Result<(), String> {
    let host = |u: &str| {
        url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
    };
    let (Some(login), Some(api)) = (
        host(authority),
        graph.host_str().map(str::to_ascii_lowercase),
    ) else {
        return Ok(());
    };
    let login_cloud = CLOUDS.iter().find(|c| c.1 == login);
    let api_cloud = CLOUDS.iter().find(|c| c.2.contains(&api.as_str()));
    match (login_cloud, api_cloud) {
        (Some(l), Some(a)) if l.0 != a.0 => Err(format!(
            "`{authority}` signs in to {}, but mailbox.url (`{api}`) is Graph in {}: use authority = \"https://{}\" for that cloud",
            l.0, a.0, a.1
        )),
        _ => Ok(()),
    }
}

/// The scope of app-only tokens for a Graph base URL: its origin + `/.default`.
pub fn scope_for(graph_url: &str) -> String {
    match url::Url::parse(graph_url) {
        Ok(u) => format!("{}/.default", u.origin().ascii_serialization()),
        Err(_) => "https://graph.microsoft.com/.default".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> GraphConfig {
        toml::from_str(&format!(
            "tenant_id = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\nclient_id = \"0c1e0000-0000-4000-8000-0000000000bb\"\n{extra}"
        ))
        .expect("parses")
    }

    #[test]
    fn each_credential_needs_its_keys_and_only_those() {
        let cert = "certificate = \"file:/etc/x.crt\"\nprivate_key = \"file:/etc/x.key\"";
        parse(cert).validate().expect("certificate");
        parse("auth = \"client_secret\"\nclient_secret = \"env:S\"")
            .validate()
            .expect("secret");
        for (extra, key) in [
            ("", "certificate"),
            ("certificate = \"file:/x\"", "private_key"),
            (
                &format!("{cert}\nclient_secret = \"env:S\""),
                "client_secret",
            ),
            ("auth = \"client_secret\"", "client_secret"),
            (
                &format!("auth = \"client_secret\"\nclient_secret = \"env:S\"\n{cert}"),
                "certificate",
            ),
            (
                &format!("{cert}\nauthority = \"http://login.example.com\""),
                "authority",
            ),
        ] {
            assert_eq!(parse(extra).validate().expect_err(extra).0, key, "{extra}");
        }
    }

    #[test]
    fn ids_are_checked_and_the_token_url_and_scope_follow_the_cloud() {
        let mut g = parse("certificate = \"file:/x\"\nprivate_key = \"file:/y\"");
        assert_eq!(
            g.token_url(),
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
        );
        g.tenant_id = "contoso.onmicrosoft.com".into();
        g.validate().expect("a domain");
        g.tenant_id = "contoso".into();
        assert_eq!(g.validate().expect_err("no").0, "tenant_id");
        g.tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47".into();
        g.client_id = "my-app".into();
        assert_eq!(g.validate().expect_err("no").0, "client_id");
        assert_eq!(
            scope_for("https://graph.microsoft.us/v1.0"),
            "https://graph.microsoft.us/.default"
        );
        assert_eq!(
            scope_for("https://127.0.0.1:8443/v1.0"),
            "https://127.0.0.1:8443/.default"
        );
    }
}

//! The service-account key file as the portal downloads it, and the data centres.
//!
//! `{"serviceAccountId": "…", "privateKey": "-----BEGIN RSA PRIVATE KEY-----…", "discoveryURL":
//! "https://auth.alero.eu/auth/realms/serviceaccounts"}`. Field names are matched without regard
//! to case (`discoveryURI` is read too). The key may be PKCS#1 or PKCS#8, with or without line
//! breaks. A file with `ClientID` + `ClientSecret` instead is a secret-type service account.
//!
//! Nothing here ever puts the file's content into an error: errors name the field only.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::RemoteAccessError;

/// Known data centres (`<dc>` of `auth.<dc>` and `api.<dc>`) and their region names.
pub const DATACENTERS: &[(&str, &str)] = &[
    ("alero.io", "us"),
    ("alero.eu", "eu"),
    ("ca.alero.io", "ca"),
    ("au.alero.io", "au"),
    ("uk.alero.io", "uk"),
    ("in.alero.io", "in"),
    ("sg.alero.io", "sg"),
];

/// A data centre by suffix or region name, normalised to its suffix.
pub fn datacenter(s: &str) -> Option<&'static str> {
    let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
    DATACENTERS
        .iter()
        .find(|(dc, region)| *dc == s || *region == s)
        .map(|(dc, _)| *dc)
}

/// The data centre named by a discovery URL (`https://auth.<dc>/auth/realms/serviceaccounts`).
pub fn datacenter_of_discovery(url: &str) -> Option<&'static str> {
    let u = url::Url::parse(url.trim()).ok()?;
    if u.scheme() != "https" {
        return None;
    }
    let host = u.host_str()?.to_ascii_lowercase();
    datacenter(host.strip_prefix("auth.")?)
}

/// An RSA private key ready to sign. Its `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct SigningKey(pub(crate) jsonwebtoken::EncodingKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// How the service account authenticates.
#[derive(Debug, Clone)]
pub enum Credential {
    /// Documented type: a private key signing a JWT client assertion.
    PrivateKey(SigningKey),
    /// Newer, undocumented type (reference §3.2, P1): client id and secret.
    ClientSecret {
        client_id: String,
        secret: SecretString,
    },
}

/// The parsed key file.
#[derive(Debug, Clone)]
pub struct ServiceAccountKey {
    pub service_account_id: Option<String>,
    pub discovery_url: Option<String>,
    pub credential: Credential,
}

/// Parse a key file. `reference` names it in errors (never its content).
pub fn parse(reference: &str, text: &SecretString) -> Result<ServiceAccountKey, RemoteAccessError> {
    let fail = |m: &str| RemoteAccessError::KeyFile {
        reference: reference.to_string(),
        message: m.to_string(),
    };
    // Best effort: the parsed copy is dropped at the end of this function (serde_json's Value
    // cannot be zeroized); the key itself lives on only inside the signing key.
    let value: serde_json::Value =
        serde_json::from_str(text.expose_secret()).map_err(|e| RemoteAccessError::KeyFile {
            reference: reference.to_string(),
            message: format!(
                "not valid JSON (line {}, column {}); expected the .json file the portal downloads",
                e.line(),
                e.column()
            ),
        })?;
    let obj = value
        .as_object()
        .ok_or_else(|| fail("is not a JSON object"))?;
    let field = |names: &[&str]| -> Result<Option<&str>, RemoteAccessError> {
        let mut found = None;
        for (k, v) in obj {
            if names.iter().any(|n| k.eq_ignore_ascii_case(n)) {
                if found.is_some() {
                    return Err(fail(&format!("has the field `{k}` twice")));
                }
                found = Some(
                    v.as_str()
                        .ok_or_else(|| fail(&format!("field `{k}` is not a string")))?,
                );
            }
        }
        Ok(found.filter(|s| !s.trim().is_empty()))
    };
    let sa = field(&["serviceAccountId"])?.map(|s| s.trim().to_string());
    let discovery = field(&["discoveryURL", "discoveryURI"])?.map(|s| s.trim().to_string());
    if let Some(id) = &sa
        && !super::is_tenant_like_id(id)
    {
        return Err(fail(
            "field `serviceAccountId` is not a 32-character service-account ID",
        ));
    }
    let credential = match (
        field(&["privateKey"])?,
        field(&["clientId"])?,
        field(&["clientSecret"])?,
    ) {
        (Some(pem), _, _) => Credential::PrivateKey(signing_key(pem).map_err(|m| fail(&m))?),
        (None, Some(id), Some(secret)) => {
            let id = id.trim();
            if id.len() > 200 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(fail("field `ClientID` is not a client id"));
            }
            Credential::ClientSecret {
                client_id: id.to_string(),
                secret: SecretString::from(secret.to_string()),
            }
        }
        _ => {
            return Err(fail(
                "has no `privateKey` (nor `ClientID` with `ClientSecret`)",
            ));
        }
    };
    Ok(ServiceAccountKey {
        service_account_id: sa,
        discovery_url: discovery,
        credential,
    })
}

/// Build a signing key from PEM text: PKCS#1 or PKCS#8, line breaks repaired.
pub fn signing_key(pem: &str) -> Result<SigningKey, String> {
    let pem = normalize_pem(pem)?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|_| "field `privateKey` is not a readable RSA private key (PKCS#1 or PKCS#8)")?;
    // Prove the key signs now, so a bad key is a configuration error and not a failure later.
    jsonwebtoken::crypto::sign(b"probe", &key, jsonwebtoken::Algorithm::RS256)
        .map_err(|_| "field `privateKey` holds a key that cannot sign with RS256")?;
    Ok(SigningKey(key))
}

/// Re-wrap a PEM private key: the portal's sample has no line break after the header, and some
/// tools store `\n` as two characters. Only unencrypted RSA keys are accepted.
pub fn normalize_pem(raw: &str) -> Result<Zeroizing<String>, String> {
    let text = Zeroizing::new(raw.replace("\\n", "\n").replace("\\r", ""));
    let start = text
        .find("-----BEGIN ")
        .ok_or("field `privateKey` holds no PEM key (no -----BEGIN line)")?;
    let after = &text[start + "-----BEGIN ".len()..];
    let label_end = after
        .find("-----")
        .ok_or("field `privateKey`: the PEM header is not closed")?;
    let label = after[..label_end].trim();
    match label {
        "RSA PRIVATE KEY" | "PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => {
            return Err("field `privateKey` holds an encrypted key; the portal's key file holds an unencrypted one".into());
        }
        other => {
            return Err(format!(
                "field `privateKey` holds a `{}`, not an RSA private key",
                crate::text::printable(other)
            ));
        }
    }
    let body_and_rest = &after[label_end + 5..];
    let footer = format!("-----END {label}-----");
    let end = body_and_rest
        .find(&footer)
        .ok_or("field `privateKey`: the PEM footer is missing")?;
    let body = &body_and_rest[..end];
    if body.contains("Proc-Type") || body.contains("DEK-Info") {
        return Err(
            "field `privateKey` holds an encrypted key; the portal's key file holds an unencrypted one"
                .into(),
        );
    }
    let b64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_whitespace()).collect());
    if b64.is_empty()
        || !b64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
    {
        return Err("field `privateKey`: the PEM body is not base64".into());
    }
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + 128));
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).map_err(|_| "not ASCII")?);
        out.push('\n');
    }
    out.push_str(&footer);
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datacenters_by_name_and_region() {
        assert_eq!(datacenter("EU"), Some("alero.eu"));
        assert_eq!(datacenter("alero.io"), Some("alero.io"));
        assert_eq!(datacenter("uk.alero.io."), Some("uk.alero.io"));
        assert_eq!(datacenter("ae.alero.io"), None);
        assert_eq!(datacenter("evil.example"), None);
        assert_eq!(
            datacenter_of_discovery("https://auth.alero.eu/auth/realms/serviceaccounts"),
            Some("alero.eu")
        );
        assert_eq!(
            datacenter_of_discovery("https://auth.sg.alero.io/auth/realms/serviceaccounts"),
            Some("sg.alero.io")
        );
        assert_eq!(datacenter_of_discovery("http://auth.alero.eu/x"), None);
        assert_eq!(datacenter_of_discovery("https://auth.evil.example/x"), None);
    }

    #[test]
    fn pem_without_line_breaks_is_rewrapped() {
        let body = "A".repeat(100);
        let raw = format!("-----BEGIN RSA PRIVATE KEY-----{body}-----END RSA PRIVATE KEY-----");
        let out = normalize_pem(&raw).expect("ok");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "-----BEGIN RSA PRIVATE KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 36);
        assert_eq!(lines[3], "-----END RSA PRIVATE KEY-----");
        let escaped = raw.replace("-----A", "-----\\nA");
        assert_eq!(*normalize_pem(&escaped).expect("ok"), *out);
    }

    #[test]
    fn other_pem_kinds_are_refused() {
        for (raw, needle) in [
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----QUJD-----END ENCRYPTED PRIVATE KEY-----",
                "encrypted",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES\n\nQUJD\n-----END RSA PRIVATE KEY-----",
                "encrypted",
            ),
            (
                "-----BEGIN CERTIFICATE-----QUJD-----END CERTIFICATE-----",
                "CERTIFICATE",
            ),
            ("MIIEowIBAAKCAQEA", "no PEM"),
            (
                "-----BEGIN PRIVATE KEY-----QU*JD-----END PRIVATE KEY-----",
                "base64",
            ),
        ] {
            let e = normalize_pem(raw).expect_err(raw);
            assert!(e.contains(needle), "{raw}: {e}");
        }
    }

    #[test]
    fn key_file_errors_never_echo_the_content() {
        let secret =
            "-----BEGIN RSA PRIVATE KEY-----SECRETSECRETSECRET-----END RSA PRIVATE KEY-----";
        for text in [
            format!(
                r#"{{"serviceAccountId":"11ea6140f94d5f82a3712de9ac6f6b24","privateKey":"{secret}"}}"#
            ),
            format!(r#"{{"privateKey":"{secret}""#),
            format!(r#"{{"privateKey":["{secret}"]}}"#),
            format!(r#"{{"serviceAccountId":"{secret}","privateKey":"x"}}"#),
        ] {
            let e = parse("file:/x.json", &SecretString::from(text.clone())).expect_err("bad");
            let m = e.to_string();
            assert!(!m.contains("SECRET"), "{m}");
            assert!(m.contains("file:/x.json"), "{m}");
        }
    }

    #[test]
    fn secret_type_files_are_read() {
        let text = r#"{"ClientID":"11eaab2463a4d3399816d3b7450c5b10.client1","ClientSecret":"s3cr3t","discoveryURI":"https://auth.alero.io/auth/realms/serviceaccounts"}"#;
        let k = parse("env:X", &SecretString::from(text.to_string())).expect("ok");
        assert_eq!(
            k.discovery_url.as_deref(),
            Some("https://auth.alero.io/auth/realms/serviceaccounts")
        );
        match k.credential {
            Credential::ClientSecret { client_id, secret } => {
                assert_eq!(client_id, "11eaab2463a4d3399816d3b7450c5b10.client1");
                assert_eq!(secret.expose_secret(), "s3cr3t");
            }
            other => panic!("{other:?}"),
        }
        let e = parse(
            "env:X",
            &SecretString::from(
                r#"{"serviceAccountId":"11ea6140f94d5f82a3712de9ac6f6b24"}"#.to_string(),
            ),
        )
        .expect_err("no key");
        assert!(e.to_string().contains("privateKey"), "{e}");
    }
}

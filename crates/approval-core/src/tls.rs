//! TLS trust for every client (PVWA, EWS, Vault, ticketing, Remote Access, LDAP).
//!
//! Verification is always on. Trust comes from the system store, or — when a CA bundle is
//! configured — from that bundle only, which narrows trust to the organisation's own CA.
//! Plain `http://` is accepted only for loopback hosts (tests and the local simulator).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Errors building a TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("CA bundle {path}: {message}")]
    Bundle { path: PathBuf, message: String },
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

impl crate::exit::Classify for TlsError {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Config
    }
}

/// The crypto provider of the whole workspace (aws-lc-rs; one provider avoids rustls'
/// "cannot determine the process-level CryptoProvider" panic when several crates use rustls).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Read every certificate of a PEM bundle.
pub fn read_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| TlsError::Bundle {
        path: path.into(),
        message: format!("cannot read it: {e}"),
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Bundle {
            path: path.into(),
            message: format!("not a PEM certificate bundle: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Bundle {
            path: path.into(),
            message: "holds no PEM certificate".into(),
        });
    }
    Ok(certs)
}

/// Roots: the bundle's certificates when given, else the system store.
pub fn root_store(ca_bundle: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_bundle {
        Some(path) => {
            for cert in read_bundle(path)? {
                roots.add(cert).map_err(|e| TlsError::Bundle {
                    path: path.into(),
                    message: format!("a certificate is not a usable CA: {e}"),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A single unparsable system certificate must not break every connection.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(TlsError::Setup(
                    "the system certificate store is empty; install ca-certificates or set a ca_bundle".into(),
                ));
            }
        }
    }
    Ok(roots)
}

/// A rustls client configuration with verification on.
pub fn client_config(ca_bundle: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let roots = root_store(ca_bundle)?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Check a service URL: https, or http to a loopback host only.
pub fn check_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "`{raw}` uses plain http to a remote host; use https"
            ));
        }
        other => {
            return Err(format!(
                "`{raw}`: scheme `{other}` is not supported; use https"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{raw}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{}` carries credentials in the URL; use the account settings instead",
            redact_url(&url)
        ));
    }
    Ok(url)
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://pvwa.example.com").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("http://localhost:8080").is_ok());
        assert!(check_url("http://[::1]:8080").is_ok());
        assert!(check_url("http://pvwa.example.com").is_err());
        assert!(check_url("ftp://pvwa.example.com").is_err());
        assert!(check_url("not a url").is_err());
        let e = check_url("https://u:secretpw@pvwa.example.com").expect_err("creds");
        assert!(!e.contains("secretpw"), "{e}");
    }

    #[test]
    fn bundle_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not pem").expect("write");
        let e = client_config(Some(&p)).expect_err("bad bundle");
        assert!(e.to_string().contains("ca.pem"), "{e}");
        let e = client_config(Some(&dir.path().join("missing.pem"))).expect_err("missing");
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }
}

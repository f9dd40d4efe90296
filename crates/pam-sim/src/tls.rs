//! A test CA and a server certificate for `localhost`/`127.0.0.1`/`::1`, generated at start-up
//! (or reused from a directory), so clients run with TLS verification on against the simulator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// PEM files of the simulator's TLS identity.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// Generate a CA and a loopback server certificate into `dir`, unless all three files exist.
pub fn ensure(dir: &Path) -> Result<TlsFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = TlsFiles {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    if files.ca_cert.exists() && files.server_cert.exists() && files.server_key.exists() {
        return Ok(files);
    }
    let ca_key = KeyPair::generate().context("CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
    ca.distinguished_name
        .push(DnType::CommonName, "pam-sim test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).context("CA cert")?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let key = KeyPair::generate().context("server key")?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).context("server params")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().context("ip")?));
    params
        .subject_alt_names
        .push(SanType::IpAddress("::1".parse().context("ip")?));
    let cert = params.signed_by(&key, &issuer).context("server cert")?;

    std::fs::write(&files.ca_cert, ca_cert.pem())?;
    std::fs::write(&files.server_cert, cert.pem())?;
    write_private(&files.server_key, key.serialize_pem().as_bytes())?;
    Ok(files)
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    Ok(())
}

/// A rustls server configuration for the files.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.server_cert)
        .with_context(|| files.server_cert.display().to_string())?
        .collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&files.server_key)
        .with_context(|| files.server_key.display().to_string())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

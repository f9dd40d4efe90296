//! Secret references, resolved to `SecretString` as early as possible.
//!
//! | reference              | source                                                      |
//! |------------------------|-------------------------------------------------------------|
//! | `vault:MOUNT/PATH#FIELD` | a KV v2 secret in Vault / OpenBao (see [`vault`])         |
//! | `file:PATH`            | a file readable by its owner only; one trailing newline cut |
//! | `env:NAME`             | an environment variable (discouraged: children inherit it)  |
//! | `cmd:PROGRAM ARG...`   | stdout of a program run without a shell                     |
//! | `cred:NAME`            | `$CREDENTIALS_DIRECTORY/NAME` (systemd `LoadCredential=`)   |
//!
//! Secret values never appear in `Debug`, logs or error texts; errors name the reference.

pub mod vault;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::exit::{Classify, Exit};

/// Where a secret comes from. The reference itself is not secret.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Vault {
        mount: String,
        path: String,
        field: String,
    },
    File(PathBuf),
    Env(String),
    Cmd(Vec<String>),
    Cred(String),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Vault { mount, path, field } => write!(f, "vault:{mount}/{path}#{field}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
            SecretRef::Env(n) => write!(f, "env:{n}"),
            // Arguments of a command may themselves be sensitive (a key id): show the program only.
            SecretRef::Cmd(argv) => write!(
                f,
                "cmd:{} …",
                argv.first().map(String::as_str).unwrap_or("")
            ),
            SecretRef::Cred(n) => write!(f, "cred:{n}"),
        }
    }
}

impl FromStr for SecretRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s.split_once(':').ok_or_else(|| {
            "a secret must be a reference such as `vault:secret/pam/level1#password`, `file:/etc/pam-approval/pw`, \
             `env:NAME`, `cmd:PROGRAM ARG...` or `cred:NAME` — never the secret itself"
                .to_string()
        })?;
        match scheme {
            "vault" => {
                let (loc, field) = rest
                    .rsplit_once('#')
                    .ok_or("vault reference needs `#FIELD`: vault:MOUNT/PATH#FIELD")?;
                let (mount, path) = loc
                    .split_once('/')
                    .ok_or("vault reference needs a mount and a path: vault:MOUNT/PATH#FIELD")?;
                let bad = |p: &str| {
                    p.is_empty()
                        || p.split('/')
                            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
                };
                if bad(mount) || bad(path) || field.is_empty() {
                    return Err("vault reference must be vault:MOUNT/PATH#FIELD with non-empty parts and no `.`/`..` segments".into());
                }
                Ok(SecretRef::Vault {
                    mount: mount.into(),
                    path: path.into(),
                    field: field.into(),
                })
            }
            "file" => {
                if rest.is_empty() {
                    return Err("file reference needs a path: file:/etc/pam-approval/secret".into());
                }
                Ok(SecretRef::File(PathBuf::from(rest)))
            }
            "env" => {
                if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(
                        "env reference needs a variable name of letters, digits and `_`".into(),
                    );
                }
                Ok(SecretRef::Env(rest.into()))
            }
            "cmd" => {
                let argv = split_words(rest)?;
                if argv.is_empty() {
                    return Err("cmd reference needs a program: cmd:PROGRAM ARG...".into());
                }
                Ok(SecretRef::Cmd(argv))
            }
            "cred" => {
                if rest.is_empty() || rest.contains('/') || rest == "." || rest == ".." {
                    return Err("cred reference needs a credential name without `/`".into());
                }
                Ok(SecretRef::Cred(rest.into()))
            }
            other => Err(format!(
                "unknown secret scheme `{other}:`; use vault:, file:, env:, cmd: or cred: (a literal secret is not accepted)"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // The raw string may be a mistakenly pasted password: never echo it in the error.
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Split `cmd:` arguments on whitespace, with double or single quotes grouping words.
/// No shell is involved: no variables, globbing or pipes.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("cmd reference has an unclosed quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Errors resolving a secret. Never carries the secret value (nor a Vault token or secret-id).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The reference points at nothing usable (missing file, field, path; bad output).
    #[error("secret {reference}: {message}")]
    Unusable { reference: String, message: String },
    /// Vault refused: login failed, token dead, policy denies the path.
    #[error("secret {reference}: {message}")]
    Denied { reference: String, message: String },
    /// Vault could not be reached or answered with a server fault.
    #[error("secret {reference}: Vault/OpenBao unavailable: {message}")]
    Unavailable { reference: String, message: String },
    #[error("secret {reference}: no [vault] section is configured")]
    NoVault { reference: String },
    /// A `[vault]` setting is wrong.
    #[error("configuration key `{key}`: {message}")]
    Config { key: String, message: String },
}

impl Classify for SecretError {
    fn service(&self) -> &'static str {
        "secrets"
    }
    fn exit(&self) -> Exit {
        match self {
            SecretError::Unusable { .. }
            | SecretError::NoVault { .. }
            | SecretError::Config { .. } => Exit::Config,
            SecretError::Denied { .. } => Exit::NoPerm,
            SecretError::Unavailable { .. } => Exit::Unavailable,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            SecretError::Unavailable { message, .. }
                if message.contains("certificate") || message.contains("Certificate") =>
            {
                "Vault's TLS certificate is not trusted: set vault.ca_bundle to the PEM file of \
                 the CA that signed it"
                    .into()
            }
            SecretError::Unavailable { .. } => {
                "check vault.addr and that Vault/OpenBao is running and unsealed".into()
            }
            SecretError::Denied { .. } => {
                "check the role_id/secret_id (a secret-id expires with secret_id_ttl) or the token, \
                 and that the policy allows read on MOUNT/data/PATH; see docs/secrets.md"
                    .into()
            }
            SecretError::NoVault { .. } => {
                "add a [vault] section (addr, role_id, secret_id), or use a file:/cred: reference; \
                 see docs/secrets.md"
                    .into()
            }
            SecretError::Config { key, .. } => format!(
                "fix `{key}` in the config file or its environment override {}",
                crate::env::override_name(&key.split('.').collect::<Vec<_>>())
            ),
            SecretError::Unusable { .. } => return None,
        })
    }
}

fn unusable(r: &SecretRef, m: impl Into<String>) -> SecretError {
    SecretError::Unusable {
        reference: r.to_string(),
        message: m.into(),
    }
}

/// Resolves references; holds the Vault session (logged in once, renewed as needed).
pub struct Resolver {
    vault: Option<vault::VaultClient>,
    credentials_dir: Option<PathBuf>,
    cmd_timeout: Duration,
}

impl Resolver {
    /// A resolver for the given config. Vault is contacted lazily, on the first `vault:` secret.
    pub fn new(vault: Option<&vault::VaultConfig>) -> Result<Self, SecretError> {
        let vault = vault.map(vault::VaultClient::new).transpose()?;
        Ok(Resolver {
            vault,
            credentials_dir: crate::env::var(crate::env::CREDENTIALS_DIRECTORY).map(PathBuf::from),
            cmd_timeout: Duration::from_secs(30),
        })
    }

    /// A resolver with an explicit credentials directory (tests).
    pub fn with_credentials_dir(mut self, dir: Option<PathBuf>) -> Self {
        if let Some(v) = self.vault.as_mut() {
            v.set_credentials_dir(dir.clone());
        }
        self.credentials_dir = dir;
        self
    }

    /// The Vault client, when a `[vault]` section is configured.
    pub fn vault(&self) -> Option<&vault::VaultClient> {
        self.vault.as_ref()
    }

    /// Resolve one reference.
    pub async fn resolve(&self, r: &SecretRef) -> Result<SecretString, SecretError> {
        log::debug!("resolving secret {r}");
        match r {
            SecretRef::Vault { mount, path, field } => {
                let v = self.vault.as_ref().ok_or_else(|| SecretError::NoVault {
                    reference: r.to_string(),
                })?;
                let value = v.read_field(r, mount, path, field).await?;
                if value.expose_secret().is_empty() {
                    return Err(unusable(r, "the secret is empty"));
                }
                Ok(value)
            }
            _ => resolve_local(r, self.credentials_dir.as_deref(), self.cmd_timeout).await,
        }
    }

    /// Revoke the Vault token if this process logged in itself (end of a short run).
    pub async fn close(&self) {
        if let Some(v) = &self.vault {
            v.revoke_own_token().await;
        }
    }
}

/// Resolve a reference that does not need Vault (Vault's own credentials use this).
pub(crate) async fn resolve_local(
    r: &SecretRef,
    credentials_dir: Option<&Path>,
    cmd_timeout: Duration,
) -> Result<SecretString, SecretError> {
    let value = match r {
        SecretRef::Vault { .. } => {
            return Err(unusable(r, "a Vault reference cannot be used here"));
        }
        SecretRef::File(p) => read_private_file(r, p)?,
        SecretRef::Env(name) => {
            let v = std::env::var(name)
                .map_err(|_| unusable(r, format!("environment variable {name} is not set")))?;
            if v.is_empty() {
                return Err(unusable(r, format!("environment variable {name} is empty")));
            }
            SecretString::from(v)
        }
        SecretRef::Cmd(argv) => run_cmd(r, argv, cmd_timeout).await?,
        SecretRef::Cred(name) => {
            let dir = credentials_dir.ok_or_else(|| {
                unusable(r, "CREDENTIALS_DIRECTORY is not set (cred: works under systemd with LoadCredential=)")
            })?;
            read_file_trimmed(r, &dir.join(name))?
        }
    };
    if value.expose_secret().is_empty() {
        return Err(unusable(r, "the secret is empty"));
    }
    Ok(value)
}

fn read_private_file(r: &SecretRef, p: &Path) -> Result<SecretString, SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(p).map_err(|e| unusable(r, format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(unusable(r, "not a regular file"));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(unusable(
            r,
            format!(
                "the file is readable by group or others (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ),
        ));
    }
    read_file_trimmed(r, p)
}

fn read_file_trimmed(r: &SecretRef, p: &Path) -> Result<SecretString, SecretError> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(p).map_err(|e| unusable(r, format!("cannot read it: {e}")))?,
    );
    let text =
        std::str::from_utf8(&bytes).map_err(|_| unusable(r, "the file is not UTF-8 text"))?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    Ok(SecretString::from(text.to_string()))
}

async fn run_cmd(
    r: &SecretRef,
    argv: &[String],
    timeout: Duration,
) -> Result<SecretString, SecretError> {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| unusable(r, format!("cannot run {}: {e}", argv[0])))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            unusable(
                r,
                format!("{} did not finish within {}s", argv[0], timeout.as_secs()),
            )
        })?
        .map_err(|e| unusable(r, format!("{} failed: {e}", argv[0])))?;
    let stdout = zeroize::Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(unusable(
            r,
            format!("{} exited with {}", argv[0], out.status),
        ));
    }
    let text = std::str::from_utf8(&stdout)
        .map_err(|_| unusable(r, "the command's output is not UTF-8"))?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    Ok(SecretString::from(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            "vault:secret/pam/level1#password".parse::<SecretRef>(),
            Ok(SecretRef::Vault {
                mount: "secret".into(),
                path: "pam/level1".into(),
                field: "password".into()
            })
        );
        assert_eq!(
            "file:/etc/x".parse::<SecretRef>(),
            Ok(SecretRef::File("/etc/x".into()))
        );
        assert_eq!(
            "env:PW_1".parse::<SecretRef>(),
            Ok(SecretRef::Env("PW_1".into()))
        );
        assert_eq!(
            "cmd:pass show 'pam/level 1'".parse::<SecretRef>(),
            Ok(SecretRef::Cmd(vec![
                "pass".into(),
                "show".into(),
                "pam/level 1".into()
            ]))
        );
        assert_eq!(
            "cred:pvwa-level1".parse::<SecretRef>(),
            Ok(SecretRef::Cred("pvwa-level1".into()))
        );
    }

    #[test]
    fn a_literal_password_is_refused_without_echoing_it() {
        for lit in [
            "Sup3rSecret!",
            "hunter2:x",
            "vault:secret#pw",
            "vault:secret/../x#pw",
            "cred:../etc/shadow",
        ] {
            let e = lit.parse::<SecretRef>().expect_err(lit);
            assert!(!e.contains("Sup3rSecret"), "{e}");
        }
        let e: Result<SecretRef, _> = toml::from_str::<toml::Table>("p = \"Sup3rSecret\"")
            .expect("toml")
            .get("p")
            .cloned()
            .expect("p")
            .try_into();
        let msg = e.expect_err("refused").to_string();
        assert!(!msg.contains("Sup3rSecret"), "{msg}");
    }

    #[tokio::test]
    async fn file_secrets_must_be_private() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let r = Resolver::new(None).expect("resolver");
        let reference = SecretRef::File(p.clone());
        let e = r.resolve(&reference).await.expect_err("world-readable");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(!e.to_string().contains("s3cret"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            r.resolve(&reference).await.expect("ok").expose_secret(),
            "s3cret"
        );
    }

    #[tokio::test]
    async fn cmd_runs_without_a_shell() {
        let r = Resolver::new(None).expect("resolver");
        let v = r
            .resolve(&"cmd:printf '%s' 'a b;$HOME'".parse().expect("ref"))
            .await
            .expect("ok");
        assert_eq!(v.expose_secret(), "a b;$HOME");
        let e = r
            .resolve(&"cmd:false".parse().expect("ref"))
            .await
            .expect_err("fails");
        assert!(e.to_string().contains("exited"), "{e}");
        let e = r
            .resolve(&"cmd:/nonexistent/prog".parse().expect("ref"))
            .await
            .expect_err("fails");
        assert!(e.to_string().contains("cannot run"), "{e}");
    }

    #[tokio::test]
    async fn cred_reads_the_credentials_directory() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("pvwa-level1"), "credpw").expect("write");
        let r = Resolver::new(None)
            .expect("resolver")
            .with_credentials_dir(Some(dir.path().into()));
        assert_eq!(
            r.resolve(&"cred:pvwa-level1".parse().expect("ref"))
                .await
                .expect("ok")
                .expose_secret(),
            "credpw"
        );
        let r = Resolver::new(None)
            .expect("resolver")
            .with_credentials_dir(None);
        let e = r
            .resolve(&"cred:pvwa-level1".parse().expect("ref"))
            .await
            .expect_err("no dir");
        assert!(e.to_string().contains("CREDENTIALS_DIRECTORY"), "{e}");
    }

    #[tokio::test]
    async fn vault_without_config_is_a_config_error() {
        let r = Resolver::new(None).expect("resolver");
        let e = r
            .resolve(&"vault:secret/x#y".parse().expect("ref"))
            .await
            .expect_err("no vault");
        assert_eq!(e.exit(), Exit::Config);
    }
}

//! Test harness: a real OpenBao dev server, started by `scripts/start-openbao.sh` on a free
//! loopback port in its own directory, stopped when dropped (and by the script's watchdog if the
//! test process dies). Shared by approval-core's and approval-cli's tests (`#[path]` include).
//!
//! When OpenBao cannot be started: the test fails if `PAMTEST_REQUIRE_SERVERS=1` (the README's
//! test command sets it), else it is skipped with a message.

#![allow(dead_code, clippy::print_stderr)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct OpenBao {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// `http(s)://127.0.0.1:PORT`
    pub addr: String,
    /// The dev CA bundle (`--tls` only).
    pub ca: Option<PathBuf>,
    running: bool,
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn required() -> bool {
    std::env::var("PAMTEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// A port P with P and P+1 free (OpenBao's dev server also binds the cluster port P+1).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let p = l.local_addr().expect("local addr").port();
        if p < 65534 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free pair of loopback ports");
}

impl OpenBao {
    /// Start a seeded server; `None` (with a printed reason) when OpenBao is not installed and
    /// servers are not required.
    pub fn start(tls: bool) -> Option<OpenBao> {
        let script = repo().join("scripts/start-openbao.sh");
        let mut last = String::new();
        // A port taken between our probe and the server's bind (tests run in parallel) makes the
        // script exit 4: try again on another port.
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("openbao-")
                .tempdir()
                .expect("temp dir");
            let port = free_port_pair();
            let mut cmd = Command::new(&script);
            cmd.arg(dir.path())
                .arg(port.to_string())
                .env("OPENBAO_WATCH_PID", std::process::id().to_string())
                .stdin(Stdio::null());
            if tls {
                cmd.arg("--tls");
            }
            let out = cmd.output().expect("run scripts/start-openbao.sh");
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            match out.status.code() {
                Some(0) => {
                    let scheme = if tls { "https" } else { "http" };
                    let ca = tls.then(|| dir.path().join("tls/vault-ca.pem"));
                    return Some(OpenBao {
                        port,
                        addr: format!("{scheme}://127.0.0.1:{port}"),
                        ca,
                        dir,
                        running: true,
                    });
                }
                Some(3) => {
                    let why = format!("OpenBao cannot be started: {}", stderr.trim());
                    assert!(!required(), "PAMTEST_REQUIRE_SERVERS=1 but {why}");
                    eprintln!("skipping: {why}");
                    return None;
                }
                Some(4) => last = stderr,
                other => panic!("scripts/start-openbao.sh failed ({other:?}): {stderr}"),
            }
        }
        panic!("OpenBao did not start after 5 attempts: {last}");
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn role_id(&self, role: &str) -> String {
        self.read(&format!("approle/{role}/role_id"))
    }

    pub fn secret_id_file(&self, role: &str) -> PathBuf {
        self.path(&format!("approle/{role}/secret_id"))
    }

    pub fn secret_id(&self, role: &str) -> String {
        self.read(&format!("approle/{role}/secret_id"))
    }

    /// The KV data the script wrote to `secret/pamtool/NAME`.
    pub fn seeded(&self, name: &str, field: &str) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.read(&format!("seed/{name}.json"))).expect("seed json");
        v[field].as_str().expect("seeded field").to_string()
    }

    /// Every secret value of this server a test output must never contain.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = vec![
            self.read("root-token"),
            self.read("token"),
            self.secret_id("pamtool"),
            self.secret_id("pamtool-short"),
        ];
        for name in [
            "mailbox",
            "cyberark-approver1",
            "cyberark-approver2",
            "lookup",
        ] {
            out.push(self.seeded(name, "password"));
        }
        out
    }

    /// `[vault]` settings as TOML for AppRole `role` (secret-id from its file).
    pub fn vault_toml(&self, role: &str) -> String {
        let mut s = format!(
            "addr = \"{}\"\nauth = \"approle\"\nrole_id = \"{}\"\nsecret_id = \"file:{}\"\ntimeout_secs = 5\n",
            self.addr,
            self.role_id(role),
            self.secret_id_file(role).display()
        );
        if let Some(ca) = &self.ca {
            s.push_str(&format!("ca_bundle = \"{}\"\n", ca.display()));
        }
        s
    }

    /// Call the API as root (curl reads the token from a file and the body from stdin).
    /// Returns the status and the JSON answer (`Null` when empty).
    pub fn root(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ])
        .arg("-H")
        .arg(format!("@{}", self.path(".root-header").display()))
        .args(["-H", "Content-Type: application/json"]);
        if let Some(ca) = &self.ca {
            cmd.arg("--cacert").arg(ca);
        }
        if body.is_some() {
            cmd.args(["--data-binary", "@-"]);
        }
        cmd.arg(format!("{}/v1/{path}", self.addr))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run curl");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            if let Some(b) = body {
                stdin.write_all(b.as_bytes()).expect("write body");
            }
        }
        let out = child.wait_with_output().expect("curl");
        assert!(
            out.status.success(),
            "curl {method} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let (json, code) = text.rsplit_once('\n').expect("status line");
        let code: u16 = code.trim().parse().expect("status");
        let v = if json.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(json).expect("json answer")
        };
        (code, v)
    }

    /// Whether the token behind `accessor` is still valid.
    /// Tokens of AppRole `role` that are still valid on the server (a tool revokes its own on
    /// exit, so this is 0 after a run).
    pub fn live_approle_tokens(&self, role: &str) -> usize {
        let (code, list) = self.root("LIST", "auth/token/accessors", None);
        assert_eq!(code, 200, "{list}");
        list["data"]["keys"]
            .as_array()
            .expect("accessors")
            .iter()
            .filter_map(|a| a.as_str())
            .filter(|a| {
                let body = serde_json::json!({ "accessor": a }).to_string();
                let (code, v) = self.root("POST", "auth/token/lookup-accessor", Some(&body));
                code == 200 && v["data"]["meta"]["role_name"] == role
            })
            .count()
    }

    pub fn accessor_valid(&self, accessor: &str) -> bool {
        let body = serde_json::json!({ "accessor": accessor }).to_string();
        self.root("POST", "auth/token/lookup-accessor", Some(&body))
            .0
            == 200
    }

    /// Stop the server now (the directory stays until drop).
    pub fn stop(&mut self) {
        if self.running {
            self.running = false;
            let status = Command::new(repo().join("scripts/stop-openbao.sh"))
                .arg(self.dir.path())
                .stdin(Stdio::null())
                .status()
                .expect("run scripts/stop-openbao.sh");
            assert!(status.success(), "stop-openbao.sh failed");
        }
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        if self.running {
            self.running = false;
            let _ = Command::new(repo().join("scripts/stop-openbao.sh"))
                .arg(self.dir.path())
                .stdin(Stdio::null())
                .status();
        }
    }
}

/// Assert a text holds none of the secrets and nothing shaped like a Vault/OpenBao service token
/// (`s.…`, `hvs.…`), whatever its value.
pub fn assert_no_secret(text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            s.len() < 4 || !text.contains(s.as_str()),
            "a secret value leaked into: {text}"
        );
    }
    for prefix in ["s.", "hvs.", "b."] {
        for (i, _) in text.match_indices(prefix) {
            let boundary = i == 0
                || !text[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric());
            let run = text[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .count();
            assert!(
                !(boundary && run >= 20),
                "something shaped like a Vault token leaked into: {text}"
            );
        }
    }
}

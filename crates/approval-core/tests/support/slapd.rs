//! A real OpenLDAP slapd per test, started by `scripts/start-slapd.sh` on a free loopback port in
//! its own temporary directory, stopped when the guard is dropped. Shared by the core's and the
//! CLI's integration tests (`#[path]`-included).
//!
//! Without slapd the tests skip with a message, unless `PAMTEST_REQUIRE_SERVERS` is set (as by
//! `scripts/test.sh`), in which case they fail.

#![allow(dead_code, clippy::print_stderr)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to start the server.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// `dynlist` instead of the default `memberof` overlays.
    pub dynlist: bool,
    /// Also listen for LDAPS.
    pub ldaps: bool,
    /// `security simple_bind=N`: refuse simple binds without TLS.
    pub simple_bind_ssf: Option<u32>,
}

pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub ldaps_port: Option<u16>,
    pub ca: PathBuf,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

fn script() -> PathBuf {
    repo_root().join("scripts/start-slapd.sh")
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

fn slapd_installed() -> bool {
    Path::new("/usr/sbin/slapd").exists()
        || Command::new("sh")
            .args(["-c", "command -v slapd"])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn required() -> bool {
    std::env::var_os("PAMTEST_REQUIRE_SERVERS").is_some_and(|v| !v.is_empty() && v != "0")
}

impl Slapd {
    /// Start a server, or `None` (with a message) when slapd is not installed and servers are
    /// not required.
    pub fn start(opts: Opts) -> Option<Slapd> {
        if !slapd_installed() {
            assert!(
                !required(),
                "slapd is not installed and PAMTEST_REQUIRE_SERVERS is set: run scripts/install-test-deps.sh"
            );
            eprintln!("SKIP: slapd is not installed (scripts/install-test-deps.sh installs it)");
            return None;
        }
        let mut last = String::new();
        // A port found free may be taken before slapd binds it: try a few.
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("slapd-test-")
                .tempdir()
                .expect("temp dir");
            let port = free_port();
            let ldaps_port = opts.ldaps.then(free_port);
            let mut cmd = Command::new("bash");
            cmd.arg(script())
                .arg(dir.path())
                .env("PORT", port.to_string())
                .env("MODE", if opts.dynlist { "dynlist" } else { "memberof" })
                .env("TLS", "1")
                .env_remove("LDAPS_PORT")
                .env_remove("SIMPLE_BIND_SSF")
                .env_remove("LDIF");
            if let Some(p) = ldaps_port {
                cmd.env("LDAPS_PORT", p.to_string());
            }
            if let Some(ssf) = opts.simple_bind_ssf {
                cmd.env("SIMPLE_BIND_SSF", ssf.to_string());
            }
            let out = cmd.output().expect("run scripts/start-slapd.sh");
            if out.status.success() {
                let ca = dir.path().join("tls/ca.crt");
                return Some(Slapd {
                    dir,
                    port,
                    ldaps_port,
                    ca,
                });
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        panic!("scripts/start-slapd.sh failed five times; last error: {last}");
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS or plain, by configuration).
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://localhost:PORT` (the certificate names localhost and 127.0.0.1).
    pub fn ldaps_url(&self) -> String {
        format!(
            "ldaps://localhost:{}",
            self.ldaps_port.expect("started with ldaps")
        )
    }

    /// Stop the server and wait until it is gone.
    pub fn stop(&self) {
        let out = Command::new("bash")
            .arg(script())
            .arg("--stop")
            .arg(self.dir.path())
            .output()
            .expect("run scripts/start-slapd.sh --stop");
        assert!(
            out.status.success(),
            "stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start it again on the same port with the same data.
    pub fn restart(&self) {
        let out = Command::new("bash")
            .arg(script())
            .arg(self.dir.path())
            .output()
            .expect("run scripts/start-slapd.sh");
        assert!(
            out.status.success(),
            "restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("--stop")
            .arg(self.dir.path())
            .output();
    }
}

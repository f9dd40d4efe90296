//! Test harness: a real PostgreSQL (the Debian package's binaries under
//! `/usr/lib/postgresql/*/bin`), `initdb` into a temporary directory, on a free loopback port,
//! TLS on with a test CA (pam-sim's CA and a `localhost`/`127.0.0.1` leaf), stopped when dropped.
//! Run as root (CI), the server runs as the `postgres` user (initdb refuses root).
//!
//! When PostgreSQL cannot be started: the test fails if `PAMTEST_REQUIRE_SERVERS=1` (CI and the
//! README's test command set it), else it is skipped with a message.

#![allow(dead_code, clippy::print_stderr)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

fn required() -> bool {
    std::env::var("PAMTEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// The newest installed `/usr/lib/postgresql/N/bin` holding initdb and pg_ctl.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

fn skip_or_fail(why: &str) -> Option<Postgres> {
    if required() {
        panic!("PostgreSQL is required (PAMTEST_REQUIRE_SERVERS=1) but {why}");
    }
    eprintln!(
        "SKIPPED: PostgreSQL is not available ({why}); install the Debian package `postgresql`"
    );
    None
}

impl Postgres {
    /// Start a server with TLS; `None` (with a printed reason) when it cannot run here and
    /// servers are not required.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            return skip_or_fail("no /usr/lib/postgresql/*/bin/initdb");
        };
        // Run as root (CI): the server runs as `postgres`, as initdb refuses root.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let dir = tempfile::Builder::new()
            .prefix("postgres-")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&sock).expect("socket dir");
        let tls = pam_sim::tls::ensure(&dir.path().join("tls")).expect("test CA");
        if as_postgres {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            let st = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(st.success(), "chown the PostgreSQL directory to postgres");
        }
        let pg = Postgres {
            dir,
            port: 0,
            ca: tls.ca_cert.clone(),
            bin,
            as_postgres,
        };
        let out = pg
            .cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        if !out.status.success() {
            return skip_or_fail(&format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // The server's key and certificate, readable by the server only.
        for (from, to) in [
            (&tls.server_cert, "server.crt"),
            (&tls.server_key, "server.key"),
        ] {
            std::fs::copy(from, data.join(to)).expect("copy TLS file");
            std::fs::set_permissions(data.join(to), std::fs::Permissions::from_mode(0o600))
                .expect("chmod TLS file");
        }
        // Password authentication over TLS for everyone but `postgres` (trust, for setup);
        // plain TCP refused.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all postgres 127.0.0.1/32 trust\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("pg_hba.conf");
        if as_postgres {
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&data)
                .status()
                .expect("chown");
        }
        let mut pg = pg;
        // Before the start: a test killed while pg_ctl waits leaves no server behind either.
        pg.watchdog();
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let out = pg
                .cmd("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.path().join("log"))
                .args(["-w", "-t", "30", "-o"])
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c ssl=on -c fsync=off -c full_page_writes=off",
                    sock.display()
                ))
                .arg("start")
                .output()
                .expect("run pg_ctl");
            if out.status.success() {
                pg.port = port;
                pg.psql("CREATE ROLE pam LOGIN PASSWORD 'pam-test-pw'");
                pg.psql("CREATE DATABASE pam OWNER pam");
                return Some(pg);
            }
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(pg.dir.path().join("log")).unwrap_or_default()
            );
        }
        skip_or_fail(&format!("pg_ctl start failed: {last}"))
    }

    /// Stop the server when the test process dies without dropping it (SIGKILL, abort): a
    /// detached shell polls the process and runs `pg_ctl stop` once it is gone.
    fn watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let prefix = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {prefix}'{ctl}' -D '{data}' -m immediate stop",
            pid = std::process::id(),
            ctl = pg_ctl.display(),
            data = self.data().display(),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    fn cmd(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        c.stdin(Stdio::null());
        c
    }

    /// Run SQL as the superuser over the Unix socket (setup and fault injection).
    pub fn psql(&self, sql: &str) -> String {
        match self.try_psql(sql) {
            Ok(out) => out,
            Err(e) => panic!("psql {sql}: {e}"),
        }
    }

    /// [`Postgres::psql`], the error (psql's stderr) returned instead of panicking: for polls
    /// that may meet a restarting server or a schema not created yet.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let psql = self.bin.join("psql");
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(psql);
            c
        } else {
            Command::new(psql)
        };
        let out = c
            .arg("-h")
            .arg(self.dir.path().join("sock"))
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d"])
            .arg(if sql.starts_with("CREATE ") {
                "postgres"
            } else {
                "pam"
            })
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Restart the server (fast shutdown: every session is ended, as in a database failover),
    /// on the same port with the same options; returns once it accepts connections again.
    pub fn restart(&self) {
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-m", "fast", "-w", "-t", "60", "restart"])
            .output()
            .expect("run pg_ctl restart");
        assert!(
            out.status.success(),
            "pg_ctl restart: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// End every client session on the `pam` database but psql's own (`pg_terminate_backend`);
    /// returns how many were ended.
    pub fn terminate_sessions(&self) -> usize {
        self.psql(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = 'pam' AND pid <> pg_backend_pid() AND backend_type = 'client backend') t",
        )
        .trim()
        .parse()
        .unwrap_or(0)
    }

    /// `postgres://pam@127.0.0.1:PORT/pam` (the password goes in `journal.password`).
    pub fn url(&self) -> String {
        format!(
            "postgres://pam@127.0.0.1:{}/pam?sslmode=verify-full",
            self.port
        )
    }

    pub const PASSWORD: &'static str = "pam-test-pw";

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = self
                .cmd("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

//! Issue 31's acceptance, end to end: a cloud-only site (Exchange Online mailbox on Microsoft
//! Graph, Microsoft Entra ID as the directory, CyberArk Identity roles as approvers, Privilege
//! Cloud) configured from `examples/sites/cloud-only.toml` **as shipped**, with only what a site
//! must change to point at pam-sim substituted (addresses, the CA of pam-sim's TLS, the secrets'
//! directory, the state and log paths, and the test-only pacing window), the substitution checked
//! to touch exactly those keys. The real `check-approval-request` runs against pam-sim, which
//! plays the example's own tenant, app and mailbox, and its Identity tenant and service users:
//!
//! - `--check-site` passes, covering the Entra sign-in and permissions, each role member's
//!   resolution (through Identity, or the explicit table), the tenant pin and the sending pace;
//! - then the watcher, as a service, approves by mail at level 1 through an Identity role (the
//!   level-1 account confirms, the forwarder gets one reply, the mail is filed), at level 2
//!   through a role the table maps to an Entra group, at level 1 through a Role the table maps to
//!   an Entra group by object id and through a Group safe member; refuses a non-approver (who
//!   holds a table-mapped role in Identity only: the table wins) and the requester; rejects by
//!   mail with a reason (PVWA shows it rejected); refuses `foreign_tenant` a mail another tenant
//!   stamped; and confirms a burst larger than the pace at once, its replies paced so that
//!   pam-sim (playing Exchange Online's limit) refuses no send, each reply exactly once.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXAMPLE: &str = include_str!("../../../examples/sites/cloud-only.toml");

/// The example's tenant, app and mailbox, which pam-sim plays (not substituted).
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const APP: &str = "0c1e8f3a-5b7d-4e2a-9c61-3f0d2b8a7e15";
const BOX: &str = "pam-approval@example.com";
/// The Entra group the example maps "PAM Approvers L1" to, by object id.
const L1_GROUP_ID: &str = "6f1c2b7e-3d4a-4c8e-9f21-0a5b7c9d1e23";
/// Another Exchange Online tenant.
const FOREIGN_TENANT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
/// The example's secrets directory, replaced by the test's.
const SECRETS: &str = "file:/etc/pam-approval/secrets/";

/// The test-only pace: Exchange Online's 30 a minute, counted over 20 s (10 per 20 s), on both
/// sides (the watcher's pace and pam-sim's sending limit).
const PACE: u32 = 10;
const WINDOW_SECS: u64 = 20;
/// The burst: more requests than the pace lets replies go in one window.
const BURST: u32 = 12;
const BURST_FIRST: u32 = 100;

const L1: &str = "pam-approve-l1@cyberark.cloud.12345";
const L2: &str = "pam-approve-l2@cyberark.cloud.12345";
const LOOKUP: &str = "pam-lookup@cyberark.cloud.12345";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_check-approval-request"))
}

/// pam-sim's scenario: the example's Graph tenant, app and mailbox; Entra ID's users and
/// groups; Privilege Cloud with its Identity tenant (the example's `abc1234` / `acme`), the
/// three service users, the safes and requests.
///
/// - alice holds the Identity role "PAM DB Approvers" (not in the example's table: resolved
///   through Identity), which approves CloudDB at level 1;
/// - bob is in the Entra group "PAM DB Team", a Group member of CloudDB at level 1;
/// - dan is in the Entra group "PAM-Approvers-L2", to which the table maps the role
///   "PAM Approvers L2" (by name), level 2 of CloudDB;
/// - carol is in the Entra group the table maps "PAM Approvers L1" to (by object id), level 1
///   of CloudInfra; mallory holds "PAM Approvers L1" in Identity but is in no group: the table
///   wins, she approves nothing there;
/// - lena requests.
fn scenario(secrets: &Path) -> String {
    let burst: String = (BURST_FIRST..BURST_FIRST + BURST)
        .map(|k| {
            format!(
                "[[pvwa.requests]]\nnumber = {k}\nsafe = \"CloudDB\"\nrequester = \"lena@example.com\"\naddress = \"db01.example.com\"\nlevels = [1, 0]\n"
            )
        })
        .collect();
    format!(
        r#"
[graph]
tenant_id = "{TENANT}"
mailboxes = ["{BOX}"]
[[graph.apps]]
client_id = "{APP}"
generate_certificate = "{cert}"
mailboxes = ["{BOX}"]
directory_roles = ["User.Read.All", "GroupMember.Read.All"]

[[graph.directory.users]]
display_name = "Alice Approver"
user_principal_name = "alice@example.com"
mail = "alice@example.com"
employee_id = "E1"
[[graph.directory.users]]
display_name = "Bob Team"
user_principal_name = "bob@example.com"
mail = "bob@example.com"
employee_id = "E2"
member_of = ["PAM DB Team"]
[[graph.directory.users]]
display_name = "Carol Infra"
user_principal_name = "carol@example.com"
mail = "carol@example.com"
employee_id = "E3"
member_of = ["PAM Approvers L1"]
[[graph.directory.users]]
display_name = "Dan Second"
user_principal_name = "dan@example.com"
mail = "dan@example.com"
employee_id = "E4"
member_of = ["PAM-Approvers-L2"]
[[graph.directory.users]]
display_name = "Mallory Roleonly"
user_principal_name = "mallory@example.com"
mail = "mallory@example.com"
employee_id = "E5"
[[graph.directory.users]]
display_name = "Lena Requester"
user_principal_name = "lena@example.com"
mail = "lena@example.com"
employee_id = "E6"

[[graph.directory.groups]]
display_name = "PAM DB Team"
[[graph.directory.groups]]
id = "{L1_GROUP_ID}"
display_name = "PAM Approvers L1"
[[graph.directory.groups]]
display_name = "PAM-Approvers-L2"

[pvwa]
mode = "privilege-cloud"

[pvwa.identity]
readers = ["{LOOKUP}"]
[[pvwa.identity.roles]]
name = "PAM DB Approvers"
members = [{{ type = "User", name = "alice@example.com" }}]
[[pvwa.identity.roles]]
name = "PAM Approvers L1"
members = [{{ type = "User", name = "mallory@example.com" }}]
[[pvwa.identity.roles]]
name = "PAM Approvers L2"
members = [{{ type = "User", name = "dan@example.com" }}]

[[pvwa.users]]
name = "{L1}"
password = "l1-secret-Xq7"
audit_users = false
[[pvwa.users]]
name = "{L2}"
password = "l2-secret-Xq7"
audit_users = false
[[pvwa.users]]
name = "{LOOKUP}"
password = "lookup-secret-Xq7"
[[pvwa.users]]
name = "alice@example.com"
password = "x"
email = "alice@example.com"
audit_users = false
[[pvwa.users]]
name = "mallory@example.com"
password = "x"
email = "mallory@example.com"
audit_users = false
[[pvwa.users]]
name = "dan@example.com"
password = "x"
email = "dan@example.com"
audit_users = false
[[pvwa.users]]
name = "lena@example.com"
password = "x"
email = "lena@example.com"
full_name = "Lena Requester"
audit_users = false

[[pvwa.safes]]
name = "CloudDB"
members = [
  {{ name = "{L1}", type = "user", level1 = true }},
  {{ name = "{L2}", type = "user", level2 = true }},
  {{ name = "{LOOKUP}", type = "user" }},
  {{ name = "PAM DB Approvers", type = "role", level1 = true }},
  {{ name = "PAM DB Team", type = "group", level1 = true }},
  {{ name = "PAM Approvers L2", type = "role", level2 = true }},
]
[[pvwa.safes]]
name = "CloudInfra"
members = [
  {{ name = "{L1}", type = "user", level1 = true }},
  {{ name = "{L2}", type = "user", level2 = true }},
  {{ name = "{LOOKUP}", type = "user" }},
  {{ name = "PAM Approvers L1", type = "role", level1 = true }},
]

# The Entra group as the vault records it (a Directory group, no LDAP DN).
[[pvwa.groups]]
name = "PAM DB Team"
type = "Directory"
directory = "example.com"

# lena's request on CloudDB at two levels; one on CloudInfra; alice's own; the others one level.
[[pvwa.requests]]
number = 31
safe = "CloudDB"
requester = "lena@example.com"
address = "db01.example.com"
levels = [1, 1]
[[pvwa.requests]]
number = 32
safe = "CloudDB"
requester = "lena@example.com"
address = "db01.example.com"
levels = [1, 0]
[[pvwa.requests]]
number = 33
safe = "CloudInfra"
requester = "lena@example.com"
address = "db01.example.com"
levels = [1, 0]
[[pvwa.requests]]
number = 34
safe = "CloudInfra"
requester = "lena@example.com"
address = "db01.example.com"
levels = [1, 0]
[[pvwa.requests]]
number = 35
safe = "CloudDB"
requester = "alice@example.com"
address = "db01.example.com"
levels = [1, 0]
[[pvwa.requests]]
number = 36
safe = "CloudDB"
requester = "lena@example.com"
address = "db01.example.com"
levels = [1, 0]
[[pvwa.requests]]
number = 37
safe = "CloudDB"
requester = "lena@example.com"
address = "db01.example.com"
levels = [1, 0]
{burst}
"#,
        cert = secrets.join("graph-app").display(),
    )
}

// ------------------------------------------------------------------ the example, substituted

/// Set `key` in `[section]` of the TOML text: replace its line (or its commented-out line,
/// `# key = …`), or add it right after the section's header when the example has neither.
/// Returns the value the example had (`None`: added or uncommented).
fn set_key(text: &mut String, section: &str, key: &str, value: &str) -> Option<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header = format!("[{section}]");
    let start = lines
        .iter()
        .position(|l| l.trim() == header)
        .unwrap_or_else(|| panic!("the example has no {header}"));
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |p| start + 1 + p);
    let is_key = |l: &str, commented: bool| {
        let mut t = l.trim_start();
        if commented {
            let Some(rest) = t.strip_prefix('#') else {
                return false;
            };
            t = rest.trim_start();
        }
        t.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with('='))
    };
    let line = format!("{key} = {value}");
    if let Some(i) = (start + 1..end).find(|&i| is_key(&lines[i], false)) {
        let old = lines[i].split_once('=').expect("key = value").1;
        let old: toml::Value = toml::from_str(&format!("v = {old}"))
            .map(|t: toml::Table| t["v"].clone())
            .unwrap_or_else(|e| panic!("[{section}] {key}: {e}"));
        lines[i] = line;
        *text = lines.join("\n") + "\n";
        return Some(old.as_str().map(str::to_string).unwrap_or(old.to_string()));
    }
    match (start + 1..end).find(|&i| is_key(&lines[i], true)) {
        Some(i) => lines[i] = line,
        None => lines.insert(start + 1, line),
    }
    *text = lines.join("\n") + "\n";
    None
}

/// Every leaf of a TOML document by its dotted path.
fn leaves(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// `examples/sites/cloud-only.toml` pointed at pam-sim: only addresses, the CA bundle, the
/// secrets' directory, the state and log paths and the test-only pacing window change. Panics
/// when the example no longer has a key the list names, or when anything else differs.
fn site_config(sim_url: &str, ca: &Path, secrets: &Path, dir: &Path) -> String {
    let mut text = EXAMPLE.to_string();
    let q = |s: &str| format!("\"{s}\"");
    let ca = q(&ca.display().to_string());
    let secret = |old: Option<String>, key: &str| -> String {
        let old = old.unwrap_or_else(|| panic!("{key}: the example sets no secret"));
        let name = old
            .strip_prefix(SECRETS)
            .unwrap_or_else(|| panic!("{key} = {old}: not in {SECRETS}"));
        q(&format!("file:{}", secrets.join(name).display()))
    };
    // (section, key, new value): what a site changes to point at pam-sim.
    let plain: Vec<(&str, &str, String)> = vec![
        // Addresses: Privilege Cloud's API and Identity tenant, Graph and Entra's sign-in.
        ("pvwa", "url", q(sim_url)),
        ("pvwa", "identity_url", q(sim_url)),
        ("mailbox", "url", q(&format!("{sim_url}/v1.0"))),
        ("mailbox.graph", "authority", q(sim_url)),
        // The CA of pam-sim's TLS, for each client that talks to it.
        ("pvwa", "ca_bundle", ca.clone()),
        ("mailbox", "ca_bundle", ca.clone()),
        ("directory", "ca_bundle", ca.clone()),
        // Where state and logs go.
        (
            "watcher",
            "state_dir",
            q(&dir.join("state").display().to_string()),
        ),
        (
            "log",
            "file",
            q(&dir.join("log/pam-approval.log").display().to_string()),
        ),
        // The test-only pacing window: Exchange Online's 30 a minute as 10 per 20 s.
        ("mailbox", "max_sends_per_minute", PACE.to_string()),
        ("mailbox", "send_window_secs", WINDOW_SECS.to_string()),
    ];
    let secrets_keys = [
        ("accounts.level1", "password"),
        ("accounts.level2", "password"),
        ("accounts.lookup", "password"),
        ("mailbox.graph", "certificate"),
        ("mailbox.graph", "private_key"),
    ];
    let mut expected: Vec<String> = Vec::new();
    for (section, key, value) in &plain {
        set_key(&mut text, section, key, value);
        expected.push(format!("{section}.{key}"));
    }
    for (section, key) in secrets_keys {
        let old = set_key(&mut text, section, key, "\"\"");
        let new = secret(old, &format!("{section}.{key}"));
        set_key(&mut text, section, key, &new);
        expected.push(format!("{section}.{key}"));
    }
    // Only those keys differ from the example.
    let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
    leaves(
        "",
        &toml::Value::Table(toml::from_str(EXAMPLE).expect("example parses")),
        &mut before,
    );
    leaves(
        "",
        &toml::Value::Table(toml::from_str(&text).expect("edited example parses")),
        &mut after,
    );
    let changed: std::collections::BTreeSet<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    let expected: std::collections::BTreeSet<String> = expected.into_iter().collect();
    assert_eq!(
        changed, expected,
        "the substitution touched other keys than listed"
    );
    // What a site must not change, unchanged: the tenant pin defaults to the mailbox's tenant,
    // Identity roles are read from Identity, the table is the example's.
    for (k, v) in [
        ("mailbox.graph.tenant_id", TENANT),
        ("mailbox.graph.client_id", APP),
        ("mailbox.mailbox", BOX),
        ("directory.kind", "entra"),
        ("directory.group_names.roles_from", "identity"),
        ("directory.group_names.roles.PAM Approvers L1", L1_GROUP_ID),
        (
            "directory.group_names.roles.PAM Approvers L2",
            "PAM-Approvers-L2",
        ),
        ("accounts.level1.username", L1),
        ("accounts.level2.username", L2),
        ("accounts.lookup.username", LOOKUP),
    ] {
        assert_eq!(
            after.get(k).and_then(|v| v.as_str()),
            Some(v),
            "{k} in the example"
        );
    }
    assert!(!after.contains_key("sender.tenant_id"), "pinned by default");
    text
}

/// A secret file as the docs say: in the secrets directory, mode 0600.
fn write_secret(secrets: &Path, name: &str, value: &str) {
    let p = secrets.join(name);
    std::fs::write(&p, value).expect("secret");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

// ------------------------------------------------------------------ mails

/// A forwarded notification as Exchange Online stores it: submitted by a user of the tenant
/// (organisation headers of a `*.prod.outlook.com` server, Authentication-Results without an
/// authserv-id); `own` is the forwarder's text above the forward. pam-sim adds the tenant
/// stamps as it delivers.
fn mail(mid: &str, from: &str, safe: &str, number: u32, requester: &str, own: &str) -> Vec<u8> {
    let server = "AM6PR04MB5678.eurprd04.prod.outlook.com";
    format!(
        "Received: from {server} (2603:10a6:20b:10::11) by {server} with HTTPS; Mon, 7 Dec 2026 09:20:11 +0000\r\n\
From: Forwarder <{from}>\r\n\
To: PAM Approvals <{BOX}>\r\n\
Subject: FW: Notification: Password access request\r\n\
Date: Mon, 7 Dec 2026 09:20:11 +0000\r\n\
Message-ID: <{mid}@example.com>\r\n\
Authentication-Results: dkim=none (message not signed)\r\n header.d=none;dmarc=none action=none header.from=example.com;\r\n\
X-MS-Exchange-Organization-AuthSource: {server}\r\n\
X-MS-Exchange-Organization-AuthAs: Internal\r\n\
X-MS-Exchange-Organization-AuthMechanism: 04\r\n\
X-MS-Exchange-Organization-MessageDirectionality: Originating\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=\"us-ascii\"\r\n\
\r\n\
{own}\r\n\
\r\n\
________________________________\r\n\
From: CyberArk Privilege Cloud <noreply@cyberark.cloud>\r\n\
Sent: Monday, December 7, 2026 09:12\r\n\
To: Forwarder <{from}>\r\n\
Subject: Notification: Password access request\r\n\
\r\n\
The following user has requested access to an account that requires your confirmation:\r\n\
\r\n\
Requester email: {requester}\r\n\
Safe: {safe}\r\n\
Request Id: {number}\r\n\
Account name: Operating System-UnixSSH-db01.example.com-root\r\n\
Reason: Maintenance\r\n\
\r\n\
To confirm or reject this request, log on to the Privilege Cloud portal.\r\n"
    )
    .into_bytes()
}

struct Site {
    sim: pam_sim::Sim,
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

impl Site {
    fn deliver(&self, raw: Vec<u8>) {
        let now = chrono::Utc::now().timestamp_millis();
        self.sim
            .state
            .graph
            .deliver(BOX, None, raw, now)
            .expect("deliver");
    }

    /// `from` forwards request `number` of `safe`; lena requests unless said otherwise.
    fn forward(&self, mid: &str, from: &str, safe: &str, number: u32, own: &str) {
        let requester = if number == 35 {
            "alice@example.com"
        } else {
            "lena@example.com"
        };
        self.deliver(mail(mid, from, safe, number, requester, own));
    }

    /// (request, user, action, reason) of every act PVWA recorded.
    fn acts(&self) -> Vec<(String, String, String, String)> {
        self.sim
            .state
            .pvwa
            .actions()
            .into_iter()
            .map(|a| {
                (
                    a.request_id,
                    a.user,
                    a.action.to_ascii_lowercase(),
                    a.reason,
                )
            })
            .collect()
    }

    fn acts_on(&self, request: &str) -> Vec<(String, String)> {
        self.acts()
            .into_iter()
            .filter(|a| a.0 == request)
            .map(|a| (a.2, a.1))
            .collect()
    }

    fn confirms(&self) -> usize {
        self.acts().iter().filter(|a| a.2 == "confirm").count()
    }

    /// (subject, body) of the mails sent to `who`.
    fn sent_to(&self, who: &str) -> Vec<(String, String)> {
        self.sim
            .state
            .graph
            .sent()
            .into_iter()
            .filter(|s| s.to.iter().any(|t| t.eq_ignore_ascii_case(who)))
            .map(|s| (s.subject, s.body))
            .collect()
    }

    /// Message-ids (lower case, without brackets) in a folder of the mailbox.
    fn folder(&self, name: &str) -> Vec<String> {
        self.sim
            .state
            .graph
            .folder_message_ids(BOX, name)
            .into_iter()
            .map(|m| m.trim_matches(['<', '>']).to_ascii_lowercase())
            .collect()
    }

    fn filed(&self, folder: &str, mid: &str) -> bool {
        self.folder(folder).contains(&format!("{mid}@example.com"))
    }

    fn status(&self, request: &str) -> String {
        self.sim.state.pvwa.request(request).expect("request")["StatusTitle"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The audit record the watcher logged for the mail `mid` (its last one).
    fn audit(&self, mid: &str) -> serde_json::Value {
        let needle = format!("\"message_id\":\"<{mid}@example.com>\"");
        let log = self.log();
        let line = log
            .lines()
            .rfind(|l| l.contains(" audit] ") && l.contains(&needle))
            .unwrap_or_else(|| panic!("no audit record of {mid}:\n{log}"));
        let json = &line[line.find(" audit] ").expect("audit") + 8..];
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/pam-approval.log")).unwrap_or_default()
    }
}

async fn eventually(site: &Site, secs: u64, what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < until,
            "not within {secs}s: {what}\nthe watcher's log:\n{}",
            site.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_site() -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("secrets dir");
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::create_dir(dir.path().join("log")).expect("log dir");
    let scenario = pam_sim::Scenario::from_toml(&scenario(&secrets)).expect("scenario");
    let sim = pam_sim::Sim::start(
        scenario,
        pam_sim::SimOptions {
            tls_dir: Some(dir.path().join("tls")),
            ..pam_sim::SimOptions::default()
        },
    )
    .await
    .expect("pam-sim starts");
    // Exchange Online's sending limit, on the test's window.
    sim.state
        .graph
        .set_send_limit(Some(pam_sim::send_limit::SendLimit {
            messages: PACE,
            window_ms: WINDOW_SECS * 1000,
        }));
    // The secrets as the example names them, each 0600 (pam-sim wrote the app's key pair).
    write_secret(&secrets, "pcloud-level1", "l1-secret-Xq7");
    write_secret(&secrets, "pcloud-level2", "l2-secret-Xq7");
    write_secret(&secrets, "pcloud-lookup", "lookup-secret-Xq7");
    for f in ["graph-app.crt", "graph-app.key"] {
        let mode = std::fs::metadata(secrets.join(f))
            .expect(f)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let ca = sim.ca_cert.clone().expect("pam-sim's CA");
    let text = site_config(&sim.url(), &ca, &secrets, dir.path());
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, text).expect("config");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    Site { sim, dir, cfg }
}

const SECRET_VALUES: [&str; 4] = [
    "l1-secret-Xq7",
    "l2-secret-Xq7",
    "lookup-secret-Xq7",
    "BEGIN PRIVATE KEY",
];

fn check_site(cfg: &Path) -> (Option<i32>, serde_json::Value, String) {
    let o = Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .args(["--check-site", "--json"])
        .env_remove("APPROVAL_CONFIG")
        .output()
        .expect("runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for s in SECRET_VALUES {
        assert!(!out.contains(s), "secret {s} shown:\n{out}");
    }
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("JSON: {out}"));
    (o.status.code(), v, out)
}

/// The item `check` of any section.
fn item<'a>(v: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    v["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .flat_map(|s| s["items"].as_array().expect("items").iter())
        .find(|i| i["check"] == check)
        .unwrap_or_else(|| panic!("no item {check} in {v:#}"))
}

fn ok_saying(v: &serde_json::Value, check: &str, says: &[&str]) {
    let i = item(v, check);
    assert_eq!(i["status"], "ok", "{i}");
    let f = i["finding"].as_str().expect("finding");
    for s in says {
        assert!(f.contains(s), "{check}: {f:?} does not say {s:?}");
    }
}

fn start_watcher(site: &Site) -> Child {
    Command::new(bin())
        .arg("--config")
        .arg(&site.cfg)
        .env_remove("APPROVAL_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the watcher")
}

async fn stop(mut child: Child) -> (Option<i32>, String) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "SIGTERM");
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < until, "the watcher did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        e.read_to_string(&mut err).expect("stderr");
    }
    (status.code(), err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_only_example_approves_and_refuses_by_mail_against_pam_sim() {
    let site = start_site().await;

    // ---- The site check, on the same configuration, with alice's forward in the inbox.
    site.forward("l1", "alice@example.com", "CloudDB", 31, "approve");
    let (code, v, out) = tokio::task::block_in_place(|| check_site(&site.cfg));
    assert_eq!(code, Some(0), "{out}");
    ok_saying(&v, "sign-in", &["mailbox.graph"]);
    ok_saying(&v, "read users", &["User.Read.All"]);
    ok_saying(&v, "read group membership", &["GroupMember.Read.All"]);
    ok_saying(
        &v,
        "safe CloudDB role PAM DB Approvers",
        &[&format!(
            "resolved through CyberArk Identity (read as {LOOKUP}): 1 user(s), 0 group(s)"
        )],
    );
    ok_saying(
        &v,
        "safe CloudDB role PAM Approvers L2",
        &["explicit table"],
    );
    ok_saying(
        &v,
        "safe CloudInfra role PAM Approvers L1",
        &["explicit table"],
    );
    let l2_group = site
        .sim
        .state
        .graph
        .directory_id("PAM-Approvers-L2")
        .expect("id");
    ok_saying(&v, &format!("group {L1_GROUP_ID}"), &[L1_GROUP_ID]);
    ok_saying(&v, "group PAM-Approvers-L2", &[&l2_group]);
    let team_group = site
        .sim
        .state
        .graph
        .directory_id("PAM DB Team")
        .expect("id");
    ok_saying(&v, "group PAM DB Team", &[&team_group]);
    ok_saying(
        &v,
        "tenant pin",
        &[
            TENANT,
            "by default mailbox.graph.tenant_id",
            "foreign_tenant",
        ],
    );
    ok_saying(
        &v,
        "sending pace",
        &[&format!(
            "at most {PACE} mails per {WINDOW_SECS} s (30 a minute)"
        )],
    );
    ok_saying(
        &v,
        "mail 1",
        &[
            "from alice@example.com: accepted",
            &format!("CrossTenant-Id {TENANT}"),
        ],
    );
    ok_saying(
        &v,
        "approver alice@example.com",
        &["CyberArk Identity role \"PAM DB Approvers\""],
    );
    // The pin on another tenant than the mailbox's fails (every mail would be refused); the pin
    // turned off on Exchange Online is a warning.
    let text = std::fs::read_to_string(&site.cfg).expect("config");
    for (pin, code, status) in [(FOREIGN_TENANT, 2, "fail"), ("none", 1, "warn")] {
        let other = site.dir.path().join("pinned.toml");
        let edited = text.replacen(
            "[sender]\n",
            &format!("[sender]\ntenant_id = \"{pin}\"\n"),
            1,
        );
        assert_ne!(edited, text);
        std::fs::write(&other, edited).expect("config");
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let (c, v, out) = tokio::task::block_in_place(|| check_site(&other));
        assert_eq!(c, Some(code), "{pin}: {out}");
        let i = item(&v, "tenant pin");
        assert_eq!(i["status"], status, "{i}");
        assert!(i["fix"].as_str().expect("fix").contains("tenant_id"), "{i}");
    }
    assert_eq!(site.acts().len(), 0, "the site check changes nothing");
    assert!(site.sim.state.graph.sent().is_empty(), "and sends nothing");

    // ---- The watcher as a service.
    let watcher = start_watcher(&site);

    // Level 1 through the Identity role: the level-1 account confirms, alice gets one reply,
    // the mail is filed.
    eventually(&site, 30, "request 31 confirmed at level 1", || {
        site.acts_on("CloudDB_31").len() == 1
    })
    .await;
    assert_eq!(
        site.acts_on("CloudDB_31"),
        vec![("confirm".to_string(), L1.to_string())]
    );
    let reason = &site.acts()[0].3;
    assert!(reason.contains("alice@example.com"), "{reason}");
    eventually(&site, 30, "alice answered, her mail filed", || {
        site.sent_to("alice@example.com").len() == 1 && site.filed("Processed", "l1")
    })
    .await;
    let r = site.sent_to("alice@example.com");
    assert!(r[0].0.starts_with("Approved:"), "{}", r[0].0);

    // Level 2 by dan, through the role the table maps to the Entra group PAM-Approvers-L2.
    site.forward("l2", "dan@example.com", "CloudDB", 31, "approve");
    // Level 1 by carol, through "PAM Approvers L1" mapped to an Entra group by object id.
    site.forward("in", "carol@example.com", "CloudInfra", 33, "approve");
    // Level 1 by bob, through the Entra group PAM DB Team (a Group safe member).
    site.forward("gr", "bob@example.com", "CloudDB", 32, "approve");
    // mallory holds "PAM Approvers L1" in Identity only: the table wins, she approves nothing.
    site.forward("na", "mallory@example.com", "CloudInfra", 34, "approve");
    // alice's own request.
    site.forward("se", "alice@example.com", "CloudDB", 35, "approve");
    // bob rejects with a reason.
    site.forward(
        "rj",
        "bob@example.com",
        "CloudDB",
        36,
        "Reject: no change ticket for this host",
    );
    // A mail another tenant authenticated: its stamps are that tenant's.
    site.sim
        .state
        .graph
        .deliver_from_tenant(
            BOX,
            None,
            mail(
                "ft",
                "bob@example.com",
                "CloudDB",
                37,
                "lena@example.com",
                "approve",
            ),
            FOREIGN_TENANT,
            chrono::Utc::now().timestamp_millis(),
        )
        .expect("deliver");
    let mids = ["l2", "in", "gr", "na", "se", "rj", "ft"];
    eventually(&site, 60, "every mail filed", || {
        mids.iter()
            .all(|m| site.filed("Processed", m) || site.filed("Refused", m))
    })
    .await;
    assert_eq!(
        site.acts_on("CloudDB_31"),
        vec![
            ("confirm".to_string(), L1.to_string()),
            ("confirm".to_string(), L2.to_string())
        ],
        "both levels, each with its account"
    );
    assert_eq!(
        site.acts_on("CloudInfra_33"),
        vec![("confirm".to_string(), L1.to_string())]
    );
    assert_eq!(
        site.acts_on("CloudDB_32"),
        vec![("confirm".to_string(), L1.to_string())]
    );
    assert!(site.acts_on("CloudInfra_34").is_empty(), "mallory: nothing");
    assert!(
        site.acts_on("CloudDB_35").is_empty(),
        "alice's own: nothing"
    );
    assert!(
        site.acts_on("CloudDB_37").is_empty(),
        "foreign tenant: nothing"
    );
    let rj = site.acts_on("CloudDB_36");
    assert_eq!(rj, vec![("reject".to_string(), L1.to_string())]);
    assert_eq!(site.status("CloudDB_36"), "Rejected");
    let reject_reason = site
        .acts()
        .into_iter()
        .find(|a| a.0 == "CloudDB_36")
        .expect("reject")
        .3;
    assert!(
        reject_reason.starts_with(
            "Rejected on behalf of bob@example.com by mail: no change ticket for this host"
        ),
        "{reject_reason}"
    );
    for (mid, folder) in [
        ("l2", "Processed"),
        ("in", "Processed"),
        ("gr", "Processed"),
        ("rj", "Processed"),
        ("na", "Refused"),
        ("se", "Refused"),
        ("ft", "Refused"),
    ] {
        assert!(site.filed(folder, mid), "{mid} in {folder}");
    }
    // The answers: one per mail, saying what happened (none to a foreign tenant's mail).
    eventually(&site, 60, "every answer sent", || {
        site.sent_to("dan@example.com").len() == 1
            && site.sent_to("carol@example.com").len() == 1
            && site.sent_to("mallory@example.com").len() == 1
            && site.sent_to("bob@example.com").len() == 2
            && site.sent_to("alice@example.com").len() == 2
    })
    .await;
    let first = |who: &str| site.sent_to(who)[0].0.clone();
    assert!(first("dan@example.com").starts_with("Approved:"));
    assert!(first("carol@example.com").starts_with("Approved:"));
    for (s, _) in site.sent_to("mallory@example.com") {
        assert!(s.starts_with("Not approved:"), "{s}");
    }
    let alice = site.sent_to("alice@example.com");
    assert!(
        alice
            .iter()
            .any(|(s, b)| s.starts_with("Not approved:") && b.contains("self_approval")),
        "{alice:?}"
    );
    let bob = site.sent_to("bob@example.com");
    assert!(
        bob.iter().any(|(s, _)| s.starts_with("Approved:")),
        "{bob:?}"
    );
    assert!(
        bob.iter()
            .any(|(s, _)| s.starts_with("Rejected: Dual Control request CloudDB_36")),
        "{bob:?}"
    );
    // Each decision as the audit log records it: the outcome, the reason, and the group (or
    // Identity role) that granted.
    for (mid, outcome, reason, group) in [
        (
            "l1",
            "confirmed",
            "",
            "CyberArk Identity role \"PAM DB Approvers\"",
        ),
        ("l2", "confirmed", "", "PAM-Approvers-L2"),
        ("in", "confirmed", "", L1_GROUP_ID),
        ("gr", "confirmed", "", "PAM DB Team"),
        ("rj", "rejected", "", "PAM DB Team"),
        ("na", "refused", "not_an_approver", ""),
        ("se", "refused", "self_approval", ""),
        ("ft", "refused", "foreign_tenant", ""),
    ] {
        let a = site.audit(mid);
        assert_eq!(a["outcome"], outcome, "{mid}: {a}");
        if !reason.is_empty() {
            assert_eq!(a["reason_code"], reason, "{mid}: {a}");
        }
        if !group.is_empty() {
            let g = a["group"].as_str().unwrap_or_default();
            assert!(
                g.contains(group),
                "{mid}: granted by {g:?}, not {group:?}: {a}"
            );
        }
    }
    // The foreign tenant's mail: no answer to its sender, one report to the PAM team
    // ([notify] report_unauthentic) naming the tenant it came from.
    let team = site.sent_to("pam-team@example.com");
    assert_eq!(team.len(), 1, "{team:?}");
    assert!(team[0].0.contains("foreign_tenant"), "{}", team[0].0);
    assert!(team[0].1.contains(FOREIGN_TENANT), "{}", team[0].1);

    // ---- A burst larger than the pace: confirmed at once, replies paced, each once.
    let sends_before = site.sim.state.graph.sent().len();
    let t0 = Instant::now();
    for k in BURST_FIRST..BURST_FIRST + BURST {
        let who = if k % 2 == 0 {
            "alice@example.com"
        } else {
            "bob@example.com"
        };
        site.forward(&format!("b{k}"), who, "CloudDB", k, "approve");
    }
    let confirms_before = 4;
    eventually(&site, 30, "every burst request confirmed", || {
        site.confirms() >= confirms_before + BURST as usize
    })
    .await;
    let confirmed_in = t0.elapsed();
    let owed = BURST as usize - (site.sim.state.graph.sent().len() - sends_before);
    assert!(
        owed > 0,
        "replies still owed once every request was confirmed ({confirmed_in:?})"
    );
    assert!(
        confirmed_in < Duration::from_secs(WINDOW_SECS),
        "confirmations are not paced: {confirmed_in:?}"
    );
    eventually(
        &site,
        3 * WINDOW_SECS + 30,
        "every burst mail answered and filed",
        || {
            (BURST_FIRST..BURST_FIRST + BURST).all(|k| site.filed("Processed", &format!("b{k}")))
                && site.sim.state.graph.sent().len() >= sends_before + BURST as usize
        },
    )
    .await;
    // Give a doubled send the time to show, then stop the watcher.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, err) = stop(watcher).await;
    assert_eq!(code, Some(0), "{err}");

    for k in BURST_FIRST..BURST_FIRST + BURST {
        let id = format!("CloudDB_{k}");
        assert_eq!(
            site.acts_on(&id),
            vec![("confirm".to_string(), L1.to_string())],
            "{id}"
        );
        let replies: Vec<String> = site
            .sim
            .state
            .graph
            .sent()
            .into_iter()
            .map(|s| s.subject)
            .filter(|s| s.split_whitespace().any(|w| w == id))
            .collect();
        assert_eq!(replies.len(), 1, "replies about {id}: {replies:?}");
        assert!(replies[0].starts_with("Approved:"), "{}", replies[0]);
    }
    assert_eq!(
        site.sim.state.graph.stats().sends_refused,
        0,
        "pam-sim refused no send: the pace kept within the limit"
    );
    // No answer to the foreign tenant's mail: bob's answers outside the burst are the two.
    let bob_outside: Vec<String> = site
        .sent_to("bob@example.com")
        .into_iter()
        .map(|r| r.0)
        .filter(|s| !s.contains("CloudDB_1"))
        .collect();
    assert_eq!(bob_outside.len(), 2, "{bob_outside:?}");
    assert!(
        !bob_outside.iter().any(|s| s.contains("CloudDB_37")),
        "{bob_outside:?}"
    );
    let log = site.log();
    assert!(
        log.contains("sending deferred"),
        "the pace held replies back"
    );
    for s in SECRET_VALUES {
        assert!(!log.contains(s) && !err.contains(s), "secret {s} logged");
    }
    // Nothing left in the inbox; every mail the watcher sent went from the site's mailbox.
    assert!(
        site.folder("inbox").is_empty(),
        "{:?}",
        site.folder("inbox")
    );
}

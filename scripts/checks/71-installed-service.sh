#!/usr/bin/env bash
# The installed package at work, configured as the README and docs/secrets.md tell a PAM team:
# the .deb (scripts/package.sh) is installed, /etc/pam-approval/config.toml is edited in place
# for this run's pam-sim (PVWA + Exchange EWS, examples/demo/watcher-scenario.toml) and a local
# slapd (the directory), its passwords are file: references in /etc/pam-approval/secrets/
# written as the docs say, and state_dir and [log] stay as installed. Then, as pamapproval, not
# root, with no --config and no $APPROVAL_CONFIG (the tools fall back to the installed path):
# --check-mailbox, --check-site, a forwarded mail confirmed by `--once`, `--status` on
# /var/lib/pam-approval/journal.sqlite and the audit line in /var/log/pam-approval/pam-approval.log;
# then the README's cron line as written (the flock wrapper's long-running watcher, its lock and
# pid file in /run/pam-approval as the tmpfiles.d entry makes it at boot) confirms level 2 on the
# same journal; last the purge, and what the README says it keeps. Needs root (dpkg, runuser);
# refuses to run where pam-approval is installed or its directories hold files.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)
fail() { echo "installed service: $*"; exit 1; }
step() { echo "installed service: $*"; }
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
as_root() { "${sudo_cmd[@]}" "$@"; }
for tool in dpkg-deb curl jq runuser flock; do
  command -v "$tool" >/dev/null || fail "$tool is required (scripts/deps/apt.txt)"
done

# --- guards: never touch a real installation or what one left behind
if dpkg-query -W -f='${Status}' pam-approval 2>/dev/null | grep -q "install ok installed"; then
  fail "pam-approval is already installed on this machine; the check would remove it"
fi
for d in /etc/pam-approval /var/lib/pam-approval /var/log/pam-approval; do
  # (empty files and directories are what an earlier install and purge leave, 70-packages.sh's too)
  if [[ -n "$(as_root find "$d" -type f ! -empty -print -quit 2>/dev/null)" ]]; then
    fail "$d holds files (left by an earlier installation?); the check would mix them up and remove them"
  fi
done
user_existed=0
getent passwd pamapproval >/dev/null && user_existed=1

work=$(mktemp -d)
sim_pid="" cron_pid=""
cleanup() {
  set +e
  [[ -n "$cron_pid" ]] && kill "$cron_pid" 2>/dev/null
  p=$(as_root cat /run/pam-approval/watcher.pid 2>/dev/null)
  [[ "$p" =~ ^[0-9]+$ ]] && as_root kill "$p" 2>/dev/null
  [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null
  [[ -d "$work/slapd" ]] && scripts/start-slapd.sh --stop "$work/slapd" >/dev/null 2>&1
  wait 2>/dev/null
  as_root dpkg --purge pam-approval >/dev/null 2>&1
  # What the purge keeps on purpose (README, Install), removed here as the README says.
  as_root find /etc/pam-approval/secrets -type f -exec shred -u {} + 2>/dev/null
  as_root rm -rf /etc/pam-approval /var/lib/pam-approval /var/log/pam-approval /run/pam-approval
  if [[ $user_existed -eq 0 ]] && getent passwd pamapproval >/dev/null; then
    as_root userdel pamapproval 2>/dev/null
    getent group pamapproval >/dev/null && as_root groupdel pamapproval 2>/dev/null
  fi
  rm -rf "$work"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the package, and pam-sim from the workspace build
# scripts/test.sh builds the packages once for both package checks ($PAMTEST_PACKAGES).
pkg_dir="${PAMTEST_PACKAGES:-$work/pkg}"
ls "$pkg_dir"/pam-approval_*.deb >/dev/null 2>&1 || PACKAGE_OUT="$pkg_dir" scripts/package.sh >/dev/null
deb=$(ls "$pkg_dir"/pam-approval_*.deb)
cargo build -q --locked -p pam-sim --bin pam-sim
sim="${CARGO_TARGET_DIR:-$PWD/target}/debug/pam-sim"
step "package $(basename "$deb") and pam-sim ready ($(( $(date +%s) - started )) s)"
t0=$(date +%s)

as_root dpkg -i "$deb" >/dev/null
mode() { as_root stat -c '%a %U:%G' "$1" 2>/dev/null || echo missing; }
for want in "/etc/pam-approval 750 root:pamapproval" "/etc/pam-approval/config.toml 640 root:pamapproval" \
  "/etc/pam-approval/secrets 700 pamapproval:pamapproval" "/var/lib/pam-approval 700 pamapproval:pamapproval" \
  "/run/pam-approval 750 pamapproval:pamapproval"; do
  read -r path m <<<"$want"
  [[ "$(mode "$path")" == "$m" ]] || fail "after install $path is $(mode "$path"), not $m"
done
[[ -d /var/log/pam-approval && "$(stat -c %U /var/log/pam-approval)" == pamapproval ]] \
  || fail "after install /var/log/pam-approval is $(mode /var/log/pam-approval), not owned by pamapproval"
log=/var/log/pam-approval/pam-approval.log
# An administrator's first look as root (as 70-packages.sh does) appends to the [log] file: the
# package made it the service user's, so it stays writable by pamapproval.
rc=0; as_root /usr/bin/check-approval-request --config /etc/pam-approval/config.toml --status >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "--status as root on the fresh install exited $rc, not 2 (no journal yet)"
[[ "$(mode "$log")" == "640 pamapproval:"* ]] || fail "after install and a root --status $log is $(mode "$log"), not 640 pamapproval"
step "installed: the user, /etc/pam-approval/secrets, /var/lib/pam-approval, /var/log/pam-approval, /run/pam-approval"
# The installed README's Install section is read on the installed system: its links resolve there.
doc=/usr/share/doc/pam-approval
links=$(sed -n '/^## Install$/,/^## /p' "$doc/README.md" | grep -oE '\]\([^)#]+' | sed 's/^](//' | grep -vE '^[a-z]+:' || true)
grep -qx "## Install" "$doc/README.md" || fail "no Install section in $doc/README.md"
for l in $links; do [[ -e "$doc/$l" ]] || fail "the installed README's Install section links to $l, which is not in $doc"; done
step "the installed README's Install section: its links resolve in $doc ($(echo $links))"

# --- the servers: slapd (the directory) and pam-sim (PVWA, Exchange EWS, ServiceNow)
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ldap_out=""
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  port_free "$port" || continue
  if ldap_out=$(PORT=$port scripts/start-slapd.sh "$work/slapd" 2>"$work/slapd.err"); then break; fi
  scripts/start-slapd.sh --stop "$work/slapd" >/dev/null 2>&1 || true
  rm -rf "$work/slapd"; ldap_out=""
done
[[ -n "$ldap_out" ]] || { cat "$work/slapd.err"; fail "slapd did not start"; }
ldap_url=$(sed -n 's/^url=//p' <<<"$ldap_out")
ldap_ca=$(sed -n 's/^ca=//p' <<<"$ldap_out")
"$sim" --scenario examples/demo/watcher-scenario.toml --bind 127.0.0.1:0 --tls-dir "$work/tls" \
  --url-file "$work/url" >"$work/pam-sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 200); do [[ -s "$work/url" ]] && break; sleep 0.05; done
[[ -s "$work/url" ]] || { cat "$work/pam-sim.log"; fail "pam-sim did not start"; }
url=$(cat "$work/url")
ca="$work/tls/ca.crt"
admin() { curl -fsS --cacert "$ca" "$@"; }
deliver() { admin -X POST --data-binary @"$1" "$url/sim/ews/deliver" >/dev/null || fail "pam-sim refused to deliver $1"; }
actions() { admin "$url/sim/pvwa/actions"; }
step "slapd at $ldap_url, pam-sim at $url"

# --- the configuration, as a PAM team writes it: the installed file edited in place, the CAs
# beside it (readable by the service through /etc/pam-approval's group), the passwords typed into
# /etc/pam-approval/secrets/ as pamapproval with umask 077 (docs/secrets.md).
cfg=/etc/pam-approval/config.toml
as_root install -m 0644 "$ca" /etc/pam-approval/pvwa-ca.pem
as_root install -m 0644 "$ca" /etc/pam-approval/exchange-ca.pem
as_root install -m 0644 "$ldap_ca" /etc/pam-approval/corp-ca.pem
# set SECTION KEY VALUE: the key's line in that section (commented out or not) gets VALUE.
set_key() {
  local new
  new=$(as_root awk -v sec="[$1]" -v key="$2" -v val="$3" '
    /^\[/ { cur = $0; sub(/[ \t]*(#.*)?$/, "", cur) }
    cur == sec && !done && $0 ~ "^#? *" key " *=" { print key " = " val; done = 1; next }
    { print }
    END { if (!done) exit 3 }' "$cfg") || fail "the installed configuration has no key $2 in [$1]"
  printf '%s\n' "$new" | as_root tee "$cfg" >/dev/null
}
set_key pvwa url "\"$url\""
set_key pvwa ca_bundle '"/etc/pam-approval/pvwa-ca.pem"'
set_key pvwa retries 0
set_key mailbox url "\"$url/EWS/Exchange.asmx\""
set_key mailbox username '"pam-approvals@example.test"'
set_key mailbox mailbox '"pam-approvals@example.test"'
set_key mailbox ca_bundle '"/etc/pam-approval/exchange-ca.pem"'
set_key directory url "\"$ldap_url\""
set_key directory urls '[]'
set_key directory bind_dn '"cn=svc_pamtool,ou=Users,dc=example,dc=test"'
set_key directory base_dn '"dc=example,dc=test"'
set_key directory ca_bundle '"/etc/pam-approval/corp-ca.pem"'
set_key directory.group_names domains '["example.test"]'
set_key sender allowed_domains '["example.test"]'
set_key sender auth_sources '["EX01.corp.example.test"]'
set_key notify pam_team '["pam-team@example.test"]'
[[ "$(mode "$cfg")" == "640 root:pamapproval" ]] || fail "editing left $cfg $(mode "$cfg")"
for s in pvwa-level1:Level1-Demo-Pass pvwa-level2:Level2-Demo-Pass pvwa-lookup:Lookup-Demo-Pass \
  mailbox:Mailbox-Demo-Pass ldap-bind:svcpw; do
  printf '%s\n' "${s#*:}" | as_root runuser -u pamapproval -- sh -c "umask 077; cat > /etc/pam-approval/secrets/${s%%:*}"
  [[ "$(mode "/etc/pam-approval/secrets/${s%%:*}")" == "600 pamapproval:pamapproval" ]] \
    || fail "secrets/${s%%:*} is $(mode "/etc/pam-approval/secrets/${s%%:*}")"
done
step "configured $cfg ($(mode "$cfg")) and 5 secrets in /etc/pam-approval/secrets/ (600 pamapproval)"

# --- by hand, as pamapproval: no root, no --config, no $APPROVAL_CONFIG, a clean environment
# (what `sudo -u pamapproval …` gives).
as_pam() {
  (cd / && as_root runuser -u pamapproval -- env -i PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/var/lib/pam-approval LOGNAME=pamapproval USER=pamapproval LANG=C.UTF-8 "$@")
}
run_pam() { # run_pam WANTED-EXIT... -- COMMAND...: output in $out, exit in $rc
  local want=()
  while [[ $1 != -- ]]; do want+=("$1"); shift; done
  shift
  rc=0; out=$(as_pam "$@" 2>&1) || rc=$?
  for w in "${want[@]}"; do [[ $rc -eq $w ]] && return 0; done
  echo "$out"; fail "\`$*\` as pamapproval exited $rc, not ${want[*]}"
}
[[ "$(as_pam id -u)" != 0 ]] || fail "as_pam runs as root"
run_pam 0 -- check-approval-request --check-mailbox
step "--check-mailbox: ok"
run_pam 0 1 -- check-approval-request --check-site
sed 's/^/    /' <<<"$out"
step "--check-site: exit $rc"

deliver examples/demo/mails/01-*.eml
run_pam 0 -- check-approval-request --once
grep -qE "^CONFIRMED +DBSafe_31 " <<<"$out" || { echo "$out"; fail "--once did not confirm DBSafe_31"; }
a=$(actions)
[[ "$(jq -c '[.[] | {request_id, user, action}]' <<<"$a")" == '[{"request_id":"DBSafe_31","user":"svc_pam_level1","action":"confirm"}]' ]] \
  || { echo "$a"; fail "PVWA did not record exactly one confirm of DBSafe_31 by svc_pam_level1"; }
step "--once: $(grep -m1 CONFIRMED <<<"$out")"
run_pam 0 -- check-approval-request --status
grep -q "^OK: 1 mails answered" <<<"$out" || fail "--status: $out"
grep -qF "[journal /var/lib/pam-approval/journal.sqlite]" <<<"$out" || fail "--status names another journal: $out"
step "--status: $out"
# confirmed_levels: the level of each audit line (one JSON object after the log prefix) of a
# confirmed DBSafe_31, in order.
confirmed_levels() {
  as_root cat "$log" 2>/dev/null | sed -n 's/^[^{]*\({.*\)$/\1/p' \
    | jq -cR 'fromjson? | select(.event == "mail_processed" and .outcome == "confirmed" and .request_id == "DBSafe_31") | .level' \
    | paste -sd, -
}
[[ "$(confirmed_levels)" == 1 ]] || { as_root cat "$log" 2>/dev/null; fail "no audit line of the level-1 confirm in $log"; }
[[ "$(mode "$log")" == "640 pamapproval:"* ]] || fail "$log is $(mode "$log")"
step "audit line in $log ($(mode "$log"))"
# A root --status in between (an administrator's look) must leave the journal the service's.
rc=0; st=$(as_root /usr/bin/check-approval-request --config "$cfg" --status 2>&1) || rc=$?
[[ $rc -eq 0 && "$st" == "OK: 1 mails answered"* ]] || fail "--status as root exited $rc: $st"
if as_root find /var/lib/pam-approval /var/log/pam-approval ! -user pamapproval | grep . >/dev/null; then
  as_root ls -la /var/lib/pam-approval /var/log/pam-approval; fail "a root --status left files root's"
fi
step "--status as root in between: the journal and the log stay pamapproval's"

# --- cron: the README's line as written, in cron's environment, while the run directory is what
# boot makes of the tmpfiles.d entry. The wrapper runs a long-lived watcher under its flock.
as_root rm -rf /run/pam-approval
if command -v systemd-tmpfiles >/dev/null; then
  as_root systemd-tmpfiles --create /usr/lib/tmpfiles.d/pam-approval.conf
else
  fail "systemd-tmpfiles is needed to apply /usr/lib/tmpfiles.d/pam-approval.conf (Debian package systemd)"
fi
[[ "$(mode /run/pam-approval)" == "750 pamapproval:pamapproval" ]] || fail "tmpfiles.d made /run/pam-approval $(mode /run/pam-approval)"
cron_line=$(grep -E '^ *\* \* \* \* \* pamapproval /usr/lib/pam-approval/check_approval_request.sh' README.md | head -1 | sed 's/^ *//')
[[ -n "$cron_line" ]] || fail "no cron line in README.md"
read -r _ _ _ _ _ cron_user cron_cmd <<<"$cron_line"
[[ "$cron_user" == pamapproval ]] || fail "the README's cron line runs as $cron_user"
deliver examples/demo/mails/02-*.eml
cron_run() { # cron_run SECONDS: the cron line's command in cron's environment, at most SECONDS
  (cd / && as_root timeout "$1" runuser -u pamapproval -- env -i -C /var/lib/pam-approval PATH=/usr/bin:/bin \
    SHELL=/bin/sh HOME=/var/lib/pam-approval LOGNAME=pamapproval $cron_cmd)
}
cron_run 120 >"$work/cron.out" 2>&1 &
cron_pid=$!
for _ in $(seq 300); do
  [[ "$(actions | jq length)" -ge 2 ]] && break
  kill -0 "$cron_pid" 2>/dev/null || { cat "$work/cron.out"; fail "the cron line's watcher ended early"; }
  sleep 0.1
done
a=$(actions)
[[ "$(jq -c '[.[1] | {request_id, user, action}]' <<<"$a")" == '[{"request_id":"DBSafe_31","user":"svc_pam_level2","action":"confirm"}]' && "$(jq length <<<"$a")" -eq 2 ]] \
  || { echo "$a"; cat "$work/cron.out"; fail "the cron line's watcher did not confirm DBSafe_31 at level 2 (svc_pam_level2)"; }
for f in watcher.lock watcher.pid; do as_root test -e "/run/pam-approval/$f" || fail "no /run/pam-approval/$f"; done
wpid=$(as_root cat /run/pam-approval/watcher.pid)
[[ "$wpid" =~ ^[0-9]+$ && "$(stat -c %U "/proc/$wpid" 2>/dev/null)" == pamapproval ]] || fail "the pid file names $wpid, not a watcher run by pamapproval"
step "cron line (\`$cron_cmd\`): DBSafe_31 confirmed at level 2, watcher $wpid, lock and pid in /run/pam-approval"
# The next minute's cron run returns at once; a by-hand pass meets the watcher's lock (75).
rc=0; cron_run 10 >/dev/null 2>&1 || rc=$?
[[ $rc -eq 0 ]] || fail "a second cron run exited $rc while the watcher runs"
run_pam 75 -- check-approval-request --once
step "while it runs: the next cron run exits 0, a by-hand --once exits 75 (one lock per mailbox)"
as_root kill -TERM "$wpid"
rc=0; wait "$cron_pid" || rc=$?
cron_pid=""
[[ $rc -eq 0 ]] || { cat "$work/cron.out"; fail "the cron line's watcher exited $rc after SIGTERM"; }
run_pam 0 -- check-approval-request --status
grep -q "^OK: 2 mails answered" <<<"$out" || fail "--status after cron: $out"
step "--status: $out"
[[ "$(confirmed_levels)" == 1,2 ]] || { as_root cat "$log"; fail "the audit lines in $log confirm levels $(confirmed_levels), not 1,2"; }
step "audit lines in $log: DBSafe_31 confirmed at levels 1,2"

# --- purge: the configuration goes; secrets, journal, logs and the user stay (README, Install)
as_root dpkg --purge pam-approval >"$work/purge.out" 2>&1 || { cat "$work/purge.out"; fail "dpkg --purge failed"; }
[[ ! -e /usr/bin/check-approval-request ]] || fail "the binaries stay after purge"
[[ ! -e $cfg ]] || fail "$cfg stays after purge"
for f in /etc/pam-approval/secrets/pvwa-level1 /etc/pam-approval/pvwa-ca.pem /var/lib/pam-approval/journal.sqlite "$log"; do
  as_root test -f "$f" || fail "purge removed $f (the README says it stays)"
done
getent passwd pamapproval >/dev/null || fail "purge removed the pamapproval user (the README says it stays)"
grep -q "shred -u /etc/pam-approval/secrets/\*" "$work/purge.out" || { cat "$work/purge.out"; fail "purge does not say what to shred"; }
step "purged: the configuration gone; secrets, CA file, journal, log and user kept as the README says"
step "passed in $(( $(date +%s) - t0 )) s after the build"

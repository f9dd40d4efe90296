#!/usr/bin/env bash
# The packages (scripts/package.sh) as an administrator gets them: the .deb is built, installed
# on this machine, looked at (the tools run, `man check-approval-request` shows the page, the
# installed unit passes `systemd-analyze verify`, the monitoring files are in place (the alert
# rules pass `promtool check rules`), the service user exists, the configuration is
# 0640 root:pamapproval and survives a reinstall with the administrator's edit), then removed;
# the .rpm is built and its file list, modes, owners and scriptlets are checked.
set -euo pipefail
cd "$(dirname "$0")/../.."
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
for tool in dpkg-deb rpm man systemd-analyze promtool; do
  command -v "$tool" >/dev/null || { echo "$tool is required (scripts/deps/apt.txt)"; exit 1; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# scripts/test.sh builds the packages once for both package checks ($PAMTEST_PACKAGES).
pkg_dir="${PAMTEST_PACKAGES:-$out}"
if ! ls "$pkg_dir"/pam-approval_*.deb "$pkg_dir"/pam-approval-*.rpm >/dev/null 2>&1; then
  PACKAGE_OUT="$pkg_dir" scripts/package.sh >/dev/null
fi
deb=$(ls "$pkg_dir"/pam-approval_*.deb)
rpm_file=$(ls "$pkg_dir"/pam-approval-*.rpm)
tools="check-approval-request first-level-approve second-level-approve get-inco-req validate-ticket remote-access"
fail() { echo "packages: $*"; exit 1; }
# (Under pipefail a `| grep -q` fails when grep exits at its first match while the writer still
# writes: the writer dies of SIGPIPE. Pipelines here let grep read everything.)

# --- the .deb: contents
list=$(dpkg-deb -c "$deb" | awk '{print $1, $2, $6}')
for t in $tools; do
  grep -qE "^-rwxr-xr-x (root/root|0/0) \./usr/bin/$t$" <<<"$list" || fail ".deb lacks /usr/bin/$t"
  grep -q "./usr/share/man/man1/$t.1.gz$" <<<"$list" || fail ".deb lacks the man page of $t"
  grep -q "./usr/share/bash-completion/completions/$t$" <<<"$list" || fail ".deb lacks the bash completion of $t"
  grep -q "./usr/share/zsh/vendor-completions/_$t$" <<<"$list" || fail ".deb lacks the zsh completion of $t"
  grep -q "./usr/share/fish/vendor_completions.d/$t.fish$" <<<"$list" || fail ".deb lacks the fish completion of $t"
done
monitoring="/usr/share/pam-approval/monitoring/pam-approval.rules.yml /usr/share/pam-approval/monitoring/pam-approval.dashboard.json"
for f in ./usr/lib/systemd/system/pam-approval.service ./usr/lib/systemd/system/pam-approval-once.timer \
  ./etc/logrotate.d/pam-approval ./usr/lib/pam-approval/check_approval_request.sh ./usr/share/doc/pam-approval/docs/monitoring.md; do
  grep -q " $f$" <<<"$list" || fail ".deb lacks $f"
done
for f in $monitoring; do
  grep -qE "^-rw-r--r-- (root/root|0/0) \.$f$" <<<"$list" || fail ".deb lacks $f (0644)"
done
grep -qE "^-rw-r----- (root/root|0/0) \./etc/pam-approval/config.toml$" <<<"$list" || fail ".deb: config.toml is not 0640"
if grep -qE "pam-sim|pam-bench" <<<"$list"; then fail ".deb holds the simulator or the benchmark"; fi
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -x /etc/pam-approval/config.toml >/dev/null \
  || fail "config.toml is not a conffile"

# --- the .deb: installed, used, reinstalled, removed
if dpkg-query -W -f='${Status}' pam-approval 2>/dev/null | grep -q "install ok installed"; then
  fail "pam-approval is already installed on this machine; the check would remove it"
fi
cleanup_pkg() { "${sudo_cmd[@]}" dpkg --purge pam-approval >/dev/null 2>&1 || true; rm -rf "$out"; }
trap cleanup_pkg EXIT
"${sudo_cmd[@]}" dpkg -i "$deb" >/dev/null
for t in $tools; do
  [[ "$(command -v "$t")" == "/usr/bin/$t" ]] || fail "$t is not /usr/bin/$t after install"
  "/usr/bin/$t" --version | grep "^$t " >/dev/null || fail "$t --version"
done
MANWIDTH=100 man check-approval-request 2>/dev/null | grep "Watch the approval mailbox" >/dev/null \
  || fail "man check-approval-request does not show the page"
man -w remote-access-invite >/dev/null 2>&1 || fail "no man page for remote-access-invite"
# The monitoring files as installed: the rules load in Prometheus, the dashboard is the one shipped.
out_rules=$(promtool check rules /usr/share/pam-approval/monitoring/pam-approval.rules.yml 2>&1) \
  || { echo "$out_rules"; fail "the installed alert rules fail promtool check rules"; }
cmp -s /usr/share/pam-approval/monitoring/pam-approval.dashboard.json examples/monitoring/pam-approval.dashboard.json \
  || fail "the installed dashboard is not examples/monitoring/pam-approval.dashboard.json"
getent passwd pamapproval >/dev/null || fail "no pamapproval user"
[[ "$(stat -c '%a %U:%G' /etc/pam-approval/config.toml)" == "640 root:pamapproval" ]] \
  || fail "config.toml is $(stat -c '%a %U:%G' /etc/pam-approval/config.toml), not 640 root:pamapproval"
[[ "$(stat -c '%a %U:%G' /etc/pam-approval)" == "750 root:pamapproval" ]] || fail "/etc/pam-approval is not 750 root:pamapproval"
[[ -d /var/log/pam-approval ]] || fail "no /var/log/pam-approval"
if ! v=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no /usr/lib/systemd/system/pam-approval.service 2>&1); then
  echo "$v"; fail "the installed unit fails systemd-analyze verify"
fi
if grep -q "pam-approval.service" <<<"$v"; then echo "$v"; fail "systemd-analyze warns about the installed unit"; fi
# The shipped configuration loads (a configuration error would exit 78; no journal yet is 2).
code=0; st=$(/usr/bin/check-approval-request --config /etc/pam-approval/config.toml --status 2>&1) || code=$?
[[ $code -eq 2 && "$st" == "CRITICAL: no journal at "* ]] || fail "the shipped configuration does not load ($code): $st"
# An administrator's edit survives a reinstall (dpkg keeps a changed conffile).
echo "# edited by the administrator" | "${sudo_cmd[@]}" tee -a /etc/pam-approval/config.toml >/dev/null
"${sudo_cmd[@]}" dpkg -i --force-confold "$deb" >/dev/null
grep -q "edited by the administrator" /etc/pam-approval/config.toml || fail "the reinstall overwrote the configuration"
"${sudo_cmd[@]}" dpkg --purge pam-approval >/dev/null
[[ ! -e /usr/bin/check-approval-request ]] || fail "the binaries stay after removal"

# --- the .rpm: built; file list, modes, owners, config flags and scriptlets
rlist=$(rpm -qlp "$rpm_file" 2>/dev/null)
for t in $tools; do
  grep -qx "/usr/bin/$t" <<<"$rlist" || fail ".rpm lacks /usr/bin/$t"
  grep -qx "/usr/share/man/man1/$t.1" <<<"$rlist" || fail ".rpm lacks the man page of $t"
  grep -qx "/usr/share/bash-completion/completions/$t" <<<"$rlist" || fail ".rpm lacks the bash completion of $t"
done
for f in /usr/lib/systemd/system/pam-approval.service /etc/logrotate.d/pam-approval /etc/pam-approval/config.toml $monitoring; do
  grep -qx "$f" <<<"$rlist" || fail ".rpm lacks $f"
done
if grep -qE "pam-sim|pam-bench" <<<"$rlist"; then fail ".rpm holds the simulator or the benchmark"; fi
modes=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm_file" 2>/dev/null)
grep -qx -- "-rw-r----- root:pamapproval /etc/pam-approval/config.toml" <<<"$modes" || { grep config.toml <<<"$modes"; fail ".rpm: config.toml is not 0640 root:pamapproval"; }
grep -qx -- "-rwxr-xr-x root:root /usr/bin/check-approval-request" <<<"$modes" || fail ".rpm: the watcher is not 0755 root:root"
for f in $monitoring; do
  grep -qx -- "-rw-r--r-- root:root $f" <<<"$modes" || fail ".rpm: $f is not 0644 root:root"
done
flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm_file" 2>&1) || fail ".rpm: reading its file flags failed: $flags"
grep -qx "cn /etc/pam-approval/config.toml" <<<"$flags" \
  || { grep config.toml <<<"$flags"; fail ".rpm: config.toml is not %config(noreplace)"; }
rpm -qp --scripts "$rpm_file" 2>/dev/null | grep "useradd --system" >/dev/null || fail ".rpm does not create the service user"
echo "packages: $(basename "$deb") installed, checked and removed; $(basename "$rpm_file") holds $(wc -l <<<"$rlist") files, checked"

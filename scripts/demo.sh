#!/usr/bin/env bash
# The README's demo: builds the tools, starts pam-sim (PVWA stand-in over HTTPS with its own test
# CA) on an embedded scenario, and runs what an operator does by hand — list what waits,
# approve at level 1, see the request move to level 2, approve at level 2, look up who confirmed
# and when, a failed confirm, and a shell pipeline. Nothing leaves this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@" || echo "(exit code $?)"; }

for tool in cargo jq curl; do
  command -v "$tool" >/dev/null || { echo "the demo needs $tool (Debian: apt-get install $tool)" >&2; exit 69; }
done
echo "building…" >&2
cargo build -q --bins
bin="$PWD/target/debug"
export PATH="$bin:$PATH"

work=$(mktemp -d)
cleanup() { [[ -n "${sim_pid:-}" ]] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

pam-sim --scenario examples/demo/scenario.toml --bind 127.0.0.1:0 --tls-dir "$work/tls" \
  --url-file "$work/url" >"$work/pam-sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do [[ -s "$work/url" ]] && break; sleep 0.05; done
[[ -s "$work/url" ]] || { cat "$work/pam-sim.log"; echo "pam-sim did not start" >&2; exit 69; }
url=$(cat "$work/url")

# Passwords live in owner-only files, referenced from the config (never on the command line).
umask 077
printf 'Level1-Demo-Pass' > "$work/level1.pw"
printf 'Level2-Demo-Pass' > "$work/level2.pw"
printf 'Lookup-Demo-Pass' > "$work/lookup.pw"
cat > "$work/config.toml" <<CONF
[pvwa]
url = "$url"
ca_bundle = "$work/tls/ca.crt"
[accounts.level1]
username = "svc_pam_level1"
password = "file:$work/level1.pw"
[accounts.level2]
username = "svc_pam_level2"
password = "file:$work/level2.pw"
[accounts.lookup]
username = "svc_pam_lookup"
password = "file:$work/lookup.pw"
CONF
export APPROVAL_CONFIG="$work/config.toml"
echo "pam-sim runs at $url; config in $APPROVAL_CONFIG"

echo; echo "# 1. What the watcher reads from forwarded mails, and why it would act or refuse (no server):"
run check-approval-request --config examples/mails/config.toml --explain examples/mails/outlook-desktop-en.eml
say "check-approval-request --explain … --json  (a forged internal header, a DMARC failure, an Outlook-for-iOS forward)"
for m in forged-duplicate-authas dmarc-fail outlook-ios; do
  check-approval-request --config examples/mails/config.toml --explain "examples/mails/$m.eml" --json \
    | jq -c '{mail: "'"$m"'", actionable, request_id, forwarder, refusal}' || true
done

echo; echo "# 2. The operator's single-request tools against pam-sim's PVWA:"
run get-inco-req --waiting --level 1
run first-level-approve InfraSafe_12 --on-behalf-of bob@example.test
run get-inco-req InfraSafe_12
run second-level-approve InfraSafe_12 --on-behalf-of carol@example.test
say "get-inco-req --json InfraSafe_12 | jq '{status_title, confirmed_by: [.confirmed_by[] | {name, members, reason, at: .time.utc}]}'"
get-inco-req --json InfraSafe_12 | jq '{status_title, confirmed_by: [.confirmed_by[] | {name, members, reason, at: .time.utc}]}'
echo; echo "# a failed confirm (the request expired) exits 1 and shows the request:"
run first-level-approve InfraSafe_14
echo; echo "# a pipeline: everything waiting at level 1, approved in one logon:"
say "get-inco-req --waiting --level 1 --json | jq -r .request_id | first-level-approve - --reason 'approved in batch'"
get-inco-req --waiting --level 1 --json | jq -r .request_id | first-level-approve - --reason 'approved in batch'
echo; echo "# what PVWA (pam-sim) recorded:"
curl -fsS --cacert "$work/tls/ca.crt" "$url/sim/pvwa/actions" | jq -c '.[] | {request_id, level, user, reason}'

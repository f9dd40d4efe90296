#!/usr/bin/env bash
# The README's demo: builds the tools, starts pam-sim (PVWA stand-in over HTTPS with its own test
# CA) on an embedded scenario, and runs what an operator does by hand — list what waits,
# approve at level 1, see the request move to level 2, approve at level 2, look up who confirmed
# and when, a failed confirm, and a shell pipeline. Then the watcher: a local OpenLDAP
# (scripts/start-slapd.sh) as the directory, pam-sim as PVWA + Exchange + ServiceNow
# (examples/demo/watcher-scenario.toml), forwarded mails (examples/demo/mails/) delivered to the
# approval mailbox, `check-approval-request --once`, and what each forwarder got back. Last, the
# same watcher on Exchange Online: pam-sim plays Microsoft Graph and Entra ID's token endpoint,
# the app signs in with a certificate, and the same mails are approved through Graph. Then the
# single-request tools on Privilege Cloud: pam-sim plays CyberArk Identity and a Bearer-only
# PVWA, and the accounts sign in with platform tokens (docs/privilege-cloud.md).
# Nothing leaves this machine; servers and temporary files are removed on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@" || echo "(exit code $?)"; }

for tool in cargo jq curl; do
  command -v "$tool" >/dev/null || { echo "the demo needs $tool (Debian: apt-get install $tool)" >&2; exit 69; }
done
# The watcher part needs OpenLDAP's slapd and ldap-utils (run by scripts/start-slapd.sh).
if ! command -v ldapadd >/dev/null || ! { command -v slapd >/dev/null || [[ -x /usr/sbin/slapd ]]; }; then
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing slapd and ldap-utils (apt-get)…" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slapd ldap-utils >/dev/null
    # The package starts a system instance; the demo runs its own.
    if command -v systemctl >/dev/null 2>&1; then systemctl stop slapd >/dev/null 2>&1 || true; fi
    pkill -x slapd -u 0 2>/dev/null || true
  else
    echo "the demo needs OpenLDAP: sudo apt-get install slapd ldap-utils (or sudo scripts/install-test-deps.sh)" >&2
    exit 69
  fi
fi
echo "building…" >&2
cargo build -q --bins
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
export PATH="$bin:$PATH"

work=$(mktemp -d)
cleanup() {
  for p in "${sim_pid:-}" "${sim2_pid:-}" "${sim3_pid:-}" "${sim4_pid:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null; done
  [[ -d "$work/slapd" ]] && scripts/start-slapd.sh --stop "$work/slapd" >/dev/null 2>&1
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
echo; echo "# rejecting by hand: --reject on the same tools (dry run first, then for real):"
run first-level-approve --reject --dry-run InfraSafe_13 --on-behalf-of bob@example.test --reason 'no change window'
run first-level-approve --reject InfraSafe_13 --on-behalf-of bob@example.test --reason 'no change window'
echo; echo "# a pipeline: everything waiting at level 1, approved in one logon:"
say "get-inco-req --waiting --level 1 --json | jq -r .request_id | first-level-approve - --reason 'approved in batch'"
get-inco-req --waiting --level 1 --json | jq -r .request_id | first-level-approve - --reason 'approved in batch'
echo; echo "# what PVWA (pam-sim) recorded:"
curl -fsS --cacert "$work/tls/ca.crt" "$url/sim/pvwa/actions" | jq -c '.[] | {request_id, level, user, reason}'

echo; echo "# 3. The watcher: forwarded mails in the approval mailbox, one pass of check-approval-request."
# A local OpenLDAP on a free loopback port (AD look-alike data: scripts/ldap/ad-data.ldif).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ldap_out=""
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  port_free "$port" || continue
  if ldap_out=$(PORT=$port scripts/start-slapd.sh "$work/slapd" 2>"$work/slapd.err"); then break; fi
  scripts/start-slapd.sh --stop "$work/slapd" >/dev/null 2>&1 || true
  rm -rf "$work/slapd"; ldap_out=""
done
[[ -n "$ldap_out" ]] || { cat "$work/slapd.err" >&2; echo "slapd did not start" >&2; exit 69; }
ldap_url=$(sed -n 's/^url=//p' <<<"$ldap_out")
ldap_ca=$(sed -n 's/^ca=//p' <<<"$ldap_out")

pam-sim --scenario examples/demo/watcher-scenario.toml --bind 127.0.0.1:0 --tls-dir "$work/tls2" \
  --url-file "$work/url2" >"$work/pam-sim2.log" 2>&1 &
sim2_pid=$!
for _ in $(seq 100); do [[ -s "$work/url2" ]] && break; sleep 0.05; done
[[ -s "$work/url2" ]] || { cat "$work/pam-sim2.log"; echo "pam-sim did not start" >&2; exit 69; }
url2=$(cat "$work/url2")
ca2="$work/tls2/ca.crt"
echo "slapd at $ldap_url, pam-sim (PVWA, Exchange, ServiceNow) at $url2"

# examples/demo/watcher-config.toml with this run's addresses; passwords through env: references.
export APPROVAL_CONFIG="$PWD/examples/demo/watcher-config.toml"
export APPROVAL__PVWA__URL="$url2" APPROVAL__PVWA__CA_BUNDLE="$ca2"
export APPROVAL__MAILBOX__URL="$url2/EWS/Exchange.asmx" APPROVAL__MAILBOX__CA_BUNDLE="$ca2"
export APPROVAL__TICKETING__SERVICENOW__URL="$url2" APPROVAL__TICKETING__SERVICENOW__CA_BUNDLE="$ca2"
export APPROVAL__DIRECTORY__URL="$ldap_url" APPROVAL__DIRECTORY__CA_BUNDLE="$ldap_ca"
export APPROVAL__WATCHER__STATE_DIR="$work/state"
export DEMO_LEVEL1_PASSWORD=Level1-Demo-Pass DEMO_LEVEL2_PASSWORD=Level2-Demo-Pass \
  DEMO_LOOKUP_PASSWORD=Lookup-Demo-Pass DEMO_MAILBOX_PASSWORD=Mailbox-Demo-Pass \
  DEMO_LDAP_PASSWORD=svcpw DEMO_SN_PASSWORD=Ticketing-Demo-Pass

admin() { curl -fsS --cacert "$ca2" "$@"; }
deliver() {
  local m
  for m in "$@"; do
    printf '  %-34s %s\n' "$(basename "$m")" "$(sed -n 's/^From: \(.*\)\r$/\1/p' "$m" | head -1)"
    admin -X POST --data-binary @"$m" "$url2/sim/ews/deliver" >/dev/null
  done
}

echo; echo "# first the site check: read-only, everything the watcher relies on (docs/site-check.md)"
run check-approval-request --check-site --check-sender bob@example.test --safe DBSafe --level 1

echo; echo "# bob forwards lfischer's DBSafe request 31 (waiting at level 1; she is lena.fischer@ in the directory):"
deliver examples/demo/mails/01-*.eml
run check-approval-request --once
echo; echo "# the same request, now at level 2, forwarded by alice; and the refusals:"
deliver examples/demo/mails/0[2-9]-*.eml
run check-approval-request --once
echo; echo "# bob rejects dave's DBSafe request 37 by mail: \"Reject: …\" as the first word of his own text"
echo "# (--explain shows the decision and where it was read; the watcher rejects with the level-1 account):"
check-approval-request --explain examples/demo/mails/10-reject.eml --json \
  | jq -c '{actionable, request_id, decision: .decision.decision, word: .decision.word}' || true
deliver examples/demo/mails/10-*.eml
run check-approval-request --once
echo; echo "# a second pass finds nothing new:"
run check-approval-request --once
echo; echo "# the watcher's state from its journal, as a Nagios check (exit 0 OK, 1 WARNING, 2 CRITICAL):"
run check-approval-request --status

echo; echo "# the reply each forwarder got (pam-sim's sent mail):"
admin "$url2/sim/ews/sent" | jq -r '.[] | "--- to \(.to | join(", "))\(if (.cc | length) > 0 then "  cc \(.cc | join(", "))" else "" end)\nSubject: \(.subject)\n\(.body | gsub("\r"; "") | split("\n") | map(select(length > 0)) | .[0:4] | join("\n"))"'
echo; echo "# what PVWA (pam-sim) recorded: one confirm per approved level, one reject, nothing else:"
admin "$url2/sim/pvwa/actions" | jq -c '.[] | {request_id, level, user, action, reason}'
echo; echo "# the approval mailbox's folders (every mail filed, none deleted, the inbox empty):"
admin "$url2/sim/ews/folders" | jq -c '.folders[] | select((.items | length) > 0 and .name != "Sent Items") | {folder: .name, mails: [.items[].message_id]}'
echo "inbox: $(admin "$url2/sim/ews/folders" | jq '[.folders[] | select(.distinguished == "inbox") | .items[]] | length') mail(s)"

echo; echo "# 4. The same watcher on Exchange Online, through Microsoft Graph (docs/graph.md):"
# A fresh pam-sim with the same PVWA and a Graph mailbox; the app's certificate and key are
# generated by pam-sim into the work directory (owner-only).
tenant=5a1f0000-0000-4000-8000-00000000de70
app=0c1e0000-0000-4000-8000-00000000de70
{ cat examples/demo/watcher-scenario.toml; printf '\n[graph]\ntenant_id = "%s"\nmailboxes = ["pam-approvals@example.test"]\n[[graph.apps]]\nclient_id = "%s"\ngenerate_certificate = "%s"\nmailboxes = ["pam-approvals@example.test"]\n' \
    "$tenant" "$app" "$work/graph-app"; } > "$work/graph-scenario.toml"
pam-sim --scenario "$work/graph-scenario.toml" --bind 127.0.0.1:0 --tls-dir "$work/tls3" \
  --url-file "$work/url3" >"$work/pam-sim3.log" 2>&1 &
sim3_pid=$!
for _ in $(seq 100); do [[ -s "$work/url3" ]] && break; sleep 0.05; done
[[ -s "$work/url3" ]] || { cat "$work/pam-sim3.log"; echo "pam-sim did not start" >&2; exit 69; }
url3=$(cat "$work/url3")
ca3="$work/tls3/ca.crt"
# The demo config with its EWS [mailbox] replaced by a Graph one.
sed '/^\[mailbox\]/,/^$/d' examples/demo/watcher-config.toml > "$work/graph-config.toml"
cat >> "$work/graph-config.toml" <<CONF

[mailbox]
kind = "graph"
url = "$url3/v1.0"
mailbox = "pam-approvals@example.test"
ca_bundle = "$ca3"
[mailbox.graph]
tenant_id = "$tenant"
client_id = "$app"
authority = "$url3"
certificate = "file:$work/graph-app.crt"
private_key = "file:$work/graph-app.key"
CONF
export APPROVAL_CONFIG="$work/graph-config.toml"
export APPROVAL__PVWA__URL="$url3" APPROVAL__PVWA__CA_BUNDLE="$ca3"
export APPROVAL__TICKETING__SERVICENOW__URL="$url3" APPROVAL__TICKETING__SERVICENOW__CA_BUNDLE="$ca3"
export APPROVAL__WATCHER__STATE_DIR="$work/state3"
unset APPROVAL__MAILBOX__URL APPROVAL__MAILBOX__CA_BUNDLE
admin3() { curl -fsS --cacert "$ca3" "$@"; }
run check-approval-request --check-mailbox
deliver3() {
  local m
  for m in "$@"; do
    admin3 -X POST --data-binary @"$m" "$url3/sim/graph/deliver?mailbox=pam-approvals@example.test" >/dev/null
  done
}
# In the same order as on EWS: bob's level-1 forward first. alice approves at both levels of
# DBSafe (DB_PAMapprover and DB_PAMlevel2), so had her mail come first, while the request waits
# at level 1, she would be told to use the portal (use_the_portal: one person, one confirmation).
deliver3 examples/demo/mails/01-*.eml
echo "  (bob's forward delivered to the Graph mailbox)"
run check-approval-request --once
deliver3 examples/demo/mails/0[2-9]-*.eml examples/demo/mails/10-*.eml
echo "  (the nine other forwarded mails delivered, bob's reject among them)"
run check-approval-request --once
echo; echo "# replies sent through Graph (subjects), and the mailbox's folders:"
admin3 "$url3/sim/graph/sent" | jq -r '.[] | "  to \(.to | join(", ")): \(.subject)"'
admin3 "$url3/sim/graph/folders?mailbox=pam-approvals@example.test" | jq -c '.[] | select(.total > 0) | {folder: .name, mails: .total, unread: .unread}'
echo "Graph: $(admin3 "$url3/sim/graph/stats" | jq -c '{tokens: .granted_certificate, calls: .calls}')"

echo; echo "# 5. The single-request tools on Privilege Cloud (docs/privilege-cloud.md): no PVWA logon;"
echo "#    each account gets a platform token from CyberArk Identity and sends it as Bearer."
for v in $(compgen -e | grep '^APPROVAL__' || true); do unset "$v"; done
pam-sim --scenario examples/demo/scenario.toml --privilege-cloud --bind 127.0.0.1:0 \
  --tls-dir "$work/tls4" --url-file "$work/url4" >"$work/pam-sim4.log" 2>&1 &
sim4_pid=$!
for _ in $(seq 100); do [[ -s "$work/url4" ]] && break; sleep 0.05; done
[[ -s "$work/url4" ]] || { cat "$work/pam-sim4.log"; echo "pam-sim did not start" >&2; exit 69; }
url4=$(cat "$work/url4")
# The same accounts; pam-sim serves the Privilege Cloud API and the Identity tenant on one
# loopback address (a real tenant: https://<subdomain>.privilegecloud.cyberark.cloud and
# https://<tenant-id>.id.cyberark.cloud).
sed -e "s|^url = .*|url = \"$url4\"\nauth_method = \"identity\"\nidentity_url = \"$url4\"|" \
  -e "s|^ca_bundle = .*|ca_bundle = \"$work/tls4/ca.crt\"|" "$work/config.toml" > "$work/pcloud-config.toml"
export APPROVAL_CONFIG="$work/pcloud-config.toml"
say "head -5 $APPROVAL_CONFIG"
head -5 "$APPROVAL_CONFIG"
run get-inco-req --waiting --level 1
run first-level-approve InfraSafe_12 --on-behalf-of bob@example.test
run second-level-approve InfraSafe_12 --on-behalf-of carol@example.test
echo; echo "# a wrong secret is refused by Identity (exit 77), and nothing of it is shown:"
printf 'not-the-secret' > "$work/wrong.pw"
APPROVAL__ACCOUNTS__LEVEL1__PASSWORD="file:$work/wrong.pw" run first-level-approve InfraSafe_13
echo; echo "# what Privilege Cloud (pam-sim) recorded, and how the accounts signed in:"
curl -fsS --cacert "$work/tls4/ca.crt" "$url4/sim/pvwa/actions" | jq -c '.[] | {request_id, level, user}'
curl -fsS --cacert "$work/tls4/ca.crt" "$url4/sim/pvwa/sessions" | jq -c '{logons, platform_tokens, platform_token_refusals}'

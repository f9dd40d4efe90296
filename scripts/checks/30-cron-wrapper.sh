#!/usr/bin/env bash
# scripts/check_approval_request.sh (the cron wrapper): while one watcher holds the lock, a
# second invocation exits 0 at once without starting another; the watcher gets --config (the
# installed path by default), --log-file, --pid-file and the wrapper's own arguments; once it has
# ended, the next invocation starts one; a run directory it cannot create is named (exit 78); the
# package ships the tmpfiles.d entry that creates /run/pam-approval for the service user.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v flock >/dev/null || { echo "flock not found (Debian package util-linux)"; exit 1; }
tmp=$(mktemp -d)
first=""
cleanup() { [[ -n "$first" ]] && kill "$first" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# A stand-in watcher: records each start and its arguments, then holds on for a while.
cat > "$tmp/fake-watcher" <<'FAKE'
#!/usr/bin/env bash
echo "$*" >> "$FAKE_STARTS"
sleep "${FAKE_SLEEP:-3}"
FAKE
chmod +x "$tmp/fake-watcher"
export PAM_APPROVAL_BIN="$tmp/fake-watcher" FAKE_STARTS="$tmp/starts"
export PAM_APPROVAL_LOCK="$tmp/run/watcher.lock" PAM_APPROVAL_PID="$tmp/run/watcher.pid"
export PAM_APPROVAL_LOG="$tmp/log/pam-approval.log"
unset APPROVAL_CONFIG
starts() { [[ -f "$tmp/starts" ]] && wc -l < "$tmp/starts" || echo 0; }
fail() { echo "cron wrapper: $*"; exit 1; }

scripts/check_approval_request.sh --once &
first=$!
for _ in $(seq 100); do [[ $(starts) -ge 1 ]] && break; sleep 0.05; done
[[ $(starts) -eq 1 ]] || fail "the first invocation did not start the watcher"
grep -qxF -- "--config /etc/pam-approval/config.toml --log-file $PAM_APPROVAL_LOG --pid-file $PAM_APPROVAL_PID --once" "$tmp/starts" \
  || fail "unexpected watcher arguments: $(cat "$tmp/starts")"

# The second invocation, while the first holds the lock: exit 0, at once, nothing started.
t0=$(date +%s%N)
rc=0; FAKE_SLEEP=0 scripts/check_approval_request.sh --once || rc=$?
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ $rc -eq 0 ]] || fail "the second invocation exited $rc, not 0"
(( elapsed_ms < 1500 )) || fail "the second invocation waited ${elapsed_ms} ms for the lock"
[[ $(starts) -eq 1 ]] || fail "a second watcher was started while the first ran"
kill -0 "$first" 2>/dev/null || fail "the first watcher ended too early for the check to mean anything"

# Once the first has ended, the lock is free again: the next invocation starts a watcher.
wait "$first"; first=""
FAKE_SLEEP=0 scripts/check_approval_request.sh --once || fail "the third invocation failed"
[[ $(starts) -eq 2 ]] || fail "no watcher was started after the first one ended"

# $APPROVAL_CONFIG names another file: passed on as --config.
APPROVAL_CONFIG="$tmp/site.toml" FAKE_SLEEP=0 scripts/check_approval_request.sh --once \
  || fail "the invocation with APPROVAL_CONFIG failed"
tail -n1 "$tmp/starts" | grep -q -- "^--config $tmp/site.toml " \
  || fail "APPROVAL_CONFIG not passed as --config: $(tail -n1 "$tmp/starts")"

# A run directory that cannot be created (no tmpfiles.d entry, /run not writable): named, exit 78,
# no watcher started.
touch "$tmp/not-a-dir"
rc=0; out=$(PAM_APPROVAL_LOCK="$tmp/not-a-dir/run/watcher.lock" FAKE_SLEEP=0 \
  scripts/check_approval_request.sh --once 2>&1) || rc=$?
[[ $rc -eq 78 ]] || fail "an uncreatable run directory exited $rc, not 78: $out"
grep -qF "$tmp/not-a-dir/run is missing or not writable" <<<"$out" || fail "the directory is not named: $out"
[[ $(starts) -eq 3 ]] || fail "a watcher was started without its run directory"

# The package's tmpfiles.d entry: /run/pam-approval for pamapproval, shipped in both packages.
conf=crates/approval-cli/dist/tmpfiles/pam-approval.conf
grep -qxF "d /run/pam-approval 0750 pamapproval pamapproval -" "$conf" || fail "$conf: no entry for /run/pam-approval"
[[ $(grep -c "dist/tmpfiles/pam-approval.conf" crates/approval-cli/Cargo.toml) -eq 2 ]] \
  || fail "the tmpfiles.d entry is not in both packages' assets"
echo "scripts/check_approval_request.sh: ok (second invocation exited 0 in ${elapsed_ms} ms)"

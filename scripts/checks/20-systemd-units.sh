#!/usr/bin/env bash
# The shipped systemd units must pass `systemd-analyze verify` (comments on directive lines,
# typos in directive names and bad calendar specs are caught here).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v systemd-analyze >/dev/null; then
  if [[ -n "${PAMTEST_REQUIRE_SERVERS:-}" ]]; then echo "systemd-analyze is required"; exit 1; fi
  echo "skipping: systemd-analyze not installed"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# verify wants ExecStart binaries to exist: check copies that point at /bin/true.
for u in examples/systemd/*.service examples/systemd/*.timer; do
  sed "s|^ExecStart=/usr/bin/check-approval-request|ExecStart=/bin/true|" "$u" > "$tmp/$(basename "$u")"
done
cd "$tmp"
verify() { SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$@" 2>&1; }
for u in ./*.service ./*.timer; do
  if ! out=$(verify "$u"); then echo "$out"; echo "$u: systemd-analyze verify failed"; exit 1; fi
  # Warnings about our own files fail the check too (a user that does not exist here is fine).
  if grep -E "$(basename "$u")" <<<"$out" | grep -vqE "User|Group|pamapproval"; then echo "$out"; exit 1; fi
done
# The check must be able to fail: a trailing comment on a directive line is an error.
mkdir broken
cp pam-approval-once.service broken/
sed 's|^OnCalendar=\*:\*:00|OnCalendar=*:*:00  # every minute|' pam-approval-once.timer > broken/pam-approval-once.timer
if verify broken/pam-approval-once.timer >/dev/null; then
  echo "systemd-analyze accepted a broken unit: the check is not effective"; exit 1
fi
echo "examples/systemd: ok"

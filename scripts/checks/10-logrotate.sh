#!/usr/bin/env bash
# The shipped logrotate configuration must parse without errors (logrotate -d exits 1 on an
# unknown directive such as a misspelt `missingok`).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/log"
# Point the config at a scratch log directory; check it as it ships otherwise.
sed "s|/var/log/pam-approval|$tmp/log|; s|^    su .*|    su root root|; s|^    create .*|    create 0640 root root|" logrotate/pam-approval > "$tmp/pam-approval.conf"
echo "line" > "$tmp/log/pam-approval.log"
out=$(logrotate -d -s "$tmp/state" "$tmp/pam-approval.conf" 2>&1) || { echo "$out"; echo "logrotate -d failed"; exit 1; }
if grep -qiE "^error|unknown option" <<<"$out"; then echo "$out"; exit 1; fi
# And a broken copy must fail, or the check proves nothing.
sed 's/missingok/misingok/' "$tmp/pam-approval.conf" > "$tmp/broken.conf"
rm -f "$tmp/log/pam-approval.log"
if logrotate -d -s "$tmp/state2" "$tmp/broken.conf" >/dev/null 2>&1; then
  echo "logrotate accepted a misspelt directive: the check is not effective"; exit 1
fi
echo "logrotate/pam-approval: ok"

#!/usr/bin/env bash
# The monitoring files the packages ship (examples/monitoring/): the Prometheus alert rules pass
# `promtool check rules` and their unit tests (`promtool test rules`: each alert firing and
# silent), the Grafana dashboard is JSON whose queries parse and name only known metrics
# (scripts/checks/monitoring/metric-names.txt), every alert's runbook section exists in
# docs/monitoring.md. Then broken copies must fail, or the check proves nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v promtool >/dev/null || { echo "promtool is required (the Debian package prometheus, scripts/deps/apt.txt)"; exit 1; }
py="${PAMTEST_VENV:-$PWD/.venv-test}/bin/python"
[[ -x "$py" ]] || { echo "missing the test venv: run scripts/install-test-deps.sh"; exit 1; }
rules=examples/monitoring/pam-approval.rules.yml
dashboard=examples/monitoring/pam-approval.dashboard.json
tests=scripts/checks/monitoring/pam-approval.rules.test.yml
names=scripts/checks/monitoring/metric-names.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Everything about the files, given their paths; prints what promtool said when it fails.
check() { # rules tests dashboard
  local out
  out=$(promtool check rules "$1" 2>&1) || { echo "$out"; return 1; }
  out=$(cd "$(dirname "$2")" && promtool test rules "$(basename "$2")" 2>&1) || { echo "$out"; return 1; }
  "$py" scripts/checks/monitoring/check.py "$1" "$2" "$3" "$names" docs/monitoring.md "$tmp/dashboard-exprs.yml" || return 1
  out=$(promtool check rules "$tmp/dashboard-exprs.yml" 2>&1) || { echo "$out"; echo "a dashboard query does not parse"; return 1; }
}
check "$rules" "$tests" "$dashboard"
echo "monitoring: $(grep -c '^      - alert:' "$rules") alerts pass promtool check rules and $(grep -c '^- name:\|^  - name:' "$tests") promtool test cases"

# Broken copies must fail. The test file names its rules relative to itself: copies sit beside
# a copied test file.
mkdir -p "$tmp/a/b/c/examples/monitoring" "$tmp/a/b/c/scripts/checks/monitoring"
d="$tmp/a/b/c"
copy() { # a sed script for the rules, one for the dashboard
  sed "$1" "$rules" > "$d/examples/monitoring/pam-approval.rules.yml"
  sed "$2" "$dashboard" > "$d/examples/monitoring/pam-approval.dashboard.json"
  cp "$tests" "$d/scripts/checks/monitoring/"
  check "$d/examples/monitoring/pam-approval.rules.yml" "$d/scripts/checks/monitoring/pam-approval.rules.test.yml" \
    "$d/examples/monitoring/pam-approval.dashboard.json"
}
# A faithful copy passes (so a broken one fails for what was broken, not for being a copy).
copy '' '' >/dev/null || { echo "monitoring: a faithful copy of the files fails"; exit 1; }
broken() { # description, then the sed scripts
  if copy "$2" "$3" >/dev/null 2>&1; then
    echo "monitoring: a broken copy passed ($1): the check is not effective"; exit 1
  fi
}
broken "a rule that does not parse" 's/max by (job) (pam_approval_ha_active) < 1/max by (job) (pam_approval_ha_active < 1/' ''
broken "a threshold changed" 's/pam_approval_oldest_pending_age_seconds) > 900/pam_approval_oldest_pending_age_seconds) > 9000/' ''
broken "the HA rule without its guard" 's/unless on (job) count by (job) (pam_approval_ha_active)/or on (job) count by (job) (pam_approval_ha_active)/' ''
broken "a misspelt metric in a rule" 's/pam_approval_ha_database_up == 0/pam_approval_ha_databse_up == 0/' ''
broken "a runbook section that does not exist" 's|docs/monitoring.md#pamapprovalfailover|docs/monitoring.md#failover|' ''
broken "a misspelt metric in the dashboard" '' 's/pam_approval_ha_epoch/pam_approval_ha_epoc/'
broken "a dashboard query that does not parse" '' 's/sum by (service) (rate(/sum by (service) rate((/'
broken "a dashboard that is not JSON" '' '0,/{/s/{/[/'
broken "a panel bound to a fixed datasource" '' '0,/"uid": "${DS_PROMETHEUS}"/s/"uid": "${DS_PROMETHEUS}"/"uid": "prom-1"/'
echo "monitoring: 9 broken copies fail, as they should"

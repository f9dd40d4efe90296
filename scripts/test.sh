#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs the format check, clippy,
# every test (unit, against pam-sim, against real slapd/OpenBao), and the scripted checks.
set -euo pipefail
cd "$(dirname "$0")/.."
export PAMTEST_VENV="${PAMTEST_VENV:-$PWD/.venv-test}"
# Tests that need a real server fail (instead of skipping) when it cannot be started.
export PAMTEST_REQUIRE_SERVERS=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*" >&2; }

step "installing test dependencies"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

log=$(mktemp)
# The packages, built once by the first check that needs them (70-packages.sh,
# 71-installed-service.sh), for both.
pkgs=""
if [[ -z "${PAMTEST_PACKAGES:-}" ]]; then pkgs=$(mktemp -d); export PAMTEST_PACKAGES="$pkgs"; fi
trap 'rm -f "$log"; [[ -z "$pkgs" ]] || rm -rf "$pkgs"' EXIT

# Every exchange the tests have with pam-sim's Graph stand-in is recorded here and validated
# against Microsoft's description of the Graph mail API afterwards (scripts/checks/60-graph-fidelity.sh).
export PAMSIM_GRAPH_RECORD="${PAMSIM_GRAPH_RECORD:-$(mktemp -d)/graph-exchanges}"
rm -rf "$PAMSIM_GRAPH_RECORD"

step "cargo test"
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"

checks=0
for check in scripts/checks/*.sh; do
  [[ -e "$check" ]] || continue
  step "$check"
  bash "$check"
  checks=$((checks + 1))
done

# One closing line with the totals of every test binary and scripted check.
read -r passed failed ignored < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) g += $(i-1)
    } } END { print p+0, f+0, g+0 }' "$log")
step "all checks passed"
echo "summary: $((passed + checks)) passed, $failed failed, $ignored skipped"

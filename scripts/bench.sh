#!/usr/bin/env bash
# The benchmark (docs/benchmarks.md): builds the release binaries under test and pam-bench, then
# runs pam-bench, which starts pam-sim (in its own process, with an injected latency on every
# call) and a throw-away OpenLDAP (scripts/start-slapd.sh), runs the watcher and the approval
# tools against them, prints the tables and writes the JSON results (path printed).
# Arguments go to pam-bench: --quick, --mails N, --burst N, --latency-ms MS, --seed N,
# --out FILE, … (pam-bench --help). Nothing leaves this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ldapadd >/dev/null || ! { command -v slapd >/dev/null || [[ -x /usr/sbin/slapd ]]; }; then
  echo "the benchmark needs OpenLDAP: sudo apt-get install slapd ldap-utils (or sudo scripts/install-test-deps.sh)" >&2
  exit 69
fi
echo "building the release binaries…" >&2
cargo build --release --locked -q -p approval-cli -p pam-bench \
  --bin check-approval-request --bin get-inco-req --bin first-level-approve --bin pam-bench
exec "${CARGO_TARGET_DIR:-$PWD/target}/release/pam-bench" "$@"

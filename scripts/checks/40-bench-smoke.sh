#!/usr/bin/env bash
# A smoke run of the benchmark (scripts/bench.sh, docs/benchmarks.md) with tiny counts on the
# debug build: every mail must be confirmed exactly once, answered and filed, the tools must
# succeed, and the JSON must hold every figure. It fails when the bench fails; the goals are
# not judged here (debug builds are slow).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v ldapadd >/dev/null || ! { command -v slapd >/dev/null || [[ -x /usr/sbin/slapd ]]; }; then
  if [[ -n "${PAMTEST_REQUIRE_SERVERS:-}" ]]; then echo "slapd and ldap-utils are required (scripts/install-test-deps.sh)"; exit 1; fi
  echo "skipping: slapd not installed"; exit 0
fi
command -v jq >/dev/null || { echo "jq not found (Debian package jq)"; exit 1; }
# Already built by `cargo test` in scripts/test.sh; a no-op then.
cargo build -q --locked -p approval-cli -p pam-bench --bins
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)
# The bound catches a hang, not slowness: a loaded 2-core machine took 127 s.
if ! timeout 300 "$bin/pam-bench" --quick --bin-dir "$bin" --out "$tmp/bench.json" >"$tmp/out.txt" 2>"$tmp/err.txt"; then
  cat "$tmp/out.txt" "$tmp/err.txt"
  echo "pam-bench --quick failed"; exit 1
fi
# Every section measured, with the counts asked for; the batch logs on once, the single runs
# once per id. The PostgreSQL runs (two hosts) when PostgreSQL is installed, without the
# failover times (--quick: each waits for a lease to expire).
if ! jq -e '
    .options.quick and (.latency | length) == 2
    and all(.latency[]; .n == 10 and .p50_ms > 0 and .p99_ms >= .p50_ms)
    and .burst.mails == 40 and .burst.mails_per_s > 0
    and .burst.filed_s >= .burst.answered_s and .burst.answered_s >= .burst.confirmed_s
    and .footprint.peak_rss_kib > 0 and .footprint.startup_median_ms > 0
    and .batch.ids == 10 and .batch.stdin.logons == 1 and .batch.separate.logons == 10
    and .batch.stdin.confirmed == 10 and .batch.separate.confirmed == 10
    and (.hostile | length) == 4 and all(.hostile[]; .runs == 1 and .median_ms > 0)
    and .graph.latency.n == 10 and .graph.latency.poll_secs == 2 and .graph.latency.p50_ms > 0
    and .graph.burst.mails == 40 and .graph.burst.filed_s >= .graph.burst.confirmed_s
    and .graph.burst.graph_calls_per_mail > 0 and .graph.throttled == 0
    and (.ha == null or (.ha.latency.n == 10 and .ha.latency.p50_ms > 0
                         and .ha.burst.mails == 40 and .ha.burst.mails_per_s > 0
                         and .ha.failover == null and (.ha.failover_skipped | length) > 0))
    and (.goals | length) == (if .ha == null then 8 else 10 end)' "$tmp/bench.json" >/dev/null; then
  cat "$tmp/out.txt"; jq . "$tmp/bench.json"
  echo "pam-bench --quick: the results are incomplete"; exit 1
fi
grep -q "^Goals" "$tmp/out.txt" || { cat "$tmp/out.txt"; echo "no goals table on stdout"; exit 1; }
echo "pam-bench --quick: ok ($(( $(date +%s) - t0 )) s)"

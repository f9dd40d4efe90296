#!/usr/bin/env bash
# Stop an OpenBao dev server started by scripts/start-openbao.sh DIR.
#
#   scripts/stop-openbao.sh DIR
#
# Sends TERM to the pid in DIR/bao.pid (only if that process is still an OpenBao server), waits up
# to 5 s, then KILL. Idempotent: a server that is already gone is fine.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1

if [[ -f $dir/watchdog.pid ]]; then
  kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true
  rm -f "$dir/watchdog.pid"
fi
[[ -f $dir/bao.pid ]] || exit 0
pid=$(cat "$dir/bao.pid")
rm -f "$dir/bao.pid"
[[ $pid =~ ^[0-9]+$ ]] || { echo "$dir/bao.pid holds no pid" >&2; exit 1; }
# A recycled pid must not be killed: check it is still our server.
if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- 'server -dev'; then
  exit 0
fi
kill -TERM "$pid" 2>/dev/null || exit 0
for _ in $(seq 50); do
  kill -0 "$pid" 2>/dev/null || exit 0
  sleep 0.1
done
kill -KILL "$pid" 2>/dev/null || true

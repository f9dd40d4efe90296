#!/usr/bin/env bash
# Install everything the tests need, idempotently: Debian packages from scripts/deps/apt.txt and
# a Python venv (independent test clients, the OpenBao server) from scripts/deps/requirements-test.txt.
# The venv lives in $PAMTEST_VENV (default .venv-test in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PAMTEST_VENV:-$PWD/.venv-test}"

missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < scripts/deps/apt.txt
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # slapd's package starts a system instance we do not use; the tests run their own.
  if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl stop slapd >/dev/null 2>&1 || true; fi
  # Likewise PostgreSQL's system cluster: the tests initdb and start their own on free ports.
  if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl stop postgresql >/dev/null 2>&1 || true; fi
  # And the Prometheus server of the package that brings promtool: only promtool is used.
  if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl stop prometheus >/dev/null 2>&1 || true; fi
  pkill -x slapd -u 0 2>/dev/null || true
fi

stamp="$venv/.requirements.sha256"
want=$(sha256sum scripts/deps/requirements-test.txt | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "preparing the test venv in $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/deps/requirements-test.txt
  echo "$want" > "$stamp"
fi

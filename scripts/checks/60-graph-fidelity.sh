#!/usr/bin/env bash
# Fidelity of pam-sim's Graph stand-in: every mail API exchange the test run had with it
# (recorded into $PAMSIM_GRAPH_RECORD by `cargo test` in scripts/test.sh: our Graph backend,
# the watcher suites on Graph, msgraph-sdk's flow, the stand-in's own tests) must validate
# against Microsoft's OpenAPI description of the Graph mail API (../shared/graph-openapi).
# A broken exchange is validated first, to prove the validator is awake.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared="${PAMTEST_SHARED_DIR:-$PWD/../shared}"
validator="$shared/graph-openapi/validate.py"
py="${PAMTEST_VENV:-$PWD/.venv-test}/bin/python"
[[ -f "$validator" ]] || { echo "missing $validator (../shared beside the checkout)"; exit 1; }
[[ -x "$py" ]] || { echo "missing the test venv: run scripts/install-test-deps.sh"; exit 1; }
dir="${PAMSIM_GRAPH_RECORD:-}"
if [[ -z "$dir" || ! -d "$dir" ]]; then
  echo "no recorded Graph exchanges: run through scripts/test.sh (it sets PAMSIM_GRAPH_RECORD)"
  exit 1
fi
# The negative control: a message whose isRead is a string must be refused.
bad='{"method":"GET","url":"https://localhost/v1.0/users/bot@example.com/messages/AAMk1","status":200,"response_body":{"id":"AAMk1","isRead":"true"},"content_type":"application/json"}'
if printf '%s\n' "$bad" | "$py" "$validator" - >/dev/null 2>&1; then
  echo "the validator accepted a broken exchange"; exit 1
fi
count=$(cat "$dir"/*.jsonl | wc -l)
min=300
if (( count < min )); then
  echo "only $count Graph exchanges recorded (expected at least $min): did the Graph tests run?"
  exit 1
fi
cat "$dir"/*.jsonl | "$py" "$validator" -

#!/usr/bin/env bash
# Regenerate the man pages and shell completions (bash, zsh, fish) the packages ship, from the
# tools' clap definitions, into crates/approval-cli/dist/. The test suite fails while they are
# out of date (crates/approval-cli/tests/generated_files.rs); commit what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
PAM_APPROVAL_REGENERATE=1 cargo test -q --locked -p approval-cli --test generated_files
git status --short crates/approval-cli/dist

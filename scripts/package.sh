#!/usr/bin/env bash
# Build the pam-approval packages from the workspace: a .deb (cargo-deb) and an .rpm
# (cargo-generate-rpm), into target/pkg/. Both hold the six tools (not pam-sim, not the
# benchmark), their man pages and bash/zsh/fish completions, the systemd units, the logrotate
# file, the cron wrapper, the annotated configuration as /etc/pam-approval/config.toml (0640
# root:pamapproval, kept on upgrade) and the docs; installing creates the `pamapproval` system
# user. The packaging tools are installed at pinned versions when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  cargo install --locked --quiet "cargo-deb@$CARGO_DEB_VERSION"
fi
if ! cargo generate-rpm --version 2>/dev/null | grep -q "$CARGO_GENERATE_RPM_VERSION"; then
  cargo install --locked --quiet "cargo-generate-rpm@$CARGO_GENERATE_RPM_VERSION"
fi
out="${PACKAGE_OUT:-target/pkg}"
mkdir -p "$out"
cargo build --release --locked -p approval-cli --bins
cargo deb -p approval-cli --no-build -o "$out/"
cargo generate-rpm -p crates/approval-cli -o "$out/"
ls -l "$out"

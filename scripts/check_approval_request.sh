#!/usr/bin/env bash
# Cron wrapper for the mail watcher: keeps exactly one check-approval-request running.
#
# Run it from cron every minute, as the service user; while a watcher runs, the lock is held and
# the wrapper exits at once; when the watcher has died, the next minute starts a new one (a
# one-minute watchdog). As /etc/cron.d/pam-approval (the user field is cron.d's):
#
#   * * * * * pamapproval /usr/lib/pam-approval/check_approval_request.sh
#
# For a periodic single pass instead of a long-running watcher, pass --once:
#
#   */5 * * * * pamapproval /usr/lib/pam-approval/check_approval_request.sh --once
#
# Under cron there are no systemd credentials: the configuration must not use cred: references
# (file: owned by pamapproval, mode 0600, or vault:; see docs/secrets.md).
#
# Settings (environment, or edit the defaults):
#   PAM_APPROVAL_BIN     the watcher binary       (check-approval-request on PATH)
#   APPROVAL_CONFIG      config file              (/etc/pam-approval/config.toml)
#   PAM_APPROVAL_RUN_DIR lock and pid file's directory (/run/pam-approval: the package's
#                        tmpfiles.d entry creates it for pamapproval at boot)
#   PAM_APPROVAL_LOCK    lock file                ($PAM_APPROVAL_RUN_DIR/watcher.lock)
#   PAM_APPROVAL_LOG     log file, audit lines included (/var/log/pam-approval/pam-approval.log,
#                        rotated by /etc/logrotate.d/pam-approval)
#   PAM_APPROVAL_PID     pid file, logrotate sends SIGHUP to it ($PAM_APPROVAL_RUN_DIR/watcher.pid)
set -euo pipefail
bin="${PAM_APPROVAL_BIN:-check-approval-request}"
config="${APPROVAL_CONFIG:-/etc/pam-approval/config.toml}"
run_dir="${PAM_APPROVAL_RUN_DIR:-/run/pam-approval}"
lock="${PAM_APPROVAL_LOCK:-$run_dir/watcher.lock}"
log="${PAM_APPROVAL_LOG:-/var/log/pam-approval/pam-approval.log}"
pid="${PAM_APPROVAL_PID:-$run_dir/watcher.pid}"

for dir in "$(dirname "$lock")" "$(dirname "$pid")" "$(dirname "$log")"; do
  if ! mkdir -p "$dir" 2>/dev/null || [[ ! -w "$dir" ]]; then
    echo "check_approval_request.sh: $dir is missing or not writable by $(id -un);" \
      "the package creates /run/pam-approval at boot (systemd-tmpfiles --create pam-approval.conf" \
      "creates it now) and /var/log/pam-approval; run this as pamapproval" >&2
    exit 78
  fi
done
# -n: never wait; -E 0: "already running" is not an error for cron (no mail every minute).
# The watcher also takes its own lock on its state directory, so a second instance started by
# hand refuses to run (exit 75).
exec flock -n -E 0 "$lock" "$bin" --config "$config" --log-file "$log" --pid-file "$pid" "$@"

#!/usr/bin/env bash
# Cron wrapper for the mail watcher: keeps exactly one check-approval-request running.
#
# Run it from cron every minute; while a watcher runs, the lock is held and the wrapper exits at
# once; when the watcher has died, the next minute starts a new one (a one-minute watchdog):
#
#   * * * * * pamapproval /usr/lib/pam-approval/check_approval_request.sh
#
# For a periodic single pass instead of a long-running watcher, pass --once:
#
#   */5 * * * * pamapproval /usr/lib/pam-approval/check_approval_request.sh --once
#
# Settings (environment, or edit the defaults):
#   PAM_APPROVAL_BIN     the watcher binary           (check-approval-request on PATH)
#   PAM_APPROVAL_LOCK    lock file, in a directory owned by the service user
#   PAM_APPROVAL_LOG     log file (rotated by /etc/logrotate.d/pam-approval)
#   PAM_APPROVAL_PID     pid file (logrotate sends SIGHUP to it)
#   APPROVAL_CONFIG      config file
set -euo pipefail
bin="${PAM_APPROVAL_BIN:-check-approval-request}"
run_dir="${PAM_APPROVAL_RUN_DIR:-/run/pam-approval}"
lock="${PAM_APPROVAL_LOCK:-$run_dir/watcher.lock}"
log="${PAM_APPROVAL_LOG:-/var/log/pam-approval/pam-approval.log}"
pid="${PAM_APPROVAL_PID:-$run_dir/watcher.pid}"

mkdir -p "$(dirname "$lock")" "$(dirname "$log")"
# -n: never wait; -E 0: "already running" is not an error for cron (no mail every minute).
# The watcher also takes its own lock on its state directory, so a second instance started by
# hand refuses to run (exit 75).
exec flock -n -E 0 "$lock" "$bin" --log-file "$log" --pid-file "$pid" "$@"

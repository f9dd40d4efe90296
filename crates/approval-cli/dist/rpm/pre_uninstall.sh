# pam-approval (RPM %preun): stop the watcher on removal ($1 = 0), not on upgrade. The state
# directory (the journal, the audit trail) and the service user stay.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl stop pam-approval.service pam-approval-once.timer pam-approval-once.service >/dev/null 2>&1 || true
fi
exit 0

# pam-approval (RPM %post): the log directory; units installed, not enabled (fill in
# /etc/pam-approval/config.toml first, then: systemctl enable --now pam-approval.service).
chown root:pamapproval /etc/pam-approval
chmod 0750 /etc/pam-approval
# The one state directory (journal, lock) of the service, cron and by-hand runs alike.
install -d -o pamapproval -g pamapproval -m 0700 /var/lib/pam-approval
# The installed configuration's file: secrets (service, cron and by-hand runs read the same).
install -d -o pamapproval -g pamapproval -m 0700 /etc/pam-approval/secrets
# The cron wrapper's run directory (tmpfiles.d recreates it at each boot).
systemd-tmpfiles --create pam-approval.conf >/dev/null 2>&1 || \
    install -d -o pamapproval -g pamapproval -m 0750 /run/pam-approval
install -d -o pamapproval -g adm -m 0750 /var/log/pam-approval 2>/dev/null || \
    install -d -o pamapproval -g pamapproval -m 0750 /var/log/pam-approval
# The installed configuration's [log] file, made now by the service user, so that a by-hand run
# as root before the service's first start does not leave it root's; made as pamapproval and
# chown -h: its directory is the service user's, no link is followed.
log=/var/log/pam-approval/pam-approval.log
if [ "$(stat -c %u "$log" 2>/dev/null)" = 0 ]; then chown -h pamapproval:pamapproval "$log"; fi
runuser -u pamapproval -- sh -c "umask 027; : >> $log" || true
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0

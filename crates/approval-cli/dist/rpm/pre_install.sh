# pam-approval (RPM %pre): the service user, before the files it owns are installed.
getent group pamapproval >/dev/null || groupadd --system pamapproval
getent passwd pamapproval >/dev/null || \
    useradd --system --gid pamapproval --home-dir /var/lib/pam-approval --no-create-home \
        --shell /sbin/nologin --comment "pam-approval watcher" pamapproval
exit 0

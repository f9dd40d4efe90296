complete -c check-approval-request -l pid-file -d 'Write this process\'s id here while it runs (for logrotate\'s SIGHUP); removed on exit' -r -F
complete -c check-approval-request -l explain -d 'Print what the watcher would read from this mail and its verdict; contacts no server' -r -F
complete -c check-approval-request -l check-sender -d 'Check whether this address may approve --safe at --level, and through which group. With --check-site: the approver the report resolves end to end' -r
complete -c check-approval-request -l mails -d 'With --check-site: how many recent mails of the watched folder to look at' -r
complete -c check-approval-request -l warning-secs -d 'With --status: WARNING when the mailbox has not answered, or a mail has waited unfinished, for this many seconds' -r
complete -c check-approval-request -l critical-secs -d 'With --status: CRITICAL past this many seconds' -r
complete -c check-approval-request -l safe -d 'With --check-sender: the safe' -r
complete -c check-approval-request -l level -d 'With --check-sender: the confirmation level (1 or 2)' -r
complete -c check-approval-request -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c check-approval-request -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c check-approval-request -l once -d 'One pass over the mailbox, then exit (for cron)'
complete -c check-approval-request -l dry-run -d 'Decide, but confirm nothing, send nothing, file nothing'
complete -c check-approval-request -l check-mailbox -d 'Prove the [mailbox] configuration: sign in, read the watched folder, look for the Processed and Refused folders; changes nothing, sends nothing. The mailbox section of --check-site alone (which adds the recent mails\' senders)'
complete -c check-approval-request -l check-site -d 'Check, read-only, everything the watcher relies on (configuration, secret references, file modes, PVWA accounts and safe members, mailbox, directory, ticketing, Remote Access) and print a report; exit 0 all ok, 1 warnings, 2 failures. Changes nothing. With --check-sender EMAIL --safe S --level N, that approver is resolved end to end'
complete -c check-approval-request -l status -d 'Print the watcher\'s state from its state directory in one line (journal counts, pending mails, when the mailbox last answered) and exit as a Nagios plugin: 0 OK, 1 WARNING, 2 CRITICAL. Asks no server'
complete -c check-approval-request -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c check-approval-request -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c check-approval-request -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c check-approval-request -s h -l help -d 'Print help'
complete -c check-approval-request -s V -l version -d 'Print version'

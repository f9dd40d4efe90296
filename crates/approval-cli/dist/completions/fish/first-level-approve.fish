complete -c first-level-approve -l on-behalf-of -d 'Record "Approved on behalf of EMAIL" (with --reject: "Rejected on behalf of EMAIL") as the reason' -r
complete -c first-level-approve -l reason -d 'The reason recorded with the confirmation (or the rejection)' -r
complete -c first-level-approve -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c first-level-approve -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c first-level-approve -l reject -d 'Reject the requests instead of confirming them (PVWA\'s Reject): a rejected request cannot be used, by anyone. Same account, ids, --dry-run and --json as a confirm'
complete -c first-level-approve -l dry-run -d 'Show what would be confirmed (or rejected), change nothing'
complete -c first-level-approve -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c first-level-approve -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c first-level-approve -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c first-level-approve -s h -l help -d 'Print help'
complete -c first-level-approve -s V -l version -d 'Print version'

complete -c get-inco-req -l level -d 'With --waiting: list as the level\'s service account, only requests waiting at that level' -r
complete -c get-inco-req -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c get-inco-req -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c get-inco-req -l waiting -d 'List the incoming requests still waiting for confirmation, as the level-1 and level-2 accounts see them (PVWA lists a request only to an account that may confirm it)'
complete -c get-inco-req -l expired -d 'With --waiting: include expired requests'
complete -c get-inco-req -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c get-inco-req -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c get-inco-req -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c get-inco-req -s h -l help -d 'Print help'
complete -c get-inco-req -s V -l version -d 'Print version'

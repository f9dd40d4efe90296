complete -c validate-ticket -l user -d 'The CyberArk requester the ticket must belong to (`DOMAIN\\` is ignored, any case)' -r
complete -c validate-ticket -l at -d 'Check the operation window at this time instead of now (RFC 3339 with a zone, e.g. 2026-05-01T22:30:00Z or 2026-05-02T00:30:00+02:00)' -r
complete -c validate-ticket -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c validate-ticket -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c validate-ticket -l hash-bypass-code -d 'Read a bypass code from stdin (first line) and print its hash for `ticketing.bypass_codes`; the code itself is never printed or logged'
complete -c validate-ticket -l check -d 'Check the set-up without a ticket: the configuration and its secret references, the sign-in to each system, each configured ticket table or form readable (a read of a number no site uses), and the bypass-code list. Reads only; exit 0 ok, 2 a failure'
complete -c validate-ticket -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c validate-ticket -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c validate-ticket -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c validate-ticket -s h -l help -d 'Print help'
complete -c validate-ticket -s V -l version -d 'Print version'

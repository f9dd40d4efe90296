# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_remote_access_global_optspecs
    string join \n config= v/verbose q/quiet json log-file= h/help V/version
end

function __fish_remote_access_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_remote_access_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_remote_access_using_subcommand
    set -l cmd (__fish_remote_access_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c remote-access -n "__fish_remote_access_needs_command" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_needs_command" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_needs_command" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_needs_command" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_needs_command" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_needs_command" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_needs_command" -s V -l version -d 'Print version'
complete -c remote-access -n "__fish_remote_access_needs_command" -f -a "check" -d 'Get a token and show the endpoints in use (a setup check)'
complete -c remote-access -n "__fish_remote_access_needs_command" -f -a "applications" -d 'List the applications as `<site>/<application>`, the names `invite` takes'
complete -c remote-access -n "__fish_remote_access_needs_command" -f -a "invite" -d 'Send one vendor invitation (no check for an existing one: see `onboard`)'
complete -c remote-access -n "__fish_remote_access_needs_command" -f -a "onboard" -d 'Invite vendors read as JSON from stdin (one object, or JSON Lines), for identity-system hooks'
complete -c remote-access -n "__fish_remote_access_needs_command" -f -a "offboard" -d 'Revoke a vendor\'s outstanding invitations, then deactivate the vendor (or delete it with --delete). Running it twice changes nothing the second time'
complete -c remote-access -n "__fish_remote_access_needs_command" -f -a "invitations" -d 'Vendor invitations'
complete -c remote-access -n "__fish_remote_access_needs_command" -f -a "vendors" -d 'Vendors (registered remote users)'
complete -c remote-access -n "__fish_remote_access_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c remote-access -n "__fish_remote_access_using_subcommand check" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand check" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand check" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand check" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand check" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand check" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand applications" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand applications" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand applications" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand applications" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand applications" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand applications" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l first-name -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l last-name -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l company -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l email -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l phone -d 'International, with + and country code' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l app -d '`<site>/<application>` (repeatable)' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l start -d 'Start of access: YYYY-MM-DD (the start of that day), RFC 3339 or `now` (default now)' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l end -d 'End of access: YYYY-MM-DD (the end of that day: the vendor keeps it) or RFC 3339. A date alone is a day of `remote_access.date_time_zone` (default UTC)' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l days -d 'Length of access in days' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l initial-status -d 'Activated or RequiresAdminConfirmation' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l max-invited-vendors -d 'How many vendors the vendor may invite (0 = unlimited)' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l invited-vendors-initial-status -d 'Initial status of vendors the vendor invites' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l comments -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l custom-text -d 'Name of a predefined invitation text' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l provisioning-type -d 'ProvisionedByAlero, ManagedByAdmin or None' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l provisioning-username -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l provisioning-group -d 'Group name or ID (repeatable)' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l identity-role -d 'Identity role (repeatable)' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l time-zone -d 'Time zone of the allowed hours, e.g. Europe/Berlin' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l allowed-day -d 'Allowed day (repeatable): MONDAY … SUNDAY' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l hours -d 'Allowed hours, HH:MM-HH:MM' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l can-invite -d 'The vendor may invite others'
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l phone-and-email-auth -d 'SMS/call and mail codes instead of the QR code'
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l enable-web-apps-access
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l dry-run
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand invite" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand onboard" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand onboard" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand onboard" -l force -d 'Invite even when the vendor already has an account or a valid invitation'
complete -c remote-access -n "__fish_remote_access_using_subcommand onboard" -l dry-run -d 'Resolve and check everything, send nothing'
complete -c remote-access -n "__fish_remote_access_using_subcommand onboard" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand onboard" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand onboard" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand onboard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -l email -d 'The vendor\'s mail address (repeatable)' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -l delete -d 'Delete the vendor instead of deactivating it (irreversible)'
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -l keep-account -d 'Only revoke outstanding invitations; leave the vendor account as it is'
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -l dry-run -d 'Look everything up and show what would be revoked, deactivated or deleted; change nothing'
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand offboard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -f -a "list" -d 'List invitations; one past its expiry says `expired` (`"expired": true` in JSON)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -f -a "show" -d 'Show one invitation'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -f -a "revoke" -d 'Revoke invitations (an unknown or already revoked one counts as done)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and not __fish_seen_subcommand_from list show revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from list" -l search -d 'Text to search for' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from list" -l search-in -d 'Field to search in: ALL, FULLNAME, COMPANY, GROUPS (invitations also PHONE, EMAIL)' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from list" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from list" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from show" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from show" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from revoke" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from revoke" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from revoke" -l dry-run
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from revoke" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from revoke" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from help" -f -a "list" -d 'List invitations; one past its expiry says `expired` (`"expired": true` in JSON)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one invitation'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke invitations (an unknown or already revoked one counts as done)'
complete -c remote-access -n "__fish_remote_access_using_subcommand invitations; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -f -a "list" -d 'List vendors'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -f -a "show" -d 'Show one vendor'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -f -a "deactivate" -d 'Deactivate vendors (reversible)'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -f -a "activate" -d 'Activate vendors again'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and not __fish_seen_subcommand_from list show deactivate activate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from list" -l search -d 'Text to search for' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from list" -l search-in -d 'Field to search in: ALL, FULLNAME, COMPANY, GROUPS (invitations also PHONE, EMAIL)' -r
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from list" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from list" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from list" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from show" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from show" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from show" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from deactivate" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from deactivate" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from deactivate" -l dry-run
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from deactivate" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from deactivate" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from deactivate" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from deactivate" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from activate" -l config -d 'Config file (default: $APPROVAL_CONFIG, then ~/.config/pam-approval/config.toml, then /etc/pam-approval/config.toml)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from activate" -l log-file -d 'Write logs to this file instead of stderr (wins over $APPROVAL_LOG_FILE and [log] file)' -r -F
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from activate" -l dry-run
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from activate" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace); the audit lines are always written'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from activate" -s q -l quiet -d 'Less log output (-q errors only, -qq nothing)'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from activate" -l json -d 'Machine-readable output: JSON (JSON Lines for several results); errors as JSON on stderr'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from activate" -s h -l help -d 'Print help'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from help" -f -a "list" -d 'List vendors'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one vendor'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from help" -f -a "deactivate" -d 'Deactivate vendors (reversible)'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from help" -f -a "activate" -d 'Activate vendors again'
complete -c remote-access -n "__fish_remote_access_using_subcommand vendors; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and not __fish_seen_subcommand_from check applications invite onboard offboard invitations vendors help" -f -a "check" -d 'Get a token and show the endpoints in use (a setup check)'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and not __fish_seen_subcommand_from check applications invite onboard offboard invitations vendors help" -f -a "applications" -d 'List the applications as `<site>/<application>`, the names `invite` takes'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and not __fish_seen_subcommand_from check applications invite onboard offboard invitations vendors help" -f -a "invite" -d 'Send one vendor invitation (no check for an existing one: see `onboard`)'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and not __fish_seen_subcommand_from check applications invite onboard offboard invitations vendors help" -f -a "onboard" -d 'Invite vendors read as JSON from stdin (one object, or JSON Lines), for identity-system hooks'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and not __fish_seen_subcommand_from check applications invite onboard offboard invitations vendors help" -f -a "offboard" -d 'Revoke a vendor\'s outstanding invitations, then deactivate the vendor (or delete it with --delete). Running it twice changes nothing the second time'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and not __fish_seen_subcommand_from check applications invite onboard offboard invitations vendors help" -f -a "invitations" -d 'Vendor invitations'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and not __fish_seen_subcommand_from check applications invite onboard offboard invitations vendors help" -f -a "vendors" -d 'Vendors (registered remote users)'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and not __fish_seen_subcommand_from check applications invite onboard offboard invitations vendors help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and __fish_seen_subcommand_from invitations" -f -a "list" -d 'List invitations; one past its expiry says `expired` (`"expired": true` in JSON)'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and __fish_seen_subcommand_from invitations" -f -a "show" -d 'Show one invitation'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and __fish_seen_subcommand_from invitations" -f -a "revoke" -d 'Revoke invitations (an unknown or already revoked one counts as done)'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and __fish_seen_subcommand_from vendors" -f -a "list" -d 'List vendors'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and __fish_seen_subcommand_from vendors" -f -a "show" -d 'Show one vendor'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and __fish_seen_subcommand_from vendors" -f -a "deactivate" -d 'Deactivate vendors (reversible)'
complete -c remote-access -n "__fish_remote_access_using_subcommand help; and __fish_seen_subcommand_from vendors" -f -a "activate" -d 'Activate vendors again'

//! The one registry of environment variables the tools read.
//!
//! Two kinds: fixed names listed in [`VARS`], and the generic config override rule: every config
//! key `a.b.c` can be set with `APPROVAL__A__B__C` (double underscores between path segments,
//! upper case). Nothing else in the workspace may read the environment directly except through
//! the names declared here (and `env:NAME` secret references, which name their variable).

/// Prefix of a config override: `APPROVAL__PVWA__URL` sets `pvwa.url`.
pub const OVERRIDE_PREFIX: &str = "APPROVAL__";
/// Separator between path segments in an override name.
pub const OVERRIDE_SEPARATOR: &str = "__";

/// Path of the config file when `--config` is not given.
pub const APPROVAL_CONFIG: &str = "APPROVAL_CONFIG";
/// Log filter refinement (env_logger syntax), on top of `-v`/`-q`.
pub const RUST_LOG: &str = "RUST_LOG";
/// Log file path, when `--log-file` is not given.
pub const APPROVAL_LOG_FILE: &str = "APPROVAL_LOG_FILE";
/// systemd's credentials directory, for `cred:NAME` secret references.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";
/// XDG base directories.
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
pub const XDG_STATE_HOME: &str = "XDG_STATE_HOME";
pub const HOME: &str = "HOME";
/// Vault/OpenBao token, used only when `[vault] auth = "token"` and no `token` reference is set.
pub const VAULT_TOKEN: &str = "VAULT_TOKEN";

/// Every fixed name with its meaning, for documentation and `--help`.
pub const VARS: &[(&str, &str)] = &[
    (APPROVAL_CONFIG, "config file path (overridden by --config)"),
    (
        "APPROVAL__<SECTION>__<KEY>",
        "override any config key, e.g. APPROVAL__PVWA__URL",
    ),
    (
        APPROVAL_LOG_FILE,
        "log file path (overridden by --log-file)",
    ),
    (RUST_LOG, "log filter, refines -v/-q (env_logger syntax)"),
    (
        CREDENTIALS_DIRECTORY,
        "systemd credentials directory for cred:NAME secrets",
    ),
    (XDG_CONFIG_HOME, "base of the default config path"),
    (XDG_STATE_HOME, "base of the default state directory"),
    (
        VAULT_TOKEN,
        "Vault/OpenBao token when [vault] auth = \"token\" has no token reference",
    ),
];

/// Read a fixed variable. Empty values count as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// All config overrides present in the environment, as (variable name, config path) pairs with
/// their raw values. Sorted for deterministic precedence and error messages.
pub fn config_overrides() -> Vec<(String, Vec<String>, String)> {
    let mut out: Vec<(String, Vec<String>, String)> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            let rest = k.strip_prefix(OVERRIDE_PREFIX)?;
            let path: Vec<String> = rest
                .split(OVERRIDE_SEPARATOR)
                .map(|s| s.to_ascii_lowercase())
                .collect();
            if path.iter().any(|s| s.is_empty()) {
                return None;
            }
            let v = v.into_string().ok()?;
            Some((k, path, v))
        })
        .collect();
    out.sort();
    out
}

/// The override variable name for a config path, e.g. `["pvwa","url"]` -> `APPROVAL__PVWA__URL`.
pub fn override_name(path: &[&str]) -> String {
    let mut s = String::from(OVERRIDE_PREFIX);
    s.push_str(
        &path
            .iter()
            .map(|p| p.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(OVERRIDE_SEPARATOR),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_name_round_trips_to_path() {
        assert_eq!(
            override_name(&["accounts", "level1", "username"]),
            "APPROVAL__ACCOUNTS__LEVEL1__USERNAME"
        );
        assert_eq!(
            override_name(&["pvwa", "ca_bundle"]),
            "APPROVAL__PVWA__CA_BUNDLE"
        );
    }
}

//! The test people of the LDAP fixture (scripts/ldap/ad-data.ldif) as Microsoft Entra ID holds
//! them, for pam-sim's Graph directory (`[graph.directory]`): alice approves DBSafe at both
//! levels (DB_PAMapprover, DB_PAMlevel2), bob and bob.adm (one person: employeeId E1001) through
//! DB_Team nested in DB_PAMapprover, gina through Deep1..Deep4, dave InfraSafe (the synced group
//! "Infra PAM Approvers", onPremisesSamAccountName Infra_PAMapprover); carol approves nothing,
//! erin is disabled, shared@example.test names frank1 (mail) and frank2 (alias), henry sits in
//! a cycle, lfischer requests. The app's permissions are [`ROLES`].

#![allow(dead_code)]

/// The application permissions the suites grant the Graph app.
pub const ROLES: &[&str] = &["User.Read.All", "GroupMember.Read.All"];

pub const DIRECTORY: &str = r#"
[[users]]
display_name = "Alice Approver"
user_principal_name = "alice@example.test"
mail = "alice@example.test"
proxy_addresses = ["SMTP:alice@example.test", "smtp:a.approver@example.test", "x500:/o=Example/cn=alice"]
on_premises_sam_account_name = "alice"
employee_id = "E1000"
member_of = ["DB_PAMapprover", "DB_PAMlevel2"]

[[users]]
display_name = "Bob Nested"
user_principal_name = "bob@example.test"
mail = "bob@example.test"
on_premises_sam_account_name = "bob"
employee_id = "E1001"
member_of = ["DB_Team"]

[[users]]
display_name = "Bob Admin"
user_principal_name = "bob.adm@example.test"
mail = "bob.adm@example.test"
on_premises_sam_account_name = "bob.adm"
employee_id = "E1001"
member_of = ["DB_Team"]

[[users]]
display_name = "Carol Outsider"
user_principal_name = "carol@example.test"
mail = "carol@example.test"
on_premises_sam_account_name = "carol"

[[users]]
display_name = "Lena Fischer"
user_principal_name = "lfischer@corp.example.test"
mail = "lena.fischer@example.test"
on_premises_sam_account_name = "lfischer"

[[users]]
display_name = "Dave Infra"
user_principal_name = "dave@example.test"
mail = "dave@example.test"
proxy_addresses = ["SMTP:dave@example.test"]
on_premises_sam_account_name = "dave"
employee_id = "E1003"
member_of = ["Infra PAM Approvers"]

[[users]]
display_name = "Erin Disabled"
user_principal_name = "erin@example.test"
mail = "erin@example.test"
account_enabled = false
member_of = ["DB_PAMapprover"]

[[users]]
display_name = "Frank One"
user_principal_name = "frank1@example.test"
mail = "shared@example.test"

[[users]]
display_name = "Frank Two"
user_principal_name = "frank2@example.test"
mail = "frank.two@example.test"
proxy_addresses = ["SMTP:frank.two@example.test", "smtp:shared@example.test"]

[[users]]
display_name = "Gina Deep"
user_principal_name = "gina@example.test"
mail = "gina@example.test"
member_of = ["Deep1"]

[[users]]
display_name = "Henry Cycle"
user_principal_name = "henry@example.test"
mail = "henry@example.test"
member_of = ["CycleA"]

[[users]]
display_name = "Olivia O'Brien"
user_principal_name = "o'brien@example.test"
mail = "o'brien@example.test"
member_of = ["DB_PAMapprover"]

[[groups]]
display_name = "DB_Team"
mail_nickname = "DB_Team"
member_of = ["DB_PAMapprover"]

[[groups]]
display_name = "Deep1"
member_of = ["Deep2"]
[[groups]]
display_name = "Deep2"
member_of = ["Deep3"]
[[groups]]
display_name = "Deep3"
member_of = ["Deep4"]
[[groups]]
display_name = "Deep4"
member_of = ["DB_PAMapprover"]

[[groups]]
display_name = "DB_PAMapprover"
mail_nickname = "DB_PAMapprover"
on_premises_sam_account_name = "DB_PAMapprover"

[[groups]]
display_name = "DB_PAMlevel2"
mail_nickname = "DB_PAMlevel2"
on_premises_sam_account_name = "DB_PAMlevel2"

[[groups]]
display_name = "Infra PAM Approvers"
mail_nickname = "Infra_PAMapprover"
on_premises_sam_account_name = "Infra_PAMapprover"

[[groups]]
display_name = "CycleA"
member_of = ["CycleB"]
[[groups]]
display_name = "CycleB"
member_of = ["CycleA"]

# Two groups with one display name: never used by name.
[[groups]]
id = "7a1a0000-0000-4000-8000-000000000001"
display_name = "Twin"
[[groups]]
id = "7a1a0000-0000-4000-8000-000000000002"
display_name = "Twin"
"#;

/// The directory as pam-sim's scenario type.
pub fn directory() -> pam_sim::graph::directory::DirectoryDef {
    toml::from_str(DIRECTORY).expect("the Entra fixture parses")
}

//! approval-core: everything with logic in it, behind the thin binaries of `approval-cli`.
//!
//! Data flow of the watcher: mailbox -> journal -> sender -> notice -> pvwa -> policy ->
//! pvwa confirm -> notify -> mailbox file -> journal.
//!
//! # Layers
//!
//! Imports run one way (docs/architecture.md; checked by `scripts/checks/50-layers.sh`): a
//! module may use its own layer and those below it that its layer lists, never one above.
//!
//! | layer | modules | may use |
//! |---|---|---|
//! | top | [`settings`], [`error`], [`approve`], [`check_sender`], [`pipeline`] | all below |
//! | clients | [`pvwa`], [`mailbox`], [`directory`], [`ticketing`], [`remote_access`], [`journal`], [`runtime`] | secrets, data, base |
//! | readers | [`notice`], [`sender`], [`screen`], [`policy`], [`notify`], [`pipeline::config`] | data, base |
//! | data | [`pvwa::model`], [`pvwa::view`], [`person`] | base |
//! | secrets | [`secret`] | base |
//! | base | [`exit`], [`env`](mod@env), [`text`], [`tls`], [`http`], [`config`], [`perms`] | base |
//!
//! Clients never import the pipeline, the policy or the reply text; readers import no client.
//! Each module owns its section of the configuration and checks it against a
//! [`config::Origin`]; [`settings::Config`] puts the sections together at the top.

pub mod approve;
pub mod check_sender;
pub mod config;
pub mod directory;
pub mod env;
pub mod error;
pub mod exit;
pub mod http;
pub mod journal;
pub mod mailbox;
pub mod metrics;
pub mod notice;
pub mod notice_check;
pub mod notify;
pub mod perms;
pub mod person;
pub mod pipeline;
pub mod policy;
pub mod pvwa;
pub mod remote_access;
pub mod runtime;
pub mod screen;
pub mod secret;
pub mod sender;
pub mod settings;
pub mod site_check;
pub mod text;
pub mod ticketing;
pub mod tls;

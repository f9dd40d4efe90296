//! The scenario file: the initial state of every stand-in, in TOML. Each section's type lives in
//! the stand-in's module; an absent section means an empty stand-in.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub pvwa: crate::pvwa::PvwaScenario,
    #[serde(default)]
    pub ews: crate::ews::EwsScenario,
    #[serde(default)]
    pub servicenow: crate::servicenow::ServiceNowScenario,
    #[serde(default)]
    pub remedy: crate::remedy::RemedyScenario,
    #[serde(default)]
    pub remote_access: crate::remote_access::RemoteAccessScenario,
    #[serde(default)]
    pub graph: crate::graph::GraphScenario,
}

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Self> {
        let de = toml::Deserializer::parse(text).context("scenario is not valid TOML")?;
        serde_path_to_error_free(de)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("scenario {}", path.display()))
    }
}

fn serde_path_to_error_free(de: toml::Deserializer<'_>) -> Result<Scenario> {
    Scenario::deserialize(de).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
}

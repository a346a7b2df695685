//! Import profiles: one folder each, with the same files, so a newcomer knows where anything is:
//! - `mapping.toml`: how the export's columns become canonical columns (see [`super::mapping`]),
//! - `mod.rs`: the profile, i.e. what a mapping cannot say (collapsing events, threads, comments),
//! - `tests.rs`: the profile on its reference file or fixture, with exact expected counts.

pub mod generic;
pub mod jira;
pub mod servicenow;
pub mod twitter;
pub mod zendesk;

#[cfg(test)]
mod testkit;

use std::path::Path;

use anyhow::{Result, bail};

use super::mapping::Mapping;
use super::{IngestOptions, Profile};

/// The built-in profiles.
pub const NAMES: &[&str] = &["generic", "servicenow", "zendesk", "jira", "twitter"];

/// The profile that reads `path` under these options.
pub fn profile(opts: &IngestOptions, path: &Path) -> Result<Box<dyn Profile>> {
    if opts.mapping.is_some() && opts.profile != "generic" {
        bail!(
            "--mapping goes with --profile generic (the {} profile has its own)",
            opts.profile
        );
    }
    Ok(match opts.profile.as_str() {
        "generic" => Box::new(generic::Generic::new(opts, path)?),
        "servicenow" => Box::new(servicenow::ServiceNow::new(opts.tz)),
        "zendesk" => Box::new(zendesk::Zendesk::new(opts.tz)),
        "jira" => Box::new(jira::Jira::new(opts.tz)),
        "twitter" => Box::new(twitter::Twitter::new(opts.tz)),
        other => bail!(
            "unknown profile '{other}' (expected one of {})",
            NAMES.join(", ")
        ),
    })
}

/// Loads a built-in profile's mapping (compiled into the binary).
fn builtin_mapping(toml: &str, name: &str, tz: Option<chrono_tz::Tz>) -> Mapping {
    Mapping::from_toml(toml, name, tz)
        .unwrap_or_else(|e| panic!("the built-in {name} mapping is invalid: {e:#}"))
}

/// The manifest identity of a built-in profile: its name, plus the zone it was read in.
fn builtin_id(name: &str, tz: Option<chrono_tz::Tz>) -> String {
    match tz {
        Some(tz) => format!("{name}[tz={tz}]"),
        None => name.to_string(),
    }
}

//! Import profiles: one folder each, with the same files, so a newcomer knows where anything is:
//! - `mapping.toml`: how the export's columns become canonical columns (see [`super::mapping`]),
//! - `mod.rs`: the profile, i.e. what a mapping cannot say (collapsing events, threads, comments),
//! - `tests.rs`: the profile on its reference file or fixture, with exact expected counts.

pub mod freshdesk;
pub mod freshservice;
pub mod generic;
pub mod jira;
pub mod servicenow;
pub mod twitter;
pub mod zendesk;

#[cfg(test)]
pub(crate) mod testkit;

use std::path::Path;

use anyhow::{Result, bail};

use super::mapping::Mapping;
use super::reader::Row;
use super::{IngestOptions, Output, Profile};
use crate::model::{ActorRole, Channel, Interaction, Table, Ticket};

/// The built-in profiles.
pub const NAMES: &[&str] = &[
    "generic",
    "servicenow",
    "zendesk",
    "jira",
    "twitter",
    "freshdesk",
    "freshservice",
];

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
        "freshdesk" => Box::new(freshdesk::Freshdesk::new(opts.tz)),
        "freshservice" => Box::new(freshservice::new(opts.tz)),
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

/// Stores a ticket's description (the row's `column`) as the requester's opening message
/// `<ticket id>#d`, at the ticket's opening; a missing or blank description stores nothing,
/// an unreadable one is a rejected interaction (the ticket is stored).
fn push_description(t: &Ticket, row: &dyn Row, column: &str, out: &mut Output) -> Result<()> {
    let body = match row.get(column) {
        Ok(Some(body)) => body,
        Ok(None) => return Ok(()),
        Err(f) => return out.reject(Table::Interactions, row.line(), f, row.raw()),
    };
    let body = body.trim();
    if body.is_empty() {
        return Ok(());
    }
    out.push(
        row.line(),
        Interaction {
            interaction_id: format!("{}#d", t.ticket_id),
            ticket_id: t.ticket_id.clone(),
            at: t.opened_at,
            seq: Some(0),
            actor_role: ActorRole::Requester,
            actor_id: t.requester_id.clone(),
            channel: t.channel.unwrap_or(Channel::Other),
            is_public: true,
            body: Some(body.to_string()),
            lang: None,
            sentiment: None,
        },
    )
}

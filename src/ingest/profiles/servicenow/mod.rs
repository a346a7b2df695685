//! The `servicenow` profile: the incident event export (one row per update of an incident).
//! Every row becomes a version of its ticket and the lake keeps the latest, so the 14,422 events
//! of the reference sample collapse to its 2,491 incidents. The export carries no first-response
//! time, so `first_response_at` stays empty; a `resolved_by` marks the resolution path `agent`.

use anyhow::Result;
use chrono_tz::Tz;

use super::{builtin_id, builtin_mapping};
use crate::ingest::mapping::{self, Mapping};
use crate::ingest::{Input, Output, Profile, for_each_record};
use crate::model::{ResolutionPath, Table, Ticket};

pub struct ServiceNow {
    mapping: Mapping,
    tz: Option<Tz>,
}

impl ServiceNow {
    pub fn new(tz: Option<Tz>) -> ServiceNow {
        ServiceNow {
            mapping: builtin_mapping(include_str!("mapping.toml"), "servicenow", tz),
            tz,
        }
    }
}

impl Profile for ServiceNow {
    fn id(&self) -> String {
        builtin_id("servicenow", self.tz)
    }

    fn read(&self, input: Input, out: &mut Output) -> Result<()> {
        let m = &self.mapping;
        for_each_record(
            input,
            out,
            |header| {
                m.refuse_duplicates(Table::Tickets, header)?;
                match m.missing_required(Table::Tickets, |c| header.contains(c)) {
                    Some(col) => Err(format!("missing required column '{col}'")),
                    None if !header.contains("sys_updated_at") => {
                        Err("missing required column 'sys_updated_at'".into())
                    }
                    None => Ok(()),
                }
            },
            |k| k == "records" || k == "result",
            |_| Table::Tickets,
            |row, _, out| {
                let r = m.rec(row, Table::Tickets);
                let ticket = mapping::ticket(&r).and_then(|mut t| {
                    if row
                        .get("resolved_by")?
                        .is_some_and(|v| !v.is_empty() && v != "?")
                    {
                        t.resolution_path = Some(ResolutionPath::Agent);
                    }
                    Ok(t)
                });
                out.emit::<Ticket>(row, ticket)
            },
        )
    }
}

#[cfg(test)]
mod tests;

//! `generate --event-log`: the generated tickets written again as an event log (one row per
//! change, as an audit export has them) with the mapping that reads it, so that the tickets
//! derived from the log can be checked against the generator's own, field by field.
//!
//! Each ticket becomes: `new` when opened; a change of group per reassignment (from `Triage`
//! and back, ending in its group); `in_progress` at its first response; for a reopen, `resolved`
//! and `reopened`; `resolved` and `closed` at those times; its final status when it was updated
//! later. Changes that happen at the same moment keep their order in the file, which is how
//! ties are broken. The tickets' events are interleaved (the first event of every ticket of a
//! block, then the second, ...), as a log ordered by time interleaves records.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

use super::TICKET_HEADER;

/// The event log's file and its mapping, beside the generated files.
pub const FILE: &str = "ticket_events.csv";
pub const MAPPING: &str = "ticket_events.toml";

const MAPPING_TEXT: &str = r#"# The event log written by `deskpulse generate --event-log`: one row per change of a ticket.
table = "tickets"
source = "generator"

[event_log]
key = "ticket_id"
at = "changed_at"
status = "status"
resolved = ["resolved", "closed"]
closed = ["closed"]
group = "assignment_group"
first_response = ["in_progress"]
"#;

/// Columns derived from the events, which the log does not carry.
const DERIVED: [&str; 7] = [
    "opened_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "updated_at",
    "reassignment_count",
    "reopen_count",
];

/// Tickets whose events are interleaved with each other's.
const BLOCK: usize = 10_000;

/// Writes the event log of `dir/tickets.csv` and its mapping into `dir`. Returns the events.
pub fn write(dir: &Path) -> Result<u64> {
    std::fs::write(dir.join(MAPPING), MAPPING_TEXT)?;
    let tickets = dir.join("tickets.csv");
    let mut input = csv::Reader::from_path(&tickets)
        .with_context(|| format!("cannot read {}", tickets.display()))?;
    let col = |name: &str| {
        TICKET_HEADER
            .iter()
            .position(|c| *c == name)
            .expect("a ticket column")
    };
    let kept: Vec<usize> = (0..TICKET_HEADER.len())
        .filter(|i| !DERIVED.contains(&TICKET_HEADER[*i]))
        .collect();
    let tmp = dir.join(format!(".{FILE}.tmp"));
    let mut out = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, File::create(&tmp)?));
    let mut header: Vec<&str> = kept.iter().map(|i| TICKET_HEADER[*i]).collect();
    header.push("changed_at");
    out.write_record(&header)?;
    let (status, group) = (col("status"), col("assignment_group"));
    let mut written = 0u64;
    let mut block: Vec<Vec<Vec<String>>> = Vec::new();
    let mut flush = |block: &mut Vec<Vec<Vec<String>>>, out: &mut csv::Writer<_>| -> Result<()> {
        let rounds = block.iter().map(Vec::len).max().unwrap_or(0);
        for round in 0..rounds {
            for events in block.iter() {
                if let Some(e) = events.get(round) {
                    out.write_record(e)?;
                    written += 1;
                }
            }
        }
        block.clear();
        Ok(())
    };
    for record in input.records() {
        let r = record?;
        let get = |name: &str| r.get(col(name)).unwrap_or_default().to_string();
        let row = |at: &str, st: &str, grp: &str| -> Vec<String> {
            let mut fields: Vec<String> = kept
                .iter()
                .map(|i| match *i {
                    i if i == status => st.to_string(),
                    i if i == group => grp.to_string(),
                    i => r.get(i).unwrap_or_default().to_string(),
                })
                .collect();
            fields.push(at.to_string());
            fields
        };
        let opt = |name: &str| Some(get(name)).filter(|v| !v.is_empty());
        let (opened, updated, last) = (get("opened_at"), get("updated_at"), get("status"));
        let home = get("assignment_group");
        let moves: usize = get("reassignment_count").parse().unwrap_or(0);
        let reopened = get("reopen_count").parse::<u32>().unwrap_or(0) > 0;
        // Groups from `Triage` and back, `moves` changes ending in the ticket's own.
        let group_at = |i: usize| {
            if (moves - i).is_multiple_of(2) {
                home.clone()
            } else {
                "Triage".to_string()
            }
        };
        let mut events = vec![row(&opened, "new", &group_at(0))];
        for i in 1..=moves {
            events.push(row(&opened, "assigned", &group_at(i)));
        }
        if let Some(first) = opt("first_response_at") {
            events.push(row(&first, "in_progress", &home));
        }
        let (resolved, closed) = (opt("resolved_at"), opt("closed_at"));
        if reopened {
            let at = resolved.clone().unwrap_or_else(|| updated.clone());
            events.push(row(&at, "resolved", &home));
            events.push(row(&at, "reopened", &home));
        }
        if let Some(at) = &resolved {
            events.push(row(at, "resolved", &home));
        }
        if let Some(at) = &closed {
            events.push(row(at, "closed", &home));
        }
        let at_last = |e: &Vec<String>| e.last().cloned().unwrap_or_default();
        let state = events.last().expect("opened").clone();
        if at_last(&state) != updated || state[kept_index(&kept, status)] != last {
            events.push(row(&updated, &last, &home));
        }
        block.push(events);
        if block.len() == BLOCK {
            flush(&mut block, &mut out)?;
        }
    }
    flush(&mut block, &mut out)?;
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .flush()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    Ok(written)
}

/// Where column `i` of the tickets is among the kept columns.
fn kept_index(kept: &[usize], i: usize) -> usize {
    kept.iter().position(|k| *k == i).expect("a kept column")
}

//! The `generic` profile: CSV, JSON or NDJSON in the canonical column names, or in any names
//! through a mapping file (`--mapping map.toml`, format in [`crate::ingest::mapping`]).
//! Each file fills one table: the one `--table` names, else the mapping's `table`, else the one
//! the file name starts with (`tickets*.csv`, `ratings-2026.ndjson`, ...).

use std::path::Path;

use anyhow::{Context, Result, bail};

use rayon::prelude::*;

use crate::ingest::event_log::Events;
use crate::ingest::mapping::{self, Mapping, Rec};
use crate::ingest::reader::{self, Fault, Format, Header, Row};
use crate::ingest::{IngestOptions, Input, Output, Profile, for_each_record};
use crate::lake::Stageable;
use crate::model::{Scale, Table};

pub struct Generic {
    mapping: Mapping,
    table: Table,
    id: String,
}

impl Generic {
    pub fn new(opts: &IngestOptions, path: &Path) -> Result<Generic> {
        let (mapping, mapping_hash) = match &opts.mapping {
            Some(m) => (
                Mapping::from_file(m, "generic", opts.tz)?,
                Some(crate::ingest::sha256_hex(m)?),
            ),
            None => (Mapping::identity("generic", opts.tz), None),
        };
        let table = match opts.table.or(mapping.table) {
            Some(t) => t,
            None => table_from_name(path).with_context(|| {
                format!(
                    "{}: cannot tell which table this file holds: name it after the table \
                     (tickets*, interactions*, ratings*, adoptions*, surveys*, predictions*) or pass --table",
                    path.display()
                )
            })?,
        };
        let mut id = format!("generic[table={table}");
        if let Some(h) = mapping_hash {
            id.push_str(&format!(",mapping={}", &h[..16]));
        }
        if let Some(tz) = opts.tz {
            id.push_str(&format!(",tz={tz}"));
        }
        id.push(']');
        Ok(Generic { mapping, table, id })
    }
}

/// The table a file name starts with.
fn table_from_name(path: &Path) -> Result<Table> {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    for t in Table::ALL {
        if stem.starts_with(t.name()) {
            return Ok(t);
        }
    }
    bail!("no table name at the start of the file name")
}

impl Profile for Generic {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn read(&self, input: Input, out: &mut Output) -> Result<()> {
        match self.table {
            Table::Tickets => match &self.mapping.event_log {
                // Each row an event: folded into one ticket per key once all are read.
                Some(log) => {
                    let events = std::cell::RefCell::new(Events::new(log.clone()));
                    self.read_as(input, out, mapping::ticket, |out, line, event| {
                        events.borrow_mut().push(line, event, out)
                    })?;
                    events.into_inner().finish(out)
                }
                None => self.read_as(input, out, mapping::ticket, stage),
            },
            Table::Interactions => self.read_as(input, out, mapping::interaction, stage),
            Table::Ratings => self.read_as(input, out, |r| mapping::rating(r, Scale::Five), stage),
            Table::Adoptions => self.read_as(input, out, mapping::adoption, stage),
            Table::Surveys => self.read_as(input, out, mapping::survey, stage),
            Table::Predictions => self.read_as(input, out, mapping::prediction, stage),
            Table::Models => {
                bail!("models are written by `deskpulse predict --record`, not ingested")
            }
        }
    }
}

/// Stages a row as read.
fn stage<R: Stageable>(out: &mut Output, line: u64, row: R) -> Result<()> {
    out.push(line, row)
}

/// CSV records converted per chunk on all cores (each record is one row, independent of the
/// others); the rows are then staged in file order.
const CSV_CHUNK: usize = 4096;

impl Generic {
    /// Reads every record as a row of `R` (`convert`), handing each row to `push` with its line
    /// and rejecting the records that cannot be one.
    fn read_as<R: Stageable>(
        &self,
        input: Input,
        out: &mut Output,
        convert: impl Fn(&Rec<'_>) -> Result<R, Fault> + Sync,
        push: impl Fn(&mut Output, u64, R) -> Result<()>,
    ) -> Result<()> {
        let (m, table) = (&self.mapping, self.table);
        let check = |header: &Header| {
            m.refuse_duplicates(table, header)?;
            match m.missing_required(table, |c| header.contains(c)) {
                Some(col) => Err(format!("missing required column '{col}' for table {table}")),
                None => Ok(()),
            }
        };
        if input.format != Format::Csv {
            return for_each_record(
                input,
                out,
                check,
                |_| true,
                |_| table,
                |row, _, out| match convert(&m.rec(row, table)) {
                    Ok(r) => push(out, row.line(), r),
                    Err(f) => out.reject(table, row.line(), f, row.raw()),
                },
            );
        }
        let stage = |out: &mut Output, rows: Vec<Converted<R>>| {
            for r in rows {
                out.record();
                match r {
                    Ok((line, r)) => push(out, line, r)?,
                    Err((line, fault, raw)) => out.reject(table, line, fault, raw)?,
                }
            }
            anyhow::Ok(())
        };
        // A chunk's rows are staged (on this thread, in file order) while the next chunk is
        // converted on the pool: one after the other, the pool sat idle while this thread
        // staged.
        let mut converted = Vec::new();
        let mut plan = None;
        reader::read_csv_chunks(input.reader, check, CSV_CHUNK, |header, chunk| {
            let plan = &*plan.get_or_insert_with(|| m.plan(table, header));
            let mut next = Vec::new();
            rayon::in_place_scope(|s| {
                s.spawn(|_| {
                    next = chunk
                        .par_iter()
                        .map(|record| {
                            let row = record.row(header)?;
                            convert(&plan.rec(&row))
                                .map(|r| (row.line(), r))
                                .map_err(|f| (row.line(), f, row.raw()))
                        })
                        .collect();
                });
                stage(out, std::mem::take(&mut converted))
            })?;
            converted = next;
            Ok(())
        })?
        .map_err(anyhow::Error::msg)?;
        stage(out, converted)
    }
}

/// A CSV record converted: its line and row, or its line, fault and raw text.
type Converted<R> = Result<(u64, R), (u64, Fault, String)>;

#[cfg(test)]
mod tests;

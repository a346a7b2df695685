//! The `generic` profile: CSV, JSON or NDJSON in the canonical column names, or in any names
//! through a mapping file (`--mapping map.toml`, format in [`crate::ingest::mapping`]).
//! Each file fills one table: the one `--table` names, else the mapping's `table`, else the one
//! the file name starts with (`tickets*.csv`, `ratings-2026.ndjson`, ...).

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::ingest::mapping::{self, Mapping};
use crate::ingest::{IngestOptions, Input, Output, Profile, for_each_record};
use crate::model::{Adoption, Interaction, Rating, Scale, Survey, Table, Ticket};

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
                Some(crate::ingest::content_hash(m)?),
            ),
            None => (Mapping::identity("generic", opts.tz), None),
        };
        let table = match opts.table.or(mapping.table) {
            Some(t) => t,
            None => table_from_name(path).with_context(|| {
                format!(
                    "{}: cannot tell which table this file holds: name it after the table \
                     (tickets*, interactions*, ratings*, adoptions*, surveys*) or pass --table",
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
        let (m, table) = (&self.mapping, self.table);
        for_each_record(
            input,
            out,
            |header| match m.missing_required(table, |c| header.contains(c)) {
                Some(col) => Err(format!("missing required column '{col}' for table {table}")),
                None => Ok(()),
            },
            |_| true,
            |_| table,
            |row, _, out| {
                let r = m.rec(row, table);
                match table {
                    Table::Tickets => out.emit::<Ticket>(row, mapping::ticket(&r)),
                    Table::Interactions => out.emit::<Interaction>(row, mapping::interaction(&r)),
                    Table::Ratings => out.emit::<Rating>(row, mapping::rating(&r, Scale::Five)),
                    Table::Adoptions => out.emit::<Adoption>(row, mapping::adoption(&r)),
                    Table::Surveys => out.emit::<Survey>(row, mapping::survey(&r)),
                }
            },
        )
    }
}

#[cfg(test)]
mod tests;

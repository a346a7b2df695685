//! The `generic` profile: CSV, JSON or NDJSON in the canonical column names, or in any names
//! through a mapping file (`--mapping map.toml`, format in [`crate::ingest::mapping`]).
//! Each file fills one table: the one `--table` names, else the mapping's `table`, else the one
//! the file name starts with (`tickets*.csv`, `ratings-2026.ndjson`, ...).

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::ingest::event_log::Events;
use crate::ingest::mapping::{self, Mapping, Rec};
use crate::ingest::reader::{self, CsvChunk, Fault, Format, Header, Row};
use crate::ingest::{IngestOptions, Input, Output, Profile, for_each_record};
use crate::lake::{Batched, Stageable};
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
                    let push =
                        |out: &mut Output, line, event| events.borrow_mut().push(line, event, out);
                    self.read_as(input, out, mapping::ticket, Push::Each(&push))?;
                    events.into_inner().finish(out)
                }
                None => self.read_as(input, out, mapping::ticket, Push::Stage),
            },
            Table::Interactions => self.read_as(input, out, mapping::interaction, Push::Stage),
            Table::Ratings => {
                self.read_as(input, out, |r| mapping::rating(r, Scale::Five), Push::Stage)
            }
            Table::Adoptions => self.read_as(input, out, mapping::adoption, Push::Stage),
            Table::Surveys => self.read_as(input, out, mapping::survey, Push::Stage),
            Table::Predictions => self.read_as(input, out, mapping::prediction, Push::Stage),
            Table::Models => {
                bail!("models are written by `deskpulse predict --record`, not ingested")
            }
        }
    }
}

/// Where the rows read go.
enum Push<'p, R> {
    /// Into the lake.
    Stage,
    /// To a function, one by one, with their lines.
    Each(&'p dyn Fn(&mut Output, u64, R) -> Result<()>),
}

/// CSV records converted per chunk on all cores (each record is one row, independent of the
/// others), up to [`CSV_IN_FLIGHT`] chunks at once; the chunks are then staged in file order.
const CSV_CHUNK: usize = 2048;
const CSV_IN_FLIGHT: usize = 4;

/// A chunk of CSV records, converted: its rows (as Arrow batches when staged), and
/// the line, fault and raw text of each record that is not a row.
struct ConvertedChunk<R> {
    records: u64,
    rows: Converted<R>,
    bad: Vec<(u64, Fault, String)>,
}

enum Converted<R> {
    Rows(Vec<(u64, R)>),
    Batched(Batched<R>),
}

impl Generic {
    /// Reads every record as a row of `R` (`convert`), handing each row to `push` with its line
    /// and rejecting the records that cannot be one.
    fn read_as<R: Stageable>(
        &self,
        input: Input,
        out: &mut Output,
        convert: impl Fn(&Rec<'_>) -> Result<R, Fault> + Sync,
        push: Push<'_, R>,
    ) -> Result<()> {
        let (m, table) = (&self.mapping, self.table);
        let check = |header: &Header| {
            m.refuse_duplicates(table, header)?;
            match m.missing_required(table, |c| header.contains(c)) {
                Some(col) => Err(format!("missing required column '{col}' for table {table}")),
                None => Ok(()),
            }
        };
        let push_one = |out: &mut Output, line, r| match push {
            Push::Stage => out.push(line, r),
            Push::Each(f) => f(out, line, r),
        };
        if input.format != Format::Csv {
            return for_each_record(
                input,
                out,
                check,
                |_| true,
                |_| table,
                |row, _, out| match convert(&m.rec(row, table)) {
                    Ok(r) => push_one(out, row.line(), r),
                    Err(f) => out.reject(table, row.line(), f, row.raw()),
                },
            );
        }
        let stage = |out: &mut Output, chunk: ConvertedChunk<R>| {
            out.records(chunk.records);
            for (line, fault, raw) in chunk.bad {
                out.reject(table, line, fault, raw)?;
            }
            match chunk.rows {
                Converted::Batched(b) => out.push_batched(b),
                Converted::Rows(rows) => rows
                    .into_iter()
                    .try_for_each(|(line, r)| push_one(out, line, r)),
            }
        };
        let staged = matches!(push, Push::Stage);
        let (file, now) = (out.file.clone(), out.now);
        let file = &file;
        let plan = std::sync::OnceLock::new();
        let convert_chunk = |header: &Header, chunk: &CsvChunk| {
            let plan = plan.get_or_init(|| m.plan(table, header));
            let records = chunk.records();
            let mut rows = Vec::with_capacity(records.len());
            let mut lines = Vec::with_capacity(records.len());
            let mut bad = Vec::new();
            for record in records {
                let row = match record.row(header) {
                    Ok(row) => row,
                    Err(e) => {
                        bad.push(e);
                        continue;
                    }
                };
                match convert(&plan.rec(&row)) {
                    Ok(r) => {
                        rows.push(r);
                        lines.push(row.line());
                    }
                    Err(f) => bad.push((row.line(), f, row.raw())),
                }
            }
            let rows = match staged {
                true => Converted::Batched(Batched::new(rows, &lines, file, now)),
                false => Converted::Rows(lines.into_iter().zip(rows).collect()),
            };
            ConvertedChunk {
                records: records.len() as u64,
                rows,
                bad,
            }
        };
        // Each chunk is converted by a pool task of its own, and staged (on this thread, in
        // file order) when it and the chunks before it are done. Up to [`CSV_IN_FLIGHT`] chunks
        // are converted at once, so the pool's threads never wait for each other: when a chunk
        // was split among them and the next one waited for its slowest part, they were busy
        // about 57% of the time.
        let (done, finished) = std::sync::mpsc::channel();
        let mut order = InOrder::new();
        let read = rayon::in_place_scope(|s| {
            let read = reader::read_csv_chunks(input.reader, check, CSV_CHUNK, |header, chunk| {
                while order.in_flight() >= CSV_IN_FLIGHT {
                    order.wait(&finished, |p| stage(out, p))?;
                }
                let (header, done, convert_chunk) = (header.clone(), done.clone(), &convert_chunk);
                let seq = order.next_number();
                s.spawn(move |_| {
                    let converted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        convert_chunk(&header, &chunk)
                    }));
                    let _ = done.send((seq, converted));
                });
                Ok(())
            });
            // After an error, the chunks in flight finish unstaged.
            if matches!(read, Ok(Ok(()))) {
                while order.in_flight() > 0 {
                    order.wait(&finished, |p| stage(out, p))?;
                }
            }
            read
        })?;
        read.map_err(anyhow::Error::msg)
    }
}

/// Chunks converted on the pool, put back in file order: each is numbered when sent, and staged
/// when every chunk before it has been.
struct InOrder<T> {
    sent: usize,
    staged: usize,
    /// The converted chunks from `staged` on, `None` while still in flight.
    ready: std::collections::VecDeque<Option<T>>,
}

type Finished<T> = std::sync::mpsc::Receiver<(usize, std::thread::Result<T>)>;

impl<T> InOrder<T> {
    fn new() -> InOrder<T> {
        InOrder {
            sent: 0,
            staged: 0,
            ready: Default::default(),
        }
    }

    /// Numbers the next chunk sent.
    fn next_number(&mut self) -> usize {
        self.ready.push_back(None);
        self.sent += 1;
        self.sent - 1
    }

    fn in_flight(&self) -> usize {
        self.sent - self.staged
    }

    /// Waits for one more chunk to be converted, then stages those now in order.
    fn wait(
        &mut self,
        finished: &Finished<T>,
        mut stage: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let (seq, converted) = finished
            .recv()
            .expect("the sender lives as long as the read");
        let converted = converted.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        self.ready[seq - self.staged] = Some(converted);
        while let Some(Some(_)) = self.ready.front() {
            let next = self.ready.pop_front().flatten().expect("just seen");
            self.staged += 1;
            stage(next)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

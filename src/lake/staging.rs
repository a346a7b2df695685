use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::path::PathBuf;

use anyhow::{Context, Result};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::parquet::arrow::ArrowWriter;

use crate::model::{
    Adoption, Finding, Interaction, Micros, Prediction, Rating, RecordedModel, Reject, Survey,
    Table, TableRow, Ticket, findings_batch, rejects_batch,
};
use crate::sentiment::lang::ScoredLanguages;
use crate::timeparse::month_of;

use super::delta::{self, NewFile};
use super::merge::{
    Staged, batch_key_hashes, key_hash, key_hashes, keys_and_versions, merge_partition,
};
use super::parquet::{DataFile, lake_properties, staging_properties, write_parquet};
use super::side::{ManifestEntry, Side, manifest_batch, side_file, staged_rows};
use super::snapshot::Snapshot;
use super::store::Store;
use super::{AUTO_COMPACT_FILES, CommitCounts, Lake, TableCommit, WriteLock};

/// Rows kept in memory across all partitions before they are spilled to staged Parquet files.
const STAGING_ROW_BUDGET: usize = 200_000;
/// Partitions merged at once by a commit (fewer on fewer cores).
const MAX_PARALLEL_MERGES: usize = 2;
/// Staged files kept open across spills at most (each an open file descriptor): past this, a
/// spill finishes the files it does not write to, and those it writes to beyond the limit.
pub(super) const MAX_OPEN_STAGED_FILES: usize = 256;

/// Rows per chunk of a [`Buffer`]: a partition's rows are kept in chunks of fixed capacity, not
/// one growing vector, whose doubling copied every row and faulted in fresh pages again (a
/// seventh of the CPU time of an ingest, measured with perf).
const BUFFER_CHUNK_ROWS: usize = 8192;

/// Rows of one table waiting in memory, per partition (`""` for unpartitioned tables), in
/// chunks, in the order they were pushed.
pub struct Buffer<R> {
    partitions: BTreeMap<String, Vec<Chunk<R>>>,
    months: Months,
}

/// Rows pushed one by one, or a batch converted off the staging thread (see [`Batched`]).
enum Chunk<R> {
    Rows(Vec<R>),
    Batch(RecordBatch),
}

impl<R> Chunk<R> {
    fn len(&self) -> usize {
        match self {
            Chunk::Rows(rows) => rows.len(),
            Chunk::Batch(b) => b.num_rows(),
        }
    }
}

impl<R> Default for Buffer<R> {
    fn default() -> Self {
        Buffer {
            partitions: BTreeMap::new(),
            months: Months::default(),
        }
    }
}

/// Names the partition of a row of a partitioned table by its partition time. Rows come
/// roughly in time order, so a name is formatted once per UTC day, not once per row.
#[derive(Default)]
struct Months(Option<(i64, String)>);

impl Months {
    fn partition<R: TableRow>(&mut self, row: &R) -> &str {
        if R::TABLE.partition_column().is_none() {
            return "";
        }
        let t = row.partition_time();
        let day = t.div_euclid(86_400_000_000);
        if self.0.as_ref().is_none_or(|(d, _)| *d != day) {
            self.0 = Some((day, format!("month={}", month_of(t))));
        }
        &self.0.as_ref().expect("just set").1
    }
}

impl<R: TableRow> Buffer<R> {
    fn push(&mut self, row: R) {
        let partition = self.months.partition(&row);
        let chunks = match self.partitions.get_mut(partition) {
            Some(chunks) => chunks,
            None => self.partitions.entry(partition.to_string()).or_default(),
        };
        match chunks.last_mut() {
            Some(Chunk::Rows(chunk)) if chunk.len() < BUFFER_CHUNK_ROWS => chunk.push(row),
            _ => {
                let mut chunk = Vec::with_capacity(BUFFER_CHUNK_ROWS);
                chunk.push(row);
                chunks.push(Chunk::Rows(chunk));
            }
        }
    }
}

/// Rows converted to Arrow batches off the staging thread (by [`Batched::new`], on any thread),
/// with their findings, ready for [`Staging::push_batched`]: the staging thread then stages a
/// batch, not each row. Pushed one by one, every row was moved twice more on the staging thread
/// and its strings freed on another thread than the one that made them (perf: about a twentieth
/// of a CSV ingest's CPU).
pub struct Batched<R> {
    /// The batches, one per partition the rows fall in, each in the rows' order.
    parts: Vec<(String, RecordBatch)>,
    findings: Vec<Finding>,
    /// Per row, in order, for rows of tables whose rows' opening is tracked (tickets).
    opened: Vec<Opened>,
    _rows: std::marker::PhantomData<R>,
}

/// A ticket row of a [`Batched`]: what [`crate::ingest::Output`] compares across rows.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    /// Its key's hash.
    pub hash: u64,
    /// Its partition time (its opening).
    pub at: Micros,
    pub line: u64,
    /// Where it is: the index of its batch in `parts`, and its row there.
    part: usize,
    row: usize,
}

impl<R: TableRow> Batched<R> {
    /// `rows` read at `lines` of `source`, judged at `now` (see [`Staging::push_checked`]).
    pub fn new(rows: Vec<R>, lines: &[u64], source: &str, now: Micros) -> Batched<R> {
        assert_eq!(rows.len(), lines.len(), "a line per row");
        let mut findings = Vec::new();
        let mut opened = Vec::new();
        let mut months = Months::default();
        let mut names: Vec<String> = Vec::new();
        let mut sizes: Vec<usize> = Vec::new();
        let mut which = Vec::with_capacity(rows.len());
        for (row, &line) in rows.iter().zip(lines) {
            row_findings(row, source, line, now, &mut findings);
            let partition = months.partition(row);
            let p = match names.iter().rposition(|name| name == partition) {
                Some(p) => p,
                None => {
                    names.push(partition.to_string());
                    sizes.push(0);
                    names.len() - 1
                }
            };
            if R::TABLE == Table::Tickets {
                let hash = key_hash(&row.key());
                opened.push(Opened {
                    hash,
                    at: row.partition_time(),
                    line,
                    part: p,
                    row: sizes[p],
                });
            }
            sizes[p] += 1;
            which.push(p);
        }
        // Rows mostly come in time order, so a piece's rows are mostly of one month: then they
        // are not moved again.
        let parts = match names.len() {
            0 => Vec::new(),
            1 => vec![(names.remove(0), R::to_batch(&rows))],
            _ => {
                let mut split: Vec<Vec<R>> = sizes.iter().map(|n| Vec::with_capacity(*n)).collect();
                for (row, p) in rows.into_iter().zip(which) {
                    split[p].push(row);
                }
                names
                    .into_iter()
                    .zip(split)
                    .map(|(name, rows)| (name, R::to_batch(&rows)))
                    .collect()
            }
        };
        Batched {
            parts,
            findings,
            opened,
            _rows: std::marker::PhantomData,
        }
    }

    /// How many rows.
    pub fn rows(&self) -> u64 {
        self.parts.iter().map(|(_, b)| b.num_rows() as u64).sum()
    }

    /// How many findings the rows had.
    pub fn findings(&self) -> u64 {
        self.findings.len() as u64
    }

    /// Per ticket row, in order (empty for other tables).
    pub fn opened(&self) -> impl Iterator<Item = Opened> + '_ {
        self.opened.iter().copied()
    }

    /// The key of a row of [`Batched::opened`].
    pub fn opened_key(&self, o: Opened) -> String {
        let column = R::TABLE.key_columns()[0];
        let keys = self.parts[o.part]
            .1
            .column_by_name(column)
            .expect("a key column");
        keys.as_string::<i32>().value(o.row).to_string()
    }
}

/// Adds the findings of `row`'s fields, judged at `now`, to `out`.
fn row_findings<R: TableRow>(
    row: &R,
    source: &str,
    line: u64,
    now: Micros,
    out: &mut Vec<Finding>,
) {
    let mut found = Vec::new();
    row.findings(now, &mut found);
    for (column, rule, value) in found {
        out.push(Finding {
            table: R::TABLE,
            key: row.key().into_owned(),
            source_file: source.to_string(),
            line,
            column: column.to_string(),
            rule,
            value: Some(crate::timeparse::format_micros(value)),
        });
    }
}

/// Rows of one ingest on their way into the lake: buffered in memory, spilled to staged Parquet
/// files when the buffer is full, and merged into the lake's partitions by [`Staging::commit`].
pub struct Staging {
    dir: PathBuf,
    /// `dir`, for the staged files' names.
    store: Store,
    /// The lock of this staging's id, held while it lives (see [`Lake::stage`]).
    lock: (PathBuf, std::fs::File),
    tickets: Buffer<Ticket>,
    interactions: Buffer<Interaction>,
    ratings: Buffer<Rating>,
    adoptions: Buffer<Adoption>,
    surveys: Buffer<Survey>,
    predictions: Buffer<Prediction>,
    models: Buffer<RecordedModel>,
    buffered: usize,
    parts: BTreeMap<(Table, String), Vec<DataFile>>,
    next_part: usize,
    rejects: Vec<Reject>,
    reject_parts: Vec<PathBuf>,
    findings: Vec<Finding>,
    finding_parts: Vec<PathBuf>,
    /// The input this staging ingests, recorded in `_manifest` by the commit.
    manifest: Option<ManifestEntry>,
    /// Detect the language of texts and score those VADER reads (see `sentiment::lang`).
    sentiment: Option<ScoredLanguages>,
    /// Per partition of a table, its staged file, open across spills: each spill appends a row
    /// group, so an ingest leaves one file per partition, not one per spill (those were then
    /// compacted, read and written again on one core: 11 s of a 55 s ingest of 10 M tickets).
    open: OpenFiles,
    /// The spill being written in the background while the next rows are read (one at a time,
    /// so at most two buffers' worth of rows are in memory); it hands back the files it wrote to.
    writing: Option<std::thread::JoinHandle<Result<Vec<Spilled>>>>,
    /// Per staged partition of a table, its index in `tagged`: the order in which the table's
    /// partitions were first staged.
    indices: BTreeMap<(Table, String), u64>,
    /// Per table, each staged key as the top 48 bits of its hash and, in the low 16, the index
    /// of its partition; sorted by [`Staging::prepare`], so that a hash in two partitions is two
    /// neighbours (8 bytes a key: a hash map of the same was 50 bytes a key, 1.7 GB for the 32 M
    /// interactions of 10 M tickets). The spill jobs tag the hashes of the batches they write:
    /// a commit does not read the staged files back to hash their keys (about 0.2 s of mostly
    /// one core per file at 1 M tickets), nor gathers per-partition lists into one (0.5 s of one
    /// core at 10 M, faulting in the pages of a fresh 256 MB vector).
    tagged: BTreeMap<Table, Vec<u64>>,
}

/// The partition index in [`Staging::tagged`] of a lake partition with no staged rows.
const NOT_STAGED: u64 = 0xFFFF;

/// Staged files open for appending, by table and partition.
type OpenFiles = BTreeMap<(Table, String), ArrowWriter<File>>;

/// A merge of the staged rows against one snapshot, not committed yet.
pub(super) struct Merged {
    base: Snapshot,
    partitions: Vec<(Table, String)>,
    counts: BTreeMap<Table, CommitCounts>,
    /// Per table: the files written and the files they replace.
    changes: BTreeMap<Table, (Vec<NewFile>, Vec<DataFile>)>,
}

impl Merged {
    /// The files this merge adds to the lake.
    #[cfg(test)]
    pub(super) fn added_files(&self) -> impl Iterator<Item = &DataFile> {
        self.changes
            .values()
            .flat_map(|(a, _)| a.iter().map(|f| &f.file))
    }

    /// Deletes the files this merge wrote (it lost to a conflicting commit; no snapshot names
    /// them). Best effort: clean-up deletes what is left.
    fn discard(&self) {
        for (added, _) in self.changes.values() {
            for f in added {
                let _ = f.file.delete();
            }
        }
    }
}

/// What [`Staging::check_staged_keys`] found: the keys each partition loses to another, and
/// the partitions whose staged keys are all distinct.
struct StagedKeys {
    drops: HashMap<(Table, String), HashSet<String>>,
    distinct: HashSet<(Table, String)>,
}

/// One staged file to write: the rows are moved in, so it can run on another thread.
type SpillJob = Box<dyn FnOnce() -> Result<Spilled> + Send>;

/// What a spill job hands back: the partition's file if it stays open for the next spill, and
/// the tagged key hashes of the rows it wrote (see [`Staging::tagged`]).
#[derive(Default)]
struct Spilled {
    open: Option<((Table, String), ArrowWriter<File>)>,
    tagged: Option<(Table, Vec<u64>)>,
}

/// The entries of `tagged` (sorted, see [`Staging::tagged`]) whose 48-bit hash is `h`.
fn same_hash(tagged: &[u64], h: u64) -> &[u64] {
    let from = tagged.partition_point(|t| t >> 16 < h);
    let to = from + tagged[from..].partition_point(|t| t >> 16 == h);
    &tagged[from..to]
}

/// Row types that can be staged.
pub trait Stageable: TableRow + Send + 'static {
    fn buffer(s: &mut Staging) -> &mut Buffer<Self>;
}

macro_rules! stageable {
    ($t:ty, $field:ident) => {
        impl Stageable for $t {
            fn buffer(s: &mut Staging) -> &mut Buffer<Self> {
                &mut s.$field
            }
        }
    };
}
stageable!(Ticket, tickets);
stageable!(Interaction, interactions);
stageable!(Rating, ratings);
stageable!(Adoption, adoptions);
stageable!(Survey, surveys);
stageable!(Prediction, predictions);
stageable!(RecordedModel, models);

impl Staging {
    /// An empty staging area in `dir` (see [`Lake::stage`]).
    pub(super) fn new(dir: PathBuf, lock: (PathBuf, std::fs::File)) -> Staging {
        Staging {
            store: Store::local(dir.clone()),
            dir,
            lock,
            tickets: Buffer::default(),
            interactions: Buffer::default(),
            ratings: Buffer::default(),
            adoptions: Buffer::default(),
            surveys: Buffer::default(),
            predictions: Buffer::default(),
            models: Buffer::default(),
            buffered: 0,
            parts: BTreeMap::new(),
            next_part: 0,
            rejects: Vec::new(),
            reject_parts: Vec::new(),
            findings: Vec::new(),
            finding_parts: Vec::new(),
            manifest: None,
            sentiment: None,
            open: BTreeMap::new(),
            writing: None,
            indices: BTreeMap::new(),
            tagged: BTreeMap::new(),
        }
    }

    /// The staged files of rows, of every table and partition.
    #[cfg(test)]
    pub(super) fn staged_files(&self) -> impl Iterator<Item = &DataFile> {
        self.parts.values().flatten()
    }

    /// The staged files of rows, by table and partition.
    #[cfg(test)]
    pub(super) fn staged_parts(&self) -> &BTreeMap<(Table, String), Vec<DataFile>> {
        &self.parts
    }

    /// Records `entry` in `_manifest` with the commit (its `rows_stored` and `ingested_at` are
    /// set then), so an input is ingested and recorded at once or not at all.
    pub fn with_manifest(mut self, entry: ManifestEntry) -> Staging {
        self.manifest = Some(entry);
        self
    }

    /// Sets the language and sentiment of the text of rows that carry one (see
    /// [`TableRow::text`]), in parallel, as each buffer is spilled.
    pub fn with_sentiment(mut self, languages: ScoredLanguages) -> Staging {
        self.sentiment = Some(languages);
        self
    }

    /// Adds a row with the findings of its fields, judged at `now` (the moment of ingest);
    /// `source` and `line` say where it came from. Returns how many findings it had.
    pub fn push_checked<R: Stageable>(
        &mut self,
        row: R,
        source: &str,
        line: u64,
        now: Micros,
    ) -> Result<u64> {
        let mut found = Vec::new();
        row_findings(&row, source, line, now, &mut found);
        let n = found.len() as u64;
        for finding in found {
            self.push_finding(finding)?;
        }
        self.push(row)?;
        Ok(n)
    }

    /// Adds rows converted off this thread, with their findings (see [`Batched`]).
    pub fn push_batched<R: Stageable>(&mut self, batched: Batched<R>) -> Result<()> {
        for finding in batched.findings {
            self.push_finding(finding)?;
        }
        for (partition, batch) in batched.parts {
            let n = batch.num_rows();
            R::buffer(self)
                .partitions
                .entry(partition)
                .or_default()
                .push(Chunk::Batch(batch));
            self.buffered += n;
        }
        if self.buffered >= STAGING_ROW_BUDGET {
            self.spill()?;
        }
        Ok(())
    }

    /// Adds a row; spills all buffers to disk when the memory budget is reached.
    pub fn push<R: Stageable>(&mut self, row: R) -> Result<()> {
        R::buffer(self).push(row);
        self.buffered_one()
    }

    /// Counts one buffered row; spills every buffer when the memory budget is reached.
    fn buffered_one(&mut self) -> Result<()> {
        self.buffered += 1;
        if self.buffered >= STAGING_ROW_BUDGET {
            self.spill()?;
        }
        Ok(())
    }

    /// Adds a reject (spilled to disk like rows, so a file of bad rows stays in bounded memory).
    pub fn push_reject(&mut self, reject: Reject) -> Result<()> {
        self.rejects.push(reject);
        self.buffered_one()
    }

    /// Adds a finding (a kept row's contradictory field), spilled like rejects.
    pub fn push_finding(&mut self, finding: Finding) -> Result<()> {
        self.findings.push(finding);
        self.buffered_one()
    }

    /// Hands every buffered row to a background thread that writes them to staged files, and
    /// empties the buffers. Waits for the previous spill first. Staged file names are given out
    /// here, in push order, which is what decides ties between versions of a key.
    pub fn spill(&mut self) -> Result<()> {
        self.finish_writing()?;
        let mut jobs: Vec<SpillJob> = Vec::new();
        // Files this spill's jobs keep open for the next spill; the rest are finished.
        let mut slots = MAX_OPEN_STAGED_FILES;
        if !self.rejects.is_empty() {
            let path = self.next_path("rejects");
            self.reject_parts.push(path.clone());
            let rejects = std::mem::take(&mut self.rejects);
            jobs.push(Box::new(move || {
                let batch = rejects_batch(&rejects);
                write_parquet(&path, batch.schema(), [Ok(batch)], staging_properties())?;
                Ok(Spilled::default())
            }));
        }
        if !self.findings.is_empty() {
            let path = self.next_path("findings");
            self.finding_parts.push(path.clone());
            let findings = std::mem::take(&mut self.findings);
            jobs.push(Box::new(move || {
                let batch = findings_batch(&findings);
                write_parquet(&path, batch.schema(), [Ok(batch)], staging_properties())?;
                Ok(Spilled::default())
            }));
        }
        let tickets = std::mem::take(&mut self.tickets.partitions);
        self.spill_table(tickets, &mut jobs, &mut slots)?;
        let interactions = std::mem::take(&mut self.interactions.partitions);
        self.spill_table(interactions, &mut jobs, &mut slots)?;
        let ratings = std::mem::take(&mut self.ratings.partitions);
        self.spill_table(ratings, &mut jobs, &mut slots)?;
        let adoptions = std::mem::take(&mut self.adoptions.partitions);
        self.spill_table(adoptions, &mut jobs, &mut slots)?;
        let surveys = std::mem::take(&mut self.surveys.partitions);
        self.spill_table(surveys, &mut jobs, &mut slots)?;
        let predictions = std::mem::take(&mut self.predictions.partitions);
        self.spill_table(predictions, &mut jobs, &mut slots)?;
        let models = std::mem::take(&mut self.models.partitions);
        self.spill_table(models, &mut jobs, &mut slots)?;
        self.buffered = 0;
        // The files this spill does not write to stay open only while within the limit.
        if self.open.len() > slots {
            self.close_open()?;
        }
        if !jobs.is_empty() {
            // The files of a spill are written on the pool's threads: written one after the
            // other, they took longer than reading the next rows, and the reader waited.
            self.writing = Some(std::thread::spawn(move || {
                use rayon::prelude::*;
                jobs.into_par_iter()
                    .map(|job| job())
                    .collect::<Result<Vec<Spilled>>>()
            }));
        }
        Ok(())
    }

    /// Waits for the background spill, if one is running, and takes back the files it wrote to
    /// and the tagged key hashes of their rows.
    fn finish_writing(&mut self) -> Result<()> {
        if let Some(handle) = self.writing.take() {
            let written = handle
                .join()
                .map_err(|_| anyhow::anyhow!("the staging writer panicked"))??;
            for spilled in written {
                self.open.extend(spilled.open);
                if let Some((table, tagged)) = spilled.tagged {
                    self.tagged.entry(table).or_default().extend(tagged);
                }
            }
        }
        Ok(())
    }

    /// Writes every buffered row and finishes every staged file, ready to merge.
    fn finish_staged_files(&mut self) -> Result<()> {
        self.spill()?;
        self.finish_writing()?;
        self.close_open()
    }

    /// Finishes every open staged file (writes its footer): it is complete, ready to merge.
    fn close_open(&mut self) -> Result<()> {
        for (_, writer) in std::mem::take(&mut self.open) {
            writer.close()?;
        }
        Ok(())
    }

    fn next_path(&mut self, kind: &str) -> PathBuf {
        let path = self
            .dir
            .join(format!("{kind}-{:06}.parquet", self.next_part));
        self.next_part += 1;
        path
    }

    /// Adds a job per partition of `partitions` that appends its rows to the partition's open
    /// staged file, or to a new one; a job keeps its file open if it gets one of `slots`.
    fn spill_table<R: Stageable>(
        &mut self,
        partitions: BTreeMap<String, Vec<Chunk<R>>>,
        jobs: &mut Vec<SpillJob>,
        slots: &mut usize,
    ) -> Result<()> {
        for (partition, chunks) in partitions {
            if chunks.iter().all(|c| c.len() == 0) {
                continue;
            }
            let key = (R::TABLE, partition);
            let tag = self.partition_index(&key)?;
            let open = match self.open.remove(&key) {
                Some(writer) => Ok(writer),
                None => {
                    let path = self.next_path("part");
                    let name = path.file_name().expect("a file name").to_string_lossy();
                    let file = DataFile::new(&self.store, name);
                    self.parts.entry(key.clone()).or_default().push(file);
                    Err(path)
                }
            };
            let keep = *slots > 0;
            *slots = slots.saturating_sub(1);
            let sentiment = self.sentiment.clone();
            jobs.push(Box::new(move || {
                let mut batches: Vec<RecordBatch> = chunks
                    .into_iter()
                    .map(|c| match c {
                        Chunk::Rows(rows) => R::to_batch(&rows),
                        Chunk::Batch(b) => b,
                    })
                    .collect();
                if let Some(languages) = sentiment {
                    crate::sentiment::lang::annotate(&mut batches, R::TABLE, &languages);
                }
                let schema = R::TABLE.schema();
                let mut writer = match open {
                    Ok(writer) => writer,
                    Err(path) => {
                        let file = File::create(&path)
                            .with_context(|| format!("cannot create {}", path.display()))?;
                        // In the lake's format: a partition's staged files can become its data
                        // files.
                        ArrowWriter::try_new(file, schema.clone(), Some(lake_properties(&schema)))?
                    }
                };
                let mut tagged = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
                for batch in &batches {
                    batch_key_hashes(batch, R::TABLE, &mut tagged)?;
                    writer.write(batch)?;
                }
                for h in &mut tagged {
                    *h = (*h & !0xFFFF) | tag;
                }
                let open = if keep {
                    // The spill's rows end a row group: nothing is held in memory meanwhile.
                    writer.flush()?;
                    Some((key.clone(), writer))
                } else {
                    writer.close()?;
                    None
                };
                Ok(Spilled {
                    open,
                    tagged: Some((R::TABLE, tagged)),
                })
            }));
        }
        Ok(())
    }

    /// The index of a staged partition in [`Staging::tagged`], given when first staged.
    fn partition_index(&mut self, key: &(Table, String)) -> Result<u64> {
        if let Some(&p) = self.indices.get(key) {
            return Ok(p);
        }
        let p = self.indices.keys().filter(|(t, _)| *t == key.0).count() as u64;
        anyhow::ensure!(p < NOT_STAGED, "more than 65,535 partitions");
        self.indices.insert(key.clone(), p);
        Ok(p)
    }

    /// Merges every staged row into the lake, partition by partition, and commits them with the
    /// rejects, findings and manifest entry in one snapshot; then removes the staging
    /// directory. Returns what happened per table.
    ///
    /// Optimistic: the merge runs against the snapshot of the moment, without the lake's lock,
    /// so other writers commit meanwhile; only the commit itself takes the lock. If a writer
    /// committed in between, the merge still holds unless that writer replaced a file this one
    /// replaces or wrote one of its keys: then the merge is done again, under the lock, against
    /// the new snapshot (one retry; it cannot conflict again).
    pub fn commit(mut self, lake: &Lake) -> Result<BTreeMap<Table, CommitCounts>> {
        let merged = self.prepare(lake)?;
        self.finish(lake, merged)
    }

    /// The first half of [`Staging::commit`]: the merge against the newest snapshot, unlocked.
    pub(super) fn prepare(&mut self, lake: &Lake) -> Result<Merged> {
        self.finish_staged_files()?;
        self.sort_staged_keys();
        lake.writable()?;
        self.merge(lake, lake.snapshot()?)
    }

    /// The second half of [`Staging::commit`]: under the lock, the merge checked against the
    /// snapshot of now (and done again on a conflict), then published.
    pub(super) fn finish(
        self,
        lake: &Lake,
        mut merged: Merged,
    ) -> Result<BTreeMap<Table, CommitCounts>> {
        let lock = lake.lock()?;
        let latest = lake.snapshot()?;
        if latest.version != merged.base.version {
            if self.conflicts(lake, &merged, &latest)? {
                merged.discard();
                merged = self.merge(lake, latest)?;
            } else {
                merged.base = latest;
            }
        }
        self.publish(lake, merged, &lock)
    }

    /// [`Staging::commit`] for a caller that holds the lake's lock already (it read the lake to
    /// decide what to write, and nothing may commit in between).
    pub fn commit_locked(
        mut self,
        lake: &Lake,
        lock: &WriteLock,
    ) -> Result<BTreeMap<Table, CommitCounts>> {
        let merged = self.prepare(lake)?;
        self.publish(lake, merged, lock)
    }

    /// Merges the staged rows into the partitions of `base`, each into a new file that no
    /// snapshot names yet.
    fn merge(&self, lake: &Lake, base: Snapshot) -> Result<Merged> {
        // The current files of the tables this commit touches (each a read of its Delta log).
        let touched: BTreeSet<Table> = self.parts.keys().map(|(t, _)| *t).collect();
        let current: BTreeMap<Table, Vec<DataFile>> = touched
            .into_iter()
            .map(|t| Ok((t, lake.files_at(&base, t)?)))
            .collect::<Result<_>>()?;
        let StagedKeys { drops, distinct } = self.check_staged_keys(&current)?;
        let mut partitions: BTreeSet<&(Table, String)> = self.parts.keys().collect();
        partitions.extend(drops.keys());
        let none = HashSet::new();
        // Partitions merge independently, so on every core.
        // Each merge holds one key per staged row of its partition, so their number is capped:
        // memory must not grow with the machine's cores.
        use rayon::prelude::*;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(rayon::current_num_threads().min(MAX_PARALLEL_MERGES))
            .build()?;
        let partitions: Vec<(Table, String)> = partitions.into_iter().cloned().collect();
        let parts = &self.parts;
        let results = pool.install(|| {
            partitions
                .par_iter()
                .map(|key| {
                    let (table, partition) = key;
                    let existing: Vec<DataFile> = current[table]
                        .iter()
                        .filter(|f| f.partition() == partition)
                        .cloned()
                        .collect();
                    let dir = match partition.as_str() {
                        "" => table.name().to_string(),
                        p => format!("{}/{p}", table.name()),
                    };
                    let new_file = || {
                        let name = format!("{dir}/part-{}.parquet", uuid::Uuid::new_v4());
                        DataFile::new(lake.store(), name)
                    };
                    let staged = parts.get(key).map_or(&[][..], Vec::as_slice);
                    let moved = drops.get(key).unwrap_or(&none);
                    let staged = Staged {
                        files: staged,
                        distinct: distinct.contains(key),
                    };
                    merge_partition(*table, &existing, staged, moved, &new_file)
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let mut merged = Merged {
            base,
            partitions,
            counts: BTreeMap::new(),
            changes: BTreeMap::new(),
        };
        for (key, (c, change)) in merged.partitions.iter().zip(results) {
            let e = merged.counts.entry(key.0).or_default();
            e.stored += c.stored;
            e.superseded += c.superseded;
            e.replaced += c.replaced;
            if let Some((added, removed)) = change {
                let t = merged.changes.entry(key.0).or_default();
                t.0.extend(added);
                t.1.extend(removed);
            }
        }
        Ok(merged)
    }

    /// Whether the commits between `merged.base` and `latest` invalidate the merge: they
    /// replaced a file this merge replaces, or they added a row with one of the staged keys
    /// (which this merge could not see, and would leave twice).
    fn conflicts(&self, lake: &Lake, merged: &Merged, latest: &Snapshot) -> Result<bool> {
        for (table, (_, removed)) in &merged.changes {
            let before: HashSet<DataFile> =
                lake.files_at(&merged.base, *table)?.into_iter().collect();
            let now: HashSet<DataFile> = lake.files_at(latest, *table)?.into_iter().collect();
            if removed.iter().any(|f| !now.contains(f)) {
                return Ok(true);
            }
            let added: Vec<&DataFile> = now.iter().filter(|f| !before.contains(*f)).collect();
            if added.is_empty() {
                continue;
            }
            // On 48 bits of the hash: a collision only costs the merge done again.
            let tagged = self.tagged.get(table).map_or(&[][..], Vec::as_slice);
            for f in added {
                if key_hashes(f, *table)?
                    .iter()
                    .any(|h| !same_hash(tagged, h >> 16).is_empty())
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Commits a merge under the lake's lock: each table's new and replaced files as one Delta
    /// version, then the lake's next snapshot naming them all (the moment the commit becomes
    /// visible); then the side files, and compaction of the partitions written to.
    fn publish(
        self,
        lake: &Lake,
        merged: Merged,
        _lock: &WriteLock,
    ) -> Result<BTreeMap<Table, CommitCounts>> {
        let Merged {
            base,
            counts,
            changes,
            ..
        } = merged;
        // The side tables' rows go in the same commit: a snapshot's rejects, findings and
        // manifest are those of its rows.
        let mut commits: Vec<TableCommit> = changes
            .into_iter()
            .map(|(t, (added, removed))| (t.into(), added, removed))
            .collect();
        let mut manifest = self.manifest.clone();
        if let Some(m) = &mut manifest {
            m.rows_stored = counts.values().map(|c| c.stored).sum();
            m.ingested_at = chrono::Utc::now().timestamp_micros();
        }
        let sides = [
            (
                Side::Rejects,
                side_file(lake.store(), Side::Rejects, staged_rows(&self.reject_parts))?,
            ),
            (
                Side::Findings,
                side_file(
                    lake.store(),
                    Side::Findings,
                    staged_rows(&self.finding_parts),
                )?,
            ),
            (
                Side::Manifest,
                match &manifest {
                    Some(m) => side_file(
                        lake.store(),
                        Side::Manifest,
                        [Ok(manifest_batch(std::slice::from_ref(m)))],
                    )?,
                    None => None,
                },
            ),
        ];
        for (side, file) in sides {
            if let Some(f) = file {
                commits.push((side.def(), vec![f], Vec::new()));
            }
        }
        if !commits.is_empty() {
            // What the commit was: the input it ingests, else the staging's name.
            let label = match &manifest {
                Some(m) => format!("ingest {}", m.source_file),
                None => self
                    .dir
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            };
            lake.commit_tables(&base, &commits, delta::Operation::Write, &label)?;
        }
        self.remove()?;
        if !commits.is_empty() {
            // Appends leave a file per commit: keep the tables written to few files. The commit
            // is done whatever happens here; a failed compaction is retried by the next one.
            let written: BTreeSet<(String, String)> = commits
                .iter()
                .flat_map(|(table, added, _)| {
                    added
                        .iter()
                        .map(|f| (table.name.to_string(), f.file.partition().to_string()))
                })
                .collect();
            if let Err(e) = lake.compact_partitions(AUTO_COMPACT_FILES, Some(&written)) {
                eprintln!("deskpulse: warning: compaction after the commit failed: {e:#}");
            }
        }
        Ok(counts)
    }

    /// Each staged partition of `table` and its index in [`Staging::tagged`].
    fn staged_partitions(&self, table: Table) -> BTreeMap<&str, u64> {
        let of_table = self.indices.iter().filter(|((t, _), _)| *t == table);
        of_table.map(|((_, part), p)| (part.as_str(), *p)).collect()
    }

    /// Per staged partition, the 48-bit hashes of its keys in [`Staging::tagged`] (low 16 bits
    /// zero), sorted.
    #[cfg(test)]
    pub(super) fn tagged_by_partition(&self) -> BTreeMap<(Table, String), Vec<u64>> {
        let mut out = BTreeMap::new();
        for (table, tagged) in &self.tagged {
            for (part, p) in self.staged_partitions(*table) {
                let mine = tagged.iter().filter(|t| *t & 0xFFFF == p);
                let hashes = mine.map(|t| t & !0xFFFF).collect();
                out.insert((*table, part.to_string()), hashes);
            }
        }
        out
    }

    /// Sorts each table's [`Staging::tagged`] key hashes.
    fn sort_staged_keys(&mut self) {
        use rayon::prelude::*;
        for tagged in self.tagged.values_mut() {
            tagged.par_sort_unstable();
        }
    }

    /// The keys each partition must lose because the winning version of the same key lies in
    /// another partition: a ticket whose `opened_at` moved to another month keeps one row, the
    /// newest version's (ties go to the staged row, as within a partition). The lake's
    /// partitions are read for their key and version columns only.
    ///
    /// Memory: a first pass reads the staged keys' 48-bit hashes and partitions of `tagged` (8
    /// bytes a key, so 32 million staged interactions take 256 MB); only the keys whose hash
    /// shows up in two partitions (in practice the moved tickets, plus the odd hash collision)
    /// are then resolved exactly, by their full key. The same pass tells which partitions'
    /// staged keys are all distinct (no two share those 48 bits).
    fn check_staged_keys(&self, current: &BTreeMap<Table, Vec<DataFile>>) -> Result<StagedKeys> {
        let mut drops: HashMap<(Table, String), HashSet<String>> = HashMap::new();
        let mut distinct: HashSet<(Table, String)> = HashSet::new();
        let tables: BTreeSet<Table> = self
            .parts
            .keys()
            // Every partitioned table: a ticket's `opened_at` changes between versions, and an
            // event's time can too (Zendesk dates a changed rating by its update). Events have
            // no version column, so the last ingested wins.
            .filter(|(t, _)| t.partition_column().is_some())
            .map(|(t, _)| *t)
            .collect();
        for table in tables {
            // Every file that may hold a staged key, with its partition's name.
            let mut files: Vec<(String, DataFile, bool)> = Vec::new();
            for ((t, part), staged) in &self.parts {
                if *t == table {
                    files.extend(staged.iter().map(|f| (part.clone(), f.clone(), true)));
                }
            }
            for f in current[&table].iter().cloned() {
                files.push((f.partition().to_string(), f, false));
            }
            let staged = self.staged_partitions(table);
            let index = |part: &str| staged.get(part).copied().unwrap_or(NOT_STAGED);

            // Pass 1: in the sorted staged hashes (`tagged`), a hash in two partitions is two
            // neighbours; then each lake key is looked up in them.
            let tagged = self.tagged.get(&table).map_or(&[][..], Vec::as_slice);
            let mut suspects: HashSet<u64, foldhash::fast::RandomState> = HashSet::default();
            let mut repeats: HashSet<u64> = HashSet::new();
            for w in tagged.windows(2) {
                if w[0] == w[1] {
                    repeats.insert(w[0] & 0xFFFF);
                } else if w[0] >> 16 == w[1] >> 16 {
                    suspects.insert(w[0] >> 16);
                }
            }
            for (part, p) in &staged {
                if !repeats.contains(p) {
                    distinct.insert((table, part.to_string()));
                }
            }
            // The lake files holding a key staged (by hash) in another partition.
            let mut marked = vec![false; files.len()];
            for (i, (part, f, is_staged)) in files.iter().enumerate() {
                if *is_staged {
                    continue;
                }
                let p = index(part);
                for h in key_hashes(f, table)? {
                    let h = h >> 16;
                    if same_hash(tagged, h).iter().any(|t| t & 0xFFFF != p) {
                        suspects.insert(h);
                        marked[i] = true;
                    }
                }
            }
            if suspects.is_empty() {
                continue;
            }

            // Pass 2, exact, for the suspects only: the partitions each key is in, and the
            // winning (partition, version); staged files come first, so a tie in the lake loses.
            // It reads only the files that can hold a suspect: the staged files of the
            // partitions a suspect's hash is staged in, and the marked lake files (a suspect is
            // staged in two partitions, or came from a lake key staged in another one, so every
            // lake key with a suspect's hash was marked). At 10 M tickets the 32 M interactions
            // have a 48-bit collision or two, and reading every staged file for them took 2 s.
            let suspect_parts: HashSet<u64> = suspects
                .iter()
                .flat_map(|h| same_hash(tagged, *h))
                .map(|t| t & 0xFFFF)
                .collect();
            let mut found: HashMap<String, (BTreeSet<String>, String, i64)> = HashMap::new();
            for (i, (part, f, staged)) in files.iter().enumerate() {
                let may_hold = match staged {
                    true => suspect_parts.contains(&index(part)),
                    false => marked[i],
                };
                if !may_hold {
                    continue;
                }
                for (key, version) in keys_and_versions(f, table)? {
                    if !suspects.contains(&(key_hash(&key) >> 16)) {
                        continue;
                    }
                    if *staged {
                        let e = found
                            .entry(key)
                            .or_insert_with(|| (BTreeSet::new(), part.clone(), version));
                        e.0.insert(part.clone());
                        if version >= e.2 {
                            (e.1, e.2) = (part.clone(), version);
                        }
                    } else if let Some(e) = found.get_mut(&key) {
                        e.0.insert(part.clone());
                        if version > e.2 {
                            (e.1, e.2) = (part.clone(), version);
                        }
                    }
                }
            }
            for (key, (parts, winner, _)) in found {
                for p in parts.into_iter().filter(|p| *p != winner) {
                    drops.entry((table, p)).or_default().insert(key.clone());
                }
            }
        }
        Ok(StagedKeys { drops, distinct })
    }

    /// Drops everything staged (nothing reaches the lake).
    pub fn abort(mut self) -> Result<()> {
        // Its outcome no longer matters, but it must not write into a removed directory.
        let _ = self.finish_writing();
        self.remove()
    }

    /// Removes the staging directory, then its lock file (still held, so a writer waiting for
    /// it sees it gone and takes a new one).
    fn remove(&self) -> Result<()> {
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)?;
        }
        match fs::remove_file(&self.lock.0) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

//! The Parquet lake: one directory per table, hive-partitioned by month, zstd-compressed.
//!
//! Layout:
//! ```text
//! lake/tickets/month=2026-01/data.parquet      (also interactions, ratings)
//! lake/adoptions/data.parquet                   (also surveys: small, unpartitioned)
//! lake/_rejects/<content-hash>.parquet          (one file per ingested input)
//! lake/_findings/<content-hash>.parquet         (likewise: kept rows with a contradictory field)
//! lake/_manifest/data.parquet                   (one row per ingested input)
//! lake/_staging/<content-hash>/...              (private to a running ingest)
//! ```
//! Every file is written under a hidden temporary name, fsync'd and renamed into place, so a reader
//! sees either the old file or the new one. A partition holds exactly one file, and each key
//! appears in it once: a commit merges the staged rows with the partition's current file.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use crate::model::{
    Adoption, Finding, Interaction, Micros, Rating, Reject, Survey, Table, TableRow, Ticket,
    findings_batch, rejects_batch, timestamp_type,
};
use crate::sentiment::lang::ScoredLanguages;
use crate::timeparse::month_of;

/// Rows kept in memory across all partitions before they are spilled to staged Parquet files.
const STAGING_ROW_BUDGET: usize = 200_000;
/// Partitions merged at once by a commit (fewer on fewer cores).
const MAX_PARALLEL_MERGES: usize = 2;
/// Rows per Parquet row group in the lake (smaller groups prune and parallelise better).
const ROW_GROUP_ROWS: usize = 256 * 1024;
/// Testing hook: abort the process after this many temporary files were written and before the
/// next rename, to prove that a crash at that point leaves the lake readable and complete.
const CRASH_ENV: &str = "DESKPULSE_CRASH_BEFORE_RENAME";

/// A lake directory.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
}

/// One ingested input, as recorded in `_manifest`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestEntry {
    pub content_hash: String,
    pub profile: String,
    pub source_file: String,
    pub ingested_at: Micros,
    pub records: u64,
    pub rows_stored: u64,
    pub rows_rejected: u64,
}

/// What a commit did to one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitCounts {
    /// Staged rows now in the lake (new keys, or newer versions of existing ones).
    pub stored: u64,
    /// Staged rows that lost to a newer version of the same key (staged or already in the lake).
    pub superseded: u64,
    /// Rows that were in the lake and were replaced by a newer version.
    pub replaced: u64,
}

impl Lake {
    /// Opens (and creates, if needed) a lake directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Lake> {
        let root = root.into();
        fs::create_dir_all(&root)
            .with_context(|| format!("cannot create lake directory {}", root.display()))?;
        Ok(Lake { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn table_dir(&self, table: Table) -> PathBuf {
        self.root.join(table.name())
    }

    /// The data files of a table, in partition order.
    pub fn files(&self, table: Table) -> Result<Vec<PathBuf>> {
        let dir = self.table_dir(table);
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out);
        }
        if table.partition_column().is_none() {
            let f = dir.join("data.parquet");
            if f.exists() {
                out.push(f);
            }
            return Ok(out);
        }
        let mut parts: Vec<PathBuf> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("month="))
            })
            .collect();
        parts.sort();
        for p in parts {
            let f = p.join("data.parquet");
            if f.exists() {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Reads a whole table (or some of its columns). For tests and small tables: the engine is
    /// the way to query a large lake.
    pub fn scan(&self, table: Table, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for f in self.files(table)? {
            out.extend(read_parquet(&f, columns)?);
        }
        Ok(out)
    }

    /// Rows in a table (from Parquet footers; no data is read).
    pub fn row_count(&self, table: Table) -> Result<u64> {
        self.files(table)?
            .iter()
            .map(|f| parquet_rows(f))
            .sum::<Result<u64>>()
    }

    /// The files of a side table (`_rejects`, `_findings`: one per ingested input), sorted.
    pub fn side_files(&self, dir: &str) -> Result<Vec<PathBuf>> {
        let dir = self.root.join(dir);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut files: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Rows in `_rejects`.
    pub fn reject_count(&self) -> Result<u64> {
        self.side_count("_rejects")
    }

    /// Rows in `_findings`.
    pub fn finding_count(&self) -> Result<u64> {
        self.side_count("_findings")
    }

    fn side_count(&self, dir: &str) -> Result<u64> {
        self.side_files(dir)?.iter().map(|f| parquet_rows(f)).sum()
    }

    /// Every reject recorded in the lake.
    pub fn rejects(&self) -> Result<Vec<Reject>> {
        let mut out = Vec::new();
        let files = self.side_files("_rejects")?;
        for f in files {
            for batch in read_parquet(&f, None)? {
                let col = |n: &str| batch.column_by_name(n).expect("rejects schema").clone();
                let (file, line, column, reason, raw) = (
                    col("source_file"),
                    col("line"),
                    col("column"),
                    col("reason"),
                    col("raw"),
                );
                let line = line.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
                for i in 0..batch.num_rows() {
                    out.push(Reject {
                        source_file: file.as_string::<i32>().value(i).to_string(),
                        line: line.value(i),
                        column: (!column.is_null(i))
                            .then(|| column.as_string::<i32>().value(i).to_string()),
                        reason: reason.as_string::<i32>().value(i).to_string(),
                        raw: raw.as_string::<i32>().value(i).to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn manifest_path(&self) -> PathBuf {
        self.root.join("_manifest").join("data.parquet")
    }

    /// Every input ingested so far.
    pub fn manifest(&self) -> Result<Vec<ManifestEntry>> {
        let path = self.manifest_path();
        let mut out = Vec::new();
        if !path.exists() {
            return Ok(out);
        }
        for b in read_parquet(&path, None)? {
            let s = |n: &str| {
                b.column_by_name(n)
                    .expect("manifest schema")
                    .as_string::<i32>()
                    .clone()
            };
            let u = |n: &str| {
                b.column_by_name(n)
                    .expect("manifest schema")
                    .as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
                    .clone()
            };
            let (hash, profile, file) = (s("content_hash"), s("profile"), s("source_file"));
            let at = b
                .column_by_name("ingested_at")
                .expect("manifest schema")
                .as_primitive::<TimestampMicrosecondType>()
                .clone();
            let (records, stored, rejected) = (u("records"), u("rows_stored"), u("rows_rejected"));
            for i in 0..b.num_rows() {
                out.push(ManifestEntry {
                    content_hash: hash.value(i).to_string(),
                    profile: profile.value(i).to_string(),
                    source_file: file.value(i).to_string(),
                    ingested_at: at.value(i),
                    records: records.value(i),
                    rows_stored: stored.value(i),
                    rows_rejected: rejected.value(i),
                });
            }
        }
        Ok(out)
    }

    /// Whether this content was already ingested with this profile.
    pub fn already_ingested(&self, content_hash: &str, profile: &str) -> Result<bool> {
        Ok(self
            .manifest()?
            .iter()
            .any(|e| e.content_hash == content_hash && e.profile == profile))
    }

    /// Appends one entry to `_manifest` (rewritten atomically: it is small).
    pub fn record_ingest(&self, entry: ManifestEntry) -> Result<()> {
        let mut all = self.manifest()?;
        all.push(entry);
        fs::create_dir_all(self.root.join("_manifest"))?;
        let batch = manifest_batch(&all);
        write_parquet_atomic(
            &self.manifest_path(),
            batch.schema(),
            [Ok(batch)],
            lake_properties(),
        )
    }

    /// Takes the lake's write lock (an OS file lock on `_lock`, released when the holder exits,
    /// even by a crash): one writer at a time, so two ingests never interleave their merges.
    pub fn lock(&self) -> Result<WriteLock> {
        let path = self.root.join("_lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(WriteLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another deskpulse process is writing to the lake {} (wait for it to finish)",
                self.root.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => Err(e).context("cannot lock the lake"),
        }
    }

    /// Starts staging the rows of one ingest under `_staging/<id>` (removing leftovers of a crashed
    /// run with the same id).
    pub fn stage(&self, id: &str) -> Result<Staging> {
        let dir = self.root.join("_staging").join(id);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        Ok(Staging {
            dir,
            tickets: Buffer::default(),
            interactions: Buffer::default(),
            ratings: Buffer::default(),
            adoptions: Buffer::default(),
            surveys: Buffer::default(),
            buffered: 0,
            parts: BTreeMap::new(),
            next_part: 0,
            rejects: Vec::new(),
            reject_parts: Vec::new(),
            findings: Vec::new(),
            finding_parts: Vec::new(),
            sentiment: None,
            writing: None,
        })
    }
}

/// Proof that this process holds the lake's write lock; dropping it releases the lock.
pub struct WriteLock {
    _file: File,
}

/// Rows of one table waiting in memory, per partition (`""` for unpartitioned tables).
pub struct Buffer<R> {
    partitions: BTreeMap<String, Vec<R>>,
    /// The UTC day of the last row's partition time and its partition's name: rows come
    /// roughly in time order, so the name is formatted once per day, not once per row.
    last_day: Option<(i64, String)>,
}

impl<R> Default for Buffer<R> {
    fn default() -> Self {
        Buffer {
            partitions: BTreeMap::new(),
            last_day: None,
        }
    }
}

impl<R: TableRow> Buffer<R> {
    fn push(&mut self, row: R) {
        let partition = match R::TABLE.partition_column() {
            None => "",
            Some(_) => {
                let t = row.partition_time();
                let day = t.div_euclid(86_400_000_000);
                match &self.last_day {
                    Some((d, name)) if *d == day => name,
                    _ => {
                        let name = format!("month={}", month_of(t));
                        &self.last_day.insert((day, name)).1
                    }
                }
            }
        };
        match self.partitions.get_mut(partition) {
            Some(rows) => rows.push(row),
            None => {
                self.partitions.insert(partition.to_string(), vec![row]);
            }
        }
    }
}

/// Rows of one ingest on their way into the lake: buffered in memory, spilled to staged Parquet
/// files when the buffer is full, and merged into the lake's partitions by [`Staging::commit`].
pub struct Staging {
    dir: PathBuf,
    tickets: Buffer<Ticket>,
    interactions: Buffer<Interaction>,
    ratings: Buffer<Rating>,
    adoptions: Buffer<Adoption>,
    surveys: Buffer<Survey>,
    buffered: usize,
    parts: BTreeMap<(Table, String), Vec<PathBuf>>,
    next_part: usize,
    rejects: Vec<Reject>,
    reject_parts: Vec<PathBuf>,
    findings: Vec<Finding>,
    finding_parts: Vec<PathBuf>,
    /// Detect the language of texts and score those VADER reads (see `sentiment::lang`).
    sentiment: Option<ScoredLanguages>,
    /// The spill being written in the background while the next rows are read (one at a time,
    /// so at most two buffers' worth of rows are in memory).
    writing: Option<std::thread::JoinHandle<Result<()>>>,
}

/// One staged file to write: the rows are moved in, so it can run on another thread.
type SpillJob = Box<dyn FnOnce() -> Result<()> + Send>;

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

impl Staging {
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
        row.findings(now, &mut found);
        let n = found.len() as u64;
        for (column, rule, value) in found {
            self.push_finding(Finding {
                table: R::TABLE,
                key: row.key(),
                source_file: source.to_string(),
                line,
                column: column.to_string(),
                rule,
                value: Some(crate::timeparse::format_micros(value)),
            })?;
        }
        self.push(row)?;
        Ok(n)
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
        if !self.rejects.is_empty() {
            let path = self.next_path("rejects");
            self.reject_parts.push(path.clone());
            let rejects = std::mem::take(&mut self.rejects);
            jobs.push(Box::new(move || {
                let batch = rejects_batch(&rejects);
                write_parquet(&path, batch.schema(), [Ok(batch)], staging_properties())
            }));
        }
        if !self.findings.is_empty() {
            let path = self.next_path("findings");
            self.finding_parts.push(path.clone());
            let findings = std::mem::take(&mut self.findings);
            jobs.push(Box::new(move || {
                let batch = findings_batch(&findings);
                write_parquet(&path, batch.schema(), [Ok(batch)], staging_properties())
            }));
        }
        let tickets = std::mem::take(&mut self.tickets.partitions);
        self.spill_table(tickets, &mut jobs);
        let interactions = std::mem::take(&mut self.interactions.partitions);
        self.spill_table(interactions, &mut jobs);
        let ratings = std::mem::take(&mut self.ratings.partitions);
        self.spill_table(ratings, &mut jobs);
        let adoptions = std::mem::take(&mut self.adoptions.partitions);
        self.spill_table(adoptions, &mut jobs);
        let surveys = std::mem::take(&mut self.surveys.partitions);
        self.spill_table(surveys, &mut jobs);
        self.buffered = 0;
        if !jobs.is_empty() {
            self.writing = Some(std::thread::spawn(move || {
                jobs.into_iter().try_for_each(|job| job())
            }));
        }
        Ok(())
    }

    /// Waits for the background spill, if one is running, and returns its outcome.
    fn finish_writing(&mut self) -> Result<()> {
        match self.writing.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| anyhow::anyhow!("the staging writer panicked"))?,
            None => Ok(()),
        }
    }

    fn next_path(&mut self, kind: &str) -> PathBuf {
        let path = self
            .dir
            .join(format!("{kind}-{:06}.parquet", self.next_part));
        self.next_part += 1;
        path
    }

    fn spill_table<R: Stageable>(
        &mut self,
        partitions: BTreeMap<String, Vec<R>>,
        jobs: &mut Vec<SpillJob>,
    ) {
        for (partition, mut rows) in partitions {
            if rows.is_empty() {
                continue;
            }
            let path = self.next_path("part");
            self.parts
                .entry((R::TABLE, partition))
                .or_default()
                .push(path.clone());
            let sentiment = self.sentiment.clone();
            jobs.push(Box::new(move || {
                if let Some(languages) = sentiment {
                    crate::sentiment::lang::annotate(&mut rows, &languages);
                }
                let batch = R::to_batch(&rows);
                write_parquet(&path, batch.schema(), [Ok(batch)], staging_properties())
            }));
        }
    }

    /// Merges every staged row into the lake, partition by partition, writes the rejects to
    /// `_rejects/<rejects_name>.parquet` (replacing those of an earlier, interrupted run) and
    /// removes the staging directory. Returns what happened per table.
    pub fn commit(
        mut self,
        lake: &Lake,
        rejects_name: &str,
    ) -> Result<BTreeMap<Table, CommitCounts>> {
        self.spill()?;
        self.finish_writing()?;
        let drops = self.cross_partition_drops(lake)?;
        let mut partitions: BTreeSet<&(Table, String)> = self.parts.keys().collect();
        partitions.extend(drops.keys());
        let none = HashSet::new();
        // Partitions merge independently, so on every core; each new file stays hidden until all
        // are written, then they are put in place in partition order (a failed merge changes
        // nothing visible; a crash among the renames leaves whole files, as before).
        // Each merge holds one key per row of its partition, so their number is capped: memory
        // must not grow with the machine's cores.
        use rayon::prelude::*;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(rayon::current_num_threads().min(MAX_PARALLEL_MERGES))
            .build()?;
        let partitions: Vec<&(Table, String)> = partitions.into_iter().collect();
        let merged = pool.install(|| {
            partitions
                .par_iter()
                .map(|key| {
                    let (table, partition) = key;
                    let dir = if partition.is_empty() {
                        lake.table_dir(*table)
                    } else {
                        lake.table_dir(*table).join(partition)
                    };
                    fs::create_dir_all(&dir)?;
                    let target = dir.join("data.parquet");
                    let staged = self.parts.get(*key).map_or(&[][..], Vec::as_slice);
                    merge_partition(*table, &target, staged, drops.get(*key).unwrap_or(&none))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let mut counts: BTreeMap<Table, CommitCounts> = BTreeMap::new();
        for (key, (c, change)) in partitions.iter().zip(merged) {
            change.apply()?;
            let e = counts.entry(key.0).or_default();
            e.stored += c.stored;
            e.superseded += c.superseded;
            e.replaced += c.replaced;
        }
        let schemas = [
            (
                "_rejects",
                &self.reject_parts,
                crate::model::rejects_schema(),
            ),
            (
                "_findings",
                &self.finding_parts,
                crate::model::findings_schema(),
            ),
        ];
        for (dir, parts, schema) in schemas {
            write_side_file(&lake.root.join(dir), rejects_name, parts, schema)?;
        }
        fs::remove_dir_all(&self.dir)?;
        Ok(counts)
    }

    /// The keys each partition must lose because the winning version of the same key lies in
    /// another partition: a ticket whose `opened_at` moved to another month keeps one row, the
    /// newest version's (ties go to the staged row, as within a partition). The lake's
    /// partitions are read for their key and version columns only.
    ///
    /// Memory: a first pass keeps one 64-bit hash and partition per staged key (16 bytes, so
    /// ten million staged tickets fit in a few hundred MB); only the keys whose hash shows up
    /// in two partitions (in practice the moved tickets, plus the odd hash collision) are then
    /// resolved exactly, by their full key.
    fn cross_partition_drops(
        &self,
        lake: &Lake,
    ) -> Result<HashMap<(Table, String), HashSet<String>>> {
        let mut drops: HashMap<(Table, String), HashSet<String>> = HashMap::new();
        let tables: BTreeSet<Table> = self
            .parts
            .keys()
            // Versioned tables only (tickets): an interaction or a rating is an immutable event
            // whose time does not change between exports.
            .filter(|(t, _)| t.partition_column().is_some() && t.version_column().is_some())
            .map(|(t, _)| *t)
            .collect();
        for table in tables {
            // Every file that may hold a staged key, with its partition's name.
            let mut files: Vec<(String, PathBuf, bool)> = Vec::new();
            for ((t, part), staged) in &self.parts {
                if *t == table {
                    files.extend(staged.iter().map(|f| (part.clone(), f.clone(), true)));
                }
            }
            for f in lake.files(table)? {
                let part = f
                    .parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((part, f, false));
            }
            let names: Vec<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
            let index = |p: &str| names.iter().position(|n| *n == p).unwrap_or(0) as u32;

            // Pass 1: per staged key hash, its first partition and whether it has another one.
            let mut seen: FastMap<u64, (u32, bool)> = FastMap::default();
            let mut suspects: HashSet<u64, foldhash::fast::RandomState> = HashSet::default();
            for (part, f, staged) in &files {
                let p = index(part);
                for (key, _) in keys_and_versions(f, table)? {
                    let h = key_hash(&key);
                    if *staged {
                        let e = seen.entry(h).or_insert((p, false));
                        if e.0 != p && !e.1 {
                            e.1 = true;
                            suspects.insert(h);
                        }
                    } else if let Some(e) = seen.get_mut(&h)
                        && e.0 != p
                        && !e.1
                    {
                        e.1 = true;
                        suspects.insert(h);
                    }
                }
            }
            drop(seen);
            if suspects.is_empty() {
                continue;
            }

            // Pass 2, exact, for the suspects only: the partitions each key is in, and the
            // winning (partition, version); staged files come first, so a tie in the lake loses.
            let mut found: HashMap<String, (BTreeSet<String>, String, i64)> = HashMap::new();
            for (part, f, staged) in &files {
                for (key, version) in keys_and_versions(f, table)? {
                    if !suspects.contains(&key_hash(&key)) {
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
        Ok(drops)
    }

    /// Drops everything staged (nothing reaches the lake).
    pub fn abort(mut self) -> Result<()> {
        // Its outcome no longer matters, but it must not write into a removed directory.
        let _ = self.finish_writing();
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)?;
        }
        Ok(())
    }
}

/// A 64-bit hash of a row key, for the first pass over keys (collisions are resolved exactly).
/// Writes the staged `parts` of a side table (`_rejects`, `_findings`) as `dir/<name>.parquet`,
/// replacing the file of an earlier, interrupted run of the same input (or removing it when this
/// run has none).
fn write_side_file(dir: &Path, name: &str, parts: &[PathBuf], schema: SchemaRef) -> Result<()> {
    let path = dir.join(format!("{name}.parquet"));
    if parts.is_empty() {
        if path.exists() {
            fs::remove_file(&path)?;
        }
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let batches = parts.iter().flat_map(|p| match read_parquet(p, None) {
        Ok(b) => b.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    });
    write_parquet_atomic(&path, schema, batches, lake_properties())
}

fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(key)
}

/// Maps of row keys, built once per commit over millions of keys: a fast hasher (SipHash was
/// 5% of ingest), seeded per process.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Identity of a row within a partition: its key columns joined into one string.
fn row_keys(batch: &RecordBatch, table: Table) -> Result<Vec<String>> {
    let cols: Vec<&ArrayRef> = table
        .key_columns()
        .iter()
        .map(|k| batch.column_by_name(k).context("key column missing"))
        .collect::<Result<_>>()?;
    let mut keys = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut key = String::new();
        for (n, c) in cols.iter().enumerate() {
            if n > 0 {
                key.push('\u{1f}');
            }
            match c.data_type() {
                DataType::Utf8 => key.push_str(c.as_string::<i32>().value(i)),
                DataType::Timestamp(..) => key.push_str(
                    &c.as_primitive::<TimestampMicrosecondType>()
                        .value(i)
                        .to_string(),
                ),
                other => anyhow::bail!("unsupported key type {other}"),
            }
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Each row's key and version (0 for tables without a version column), reading only those
/// columns.
fn keys_and_versions(path: &Path, table: Table) -> Result<Vec<(String, i64)>> {
    let mut projection: Vec<&str> = table.key_columns().to_vec();
    if let Some(v) = table.version_column() {
        projection.push(v);
    }
    let mut out = Vec::new();
    for batch in read_parquet(path, Some(&projection))? {
        let versions = table.version_column().map(|v| {
            batch
                .column_by_name(v)
                .expect("version column projected")
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
        });
        for (i, key) in row_keys(&batch, table)?.into_iter().enumerate() {
            out.push((key, versions.as_ref().map_or(0, |v| v.value(i))));
        }
    }
    Ok(out)
}

/// What a merged partition does to the lake once every partition is merged.
enum Change {
    /// Its new file, written under a hidden name.
    Write(Hidden),
    /// Every row left it: its file goes.
    Remove(PathBuf),
    Nothing,
}

impl Change {
    fn apply(self) -> Result<()> {
        match self {
            Change::Write(hidden) => hidden.publish(),
            Change::Remove(path) => Ok(fs::remove_file(path)?),
            Change::Nothing => Ok(()),
        }
    }
}

/// Merges the partition file `target` (if any) with staged files: for each key the row with the
/// greatest version wins, ties going to the later source (staged after existing, later staged
/// after earlier, later rows after earlier ones); keys in `moved` (won in another partition)
/// leave. Memory: one key per row, never whole rows. The new file is left hidden: the caller
/// puts it in place.
fn merge_partition(
    table: Table,
    target: &Path,
    staged: &[PathBuf],
    moved: &HashSet<String>,
) -> Result<(CommitCounts, Change)> {
    let mut sources: Vec<PathBuf> = Vec::new();
    let has_existing = target.exists();
    if has_existing {
        sources.push(target.to_path_buf());
    }
    sources.extend(staged.iter().cloned());

    // Pass 1: the winning (source, row) of every key.
    let mut winners: FastMap<String, (u32, u32, i64)> = FastMap::default();
    let mut sizes = Vec::with_capacity(sources.len());
    for (s, path) in sources.iter().enumerate() {
        let rows = keys_and_versions(path, table)?;
        sizes.push(rows.len());
        for (row, (key, version)) in rows.into_iter().enumerate() {
            if moved.contains(&key) {
                continue;
            }
            let candidate = (s as u32, row as u32, version);
            winners
                .entry(key)
                .and_modify(|w| {
                    if version >= w.2 {
                        *w = candidate;
                    }
                })
                .or_insert(candidate);
        }
    }

    // Pass 2: copy the winners, source by source, batch by batch.
    let mut keep: Vec<Vec<bool>> = sizes.iter().map(|n| vec![false; *n]).collect();
    for (s, r, _) in winners.values() {
        keep[*s as usize][*r as usize] = true;
    }
    drop(winners);
    let mut counts = CommitCounts::default();
    for (s, k) in keep.iter().enumerate() {
        let kept = k.iter().filter(|x| **x).count() as u64;
        if has_existing && s == 0 {
            counts.replaced = k.len() as u64 - kept;
        } else {
            counts.stored += kept;
            counts.superseded += k.len() as u64 - kept;
        }
    }
    if keep.iter().all(|k| !k.contains(&true)) {
        // Every row moved to another partition (or none was there): no empty file is left.
        let change = if has_existing {
            Change::Remove(target.to_path_buf())
        } else {
            Change::Nothing
        };
        return Ok((counts, change));
    }
    // Streamed: one batch of one source in memory at a time.
    let batches = sources.iter().zip(keep).flat_map(|(path, keep)| {
        let mut offset = 0usize;
        let reader: Box<dyn Iterator<Item = Result<RecordBatch>>> =
            match parquet_batches(path, None) {
                Ok(r) => Box::new(r.map(|b| Ok(b?))),
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
        reader.map(move |b| {
            let b = conform(b?, &table.schema())?;
            let mask = BooleanArray::from(keep[offset..offset + b.num_rows()].to_vec());
            offset += b.num_rows();
            Ok(filter_record_batch(&b, &mask)?)
        })
    });
    let hidden = write_parquet_hidden(target, table.schema(), batches, lake_properties())?;
    Ok((counts, Change::Write(hidden)))
}

/// A batch of a file written by an earlier deskpulse, in the table's current schema: columns added
/// since (nullable, such as `lang`) are NULL. Any other difference is an error.
fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => Ok(c.clone()),
            None if f.is_nullable() => Ok(datafusion::arrow::array::new_null_array(
                f.data_type(),
                batch.num_rows(),
            )),
            None => anyhow::bail!("a lake file lacks the required column '{}'", f.name()),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn lake_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Staged files live for one ingest: written fast (no compression, no dictionaries), read once.
fn staging_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .build()
}

/// Writes batches to a Parquet file (not atomically: for private staging files).
fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    props: WriterProperties,
) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props))?;
    for b in batches {
        w.write(&b?)?;
    }
    w.close()?;
    Ok(())
}

/// Writes batches to `path` atomically: a hidden temporary file in the same directory, fsync'd,
/// then renamed over `path`, then the directory fsync'd. Readers never see a partial file.
pub fn write_parquet_atomic(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    props: WriterProperties,
) -> Result<()> {
    write_parquet_hidden(path, schema, batches, props)?.publish()
}

/// The first half of [`write_parquet_atomic`]: the file under its hidden name.
fn write_parquet_hidden(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    props: WriterProperties,
) -> Result<Hidden> {
    write_hidden(path, true, |file| {
        let mut w = ArrowWriter::try_new(file, schema, Some(props))?;
        for b in batches {
            w.write(&b?)?;
        }
        Ok(w.into_inner()?)
    })
}

/// Writes a (small) file atomically, as [`write_parquet_atomic`] does: for reports and target
/// lists that scripts pick up.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, false, |mut file| {
        std::io::Write::write_all(&mut file, bytes)?;
        Ok(file)
    })
}

/// Writes `path` through `write` into a hidden temporary file beside it, fsyncs it, renames it
/// over `path` and fsyncs the directory. `crash_test`: the crash-test hook may stop the process
/// between the write and the rename (lake files only).
fn replace(path: &Path, crash_test: bool, write: impl FnOnce(File) -> Result<File>) -> Result<()> {
    write_hidden(path, crash_test, write)?.publish()
}

/// A file written and fsync'd under its hidden temporary name, not yet renamed into place.
/// Dropped unpublished (its write failed, or another partition's merge did), it deletes the
/// temporary file: a failed commit leaves nothing behind. (A crash still can; the next write
/// of the same file overwrites it.)
struct Hidden {
    tmp: PathBuf,
    path: PathBuf,
    crash_test: bool,
}

/// The first half of [`replace`]: writes the hidden temporary file beside `path`.
fn write_hidden(
    path: &Path,
    crash_test: bool,
    write: impl FnOnce(File) -> Result<File>,
) -> Result<Hidden> {
    let dir = path.parent().context("path has no directory")?;
    let name = path
        .file_name()
        .context("path has no file name")?
        .to_string_lossy();
    // A fixed name: a run after a crash overwrites the leftover instead of piling up files.
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let hidden = Hidden {
        tmp,
        path: path.to_path_buf(),
        crash_test,
    };
    write(file)?.sync_all()?;
    Ok(hidden)
}

impl Drop for Hidden {
    fn drop(&mut self) {
        // After a successful publish the temporary name is gone and this finds nothing.
        let _ = fs::remove_file(&self.tmp);
    }
}

impl Hidden {
    /// The second half of [`replace`]: renames the file into place and fsyncs the directory.
    fn publish(self) -> Result<()> {
        if self.crash_test {
            crash_point();
        }
        fs::rename(&self.tmp, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.path.display()
            )
        })?;
        File::open(self.path.parent().context("path has no directory")?)?.sync_all()?;
        Ok(())
    }
}

/// Aborts the process when the crash-test hook says so (see [`CRASH_ENV`]).
fn crash_point() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    if let Ok(n) = std::env::var(CRASH_ENV)
        && let Ok(n) = n.parse::<usize>()
        && WRITES.fetch_add(1, Ordering::SeqCst) + 1 >= n
    {
        eprintln!("{CRASH_ENV}: simulated crash before rename");
        std::process::abort();
    }
}

/// Reads a Parquet file into batches, optionally only some columns.
/// Columns come back in the file's order, not the order asked: read them by name.
pub fn read_parquet(path: &Path, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>> {
    Ok(parquet_batches(path, columns)?.collect::<Result<Vec<_>, _>>()?)
}

/// Like [`read_parquet`], one batch at a time (memory: one batch, whatever the file's size).
fn parquet_batches(
    path: &Path,
    columns: Option<&[&str]>,
) -> Result<datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("cannot read Parquet file {}", path.display()))?;
    if let Some(cols) = columns {
        let schema = builder.parquet_schema();
        let idx: Vec<usize> = cols
            .iter()
            .map(|c| {
                (0..schema.num_columns())
                    .find(|i| schema.column(*i).name() == *c)
                    .with_context(|| format!("column {c} missing in {}", path.display()))
            })
            .collect::<Result<_>>()?;
        let mask = ProjectionMask::leaves(schema, idx);
        builder = builder.with_projection(mask);
    }
    Ok(builder.with_batch_size(64 * 1024).build()?)
}

fn parquet_rows(path: &Path) -> Result<u64> {
    let file = File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    Ok(builder.metadata().file_metadata().num_rows() as u64)
}

fn manifest_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("content_hash", DataType::Utf8, false),
        Field::new("profile", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("ingested_at", timestamp_type(), false),
        Field::new("records", DataType::UInt64, false),
        Field::new("rows_stored", DataType::UInt64, false),
        Field::new("rows_rejected", DataType::UInt64, false),
    ]))
}

fn manifest_batch(entries: &[ManifestEntry]) -> RecordBatch {
    let s = |f: fn(&ManifestEntry) -> &str| {
        let mut b = StringBuilder::new();
        for e in entries {
            b.append_value(f(e));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let u = |f: fn(&ManifestEntry) -> u64| {
        let mut b = UInt64Builder::new();
        for e in entries {
            b.append_value(f(e));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for e in entries {
        at.append_value(e.ingested_at);
    }
    RecordBatch::try_new(
        manifest_schema(),
        vec![
            s(|e| &e.content_hash),
            s(|e| &e.profile),
            s(|e| &e.source_file),
            Arc::new(at.finish()),
            u(|e| e.records),
            u(|e| e.rows_stored),
            u(|e| e.rows_rejected),
        ],
    )
    .expect("manifest matches its schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_or_abandoned_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let tmp = dir.path().join(".f.parquet.tmp");
        let failed = write_hidden(&path, false, |mut file| {
            std::io::Write::write_all(&mut file, b"half a file")?;
            anyhow::bail!("the writer failed")
        });
        assert!(failed.is_err());
        assert!(!tmp.exists() && !path.exists());
        // Written, then dropped unpublished (another partition's merge failed).
        let hidden = write_hidden(&path, false, Ok).unwrap();
        assert!(tmp.exists());
        drop(hidden);
        assert!(!tmp.exists() && !path.exists());
        // Published: in place, and the temporary name is gone.
        write_atomic(&path, b"whole").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole");
        assert!(!tmp.exists());
    }

    fn interaction(id: &str, at: Micros, lang: Option<&str>) -> Interaction {
        Interaction {
            interaction_id: id.into(),
            ticket_id: "T1".into(),
            at,
            seq: None,
            actor_role: crate::model::ActorRole::Requester,
            actor_id: None,
            channel: crate::model::Channel::Email,
            is_public: true,
            body: Some("hello".into()),
            lang: lang.map(str::to_string),
            sentiment: None,
        }
    }

    #[test]
    fn a_file_written_before_a_column_was_added_merges_with_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().join("lake")).unwrap();
        let t = 1_772_442_000_000_000; // 2026-03-02
        // An interactions file of an earlier deskpulse: no `lang` column.
        let full = Interaction::to_batch(&[interaction("old", t, None)]);
        let old = full
            .project(
                &(0..full.num_columns())
                    .filter(|i| full.schema().field(*i).name() != "lang")
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let part = lake.table_dir(Table::Interactions).join("month=2026-03");
        fs::create_dir_all(&part).unwrap();
        write_parquet_atomic(
            &part.join("data.parquet"),
            old.schema(),
            [Ok(old)],
            lake_properties(),
        )
        .unwrap();

        let mut staging = lake.stage("s").unwrap();
        staging.push(interaction("new", t + 1, Some("en"))).unwrap();
        staging.commit(&lake, "s").unwrap();
        let batches = lake.scan(Table::Interactions, None).unwrap();
        assert_eq!(batches[0].schema(), Table::Interactions.schema());
        let lang = batches[0].column_by_name("lang").unwrap();
        let ids = batches[0].column_by_name("interaction_id").unwrap();
        let got: Vec<(&str, Option<&str>)> = (0..batches[0].num_rows())
            .map(|i| {
                let l = lang.as_string::<i32>();
                (
                    ids.as_string::<i32>().value(i),
                    (!l.is_null(i)).then(|| l.value(i)),
                )
            })
            .collect();
        assert_eq!(got, vec![("old", None), ("new", Some("en"))]);
    }

    fn ticket(id: &str, opened: Micros, updated: Micros, status: &str) -> Ticket {
        Ticket {
            ticket_id: id.into(),
            source: "test".into(),
            opened_at: opened,
            updated_at: updated,
            status: Some(status.into()),
            ..Default::default()
        }
    }

    /// Every stored ticket as (month partition, ticket_id, status), sorted.
    fn located_statuses(lake: &Lake) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for f in lake.files(Table::Tickets).unwrap() {
            let month = f.parent().unwrap().file_name().unwrap().to_string_lossy();
            for b in read_parquet(&f, Some(&["ticket_id", "status"])).unwrap() {
                let id = b.column(0).as_string::<i32>();
                let st = b.column(1).as_string::<i32>();
                for i in 0..b.num_rows() {
                    out.push((
                        month.to_string(),
                        id.value(i).to_string(),
                        st.value(i).to_string(),
                    ));
                }
            }
        }
        out.sort();
        out
    }

    fn statuses(lake: &Lake) -> Vec<(String, String)> {
        let mut out: Vec<_> = located_statuses(lake)
            .into_iter()
            .map(|(_, id, status)| (id, status))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn newer_versions_replace_older_ones_and_ties_go_to_the_later_row() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let mut s = lake.stage("a").unwrap();
        s.push(ticket("T1", 0, 10, "new")).unwrap();
        s.push(ticket("T1", 0, 30, "resolved")).unwrap();
        s.push(ticket("T1", 0, 20, "active")).unwrap();
        s.push(ticket("T2", 0, 5, "new")).unwrap();
        let c = s.commit(&lake, "t").unwrap();
        assert_eq!(
            c[&Table::Tickets],
            CommitCounts {
                stored: 2,
                superseded: 2,
                replaced: 0
            }
        );
        assert_eq!(
            statuses(&lake),
            vec![
                ("T1".into(), "resolved".into()),
                ("T2".into(), "new".into())
            ]
        );

        let mut s = lake.stage("b").unwrap();
        s.push(ticket("T1", 0, 25, "stale")).unwrap(); // older than the lake's: loses
        s.push(ticket("T2", 0, 5, "tie")).unwrap(); // same version: the later row wins
        let c = s.commit(&lake, "t").unwrap();
        assert_eq!(
            c[&Table::Tickets],
            CommitCounts {
                stored: 1,
                superseded: 1,
                replaced: 1
            }
        );
        assert_eq!(
            statuses(&lake),
            vec![
                ("T1".into(), "resolved".into()),
                ("T2".into(), "tie".into())
            ]
        );
        assert_eq!(lake.row_count(Table::Tickets).unwrap(), 2);
    }

    #[test]
    fn spilled_rows_merge_like_buffered_ones() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let mut s = lake.stage("a").unwrap();
        s.push(ticket("T1", 0, 10, "first")).unwrap();
        s.spill().unwrap();
        s.push(ticket("T1", 0, 10, "second")).unwrap();
        s.commit(&lake, "t").unwrap();
        assert_eq!(statuses(&lake), vec![("T1".into(), "second".into())]);
        assert!(!dir.path().join("_staging/a").exists());
    }

    #[test]
    fn partitions_by_month_of_the_partition_column() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let jan = crate::timeparse::TimeParser::default()
            .parse("2026-01-31T23:00:00Z")
            .unwrap();
        let feb = crate::timeparse::TimeParser::default()
            .parse("2026-02-01T00:00:00Z")
            .unwrap();
        let mut s = lake.stage("a").unwrap();
        s.push(ticket("T1", jan, feb, "x")).unwrap();
        s.push(ticket("T2", feb, feb, "x")).unwrap();
        s.commit(&lake, "t").unwrap();
        let files = lake.files(Table::Tickets).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].ends_with("tickets/month=2026-01/data.parquet"));
        assert!(files[1].ends_with("tickets/month=2026-02/data.parquet"));
    }

    #[test]
    fn a_ticket_that_moves_month_keeps_one_row_the_newest() {
        let parse = |s: &str| crate::timeparse::TimeParser::default().parse(s).unwrap();
        let (jan, feb) = (parse("2026-01-15T00:00:00Z"), parse("2026-02-15T00:00:00Z"));
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let where_is = |lake: &Lake| {
            let rows = located_statuses(lake).into_iter();
            rows.map(|(m, id, st)| format!("{m} {id} {st}"))
                .collect::<Vec<_>>()
        };
        let mut s = lake.stage("a").unwrap();
        s.push(ticket("T1", jan, 10, "jan")).unwrap();
        s.push(ticket("T2", feb, 10, "feb")).unwrap();
        // Within one batch: the newer version (January's) wins over February's.
        s.push(ticket("T3", jan, 5, "jan-newer")).unwrap();
        s.push(ticket("T3", feb, 3, "feb-older")).unwrap();
        s.commit(&lake, "t").unwrap();
        assert_eq!(
            where_is(&lake),
            [
                "month=2026-01 T1 jan",
                "month=2026-01 T3 jan-newer",
                "month=2026-02 T2 feb"
            ]
        );

        // Against the lake: T1 moves to February (newer), T2's January copy is older and loses,
        // T3's February copy ties with the lake's version and, as the later row, wins.
        let mut s = lake.stage("b").unwrap();
        s.push(ticket("T1", feb, 20, "moved")).unwrap();
        s.push(ticket("T2", jan, 5, "stale")).unwrap();
        s.push(ticket("T3", feb, 5, "tie")).unwrap();
        s.commit(&lake, "t").unwrap();
        assert_eq!(
            where_is(&lake),
            [
                "month=2026-02 T1 moved",
                "month=2026-02 T2 feb",
                "month=2026-02 T3 tie"
            ]
        );
        assert_eq!(lake.row_count(Table::Tickets).unwrap(), 3);
    }

    #[test]
    fn manifest_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let e = ManifestEntry {
            content_hash: "abc".into(),
            profile: "generic".into(),
            source_file: "t.csv".into(),
            ingested_at: 7,
            records: 3,
            rows_stored: 2,
            rows_rejected: 1,
        };
        lake.record_ingest(e.clone()).unwrap();
        assert_eq!(lake.manifest().unwrap(), vec![e]);
        assert!(lake.already_ingested("abc", "generic").unwrap());
        assert!(!lake.already_ingested("abc", "servicenow").unwrap());
    }
}

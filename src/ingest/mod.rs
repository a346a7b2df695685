//! Batch ingest: export files → import profile → canonical rows (or rejects) → the lake.
//!
//! Each input file is one transaction. Its content hash is looked up in the lake's `_manifest`
//! first (ingesting the same content again changes nothing); its rows are staged, merged into
//! the lake's partitions, its rejects written, and only then is it recorded in the manifest. A
//! file that cannot be read at all, or lacks a required column, stores nothing and is reported
//! as a [`FileError`]. For every file and table,
//! `read = stored + superseded + rejected + offered + unrated`; findings (kept rows with a field
//! that contradicts another) are counted beside.

pub mod canonical;
pub mod event_log;
pub mod mapping;
pub mod profiles;
#[cfg(test)]
mod properties;
pub mod reader;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::hex;
use crate::lake::{Batched, FastMap, Lake, ManifestEntry, Stageable, Staging};
use crate::model::{Finding, Micros, Reject, Rule, Table, Ticket};
use crate::sentiment::lang::ScoredLanguages;
use reader::{Fault, Format, Header, RawJson, Row};

/// How to ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Import profile: `generic`, `servicenow`, `zendesk`, `jira` or `twitter`.
    pub profile: String,
    /// A column mapping file (for `generic`).
    pub mapping: Option<PathBuf>,
    /// The table a `generic` file fills, when neither the mapping nor the file name says.
    pub table: Option<Table>,
    /// Time zone for timestamps without one (overrides the mapping's).
    pub tz: Option<Tz>,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
    /// Skip detecting the language and computing the VADER sentiment of bodies and comments
    /// (the columns stay empty).
    pub no_sentiment: bool,
    /// The languages whose texts get a VADER score (others keep a NULL sentiment).
    pub sentiment_languages: ScoredLanguages,
}

/// What happened to the rows of one table from one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    /// Rows the profile produced for this table (valid or not).
    pub read: u64,
    /// Rows now in the lake.
    pub stored: u64,
    /// Rows that lost to a newer version of the same key.
    pub superseded: u64,
    /// Rows refused (in `_rejects`).
    pub rejected: u64,
    /// Survey offers that were never answered: not a rating, not an error (Zendesk `offered`).
    pub offered: u64,
    /// Ratings rows without a score: tickets nobody rated, not an error.
    pub unrated: u64,
    /// Findings among the rows read (a stored row may have several; see `_findings`).
    pub findings: u64,
    /// Rows already in the lake that this file replaced with a newer version.
    pub replaced: u64,
    /// Tickets whose rows in this file give different `opened_at` (each one finding).
    pub opened_changed: u64,
    /// Events of an event log folded into their ticket besides the one its row counts for
    /// (a ticket of n events: 1 stored or superseded, n - 1 folded).
    pub folded: u64,
}

impl TableCounts {
    /// The accounting rule every ingest keeps.
    pub fn balances(&self) -> bool {
        self.read
            == self.stored
                + self.superseded
                + self.rejected
                + self.offered
                + self.unrated
                + self.folded
    }
}

/// The outcome of one input file.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub file: String,
    /// Input records (CSV rows, JSON objects, lines) read from the file.
    pub records: u64,
    /// Already ingested: nothing was done.
    pub skipped: bool,
    pub tables: BTreeMap<Table, TableCounts>,
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.skipped {
            return write!(
                f,
                "{}: already ingested (same content), nothing changed",
                self.file
            );
        }
        let plural = if self.records == 1 { "" } else { "s" };
        write!(f, "{}: {} record{plural}", self.file, self.records)?;
        for (t, c) in &self.tables {
            write!(
                f,
                "\n  {t}: read {}, stored {}, rejected {}",
                c.read, c.stored, c.rejected
            )?;
            if c.superseded > 0 {
                write!(f, ", superseded {} (older versions)", c.superseded)?;
            }
            if c.folded > 0 {
                write!(f, ", folded {} (events, into their ticket)", c.folded)?;
            }
            if c.offered > 0 {
                write!(f, ", offered-not-answered {}", c.offered)?;
            }
            if c.unrated > 0 {
                write!(f, ", unrated {}", c.unrated)?;
            }
            if c.findings > 0 {
                write!(f, "; findings {} (kept, see `deskpulse check`)", c.findings)?;
            }
            if c.opened_changed > 0 {
                write!(
                    f,
                    "\n  warning: {} tickets have rows with different opened_at; each keeps its \
                     latest row's. If this file is an event log (one row per change), its \
                     opening and resolution times are wrong: read it through a mapping with an \
                     [event_log] section (docs/import-profiles.md)",
                    c.opened_changed
                )?;
            }
            if c.replaced > 0 {
                write!(f, " ({} earlier versions replaced)", c.replaced)?;
            }
        }
        Ok(())
    }
}

/// A file that could not be ingested at all; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct FileError {
    pub file: String,
    pub message: String,
}

/// One input file, opened for a profile.
pub struct Input {
    pub path: PathBuf,
    pub format: Format,
    pub reader: Box<dyn BufRead + Send>,
}

/// Where a profile sends what it reads.
pub struct Output {
    /// The lake being ingested into (an event log continues the tickets it holds).
    lake: Lake,
    file: String,
    staging: Staging,
    records: u64,
    counts: BTreeMap<Table, TableCounts>,
    /// The moment of ingest: a timestamp after it is a finding.
    now: Micros,
    /// Per ticket (by key hash), the `opened_at` of its first row in this file and whether a
    /// later row contradicted it; at most [`OPENED_TRACKED`] tickets. A fast hasher: with
    /// SipHash, this check was a tenth of the CPU of ingesting a tickets file (perf).
    opened: FastMap<u64, (Micros, bool)>,
}

/// Tickets per file whose opening times are compared across rows (about 100 MB at most).
const OPENED_TRACKED: usize = 4_000_000;

impl Output {
    /// Counts `n` input records.
    pub fn records(&mut self, n: u64) {
        self.records += n;
    }

    /// Stages one canonical row read at `line`, with the findings of its fields.
    pub fn push<R: Stageable>(&mut self, line: u64, row: R) -> Result<()> {
        let changed = R::TABLE == Table::Tickets
            && self.opened_changed(
                crate::lake::key_hash(&row.key()),
                row.partition_time(),
                line,
                || row.key().into_owned(),
            )?;
        let found = self.staging.push_checked(row, &self.file, line, self.now)?;
        let c = self.counts.entry(R::TABLE).or_default();
        c.read += 1;
        c.findings += found + u64::from(changed);
        c.opened_changed += u64::from(changed);
        Ok(())
    }

    /// Stages rows converted on another thread (see [`Batched`]), as [`Output::push`] stages
    /// each.
    pub fn push_batched<R: Stageable>(&mut self, batched: Batched<R>) -> Result<()> {
        let mut changed = 0;
        for o in batched.opened() {
            changed +=
                u64::from(self.opened_changed(o.hash, o.at, o.line, || batched.opened_key(o))?);
        }
        let c = self.counts.entry(R::TABLE).or_default();
        c.read += batched.rows();
        c.findings += batched.findings() + changed;
        c.opened_changed += changed;
        self.staging.push_batched(batched)
    }

    /// Counts one event of an event log (see [`event_log`]): read, and folded into its ticket.
    pub fn event(&mut self) {
        self.counts.entry(Table::Tickets).or_default().read += 1;
    }

    /// Stages a ticket derived from `events` events of an event log (read at `line`, its
    /// last): it stands for one of them, the others are folded.
    pub fn push_derived(&mut self, line: u64, ticket: Ticket, events: u64) -> Result<()> {
        let found = self
            .staging
            .push_checked(ticket, &self.file, line, self.now)?;
        let c = self.counts.entry(Table::Tickets).or_default();
        c.findings += found;
        c.folded += events.saturating_sub(1);
        Ok(())
    }

    /// Whether this ticket row is the first to give its ticket another `opened_at` than the
    /// ticket's first row in the file did (then it is recorded as an `opened_at_changed`
    /// finding, once per ticket).
    fn opened_changed(
        &mut self,
        hash: u64,
        opened: Micros,
        line: u64,
        key: impl FnOnce() -> String,
    ) -> Result<bool> {
        let full = self.opened.len() >= OPENED_TRACKED;
        let first = match self.opened.get_mut(&hash) {
            Some(e) => e,
            None if full => return Ok(false),
            None => {
                self.opened.insert(hash, (opened, false));
                return Ok(false);
            }
        };
        if first.0 == opened || first.1 {
            return Ok(false);
        }
        first.1 = true;
        let earlier = crate::timeparse::format_micros(first.0);
        self.staging.push_finding(Finding {
            table: Table::Tickets,
            key: key(),
            source_file: self.file.clone(),
            line,
            column: "opened_at".into(),
            rule: Rule::OpenedAtChanged,
            value: Some(format!(
                "{} (an earlier row: {earlier})",
                crate::timeparse::format_micros(opened)
            )),
        })?;
        Ok(true)
    }

    /// Stages a row, or rejects the record it came from.
    pub fn emit<R: Stageable>(&mut self, row: &dyn Row, result: Result<R, Fault>) -> Result<()> {
        match result {
            Ok(r) => self.push(row.line(), r),
            Err(f) => self.reject(R::TABLE, row.line(), f, row.raw()),
        }
    }

    /// Records a refused row of `table` (or counts an unrated one, see [`Fault::unrated`]).
    pub fn reject(&mut self, table: Table, line: u64, fault: Fault, raw: String) -> Result<()> {
        if fault.unrated {
            self.unrated(table);
            return Ok(());
        }
        let c = self.counts.entry(table).or_default();
        c.read += 1;
        c.rejected += 1;
        self.staging.push_reject(Reject {
            source_file: self.file.clone(),
            line,
            column: fault.column,
            reason: fault.reason,
            raw,
        })
    }

    /// Counts a survey that was offered and never answered.
    pub fn offered(&mut self, table: Table) {
        let c = self.counts.entry(table).or_default();
        c.read += 1;
        c.offered += 1;
    }

    /// Counts a ratings row without a score (a ticket nobody rated).
    pub fn unrated(&mut self, table: Table) {
        let c = self.counts.entry(table).or_default();
        c.read += 1;
        c.unrated += 1;
    }
}

/// An import profile: reads one export format into canonical rows.
pub trait Profile {
    /// What the manifest records with the content hash: the profile's name plus whatever else
    /// changes how a file is read (a mapping's content), so that a file read differently is not
    /// taken for one already ingested.
    fn id(&self) -> String;
    /// Reads one file. An error refuses the whole file; bad records go to `out.reject`.
    fn read(&self, input: Input, out: &mut Output) -> Result<()>;
}

/// Ingests files one by one. Returns a report per file that was ingested or skipped, and an
/// error per file that was refused (those store nothing).
pub fn ingest(
    lake: &Lake,
    files: &[PathBuf],
    opts: &IngestOptions,
) -> Result<(Vec<FileReport>, Vec<FileError>)> {
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    // The content hash of the next regular file is computed while this one is read: hashing is
    // sequential, and took a core for a twentieth of an ingest while the other waited.
    let hash_of = |path: &Path| {
        let path = path.to_path_buf();
        let regular = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        regular.then(|| std::thread::spawn(move || content_hash(&path)))
    };
    let mut next_hash = files.first().and_then(|p| hash_of(p));
    for (i, path) in files.iter().enumerate() {
        let name = path.display().to_string();
        let hash = next_hash.take();
        next_hash = files.get(i + 1).and_then(|p| hash_of(p));
        let result = profiles::profile(opts, path).and_then(|profile| {
            let hash = hash
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("hashing panicked")))
                })
                .transpose()?;
            let copy = regular_file(path)?;
            let readable = copy.as_ref().map_or(path.as_path(), |c| c.as_ref());
            ingest_file(lake, readable, &name, hash, profile.as_ref(), opts)
        });
        match result {
            Ok(r) => reports.push(r),
            Err(e) => errors.push(FileError {
                file: name,
                message: format!("{e:#}"),
            }),
        }
    }
    Ok((reports, errors))
}

/// Ingests files already in the canonical layout (the `generic` profile, no mapping), failing on
/// the first refused file: for generated data and fixtures, where a refusal is a bug.
pub fn ingest_canonical(lake: &Lake, files: &[PathBuf], progress: bool) -> Result<Vec<FileReport>> {
    let opts = IngestOptions {
        profile: "generic".into(),
        progress,
        ..Default::default()
    };
    let (reports, errors) = ingest(lake, files, &opts)?;
    if let Some(e) = errors.into_iter().next() {
        return Err(e.into());
    }
    Ok(reports)
}

/// Ingest reads a file twice (its hash, then its rows). `-` (standard input), a pipe, a FIFO or a
/// device can be read only once, so it is first copied to a temporary file (kept with the
/// source's extension, which the format is recognised by); `None` for a regular file.
fn regular_file(path: &Path) -> Result<Option<tempfile::TempPath>> {
    let stdin = path.as_os_str() == "-";
    if !stdin && std::fs::metadata(path).map_or(true, |m| m.is_file()) {
        return Ok(None);
    }
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut copy = tempfile::Builder::new()
        .prefix("deskpulse-input-")
        .suffix(&suffix)
        .tempfile()?;
    if stdin {
        std::io::copy(&mut std::io::stdin().lock(), &mut copy)?;
    } else {
        let mut source =
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        std::io::copy(&mut source, &mut copy)?;
    }
    Ok(Some(copy.into_temp_path()))
}

/// Ingests one file; `hash` is its content hash when already computed.
fn ingest_file(
    lake: &Lake,
    path: &Path,
    name: &str,
    hash: Option<String>,
    profile: &dyn Profile,
    opts: &IngestOptions,
) -> Result<FileReport> {
    let hash = hash.map_or_else(|| content_hash(path), Ok)?;
    let id = profile.id();
    // One name per content *and* way of reading it: the same file ingested through two mappings
    // (its tickets, then its ratings) keeps two sets of rejects and findings. Staging locks the
    // name, so the same file ingested twice at once is read once: the second finds it done.
    let staging_id = &hex(&Sha256::digest(format!("{hash}\0{id}")))[..16];
    let mut staging = lake.stage(staging_id)?;
    if ingested_before(lake, path, &hash, &id)? {
        staging.abort()?;
        return Ok(FileReport {
            file: name.to_string(),
            skipped: true,
            ..Default::default()
        });
    }
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut head = vec![0u8; 4096];
    let n = read_up_to(&mut file, &mut head)?;
    head.truncate(n);
    let format = Format::detect(path, &head);
    let file = File::open(path)?;
    let bar = progress_bar(opts.progress, len, name);
    let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
        reader::READ_BUFFER,
        bar.wrap_read(file),
    ));
    if !opts.no_sentiment {
        staging = staging.with_sentiment(opts.sentiment_languages.clone());
    }
    let mut out = Output {
        lake: lake.clone(),
        file: name.to_string(),
        staging,
        records: 0,
        counts: BTreeMap::new(),
        now: chrono::Utc::now().timestamp_micros(),
        opened: FastMap::default(),
    };
    let input = Input {
        path: path.to_path_buf(),
        format,
        reader,
    };
    if let Err(e) = profile.read(input, &mut out) {
        bar.finish_and_clear();
        out.staging.abort()?;
        return Err(e);
    }
    bar.finish_and_clear();
    let Output {
        staging,
        records,
        mut counts,
        ..
    } = out;
    // Recorded in `_manifest` by the same commit as the rows: ingested and recorded at once.
    let staging = staging.with_manifest(ManifestEntry {
        content_hash: hash,
        profile: id,
        source_file: name.to_string(),
        ingested_at: 0,
        records,
        rows_stored: 0,
        rows_rejected: counts.values().map(|c| c.rejected).sum(),
    });
    let committed = staging.commit(lake)?;
    for (table, c) in committed {
        let e = counts.entry(table).or_default();
        e.stored = c.stored;
        e.superseded = c.superseded;
        e.replaced = c.replaced;
    }
    debug_assert!(counts.values().all(TableCounts::balances), "{counts:?}");
    Ok(FileReport {
        file: name.to_string(),
        records,
        skipped: false,
        tables: counts,
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

fn progress_bar(enabled: bool, len: u64, name: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

/// The content hash of an input, as `_manifest` records it: `blake3:` and the BLAKE3 hash in hex.
/// BLAKE3, not SHA-256 as before: four times faster here (0.10 s against 0.45 s for a 531 MB
/// file), and hashing was a core's work for the first quarter-second of every ingest.
pub fn content_hash(path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    read_through(path, |bytes| {
        hasher.update(bytes);
    })?;
    Ok(format!("{BLAKE3_PREFIX}{}", hasher.finalize().to_hex()))
}

/// Marks the content hashes recorded since deskpulse hashes with BLAKE3; older entries of
/// `_manifest` are bare SHA-256 hex (see [`ingested_before`]).
const BLAKE3_PREFIX: &str = "blake3:";

/// SHA-256 of a file's content, in hex: the content hash of entries recorded before BLAKE3, and
/// the hash of a mapping file in a profile's id (kept, so those ids stay what they were).
pub fn sha256_hex(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    read_through(path, |bytes| hasher.update(bytes))?;
    Ok(hex(&hasher.finalize()))
}

/// Hands a file's content to `each`, a megabyte at a time.
fn read_through(path: &Path, mut each: impl FnMut(&[u8])) -> Result<()> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        each(&buf[..n]);
    }
}

/// Whether the file at `path` (of content hash `hash`) was already ingested with profile `id`:
/// by its hash, or, where `_manifest` holds entries of this profile recorded before BLAKE3, by
/// its SHA-256 (computed only then), so that a lake kept across the upgrade skips what it has.
fn ingested_before(lake: &Lake, path: &Path, hash: &str, id: &str) -> Result<bool> {
    let entries: Vec<_> = lake
        .manifest()?
        .into_iter()
        .filter(|e| e.profile == id)
        .collect();
    if entries.iter().any(|e| e.content_hash == hash) {
        return Ok(true);
    }
    if !entries
        .iter()
        .any(|e| !e.content_hash.starts_with(BLAKE3_PREFIX))
    {
        return Ok(false);
    }
    let sha256 = sha256_hex(path)?;
    Ok(entries.iter().any(|e| e.content_hash == sha256))
}

/// One record of an input: readable, or refused with its line, reason and raw text. `key` is
/// the name of the JSON array it came from, for API pages like `{"tickets": [...]}`.
pub enum Item<'a> {
    Row(&'a dyn Row, Option<&'a str>),
    Bad {
        line: u64,
        fault: Fault,
        raw: String,
        key: Option<&'a str>,
    },
}

/// Reads every record of an input in whatever format it is. For CSV, `check_header` may refuse
/// the file (a missing column); for JSON, `accept_key` picks the array of records in an object.
pub fn each_record(
    input: Input,
    check_header: impl FnOnce(&Header) -> Result<(), String>,
    accept_key: impl Fn(&str) -> bool,
    each: impl FnMut(Item<'_>) -> Result<()>,
) -> Result<()> {
    read_records(input, check_header, &accept_key, false, each)
}

/// [`each_record`], and with `pages` the records of API pages saved as they came: an array of
/// pages, NDJSON of pages, a single answer (`{"ticket": {...}}`); see [`page_records`].
fn read_records(
    input: Input,
    check_header: impl FnOnce(&Header) -> Result<(), String>,
    accept: &dyn Fn(&str) -> bool,
    pages: bool,
    mut each: impl FnMut(Item<'_>) -> Result<()>,
) -> Result<()> {
    let Input { format, reader, .. } = input;
    let mut item = |raw: RawJson| json_item(raw, accept, pages, &mut each);
    match format {
        Format::Csv => reader::read_csv(reader, check_header, |r| match r {
            Ok(row) => each(Item::Row(row, None)),
            Err((line, fault, raw)) => each(Item::Bad {
                line,
                fault,
                raw,
                key: None,
            }),
        })?
        .map_err(anyhow::Error::msg)?,
        Format::Ndjson => reader::read_ndjson(reader, &mut item)?,
        Format::Json => reader::read_json_array(reader, accept, pages, &mut item)?
            .map_err(anyhow::Error::msg)?,
    }
    Ok(())
}

fn json_item(
    raw: RawJson,
    accept: &dyn Fn(&str) -> bool,
    pages: bool,
    each: &mut dyn FnMut(Item<'_>) -> Result<()>,
) -> Result<()> {
    fn bad(line: u64, fault: Fault, raw: String, key: Option<&str>) -> Item<'_> {
        Item::Bad {
            line,
            fault,
            raw,
            key,
        }
    }
    let parsed = if pages {
        raw.parse_value()
    } else {
        raw.parse()
    };
    let value = match parsed {
        Ok(value) => value,
        Err(fault) => {
            let text = String::from_utf8_lossy(&raw.bytes).trim().to_string();
            return each(bad(raw.line, fault, text, raw.key.as_deref()));
        }
    };
    let page = if pages {
        page_records(value, raw.key.clone(), accept)
    } else {
        Err(value)
    };
    let records = match page {
        Ok(records) => records,
        Err(value) if !value.is_object() => {
            let fault = Fault::record("record is not a JSON object");
            return each(bad(raw.line, fault, value.to_string(), raw.key.as_deref()));
        }
        Err(value) => {
            let row = reader::JsonRow {
                value: &value,
                line: raw.line,
                raw: &raw.bytes,
            };
            return each(Item::Row(&row, raw.key.as_deref()));
        }
    };
    for (record, key) in records {
        let text = record.to_string();
        if !record.is_object() {
            let fault = Fault::record("record is not a JSON object");
            each(bad(raw.line, fault, text, key.as_deref()))?;
            continue;
        }
        let row = reader::JsonRow {
            value: &record,
            line: raw.line,
            raw: text.as_bytes(),
        };
        each(Item::Row(&row, key.as_deref()))?;
    }
    Ok(())
}

/// The records of an API page, if `value` is one: an array (of records or of pages), or an
/// object without an `id` holding them in a member `accept` names, as an array
/// (`{"tickets": [...], "meta": {...}}`) or a single object (`{"csat_response": {...}}`). The
/// page's own scalar members (`"ticket_id": 42`) are given to each of its records that lacks
/// them, so a script can name what an answer leaves out. Each record comes with the name of the
/// member it came from. A record, not a page, is given back.
fn page_records(
    value: Value,
    key: Option<String>,
    accept: &dyn Fn(&str) -> bool,
) -> Result<Vec<(Value, Option<String>)>, Value> {
    let (items, key, inherited) = match value {
        Value::Array(items) => (items, key, serde_json::Map::new()),
        Value::Object(mut page) if !page.contains_key("id") => {
            let Some(name) = page
                .iter()
                .find(|(k, v)| accept(k) && (v.is_array() || v.is_object()))
                .map(|(k, _)| k.clone())
            else {
                return Err(Value::Object(page));
            };
            let items = match page.remove(&name) {
                Some(Value::Array(items)) => items,
                one => one.into_iter().collect(),
            };
            page.retain(|_, v| !(v.is_array() || v.is_object()));
            (items, Some(name), page)
        }
        record => return Err(record),
    };
    let mut records = Vec::new();
    for mut item in items {
        if let Value::Object(record) = &mut item {
            for (k, v) in &inherited {
                record.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        match page_records(item, key.clone(), accept) {
            Ok(nested) => records.extend(nested),
            Err(record) => records.push((record, key.clone())),
        }
    }
    Ok(records)
}

/// [`each_record`] with the accounting: counts every record, and rejects an unreadable one
/// against the table `primary` names for its array.
pub fn for_each_record(
    input: Input,
    out: &mut Output,
    check_header: impl FnOnce(&Header) -> Result<(), String>,
    accept_key: impl Fn(&str) -> bool,
    primary: impl Fn(Option<&str>) -> Table,
    each: impl FnMut(&dyn Row, Option<&str>, &mut Output) -> Result<()>,
) -> Result<()> {
    counted(input, out, check_header, &accept_key, false, primary, each)
}

/// [`for_each_record`] of an API's JSON, whose pages may have been saved as they came (arrays
/// or NDJSON of pages, single answers): the records of the members `keys` names.
pub fn for_each_api_record(
    input: Input,
    out: &mut Output,
    profile: &str,
    keys: &[&str],
    primary: impl Fn(Option<&str>) -> Table,
    each: impl FnMut(&dyn Row, Option<&str>, &mut Output) -> Result<()>,
) -> Result<()> {
    let refuse_csv = |_: &Header| {
        Err(format!(
            "the {profile} profile reads the API's JSON, not CSV"
        ))
    };
    let accept = |k: &str| keys.contains(&k);
    counted(input, out, refuse_csv, &accept, true, primary, each)
}

fn counted(
    input: Input,
    out: &mut Output,
    check_header: impl FnOnce(&Header) -> Result<(), String>,
    accept: &dyn Fn(&str) -> bool,
    pages: bool,
    primary: impl Fn(Option<&str>) -> Table,
    mut each: impl FnMut(&dyn Row, Option<&str>, &mut Output) -> Result<()>,
) -> Result<()> {
    read_records(input, check_header, accept, pages, |item| {
        out.records(1);
        match item {
            Item::Row(row, key) => each(row, key, out),
            Item::Bad {
                line,
                fault,
                raw,
                key,
            } => out.reject(primary(key), line, fault, raw),
        }
    })
}

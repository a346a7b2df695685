use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimestampMicrosecondType};

use crate::model::Table;

use super::CommitCounts;
use super::delta::NewFile;
use super::parquet::{DataFile, adopt_data_file, write_data_file};

/// A 64-bit hash of a row key, for the first pass over keys (collisions are resolved exactly).
pub(crate) fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(key)
}

/// Maps of row keys or their hashes, built over millions of keys: a fast hasher (SipHash was
/// 5% of ingest), seeded per process.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Identity of a row within a partition: its key columns joined into one string.
pub(super) fn row_keys(batch: &RecordBatch, table: Table) -> Result<Vec<String>> {
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

/// Each row's [`key_hash`], reading only the key columns.
pub(super) fn key_hashes(file: &DataFile, table: Table) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for batch in file.read(Some(table.key_columns()))? {
        batch_key_hashes(&batch, table, &mut out)?;
    }
    Ok(out)
}

/// Appends each row's [`key_hash`] of `batch` (any batch holding the table's key columns) to
/// `out`: a key of one text column, as every table has, is hashed where it lies, with no string
/// built per row.
pub(super) fn batch_key_hashes(
    batch: &RecordBatch,
    table: Table,
    out: &mut Vec<u64>,
) -> Result<()> {
    if let [k] = table.key_columns()
        && let Some(keys) = batch
            .column_by_name(k)
            .and_then(|c| c.as_string_opt::<i32>())
    {
        out.extend(keys.iter().map(|k| key_hash(k.unwrap_or_default())));
        return Ok(());
    }
    out.extend(row_keys(batch, table)?.iter().map(|k| key_hash(k)));
    Ok(())
}

/// Each row's key and version (0 for tables without a version column), reading only those
/// columns.
pub(super) fn keys_and_versions(file: &DataFile, table: Table) -> Result<Vec<(String, i64)>> {
    let mut projection: Vec<&str> = table.key_columns().to_vec();
    if let Some(v) = table.version_column() {
        projection.push(v);
    }
    let mut out = Vec::new();
    for batch in file.read(Some(&projection))? {
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

/// A partition's staged files, and whether their keys are known to be distinct (no two rows
/// share a key: checked on hashes, so a collision only costs the exact merge).
#[derive(Clone, Copy)]
pub(super) struct Staged<'a> {
    pub files: &'a [DataFile],
    pub distinct: bool,
}

/// What a merged partition changes: the files added to it (none when no row is left) and the
/// files they replace. `None` when nothing changed (every staged row lost to the lake's own
/// version).
pub(super) type Change = Option<(Vec<NewFile>, Vec<DataFile>)>;

/// Staged files become the partition's data files as they are when there is one or they hold
/// this many rows each on average; more, smaller files are merged into one.
const ADOPT_MIN_ROWS: usize = 64 * 1024;

/// Merges staged files into a partition whose `existing` files hold each key once: for each
/// staged key the row with the greatest version wins, ties going to the later source (staged
/// after existing, later staged after earlier, later rows after earlier ones); keys in `moved`
/// (won in another partition) leave. The winners go to a new file (`new_file` names it) together
/// with the rows of the existing files that lost a row (copy-on-write, file by file); existing
/// files that lose nothing stay as they are, so rows with new keys are an append.
///
/// When every staged row wins and no existing row loses, the staged files (written in the
/// lake's format) are adopted as they are instead of being copied ([`adoptable`]); a partition
/// new to the lake whose staged keys are known to be distinct is adopted without reading them.
/// Memory: one key per staged row, and one flag per row of the existing file being read.
pub(super) fn merge_partition(
    table: Table,
    existing: &[DataFile],
    staged: Staged<'_>,
    moved: &HashSet<String>,
    new_file: &(dyn Fn() -> DataFile + Sync),
) -> Result<(CommitCounts, Change)> {
    let Staged {
        files: staged,
        distinct,
    } = staged;
    if distinct && existing.is_empty() && moved.is_empty() {
        // Row counts from the files' footers.
        let sizes: Vec<usize> = staged
            .iter()
            .map(|f| Ok(f.rows()? as usize))
            .collect::<Result<_>>()?;
        if adoptable(&sizes) {
            return adopt(staged, &sizes, new_file);
        }
    }
    // Pass 1: the winning (staged source, row, version) of every staged key.
    let mut winners: FastMap<String, (u32, u32, i64)> = FastMap::default();
    let mut staged_sizes = Vec::with_capacity(staged.len());
    for (s, path) in staged.iter().enumerate() {
        let rows = keys_and_versions(path, table)?;
        staged_sizes.push(rows.len());
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

    // Pass 2: which rows of the existing files lose (to a staged row or to another partition);
    // a staged row that loses to a newer existing one is no winner.
    let mut counts = CommitCounts::default();
    let mut rewritten: Vec<(&DataFile, Vec<bool>)> = Vec::new();
    for path in existing {
        let rows = keys_and_versions(path, table)?;
        let mut keep = vec![true; rows.len()];
        for (row, (key, version)) in rows.into_iter().enumerate() {
            if moved.contains(&key) {
                keep[row] = false;
            } else if let Some(w) = winners.get(&key) {
                if version > w.2 {
                    winners.remove(&key);
                } else {
                    keep[row] = false;
                }
            }
        }
        let lost = keep.iter().filter(|k| !**k).count() as u64;
        if lost > 0 {
            counts.replaced += lost;
            rewritten.push((path, keep));
        }
    }
    let mut staged_keep: Vec<Vec<bool>> = staged_sizes.iter().map(|n| vec![false; *n]).collect();
    for (s, r, _) in winners.values() {
        staged_keep[*s as usize][*r as usize] = true;
    }
    drop(winners);
    counts.stored = staged_keep.iter().flatten().filter(|k| **k).count() as u64;
    counts.superseded = staged_sizes.iter().sum::<usize>() as u64 - counts.stored;
    if counts.stored == 0 && counts.replaced == 0 {
        // The lake already has every row as it would be written.
        return Ok((counts, None));
    }
    if counts.superseded == 0 && rewritten.is_empty() && adoptable(&staged_sizes) {
        return adopt(staged, &staged_sizes, new_file);
    }
    let removed: Vec<DataFile> = rewritten.iter().map(|(p, _)| (*p).clone()).collect();
    let sources: Vec<(&DataFile, Vec<bool>)> = rewritten
        .into_iter()
        .chain(staged.iter().zip(staged_keep))
        .collect();
    let rows = sources
        .iter()
        .map(|(_, k)| k.iter().filter(|x| **x).count() as u64)
        .sum::<u64>();
    if rows == 0 {
        // Every row moved to another partition: no empty file is left.
        return Ok((counts, Some((Vec::new(), removed))));
    }
    let out = new_file();
    let bytes = write_data_file(&out, table.schema(), copy_rows(table.schema(), sources))?;
    let file = NewFile {
        file: out,
        rows,
        bytes,
    };
    Ok((counts, Some((vec![file], removed))))
}

/// Whether staged files of these row counts are big enough to be a partition's data files as
/// they are (an ingest spills every 200,000 rows, so a big export's month comes in a few files;
/// an export in no time order, in many small ones).
fn adoptable(sizes: &[usize]) -> bool {
    let rows: usize = sizes.iter().sum();
    rows > 0 && (sizes.len() == 1 || rows >= ADOPT_MIN_ROWS * sizes.len())
}

/// Every staged row stored as written: the staged files become data files of the partition.
fn adopt(
    staged: &[DataFile],
    sizes: &[usize],
    new_file: &(dyn Fn() -> DataFile + Sync),
) -> Result<(CommitCounts, Change)> {
    let mut added = Vec::new();
    for (from, &rows) in staged.iter().zip(sizes).filter(|(_, n)| **n > 0) {
        let file = new_file();
        let bytes = adopt_data_file(from, &file)?;
        added.push(NewFile {
            file,
            rows: rows as u64,
            bytes,
        });
    }
    let counts = CommitCounts {
        stored: sizes.iter().sum::<usize>() as u64,
        ..Default::default()
    };
    Ok((counts, Some((added, Vec::new()))))
}

/// The rows of each source whose flag is set, streamed: one batch of one source in memory at a
/// time.
pub(super) fn copy_rows<'a>(
    schema: SchemaRef,
    sources: Vec<(&'a DataFile, Vec<bool>)>,
) -> impl Iterator<Item = Result<RecordBatch>> + 'a {
    sources.into_iter().flat_map(move |(path, keep)| {
        let schema = schema.clone();
        let mut offset = 0usize;
        let reader: Box<dyn Iterator<Item = Result<RecordBatch>>> = match path.batches(None) {
            Ok(r) => r,
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        reader.map(move |b| {
            let b = conform(b?, &schema)?;
            let mask = BooleanArray::from(keep[offset..offset + b.num_rows()].to_vec());
            offset += b.num_rows();
            Ok(filter_record_batch(&b, &mask)?)
        })
    })
}

/// A batch of a file written by an earlier deskpulse, in the table's current schema: columns added
/// since (nullable, such as `lang`) are NULL. Any other difference is an error.
pub(super) fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_files_are_adopted_when_one_or_big() {
        assert!(adoptable(&[10]));
        assert!(!adoptable(&[10, 10]));
        assert!(adoptable(&[ADOPT_MIN_ROWS, ADOPT_MIN_ROWS + 5]));
        assert!(!adoptable(&[ADOPT_MIN_ROWS, 5]));
        assert!(!adoptable(&[]));
        assert!(!adoptable(&[0]));
    }
}

//! Compaction and clean-up. A commit appends a file per partition it changes (rewriting only the
//! files that lose a row), so a stream of micro-batches leaves many small files. Compaction
//! rewrites the small files of a partition into one (the same rows; Delta's OPTIMIZE), and
//! clean-up deletes what no kept snapshot reads: the files replaced before the retention period,
//! the snapshots that named only them, and the staging left by crashed writers.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;

use anyhow::Result;

use crate::model::Micros;

use super::delta::{self, NewFile, Operation};
use super::merge::copy_rows;
use super::parquet::{DataFile, write_data_file};
use super::{Lake, WriteLock, all_tables, snapshot};

/// Files at least this large are left alone; smaller ones are packed into files up to this size.
pub const TARGET_FILE_BYTES: u64 = 128 << 20;
/// A commit compacts a partition it wrote to once the partition holds this many small files, so
/// the files a query opens stay bounded however many micro-batches the stream commits.
pub const AUTO_COMPACT_FILES: usize = 16;

/// Data files that no Delta version names are deleted only once they are this old (an hour, in
/// microseconds), whatever the retention: a writer merging outside the lock has just written them.
const ORPHAN_GRACE: Micros = 3_600_000_000;

/// One partition's small files rewritten as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// A canonical table's name, or a side table's (`_manifest`).
    pub table: &'static str,
    /// `month=YYYY-MM`, or empty for an unpartitioned table.
    pub partition: String,
    /// Files replaced.
    pub files: usize,
    pub rows: u64,
}

/// What a clean-up deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanUp {
    /// The oldest snapshot still readable (`--as-of-version`); earlier ones were expired.
    pub oldest_kept: u64,
    pub snapshots_expired: usize,
    pub files_deleted: usize,
    pub bytes_deleted: u64,
    /// Staging directories of writers that crashed.
    pub staging_deleted: usize,
}

/// Groups files (in order) into runs of at most `TARGET_FILE_BYTES` together.
fn bins(files: Vec<(DataFile, u64)>) -> Vec<Vec<DataFile>> {
    let mut out: Vec<Vec<DataFile>> = Vec::new();
    let mut size = u64::MAX;
    for (f, bytes) in files {
        if size.saturating_add(bytes) > TARGET_FILE_BYTES {
            out.push(Vec::new());
            size = 0;
        }
        size += bytes;
        out.last_mut().expect("a bin was opened").push(f);
    }
    out
}

impl Lake {
    /// Compacts every partition that holds at least `min_files` small files (at least 2), as
    /// one lake commit, under the lake's lock.
    pub fn compact(&self, min_files: usize, _lock: &WriteLock) -> Result<Vec<Compacted>> {
        self.compact_partitions(min_files.max(2), None)
    }

    /// [`Lake::compact`] restricted to `only` (the partitions a commit just wrote).
    pub(super) fn compact_partitions(
        &self,
        min_files: usize,
        only: Option<&BTreeSet<(String, String)>>,
    ) -> Result<Vec<Compacted>> {
        self.writable()?;
        let base = self.snapshot()?;
        let (mut commits, mut done) = (Vec::new(), Vec::new());
        for table in all_tables() {
            if only.is_some_and(|o| !o.iter().any(|(t, _)| t == table.name)) {
                continue; // not written to: its log is not even read
            }
            let mut small: BTreeMap<String, Vec<(DataFile, u64)>> = BTreeMap::new();
            for f in self.named_files(&base, table.name)? {
                let partition = f.partition().to_string();
                if only.is_some_and(|o| !o.contains(&(table.name.to_string(), partition.clone()))) {
                    continue;
                }
                let bytes = f.size()?;
                if bytes < TARGET_FILE_BYTES {
                    small.entry(partition).or_default().push((f, bytes));
                }
            }
            let (mut added, mut removed) = (Vec::new(), Vec::new());
            for (partition, files) in small {
                if files.len() < min_files {
                    continue;
                }
                for group in bins(files).into_iter().filter(|g| g.len() > 1) {
                    let sizes = group
                        .iter()
                        .map(DataFile::rows)
                        .collect::<Result<Vec<_>>>()?;
                    let rows = sizes.iter().sum();
                    let dir = match partition.as_str() {
                        "" => table.name.to_string(),
                        p => format!("{}/{p}", table.name),
                    };
                    let out = DataFile::new(
                        self.store(),
                        format!("{dir}/part-{}.parquet", uuid::Uuid::new_v4()),
                    );
                    // Each key is in one file of the table, so the rows are copied as they are.
                    let sources = group
                        .iter()
                        .zip(sizes)
                        .map(|(f, n)| (f, vec![true; n as usize]));
                    let rows_of = copy_rows(table.schema.clone(), sources.collect());
                    let bytes = write_data_file(&out, table.schema.clone(), rows_of)?;
                    done.push(Compacted {
                        table: table.name,
                        partition: partition.clone(),
                        files: group.len(),
                        rows,
                    });
                    added.push(NewFile {
                        file: out,
                        rows,
                        bytes,
                    });
                    removed.extend(group);
                }
            }
            if !added.is_empty() {
                commits.push((table, added, removed));
            }
        }
        if !commits.is_empty() {
            self.commit_tables(&base, &commits, Operation::Compact, "compact")?;
        }
        Ok(done)
    }

    /// Deletes what no snapshot kept reads. Kept: every snapshot published after `now - retain`,
    /// and the newest one before it (so the lake as it was at that moment stays readable). Data
    /// files in no kept snapshot and older than the retention period are deleted (a file is
    /// older than its removal, so nothing a kept snapshot names goes), then the expired
    /// snapshots, so `--as-of-*` cannot reach a version whose files are gone. Staging
    /// directories that no running writer holds are leftovers of crashed ones: removed too.
    /// Runs under the lake's lock.
    pub fn clean_up(&self, retain: Micros, now: Micros, _lock: &WriteLock) -> Result<CleanUp> {
        self.writable()?;
        let cutoff = now - retain;
        let store = self.store();
        let versions = snapshot::versions(store)?;
        let mut oldest = snapshot::Snapshot::default();
        for v in &versions {
            let s = snapshot::read(store, *v)?;
            if s.committed_at > cutoff && oldest.version != 0 {
                break;
            }
            oldest = s;
        }
        let mut out = CleanUp {
            oldest_kept: oldest.version,
            ..CleanUp::default()
        };
        for table in all_tables() {
            let name = table.name;
            if !delta::exists(store, name)? {
                continue;
            }
            let from = oldest.tables.get(name).copied();
            let mut keep: HashSet<DataFile> = match from {
                Some(v) => delta::block_on(delta::files(store, name, v))?
                    .into_iter()
                    .collect(),
                None => HashSet::new(),
            };
            keep.extend(delta::added_since(store, name, from.map_or(0, |v| v + 1))?);
            let committed: HashSet<DataFile> =
                delta::added_since(store, name, 0)?.into_iter().collect();
            // Every Parquet file under the table's directory but its log.
            let log = format!("{name}/_delta_log/");
            for meta in store.list(&format!("{name}/"))? {
                if meta.rel.starts_with(&log) || !meta.rel.ends_with(".parquet") {
                    continue;
                }
                let f = DataFile::new(store, meta.rel);
                if keep.contains(&f) {
                    continue;
                }
                // A file no version ever named may be a merge in flight (writers merge without
                // the lock): it gets an hour whatever the retention.
                let before = if committed.contains(&f) {
                    cutoff
                } else {
                    cutoff.min(now - ORPHAN_GRACE)
                };
                if meta.modified < before {
                    f.delete()?;
                    out.files_deleted += 1;
                    out.bytes_deleted += meta.size;
                }
            }
        }
        for v in versions.into_iter().filter(|v| *v < oldest.version) {
            snapshot::expire(store, v)?;
            out.snapshots_expired += 1;
        }
        out.staging_deleted = self.remove_abandoned_staging()?;
        Ok(out)
    }

    /// Removes the staging directories (and their locks) that no running writer holds.
    fn remove_abandoned_staging(&self) -> Result<usize> {
        let staging = self.local_dir()?.join("_staging");
        if !staging.exists() {
            return Ok(0);
        }
        let mut removed = 0;
        for e in fs::read_dir(&staging)? {
            let path = e?.path();
            if !path.is_dir() {
                continue;
            }
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let lock_path = staging.join(format!("{name}.lock"));
            let lock = fs::File::open(&lock_path).ok();
            if let Some(l) = &lock
                && l.try_lock().is_err()
            {
                continue; // a writer is staging there now
            }
            // Removed while locked, as a staging that completes does (see `Lake::stage`).
            fs::remove_dir_all(&path)?;
            if lock.is_some() {
                fs::remove_file(&lock_path)?;
            }
            removed += 1;
        }
        Ok(removed)
    }
}

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

pub mod delta;
mod merge;
mod parquet;
mod side;
pub mod snapshot;
mod staging;
#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use datafusion::arrow::array::RecordBatch;

use crate::model::Table;

use parquet::parquet_rows;
pub use parquet::{read_parquet, write_atomic, write_parquet_atomic};
pub use side::ManifestEntry;
pub use staging::{Buffer, Stageable, Staging};

/// A lake directory.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
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
}

impl Lake {
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
        Ok(Staging::new(dir))
    }
}

/// Proof that this process holds the lake's write lock; dropping it releases the lock.
pub struct WriteLock {
    _file: File,
}

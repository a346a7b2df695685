//! The lake: one Delta Lake table per canonical table, and the lake's snapshots over them.
//!
//! Layout:
//! ```text
//! lake/tickets/_delta_log/...                   (Delta's log: which files make each version)
//! lake/tickets/month=2026-01/part-<uuid>.parquet (also interactions, ratings: by month)
//! lake/adoptions/part-<uuid>.parquet             (also surveys: small, unpartitioned)
//! lake/_snapshots/<version>.json                 (the Delta version of every table, per commit)
//! lake/_rejects/part-<uuid>.parquet              (side tables, Delta too: refused rows,
//! lake/_findings/part-<uuid>.parquet              kept rows with a contradictory field,
//! lake/_manifest/part-<uuid>.parquet              one row per ingested input)
//! lake/_staging/<content-hash>/...               (private to a running ingest)
//! lake/_derived/<stage>/<key>/...                (the engine's kept per-ticket stages: a cache)
//! ```
//! The lake is a local directory or a prefix of an S3 bucket ([`store`]); on object storage, a
//! writer's staging and the stream's spool stay on its own machine ([`Lake::local_dir`]).
//! A commit merges the staged rows with the current files of the partitions they touch into new
//! files (one row per key), commits each table's new and replaced files to Delta, then publishes
//! the lake's next snapshot ([`snapshot`]). Readers read the tables at one snapshot's versions,
//! so they see a commit in every table at once or not at all, whatever writers do meanwhile.
//! Each key appears once in the whole table. A commit rewrites only the files that lose a row
//! and adds the rest as a new file (or adopts its staged files as they are, when no row of the
//! partition is superseded or replaced), so a partition gains a file or a few per commit; a commit compacts
//! the partitions it wrote to once they hold [`AUTO_COMPACT_FILES`] small files, and
//! `deskpulse compact` compacts all and deletes what the retention period no longer keeps
//! ([`compact`]).

mod compact;
pub mod delta;
mod lock;
mod merge;
mod parquet;
mod side;
pub mod snapshot;
mod staging;
pub mod store;
#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use datafusion::arrow::array::RecordBatch;

use crate::model::Table;
pub use compact::{AUTO_COMPACT_FILES, CleanUp, Compacted, TARGET_FILE_BYTES};
pub use lock::WriteLock;
pub use snapshot::{At, Snapshot};

pub(crate) use merge::{FastMap, key_hash};
use parquet::parquet_rows;
pub use parquet::{DataFile, read_parquet, write_atomic};
pub use side::{ManifestEntry, Side};
pub use staging::{Batched, Buffer, Opened, Stageable, Staging};
pub use store::Store;

/// A lake, read at one snapshot ([`At::Latest`] unless asked otherwise).
#[derive(Debug, Clone)]
pub struct Lake {
    store: Store,
    at: At,
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
    /// Opens (and creates, if needed) the lake at `location`: a directory, or `s3://bucket/prefix`.
    /// A lake written by deskpulse before its tables were Delta tables is refused with the
    /// command that converts it.
    pub fn open(location: impl AsRef<Path>) -> Result<Lake> {
        let lake = Lake {
            store: Store::open(location.as_ref())?,
            at: At::Latest,
        };
        if let Some(table) = all_tables().into_iter().find(|t| lake.is_legacy(t.name)) {
            anyhow::bail!(
                "{} holds {} in the plain Parquet layout of earlier deskpulse versions; convert \
                 the lake to Delta tables with `deskpulse --lake {} convert`",
                lake.store,
                table.name,
                lake.store
            );
        }
        Ok(lake)
    }

    /// The same lake, read at `at` (time travel). Such a lake cannot be written.
    pub fn at(mut self, at: At) -> Lake {
        self.at = at;
        self
    }

    /// The same lake read at the snapshot it resolves to now, so that every later read (the
    /// engine's passes, say) sees that snapshot even while writers commit.
    pub fn pinned(&self) -> Result<Lake> {
        let s = self.snapshot()?;
        Ok(self.clone().at(At::Version(s.version)))
    }

    /// Where the lake's files are.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A directory on this machine for what one writer keeps to itself (staging, the stream's
    /// spool): the lake's own directory, or for a lake on object storage
    /// `$XDG_STATE_HOME/deskpulse/<bucket>/<prefix>` (`~/.local/state/...` by default).
    pub fn local_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = self.store.local_dir() {
            return Ok(dir.to_path_buf());
        }
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .context(
                "neither XDG_STATE_HOME nor HOME is set: no local directory for the lake's state",
            )?;
        let url = self.store.url();
        let dir = url
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|p| !p.is_empty())
            .fold(
                state
                    .join("deskpulse")
                    .join(url.host_str().unwrap_or("bucket")),
                |d, p| d.join(p),
            );
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    /// The snapshot this lake is read at.
    pub fn snapshot(&self) -> Result<Snapshot> {
        snapshot::resolve(&self.store, self.at)
    }

    /// Fails when this lake was opened at an earlier snapshot: history is not rewritten.
    pub(crate) fn writable(&self) -> Result<()> {
        anyhow::ensure!(
            self.at == At::Latest,
            "the lake is opened at an earlier snapshot (--as-of-version / --as-of-time), which \
             can be read but not written"
        );
        Ok(())
    }

    /// The data files of a table at the snapshot this lake is read at, in partition order.
    pub fn files(&self, table: Table) -> Result<Vec<DataFile>> {
        self.files_at(&self.snapshot()?, table)
    }

    /// The data files of a table at `snapshot`, in partition order.
    pub fn files_at(&self, snapshot: &Snapshot, table: Table) -> Result<Vec<DataFile>> {
        self.named_files(snapshot, table.name())
    }

    /// The data files at `snapshot` of the lake's Delta table `name` (canonical or side).
    pub(crate) fn named_files(&self, snapshot: &Snapshot, name: &str) -> Result<Vec<DataFile>> {
        match snapshot.tables.get(name) {
            Some(v) => delta::block_on(delta::files(&self.store, name, *v)),
            None => Ok(Vec::new()),
        }
    }

    /// Reads a whole table (or some of its columns). For tests and small tables: the engine is
    /// the way to query a large lake.
    pub fn scan(&self, table: Table, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for f in self.files(table)? {
            out.extend(f.read(columns)?);
        }
        Ok(out)
    }

    /// Rows in a table (from Parquet footers; no data is read).
    pub fn row_count(&self, table: Table) -> Result<u64> {
        self.files(table)?
            .iter()
            .map(DataFile::rows)
            .sum::<Result<u64>>()
    }

    /// Whether the table `name` is in a layout of deskpulse before Delta: Parquet files and no
    /// log.
    fn is_legacy(&self, name: &str) -> bool {
        // Only local lakes are that old.
        let Some(dir) = self.store.path_of(name) else {
            return false;
        };
        if dir.join("_delta_log").exists() || !dir.exists() {
            return false;
        }
        legacy_files(&dir).is_ok_and(|f| !f.is_empty())
    }

    /// Converts a lake of a layout before Delta: each table's Parquet files (the canonical
    /// tables' before deskpulse wrote Delta, the side tables' before those were Delta too)
    /// become the first version of its Delta table (the files stay where they are), and one
    /// snapshot names them all. Returns the tables converted and their files.
    pub fn convert(root: impl Into<PathBuf>) -> Result<Vec<(&'static str, usize)>> {
        let root: PathBuf = root.into();
        anyhow::ensure!(
            !root.to_string_lossy().starts_with("s3://"),
            "{}: only local lakes were ever in the layout before Delta; nothing to convert",
            root.display()
        );
        let lake = Lake {
            store: Store::local(
                fs::canonicalize(&root)
                    .with_context(|| format!("no lake at {}", root.display()))?,
            ),
            at: At::Latest,
        };
        let _lock = lake.lock()?;
        let base = lake.snapshot()?;
        let (mut commits, mut done) = (Vec::new(), Vec::new());
        for table in all_tables() {
            if !lake.is_legacy(table.name) {
                continue;
            }
            let dir = lake.store.path_of(table.name).expect("a local lake");
            let files = legacy_files(&dir)?
                .into_iter()
                .map(|path| {
                    let rel = path
                        .strip_prefix(lake.store.local_dir().expect("a local lake"))?
                        .to_string_lossy()
                        .into_owned();
                    Ok(delta::NewFile {
                        rows: parquet_rows(&path)?,
                        bytes: fs::metadata(&path)?.len(),
                        file: DataFile::new(&lake.store, rel),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            done.push((table.name, files.len()));
            commits.push((table, files, Vec::new()));
        }
        if !commits.is_empty() {
            lake.commit_tables(&base, &commits, delta::Operation::Write, "convert")?;
        }
        Ok(done)
    }

    /// Commits each table's added and replaced files as one Delta version on top of `base`,
    /// then publishes the lake's next snapshot naming them all: the moment the commit becomes
    /// visible, in every table at once. The caller holds the lake's lock.
    fn commit_tables(
        &self,
        base: &Snapshot,
        commits: &[TableCommit],
        operation: delta::Operation,
        label: &str,
    ) -> Result<Snapshot> {
        let mut versions = base.tables.clone();
        for (table, added, removed) in commits {
            let v = delta::block_on(delta::commit(
                &self.store,
                table,
                base.tables.get(table.name).copied(),
                added,
                removed,
                operation,
            ))?;
            versions.insert(table.name.to_string(), v);
        }
        snapshot::publish(&self.store, base, versions, label)
    }
}

/// One table's part of a lake commit: the files it adds and the files they replace.
type TableCommit = (delta::Def, Vec<delta::NewFile>, Vec<DataFile>);

/// Every Delta table of the lake: the canonical tables, then the side tables.
pub(crate) fn all_tables() -> Vec<delta::Def> {
    let data = Table::ALL.into_iter().map(delta::Def::from);
    data.chain(Side::ALL.into_iter().map(Side::def)).collect()
}

/// The Parquet files of a table directory in a layout before Delta: `data.parquet` in each month
/// directory, or any `.parquet` at the top (an unpartitioned table, a side table).
fn legacy_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            let data = p.join("data.parquet");
            if data.exists() {
                out.push(data);
            }
        } else if p.extension().is_some_and(|x| x == "parquet")
            // A file of today's layout that a killed writer left before the table's first
            // commit: no log names it, and nobody reads it.
            && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-"))
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

impl Lake {
    /// Takes the lake's write lock, waiting while another writer holds it (see [`lock`]). A
    /// commit holds it from the check of its merge against the newest snapshot to the snapshot
    /// it publishes (see [`Staging::commit`]), so writers merge side by side and commit in
    /// turn. Readers take no lock.
    pub fn lock(&self) -> Result<WriteLock> {
        lock::write_lock(&self.store)
    }

    /// Starts staging the rows of one ingest under `_staging/<id>` (removing leftovers of a crashed
    /// run with the same id).
    ///
    /// The id is locked (`_staging/<id>.lock`) while the staging lives, so two writers of the
    /// same id (the same file ingested twice at once) take turns, and clean-up leaves it alone;
    /// the lock file goes with the staging directory.
    pub fn stage(&self, id: &str) -> Result<Staging> {
        let staging = self.local_dir()?.join("_staging");
        fs::create_dir_all(&staging)?;
        let lock_path = staging.join(format!("{id}.lock"));
        // The lock file is deleted when its staging is done: a lock taken on a file that was
        // deleted meanwhile locks nothing, so it is taken again on the file now there.
        let lock = loop {
            let lock = lock::lock_file(&lock_path, || {
                format!("another process is staging {id} in the lake; waiting for it")
            })?;
            use std::os::unix::fs::MetadataExt;
            let held = lock.metadata()?.ino();
            let same = fs::metadata(&lock_path).is_ok_and(|m| m.ino() == held);
            if same {
                break lock;
            }
        };
        let dir = staging.join(id);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        Ok(Staging::new(dir, (lock_path, lock)))
    }
}

//! The lake's tables as Delta Lake tables (delta-rs): create, list the files of a version, and
//! commit a set of added and removed files as one new version.
//!
//! deskpulse writes the Parquet files itself (its merge keeps one row per key with bounded
//! memory) and uses Delta for what it is for: an atomic, versioned list of a table's files that
//! Spark, DuckDB, polars and the Python `deltalake` package read too. Tables partitioned by month
//! carry the partition column `month` (`YYYY-MM`) in Delta's metadata, not in their files.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use datafusion::arrow::datatypes::SchemaRef;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::kernel::{Action, Add, Remove, StructType};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, TableProperty};
use url::Url;

use crate::model::Table;

/// The Delta partition column of a table partitioned by month.
pub const MONTH: &str = "month";

/// Runs `fut` to completion from synchronous code: on a runtime of its own, on a thread of its own
/// when the caller is already inside a runtime (which cannot be blocked on).
pub fn block_on<F: Future + Send>(fut: F) -> F::Output
where
    F::Output: Send,
{
    let run = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(fut)
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(run).join().expect("the Delta thread panicked"))
    } else {
        run()
    }
}

fn url(dir: &Path) -> Result<Url> {
    std::fs::create_dir_all(dir)?;
    let abs = std::fs::canonicalize(dir)?;
    Url::from_directory_path(&abs)
        .map_err(|()| anyhow::anyhow!("not an absolute path: {}", abs.display()))
}

/// The table in `dir` at `version` (the newest when `None`), or `None` when there is none yet.
pub async fn open(dir: &Path, version: Option<u64>) -> Result<Option<DeltaTable>> {
    if !dir.join("_delta_log").exists() {
        return Ok(None);
    }
    let mut table = DeltaTable::try_from_url(url(dir)?).await?;
    if let Some(v) = version {
        table
            .load_version(v)
            .await
            .with_context(|| format!("cannot load version {v} of {}", dir.display()))?;
    }
    Ok(table.version().is_some().then_some(table))
}

/// The data files of the table in `dir` at `version`, as local paths, sorted.
pub async fn files(dir: &Path, version: u64) -> Result<Vec<PathBuf>> {
    let Some(table) = open(dir, Some(version)).await? else {
        anyhow::bail!("{} is not a Delta table", dir.display());
    };
    let mut out = table
        .get_file_uris()?
        .map(|uri| {
            // delta-rs gives local files as plain paths (other stores as URLs).
            let path = match Url::parse(&uri) {
                Ok(u) => u.to_file_path().ok(),
                Err(_) => Some(PathBuf::from(&uri)),
            };
            path.filter(|p| p.is_absolute())
                .with_context(|| format!("not a local file: {uri}"))
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort();
    Ok(out)
}

/// The files added to the table in `dir` by its versions from `from` on (read from the log's
/// commit files, which the lake keeps: `delta.enableExpiredLogCleanup` is off).
pub fn added_since(dir: &Path, from: u64) -> Result<Vec<PathBuf>> {
    let root = url(dir)?;
    let mut out = Vec::new();
    for v in from.. {
        let commit = dir.join("_delta_log").join(format!("{v:020}.json"));
        let text = match std::fs::read_to_string(&commit) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(e).with_context(|| format!("{}", commit.display())),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let action: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{} is not a Delta log", commit.display()))?;
            if let Some(path) = action["add"]["path"].as_str() {
                // A relative, percent-encoded URI (Delta's protocol): resolved against the table.
                let file = root.join(path)?.to_file_path().map_err(|()| {
                    anyhow::anyhow!("{} adds a file outside the table: {path}", commit.display())
                })?;
                out.push(file);
            }
        }
    }
    Ok(out)
}

/// What Delta needs to know of one of the lake's tables: a canonical table or a side table
/// (`_rejects`, `_findings`, `_manifest`).
#[derive(Debug, Clone)]
pub struct Def {
    pub name: &'static str,
    pub schema: SchemaRef,
    /// Partitioned by month (the Delta partition column [`MONTH`]).
    pub by_month: bool,
}

impl From<Table> for Def {
    fn from(table: Table) -> Def {
        Def {
            name: table.name(),
            schema: table.schema(),
            by_month: table.partition_column().is_some(),
        }
    }
}

impl Def {
    /// The Delta schema: the columns, plus `month` when partitioned.
    fn delta_schema(&self) -> Result<StructType> {
        let mut fields: Vec<_> = self.schema.fields().iter().cloned().collect();
        if self.by_month {
            fields.push(std::sync::Arc::new(
                datafusion::arrow::datatypes::Field::new(
                    MONTH,
                    datafusion::arrow::datatypes::DataType::Utf8,
                    false,
                ),
            ));
        }
        let arrow = datafusion::arrow::datatypes::Schema::new(fields);
        Ok((&arrow).try_into_kernel()?)
    }
}

/// A data file written for a commit.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Under the table's directory, in `month=YYYY-MM/` when the table is partitioned.
    pub path: PathBuf,
    pub rows: u64,
}

/// What a commit does to a table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// New or changed rows (Delta's WRITE).
    Write,
    /// The same rows in fewer files (Delta's OPTIMIZE, `dataChange: false`, so a Delta stream
    /// reader skips it).
    Compact,
}

/// Commits `added` and `removed` files to `table` in `dir` as one version, starting from `base`
/// (the version the lake's snapshot names, `None` when the table is not in it yet). Versions
/// after `base` were left by a writer that crashed before it published the lake's snapshot: the
/// table is first restored to `base` (or emptied). Returns the new version.
pub async fn commit(
    dir: &Path,
    table: &Def,
    base: Option<u64>,
    added: &[NewFile],
    removed: &[PathBuf],
    operation: Operation,
) -> Result<u64> {
    let mut delta = match open(dir, None).await? {
        Some(t) => t,
        None => {
            let mut create = DeltaTable::try_from_url(url(dir)?)
                .await?
                .create()
                .with_table_name(table.name)
                .with_columns(table.delta_schema()?.fields().cloned())
                // The lake's snapshots name old versions: keep their log (it is small) until
                // the lake's own clean-up, so time travel reaches every snapshot.
                .with_configuration_property(TableProperty::EnableExpiredLogCleanup, Some("false"));
            if table.by_month {
                create = create.with_partition_columns([MONTH]);
            }
            create.await?
        }
    };
    let latest = delta.version().unwrap_or(0);
    let target = base.unwrap_or(0);
    if latest > target {
        let stale = files(dir, latest).await?;
        let keep = if base.is_some() {
            files(dir, target).await?
        } else {
            Vec::new()
        };
        // Undo the unpublished versions: a commit that removes what they added and adds back
        // what they removed (a Delta RESTORE, written as plain actions).
        let mut actions = Vec::new();
        for f in stale.iter().filter(|f| !keep.contains(f)) {
            actions.push(remove(dir, f, true)?);
        }
        for f in keep.iter().filter(|f| !stale.contains(f)) {
            actions.push(add(dir, f, None, true)?);
        }
        if !actions.is_empty() {
            commit_actions(&mut delta, actions, Operation::Write).await?;
        }
    }
    let change = operation == Operation::Write;
    let mut actions = Vec::new();
    for f in removed {
        actions.push(remove(dir, f, change)?);
    }
    for f in added {
        actions.push(add(dir, &f.path, Some(f.rows), change)?);
    }
    commit_actions(&mut delta, actions, operation).await
}

async fn commit_actions(
    delta: &mut DeltaTable,
    actions: Vec<Action>,
    operation: Operation,
) -> Result<u64> {
    let partition_by = delta.snapshot()?.metadata().partition_columns();
    let operation = match operation {
        Operation::Write => DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: (!partition_by.is_empty()).then_some(partition_by.to_vec()),
            predicate: None,
        },
        Operation::Compact => DeltaOperation::Optimize {
            predicate: None,
            target_size: super::compact::TARGET_FILE_BYTES as i64,
        },
    };
    let done = CommitBuilder::default()
        .with_actions(actions)
        .build(Some(delta.snapshot()?), delta.log_store(), operation)
        .await?;
    let version = done.version();
    delta.load_version(version).await?;
    super::parquet::crash_point();
    Ok(version)
}

/// The path of `file` relative to the table directory, as Delta records it.
fn relative(dir: &Path, file: &Path) -> Result<String> {
    let rel = file
        .strip_prefix(dir)
        .with_context(|| format!("{} is not in {}", file.display(), dir.display()))?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/"))
}

/// `month=YYYY-MM` of a file's directory, as Delta's partition values.
fn partition_values(rel: &str) -> HashMap<String, Option<String>> {
    rel.split('/')
        .filter_map(|part| part.strip_prefix("month="))
        .map(|m| (MONTH.to_string(), Some(m.to_string())))
        .collect()
}

fn add(dir: &Path, file: &Path, rows: Option<u64>, data_change: bool) -> Result<Action> {
    let rel = relative(dir, file)?;
    let meta = std::fs::metadata(file).with_context(|| format!("{}", file.display()))?;
    let modified = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    Ok(Action::Add(Add {
        partition_values: partition_values(&rel),
        path: rel,
        size: meta.len() as i64,
        modification_time: modified,
        data_change,
        stats: rows.map(|n| format!("{{\"numRecords\":{n}}}")),
        ..Default::default()
    }))
}

fn remove(dir: &Path, file: &Path, data_change: bool) -> Result<Action> {
    let rel = relative(dir, file)?;
    let size = std::fs::metadata(file).map(|m| m.len() as i64).ok();
    Ok(Action::Remove(Remove {
        partition_values: Some(partition_values(&rel)),
        path: rel,
        data_change,
        deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
        extended_file_metadata: Some(true),
        size,
        ..Default::default()
    }))
}

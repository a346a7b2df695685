//! The lake's tables as Delta Lake tables (delta-rs): create, list the files of a version, and
//! commit a set of added and removed files as one new version.
//!
//! deskpulse writes the Parquet files itself (its merge keeps one row per key with bounded
//! memory) and uses Delta for what it is for: an atomic, versioned list of a table's files that
//! Spark, DuckDB, polars and the Python `deltalake` package read too. Tables partitioned by month
//! carry the partition column `month` (`YYYY-MM`) in Delta's metadata, not in their files.

use std::collections::HashMap;

use anyhow::{Context, Result};
use datafusion::arrow::datatypes::SchemaRef;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::transaction::CommitBuilder;
use deltalake_core::kernel::{Action, Add, Remove, StructType};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, TableProperty};
use url::Url;

use crate::model::Table;

use super::parquet::DataFile;
use super::store::Store;

/// The Delta partition column of a table partitioned by month.
pub const MONTH: &str = "month";

pub use super::store::block_on;

/// The URL of the lake's table `name`; on object storage, Delta is told how to reach it first.
fn url(store: &Store, name: &str) -> Result<Url> {
    if let Some(dir) = store.path_of(name) {
        std::fs::create_dir_all(dir)?;
    } else {
        register_s3();
    }
    store.url_of(&format!("{name}/"))
}

/// Lets delta-rs (which knows `file://` only without its AWS crate) reach `s3://` tables: with
/// object_store's S3 client configured like the lake's, and Delta's default log store, which
/// commits a version by a create-only put (`If-None-Match: *`), so two writers never both
/// commit the same version. (delta-rs's AWS crate would bring the AWS SDK for a DynamoDB lock
/// that conditional puts make unnecessary.)
fn register_s3() {
    use deltalake_core::logstore::{
        LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig,
        default_logstore, logstore_factories, object_store_factories,
    };
    struct S3;
    impl ObjectStoreFactory for S3 {
        fn parse_url_opts(
            &self,
            url: &Url,
            _config: &StorageConfig,
        ) -> deltalake_core::DeltaResult<(ObjectStoreRef, object_store::path::Path)> {
            let client = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(url.host_str().unwrap_or_default())
                .build()?;
            let path = object_store::path::Path::from_url_path(url.path())?;
            Ok((std::sync::Arc::new(client), path))
        }
    }
    impl LogStoreFactory for S3 {
        fn with_options(
            &self,
            prefixed_store: ObjectStoreRef,
            root_store: ObjectStoreRef,
            location: &Url,
            options: &StorageConfig,
        ) -> deltalake_core::DeltaResult<std::sync::Arc<dyn LogStore>> {
            Ok(default_logstore(
                prefixed_store,
                root_store,
                location,
                options,
            ))
        }
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let scheme = Url::parse("s3://").expect("a URL");
        object_store_factories().insert(scheme.clone(), std::sync::Arc::new(S3));
        logstore_factories().insert(scheme, std::sync::Arc::new(S3));
    });
}

/// Whether the lake has a Delta table `name`.
pub fn exists(store: &Store, name: &str) -> Result<bool> {
    match store.path_of(name) {
        Some(dir) => Ok(dir.join("_delta_log").exists()),
        None => Ok(!store.list(&format!("{name}/_delta_log/"))?.is_empty()),
    }
}

/// The table `name` at `version` (the newest when `None`), or `None` when there is none yet.
pub async fn open(store: &Store, name: &str, version: Option<u64>) -> Result<Option<DeltaTable>> {
    if !exists(store, name)? {
        return Ok(None);
    }
    let mut table = DeltaTable::try_from_url(url(store, name)?).await?;
    if let Some(v) = version {
        table
            .load_version(v)
            .await
            .with_context(|| format!("cannot load version {v} of {name} in {store}"))?;
    }
    Ok(table.version().is_some().then_some(table))
}

/// The data files of the table `name` at `version`, sorted.
pub async fn files(store: &Store, name: &str, version: u64) -> Result<Vec<DataFile>> {
    let Some(table) = open(store, name, Some(version)).await? else {
        anyhow::bail!("{name} in {store} is not a Delta table");
    };
    let mut out: Vec<DataFile> = table
        .snapshot()?
        .log_data()
        .into_iter()
        .map(|add| DataFile::new(store, format!("{name}/{}", add.object_store_path())))
        .collect();
    out.sort();
    Ok(out)
}

/// The files added to the table `name` by its versions from `from` on (read from the log's
/// commit files, which the lake keeps: `delta.enableExpiredLogCleanup` is off).
pub fn added_since(store: &Store, name: &str, from: u64) -> Result<Vec<DataFile>> {
    let mut out = Vec::new();
    for v in from.. {
        let commit = format!("{name}/_delta_log/{v:020}.json");
        let Some(bytes) = store.get(&commit)? else {
            break;
        };
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let action: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{commit} in {store} is not a Delta log"))?;
            if let Some(path) = action["add"]["path"].as_str() {
                // A relative, percent-encoded URI (Delta's protocol).
                anyhow::ensure!(
                    !path.contains("://"),
                    "{commit} in {store} adds a file outside the table: {path}"
                );
                let rel = object_store::path::Path::from_url_path(path)?;
                out.push(DataFile::new(store, format!("{name}/{rel}")));
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
    pub file: DataFile,
    pub rows: u64,
    pub bytes: u64,
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

/// Commits `added` and `removed` files to `table` as one version, starting from `base` (the
/// version the lake's snapshot names, `None` when the table is not in it yet). Versions after
/// `base` were left by a writer that crashed before it published the lake's snapshot: the
/// table is first restored to `base` (or emptied). Returns the new version.
pub async fn commit(
    store: &Store,
    table: &Def,
    base: Option<u64>,
    added: &[NewFile],
    removed: &[DataFile],
    operation: Operation,
) -> Result<u64> {
    let name = table.name;
    let mut delta = match open(store, name, None).await? {
        Some(t) => t,
        None => {
            let mut create = DeltaTable::try_from_url(url(store, name)?)
                .await?
                .create()
                .with_table_name(name)
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
        let stale = files(store, name, latest).await?;
        let keep = if base.is_some() {
            files(store, name, target).await?
        } else {
            Vec::new()
        };
        // Undo the unpublished versions: a commit that removes what they added and adds back
        // what they removed (a Delta RESTORE, written as plain actions).
        let mut actions = Vec::new();
        for f in stale.iter().filter(|f| !keep.contains(f)) {
            actions.push(remove(name, f, true)?);
        }
        for f in keep.iter().filter(|f| !stale.contains(f)) {
            let meta = store.head(f.rel())?;
            actions.push(add(name, f, None, meta.size, true)?);
        }
        if !actions.is_empty() {
            commit_actions(&mut delta, actions, Operation::Write).await?;
        }
    }
    let change = operation == Operation::Write;
    let mut actions = Vec::new();
    for f in removed {
        actions.push(remove(name, f, change)?);
    }
    for f in added {
        actions.push(add(name, &f.file, Some(f.rows), f.bytes, change)?);
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

/// The path of `file` relative to the table's directory, as Delta records it.
fn relative<'a>(name: &str, file: &'a DataFile) -> Result<&'a str> {
    file.rel()
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix('/'))
        .with_context(|| format!("{} is not in the table {name}", file.rel()))
}

/// `month=YYYY-MM` of a file's directory, as Delta's partition values.
fn partition_values(rel: &str) -> HashMap<String, Option<String>> {
    rel.split('/')
        .filter_map(|part| part.strip_prefix("month="))
        .map(|m| (MONTH.to_string(), Some(m.to_string())))
        .collect()
}

fn add(
    name: &str,
    file: &DataFile,
    rows: Option<u64>,
    bytes: u64,
    data_change: bool,
) -> Result<Action> {
    let rel = relative(name, file)?;
    Ok(Action::Add(Add {
        partition_values: partition_values(rel),
        path: rel.to_string(),
        size: bytes as i64,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change,
        stats: rows.map(|n| format!("{{\"numRecords\":{n}}}")),
        ..Default::default()
    }))
}

fn remove(name: &str, file: &DataFile, data_change: bool) -> Result<Action> {
    let rel = relative(name, file)?;
    Ok(Action::Remove(Remove {
        partition_values: Some(partition_values(rel)),
        path: rel.to_string(),
        data_change,
        deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
        ..Default::default()
    }))
}

//! Per-ticket stages in passes, so that a large lake is queried in bounded memory.
//!
//! `ticket_facts`, `pair_scores` and `prediction_features` join each ticket to its interactions and
//! ratings: hash joins whose build side grows with the lake, and DataFusion's hash joins cannot
//! spill. These stages only ever combine rows of one ticket, so a lake with more than `tickets_per_pass` tickets
//! computes them in passes: pass k sees only the tickets with `ticket_pass(ticket_id, passes)
//! = k` and their interactions and ratings (by the ticket id each row carries), and writes its
//! rows to a scratch Parquet file. The metric views then read the stage from those files like
//! any table. The SQL is the same `queries/*.sql` in both cases; a stage is computed on its
//! first scan, once per engine, and the scratch files go when the engine does.
//!
//! A stage that reads none of the run's parameters (`ticket_facts`, `pair_scores`) is kept in a
//! local lake instead, under `_derived/<stage>/<key>/`, whatever the lake's size: the key is a
//! hash of the data files it was computed from, the calendar, the reply targets and the build,
//! so every process that reads the same lake state with the same configuration reads it from
//! there rather than from raw rows (`kpis` computes `ticket_facts`, `channel_satisfaction` and
//! the reports read it). It is written beside
//! its final name and renamed into place, so a reader sees all of it or none; a key not used
//! for [`DERIVED_KEEP`] is deleted by the next process that publishes or uses one. A lake it
//! cannot write (object storage, a read-only directory) computes the stage as before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::common::config::TableParquetOptions;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{Params, Scope, catalogue, context, parquet_listing};
use crate::config::Config;
use crate::lake::Lake;
use crate::model::Table;

/// The lake tables a pass filters to its tickets (all carry `ticket_id`).
pub(crate) const PER_TICKET_INPUTS: &[Table] =
    &[Table::Tickets, Table::Interactions, Table::Ratings];

/// The per-ticket stages computed in passes that read none of the run's parameters, by name:
/// engines over one lake snapshot share them ([`super::Engine::with_params`]).
pub(crate) type Shared = BTreeMap<&'static str, Arc<PassedStage>>;

/// Where a local lake keeps its derived stages.
const DERIVED_DIR: &str = "_derived";

/// How long a derived stage's key is kept after it was last used: a reader of an older lake
/// state (a report that began before an ingest committed) reads its files for that long.
const DERIVED_KEEP: Duration = Duration::from_secs(30 * 60);

/// The tables of the run (not of the lake) whose rows change with the parameters.
const RUN_TABLES: &[&str] = &["params", "weeks", "extra_adoptions"];

/// Whether view `name` reads a table of the run's parameters, itself or through the views it
/// depends on: its rows then differ between engines.
pub(crate) fn reads_run_tables(name: &str) -> bool {
    let Some(view) = catalogue::find(name) else {
        return false;
    };
    let words = view
        .sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')));
    view.depends.iter().any(|d| reads_run_tables(d))
        || words
            .into_iter()
            .any(|w| RUN_TABLES.iter().any(|t| w.eq_ignore_ascii_case(t)))
}

/// A per-ticket stage computed pass by pass into scratch Parquet files on its first scan.
#[derive(Debug)]
pub(crate) struct PassedStage {
    pub name: &'static str,
    pub schema: SchemaRef,
    pub passes: u64,
    pub lake: Lake,
    pub config: Config,
    pub params: Params,
    pub runtime: Arc<RuntimeEnv>,
    pub common: Arc<StageCommon>,
    /// Whether the stage is kept in the lake (`_derived/`) when the lake is a local directory.
    pub derived: bool,
    pub table: OnceCell<ListingTable>,
}

/// What the stages of one engine share, each made on first need: the key of the lake state
/// they are computed from (one snapshot and file listing per engine) and the scratch directory
/// of the stages not kept in the lake.
#[derive(Debug, Default)]
pub(crate) struct StageCommon {
    key: OnceCell<String>,
    scratch: OnceCell<tempfile::TempDir>,
}

impl PassedStage {
    async fn compute(&self) -> Result<ListingTable> {
        let external = |e: anyhow::Error| datafusion::error::DataFusionError::External(e.into());
        let kept = match self.derived {
            true => self.derived_dir().await.map_err(external)?,
            false => None,
        };
        let scratch = || async {
            let dir = self
                .common
                .scratch
                .get_or_try_init(|| async { tempfile::tempdir() })
                .await?;
            let dir = dir.path().join(self.name);
            self.compute_into(&dir).await?;
            parquet_listing(&dir, self.schema.clone(), false).map_err(external)
        };
        let Some((root, key)) = kept else {
            return scratch().await;
        };
        let dir = root.join(&key);
        if dir.is_dir() {
            touch(&dir);
        } else {
            // Written aside and renamed: a reader sees the whole stage or no directory.
            static WRITER: AtomicU64 = AtomicU64::new(0);
            let writer = WRITER.fetch_add(1, Ordering::Relaxed);
            let part = root.join(format!(".part-{key}-{}-{writer}", std::process::id()));
            // A crashed process of the same id may have left one.
            let _ = std::fs::remove_dir_all(&part);
            if std::fs::create_dir(&part).is_err() {
                // A lake this process may read but not write: the stage is its own.
                return scratch().await;
            }
            self.compute_into(&part).await?;
            sync_dir(&part)?;
            if std::fs::rename(&part, &dir).is_err() {
                // Another process published the same key first: its files are the same rows.
                std::fs::remove_dir_all(&part)?;
                if !dir.is_dir() {
                    return Err(external(anyhow::anyhow!(
                        "cannot publish {}",
                        dir.display()
                    )));
                }
            }
            sync_dir(&root)?;
        }
        prune(&root, &key);
        parquet_listing(&dir, self.schema.clone(), false).map_err(external)
    }

    /// The lake's directory for this stage and the key of what it is computed from, or `None`
    /// when the lake is not a directory this process can write.
    async fn derived_dir(&self) -> anyhow::Result<Option<(PathBuf, String)>> {
        let Some(root) = self
            .lake
            .store()
            .path_of(&format!("{DERIVED_DIR}/{}", self.name))
        else {
            return Ok(None);
        };
        if std::fs::create_dir_all(&root).is_err() {
            return Ok(None);
        }
        let key = self.common.key.get_or_try_init(|| async { self.key() });
        Ok(Some((root, key.await?.clone())))
    }

    /// What the rows are computed with: this build (its SQL and its functions), the
    /// configuration a stage reads (the calendar, the reply targets), and the lake's files.
    fn key(&self) -> anyhow::Result<String> {
        let mut h = Sha256::new();
        h.update(build_id());
        for m in catalogue::CATALOGUE {
            h.update(m.sql);
        }
        h.update(format!(
            "{:?}{:?}",
            self.config.calendar, self.config.targets
        ));
        // The rows do not depend on the passes, but a test compares passes with one pass.
        h.update(self.passes.to_le_bytes());
        let snapshot = self.lake.snapshot()?;
        for table in PER_TICKET_INPUTS {
            h.update(table.name());
            for f in self.lake.files_at(&snapshot, *table)? {
                h.update(f.rel());
                h.update([0]);
            }
        }
        Ok(crate::hex(&h.finalize()[..16]))
    }

    /// Computes the stage, pass by pass, into Parquet files in `dir`.
    async fn compute_into(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        for pass in 0..self.passes {
            let scope = Scope::Pass {
                pass,
                of: self.passes,
            };
            let ctx = Box::pin(context(
                &self.lake,
                &self.config,
                &self.params,
                self.runtime.clone(),
                scope,
                &mut Shared::default(),
            ))
            .await
            .map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
            let file = dir.join(format!("pass-{pass:05}.parquet"));
            let mut parquet = TableParquetOptions::default();
            parquet.global.compression = Some("zstd(1)".into());
            ctx.sql(&format!("SELECT * FROM {}", self.name))
                .await?
                .write_parquet(
                    &file.to_string_lossy(),
                    DataFrameWriteOptions::new().with_single_file_output(true),
                    Some(parquet),
                )
                .await?;
        }
        Ok(())
    }
}

/// This build: the version, and the running executable's size and modification time (a
/// rebuilt binary may compute differently under the same version).
fn build_id() -> String {
    let exe = std::env::current_exe().and_then(std::fs::metadata);
    let stamp = exe.as_ref().ok().map(|m| (m.len(), m.modified().ok()));
    format!("{} {stamp:?}", env!("CARGO_PKG_VERSION"))
}

/// Marks a derived key as used now (best effort: a failure only shortens its keep).
fn touch(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Makes a directory's entries durable.
fn sync_dir(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Deletes the keys (and crashed writers' `.part-` directories) of a stage other than `key`
/// that nobody used for [`DERIVED_KEEP`]. Best effort: a directory that cannot be read or
/// deleted now is tried again by the next process.
fn prune(root: &Path, key: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy() == key {
            continue;
        }
        let idle = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if idle.is_some_and(|d| d >= DERIVED_KEEP) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[async_trait]
impl TableProvider for PassedStage {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Handed to the Parquet scan for pruning; the engine still applies them after it.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = self.table.get_or_try_init(|| self.compute()).await?;
        table.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ticket_facts` and `pair_scores` are the same whatever the parameters: `pairs` reads
    /// `params` (the period), `prediction_features` its `as_of`.
    #[test]
    fn only_parameter_free_stages_are_shared() {
        assert!(!reads_run_tables("ticket_facts"));
        assert!(!reads_run_tables("pair_scores"));
        assert!(reads_run_tables("pairs"));
        assert!(reads_run_tables("prediction_features"));
        assert!(reads_run_tables("kpis"));
    }
}

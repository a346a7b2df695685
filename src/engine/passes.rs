//! Per-ticket stages in passes, so that a large lake is queried in bounded memory.
//!
//! `ticket_facts`, `pair_scores` and `prediction_features` join each ticket to its interactions and
//! ratings: hash joins whose build side grows with the lake, and DataFusion's hash joins cannot
//! spill. These stages only ever combine rows of one ticket, so a lake with more than
//! `tickets_per_pass` tickets computes them in passes: pass k sees only the tickets whose id lies
//! in its range of ids and their interactions and ratings (by the ticket id each row carries),
//! and writes its rows to a scratch Parquet file. The ranges split a sorted sample of the ids
//! into `passes` equal parts. A range, unlike a hash of the id, lets the Parquet scan skip the
//! files and pages whose id statistics lie outside it: desks number tickets in the order they
//! open them and the lake is partitioned by month, so a pass reads about its own months. The
//! metric views then read the stage from those files like any table. The SQL is the same
//! `queries/*.sql` in both cases; a stage is computed on its first scan, once per engine, and
//! the scratch files go when the engine does.
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
pub(crate) const DERIVED_DIR: &str = "_derived";

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
    ranges: OnceCell<Vec<TicketRange>>,
}

/// The ticket ids of one pass: from `from` (included) up to `to` (excluded), open where `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TicketRange {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl TicketRange {
    /// The SQL condition on `ticket_id`, or `None` when the range holds every ticket.
    pub fn condition(&self) -> Option<String> {
        let literal = |id: &str| format!("'{}'", id.replace('\'', "''"));
        let from = self
            .from
            .as_deref()
            .map(|f| format!("ticket_id >= {}", literal(f)));
        let to = self
            .to
            .as_deref()
            .map(|t| format!("ticket_id < {}", literal(t)));
        match (from, to) {
            (Some(f), Some(t)) => Some(format!("{f} AND {t}")),
            (f, t) => f.or(t),
        }
    }
}

/// About how many ids per pass are sampled to draw the ranges' bounds: at 10 passes, a pass
/// then holds its share of the tickets to within a few percent.
const SAMPLED_PER_PASS: u64 = 4096;

/// `passes` ranges that split `sample` (sorted ticket ids) into equal parts and together hold
/// every id; fewer when the sample repeats a bound.
pub(crate) fn split(sample: &[String], passes: u64) -> Vec<TicketRange> {
    if sample.is_empty() {
        return vec![TicketRange::default()];
    }
    let n = sample.len() as u64;
    let mut bounds: Vec<&String> = (1..passes.max(1))
        .map(|k| &sample[(k * n / passes) as usize])
        .collect();
    bounds.dedup();
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut from = None;
    for b in bounds {
        ranges.push(TicketRange {
            from: from.clone(),
            to: Some(b.clone()),
        });
        from = Some(b.clone());
    }
    ranges.push(TicketRange { from, to: None });
    ranges
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
            let Some(part) = aside(&root, &key) else {
                // A lake this process may read but not write: the stage is its own.
                return scratch().await;
            };
            self.compute_into(&part).await?;
            publish(&root, &part, &key).map_err(external)?;
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

    /// The passes' ranges of ticket ids, from a sample of the ids of the lake's tickets
    /// (`ticket_pass`, a hash, picks the same sample in every process).
    async fn ranges(&self) -> Result<Vec<TicketRange>> {
        // One pass needs no sample: the scan is skipped, not only its result.
        if self.passes <= 1 {
            return Ok(vec![TicketRange::default()]);
        }
        let ctx = datafusion::prelude::SessionContext::new_with_config_rt(
            super::session_config()?,
            self.runtime.clone(),
        );
        super::functions::register_functions(&ctx, &self.config.calendar);
        let external = |e: anyhow::Error| datafusion::error::DataFusionError::External(e.into());
        super::register_table(&ctx, &self.lake, Table::Tickets, "tickets")
            .await
            .map_err(external)?;
        let every = (self.config.tickets_per_pass / SAMPLED_PER_PASS).max(1);
        let sql = format!(
            "SELECT ticket_id FROM tickets WHERE ticket_pass(ticket_id, {every}) = 0 ORDER BY ticket_id"
        );
        let mut sample = Vec::new();
        for batch in ctx.sql(&sql).await?.collect().await? {
            let ids = super::utf8(batch.column(0)).map_err(external)?;
            sample.extend(ids.iter().flatten().map(str::to_string));
        }
        Ok(split(&sample, self.passes))
    }

    /// Computes the stage, pass by pass, into Parquet files in `dir`.
    async fn compute_into(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let ranges = self.common.ranges.get_or_try_init(|| self.ranges()).await?;
        for (pass, range) in ranges.iter().enumerate() {
            let scope = Scope::Pass(range.clone());
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
pub(crate) fn build_id() -> String {
    let exe = std::env::current_exe().and_then(std::fs::metadata);
    let stamp = exe.as_ref().ok().map(|m| (m.len(), m.modified().ok()));
    format!("{} {stamp:?}", env!("CARGO_PKG_VERSION"))
}

/// Marks a derived key as used now (best effort: a failure only shortens its keep).
pub(crate) fn touch(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// A new directory beside `root/key` to write a derived key's files in, or `None` when this
/// process cannot write under `root`. Written aside and then [`publish`]ed, a key is seen
/// whole or not at all.
pub(crate) fn aside(root: &Path, key: &str) -> Option<PathBuf> {
    static WRITER: AtomicU64 = AtomicU64::new(0);
    let writer = WRITER.fetch_add(1, Ordering::Relaxed);
    let part = root.join(format!(".part-{key}-{}-{writer}", std::process::id()));
    // A crashed process of the same id may have left one.
    let _ = std::fs::remove_dir_all(&part);
    std::fs::create_dir(&part).ok().map(|()| part)
}

/// Makes the files written in `part` (from [`aside`]) durable and renames it to `root/key`.
pub(crate) fn publish(root: &Path, part: &Path, key: &str) -> anyhow::Result<()> {
    sync_dir(part)?;
    let dir = root.join(key);
    if std::fs::rename(part, &dir).is_err() {
        // Another process published the same key first: its files hold the same rows.
        std::fs::remove_dir_all(part)?;
        anyhow::ensure!(dir.is_dir(), "cannot publish {}", dir.display());
    }
    Ok(sync_dir(root)?)
}

/// Makes a directory's entries durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
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
pub(crate) fn prune(root: &Path, key: &str) {
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

    /// Consecutive ranges, open at both ends, that together hold every id exactly once.
    #[test]
    fn ranges_split_the_sample_evenly_and_leave_no_id_out() {
        let sample: Vec<String> = (0..1000).map(|i| format!("INC{i:07}")).collect();
        let ranges = split(&sample, 4);
        let bounds: Vec<_> = ranges
            .iter()
            .map(|r| (r.from.as_deref(), r.to.as_deref()))
            .collect();
        assert_eq!(
            bounds,
            [
                (None, Some("INC0000250")),
                (Some("INC0000250"), Some("INC0000500")),
                (Some("INC0000500"), Some("INC0000750")),
                (Some("INC0000750"), None),
            ]
        );
        // An id outside the sample (before, between or after its ids) is in exactly one range.
        let holds = |r: &TicketRange, id: &str| {
            r.from.as_deref().is_none_or(|f| id >= f) && r.to.as_deref().is_none_or(|t| id < t)
        };
        for id in ["", "A", "INC0000250", "INC0000499x", "INC9", "ZZZ"] {
            assert_eq!(ranges.iter().filter(|r| holds(r, id)).count(), 1, "{id}");
        }
        // A sample that repeats a bound gives fewer, still disjoint, ranges; one pass, one range.
        let repeats = ["a", "b", "b", "b", "b", "b", "c", "d"].map(String::from);
        let ranges = split(&repeats, 4);
        assert_eq!(ranges.len(), 3);
        assert_eq!(split(&sample, 1), [TicketRange::default()]);
        assert_eq!(split(&[], 3), [TicketRange::default()]);
    }

    #[test]
    fn a_range_is_an_sql_condition_with_its_ids_quoted() {
        let r = TicketRange {
            from: Some("O'Brien-1".into()),
            to: Some("P".into()),
        };
        assert_eq!(
            r.condition().as_deref(),
            Some("ticket_id >= 'O''Brien-1' AND ticket_id < 'P'")
        );
        let first = TicketRange {
            from: None,
            to: Some("P".into()),
        };
        assert_eq!(first.condition().as_deref(), Some("ticket_id < 'P'"));
        assert_eq!(TicketRange::default().condition(), None);
    }

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

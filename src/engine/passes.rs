//! Per-ticket stages in passes, so that a large lake is queried in bounded memory.
//!
//! `ticket_facts`, `pairs` and `prediction_features` join each ticket to its interactions and
//! ratings: hash joins whose build side grows with the lake, and DataFusion's hash joins cannot
//! spill. These stages only ever combine rows of one ticket, so a lake with more than `tickets_per_pass` tickets
//! computes them in passes: pass k sees only the tickets with `ticket_pass(ticket_id, passes)
//! = k` and their interactions and ratings (by the ticket id each row carries), and writes its
//! rows to a scratch Parquet file. The metric views then read the stage from those files like
//! any table. The SQL is the same `queries/*.sql` in both cases; a stage is computed on its
//! first scan, once per engine, and the scratch files go when the engine does.

use std::collections::BTreeMap;
use std::sync::Arc;

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
    pub scratch: Arc<tempfile::TempDir>,
    pub table: OnceCell<ListingTable>,
}

impl PassedStage {
    async fn compute(&self) -> Result<ListingTable> {
        let dir = self.scratch.path().join(self.name);
        std::fs::create_dir_all(&dir)?;
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
        parquet_listing(&dir, self.schema.clone(), false)
            .map_err(|e| datafusion::error::DataFusionError::External(e.into()))
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

    /// Only `ticket_facts` is the same whatever the parameters: `pairs` reads `params` (the
    /// targets' business flag), `prediction_features` its `as_of`.
    #[test]
    fn only_parameter_free_stages_are_shared() {
        assert!(!reads_run_tables("ticket_facts"));
        assert!(reads_run_tables("pairs"));
        assert!(reads_run_tables("prediction_features"));
        assert!(reads_run_tables("kpis"));
    }
}

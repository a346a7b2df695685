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

use super::{Params, Scope, context, parquet_listing};
use crate::config::Config;
use crate::lake::Lake;
use crate::model::Table;

/// The lake tables a pass filters to its tickets (all carry `ticket_id`).
pub(crate) const PER_TICKET_INPUTS: &[Table] =
    &[Table::Tickets, Table::Interactions, Table::Ratings];

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

//! The views of `queries/`, each planned when a query first reads it.
//!
//! Creating all seventeen views up front took 0.22 s of every process (the largest, such as
//! `channel_satisfaction` and `data_quality`, 40 ms each to plan and type-check), whatever the
//! query read; a metric reads a few of them (`kpis`: itself and `ticket_facts`). The session's
//! default schema is wrapped so that a name of the catalogue that is not registered yet is
//! planned from its SQL when looked up (and, through the planner, the views it reads), then
//! kept like a view of `CREATE VIEW`.
//! Tables and the engine's own providers (the per-ticket passes, the pairing in Rust) are
//! registered as before and found first.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::datasource::ViewTable;
use datafusion::execution::SessionState;
use datafusion::optimizer::analyzer::Analyzer;
use datafusion::optimizer::analyzer::type_coercion::TypeCoercion;
use datafusion::prelude::SessionContext;

use super::catalogue;

/// The session's default schema, with the catalogue's views planned on first use.
pub(crate) struct CatalogueViews {
    /// The schema the session had: its tables and the views planned so far.
    tables: Arc<dyn SchemaProvider>,
    /// The session's state as it is now (None once the session is gone).
    state: Box<dyn Fn() -> Option<SessionState> + Send + Sync>,
}

impl std::fmt::Debug for CatalogueViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogueViews")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

/// Puts the catalogue's views in `ctx`'s default schema, to be planned when first read.
pub(crate) fn install(ctx: &SessionContext) -> anyhow::Result<()> {
    let state = ctx.state();
    let names = &state.config().options().catalog;
    let catalog = ctx
        .catalog(&names.default_catalog)
        .ok_or_else(|| anyhow::anyhow!("the session has no catalog {}", names.default_catalog))?;
    let tables = catalog
        .schema(&names.default_schema)
        .ok_or_else(|| anyhow::anyhow!("the session has no schema {}", names.default_schema))?;
    let weak = ctx.state_weak_ref();
    let views = CatalogueViews {
        tables,
        state: Box::new(move || weak.upgrade().map(|s| s.read().clone())),
    };
    catalog.register_schema(&names.default_schema, Arc::new(views))?;
    Ok(())
}

#[async_trait]
impl SchemaProvider for CatalogueViews {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.tables.table_names();
        for m in catalogue::CATALOGUE {
            if !names.iter().any(|n| n == m.name) {
                names.push(m.name.to_string());
            }
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.tables.table(name).await? {
            return Ok(Some(t));
        }
        let (Some(m), Some(state)) = (catalogue::find(name), (self.state)()) else {
            return Ok(None);
        };
        let plan = async {
            let plan = state.create_logical_plan(m.sql).await?;
            // What `CREATE VIEW` does to a view's plan.
            Analyzer::with_rules(vec![Arc::new(TypeCoercion::new())]).execute_and_check(
                plan,
                &ConfigOptions::default(),
                |_, _| {},
            )
        }
        .await
        .map_err(|e: DataFusionError| e.context(format!("queries/{name}.sql")))?;
        let view: Arc<dyn TableProvider> = Arc::new(ViewTable::new(plan, Some(m.sql.into())));
        // A query planned alongside may have registered it first: that one is kept.
        match self.tables.register_table(name.to_string(), view.clone()) {
            Ok(_) => Ok(Some(view)),
            Err(_) => self.tables.table(name).await,
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        self.tables.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.tables.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.table_exist(name) || catalogue::find(name).is_some()
    }
}

//! The query engine: a DataFusion session over the lake.
//!
//! - The lake's tables are registered as listing tables (`tickets`, `interactions`, `ratings`
//!   carry their hive partition column `month`, so a filter on it prunes whole months), and so are
//!   the side tables `_rejects` and `_findings`.
//! - `params` (one row: the period, the satisfied threshold, the backlog's point in time, the FCR
//!   definition), `targets` (reply-latency target per channel) and `weeks` (the ISO weeks of the
//!   period in the desk's zone) come from the configuration and the command line.
//! - Every `queries/*.sql` file is compiled into the binary and is a view of the same name, so a
//!   metric is `SELECT * FROM channel_satisfaction`, for deskpulse and for users alike; a view is
//!   planned when a query first reads it (`views.rs`).
//! - deskpulse's functions are added by [`functions::register_functions`].
//! - On a lake with more than `tickets_per_pass` tickets, the per-ticket stages (`ticket_facts`,
//!   `pair_scores`) are computed in passes over slices of the tickets (see `passes.rs`), so their joins
//!   hold one slice at a time. Those that read no parameter (`ticket_facts`, `pair_scores`) are
//!   kept in a local lake (`_derived/`) for every later process that reads the same lake state.
//! - `request_runs`, the pairing step of `pairs`, is computed in one sorted pass in Rust
//!   (`pairing.rs`) rather than by its SQL's window functions, except on a cluster.
//! - With `cluster` in the configuration, the same session runs on a Ballista cluster (feature
//!   `cluster`, see `crate::cluster`): every table is one a plan can carry to other machines
//!   (Parquet listings by path, small tables as VALUES views), and there are no passes: the
//!   executors share the work and the memory.

pub mod catalogue;
mod count_distinct_few;
pub mod functions;
mod last_in_order;
mod median;
mod one_group;
pub mod output;
mod pairing;
pub(crate) mod passes;
mod views;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{TableProvider, ViewTable};
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, col, lit};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::config::{Config, Target};
use crate::lake::{DataFile, Lake, Side};
use crate::model::{Adoption, Micros, Table, TableRow, timestamp_type};
use crate::timeparse::format_micros;

/// What a run of the metrics is about.
#[derive(Debug, Clone)]
pub struct Params {
    /// Start of the period (inclusive); `None`: from the beginning.
    pub from: Option<Micros>,
    /// End of the period (exclusive); `None`: to the end.
    pub to: Option<Micros>,
    /// Split the period into ISO weeks (else one period, labelled `from..to`).
    pub by_week: bool,
    /// The point in time of the backlog.
    pub as_of: Micros,
    /// Adoptions given on the command line, besides the lake's.
    pub extra_adoptions: Vec<Adoption>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            from: None,
            to: None,
            by_week: true,
            as_of: chrono::Utc::now().timestamp_micros(),
            extra_adoptions: Vec::new(),
        }
    }
}

impl Params {
    fn label(&self) -> String {
        let f = |t: Option<Micros>| t.map(format_micros).unwrap_or_default();
        format!("{}..{}", f(self.from), f(self.to))
    }
}

/// A DataFusion session over one lake.
pub struct Engine {
    ctx: SessionContext,
    passes: u64,
    /// The cluster the queries run on, if any.
    cluster: Option<String>,
    /// The lake snapshot and configuration it reads, for [`Engine::with_params`].
    lake: Lake,
    config: Config,
    /// Its per-ticket stages computed in passes that read none of the run's parameters: an
    /// engine for other parameters over the same snapshot shares them.
    shared: passes::Shared,
}

/// Which tickets a session sees: all of them, or one pass of the per-ticket stages.
#[derive(Debug, Clone)]
pub(crate) enum Scope {
    /// The whole lake, with `passes` passes for the per-ticket stages (1: plain views, but
    /// for the stages a local lake keeps, computed in one pass).
    All { passes: u64 },
    /// Only the tickets (and their interactions and ratings) whose id lies in one pass's range.
    Pass(passes::TicketRange),
    /// The whole lake as plain views of the SQL, for plans that run on a cluster.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Cluster,
}

impl Engine {
    /// Opens a session over `lake` with the metric views for `params`.
    /// With `config.cluster`, the session's queries run on that Ballista cluster.
    pub async fn open(lake: &Lake, config: &Config, params: &Params) -> Result<Engine> {
        // Every read of this engine (its passes too) sees the snapshot of now.
        let lake = &lake.pinned()?;
        if let Some(url) = &config.cluster {
            return Engine::on_cluster(url, lake, config, params).await;
        }
        let tickets = lake.row_count(Table::Tickets)?;
        let passes = tickets.div_ceil(config.tickets_per_pass).max(1);
        Engine::local(
            lake,
            config,
            params,
            runtime(config)?,
            passes,
            Default::default(),
        )
        .await
    }

    async fn local(
        lake: &Lake,
        config: &Config,
        params: &Params,
        runtime: Arc<RuntimeEnv>,
        passes: u64,
        mut shared: passes::Shared,
    ) -> Result<Engine> {
        let scope = Scope::All { passes };
        let ctx = context(lake, config, params, runtime, scope, &mut shared).await?;
        Ok(Engine {
            ctx,
            passes,
            cluster: None,
            lake: lake.clone(),
            config: config.clone(),
            shared,
        })
    }

    /// An engine for other parameters over the same lake snapshot, with the same memory
    /// budget, that shares this one's per-ticket stages that do not depend on the parameters
    /// (`ticket_facts`, `pair_scores`): a report's engines for the trend, the week and the pairs
    /// compute them once instead of once each.
    pub async fn with_params(&self, params: &Params) -> Result<Engine> {
        if self.cluster.is_some() {
            return Engine::open(&self.lake, &self.config, params).await;
        }
        let runtime = self.ctx.runtime_env();
        let shared = self.shared.clone();
        Engine::local(
            &self.lake,
            &self.config,
            params,
            runtime,
            self.passes,
            shared,
        )
        .await
    }

    #[cfg(feature = "cluster")]
    async fn on_cluster(
        url: &str,
        lake: &Lake,
        config: &Config,
        params: &Params,
    ) -> Result<Engine> {
        let ctx = crate::cluster::connect(url, &config.calendar).await?;
        let mut shared = passes::Shared::default();
        add_tables(&ctx, lake, config, params, Scope::Cluster, &mut shared).await?;
        Ok(Engine {
            ctx,
            passes: 1,
            cluster: Some(url.to_string()),
            lake: lake.clone(),
            config: config.clone(),
            shared,
        })
    }

    #[cfg(not(feature = "cluster"))]
    async fn on_cluster(url: &str, _: &Lake, _: &Config, _: &Params) -> Result<Engine> {
        anyhow::bail!(
            "cluster {url}: this deskpulse was built without the `cluster` feature \
             (build it with `cargo build --release --features cluster`)"
        )
    }

    /// How many passes the per-ticket stages take on this lake (1: none, plain views).
    pub fn passes(&self) -> u64 {
        self.passes
    }

    /// Whether the engine's lake snapshot holds any row of `table`.
    pub fn holds_rows(&self, table: Table) -> Result<bool> {
        Ok(self.lake.row_count(table)? > 0)
    }

    /// The underlying session (for callers that want DataFusion's own API).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Computes view `name` once and keeps its rows in memory for the engine's later queries,
    /// for several metrics that read one small stage (the reports' four weeks of `pairs`): each
    /// would compute it again. Not for a stage of the whole lake, whose rows may not fit, nor
    /// on a cluster, whose executors could not read them (there it does nothing).
    pub async fn keep(&self, name: &str) -> Result<()> {
        if self.cluster.is_some() {
            return Ok(());
        }
        let plan = self.ctx.table(name).await?.create_physical_plan().await?;
        // The plan's schema, not the view's: the batches are typed by it (e.g. string views).
        let schema = plan.schema();
        let partitions =
            datafusion::physical_plan::collect_partitioned(plan, self.ctx.task_ctx()).await?;
        let table = datafusion::datasource::MemTable::try_new(schema, partitions)?;
        // The view, planned by the read above, makes way for its rows.
        self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, Arc::new(table))?;
        Ok(())
    }

    /// Computes the per-ticket stages `names` now, one after the other, as their first scan
    /// would (each holds a pass of tickets in memory, so two computed at once would hold two).
    /// Nothing to do for a stage already computed or kept, nor on a cluster, where the stages
    /// are plain views.
    pub async fn compute_stages(&self, names: &[&str]) -> Result<()> {
        if self.cluster.is_some() {
            return Ok(());
        }
        for name in names {
            self.ctx.table(*name).await?.create_physical_plan().await?;
        }
        Ok(())
    }

    /// Runs one SQL statement and collects its result.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let result = async { self.ctx.sql(sql).await?.collect().await }.await;
        result.map_err(|e| self.explained(e))
    }

    /// Runs one SQL statement and hands its batches to `fold` as they come, for a result too
    /// large to hold whole.
    pub async fn for_each_batch(
        &self,
        sql: &str,
        mut fold: impl FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let mut stream = (async { self.ctx.sql(sql).await?.execute_stream().await }.await)
            .map_err(|e| self.explained(e))?;
        while let Some(batch) = stream.next().await {
            fold(&batch.map_err(|e| self.explained(e))?)?;
        }
        Ok(())
    }

    fn explained(&self, e: DataFusionError) -> anyhow::Error {
        match &self.cluster {
            // All a client hears of a plan an executor cannot decode (a function it does not
            // have) is this; say what usually causes it.
            Some(url) if e.to_string().contains("could not be prepared") => anyhow::Error::new(e)
                .context(format!(
                    "the executors of the cluster at {url} could not run the query: are they \
                     `deskpulse cluster executor` processes of this deskpulse version? A stock \
                     Ballista executor does not have deskpulse's functions"
                )),
            _ => e.into(),
        }
    }

    /// One metric family: the rows of its view, in its natural order.
    pub async fn metric(&self, name: &str) -> Result<Vec<RecordBatch>> {
        let Some(m) = catalogue::find(name) else {
            anyhow::bail!(
                "unknown metric '{name}' (expected one of {})",
                catalogue::CATALOGUE
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        self.sql(&format!("SELECT * FROM {name} ORDER BY {}", m.order))
            .await
    }
}

/// A string column as `Utf8`, whichever string type the plan produced (DataFusion may give
/// `Utf8View` for computed strings).
pub fn utf8(a: &ArrayRef) -> Result<StringArray> {
    let cast = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().clone())
}

/// The runtime all sessions of one engine share (so one memory budget covers every pass).
fn runtime(config: &Config) -> Result<Arc<RuntimeEnv>> {
    // With `memory_mb`, sorts and aggregations spill to the OS temporary directory past the
    // budget, and a query that still needs more fails naming its top consumers (hash joins
    // cannot spill). Without it, the engine takes what it needs.
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(mb) = config.memory_mb {
        let pool = TrackConsumersPool::new(
            GreedyMemoryPool::new(mb as usize * 1024 * 1024),
            std::num::NonZeroUsize::new(5).expect("5 is not zero"),
        );
        runtime = runtime.with_memory_pool(Arc::new(pool));
    }
    Ok(runtime.build_arc()?)
}

/// Every local session's configuration: DataFusion's, tuned through DATAFUSION_* environment
/// variables (target partitions: the core count unless one is set).
pub(crate) fn session_config() -> datafusion::common::Result<SessionConfig> {
    Ok(SessionConfig::from_env()?.with_information_schema(true))
}

/// A session with the lake's tables (as `scope` sees them), the run's small tables and every
/// view of `queries/`; the per-ticket stages in `shared` are taken from there, and those it
/// computes in passes that can be shared are added to it.
pub(crate) async fn context(
    lake: &Lake,
    config: &Config,
    params: &Params,
    runtime: Arc<RuntimeEnv>,
    scope: Scope,
    shared: &mut passes::Shared,
) -> Result<SessionContext> {
    let ctx = SessionContext::new_with_config_rt(session_config()?, runtime);
    functions::register_functions(&ctx, &config.calendar);
    add_tables(&ctx, lake, config, params, scope, shared).await?;
    Ok(ctx)
}

/// Adds the lake's tables (as `scope` sees them), the run's small tables and every view of
/// `queries/` to a session.
async fn add_tables(
    ctx: &SessionContext,
    lake: &Lake,
    config: &Config,
    params: &Params,
    scope: Scope,
    shared: &mut passes::Shared,
) -> Result<()> {
    views::install(ctx)?;
    // The lake's files are named by URL: on object storage, read with the lake's own client.
    if let Some((bucket, store)) = lake.store().object_store() {
        ctx.register_object_store(&bucket, store);
    }
    for table in Table::ALL {
        let pass = match &scope {
            Scope::Pass(range) if passes::PER_TICKET_INPUTS.contains(&table) => range.condition(),
            _ => None,
        };
        match pass {
            Some(condition) => {
                let whole = format!("lake_{}", table.name());
                register_table(ctx, lake, table, &whole).await?;
                ctx.sql(&format!(
                    "CREATE VIEW {} AS SELECT * FROM {whole} WHERE {condition}",
                    table.name()
                ))
                .await?;
            }
            _ => register_table(ctx, lake, table, table.name()).await?,
        }
    }
    // The side tables: refused rows and findings, queryable like the rest.
    for side in [Side::Rejects, Side::Findings] {
        let files = lake.side_files(side.name())?;
        let schema = side.def().schema;
        let table = if files.is_empty() {
            empty_listing(lake, schema, false)?
        } else {
            file_listing(&files, schema)?
        };
        ctx.register_table(side.name(), Arc::new(table))?;
    }
    ctx.register_table("params", small_table(params_table(config, params)?)?)?;
    ctx.register_table("targets", small_table(targets_table(config)?)?)?;
    ctx.register_table("weeks", small_table(weeks_table(config, params)?)?)?;
    ctx.register_table(
        "extra_adoptions",
        small_table(Adoption::to_batch(&params.extra_adoptions))?,
    )?;
    // A stage that reads no parameter is kept in a local lake (`_derived/`) even in one pass.
    let local = lake.store().local_dir().is_some();
    let derived = |name| local && !passes::reads_run_tables(name);
    let common = Arc::new(passes::StageCommon::default());
    for m in catalogue::CATALOGUE {
        let (name, sql) = (m.name, m.sql);
        match scope {
            Scope::All { .. } if shared.contains_key(name) => {
                ctx.register_table(name, shared[name].clone())?;
            }
            Scope::All { passes } if m.per_ticket && (passes > 1 || derived(name)) => {
                let schema = ctx.sql(sql).await?.schema().as_arrow().clone();
                let stage = Arc::new(passes::PassedStage {
                    name,
                    schema: Arc::new(schema),
                    passes,
                    lake: lake.clone(),
                    config: config.clone(),
                    params: params.clone(),
                    runtime: ctx.runtime_env(),
                    common: common.clone(),
                    derived: derived(name),
                    table: Default::default(),
                });
                if !passes::reads_run_tables(name) {
                    shared.insert(name, stage.clone());
                }
                ctx.register_table(name, stage)?;
            }
            Scope::All { .. } | Scope::Pass { .. } if name == pairing::VIEW => {
                let schema = ctx.sql(sql).await?.schema().as_arrow().clone();
                let runs = pairing::RequestRuns {
                    schema: Arc::new(schema),
                };
                ctx.register_table(name, Arc::new(runs))?;
            }
            // A plain view: planned when first read.
            _ => {}
        }
    }
    Ok(())
}

/// A small table of the run (parameters, targets, weeks) as a view over its rows as literals:
/// unlike an in-memory table, a plan can carry it to a cluster.
fn small_table(batch: RecordBatch) -> Result<Arc<dyn TableProvider>> {
    let schema = batch.schema();
    let row = |r: usize| -> Result<Vec<Expr>> {
        batch
            .columns()
            .iter()
            .map(|c| Ok(lit(ScalarValue::try_from_array(c, r)?)))
            .collect()
    };
    let (rows, empty) = if batch.num_rows() == 0 {
        // VALUES needs a row: one of typed NULLs, filtered out.
        let nulls = schema
            .fields()
            .iter()
            .map(|f| Ok(lit(ScalarValue::try_from(f.data_type())?)))
            .collect::<Result<Vec<_>>>()?;
        (vec![nulls], true)
    } else {
        (
            (0..batch.num_rows()).map(row).collect::<Result<_>>()?,
            false,
        )
    };
    let names = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| col(format!("column{}", i + 1)).alias(f.name()));
    let mut plan = LogicalPlanBuilder::values(rows)?.project(names)?;
    if empty {
        plan = plan.filter(lit(false))?;
    }
    Ok(Arc::new(ViewTable::new(plan.build()?, None)))
}

/// Registers `table` as `name`: the Parquet files of the snapshot the lake is read at (never
/// a directory listing, which would also find files of other versions). A table partitioned by
/// month is the UNION ALL of one scan per month with its `month` as a constant column, so a
/// filter on `month` removes whole months at planning, as hive partitions did.
pub(crate) async fn register_table(
    ctx: &SessionContext,
    lake: &Lake,
    table: Table,
    name: &str,
) -> Result<()> {
    let files = lake.files(table)?;
    let partitioned = table.partition_column().is_some();
    if files.is_empty() {
        let listing = empty_listing(lake, table.schema(), partitioned)?;
        ctx.register_table(name, Arc::new(listing))?;
        return Ok(());
    }
    if !partitioned {
        ctx.register_table(name, Arc::new(file_listing(&files, table.schema())?))?;
        return Ok(());
    }
    let mut months: std::collections::BTreeMap<String, Vec<DataFile>> = Default::default();
    for f in files {
        let month = f
            .partition()
            .strip_prefix("month=")
            .with_context(|| format!("{} is not in a month=YYYY-MM directory", f.rel()))?
            .to_string();
        months.entry(month).or_default().push(f);
    }
    let mut plan: Option<LogicalPlanBuilder> = None;
    for (month, files) in months {
        let listing = file_listing(&files, table.schema())?;
        let source = datafusion::datasource::provider_as_source(Arc::new(listing));
        let columns = table
            .schema()
            .fields()
            .iter()
            .map(|f| col(f.name()))
            .chain([lit(month.clone()).alias("month")])
            .collect::<Vec<_>>();
        let scan = LogicalPlanBuilder::scan(format!("{name}_{month}"), source, None)?
            .project(columns)?
            .build()?;
        plan = Some(match plan {
            None => LogicalPlanBuilder::from(scan),
            Some(p) => p.union(scan)?,
        });
    }
    let plan = plan
        .expect("a partitioned table with files has a month")
        .build()?;
    ctx.register_table(name, Arc::new(ViewTable::new(plan, None)))?;
    Ok(())
}

/// A table with no file yet: a listing of a directory that holds no Parquet file.
fn empty_listing(
    lake: &Lake,
    schema: datafusion::arrow::datatypes::SchemaRef,
    partitioned: bool,
) -> Result<ListingTable> {
    let empty = "_snapshots/";
    if let Some(dir) = lake.store().path_of(empty) {
        std::fs::create_dir_all(&dir)?;
        return parquet_listing(&dir, schema, partitioned);
    }
    let url = ListingTableUrl::parse(lake.store().url_of(empty)?)?;
    listing(url, schema, partitioned)
}

/// Some Parquet files as one table of `schema`.
fn file_listing(
    files: &[DataFile],
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<ListingTable> {
    let urls = files
        .iter()
        .map(|f| Ok(ListingTableUrl::parse(f.url()?)?))
        .collect::<Result<_>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(ListingTable::try_new(config)?)
}

/// The Parquet files of a directory as one table of `schema` (with the hive column `month` when
/// `partitioned`): the lake's tables and the per-ticket passes' scratch files alike.
pub(crate) fn parquet_listing(
    dir: &Path,
    schema: datafusion::arrow::datatypes::SchemaRef,
    partitioned: bool,
) -> Result<ListingTable> {
    listing(ListingTableUrl::parse(dir_url(dir)?)?, schema, partitioned)
}

/// The Parquet files under `url` as one table of `schema` (see [`parquet_listing`]).
fn listing(
    url: ListingTableUrl,
    schema: datafusion::arrow::datatypes::SchemaRef,
    partitioned: bool,
) -> Result<ListingTable> {
    let mut options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    if partitioned {
        options = options.with_table_partition_cols(vec![("month".to_string(), DataType::Utf8)]);
    }
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(ListingTable::try_new(config)?)
}

fn dir_url(dir: &Path) -> Result<String> {
    let abs = std::fs::canonicalize(dir)?;
    Ok(format!("{}/", abs.display()))
}

fn params_table(config: &Config, p: &Params) -> Result<RecordBatch> {
    let ts = |name: &str| Field::new(name, timestamp_type(), false);
    let schema = Arc::new(Schema::new(vec![
        ts("period_start"),
        ts("period_end"),
        Field::new("by_week", DataType::Boolean, false),
        Field::new("period_label", DataType::Utf8, false),
        Field::new("satisfied", DataType::Float64, false),
        ts("as_of"),
        Field::new("fcr", DataType::Utf8, false),
        Field::new("window_micros", DataType::Int64, false),
        Field::new("ramp_micros", DataType::Int64, false),
        Field::new("min_rated", DataType::Int64, false),
        Field::new("csat_threshold", DataType::Float64, false),
    ]));
    let t = |v: Micros| Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone("UTC"));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            t(p.from.unwrap_or(i64::MIN / 2)),
            t(p.to.unwrap_or(i64::MAX / 2)),
            Arc::new(BooleanArray::from(vec![p.by_week])),
            Arc::new(StringArray::from(vec![p.label()])),
            Arc::new(Float64Array::from(vec![config.satisfied])),
            t(p.as_of),
            Arc::new(StringArray::from(vec![config.fcr.as_str()])),
            Arc::new(Int64Array::from(vec![weeks(config.window_weeks)])),
            Arc::new(Int64Array::from(vec![weeks(config.ramp_weeks)])),
            Arc::new(Int64Array::from(vec![config.min_rated as i64])),
            Arc::new(Float64Array::from(vec![config.csat_threshold])),
        ],
    )?)
}

fn weeks(n: u32) -> i64 {
    n as i64 * 7 * 86_400_000_000
}

/// The ISO weeks (in the calendar's zone) that overlap the period, or the 12 weeks up to
/// `as_of` when the period is open: `week`, `week_start`, `week_end`.
fn weeks_table(config: &Config, p: &Params) -> Result<RecordBatch> {
    let to = p.to.unwrap_or(p.as_of);
    let from = p.from.unwrap_or(to - weeks(12));
    let span = if from < to {
        config.calendar.weeks_between(from, to)
    } else {
        Vec::new()
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("week", DataType::Utf8, false),
        Field::new("week_start", timestamp_type(), false),
        Field::new("week_end", timestamp_type(), false),
    ]));
    let t = |f: fn(&crate::calendar::Week) -> Micros| {
        Arc::new(
            TimestampMicrosecondArray::from(span.iter().map(f).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                span.iter().map(|w| w.label.as_str()),
            )),
            t(|w| w.start),
            t(|w| w.end),
        ],
    )?)
}

fn targets_table(config: &Config) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("channel", DataType::Utf8, false),
        Field::new("target_seconds", DataType::Float64, false),
        Field::new("business", DataType::Boolean, false),
    ]));
    let (mut ch, mut secs, mut biz) = (Vec::new(), Vec::new(), Vec::new());
    for (c, t) in &config.targets {
        ch.push(c.as_str());
        let (s, b) = match t {
            Target::Seconds(s) => (*s, false),
            Target::BusinessSeconds(s) => (*s, true),
        };
        secs.push(s);
        biz.push(b);
    }
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ch)),
            Arc::new(Float64Array::from(secs)),
            Arc::new(BooleanArray::from(biz)),
        ],
    )?)
}

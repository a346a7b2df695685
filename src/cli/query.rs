//! `deskpulse sql` and `deskpulse metrics`: one query over the lake, printed.

use std::process::ExitCode;

use anyhow::Result;
use clap::builder::{PossibleValue, PossibleValuesParser};
use deskpulse::engine::catalogue::CATALOGUE;
use deskpulse::engine::{Engine, output};

use super::flags::{On, Scope};
use super::{Context, out, outln, runtime};

#[derive(clap::Args)]
pub struct SqlArgs {
    /// The query.
    query: String,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    pub on: On,
}

#[derive(clap::Args)]
pub struct MetricArgs {
    /// The metric: a view of queries/.
    #[arg(value_parser = metric_names())]
    name: String,
    #[command(flatten)]
    scope: Scope,
    #[command(flatten)]
    pub on: On,
}

/// The catalogue's metrics, each with its line of help.
fn metric_names() -> PossibleValuesParser {
    PossibleValuesParser::new(
        CATALOGUE
            .iter()
            .map(|m| PossibleValue::new(m.name).help(m.help)),
    )
}

/// What `sql` and `metrics` run.
enum Query {
    Sql(String),
    Metric(String),
}

pub fn sql(a: SqlArgs, ctx: Context) -> Result<ExitCode> {
    run(Query::Sql(a.query), &a.scope, ctx)
}

pub fn metric(a: MetricArgs, ctx: Context) -> Result<ExitCode> {
    run(Query::Metric(a.name), &a.scope, ctx)
}

/// Opens the engine for a scope, runs one query and prints it.
fn run(query: Query, scope: &Scope, mut ctx: Context) -> Result<ExitCode> {
    if let Some(fcr) = scope.fcr {
        ctx.config.fcr = fcr;
    }
    let params = scope.params();
    let lake = ctx.lake()?;
    let batches = runtime()?.block_on(async {
        let engine = Engine::open(&lake, &ctx.config, &params).await?;
        match query {
            Query::Sql(sql) => engine.sql(&sql).await,
            Query::Metric(name) => engine.metric(&name).await,
        }
    })?;
    out!("{}", output::render(&batches, scope.format)?);
    if scope.format == output::Format::Table {
        outln!();
    }
    Ok(ExitCode::SUCCESS)
}

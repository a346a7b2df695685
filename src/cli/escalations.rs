//! `deskpulse escalations`: every dissatisfied rating of a period, to call back.

use std::process::ExitCode;

use anyhow::Result;
use deskpulse::engine::{Engine, output};

use super::flags::{On, Period};
use super::{Context, out, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    period: Period,
    #[arg(long, default_value = "table")]
    format: output::Format,
    #[command(flatten)]
    pub on: On,
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    let params = a.period.params();
    let lake = ctx.lake()?;
    let batches = runtime()?.block_on(async {
        Engine::open(&lake, &ctx.config, &params)
            .await?
            .metric("escalations")
            .await
    })?;
    out!("{}", output::render(&batches, a.format)?);
    Ok(ExitCode::SUCCESS)
}

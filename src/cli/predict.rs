//! `deskpulse predict`: P(satisfied) for the resolved tickets nobody rated, published only when
//! it beats chance on tickets the fit never saw.

use std::process::ExitCode;

use anyhow::Result;
use deskpulse::engine::{Engine, Params, output::Format};
use deskpulse::model::Micros;
use deskpulse::predict::{Options, predict, record, render_text};

use super::flags::time;
use super::{Context, outln, runtime, usage};

#[derive(clap::Args)]
pub struct Args {
    /// Predict as of this time: tickets resolved and ratings given by then (default: now).
    #[arg(long, value_parser = time)]
    as_of: Option<Micros>,
    /// Publish only when the validated AUC's lower 95% bound exceeds 0.5 by this much.
    #[arg(long, default_value_t = 0.05)]
    margin: f64,
    /// Output: table or json.
    #[arg(long, default_value = "table")]
    format: Format,
    /// Write the predictions of a published model to the lake's predictions table.
    #[arg(long)]
    record: bool,
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    if a.format == Format::Csv {
        return Err(usage("--format: predict prints table or json"));
    }
    if !(0.0..0.5).contains(&a.margin) {
        return Err(usage("--margin must be at least 0 and below 0.5"));
    }
    let mut params = Params {
        by_week: false,
        ..Params::default()
    };
    if let Some(t) = a.as_of {
        params.as_of = t;
    }
    let options = Options {
        margin: a.margin,
        seed: ctx.config.seed,
        ..Options::default()
    };
    let lake = ctx.lake()?;
    let outcome = runtime()?.block_on(async {
        let engine = Engine::open(&lake, &ctx.config, &params).await?;
        predict(&engine, &options).await
    })?;
    if a.record {
        let n = record(&lake, &outcome, params.as_of)?;
        match &outcome.model_id {
            Some(model) if outcome.published => eprintln!(
                "recorded {n} predictions of model {model} in {}/predictions",
                ctx.lake_dir.display()
            ),
            _ => eprintln!("nothing recorded: no model was published"),
        }
    }
    if a.format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        outln!("{}", render_text(&outcome));
    }
    Ok(ExitCode::SUCCESS)
}

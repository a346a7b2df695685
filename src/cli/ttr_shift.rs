//! `deskpulse ttr-shift`: time to resolution before and after each self-service adoption.

use std::process::ExitCode;

use anyhow::Result;
use deskpulse::engine::{Engine, Params, output::Format};
use deskpulse::metrics::ttr_shift::{Refused, ShiftOptions, render_text, ttr_shift};
use deskpulse::model::{Adoption, Micros};

use super::flags::{On, time, weeks};
use super::{Context, outln, runtime, usage};

#[derive(clap::Args)]
pub struct Args {
    /// Only this adoption.
    #[arg(long)]
    adoption: Option<String>,
    /// Window length in weeks, e.g. 12w (default: the configuration's).
    #[arg(long, value_parser = weeks)]
    window: Option<u32>,
    /// Ramp-up after the launch left out of the after window, e.g. 2w.
    #[arg(long, value_parser = weeks)]
    ramp: Option<u32>,
    /// An adoption not in the lake: its launch date...
    #[arg(long, value_parser = launch)]
    launch: Option<(String, Micros)>,
    /// ...and the categories it serves (comma-separated; none: all).
    #[arg(long, value_delimiter = ',')]
    scope: Vec<String>,
    /// Refuse a window with fewer resolved tickets (smaller windows under 30 are reported with a warning).
    #[arg(long, default_value_t = 2)]
    min_tickets: usize,
    /// Output: text (table) or json.
    #[arg(long, default_value = "text")]
    format: Format,
    #[command(flatten)]
    pub on: On,
}

/// A launch date as given (it names the adoption) and as a time.
fn launch(s: &str) -> Result<(String, Micros), String> {
    Ok((s.to_string(), time(s)?))
}

pub fn run(a: Args, mut ctx: Context) -> Result<ExitCode> {
    let lake = ctx.lake()?;
    let config = &mut ctx.config;
    config.window_weeks = a.window.unwrap_or(config.window_weeks);
    config.ramp_weeks = a.ramp.unwrap_or(config.ramp_weeks);
    if config.window_weeks == 0 {
        return Err(usage("--window must be at least 1w"));
    }
    if a.format == Format::Csv {
        return Err(usage("--format: ttr-shift prints text or json"));
    }
    let mut params = Params::default();
    let mut only = a.adoption;
    if let Some((given, at)) = a.launch {
        params.extra_adoptions.push(Adoption {
            adoption_id: "cli".into(),
            name: format!("launch on {given}"),
            kind: None,
            launched_at: at,
            scope: a.scope,
        });
        only.get_or_insert_with(|| "cli".into());
    }
    let opts = ShiftOptions {
        adoption: only,
        min_tickets: a.min_tickets,
        seed: config.seed,
        ..ShiftOptions::default()
    };
    let shifts = runtime()?
        .block_on(async {
            let engine = Engine::open(&lake, config, &params).await?;
            ttr_shift(&engine, &opts).await
        })
        .map_err(|e| match e.downcast::<Refused>() {
            Ok(refused) => usage(refused.0),
            Err(e) => e,
        })?;
    if a.format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&shifts)?);
    } else {
        for s in &shifts {
            outln!("{}", render_text(s));
        }
    }
    Ok(ExitCode::SUCCESS)
}

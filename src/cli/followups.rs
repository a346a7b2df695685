//! `deskpulse followups`: whom to send a long-form survey, throttled; written and recorded.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use deskpulse::engine::{Engine, output::Format};
use deskpulse::metrics::followups::{self, Throttles};

use super::flags::{On, Period};
use super::{Context, out, outln, runtime};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    period: Period,
    /// Append the targets to the lake's surveys (so the cooldown holds next time).
    #[arg(long)]
    record: bool,
    /// Print the plan only: no files, no record.
    #[arg(long)]
    dry_run: bool,
    /// Write followups.csv and followups.json here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A file of requester ids never to survey, one per line (default: the configuration's).
    #[arg(long)]
    opt_out: Option<PathBuf>,
    /// At most this many targets per cohort (default: the configuration's).
    #[arg(long)]
    cap: Option<u32>,
    /// Nobody surveyed within this many days (default: the configuration's).
    #[arg(long)]
    cooldown_days: Option<u32>,
    /// Output: table, csv or json.
    #[arg(long, default_value = "table")]
    format: Format,
    #[command(flatten)]
    pub on: On,
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    let params = a.period.params();
    let mut config = ctx.config.clone();
    config.opt_out = a.opt_out.or(config.opt_out);
    config.cap = a.cap.unwrap_or(config.cap);
    config.cooldown_days = a.cooldown_days.unwrap_or(config.cooldown_days);
    let throttles = Throttles::from_config(&config, params.as_of)?;
    let lake = ctx.lake()?;
    let plan = runtime()?.block_on(async {
        let engine = Engine::open(&lake, &config, &params).await?;
        followups::plan(&engine, &throttles).await
    })?;
    eprintln!(
        "{} targets of {} candidates ({} opted out, {} surveyed within {} days, {} already in the low-rating cohort, {} over the cap of {} per cohort){}",
        plan.targets.len(),
        plan.candidates,
        plan.opted_out,
        plan.in_cooldown,
        throttles.cooldown_days,
        plan.in_other_cohort,
        plan.over_cap,
        throttles.cap,
        if a.dry_run {
            "; dry run: nothing written"
        } else {
            ""
        }
    );
    match a.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&plan.targets)?),
        Format::Csv => out!("{}", followups::to_csv(&plan.targets)?),
        Format::Table => {
            for x in &plan.targets {
                outln!(
                    "{:<14} {:<12} {:<10} {}  [{}]",
                    x.requester_id,
                    x.cohort,
                    x.channel.as_deref().unwrap_or("-"),
                    x.reason,
                    x.tickets.join(", ")
                );
            }
        }
    }
    if !a.dry_run {
        if let Some(dir) = &a.out {
            followups::write_files(dir, &plan.targets)?;
            eprintln!("wrote {}/followups.csv and followups.json", dir.display());
        }
        if a.record {
            let n = followups::record(&lake, &plan.targets, throttles.now)?;
            eprintln!("recorded {n} surveys in {}/surveys", ctx.lake_dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

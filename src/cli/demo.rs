//! `deskpulse demo`: the main job on the embedded sample.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use deskpulse::demo;

use super::{Context, outln};

#[derive(clap::Args)]
pub struct Args {
    /// The sample's directory (generated when its files are missing).
    #[arg(long, default_value = "sample-data/demo")]
    sample: PathBuf,
    /// Tickets to generate when the sample is missing.
    #[arg(long, default_value_t = demo::DEMO_TICKETS)]
    tickets: u64,
    /// Where the reports go.
    #[arg(long, default_value = "reports")]
    out: PathBuf,
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    let lake = ctx.lake()?;
    let r = demo::run(
        &a.sample,
        a.tickets,
        &lake,
        &ctx.config,
        &a.out,
        ctx.progress,
    )?;
    if r.generated {
        outln!(
            "generated {} ({} tickets, seed {})",
            a.sample.display(),
            a.tickets,
            demo::SAMPLE_SEED
        );
    }
    for f in &r.files {
        outln!("{f}");
    }
    outln!("the lake at {} holds:", ctx.lake_dir.display());
    for (t, n) in &r.tables {
        outln!("  {t:<13}{n:>9} rows");
    }
    outln!("  {:<13}{:>9} rows", "_rejects", r.rejects);
    outln!("  {:<13}{:>9} rows", "_findings", r.findings);
    outln!("weekly report: {}", r.weekly.display());
    outln!("dashboard:     {}", r.dashboard.display());
    for s in &r.screenshots {
        outln!("screenshot:    {}", s.display());
    }
    match &r.screenshot_error {
        Some(e) => eprintln!("warning: no screenshot: {e}"),
        None if r.screenshots.is_empty() => {
            outln!("screenshots:   none (no Chromium in /usr/bin)")
        }
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

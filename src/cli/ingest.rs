//! `deskpulse ingest`: export files into the lake, with a summary per file and table.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono_tz::Tz;
use deskpulse::ingest::{IngestOptions, ingest};
use deskpulse::model::Table;

use super::{Context, out, outln, unreadable_input};

#[derive(clap::Args)]
pub struct Args {
    /// Import profile: generic, servicenow, zendesk, jira, twitter.
    #[arg(long, default_value = "generic")]
    profile: String,
    /// Column mapping file (TOML) for the generic profile.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// The table a generic file fills (else taken from the mapping or the file name).
    #[arg(long)]
    table: Option<Table>,
    /// IANA time zone for timestamps that carry none (default: UTC, or the mapping's).
    #[arg(long, value_parser = deskpulse::timeparse::parse_tz)]
    tz: Option<Tz>,
    /// Do not compute VADER sentiment of bodies and comments.
    #[arg(long)]
    no_sentiment: bool,
    /// Files to ingest.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    let lake = ctx.lake()?;
    let opts = IngestOptions {
        profile: a.profile,
        mapping: a.mapping,
        table: a.table,
        tz: a.tz,
        progress: ctx.progress,
        no_sentiment: a.no_sentiment,
        sentiment_languages: ctx.config.sentiment_languages.clone(),
    };
    let (reports, errors) = ingest(&lake, &a.files, &opts)?;
    for r in &reports {
        outln!("{r}");
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    let (stored, rejected, findings) = reports
        .iter()
        .flat_map(|r| r.tables.values())
        .fold((0, 0, 0), |a, c| {
            (a.0 + c.stored, a.1 + c.rejected, a.2 + c.findings)
        });
    out!(
        "total: {} files ingested, {} skipped, {} refused; {} rows stored, {} rejected (see {}/_rejects)",
        reports.iter().filter(|r| !r.skipped).count(),
        reports.iter().filter(|r| r.skipped).count(),
        errors.len(),
        stored,
        rejected,
        ctx.lake_dir.display()
    );
    if findings > 0 {
        let s = if findings == 1 { "" } else { "s" };
        out!("; {findings} finding{s} in kept rows (see deskpulse check)");
    }
    outln!();
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        unreadable_input()
    })
}

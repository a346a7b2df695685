//! `deskpulse report weekly|dashboard`: the chart reports of one ISO week.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use deskpulse::report;

use super::flags::On;
use super::{Context, outln, runtime, usage};

#[derive(clap::Subcommand)]
pub enum Kind {
    /// Writes OUT/<week>/index.html, charts/*.svg|png and tables/*.csv|json.
    Weekly {
        #[command(flatten)]
        week: Week,
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
    /// Writes one self-contained page: KPI tiles, channel mix and satisfaction, deflection.
    Dashboard {
        #[command(flatten)]
        week: Week,
        #[arg(long, default_value = "reports/dashboard.html")]
        out: PathBuf,
    },
}

impl Kind {
    pub fn week(&self) -> &Week {
        match self {
            Kind::Weekly { week, .. } | Kind::Dashboard { week, .. } => week,
        }
    }
}

/// The week a report is about.
#[derive(clap::Args)]
pub struct Week {
    /// ISO week in the calendar's zone, e.g. 2026-W47 (default: the last complete week).
    #[arg(long)]
    week: Option<String>,
    #[command(flatten)]
    pub on: On,
}

pub fn run(kind: Kind, ctx: &Context) -> Result<ExitCode> {
    let calendar = &ctx.config.calendar;
    // The week is read with the configuration's calendar (its time zone), so not by clap.
    let week = match &kind.week().week {
        Some(w) => calendar
            .parse_week(w)
            .map_err(|e| usage(format!("--week: {e}")))?,
        None => calendar.previous_week(&calendar.week_of(chrono::Utc::now().timestamp_micros())),
    };
    // One snapshot for the figures and for the key they are kept under.
    let lake = ctx.lake()?.pinned()?;
    let config = &ctx.config;
    let kept = match kind {
        Kind::Dashboard { .. } => report::kept::load(&lake, config, &week)?,
        Kind::Weekly { .. } => None,
    };
    let data = match kept {
        Some(data) => data,
        None => {
            let scope = match kind {
                Kind::Weekly { .. } => report::Scope::Weekly,
                Kind::Dashboard { .. } => report::Scope::Dashboard,
            };
            let data = runtime()?.block_on(report::gather(&lake, config, &week, scope))?;
            // A cache: the report does not fail when its figures cannot be kept.
            if let Err(e) = report::kept::keep(&lake, config, &data) {
                eprintln!("note: the dashboard's figures were not kept in the lake: {e:#}");
            }
            data
        }
    };
    match kind {
        Kind::Weekly { out, .. } => {
            let w = report::weekly(&data, &out)?;
            outln!(
                "wrote {} ({} charts as SVG and PNG, {} tables as CSV and JSON)",
                w.index.display(),
                w.charts.len() / 2,
                w.tables.len() / 2
            );
        }
        Kind::Dashboard { out, .. } => {
            report::dashboard(&data, &out)?;
            outln!("wrote {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

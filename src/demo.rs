//! The main job on the embedded default: generate the demo's sample (`sample-data/demo/`,
//! 25,000 tickets, deterministic) if it is missing, ingest it into the lake, say what the lake
//! holds, and write the weekly report and the dashboard of the sample's last week. (The
//! repository also carries a small sample of 3,000 tickets with the same seed in `sample-data/`,
//! for tests and for the examples in docs/.)

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::calendar::Week;
use crate::config::Config;
use crate::generate::{GenerateOptions, end_micros, generate};
use crate::ingest::{FileReport, ingest_canonical};
use crate::lake::Lake;
use crate::model::Table;
use crate::report::{DASHBOARD_SHOT, WEEKLY_SHOT, browser};

/// Tickets the demo generates: enough for a week's report to show a few dozen ratings per
/// channel rather than a handful. And the seed (also of the committed sample).
pub const DEMO_TICKETS: u64 = 25_000;
pub const SAMPLE_SEED: u64 = 42;
/// The sample's files, in ingest order.
pub const SAMPLE_FILES: [&str; 4] = [
    "tickets.csv",
    "interactions.csv",
    "ratings.csv",
    "adoptions.csv",
];

/// What the demo did.
pub struct DemoReport {
    pub generated: bool,
    pub files: Vec<FileReport>,
    pub tables: Vec<(Table, u64)>,
    pub rejects: u64,
    pub findings: u64,
    /// The weekly report's index.html and the dashboard.
    pub weekly: PathBuf,
    pub dashboard: PathBuf,
    /// Screenshots of both (only when Chromium is installed), or why one failed.
    pub screenshots: Vec<PathBuf>,
    pub screenshot_error: Option<String>,
}

/// The sample's last week: the generated period ends with it.
pub fn sample_week(config: &Config) -> Week {
    config.calendar.week_of(end_micros() - 1)
}

/// Runs the demo: `sample` is the sample's directory (generated with `tickets` tickets when its
/// files are missing), `lake` the lake, `reports` where the weekly report and the dashboard go.
pub fn run(
    sample: &Path,
    tickets: u64,
    lake: &Lake,
    config: &Config,
    reports: &Path,
    progress: bool,
) -> Result<DemoReport> {
    let files = crate::generate::files(sample);
    let generated = !files.iter().all(|f| f.exists());
    if generated {
        generate(&GenerateOptions {
            tickets,
            seed: SAMPLE_SEED,
            out: sample.to_path_buf(),
        })?;
    }
    let ingested = ingest_canonical(lake, &files, progress)?;
    let tables = Table::ALL
        .iter()
        .map(|t| Ok((*t, lake.row_count(*t)?)))
        .collect::<Result<Vec<_>>>()?;
    let week = sample_week(config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let data = rt.block_on(crate::report::gather(
        lake,
        config,
        &week,
        crate::report::Scope::Weekly,
    ))?;
    let weekly = crate::report::weekly(&data, reports)?.index;
    let dashboard = reports.join("dashboard.html");
    crate::report::dashboard(&data, &dashboard)?;
    // Screenshots are a convenience: a browser that fails does not fail the demo.
    let mut screenshots = Vec::new();
    let mut screenshot_error = None;
    if let Some(browser) = browser::chromium() {
        for (page, name, (w, h)) in [
            (&weekly, "weekly.png", WEEKLY_SHOT),
            (&dashboard, "dashboard.png", DASHBOARD_SHOT),
        ] {
            let png = reports.join(name);
            match browser::screenshot(&browser, page, &png, w, h) {
                Ok(()) => screenshots.push(png),
                Err(e) => screenshot_error = Some(format!("{e:#}")),
            }
        }
    }
    Ok(DemoReport {
        generated,
        files: ingested,
        tables,
        rejects: lake.reject_count()?,
        findings: lake.finding_count()?,
        weekly,
        dashboard,
        screenshots,
        screenshot_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README shows the demo's output: these are its row counts (the generator is
    /// deterministic per seed, so a change to it shows here first).
    #[test]
    fn the_demo_sample_has_the_sizes_the_readme_shows() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&GenerateOptions {
            tickets: DEMO_TICKETS,
            seed: SAMPLE_SEED,
            out: dir.path().to_path_buf(),
        })
        .unwrap();
        assert_eq!(
            (s.tickets, s.interactions, s.ratings, s.adoptions),
            (25_000, 80_386, 7_084, 1)
        );
    }
}

//! The main job on the embedded default: generate `sample-data/` if it is missing, ingest it into
//! the lake, and report what the lake holds.

use std::path::Path;

use anyhow::Result;

use crate::generate::{GenerateOptions, generate};
use crate::ingest::{FileReport, ingest_canonical};
use crate::lake::Lake;
use crate::model::Table;

/// Tickets in the committed sample and its seed.
pub const SAMPLE_TICKETS: u64 = 3_000;
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
}

/// Runs the demo: `sample` is the sample-data directory, `lake` the lake.
pub fn run(sample: &Path, lake: &Lake, progress: bool) -> Result<DemoReport> {
    let files = crate::generate::files(sample);
    let generated = !files.iter().all(|f| f.exists());
    if generated {
        generate(&GenerateOptions {
            tickets: SAMPLE_TICKETS,
            seed: SAMPLE_SEED,
            out: sample.to_path_buf(),
        })?;
    }
    let reports = ingest_canonical(lake, &files, progress)?;
    let tables = Table::ALL
        .iter()
        .map(|t| Ok((*t, lake.row_count(*t)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(DemoReport {
        generated,
        files: reports,
        tables,
        rejects: lake.reject_count()?,
    })
}

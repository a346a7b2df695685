//! `deskpulse compact`: rewrite the lake's small files into fewer, then delete what the
//! retention period no longer keeps.

use std::process::ExitCode;

use anyhow::Result;
use deskpulse::config::parse_duration;

use super::{Context, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Keep every snapshot of this period (and the newest before it) readable by
    /// `--as-of-version` / `--as-of-time`; older snapshots and the files only they read are
    /// deleted. A reader still on such a snapshot fails, so keep it longer than a query runs.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    retain: std::time::Duration,
    /// Compact only; delete nothing.
    #[arg(long)]
    no_clean_up: bool,
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    let lake = ctx.lake()?;
    let lock = lake.lock()?;
    let compacted = lake.compact(2, &lock)?;
    let files: usize = compacted.iter().map(|c| c.files).sum();
    let partitions: std::collections::BTreeSet<_> =
        compacted.iter().map(|c| (c.table, &c.partition)).collect();
    outln!(
        "compacted {files} files into {}, in {} partitions",
        compacted.len(),
        partitions.len()
    );
    for c in &compacted {
        let partition = if c.partition.is_empty() {
            String::new()
        } else {
            format!("/{}", c.partition)
        };
        outln!(
            "  {}{partition}: {} files -> 1 ({} rows)",
            c.table,
            c.files,
            c.rows
        );
    }
    if a.no_clean_up {
        return Ok(ExitCode::SUCCESS);
    }
    let now = chrono::Utc::now().timestamp_micros();
    let retain = i64::try_from(a.retain.as_micros()).unwrap_or(i64::MAX);
    let c = lake.clean_up(retain, now, &lock)?;
    outln!(
        "retention {}: deleted {} data files ({:.1} MiB), {} snapshots and {} staging \
         directories of crashed writers; the oldest readable snapshot is {}",
        humanize(a.retain),
        c.files_deleted,
        c.bytes_deleted as f64 / (1024.0 * 1024.0),
        c.snapshots_expired,
        c.staging_deleted,
        c.oldest_kept
    );
    Ok(ExitCode::SUCCESS)
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => format!("{s}s"),
    }
}

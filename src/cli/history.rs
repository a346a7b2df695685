//! `deskpulse history`: the lake's snapshots; `deskpulse convert`: a lake of the layout before
//! Delta tables, converted in place.

use std::process::ExitCode;

use anyhow::Result;
use deskpulse::lake::{Lake, snapshot};
use deskpulse::timeparse::format_micros;

use super::{Context, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Show the newest this many (0: all).
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    let lake = Lake::open(&ctx.lake_dir)?;
    let versions = snapshot::versions(lake.store())?;
    let from = match a.limit {
        0 => 0,
        n => versions.len().saturating_sub(n),
    };
    outln!("version  committed_at          operation / tables (Delta version)");
    for v in versions[from..].iter().rev() {
        let s = snapshot::read(lake.store(), *v)?;
        let tables: Vec<String> = s.tables.iter().map(|(t, v)| format!("{t}@{v}")).collect();
        outln!(
            "{:>7}  {}  {}",
            s.version,
            format_micros(s.committed_at),
            s.operation.as_deref().unwrap_or("")
        );
        outln!("{:>31}{}", "", tables.join(" "));
    }
    if versions.is_empty() {
        outln!("(no commit yet)");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn convert(ctx: &Context) -> Result<ExitCode> {
    let done = Lake::convert(&ctx.lake_dir)?;
    for (table, files) in &done {
        outln!("{table}: {files} files, now a Delta table");
    }
    if done.is_empty() {
        outln!("nothing to convert: every table is a Delta table already");
    }
    Ok(ExitCode::SUCCESS)
}

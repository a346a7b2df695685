//! `deskpulse rejects`: the refused input rows, with file, line, column and reason.

use std::process::ExitCode;

use anyhow::Result;

use super::{Context, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Show at most this many (0: all).
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    let rejects = ctx.lake()?.rejects()?;
    let shown = match a.limit {
        0 => rejects.len(),
        n => n.min(rejects.len()),
    };
    for r in &rejects[..shown] {
        outln!(
            "{}:{}: {}: {}",
            r.source_file,
            r.line,
            r.column.as_deref().unwrap_or("(record)"),
            r.reason
        );
    }
    outln!(
        "{} rejects{}",
        rejects.len(),
        if shown < rejects.len() {
            format!(" ({shown} shown)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

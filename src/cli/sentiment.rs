//! `deskpulse sentiment`: the VADER compound score of each line of a file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

#[derive(clap::Args)]
pub struct Args {
    /// The texts, one per line.
    file: PathBuf,
    /// Threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print each score (one per line, in input order) instead of only the summary.
    #[arg(long)]
    scores: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let start = std::time::Instant::now();
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let texts: Vec<&str> = text.lines().collect();
    let values = deskpulse::sentiment::compound_all(&texts, a.threads)?;
    let secs = start.elapsed().as_secs_f64();
    if a.scores {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for v in &values {
            writeln!(out, "{v}")?;
        }
        out.flush()?;
    }
    let mean = if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    };
    eprintln!(
        "scored {} texts in {secs:.2} s ({:.0} texts/s); mean compound {mean:.4}",
        values.len(),
        values.len() as f64 / secs
    );
    Ok(ExitCode::SUCCESS)
}

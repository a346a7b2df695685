//! The `deskpulse` command: parses arguments and calls the library. Nothing else lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use deskpulse::ingest::{IngestOptions, ingest};
use deskpulse::lake::Lake;
use deskpulse::model::Table;
use deskpulse::{demo, generate, timeparse};

#[derive(Parser)]
#[command(
    name = "deskpulse",
    version,
    about = "Service-desk analytics: satisfaction per channel, reply pairing, follow-up cohorts, self-service TTR shift"
)]
struct Cli {
    /// The lake directory.
    #[arg(long, global = true, default_value = "lake")]
    lake: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest export files (CSV, JSON, NDJSON) into the lake.
    Ingest {
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
        #[arg(long)]
        tz: Option<String>,
        /// Files to ingest.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write synthetic exports with planted effects (generic layout).
    Generate {
        #[arg(long, default_value_t = 10_000)]
        tickets: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value = "generated")]
        out: PathBuf,
    },
    /// List refused input rows: file, line, column and reason.
    Rejects {
        /// Show at most this many (0: all).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Run the main job on the embedded sample: generate sample-data/ if missing, ingest it, report.
    Demo {
        /// The sample-data directory.
        #[arg(long, default_value = "sample-data")]
        sample: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let progress = std::io::stderr().is_terminal();
    match cli.command {
        Command::Ingest {
            profile,
            mapping,
            table,
            tz,
            files,
        } => {
            let tz = match tz.as_deref().map(timeparse::parse_tz).transpose() {
                Ok(tz) => tz,
                Err(e) => {
                    eprintln!("error: --tz: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let lake = Lake::open(&cli.lake)?;
            let opts = IngestOptions {
                profile,
                mapping,
                table,
                tz,
                progress,
            };
            let (reports, errors) = ingest(&lake, &files, &opts)?;
            for r in &reports {
                println!("{r}");
            }
            for e in &errors {
                eprintln!("error: {e}");
            }
            let (stored, rejected) = reports
                .iter()
                .flat_map(|r| r.tables.values())
                .fold((0, 0), |a, c| (a.0 + c.stored, a.1 + c.rejected));
            println!(
                "total: {} files ingested, {} skipped, {} refused; {} rows stored, {} rejected (see {}/_rejects)",
                reports.iter().filter(|r| !r.skipped).count(),
                reports.iter().filter(|r| r.skipped).count(),
                errors.len(),
                stored,
                rejected,
                cli.lake.display()
            );
            Ok(if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Generate { tickets, seed, out } => {
            let s = generate::generate(&generate::GenerateOptions {
                tickets,
                seed,
                out: out.clone(),
            })?;
            println!(
                "wrote {} tickets, {} interactions, {} ratings, {} adoptions to {}",
                s.tickets,
                s.interactions,
                s.ratings,
                s.adoptions,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Rejects { limit } => {
            let lake = Lake::open(&cli.lake)?;
            let rejects = lake.rejects()?;
            let shown = if limit == 0 {
                rejects.len()
            } else {
                limit.min(rejects.len())
            };
            for r in &rejects[..shown] {
                println!(
                    "{}:{}: {}: {}",
                    r.source_file,
                    r.line,
                    r.column.as_deref().unwrap_or("(record)"),
                    r.reason
                );
            }
            println!(
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
        Command::Demo { sample } => {
            let lake = Lake::open(&cli.lake)?;
            let r = demo::run(&sample, &lake, progress)?;
            if r.generated {
                println!(
                    "generated {} (seed {})",
                    sample.display(),
                    demo::SAMPLE_SEED
                );
            }
            for f in &r.files {
                println!("{f}");
            }
            println!("lake {}:", cli.lake.display());
            for (t, n) in &r.tables {
                println!("  {t:<13}{n:>9} rows");
            }
            println!("  {:<13}{:>9} rows", "_rejects", r.rejects);
            Ok(ExitCode::SUCCESS)
        }
    }
}

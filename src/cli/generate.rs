//! `deskpulse generate`: synthetic exports with planted effects.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use deskpulse::generate::{GenerateOptions, generate};

use super::outln;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 10_000)]
    tickets: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value = "generated")]
    out: PathBuf,
    /// Also write the tickets as an event log, one row per change (`ticket_events.csv`), with
    /// the mapping that reads it (`ticket_events.toml`)
    #[arg(long)]
    event_log: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let s = generate(&GenerateOptions {
        tickets: a.tickets,
        seed: a.seed,
        out: a.out.clone(),
    })?;
    outln!(
        "wrote {} tickets, {} interactions, {} ratings, {} adoptions to {}",
        s.tickets,
        s.interactions,
        s.ratings,
        s.adoptions,
        a.out.display()
    );
    if a.event_log {
        let events = deskpulse::generate::event_log::write(&a.out)?;
        outln!(
            "wrote {events} ticket events to {} (ingest it with --mapping {})",
            a.out.join(deskpulse::generate::event_log::FILE).display(),
            a.out
                .join(deskpulse::generate::event_log::MAPPING)
                .display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

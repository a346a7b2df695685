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
    Ok(ExitCode::SUCCESS)
}

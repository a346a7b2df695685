//! `deskpulse check`: the data quality of the lake; exit 1 when a `--fail-on` rule has findings.

use std::process::ExitCode;

use anyhow::Result;
use deskpulse::check;
use deskpulse::config::Config;
use deskpulse::engine::{Engine, Params, output::Format};

use super::{Context, out, outln, runtime, usage};

#[derive(clap::Args)]
pub struct Args {
    /// table or json.
    #[arg(long, default_value = "table")]
    format: Format,
    /// Exit 1 when one of these rules has findings (see docs/data-quality.md for the rules).
    #[arg(long, num_args = 1.., value_parser = rule)]
    fail_on: Vec<String>,
}

fn rule(r: &str) -> Result<String, String> {
    check::known_rule(r).map(|_| r.to_string())
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    if a.format == Format::Csv {
        return Err(usage("--format: check prints table or json"));
    }
    let lake = ctx.lake()?;
    // Always in this process: a Ballista cluster hangs on the data_quality view.
    let local = Config {
        cluster: None,
        ..ctx.config.clone()
    };
    let rows = runtime()?.block_on(async {
        let engine = Engine::open(&lake, &local, &Params::default()).await?;
        check::run(&engine).await
    })?;
    match a.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&rows)?),
        _ => out!("{}", check::render_table(&rows)),
    }
    let failed = check::failed(&rows, &a.fail_on);
    for (rule, n) in &failed {
        eprintln!("check failed: {rule}: {n}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

//! The `deskpulse` command: parses arguments and hands each command to its module in `cli/`.
//! Nothing else lives here.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command, Context};

// An ingest allocates a few small strings per field and DataFusion many buffers, from every
// core: jemalloc's per-thread caches serve them for less than glibc's malloc does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (`_RJEM_MALLOC_CONF` in the environment overrides them).
/// Freed pages go back to the system from jemalloc's own thread, not from the thread that
/// frees: returned inline, each `madvise` interrupted the other core to flush its TLB (at 1 M
/// tickets, an ingest faulted 40% fewer pages and took 3% less time; docs/benchmarks.md).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: Option<&u8> = Some(&b"background_thread:true\0"[0]);

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::exit(Context::resolve(&args).and_then(|ctx| run(args.command, ctx)))
}

fn run(command: Command, ctx: Context) -> anyhow::Result<ExitCode> {
    match command {
        Command::Ingest(a) => cli::ingest::run(a, &ctx),
        Command::Sql(a) => cli::query::sql(a, ctx),
        Command::Metrics(a) => cli::query::metric(a, ctx),
        Command::Generate(a) => cli::generate::run(a),
        Command::TtrShift(a) => cli::ttr_shift::run(a, ctx),
        Command::Followups(a) => cli::followups::run(a, &ctx),
        Command::Escalations(a) => cli::escalations::run(a, &ctx),
        Command::Predict(a) => cli::predict::run(a, &ctx),
        Command::Check(a) => cli::check::run(a, &ctx),
        Command::Rejects(a) => cli::rejects::run(a, &ctx),
        Command::Report { kind } => cli::report::run(kind, &ctx),
        Command::Stream(a) => cli::stream::run(a, &ctx),
        Command::Sentiment(a) => cli::sentiment::run(a),
        Command::Cluster { role } => cli::cluster::run(role),
        Command::History(a) => cli::history::run(a, &ctx),
        Command::Convert => cli::history::convert(&ctx),
        Command::Compact(a) => cli::compact::run(a, &ctx),
        Command::Demo(a) => cli::demo::run(a, &ctx),
    }
}

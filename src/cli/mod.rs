//! The command line: one module per command (its clap `Args` and its `run`), the flags shared by
//! several in [`flags`], and what every command needs: the resolved [`Context`], the usage error
//! and the exit codes.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | done (also when the reader of stdout went away, as Unix tools do) |
//! | 1 | a failure, or a `check --fail-on` rule with findings |
//! | 2 | a usage error (a bad flag value) or input that cannot be read (a refused file) |

pub mod check;
pub mod cluster;
pub mod compact;
pub mod demo;
pub mod escalations;
pub mod flags;
pub mod followups;
pub mod generate;
pub mod history;
pub mod ingest;
pub mod predict;
pub mod query;
pub mod rejects;
pub mod report;
pub mod sentiment;
pub mod stream;
pub mod ttr_shift;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use deskpulse::config::Config;
use deskpulse::lake::{At, Lake};

/// Writes to stdout, returning the write's error: a reader that closed the pipe
/// (`deskpulse sql ... | head -1`) ends the command quietly, as Unix tools do (see [`exit`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}
/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}
pub(crate) use {out, outln};

#[derive(Parser)]
#[command(
    name = "deskpulse",
    version,
    about = "Service-desk analytics: satisfaction per channel, reply pairing, follow-up cohorts, self-service TTR shift"
)]
pub struct Cli {
    /// The lake: a directory or s3://bucket/prefix (default: the configuration's `lake`, else ./lake).
    #[arg(long, global = true)]
    pub lake: Option<PathBuf>,
    /// Configuration file (default: ./deskpulse.toml when present, else built-in defaults).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Read the lake as it was at this snapshot version (`deskpulse history` lists them).
    #[arg(long, global = true, conflicts_with = "as_of_time")]
    pub as_of_version: Option<u64>,
    /// Read the lake as it was at this time (the last snapshot committed at or before it).
    #[arg(long, global = true, value_parser = flags::time)]
    pub as_of_time: Option<deskpulse::model::Micros>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Ingest export files (CSV, JSON, NDJSON) into the lake.
    Ingest(ingest::Args),
    /// Run any SQL on the lake's tables and the metric views.
    Sql(query::SqlArgs),
    /// Print one metric family: a view of queries/ (`deskpulse metrics --help` lists them).
    Metrics(query::MetricArgs),
    /// Write synthetic exports with planted effects (generic layout).
    Generate(generate::Args),
    /// TTR shift around self-service adoptions: volume, deflection, TTR with bootstrap intervals, CSAT, mix vs within.
    TtrShift(ttr_shift::Args),
    /// Whom to send a long-form survey: low-rating and same-issue cohorts, throttled.
    Followups(followups::Args),
    /// Every dissatisfied rating (score_5 <= 2) with ticket, agent, group and comment.
    Escalations(escalations::Args),
    /// P(satisfied) for resolved tickets nobody rated: fitted on older ratings, validated on the
    /// most recent fifth, published only when it beats chance (AUC, Brier, calibration, drivers).
    Predict(predict::Args),
    /// Data quality of the lake: rows and time ranges, duplicate keys, missing values, orphans,
    /// rejects, findings, raw channels that fell to `other`, unrated and unscored shares,
    /// languages. Exits 1 when a --fail-on rule has findings.
    Check(check::Args),
    /// List refused input rows: file, line, column and reason.
    Rejects(rejects::Args),
    /// Chart reports: the weekly manager report or the CIO dashboard.
    Report {
        #[command(subcommand)]
        kind: report::Kind,
    },
    /// Take live events (NDJSON over HTTP and/or stdin) into the lake, with live CSAT and alerts.
    Stream(stream::Args),
    /// VADER compound score of each line of a file (one text per line), on N threads.
    Sentiment(sentiment::Args),
    /// Run a node of a Ballista cluster with deskpulse's functions (needs a build with
    /// `--features cluster`); clients use it with `--cluster df://HOST:PORT`.
    Cluster {
        #[command(subcommand)]
        role: cluster::Role,
    },
    /// The lake's snapshots: one per completed commit, with the Delta version of each table.
    History(history::Args),
    /// Convert a lake written by deskpulse before its tables were Delta tables (in place).
    Convert,
    /// Rewrite the lake's small files into fewer (same rows), then delete the files and
    /// snapshots older than the retention period.
    Compact(compact::Args),
    /// Run the main job: generate the demo sample (sample-data/demo/, 25,000 tickets) if missing,
    /// ingest it, write the weekly report and the dashboard of its last week.
    Demo(demo::Args),
}

impl Command {
    /// The `--cluster` of the commands that take one.
    fn cluster(&self) -> Option<&str> {
        let on = match self {
            Command::Sql(a) => &a.on,
            Command::Metrics(a) => &a.on,
            Command::TtrShift(a) => &a.on,
            Command::Followups(a) => &a.on,
            Command::Escalations(a) => &a.on,
            Command::Report { kind } => &kind.week().on,
            _ => return None,
        };
        on.cluster.as_deref()
    }
}

/// What every command gets, resolved once from the configuration and the global flags.
pub struct Context {
    pub config: Config,
    pub lake_dir: PathBuf,
    /// Which snapshot readers read (`--as-of-version`, `--as-of-time`).
    pub at: At,
    /// Draw progress bars (stderr is a terminal).
    pub progress: bool,
}

impl Context {
    pub fn resolve(cli: &Cli) -> Result<Context> {
        let mut config = Config::load(cli.config.as_deref())?;
        if let Some(url) = cli.command.cluster() {
            config.cluster = Some(url.to_string());
        }
        let at = match (cli.as_of_version, cli.as_of_time) {
            (Some(v), _) => At::Version(v),
            (_, Some(t)) => At::Time(t),
            _ => At::Latest,
        };
        Ok(Context {
            lake_dir: cli.lake.clone().unwrap_or_else(|| config.lake.clone()),
            at,
            config,
            progress: std::io::stderr().is_terminal(),
        })
    }
}

impl Context {
    /// The lake, read at the snapshot the flags ask for.
    pub fn lake(&self) -> Result<Lake> {
        let lake = Lake::open(&self.lake_dir)?.at(self.at);
        if self.at != At::Latest {
            // A snapshot the lake does not have is a bad flag value, not a failure.
            lake.snapshot().map_err(|e| usage(format!("{e:#}")))?;
        }
        Ok(lake)
    }
}

/// A bad argument or flag value: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A [`Usage`] error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// Exit code 2: input that cannot be read (the errors were printed).
pub fn unreadable_input() -> ExitCode {
    ExitCode::from(2)
}

/// The exit code of a command's result, printing its error.
pub fn exit(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) if closed_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Whether `e` is a write to a stdout whose reader has gone.
fn closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The async runtime the library's engine and stream run on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

//! The `deskpulse` command: parses arguments and calls the library. Nothing else lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use deskpulse::config::{Config, Fcr};
use deskpulse::engine::{Engine, Params, output};
use deskpulse::ingest::{IngestOptions, ingest};
use deskpulse::lake::Lake;
use deskpulse::metrics::followups;
use deskpulse::metrics::ttr_shift::{ShiftOptions, render_text, ttr_shift};
use deskpulse::model::{Adoption, Table};
use deskpulse::{check, demo, generate, report, stream, timeparse};

#[derive(Parser)]
#[command(
    name = "deskpulse",
    version,
    about = "Service-desk analytics: satisfaction per channel, reply pairing, follow-up cohorts, self-service TTR shift"
)]
struct Cli {
    /// The lake directory (default: the configuration's `lake`, else ./lake).
    #[arg(long, global = true)]
    lake: Option<PathBuf>,
    /// Configuration file (default: ./deskpulse.toml when present, else built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
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
        /// Do not compute VADER sentiment of bodies and comments.
        #[arg(long)]
        no_sentiment: bool,
        /// Files to ingest.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run any SQL on the lake's tables and the metric views.
    Sql {
        /// The query.
        query: String,
        #[command(flatten)]
        scope: Scope,
        #[command(flatten)]
        on: On,
    },
    /// Print one metric family (a view of queries/): channel_satisfaction, kpis, backlog, pair_summary, ...
    Metrics {
        name: String,
        #[command(flatten)]
        scope: Scope,
        #[command(flatten)]
        on: On,
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
    /// TTR shift around self-service adoptions: volume, deflection, TTR with bootstrap intervals, CSAT, mix vs within.
    TtrShift {
        /// Only this adoption.
        #[arg(long)]
        adoption: Option<String>,
        /// Window length in weeks, e.g. 12w (default: the configuration's).
        #[arg(long)]
        window: Option<String>,
        /// Ramp-up after the launch left out of the after window, e.g. 2w.
        #[arg(long)]
        ramp: Option<String>,
        /// An adoption not in the lake: its launch date...
        #[arg(long)]
        launch: Option<String>,
        /// ...and the categories it serves (comma-separated; none: all).
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
        /// Refuse a window with fewer resolved tickets (smaller windows under 30 are reported with a warning).
        #[arg(long, default_value_t = 2)]
        min_tickets: usize,
        /// Output: text or json.
        #[arg(long, default_value = "text")]
        format: String,
        #[command(flatten)]
        on: On,
    },
    /// Whom to send a long-form survey: low-rating and same-issue cohorts, throttled.
    Followups {
        #[command(flatten)]
        period: Period,
        /// Append the targets to the lake's surveys (so the cooldown holds next time).
        #[arg(long)]
        record: bool,
        /// Print the plan only: no files, no record.
        #[arg(long)]
        dry_run: bool,
        /// Write followups.csv and followups.json here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A file of requester ids never to survey, one per line (default: the configuration's).
        #[arg(long)]
        opt_out: Option<PathBuf>,
        /// At most this many targets per cohort (default: the configuration's).
        #[arg(long)]
        cap: Option<u32>,
        /// Nobody surveyed within this many days (default: the configuration's).
        #[arg(long)]
        cooldown_days: Option<u32>,
        /// Output: table, csv or json.
        #[arg(long, default_value = "table")]
        format: output::Format,
        #[command(flatten)]
        on: On,
    },
    /// Every dissatisfied rating (score_5 <= 2) with ticket, agent, group and comment.
    Escalations {
        #[command(flatten)]
        period: Period,
        #[arg(long, default_value = "table")]
        format: output::Format,
        #[command(flatten)]
        on: On,
    },
    /// Data quality of the lake: rows and time ranges, duplicate keys, missing values, orphans,
    /// rejects, findings, raw channels that fell to `other`, unrated and unscored shares,
    /// languages. Exits 1 when a --fail-on rule has findings.
    Check {
        /// table or json.
        #[arg(long, default_value = "table")]
        format: output::Format,
        /// Exit 1 when one of these rules has findings (see docs/COMMANDS.md for the rules).
        #[arg(long, num_args = 1..)]
        fail_on: Vec<String>,
    },
    /// List refused input rows: file, line, column and reason.
    Rejects {
        /// Show at most this many (0: all).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Chart reports: the weekly manager report or the CIO dashboard.
    Report {
        #[command(subcommand)]
        kind: ReportKind,
    },
    /// Take live events (NDJSON over HTTP and/or stdin) into the lake, with live CSAT and alerts.
    Stream {
        /// Address to listen on (use port 0 for any free port). Default 127.0.0.1:8080, or no
        /// listener when only --stdin is given.
        #[arg(long)]
        listen: Option<String>,
        /// Read events from stdin; without --listen the stream stops when stdin ends.
        #[arg(long)]
        stdin: bool,
        /// File holding the bearer token that /v1/events and /v1/live require.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// POST each alert as JSON to this URL (retried; a failing webhook never blocks ingest).
        #[arg(long)]
        webhook: Option<String>,
        /// Alerts file, NDJSON (default: LAKE/_stream/alerts.ndjson).
        #[arg(long)]
        alerts: Option<PathBuf>,
        /// Write a micro-batch to the lake at least this often.
        #[arg(long, default_value = "5s", value_parser = deskpulse::config::parse_duration)]
        flush_interval: std::time::Duration,
        /// ...or as soon as this many events wait.
        #[arg(long, default_value_t = 10_000)]
        flush_events: usize,
        /// Events accepted and not yet in the lake, at most (503 beyond).
        #[arg(long, default_value_t = 200_000)]
        max_pending: usize,
        /// Requests queued for the spool writer, at most (503 beyond).
        #[arg(long, default_value_t = 256)]
        queue: usize,
        /// Request body limit in bytes (413 beyond).
        #[arg(long, default_value_t = 8 * 1024 * 1024)]
        max_body: usize,
        /// A request head must arrive within this; idle connections are closed after it.
        #[arg(long, default_value = "10s", value_parser = deskpulse::config::parse_duration)]
        header_timeout: std::time::Duration,
        /// A request body must arrive within this (408 beyond).
        #[arg(long, default_value = "30s", value_parser = deskpulse::config::parse_duration)]
        request_timeout: std::time::Duration,
        /// Connections served at once (more wait in the listen backlog).
        #[arg(long, default_value_t = 512)]
        max_connections: usize,
        /// Escalate ratings with score_5 at or below this.
        #[arg(long, default_value_t = 2.0)]
        escalate_at: f64,
        /// Rolling window of the follow-up cohort alert.
        #[arg(long, default_value = "24h", value_parser = deskpulse::config::parse_duration)]
        cohort_window: std::time::Duration,
        /// At most one cohort alert per category in this time.
        #[arg(long, default_value = "6h", value_parser = deskpulse::config::parse_duration)]
        cohort_cooldown: std::time::Duration,
        /// Event ids remembered after they reach the lake (repeats within them are dropped).
        #[arg(long, default_value_t = 1_000_000)]
        dedup_window: usize,
        /// Tickets remembered for alerts (category, agent, group), newest first.
        #[arg(long, default_value_t = 1_000_000)]
        ticket_index: usize,
        /// Do not compute VADER sentiment of bodies and comments.
        #[arg(long)]
        no_sentiment: bool,
    },
    /// VADER compound score of each line of a file (one text per line), on N threads.
    Sentiment {
        /// The texts, one per line.
        file: PathBuf,
        /// Threads (default: all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Print each score (one per line, in input order) instead of only the summary.
        #[arg(long)]
        scores: bool,
    },
    /// Run a node of a Ballista cluster with deskpulse's functions (needs a build with
    /// `--features cluster`); clients use it with `--cluster df://HOST:PORT`.
    Cluster {
        #[command(subcommand)]
        role: ClusterRole,
    },
    /// Run the main job on the embedded sample: generate sample-data/ if missing, ingest it,
    /// write the weekly report and the dashboard of its last week.
    Demo {
        /// The sample-data directory.
        #[arg(long, default_value = "sample-data")]
        sample: PathBuf,
        /// Where the reports go.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ClusterRole {
    /// The scheduler: takes queries from clients and hands their tasks to the executors.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:50050")]
        bind: String,
        /// The host name executors and clients reach this scheduler by.
        #[arg(long, default_value = "localhost")]
        external_host: String,
        /// Executors poll for tasks instead of being sent them (must match the executors).
        #[arg(long)]
        pull: bool,
        /// Seconds without a heartbeat before an executor counts as lost (Ballista's default).
        /// Measured on the wall clock: raise it where the clock can step (paused VMs).
        #[arg(long, default_value_t = 180)]
        executor_timeout: u64,
    },
    /// An executor: runs tasks. It must see the lake at the same path as the clients do.
    Executor {
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "localhost:50050")]
        scheduler: String,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        bind_host: String,
        /// The host name the scheduler and the other executors reach this one by (default: the
        /// address it connects from).
        #[arg(long)]
        external_host: Option<String>,
        /// Arrow Flight port: results and shuffle data.
        #[arg(long, default_value_t = 50051)]
        flight_port: u16,
        /// gRPC port: tasks pushed by the scheduler.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// HTTP port of /healthz and /readyz (0: none).
        #[arg(long, default_value_t = 50053)]
        health_port: u16,
        /// Tasks run at once (0: one per core).
        #[arg(long, default_value_t = 0)]
        vcores: usize,
        /// Memory for its tasks in MiB, beyond which sorts and aggregations spill (default:
        /// 70% of the machine's memory; divide it when several executors share a machine).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        memory_mb: Option<u64>,
        /// Directory for shuffle files (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<String>,
        /// Poll the scheduler for tasks (if the scheduler runs with --pull).
        #[arg(long)]
        pull: bool,
    },
}

#[derive(Subcommand)]
enum ReportKind {
    /// Writes OUT/<week>/index.html, charts/*.svg|png and tables/*.csv|json.
    Weekly {
        #[command(flatten)]
        week: ReportWeek,
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
    /// Writes one self-contained page: KPI tiles, channel mix and satisfaction, deflection.
    Dashboard {
        #[command(flatten)]
        week: ReportWeek,
        #[arg(long, default_value = "reports/dashboard.html")]
        out: PathBuf,
    },
}

/// The week a report is about.
#[derive(clap::Args)]
struct ReportWeek {
    /// ISO week in the calendar's zone, e.g. 2026-W47 (default: the last complete week).
    #[arg(long)]
    week: Option<String>,
    #[command(flatten)]
    on: On,
}

/// Where the queries run.
#[derive(clap::Args)]
struct On {
    /// Run the queries on the Ballista cluster whose scheduler is here (default: the
    /// configuration's `cluster`, else in this process).
    #[arg(long, value_name = "df://HOST:PORT", value_parser = deskpulse::config::check_cluster_url)]
    cluster: Option<String>,
}

/// The period of `followups` and `escalations`.
#[derive(clap::Args)]
struct Period {
    /// The last N days before --as-of (e.g. 7d), instead of --from/--to.
    #[arg(long)]
    window: Option<String>,
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
    /// "Now" for the window and the cooldown (default: the current time).
    #[arg(long)]
    as_of: Option<String>,
}

/// The period and output of a query.
#[derive(clap::Args)]
struct Scope {
    /// Start of the period (inclusive), e.g. 2026-11-16 or 2026-11-16T09:00:00Z.
    #[arg(long)]
    from: Option<String>,
    /// End of the period (exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Split a --from/--to period into ISO weeks (without a range, weeks are the default).
    #[arg(long)]
    by_week: bool,
    /// Point in time of the backlog (default: now).
    #[arg(long)]
    as_of: Option<String>,
    /// First-contact resolution definition: one_touch or no_reassignment (default: the configuration's).
    #[arg(long)]
    fcr: Option<String>,
    /// Output: table, csv or json.
    #[arg(long, default_value = "table")]
    format: output::Format,
}

impl Scope {
    fn params(&self) -> Result<Params> {
        let t = |s: &Option<String>| -> Result<Option<i64>> {
            s.as_deref()
                .map(|v| {
                    timeparse::TimeParser::default()
                        .parse(v)
                        .map_err(anyhow::Error::msg)
                })
                .transpose()
        };
        let (from, to) = (t(&self.from)?, t(&self.to)?);
        let mut p = Params {
            from,
            to,
            by_week: self.by_week || (from.is_none() && to.is_none()),
            ..Params::default()
        };
        if let Some(a) = t(&self.as_of)? {
            p.as_of = a;
        }
        Ok(p)
    }
}

/// Writes to stdout, returning the write's error: a reader that closed the pipe
/// (`deskpulse sql ... | head -1`) ends the command quietly, as Unix tools do (see `main`).
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) if closed_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
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

fn run(cli: Cli) -> Result<ExitCode> {
    let progress = std::io::stderr().is_terminal();
    let mut config = Config::load(cli.config.as_deref())?;
    let lake_dir = cli.lake.clone().unwrap_or_else(|| config.lake.clone());
    if let Some(url) = cli.command.cluster() {
        config.cluster = Some(url.to_string());
    }
    match cli.command {
        Command::Sql { query, scope, .. } => {
            query_command(&lake_dir, &mut config, &scope, Query::Sql(query))
        }
        Command::Metrics { name, scope, .. } => {
            query_command(&lake_dir, &mut config, &scope, Query::Metric(name))
        }
        Command::Ingest {
            profile,
            mapping,
            table,
            tz,
            no_sentiment,
            files,
        } => {
            let tz = match tz.as_deref().map(timeparse::parse_tz).transpose() {
                Ok(tz) => tz,
                Err(e) => {
                    eprintln!("error: --tz: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let lake = Lake::open(&lake_dir)?;
            let opts = IngestOptions {
                profile,
                mapping,
                table,
                tz,
                progress,
                no_sentiment,
                sentiment_languages: config.sentiment_languages.clone(),
            };
            let (reports, errors) = ingest(&lake, &files, &opts)?;
            for r in &reports {
                outln!("{r}");
            }
            for e in &errors {
                eprintln!("error: {e}");
            }
            let (stored, rejected, findings) = reports
                .iter()
                .flat_map(|r| r.tables.values())
                .fold((0, 0, 0), |a, c| {
                    (a.0 + c.stored, a.1 + c.rejected, a.2 + c.findings)
                });
            out!(
                "total: {} files ingested, {} skipped, {} refused; {} rows stored, {} rejected (see {}/_rejects)",
                reports.iter().filter(|r| !r.skipped).count(),
                reports.iter().filter(|r| r.skipped).count(),
                errors.len(),
                stored,
                rejected,
                lake_dir.display()
            );
            if findings > 0 {
                let s = if findings == 1 { "" } else { "s" };
                out!("; {findings} finding{s} in kept rows (see deskpulse check)");
            }
            outln!();
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
            outln!(
                "wrote {} tickets, {} interactions, {} ratings, {} adoptions to {}",
                s.tickets,
                s.interactions,
                s.ratings,
                s.adoptions,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::TtrShift {
            adoption,
            window,
            ramp,
            launch,
            scope,
            min_tickets,
            format,
            ..
        } => {
            let weeks = |s: &Option<String>, default: u32| -> Result<u32, String> {
                match s {
                    None => Ok(default),
                    Some(v) => v
                        .trim_end_matches('w')
                        .parse()
                        .map_err(|_| format!("'{v}' is not a number of weeks such as 12w")),
                }
            };
            let (w, r) = match (
                weeks(&window, config.window_weeks),
                weeks(&ramp, config.ramp_weeks),
            ) {
                (Ok(w), Ok(r)) if w > 0 => (w, r),
                (Err(e), _) | (_, Err(e)) => return usage(&e),
                _ => return usage("--window must be at least 1w"),
            };
            config.window_weeks = w;
            config.ramp_weeks = r;
            if !matches!(format.as_str(), "text" | "json") {
                return usage(&format!("--format: '{format}' (expected text or json)"));
            }
            let mut params = Params::default();
            let mut only = adoption;
            if let Some(l) = launch {
                let at = match timeparse::TimeParser::default().parse(&l) {
                    Ok(t) => t,
                    Err(e) => return usage(&format!("--launch: {e}")),
                };
                params.extra_adoptions.push(Adoption {
                    adoption_id: "cli".into(),
                    name: format!("launch on {l}"),
                    kind: None,
                    launched_at: at,
                    scope,
                });
                only.get_or_insert_with(|| "cli".into());
            }
            let lake = Lake::open(&lake_dir)?;
            let rt = runtime()?;
            let opts = ShiftOptions {
                adoption: only,
                min_tickets,
                seed: config.seed,
                ..ShiftOptions::default()
            };
            let shifts = rt.block_on(async {
                let engine = Engine::open(&lake, &config, &params).await?;
                ttr_shift(&engine, &opts).await
            });
            let shifts = match shifts {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Ok(ExitCode::from(2));
                }
            };
            if format == "json" {
                outln!("{}", serde_json::to_string_pretty(&shifts)?);
            } else {
                for s in &shifts {
                    outln!("{}", render_text(s));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Followups {
            period,
            record,
            dry_run,
            out,
            opt_out,
            cap,
            cooldown_days,
            format,
            ..
        } => {
            let params = match period.params() {
                Ok(p) => p,
                Err(e) => return usage(&format!("{e:#}")),
            };
            let opt_out = followups::load_opt_out(opt_out.or(config.opt_out.clone()).as_deref())?;
            let throttles = followups::Throttles {
                now: params.as_of,
                cooldown_days: cooldown_days.unwrap_or(config.cooldown_days),
                cap: cap.unwrap_or(config.cap),
                seed: config.seed,
                opt_out,
            };
            let lake = Lake::open(&lake_dir)?;
            let rt = runtime()?;
            let plan = rt.block_on(async {
                let engine = Engine::open(&lake, &config, &params).await?;
                followups::plan(&engine, &throttles).await
            })?;
            eprintln!(
                "{} targets of {} candidates ({} opted out, {} surveyed within {} days, {} already in the low-rating cohort, {} over the cap of {} per cohort){}",
                plan.targets.len(),
                plan.candidates,
                plan.opted_out,
                plan.in_cooldown,
                throttles.cooldown_days,
                plan.in_other_cohort,
                plan.over_cap,
                throttles.cap,
                if dry_run {
                    "; dry run: nothing written"
                } else {
                    ""
                }
            );
            match format {
                output::Format::Json => {
                    outln!("{}", serde_json::to_string_pretty(&plan.targets)?)
                }
                output::Format::Csv => out!("{}", followups::to_csv(&plan.targets)?),
                output::Format::Table => {
                    for x in &plan.targets {
                        outln!(
                            "{:<14} {:<12} {:<10} {}  [{}]",
                            x.requester_id,
                            x.cohort,
                            x.channel.as_deref().unwrap_or("-"),
                            x.reason,
                            x.tickets.join(", ")
                        );
                    }
                }
            }
            if !dry_run {
                if let Some(dir) = &out {
                    followups::write_files(dir, &plan.targets)?;
                    eprintln!("wrote {}/followups.csv and followups.json", dir.display());
                }
                if record {
                    let n = followups::record(&lake, &plan.targets, throttles.now)?;
                    eprintln!("recorded {n} surveys in {}/surveys", lake_dir.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Escalations { period, format, .. } => {
            let params = match period.params() {
                Ok(p) => p,
                Err(e) => return usage(&format!("{e:#}")),
            };
            let lake = Lake::open(&lake_dir)?;
            let rt = runtime()?;
            let batches = rt.block_on(async {
                Engine::open(&lake, &config, &params)
                    .await?
                    .metric("escalations")
                    .await
            })?;
            out!("{}", output::render(&batches, format)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { format, fail_on } => {
            if let Some(e) = fail_on.iter().find_map(|r| check::known_rule(r).err()) {
                return usage(&format!("--fail-on: {e}"));
            }
            if format == output::Format::Csv {
                return usage("--format: check prints table or json");
            }
            let lake = Lake::open(&lake_dir)?;
            let rt = runtime()?;
            // Always in this process: a Ballista cluster hangs on the data_quality view.
            let local = Config {
                cluster: None,
                ..config.clone()
            };
            let rows = rt.block_on(async {
                let engine = Engine::open(&lake, &local, &Params::default()).await?;
                check::run(&engine).await
            })?;
            match format {
                output::Format::Json => outln!("{}", serde_json::to_string_pretty(&rows)?),
                _ => out!("{}", check::render_table(&rows)),
            }
            let failed = check::failed(&rows, &fail_on);
            for (rule, n) in &failed {
                eprintln!("check failed: {rule}: {n}");
            }
            Ok(if failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Rejects { limit } => {
            let lake = Lake::open(&lake_dir)?;
            let rejects = lake.rejects()?;
            let shown = if limit == 0 {
                rejects.len()
            } else {
                limit.min(rejects.len())
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
        Command::Report { kind } => {
            let (week, out) = match &kind {
                ReportKind::Weekly { week, out } | ReportKind::Dashboard { week, out } => {
                    (week, out)
                }
            };
            let week = match &week.week {
                Some(w) => match config.calendar.parse_week(w) {
                    Ok(w) => w,
                    Err(e) => return usage(&format!("--week: {e}")),
                },
                None => {
                    let now = chrono::Utc::now().timestamp_micros();
                    let current = config.calendar.week_of(now);
                    config.calendar.previous_week(&current)
                }
            };
            let lake = Lake::open(&lake_dir)?;
            let rt = runtime()?;
            let data = rt.block_on(report::gather(&lake, &config, &week))?;
            match kind {
                ReportKind::Weekly { .. } => {
                    let w = report::weekly(&data, out)?;
                    outln!(
                        "wrote {} ({} charts as SVG and PNG, {} tables as CSV and JSON)",
                        w.index.display(),
                        w.charts.len() / 2,
                        w.tables.len() / 2
                    );
                }
                ReportKind::Dashboard { .. } => {
                    report::dashboard(&data, out)?;
                    outln!("wrote {}", out.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stream {
            listen,
            stdin,
            token_file,
            webhook,
            alerts,
            flush_interval,
            flush_events,
            max_pending,
            queue,
            max_body,
            header_timeout,
            request_timeout,
            max_connections,
            escalate_at,
            cohort_window,
            cohort_cooldown,
            dedup_window,
            ticket_index,
            no_sentiment,
        } => {
            let micros = |d: std::time::Duration| d.as_micros() as i64;
            let opts = stream::Options {
                lake: lake_dir,
                stdin,
                token_file,
                webhook,
                alerts,
                limits: stream::server::Limits {
                    max_body,
                    header_timeout,
                    request_timeout,
                    max_connections,
                },
                queue,
                settings: stream::Settings {
                    flush_interval,
                    flush_events,
                    max_pending,
                    dedup_window,
                    ticket_index,
                    escalate_at,
                    satisfied: config.satisfied,
                    cohort_window: micros(cohort_window),
                    min_rated: config.min_rated,
                    csat_threshold: config.csat_threshold,
                    cohort_cooldown: micros(cohort_cooldown),
                    sentiment: (!no_sentiment).then(|| config.sentiment_languages.clone()),
                },
            };
            let listen = match (listen, stdin) {
                (Some(l), _) => Some(l),
                (None, false) => Some("127.0.0.1:8080".to_string()),
                (None, true) => None,
            };
            let rt = runtime()?;
            let summary = rt.block_on(async {
                let listener = match &listen {
                    Some(addr) => Some(
                        tokio::net::TcpListener::bind(addr)
                            .await
                            .with_context(|| format!("cannot listen on {addr}"))?,
                    ),
                    None => None,
                };
                let addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
                let alerts_file = opts.alerts_path();
                stream::run(opts, listener, stop_signal(), |replayed| {
                    if let Some(a) = addr {
                        println!("listening on http://{a}");
                    }
                    println!(
                        "replayed {replayed} events from the spool; alerts to {}",
                        alerts_file.display()
                    );
                })
                .await
            })?;
            outln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Sentiment {
            file,
            threads,
            scores,
        } => {
            let start = std::time::Instant::now();
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let texts: Vec<&str> = text.lines().collect();
            let values = deskpulse::sentiment::compound_all(&texts, threads)?;
            let secs = start.elapsed().as_secs_f64();
            if scores {
                use std::io::Write;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                for v in &values {
                    writeln!(out, "{v}")?;
                }
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
        Command::Cluster { role } => cluster_command(role),
        Command::Demo { sample, out } => {
            let lake = Lake::open(&lake_dir)?;
            let r = demo::run(&sample, &lake, &config, &out, progress)?;
            if r.generated {
                outln!(
                    "generated {} (seed {})",
                    sample.display(),
                    demo::SAMPLE_SEED
                );
            }
            for f in &r.files {
                outln!("{f}");
            }
            outln!("the lake at {} holds:", lake_dir.display());
            for (t, n) in &r.tables {
                outln!("  {t:<13}{n:>9} rows");
            }
            outln!("  {:<13}{:>9} rows", "_rejects", r.rejects);
            outln!("  {:<13}{:>9} rows", "_findings", r.findings);
            outln!("weekly report: {}", r.weekly.display());
            outln!("dashboard:     {}", r.dashboard.display());
            for s in &r.screenshots {
                outln!("screenshot:    {}", s.display());
            }
            match &r.screenshot_error {
                Some(e) => eprintln!("warning: no screenshot: {e}"),
                None if r.screenshots.is_empty() => {
                    outln!("screenshots:   none (no Chromium in /usr/bin)")
                }
                None => {}
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The async runtime the library's engine and stream run on.
impl Command {
    /// The `--cluster` of the commands that take one.
    fn cluster(&self) -> Option<&str> {
        let on = match self {
            Command::Sql { on, .. }
            | Command::Metrics { on, .. }
            | Command::TtrShift { on, .. }
            | Command::Followups { on, .. }
            | Command::Escalations { on, .. } => on,
            Command::Report { kind } => match kind {
                ReportKind::Weekly { week, .. } | ReportKind::Dashboard { week, .. } => &week.on,
            },
            _ => return None,
        };
        on.cluster.as_deref()
    }
}

#[cfg(feature = "cluster")]
fn cluster_command(role: ClusterRole) -> Result<ExitCode> {
    use deskpulse::cluster;
    init_log();
    let rt = runtime()?;
    match role {
        ClusterRole::Scheduler {
            bind,
            external_host,
            pull,
            executor_timeout,
        } => rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(&bind)
                .await
                .with_context(|| format!("--bind {bind}"))?;
            outln!(
                "deskpulse scheduler on {} ({} scheduling); clients: --cluster df://{external_host}:{}",
                listener.local_addr()?,
                if pull { "pull" } else { "push" },
                listener.local_addr()?.port()
            );
            let options = cluster::SchedulerOptions {
                external_host,
                push: !pull,
                executor_timeout_secs: executor_timeout,
            };
            tokio::select! {
                r = cluster::run_scheduler(listener, &options) => r,
                _ = stop_signal() => Ok(()),
            }
        })?,
        ClusterRole::Executor {
            scheduler,
            bind_host,
            external_host,
            flight_port,
            grpc_port,
            health_port,
            vcores,
            memory_mb,
            work_dir,
            pull,
        } => {
            let Some((host, port)) = scheduler
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
            else {
                return usage(&format!("--scheduler {scheduler}: expected HOST:PORT"));
            };
            let options = cluster::ExecutorOptions {
                scheduler_host: host,
                scheduler_port: port,
                bind_host,
                external_host,
                flight_port,
                grpc_port,
                health_port: (health_port != 0).then_some(health_port),
                vcores,
                memory_mb,
                work_dir,
                push: !pull,
            };
            outln!(
                "deskpulse executor on {}:{flight_port} (flight), :{grpc_port} (tasks){}; scheduler {scheduler}",
                options.bind_host,
                match options.health_port {
                    Some(p) => format!(", :{p} (/healthz, /readyz)"),
                    None => String::new(),
                }
            );
            rt.block_on(cluster::run_executor(&options))?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The log of a cluster process on stderr: Ballista's job, stage and task messages, at
/// `info` and above unless RUST_LOG says otherwise (e.g. `RUST_LOG=warn`,
/// `RUST_LOG=info,ballista_executor=debug`).
#[cfg(feature = "cluster")]
fn init_log() {
    use std::io::Write;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|out, record| {
            writeln!(
                out,
                "{} {:5} {}: {}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                record.level(),
                record.target(),
                record.args()
            )
        })
        .init();
}

#[cfg(not(feature = "cluster"))]
fn cluster_command(_: ClusterRole) -> Result<ExitCode> {
    anyhow::bail!(
        "this deskpulse was built without the `cluster` feature (build it with `cargo build --release --features cluster`)"
    )
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

impl Period {
    /// `--window Nd` before `--as-of` (default now), or `--from`/`--to`.
    fn params(&self) -> Result<Params> {
        let parse = |s: &str| {
            timeparse::TimeParser::default()
                .parse(s)
                .map_err(anyhow::Error::msg)
        };
        let mut p = Params {
            by_week: false,
            ..Params::default()
        };
        if let Some(a) = &self.as_of {
            p.as_of = parse(a)?;
        }
        match &self.window {
            Some(w) => {
                if self.from.is_some() || self.to.is_some() {
                    anyhow::bail!("give --window or --from/--to, not both");
                }
                let days: i64 = w
                    .strip_suffix('d')
                    .and_then(|d| d.parse().ok())
                    .filter(|d| *d > 0)
                    .ok_or_else(|| {
                        anyhow::anyhow!("--window '{w}' (expected a number of days such as 7d)")
                    })?;
                p.from = Some(p.as_of - days * 86_400_000_000);
                p.to = Some(p.as_of);
            }
            None => {
                p.from = self.from.as_deref().map(parse).transpose()?;
                p.to = self.to.as_deref().map(parse).transpose()?;
            }
        }
        Ok(p)
    }
}

/// Reports a bad argument: exit code 2.
fn usage(message: &str) -> Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(2))
}

/// What `sql` and `metrics` run.
enum Query {
    Sql(String),
    Metric(String),
}

/// Opens the engine for a scope, runs one query and prints it. Bad arguments exit 2.
fn query_command(
    lake_dir: &std::path::Path,
    config: &mut Config,
    scope: &Scope,
    query: Query,
) -> Result<ExitCode> {
    let params = match scope.params() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(f) = &scope.fcr {
        match f.parse::<Fcr>() {
            Ok(fcr) => config.fcr = fcr,
            Err(e) => {
                eprintln!("error: --fcr: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let lake = Lake::open(lake_dir)?;
    let rt = runtime()?;
    let batches = rt.block_on(async {
        let engine = Engine::open(&lake, config, &params).await?;
        match query {
            Query::Sql(sql) => engine.sql(&sql).await,
            Query::Metric(name) => engine.metric(&name).await,
        }
    })?;
    out!("{}", output::render(&batches, scope.format)?);
    if scope.format == output::Format::Table {
        outln!();
    }
    Ok(ExitCode::SUCCESS)
}

//! `deskpulse stream`: live events over HTTP and stdin into the lake (see `deskpulse::stream`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use deskpulse::config::parse_duration;
use deskpulse::stream;

use super::{Context, outln, runtime, stop_signal, usage};

#[derive(clap::Args)]
pub struct Args {
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
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    flush_interval: Duration,
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
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    header_timeout: Duration,
    /// A request body must arrive within this (408 beyond).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Connections served at once (more wait in the listen backlog).
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Escalate ratings with score_5 at or below this.
    #[arg(long, default_value_t = 2.0)]
    escalate_at: f64,
    /// Rolling window of the follow-up cohort alert.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    cohort_window: Duration,
    /// At most one cohort alert per category in this time.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    cohort_cooldown: Duration,
    /// An open ticket is at risk when its requester answers a reply with a message whose VADER
    /// compound is at or below this...
    #[arg(long, default_value_t = -0.5, allow_negative_numbers = true)]
    at_risk_sentiment: f64,
    /// ...or at least this much below their previous message's.
    #[arg(long, default_value_t = 1.0)]
    at_risk_drop: f64,
    /// ...or when the published model (the latest `predict --record`) gives the ticket so far a
    /// P(satisfied) below this (0: never).
    #[arg(long, default_value_t = 0.5)]
    at_risk_probability: f64,
    /// At most one at-risk alert per ticket in this time.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    at_risk_cooldown: Duration,
    /// Event ids remembered after they reach the lake (repeats within them are dropped).
    #[arg(long, default_value_t = 1_000_000)]
    dedup_window: usize,
    /// Tickets remembered for alerts (category, agent, group), newest first.
    #[arg(long, default_value_t = 1_000_000)]
    ticket_index: usize,
    /// Do not compute VADER sentiment of bodies and comments (and raise no at-risk alerts).
    #[arg(long)]
    no_sentiment: bool,
}

pub fn run(a: Args, ctx: &Context) -> Result<ExitCode> {
    if !(-1.0..=1.0).contains(&a.at_risk_sentiment) {
        return Err(usage(
            "--at-risk-sentiment is a VADER compound, from -1 to 1",
        ));
    }
    if !(a.at_risk_drop > 0.0 && a.at_risk_drop <= 2.0) {
        return Err(usage("--at-risk-drop must be above 0 and at most 2"));
    }
    if !(0.0..=1.0).contains(&a.at_risk_probability) {
        return Err(usage("--at-risk-probability must be from 0 to 1"));
    }
    let config = &ctx.config;
    let micros = |d: Duration| d.as_micros() as i64;
    let opts = stream::Options {
        lake: ctx.lake_dir.clone(),
        stdin: a.stdin,
        token_file: a.token_file,
        webhook: a.webhook,
        alerts: a.alerts,
        limits: stream::server::Limits {
            max_body: a.max_body,
            header_timeout: a.header_timeout,
            request_timeout: a.request_timeout,
            max_connections: a.max_connections,
        },
        queue: a.queue,
        settings: stream::Settings {
            flush_interval: a.flush_interval,
            flush_events: a.flush_events,
            max_pending: a.max_pending,
            dedup_window: a.dedup_window,
            ticket_index: a.ticket_index,
            escalate_at: a.escalate_at,
            satisfied: config.satisfied,
            cohort_window: micros(a.cohort_window),
            min_rated: config.min_rated,
            csat_threshold: config.csat_threshold,
            cohort_cooldown: micros(a.cohort_cooldown),
            sentiment: (!a.no_sentiment).then(|| config.sentiment_languages.clone()),
            at_risk: stream::at_risk::AtRiskSettings {
                negative_at: a.at_risk_sentiment,
                drop: a.at_risk_drop,
                probability_below: a.at_risk_probability,
                cooldown: micros(a.at_risk_cooldown),
                calendar: config.calendar.clone(),
            },
        },
    };
    let listen = match (a.listen, a.stdin) {
        (Some(l), _) => Some(l),
        (None, false) => Some("127.0.0.1:8080".to_string()),
        (None, true) => None,
    };
    let summary = runtime()?.block_on(async {
        let listener = match &listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?,
            ),
            None => None,
        };
        let addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let alerts_file = opts.alerts_path()?;
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

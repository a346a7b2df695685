//! `deskpulse stream`: live events over HTTP and stdin into the lake, with live satisfaction and
//! alerts within a second (DESIGN section 5).
//!
//! - [`event`]: an NDJSON line → a canonical row (as the `generic` profile reads it), or a
//!   refusal naming the line and field;
//! - [`spool`]: the fsync'd spool and the ids already in the lake;
//! - [`pipeline`]: de-duplication, spooling, live figures, alerts and micro-batches to the lake;
//! - [`live`]: per-channel and per-category rolling satisfaction;
//! - [`recent`]: bounded memory of the newest event ids and tickets;
//! - [`at_risk`]: open tickets whose requester answers a reply with a strongly negative or a
//!   sharply worse message;
//! - [`alerts`]: escalation, follow-up cohort and at-risk alerts to a file and a webhook;
//! - [`server`]: the axum routes and the stdin reader.

pub mod alerts;
pub mod at_risk;
pub mod event;
pub mod live;
pub mod monitor;
pub mod pipeline;
pub mod recent;
pub mod server;
pub mod spool;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::lake::Lake;
pub use pipeline::Settings;

/// Alerts waiting for the webhook, at most.
const WEBHOOK_QUEUE: usize = 1024;

/// Everything `deskpulse stream` is told.
#[derive(Debug, Clone)]
pub struct Options {
    pub lake: PathBuf,
    /// Read events from stdin (and stop when it ends, unless there is also a listener).
    pub stdin: bool,
    /// A file holding the bearer token that `/v1/*` requires.
    pub token_file: Option<PathBuf>,
    /// POST each alert here as JSON.
    pub webhook: Option<String>,
    /// The alerts file (default `_stream/alerts.ndjson` in the lake's local directory).
    pub alerts: Option<PathBuf>,
    /// Body limit, timeouts and connection limit of the listener.
    pub limits: server::Limits,
    /// Requests waiting for the core, at most (503 beyond it).
    pub queue: usize,
    pub settings: Settings,
}

impl Options {
    pub fn alerts_path(&self) -> Result<PathBuf> {
        match &self.alerts {
            Some(path) => Ok(path.clone()),
            None => {
                let local = Lake::open(&self.lake)?.local_dir()?;
                Ok(spool::state_dir(&local).join("alerts.ndjson"))
            }
        }
    }
}

/// What a run did, printed when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub replayed: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub refused: u64,
    pub in_lake: u64,
    pub left_in_spool: u64,
    pub alerts: u64,
    pub webhook_delivered: u64,
    pub webhook_failed: u64,
    pub webhook_dropped: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "events: {} accepted ({} replayed from the spool), {} repeated ids dropped, {} lines refused (in _rejects)",
            self.accepted + self.replayed,
            self.replayed,
            self.duplicates,
            self.refused
        )?;
        writeln!(
            f,
            "lake: {} events written, {} left in the spool for the next start",
            self.in_lake, self.left_in_spool
        )?;
        write!(
            f,
            "alerts: {} emitted; webhook: {} delivered, {} failed, {} dropped (queue full)",
            self.alerts, self.webhook_delivered, self.webhook_failed, self.webhook_dropped
        )
    }
}

/// Runs the stream until `shutdown` completes (or, with stdin and no listener, until stdin
/// ends), then flushes everything to the lake. `on_start` gets the number of events replayed
/// from the spool once the stream accepts events.
pub async fn run(
    opts: Options,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_start: impl FnOnce(u64),
) -> Result<Summary> {
    if listener.is_none() && !opts.stdin {
        bail!("nothing to read: give a listener or stdin");
    }
    let lake = Lake::open(&opts.lake)?;
    let token = match &opts.token_file {
        Some(f) => {
            let t = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the token file {}", f.display()))?;
            let t = t.trim();
            if t.is_empty() {
                bail!("the token file {} is empty", f.display());
            }
            Some(Arc::<str>::from(t))
        }
        None => None,
    };
    let st = &opts.settings;
    let mut live = live::Live::new(st.satisfied, st.cohort_window);
    let mut index = live::TicketIndex::new(st.ticket_index);
    live::seed(
        &lake,
        &mut index,
        &mut live,
        chrono::Utc::now().timestamp_micros(),
    )?;
    let live = Arc::new(Mutex::new(live));

    let (webhook_tx, webhook_task) = match &opts.webhook {
        Some(url) => {
            let (tx, rx) = mpsc::channel(WEBHOOK_QUEUE);
            (Some(tx), Some((url.clone(), rx)))
        }
        None => (None, None),
    };
    let stats = Arc::new(monitor::Monitor::default());
    let sink = alerts::AlertSink::open(&opts.alerts_path()?, webhook_tx, stats.clone())?;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let webhook_task = webhook_task
        .map(|(url, rx)| tokio::spawn(alerts::deliver(url, rx, stats.clone(), done_tx)));

    let (to_core, core_rx) = sync_channel(opts.queue.max(1));
    let (core, replayed) = pipeline::Core::open(
        lake,
        opts.settings.clone(),
        live.clone(),
        index,
        sink,
        done_rx,
        stats.clone(),
        to_core.clone(),
    )?;
    let core_thread = std::thread::Builder::new()
        .name("deskpulse-core".into())
        .spawn(move || core.run(core_rx))?;
    on_start(replayed as u64);

    // One stop signal for the server and the stdin wait.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = listener.map(|l| {
        let state = server::AppState {
            core: to_core.clone(),
            parser: Arc::new(event::Parser::default()),
            token,
            live,
            stats: stats.clone(),
        };
        let app = server::router(state, opts.limits);
        tokio::spawn(server::serve(l, app, opts.limits, stopped(stop_rx.clone())))
    });
    let stdin = opts.stdin.then(|| {
        let (done_tx, done_rx) = oneshot::channel();
        let tx = to_core.clone();
        std::thread::spawn(move || {
            let _ = done_tx.send(server::read_stdin(tx, &event::Parser::default()));
        });
        done_rx
    });
    match (server, stdin) {
        (Some(server), _) => server.await?,
        (None, Some(done)) => {
            tokio::select! {
                r = done => r.unwrap_or(Ok(()))?,
                _ = stopped(stop_rx.clone()) => {}
            }
        }
        (None, None) => unreachable!("checked above"),
    }

    let (tx, rx) = oneshot::channel();
    let send = to_core.clone();
    tokio::task::spawn_blocking(move || send.send(pipeline::Msg::Shutdown(tx))).await??;
    let left = rx.await.unwrap_or(0);
    drop(to_core);
    tokio::task::spawn_blocking(move || core_thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the stream core panicked"))?;
    // The core gave the webhook its time to drain; what is left stays in the outbox.
    if let Some(task) = webhook_task {
        task.abort();
    }
    Ok(Summary {
        replayed: replayed as u64,
        accepted: stats.accepted.get(),
        duplicates: stats.duplicates.get(),
        refused: stats.refused.get(),
        in_lake: stats.in_lake.get(),
        left_in_spool: left,
        alerts: stats.alerts.get(),
        webhook_delivered: stats.webhook_delivered.get(),
        webhook_failed: stats.webhook_failed.get(),
        webhook_dropped: stats.webhook_dropped.get(),
    })
}

//! Alerts: an escalation for each low rating, a follow-up cohort alert for a category whose
//! rolling satisfaction falls below the threshold, an at-risk alert for an open ticket whose
//! requester answers a reply in anger ([`super::at_risk`]). Each is appended to an NDJSON file at once and,
//! with `--webhook`, POSTed as JSON by a background task with retries. The webhook queue is
//! bounded and fed without waiting: when it is full the alert is counted as dropped for the
//! webhook (it is still in the file), so a slow or failing webhook never holds up ingest.
//!
//! Every alert has an `alert_id` made from the event that raised it, so the same alert raised
//! again after a crash carries the same id and a receiver can drop the repeat. The core keeps
//! alerts in the spool's outbox until they are done (see `pipeline`): delivery is at least once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::live::Window;
use super::monitor::Monitor;

/// One alert, as written to the file and POSTed to the webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// A rating at or below the escalation score.
    Escalation {
        /// `escalation:<event_id>`.
        alert_id: String,
        alerted_at: String,
        event_id: String,
        rating_id: String,
        ticket_id: String,
        agent: Option<String>,
        group: Option<String>,
        category: Option<String>,
        channel: Option<String>,
        score_5: f64,
        comment: Option<String>,
        rated_at: String,
    },
    /// A category whose rolling CSAT is below the threshold with enough ratings.
    FollowupCohort {
        /// `cohort:<category>:<event_id of the rating that tipped it>`.
        alert_id: String,
        alerted_at: String,
        category: String,
        window_hours: f64,
        rated: u64,
        csat: f64,
        ci95: Option<(f64, f64)>,
        threshold: f64,
        min_rated: u32,
    },
    /// An open ticket whose requester answered a reply with a strongly negative message, or
    /// one sharply worse than their previous one, or whose P(satisfied) by the published model
    /// fell below the threshold.
    AtRisk {
        /// `at_risk:<event_id of the message>`.
        alert_id: String,
        alerted_at: String,
        event_id: String,
        ticket_id: String,
        interaction_id: String,
        /// `negative`, `drop` or `model`.
        reason: String,
        sentiment: Option<f64>,
        previous_sentiment: Option<f64>,
        /// The published model's P(satisfied) of the ticket so far, and the model.
        probability: Option<f64>,
        model_id: Option<String>,
        /// The message that triggered it.
        message: Option<String>,
        /// Who gave the reply it answered, else the ticket's assignee.
        agent: Option<String>,
        group: Option<String>,
        category: Option<String>,
        channel: String,
        at: String,
    },
}

impl Alert {
    pub fn escalation_id(event_id: &str) -> String {
        format!("escalation:{event_id}")
    }

    pub fn id(&self) -> &str {
        match self {
            Alert::Escalation { alert_id, .. }
            | Alert::FollowupCohort { alert_id, .. }
            | Alert::AtRisk { alert_id, .. } => alert_id,
        }
    }

    pub fn cohort(
        event_id: &str,
        category: &str,
        w: &Window,
        window_hours: f64,
        threshold: f64,
        min_rated: u32,
    ) -> Alert {
        Alert::FollowupCohort {
            alert_id: format!("cohort:{category}:{event_id}"),
            alerted_at: now_text(),
            category: category.to_string(),
            window_hours,
            rated: w.rated,
            csat: w.csat.unwrap_or(0.0),
            ci95: w.ci95,
            threshold,
            min_rated,
        }
    }
}

pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An alert on its way out: its id and its JSON.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub json: String,
}

/// Where alerts go: the file, and the webhook queue when there is one. Ids of alerts done with
/// (delivered, failed after every retry, or dropped by a full queue) go back to the core on
/// `done`, so it can mark them in the outbox.
pub struct AlertSink {
    file: File,
    webhook: Option<mpsc::Sender<(Outgoing, Instant)>>,
    stats: Arc<Monitor>,
}

impl AlertSink {
    pub fn open(
        path: &Path,
        webhook: Option<mpsc::Sender<(Outgoing, Instant)>>,
        stats: Arc<Monitor>,
    ) -> Result<AlertSink> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the alerts file {}", path.display()))?;
        Ok(AlertSink {
            file,
            webhook,
            stats,
        })
    }

    pub fn has_webhook(&self) -> bool {
        self.webhook.is_some()
    }

    /// Closes the webhook queue: the delivery task ends once it has worked through it.
    pub fn close_webhook(&mut self) {
        self.webhook = None;
    }

    /// Writes the alert to the file (one `write`, so readers never see half a line) and queues
    /// it for the webhook. True when the alert is done with at once (no webhook, or its queue
    /// is full); otherwise the webhook task reports it done later.
    pub fn emit(&mut self, alert: Outgoing) -> Result<bool> {
        let mut line = Vec::with_capacity(alert.json.len() + 1);
        line.extend_from_slice(alert.json.as_bytes());
        line.push(b'\n');
        self.file
            .write_all(&line)
            .context("cannot write an alert")?;
        self.stats.alerts.inc();
        let Some(tx) = &self.webhook else {
            return Ok(true);
        };
        if tx.try_send((alert, Instant::now())).is_err() {
            self.stats.webhook_dropped.inc();
            return Ok(true);
        }
        Ok(false)
    }
}

/// Attempts per alert, and the pause before each retry.
const WEBHOOK_BACKOFF: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// Delivers queued alerts to `url` in order, each with up to four attempts, and reports each
/// done on `done`.
pub async fn deliver(
    url: String,
    mut rx: mpsc::Receiver<(Outgoing, Instant)>,
    stats: Arc<Monitor>,
    done: std::sync::mpsc::Sender<String>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client without TLS options builds");
    while let Some((alert, queued)) = rx.recv().await {
        let mut delivered = false;
        for pause in std::iter::once(None).chain(WEBHOOK_BACKOFF.iter().map(Some)) {
            if let Some(p) = pause {
                tokio::time::sleep(*p).await;
            }
            // The id also as an idempotency key: receivers that dedupe by header drop repeats.
            let post = client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", &alert.id)
                .body(alert.json.clone());
            match post.send().await {
                Ok(r) if r.status().is_success() => {
                    delivered = true;
                    break;
                }
                Ok(r) => eprintln!("deskpulse stream: webhook answered {}", r.status()),
                Err(e) => eprintln!("deskpulse stream: webhook failed: {e}"),
            }
        }
        if delivered {
            stats.webhook_delivered.inc();
            stats.delivered(queued.elapsed());
        } else {
            stats.webhook_failed.inc();
        }
        let _ = done.send(alert.id);
    }
}

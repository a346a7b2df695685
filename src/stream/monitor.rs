//! What the stream counts and times: the figures of `GET /healthz` (JSON) and of `GET /metrics`
//! (Prometheus / OpenMetrics text), kept once here and updated where things happen.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use serde_json::{Value, json};

/// The labels of a request's duration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route (`/v1/events`, `/v1/live`, `/healthz`, `/metrics`) or `other`.
    pub route: String,
    pub status: u16,
}

fn seconds() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Counters, gauges and histograms of one stream.
#[derive(Debug)]
pub struct Monitor {
    pub accepted: Counter,
    pub duplicates: Counter,
    pub refused: Counter,
    pub in_lake: Counter,
    /// Events accepted and not yet in the lake.
    pub waiting: Gauge,
    pub batches: Counter,
    pub failed_batches: Counter,
    pub alerts: Counter,
    /// Alerts in the outbox, not yet done.
    pub outbox: Gauge,
    pub webhook_delivered: Counter,
    pub webhook_failed: Counter,
    pub webhook_dropped: Counter,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    flushes: Histogram,
    deliveries: Histogram,
    registry: Registry,
}

impl Default for Monitor {
    fn default() -> Self {
        let mut m = Monitor {
            accepted: Counter::default(),
            duplicates: Counter::default(),
            refused: Counter::default(),
            in_lake: Counter::default(),
            waiting: Gauge::default(),
            batches: Counter::default(),
            failed_batches: Counter::default(),
            alerts: Counter::default(),
            outbox: Gauge::default(),
            webhook_delivered: Counter::default(),
            webhook_failed: Counter::default(),
            webhook_dropped: Counter::default(),
            requests: Family::new_with_constructor(seconds),
            flushes: seconds(),
            deliveries: seconds(),
            registry: Registry::with_prefix("deskpulse_stream"),
        };
        let r = &mut m.registry;
        let counters = [
            (
                "events_accepted",
                "Events accepted (in the spool)",
                &m.accepted,
            ),
            (
                "events_duplicate",
                "Events dropped as repeated ids",
                &m.duplicates,
            ),
            ("lines_refused", "Lines refused (in _rejects)", &m.refused),
            ("events_in_lake", "Events written to the lake", &m.in_lake),
            ("batches", "Micro-batches written to the lake", &m.batches),
            (
                "batches_failed",
                "Micro-batches the lake refused (kept, retried)",
                &m.failed_batches,
            ),
            ("alerts", "Alerts written to the alerts file", &m.alerts),
            (
                "webhook_delivered",
                "Alerts the webhook took",
                &m.webhook_delivered,
            ),
            (
                "webhook_failed",
                "Alerts the webhook refused after every retry",
                &m.webhook_failed,
            ),
            (
                "webhook_dropped",
                "Alerts not queued for the webhook (queue full)",
                &m.webhook_dropped,
            ),
        ];
        for (name, help, c) in counters {
            r.register(name, help, c.clone());
        }
        r.register(
            "events_waiting",
            "Events accepted, not yet in the lake",
            m.waiting.clone(),
        );
        r.register(
            "alerts_open",
            "Alerts in the outbox, not yet done",
            m.outbox.clone(),
        );
        r.register_with_unit(
            "request",
            "HTTP requests by route and status",
            Unit::Seconds,
            m.requests.clone(),
        );
        r.register_with_unit(
            "flush",
            "Time to write a micro-batch to the lake",
            Unit::Seconds,
            m.flushes.clone(),
        );
        r.register_with_unit(
            "webhook_delivery",
            "Time from queueing an alert to the webhook taking it",
            Unit::Seconds,
            m.deliveries.clone(),
        );
        m
    }
}

impl Monitor {
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        let route = match route {
            "/v1/events" | "/v1/live" | "/healthz" | "/metrics" => route,
            _ => "other",
        };
        let labels = RequestLabels {
            route: route.to_string(),
            status,
        };
        self.requests
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn flushed(&self, took: Duration) {
        self.flushes.observe(took.as_secs_f64());
    }

    pub fn delivered(&self, took: Duration) {
        self.deliveries.observe(took.as_secs_f64());
    }

    /// The body of `GET /healthz`.
    pub fn health(&self) -> Value {
        json!({
            "status": "ok",
            "accepted": self.accepted.get(),
            "duplicates": self.duplicates.get(),
            "refused": self.refused.get(),
            "in_lake": self.in_lake.get(),
            "waiting_for_lake": self.waiting.get(),
            "batches": self.batches.get(),
            "failed_batches": self.failed_batches.get(),
            "alerts": self.alerts.get(),
            "alerts_open": self.outbox.get(),
            "webhook_delivered": self.webhook_delivered.get(),
            "webhook_failed": self.webhook_failed.get(),
            "webhook_dropped": self.webhook_dropped.get(),
        })
    }

    /// The body of `GET /metrics`.
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

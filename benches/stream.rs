//! Load benchmark of `deskpulse stream` (loopback only, bounded in time and count):
//! the real binary, a webhook receiver in this process, concurrent clients posting NDJSON.
//!
//! Phase 1 (throughput): `CLIENTS` clients post batches of `BATCH` events as fast as the stream
//! acknowledges them, for `DESKPULSE_BENCH_SECS` seconds (default 10) or `MAX_EVENTS` events;
//! 1 event in 100 is a rating of 1, whose escalation alert is timed from the start of its POST
//! to its arrival at the webhook. Phase 2 (latency at rest): single low ratings, one at a time.
//! Then SIGTERM, and the lake is checked to hold every acknowledged event exactly once.
//!
//! Phase 3 (soak, memory): a second stream with small memory settings (`SOAK_DEDUP` ids,
//! `SOAK_TICKETS` tickets) takes `SOAK_RATE` events per second, every id and ticket new, for
//! `DESKPULSE_SOAK_SECS` seconds (default 240; 0 skips it); its resident memory is sampled
//! every 10 s, to show where it levels off once the windows are full.
//!
//! `cargo bench --bench stream`

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

const CLIENTS: usize = 8;
const BATCH: usize = 100;
const MAX_EVENTS: u64 = 2_000_000;
const REST_SAMPLES: usize = 50;
const SOAK_RATE: u64 = 2_000;
const SOAK_DEDUP: usize = 100_000;
const SOAK_TICKETS: usize = 50_000;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn hook(State(arrivals): State<Arrivals>, Json(alert): Json<Value>) -> &'static str {
    if let Some(id) = alert["event_id"].as_str() {
        arrivals
            .lock()
            .unwrap()
            .insert(id.to_string(), Instant::now());
    }
    "ok"
}

fn body(client: usize, batch: u64, now: &str) -> (String, Option<String>) {
    let mut s = String::with_capacity(BATCH * 220);
    let mut low = None;
    for i in 0..BATCH {
        let id = format!("c{client}-b{batch}-{i}");
        let score = if i == 0 { 1 } else { 3 + i % 3 };
        if score == 1 {
            low = Some(format!("e-{id}"));
        }
        let e = json!({"type": "rating", "event_id": format!("e-{id}"), "rating_id": id,
            "ticket_id": format!("T{}", i % 50), "rated_at": now, "channel": "chat",
            "score_raw": score.to_string(), "comment": "thanks, that fixed it"});
        s.push_str(&e.to_string());
        s.push('\n');
    }
    (s, low)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latencies(sent: &HashMap<String, Instant>, arrivals: &Arrivals) -> Vec<f64> {
    let arrivals = arrivals.lock().unwrap();
    let mut ms: Vec<f64> = sent
        .iter()
        .filter_map(|(id, t)| {
            arrivals
                .get(id)
                .map(|a| a.duration_since(*t).as_secs_f64() * 1e3)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("DESKPULSE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");

    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (mut child, url, rest) = spawn_stream(&lake, &["--webhook", &hook_url]);
    let client = reqwest::Client::new();
    while client.get(format!("{url}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Phase 1: throughput.
    let acked = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, url, acked, busy, sent) = (
            client.clone(),
            url.clone(),
            acked.clone(),
            busy.clone(),
            sent.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let mut b = 0;
            while Instant::now() < deadline && acked.load(Ordering::Relaxed) < MAX_EVENTS {
                let (text, low) = body(c, b, &now);
                let t = Instant::now();
                let r = client
                    .post(format!("{url}/v1/events"))
                    .body(text)
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => {
                        acked.fetch_add(BATCH as u64, Ordering::Relaxed);
                        if let Some(id) = low {
                            sent.lock().unwrap().insert(id, t);
                        }
                        b += 1;
                    }
                    503 => {
                        busy.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    s => panic!("unexpected status {s}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let events = acked.load(Ordering::Relaxed);
    let health: Value = client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await; // let the last alerts arrive
    let loaded = latencies(&sent.lock().unwrap(), &arrivals);

    // Phase 2: latency at rest.
    let mut rest_sent = HashMap::new();
    for i in 0..REST_SAMPLES {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let id = format!("rest-{i}");
        let e = json!({"type": "rating", "event_id": id, "rating_id": id, "ticket_id": "T1",
            "rated_at": now, "channel": "email", "score_raw": "1"});
        let t = Instant::now();
        let r = client
            .post(format!("{url}/v1/events"))
            .body(format!("{e}\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        rest_sent.insert(id, t);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at_rest = latencies(&rest_sent, &arrivals);

    let stop = Instant::now();
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let drain = stop.elapsed().as_secs_f64();
    let summary = rest.join().unwrap();
    let lake_rows = deskpulse::lake::Lake::open(&lake)
        .unwrap()
        .row_count(deskpulse::model::Table::Ratings)
        .unwrap();
    assert_eq!(lake_rows, events + REST_SAMPLES as u64, "{summary:?}");

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "stream load benchmark ({cores} cores, loopback, {CLIENTS} clients, {BATCH} events per request; spool fsync'd before each acknowledgement)"
    );
    println!(
        "  sustained: {events} events acknowledged in {elapsed:.1} s = {:.0} events/s ({} responses 503)",
        events as f64 / elapsed,
        busy.load(Ordering::Relaxed)
    );
    println!(
        "  escalation alert latency under that load (POST start → webhook): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} alerts)",
        percentile(&loaded, 0.5),
        percentile(&loaded, 0.99),
        loaded.last().copied().unwrap_or(f64::NAN),
        loaded.len()
    );
    println!(
        "  escalation alert latency at rest: p50 {:.1} ms, p99 {:.1} ms ({} alerts)",
        percentile(&at_rest, 0.5),
        percentile(&at_rest, 0.99),
        at_rest.len()
    );
    println!(
        "  micro-batches written to the lake during the load: {} ({} events in the lake, {} waiting, at its end)",
        health["batches"], health["in_lake"], health["waiting_for_lake"]
    );
    println!(
        "  shutdown with final flush: {drain:.1} s; lake holds {lake_rows} ratings, each acknowledged event once"
    );

    let soak_secs: u64 = std::env::var("DESKPULSE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    if soak_secs > 0 {
        soak(soak_secs).await;
    }
}

/// Spawns `deskpulse stream` on a new lake; returns it, its URL and what it prints after that.
fn spawn_stream(
    lake: &std::path::Path,
    args: &[&str],
) -> (
    std::process::Child,
    String,
    std::thread::JoinHandle<Vec<String>>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .args(["stream", "--lake"])
        .arg(lake)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .next()
        .unwrap()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_string();
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    (child, url, rest)
}

/// Resident memory of a process, in MB (Linux).
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn soak(secs: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (dedup, tickets) = (SOAK_DEDUP.to_string(), SOAK_TICKETS.to_string());
    let (mut child, url, _) = spawn_stream(
        &dir.path().join("lake"),
        &[
            "--dedup-window",
            &dedup,
            "--ticket-index",
            &tickets,
            "--flush-interval",
            "1s",
        ],
    );
    let client = reqwest::Client::new();
    while client.get(format!("{url}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "stream soak: {SOAK_RATE} events/s for {secs} s, every id new (half new tickets, half ratings of them); --dedup-window {SOAK_DEDUP} --ticket-index {SOAK_TICKETS}"
    );
    println!("  {:>6} {:>10} {:>9}", "second", "events", "RSS MB");
    let start = Instant::now();
    let mut sent = 0u64;
    let mut next_sample = 0;
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        let second = start.elapsed().as_secs();
        if second >= next_sample {
            let rss = rss_mb(child.id());
            println!("  {second:>6} {sent:>10} {rss:>9.1}");
            samples.push(rss);
            next_sample += 10;
        }
        // One request of BATCH events every BATCH / SOAK_RATE seconds.
        let due = start + Duration::from_secs_f64(sent as f64 / SOAK_RATE as f64);
        tokio::time::sleep_until(due.into()).await;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut text = String::with_capacity(BATCH * 220);
        for i in 0..BATCH as u64 {
            let n = sent + i;
            let ticket = format!("S{}", n / 2);
            let e = if n.is_multiple_of(2) {
                json!({"type": "ticket", "event_id": format!("t-{n}"), "ticket_id": ticket,
                    "opened_at": now, "updated_at": now, "category": format!("cat-{}", n % 40),
                    "channel": "chat", "assignee_id": format!("agent-{}", n % 300),
                    "assignment_group": "Service Desk L1"})
            } else {
                json!({"type": "rating", "event_id": format!("r-{n}"), "rating_id": format!("R{n}"),
                    "ticket_id": ticket, "rated_at": now, "channel": "chat",
                    "score_raw": (1 + n % 5).to_string(), "comment": "thanks"})
            };
            text.push_str(&e.to_string());
            text.push('\n');
        }
        let r = client
            .post(format!("{url}/v1/events"))
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        sent += BATCH as u64;
    }
    let rss = rss_mb(child.id());
    println!("  {:>6} {sent:>10} {rss:>9.1}", start.elapsed().as_secs());
    samples.push(rss);
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    // Each micro-batch swings the figure (it reads the keys of the partition it rewrites), so
    // compare thirds of the soak rather than two samples.
    let third = samples.len() / 3;
    for (name, part) in [
        ("second", &samples[third..2 * third]),
        ("last", &samples[2 * third..]),
    ] {
        let mean = part.iter().sum::<f64>() / part.len() as f64;
        let max = part.iter().copied().fold(f64::NAN, f64::max);
        println!("  {name} third of the soak: RSS mean {mean:.1} MB, max {max:.1} MB");
    }
}

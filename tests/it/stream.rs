//! `deskpulse stream` as a user runs it: the real binary on a loopback port, real HTTP requests,
//! the real lake read back afterwards.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray};
use deskpulse::lake::{AUTO_COMPACT_FILES, Lake};
use deskpulse::model::Table;
use serde_json::{Value, json};

/// A running `deskpulse stream`.
struct Stream {
    child: Child,
    url: String,
    out: Arc<Mutex<String>>,
}

/// A test that fails must not leave its stream running on a deleted lake.
impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Stream {
    /// Starts the stream (flushing every 200 ms unless `args` say otherwise).
    fn start(lake: &Path, args: &[&str]) -> Stream {
        Stream::start_with(lake, args, &[])
    }

    /// [`Stream::start`] with environment variables.
    fn start_with(lake: &Path, args: &[&str], env: &[(&str, String)]) -> Stream {
        let mut args = args.to_vec();
        if !args.contains(&"--flush-interval") {
            args.extend(["--flush-interval", "200ms"]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
            .args(["stream", "--lake"])
            .arg(lake)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("the stream printed nothing").unwrap();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_string();
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        // The second line comes once the spool is replayed and events are taken.
        let t = Instant::now();
        while !out.lock().unwrap().contains("replayed") {
            assert!(t.elapsed() < Duration::from_secs(30), "no start line");
            std::thread::sleep(Duration::from_millis(10));
        }
        Stream { child, url, out }
    }

    /// SIGTERM, then the exit status and everything printed.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let ok = Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit status {status}");
        std::thread::sleep(Duration::from_millis(50));
        self.out.lock().unwrap().clone()
    }

    fn replayed(&self) -> u64 {
        let out = self.out.lock().unwrap();
        let line = out.lines().find(|l| l.starts_with("replayed")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn ticket(id: &str, category: &str) -> Value {
    json!({"type": "ticket", "event_id": format!("t-{id}"), "ticket_id": id,
           "opened_at": now(), "updated_at": now(), "category": category, "channel": "chat",
           "assignee_id": "agent-7", "assignment_group": "Service Desk L1"})
}

fn rating(id: &str, ticket: &str, score: u8, channel: &str, comment: &str) -> Value {
    json!({"type": "rating", "event_id": format!("e-{id}"), "rating_id": id, "ticket_id": ticket,
           "rated_at": now(), "channel": channel, "score_raw": score.to_string(),
           "comment": comment})
}

fn ndjson(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn post(url: &str, body: String, token: Option<&str>) -> (u16, Value) {
    let mut req = client().post(format!("{url}/v1/events")).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// GET `path`, as JSON.
async fn get(url: &str, path: &str) -> Value {
    let r = client().get(format!("{url}{path}")).send().await.unwrap();
    r.json().await.unwrap()
}

async fn health(url: &str) -> Value {
    get(url, "/healthz").await
}

/// rating_id → how many rows the lake holds for it.
fn rating_rows(lake: &Path) -> HashMap<String, usize> {
    key_rows(lake, Table::Ratings)
}

/// Each key of `table` → how many rows the lake holds for it.
fn key_rows(lake: &Path, table: Table) -> HashMap<String, usize> {
    let lake = Lake::open(lake).unwrap();
    let mut n = HashMap::new();
    for b in lake.scan(table, Some(&[table.key_columns()[0]])).unwrap() {
        let ids = b.column(0).as_string::<i32>();
        for i in 0..b.num_rows() {
            *n.entry(ids.value(i).to_string()).or_default() += 1;
        }
    }
    n
}

fn alerts(lake: &Path) -> Vec<Value> {
    let path = lake.join("_stream/alerts.ndjson");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn lake_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    (dir, lake)
}

#[tokio::test(flavor = "multi_thread")]
async fn events_reach_the_lake_and_live_figures_and_a_retry_changes_nothing() {
    let (_d, lake) = lake_dir();
    let s = Stream::start(&lake, &[]);
    let mut events = vec![ticket("T1", "Email"), ticket("T2", "VPN")];
    for i in 0..12 {
        let (chan, score) = if i < 8 { ("chat", 5) } else { ("email", 2) };
        let comment = if score == 5 {
            "great, thanks!"
        } else {
            "terrible, still broken"
        };
        events.push(rating(&format!("R{i}"), "T1", score, chan, comment));
    }
    let body = ndjson(&events);
    let (status, reply) = post(&s.url, body.clone(), None).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["accepted"], 14);
    // The same body again (a client retry): every id is a repeat, nothing is added.
    let (status, reply) = post(&s.url, body, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            reply["accepted"].as_u64(),
            reply["duplicates"].as_array().unwrap().len()
        ),
        (Some(0), 14)
    );
    // The same counters for Prometheus, and the two requests' durations.
    let r = client()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let metrics = r.text().await.unwrap();
    for line in [
        "deskpulse_stream_events_accepted_total 14",
        "deskpulse_stream_events_duplicate_total 14",
        "deskpulse_stream_alerts_total 5", // 4 escalations, 1 cohort (Email at 8/12)
        "deskpulse_stream_alerts_open 0",
        "deskpulse_stream_request_seconds_count{route=\"/v1/events\",status=\"200\"} 2",
        "# EOF",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }

    let live = get(&s.url, "/v1/live").await;
    let chan = |c: &str| {
        live["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["channel"] == c)
            .unwrap_or_else(|| panic!("no {c} in {live}"))
            .clone()
    };
    assert_eq!(chan("chat")["last_hour"]["rated"], 8);
    assert_eq!(chan("chat")["last_hour"]["csat"], 1.0);
    assert_eq!(chan("email")["last_24h"]["rated"], 4);
    assert_eq!(chan("email")["last_24h"]["csat"], 0.0);
    assert_eq!(live["all_channels"]["last_hour"]["rated"], 12);
    let ci = live["all_channels"]["last_hour"]["ci95"]
        .as_array()
        .unwrap();
    assert!(ci[0].as_f64().unwrap() < 8.0 / 12.0 && ci[1].as_f64().unwrap() > 8.0 / 12.0);

    // Micro-batches reach the lake while the stream runs (flush interval 200 ms).
    let t = Instant::now();
    while rating_rows(&lake).len() < 12 {
        assert!(t.elapsed() < Duration::from_secs(20), "not flushed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = s.stop();
    assert!(out.contains("14 accepted"), "{out}");
    assert!(out.contains("14 repeated ids dropped"), "{out}");
    assert!(out.contains("0 left in the spool"), "{out}");
    let spool = std::fs::read_dir(lake.join("_stream/spool"))
        .unwrap()
        .count();
    assert_eq!(spool, 0, "a clean stop leaves no spool segment");
    let rows = rating_rows(&lake);
    assert_eq!(rows.len(), 12);
    assert!(rows.values().all(|n| *n == 1));
    let l = Lake::open(&lake).unwrap();
    assert_eq!(l.row_count(Table::Tickets).unwrap(), 2);
    // Sentiment is scored on the way in, as in a batch ingest.
    let b = l
        .scan(Table::Ratings, Some(&["score_5", "sentiment"]))
        .unwrap();
    for b in b {
        let score = b
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        let sent = b
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        for i in 0..b.num_rows() {
            assert!(sent.is_valid(i));
            assert_eq!(score.value(i) > 3.0, sent.value(i) > 0.0);
        }
    }

    // A restart rebuilds the live figures from the lake (the spool is empty).
    let s = Stream::start(&lake, &[]);
    let again = get(&s.url, "/v1/live").await;
    s.stop();
    assert_eq!(again["channels"], live["channels"], "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_rating_alerts_within_a_second_and_a_failing_category_once_per_cooldown() {
    let (_d, lake) = lake_dir();
    let s = Stream::start(&lake, &[]);
    let (status, _) = post(
        &s.url,
        ndjson(&[ticket("T9", "Email"), ticket("T8", "VPN")]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let sent = Instant::now();
    let (status, _) = post(
        &s.url,
        ndjson(&[rating("R1", "T9", 1, "chat", "<b>nobody</b> answered")]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let escalation = loop {
        if let Some(a) = alerts(&lake)
            .into_iter()
            .find(|a| a["kind"] == "escalation")
        {
            break a;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "no escalation within a second"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert_eq!(escalation["ticket_id"], "T9");
    assert_eq!(escalation["alert_id"], "escalation:e-R1");
    assert_eq!(escalation["agent"], "agent-7");
    assert_eq!(escalation["group"], "Service Desk L1");
    assert_eq!(escalation["category"], "Email");
    assert_eq!(escalation["score_5"], 1.0);
    assert_eq!(escalation["comment"], "<b>nobody</b> answered");

    // Email: with R1, five ratings (the default min_rated), CSAT 2/5 < 0.7 → one cohort alert;
    // five more low ones within the cooldown → no second alert. VPN stays satisfied → none.
    let mut more: Vec<Value> = (2..=5)
        .map(|i| {
            rating(
                &format!("R{i}"),
                "T9",
                if i <= 3 { 5 } else { 3 },
                "email",
                "",
            )
        })
        .collect();
    more.extend((0..6).map(|i| rating(&format!("V{i}"), "T8", 5, "chat", "")));
    assert_eq!(post(&s.url, ndjson(&more), None).await.0, 200);
    let again: Vec<Value> = (6..=10)
        .map(|i| rating(&format!("R{i}"), "T9", 3, "email", ""))
        .collect();
    assert_eq!(post(&s.url, ndjson(&again), None).await.0, 200);
    s.stop();
    let cohorts: Vec<Value> = alerts(&lake)
        .into_iter()
        .filter(|a| a["kind"] == "followup_cohort")
        .collect();
    assert_eq!(cohorts.len(), 1, "{cohorts:?}");
    assert_eq!(cohorts[0]["category"], "Email");
    assert_eq!(cohorts[0]["alert_id"], "cohort:Email:e-R5");
    assert_eq!(cohorts[0]["rated"], 5);
    assert_eq!(cohorts[0]["csat"], 0.4);
    // Escalations: R1 only (3 is not ≤ 2).
    assert_eq!(
        alerts(&lake)
            .iter()
            .filter(|a| a["kind"] == "escalation")
            .count(),
        1
    );
}

fn said(id: &str, ticket: &str, role: &str, actor: &str, body: &str) -> Value {
    json!({"type": "interaction", "event_id": format!("i-{id}"), "interaction_id": id,
           "ticket_id": ticket, "at": now(), "actor_role": role, "actor_id": actor,
           "channel": "chat", "body": body})
}

fn at_risk(lake: &Path) -> Vec<Value> {
    alerts(lake)
        .into_iter()
        .filter(|a| a["kind"] == "at_risk")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_angry_answer_to_a_reply_alerts_within_a_second_and_once_per_cooldown() {
    let (_d, lake) = lake_dir();
    let s = Stream::start(&lake, &[]);
    const ANGRY: &str = "<b>This is terrible</b>, nothing works and I am furious. Worst help ever!";
    let opening = [
        ticket("T5", "Hardware"),
        said(
            "M1",
            "T5",
            "requester",
            "u-1",
            "Hello, could you please help me? Thanks, great service!",
        ),
        said(
            "M2",
            "T5",
            "agent",
            "agent-9",
            "Please hold the power button for ten seconds.",
        ),
    ];
    assert_eq!(post(&s.url, ndjson(&opening), None).await.0, 200);
    // An angry message before any reply would not be an answer to the desk: none so far.
    assert!(at_risk(&lake).is_empty());
    let sent = Instant::now();
    let angry = said("M3", "T5", "requester", "u-1", ANGRY);
    assert_eq!(post(&s.url, ndjson(&[angry]), None).await.0, 200);
    let alert = loop {
        if let Some(a) = at_risk(&lake).into_iter().next() {
            break a;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "no at-risk alert within a second"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert_eq!(alert["alert_id"], "at_risk:i-M3");
    assert_eq!(alert["ticket_id"], "T5");
    assert_eq!(alert["interaction_id"], "M3");
    assert_eq!(alert["reason"], "negative");
    assert_eq!(alert["agent"], "agent-9");
    assert_eq!(alert["group"], "Service Desk L1");
    assert_eq!(alert["category"], "Hardware");
    assert_eq!(alert["channel"], "chat");
    assert_eq!(alert["message"], ANGRY);
    assert!(
        alert["previous_sentiment"].as_f64().unwrap() > 0.0,
        "{alert}"
    );
    assert!(alert["sentiment"].as_f64().unwrap() <= -0.5, "{alert}");
    // Another reply and another angry answer within the cooldown: no second alert (alerts are
    // written before the request is acknowledged).
    let again = [
        said(
            "M4",
            "T5",
            "agent",
            "agent-9",
            "I am sorry, please try again.",
        ),
        said("M5", "T5", "requester", "u-1", ANGRY),
    ];
    assert_eq!(post(&s.url, ndjson(&again), None).await.0, 200);
    s.stop();
    assert_eq!(at_risk(&lake).len(), 1, "{:?}", at_risk(&lake));
}

/// Records in `lake` a published model that reads the requester's last message (satisfied
/// when it was positive, nine times in ten), as `predict --record` would.
fn record_mood_model(lake: &Path) {
    use deskpulse::predict::{Design, Example, SoFar, Spec, fit};
    let examples: Vec<Example> = (0..400)
        .map(|k| {
            let mood = (k % 21) as f64 / 10.0 - 1.0;
            let s = SoFar {
                sentiment_first: Some(0.0),
                sentiment_last: Some(mood),
                sentiment_min: Some(mood.min(0.0)),
                requester_messages: 2.0,
                ..SoFar::default()
            };
            Example::so_far(&format!("X{k}"), &s)
        })
        .collect();
    let y: Vec<bool> = (0..400)
        .map(|k| ((k % 21) as f64 / 10.0 - 1.0 > 0.0) != (k % 10 == 0))
        .collect();
    let rows: Vec<&Example> = examples.iter().collect();
    let design = Design::learn(&rows);
    let m = fit(&design.matrix(&rows), &y).unwrap();
    let spec = Spec {
        model_id: "mood-1".into(),
        predicted_at: chrono::Utc::now().timestamp_micros(),
        design,
        weights: m.weights,
        intercept: m.intercept,
    };
    let lake = Lake::open(lake).unwrap();
    let mut staging = lake.stage("test-model").unwrap();
    staging
        .push(deskpulse::model::RecordedModel {
            model_id: spec.model_id.clone(),
            predicted_at: spec.predicted_at,
            spec: serde_json::to_string(&spec).unwrap(),
        })
        .unwrap();
    staging.commit(&lake).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_published_model_puts_an_open_ticket_at_risk_when_its_probability_falls() {
    let (_d, lake) = lake_dir();
    record_mood_model(&lake);
    // Only the model's trigger: no message is negative or drop enough by sentiment alone, and
    // no cooldown, so what limits the alerts is the probability falling.
    let args = [
        "--at-risk-sentiment",
        "-1",
        "--at-risk-drop",
        "2",
        "--at-risk-cooldown",
        "0s",
    ];
    let s = Stream::start(&lake, &args);
    let opening = [
        ticket("T6", "Software"),
        said(
            "N1",
            "T6",
            "requester",
            "u-2",
            "Hello, could you please help me? Thanks, great service!",
        ),
        said(
            "N2",
            "T6",
            "agent",
            "agent-9",
            "Please reinstall the client.",
        ),
    ];
    assert_eq!(post(&s.url, ndjson(&opening), None).await.0, 200);
    assert!(
        at_risk(&lake).is_empty(),
        "a happy requester is not at risk"
    );
    let angry = said(
        "N3",
        "T6",
        "requester",
        "u-2",
        "This is terrible, it still crashes.",
    );
    assert_eq!(post(&s.url, ndjson(&[angry]), None).await.0, 200);
    // Alerts are written before the request is acknowledged.
    let alerts = at_risk(&lake);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["reason"], "model");
    assert_eq!(a["model_id"], "mood-1");
    assert_eq!(a["ticket_id"], "T6");
    assert!(a["probability"].as_f64().unwrap() < 0.5, "{a}");
    // Still low: it fell once, and that was said. Happy again, then angry: it falls again.
    let more = [
        said("N4", "T6", "agent", "agent-9", "Sorry, try this patch."),
        said("N5", "T6", "requester", "u-2", "Terrible, still broken."),
    ];
    assert_eq!(post(&s.url, ndjson(&more), None).await.0, 200);
    assert_eq!(at_risk(&lake).len(), 1);
    let more = [
        said(
            "N6",
            "T6",
            "requester",
            "u-2",
            "It works now, thank you so much, great help!",
        ),
        said(
            "N7",
            "T6",
            "requester",
            "u-2",
            "Oh no, it is broken again, this is awful.",
        ),
    ];
    assert_eq!(post(&s.url, ndjson(&more), None).await.0, 200);
    let alerts = at_risk(&lake);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[1]["alert_id"], "at_risk:i-N7");
    s.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_400_401_413_503_and_nothing_valid_is_lost() {
    let (d, lake) = lake_dir();
    let token_file = d.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let token_arg = token_file.to_str().unwrap();
    let s = Stream::start(&lake, &["--token-file", token_arg, "--max-body", "2000"]);
    let good = ndjson(&[rating("G1", "T1", 4, "chat", "")]);
    assert_eq!(post(&s.url, good.clone(), None).await.0, 401);
    assert_eq!(post(&s.url, good.clone(), Some("guess")).await.0, 401);
    let live = client()
        .get(format!("{}/v1/live", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 401);
    let health = client()
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    let big = ndjson(
        &(0..40)
            .map(|i| rating(&format!("B{i}"), "T1", 4, "chat", ""))
            .collect::<Vec<_>>(),
    );
    assert!(big.len() > 2000);
    assert_eq!(post(&s.url, big, Some("s3cret")).await.0, 413);
    // A request that announces a huge body gets its 413 before sending any of it.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = s.url.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\
              Content-Length: 100000000\r\n\r\n",
        )
        .await
        .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut head))
            .await
            .expect("an answer without waiting for the body")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 413");
    }

    let mut mixed = ndjson(&[rating("G2", "T1", 4, "chat", "")]);
    mixed.push_str("{\"type\":\"rating\",\"event_id\":\"x1\",\"rating_id\":\"X1\",\"ticket_id\":\"T1\",\"rated_at\":\"2026-11-23T10:00:00Z\",\"score_raw\":\"11\"}\n");
    mixed.push_str("{oops\n");
    mixed.push_str(&ndjson(&[rating("G3", "T1", 5, "sms", "")]));
    let (status, reply) = post(&s.url, mixed, Some("s3cret")).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["accepted"], 2);
    let refused = reply["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2);
    assert_eq!(
        (refused[0]["line"].as_u64(), refused[0]["field"].as_str()),
        (Some(2), Some("score_raw"))
    );
    assert_eq!(refused[0]["event_id"], "x1");
    assert_eq!(
        (refused[1]["line"].as_u64(), refused[1]["field"].as_str()),
        (Some(3), None)
    );
    s.stop();

    let rows = rating_rows(&lake);
    let mut ids: Vec<&String> = rows.keys().collect();
    ids.sort();
    assert_eq!(ids, ["G2", "G3"]);
    let rejects = Lake::open(&lake).unwrap().rejects().unwrap();
    let at: Vec<(u64, Option<&str>)> = rejects
        .iter()
        .map(|r| (r.line, r.column.as_deref()))
        .collect();
    assert_eq!(at, [(2, Some("score_raw")), (3, None)]);
    assert!(
        rejects[0]
            .source_file
            .starts_with("POST /v1/events from 127.0.0.1:")
    );

    // Back-pressure: at most 3 events may wait for the lake (flushes held off for an hour).
    let s = Stream::start(&lake, &["--max-pending", "3", "--flush-interval", "1h"]);
    let three: Vec<Value> = (0..3)
        .map(|i| rating(&format!("P{i}"), "T1", 4, "chat", ""))
        .collect();
    assert_eq!(post(&s.url, ndjson(&three), None).await.0, 200);
    let r = client()
        .post(format!("{}/v1/events", s.url))
        .body(ndjson(&[rating("P3", "T1", 4, "chat", "")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let out = s.stop();
    assert!(out.contains("3 events written"), "{out}");
    assert!(rating_rows(&lake).contains_key("P2") && !rating_rows(&lake).contains_key("P3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_in_the_middle_of_a_send_loop_loses_no_acknowledged_event_and_doubles_none() {
    let (_d, lake) = lake_dir();
    // Flushes every 300 ms, so the kill lands with events both in the lake and only in the spool.
    let mut s = Stream::start(&lake, &["--flush-interval", "300ms"]);
    let url = s.url.clone();
    let batches: Vec<String> = (0..4000)
        .map(|b| {
            let events: Vec<Value> = (0..25)
                .map(|i| rating(&format!("K{b}-{i}"), "T1", 1 + (i % 5) as u8, "chat", "ok"))
                .collect();
            ndjson(&events)
        })
        .collect();
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let sender = {
        let (acked, batches) = (acked.clone(), batches.clone());
        tokio::spawn(async move {
            let c = client();
            for (b, body) in batches.into_iter().enumerate() {
                match c.post(format!("{url}/v1/events")).body(body).send().await {
                    Ok(r) if r.status().is_success() => acked.lock().unwrap().push(b),
                    _ => break,
                }
            }
        })
    };
    // Kill once some events are in the lake and others only in the spool.
    loop {
        let h = health(&s.url).await;
        if acked.lock().unwrap().len() >= 40
            && h["in_lake"].as_u64() > Some(0)
            && h["waiting_for_lake"].as_u64() > Some(0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    sender.await.unwrap();
    let acked: Vec<usize> = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40 && acked.len() < 4000, "{}", acked.len());

    // Restart: the spool is replayed; then the client retries everything it sent.
    let s = Stream::start(&lake, &[]);
    assert!(s.replayed() > 0, "nothing was left in the spool to replay");
    for body in &batches[..acked.len() + 1] {
        let (status, _) = post(&s.url, body.clone(), None).await;
        assert_eq!(status, 200);
    }
    s.stop();
    let rows = rating_rows(&lake);
    for b in &acked {
        for i in 0..25 {
            assert_eq!(rows.get(&format!("K{b}-{i}")), Some(&1), "K{b}-{i}");
        }
    }
    assert!(rows.values().all(|n| *n == 1));
    assert_eq!(rows.len(), (acked.len() + 1) * 25);
}

/// ticket_id → how many rows the lake holds for it.
fn ticket_rows(lake: &Path) -> HashMap<String, usize> {
    key_rows(lake, Table::Tickets)
}

/// One micro-batch (a ticket and its ratings: two tables), its stream killed after the 1st, 2nd,
/// ... step of the batch's commit: each time the lake shows none of it; the next start replays
/// the spool and commits it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_micro_batch_killed_at_any_step_of_its_commit_shows_none_of_it() {
    let (_d, lake) = lake_dir();
    let events = ndjson(&[
        ticket("T1", "network"),
        rating("R1", "T1", 5, "chat", "great"),
        rating("R2", "T1", 1, "email", "bad"),
    ]);
    let mut step = 1;
    loop {
        let mut s = Stream::start_with(&lake, &[], &[("DESKPULSE_CRASH_AT", step.to_string())]);
        let (status, _) = post(&s.url, events.clone(), None).await;
        assert_eq!(status, 200);
        let t = Instant::now();
        let crashed = loop {
            if s.child.try_wait().unwrap().is_some() {
                break true;
            }
            // The process may die while it answers.
            let h = async {
                let r = client().get(format!("{}/healthz", s.url)).send().await;
                r.ok()?.json::<Value>().await.ok()
            };
            if h.await.and_then(|h| h["in_lake"].as_u64()) >= Some(3) {
                break false;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "neither committed nor crashed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if !crashed {
            s.stop();
            break;
        }
        assert!(rating_rows(&lake).is_empty(), "killed at step {step}");
        assert!(ticket_rows(&lake).is_empty(), "killed at step {step}");
        step += 1;
        assert!(step < 20, "the commit never completes");
    }
    // A file per table, a Delta commit per table and the snapshot.
    assert!(step >= 5, "only {step} steps");
    assert_eq!(ticket_rows(&lake), HashMap::from([("T1".to_string(), 1)]));
    let ratings = rating_rows(&lake);
    assert_eq!(ratings.len(), 2);
    assert!(ratings.values().all(|n| *n == 1));
}

/// A batch ingest and the stream on one lake at once: the stream's micro-batches take turns with
/// the ingest's file commits (none fails), and every row of both is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_ingest_and_the_stream_write_one_lake_at_once() {
    let (d, lake) = lake_dir();
    let data = d.path().join("data");
    let g = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .args(["generate", "--tickets", "3000", "--seed", "4", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(g.status.success(), "{g:?}");
    let s = Stream::start(&lake, &["--flush-interval", "50ms"]);
    let mut ingest = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .arg("--lake")
        .arg(&lake)
        .arg("ingest")
        .args(["tickets", "interactions", "ratings"].map(|t| data.join(format!("{t}.csv"))))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sent = 0;
    let mut during = 0;
    loop {
        let running = ingest.try_wait().unwrap().is_none();
        let events: Vec<Value> = (0..10)
            .map(|i| rating(&format!("S{sent}-{i}"), "T1", 4, "chat", "ok"))
            .collect();
        assert_eq!(post(&s.url, ndjson(&events), None).await.0, 200);
        sent += 1;
        if running {
            during += 1;
        } else if sent > during + 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ingest.wait().unwrap().success());
    assert!(during > 5, "the ingest ended before the stream wrote");
    let t = Instant::now();
    while health(&s.url).await["in_lake"].as_u64() < Some(sent * 10) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the stream's events never reached the lake"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(health(&s.url).await["failed_batches"], 0);
    // Then micro-batches one at a time, each committed before the next is sent.
    for m in 0..2 * AUTO_COMPACT_FILES as u64 {
        let events: Vec<Value> = (0..10)
            .map(|i| rating(&format!("M{m}-{i}"), "T1", 4, "chat", "ok"))
            .collect();
        assert_eq!(post(&s.url, ndjson(&events), None).await.0, 200);
        sent += 1;
        while health(&s.url).await["in_lake"].as_u64() < Some(sent * 10) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "a micro-batch never committed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    s.stop();
    let ratings = rating_rows(&lake);
    assert!(ratings.values().all(|n| *n == 1));
    let streamed = ratings
        .keys()
        .filter(|k| k.starts_with('S') || k.starts_with('M'))
        .count();
    assert_eq!(streamed as u64, sent * 10);
    let generated = std::fs::read_to_string(data.join("ratings.csv")).unwrap();
    assert_eq!(ratings.len() - streamed, generated.lines().count() - 1);
    assert_eq!(ticket_rows(&lake).len(), 3000);

    // Micro-batches of new ratings are appends, and commits compact: this month's partition
    // took a file per micro-batch, yet never holds AUTO_COMPACT_FILES of them.
    let opened = Lake::open(&lake).unwrap();
    let month = format!("month={}", chrono::Utc::now().format("%Y-%m"));
    let in_month = |l: &Lake| {
        let files = l.files(Table::Ratings).unwrap();
        files.iter().filter(|f| f.partition() == month).count()
    };
    assert!((1..AUTO_COMPACT_FILES).contains(&in_month(&opened)));
    // `compact` leaves one file per partition and the same rows, and its clean-up leaves on
    // disk only the files the newest snapshot reads.
    let o = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .arg("--lake")
        .arg(&lake)
        .args(["compact", "--retain", "0s"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(rating_rows(&lake), ratings);
    assert_eq!(in_month(&opened), 1);
    let mut read: Vec<PathBuf> = Table::ALL
        .into_iter()
        .flat_map(|t| opened.files(t).unwrap())
        .map(|f| f.local_path().unwrap())
        .collect();
    read.sort();
    assert_eq!(parquet_under(&lake), read);
}

/// Every Parquet file of the lake's tables (not of its side directories), sorted.
fn parquet_under(lake: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = Table::ALL
        .into_iter()
        .map(|t| lake.join(t.name()))
        .collect();
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(std::fs::canonicalize(p).unwrap());
            }
        }
    }
    out.sort();
    out
}

/// A webhook that fails its first call, then records what it gets.
async fn flaky_webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    use axum::extract::State;
    use axum::http::StatusCode;
    type Got = Arc<Mutex<(u32, Vec<Value>)>>;
    async fn hook(
        State(got): State<Got>,
        headers: axum::http::HeaderMap,
        axum::Json(v): axum::Json<Value>,
    ) -> StatusCode {
        // Each alert carries its id as an idempotency key too, for receivers that dedupe there.
        let key = headers.get("idempotency-key").and_then(|k| k.to_str().ok());
        assert_eq!(key, v["alert_id"].as_str(), "{v}");
        let mut g = got.lock().unwrap();
        g.0 += 1;
        if g.0 == 1 {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        g.1.push(v);
        StatusCode::OK
    }
    let got: Got = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let out = alerts.clone();
    tokio::spawn(async move {
        loop {
            *out.lock().unwrap() = got.lock().unwrap().1.clone();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (url, alerts)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_gets_alerts_after_a_retry_and_a_dead_one_never_blocks_ingest() {
    let (_d, lake) = lake_dir();
    let (url, got) = flaky_webhook().await;
    let s = Stream::start(&lake, &["--webhook", &url]);
    let (status, _) = post(
        &s.url,
        ndjson(&[rating("W1", "T1", 1, "sms", "no reply")]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let t = Instant::now();
    while got.lock().unwrap().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the webhook never got the alert"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let alert = got.lock().unwrap()[0].clone();
    assert_eq!(
        (alert["kind"].as_str(), alert["rating_id"].as_str()),
        (Some("escalation"), Some("W1"))
    );
    assert_eq!(health(&s.url).await["webhook_delivered"], 1);
    s.stop();

    // A webhook nobody answers: 300 escalations are still acknowledged at once; the alerts are
    // all in the file, and the webhook queue stays bounded.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/hook", dead.local_addr().unwrap());
    drop(dead);
    let s = Stream::start(&lake, &["--webhook", &dead_url]);
    let lows: Vec<Value> = (0..300)
        .map(|i| rating(&format!("D{i}"), "T1", 1, "sms", ""))
        .collect();
    let (status, reply) = post(&s.url, ndjson(&lows), None).await;
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(300)));
    let h = health(&s.url).await;
    assert_eq!(h["alerts"], 300);
    s.stop();
    assert_eq!(alerts(&lake).len(), 301);
    assert_eq!(rating_rows(&lake).len(), 301);

    // Those the dead webhook never got stay in the outbox: the next start sends them (to a
    // webhook that answers now), each with the id the file has, and W1 (delivered) is not sent
    // again.
    let (url, got) = flaky_webhook().await;
    let s = Stream::start(&lake, &["--webhook", &url]);
    let t = Instant::now();
    while got.lock().unwrap().len() < 300 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "only {}",
            got.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop();
    let mut sent: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|a| a["alert_id"].to_string())
        .collect();
    sent.sort();
    sent.dedup();
    let mut want: Vec<String> = (0..300).map(|i| format!("\"escalation:e-D{i}\"")).collect();
    want.sort();
    assert_eq!(sent, want);
    // Once delivered they are done: a further start sends nothing.
    let (url, got) = flaky_webhook().await;
    let s = Stream::start(&lake, &["--webhook", &url]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.stop();
    assert!(got.lock().unwrap().is_empty());
}

/// The spool of a run killed at a chosen point, written as that run would have left it.
fn crashed_spool(lake: &Path, lines: &[String]) {
    let dir = lake.join("_stream/spool");
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("00000000000000000001.spool"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_lost_to_a_kill_is_raised_at_the_next_start_with_its_id() {
    let (_d, lake) = lake_dir();
    // Killed after the low rating K1 reached the spool and before its escalation did; and after
    // the escalation of K0 reached the outbox and before it was written anywhere.
    let k0 = json!({"kind": "escalation", "alert_id": "escalation:e-K0", "alerted_at": now(),
                    "event_id": "e-K0", "rating_id": "K0", "ticket_id": "T1", "agent": null,
                    "group": null, "category": null, "channel": "sms", "score_5": 1.0,
                    "comment": null, "rated_at": now()});
    crashed_spool(
        &lake,
        &[
            format!("E {}", rating("K1", "T1", 1, "sms", "still down")),
            format!("E {}", rating("K2", "T1", 5, "sms", "thanks")),
            format!("A {k0}"),
        ],
    );
    let s = Stream::start(&lake, &[]);
    assert_eq!(s.replayed(), 2);
    s.stop();
    let ids: Vec<Value> = alerts(&lake)
        .iter()
        .map(|a| a["alert_id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!("escalation:e-K0"), json!("escalation:e-K1")]
    );
    assert_eq!(rating_rows(&lake).len(), 2);
    // Both are done now: another start raises nothing again.
    let s = Stream::start(&lake, &[]);
    s.stop();
    assert_eq!(alerts(&lake).len(), 2);
    // A retry of K1 by the client is a repeat: no second alert either.
    let s = Stream::start(&lake, &[]);
    let (status, reply) = post(
        &s.url,
        ndjson(&[rating("K1", "T1", 1, "sms", "still down")]),
        None,
    )
    .await;
    assert_eq!(
        (status, reply["duplicates"].clone()),
        (200, json!(["e-K1"]))
    );
    s.stop();
    assert_eq!(alerts(&lake).len(), 2);
    let left = std::fs::read_dir(lake.join("_stream/spool"))
        .unwrap()
        .count();
    assert_eq!(
        left, 0,
        "nothing open: the crashed run's segment is gone too"
    );
}

#[test]
fn stdin_events_reach_the_lake_and_refused_lines_are_named() {
    let (_d, lake) = lake_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .args(["stream", "--stdin", "--lake"])
        .arg(&lake)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // T2 was resolved an hour before it was opened: stored, with a finding naming its event.
    let backwards = json!({"type": "ticket", "event_id": "t-T2", "ticket_id": "T2",
        "opened_at": "2026-03-02T10:00:00Z", "resolved_at": "2026-03-02T09:00:00Z",
        "updated_at": "2026-03-02T10:00:00Z", "channel": "chat"});
    let mut input = ndjson(&[
        ticket("T1", "Email"),
        rating("S1", "T1", 2, "phone", "slow"),
        backwards,
    ]);
    input.push_str("{\"type\":\"rating\",\"event_id\":\"s2\"}\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A rating event without a score is refused (the stream has no unrated count: an event
    // announces a rating that was given); the score is what it lacks first.
    assert!(
        stderr.contains("stdin line 4: refused (score_raw)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("3 accepted") && stdout.contains("3 events written"),
        "{stdout}"
    );
    assert_eq!(rating_rows(&lake).len(), 1);
    assert_eq!(alerts(&lake).len(), 1);
    let lake = Lake::open(&lake).unwrap();
    let mut findings = Vec::new();
    for f in lake.side_files("_findings").unwrap() {
        for b in f.read(None).unwrap() {
            let s = |n: &str| {
                b.column_by_name(n)
                    .unwrap()
                    .as_string::<i32>()
                    .value(0)
                    .to_string()
            };
            findings.push((s("source_file"), s("key"), s("column"), s("rule")));
        }
    }
    assert_eq!(
        findings,
        vec![(
            "stream:t-T2".to_string(),
            "T2".to_string(),
            "resolved_at".to_string(),
            "before_opened".to_string()
        )]
    );
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 2);
}

/// Reads what the server sends until it closes the connection (or `within` passes).
fn read_until_closed(socket: &mut std::net::TcpStream, within: Duration) -> (String, bool) {
    use std::io::Read;
    socket.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true);
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[test]
fn slow_and_idle_clients_are_closed_and_connections_are_limited() {
    use std::net::TcpStream;
    let (_d, lake) = lake_dir();
    let s = Stream::start(
        &lake,
        &[
            "--header-timeout",
            "1s",
            "--request-timeout",
            "1s",
            "--max-connections",
            "2",
        ],
    );
    let addr = s.url.strip_prefix("http://").unwrap().to_string();
    let body = ndjson(&[rating("S1", "T1", 4, "chat", "")]);
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );

    // Two idle connections hold both places: a third is not served...
    let mut idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut third = TcpStream::connect(&addr).unwrap();
    third.write_all(request.as_bytes()).unwrap();
    let (answer, _) = read_until_closed(&mut third, Duration::from_millis(400));
    assert!(answer.is_empty(), "served over the limit: {answer}");
    // ...until the header timeout closes the idle ones (nothing was sent on them).
    for socket in &mut idle {
        let (got, closed) = read_until_closed(socket, Duration::from_secs(5));
        assert!(closed && got.is_empty(), "an idle connection stayed open");
    }
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(third);

    // A drip-fed head is cut off by the header timeout.
    let mut drip = TcpStream::connect(&addr).unwrap();
    drip.write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let t = Instant::now();
    let mut closed = false;
    while t.elapsed() < Duration::from_secs(5) {
        if drip.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        let (_, eof) = read_until_closed(&mut drip, Duration::from_millis(200));
        if eof {
            closed = true;
            break;
        }
    }
    assert!(closed, "a drip-fed head kept its connection");

    // A drip-fed body gets 408 and the connection is closed; nothing of it is kept.
    let mut slow = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    for b in body.replace("S1", "S2").bytes() {
        if slow.write_all(&[b]).is_err() {
            break;
        }
        let (got, eof) = read_until_closed(&mut slow, Duration::from_millis(200));
        answer.push_str(&got);
        if eof {
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    s.stop();
    let rows = rating_rows(&lake);
    assert!(rows.contains_key("S1") && !rows.contains_key("S2"));
}

//! Event logs (`[event_log]` mappings): the generator's tickets written as a log of changes
//! (`generate --event-log`) and read back through its mapping give the generator's tickets,
//! field by field, and the same metric rows as the one-row-per-ticket export.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn deskpulse(args: &[&str]) -> String {
    let o = crate::common::succeeded(Command::new(env!("CARGO_BIN_EXE_deskpulse")).args(args));
    String::from_utf8(o.stdout).unwrap()
}

/// Two values equal, numbers to 1e-9 (a parallel sum may differ in its last digit).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn a_generated_event_log_gives_the_generators_tickets_and_the_same_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let out = deskpulse(&[
        "generate",
        "--tickets",
        "3000",
        "--seed",
        "11",
        "--event-log",
        "--out",
        &path(&data),
    ]);
    assert!(out.contains("ticket events"), "{out}");
    let (rows, log) = (
        path(&dir.path().join("rows")),
        path(&dir.path().join("log")),
    );
    let others = ["interactions.csv", "ratings.csv", "adoptions.csv"].map(|f| path(&data.join(f)));
    let tickets_csv = path(&data.join("tickets.csv"));
    let mut args = vec!["--lake", &rows, "ingest", &tickets_csv];
    args.extend(others.iter().map(String::as_str));
    deskpulse(&args);
    let mapping = path(&data.join("ticket_events.toml"));
    let events = path(&data.join("ticket_events.csv"));
    let report = deskpulse(&["--lake", &log, "ingest", "--mapping", &mapping, &events]);
    // Every event is read and accounted for: 3,000 tickets stored, the rest folded.
    assert!(
        report.contains("stored 3000, rejected 0, folded "),
        "{report}"
    );
    let mut args = vec!["--lake", &log, "ingest"];
    args.extend(others.iter().map(String::as_str));
    deskpulse(&args);
    // Every column of every ticket.
    let tickets = "SELECT * FROM tickets ORDER BY ticket_id";
    let want = deskpulse(&["--lake", &rows, "sql", "--format", "csv", tickets]);
    assert_eq!(want.lines().count(), 3001);
    assert_eq!(
        deskpulse(&["--lake", &log, "sql", "--format", "csv", tickets]),
        want
    );
    // The metric rows built on them.
    for metric in ["channel_satisfaction", "kpis", "pair_summary", "backlog"] {
        let read = |lake: &str| -> Value {
            serde_json::from_str(&deskpulse(&[
                "--lake",
                lake,
                "metrics",
                metric,
                "--by-week",
                "--format",
                "json",
            ]))
            .unwrap()
        };
        let (a, b) = (read(&rows), read(&log));
        assert!(a.as_array().is_some_and(|r| !r.is_empty()), "{metric}: {a}");
        assert!(same(&a, &b), "{metric} differs");
    }
}

#[test]
fn generate_writes_the_event_log_docs_commands_shows() {
    let dir = tempfile::tempdir().unwrap();
    let o = crate::common::succeeded(
        Command::new(env!("CARGO_BIN_EXE_deskpulse"))
            .current_dir(dir.path())
            .args([
                "generate",
                "--tickets",
                "1000",
                "--seed",
                "42",
                "--event-log",
                "--out",
                "g",
            ]),
    );
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "wrote 1000 tickets, 3180 interactions, 282 ratings, 1 adoptions to g\n\
         wrote 4685 ticket events to g/ticket_events.csv (ingest it with --mapping \
         g/ticket_events.toml)\n"
    );
}

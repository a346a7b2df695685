//! The real binary, end to end: exit codes, summaries, an ingest killed at every step of its
//! commit, the demo, and generated data ingesting without a reject.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use deskpulse::lake::Lake;
use deskpulse::model::Table;

fn deskpulse(lake: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .arg("--lake")
        .arg(lake)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// Ingests the repository's sample (sample-data/, 3,000 generated tickets) into `lake`.
fn ingest_sample(lake: &Path) {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    let mut args = vec!["ingest".to_string()];
    args.extend(
        deskpulse::generate::files(&sample)
            .iter()
            .map(|f| f.display().to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(deskpulse(lake, &args).status.success());
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every ticket as (id, status, updated_at), sorted.
fn tickets(lake: &Path) -> Vec<(String, String, i64)> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    let lake = Lake::open(lake).unwrap();
    let mut out = Vec::new();
    for b in lake
        .scan(Table::Tickets, Some(&["ticket_id", "status", "updated_at"]))
        .unwrap()
    {
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let (id, status, updated) = (col("ticket_id"), col("status"), col("updated_at"));
        for i in 0..b.num_rows() {
            out.push((
                id.as_string::<i32>().value(i).to_string(),
                status.as_string::<i32>().value(i).to_string(),
                updated.as_primitive::<TimestampMicrosecondType>().value(i),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn ingest_prints_counts_and_exits_zero_when_it_stored_what_was_valid() {
    let dir = tempfile::tempdir().unwrap();
    let o = deskpulse(dir.path(), &["ingest", &fixture("tickets_broken.csv")]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    // T5, resolved before it was opened, is kept: a finding, not a reject.
    assert!(
        out.contains(
            "tickets: read 9, stored 3, rejected 6; findings 1 (kept, see `deskpulse check`)"
        ),
        "{out}"
    );
    assert!(out.contains("3 rows stored, 6 rejected"), "{out}");
    assert!(out.contains("; 1 finding in kept rows"), "{out}");
    let r = deskpulse(dir.path(), &["rejects"]);
    let listing = stdout(&r);
    assert!(
        listing.contains("tickets_broken.csv:7: category: invalid UTF-8"),
        "{listing}"
    );
    assert!(listing.contains("6 rejects"), "{listing}");
}

#[test]
fn a_refused_file_exits_2_names_the_column_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = deskpulse(
        dir.path(),
        &["ingest", &fixture("tickets_missing_column.csv")],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tickets_missing_column.csv") && err.contains("'opened_at'"),
        "{err}"
    );
    assert!(tickets(dir.path()).is_empty());
    let o = deskpulse(
        dir.path(),
        &["ingest", "--tz", "Mars/Olympus", &fixture("tickets_v1.csv")],
    );
    assert_eq!(o.status.code(), Some(2));
}

/// A second version of a generated tickets export: every ticket updated a day later and
/// closed, and every third one opened 40 days later (so it moves to another month partition).
fn reversion(from: &Path, to: &Path) {
    let shift = |s: &str, days: i64| {
        let t = chrono::DateTime::parse_from_rfc3339(s).unwrap() + chrono::Duration::days(days);
        t.to_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    let mut r = csv::Reader::from_path(from).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (opened, updated, status) = (col("opened_at"), col("updated_at"), col("status"));
    let mut w = csv::Writer::from_path(to).unwrap();
    w.write_record(&headers).unwrap();
    for (n, rec) in r.records().enumerate() {
        let mut rec: Vec<String> = rec.unwrap().iter().map(str::to_string).collect();
        rec[updated] = shift(&rec[updated], 1);
        rec[status] = "closed".into();
        if n % 3 == 0 {
            rec[opened] = shift(&rec[opened], 40);
        }
        w.write_record(&rec).unwrap();
    }
    w.flush().unwrap();
}

#[test]
fn a_snapshot_the_lake_does_not_have_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    assert!(
        deskpulse(&lake, &["ingest", &fixture("tickets_v1.csv")])
            .status
            .success()
    );
    let o = deskpulse(&lake, &["--as-of-version", "99", "sql", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no snapshot version 99") && err.contains("history"),
        "{err}"
    );
    let early = ["--as-of-time", "2001-01-01T00:00:00Z", "sql", "SELECT 1"];
    assert_eq!(deskpulse(&lake, &early).status.code(), Some(2));
    let first = [
        "--as-of-version",
        "1",
        "sql",
        "SELECT COUNT(*) FROM tickets",
    ];
    assert!(deskpulse(&lake, &first).status.success());
    // history says what each snapshot was.
    let history = stdout(&deskpulse(&lake, &["history"]));
    assert!(
        history.contains("      1  ") && history.contains("tickets_v1.csv"),
        "{history}"
    );
}

/// `--lake lake`, as the README writes it: rows sent again replace the lake's, never doubled
/// (the log names files by absolute path; a relative root once matched none of them).
#[test]
fn a_lake_named_by_a_relative_path_replaces_rows_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/tickets.csv");
    let text = std::fs::read_to_string(&sample).unwrap();
    let again: String = text.lines().take(50).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("tickets_again.csv"), again).unwrap();
    let run = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_deskpulse"))
            .current_dir(dir.path())
            .args(["--lake", "lake", "ingest"])
            .arg(file)
            .output()
            .unwrap()
    };
    assert!(run(&sample).status.success());
    let o = run(Path::new("tickets_again.csv"));
    assert!(o.status.success(), "{o:?}");
    assert!(
        stdout(&o).contains("(49 earlier versions replaced)"),
        "{}",
        stdout(&o)
    );
    assert_eq!(tickets(&dir.path().join("lake")).len(), 3000);
}

/// The probe's case: an ingest that re-versions tickets across every month partition (and
/// moves some between months), killed after its 1st, 2nd, ... step (each new file written,
/// the Delta commit, the snapshot about to be published). Every time, readers see the lake as
/// it was (each ticket once, all on their old version); the next run, from the leftovers of all
/// the killed ones, completes it.
#[test]
fn an_ingest_killed_at_any_step_shows_none_of_it_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, lake) = (dir.path().join("data"), dir.path().join("lake"));
    let g = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .args(["generate", "--tickets", "600", "--seed", "9", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(g.status.success(), "{g:?}");
    let v1 = data.join("tickets.csv");
    let v2 = data.join("tickets_v2.csv");
    reversion(&v1, &v2);
    let v1 = v1.display().to_string();
    let v2 = v2.display().to_string();
    assert!(deskpulse(&lake, &["ingest", &v1]).status.success());
    let before = tickets(&lake);
    assert_eq!(before.len(), 600);

    let mut step = 1;
    loop {
        let run = killed_at(step, &lake, &["ingest", &v2]);
        if run.status.success() {
            break;
        }
        assert!(
            String::from_utf8_lossy(&run.stderr).contains("simulated crash"),
            "{run:?}"
        );
        assert_eq!(tickets(&lake), before, "killed at step {step}");
        step += 1;
        assert!(step < 100, "the commit never completes");
    }
    // 14 months of files, the tickets table's commit and the snapshot at least.
    assert!(step > 15, "only {step} steps");
    let after = tickets(&lake);
    assert_eq!(after.len(), 600);
    assert!(after.iter().all(|(_, status, _)| status == "closed"));
    let clean = dir.path().join("clean");
    for f in [&v1, &v2] {
        assert!(deskpulse(&clean, &["ingest", f]).status.success());
    }
    assert_eq!(after, tickets(&clean));
    assert!(!lake.join("_staging").read_dir().unwrap().any(|_| true));

    // New tickets are appended (two files a month), and a compaction killed at any step
    // leaves the rows as they were; the one that completes leaves a file a month.
    let text = std::fs::read_to_string(&v1).unwrap();
    let mut lines = text.lines();
    let mut new = format!("{}\n", lines.next().unwrap());
    for l in lines {
        new.push_str(&format!("N{l}\n"));
    }
    let new_file = data.join("tickets_new.csv");
    std::fs::write(&new_file, new).unwrap();
    let o = deskpulse(&lake, &["ingest", &new_file.display().to_string()]);
    assert!(o.status.success(), "{o:?}");
    let files = || {
        Lake::open(&lake)
            .unwrap()
            .files(Table::Tickets)
            .unwrap()
            .len()
    };
    let (appended, months) = (files(), tickets_months(&lake));
    assert!(
        appended > months && months > 10,
        "{appended} files, {months} months"
    );
    let before = tickets(&lake);
    let mut step = 1;
    loop {
        let run = killed_at(step, &lake, &["compact", "--retain", "0s"]);
        if run.status.success() {
            break;
        }
        assert_eq!(tickets(&lake), before, "compaction killed at step {step}");
        assert_eq!(files(), appended, "compaction killed at step {step}");
        step += 1;
        assert!(step < 100, "the compaction never completes");
    }
    assert!(step > 10, "only {step} steps");
    assert_eq!(tickets(&lake), before);
    assert_eq!(files(), months);
}

/// Runs the binary on `lake`, aborting it at the `step`-th step of its commits.
fn killed_at(step: usize, lake: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .env("DESKPULSE_CRASH_AT", step.to_string())
        .arg("--lake")
        .arg(lake)
        .args(args)
        .output()
        .unwrap()
}

/// The month partitions of the tickets table.
fn tickets_months(lake: &Path) -> usize {
    let files = Lake::open(lake).unwrap().files(Table::Tickets).unwrap();
    let months: std::collections::BTreeSet<_> =
        files.iter().map(|f| f.partition().to_string()).collect();
    months.len()
}

#[test]
fn generated_exports_ingest_without_a_reject_and_reingest_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lake = dir.path().join("lake");
    let g = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .args([
            "generate",
            "--tickets",
            "2000",
            "--seed",
            "5",
            "--out",
            &data.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(g.status.success(), "{g:?}");
    let files: Vec<String> = [
        "tickets.csv",
        "interactions.csv",
        "ratings.csv",
        "adoptions.csv",
    ]
    .iter()
    .map(|f| data.join(f).display().to_string())
    .collect();
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    let o = deskpulse(&lake, &args);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains(" 0 rejected"), "{}", stdout(&o));
    let l = Lake::open(&lake).unwrap();
    assert_eq!(l.row_count(Table::Tickets).unwrap(), 2000);
    assert_eq!(l.row_count(Table::Adoptions).unwrap(), 1);
    let lines = |f: &str| {
        std::fs::read_to_string(data.join(f))
            .unwrap()
            .lines()
            .count() as u64
            - 1
    };
    assert_eq!(
        l.row_count(Table::Interactions).unwrap(),
        lines("interactions.csv")
    );
    assert_eq!(l.row_count(Table::Ratings).unwrap(), lines("ratings.csv"));
    let before = tickets(&lake);
    let again = deskpulse(&lake, &args);
    assert!(stdout(&again).contains("4 skipped"), "{}", stdout(&again));
    assert_eq!(tickets(&lake), before);
}

#[test]
fn demo_generates_the_sample_when_missing_and_reports_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let sample: PathBuf = dir.path().join("sample-data");
    let reports = dir.path().join("reports");
    let lake = dir.path().join("lake");
    let o = deskpulse(
        &lake,
        &[
            "demo",
            "--sample",
            &sample.display().to_string(),
            // The committed sample's size keeps the test quick (the demo's default is 25,000).
            "--tickets",
            "3000",
            "--out",
            &reports.display().to_string(),
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("generated"), "{out}");
    assert!(out.contains("tickets           3000 rows"), "{out}");
    assert!(sample.join("tickets.csv").exists());
    // The demo ends with both reports of the sample's last week, and says where they are.
    let weekly = reports.join("2026-W47/index.html");
    assert!(
        out.contains(&format!("weekly report: {}", weekly.display())),
        "{out}"
    );
    assert!(out.contains(&format!(
        "dashboard:     {}",
        reports.join("dashboard.html").display()
    )));
    assert!(weekly.exists() && reports.join("dashboard.html").exists());
    assert!(reports.join("2026-W47/charts/channel_csat.png").exists());

    // `report` on its own, for a chosen week; a bad week is a usage error.
    let other = dir.path().join("other");
    let o = deskpulse(
        &lake,
        &[
            "report",
            "weekly",
            "--week",
            "2026-W46",
            "--out",
            &other.display().to_string(),
        ],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).starts_with(&format!(
        "wrote {}",
        other.join("2026-W46/index.html").display()
    )));
    let dash = other.join("d.html");
    let o = deskpulse(
        &lake,
        &[
            "report",
            "dashboard",
            "--week",
            "2026-W46",
            "--out",
            &dash.display().to_string(),
        ],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(
        std::fs::read_to_string(&dash)
            .unwrap()
            .contains("Week 2026-W46")
    );
    // A bare file name is written in the current directory (it once failed to fsync "").
    let o = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .current_dir(&other)
        .arg("--lake")
        .arg(&lake)
        .args([
            "report",
            "dashboard",
            "--week",
            "2026-W46",
            "--out",
            "bare.html",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(other.join("bare.html")).unwrap(),
        std::fs::read_to_string(&dash).unwrap()
    );
    let o = deskpulse(&lake, &["report", "weekly", "--week", "2026-47"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an ISO week"));
}

#[test]
fn ttr_shift_runs_on_the_servicenow_sample_and_refuses_empty_windows() {
    let dir = tempfile::tempdir().unwrap();
    let sn = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/servicenow_incident_events_sample.csv");
    assert!(
        deskpulse(
            dir.path(),
            &[
                "ingest",
                "--profile",
                "servicenow",
                &sn.display().to_string()
            ]
        )
        .status
        .success()
    );
    let o = deskpulse(dir.path(), &["ttr-shift", "--launch", "2016-08-01"]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("decomposition: total"), "{out}");
    // Almost every incident of the sample is from March to May 2016: after an August launch only
    // a few remain, and the report says so instead of hiding it behind a percentage.
    assert!(
        out.contains("WARNING small sample: the after window has only 3 resolved tickets"),
        "{out}"
    );
    assert!(out.contains("no ratings"), "{out}");
    // A launch after the data ends leaves the after window empty: refused, with the counts.
    let o = deskpulse(dir.path(), &["ttr-shift", "--launch", "2019-01-01"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("window has 0 resolved tickets"), "{err}");
    let o = deskpulse(
        dir.path(),
        &["ttr-shift", "--launch", "2016-08-01", "--window", "soon"],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn followups_write_target_lists_record_them_and_reject_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_sample(&lake);
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let run = |extra: &[&str]| {
        let mut a = vec!["followups", "--window", "7d", "--as-of", "2026-11-23"];
        a.extend_from_slice(extra);
        deskpulse(&lake, &a)
    };
    let first = run(&["--out", &out_s, "--record"]);
    assert!(first.status.success(), "{first:?}");
    let csv_text = std::fs::read_to_string(out.join("followups.csv")).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("followups.json")).unwrap())
            .unwrap();
    let n = json.as_array().unwrap().len();
    assert!(n > 0);
    assert_eq!(csv_text.lines().count(), n + 1);
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains(&format!("recorded {n} surveys")), "{err}");
    // Within the cooldown, the same people are not selected again.
    let second = run(&["--dry-run", "--format", "json"]);
    assert!(second.status.success());
    let again: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert!(again.as_array().unwrap().is_empty(), "{again}");
    assert!(String::from_utf8_lossy(&second.stderr).contains("0 targets of"));
    assert_eq!(run(&["--window", "a week"]).status.code(), Some(2));
    let esc = deskpulse(
        &lake,
        &[
            "escalations",
            "--window",
            "7d",
            "--as-of",
            "2026-11-23",
            "--format",
            "csv",
        ],
    );
    assert!(esc.status.success());
    assert!(stdout(&esc).starts_with("rated_at,assignment_group,agent,ticket_id"));
}

#[test]
fn sentiment_scores_each_line_in_order_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let texts = dir.path().join("texts.txt");
    std::fs::write(
        &texts,
        "Quick and friendly, thanks!\nterrible, still broken\n\n",
    )
    .unwrap();
    let o = deskpulse(
        dir.path(),
        &["sentiment", texts.to_str().unwrap(), "--scores"],
    );
    assert!(o.status.success());
    let scores: Vec<f64> = stdout(&o).lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(scores.len(), 3);
    assert!(
        scores[0] > 0.5 && scores[1] < -0.5 && scores[2] == 0.0,
        "{scores:?}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("scored 3 texts in "), "{err}");
}

/// A one-row-per-ticket export whose timings contradict each other (tickets 2 and 6 were resolved
/// before their first response, the earliest time the export has), with ratings in the same file.
#[test]
fn contradictory_timings_keep_their_ratings_and_check_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("support_tickets.csv");
    let o = deskpulse(
        dir.path(),
        &[
            "ingest",
            "--mapping",
            &fixture("support_tickets.tickets.toml"),
            &file,
        ],
    );
    assert!(o.status.success(), "{o:?}");
    // Ticket 4 has no time at all: a reject. Tickets 2 and 6: kept, with findings.
    assert!(
        stdout(&o).contains("tickets: read 7, stored 6, rejected 1; findings 2"),
        "{}",
        stdout(&o)
    );
    let o = deskpulse(
        dir.path(),
        &[
            "ingest",
            "--mapping",
            &fixture("support_tickets.ratings.toml"),
            &file,
        ],
    );
    // Tickets 4 and 5 nobody rated: unrated, not rejected.
    assert!(
        stdout(&o).contains("ratings: read 7, stored 5, rejected 0, unrated 2"),
        "{}",
        stdout(&o)
    );

    // Every rating of the file counts, those of tickets 2 and 6 included; only their TTR is left
    // out: chat has ticket 1 (5) and 2 (2), email 3 (4), phone 7 (3), social 6 (1).
    let o = deskpulse(
        dir.path(),
        &[
            "metrics",
            "channel_satisfaction",
            "--from",
            "2023-05-01",
            "--to",
            "2023-07-01",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<(String, u64, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap().to_string(),
                r["ratings"].as_u64().unwrap(),
                r["satisfied"].as_u64().unwrap(),
                r["ttr_left_out"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("chat".into(), 2, 1, 1),
            ("email".into(), 1, 1, 0),
            ("phone".into(), 1, 0, 0),
            ("social".into(), 1, 0, 1),
        ]
    );

    // check names the contradicting tickets with file and line, and fails a run on request.
    let o = deskpulse(dir.path(), &["check", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let find = |rule: &str| {
        checks
            .iter()
            .find(|c| c["check"] == rule)
            .unwrap_or_else(|| panic!("no {rule} in {checks:?}"))
    };
    let before = find("before_opened");
    assert_eq!(before["count"], 2);
    assert_eq!(before["item"], "resolved_at");
    let examples = before["examples"].as_str().unwrap();
    assert!(
        examples.contains("support_tickets.csv:3 2 resolved_at=2023-06-01T08:30:00Z")
            && examples.contains("support_tickets.csv:7 6 resolved_at=2023-06-01T23:00:00Z"),
        "{examples}"
    );
    assert_eq!(find("rating_before_opened")["count"], 2);
    assert_eq!(find("rejects")["count"], 1);
    assert_eq!(find("in_future")["count"], 0);
    let table = stdout(&deskpulse(dir.path(), &["check"]));
    assert!(
        table.contains("before_opened tickets.resolved_at"),
        "{table}"
    );

    let o = deskpulse(dir.path(), &["check", "--fail-on", "in_future", "orphan"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = deskpulse(
        dir.path(),
        &["check", "--fail-on", "orphan", "before_opened"],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("check failed: before_opened: 2"),
        "{o:?}"
    );
    let o = deskpulse(dir.path(), &["check", "--fail-on", "typo"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

/// An event log read as one row per ticket (the change time mapped to `opened_at`) is loud: the
/// ingest warns, `check` names the tickets, and a script can stop on it.
#[test]
fn an_event_log_read_as_tickets_warns_and_check_can_fail_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tickets_log.csv");
    std::fs::write(
        &log,
        "ticket_id,opened_at,status\n\
         SR1,2026-03-02T09:00:00Z,Queued\n\
         SR1,2026-03-02T11:00:00Z,Accepted\n\
         SR2,2026-03-02T12:00:00Z,Queued\n\
         SR1,2026-03-03T16:00:00Z,Completed\n",
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let o = deskpulse(&lake, &["ingest", &log.display().to_string()]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        stdout(&o).contains("warning: 1 tickets have rows with different opened_at"),
        "{}",
        stdout(&o)
    );
    let o = deskpulse(&lake, &["check", "--fail-on", "opened_at_changed"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).contains("tickets_log.csv:3 SR1 opened_at=2026-03-02T11:00:00Z"),
        "{}",
        stdout(&o)
    );
}

/// A reader that stops early (`deskpulse sql ... | head -1`) ends the command quietly, as Unix
/// tools do: no panic, exit 0.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .arg("--lake")
        .arg(dir.path())
        .args([
            "sql",
            "SELECT * FROM generate_series(1, 2000000)",
            "--format",
            "csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "value");
    // The pipe closes here, with most of the rows unread.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// DataFusion's settings come from DATAFUSION_* variables, the number of partitions included
/// (the way to give a cluster's client more tasks, docs/scaling-out.md).
#[test]
fn datafusion_settings_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let setting = |env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskpulse"));
        cmd.env_remove("DATAFUSION_EXECUTION_TARGET_PARTITIONS");
        if let Some(v) = env {
            cmd.env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", v);
        }
        let o = cmd
            .arg("--lake")
            .arg(dir.path())
            .args([
                "sql",
                "SELECT value FROM information_schema.df_settings \
                 WHERE name = 'datafusion.execution.target_partitions'",
                "--format",
                "csv",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        stdout(&o).lines().map(String::from).collect::<Vec<_>>()
    };
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(setting(None), ["value".to_string(), cores.to_string()]);
    assert_eq!(setting(Some("7")), ["value", "7"]);
}

#[test]
fn a_week_outside_years_1_to_9999_is_a_usage_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for week in ["262143-W01", "0000-W01"] {
        let o = deskpulse(dir.path(), &["report", "weekly", "--week", week]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{week}: {stderr}");
        assert!(
            stderr.contains("the year must be from 1 to 9999"),
            "{stderr}"
        );
    }
}

/// `-` reads standard input, and a named pipe is read once (it was refused as empty, and a FIFO
/// hung: ingest read it twice, for its hash and for its rows).
#[test]
fn standard_input_and_a_named_pipe_are_ingested() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read(fixture("tickets_v1.csv")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
        .arg("--lake")
        .arg(dir.path())
        .args(["ingest", "--table", "tickets", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&csv).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{o:?}");
    let rows = tickets(dir.path()).len();
    assert!(
        rows > 0 && stdout(&o).contains(&format!("stored {rows}")),
        "{}",
        stdout(&o)
    );

    let fifo = dir.path().join("tickets.csv");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let writer = {
        let fifo = fifo.clone();
        let csv = std::fs::read(fixture("tickets_v2.csv")).unwrap();
        std::thread::spawn(move || std::fs::write(fifo, csv).unwrap())
    };
    let other = tempfile::tempdir().unwrap();
    let o = deskpulse(other.path(), &["ingest", fifo.to_str().unwrap()]);
    writer.join().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("tickets: read"), "{}", stdout(&o));
    assert!(!tickets(other.path()).is_empty());
}

#[test]
fn predict_prints_its_validation_as_json_and_publishes_nothing_it_cannot_back() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_sample(&lake);
    let o = deskpulse(
        &lake,
        &["predict", "--as-of", "2026-11-30", "--format", "json"],
    );
    assert!(o.status.success(), "{o:?}");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "auc",
        "auc_low",
        "auc_high",
        "brier",
        "published",
        "train_tickets",
        "validation_tickets",
        "predicted_tickets",
    ] {
        assert!(j.get(key).is_some(), "{key} missing: {j}");
    }
    let n = |k: &str| j[k].as_u64().unwrap();
    assert_eq!(
        n("train_tickets") + n("validation_tickets"),
        n("rated_tickets")
    );
    // The 3,000-ticket sample's AUC interval is too wide to clear the margin: nothing published.
    let (low, high) = (
        j["auc_low"].as_f64().unwrap(),
        j["auc_high"].as_f64().unwrap(),
    );
    assert!(low <= 0.55 && high > low, "{j}");
    assert_eq!(j["published"], false);
    assert_eq!(n("predicted_tickets"), 0);
    let table = deskpulse(&lake, &["predict", "--as-of", "2026-11-30"]);
    let text = stdout(&table);
    assert!(
        text.contains("not published:") && text.contains("nothing is predicted"),
        "{text}"
    );
    assert!(text.contains("Calibration on the validation tickets") && text.contains("Drivers"));
    // --record writes nothing without a published model, and says so.
    let record = deskpulse(&lake, &["predict", "--as-of", "2026-11-30", "--record"]);
    assert!(record.status.success(), "{record:?}");
    let said = String::from_utf8_lossy(&record.stderr);
    assert!(
        said.contains("nothing recorded: no model was published"),
        "{said}"
    );
    let predictions = Lake::open(&lake).unwrap().row_count(Table::Predictions);
    assert_eq!(predictions.unwrap(), 0);
    let csv = deskpulse(&lake, &["predict", "--format", "csv"]);
    assert_eq!(csv.status.code(), Some(2));
}

/// The sample's figures docs/commands.md shows: each command as the page gives it, its output
/// (or the lines the page quotes of it) found verbatim on the page.
#[test]
fn the_committed_sample_gives_the_figures_the_command_reference_shows() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands.md"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_sample(&lake);
    let run = |args: &[&str]| {
        let o = deskpulse(&lake, args);
        assert!(o.status.success(), "{args:?}: {o:?}");
        o
    };
    let whole = |args: &[&str]| {
        let out = stdout(&run(args));
        assert!(docs.contains(out.trim_end()), "not on the page:\n{out}");
    };
    whole(&[
        "sql",
        "SELECT channel, ratings, ROUND(csat, 3) AS csat, ROUND(csat_low, 3) AS low,
    ROUND(csat_high, 3) AS high, ROUND(csat_adjusted, 3) AS adjusted,
    ROUND(response_rate, 3) AS response_rate, ROUND(median_frt_seconds) AS median_frt_s
    FROM channel_satisfaction ORDER BY csat DESC",
        "--from",
        "2025-11-24",
        "--to",
        "2026-11-23",
    ]);
    whole(&[
        "sql",
        "SELECT period, channel, ratings, ROUND(csat,3) AS csat, ROUND(csat_low,3) AS low,
    ROUND(csat_high,3) AS high FROM channel_satisfaction WHERE period = '2026-W47' ORDER BY channel",
    ]);
    whole(&[
        "sql",
        "SELECT dimension, value, pairs, ROUND(mean_pair_score,1) AS score,
    ROUND(mean_sentiment_delta,2) AS mood_change, hotspots FROM pair_summary
    WHERE dimension = 'responder_role' OR value IN ('agent-01','agent-04','agent-10')
    ORDER BY dimension, value",
    ]);
    whole(&[
        "sql",
        "SELECT period, opened, resolved, ROUND(median_frt_seconds) AS frt_s,
    ROUND(median_ttr_seconds/3600,1) AS ttr_h, ROUND(fcr_rate,3) AS fcr, ROUND(reopen_rate,3) AS reopen,
    ROUND(sla_rate,3) AS sla, ROUND(csat,3) AS csat FROM kpis WHERE period >= '2026-W44' ORDER BY period",
    ]);
    whole(&["ttr-shift"]);
    // The page quotes some lines of the longer outputs, with "..." for the rest.
    let quoted = |out: &str, lines: std::ops::Range<usize>| {
        for line in out.lines().skip(lines.start).take(lines.len()) {
            assert!(docs.contains(line), "not on the page: {line}");
        }
    };
    let followups = run(&[
        "followups",
        "--window",
        "7d",
        "--as-of",
        "2026-11-23",
        "--dry-run",
    ]);
    quoted(&String::from_utf8_lossy(&followups.stderr), 0..1);
    let targets = stdout(&followups);
    quoted(&targets, 0..3);
    let same_issue: Vec<&str> = targets
        .lines()
        .filter(|l| l.contains("same_issue"))
        .collect();
    quoted(&same_issue[..3].join("\n"), 0..3);
    let escalations = run(&[
        "escalations",
        "--window",
        "7d",
        "--as-of",
        "2026-11-23",
        "--format",
        "csv",
    ]);
    quoted(&stdout(&escalations), 0..3);
    // predict on the sample: the interval the page gives, and nothing published.
    let predict = run(&["predict", "--as-of", "2026-11-30", "--format", "json"]);
    let j: serde_json::Value = serde_json::from_slice(&predict.stdout).unwrap();
    let r3 = |k: &str| format!("{:.3}", j[k].as_f64().unwrap());
    assert_eq!(
        (r3("auc_low"), r3("auc_high")),
        ("0.340".into(), "0.585".into())
    );
    assert_eq!(j["validation_tickets"], 172);
    assert!(docs.contains("the validation holds 172 ratings, its interval is 0.340–0.585"));
}

/// The `compact` example of docs/commands.md, made as the page says: the sample's lake, then
/// twenty files of 100 new tickets each (the sample's first 2,000, `INC` renamed `NEW`).
#[test]
fn the_compact_example_gives_the_output_the_command_reference_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/commands.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    ingest_sample(&lake);
    let sample = std::fs::read_to_string(root.join("sample-data/tickets.csv")).unwrap();
    let mut lines = sample.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.take(2000).collect();
    let mut args = vec!["ingest".to_string()];
    for (i, chunk) in rows.chunks(100).enumerate() {
        let path = dir.path().join(format!("tickets_{:02}.csv", i + 1));
        let body: String = chunk
            .iter()
            .map(|l| format!("NEW{}\n", l.strip_prefix("INC").unwrap()))
            .collect();
        std::fs::write(&path, format!("{header}\n{body}")).unwrap();
        args.push(path.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(deskpulse(&lake, &args).status.success());
    // The size of the files deleted depends on the paths `_manifest` records (here a temporary
    // directory's), so it is the one figure not compared.
    let docs = without_sizes(&docs);
    let runs: [&[&str]; 2] = [&["compact"], &["compact", "--retain", "0s"]];
    for compact in runs {
        let out = deskpulse(&lake, compact);
        assert!(out.status.success(), "{out:?}");
        let out = without_sizes(stdout(&out).trim_end());
        assert!(docs.contains(&out), "not on the page:\n{out}");
    }
}

/// `text` with every size in MiB (`(0.5 MiB)`) blanked.
fn without_sizes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(end) = rest.find(" MiB)") {
        let start = rest[..end].rfind('(').map_or(end, |s| s + 1);
        out.push_str(&rest[..start]);
        out.push_str("_ MiB)");
        rest = &rest[end + " MiB)".len()..];
    }
    out.push_str(rest);
    out
}

/// Predictions another tool made: a probability outside 0..1, a word for a number and a
/// fractional count are refused with line, column and reason; the good row is stored. A
/// `models*` file is refused as a whole: models are written by `predict --record`.
#[test]
fn ingested_predictions_refuse_what_is_not_a_probability() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let file = dir.path().join("predictions.csv");
    std::fs::write(
        &file,
        "ticket_id,model_id,predicted_at,p_satisfied,validation_bias,validation_tickets\n\
         T1,zd,2026-11-23T00:00:00Z,0.8,0.01,300\n\
         T2,zd,2026-11-23T00:00:00Z,1.5,0.01,300\n\
         T3,zd,2026-11-23T00:00:00Z,high,0.01,300\n\
         T4,zd,2026-11-23T00:00:00Z,0.4,0.01,2.5\n",
    )
    .unwrap();
    let o = deskpulse(&lake, &["ingest", &file.display().to_string()]);
    assert!(o.status.success(), "{o:?}");
    let l = Lake::open(&lake).unwrap();
    assert_eq!(l.row_count(Table::Predictions).unwrap(), 1);
    let rejects: Vec<(u64, Option<String>, String)> = l
        .rejects()
        .unwrap()
        .into_iter()
        .map(|r| (r.line, r.column, r.reason))
        .collect();
    assert_eq!(
        rejects,
        [
            (
                3,
                Some("p_satisfied".to_string()),
                "p_satisfied 1.5 is not between 0 and 1".to_string()
            ),
            (
                4,
                Some("p_satisfied".to_string()),
                "'high' is not a number".to_string()
            ),
            (
                5,
                Some("validation_tickets".to_string()),
                "'2.5' is not a count".to_string()
            ),
        ]
    );
    let models = dir.path().join("models.csv");
    std::fs::write(
        &models,
        "model_id,predicted_at,spec\nm,2026-11-23T00:00:00Z,{}\n",
    )
    .unwrap();
    let o = deskpulse(&lake, &["ingest", &models.display().to_string()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("models are written by `deskpulse predict --record`"),
        "{said}"
    );
}

/// The Freshservice example of docs/import-profiles.md, run as written: every output is on the
/// page verbatim, and what the README quotes of it too.
#[test]
fn the_freshservice_fixtures_give_what_the_profile_page_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/import-profiles.md")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_deskpulse"))
            .current_dir(root)
            .arg("--lake")
            .arg(&lake)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
        stdout(&o).replace(&lake.display().to_string(), "lake")
    };
    let on_page = |out: String| assert!(docs.contains(out.trim_end()), "not on the page:\n{out}");
    let in_both = |out: String| {
        assert!(readme.contains(out.trim_end()), "not in the README:\n{out}");
        on_page(out)
    };
    in_both(run(&[
        "ingest",
        "--profile",
        "freshservice",
        "tests/fixtures/freshservice_tickets.json",
        "tests/fixtures/freshservice_conversations.json",
        "tests/fixtures/freshservice_csat_responses.ndjson",
    ]));
    on_page(run(&[
        "sql",
        "SELECT ticket_id, status, priority, priority_raw, channel, channel_raw, category, \
         resolved_at FROM tickets ORDER BY ticket_id",
    ]));
    in_both(run(&[
        "sql",
        "SELECT rating_id, ticket_id, score_raw, scale, score_5, comment FROM ratings ORDER BY \
         rating_id",
    ]));
    on_page(run(&["rejects"]));
}

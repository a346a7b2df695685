//! Runs every `tests/slt/*.slt` file: the metric SQL of `queries/` tested as data, on small
//! hand-built lakes whose expected rows are worked out in the files.
//!
//! A file names its lake and parameters in header comments:
//! ```text
//! # lake: desk                         (tests/slt/desk/*.csv, ingested with the generic profile)
//! # from: 2026-03-02                   (optional; with to: one period instead of ISO weeks)
//! # to: 2026-03-09
//! # as_of: 2026-03-20T00:00:00Z        (the backlog's point in time)
//! # fcr: no_reassignment               (optional)
//! # window_weeks: 1                    (optional: the TTR-shift window and ramp)
//! # ramp_weeks: 0
//! # min_rated: 1                       (optional: the same_issue cohort's thresholds)
//! # csat_threshold: 0.8
//! ```
//! Values print as text: NULL for null, floats in Rust's shortest form (round them in SQL).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use deskpulse::config::Config;
use deskpulse::engine::{Engine, Params};
use deskpulse::ingest::{IngestOptions, ingest};
use deskpulse::lake::Lake;
use deskpulse::timeparse::TimeParser;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

struct Db {
    engine: Engine,
}

#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
struct DbError(anyhow::Error);

fn render(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("formattable"))
            .collect();
        for i in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| {
                        if c.is_null(i) {
                            "NULL".to_string()
                        } else {
                            let s = f.value(i).to_string();
                            if s.is_empty() {
                                "(empty)".to_string()
                            } else {
                                s
                            }
                        }
                    })
                    .collect(),
            );
        }
    }
    rows
}

#[async_trait]
impl AsyncDB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let batches = self.engine.sql(sql).await.map_err(DbError)?;
        let width = batches.first().map_or(0, |b| b.num_columns());
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows: render(&batches),
        })
    }

    async fn shutdown(&mut self) {}
}

/// Header directives of a .slt file.
fn directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map_while(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn build_lake(dir: &Path, fixture: &Path) -> Lake {
    let lake = Lake::open(dir).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    let opts = IngestOptions {
        profile: "generic".into(),
        ..Default::default()
    };
    let (reports, errors) = ingest(&lake, &files, &opts).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    for r in reports {
        assert!(
            r.tables.values().all(|c| c.rejected == 0),
            "fixture rows rejected: {r}"
        );
    }
    lake
}

fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap();
    let d = directives(&text);
    let get = |k: &str| d.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let t = |k: &str| get(k).map(|v| TimeParser::default().parse(&v).unwrap());
    let fixture = path
        .parent()
        .unwrap()
        .join(get("lake").expect("# lake: NAME"));
    let dir = tempfile::tempdir().unwrap();
    let lake = build_lake(dir.path(), &fixture);
    let mut config = Config::default();
    if let Some(f) = get("fcr") {
        config.fcr = f.parse().unwrap();
    }
    if let Some(w) = get("window_weeks") {
        config.window_weeks = w.parse().unwrap();
    }
    if let Some(r) = get("ramp_weeks") {
        config.ramp_weeks = r.parse().unwrap();
    }
    if let Some(m) = get("min_rated") {
        config.min_rated = m.parse().unwrap();
    }
    if let Some(c) = get("csat_threshold") {
        config.csat_threshold = c.parse().unwrap();
    }
    let params = Params {
        from: t("from"),
        to: t("to"),
        by_week: get("from").is_none() && get("to").is_none(),
        as_of: t("as_of").unwrap_or(0),
        extra_adoptions: Vec::new(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut runner = Runner::new(|| {
            let (lake, config, params) = (lake.clone(), config.clone(), params.clone());
            async move {
                Ok(Db {
                    engine: Engine::open(&lake, &config, &params)
                        .await
                        .map_err(DbError)?,
                })
            }
        });
        runner
            .run_file_async(path)
            .await
            .map_err(|e| e.display(true).to_string())
    })
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    // Every metric query must be tested by at least one file.
    let all: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for name in deskpulse::engine::catalogue::CATALOGUE
        .iter()
        .map(|m| m.name)
    {
        assert!(
            all.contains(&format!("FROM {name}")),
            "queries/{name}.sql has no .slt test"
        );
    }
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        match run_file(f) {
            Ok(()) => {
                println!("slt {} ... ok", f.file_name().unwrap().to_string_lossy());
                passed += 1;
            }
            Err(e) => {
                println!(
                    "slt {} ... FAILED\n{e}",
                    f.file_name().unwrap().to_string_lossy()
                );
                failed += 1;
            }
        }
    }
    println!("slt: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

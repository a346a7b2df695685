//! Helpers for the profile tests: ingest one file into a fresh lake and read columns back.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int32Type, TimestampMicrosecondType};

use crate::ingest::{FileReport, IngestOptions, ingest};
use crate::lake::Lake;
use crate::model::Table;

/// A file of real reference data from `tests/data` (origins and terms in its README).
pub fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A fixture from `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A file `name` holding `content` in a fresh temporary directory (kept while the guard lives).
pub fn temp_file(name: &str, content: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

/// Ingests `files` with `profile` into a fresh lake.
pub fn ingest_fresh(
    profile: &str,
    files: &[PathBuf],
) -> (tempfile::TempDir, Lake, Vec<FileReport>) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let opts = IngestOptions {
        profile: profile.into(),
        ..Default::default()
    };
    let (reports, errors) = ingest(&lake, files, &opts).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    for r in &reports {
        for (t, c) in &r.tables {
            assert!(c.balances(), "{t}: {c:?}");
        }
    }
    (dir, lake, reports)
}

/// A column of a table as text (timestamps as microseconds), sorted by the table's key order
/// of appearance in the files.
pub fn column(lake: &Lake, table: Table, col: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in lake.scan(table, Some(&[col])).unwrap() {
        let a = b.column(0);
        for i in 0..a.len() {
            if a.is_null(i) {
                out.push(None);
                continue;
            }
            out.push(Some(match a.data_type() {
                DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
                DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
                DataType::Boolean => a.as_boolean().value(i).to_string(),
                DataType::Float64 => a
                    .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                    .value(i)
                    .to_string(),
                DataType::Timestamp(..) => a
                    .as_primitive::<TimestampMicrosecondType>()
                    .value(i)
                    .to_string(),
                other => panic!("unsupported type {other}"),
            }));
        }
    }
    out
}

/// How often each value of a column occurs.
pub fn counts(lake: &Lake, table: Table, col: &str) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for v in column(lake, table, col) {
        *m.entry(v.unwrap_or_else(|| "<null>".into())).or_default() += 1;
    }
    m
}

/// The sum of an integer column.
pub fn sum(lake: &Lake, table: Table, col: &str) -> i64 {
    column(lake, table, col)
        .into_iter()
        .flatten()
        .map(|v| v.parse::<i64>().unwrap())
        .sum()
}

/// The value of `col` in the row of `table` whose `key_col` is `key`.
pub fn value_of(lake: &Lake, table: Table, key_col: &str, key: &str, col: &str) -> Option<String> {
    let keys = column(lake, table, key_col);
    let pos = keys
        .iter()
        .position(|k| k.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no {table} row with {key_col} = {key}"));
    column(lake, table, col)[pos].clone()
}

/// Every finding in the lake as (line, key, column, rule, value), sorted.
pub fn findings(lake: &Lake) -> Vec<(u64, String, String, String, Option<String>)> {
    let mut out = Vec::new();
    for f in lake.side_files("_findings").unwrap() {
        for b in f.read(None).unwrap() {
            let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
            let (key, col, rule, value) = (s("key"), s("column"), s("rule"), s("value"));
            let line = b.column_by_name("line").unwrap();
            let line = line.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
            for i in 0..b.num_rows() {
                out.push((
                    line.value(i),
                    key.value(i).to_string(),
                    col.value(i).to_string(),
                    rule.value(i).to_string(),
                    (!value.is_null(i)).then(|| value.value(i).to_string()),
                ));
            }
        }
    }
    out.sort();
    out
}

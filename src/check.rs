//! `deskpulse check`: the data quality of a lake (DESIGN 4.6), the dbt-test idea for a desk.
//!
//! The checks are the SQL view `data_quality` (`queries/data_quality.sql`); this module reads its
//! rows, lists every rule that can fail a run (with 0 where it found nothing), prints them, and
//! says which of the rules a run was asked to fail on have findings.

use std::fmt::Write as _;

use anyhow::Result;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use serde::Serialize;

use crate::engine::{Engine, utf8};
use crate::timeparse::format_micros;

/// The rules `--fail-on` takes, with what a finding of each means.
pub const RULES: &[(&str, &str)] = &[
    ("duplicate_keys", "a key stored more than once in a table"),
    ("missing", "a row without a value a metric uses"),
    (
        "orphan",
        "a rating or interaction whose ticket is not in the lake",
    ),
    ("rejects", "an input row refused at ingest"),
    (
        "before_opened",
        "a ticket first answered, resolved or closed before it was opened",
    ),
    (
        "in_future",
        "a timestamp later than the moment it was ingested",
    ),
    (
        "opened_at_changed",
        "a ticket whose rows in one file give different opening times (an event log?)",
    ),
    (
        "rating_before_opened",
        "a rating given before its ticket was opened",
    ),
    (
        "interaction_before_opened",
        "an interaction before its ticket was opened",
    ),
    (
        "channel_other",
        "a ticket whose raw channel is not a known channel",
    ),
    ("unrated", "a resolved ticket without a rating"),
    (
        "not_scored",
        "a text without a sentiment (another language, or --no-sentiment)",
    ),
];

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub check: String,
    pub table: String,
    /// A column (`missing`, findings) or a language (`language`, `not_scored`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub count: u64,
    /// What `count` is out of, where that means something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub examples: Option<String>,
}

/// Runs every check on the engine's lake.
pub async fn run(engine: &Engine) -> Result<Vec<Check>> {
    let batches = engine.metric("data_quality").await?;
    let mut rows = Vec::new();
    for b in &batches {
        read_rows(b, &mut rows)?;
    }
    for (rule, _) in RULES {
        if !rows.iter().any(|r| r.check == *rule) {
            rows.push(Check {
                check: rule.to_string(),
                table: "-".into(),
                item: None,
                count: 0,
                total: None,
                first_at: None,
                last_at: None,
                examples: None,
            });
        }
    }
    rows.sort_by_key(|r| order(&r.check));
    Ok(rows)
}

fn order(check: &str) -> usize {
    match check {
        "rows" => 0,
        "language" => RULES.len() + 2,
        c => {
            1 + RULES
                .iter()
                .position(|(r, _)| *r == c)
                .unwrap_or(RULES.len())
        }
    }
}

fn read_rows(b: &RecordBatch, out: &mut Vec<Check>) -> Result<()> {
    let col = |n: &str| b.column_by_name(n).expect("data_quality's columns").clone();
    let (check, table, item, examples) = (
        utf8(&col("check"))?,
        utf8(&col("table_name"))?,
        utf8(&col("item"))?,
        utf8(&col("examples"))?,
    );
    let cast = |n: &str| {
        datafusion::arrow::compute::cast(&col(n), &datafusion::arrow::datatypes::DataType::Int64)
    };
    let (count, total) = (cast("count")?, cast("total")?);
    let (count, total) = (
        count.as_primitive::<Int64Type>(),
        total.as_primitive::<Int64Type>(),
    );
    let (first, last) = (col("first_at"), col("last_at"));
    let time = |a: &dyn Array, i: usize| {
        (!a.is_null(i))
            .then(|| format_micros(a.as_primitive::<TimestampMicrosecondType>().value(i)))
    };
    let text = |a: &datafusion::arrow::array::StringArray, i: usize| {
        (!a.is_null(i) && !a.value(i).is_empty()).then(|| a.value(i).to_string())
    };
    for i in 0..b.num_rows() {
        out.push(Check {
            check: check.value(i).to_string(),
            table: table.value(i).to_string(),
            item: text(&item, i),
            count: count.value(i).max(0) as u64,
            total: (!total.is_null(i)).then(|| total.value(i).max(0) as u64),
            first_at: time(first.as_ref(), i),
            last_at: time(last.as_ref(), i),
            examples: text(&examples, i),
        });
    }
    Ok(())
}

/// Checks that a `--fail-on` rule exists.
pub fn known_rule(rule: &str) -> Result<(), String> {
    if RULES.iter().any(|(r, _)| *r == rule) {
        Ok(())
    } else {
        let names: Vec<&str> = RULES.iter().map(|(r, _)| *r).collect();
        Err(format!(
            "unknown rule '{rule}' (expected one of {})",
            names.join(", ")
        ))
    }
}

/// The rules of `fail_on` with findings, and how many.
pub fn failed(rows: &[Check], fail_on: &[String]) -> Vec<(String, u64)> {
    fail_on
        .iter()
        .filter_map(|rule| {
            let n: u64 = rows
                .iter()
                .filter(|r| r.check == *rule)
                .map(|r| r.count)
                .sum();
            (n > 0).then(|| (rule.clone(), n))
        })
        .collect()
}

/// An aligned text report: what the lake holds, then every rule, then the languages.
pub fn render_table(rows: &[Check]) -> String {
    let mut o = String::new();
    let width = 42;
    for r in rows {
        let what = match &r.item {
            Some(item) => format!("{} {}.{}", r.check, r.table, item),
            None if r.table == "-" => r.check.clone(),
            None => format!("{} {}", r.check, r.table),
        };
        let mut line = format!("{what:<width$} {:>9}", r.count);
        if let Some(t) = r.total {
            let share = if t > 0 {
                format!(" ({:.1}%)", 100.0 * r.count as f64 / t as f64)
            } else {
                String::new()
            };
            let _ = write!(line, " of {t}{share}");
        }
        if let (Some(a), Some(b)) = (&r.first_at, &r.last_at) {
            let _ = write!(line, "  {a} .. {b}");
        }
        if let Some(e) = &r.examples {
            let _ = write!(line, "  e.g. {e}");
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    o
}

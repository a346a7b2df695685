//! Printing query results: an aligned table for people, CSV and JSON for scripts. Every CSV
//! deskpulse writes makes its cells inert for spreadsheets ([`inert`]): ticket text is untrusted.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Result;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::pretty::pretty_format_batches;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            // `text` for the commands whose table is prose (ttr-shift).
            "table" | "text" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "unknown format '{other}' (expected table, csv or json)"
            )),
        }
    }
}

/// Renders batches in a format. JSON is an array of objects (nulls omitted); CSV has a header.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<String> {
    Ok(match format {
        Format::Table => pretty_format_batches(batches)?.to_string(),
        Format::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(Vec::new());
            for b in batches {
                w.write(&inert_batch(b)?)?;
            }
            String::from_utf8(w.into_inner())?
        }
        Format::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(Vec::new());
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            let s = String::from_utf8(w.into_inner())?;
            if s.is_empty() { "[]".to_string() } else { s }
        }
    })
}

/// A CSV cell that a spreadsheet will not run as a formula: text starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return gets a leading `'`, as OWASP advises against CSV injection. Numbers
/// such as `-0.5` stay as they are.
pub fn inert(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if cell.parse::<f64>().is_err() => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

/// The batch with every string column's cells made [`inert`].
fn inert_batch(batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| -> Result<ArrayRef> {
            if !matches!(
                c.data_type(),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            ) {
                return Ok(c.clone());
            }
            let text = datafusion::arrow::compute::cast(c, &DataType::Utf8)?;
            let safe: StringArray = text
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(inert))
                .collect();
            Ok(Arc::new(safe))
        })
        .collect::<Result<Vec<_>>>()?;
    let fields: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        columns,
    )?)
}

/// Rows serialised as CSV (with a header), every cell made [`inert`].
pub fn csv_of<T: serde::Serialize>(rows: &[T]) -> Result<String> {
    let mut raw = csv::Writer::from_writer(Vec::new());
    for r in rows {
        raw.serialize(r)?;
    }
    let raw = raw.into_inner()?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(raw.as_slice());
    for record in reader.records() {
        out.write_record(record?.iter().map(inert).map(|c| c.into_owned()))?;
    }
    Ok(String::from_utf8(out.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Float64Array;
    use datafusion::arrow::datatypes::{Field, Schema};

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_made_inert() {
        for (cell, want) in [
            (
                "=HYPERLINK(\"http://evil\",\"x\")",
                "'=HYPERLINK(\"http://evil\",\"x\")",
            ),
            ("+1 555 0100", "'+1 555 0100"),
            ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("\tTAB", "'\tTAB"),
            ("-0.7612", "-0.7612"),
            ("+3", "+3"),
            ("plain text", "plain text"),
            ("", ""),
        ] {
            assert_eq!(inert(cell), want, "{cell}");
        }
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("comment", DataType::Utf8, true),
                Field::new("score", DataType::Float64, false),
            ])),
            vec![
                Arc::new(StringArray::from(vec![Some("=1+1"), None])),
                Arc::new(Float64Array::from(vec![-1.5, 2.0])),
            ],
        )
        .unwrap();
        let csv = render(&[batch], Format::Csv).unwrap();
        assert_eq!(csv, "comment,score\n'=1+1,-1.5\n,2.0\n");
        #[derive(serde::Serialize)]
        struct Row {
            name: &'static str,
            change: f64,
        }
        let rows = [Row {
            name: "@evil",
            change: -2.5,
        }];
        assert_eq!(csv_of(&rows).unwrap(), "name,change\n'@evil,-2.5\n");
    }
}

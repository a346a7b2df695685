use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
    UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};

use crate::model::{Micros, Reject, timestamp_type};

use super::Lake;
use super::delta::{Def, NewFile};
use super::parquet::{DataFile, read_parquet, write_data_file};
use super::store::Store;

/// One ingested input, as recorded in `_manifest`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestEntry {
    pub content_hash: String,
    pub profile: String,
    pub source_file: String,
    pub ingested_at: Micros,
    pub records: u64,
    pub rows_stored: u64,
    pub rows_rejected: u64,
}

/// The side tables: what was refused, what contradicts itself, what was ingested. Delta tables
/// like the others (unpartitioned), committed in the same lake commit as the rows they go with,
/// so a snapshot's rejects and manifest are those of its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Rejects,
    Findings,
    Manifest,
}

impl Side {
    pub const ALL: [Side; 3] = [Side::Rejects, Side::Findings, Side::Manifest];

    pub fn name(self) -> &'static str {
        match self {
            Side::Rejects => "_rejects",
            Side::Findings => "_findings",
            Side::Manifest => "_manifest",
        }
    }

    pub fn def(self) -> Def {
        Def {
            name: self.name(),
            schema: match self {
                Side::Rejects => crate::model::rejects_schema(),
                Side::Findings => crate::model::findings_schema(),
                Side::Manifest => manifest_schema(),
            },
            by_month: false,
        }
    }
}

impl Lake {
    /// The files of a side table (`_rejects`, `_findings`, `_manifest`) at the snapshot this
    /// lake is read at.
    pub fn side_files(&self, name: &str) -> Result<Vec<DataFile>> {
        self.named_files(&self.snapshot()?, name)
    }

    /// Rows in `_rejects`.
    pub fn reject_count(&self) -> Result<u64> {
        self.side_count(Side::Rejects)
    }

    /// Rows in `_findings`.
    pub fn finding_count(&self) -> Result<u64> {
        self.side_count(Side::Findings)
    }

    fn side_count(&self, side: Side) -> Result<u64> {
        self.side_files(side.name())?
            .iter()
            .map(DataFile::rows)
            .sum()
    }

    /// Every reject recorded in the lake, by file and line.
    pub fn rejects(&self) -> Result<Vec<Reject>> {
        let mut out = Vec::new();
        for f in self.side_files(Side::Rejects.name())? {
            for batch in f.read(None)? {
                let col = |n: &str| batch.column_by_name(n).expect("rejects schema").clone();
                let (file, line, column, reason, raw) = (
                    col("source_file"),
                    col("line"),
                    col("column"),
                    col("reason"),
                    col("raw"),
                );
                let line = line.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
                for i in 0..batch.num_rows() {
                    out.push(Reject {
                        source_file: file.as_string::<i32>().value(i).to_string(),
                        line: line.value(i),
                        column: (!column.is_null(i))
                            .then(|| column.as_string::<i32>().value(i).to_string()),
                        reason: reason.as_string::<i32>().value(i).to_string(),
                        raw: raw.as_string::<i32>().value(i).to_string(),
                    });
                }
            }
        }
        // Files are named by uuid: order by what a reader looks for.
        out.sort_by(|a, b| (&a.source_file, a.line).cmp(&(&b.source_file, b.line)));
        Ok(out)
    }

    /// Every input ingested so far, in the order they were ingested.
    pub fn manifest(&self) -> Result<Vec<ManifestEntry>> {
        let mut out = Vec::new();
        for f in self.side_files(Side::Manifest.name())? {
            for b in f.read(None)? {
                let s = |n: &str| {
                    b.column_by_name(n)
                        .expect("manifest schema")
                        .as_string::<i32>()
                        .clone()
                };
                let u = |n: &str| {
                    b.column_by_name(n)
                        .expect("manifest schema")
                        .as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
                        .clone()
                };
                let (hash, profile, file) = (s("content_hash"), s("profile"), s("source_file"));
                let at = b
                    .column_by_name("ingested_at")
                    .expect("manifest schema")
                    .as_primitive::<TimestampMicrosecondType>()
                    .clone();
                let (records, stored, rejected) =
                    (u("records"), u("rows_stored"), u("rows_rejected"));
                for i in 0..b.num_rows() {
                    out.push(ManifestEntry {
                        content_hash: hash.value(i).to_string(),
                        profile: profile.value(i).to_string(),
                        source_file: file.value(i).to_string(),
                        ingested_at: at.value(i),
                        records: records.value(i),
                        rows_stored: stored.value(i),
                        rows_rejected: rejected.value(i),
                    });
                }
            }
        }
        out.sort_by_key(|e| e.ingested_at);
        Ok(out)
    }
}

/// Writes batches as a new file of a side table (for the commit to add), or nothing when there
/// are none. Streamed: a file of many refused rows is not held in memory.
pub(super) fn side_file(
    store: &Store,
    side: Side,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<Option<NewFile>> {
    let mut batches = batches.into_iter().peekable();
    if batches.peek().is_none() {
        return Ok(None);
    }
    let file = DataFile::new(
        store,
        format!("{}/part-{}.parquet", side.name(), uuid::Uuid::new_v4()),
    );
    let rows = std::cell::Cell::new(0u64);
    let counted = batches.inspect(|b| {
        if let Ok(b) = b {
            rows.set(rows.get() + b.num_rows() as u64);
        }
    });
    let bytes = write_data_file(&file, side.def().schema, counted)?;
    Ok(Some(NewFile {
        file,
        rows: rows.get(),
        bytes,
    }))
}

/// The rows of staged side files.
pub(super) fn staged_rows(parts: &[PathBuf]) -> impl Iterator<Item = Result<RecordBatch>> + '_ {
    parts.iter().flat_map(|p| match read_parquet(p, None) {
        Ok(b) => b.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    })
}

pub(super) fn manifest_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("content_hash", DataType::Utf8, false),
        Field::new("profile", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("ingested_at", timestamp_type(), false),
        Field::new("records", DataType::UInt64, false),
        Field::new("rows_stored", DataType::UInt64, false),
        Field::new("rows_rejected", DataType::UInt64, false),
    ]))
}

pub(super) fn manifest_batch(entries: &[ManifestEntry]) -> RecordBatch {
    let s = |f: fn(&ManifestEntry) -> &str| {
        let mut b = StringBuilder::new();
        for e in entries {
            b.append_value(f(e));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let u = |f: fn(&ManifestEntry) -> u64| {
        let mut b = UInt64Builder::new();
        for e in entries {
            b.append_value(f(e));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for e in entries {
        at.append_value(e.ingested_at);
    }
    RecordBatch::try_new(
        manifest_schema(),
        vec![
            s(|e| &e.content_hash),
            s(|e| &e.profile),
            s(|e| &e.source_file),
            Arc::new(at.finish()),
            u(|e| e.records),
            u(|e| e.rows_stored),
            u(|e| e.rows_rejected),
        ],
    )
    .expect("manifest matches its schema")
}

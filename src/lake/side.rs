use std::fs::{self};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
    UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};

use crate::model::{Micros, Reject, timestamp_type};

use super::Lake;
use super::parquet::{lake_properties, parquet_rows, read_parquet, write_parquet_atomic};

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

impl Lake {
    /// The files of a side table (`_rejects`, `_findings`: one per ingested input), sorted.
    pub fn side_files(&self, dir: &str) -> Result<Vec<PathBuf>> {
        let dir = self.root.join(dir);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut files: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Rows in `_rejects`.
    pub fn reject_count(&self) -> Result<u64> {
        self.side_count("_rejects")
    }

    /// Rows in `_findings`.
    pub fn finding_count(&self) -> Result<u64> {
        self.side_count("_findings")
    }

    fn side_count(&self, dir: &str) -> Result<u64> {
        self.side_files(dir)?.iter().map(|f| parquet_rows(f)).sum()
    }

    /// Every reject recorded in the lake.
    pub fn rejects(&self) -> Result<Vec<Reject>> {
        let mut out = Vec::new();
        let files = self.side_files("_rejects")?;
        for f in files {
            for batch in read_parquet(&f, None)? {
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
        Ok(out)
    }

    fn manifest_path(&self) -> PathBuf {
        self.root.join("_manifest").join("data.parquet")
    }

    /// Every input ingested so far.
    pub fn manifest(&self) -> Result<Vec<ManifestEntry>> {
        let path = self.manifest_path();
        let mut out = Vec::new();
        if !path.exists() {
            return Ok(out);
        }
        for b in read_parquet(&path, None)? {
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
            let (records, stored, rejected) = (u("records"), u("rows_stored"), u("rows_rejected"));
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
        Ok(out)
    }

    /// Whether this content was already ingested with this profile.
    pub fn already_ingested(&self, content_hash: &str, profile: &str) -> Result<bool> {
        Ok(self
            .manifest()?
            .iter()
            .any(|e| e.content_hash == content_hash && e.profile == profile))
    }

    /// Appends one entry to `_manifest` (rewritten atomically: it is small), under the lake's
    /// lock.
    pub fn record_ingest(&self, entry: ManifestEntry) -> Result<()> {
        let _lock = self.lock()?;
        let mut all = self.manifest()?;
        all.push(entry);
        fs::create_dir_all(self.root.join("_manifest"))?;
        let batch = manifest_batch(&all);
        write_parquet_atomic(
            &self.manifest_path(),
            batch.schema(),
            [Ok(batch)],
            lake_properties(),
        )
    }
}

/// Writes the staged `parts` of a side table (`_rejects`, `_findings`) as `dir/<name>.parquet`,
/// replacing the file of an earlier, interrupted run of the same input (or removing it when this
/// run has none).
pub(super) fn write_side_file(
    dir: &Path,
    name: &str,
    parts: &[PathBuf],
    schema: SchemaRef,
) -> Result<()> {
    let path = dir.join(format!("{name}.parquet"));
    if parts.is_empty() {
        if path.exists() {
            fs::remove_file(&path)?;
        }
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let batches = parts.iter().flat_map(|p| match read_parquet(p, None) {
        Ok(b) => b.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    });
    write_parquet_atomic(&path, schema, batches, lake_properties())
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

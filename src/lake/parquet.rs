use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

/// Rows per Parquet row group in the lake (smaller groups prune and parallelise better).
const ROW_GROUP_ROWS: usize = 256 * 1024;
/// Testing hook: abort the process at the n-th step of a lake commit (each data file written,
/// each table's Delta commit, the snapshot about to be published), to prove that a crash at any
/// of them leaves the previous snapshot and that running again completes the commit.
const CRASH_ENV: &str = "DESKPULSE_CRASH_AT";

pub(super) fn lake_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Staged files live for one ingest: written fast (no compression, no dictionaries), read once.
pub(super) fn staging_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .build()
}

/// Writes batches to a Parquet file (not atomically: for private staging files).
pub(super) fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    props: WriterProperties,
) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props))?;
    for b in batches {
        w.write(&b?)?;
    }
    w.close()?;
    Ok(())
}

/// Writes a new data file of the lake (a name no version refers to yet), fsync'd with its
/// directory: a Delta commit may name it right after.
pub(super) fn write_data_file(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<()> {
    let dir = path.parent().context("path has no directory")?;
    fs::create_dir_all(dir)?;
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(lake_properties()))?;
    for b in batches {
        w.write(&b?)?;
    }
    w.into_inner()?.sync_all()?;
    File::open(dir)?.sync_all()?;
    crash_point();
    Ok(())
}

/// Writes a (small) file atomically (a hidden temporary file in the same directory, fsync'd,
/// renamed over `path`, the directory fsync'd): for reports and target lists that scripts pick
/// up, which never see a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, |mut file| {
        std::io::Write::write_all(&mut file, bytes)?;
        Ok(file)
    })
}

/// Writes `path` through `write` into a hidden temporary file beside it, fsyncs it, renames it
/// over `path` and fsyncs the directory.
pub(super) fn replace(path: &Path, write: impl FnOnce(File) -> Result<File>) -> Result<()> {
    write_hidden(path, write)?.publish()
}

/// A file written and fsync'd under its hidden temporary name, not yet renamed into place.
/// Dropped unpublished (its write failed), it deletes the temporary file. (A crash still can; the next write
/// of the same file overwrites it.)
pub(super) struct Hidden {
    tmp: PathBuf,
    path: PathBuf,
}

/// The first half of [`replace`]: writes the hidden temporary file beside `path`.
pub(super) fn write_hidden(
    path: &Path,
    write: impl FnOnce(File) -> Result<File>,
) -> Result<Hidden> {
    let dir = path.parent().context("path has no directory")?;
    let name = path
        .file_name()
        .context("path has no file name")?
        .to_string_lossy();
    // A fixed name: a run after a crash overwrites the leftover instead of piling up files.
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let hidden = Hidden {
        tmp,
        path: path.to_path_buf(),
    };
    write(file)?.sync_all()?;
    Ok(hidden)
}

impl Drop for Hidden {
    fn drop(&mut self) {
        // After a successful publish the temporary name is gone and this finds nothing.
        let _ = fs::remove_file(&self.tmp);
    }
}

impl Hidden {
    /// The second half of [`replace`]: renames the file into place and fsyncs the directory.
    pub(super) fn publish(self) -> Result<()> {
        fs::rename(&self.tmp, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.path.display()
            )
        })?;
        File::open(self.path.parent().context("path has no directory")?)?.sync_all()?;
        Ok(())
    }
}

/// Aborts the process when the crash-test hook says so (see [`CRASH_ENV`]).
pub(super) fn crash_point() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    if let Ok(n) = std::env::var(CRASH_ENV)
        && let Ok(n) = n.parse::<usize>()
        && WRITES.fetch_add(1, Ordering::SeqCst) + 1 >= n
    {
        eprintln!("{CRASH_ENV}: simulated crash");
        std::process::abort();
    }
}

/// Reads a Parquet file into batches, optionally only some columns.
/// Columns come back in the file's order, not the order asked: read them by name.
pub fn read_parquet(path: &Path, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>> {
    Ok(parquet_batches(path, columns)?.collect::<Result<Vec<_>, _>>()?)
}

/// Like [`read_parquet`], one batch at a time (memory: one batch, whatever the file's size).
pub(super) fn parquet_batches(
    path: &Path,
    columns: Option<&[&str]>,
) -> Result<datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("cannot read Parquet file {}", path.display()))?;
    if let Some(cols) = columns {
        let schema = builder.parquet_schema();
        let idx: Vec<usize> = cols
            .iter()
            .map(|c| {
                (0..schema.num_columns())
                    .find(|i| schema.column(*i).name() == *c)
                    .with_context(|| format!("column {c} missing in {}", path.display()))
            })
            .collect::<Result<_>>()?;
        let mask = ProjectionMask::leaves(schema, idx);
        builder = builder.with_projection(mask);
    }
    Ok(builder.with_batch_size(64 * 1024).build()?)
}

pub(super) fn parquet_rows(path: &Path) -> Result<u64> {
    let file = File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    Ok(builder.metadata().file_metadata().num_rows() as u64)
}

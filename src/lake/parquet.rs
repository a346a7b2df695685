use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::parquet::file::reader::ChunkReader;
use datafusion::parquet::schema::types::SchemaDescriptor;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::{ObjectStore, ObjectStoreExt};

use super::store::{Store, block_on};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

/// Rows per Parquet row group in the lake (smaller groups prune and parallelise better).
const ROW_GROUP_ROWS: usize = 256 * 1024;
/// Testing hook: abort the process at the n-th step of a lake commit (each data file written,
/// each table's Delta commit, the snapshot about to be published), to prove that a crash at any
/// of them leaves the previous snapshot and that running again completes the commit.
const CRASH_ENV: &str = "DESKPULSE_CRASH_AT";

pub(super) fn lake_properties(schema: &Schema) -> WriterProperties {
    let mut props = WriterProperties::builder()
        // Snappy, Delta's and Spark's default codec: every metric decodes the lake again, and
        // ZSTD's decompression was the largest single cost of `kpis` at 10 M tickets (snappy:
        // 9-13% faster there, for files about 1.5 times larger; docs/benchmarks.md).
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    // A dictionary of values that hardly repeat (row keys, texts, instants) only costs: the
    // writer interns every value until the dictionary outgrows its page and falls back to
    // plain pages (interning was 6% of an ingest's CPU, measured with perf).
    for f in schema.fields() {
        let distinct = UNIQUE_COLUMNS.contains(&f.name().as_str())
            || FREE_TEXTS.contains(&f.name().as_str())
            || matches!(f.data_type(), DataType::Timestamp(..));
        if distinct {
            props = props.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), false);
        }
        // Nothing prunes by the range of a free text or a label, and comparing every value for
        // a page's minimum and maximum was about 2% of an ingest's CPU for the texts (perf) and
        // 3% of its instructions for the labels (callgrind, docs/benchmarks.md).
        if FREE_TEXTS.contains(&f.name().as_str()) || LABELS.contains(&f.name().as_str()) {
            props = props
                .set_column_statistics_enabled(f.name().as_str().into(), EnabledStatistics::None);
        }
    }
    props.build()
}

/// Columns of many distinct values besides the free texts: the row keys and the people
/// (hundreds of thousands at 1 M tickets: a month's dictionary outgrew its page; without one, a
/// 1 M ingest took about 0.1 s less and its lake was 2% smaller, reading them as fast).
const UNIQUE_COLUMNS: &[&str] = &[
    "ticket_id",
    "interaction_id",
    "rating_id",
    "issue_key",
    "requester_id",
    "actor_id",
];

/// Columns of free text (bodies, comments): distinct values too.
const FREE_TEXTS: &[&str] = &["body", "comment"];

/// Columns of a few values each (dictionary-encoded), which every row group holds nearly all
/// of: their range never prunes one, so they are written without statistics. Ids and times
/// keep theirs: the engine's passes skip files and pages by the range of `ticket_id`, and a
/// lookup by id or time can too.
const LABELS: &[&str] = &[
    "source",
    "status",
    "priority_raw",
    "category",
    "subcategory",
    "service",
    "channel",
    "channel_raw",
    "assignment_group",
    "tier",
    "resolution_path",
    "actor_role",
    "lang",
    "score_raw",
    "scale",
];

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

/// Rows per batch read back from the lake's files.
const BATCH_ROWS: usize = 64 * 1024;

/// A file's batches, one at a time.
pub type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// A Parquet file of the lake (or of a writer's local staging): its store and its path there.
/// Compared by path: the files compared are of one store.
#[derive(Clone, Debug)]
pub struct DataFile {
    store: Store,
    rel: String,
}

impl PartialEq for DataFile {
    fn eq(&self, other: &Self) -> bool {
        self.rel == other.rel
    }
}
impl Eq for DataFile {}
impl std::hash::Hash for DataFile {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.rel.hash(state)
    }
}
impl PartialOrd for DataFile {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for DataFile {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rel.cmp(&other.rel)
    }
}

impl DataFile {
    pub fn new(store: &Store, rel: impl Into<String>) -> DataFile {
        DataFile {
            store: store.clone(),
            rel: rel.into(),
        }
    }

    /// Its path under the store's root (`tickets/month=2026-01/part-….parquet`).
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// Its partition: the directories between the table's and the file (`month=2026-01`),
    /// empty for an unpartitioned table.
    pub fn partition(&self) -> &str {
        let dir = self.rel.rsplit_once('/').map_or("", |(d, _)| d);
        dir.split_once('/').map_or("", |(_, p)| p)
    }

    /// Its URL, for DataFusion (`file:///…` or `s3://…`).
    pub fn url(&self) -> Result<url::Url> {
        self.store.url_of(&self.rel)
    }

    /// Its local path, when its store is a local directory.
    pub fn local_path(&self) -> Option<PathBuf> {
        self.store.path_of(&self.rel)
    }

    /// Its size in bytes.
    pub fn size(&self) -> Result<u64> {
        Ok(self.store.head(&self.rel)?.size)
    }

    /// Reads it into batches, optionally only some columns (in the file's order: read them by
    /// name).
    pub fn read(&self, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>> {
        self.batches(columns)?.collect()
    }

    /// Like [`DataFile::read`], one batch at a time (memory: about one batch). On object
    /// storage only the footer and the columns asked for are fetched, by range requests.
    pub fn batches(&self, columns: Option<&[&str]>) -> Result<Batches> {
        let Some((client, key)) = self.store.object(&self.rel) else {
            let path = self.local_path().expect("a local store");
            return Ok(Box::new(parquet_batches(&path, columns)?.map(|b| Ok(b?))));
        };
        let what = || format!("cannot read Parquet file {} in {}", self.rel, self.store);
        let size = self.size()?;
        let stream = block_on(async {
            let reader = Ranges { client, key, size };
            let mut builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
            if let Some(cols) = columns {
                let mask = projection(builder.parquet_schema(), cols)?;
                builder = builder.with_projection(mask);
            }
            anyhow::Ok(builder.with_batch_size(BATCH_ROWS).build()?)
        })
        .with_context(what)?;
        /// The stream's batches, each awaited on the lake's I/O runtime.
        struct Blocking(ParquetRecordBatchStream<Ranges>);
        impl Iterator for Blocking {
            type Item = Result<RecordBatch>;
            fn next(&mut self) -> Option<Result<RecordBatch>> {
                use futures::StreamExt;
                block_on(self.0.next()).map(|b| Ok(b?))
            }
        }
        Ok(Box::new(Blocking(stream)))
    }

    /// Rows in it (from the Parquet footer).
    pub fn rows(&self) -> Result<u64> {
        let Some((client, key)) = self.store.object(&self.rel) else {
            return parquet_rows(&self.local_path().expect("a local store"));
        };
        let size = self.size()?;
        block_on(async {
            let reader = Ranges { client, key, size };
            let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
            anyhow::Ok(builder.metadata().file_metadata().num_rows() as u64)
        })
        .with_context(|| format!("cannot read Parquet file {} in {}", self.rel, self.store))
    }

    /// Deletes it.
    pub fn delete(&self) -> Result<()> {
        self.store.delete(&self.rel)
    }
}

/// A Parquet file on object storage, read by range requests: the footer, then the column
/// chunks a reader asks for (arrow's recipe for `AsyncFileReader` on object_store).
struct Ranges {
    client: Arc<dyn ObjectStore>,
    key: object_store::path::Path,
    size: u64,
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for Ranges {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<bytes::Bytes>> {
        async move {
            self.client
                .get_range(&self.key, range)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move {
            self.client
                .get_ranges(&self.key, &ranges)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Writes a new data file of the lake (a name no version refers to yet), durably: a Delta
/// commit may name it right after. Locally it is written in place and fsync'd with its
/// directory; on object storage it is streamed to its key (no local temporary file that a
/// crash could leave behind).
pub(super) fn write_data_file(
    file: &DataFile,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<u64> {
    fn encode<W: std::io::Write + Send>(
        out: W,
        schema: SchemaRef,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
    ) -> Result<W> {
        let props = lake_properties(&schema);
        let mut w = ArrowWriter::try_new(out, schema, Some(props))?;
        for b in batches {
            w.write(&b?)?;
        }
        Ok(w.into_inner()?)
    }
    let size = match file.local_path() {
        Some(path) => {
            let dir = path.parent().context("path has no directory")?;
            fs::create_dir_all(dir)?;
            let out =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            let out = encode(out, schema, batches)?;
            out.sync_all()?;
            File::open(dir)?.sync_all()?;
            out.metadata()?.len()
        }
        None => encode(file.store.upload_to(&file.rel)?, schema, batches)?.finish()?,
    };
    crash_point();
    Ok(size)
}

/// Makes a staged file (written in the lake's format) the data file `file` without copying its
/// rows: a hard link on a local lake, so that the staged file stays for a merge done again after
/// a conflicting commit; an upload to object storage. Returns its size.
pub(super) fn adopt_data_file(staged: &DataFile, file: &DataFile) -> Result<u64> {
    let from = staged.local_path().context("staged files are local")?;
    // Staged files are written without a sync: this one is now the lake's.
    File::open(&from)?.sync_all()?;
    match file.local_path() {
        Some(to) => {
            let dir = to.parent().context("path has no directory")?;
            fs::create_dir_all(dir)?;
            if fs::hard_link(&from, &to).is_err() {
                // A file system without hard links (Linux says EPERM, as for a permission
                // error; a directory that is not writable fails the copy as well, with its
                // own error).
                fs::copy(&from, &to)?;
                File::open(&to)?.sync_all()?;
            }
            File::open(dir)?.sync_all()?;
        }
        None => file.store.upload(&from, &file.rel)?,
    }
    crash_point();
    Ok(fs::metadata(&from)?.len())
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
    let dir = dir_of(path)?;
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
        File::open(dir_of(&self.path)?)?.sync_all()?;
        Ok(())
    }
}

/// The directory a file is in: `.` for a bare file name such as `--out dashboard.html` (whose
/// parent is the empty path, which cannot be opened to fsync).
fn dir_of(path: &Path) -> Result<&Path> {
    match path.parent().context("path has no directory")? {
        p if p.as_os_str().is_empty() => Ok(Path::new(".")),
        p => Ok(p),
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
) -> Result<ParquetRecordBatchReader> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    reader(file, columns).with_context(|| format!("cannot read Parquet file {}", path.display()))
}

/// A reader of some columns (all when `None`) of Parquet data.
fn reader<T: ChunkReader + 'static>(
    data: T,
    columns: Option<&[&str]>,
) -> Result<ParquetRecordBatchReader> {
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(data)?;
    if let Some(cols) = columns {
        let mask = projection(builder.parquet_schema(), cols)?;
        builder = builder.with_projection(mask);
    }
    Ok(builder.with_batch_size(BATCH_ROWS).build()?)
}

/// The leaves of the named columns.
fn projection(schema: &SchemaDescriptor, columns: &[&str]) -> Result<ProjectionMask> {
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| {
            (0..schema.num_columns())
                .find(|i| schema.column(*i).name() == *c)
                .with_context(|| format!("column {c} missing"))
        })
        .collect::<Result<_>>()?;
    Ok(ProjectionMask::leaves(schema, idx))
}

pub(super) fn parquet_rows(path: &Path) -> Result<u64> {
    let file = File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    Ok(builder.metadata().file_metadata().num_rows() as u64)
}

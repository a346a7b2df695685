//! Where the lake's files live: a local directory, or a prefix of an S3 bucket
//! (`s3://bucket/prefix`, on AWS or any S3-compatible server). Every file of the lake is read,
//! written, listed and deleted through here, named by its path under the lake's root
//! (`tickets/month=2026-01/part-….parquet`).
//!
//! Local files are written with fsync and published by hard link; on S3 a create-only put
//! (`If-None-Match: *`) does what the hard link does: of two writers publishing the same name,
//! exactly one succeeds. S3's client is object_store's (the one DataFusion reads with), its
//! credentials and endpoint from the usual `AWS_*` environment variables.

use std::fmt;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use url::Url;

use crate::model::Micros;

/// The lake's root: a local directory or a prefix of an S3 bucket. Cheap to clone.
#[derive(Clone)]
pub struct Store(Arc<Root>);

enum Root {
    Local(PathBuf),
    S3 {
        /// `s3://bucket/prefix/`
        url: Url,
        /// The bucket's client (paths are from the bucket's root).
        client: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
    },
}

/// A file of the lake, from a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Its path under the lake's root.
    pub rel: String,
    pub size: u64,
    /// When it was last written (UTC microseconds).
    pub modified: Micros,
}

impl Store {
    /// The lake at `location`: `s3://bucket/prefix`, or a directory (created if needed, and made
    /// absolute, since Delta names files by absolute URL).
    pub fn open(location: &Path) -> Result<Store> {
        let text = location.to_string_lossy();
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(!bucket.is_empty(), "no bucket in {text}");
            let client = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .with_context(|| format!("cannot set up the S3 client for {text}"))?;
            let prefix = ObjectPath::from(prefix.trim_matches('/'));
            let url = Url::parse(&format!("s3://{bucket}/"))?;
            let url = if prefix.as_ref().is_empty() {
                url
            } else {
                url.join(&format!("{prefix}/"))?
            };
            return Ok(Store(Arc::new(Root::S3 {
                url,
                client: Arc::new(client),
                prefix,
            })));
        }
        fs::create_dir_all(location)
            .with_context(|| format!("cannot create lake directory {}", location.display()))?;
        let root = fs::canonicalize(location)
            .with_context(|| format!("cannot resolve lake directory {}", location.display()))?;
        Ok(Store::local(root))
    }

    /// A local directory, as it is (for staging).
    pub fn local(dir: PathBuf) -> Store {
        Store(Arc::new(Root::Local(dir)))
    }

    /// The root's URL, ending in `/` (`file:///…/` or `s3://bucket/prefix/`).
    pub fn url(&self) -> Url {
        match &*self.0 {
            Root::Local(dir) => Url::from_directory_path(dir).expect("an absolute directory"),
            Root::S3 { url, .. } => url.clone(),
        }
    }

    /// The URL of the file at `rel`.
    pub fn url_of(&self, rel: &str) -> Result<Url> {
        Ok(self.url().join(rel)?)
    }

    /// The local directory, when the lake is one.
    pub fn local_dir(&self) -> Option<&Path> {
        match &*self.0 {
            Root::Local(dir) => Some(dir),
            Root::S3 { .. } => None,
        }
    }

    /// For a lake on object storage: the bucket's URL (`s3://bucket`) and its client, for
    /// DataFusion and Delta to read through.
    pub fn object_store(&self) -> Option<(Url, Arc<dyn ObjectStore>)> {
        match &*self.0 {
            Root::Local(_) => None,
            Root::S3 { url, client, .. } => {
                let bucket = Url::parse(&format!("s3://{}", url.host_str().unwrap_or_default()))
                    .expect("a bucket URL");
                Some((bucket, client.clone()))
            }
        }
    }

    /// The client and key of the file at `rel`, on object storage (`None` for a local lake).
    pub(super) fn object(&self, rel: &str) -> Option<(Arc<dyn ObjectStore>, ObjectPath)> {
        match &*self.0 {
            Root::Local(_) => None,
            Root::S3 { client, prefix, .. } => Some((client.clone(), Store::key(prefix, rel))),
        }
    }

    fn local_path(dir: &Path, rel: &str) -> PathBuf {
        rel.split('/')
            .fold(dir.to_path_buf(), |p, part| p.join(part))
    }

    fn key(prefix: &ObjectPath, rel: &str) -> ObjectPath {
        prefix
            .parts()
            .chain(ObjectPath::from(rel).parts())
            .collect()
    }

    /// The file at `rel` as a local path (local lakes only; `None` on object storage).
    pub fn path_of(&self, rel: &str) -> Option<PathBuf> {
        self.local_dir().map(|d| Store::local_path(d, rel))
    }

    /// The file at `rel`, whole; `None` when there is none.
    pub fn get(&self, rel: &str) -> Result<Option<Bytes>> {
        match &*self.0 {
            Root::Local(dir) => match fs::read(Store::local_path(dir, rel)) {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("cannot read {rel} in {self}")),
            },
            Root::S3 { client, prefix, .. } => {
                let key = Store::key(prefix, rel);
                block_on(async {
                    match client.get(&key).await {
                        Ok(r) => Ok(Some(r.bytes().await?)),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .with_context(|| format!("cannot read {rel} in {self}"))
            }
        }
    }

    /// Writes `bytes` at `rel` only if no file is there: `false` when one is (another writer's).
    /// Never leaves a partial file under `rel`.
    pub fn put_new(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        match &*self.0 {
            Root::Local(dir) => {
                let path = Store::local_path(dir, rel);
                let parent = path.parent().context("path has no directory")?;
                fs::create_dir_all(parent)?;
                // Written whole under a private name, then linked to its own, which fails if
                // the name is taken.
                let tmp = parent.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
                fs::write(&tmp, &bytes)?;
                fs::File::open(&tmp)?.sync_all()?;
                let linked = fs::hard_link(&tmp, &path);
                let _ = fs::remove_file(&tmp);
                match linked {
                    Ok(()) => {
                        fs::File::open(parent)?.sync_all()?;
                        Ok(true)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
                }
            }
            Root::S3 { client, prefix, .. } => {
                let key = Store::key(prefix, rel);
                let put = block_on(client.put_opts(
                    &key,
                    bytes.into(),
                    PutOptions::from(PutMode::Create),
                ));
                match put {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                    Err(e) => Err(e).with_context(|| format!("cannot write {rel} in {self}")),
                }
            }
        }
    }

    /// Writes `bytes` at `rel`, replacing what is there (atomically: a reader sees the old file
    /// or the new one).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        match &*self.0 {
            Root::Local(dir) => {
                let path = Store::local_path(dir, rel);
                fs::create_dir_all(path.parent().context("path has no directory")?)?;
                super::parquet::write_atomic(&path, &bytes)
            }
            Root::S3 { client, prefix, .. } => {
                let key = Store::key(prefix, rel);
                block_on(client.put(&key, bytes.into()))
                    .with_context(|| format!("cannot write {rel} in {self}"))?;
                Ok(())
            }
        }
    }

    /// Copies the local file `from` to `rel` (a new data file: no reader looks for it yet).
    pub fn upload(&self, from: &Path, rel: &str) -> Result<()> {
        let mut file =
            fs::File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
        let mut out = self.upload_to(rel)?;
        std::io::copy(&mut file, &mut out)
            .with_context(|| format!("cannot upload {} to {rel} in {self}", from.display()))?;
        out.finish()?;
        Ok(())
    }

    /// A new file at `rel` on object storage, written as a stream ([`Upload`]).
    pub fn upload_to(&self, rel: &str) -> Result<Upload> {
        let Root::S3 { client, prefix, .. } = &*self.0 else {
            anyhow::bail!("upload is for object storage");
        };
        Ok(Upload {
            out: Some(object_store::buffered::BufWriter::new(
                client.clone(),
                Store::key(prefix, rel),
            )),
            buf: Vec::new(),
            size: 0,
            name: format!("{rel} in {self}"),
        })
    }

    /// Deletes the file at `rel` (no error when it is gone already).
    pub fn delete(&self, rel: &str) -> Result<()> {
        match &*self.0 {
            Root::Local(dir) => match fs::remove_file(Store::local_path(dir, rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("cannot delete {rel} in {self}"))
                }
                _ => Ok(()),
            },
            Root::S3 { client, prefix, .. } => {
                let key = Store::key(prefix, rel);
                match block_on(client.delete(&key)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e).with_context(|| format!("cannot delete {rel} in {self}")),
                }
            }
        }
    }

    /// The size and time of the file at `rel`.
    pub fn head(&self, rel: &str) -> Result<Meta> {
        match &*self.0 {
            Root::Local(dir) => {
                let m = fs::metadata(Store::local_path(dir, rel))
                    .with_context(|| format!("no file {rel} in {self}"))?;
                Ok(Meta {
                    rel: rel.to_string(),
                    size: m.len(),
                    modified: chrono::DateTime::<chrono::Utc>::from(m.modified()?)
                        .timestamp_micros(),
                })
            }
            Root::S3 { client, prefix, .. } => {
                let key = Store::key(prefix, rel);
                let m = block_on(client.head(&key))
                    .with_context(|| format!("no file {rel} in {self}"))?;
                Ok(Meta {
                    rel: rel.to_string(),
                    size: m.size,
                    modified: m.last_modified.timestamp_micros(),
                })
            }
        }
    }

    /// Every file under the directory `rel` (`""`: the whole lake), at any depth, sorted.
    pub fn list(&self, rel: &str) -> Result<Vec<Meta>> {
        let mut out = match &*self.0 {
            Root::Local(dir) => {
                let mut out = Vec::new();
                let start = if rel.is_empty() {
                    dir.clone()
                } else {
                    Store::local_path(dir, rel)
                };
                let mut dirs = vec![start];
                while let Some(d) = dirs.pop() {
                    let entries = match fs::read_dir(&d) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e).with_context(|| format!("{}", d.display())),
                    };
                    for e in entries {
                        let e = e?;
                        let meta = e.metadata()?;
                        if meta.is_dir() {
                            dirs.push(e.path());
                            continue;
                        }
                        let path = e.path();
                        let rel = path
                            .strip_prefix(dir)
                            .expect("listed under the root")
                            .components()
                            .map(|c| c.as_os_str().to_string_lossy())
                            .collect::<Vec<_>>()
                            .join("/");
                        out.push(Meta {
                            rel,
                            size: meta.len(),
                            modified: chrono::DateTime::<chrono::Utc>::from(meta.modified()?)
                                .timestamp_micros(),
                        });
                    }
                }
                out
            }
            Root::S3 { client, prefix, .. } => {
                let from = Store::key(prefix, rel);
                let skip = prefix.parts().count();
                block_on(async {
                    use futures::TryStreamExt;
                    let listed: Vec<_> = client.list(Some(&from)).try_collect().await?;
                    anyhow::Ok(
                        listed
                            .into_iter()
                            .map(|m| Meta {
                                rel: m
                                    .location
                                    .parts()
                                    .skip(skip)
                                    .map(|p| p.as_ref().to_string())
                                    .collect::<Vec<_>>()
                                    .join("/"),
                                size: m.size,
                                modified: m.last_modified.timestamp_micros(),
                            })
                            .collect(),
                    )
                })
                .with_context(|| format!("cannot list {rel} in {self}"))?
            }
        };
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Root::Local(dir) => write!(f, "{}", dir.display()),
            Root::S3 { url, .. } => write!(f, "{}", url.as_str().trim_end_matches('/')),
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({self})")
    }
}

impl PartialEq for Store {
    fn eq(&self, other: &Self) -> bool {
        self.url() == other.url()
    }
}

impl Eq for Store {}

/// A new file on object storage, streamed as it is written: nothing of it is on local disk, and
/// memory holds a few parts of it at most (multipart above 10 MiB). Nothing is visible at its key
/// before [`Upload::finish`]; dropped unfinished (its writer failed) it aborts the upload, and a
/// process that dies meanwhile leaves at most an incomplete multipart upload, which is never
/// listed and which a bucket's lifecycle rule removes.
pub struct Upload {
    out: Option<object_store::buffered::BufWriter>,
    buf: Vec<u8>,
    size: u64,
    name: String,
}

/// Bytes gathered before they are handed to the uploader: one hand-over (and, called from an
/// async context, one thread) per chunk instead of per small write.
const UPLOAD_CHUNK: usize = 4 << 20;

impl Upload {
    /// Hands the gathered bytes to the uploader.
    fn send(&mut self) -> std::io::Result<()> {
        let (Some(out), false) = (self.out.as_mut(), self.buf.is_empty()) else {
            return Ok(());
        };
        let bytes = Bytes::from(std::mem::take(&mut self.buf));
        block_on(out.put(bytes)).map_err(std::io::Error::other)
    }

    /// Completes the upload, which makes the file visible at its key; returns its size.
    pub fn finish(mut self) -> Result<u64> {
        self.send()
            .with_context(|| format!("cannot upload {}", self.name))?;
        let mut out = self.out.take().expect("an upload is finished once");
        block_on(async {
            use tokio::io::AsyncWriteExt;
            out.shutdown().await
        })
        .with_context(|| format!("cannot upload {}", self.name))?;
        Ok(self.size)
    }
}

impl std::io::Write for Upload {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        self.size += bytes.len() as u64;
        if self.buf.len() >= UPLOAD_CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(mut out) = self.out.take() {
            // Best effort: the parts sent so far are deleted (an upload that never reached
            // multipart has nothing to delete).
            let _ = block_on(out.abort());
        }
    }
}

/// Runs `fut` to completion from synchronous code, on a runtime that lives as long as the
/// process (an S3 client's pooled connections belong to the runtime that opened them, so a
/// runtime per call would leave the pool with dead ones). From inside another runtime (which
/// cannot be blocked on) it runs on a thread of its own.
pub fn block_on<F: Future + Send>(fut: F) -> F::Output
where
    F::Output: Send,
{
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("deskpulse-lake-io")
            .enable_all()
            .build()
            .expect("a tokio runtime")
    });
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| runtime.block_on(fut))
                .join()
                .expect("the lake I/O thread panicked")
        })
    } else {
        runtime.block_on(fut)
    }
}

/// Object stores for a DataFusion runtime that is handed plans naming the lake's files by URL
/// (a cluster's executors): local files, and any `s3://` bucket, reached with this process's
/// own `AWS_*` variables the first time a plan names it.
#[derive(Debug, Default)]
pub struct Stores(datafusion::execution::object_store::DefaultObjectStoreRegistry);

impl datafusion::execution::object_store::ObjectStoreRegistry for Stores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.0.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        match self.0.get_store(url) {
            Err(_) if url.scheme() == "s3" => {
                let bucket = url.host_str().unwrap_or_default();
                let client: Arc<dyn ObjectStore> = Arc::new(
                    AmazonS3Builder::from_env()
                        .with_bucket_name(bucket)
                        .build()?,
                );
                self.0.register_store(url, client.clone());
                Ok(client)
            }
            found => found,
        }
    }
}

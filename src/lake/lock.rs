//! The lake's write lock, which writers hold from the check of their merge to the snapshot they
//! publish (see [`super::Staging::commit`]), so that they commit in turn.
//!
//! A local lake is locked with an OS file lock on `_lock`, released when its holder exits, even
//! by a crash. Object storage has no such lock: there `_lock` is an object created only if
//! absent (`If-None-Match: *`) that names its holder and a lease, renewed while the holder
//! runs; a lock whose lease ran out is taken over, and so is one whose holder ran on this
//! machine and is gone (a crashed writer's lock is not waited for). Either way the lock is
//! for progress, not for safety: a snapshot is published only under a name no one took, so
//! two writers that both believed they held the lock cannot both publish, and the one that
//! loses fails without changing what readers see.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::store::Store;
use crate::model::Micros;

/// How long a lock object holds without renewal: a holder that died is taken over after this.
const LEASE: Duration = Duration::from_secs(30);
/// How often a waiting writer looks again.
const POLL: Duration = Duration::from_millis(200);
const LOCK: &str = "_lock";

/// Proof that this process holds the lake's write lock; dropping it releases the lock.
pub struct WriteLock {
    _file: Option<File>,
    _lease: Option<Lease>,
}

/// Takes the lake's write lock, waiting (with a message) while another writer holds it.
pub(super) fn write_lock(store: &Store) -> Result<WriteLock> {
    let waiting =
        || format!("another process is committing to the lake {store}; waiting for its turn");
    Ok(match store.local_dir() {
        Some(dir) => WriteLock {
            _file: Some(lock_file(&dir.join(LOCK), waiting)?),
            _lease: None,
        },
        None => WriteLock {
            _file: None,
            _lease: Some(Lease::take(store, waiting)?),
        },
    })
}

/// Opens and locks `path` (an OS file lock, released when the holder exits, even by a crash),
/// waiting with a message while another process holds it.
pub(super) fn lock_file(path: &Path, waiting: impl FnOnce() -> String) -> Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!("deskpulse: {}", waiting());
            file.lock()
                .with_context(|| format!("cannot lock {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    Ok(file)
}

/// What the lock object says.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    id: String,
    /// The machine the holder runs on, and its process there.
    #[serde(default)]
    host: String,
    pid: u32,
    /// When the lease runs out unless renewed (UTC microseconds).
    expires_at: Micros,
}

impl Holder {
    fn body(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Whether the lock is free to take over: its lease ran out, or its holder was a process
    /// of this machine that no longer runs.
    fn is_dead(&self) -> bool {
        self.expires_at < chrono::Utc::now().timestamp_micros()
            || (self.host == hostname() && !Path::new(&format!("/proc/{}", self.pid)).exists())
    }
}

/// This machine's name (empty where the kernel does not say it).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A held lock object, renewed by a thread of its own until dropped.
struct Lease {
    store: Store,
    id: String,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

fn expiry() -> Micros {
    chrono::Utc::now().timestamp_micros() + LEASE.as_micros() as Micros
}

impl Lease {
    fn take(store: &Store, waiting: impl FnOnce() -> String) -> Result<Lease> {
        let id = uuid::Uuid::new_v4().to_string();
        let holder = |expires_at| Holder {
            id: id.clone(),
            host: hostname(),
            pid: std::process::id(),
            expires_at,
        };
        let mut waiting = Some(waiting);
        loop {
            if store.put_new(LOCK, holder(expiry()).body()?)? {
                break;
            }
            let current = store
                .get(LOCK)?
                .and_then(|b| serde_json::from_slice::<Holder>(&b).ok());
            match current {
                // Its holder is gone: taken over. (Two writers taking it over at once both go
                // on; the snapshot's create-only publish lets one of them commit.)
                Some(h) if h.is_dead() => {
                    store.delete(LOCK)?;
                }
                // Released meanwhile (or unreadable, being written): try again.
                None => {}
                Some(_) => {
                    if let Some(w) = waiting.take() {
                        eprintln!("deskpulse: {}", w());
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let (renew_store, renew_id) = (store.clone(), id.clone());
        let renewer = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(LEASE / 3) {
                let body = Holder {
                    id: renew_id.clone(),
                    host: hostname(),
                    pid: std::process::id(),
                    expires_at: expiry(),
                }
                .body();
                let ours = renew_store
                    .get(LOCK)
                    .ok()
                    .flatten()
                    .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
                    .is_some_and(|h| h.id == renew_id);
                if let (true, Ok(body)) = (ours, body) {
                    let _ = renew_store.put(LOCK, body);
                }
            }
        });
        Ok(Lease {
            store: store.clone(),
            id,
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(r) = self.renewer.take() {
            let _ = r.join();
        }
        let ours = self
            .store
            .get(LOCK)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
            .is_some_and(|h| h.id == self.id);
        if ours {
            let _ = self.store.delete(LOCK);
        }
    }
}

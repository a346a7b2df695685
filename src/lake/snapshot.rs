//! The lake's snapshots: which version of every Delta table belongs to one consistent state.
//!
//! Delta Lake commits one table at a time; an ingest writes several. Each completed commit of
//! the lake adds `_snapshots/<version>.json`, naming the Delta version of every table it left.
//! deskpulse reads the tables at the versions of the newest snapshot (or of an older one, for
//! time travel), so a commit becomes visible across all tables at once, and a crash between two
//! table commits leaves table versions that no snapshot names: nobody reads them, and the next
//! writer restores those tables to the snapshot's versions before it writes.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::Micros;

use super::store::Store;
use crate::timeparse::format_micros;

/// Where the snapshots live, under the lake's root.
const DIR: &str = "_snapshots";

/// One consistent state of the lake.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// 0 for an empty lake, then 1, 2, ... one per completed commit.
    pub version: u64,
    /// When it was published (UTC microseconds; 0 for the empty lake).
    pub committed_at: Micros,
    /// The Delta version of each table (by name) in this state; a table not listed is empty.
    pub tables: BTreeMap<String, u64>,
    /// What the commit was (`ingest tickets.csv`, `stream-…`, `compact`), for `history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// Which snapshot a reader wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum At {
    /// The newest.
    #[default]
    Latest,
    /// The snapshot of this version (`--as-of-version`).
    Version(u64),
    /// The newest snapshot published at or before this time (`--as-of-time`).
    Time(Micros),
}

fn path(version: u64) -> String {
    format!("{DIR}/{version:020}.json")
}

/// The versions of every snapshot, in order.
pub fn versions(store: &Store) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = store
        .list(DIR)?
        .into_iter()
        .filter_map(|m| {
            let name = m.rel.rsplit('/').next()?;
            name.strip_suffix(".json")?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Reads snapshot `version` (0: the empty lake).
pub fn read(store: &Store, version: u64) -> Result<Snapshot> {
    if version == 0 {
        return Ok(Snapshot::default());
    }
    let p = path(version);
    let bytes = store.get(&p)?.with_context(|| {
        format!(
            "the lake has no snapshot version {version} (see `deskpulse history` for the versions)"
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("cannot read {p} in {store}"))
}

/// The snapshot a reader asked for.
pub fn resolve(store: &Store, at: At) -> Result<Snapshot> {
    let all = versions(store)?;
    match at {
        At::Latest => read(store, all.last().copied().unwrap_or(0)),
        At::Version(v) => read(store, v),
        At::Time(t) => {
            // Published in version order, so the times are in order too: the last one not after t.
            let mut found = None;
            for v in all {
                let s = read(store, v)?;
                if s.committed_at > t {
                    break;
                }
                found = Some(s);
            }
            found.with_context(|| {
                format!(
                    "the lake has no snapshot at or before {} (its first commit is later)",
                    format_micros(t)
                )
            })
        }
    }
}

/// Publishes the next snapshot after `base` with `tables`: written whole, under its version's
/// name only if no other writer took that version first (a hard link locally, a create-only
/// put on object storage), so the snapshot that exists is always complete, and two writers
/// never publish the same version.
pub fn publish(
    store: &Store,
    base: &Snapshot,
    tables: BTreeMap<String, u64>,
    operation: &str,
) -> Result<Snapshot> {
    let next = Snapshot {
        version: base.version + 1,
        committed_at: chrono::Utc::now().timestamp_micros(),
        tables,
        operation: Some(operation.to_string()),
    };
    let file = path(next.version);
    super::parquet::crash_point();
    let published = store.put_new(&file, serde_json::to_vec_pretty(&next)?)?;
    anyhow::ensure!(
        published,
        "cannot publish lake snapshot {file} in {store}: another writer published it first"
    );
    Ok(next)
}

/// Deletes snapshot `version` (clean-up: its files may be gone).
pub fn expire(store: &Store, version: u64) -> Result<()> {
    store.delete(&path(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_publish_in_order_and_resolve_by_version_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let root = &Store::open(dir.path()).unwrap();
        let empty = resolve(root, At::Latest).unwrap();
        assert_eq!(empty, Snapshot::default());
        let one = publish(root, &empty, [("tickets".to_string(), 0)].into(), "a").unwrap();
        let two = publish(root, &one, [("tickets".to_string(), 1)].into(), "b").unwrap();
        assert_eq!((one.version, two.version), (1, 2));
        assert_eq!(resolve(root, At::Latest).unwrap(), two);
        assert_eq!(resolve(root, At::Version(1)).unwrap(), one);
        assert_eq!(resolve(root, At::Time(one.committed_at)).unwrap(), one);
        assert!(resolve(root, At::Time(one.committed_at - 1)).is_err());
        assert!(resolve(root, At::Version(3)).is_err());
        // A second writer that started from snapshot 1 cannot publish version 2 again.
        assert!(publish(root, &one, BTreeMap::new(), "c").is_err());
        assert_eq!(resolve(root, At::Latest).unwrap(), two);
        assert_eq!(versions(root).unwrap(), vec![1, 2]);
    }
}

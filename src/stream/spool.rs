//! The spool: where an event is made durable before it is acknowledged, and the record of which
//! event ids already reached the lake.
//!
//! ```text
//! lake/_stream/spool/<segment>.spool   appended and fsync'd per request; one entry per line:
//!                                      "E <event line>", "R <refused line as JSON>",
//!                                      "A <alert as JSON>" (the outbox) or
//!                                      "D <alert id as a JSON string>" (that alert is done)
//! lake/_stream/seen.ids                event ids in the lake, newest last (one per line)
//! ```
//! Segments are sealed when a micro-batch is cut and deleted only after that batch is in the
//! lake, so a crash at any point leaves every acknowledged event either in the lake or in a
//! segment. Segment ids are increasing microsecond timestamps, so names never repeat across
//! restarts (they also name the batch's rejects file).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::recent::Recent;
use crate::model::Reject;

/// One spooled entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// An accepted event, as its NDJSON line.
    Event(String),
    /// A refused line, on its way to `_rejects`.
    Reject(Reject),
    /// An alert in the outbox: raised, maybe not yet delivered.
    Alert(String),
    /// The alert with this id is done with (see `alerts`).
    Done(String),
}

#[derive(Serialize, Deserialize)]
struct RejectLine {
    source_file: String,
    line: u64,
    column: Option<String>,
    reason: String,
    raw: String,
}

impl Entry {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            // An accepted line is one line of valid JSON: it cannot contain a newline.
            Entry::Event(raw) => {
                out.extend_from_slice(b"E ");
                out.extend_from_slice(raw.as_bytes());
            }
            Entry::Reject(r) => {
                out.extend_from_slice(b"R ");
                let line = RejectLine {
                    source_file: r.source_file.clone(),
                    line: r.line,
                    column: r.column.clone(),
                    reason: r.reason.clone(),
                    raw: r.raw.clone(),
                };
                serde_json::to_writer(&mut *out, &line).expect("a reject serialises");
            }
            // serde_json writes no raw newline.
            Entry::Alert(json) => {
                out.extend_from_slice(b"A ");
                out.extend_from_slice(json.as_bytes());
            }
            Entry::Done(id) => {
                out.extend_from_slice(b"D ");
                serde_json::to_writer(&mut *out, id).expect("a string serialises");
            }
        }
        out.push(b'\n');
    }

    fn decode(line: &str) -> Option<Entry> {
        if let Some(raw) = line.strip_prefix("E ") {
            return Some(Entry::Event(raw.to_string()));
        }
        if let Some(json) = line.strip_prefix("A ") {
            return Some(Entry::Alert(json.to_string()));
        }
        if let Some(id) = line.strip_prefix("D ") {
            return serde_json::from_str(id).ok().map(Entry::Done);
        }
        let r: RejectLine = serde_json::from_str(line.strip_prefix("R ")?).ok()?;
        Some(Entry::Reject(Reject {
            source_file: r.source_file,
            line: r.line,
            column: r.column,
            reason: r.reason,
            raw: r.raw,
        }))
    }
}

/// The open spool: appends go to the current segment.
pub struct Spool {
    dir: PathBuf,
    current: File,
    current_id: u64,
    current_len: u64,
}

/// The directory of stream state inside a lake.
pub fn state_dir(lake: &Path) -> PathBuf {
    lake.join("_stream")
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.spool"))
}

fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        let id = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".spool"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            out.push((id, p));
        }
    }
    out.sort();
    Ok(out)
}

/// Entries of one segment. A last line without its newline is a write torn by a crash: it was
/// never acknowledged (acknowledgement follows the fsync), so it is dropped.
fn read_segment(path: &Path) -> Result<Vec<Entry>> {
    let mut r = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        n += 1;
        let Some(text) = line.strip_suffix('\n') else {
            eprintln!(
                "deskpulse stream: {}: dropped a torn last line (never acknowledged)",
                path.display()
            );
            break;
        };
        let entry = Entry::decode(text)
            .with_context(|| format!("{}: line {n} is not a spool entry", path.display()))?;
        out.push(entry);
    }
    Ok(out)
}

fn now_micros() -> u64 {
    chrono::Utc::now().timestamp_micros().max(0) as u64
}

impl Spool {
    /// Opens the spool in `state` (creating it) and returns the entries of the segments left by
    /// earlier runs, oldest first. New entries go to a new segment. Segments a crash left
    /// without an entry (opened and never written, or holding only a torn line) are removed.
    pub fn open(state: &Path) -> Result<(Spool, Vec<Entry>)> {
        let dir = state.join("spool");
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the spool in {}", dir.display()))?;
        let mut replay = Vec::new();
        let mut last = 0;
        for (id, path) in segments(&dir)? {
            let entries = read_segment(&path)?;
            if entries.is_empty() {
                fs::remove_file(&path)?;
            }
            replay.extend(entries);
            last = id;
        }
        let id = now_micros().max(last + 1);
        let current = create_segment(&dir, id)?;
        Ok((
            Spool {
                dir,
                current,
                current_id: id,
                current_len: 0,
            },
            replay,
        ))
    }

    /// Appends entries and fsyncs them: when this returns, they survive a crash.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.write(entries, true)
    }

    /// Appends entries; with `durable`, fsyncs them. (Without, they survive the process being
    /// killed but not the machine: for marks whose loss only repeats work.)
    pub fn write(&mut self, entries: &[Entry], durable: bool) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for e in entries {
            e.encode(&mut buf);
        }
        self.current
            .write_all(&buf)
            .and_then(|_| {
                if durable {
                    self.current.sync_data()
                } else {
                    Ok(())
                }
            })
            .context("cannot append to the spool")?;
        self.current_len += buf.len() as u64;
        Ok(())
    }

    /// Seals the current segment (when it holds anything) and starts a new one. Returns the id
    /// of the newest sealed segment: every entry appended so far is in a segment up to it.
    pub fn seal(&mut self) -> Result<u64> {
        if self.current_len == 0 {
            return Ok(self.current_id - 1);
        }
        let sealed = self.current_id;
        let id = now_micros().max(sealed + 1);
        self.current = create_segment(&self.dir, id)?;
        self.current_id = id;
        self.current_len = 0;
        Ok(sealed)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segment appends go to now.
    pub fn current(&self) -> u64 {
        self.current_id
    }

    /// Closes the spool. Without `keep` (nothing in any segment is needed: every event is in
    /// the lake and no alert is open), every segment is removed; otherwise the current one is
    /// removed when nothing was written to it.
    pub fn close(self, keep: bool) -> Result<()> {
        if !keep {
            return remove_upto(&self.dir, u64::MAX);
        }
        if self.current_len == 0 {
            fs::remove_file(segment_path(&self.dir, self.current_id))?;
        }
        Ok(())
    }
}

fn create_segment(dir: &Path, id: u64) -> Result<File> {
    let path = segment_path(dir, id);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // The new name must survive a crash too, or its fsync'd entries could be unreachable.
    File::open(dir)?.sync_all()?;
    Ok(f)
}

/// Deletes the sealed segments up to `upto` (their entries are in the lake).
pub fn remove_upto(dir: &Path, upto: u64) -> Result<()> {
    for (id, path) in segments(dir)? {
        if id <= upto {
            fs::remove_file(&path)?;
        }
    }
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// The event ids already in the lake: the newest `capacity` of them are remembered across
/// restarts, so a client retry or a replay within that window is dropped. (An older repeat still
/// cannot double a row: the lake keeps one row per key.)
pub struct Seen {
    path: PathBuf,
    ids: Recent<()>,
    capacity: usize,
    lines_in_file: usize,
}

impl Seen {
    pub fn open(state: &Path, capacity: usize) -> Result<Seen> {
        let path = state.join("seen.ids");
        let mut seen = Seen {
            path,
            ids: Recent::new(capacity),
            capacity: capacity.max(1),
            lines_in_file: 0,
        };
        if seen.path.exists() {
            for line in BufReader::new(File::open(&seen.path)?).lines() {
                let id = line?;
                // A torn last line is a partial id: harmless (it matches nothing).
                seen.ids.insert(id, ());
                seen.lines_in_file += 1;
            }
        }
        Ok(seen)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Records ids that reached the lake (fsync'd); rewrites the file when it has grown to
    /// twice the window.
    pub fn record(&mut self, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let mut buf = String::new();
        for id in ids {
            buf.push_str(&id);
            buf.push('\n');
            self.ids.insert(id, ());
            self.lines_in_file += 1;
        }
        if self.lines_in_file > 2 * self.capacity {
            let all: String = self.ids.keys().map(|i| format!("{i}\n")).collect();
            crate::lake::write_atomic(&self.path, all.as_bytes())?;
            self.lines_in_file = self.ids.len();
            return Ok(());
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(buf.as_bytes())?;
        f.sync_data()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(line: u64) -> Entry {
        Entry::Reject(Reject {
            source_file: "http:127.0.0.1".into(),
            line,
            column: Some("score_raw".into()),
            reason: "bad\nscore".into(),
            raw: "{\"x\":1}".into(),
        })
    }

    #[test]
    fn replays_unflushed_segments_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, replay) = Spool::open(dir.path()).unwrap();
        assert!(replay.is_empty());
        s.append(&[Entry::Event("{\"a\":1}".into()), reject(2)])
            .unwrap();
        let sealed = s.seal().unwrap();
        s.append(&[Entry::Event("{\"a\":2}".into())]).unwrap();
        remove_upto(s.dir(), sealed).unwrap();
        // A crash in the middle of an append: a partial line without its newline.
        let spool_dir = s.dir().to_path_buf();
        drop(s);
        let (_, last) = segments(&spool_dir).unwrap().pop().unwrap();
        OpenOptions::new()
            .append(true)
            .open(last)
            .unwrap()
            .write_all(b"E {\"a\":")
            .unwrap();
        let (mut s, replay) = Spool::open(dir.path()).unwrap();
        assert_eq!(replay, vec![Entry::Event("{\"a\":2}".into())]);
        // Nothing written since: sealing is a no-op that still covers the replayed segment.
        let sealed = s.seal().unwrap();
        remove_upto(s.dir(), sealed).unwrap();
        drop(s);
        let (s, replay) = Spool::open(dir.path()).unwrap();
        assert!(replay.is_empty());
        // A crash leaves the segment that run had opened, empty: the next start removes it.
        let spool_dir = s.dir().to_path_buf();
        drop(s);
        assert_eq!(segments(&spool_dir).unwrap().len(), 1);
        let (s, _) = Spool::open(dir.path()).unwrap();
        assert_eq!(
            segments(&spool_dir).unwrap().len(),
            1,
            "only the new run's segment"
        );
        s.close(true).unwrap();
        assert!(segments(&spool_dir).unwrap().is_empty());
        // Rejects keep their fields (a newline in a reason included), and so do outbox entries.
        for e in [
            reject(7),
            Entry::Alert("{\"alert_id\":\"escalation:a\\nb\"}".into()),
            Entry::Done("escalation:a\nb".into()),
        ] {
            let mut buf = Vec::new();
            e.encode(&mut buf);
            let text = String::from_utf8(buf).unwrap();
            assert_eq!(text.matches('\n').count(), 1);
            assert_eq!(Entry::decode(text.trim_end()), Some(e));
        }
    }

    #[test]
    fn seen_ids_survive_a_restart_within_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::open(dir.path(), 3).unwrap();
        seen.record((1..=5).map(|i| format!("e{i}"))).unwrap();
        assert!(!seen.contains("e2") && seen.contains("e3") && seen.contains("e5"));
        seen.record(["e6".to_string(), "e7".to_string()]).unwrap();
        let again = Seen::open(dir.path(), 3).unwrap();
        assert!(again.contains("e5") && again.contains("e7") && !again.contains("e4"));
        // The file was compacted to the window when it passed twice the window.
        let lines = fs::read_to_string(dir.path().join("seen.ids")).unwrap();
        assert_eq!(lines, "e5\ne6\ne7\n");
    }
}

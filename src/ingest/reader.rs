//! Reading input files record by record, in bounded memory: CSV, a JSON array (top level or as a
//! member of a top-level object, as in API pages like `{"tickets": [...]}`), and NDJSON.
//!
//! A record that cannot be read (wrong field count, invalid UTF-8, malformed JSON, a truncated
//! end of file) is handed on as a [`Fault`] with its line, so that it becomes a reject; only a file
//! that cannot be read at all is an error.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;

use serde_json::Value;

/// Why one record (or one of its columns) was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{reason}", column.as_ref().map(|c| format!("column '{c}': ")).unwrap_or_default())]
pub struct Fault {
    pub column: Option<String>,
    pub reason: String,
    /// Not a fault of the row: a ratings row with no score is a ticket nobody rated. Counted
    /// as *unrated*, never rejected.
    pub unrated: bool,
}

impl Fault {
    pub fn new(column: Option<&str>, reason: impl Into<String>) -> Fault {
        Fault {
            column: column.map(str::to_string),
            reason: reason.into(),
            unrated: false,
        }
    }
    pub fn column(column: &str, reason: impl Into<String>) -> Fault {
        Fault::new(Some(column), reason)
    }
    pub fn record(reason: impl Into<String>) -> Fault {
        Fault::new(None, reason)
    }
    /// A ratings row without a score (see [`Fault::unrated`]).
    pub fn unrated(column: &str) -> Fault {
        Fault {
            unrated: true,
            ..Fault::column(column, "no score: not rated")
        }
    }
}

/// The file formats deskpulse reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Ndjson,
}

impl Format {
    /// Decides by extension, then by the first non-blank byte (`[` JSON, `{` NDJSON or JSON).
    pub fn detect(path: &std::path::Path, head: &[u8]) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") | Some("tsv") | Some("txt") => return Format::Csv,
            Some("ndjson") | Some("jsonl") => return Format::Ndjson,
            Some("json") => return Format::Json,
            _ => {}
        }
        let head = strip_bom(head);
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => Format::Json,
            Some(b'{') => {
                // NDJSON when the first line closes an object and another object follows.
                let first_line_end = head.iter().position(|b| *b == b'\n');
                match first_line_end {
                    Some(i)
                        if head[i + 1..].iter().find(|b| !b.is_ascii_whitespace())
                            == Some(&b'{') =>
                    {
                        Format::Ndjson
                    }
                    _ => Format::Json,
                }
            }
            _ => Format::Csv,
        }
    }
}

/// The buffer of an input file: a read of at least this size is not copied through it.
pub const READ_BUFFER: usize = 1 << 20;

pub fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

/// One input record, whatever the format.
pub trait Row {
    /// The 1-based line the record starts on.
    fn line(&self) -> u64;
    /// The value of a column (the first column of that name); `None` when absent.
    /// For JSON, a dotted name (`via.channel`) reaches into nested objects.
    fn get(&self, column: &str) -> Result<Option<Cow<'_, str>>, Fault>;
    /// Every value of a column that appears several times (as Jira repeats `Comment`).
    fn get_all(&self, column: &str) -> Result<Vec<Cow<'_, str>>, Fault>;
    /// The record as text, for the rejects.
    fn raw(&self) -> String;
}

/// The header of a CSV file: column name → positions (a name may repeat). Looked up for every
/// field of every record, hence the fast (not DoS-resistant) hasher: names come from one file.
#[derive(Debug, Clone, Default)]
pub struct Header {
    names: Vec<String>,
    index: HashMap<String, Vec<usize>, foldhash::fast::FixedState>,
}

impl Header {
    fn new(names: Vec<String>) -> Header {
        let mut index: HashMap<String, Vec<usize>, _> = HashMap::default();
        for (i, n) in names.iter().enumerate() {
            index.entry(n.clone()).or_default().push(i);
        }
        Header { names, index }
    }
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
    /// The position of the first column of this name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).map(|p| p[0])
    }
    /// How many columns of the header have this name.
    pub fn count(&self, name: &str) -> usize {
        self.index.get(name).map_or(0, Vec::len)
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A CSV record.
pub struct CsvRow<'a> {
    header: &'a Header,
    fields: &'a Record,
    line: u64,
}

impl<'a> CsvRow<'a> {
    /// The header of the file the record is from.
    #[cfg(test)]
    pub fn header(&self) -> &'a Header {
        self.header
    }

    /// The field at `position`, of the column named `column` (for a fault's message).
    #[inline]
    pub fn at(&self, position: usize, column: &str) -> Result<Option<&'a str>, Fault> {
        match self.fields {
            Record::Text(t) => Ok(t.get(position)),
            Record::Bytes(b) => b
                .get(position)
                .map(std::str::from_utf8)
                .transpose()
                .map_err(|_| Fault::column(column, "invalid UTF-8")),
        }
    }

    fn bytes(&self) -> &csv::ByteRecord {
        match self.fields {
            Record::Text(t) => t.as_byte_record(),
            Record::Bytes(b) => b,
        }
    }
}

impl Row for CsvRow<'_> {
    fn line(&self) -> u64 {
        self.line
    }
    fn get(&self, column: &str) -> Result<Option<Cow<'_, str>>, Fault> {
        match self.header.position(column) {
            Some(pos) => Ok(self.at(pos, column)?.map(Cow::Borrowed)),
            None => Ok(None),
        }
    }
    fn get_all(&self, column: &str) -> Result<Vec<Cow<'_, str>>, Fault> {
        let mut out = Vec::new();
        for p in self.header.index.get(column).into_iter().flatten() {
            if let Some(v) = self.at(*p, column)? {
                out.push(Cow::Borrowed(v));
            }
        }
        Ok(out)
    }
    fn raw(&self) -> String {
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        let _ = w.write_byte_record(self.bytes());
        let bytes = w.into_inner().unwrap_or_default();
        String::from_utf8_lossy(&bytes).trim_end().to_string()
    }
}

/// Reads a CSV file: checks the header with `check_header`, then calls `each` for every record
/// with a row, or with a fault for a record of the wrong width. A UTF-8 BOM is skipped.
pub fn read_csv<R: Read + Send>(
    input: R,
    check_header: impl FnOnce(&Header) -> Result<(), String>,
    mut each: impl FnMut(Result<&CsvRow<'_>, (u64, Fault, String)>) -> anyhow::Result<()>,
) -> anyhow::Result<Result<(), String>> {
    read_csv_chunks(input, check_header, 1024, |header, chunk| {
        chunk
            .records()
            .iter()
            .try_for_each(|record| match record.row(header) {
                Ok(row) => each(Ok(&row)),
                Err(bad) => each(Err(bad)),
            })
    })
}

/// One CSV record as read: a row once seen through its [`Header`], or a fault.
pub struct CsvRecord {
    line: u64,
    fields: Record,
    /// Why the record is refused; `unreadable` when the parser gave up on it (no raw text).
    fault: Option<Fault>,
    unreadable: bool,
}

/// A record's fields as parsed: text when the whole record is valid UTF-8 (checked once, on the
/// parsing thread), else bytes, checked field by field when read so that the fault names the
/// column.
enum Record {
    Text(csv::StringRecord),
    Bytes(csv::ByteRecord),
}

impl Record {
    /// The record's buffers, to parse the next record into.
    fn take_bytes(&mut self) -> csv::ByteRecord {
        match std::mem::replace(self, Record::Bytes(csv::ByteRecord::new())) {
            Record::Text(t) => t.into_byte_record(),
            Record::Bytes(b) => b,
        }
    }
}

impl CsvRecord {
    /// The record as a row, or its line, fault and raw text for the rejects.
    pub fn row<'a>(&'a self, header: &'a Header) -> Result<CsvRow<'a>, (u64, Fault, String)> {
        let row = CsvRow {
            header,
            fields: &self.fields,
            line: self.line,
        };
        match &self.fault {
            None => Ok(row),
            Some(f) if self.unreadable => Err((self.line, f.clone(), String::new())),
            Some(f) => Err((self.line, f.clone(), row.raw())),
        }
    }
}

/// A chunk of parsed CSV records in file order, owned, so that it can be converted on another
/// thread while the next chunks are read; its buffers go back to the reading thread when it is
/// dropped, to parse later records into.
pub struct CsvChunk {
    records: Vec<CsvRecord>,
    filled: usize,
    recycle: mpsc::Sender<Vec<CsvRecord>>,
}

impl CsvChunk {
    pub fn records(&self) -> &[CsvRecord] {
        &self.records[..self.filled]
    }
}

impl Drop for CsvChunk {
    fn drop(&mut self) {
        let _ = self.recycle.send(std::mem::take(&mut self.records));
    }
}

/// [`read_csv`] in chunks of up to `chunk` records (in file order), so that a caller can convert
/// chunks on all cores. Records are parsed on a thread of their own, one chunk ahead of
/// `each_chunk` (parsing is sequential, and was a core left idle half the time).
pub fn read_csv_chunks<R: Read + Send>(
    input: R,
    check_header: impl FnOnce(&Header) -> Result<(), String>,
    chunk: usize,
    mut each_chunk: impl FnMut(&Arc<Header>, CsvChunk) -> anyhow::Result<()>,
) -> anyhow::Result<Result<(), String>> {
    let seen = Arc::new(Seen::default());
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        // As large as an input's buffer ([`READ_BUFFER`]), which then hands over its reads:
        // the file is read straight into the parser's buffer.
        .buffer_capacity(READ_BUFFER)
        .from_reader(QuoteCounter {
            inner: BomSkipper::new(input),
            seen: seen.clone(),
        });
    let mut record = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record)? {
        return Ok(Err("the file is empty (no header line)".into()));
    }
    let names = record
        .iter()
        .enumerate()
        .map(|(i, b)| {
            std::str::from_utf8(b)
                .map(|s| s.trim().to_string())
                .map_err(|_| format!("header column {} is not valid UTF-8", i + 1))
        })
        .collect::<Result<Vec<_>, _>>();
    let header = match names {
        Ok(n) => Arc::new(Header::new(n)),
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = check_header(&header) {
        return Ok(Err(e));
    }
    let width = header.len();
    std::thread::scope(|scope| {
        let (full, filled_chunks) = mpsc::sync_channel::<CsvChunk>(1);
        let (recycle, recycled) = mpsc::channel::<Vec<CsvRecord>>();
        // Stops when the input ends or when this thread hangs up (an error in `each_chunk`).
        // Takes back a chunk's buffers when one has come back, else starts new ones: how many
        // are in use is bounded by how many chunks the caller holds.
        scope.spawn(move || {
            loop {
                let mut records = recycled.try_recv().unwrap_or_default();
                let (filled, end) = read_chunk(&mut reader, &seen, &mut records, chunk, width);
                let parsed = CsvChunk {
                    records,
                    filled,
                    recycle: recycle.clone(),
                };
                if (filled > 0 && full.send(parsed).is_err()) || end {
                    return;
                }
            }
        });
        for chunk in filled_chunks {
            each_chunk(&header, chunk)?;
        }
        Ok(Ok(()))
    })
}

/// Reads up to `chunk` records into `records` (reusing its buffers); returns how many, and
/// whether the input ended.
fn read_chunk<R: Read>(
    reader: &mut csv::Reader<R>,
    seen: &Seen,
    records: &mut Vec<CsvRecord>,
    chunk: usize,
    width: usize,
) -> (usize, bool) {
    let mut filled = 0;
    while filled < chunk {
        if filled == records.len() {
            records.push(CsvRecord {
                line: 0,
                fields: Record::Bytes(csv::ByteRecord::new()),
                fault: None,
                unreadable: false,
            });
        }
        let r = &mut records[filled];
        let mut record = r.fields.take_bytes();
        let line = reader.position().line();
        (r.line, r.fault, r.unreadable) = (line, None, false);
        match reader.read_byte_record(&mut record) {
            Ok(false) => return (filled, true),
            Ok(true) => {}
            Err(e) => {
                r.fault = Some(Fault::record(format!("unreadable CSV record: {e}")));
                r.unreadable = true;
            }
        }
        if r.unreadable {
            r.fields = Record::Bytes(record);
        } else {
            r.line = record.position().map_or(line, |p| p.line());
            if record.len() == 1 && record.get(0) == Some(b"") {
                r.fields = Record::Bytes(record);
                continue; // a blank line
            }
            // Quotes pair up in valid CSV: an odd count at the end of input means the last
            // field was cut inside its quotes.
            let last =
                seen.eof.load(Relaxed) && reader.position().byte() == seen.bytes.load(Relaxed);
            if last && seen.quotes.load(Relaxed) % 2 == 1 {
                r.fault = Some(Fault::record(
                    "file ends inside a quoted field (truncated file)",
                ));
            } else if record.len() != width {
                r.fault = Some(Fault::record(format!(
                    "expected {} fields, found {} (truncated or misquoted line)",
                    width,
                    record.len()
                )));
            }
            r.fields = match csv::StringRecord::from_byte_record(record) {
                Ok(text) => Record::Text(text),
                Err(e) => Record::Bytes(e.into_byte_record()),
            };
        }
        filled += 1;
    }
    (filled, false)
}

/// What passed through a [`QuoteCounter`]: bytes, quote bytes, and whether the input ended.
#[derive(Default)]
struct Seen {
    bytes: AtomicU64,
    quotes: AtomicU64,
    eof: AtomicBool,
}

/// Counts the bytes and quote bytes that pass through.
struct QuoteCounter<R> {
    inner: R,
    seen: Arc<Seen>,
}

impl<R: Read> Read for QuoteCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let s = &self.seen;
        s.bytes.fetch_add(n as u64, Relaxed);
        s.quotes
            .fetch_add(memchr::memchr_iter(b'"', &buf[..n]).count() as u64, Relaxed);
        if n == 0 && !buf.is_empty() {
            s.eof.store(true, Relaxed);
        }
        Ok(n)
    }
}

/// Skips a UTF-8 byte-order mark at the start of a stream and turns CRLF line ends into LF, so
/// that line numbers count the same way for files from every system. It works in the caller's
/// buffer: the input is read where the caller wants it and mended there (through buffers of its
/// own, every file was copied twice more on the parsing thread).
struct BomSkipper<R> {
    inner: R,
    started: bool,
    /// A `\r` read last, withheld until the next byte says whether it ends a line (`\r\n`).
    carriage_return: bool,
    /// Bytes already mended, not given yet: only after a read of fewer than four bytes.
    spare: Vec<u8>,
}

impl<R: Read> BomSkipper<R> {
    fn new(inner: R) -> Self {
        BomSkipper {
            inner,
            started: false,
            carriage_return: false,
            spare: Vec::new(),
        }
    }
}

impl<R: Read> Read for BomSkipper<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if !self.spare.is_empty() {
            let k = self.spare.len().min(out.len());
            out[..k].copy_from_slice(&self.spare[..k]);
            self.spare.drain(..k);
            return Ok(k);
        }
        // A withheld `\r` takes the first byte of the buffer and a BOM the first three: a
        // smaller read goes through four bytes, the rest kept for the next reads.
        if out.len() < 4 {
            let mut four = [0u8; 4];
            let n = self.read(&mut four)?;
            if n == 0 {
                return Ok(0);
            }
            self.spare.extend_from_slice(&four[..n]);
            return self.read(out);
        }
        loop {
            let held = usize::from(self.carriage_return);
            let n = self.inner.read(&mut out[held..])?;
            if n == 0 {
                if !self.carriage_return {
                    return Ok(0);
                }
                self.carriage_return = false;
                out[0] = b'\r';
                return Ok(1);
            }
            let mut from = 0;
            if self.carriage_return {
                out[0] = b'\r';
                self.carriage_return = false;
            } else if !self.started {
                // A BOM split across reads is not worth handling: reads here are large.
                from = n - strip_bom(&out[..n]).len();
            }
            self.started = true;
            let k = crlf_to_lf(&mut out[..held + n], from, &mut self.carriage_return);
            if k > 0 {
                return Ok(k);
            }
            // Only a BOM or a withheld `\r`: read on.
        }
    }
}

/// Moves `buf[from..]` to the front of `buf` with every `\r\n` made `\n`, and returns its new
/// length. A `\r` at the very end is left out and `carriage_return` set: the next byte decides.
fn crlf_to_lf(buf: &mut [u8], from: usize, carriage_return: &mut bool) -> usize {
    let (mut read, mut written) = (from, 0);
    while let Some(i) = memchr::memchr(b'\r', &buf[read..]).map(|i| read + i) {
        if read > written {
            buf.copy_within(read..i, written);
        }
        written += i - read;
        match buf.get(i + 1) {
            Some(b'\n') => {}
            Some(_) => {
                buf[written] = b'\r';
                written += 1;
            }
            None => *carriage_return = true,
        }
        read = i + 1;
    }
    if read > written {
        buf.copy_within(read.., written);
    }
    written + buf.len() - read
}

/// A JSON record (an object).
pub struct JsonRow<'a> {
    pub value: &'a Value,
    pub line: u64,
    pub raw: &'a [u8],
}

fn lookup<'v>(value: &'v Value, column: &str) -> Option<&'v Value> {
    if let Some(v) = value.get(column) {
        return Some(v);
    }
    let mut v = value;
    for part in column.split('.') {
        v = v.get(part)?;
    }
    Some(v)
}

fn scalar(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

impl Row for JsonRow<'_> {
    fn line(&self) -> u64 {
        self.line
    }
    fn get(&self, column: &str) -> Result<Option<Cow<'_, str>>, Fault> {
        Ok(lookup(self.value, column).and_then(scalar))
    }
    fn get_all(&self, column: &str) -> Result<Vec<Cow<'_, str>>, Fault> {
        Ok(match lookup(self.value, column) {
            Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
            Some(v) => scalar(v).into_iter().collect(),
            None => Vec::new(),
        })
    }
    fn raw(&self) -> String {
        String::from_utf8_lossy(self.raw).trim().to_string()
    }
}

/// One element of a JSON array or one NDJSON line, not yet parsed.
pub struct RawJson {
    pub line: u64,
    pub bytes: Vec<u8>,
    /// The member name of the array the element came from (`tickets`), if it was in an object.
    pub key: Option<String>,
    /// The file ended inside this element.
    pub truncated: bool,
    /// Not an element: text after the array's closing bracket.
    pub after_array: bool,
}

impl RawJson {
    /// Parses the element into an object, or says why it cannot be one.
    pub fn parse(&self) -> Result<Value, Fault> {
        match self.parse_value()? {
            v @ Value::Object(_) => Ok(v),
            _ => Err(Fault::record("record is not a JSON object")),
        }
    }

    /// Parses the element into any JSON value, or says why it cannot be read.
    pub fn parse_value(&self) -> Result<Value, Fault> {
        if self.truncated {
            return Err(Fault::record(
                "file ends inside this record (truncated file)",
            ));
        }
        if self.after_array {
            return Err(Fault::record(
                "text after the end of the JSON array (a second document, or a broken file)",
            ));
        }
        serde_json::from_slice::<Value>(&self.bytes)
            .map_err(|e| Fault::record(format!("malformed JSON: {e}")))
    }
}

/// Reads NDJSON: one object per line; blank lines are skipped.
pub fn read_ndjson<R: BufRead>(
    mut input: R,
    mut each: impl FnMut(RawJson) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut line = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line += 1;
        let body = if line == 1 { strip_bom(&buf) } else { &buf[..] };
        if body.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        each(RawJson {
            line,
            bytes: body.to_vec(),
            key: None,
            truncated: false,
            after_array: false,
        })?;
    }
    Ok(())
}

/// Streams the elements of a JSON array: the top-level array, or the first array-valued member of
/// a top-level object whose name `accept` allows. Elements are split on the raw bytes (tracking
/// strings, escapes and nesting), so only one element is in memory at a time.
/// A top-level object without such an array is one element when `whole`, else an error message.
pub fn read_json_array<R: Read>(
    input: R,
    accept: impl Fn(&str) -> bool,
    whole: bool,
    mut each: impl FnMut(RawJson) -> anyhow::Result<()>,
) -> anyhow::Result<Result<(), String>> {
    let mut bytes = std::io::BufReader::with_capacity(1 << 16, BomSkipper::new(input)).bytes();
    let mut line = 1u64;
    let mut next = |line: &mut u64| -> std::io::Result<Option<u8>> {
        match bytes.next().transpose()? {
            Some(b) => {
                if b == b'\n' {
                    *line += 1;
                }
                Ok(Some(b))
            }
            None => Ok(None),
        }
    };
    let skip_ws =
        |line: &mut u64, next: &mut dyn FnMut(&mut u64) -> std::io::Result<Option<u8>>| {
            loop {
                match next(line)? {
                    Some(b) if b.is_ascii_whitespace() => continue,
                    other => return Ok::<_, std::io::Error>(other),
                }
            }
        };

    // Find the array.
    let first = skip_ws(&mut line, &mut next)?;
    let key = match first {
        Some(b'[') => None,
        Some(b'{') => {
            // Walk the top-level members until an accepted name with an array value, keeping
            // the others' text: without such an array, the object may be one record (a single
            // API answer such as `{"ticket": {...}}`).
            let (start_line, mut others, mut found) = (line, b"{".to_vec(), None);
            loop {
                match skip_ws(&mut line, &mut next)? {
                    Some(b'"') => {}
                    Some(b',') => continue,
                    Some(b'}') | None => break,
                    Some(_) => return Ok(Err("malformed JSON object at top level".into())),
                }
                let name = read_string_body(&mut line, &mut next)?;
                if skip_ws(&mut line, &mut next)? != Some(b':') {
                    return Ok(Err("malformed JSON object at top level".into()));
                }
                let start = skip_ws(&mut line, &mut next)?;
                if start == Some(b'[') && accept(&name) {
                    found = Some(name);
                    break;
                }
                if others.len() > 1 {
                    others.push(b',');
                }
                others.extend_from_slice(format!("\"{name}\":").as_bytes());
                let Some(b) = start else { break };
                others.push(b);
                let closed = match b {
                    b'{' | b'[' => !skip_value(b, &mut line, &mut next, &mut others)?,
                    b'"' => {
                        others
                            .extend_from_slice(read_string_body(&mut line, &mut next)?.as_bytes());
                        others.push(b'"');
                        false
                    }
                    // A number, true, false or null: up to the next comma or the object's end.
                    _ => loop {
                        match next(&mut line)? {
                            Some(b',') => break false,
                            Some(b'}') | None => break true,
                            Some(c) => others.push(c),
                        }
                    },
                };
                if closed {
                    break;
                }
            }
            match found {
                Some(k) => Some(k),
                None if !whole => {
                    return Ok(Err("no array of records found in the JSON object".into()));
                }
                None => {
                    others.push(b'}');
                    each(RawJson {
                        line: start_line,
                        bytes: others,
                        key: None,
                        truncated: false,
                        after_array: false,
                    })?;
                    return after_array(&None, &mut line, &mut next, &mut each);
                }
            }
        }
        _ => return Ok(Err("not a JSON array or object".into())),
    };

    // Split the array's elements.
    loop {
        let start = skip_ws(&mut line, &mut next)?;
        let start_line = line;
        let b = match start {
            None => {
                each(RawJson {
                    line: start_line,
                    bytes: Vec::new(),
                    key: key.clone(),
                    truncated: true,
                    after_array: false,
                })?;
                return Ok(Ok(()));
            }
            Some(b']') => return after_array(&key, &mut line, &mut next, &mut each),
            Some(b',') => continue,
            Some(b) => b,
        };
        let mut buf = vec![b];
        let complete = match b {
            b'{' | b'[' => skip_value(b, &mut line, &mut next, &mut buf)?,
            _ => {
                // A scalar element: read to the next comma or bracket.
                let mut ended = false;
                while let Some(c) = next(&mut line)? {
                    if c == b',' || c == b']' {
                        ended = true;
                        each(RawJson {
                            line: start_line,
                            bytes: std::mem::take(&mut buf),
                            key: key.clone(),
                            truncated: false,
                            after_array: false,
                        })?;
                        if c == b']' {
                            return after_array(&key, &mut line, &mut next, &mut each);
                        }
                        break;
                    }
                    buf.push(c);
                }
                if ended {
                    continue;
                }
                false
            }
        };
        each(RawJson {
            line: start_line,
            bytes: buf,
            key: key.clone(),
            truncated: !complete,
            after_array: false,
        })?;
        if !complete {
            return Ok(Ok(()));
        }
    }
}

/// After a top-level array's closing bracket only white space may follow: anything else is handed
/// on as one element that cannot be read (a reject), never silently ignored. (After an array in an
/// API page's object, the rest of the object follows; it is not read.)
fn after_array(
    key: &Option<String>,
    line: &mut u64,
    next: &mut dyn FnMut(&mut u64) -> std::io::Result<Option<u8>>,
    each: &mut dyn FnMut(RawJson) -> anyhow::Result<()>,
) -> anyhow::Result<Result<(), String>> {
    if key.is_some() {
        return Ok(Ok(()));
    }
    let (mut start, mut rest) = (None, Vec::new());
    while let Some(b) = next(line)? {
        if start.is_none() && b.is_ascii_whitespace() {
            continue;
        }
        start.get_or_insert(*line);
        // The raw text a reject keeps: enough to recognise it.
        if rest.len() < 4096 {
            rest.push(b);
        }
    }
    if let Some(start) = start {
        each(RawJson {
            line: start,
            bytes: rest,
            key: None,
            truncated: false,
            after_array: true,
        })?;
    }
    Ok(Ok(()))
}

/// Reads the rest of a JSON string after its opening quote; returns its raw (unescaped) content.
fn read_string_body(
    line: &mut u64,
    next: &mut dyn FnMut(&mut u64) -> std::io::Result<Option<u8>>,
) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut escape = false;
    while let Some(b) = next(line)? {
        if escape {
            escape = false;
        } else if b == b'\\' {
            escape = true;
        } else if b == b'"' {
            break;
        }
        out.push(b);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Copies an object or array (after its opening byte, already in `buf`) into `buf`.
/// Returns false when the input ends first.
fn skip_value(
    open: u8,
    line: &mut u64,
    next: &mut dyn FnMut(&mut u64) -> std::io::Result<Option<u8>>,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let _ = open;
    let mut depth = 1usize;
    let mut in_string = false;
    let mut escape = false;
    while let Some(b) = next(line)? {
        buf.push(b);
        if in_string {
            if escape {
                escape = false;
            } else if b == b'\\' {
                escape = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(true);
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records of a chunked read, as (line, first field or fault).
    fn chunked(csv: &str, chunk: usize) -> Vec<Vec<(u64, String)>> {
        let mut chunks = Vec::new();
        let r = read_csv_chunks(
            csv.as_bytes(),
            |_| Ok(()),
            chunk,
            |header, records| {
                let rows = records.records().iter().map(|rec| match rec.row(header) {
                    Ok(row) => (
                        row.line,
                        String::from_utf8_lossy(&row.bytes()[0]).into_owned(),
                    ),
                    Err((line, fault, _)) => (line, format!("fault: {}", fault.reason)),
                });
                chunks.push(rows.collect());
                Ok(())
            },
        )
        .unwrap();
        assert!(r.is_ok(), "{r:?}");
        chunks
    }

    #[test]
    fn chunks_come_in_file_order_with_their_lines_and_faults() {
        let csv = "id,x\n1,a\n2,b\n3\n4,\"multi\nline\"\n5,e\n6,\"cut";
        let chunks = chunked(csv, 2);
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 2]);
        let all: Vec<(u64, String)> = chunks.into_iter().flatten().collect();
        assert_eq!(all[0], (2, "1".into()));
        assert_eq!(all[2].0, 4);
        assert!(
            all[2].1.starts_with("fault: expected 2 fields"),
            "{:?}",
            all[2]
        );
        assert_eq!(all[3], (5, "4".into()));
        assert_eq!(all[4], (7, "5".into()));
        assert_eq!(all[5].0, 8);
        assert!(all[5].1.contains("truncated file"), "{:?}", all[5]);
        // One chunk for everything, and chunks of one, read the same records.
        let one: Vec<(u64, String)> = chunked(csv, 100).into_iter().flatten().collect();
        let ones: Vec<(u64, String)> = chunked(csv, 1).into_iter().flatten().collect();
        assert_eq!(one, all);
        assert_eq!(ones, all);
    }

    #[test]
    fn an_error_in_a_chunk_stops_the_read_and_is_returned() {
        let csv: String = std::iter::once("id\n".to_string())
            .chain((0..10_000).map(|i| format!("{i}\n")))
            .collect();
        let mut seen = 0;
        let r = read_csv_chunks(
            csv.as_bytes(),
            |_| Ok(()),
            100,
            |_, records| {
                seen += records.records().len();
                anyhow::ensure!(seen < 300, "stop here");
                Ok(())
            },
        );
        assert_eq!(r.unwrap_err().to_string(), "stop here");
        assert_eq!(seen, 300);
    }

    fn elements(json: &str) -> (Vec<(u64, String, bool)>, Option<String>) {
        let mut out = Vec::new();
        let mut key = None;
        let r = read_json_array(
            json.as_bytes(),
            |k| k == "tickets",
            true,
            |e| {
                key = e.key.clone();
                out.push((e.line, String::from_utf8(e.bytes).unwrap(), e.truncated));
                Ok(())
            },
        )
        .unwrap();
        assert!(r.is_ok(), "{r:?}");
        (out, key)
    }

    #[test]
    fn splits_a_top_level_array() {
        let (els, key) = elements("[\n {\"a\": \"x,]}\"},\n {\"b\": [1, {\"c\": 2}]}\n]");
        assert_eq!(key, None);
        assert_eq!(els.len(), 2);
        assert_eq!(els[0], (2, "{\"a\": \"x,]}\"}".to_string(), false));
        assert_eq!(els[1].0, 3);
    }

    #[test]
    fn finds_the_array_inside_an_api_page() {
        let page = r#"{"count": 2, "users": [{"id": 9}], "tickets": [{"id": 1}, {"id": 2}], "next_page": null}"#;
        let (els, key) = elements(page);
        assert_eq!(key.as_deref(), Some("tickets"));
        assert_eq!(
            els.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
            vec!["{\"id\": 1}", "{\"id\": 2}"]
        );
    }

    #[test]
    fn an_object_without_an_array_of_records_is_one_record_when_asked() {
        // Scalars of several bytes before the array are skipped whole.
        let (els, key) = elements(r#"{"total": 57, "ok": true, "tickets": [{"id": 1}]}"#);
        assert_eq!((els.len(), key.as_deref()), (1, Some("tickets")));
        // A single answer is read whole, escapes and all.
        let single =
            r#"{"ticket_id": 42, "note": "a \"quoted\" word", "csat_response": {"id": 7}}"#;
        let (els, key) = elements(single);
        assert_eq!(key, None);
        let v: Value = serde_json::from_str(&els[0].1).unwrap();
        assert_eq!(v, serde_json::from_str::<Value>(single).unwrap());
        let refused = read_json_array(single.as_bytes(), |k| k == "tickets", false, |_| Ok(()));
        assert_eq!(
            refused.unwrap().unwrap_err(),
            "no array of records found in the JSON object"
        );
    }

    #[test]
    fn a_truncated_array_ends_with_a_truncated_element() {
        let (els, _) = elements("[{\"id\": 1}, {\"id\": 2, \"x\": \"cut");
        assert_eq!(els.len(), 2);
        assert!(!els[0].2);
        assert!(els[1].2);
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        let (els, _) = elements(r#"[{"a": "say \"hi\" ]"}, {"b": 1}]"#);
        assert_eq!(els.len(), 2);
    }

    #[test]
    fn crlf_files_count_lines_like_lf_files() {
        let data = "a,b\r\n1,\"x\r\ny\"\r\n2,z\r\n";
        let mut seen = Vec::new();
        read_csv(
            data.as_bytes(),
            |_| Ok(()),
            |r| {
                let r = r.unwrap();
                seen.push((r.line(), r.get("b").unwrap().unwrap().to_string()));
                Ok(())
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(seen, vec![(2, "x\ny".to_string()), (4, "z".to_string())]);
    }

    proptest::proptest! {
        /// Whatever the sizes of the input's reads and of the caller's buffer, the bytes come
        /// out as the whole input mended at once: the BOM gone and every CRLF made LF.
        #[test]
        fn crlf_becomes_lf_whatever_the_read_sizes(
            bom: bool,
            body in proptest::collection::vec(
                proptest::sample::select(b"ab\r\n".to_vec()), 0..200),
            inner in proptest::collection::vec(3usize..40, 1..8),
            outer in proptest::collection::vec(1usize..40, 1..8),
        ) {
            let mut data = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
            data.extend(&body);
            let mut want: Vec<u8> = Vec::new();
            for (i, &b) in body.iter().enumerate() {
                if !(b == b'\r' && body.get(i + 1) == Some(&b'\n')) {
                    want.push(b);
                }
            }
            let mut skipper = BomSkipper::new(Sizes(&data, inner, 0));
            let mut got: Vec<u8> = Vec::new();
            for i in 0.. {
                let mut buf = vec![0u8; outer[i % outer.len()]];
                let n = skipper.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend(&buf[..n]);
            }
            proptest::prop_assert_eq!(got, want);
        }
    }

    /// Hands out its input in reads of the sizes given, in turn.
    struct Sizes<'a>(&'a [u8], Vec<usize>, usize);

    impl Read for Sizes<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1[self.2 % self.1.len()]
                .min(self.0.len())
                .min(buf.len());
            self.2 += 1;
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn crlf_becomes_lf_across_chunk_edges_and_lone_crs_stay() {
        let input = b"\xEF\xBB\xBFa\r\nb\rc\r\r\n\r\rd\r\n\r\ne\r";
        for data in [&input[..], &input[3..]] {
            let mut out = Vec::new();
            BomSkipper::new(Sizes(data, vec![4, 2, 3, 1, 2, 3, 1], 0))
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, b"a\nb\rc\r\n\r\rd\n\ne\r");
        }
    }

    #[test]
    fn formats_are_detected() {
        use std::path::Path;
        assert_eq!(Format::detect(Path::new("a.csv"), b"{"), Format::Csv);
        assert_eq!(Format::detect(Path::new("a"), b"[{}]"), Format::Json);
        assert_eq!(
            Format::detect(Path::new("a"), b"{\"a\":1}\n{\"a\":2}\n"),
            Format::Ndjson
        );
        assert_eq!(
            Format::detect(Path::new("a"), b"{\n \"tickets\": []}"),
            Format::Json
        );
        assert_eq!(
            Format::detect(Path::new("a"), b"\xEF\xBB\xBFid,x\n"),
            Format::Csv
        );
    }

    #[test]
    fn csv_with_bom_and_ragged_rows() {
        let data = "\u{feff}id,name\n1,a\n2\n3,\"c\n";
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let r = read_csv(
            data.as_bytes(),
            |h| {
                if h.contains("id") {
                    Ok(())
                } else {
                    Err("no id".into())
                }
            },
            |row| {
                match row {
                    Ok(r) => good.push((r.line(), r.get("id").unwrap().unwrap().to_string())),
                    Err((line, f, _)) => bad.push((line, f.reason)),
                }
                Ok(())
            },
        )
        .unwrap();
        assert!(r.is_ok());
        assert_eq!(good, vec![(2, "1".to_string())]);
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].0, 3);
        assert_eq!(bad[1].0, 4);
    }
}

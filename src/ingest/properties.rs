//! Property tests (proptest): every profile and reader, fed arbitrary bytes and mutations of
//! real files, never panics, and its accounting holds and is true: read = stored + superseded +
//! rejected + offered + unrated, with `stored` the rows in the lake and `rejected` the rows of
//! `_rejects`. The same for the stream's line parser: every line is an event or a refusal.
//!
//! Cases per property: `PROPTEST_CASES` (default 24, so CI stays bounded); a failure prints the
//! minimal input it shrank to.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::ingest::profiles::testkit::{fixture, reference};
use crate::ingest::{IngestOptions, ingest};
use crate::lake::Lake;

/// One change to a file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    DuplicateLine(usize),
    Truncate(usize),
}

/// Bytes and texts that break parsers: quoting, separators, brackets, invalid UTF-8, extreme
/// dates and numbers, formulas.
fn nasty() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"\"",
        b",",
        b"\n",
        b"\r\n",
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b"\0",
        b"\xff",
        b"\xc3",
        b"\\",
        b"null",
        b"\"\"",
        b"9999-12-31T23:59:59-14:00",
        b"0000-01-01T00:00:00Z",
        b"-1",
        b"1e309",
        b"NaN",
        b"=HYPERLINK(\"x\")",
        "\u{202e}".as_bytes(),
        "😡".as_bytes(),
        b"\xef\xbb\xbf",
    ];
    prop_oneof![
        prop::sample::select(pieces).prop_map(|p| p.to_vec()),
        prop::collection::vec(any::<u8>(), 1..8),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), nasty()).prop_map(|(p, b)| Mutation::Insert(p, b)),
        (any::<usize>(), 1..64usize).prop_map(|(p, n)| Mutation::Delete(p, n)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        let at = |p: usize, b: &Vec<u8>| p % (b.len() + 1);
        match m {
            Mutation::Flip(p, x) if !b.is_empty() => {
                let i = p % b.len();
                b[i] ^= x | 1;
            }
            Mutation::Flip(..) => {}
            Mutation::Insert(p, bytes) => {
                let i = at(*p, &b);
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(p, n) => {
                let i = at(*p, &b);
                let j = (i + n).min(b.len());
                b.drain(i..j);
            }
            Mutation::DuplicateLine(p) => {
                let lines: Vec<&[u8]> = b.split_inclusive(|c| *c == b'\n').collect();
                if !lines.is_empty() {
                    let k = p % lines.len();
                    let mut out: Vec<u8> = Vec::with_capacity(b.len() * 2);
                    for (i, l) in lines.iter().enumerate() {
                        out.extend_from_slice(l);
                        if i == k {
                            out.extend_from_slice(l);
                        }
                    }
                    b = out;
                }
            }
            Mutation::Truncate(p) => {
                let i = at(*p, &b);
                b.truncate(i);
            }
        }
    }
    b
}

/// The first `lines` lines of a file.
fn head(path: &Path, lines: usize) -> Vec<u8> {
    let all = std::fs::read(path).unwrap();
    let mut end = 0;
    for (n, _) in all
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'\n')
        .take(lines)
    {
        end = n + 1;
    }
    all[..end].to_vec()
}

/// Rows in a side table (`_rejects`).
fn side_rows(lake: &Lake, dir: &str) -> u64 {
    let files = lake.side_files(dir).unwrap();
    let batches = files.iter().flat_map(|f| f.read(None).unwrap());
    batches.map(|b| b.num_rows() as u64).sum()
}

/// Ingests `bytes` as the file `name` with `profile` into a fresh lake and checks the accounting
/// against the lake.
fn ingests_honestly(
    profile: &str,
    name: &str,
    bytes: &[u8],
    mapping: Option<PathBuf>,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let opts = IngestOptions {
        profile: profile.into(),
        mapping,
        ..Default::default()
    };
    let (reports, errors) = match ingest(&lake, &[path], &opts) {
        Ok(r) => r,
        // A clear error about the input is fine; a panic is not (proptest catches it).
        Err(e) => {
            let message = format!("{e:#}");
            prop_assert!(!message.trim().is_empty());
            return Ok(());
        }
    };
    prop_assert!(reports.len() + errors.len() == 1, "{reports:?} {errors:?}");
    let mut rejected = 0;
    for r in &reports {
        for (table, c) in &r.tables {
            prop_assert!(c.balances(), "{table}: {c:?}");
            prop_assert_eq!(
                lake.row_count(*table).unwrap(),
                c.stored,
                "{} stored",
                table
            );
            rejected += c.rejected;
        }
    }
    prop_assert_eq!(side_rows(&lake, "_rejects"), rejected, "rows in _rejects");
    Ok(())
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(24);
    ProptestConfig {
        cases,
        // Shrinking re-runs ingests: bounded so a failure reports within a minute or two.
        max_shrink_iters: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Mutations of `seed` (four in five) and arbitrary bytes.
fn inputs(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(mutation(), 1..6).prop_map(move |m| apply(&seed, &m)),
        1 => prop::collection::vec(any::<u8>(), 0..600),
    ]
}

/// Mutations of `seed` and arbitrary bytes, ingested as `name` with `profile`.
fn fuzz(profile: &str, name: &str, seed: Vec<u8>, mapping: Option<PathBuf>) {
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let result = runner.run(&inputs(seed), |bytes| {
        ingests_honestly(profile, name, &bytes, mapping.clone())
    });
    if let Err(e) = result {
        panic!("{profile} ({name}): {e}");
    }
}

#[test]
fn generic_csv_tickets() {
    let seed = std::fs::read(fixture("tickets_v1.csv")).unwrap();
    fuzz("generic", "tickets_v1.csv", seed, None);
}

#[test]
fn generic_csv_ratings() {
    let seed = std::fs::read(fixture("ratings_broken.csv")).unwrap();
    fuzz("generic", "ratings_broken.csv", seed, None);
}

#[test]
fn generic_ndjson_interactions() {
    let seed = std::fs::read(fixture("interactions_broken.ndjson")).unwrap();
    fuzz("generic", "interactions_broken.ndjson", seed, None);
}

#[test]
fn generic_with_a_mapping() {
    let seed = std::fs::read(fixture("support_tickets.csv")).unwrap();
    let mapping = fixture("support_tickets.tickets.toml");
    fuzz("generic", "support_tickets.csv", seed, Some(mapping));
}

#[test]
fn servicenow_event_log() {
    let seed = head(&reference("servicenow_incident_events_sample.csv"), 40);
    fuzz("servicenow", "incidents.csv", seed, None);
}

#[test]
fn zendesk_tickets_and_ratings() {
    let seed = std::fs::read(fixture("zendesk_tickets.json")).unwrap();
    fuzz("zendesk", "tickets.json", seed, None);
    let seed = std::fs::read(fixture("zendesk_satisfaction_ratings.json")).unwrap();
    fuzz("zendesk", "satisfaction_ratings.json", seed, None);
}

#[test]
fn freshdesk_tickets_conversations_and_ratings() {
    for (fixture_name, name) in [
        ("freshdesk_tickets.json", "tickets.json"),
        ("freshdesk_conversations.json", "conversations.json"),
        (
            "freshdesk_satisfaction_ratings.json",
            "satisfaction_ratings.json",
        ),
    ] {
        let seed = std::fs::read(fixture(fixture_name)).unwrap();
        fuzz("freshdesk", name, seed, None);
    }
}

#[test]
fn jira_issues() {
    let seed = std::fs::read(fixture("jira_issues.csv")).unwrap();
    fuzz("jira", "issues.csv", seed, None);
}

#[test]
fn twitter_threads() {
    let seed = head(&reference("twitter_support_sample.csv"), 40);
    fuzz("twitter", "tweets.csv", seed, None);
}

#[test]
fn stream_lines_are_each_an_event_or_a_refusal() {
    use crate::stream::event::Parser;
    let seed = concat!(
        r#"{"type":"ticket","event_id":"t1","ticket_id":"T1","opened_at":"2026-03-02T09:00:00Z","updated_at":"2026-03-02T09:00:00Z","channel":"chat"}"#,
        "\n",
        r#"{"type":"rating","event_id":"r1","rating_id":"R1","ticket_id":"T1","rated_at":"2026-03-02T10:00:00Z","score_raw":"4","channel":"sms","comment":"ok"}"#,
        "\n",
        r#"{"type":"interaction","event_id":"i1","interaction_id":"I1","ticket_id":"T1","at":"2026-03-02T09:05:00Z","actor_role":"agent","channel":"chat","body":"Hello"}"#,
        "\n"
    )
    .as_bytes()
    .to_vec();
    let parser = Parser::default();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: config().cases * 20,
        ..config()
    });
    runner
        .run(&inputs(seed), |body| {
            let lines = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count();
            let (events, refused) = parser.body(&body);
            prop_assert_eq!(events.len() + refused.len(), lines);
            prop_assert!(refused.iter().all(|r| !r.reason.is_empty() && r.line >= 1));
            Ok(())
        })
        .unwrap();
}

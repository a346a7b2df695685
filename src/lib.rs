//! deskpulse: an analytics and sentiment pipeline for IT service desks.
//!
//! The library does all the work; the `deskpulse` binary only parses arguments and calls it.
//! - [`model`]: the canonical tables, channels and rating scales;
//! - [`ingest`]: export files → import profiles → canonical rows or rejects → the [`lake`];
//! - [`engine`]: DataFusion over the lake, the metric SQL of `queries/`, deskpulse's functions;
//! - `cluster` (feature `cluster`): the same SQL on an Apache DataFusion Ballista cluster;
//! - [`sentiment`]: VADER, as the reference implementation scores it;
//! - [`predict`]: P(satisfied) for unrated tickets, validated, published only when it beats chance;
//! - [`check`]: the data quality of a lake (`deskpulse check`);
//! - [`config`] and [`calendar`]: `deskpulse.toml` and business hours;
//! - [`stream`]: live events over HTTP and stdin, spool, live satisfaction and alerts;
//! - [`generate`]: synthetic exports with planted effects; [`demo`]: the main job.

pub mod calendar;
pub mod check;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod config;
pub mod demo;
pub mod engine;
pub mod generate;
pub mod ingest;
pub mod lake;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod report;
pub mod sentiment;
pub mod stream;
pub mod timeparse;

/// Lower-case hex of `bytes` (content hashes, cache keys, model ids).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

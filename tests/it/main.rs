//! The integration tests: one test binary (DataFusion is linked once, not once per file), one
//! module per area. The SQL of `queries/` is tested as data by `tests/slt.rs`.

mod browser;
mod cli;
#[cfg(feature = "cluster")]
mod cluster;
mod common;
mod event_log;
mod followups;
mod lake;
mod metrics;
mod predict;
mod report;
mod s3;
mod stream;

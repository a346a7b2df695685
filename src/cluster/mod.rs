//! Scale-out: the same metric SQL on an Apache DataFusion Ballista cluster (feature `cluster`).
//!
//! Three roles run deskpulse's SQL: the client (`--cluster df://HOST:PORT` on the metric
//! commands) plans it, the scheduler (`deskpulse cluster scheduler`) splits it into stages, and the
//! executors (`deskpulse cluster executor`) run the tasks. Each decodes plans with the functions
//! of its own session, and Ballista has no plugin loading: this module builds the one session
//! configuration and state that all three use ([`session_config`], [`session_state`]), so that a
//! function or a setting cannot be on one role and missing on another.
//!
//! What Ballista 55 needs for that, each covered by `tests/it/cluster.rs`:
//! - the client's `remote_with_state` replaces the function lists with Ballista's defaults, so
//!   [`connect`] registers deskpulse's functions on the context after creating it;
//! - the scheduler decodes plans with the state of its session builder, the executor with its
//!   function registry: both get [`session_state`] (DataFusion's functions, array functions
//!   included, and deskpulse's);
//! - functions that carry state (the business-hours calendar) travel as their name only: the
//!   codecs of [`codec`] carry the client's calendar with them, on all three roles;
//! - the adaptive planner (on by default in Ballista 55) returned unsorted rows for a CTE, a join
//!   and an ORDER BY: it is off.

pub mod codec;
mod executor;
mod scheduler;

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use ballista::prelude::SessionContextExt;
use ballista_core::extension::{
    SessionConfigExt, ballista_aggregate_functions, ballista_scalar_functions,
    ballista_window_functions,
};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};

pub use executor::{ExecutorOptions, run_executor};
pub use scheduler::{SchedulerOptions, run_scheduler};

use crate::calendar::Calendar;
use crate::config::check_cluster_url;
use crate::engine::functions::{aggregate_functions, register_functions, scalar_functions};

/// The session configuration of every role: Ballista's, with deskpulse's codecs, the adaptive
/// planner off, and DataFusion's own settings from DATAFUSION_* variables as in a local run.
pub fn session_config() -> Result<SessionConfig> {
    Ok(crate::engine::session_config()?
        .upgrade_for_ballista()
        .with_ballista_adaptive_query_planner(false)
        .with_ballista_logical_extension_codec(Arc::new(codec::LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(codec::PhysicalCodec::default())))
}

/// The session state of every role: `config`, DataFusion's functions as Ballista lists them,
/// and deskpulse's (computing with `calendar`; a client's calendar reaches the other roles
/// through the codecs), and object stores for a lake on S3 (the scheduler plans its scans).
pub fn session_state(config: SessionConfig, calendar: &Calendar) -> SessionState {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(crate::lake::store::Stores::default()))
        .build_arc()
        .expect("a runtime with no memory limit or spill directory to set up");
    let mut scalar = ballista_scalar_functions();
    scalar.extend(scalar_functions(calendar).into_iter().map(Arc::new));
    // Later entries replace earlier ones of the same name: deskpulse's `median` wins.
    let mut aggregate = ballista_aggregate_functions();
    aggregate.extend(aggregate_functions().into_iter().map(Arc::new));
    SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_scalar_functions(scalar)
        .with_aggregate_functions(aggregate)
        .with_window_functions(ballista_window_functions())
        .build()
}

/// Ballista's scheduling policy: tasks pushed to executors, or pulled by them.
fn policy(push: bool) -> ballista_core::config::TaskSchedulingPolicy {
    use ballista_core::config::TaskSchedulingPolicy::{PullStaged, PushStaged};
    if push { PushStaged } else { PullStaged }
}

/// A client session on the cluster whose scheduler is at `url` (`df://HOST:PORT`).
pub async fn connect(url: &str, calendar: &Calendar) -> Result<SessionContext> {
    check_cluster_url(url).map_err(|e| anyhow!("cluster address {e}"))?;
    let state = session_state(session_config()?, calendar);
    let ctx = SessionContext::remote_with_state(url, state)
        .await
        .with_context(|| format!("cluster at {url}"))?;
    // remote_with_state reset the function lists to Ballista's defaults.
    register_functions(&ctx, calendar);
    Ok(ctx)
}

//! `deskpulse cluster scheduler`: Ballista's scheduler with deskpulse's session and codecs.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;

use super::{codec, session_config, session_state};
use crate::calendar::Calendar;

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// The host name executors and clients reach this scheduler by.
    pub external_host: String,
    /// Tasks pushed to executors as soon as they are ready (Ballista's default), or pulled by
    /// executors polling.
    pub push: bool,
    /// Seconds without a heartbeat before an executor counts as lost (Ballista's default: 180).
    /// Ballista measures it on the wall clock, so a clock step longer than this (a virtual
    /// machine resumed after a pause, an NTP correction) drops every executor at once and fails
    /// the running jobs; raise it where that happens. Also how long a job waits for an executor
    /// to come back when all are lost.
    pub executor_timeout_secs: u64,
}

/// Runs the scheduler on `listener` until the process ends.
pub async fn run_scheduler(listener: TcpListener, options: &SchedulerOptions) -> Result<()> {
    let address = listener.local_addr()?;
    // The scheduler plans with the default calendar; a client's travels in its plans.
    let builder = |config| Ok(session_state(config, &Calendar::default()));
    let base = session_config()?;
    let config = SchedulerConfig {
        bind_host: address.ip().to_string(),
        bind_port: address.port(),
        external_host: options.external_host.clone(),
        scheduling_policy: super::policy(options.push),
        executor_timeout_seconds: options.executor_timeout_secs,
        no_executors_grace_period_seconds: options.executor_timeout_secs,
        override_config_producer: Some(Arc::new(move || base.clone())),
        override_session_builder: Some(Arc::new(builder)),
        override_logical_codec: Some(Arc::new(codec::LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(codec::PhysicalCodec::default())),
        ..SchedulerConfig::default()
    };
    config.validate()?;
    let cluster = BallistaCluster::new_from_config(&config).await?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config)).await?;
    start_grpc_service_with_listener(listener, scheduler)
        .await
        .map_err(|e| anyhow!("scheduler on {address}: {e}"))
}

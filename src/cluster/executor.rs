//! `deskpulse cluster executor`: Ballista's executor with deskpulse's functions and codecs, and
//! an HTTP `/healthz` (the process is up) and `/readyz` (its last heartbeat reached the scheduler).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_executor::health::ExecutorHealth;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

use super::{codec, session_config, session_state};
use crate::calendar::Calendar;

/// How an executor runs and where its scheduler is.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host and port.
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// The address the executor listens on.
    pub bind_host: String,
    /// The host name the scheduler and the other executors reach this one by.
    pub external_host: Option<String>,
    /// Arrow Flight port (results and shuffle data).
    pub flight_port: u16,
    /// gRPC port (tasks pushed by the scheduler).
    pub grpc_port: u16,
    /// HTTP port of `/healthz` and `/readyz` (none: not served).
    pub health_port: Option<u16>,
    /// Tasks run at once (0: one per core).
    pub vcores: usize,
    /// Memory shared by its tasks, in MiB, beyond which sorts and aggregations spill (none:
    /// Ballista's default, 70% of the host's or the cgroup's memory; set it when several
    /// executors share a host).
    pub memory_mb: Option<u64>,
    /// Shuffle files (default: a temporary directory).
    pub work_dir: Option<String>,
    /// Tasks pushed by the scheduler (must match the scheduler's policy).
    pub push: bool,
    /// How long to wait at start for the scheduler to accept connections: a scheduler and its
    /// executors may start in any order (Ballista itself tries once and exits).
    pub scheduler_wait: Duration,
}

/// Runs the executor until the process ends or the scheduler stops it.
pub async fn run_executor(options: &ExecutorOptions) -> Result<()> {
    let health = ExecutorHealth::new();
    // Tasks are decoded with this registry and these codecs; the calendar of a task's
    // business-time functions comes with the task (see `codec`).
    let base = session_config()?;
    let state = session_state(base.clone(), &Calendar::default());
    let work_dir = options.work_dir.clone();
    let config = ExecutorProcessConfig {
        scheduler_host: options.scheduler_host.clone(),
        scheduler_port: options.scheduler_port,
        bind_host: options.bind_host.clone(),
        external_host: options.external_host.clone(),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        vcores: options.vcores,
        memory_pool_size: options.memory_mb.map(|mb| mb << 20),
        work_dir: options.work_dir.clone(),
        task_scheduling_policy: super::policy(options.push),
        health: health.clone(),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
        // Plans name the lake's files by URL: an `s3://` lake is read with this executor's own
        // AWS_* variables, no shared filesystem needed.
        override_runtime_producer: Some(Arc::new(move |_| {
            let mut runtime = RuntimeEnvBuilder::new()
                .with_object_store_registry(Arc::new(crate::lake::store::Stores::default()));
            if let Some(dir) = &work_dir {
                runtime = runtime.with_temp_file_path(dir);
            }
            Ok(Arc::new(runtime.build()?))
        })),
        override_config_producer: Some(Arc::new(move || base.clone())),
        override_logical_codec: Some(Arc::new(codec::LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(codec::PhysicalCodec::default())),
        ..ExecutorProcessConfig::default()
    };
    if let Some(port) = options.health_port {
        let address = SocketAddr::new(options.bind_host.parse()?, port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("health endpoint on {address}"))?;
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .with_state(health);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    wait_for_scheduler(
        &options.scheduler_host,
        options.scheduler_port,
        options.scheduler_wait,
    )
    .await?;
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| anyhow!("executor: {e}"))
}

/// Returns once the scheduler accepts a TCP connection, or fails after `wait`.
async fn wait_for_scheduler(host: &str, port: u16, wait: Duration) -> Result<()> {
    let start = Instant::now();
    let mut said = false;
    loop {
        match tokio::net::TcpStream::connect((host, port)).await {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() >= wait => {
                return Err(anyhow!(
                    "scheduler {host}:{port} not reachable after {} s: {e}",
                    wait.as_secs()
                ));
            }
            Err(e) => {
                if !said {
                    eprintln!(
                        "deskpulse executor: scheduler {host}:{port} not reachable yet ({e}); \
                         waiting up to {} s",
                        wait.as_secs()
                    );
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn ready(State(health): State<ExecutorHealth>) -> (StatusCode, &'static str) {
    if health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no heartbeat has reached the scheduler yet\n",
        )
    }
}

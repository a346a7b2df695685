//! `deskpulse cluster scheduler|executor`: a node of a Ballista cluster with deskpulse's
//! functions (the `cluster` feature).

use std::process::ExitCode;

#[cfg(feature = "cluster")]
use anyhow::Context as _;
use anyhow::Result;

#[cfg(feature = "cluster")]
use super::{outln, runtime, stop_signal, usage};

#[derive(clap::Subcommand)]
pub enum Role {
    /// The scheduler: takes queries from clients and hands their tasks to the executors.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:50050")]
        bind: String,
        /// The host name executors and clients reach this scheduler by.
        #[arg(long, default_value = "localhost")]
        external_host: String,
        /// Executors poll for tasks instead of being sent them (must match the executors).
        #[arg(long)]
        pull: bool,
        /// Seconds without a heartbeat before an executor counts as lost (Ballista's default).
        /// Measured on the wall clock: raise it where the clock can step (paused VMs).
        #[arg(long, default_value_t = 180)]
        executor_timeout: u64,
    },
    /// An executor: runs tasks. It must see the lake as the clients do: a directory at the same
    /// path, or the same `s3://` lake (credentials from its own AWS_* variables).
    Executor {
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "localhost:50050")]
        scheduler: String,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        bind_host: String,
        /// The host name the scheduler and the other executors reach this one by (default: the
        /// address it connects from).
        #[arg(long)]
        external_host: Option<String>,
        /// Arrow Flight port: results and shuffle data.
        #[arg(long, default_value_t = 50051)]
        flight_port: u16,
        /// gRPC port: tasks pushed by the scheduler.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// HTTP port of /healthz and /readyz (0: none).
        #[arg(long, default_value_t = 50053)]
        health_port: u16,
        /// Tasks run at once (0: one per core).
        #[arg(long, default_value_t = 0)]
        vcores: usize,
        /// Memory for its tasks in MiB, beyond which sorts and aggregations spill (default:
        /// 70% of the machine's memory; divide it when several executors share a machine).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        memory_mb: Option<u64>,
        /// Directory for shuffle files (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<String>,
        /// Poll the scheduler for tasks (if the scheduler runs with --pull).
        #[arg(long)]
        pull: bool,
        /// Seconds to wait at start for the scheduler to accept connections (it may start
        /// after its executors).
        #[arg(long, default_value_t = 60)]
        scheduler_wait: u64,
    },
}

#[cfg(feature = "cluster")]
pub fn run(role: Role) -> Result<ExitCode> {
    use deskpulse::cluster;
    init_log();
    let rt = runtime()?;
    match role {
        Role::Scheduler {
            bind,
            external_host,
            pull,
            executor_timeout,
        } => rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(&bind)
                .await
                .with_context(|| format!("--bind {bind}"))?;
            outln!(
                "deskpulse scheduler on {} ({} scheduling); clients: --cluster df://{external_host}:{}",
                listener.local_addr()?,
                if pull { "pull" } else { "push" },
                listener.local_addr()?.port()
            );
            let options = cluster::SchedulerOptions {
                external_host,
                push: !pull,
                executor_timeout_secs: executor_timeout,
            };
            tokio::select! {
                r = cluster::run_scheduler(listener, &options) => r,
                _ = stop_signal() => Ok(()),
            }
        })?,
        Role::Executor {
            scheduler,
            bind_host,
            external_host,
            flight_port,
            grpc_port,
            health_port,
            vcores,
            memory_mb,
            work_dir,
            pull,
            scheduler_wait,
        } => {
            let Some((host, port)) = scheduler
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
            else {
                return Err(usage(format!("--scheduler {scheduler}: expected HOST:PORT")));
            };
            let options = cluster::ExecutorOptions {
                scheduler_host: host,
                scheduler_port: port,
                bind_host,
                external_host,
                flight_port,
                grpc_port,
                health_port: (health_port != 0).then_some(health_port),
                vcores,
                memory_mb,
                work_dir,
                push: !pull,
                scheduler_wait: std::time::Duration::from_secs(scheduler_wait),
            };
            outln!(
                "deskpulse executor on {}:{flight_port} (flight), :{grpc_port} (tasks){}; scheduler {scheduler}",
                options.bind_host,
                match options.health_port {
                    Some(p) => format!(", :{p} (/healthz, /readyz)"),
                    None => String::new(),
                }
            );
            rt.block_on(cluster::run_executor(&options))?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The log of a cluster process on stderr: Ballista's job, stage and task messages, at
/// `info` and above unless RUST_LOG says otherwise (e.g. `RUST_LOG=warn`,
/// `RUST_LOG=info,ballista_executor=debug`).
#[cfg(feature = "cluster")]
fn init_log() {
    use std::io::Write;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|out, record| {
            writeln!(
                out,
                "{} {:5} {}: {}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                record.level(),
                record.target(),
                record.args()
            )
        })
        .init();
}

#[cfg(not(feature = "cluster"))]
pub fn run(_: Role) -> Result<ExitCode> {
    anyhow::bail!(
        "this deskpulse was built without the `cluster` feature (build it with `cargo build --release --features cluster`)"
    )
}

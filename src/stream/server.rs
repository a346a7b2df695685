//! The HTTP face of the stream (axum) and the stdin reader: both read NDJSON events and hand
//! them to the core through one bounded queue.
//!
//! - `POST /v1/events`: 200 when every line was accepted (repeated ids count as accepted and
//!   are listed), 400 naming each refused line and field while the valid lines are kept, 401
//!   without the bearer token, 413 over the body limit, 503 with `Retry-After` when the queue or
//!   the events waiting for the lake are full (nothing of that body was kept).
//! - `GET /v1/live`: per-channel CSAT over the last hour and the last 24 hours.
//! - `GET /healthz`: liveness and counters (no token needed).
//! - `GET /metrics`: the same counters, and latency histograms, for Prometheus (no token needed).
//!
//! The accept loop is ours (hyper's HTTP/1 connection on tokio), for what `axum::serve` lacks: a
//! request head must arrive within the header timeout (which also ends idle keep-alive
//! connections), a body within the request timeout (408), and at most `max_connections` are
//! served at once (more wait in the listen backlog).

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};

use super::alerts::now_text;
use super::event::{Event, Parser, Refusal};
use super::live::Live;
use super::monitor::Monitor;
use super::pipeline::{Msg, Reply, Submission};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub core: SyncSender<Msg>,
    pub parser: Arc<Parser>,
    pub token: Option<Arc<str>>,
    pub live: Arc<Mutex<Live>>,
    pub stats: Arc<Monitor>,
}

/// What the listener allows a client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request body limit in bytes (413 beyond).
    pub max_body: usize,
    /// A request head must arrive within this; an idle connection is closed after it.
    pub header_timeout: Duration,
    /// A request body must arrive within this (408 beyond).
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// The routes, with the token check on `/v1/*`, the body limit and the body timeout.
pub fn router(state: AppState, limits: Limits) -> Router {
    let protected = Router::new()
        .route("/v1/events", post(events))
        .route("/v1/live", get(live))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(protected)
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            read_body(limits, req, next)
        }))
        .layer(middleware::from_fn_with_state(state.stats.clone(), timed))
        .with_state(state)
}

/// Serves `app` on `listener` until `stop` completes, then lets the requests under way finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut stop => break,
        };
        let (socket, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken.
                    eprintln!("deskpulse stream: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            tower_service::Service::call(&mut app.clone(), req)
        });
        let conn = http.serve_connection(TokioIo::new(socket), service);
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { let _ = closing.wait_for(|c| *c).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let _ = closing_tx.send(true);
    let drain = limits.header_timeout + limits.request_timeout;
    let _ = tokio::time::timeout(drain, permits.acquire_many(max as u32)).await;
}

/// Reads the whole body before routing, within the request timeout and the body limit. A
/// request whose `Content-Length` is over the limit gets its 413 at once, before any of the body
/// is read.
async fn read_body(limits: Limits, req: Request, next: Next) -> Response {
    let max = limits.max_body;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over the limit of {max} bytes (--max-body)"),
        )
    };
    if announced.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(limits.request_timeout, Limited::new(body, max).collect());
    let bytes = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            );
        }
        Err(_) => {
            let mut r = error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {:?} (--request-timeout)",
                    limits.request_timeout
                ),
            );
            r.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return r;
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn busy() -> Response {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many events waiting for the lake: retry later (nothing of this request was kept)",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    r
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorize(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| same(g.trim().as_bytes(), token.as_bytes())) {
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(req).await
}

/// The body of a `POST /v1/events` answer.
#[derive(Debug, Serialize)]
struct EventsReply {
    accepted: usize,
    duplicates: Vec<String>,
    refused: Vec<Refusal>,
}

async fn events(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let (events, refused) = s.parser.body(&body);
    if events.is_empty() && refused.is_empty() {
        return error(StatusCode::BAD_REQUEST, "no events in the body");
    }
    let source = format!("POST /v1/events from {peer} at {}", now_text());
    let (tx, rx) = oneshot::channel();
    let msg = Msg::Append(Submission {
        source,
        events,
        refused: refused.clone(),
        reply: tx,
    });
    match s.core.try_send(msg) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return busy(),
        Err(TrySendError::Disconnected(_)) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
    }
    match rx.await {
        Ok(Reply::Spooled {
            accepted,
            duplicates,
        }) => {
            let status = if refused.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            let reply = EventsReply {
                accepted,
                duplicates,
                refused,
            };
            (status, Json(reply)).into_response()
        }
        Ok(Reply::Busy) => busy(),
        Ok(Reply::Failed(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
}

async fn live(State(s): State<AppState>) -> Response {
    let now = chrono::Utc::now().timestamp_micros();
    let snapshot = s.live.lock().expect("live state").snapshot(now);
    Json(snapshot).into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    Json(s.stats.health()).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        s.stats.openmetrics(),
    )
        .into_response()
}

/// Times each request, by route and status.
async fn timed(State(stats): State<Arc<Monitor>>, req: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let route = req.uri().path().to_string();
    let r = next.run(req).await;
    stats.request(&route, r.status().as_u16(), start.elapsed());
    r
}

/// Lines per append from stdin at most (fewer when the input pauses).
const STDIN_BATCH: usize = 1000;

/// Reads NDJSON events from stdin until it ends. Refused lines are reported on stderr (and kept
/// in `_rejects`); when the core is busy the reader waits, which is stdin's back-pressure.
pub fn read_stdin(core: SyncSender<Msg>, parser: &Parser) -> anyhow::Result<()> {
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin());
    let mut line_no = 0u64;
    let (mut events, mut refused): (Vec<Event>, Vec<Refusal>) = (Vec::new(), Vec::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line)?;
        if n > 0 {
            line_no += 1;
            if !line.iter().all(u8::is_ascii_whitespace) {
                match parser.raw_line(line_no, &line) {
                    Ok(e) => events.push(e),
                    Err(r) => refused.push(r),
                }
            }
        }
        let full = events.len() + refused.len() >= STDIN_BATCH;
        if (n == 0 || full || input.buffer().is_empty())
            && !(events.is_empty() && refused.is_empty())
        {
            for r in &refused {
                let field = r.field.as_deref().unwrap_or("-");
                eprintln!("stdin line {}: refused ({field}): {}", r.line, r.reason);
            }
            let source = format!("stdin at {}", now_text());
            loop {
                let (tx, rx) = oneshot::channel();
                let msg = Msg::Append(Submission {
                    source: source.clone(),
                    events: events.clone(),
                    refused: refused.clone(),
                    reply: tx,
                });
                core.send(msg)
                    .map_err(|_| anyhow::anyhow!("the stream is shutting down"))?;
                match rx.blocking_recv() {
                    Ok(Reply::Spooled { .. }) => break,
                    Ok(Reply::Busy) => std::thread::sleep(Duration::from_millis(100)),
                    Ok(Reply::Failed(e)) => anyhow::bail!("{e}"),
                    Err(_) => anyhow::bail!("the stream is shutting down"),
                }
            }
            events.clear();
            refused.clear();
        }
        if n == 0 {
            return Ok(());
        }
    }
}

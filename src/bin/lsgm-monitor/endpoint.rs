//! `--metrics`' HTTP endpoint: the registry of [`crate::metrics`] served at
//! `/metrics` for as long as the monitor judges frames, whatever its
//! clients do.
//!
//! A fleet sees a board only through this endpoint, so a dead endpoint in a
//! live process is the failure to avoid: the board goes blind and its
//! service manager, seeing a running process, never restarts it. The
//! earlier server (tiny_http) died that way: about 510 idle connections
//! used up the 1,024 descriptors (two per connection), a server thread
//! panicked, and every later scrape was refused while frames went on being
//! judged. So:
//!
//! * **hyper 1.x (HTTP/1 server only) on a current-thread tokio runtime**,
//!   one thread: one descriptor per connection, a header read timeout
//!   ([`READ_TIMEOUT`]), per-connection tasks (a stuck client stalls only
//!   its own task) and accept errors returned, not panicked on. Chosen over
//!   axum/actix (layers this endpoint does not need, far more to compile) and
//!   over tiny_http or hand-written sockets (no limits, no timeouts). The
//!   features are minimal: hyper `server` + `http1`, hyper-util `tokio`,
//!   tokio `rt` + `net` + `time` (no macros, no multi-thread scheduler).
//! * **At most [`MAX_CONNECTIONS`] connections.** At the cap a new one
//!   closes another rather than wait or be refused, chosen by
//!   [`Connections::victim`]: first a connection that has had an answer
//!   already (the least recently active of them), and only when there is
//!   none the oldest of those still waiting for their first. A scrape is a
//!   fresh connection, so it keeps its place until it is answered, whether
//!   an abuser holds a thousand idle connections (the oldest idle ones go)
//!   or a hundred clients request non-stop on keep-alive connections (their
//!   answered connections go; they reconnect). With the least recently
//!   active connection closed instead, a scrape whose request came a little
//!   after its connection was older than every busy client's last request,
//!   and was closed with no answer (1–4 of ~25 scrapes among 100–150 such
//!   clients in the trial of issue #22).
//! * **Timeouts.** A request head must arrive within [`READ_TIMEOUT`] of the
//!   connection opening or going idle (slow or silent clients, idle
//!   keep-alive connections: hyper's header read timeout). hyper has no
//!   write timeout, so a connection that starts no request for
//!   [`WRITE_TIMEOUT`] — stuck writing answers to a client that pipelines
//!   requests and never reads them — is closed ([`connection`]). Nobody
//!   else waits for it meanwhile.
//! * **Out of descriptors** (`EMFILE`, `ENFILE` on accept): a connection,
//!   chosen as at the cap, is closed to give one back, the accept is
//!   retried after [`ACCEPT_BACKOFF`], and a warning says so (at most once
//!   a minute). The endpoint recovers when the connections close.
//! * **If the endpoint stops anyway** (a bug: its loop only ends by a
//!   panic), the run is ended through [`Stop::fail`] and the monitor exits
//!   1 with the reason, so the service manager restarts it.
//! * **GET and HEAD only**: other methods get 405 with `Allow: GET, HEAD`;
//!   other paths 404.

use crate::stream::Stop;
use anyhow::{anyhow, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Most connections served at once: a fleet's Prometheus (or an HA pair)
/// and a few people with curl, with room to spare; 64 descriptors at most.
pub const MAX_CONNECTIONS: usize = 64;
/// A request head must arrive within this of the connection opening or
/// going idle; an idle keep-alive connection is closed after it (Prometheus
/// opens a new one at its next scrape).
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that starts no request for this long is closed: it can
/// only be stuck writing answers to a client that does not read them.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections accepted at the cap, each closing an answered one, before
/// the connections are served again: a round of serving answers every busy
/// connection once, so accepting one per round left a scrape waiting
/// behind the reconnecting clients in the listen queue (the trial's repro,
/// 100 / 150 clients on a shared 2-core machine: slowest scrape 183 / 357
/// ms one per round, 76 / 122 ms in bursts of 16). The closed ones'
/// descriptors (at most this many over [`MAX_CONNECTIONS`]) are given back
/// at the end of the burst.
const ACCEPT_BURST: usize = 16;
/// Pause before accepting again after an accept error such as `EMFILE`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Longest request head, bytes (hyper's buffer; its minimum is 8 KiB): a
/// scrape's is a few hundred.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Seconds between two warnings about accept errors.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Serves `registry` at `http://addr/metrics` on a thread of its own, for
/// the rest of the process; returns the address bound (port 0 resolved).
/// If that thread ever stops, `stop` ends the run with the reason.
pub fn serve(addr: SocketAddr, registry: Registry, stop: Stop) -> Result<SocketAddr> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| anyhow!("--metrics {addr}: cannot start the server's runtime ({e})"))?;
    // tokio's bind keeps a backlog of 1,024 pending connections (std's: 128).
    let listener = runtime.block_on(TcpListener::bind(addr)).map_err(|e| {
        anyhow!("--metrics {addr}: cannot listen there ({e}); pick a free port or another address")
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| anyhow!("--metrics {addr}: cannot read the address bound ({e})"))?;
    let registry = Arc::new(registry);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            guard(&stop, bound, || runtime.block_on(accept_loop(listener, registry)));
        })
        .map_err(|e| anyhow!("--metrics {addr}: cannot start the server thread ({e})"))?;
    Ok(bound)
}

/// Runs the server `body`, which only ends by panicking, and ends the run
/// through `stop` when it does: never a live monitor with a dead endpoint.
fn guard(stop: &Stop, bound: SocketAddr, body: impl FnOnce() -> Infallible) {
    let Err(panic) = panic::catch_unwind(AssertUnwindSafe(body));
    let why = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    stop.fail(format!(
        "--metrics {bound}: the metrics endpoint stopped ({why}); ending the run so that the service \
         manager restarts the monitor"
    ));
}

/// Accepts connections for ever, each served by a task of its own.
async fn accept_loop(listener: TcpListener, registry: Arc<Registry>) -> Infallible {
    let clock = Arc::new(Clock::new());
    let mut open = Connections::new(MAX_CONNECTIONS);
    let mut warned: Option<Instant> = None;
    let mut burst = 0;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let closed = open.make_room();
                if closed != Closed::Nothing {
                    burst += 1;
                }
                if closed == Closed::Waiting || burst >= ACCEPT_BURST {
                    // Lets the closed connections' tasks drop, and their sockets close, now,
                    // and the connections accepted so far be answered.
                    burst = 0;
                    tokio::task::yield_now().await;
                }
                let activity = Arc::new(Activity::new(&clock));
                let task = tokio::spawn(connection(
                    stream,
                    Arc::clone(&registry),
                    Arc::clone(&clock),
                    Arc::clone(&activity),
                ));
                open.add(task.abort_handle(), activity);
            }
            // The client gave up before it was accepted: nothing to wait for.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => {
                let closed =
                    e.raw_os_error().is_some_and(is_fd_exhaustion) && open.close_one() != Closed::Nothing;
                if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warned = Some(Instant::now());
                    lsgm::frames::stderr_line(format_args!(
                        "lsgm-monitor: warning: --metrics: cannot accept a connection ({e}); closing connections \
                         (answered ones first) to free descriptors, or waiting {} ms, and trying again (said at most \
                         once a minute)",
                        ACCEPT_BACKOFF.as_millis()
                    ));
                }
                if closed {
                    // Its descriptor is free once its task has dropped: accept again at once.
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// `EMFILE` (the process's descriptors) or `ENFILE` (the system's).
fn is_fd_exhaustion(errno: i32) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    errno == EMFILE || errno == ENFILE
}

/// Serves one connection until it ends, breaks a timeout, or is closed by
/// [`Connections`] (its task aborted: dropping the future closes the socket).
async fn connection(stream: TcpStream, registry: Arc<Registry>, clock: Arc<Clock>, activity: Arc<Activity>) {
    let touched = Arc::clone(&activity);
    let started = Arc::clone(&clock);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        // The answer is made here and written in the same poll of this task, before
        // [`Connections`] can close it: from now on the connection counts as answered.
        touched.answer(&started);
        std::future::ready(Ok::<_, Infallible>(respond(&request, &registry)))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_BYTES);
    let served = builder.serve_connection(TokioIo::new(stream), service);
    let mut served = std::pin::pin!(served);
    // The write timeout: re-armed while requests keep starting.
    loop {
        let deadline = activity.last(&clock) + WRITE_TIMEOUT;
        if tokio::time::timeout_at(deadline, served.as_mut()).await.is_ok() {
            return; // closed by the client, or an HTTP error hyper answered
        }
        if activity.last(&clock) + WRITE_TIMEOUT <= Instant::now() {
            return;
        }
    }
}

/// The answer to one request.
fn respond(request: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "lsgm-monitor: the metrics are read with GET (or HEAD)\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if request.uri().path() != "/metrics" {
        return text(
            StatusCode::NOT_FOUND,
            "lsgm-monitor: the metrics are at /metrics\n",
        );
    }
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, registry).is_err() {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "lsgm-monitor: encoding the metrics failed\n",
        );
    }
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// A plain-text answer with `status`.
fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The server's time line: when it started, and a counter that orders
/// every accept and request.
struct Clock {
    epoch: Instant,
    ticks: AtomicU64,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
            ticks: AtomicU64::new(0),
        }
    }
}

/// When a connection was last active (accepted, or a request started), and
/// whether it has been answered yet.
struct Activity {
    /// Its place in the order of all accepts and requests: the least recent is the smallest.
    tick: AtomicU64,
    /// Milliseconds after the clock's epoch.
    millis: AtomicU64,
    /// A request of its own has been answered.
    answered: AtomicBool,
}

impl Activity {
    /// Active now.
    fn new(clock: &Clock) -> Activity {
        let a = Activity {
            tick: AtomicU64::new(0),
            millis: AtomicU64::new(0),
            answered: AtomicBool::new(false),
        };
        a.touch(clock);
        a
    }

    /// Marks it active now.
    fn touch(&self, clock: &Clock) {
        self.tick
            .store(clock.ticks.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let millis = u64::try_from(clock.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.millis.store(millis, Ordering::Relaxed);
    }

    /// Marks it active now, answering a request.
    fn answer(&self, clock: &Clock) {
        self.touch(clock);
        self.answered.store(true, Ordering::Relaxed);
    }

    /// Its rank for closing at the cap, smallest first: answered before
    /// unanswered, then least recently active first.
    fn rank(&self) -> (bool, u64) {
        (
            !self.answered.load(Ordering::Relaxed),
            self.tick.load(Ordering::Relaxed),
        )
    }

    /// When it was last active.
    fn last(&self, clock: &Clock) -> Instant {
        clock.epoch + Duration::from_millis(self.millis.load(Ordering::Relaxed))
    }
}

/// What [`Connections::close_one`] closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// Nothing: below the cap, or no connection open.
    Nothing,
    /// A connection that had been answered.
    Answered,
    /// A connection still waiting for its first answer.
    Waiting,
}

/// The connections being served, at most `cap`.
struct Connections {
    open: Vec<(AbortHandle, Arc<Activity>)>,
    cap: usize,
}

impl Connections {
    fn new(cap: usize) -> Connections {
        Connections {
            open: Vec::with_capacity(cap),
            cap,
        }
    }

    /// Forgets the connections that ended, then closes one ([`Self::victim`])
    /// if the cap is reached, so that a new one can be added.
    fn make_room(&mut self) -> Closed {
        self.open.retain(|(task, _)| !task.is_finished());
        if self.open.len() < self.cap {
            return Closed::Nothing;
        }
        self.close_one()
    }

    /// Closes the [`Self::victim`] (its task is aborted: its socket closes
    /// when the runtime next drops the task, at this task's next yield).
    fn close_one(&mut self) -> Closed {
        let Some(i) = self.victim() else {
            return Closed::Nothing;
        };
        let (task, activity) = self.open.swap_remove(i);
        task.abort();
        if activity.answered.load(Ordering::Relaxed) {
            Closed::Answered
        } else {
            Closed::Waiting
        }
    }

    /// The connection to close to make room: the least recently active of
    /// those answered at least once, else the oldest of those never
    /// answered. Closing an answered connection loses no answer (its client
    /// reconnects for the next), while a connection not yet answered may be
    /// a scrape whose request is still on its way; the oldest of those has
    /// had the most time to send one.
    fn victim(&self) -> Option<usize> {
        (self.open.iter().enumerate())
            .min_by_key(|(_, (_, activity))| activity.rank())
            .map(|(i, _)| i)
    }

    fn add(&mut self, task: AbortHandle, activity: Arc<Activity>) {
        self.open.push((task, activity));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens a connection that never ends by itself, tracked by `open`.
    fn pending(open: &mut Connections, clock: &Clock) -> (tokio::task::JoinHandle<()>, Arc<Activity>) {
        let activity = Arc::new(Activity::new(clock));
        let task = tokio::spawn(std::future::pending::<()>());
        open.add(task.abort_handle(), Arc::clone(&activity));
        (task, activity)
    }

    /// At the cap, a new connection closes one that has been answered (the
    /// least recently active of them) before any that has not, however old:
    /// a connection not yet answered may be a scrape whose request is on its
    /// way. With none answered, the oldest goes.
    #[test]
    fn the_cap_closes_answered_connections_first() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let clock = Clock::new();
            let mut open = Connections::new(4);
            let mut conns = Vec::new();
            for _ in 0..4 {
                assert_eq!(open.make_room(), Closed::Nothing);
                conns.push(pending(&mut open, &clock));
            }
            // 1 then 2 are answered; 0 and 3 are still waiting for their first answer.
            conns[1].1.answer(&clock);
            conns[2].1.answer(&clock);
            let ended = |conns: &[(tokio::task::JoinHandle<()>, Arc<Activity>)]| {
                conns.iter().map(|(t, _)| t.is_finished()).collect::<Vec<bool>>()
            };
            // The answered one least recently active goes, not the older unanswered 0.
            assert_eq!(open.make_room(), Closed::Answered);
            conns.push(pending(&mut open, &clock));
            tokio::task::yield_now().await;
            assert_eq!(ended(&conns), [false, true, false, false, false]);
            // Then the other answered one, although it is the most recently active.
            assert_eq!(open.make_room(), Closed::Answered);
            conns.push(pending(&mut open, &clock));
            tokio::task::yield_now().await;
            assert_eq!(ended(&conns), [false, true, true, false, false, false]);
            // None answered: the oldest (accepted first) goes.
            assert_eq!(open.make_room(), Closed::Waiting);
            tokio::task::yield_now().await;
            assert_eq!(ended(&conns), [true, true, true, false, false, false]);
            // Below the cap nothing is closed; a finished task is forgotten.
            conns[3].0.abort();
            tokio::task::yield_now().await;
            assert_eq!(open.make_room(), Closed::Nothing);
            assert_eq!(open.open.len(), 2);
            assert_eq!(open.close_one(), Closed::Waiting);
            assert_eq!(open.close_one(), Closed::Waiting);
            assert_eq!(open.close_one(), Closed::Nothing);
        });
    }

    /// A server thread that stops (it can only panic) ends the run with a
    /// reason that names the endpoint and the cause.
    #[test]
    fn a_dead_endpoint_ends_the_run_with_its_reason() {
        let stop = Stop::default();
        let addr: SocketAddr = "127.0.0.1:9184".parse().unwrap();
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || guard(&stop, addr, || panic!("accept loop broke"))
        });
        thread.join().unwrap();
        assert!(stop.requested());
        let why = stop.failure().unwrap();
        assert!(
            why.contains("127.0.0.1:9184") && why.contains("accept loop broke") && why.contains("restarts"),
            "{why}"
        );
    }
}

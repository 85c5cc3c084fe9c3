#![cfg(feature = "monitor")]
//! The `--metrics` endpoint under abusive clients (issue #22): idle
//! connections by the thousand, a hundred clients requesting non-stop on
//! keep-alive connections, a client that pipelines requests and never
//! reads, methods other than GET, and a process out of descriptors. Each
//! test runs the monitor binary on a raw stdin kept open and talks HTTP/1.1
//! to it over plain sockets on 127.0.0.1; every wait is bounded, and the
//! tests run one at a time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod cli;
use cli::{allow_descriptors, summary_counts, uniform_noise, Live};

/// Holds the other tests of this file off while one runs: each measures how
/// fast a scrape is answered, and another's load (120 busy clients) would
/// slow it on a small machine.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The monitor with `--metrics 127.0.0.1:0` (and at most `descriptors`
/// open files), fed `frames` noise frames; its metrics address.
fn monitor_with_metrics(frames: usize, descriptors: Option<u64>) -> (Live, String) {
    let mut live = Live::start_limited(&["--summary-only", "--metrics", "127.0.0.1:0"], descriptors);
    let addr = live.metrics_address();
    live.send(&uniform_noise(frames, 5));
    let want = format!("lsgm_frames_total {frames}\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answer(&addr, "GET", "/metrics", Duration::from_secs(5))
        .body
        .contains(&want)
    {
        assert!(Instant::now() < deadline, "the metrics never showed {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (live, addr)
}

/// An HTTP answer.
struct Answer {
    status: u16,
    /// The header lines, lower-cased.
    head: Vec<String>,
    body: String,
    took: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.head.iter().find_map(|h| h.strip_prefix(&prefix))
    }
}

/// `method path` on a new connection (`Connection: close`), read to the
/// end; the socket gives up after `limit` without progress.
fn answer(addr: &str, method: &str, path: &str, limit: Duration) -> Answer {
    exchange(addr, method, path, limit, Duration::ZERO).unwrap_or_else(|e| panic!("{e}"))
}

/// [`answer`], with the request sent `pause` after the connection opens
/// (a slow link, or a busy client), and a failure returned, not panicked on.
fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    limit: Duration,
    pause: Duration,
) -> Result<Answer, String> {
    let started = Instant::now();
    let failed = |e: &dyn std::fmt::Display, raw: &[u8]| {
        format!(
            "{method} {path}: no complete answer within {limit:?} ({e}); got {:?}",
            String::from_utf8_lossy(raw)
        )
    };
    let mut s = TcpStream::connect(addr).map_err(|e| failed(&e, b""))?;
    s.set_read_timeout(Some(limit)).unwrap();
    s.set_write_timeout(Some(limit)).unwrap();
    std::thread::sleep(pause);
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(|e| failed(&e, b""))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| failed(&e, &raw))?;
    let took = started.elapsed();
    let text = String::from_utf8(raw).unwrap();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(failed(&"the connection was closed", text.as_bytes()));
    };
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    Ok(Answer {
        status,
        head: lines.map(str::to_ascii_lowercase).collect(),
        body: body.to_string(),
        took,
    })
}

/// A scrape answered, right, within a second.
fn assert_prompt_scrape(addr: &str, frames: usize, when: &str) {
    let a = answer(addr, "GET", "/metrics", Duration::from_secs(1));
    assert_eq!(a.status, 200, "{when}: {}", a.body);
    assert!(a.took < Duration::from_secs(1), "{when}: took {:?}", a.took);
    for want in [
        format!("lsgm_frames_total {frames}\n"),
        format!("lsgm_ood_frames_total {frames}\n"),
        "lsgm_frame_errors_total 0\n".into(),
    ] {
        assert!(a.body.contains(&want), "{when}: no {want:?} in {}", a.body);
    }
    assert!(a.body.ends_with("# EOF\n"), "{when}: {}", a.body);
}

/// The sockets the monitor holds open (its listener and connections).
fn sockets_of(live: &Live) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", live.child.id()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Ends the monitor (stdin closed) and checks it ran to a normal end.
fn finish(mut live: Live, frames: u64) -> String {
    drop(live.child.stdin.take());
    let (status, _, said) = live.finish();
    assert_eq!(status, Some(0), "{said}");
    assert_eq!(summary_counts(&said), (frames, 0, frames), "{said}");
    said
}

/// The case: idle connections by the thousand (the old server died
/// at about 510 under the default 1,024 descriptors). A scrape still gets
/// its answer within a second while they are held, and after they close.
#[test]
fn a_thousand_idle_connections_do_not_keep_a_scrape_out() {
    let _alone = one_at_a_time();
    allow_descriptors(1200);
    let (live, addr) = monitor_with_metrics(3, Some(1024));
    let idle: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    assert_prompt_scrape(&addr, 3, "with 1,000 idle connections held");
    // It holds at most its cap of connections (64), and its listener.
    let held = sockets_of(&live);
    assert!(held <= 64 + 1, "{held} sockets");
    drop(idle);
    for _ in 0..3 {
        assert_prompt_scrape(&addr, 3, "after they closed");
    }
    finish(live, 3);
}

/// A client that pipelines 2,000 requests and never reads the answers
/// stalls only its own connection: another client's scrape is answered at
/// once, and the stalled connection is closed by the write timeout.
#[test]
fn a_pipelining_client_that_never_reads_stalls_only_itself() {
    let _alone = one_at_a_time();
    let (live, addr) = monitor_with_metrics(2, None);
    std::thread::sleep(Duration::from_millis(300)); // the scrapes' connections are closed
    let before = sockets_of(&live);
    let mut greedy = TcpStream::connect(&addr).unwrap();
    greedy.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let requests = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").repeat(2000);
    // The server stops reading once its answers fill the socket: the rest may not fit.
    let _ = greedy.write_all(requests.as_bytes());
    std::thread::sleep(Duration::from_millis(200));
    assert!(sockets_of(&live) > before, "the greedy connection is open");
    for _ in 0..3 {
        assert_prompt_scrape(&addr, 2, "while a client pipelines without reading");
    }
    // Closed within the write timeout (10 s), with margin; `greedy` is still open on this side.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sockets_of(&live) > before {
        assert!(
            Instant::now() < deadline,
            "the stalled connection was never closed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_prompt_scrape(&addr, 2, "after the stalled connection was closed");
    drop(greedy);
    finish(live, 2);
}

/// Only GET and HEAD read the metrics: POST, PUT and DELETE get 405 with an
/// `Allow` header; HEAD gets the head of the GET answer without its body;
/// another path is 404.
#[test]
fn other_methods_get_405_and_head_gets_the_head() {
    let _alone = one_at_a_time();
    let (live, addr) = monitor_with_metrics(1, None);
    let limit = Duration::from_secs(5);
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let a = answer(&addr, method, "/metrics", limit);
        assert_eq!(a.status, 405, "{method}: {}", a.body);
        assert_eq!(a.header("allow"), Some("get, head"), "{method}: {:?}", a.head);
    }
    let get = answer(&addr, "GET", "/metrics", limit);
    let head = answer(&addr, "HEAD", "/metrics", limit);
    assert_eq!((get.status, head.status), (200, 200));
    assert!(head.body.is_empty(), "{}", head.body);
    let length = |a: &Answer| a.header("content-length").map(str::to_string);
    assert_eq!(length(&head), length(&get));
    assert_eq!(length(&get), Some(get.body.len().to_string()));
    assert!(
        head.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        head.head
    );
    assert_eq!(answer(&addr, "GET", "/elsewhere", limit).status, 404);
    finish(live, 1);
}

/// Out of descriptors: the monitor gets 64 (`LimitNOFILE=64`) and a client
/// opens 200 connections. Accepting fails with `EMFILE`; the endpoint
/// closes its least recently active connection and goes on, says so once,
/// answers a scrape while they are held and after they close, and frames
/// are judged throughout.
#[test]
fn out_of_descriptors_the_endpoint_recovers() {
    let _alone = one_at_a_time();
    let (mut live, addr) = monitor_with_metrics(2, Some(64));
    let held: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let during = answer(&addr, "GET", "/metrics", Duration::from_secs(10));
    assert_eq!(during.status, 200);
    assert!(during.body.contains("lsgm_frames_total 2\n"), "{}", during.body);
    live.wait_for("Too many open files");
    drop(held);
    live.send(&uniform_noise(3, 9));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answer(&addr, "GET", "/metrics", Duration::from_secs(5))
        .body
        .contains("lsgm_frames_total 5\n")
    {
        assert!(Instant::now() < deadline, "frames stopped being counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_prompt_scrape(&addr, 5, "after the connections closed");
    let said = finish(live, 5);
    assert_eq!(said.matches("cannot accept a connection").count(), 1, "{said}");
}

/// A client that requests `/metrics` non-stop on keep-alive connections
/// until `stop`: each answer read to its end, the next request sent at
/// once; a closed connection is counted in `closed` and opened again.
fn hammer(addr: String, stop: Arc<AtomicBool>, answered: Arc<AtomicU64>, closed: Arc<AtomicU64>) {
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(&addr) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        'requests: while !stop.load(Ordering::Relaxed) {
            if s.write_all(request.as_bytes()).is_err() {
                break;
            }
            let mut got = Vec::new();
            while !got.ends_with(b"# EOF\n") {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                    _ => break 'requests,
                }
            }
            answered.fetch_add(1, Ordering::Relaxed);
        }
        closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Stops the clients it holds when dropped, also when an assertion fails.
struct Clients {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The trial's case (issue #22): 120 clients — about twice the cap of 64
/// connections — request `/metrics` non-stop on keep-alive connections,
/// so every new connection closes another. A fresh scrape must not be the
/// one closed before its answer (with the least-recently-active rule it
/// was, being older than the hammering clients' last requests: 0 bytes).
/// Half the scrapes send their request 200 ms after connecting, as a slow
/// link or a busy scraper does (the trial's Python scraper among 100
/// threads did): with that rule 4 of 12 such scrapes got 0 bytes. Every
/// scrape is answered, within a second of connecting.
#[test]
fn keep_alive_clients_over_the_cap_do_not_keep_a_scrape_out() {
    let _alone = one_at_a_time();
    allow_descriptors(1024);
    let (live, addr) = monitor_with_metrics(2, None);
    let (stop, answered, closed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut clients = Clients {
        stop: Arc::clone(&stop),
        threads: Vec::new(),
    };
    for _ in 0..120 {
        let (addr, stop, answered, closed) = (
            addr.clone(),
            Arc::clone(&stop),
            Arc::clone(&answered),
            Arc::clone(&closed),
        );
        clients
            .threads
            .push(std::thread::spawn(move || hammer(addr, stop, answered, closed)));
    }
    // Wait until the clients are over the cap: their connections are being closed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while closed.load(Ordering::Relaxed) < 100 || answered.load(Ordering::Relaxed) < 1000 {
        assert!(Instant::now() < deadline, "the clients never went over the cap");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut failures = Vec::new();
    for i in 0..24 {
        let pause = Duration::from_millis(if i % 2 == 0 { 0 } else { 200 });
        match exchange(&addr, "GET", "/metrics", Duration::from_secs(1), pause) {
            Ok(a) if a.status == 200 && a.took < Duration::from_secs(1) && a.body.ends_with("# EOF\n") => {}
            Ok(a) => failures.push(format!("scrape {i}: status {} after {:?}", a.status, a.took)),
            Err(e) => failures.push(format!("scrape {i} (request after {pause:?}): {e}")),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (served, reconnected) = (answered.load(Ordering::Relaxed), closed.load(Ordering::Relaxed));
    drop(clients);
    assert!(
        failures.is_empty(),
        "{} of 24 scrapes failed while the clients got {served} answers and {reconnected} connections closed: \
         {failures:#?}",
        failures.len()
    );
    assert_prompt_scrape(&addr, 2, "after the clients stopped");
    finish(live, 2);
}

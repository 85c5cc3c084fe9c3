//! A monitor that keeps running while a test talks to it.

use super::monitor;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The monitor on raw frames from a pipe the test keeps open, and its
/// stderr read line by line on a thread.
pub struct Live {
    pub child: std::process::Child,
    stderr: std::sync::mpsc::Receiver<String>,
    said: Vec<String>,
}

impl Live {
    pub fn start(args: &[&str]) -> Live {
        Live::start_limited(args, None)
    }

    /// [`Live::start`] with at most `descriptors` open files (`RLIMIT_NOFILE`), if given.
    pub fn start_limited(args: &[&str], descriptors: Option<u64>) -> Live {
        let mut command = monitor();
        command
            .args([&["--raw", "28x28x1"], args, &["-"]].concat())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(n) = descriptors {
            limit_descriptors(&mut command, n);
        }
        let mut child = command.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Live {
            child,
            stderr: rx,
            said: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `text`.
    pub fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
                self.said.push(line.clone());
                if line.contains(text) {
                    return line;
                }
            }
        }
        panic!("no {text:?} on stderr: {:?}", self.said);
    }

    /// `HOST:PORT` of `--metrics`, once the monitor says it serves there.
    pub fn metrics_address(&mut self) -> String {
        let said = self.wait_for("serving Prometheus metrics at http://");
        let url = said.split("http://").nth(1).unwrap();
        url.trim_end_matches("/metrics").to_string()
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.child.stdin.as_mut().unwrap().write_all(raw).unwrap();
    }

    /// Everything left on stderr once the monitor has ended, with its code.
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        let status = self.child.wait().unwrap();
        let mut out = String::new();
        if let Some(stdout) = self.child.stdout.as_mut() {
            std::io::Read::read_to_string(stdout, &mut out).unwrap();
        }
        self.said.extend(self.stderr.iter());
        (status.code(), out, self.said.join("\n"))
    }
}

/// Starts `command` with at most `n` open descriptors (soft and hard
/// `RLIMIT_NOFILE`), as a service manager's `LimitNOFILE=` would.
fn limit_descriptors(command: &mut Command, n: u64) {
    use std::os::unix::process::CommandExt;
    let limit = libc::rlimit {
        rlim_cur: n as libc::rlim_t,
        rlim_max: n as libc::rlim_t,
    };
    // SAFETY: setrlimit is async-signal-safe, and only reads `limit`.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Raises this process's soft `RLIMIT_NOFILE` to at least `n` (within the
/// hard limit), for a test that opens many connections itself.
#[allow(clippy::unnecessary_cast)] // `rlim_t` is 32 bits on 32-bit targets
pub fn allow_descriptors(n: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into `limit`; setrlimit only reads it.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0, "getrlimit: {}", std::io::Error::last_os_error());
    if (limit.rlim_cur as u64) < n {
        assert!(
            limit.rlim_max as u64 >= n,
            "this test opens {n} connections, but the hard limit of open files is {}; raise it (ulimit -Hn)",
            limit.rlim_max
        );
        limit.rlim_cur = n as libc::rlim_t;
        // SAFETY: as above.
        let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        assert_eq!(set, 0, "setrlimit: {}", std::io::Error::last_os_error());
    }
}

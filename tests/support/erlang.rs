//! Test support: real Erlang in separate OS processes, through
//! `scripts/services/erlang.sh` — an isolated epmd per test on a free loopback port,
//! and named BEAM nodes (`-sname`) whose stdout lines the test waits on.
//!
//! Every OS process started here is killed and reaped when its handle drops, so a
//! failing test leaks nothing. Without Erlang the tests fail (never skip), naming the
//! script that installs it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, unbounded};
use otp_threads_testkit::{Patience, poll_until};

/// Bound on every wait for an Erlang-side event: generous, BEAM starts in ~0.5 s.
pub const WAIT: Duration = Duration::from_secs(30);

/// The service script.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/services/erlang.sh")
}

/// Fails the test unless `erl` and `epmd` are installed (installing them when root).
pub fn require_erlang() {
    static ENSURED: Once = Once::new();
    ENSURED.call_once(|| {
        let status = Command::new("bash")
            .arg(script())
            .arg("ensure")
            .status()
            .expect("cannot run bash");
        assert!(
            status.success(),
            "Erlang is required: run `bash {} ensure` (as root it installs erlang-base and erlang-runtime-tools)",
            script().display()
        );
    });
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free port on 127.0.0.1")
}

/// The host part `-sname` nodes get: the machine's short hostname (which must resolve
/// to 127.0.0.1; see the script's header).
pub fn short_host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    name.trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_owned()
}

/// A unique alive name for this test run: `prefix` plus the test process id and a counter.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An OS process with its stdout lines on a channel; killed and reaped on drop.
pub struct OsProcess {
    what: String,
    child: Child,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
}

impl OsProcess {
    fn spawn(what: String, command: &mut Command) -> OsProcess {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = unbounded();
        let label = what.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{label}] {line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        OsProcess {
            what,
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix` and returns it.
    pub fn expect_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.lines.recv_deadline(deadline) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{} printed no line starting with {prefix:?} within {WAIT:?}",
                        self.what
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "{} exited before printing a line starting with {prefix:?}",
                        self.what
                    )
                }
            }
        }
    }

    /// The next stdout line within `patience`, if any (the process may still run).
    pub fn try_line(&self, patience: Duration) -> Option<String> {
        match self.lines.recv_timeout(patience) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("{} exited", self.what),
        }
    }

    /// Sends a signal (e.g. `"STOP"`, `"CONT"`, `"KILL"`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self) {
        let what = format!("{} to exit by itself", self.what);
        poll_until(
            &what,
            Patience::new(WAIT, Duration::from_millis(20)),
            || self.child.try_wait().expect("try_wait"),
            |status| status.is_some(),
        );
    }
}

impl Drop for OsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Waits (bounded by [`WAIT`]) until something accepts TCP connections at `address`;
/// fails the test naming `what` otherwise.
pub fn accepts_connections(address: SocketAddr, what: &str) {
    poll_until(
        what,
        Patience::new(WAIT, Duration::from_millis(20)),
        || TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok(),
        |accepting| *accepting,
    );
}

/// A real epmd on a free loopback port.
pub struct RealEpmd {
    pub port: u16,
    _process: OsProcess,
}

impl RealEpmd {
    pub fn start() -> RealEpmd {
        require_erlang();
        let port = free_port();
        let process = OsProcess::spawn(
            format!("epmd:{port}"),
            Command::new("bash")
                .arg(script())
                .arg("epmd")
                .arg(port.to_string()),
        );
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        accepts_connections(address, &format!("epmd on {address} to start"));
        RealEpmd {
            port,
            _process: process,
        }
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Starts `erl -sname name -setcookie cookie` registered with the epmd on `epmd_port`,
/// running `eval` (comma-separated Erlang expressions, no final `.`; the node halts
/// when they return).
pub fn beam_node(name: &str, cookie: &str, epmd_port: u16, eval: &str) -> OsProcess {
    beam_node_with(name, cookie, epmd_port, eval, &[])
}

/// As [`beam_node`], with extra `erl` arguments (e.g. `-hidden`, kernel settings).
pub fn beam_node_with(
    name: &str,
    cookie: &str,
    epmd_port: u16,
    eval: &str,
    extra: &[&str],
) -> OsProcess {
    require_erlang();
    let mut command = Command::new("bash");
    command
        .arg(script())
        .arg("node")
        .arg(name)
        .arg(cookie)
        .arg(epmd_port.to_string())
        .args(extra)
        .arg("-eval")
        .arg(format!("{eval}, erlang:halt()."));
    OsProcess::spawn(format!("beam:{name}"), &mut command)
}

/// Erlang: register `echo`, print `ready`, then answer every `{From, Msg}` with
/// `From ! {echo, Msg}` until `stop`.
pub const ECHO: &str = "register(echo, self()), io:format(\"ready~n\"), \
    Loop = fun L() -> receive stop -> ok; {From, Msg} -> From ! {echo, Msg}, L() end end, Loop()";

/// `true` if any OS process's command line contains `needle` (for leak checks).
pub fn os_process_running(needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|cmdline| {
                String::from_utf8_lossy(&cmdline)
                    .replace('\0', " ")
                    .contains(needle)
            })
            .unwrap_or(false)
    })
}

//! Test support: a Rust node with a zen monitor, and a real BEAM node (an OS process,
//! started through `scripts/services/erlang.sh`) running `tests/erlang/zen_proxy.erl`,
//! compiled with `erlc` at test time. Both register with our EPMD-compatible name
//! server on a free loopback port. Everything is stopped and reaped on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, Node, Term, ToTerm};
use otp_threads::{Context, Info, Pid, Runtime, Step, Worker, WorkerRef};
use otp_threads_zen_monitor::{ChannelSubscriber, Options, SharedSubscriber, ZenDown, ZenMonitor};

/// Bound on every wait for an event.
pub const WAIT: Duration = Duration::from_secs(30);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services/erlang.sh")
}

fn require_erlang() {
    static ENSURED: OnceLock<()> = OnceLock::new();
    ENSURED.get_or_init(|| {
        let status = Command::new("bash")
            .arg(script())
            .arg("ensure")
            .status()
            .expect("bash");
        assert!(
            status.success(),
            "Erlang is required: run `bash {} ensure`",
            script().display()
        );
    });
}

/// `zen_proxy.beam`, compiled once per test binary into a temp dir.
fn beam_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require_erlang();
        let dir = std::env::temp_dir().join(format!("zen-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/erlang/zen_proxy.erl");
        let status = Command::new("erlc")
            .arg("-o")
            .arg(&dir)
            .arg(&source)
            .status()
            .expect("erlc");
        assert!(status.success(), "erlc failed on {}", source.display());
        dir
    })
}

pub fn short_host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    name.trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_owned()
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A BEAM node running zen_proxy; killed on drop.
pub struct Beam {
    pub name: String,
    child: Child,
    lines: Receiver<String>,
}

impl Beam {
    pub fn start(epmd_port: u16, with_proxy: bool) -> Beam {
        let dir = beam_dir();
        let alive = unique("beam");
        let eval = format!(
            "code:add_patha(\"{}\"), zen_proxy:main({with_proxy}), erlang:halt().",
            dir.display()
        );
        let mut child = Command::new("bash")
            .arg(script())
            .arg("node")
            .arg(&alive)
            .arg("sesame")
            .arg(epmd_port.to_string())
            .arg("-eval")
            .arg(eval)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .expect("start erl");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[beam] {line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let beam = Beam {
            name: format!("{alive}@{}", short_host()),
            child,
            lines,
        };
        beam.expect_line("ready");
        beam
    }

    pub fn expect_line(&self, prefix: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.lines.recv_deadline(deadline) {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("beam printed no {prefix:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("beam exited before {prefix:?}"),
            }
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Beam {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A worker that forwards every term other nodes send it.
pub struct Reporter(pub Sender<Term>);

impl Worker for Reporter {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = Term;
    type Continue = ();

    fn handle_info(&mut self, info: Info<Term>, _: &mut Context<Self>) -> Step<Self> {
        if let Info::Message(term) = info {
            let _ = self.0.send(term);
        }
        Step::Next
    }
}

/// A Rust node with a zen monitor, a reporter, and a BEAM peer.
pub struct Scene {
    pub zen: Option<ZenMonitor>,
    pub node: Option<Arc<Node>>,
    pub runtime: Option<Runtime>,
    pub beam: Beam,
    pub reporter: WorkerRef<Reporter>,
    pub reports: Receiver<Term>,
    _server: NameServer,
}

pub fn fast_options() -> Options {
    // The library's test config: 10 ms intervals.
    Options {
        connector_sweep_interval: Duration::from_millis(10),
        batcher_sweep_interval: Duration::from_millis(10),
        demand_interval: Duration::from_millis(10),
        ..Options::default()
    }
}

impl Scene {
    pub fn start(options: Options, with_proxy: bool) -> Scene {
        let _ = env_logger::builder().is_test(true).try_init();
        let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let name = format!("{}@{}", unique("rs"), short_host());
        let runtime = Runtime::builder().node_name(&name).build().unwrap();
        let node = Arc::new(
            Node::builder()
                .cookie("sesame")
                .epmd(server.address())
                .start(&runtime.handle())
                .unwrap(),
        );
        let beam = Beam::start(server.address().port(), with_proxy);
        node.connect(&beam.name).unwrap();
        let zen = ZenMonitor::start(&runtime.handle(), node.clone(), options).unwrap();
        let (sender, reports) = unbounded();
        let reporter = runtime.spawn_worker(Reporter(sender)).unwrap();
        node.accept_messages(&reporter);
        Scene {
            zen: Some(zen),
            node: Some(node),
            runtime: Some(runtime),
            beam,
            reporter,
            reports,
            _server: server,
        }
    }

    pub fn zen(&self) -> &ZenMonitor {
        self.zen.as_ref().unwrap()
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().unwrap()
    }

    /// Sends `message` to the BEAM node's `zen_ctl`.
    pub fn ctl(&self, message: &impl ToTerm) {
        self.node()
            .send(
                self.reporter.pid(),
                ("zen_ctl", self.beam.name.as_str()),
                message,
            )
            .unwrap();
    }

    /// The next report whose first element is the atom `tag`.
    pub fn report(&self, tag: &str) -> Term {
        let deadline = Instant::now() + WAIT;
        loop {
            let term = self
                .reports
                .recv_deadline(deadline)
                .unwrap_or_else(|_| panic!("no {tag} report within {WAIT:?}"));
            if let Term::Tuple(t) = &term
                && matches!(t.elements.first(), Some(Term::Atom(a)) if a.name == tag)
            {
                return term;
            }
        }
    }

    /// `n` fresh victim processes on the BEAM node.
    pub fn victims(&self, n: usize) -> Vec<Pid> {
        self.ctl(&(Atom::from("spawn_victims"), self.reporter.pid(), n as u64));
        let (_, pids): (Atom, Vec<Pid>) =
            otp_threads::dist::FromTerm::from_term(self.report("victims")).unwrap();
        pids
    }

    pub fn kill(&self, pid: Pid, reason: Term) {
        self.ctl(&(Atom::from("kill"), pid, reason));
    }

    /// (casts, instructions, real monitors, largest cast) seen by the BEAM Proxy.
    pub fn proxy_stats(&self) -> (u64, u64, u64, u64) {
        self.ctl(&(Atom::from("stats"), self.reporter.pid()));
        let (_, casts, instructions, monitors, max): (Atom, u64, u64, u64, u64) =
            otp_threads::dist::FromTerm::from_term(self.report("proxy_stats")).unwrap();
        (casts, instructions, monitors, max)
    }

    /// A channel subscriber standing for a fresh plain-thread process.
    pub fn channel(
        &self,
    ) -> (
        SharedSubscriber,
        Receiver<ZenDown>,
        otp_threads::Process<()>,
    ) {
        let process: otp_threads::Process<()> = self.runtime.as_ref().unwrap().process().unwrap();
        let (sender, receiver) = unbounded();
        let subscriber: SharedSubscriber = Arc::new(ChannelSubscriber {
            pid: process.pid(),
            sender,
        });
        (subscriber, receiver, process)
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if let Some(zen) = self.zen.take() {
            zen.shutdown(Duration::from_secs(10));
        }
        let _ = self
            .reporter
            .stop(otp_threads::ExitReason::Shutdown, Duration::from_secs(5));
        if let Some(node) = self.node.take() {
            // Dropping the last handle stops the node too.
            if let Ok(node) = Arc::try_unwrap(node) {
                node.shutdown();
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown(Duration::from_secs(10)).unwrap();
        }
    }
}

/// The next DOWN, within [`WAIT`].
pub fn next_down(downs: &Receiver<ZenDown>) -> ZenDown {
    downs.recv_timeout(WAIT).expect("a DOWN within the wait")
}

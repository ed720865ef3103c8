//! Test support: a runtime + distribution node of ours on loopback, and a probe worker
//! that reports every message it gets from other nodes.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use otp_threads::dist::{Atom, Node, NodeEvent, Term};
use otp_threads::{Context, Info, ReplyTo, Runtime, Step, Worker};

pub const WAIT: Duration = Duration::from_secs(30);

/// A runtime that is a node `alive@host` registered with the EPMD at `epmd`.
pub struct OurNode {
    pub node: Option<Node>,
    pub runtime: Option<Runtime>,
}

impl OurNode {
    pub fn start(alive: &str, cookie: &str, epmd: SocketAddr) -> OurNode {
        Self::start_with(alive, epmd, |b| b.cookie(cookie))
    }

    pub fn start_with(
        alive: &str,
        epmd: SocketAddr,
        settings: impl FnOnce(otp_threads::dist::NodeBuilder) -> otp_threads::dist::NodeBuilder,
    ) -> OurNode {
        let name = format!("{alive}@{}", super::erlang::short_host());
        let runtime = Runtime::builder().node_name(&name).build().unwrap();
        let node = settings(Node::builder().epmd(epmd))
            .start(&runtime.handle())
            .unwrap();
        OurNode {
            node: Some(node),
            runtime: Some(runtime),
        }
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().unwrap()
    }

    pub fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().unwrap()
    }

    pub fn name(&self) -> String {
        self.node().name().to_owned()
    }
}

impl Drop for OurNode {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown(Duration::from_secs(10)).unwrap();
        }
    }
}

/// What a probe saw.
#[derive(Debug)]
pub enum Seen {
    Message(Term),
    Cast(Term),
    Exit(otp_threads::Exit),
    Down(otp_threads::Down),
}

/// A worker that reports messages, casts, EXITs and DOWNs; answers calls with
/// `{got, Request}`; can be told (by a local call) to trap exits, link, monitor or stop.
pub struct Probe {
    pub report: Sender<Seen>,
}

pub enum Order {
    Term(Term),
    TrapExit,
    Link(otp_threads::Pid),
    Monitor(otp_threads::Pid),
    Stop(otp_threads::ExitReason),
}

impl otp_threads::dist::FromTerm for Order {
    fn from_term(term: Term) -> Result<Self, otp_threads::dist::DistError> {
        Ok(Order::Term(term))
    }
}

impl Worker for Probe {
    type Call = Order;
    type Reply = Term;
    type Cast = Term;
    type Info = Term;
    type Continue = ();

    fn handle_call(
        &mut self,
        order: Order,
        reply: ReplyTo<Term>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        let ok = || otp_threads::dist::ToTerm::to_term(&Atom::from("ok"));
        match order {
            Order::Term(request) => {
                reply.reply(otp_threads::dist::ToTerm::to_term(&(
                    Atom::from("got"),
                    request,
                )));
            }
            Order::TrapExit => {
                ctx.trap_exit(true);
                reply.reply(ok());
            }
            Order::Link(pid) => {
                let result = ctx.link(&pid);
                reply.reply(otp_threads::dist::ToTerm::to_term(&result.is_ok()));
            }
            Order::Monitor(pid) => {
                ctx.monitor(&pid);
                reply.reply(ok());
            }
            Order::Stop(reason) => {
                reply.reply(ok());
                return Step::Stop(reason);
            }
        }
        Step::Next
    }

    fn handle_cast(&mut self, message: Term, _: &mut Context<Self>) -> Step<Self> {
        let _ = self.report.send(Seen::Cast(message));
        Step::Next
    }

    fn handle_info(&mut self, info: Info<Term>, _: &mut Context<Self>) -> Step<Self> {
        let seen = match info {
            Info::Message(term) | Info::Timer(_, term) => Seen::Message(term),
            Info::Exit(exit) => Seen::Exit(exit),
            Info::Down(down) => Seen::Down(down),
        };
        let _ = self.report.send(seen);
        Step::Next
    }
}

pub fn probe(
    node: &OurNode,
    name: Option<&str>,
) -> (otp_threads::WorkerRef<Probe>, Receiver<Seen>) {
    let (report, seen) = unbounded();
    let handle = node.runtime().handle();
    let worker = match name {
        Some(name) => handle.spawn_named(name, Probe { report }).unwrap(),
        None => handle.spawn_worker(Probe { report }).unwrap(),
    };
    node.node().serve(&worker);
    (worker, seen)
}

pub fn next_seen(seen: &Receiver<Seen>) -> Seen {
    seen.recv_timeout(WAIT)
        .expect("the probe saw nothing in time")
}

/// Waits for the next event matching `wanted`.
pub fn wait_event(
    events: &Receiver<NodeEvent>,
    mut wanted: impl FnMut(&NodeEvent) -> bool,
) -> NodeEvent {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let event = events
            .recv_deadline(deadline)
            .expect("no matching node event in time");
        if wanted(&event) {
            return event;
        }
    }
}

/// A Rust node of the tests in a separate OS process: this test binary started again
/// with the environment variable `role` set to `"ALIVE EPMD_PORT EXTRA..."`. Its
/// `main` runs the peer's part and prints `ready ID SERIAL CREATION` (the pid of its
/// `calc` worker, see [`announce_ready`]) first. Killed and reaped on drop.
pub struct PeerProcess {
    pub name: String,
    pub child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    pub calc: otp_threads::Pid,
}

impl PeerProcess {
    pub fn start(role: &str, epmd: SocketAddr, extra: &[&str]) -> PeerProcess {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let alive = super::erlang::unique_name("peer");
        let name = format!("{alive}@{}", super::erlang::short_host());
        let mut setting = format!("{alive} {}", epmd.port());
        for part in extra {
            setting.push(' ');
            setting.push_str(part);
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(role, setting)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().unwrap().unwrap();
        let parts: Vec<u32> = ready
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("peer said {ready}"))
            .split(' ')
            .map(|p| p.parse().unwrap())
            .collect();
        let calc = otp_threads::Pid::from_parts(
            otp_threads::NodeName::new(&name),
            parts[0],
            parts[1],
            parts[2],
        );
        PeerProcess {
            name,
            child,
            lines,
            calc,
        }
    }

    /// The peer's next line of output.
    pub fn line(&mut self) -> String {
        self.lines.next().expect("peer output").unwrap()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer's first line: `ready ID SERIAL CREATION` of its `calc` worker.
pub fn announce_ready(calc: otp_threads::Pid) {
    println!("ready {} {} {}", calc.id(), calc.serial(), calc.creation());
}

/// Waits until `pid` has handled `count` messages: a callback is counted when it
/// returns, just after its reply, so a call's return alone does not show in the count.
pub fn wait_handled(runtime: &otp_threads::RuntimeHandle, pid: &otp_threads::Pid, count: u64) {
    otp_threads_testkit::eventually("the calls counted as handled", || {
        runtime
            .process_info(pid)
            .is_some_and(|info| info.messages_handled == count)
    });
}

/// Registers `mymod:add/2` for `rpc` / `erpc` from other nodes: the checked sum of two
/// integers, `badarg` for anything else (overflow included).
pub fn register_adder(node: &Node) {
    use otp_threads::dist::{Exception, FromTerm, ToTerm};
    node.register_rpc("mymod", "add", |args: &[Term]| match args {
        [a, b] => {
            let a = i64::from_term(a.clone()).map_err(|_| Exception::badarg())?;
            let b = i64::from_term(b.clone()).map_err(|_| Exception::badarg())?;
            Ok(a.checked_add(b).ok_or_else(Exception::badarg)?.to_term())
        }
        _ => Err(Exception::badarg()),
    })
    .unwrap();
}

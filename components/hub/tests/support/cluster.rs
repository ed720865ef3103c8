//! Test support: hub nodes on loopback, the test process's own and peers in separate
//! OS processes (the test binary started again with `HUB_PEER` set), joined through our
//! EPMD-compatible name server; a counter child that hands its value over.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Lines, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, FromTerm, Node, Term, ToTerm};
use otp_threads::{ExitReason, Runtime};
use otp_threads_hub::{
    CopyMode, Distribution, HotSwap, Hub, HubChild, HubChildSpec, HubConfig, Migration,
    PartitionTolerance, Redundancy, RedundancySignal, ReplicationModel,
};

pub const PEER_ROLE: &str = "HUB_PEER";
pub const COOKIE: &str = "hubcookie";

/// A counter: `{set, V}` sets, `get` reads, `crash` panics; its value is its handover state. Args
/// `{slow_on, Prefix, Ms}` make its start take `Ms` on nodes named `Prefix...` (to
/// make migrations to such a node time out); `{refuse, Why}` make its `init` refuse
/// with `{shutdown, Why}`.
pub struct Counter {
    value: i64,
    refuse: Option<String>,
    /// The last role signalled, and how many signals came.
    mode: Option<CopyMode>,
    signals: u32,
}

impl HubChild for Counter {
    fn init(&mut self) -> Result<(), ExitReason> {
        match &self.refuse {
            Some(why) => Err(ExitReason::shutdown_with(why)),
            None => Ok(()),
        }
    }

    fn handle_call(&mut self, request: Term) -> Term {
        if let Ok((tag, value)) = <(Atom, i64)>::from_term(request.clone())
            && tag.as_str() == "set"
        {
            self.value = value;
            return Atom::from("ok").to_term();
        }
        if Atom::from_term(request.clone()).is_ok_and(|a| a.as_str() == "crash") {
            panic!("crash requested");
        }
        if Atom::from_term(request).is_ok_and(|a| a.as_str() == "mode") {
            let mode = match self.mode {
                Some(CopyMode::Active) => "active",
                Some(CopyMode::Passive) => "passive",
                None => "none",
            };
            return (Atom::from(mode), self.signals).to_term();
        }
        self.value.to_term()
    }

    fn redundancy_signal(&mut self, mode: CopyMode) {
        self.mode = Some(mode);
        self.signals += 1;
    }

    fn prepare_handover_state(&mut self) -> Option<Term> {
        Some(self.value.to_term())
    }

    fn alter_handover_state(&mut self, state: Term) {
        if let Ok(value) = i64::from_term(state) {
            self.value = value;
        }
    }
}

fn counter_factory(node: String) -> impl Fn(&HubChildSpec) -> Box<dyn HubChild> + Send + Sync {
    move |spec: &HubChildSpec| {
        if let Ok((tag, prefix, ms)) = <(Atom, String, u64)>::from_term(spec.args.clone())
            && tag.as_str() == "slow_on"
            && node.starts_with(&prefix)
        {
            // The system under test's slow start, not a test wait.
            std::thread::sleep(Duration::from_millis(ms));
        }
        let refuse = <(Atom, String)>::from_term(spec.args.clone())
            .ok()
            .filter(|(tag, _)| tag.as_str() == "refuse")
            .map(|(_, why)| why);
        Box::new(Counter {
            value: 0,
            refuse,
            mode: None,
            signals: 0,
        })
    }
}

/// The hub settings a scenario uses, by name (peers get the name on their command line).
pub fn config(kind: &str, node: &str) -> HubConfig {
    let base = HubConfig::new(format!("test_{kind}"), counter_factory(node.to_owned()))
        .discover_interval(Duration::from_millis(300))
        .sync_interval(Duration::from_millis(1000));
    let handover = HotSwap {
        handover: true,
        confirm_handover: true,
        ..HotSwap::default()
    };
    match kind {
        "hot" => base.migration(Migration::HotSwap(handover)),
        "hot_no_handover" => base.migration(Migration::HotSwap(HotSwap::default())),
        "cold" => base,
        "slow" => base.migration(Migration::HotSwap(HotSwap {
            child_migration_timeout: Duration::from_millis(300),
            ..handover
        })),
        "replicated" => {
            base.migration(Migration::HotSwap(handover))
                .redundancy(Redundancy::Replication {
                    factor: 2,
                    model: ReplicationModel::ActivePassive,
                })
        }
        "replicated_signal" => base
            .migration(Migration::HotSwap(handover))
            .redundancy(Redundancy::Replication {
                factor: 2,
                model: ReplicationModel::ActivePassive,
            })
            .redundancy_signal(RedundancySignal::All),
        "replicated_aa" => base.redundancy(Redundancy::Replication {
            factor: 2,
            model: ReplicationModel::ActiveActive,
        }),
        "guided" => base
            .distribution(Distribution::Guided)
            .migration(Migration::HotSwap(handover)),
        "quorum" => base.partition_tolerance(PartitionTolerance::MajorityQuorum {
            initial_cluster_size: 3,
            track_max_size: true,
        }),
        "quorum_hot" => base
            .migration(Migration::HotSwap(handover))
            .partition_tolerance(PartitionTolerance::MajorityQuorum {
                initial_cluster_size: 3,
                track_max_size: true,
            }),
        other => panic!("no config {other}"),
    }
}

pub fn short_host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    name.trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_owned()
}

pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A runtime + node + hub in this process.
pub struct HubNode {
    pub hub: Option<Hub>,
    pub node: Option<Arc<Node>>,
    pub runtime: Option<Runtime>,
}

impl HubNode {
    pub fn start(alive: &str, epmd: SocketAddr, kind: &str) -> HubNode {
        let name = format!("{alive}@{}", short_host());
        let runtime = Runtime::builder().node_name(&name).build().unwrap();
        let node = Arc::new(
            Node::builder()
                .epmd(epmd)
                .cookie(COOKIE)
                .start(&runtime.handle())
                .unwrap(),
        );
        let hub = Hub::start(&runtime.handle(), node.clone(), config(kind, &name)).unwrap();
        HubNode {
            hub: Some(hub),
            node: Some(node),
            runtime: Some(runtime),
        }
    }

    pub fn hub(&self) -> &Hub {
        self.hub.as_ref().unwrap()
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().unwrap()
    }

    pub fn name(&self) -> String {
        self.node().name().to_owned()
    }
}

impl Drop for HubNode {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.stop().unwrap();
        }
        if let Some(node) = self.node.take() {
            match Arc::try_unwrap(node) {
                Ok(node) => node.shutdown(),
                Err(node) => drop(node),
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown(Duration::from_secs(30)).unwrap();
        }
    }
}

/// What a hub sees of children `prefix-0 .. prefix-{n-1}`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct View {
    /// Members of the hub, this node included.
    pub members: usize,
    /// Children whose copies are not exactly their ring nodes.
    pub misplaced: usize,
    /// Children with more than one copy.
    pub duplicated: usize,
    /// Children with no copy.
    pub missing: usize,
    /// Copies on this node.
    pub local: usize,
}

impl View {
    pub fn of(hub: &Hub, prefix: &str, n: usize) -> View {
        let mut view = View {
            members: hub.members().len(),
            misplaced: 0,
            duplicated: 0,
            missing: 0,
            local: 0,
        };
        for i in 0..n {
            let id = format!("{prefix}-{i}");
            let copies: Vec<String> = hub
                .child_lookup(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|(node, _)| node)
                .collect();
            let mut want = hub.belongs_to(&id);
            want.sort();
            view.misplaced += usize::from(copies != want);
            view.duplicated += usize::from(copies.len() > 1);
            view.missing += usize::from(copies.is_empty());
            view.local += copies.iter().filter(|n| **n == hub.node_name()).count();
        }
        view
    }

    /// Every child once, on its ring node, with `members` members.
    pub fn settled(&self, members: usize) -> bool {
        self.members == members && self.misplaced == 0 && self.duplicated == 0 && self.missing == 0
    }
}

/// The peer process: a hub node; connects to `seed`, prints `ready`, then obeys stdin
/// (`leave`: stop the hub gracefully and print `left`; `nodes`: the connected nodes;
/// `block` / `unblock` /
/// `connect` NODE...: cut, allow, connect those nodes; `view PREFIX N`: what this hub
/// sees of those children).
pub fn peer_main(role: &str) {
    let parts: Vec<&str> = role.split(' ').collect();
    let (alive, port, kind, seed) = (parts[0], parts[1].parse().unwrap(), parts[2], parts[3]);
    let epmd = SocketAddr::from(([127, 0, 0, 1], port));
    let mut node = HubNode::start(alive, epmd, kind);
    if seed != "none" {
        node.node().connect(seed).expect("connect to the seed node");
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        match line.as_deref() {
            Ok(command) if command.starts_with("start ") => {
                let parts: Vec<&str> = command.split(' ').collect();
                let specs = counters(parts[1], parts[2].parse().unwrap());
                let hub = node.hub.as_ref().unwrap();
                let results = hub
                    .start_children(specs)
                    .unwrap()
                    .wait(Duration::from_secs(30));
                println!("started {}", results.unwrap().len());
                let _ = std::io::stdout().flush();
            }
            Ok("nodes") => {
                println!("nodes {}", node.node().nodes().join(" "));
                let _ = std::io::stdout().flush();
            }
            Ok("stats") => {
                println!("stats {}", node.hub().messages_sent());
                let _ = std::io::stdout().flush();
            }
            Ok(command) if command.starts_with("block ") => {
                for other in command.split(' ').skip(1) {
                    node.node().block(other).unwrap();
                }
                println!("blocked");
                let _ = std::io::stdout().flush();
            }
            Ok(command) if command.starts_with("unblock ") => {
                for other in command.split(' ').skip(1) {
                    node.node().unblock(other);
                }
                println!("unblocked");
                let _ = std::io::stdout().flush();
            }
            Ok(command) if command.starts_with("connect ") => {
                for other in command.split(' ').skip(1) {
                    node.node().connect(other).unwrap();
                }
                println!("connected");
                let _ = std::io::stdout().flush();
            }
            Ok(command) if command.starts_with("view ") => {
                let parts: Vec<&str> = command.split(' ').collect();
                let v = View::of(node.hub(), parts[1], parts[2].parse().unwrap());
                println!(
                    "view {} {} {} {} {}",
                    v.members, v.misplaced, v.duplicated, v.missing, v.local
                );
                let _ = std::io::stdout().flush();
            }
            Ok("leave") => {
                node.hub.take().unwrap().stop().unwrap();
                println!("left");
                let _ = std::io::stdout().flush();
            }
            _ => break,
        }
    }
}

/// A peer OS process; killed (SIGKILL) and reaped on drop.
pub struct Peer {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Peer {
    pub fn start(prefix: &str, epmd: SocketAddr, kind: &str, seed: &str) -> Peer {
        Peer::start_as(&unique_name(prefix), epmd, kind, seed)
    }

    /// A peer with the alive name `alive`.
    pub fn start_as(alive: &str, epmd: SocketAddr, kind: &str, seed: &str) -> Peer {
        let name = format!("{alive}@{}", short_host());
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(PEER_ROLE, format!("{alive} {} {kind} {seed}", epmd.port()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().expect("peer output").unwrap();
        assert_eq!(ready, "ready", "peer {name} said {ready}");
        Peer {
            name,
            child,
            stdin,
            lines,
        }
    }

    /// Graceful leave; returns once the peer's hub has stopped.
    pub fn leave(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "leave").unwrap();
        stdin.flush().unwrap();
        let line = self.lines.next().expect("peer output").unwrap();
        assert_eq!(line, "left");
    }

    /// Starts `n` counters `prefix-i` through this peer's hub; returns the result count.
    pub fn start_children(&mut self, prefix: &str, n: usize) -> usize {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "start {prefix} {n}").unwrap();
        stdin.flush().unwrap();
        let line = self.lines.next().expect("peer output").unwrap();
        line.strip_prefix("started ").unwrap().parse().unwrap()
    }

    /// Hub messages the peer's node has sent so far.
    pub fn messages_sent(&mut self) -> u64 {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "stats").unwrap();
        stdin.flush().unwrap();
        let line = self.lines.next().expect("peer output").unwrap();
        line.strip_prefix("stats ").unwrap().parse().unwrap()
    }

    fn order(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        self.lines.next().expect("peer output").unwrap()
    }

    /// Blocks these nodes on the peer (`Node::block`).
    pub fn block(&mut self, nodes: &[String]) {
        assert_eq!(self.order(&format!("block {}", nodes.join(" "))), "blocked");
    }

    /// Unblocks these nodes on the peer.
    pub fn unblock(&mut self, nodes: &[String]) {
        assert_eq!(
            self.order(&format!("unblock {}", nodes.join(" "))),
            "unblocked"
        );
    }

    /// Connects the peer to these nodes.
    pub fn connect(&mut self, nodes: &[String]) {
        assert_eq!(
            self.order(&format!("connect {}", nodes.join(" "))),
            "connected"
        );
    }

    /// The nodes the peer is connected to, sorted.
    pub fn nodes(&mut self) -> Vec<String> {
        let line = self.order("nodes");
        let list = line
            .strip_prefix("nodes")
            .unwrap_or_else(|| panic!("peer said {line}"));
        list.split_whitespace().map(str::to_owned).collect()
    }

    /// What the peer's hub sees of children `prefix-0 .. prefix-{n-1}`.
    pub fn view(&mut self, prefix: &str, n: usize) -> View {
        let line = self.order(&format!("view {prefix} {n}"));
        let f: Vec<usize> = line
            .strip_prefix("view ")
            .unwrap_or_else(|| panic!("peer said {line}"))
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        View {
            members: f[0],
            misplaced: f[1],
            duplicated: f[2],
            missing: f[3],
            local: f[4],
        }
    }

    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name server for one scenario.
pub fn name_server() -> NameServer {
    NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap()
}

pub fn counters(prefix: &str, n: usize) -> Vec<HubChildSpec> {
    (0..n)
        .map(|i| HubChildSpec::new(format!("{prefix}-{i}"), Atom::from("none").to_term()))
        .collect()
}

//! A distributed node: a [`Runtime`](crate::Runtime) that other nodes (BEAM or ours)
//! can connect to, send to and call.
//!
//! Contract:
//! * [`NodeBuilder::start`] turns a runtime built with
//!   [`node_name`](crate::RuntimeBuilder::node_name)`("name@host")` into a node: it
//!   listens (loopback, port 0 by default), registers with EPMD (starting our own
//!   [`NameServer`] on the EPMD address when none answers), and accepts connections.
//!   The cookie is the given one or `$HOME/.erlang.cookie` (created 0400 if absent).
//! * One connection per node pair, made on the first send or call to that node or by
//!   [`Node::connect`]; simultaneous connects are settled by name order as the
//!   protocol says. Ticks go out every `net_ticktime / 4` when idle; a peer silent for
//!   `net_ticktime`, a closed socket, or malformed data is a `nodedown`
//!   ([`NodeEvent::Down`]).
//! * Remote pids are ordinary [`Pid`]s. [`Node::send`] (to a pid or `{name, node}`) sends any
//!   [`ToTerm`]; incoming messages reach local workers that opted in
//!   ([`Node::accept_messages`], [`Node::serve`]); a term that does not decode into the
//!   worker's type is logged and dropped ([`Node::dropped_messages`] counts them).
//! * `net_adm:ping` gets `pong` (`net_kernel`'s `is_auth` is answered);
//!   `global_name_server` traffic is tolerated (logged at debug level, not answered).
//! * `rpc:call` / `erpc:call` from other nodes are answered (`node/rex.rs`: functions
//!   registered with [`Node::register_rpc`] and the introspection built-ins of
//!   `node/rex/builtins.rs`); every `SPAWN_REQUEST` gets a `SPAWN_REPLY`
//!   (`node/spawn.rs`, spawners registered with [`Node::register_spawner`]);
//!   [`Node::process_info`] describes a process of any node over rpc
//!   (`node/remote_info.rs`).
//! * A lost EPMD registration is renewed (`node/registration.rs`).
//! * [`Node::call`] calls a `gen_server` on another node by pid or `{name, node}`:
//!   monitored like `gen_server:call`, so a missing server fails at once (`NoProc`),
//!   a lost connection gives `NoConnection`. [`Node::cast`] is `gen_server:cast`;
//!   [`Node::rpc`] is `rpc:call` through the peer's `rex`.
//! * [`Node::block`] cuts a node off (`erlang:disconnect_node/1` with auto-connect off
//!   for that node, and `net_kernel:allow/1` leaving it out): its connection closes
//!   (`nodedown` on both sides), and no connection to or from it is made — not by
//!   [`Node::connect`], nor by a send, call or monitor — until [`Node::unblock`].
//! * [`Node::shutdown`] (or drop) closes every connection and joins every thread it
//!   started.

mod call_pool;
mod connection;
pub(crate) use connection::Connection as ConnectionRef;
pub mod cookie;
mod dispatch;
mod events;
mod inbox;
mod noconnect;
mod node_lists;
pub(crate) mod reason;
mod registration;
mod remote_info;
mod rex;
mod spawn;

pub use events::{NodeDownReason, NodeEvent};
pub use remote_info::{Mfa, RemoteProcessInfo, decode_process_info};
pub use rex::{Exception, RpcHandler};
pub use spawn::{
    SpawnRefusal, SpawnRequest, SpawnRequestError, Spawner, decode_request as decode_spawn_request,
};

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex, RwLock};

use self::connection::Connection;
use self::inbox::{Inbox, MessageInbox, ServerInbox};
use super::control::{Control, ProcessRef, WirePid, WireRef};
use super::epmd::{EpmdClient, NameServer, NodeEntry, Registration};
use super::error::DistError;
use super::flags;
use super::handshake::{self, LocalNode, PeerInfo, Status};
use super::term::{Atom, FromTerm, Term, ToTerm};
use crate::exit::ExitReason;
use crate::fast_hash::FastMap;
use crate::pid::{NodeName, Pid};
use crate::runtime::RuntimeHandle;
use crate::worker::{Worker, WorkerRef};

/// Settings of a [`Node`].
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    cookie: Option<String>,
    cookie_file: Option<std::path::PathBuf>,
    listen: SocketAddr,
    epmd: Option<SocketAddr>,
    visible: bool,
    net_ticktime: Duration,
    max_frame: usize,
    setup_timeout: Duration,
    served_call_timeout: Duration,
    reply_spin: Duration,
    reader_spin: Duration,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        NodeBuilder {
            cookie: None,
            cookie_file: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            epmd: None,
            visible: true,
            net_ticktime: Duration::from_secs(60),
            max_frame: super::frame::DEFAULT_MAX_FRAME,
            setup_timeout: Duration::from_secs(7),
            served_call_timeout: Duration::from_secs(60),
            reply_spin: DEFAULT_REPLY_SPIN,
            reader_spin: DEFAULT_READER_SPIN,
        }
    }
}

/// The settings a running node keeps.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) net_ticktime: Duration,
    pub(crate) max_frame: usize,
    pub(crate) setup_timeout: Duration,
    pub(crate) served_call_timeout: Duration,
    pub(crate) reply_spin: Duration,
    pub(crate) reader_spin: Duration,
    pub(crate) epmd_port: u16,
}

/// The smallest frame limit accepted: every control message of the handshake era fits.
const MIN_MAX_FRAME: usize = 1024;

/// A remote round trip on loopback takes 30-200 µs here; a caller spinning this long
/// catches most replies without a wake-up (see [`NodeBuilder::reply_spin`]).
const DEFAULT_REPLY_SPIN: Duration = Duration::from_micros(100);

/// Frames come in bursts (a call's monitor, request and demonitor; a stream of casts):
/// a reader that stays awake this long after one takes the next without a wake-up
/// (see [`NodeBuilder::reader_spin`]).
const DEFAULT_READER_SPIN: Duration = Duration::from_micros(50);

/// The longest spin accepted: past this a spin costs more CPU than any wake-up saves.
const MAX_SPIN: Duration = Duration::from_millis(10);

impl NodeBuilder {
    /// Default settings.
    pub fn new() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// The cookie (default: the contents of `$HOME/.erlang.cookie`).
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookie = Some(cookie.into());
        self
    }

    /// Where to read (or create) the cookie when none is given (default
    /// `$HOME/.erlang.cookie`).
    pub fn cookie_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.cookie_file = Some(path.into());
        self
    }

    /// The address the distribution listener binds (default `127.0.0.1:0`).
    pub fn listen(mut self, address: SocketAddr) -> Self {
        self.listen = address;
        self
    }

    /// The EPMD to register with and look peers up in (default `127.0.0.1` at
    /// `$ERL_EPMD_PORT`, else 4369). Peers on other hosts are looked up at the same
    /// port on their host.
    pub fn epmd(mut self, address: SocketAddr) -> Self {
        self.epmd = Some(address);
        self
    }

    /// A hidden node (not in BEAM's `nodes()`, no global name traffic); default visible.
    pub fn hidden(mut self, hidden: bool) -> Self {
        self.visible = !hidden;
        self
    }

    /// `net_ticktime` (default 60 s): a peer silent this long is down.
    pub fn net_ticktime(mut self, ticktime: Duration) -> Self {
        self.net_ticktime = ticktime;
        self
    }

    /// The largest frame accepted from a peer (default 64 MiB, at least 1 KiB).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// How long a connection setup (EPMD look-up + handshake) may take (default 7 s,
    /// as `net_setuptime`).
    pub fn setup_timeout(mut self, timeout: Duration) -> Self {
        self.setup_timeout = timeout;
        self
    }

    /// How long after a `gen_server:call` from another node arrived the local worker's
    /// reply is still sent (default 60 s); a later one is dropped. The caller's own
    /// timeout usually ends the call first.
    pub fn served_call_timeout(mut self, timeout: Duration) -> Self {
        self.served_call_timeout = timeout;
        self
    }

    /// How long [`Node::call`] spins for the reply before it parks (default 100 µs,
    /// at most 10 ms; zero parks at once). On a VM an idle core halts, and waking a
    /// parked caller on it costs tens of µs, often more than the remote work: BEAM's
    /// schedulers busy-wait for the same reason. The spin yields the core between
    /// rounds, so other threads on it still run.
    pub fn reply_spin(mut self, spin: Duration) -> Self {
        self.reply_spin = spin;
        self
    }

    /// How long a connection's reader thread keeps polling the socket after the last
    /// frame before it blocks in `read` (default 50 µs, at most 10 ms; zero blocks at
    /// once). The next frame of a burst then costs no wake-up; an idle connection
    /// costs one short spin per frame received.
    pub fn reader_spin(mut self, spin: Duration) -> Self {
        self.reader_spin = spin;
        self
    }

    fn validate(&self) -> Result<(), DistError> {
        if self.net_ticktime < Duration::from_millis(400) {
            return Err(DistError::InvalidOption {
                option: "net_ticktime",
                reason: "must be at least 400 ms",
            });
        }
        if self.max_frame < MIN_MAX_FRAME {
            return Err(DistError::InvalidOption {
                option: "max_frame",
                reason: "must be at least 1024 bytes",
            });
        }
        validate_positive("setup_timeout", self.setup_timeout)?;
        validate_positive("served_call_timeout", self.served_call_timeout)?;
        validate_spin("reply_spin", self.reply_spin)?;
        validate_spin("reader_spin", self.reader_spin)?;
        Ok(())
    }

    fn resolve_cookie(&self) -> Result<String, DistError> {
        if let Some(cookie) = &self.cookie {
            cookie::validate_cookie(cookie)?;
            return Ok(cookie.clone());
        }
        let path = self
            .cookie_file
            .clone()
            .or_else(cookie::default_cookie_path)
            .ok_or(DistError::InvalidOption {
                option: "cookie",
                reason: "no cookie given and $HOME is not set",
            })?;
        cookie::read_or_create_cookie(&path)
    }

    fn epmd_address(&self) -> SocketAddr {
        self.epmd.unwrap_or_else(|| {
            let port = std::env::var("ERL_EPMD_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(super::epmd::DEFAULT_PORT);
            SocketAddr::from(([127, 0, 0, 1], port))
        })
    }

    /// Makes `runtime` a node. The runtime's node name (see
    /// [`RuntimeBuilder::node_name`](crate::RuntimeBuilder::node_name)) is the node's
    /// name and must be `name@host`.
    pub fn start(self, runtime: &RuntimeHandle) -> Result<Node, DistError> {
        self.validate()?;
        let name = runtime.node().as_str().to_owned();
        validate_node_name(&name)?;
        validate_not_default(&name)?;
        let cookie = self.resolve_cookie()?;
        let epmd_address = self.epmd_address();
        let listener = TcpListener::bind(self.listen)?;
        let listen_address = listener.local_addr()?;
        let (alive, _) = name.split_once('@').unwrap_or((&name, ""));
        let entry = NodeEntry::new(alive, listen_address.port(), self.visible);
        let (registration, name_server) = register(epmd_address, &entry, self.setup_timeout)?;
        let runs_name_server = name_server.is_some();
        let registration = registration::Keeper::start(
            registration,
            name_server,
            epmd_address,
            entry,
            self.setup_timeout,
        )?;
        let inner = Arc::new(NodeInner {
            name: name.clone(),
            node: runtime.node(),
            creation: runtime.inner.creation,
            cookie,
            flags: flags::advertised(self.visible),
            runtime: runtime.clone(),
            config: Config {
                net_ticktime: self.net_ticktime,
                max_frame: self.max_frame,
                setup_timeout: self.setup_timeout,
                served_call_timeout: self.served_call_timeout,
                reply_spin: self.reply_spin,
                reader_spin: self.reader_spin,
                epmd_port: epmd_address.port(),
            },
            epoch: Instant::now(),
            connections: Mutex::new(FastMap::default()),
            connections_changed: Condvar::new(),
            superseded: Mutex::new(std::collections::HashSet::new()),
            blocked: Mutex::new(std::collections::HashSet::new()),
            subscribers: Mutex::new(Vec::new()),
            inboxes: RwLock::new(FastMap::default()),
            calls: Mutex::new(HashMap::new()),
            proxy: runtime.inner.new_pid(),
            next_ref: AtomicU32::new(1),
            next_connection: AtomicU64::new(1),
            threads: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            remote_monitors: Mutex::new(HashMap::new()),
            monitor_downs: crossbeam_channel::unbounded(),
            local_monitors: Mutex::new(HashMap::new()),
            calls_in: call_pool::CallPool::new(),
            rex: rex::Rex::default(),
            spawners: spawn::Spawners::default(),
        });
        super::hooks::register_node(&inner);
        let accepting = inner.clone();
        let acceptor = std::thread::Builder::new()
            .name("dist-accept".into())
            .spawn(move || accept_loop(accepting, listener))?;
        let (stop_ticker, ticker_stop) = crossbeam_channel::bounded::<()>(0);
        let ticking = inner.clone();
        let ticker = std::thread::Builder::new()
            .name("dist-tick".into())
            .spawn(move || tick_loop(ticking, ticker_stop))?;
        log::info!("node {name} listening on {listen_address} (EPMD {epmd_address})");
        Ok(Node {
            inner: inner.clone(),
            listen_address,
            runs_name_server,
            lifecycle: Arc::new(Lifecycle {
                inner,
                listen_address,
                running: parking_lot::Mutex::new(Some(Running {
                    acceptor,
                    ticker,
                    stop_ticker,
                    registration,
                })),
            }),
        })
    }
}

fn validate_positive(option: &'static str, timeout: Duration) -> Result<(), DistError> {
    if timeout.is_zero() {
        return Err(DistError::InvalidOption {
            option,
            reason: "must be greater than zero",
        });
    }
    Ok(())
}

fn validate_spin(option: &'static str, spin: Duration) -> Result<(), DistError> {
    if spin > MAX_SPIN {
        return Err(DistError::InvalidOption {
            option,
            reason: "must be at most 10 ms",
        });
    }
    Ok(())
}

/// Node names are `name@host`, both parts non-empty.
pub(crate) fn validate_node_name(name: &str) -> Result<(), DistError> {
    match name.split_once('@') {
        Some((alive, host)) if !alive.is_empty() && !host.is_empty() && !host.contains('@') => {
            Ok(())
        }
        _ => Err(DistError::InvalidNodeName {
            name: name.to_owned(),
            reason: "not of the form name@host",
        }),
    }
}

/// A runtime left at `nonode@nohost` has no node name to distribute under.
fn validate_not_default(name: &str) -> Result<(), DistError> {
    if name == NodeName::DEFAULT {
        return Err(DistError::InvalidNodeName {
            name: name.to_owned(),
            reason: "the runtime has no node name (set RuntimeBuilder::node_name)",
        });
    }
    Ok(())
}

/// Registers with the EPMD at `address`; when none answers, starts our name server
/// there and registers with it.
fn register(
    address: SocketAddr,
    entry: &NodeEntry,
    timeout: Duration,
) -> Result<(Registration, Option<NameServer>), DistError> {
    let client = EpmdClient::new(address, timeout);
    match client.register(entry) {
        Ok(registration) => return Ok((registration, None)),
        Err(DistError::Io(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {}
        Err(error) => return Err(error),
    }
    log::info!("no EPMD answers on {address}: starting our name server there");
    match NameServer::bind(address) {
        Ok(server) => {
            let registration = client.register(entry)?;
            Ok((registration, Some(server)))
        }
        // Another node started one in between: use it.
        Err(_) => Ok((client.register(entry)?, None)),
    }
}

enum Slot {
    /// A connection attempt of ours (the token) is under way.
    Connecting(u64),
    /// We are accepting a connection from the node (handshake under way): a connect of
    /// ours waits for it rather than dialling a second one, as net_kernel's pending
    /// table does.
    Accepting(u64),
    Up(Arc<Connection>),
}

/// Who monitors a local process from another node.
struct RemoteMonitor {
    peer: String,
    watcher: WirePid,
    target: ProcessRef,
    reference: WireRef,
    local: crate::pid::MonitorRef,
}

/// A local watcher (process, thread or call) of a process on another node.
pub(crate) struct LocalMonitor {
    pub(crate) peer: String,
    pub(crate) reference: crate::pid::MonitorRef,
    pub(crate) watcher: crate::process::Watcher,
    /// What the MONITOR_P named (a pid, or a registered name there).
    pub(crate) target: ProcessRef,
}

/// How an outgoing call ends.
enum CallEnd {
    Reply(Term),
    Down(ExitReason),
}

/// A call of ours waiting for its reply: ended by the reply, its monitor's DOWN, or
/// the loss of the connection to `node` (as a `gen_server:call` to a node that goes
/// down exits with `noconnection`).
struct PendingCall {
    node: String,
    waiting: Sender<CallEnd>,
}

pub(crate) struct NodeInner {
    pub(crate) name: String,
    pub(crate) node: NodeName,
    pub(crate) creation: u32,
    cookie: String,
    flags: u64,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) config: Config,
    epoch: Instant,
    connections: Mutex<FastMap<String, Slot>>,
    connections_changed: Condvar,
    /// Our attempts (tokens) an acceptor of ours answered `ok_simultaneous` against:
    /// the protocol says such an attempt is shut down in favour of the accepted one.
    superseded: Mutex<std::collections::HashSet<u64>>,
    /// Nodes cut off by [`Node::block`]. Lock order: `connections`, then this.
    blocked: Mutex<std::collections::HashSet<String>>,
    subscribers: Mutex<Vec<events::Subscriber>>,
    inboxes: RwLock<FastMap<Pid, Arc<dyn Inbox>>>,
    /// Our calls waiting for a reply, with the node each one went to.
    calls: Mutex<HashMap<WireRef, PendingCall>>,
    /// The pid calls of this node are made from (replies and DOWNs come to it).
    proxy: Pid,
    next_ref: AtomicU32,
    next_connection: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stopping: AtomicBool,
    dropped: AtomicU64,
    /// Monitors processes of other nodes hold on our processes, by local monitor id.
    remote_monitors: Mutex<HashMap<u64, RemoteMonitor>>,
    monitor_downs: (Sender<crate::Down>, Receiver<crate::Down>),
    /// Monitors our processes hold on processes of other nodes, by wire reference.
    pub(crate) local_monitors: Mutex<HashMap<WireRef, LocalMonitor>>,
    calls_in: call_pool::CallPool,
    /// Functions other nodes may call through rpc (see `node/rex.rs`).
    rex: rex::Rex,
    /// Spawners other nodes' spawn requests may start (see `node/spawn.rs`).
    spawners: spawn::Spawners,
}

impl NodeInner {
    /// Runs a blocking job for another node (a call that must not hold up the
    /// connection's reader) on a pool thread.
    pub(crate) fn run_call(self: &Arc<Self>, job: call_pool::Job) {
        if self.calls_in.submit(job) {
            let node = self.clone();
            self.spawn_tracked("dist-call", move || node.calls_in.work());
        }
    }

    /// Milliseconds since the node started.
    pub(crate) fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn local(&self) -> LocalNode<'_> {
        LocalNode {
            name: &self.name,
            creation: self.creation,
            flags: self.flags,
            cookie: &self.cookie,
        }
    }

    fn publish(&self, event: NodeEvent) {
        self.subscribers
            .lock()
            .retain(|subscriber| subscriber.offer(&event));
    }

    pub(crate) fn wire_pid(&self, pid: Pid) -> WirePid {
        eetf::Pid::new(pid.node().as_str(), pid.id(), pid.serial(), pid.creation())
    }

    pub(crate) fn new_reference(&self) -> WireRef {
        let n = self.next_ref.fetch_add(1, Ordering::Relaxed);
        // Three words, as BEAM's: a counter, the proxy number and a per-node salt keep
        // references unique within the incarnation (the creation tells incarnations apart).
        eetf::Reference {
            node: eetf::Atom::from(self.name.as_str()),
            id: vec![
                n,
                self.proxy.id(),
                (self.epoch.elapsed().as_nanos() as u32) | 1,
            ],
            creation: self.creation,
        }
    }

    /// Starts a thread the node joins on shutdown; finished ones are reaped here.
    pub(crate) fn spawn_tracked(&self, name: &str, body: impl FnOnce() + Send + 'static) {
        let mut threads = self.threads.lock();
        let (finished, running): (Vec<_>, Vec<_>) = std::mem::take(&mut *threads)
            .into_iter()
            .partition(|thread| thread.is_finished());
        *threads = running;
        for thread in finished {
            let _ = thread.join();
        }
        match std::thread::Builder::new()
            .name(name.into())
            .stack_size(4 * 1024 * 1024)
            .spawn(body)
        {
            Ok(thread) => threads.push(thread),
            Err(error) => log::error!("distribution: cannot start a {name} thread: {error}"),
        }
    }

    /// The live connection to `node`, if any (never dials).
    pub(crate) fn existing(&self, node: &str) -> Option<Arc<Connection>> {
        match self.connections.lock().get(node) {
            Some(Slot::Up(connection)) => Some(connection.clone()),
            _ => None,
        }
    }

    /// The connection to `node`, dialling it if there is none.
    pub(crate) fn connection(self: &Arc<Self>, node: &str) -> Result<Arc<Connection>, DistError> {
        // Every send comes here: an open connection is found before anything else
        // (unless its node was just blocked and it is closing).
        {
            let connections = self.connections.lock();
            if let Some(Slot::Up(connection)) = connections.get(node)
                && !self.blocked.lock().contains(node)
            {
                return Ok(connection.clone());
            }
        }
        if node == self.name {
            return Err(DistError::InvalidNodeName {
                name: node.to_owned(),
                reason: "this is the local node",
            });
        }
        validate_node_name(node)?;
        let deadline = Instant::now() + self.config.setup_timeout;
        let token = self.next_connection.fetch_add(1, Ordering::Relaxed);
        {
            let mut connections = self.connections.lock();
            loop {
                if self.stopping.load(Ordering::Acquire) || self.blocked.lock().contains(node) {
                    return Err(DistError::NoConnection {
                        node: node.to_owned(),
                    });
                }
                match connections.get(node) {
                    Some(Slot::Up(connection)) => return Ok(connection.clone()),
                    Some(Slot::Connecting(_) | Slot::Accepting(_)) => {
                        if self
                            .connections_changed
                            .wait_until(&mut connections, deadline)
                            .timed_out()
                        {
                            return Err(DistError::NoConnection {
                                node: node.to_owned(),
                            });
                        }
                    }
                    None => {
                        connections.insert(node.to_owned(), Slot::Connecting(token));
                        break;
                    }
                }
            }
        }
        let dialled = self.dial(node, token);
        let superseded = self.superseded.lock().remove(&token);
        match dialled {
            Ok((stream, peer)) if !superseded => self.install(stream, peer),
            Ok(_) => {
                // The peer's attempt to us won (we answered it `ok_simultaneous`): ours
                // is dropped, and the accepted connection is the one.
                self.wait_for_up(node, deadline)
            }
            Err(error) => {
                let mut connections = self.connections.lock();
                if matches!(connections.get(node), Some(Slot::Connecting(t)) if *t == token) {
                    connections.remove(node);
                }
                self.connections_changed.notify_all();
                // `nok`: the peer's own attempt to us wins; `alive` answered `false`: a
                // connection is (being) set up the other way. Wait for it to come up.
                if matches!(&error, DistError::Refused { status, .. } if status == "nok" || status == "alive")
                {
                    loop {
                        if let Some(Slot::Up(connection)) = connections.get(node) {
                            return Ok(connection.clone());
                        }
                        if self
                            .connections_changed
                            .wait_until(&mut connections, deadline)
                            .timed_out()
                        {
                            break;
                        }
                    }
                }
                // The handshake already logged cookie and flag refusals (one line each).
                if !matches!(
                    error,
                    DistError::WrongCookie { .. } | DistError::MissingFlags { .. }
                ) {
                    log::warn!("distribution: cannot connect to {node}: {error}");
                }
                Err(error)
            }
        }
    }

    /// Waits until a connection to `node` is up (one being accepted), or `deadline`.
    fn wait_for_up(&self, node: &str, deadline: Instant) -> Result<Arc<Connection>, DistError> {
        let mut connections = self.connections.lock();
        loop {
            if let Some(Slot::Up(connection)) = connections.get(node) {
                return Ok(connection.clone());
            }
            if self
                .connections_changed
                .wait_until(&mut connections, deadline)
                .timed_out()
            {
                return Err(DistError::NoConnection {
                    node: node.to_owned(),
                });
            }
        }
    }

    fn dial(&self, node: &str, token: u64) -> Result<(TcpStream, PeerInfo), DistError> {
        let (alive, host) = node.split_once('@').unwrap_or((node, ""));
        let host_ip = (host, self.config.epmd_port)
            .to_socket_addrs()?
            .find(SocketAddr::is_ipv4)
            .ok_or(DistError::NoConnection {
                node: node.to_owned(),
            })?;
        let entry = EpmdClient::new(host_ip, self.config.setup_timeout)
            .port_please(alive)?
            .ok_or(DistError::NoConnection {
                node: node.to_owned(),
            })?;
        let address = SocketAddr::new(host_ip.ip(), entry.port);
        let mut stream = TcpStream::connect_timeout(&address, self.config.setup_timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(self.config.setup_timeout))?;
        stream.set_write_timeout(Some(self.config.setup_timeout))?;
        // To `alive`: continue only if we really have no connection to it (and did
        // not give this attempt up for an accepted one).
        let stale = || {
            !self.superseded.lock().contains(&token)
                && !matches!(self.connections.lock().get(node), Some(Slot::Up(_)))
        };
        let peer = handshake::initiate_with(&mut stream, &self.local(), node, stale)?;
        Ok((stream, peer))
    }

    /// Makes a handshaken stream the connection to its peer and starts its reader.
    fn install(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: PeerInfo,
    ) -> Result<Arc<Connection>, DistError> {
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::new(id, peer, &stream, self.now())?);
        let name = connection.peer.name.clone();
        let replaced = {
            let mut connections = self.connections.lock();
            if self.stopping.load(Ordering::Acquire) {
                connection.close(NodeDownReason::Shutdown);
                return Err(DistError::NoConnection { node: name });
            }
            // Blocked while its handshake ran: never up.
            if self.blocked.lock().contains(&name) {
                if matches!(
                    connections.get(&name),
                    Some(Slot::Connecting(_) | Slot::Accepting(_))
                ) {
                    connections.remove(&name);
                }
                self.connections_changed.notify_all();
                connection.close(NodeDownReason::Disconnected);
                return Err(DistError::NoConnection { node: name });
            }
            let old = connections.insert(name.clone(), Slot::Up(connection.clone()));
            self.connections_changed.notify_all();
            match old {
                Some(Slot::Up(old)) => Some(old),
                _ => None,
            }
        };
        if let Some(old) = replaced {
            old.close(NodeDownReason::Replaced);
        }
        let node = self.clone();
        let reading = connection.clone();
        self.spawn_tracked("dist-read", move || {
            connection::read_loop(node, reading, stream)
        });
        let writing = connection.clone();
        self.spawn_tracked("dist-write", move || writing.write_loop());
        log::info!("node {} is up", name);
        self.publish(NodeEvent::Up { node: name });
        Ok(connection)
    }

    /// Called by a connection's reader when it ends.
    pub(crate) fn connection_down(&self, connection: &Arc<Connection>, reason: NodeDownReason) {
        let name = connection.peer.name.clone();
        let current = {
            let mut connections = self.connections.lock();
            let current =
                matches!(connections.get(&name), Some(Slot::Up(c)) if c.id == connection.id);
            if current {
                connections.remove(&name);
            }
            self.connections_changed.notify_all();
            current
        };
        // A connection already replaced by a newer one to the same node (simultaneous
        // connect, or a peer that reconnected) takes nothing with it.
        if !current {
            log::debug!("an older connection to {name} closed: {reason}");
            return;
        }
        log::info!("node {name} is down: {reason}");
        self.connection_lost(&name);
        self.publish(NodeEvent::Down { node: name, reason });
    }

    /// Everything that depended on the connection to `peer` ends with `noconnection`.
    fn connection_lost(&self, peer: &str) {
        // Our calls to the peer's processes.
        let ended: Vec<PendingCall> = {
            let mut calls = self.calls.lock();
            let refs: Vec<WireRef> = calls
                .iter()
                .filter(|(_, call)| call.node == peer)
                .map(|(reference, _)| reference.clone())
                .collect();
            refs.iter().filter_map(|r| calls.remove(r)).collect()
        };
        for call in ended {
            let _ = call.waiting.send(CallEnd::Down(ExitReason::NoConnection));
        }
        // Monitors the peer held on our processes.
        let gone: Vec<RemoteMonitor> = {
            let mut monitors = self.remote_monitors.lock();
            let ids: Vec<u64> = monitors
                .iter()
                .filter(|(_, m)| m.peer == peer)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| monitors.remove(&id))
                .collect()
        };
        for monitor in gone {
            self.runtime.demonitor(&monitor.local);
        }
        // Monitors our processes held on the peer's.
        let lost: Vec<LocalMonitor> = {
            let mut monitors = self.local_monitors.lock();
            let refs: Vec<WireRef> = monitors
                .iter()
                .filter(|(_, m)| m.peer == peer)
                .map(|(r, _)| r.clone())
                .collect();
            refs.into_iter()
                .filter_map(|r| monitors.remove(&r))
                .collect()
        };
        for monitor in lost {
            monitor
                .watcher
                .notify(monitor.reference, ExitReason::NoConnection);
        }
        // Links of our processes to the peer's.
        super::hooks::break_links_to(&self.runtime, peer);
    }

    /// Delivers a message to a local pid.
    pub(crate) fn deliver(self: &Arc<Self>, to: &WirePid, payload: Option<Term>) {
        let Some(message) = payload else { return };
        // Only pids of this node are looked up (and only their node name interned).
        if to.node.name != self.name {
            return;
        }
        let pid = match Pid::from_term(Term::from(to.clone())) {
            Ok(pid) => pid,
            Err(_) => return,
        };
        if pid == self.proxy {
            return self.call_reply(message);
        }
        self.deliver_to(pid, message);
    }

    /// Registers a worker's inbox. Entries of workers that died are pruned whenever
    /// the table reaches a power of two of at least 64 entries, so that a node serving
    /// short-lived workers keeps a table the size of the live ones (amortised O(1)).
    fn add_inbox(&self, pid: Pid, inbox: Arc<dyn Inbox>) {
        let mut inboxes = self.inboxes.write();
        if inboxes.len() >= 64 && inboxes.len().is_power_of_two() {
            inboxes.retain(|_, inbox| inbox.is_alive());
        }
        inboxes.insert(pid, inbox);
    }

    pub(crate) fn deliver_to(self: &Arc<Self>, pid: Pid, message: Term) {
        let inbox = self.inboxes.read().get(&pid).cloned();
        match inbox {
            Some(inbox) => match inbox.deliver(self, message) {
                Ok(()) => {}
                Err(inbox::Undelivered::Decode(error)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    // The error carries the term (or the part) that did not decode.
                    log::warn!("distribution: dropped a message to {pid}: {error}");
                }
                Err(inbox::Undelivered::Dead) => {
                    self.inboxes.write().remove(&pid);
                }
            },
            None if self.runtime.is_alive(&pid) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "distribution: dropped message {message} to {pid}: the process does not take messages from other nodes"
                );
            }
            // A message to a dead (or unknown) process vanishes, as in Erlang.
            None => {}
        }
    }

    /// A reply to one of our calls: `{Ref, Reply}` sent to the proxy pid.
    fn call_reply(&self, message: Term) {
        if let Term::Tuple(tuple) = message
            && tuple.elements.len() == 2
            && let Term::Reference(reference) = &tuple.elements[0]
            && let Some(call) = self.calls.lock().remove(reference.as_ref())
        {
            let _ = call.waiting.send(CallEnd::Reply(tuple.elements[1].clone()));
        }
    }

    /// A DOWN for one of our monitors (calls, or local watchers of remote processes).
    pub(crate) fn monitor_exit(&self, reference: &WireRef, reason: Term) {
        if let Some(call) = self.calls.lock().remove(reference) {
            let _ = call
                .waiting
                .send(CallEnd::Down(reason::reason_from_term(&reason)));
            return;
        }
        if let Some(monitor) = self.local_monitors.lock().remove(reference) {
            monitor
                .watcher
                .notify(monitor.reference, reason::reason_from_term(&reason));
        }
    }

    /// Replies to a `'$gen_call'` whose `From` is `{Pid, Tag}`: `Tag` may be a
    /// reference (reply to `Pid`) or `[alias | Alias]` (reply to the alias, OTP 24+).
    pub(crate) fn reply_gen_call(self: &Arc<Self>, replier: Pid, from: &Term, reply: Term) {
        let Term::Tuple(from) = from else { return };
        let [Term::Pid(caller), tag] = from.elements.as_slice() else {
            return;
        };
        let message = Term::from(eetf::Tuple::from(vec![tag.clone(), reply]));
        let Some(connection) = self.existing(&caller.node.name) else {
            return;
        };
        let sender = self.wire_pid(replier);
        let control = match alias_of(tag) {
            Some(alias) => Control::AliasSend {
                from: sender,
                alias,
            },
            None => Control::SendSender {
                from: sender,
                to: caller.clone(),
            },
        };
        let _ = connection.send(self.now(), &control, Some(&message));
    }

    /// A process of another node monitors one of ours (by pid or name).
    pub(crate) fn remote_monitor(
        &self,
        connection: &Connection,
        watcher: WirePid,
        target: ProcessRef,
        reference: WireRef,
    ) {
        let local = match &target {
            // net_kernel is answered by the node itself and never dies before it.
            ProcessRef::Name(name) if name.as_str() == "net_kernel" || name.as_str() == "rex" => {
                return;
            }
            ProcessRef::Name(name) => self.runtime.whereis(name.as_str()),
            ProcessRef::Pid(pid) => Pid::from_term(Term::from(pid.clone()))
                .ok()
                .filter(|pid| self.runtime.is_alive(pid)),
        };
        let Some(local) = local else {
            let exit = Control::PayloadMonitorPExit {
                from: target,
                to: watcher,
                reference,
            };
            let _ = connection.send(self.now(), &exit, Some(&Atom::from("noproc").to_term()));
            return;
        };
        // Hold the table lock across monitor_to so a DOWN cannot be looked up before
        // its entry exists.
        let mut monitors = self.remote_monitors.lock();
        let monitor = self.runtime.monitor_to(&local, &self.monitor_downs.0);
        monitors.insert(
            monitor.id,
            RemoteMonitor {
                peer: connection.peer.name.clone(),
                watcher,
                target,
                reference,
                local: monitor,
            },
        );
    }

    pub(crate) fn remote_demonitor(&self, reference: &WireRef) {
        let found = {
            let mut monitors = self.remote_monitors.lock();
            let id = monitors
                .iter()
                .find(|(_, m)| m.reference == *reference)
                .map(|(id, _)| *id);
            id.and_then(|id| monitors.remove(&id))
        };
        if let Some(monitor) = found {
            self.runtime.demonitor(&monitor.local);
        }
    }

    /// A local process monitored from another node died: tell the watcher.
    fn local_down(&self, down: crate::Down) {
        let Some(monitor) = self.remote_monitors.lock().remove(&down.reference.id) else {
            return;
        };
        if let Some(connection) = self.existing(&monitor.peer) {
            let exit = Control::PayloadMonitorPExit {
                from: monitor.target,
                to: monitor.watcher,
                reference: monitor.reference,
            };
            let _ = connection.send(
                self.now(),
                &exit,
                Some(&reason::reason_to_term(&down.reason)),
            );
        }
    }

    fn shut_down(&self) {
        self.stopping.store(true, Ordering::Release);
        self.calls_in.shut_down();
        let connections: Vec<Arc<Connection>> = self
            .connections
            .lock()
            .values()
            .filter_map(|slot| match slot {
                Slot::Up(connection) => Some(connection.clone()),
                Slot::Connecting(_) | Slot::Accepting(_) => None,
            })
            .collect();
        for connection in connections {
            connection.close(NodeDownReason::Shutdown);
        }
        self.connections_changed.notify_all();
        for (_, call) in self.calls.lock().drain() {
            let _ = call.waiting.send(CallEnd::Down(ExitReason::NoConnection));
        }
    }
}

/// `[alias | Alias]` → `Alias`.
fn alias_of(tag: &Term) -> Option<WireRef> {
    match tag {
        Term::ImproperList(list) => match (list.elements.as_slice(), &*list.last) {
            ([Term::Atom(alias)], Term::Reference(reference)) if alias.name == "alias" => {
                Some((**reference).clone())
            }
            _ => None,
        },
        _ => None,
    }
}

fn accept_loop(node: Arc<NodeInner>, listener: TcpListener) {
    for stream in listener.incoming() {
        if node.stopping.load(Ordering::Acquire) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                // Out of descriptors and the like: do not spin on a failing accept.
                log::warn!("distribution: accept failed: {error}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let accepting = node.clone();
        node.spawn_tracked("dist-handshake", move || accept_one(accepting, stream));
    }
}

fn accept_one(node: Arc<NodeInner>, mut stream: TcpStream) {
    let token = node.next_connection.fetch_add(1, Ordering::Relaxed);
    let mut peer_name = None;
    let mut setup = || -> Result<PeerInfo, DistError> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(node.config.setup_timeout))?;
        stream.set_write_timeout(Some(node.config.setup_timeout))?;
        let local = node.local();
        handshake::accept(&mut stream, &local, |name| {
            let mut connections = node.connections.lock();
            if node.blocked.lock().contains(&name.name) {
                return Status::NotAllowed;
            }
            let status = match connections.get(&name.name) {
                None => Status::Ok,
                Some(Slot::Connecting(ours)) => {
                    let status = handshake::simultaneous_status(&node.name, &name.name);
                    if status == Status::OkSimultaneous {
                        node.superseded.lock().insert(*ours);
                    }
                    status
                }
                Some(Slot::Accepting(_) | Slot::Up(_)) => Status::Alive,
            };
            if matches!(status, Status::Ok | Status::OkSimultaneous) {
                connections.insert(name.name.clone(), Slot::Accepting(token));
                peer_name = Some(name.name.clone());
            }
            status
        })
    };
    let result = setup();
    match result {
        Ok(peer) => {
            if let Err(error) = node.install(stream, peer) {
                log::debug!("distribution: accepted connection dropped: {error}");
            }
        }
        Err(error) => {
            if let Some(name) = peer_name {
                let mut connections = node.connections.lock();
                if matches!(connections.get(&name), Some(Slot::Accepting(t)) if *t == token) {
                    connections.remove(&name);
                }
                node.connections_changed.notify_all();
            }
            if !matches!(error, DistError::Refused { .. }) {
                log::debug!("distribution: incoming handshake failed: {error}");
            }
        }
    }
}

/// Ticks idle connections, declares silent ones down, and forwards DOWNs of local
/// processes watched from other nodes.
fn tick_loop(node: Arc<NodeInner>, stop: Receiver<()>) {
    let ticktime = node.config.net_ticktime;
    let interval = ticktime / 4;
    let ticktime_ms = ticktime.as_millis() as u64;
    let downs = node.monitor_downs.1.clone();
    let mut next_tick = Instant::now() + interval;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        crossbeam_channel::select! {
            recv(stop) -> _ => return,
            recv(downs) -> down => {
                if let Ok(down) = down {
                    node.local_down(down);
                }
                continue;
            }
            default(wait) => {}
        }
        next_tick = Instant::now() + interval;
        let now = node.now();
        let connections: Vec<Arc<Connection>> = node
            .connections
            .lock()
            .values()
            .filter_map(|slot| match slot {
                Slot::Up(connection) => Some(connection.clone()),
                Slot::Connecting(_) | Slot::Accepting(_) => None,
            })
            .collect();
        for connection in connections {
            connection.tick_if_idle(now, now.saturating_sub(interval.as_millis() as u64));
            if now.saturating_sub(connection.last_received()) > ticktime_ms {
                log::warn!(
                    "distribution: node {} sent nothing for {ticktime:?}; it is down",
                    connection.peer.name
                );
                connection.close(NodeDownReason::TickTimeout);
            }
        }
    }
}

/// Where a call or send goes: a pid, or a registered name on a node.
#[derive(Clone, Debug)]
pub enum Destination {
    /// A process.
    Pid(Pid),
    /// `{Name, Node}`.
    Name {
        /// The registered name.
        name: String,
        /// The node.
        node: String,
    },
}

impl From<Pid> for Destination {
    fn from(pid: Pid) -> Self {
        Destination::Pid(pid)
    }
}

impl From<(&str, &str)> for Destination {
    fn from((name, node): (&str, &str)) -> Self {
        Destination::Name {
            name: name.to_owned(),
            node: node.to_owned(),
        }
    }
}

/// A running node; see the [module docs](self).
///
/// A cheap handle: clones share the node, so components (remote monitors, a process
/// hub) can each hold one. The node stops at [`shutdown`](Node::shutdown) from any
/// handle, or when the last handle is dropped.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
    listen_address: SocketAddr,
    runs_name_server: bool,
    lifecycle: Arc<Lifecycle>,
}

/// What a running node owns; taken apart once, by the first stop.
struct Running {
    acceptor: JoinHandle<()>,
    ticker: JoinHandle<()>,
    stop_ticker: Sender<()>,
    /// Keeps the EPMD registration (and a name server we started) alive.
    registration: registration::Keeper,
}

/// The node's threads and registrations, shared by every handle; stopped by the first
/// `shutdown` or when the last handle goes.
struct Lifecycle {
    inner: Arc<NodeInner>,
    listen_address: SocketAddr,
    running: parking_lot::Mutex<Option<Running>>,
}

impl Lifecycle {
    fn stop(&self) {
        let Some(running) = self.running.lock().take() else {
            return;
        };
        self.inner.shut_down();
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.listen_address, Duration::from_secs(1));
        let _ = running.acceptor.join();
        drop(running.stop_ticker);
        let _ = running.ticker.join();
        loop {
            let threads = std::mem::take(&mut *self.inner.threads.lock());
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                let _ = thread.join();
            }
        }
        running.registration.stop();
        super::hooks::unregister_node(&self.inner);
        self.inner.inboxes.write().clear();
        log::info!("node {} stopped", self.inner.name);
    }
}

impl Node {
    /// Settings, to [`start`](NodeBuilder::start) a node.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::new()
    }

    /// The node name, `name@host`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The creation announced in handshakes (the runtime's).
    pub fn creation(&self) -> u32 {
        self.inner.creation
    }

    /// The distribution listener's address.
    pub fn listen_address(&self) -> SocketAddr {
        self.listen_address
    }

    /// Whether this node started its own EPMD-compatible name server.
    pub fn runs_name_server(&self) -> bool {
        self.runs_name_server
    }

    /// Connects to `node` (a no-op when connected).
    pub fn connect(&self, node: &str) -> Result<(), DistError> {
        self.inner.connection(node).map(drop)
    }

    /// Closes the connection to `node`; `true` if there was one. A `nodedown` with
    /// [`NodeDownReason::Disconnected`] follows.
    pub fn disconnect(&self, node: &str) -> bool {
        match self.inner.existing(node) {
            Some(connection) => {
                connection.close(NodeDownReason::Disconnected);
                true
            }
            None => false,
        }
    }

    /// Cuts `node` off until [`unblock`](Node::unblock): closes the connection to it
    /// (a `nodedown` with [`NodeDownReason::Disconnected`] here, a lost connection
    /// there, and everything that depended on it ends with `noconnection`), refuses
    /// its handshakes (`not_allowed`, so a BEAM node's `net_adm:ping` gets `pang`),
    /// and makes no connection to it: [`connect`](Node::connect), [`send`](Node::send),
    /// [`call`](Node::call) and monitors fail with [`DistError::NoConnection`], and
    /// [`monitor_node`](Node::monitor_node) reports it down at once. What a partition
    /// does to a cluster, on demand. Returns whether a connection was closed.
    pub fn block(&self, node: &str) -> Result<bool, DistError> {
        validate_node_name(node)?;
        if node == self.inner.name {
            return Err(DistError::InvalidNodeName {
                name: node.to_owned(),
                reason: "this is the local node",
            });
        }
        // Under the connections lock, so no handshake in progress can install a
        // connection after this without seeing the block.
        let up = {
            let connections = self.inner.connections.lock();
            self.inner.blocked.lock().insert(node.to_owned());
            match connections.get(node) {
                Some(Slot::Up(connection)) => Some(connection.clone()),
                _ => None,
            }
        };
        match up {
            Some(connection) => {
                log::info!("distribution: {node} blocked, its connection closes");
                connection.close(NodeDownReason::Disconnected);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Ends [`block`](Node::block): connections to and from `node` are allowed again
    /// (made, as usual, by the next connect, send or call; none is made here).
    /// Returns whether it was blocked.
    pub fn unblock(&self, node: &str) -> bool {
        self.inner.blocked.lock().remove(node)
    }

    /// The nodes blocked now, sorted.
    pub fn blocked(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self.inner.blocked.lock().iter().cloned().collect();
        nodes.sort();
        nodes
    }

    /// The nodes connected now, sorted.
    pub fn nodes(&self) -> Vec<String> {
        self.connected_nodes(|_| true)
    }

    /// A receiver of node events from now on (`net_kernel:monitor_nodes(true)`).
    pub fn events(&self) -> Receiver<NodeEvent> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        self.inner.subscribers.lock().push(events::Subscriber {
            sink: events::Sink::Channel(sender),
            nodedown_of: None,
        });
        receiver
    }

    /// `monitor_node(Node, true)`: connects to `node` if needed; the receiver gets one
    /// [`NodeEvent::Down`] when the connection goes down, at once (reason
    /// [`NodeDownReason::Unreachable`]) when no connection can be made.
    pub fn monitor_node(&self, node: &str) -> Receiver<NodeEvent> {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        // Subscribed before connecting, so a connection lost right after is seen.
        self.inner.subscribers.lock().push(events::Subscriber {
            sink: events::Sink::Channel(sender.clone()),
            nodedown_of: Some(node.to_owned()),
        });
        if self.inner.connection(node).is_err() {
            self.inner
                .subscribers
                .lock()
                .retain(|subscriber| !subscriber.sink.is_channel(&sender));
            let _ = sender.try_send(NodeEvent::Down {
                node: node.to_owned(),
                reason: NodeDownReason::Unreachable,
            });
        }
        receiver
    }

    /// Messages dropped because they did not decode into the receiver's type, or the
    /// receiver takes no messages from other nodes.
    pub fn dropped_messages(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Bytes sent so far on the connection to `node` (0 if none).
    pub fn bytes_sent(&self, node: &str) -> u64 {
        self.inner.existing(node).map_or(0, |c| c.bytes_sent())
    }

    /// Lets `worker` take plain messages from other nodes, decoded into its `Info`.
    /// The registration ends when the worker dies (or with [`Node::unserve`]).
    pub fn accept_messages<W: Worker>(&self, worker: &WorkerRef<W>)
    where
        W::Info: FromTerm,
    {
        self.inner.add_inbox(
            worker.pid(),
            Arc::new(MessageInbox {
                worker: worker.clone(),
            }),
        );
    }

    /// How many local workers are registered to take terms from other nodes (dead ones
    /// are pruned as new ones register).
    pub fn served(&self) -> usize {
        self.inner.inboxes.read().len()
    }

    /// Ends what [`accept_messages`](Node::accept_messages) or [`serve`](Node::serve)
    /// started for `pid`: terms from other nodes to it are dropped (and counted) from
    /// now on. Returns whether it was registered.
    pub fn unserve(&self, pid: &Pid) -> bool {
        self.inner.inboxes.write().remove(pid).is_some()
    }

    /// Lets `worker` serve other nodes as a `gen_server`: `gen_server:call` reaches its
    /// `handle_call` (the reply goes back to the caller), `gen_server:cast` its
    /// `handle_cast`, other messages its `handle_info`.
    pub fn serve<W: Worker>(&self, worker: &WorkerRef<W>)
    where
        W::Info: FromTerm,
        W::Cast: FromTerm,
        W::Call: FromTerm,
        W::Reply: ToTerm,
    {
        self.inner.add_inbox(
            worker.pid(),
            Arc::new(ServerInbox {
                worker: worker.clone(),
            }),
        );
    }

    /// Sends `message` from `from` (a local pid, or the runtime's root pid) to
    /// `to`, connecting first if needed. A local destination is delivered directly.
    pub fn send(
        &self,
        from: Pid,
        to: impl Into<Destination>,
        message: &impl ToTerm,
    ) -> Result<(), DistError> {
        self.send_term(from, to.into(), message.to_term(), true)
    }

    /// [`send`](Node::send); with `connect == false`,
    /// [`send_noconnect`](Node::send_noconnect): a remote destination without a
    /// connection is then `NoConnection` at once, and none is attempted.
    pub(crate) fn send_term(
        &self,
        from: Pid,
        to: Destination,
        term: Term,
        connect: bool,
    ) -> Result<(), DistError> {
        let sender = self.inner.wire_pid(from);
        let connection = |node: &str| match connect {
            true => self.inner.connection(node),
            false => self
                .inner
                .existing(node)
                .ok_or_else(|| DistError::NoConnection {
                    node: node.to_owned(),
                }),
        };
        match to {
            Destination::Pid(pid) if pid.node() == self.inner.node => {
                self.inner.deliver_to(pid, term);
                Ok(())
            }
            Destination::Pid(pid) => {
                let connection = connection(pid.node().as_str())?;
                let control = Control::SendSender {
                    from: sender,
                    to: self.inner.wire_pid(pid),
                };
                connection.send(self.inner.now(), &control, Some(&term))
            }
            Destination::Name { name, node } if node == self.inner.name => {
                if let Some(pid) = self.inner.runtime.whereis(&name) {
                    self.inner.deliver_to(pid, term);
                }
                Ok(())
            }
            Destination::Name { name, node } => {
                let connection = connection(&node)?;
                let control = Control::RegSend {
                    from: sender,
                    to: Atom::new(name),
                };
                connection.send(self.inner.now(), &control, Some(&term))
            }
        }
    }

    /// `gen_server:call(To, Request, Timeout)` to a server on another node; the reply
    /// decodes into `R`.
    ///
    /// A server that does not exist fails at once with [`DistError::NoProc`]; one that
    /// dies first with [`DistError::Exited`]; a lost connection with
    /// [`DistError::NoConnection`]; no reply in time with [`DistError::Timeout`] (a
    /// late reply is dropped).
    pub fn call<R: FromTerm>(
        &self,
        to: impl Into<Destination>,
        request: &impl ToTerm,
        timeout: Duration,
    ) -> Result<R, DistError> {
        let inner = &self.inner;
        let (node, target, control_for) = match to.into() {
            Destination::Pid(pid) => {
                let wire = inner.wire_pid(pid);
                (
                    pid.node().as_str().to_owned(),
                    ProcessRef::Pid(wire.clone()),
                    Control::SendSender {
                        from: inner.wire_pid(inner.proxy),
                        to: wire,
                    },
                )
            }
            Destination::Name { name, node } => (
                node,
                ProcessRef::Name(Atom::new(name.clone())),
                Control::RegSend {
                    from: inner.wire_pid(inner.proxy),
                    to: Atom::new(name),
                },
            ),
        };
        let connection = inner.connection(&node)?;
        let reference = inner.new_reference();
        let (sender, receiver) = crossbeam_channel::bounded(1);
        inner.calls.lock().insert(
            reference.clone(),
            PendingCall {
                node: node.clone(),
                waiting: sender,
            },
        );
        let proxy = inner.wire_pid(inner.proxy);
        let monitor = Control::MonitorP {
            from: proxy.clone(),
            to: target.clone(),
            reference: reference.clone(),
        };
        let message = (
            Atom::from("$gen_call"),
            (Term::from(proxy.clone()), Term::from(reference.clone())),
            request.to_term(),
        )
            .to_term();
        let sent = connection.send_all(
            inner.now(),
            &[(&monitor, None), (&control_for, Some(&message))],
        );
        if let Err(error) = sent {
            inner.calls.lock().remove(&reference);
            return Err(error);
        }
        // Spin first: a parked caller's wake-up is often the longest step of the trip.
        // The spin is part of the timeout.
        let waiting_since = Instant::now();
        let outcome = match crate::runtime::spin_recv_whole(&receiver, inner.config.reply_spin) {
            Ok(end) => Ok(end),
            Err(_) => receiver.recv_timeout(timeout.saturating_sub(waiting_since.elapsed())),
        };
        inner.calls.lock().remove(&reference);
        let demonitor = Control::DemonitorP {
            from: proxy,
            to: target,
            reference,
        };
        match outcome {
            Ok(CallEnd::Reply(term)) => {
                let _ = connection.send(inner.now(), &demonitor, None);
                R::from_term(term)
            }
            Ok(CallEnd::Down(ExitReason::NoProc)) => Err(DistError::NoProc),
            Ok(CallEnd::Down(ExitReason::NoConnection)) => Err(DistError::NoConnection { node }),
            Ok(CallEnd::Down(reason)) => Err(DistError::Exited(reason)),
            Err(_) => {
                let _ = connection.send(inner.now(), &demonitor, None);
                Err(DistError::Timeout)
            }
        }
    }

    /// Monitors the process registered as `name` on `node` (`monitor(process, {Name,
    /// Node})`): one [`Down`](crate::Down) arrives on the returned monitor, naming
    /// `name`, with the process's exit reason; `NoProc` if nothing is registered under
    /// that name, `NoConnection` if the node is or becomes unreachable. The DOWN's
    /// `pid` is a placeholder of that node (process number 0), as the name is what was
    /// monitored.
    pub fn monitor_name(&self, name: &str, node: &str) -> crate::Monitor {
        let inner = &self.inner;
        let runtime = &inner.runtime.inner;
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let placeholder = Pid::from_parts(NodeName::new(node), 0, 0, 0);
        let reference = crate::pid::MonitorRef {
            id: runtime.new_ref_id(),
            target: placeholder,
        };
        let watcher = crate::process::Watcher::Channel {
            sender,
            name: Some(name.into()),
        };
        let monitor = crate::Monitor::new(reference, receiver, runtime);
        let connection = match inner.connection(node) {
            Ok(connection) => connection,
            Err(_) => {
                watcher.notify(reference, ExitReason::NoConnection);
                return monitor;
            }
        };
        let wire = inner.new_reference();
        let target = ProcessRef::Name(Atom::new(name));
        inner.local_monitors.lock().insert(
            wire.clone(),
            LocalMonitor {
                peer: connection.peer.name.clone(),
                reference,
                watcher,
                target: target.clone(),
            },
        );
        let request = Control::MonitorP {
            from: inner.wire_pid(inner.runtime.root_pid()),
            to: target,
            reference: wire,
        };
        let _ = connection.send(inner.now(), &request, None);
        monitor
    }

    /// `gen_server:cast(To, Message)`: sends `{'$gen_cast', Message}` from the root pid.
    pub fn cast(&self, to: impl Into<Destination>, message: &impl ToTerm) -> Result<(), DistError> {
        let envelope = (Atom::from("$gen_cast"), message.to_term());
        self.send(self.inner.runtime.root_pid(), to, &envelope)
    }

    /// `rpc:call(Node, Module, Function, Args, Timeout)` on a BEAM node, through its
    /// `rex` server. The result is `Module:Function(Args...)`'s value, or the
    /// `{badrpc, Reason}` term rex answers with when the call fails there.
    pub fn rpc(
        &self,
        node: &str,
        module: &str,
        function: &str,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, DistError> {
        let request = (
            Atom::from("call"),
            Atom::new(module),
            Atom::new(function),
            args,
            // The group leader for the call's output: our root pid (output is dropped).
            self.inner.runtime.root_pid(),
        );
        self.call(("rex", node), &request, timeout)
    }

    /// Closes every connection, unregisters from EPMD and joins every thread the node
    /// started. Calls from other nodes still running in local workers are not waited
    /// for: their replies find no connection and are dropped.
    pub fn shutdown(&self) {
        self.lifecycle.stop();
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        self.stop();
    }
}

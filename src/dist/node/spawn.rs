//! `SPAWN_REQUEST` from other nodes (`erlang:spawn/4`, `spawn_request/5`,
//! `erpc:call`, and OTP 23+'s `rpc:call`), answered with a `SPAWN_REPLY`.
//!
//! Contract (we advertise `DFLAG_SPAWN`):
//! * The request `{29, ReqId, From, GroupLeader, {M, F, Arity}, Options}` with the
//!   argument list as payload (`{30, …, Token}` with a trace token) always gets
//!   `{31, ReqId, From, Flags, Result}`: `Result` a pid of this node, or an error atom;
//!   `Flags` 1 when the link option was taken, 2 when the monitor was.
//! * `erpc:execute_call(Ref, M, F, A)` (how `erpc:call` and `rpc:call` run a call
//!   remotely) is answered with a fresh pid; `M:F(A)` then runs as an rpc (see
//!   `rex.rs`) and the pid "exits" with `execute_call`'s reason (`{Ref, return, V}`
//!   …), sent as the monitor's DOWN and over the link, as requested.
//!   `erpc:execute_cast(M, F, A)` (`erpc:cast`) runs the same way and exits `normal`.
//! * Another `M:F` runs the spawner registered for it with
//!   [`Node::register_spawner`]: it starts a local process and gives its pid; the
//!   link and monitor the request asked for are then set up on that process as a
//!   remote `LINK` / `MONITOR_P` would be.
//! * `observer_backend:procs_info(Collector)` and `observer_backend:etop_collect(Collector)`
//!   (observer's Processes tab, etop) get a fresh pid that sends the process list to
//!   `Collector` and exits `normal`; `observer_backend:fetch_stats(Parent, Ms)` starts
//!   a worker sending statistics until it gets a message (see `rex/observer_backend.rs`).
//! * Anything else is refused with `notsup` (this node runs no Erlang code; BEAM
//!   answers `notsup` to a spawn on a node that cannot spawn); a request whose fields
//!   are malformed (arity not the argument count, non-atom module …) with `badarg`,
//!   an unknown option with `badopt`, as BEAM's `spawn_request` does. A request
//!   without a usable `ReqId` and `From` cannot be answered and is logged and dropped.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::connection::Connection;
use super::rex::{self, atom, proper_list};
use super::{Node, NodeInner};
use crate::dist::control::{Control, ProcessRef, WirePid, WireRef};
use crate::dist::error::DistError;
use crate::dist::term::{Term, ToTerm};
use crate::pid::Pid;

const SPAWN_REPLY: i32 = 31;
/// `SPAWN_REPLY` flag: the link was set up.
const FLAG_LINK: i32 = 1;
/// `SPAWN_REPLY` flag: the monitor was set up.
const FLAG_MONITOR: i32 = 2;

/// Why a spawner did not start a process; the requester's `spawn` sees the atom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnRefusal {
    /// `badarg`: the arguments do not fit.
    BadArg,
    /// `system_limit`: no process can be started now.
    SystemLimit,
}

impl SpawnRefusal {
    fn atom(self) -> &'static str {
        match self {
            SpawnRefusal::BadArg => "badarg",
            SpawnRefusal::SystemLimit => "system_limit",
        }
    }
}

/// Starts a local process for a spawn request from another node, given the arguments.
pub type Spawner = Arc<dyn Fn(&[Term]) -> Result<Pid, SpawnRefusal> + Send + Sync>;

/// The registered spawners, by `(module, function)`.
#[derive(Default)]
pub(crate) struct Spawners {
    spawners: RwLock<HashMap<(String, String), Spawner>>,
}

/// A decoded `SPAWN_REQUEST`.
#[derive(Clone, Debug, PartialEq)]
pub struct SpawnRequest {
    /// The request id the reply carries.
    pub request_id: WireRef,
    /// The requesting process.
    pub from: WirePid,
    /// The module to run.
    pub module: String,
    /// The function to run.
    pub function: String,
    /// The arguments.
    pub args: Vec<Term>,
    /// The `link` option was given.
    pub link: bool,
    /// The `monitor` option (or `{monitor, Opts}`) was given.
    pub monitor: bool,
}

/// Why a request is refused with an error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnRequestError {
    /// A field is malformed: `badarg`.
    BadArg,
    /// An option is not a spawn option: `badopt`.
    BadOpt,
}

/// Spawn options a request may carry that we accept and ignore (they concern the
/// BEAM process we do not create, or the requester's side).
const IGNORED_OPTIONS: &[&str] = &[
    "priority",
    "fullsweep_after",
    "min_heap_size",
    "min_bin_vheap_size",
    "max_heap_size",
    "message_queue_data",
    "reply",
    "reply_tag",
    "async_dist",
];

/// Reads a `SPAWN_REQUEST`'s elements (after the operation number) and payload.
///
/// `Err(None)`: no request id and sender to answer to. `Err(Some((id, from, why)))`:
/// answerable, but malformed.
#[allow(clippy::type_complexity)]
pub fn decode_request(
    elements: Vec<Term>,
    payload: Option<Term>,
) -> Result<SpawnRequest, Option<(WireRef, WirePid, SpawnRequestError)>> {
    let mut elements = elements.into_iter();
    let (Some(Term::Reference(request_id)), Some(Term::Pid(from))) =
        (elements.next(), elements.next())
    else {
        return Err(None);
    };
    let request_id = *request_id;
    let refuse = |why| Err(Some((request_id.clone(), from.clone(), why)));
    let _group_leader = elements.next();
    let (module, function, arity) = match elements.next() {
        Some(Term::Tuple(mfa)) => match <[Term; 3]>::try_from(mfa.elements) {
            Ok([Term::Atom(m), Term::Atom(f), Term::FixInteger(a)]) => (m.name, f.name, a.value),
            _ => return refuse(SpawnRequestError::BadArg),
        },
        _ => return refuse(SpawnRequestError::BadArg),
    };
    let Some(options) = elements.next().and_then(proper_list) else {
        return refuse(SpawnRequestError::BadArg);
    };
    let Some(args) = payload.and_then(proper_list) else {
        return refuse(SpawnRequestError::BadArg);
    };
    if usize::try_from(arity).ok() != Some(args.len()) {
        return refuse(SpawnRequestError::BadArg);
    }
    let (mut link, mut monitor) = (false, false);
    for option in &options {
        match option {
            Term::Atom(a) if a.name == "link" => link = true,
            Term::Atom(a) if a.name == "monitor" => monitor = true,
            Term::Tuple(t) => match t.elements.first() {
                Some(Term::Atom(a)) if a.name == "monitor" && t.elements.len() == 2 => {
                    monitor = true
                }
                Some(Term::Atom(a))
                    if t.elements.len() == 2 && IGNORED_OPTIONS.contains(&a.name.as_str()) => {}
                _ => return refuse(SpawnRequestError::BadOpt),
            },
            _ => return refuse(SpawnRequestError::BadOpt),
        }
    }
    Ok(SpawnRequest {
        request_id,
        from,
        module,
        function,
        args,
        link,
        monitor,
    })
}

fn reply(
    node: &NodeInner,
    connection: &Connection,
    request_id: WireRef,
    to: WirePid,
    flags: i32,
    result: Term,
) {
    let control = Control::Other {
        op: SPAWN_REPLY,
        elements: vec![
            Term::from(request_id),
            Term::from(to),
            flags.to_term(),
            result,
        ],
    };
    if let Err(error) = connection.send(node.now(), &control, None) {
        log::debug!(
            "distribution: spawn reply to {} not sent: {error}",
            connection.peer.name
        );
    }
}

fn flags_of(request: &SpawnRequest) -> i32 {
    (if request.link { FLAG_LINK } else { 0 }) | (if request.monitor { FLAG_MONITOR } else { 0 })
}

/// Refuses `request` with `reason` (`badarg`, `notsup`, `system_limit`, ...): no
/// process was started.
pub(super) fn refuse(
    node: &NodeInner,
    connection: &Connection,
    request: &SpawnRequest,
    reason: &str,
) {
    reply(
        node,
        connection,
        request.request_id.clone(),
        request.from.clone(),
        0,
        atom(reason),
    );
}

/// Tells `request`'s sender that its process started as `pid`, with the link and
/// monitor flags it asked for.
pub(super) fn accept(
    node: &NodeInner,
    connection: &Connection,
    request: &SpawnRequest,
    pid: &WirePid,
) {
    reply(
        node,
        connection,
        request.request_id.clone(),
        request.from.clone(),
        flags_of(request),
        Term::from(pid.clone()),
    );
}

/// The exit signals of a process spawned for `request` as `pid` when it ends: the DOWN
/// of the monitor the requester asked for, then the EXIT over its link, in that order
/// on the connection. Their payload is the exit reason.
pub(super) fn exit_signals(request: &SpawnRequest, pid: &WirePid) -> Vec<Control> {
    let mut signals = Vec::with_capacity(2);
    if request.monitor {
        signals.push(Control::PayloadMonitorPExit {
            from: ProcessRef::Pid(pid.clone()),
            to: request.from.clone(),
            reference: request.request_id.clone(),
        });
    }
    if request.link {
        signals.push(Control::PayloadExit {
            from: pid.clone(),
            to: request.from.clone(),
        });
    }
    signals
}

/// Sends [`exit_signals`] with `reason` (nothing if the request asked for neither).
pub(super) fn send_exit(
    node: &NodeInner,
    connection: &Connection,
    request: &SpawnRequest,
    pid: &WirePid,
    reason: &Term,
) {
    let signals = exit_signals(request, pid);
    let refs: Vec<(&Control, Option<&Term>)> = signals
        .iter()
        .map(|control| (control, Some(reason)))
        .collect();
    if !refs.is_empty() {
        let _ = connection.send_all(node.now(), &refs);
    }
}

/// Handles a `SPAWN_REQUEST` (`elements` after the operation number, trace token
/// ignored).
pub(crate) fn handle(
    node: &Arc<NodeInner>,
    connection: &Arc<Connection>,
    elements: Vec<Term>,
    payload: Option<Term>,
) {
    let request = match decode_request(elements, payload) {
        Ok(request) => request,
        Err(None) => {
            log::warn!(
                "distribution: malformed spawn request from {} dropped (no request id or sender)",
                connection.peer.name
            );
            return;
        }
        Err(Some((request_id, from, why))) => {
            let error = match why {
                SpawnRequestError::BadArg => "badarg",
                SpawnRequestError::BadOpt => "badopt",
            };
            reply(node, connection, request_id, from, 0, atom(error));
            return;
        }
    };
    match (request.module.as_str(), request.function.as_str()) {
        ("erpc", "execute_call") if request.args.len() == 4 => {
            run_erpc(node, connection, request, true)
        }
        ("erpc", "execute_cast") if request.args.len() == 3 => {
            run_erpc(node, connection, request, false)
        }
        // What observer's Processes tab and etop spawn (see `rex/observer_backend.rs`).
        ("observer_backend", "procs_info" | "etop_collect") if request.args.len() == 1 => {
            rex::observer_backend::run_collector(node, connection, request)
        }
        ("observer_backend", "fetch_stats") if request.args.len() == 2 => {
            rex::observer_backend::run_fetch_stats(node, connection, request)
        }
        (module, function) => {
            let spawner = node
                .spawners
                .spawners
                .read()
                .get(&(module.to_owned(), function.to_owned()))
                .cloned();
            match spawner {
                Some(spawner) => run_spawner(node, connection, request, spawner),
                None => {
                    log::debug!(
                        "distribution: spawn of {module}:{function} from {} refused: notsup",
                        connection.peer.name
                    );
                    refuse(node, connection, &request, "notsup");
                }
            }
        }
    }
}

/// `erpc:execute_call(Ref, M, F, A)` / `erpc:execute_cast(M, F, A)` as an rpc.
fn run_erpc(
    node: &Arc<NodeInner>,
    connection: &Arc<Connection>,
    request: SpawnRequest,
    call: bool,
) {
    let mut args = request.args.clone().into_iter();
    let reference = if call { args.next() } else { None };
    let (Some(Term::Atom(module)), Some(Term::Atom(function)), Some(list)) =
        (args.next(), args.next(), args.next())
    else {
        return refuse(node, connection, &request, "badarg");
    };
    let Some(call_args) = proper_list(list) else {
        return refuse(node, connection, &request, "badarg");
    };
    let pid = node.runtime.inner.new_pid();
    let wire = node.wire_pid(pid);
    accept(node, connection, &request, &wire);
    let node2 = node.clone();
    let connection = connection.clone();
    let inline = rex::runs_inline(node, &module.name, &function.name);
    rex::run(node, inline, move || {
        let applied = rex::apply(&node2, &module.name, &function.name, call_args);
        let reason = match reference {
            Some(reference) => applied.into_erpc_reason(reference),
            None => atom("normal"),
        };
        send_exit(&node2, &connection, &request, &wire, &reason);
    });
}

/// A user's spawner for `M:F`: run on a call thread (it may block while the process
/// starts), then the reply, then the link and monitor on the new process.
fn run_spawner(
    node: &Arc<NodeInner>,
    connection: &Arc<Connection>,
    request: SpawnRequest,
    spawner: Spawner,
) {
    let node2 = node.clone();
    let connection = connection.clone();
    node.run_call(Box::new(move || {
        let started =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| spawner(&request.args)));
        let pid = match started {
            Ok(Ok(pid)) if pid.node() == node2.node => pid,
            Ok(Ok(pid)) => {
                log::error!(
                    "distribution: spawner for {}:{} gave {pid}, not a pid of this node",
                    request.module,
                    request.function
                );
                return refuse(&node2, &connection, &request, "badarg");
            }
            Ok(Err(refusal)) => {
                return refuse(&node2, &connection, &request, refusal.atom());
            }
            Err(_) => {
                log::error!(
                    "distribution: spawner for {}:{} panicked",
                    request.module,
                    request.function
                );
                return refuse(&node2, &connection, &request, "badarg");
            }
        };
        let wire = node2.wire_pid(pid);
        accept(&node2, &connection, &request, &wire);
        if request.link {
            crate::dist::hooks::remote_link(
                &node2,
                &connection,
                request.from.clone(),
                wire.clone(),
            );
        }
        if request.monitor {
            node2.remote_monitor(
                &connection,
                request.from,
                ProcessRef::Pid(wire),
                request.request_id,
            );
        }
    }));
}

impl Node {
    /// Lets other nodes start a local process with `spawn(ThisNode, module, function,
    /// Args)` / `spawn_request`: `spawner` gets the arguments and starts the process
    /// (typically a worker that [`serve`](Node::serve)s or
    /// [`accept_messages`](Node::accept_messages)), giving its pid. The link or monitor
    /// the requester asked for is set up on that process.
    pub fn register_spawner(
        &self,
        module: &str,
        function: &str,
        spawner: impl Fn(&[Term]) -> Result<Pid, SpawnRefusal> + Send + Sync + 'static,
    ) -> Result<(), DistError> {
        rex::validate_name("module", module)?;
        rex::validate_name("function", function)?;
        self.inner
            .spawners
            .spawners
            .write()
            .insert((module.to_owned(), function.to_owned()), Arc::new(spawner));
        Ok(())
    }
}

//! `observer_backend`: the module of OTP's `runtime_tools` application that Erlang's
//! own tools (`observer`, `etop`, `ttb`) call on the node they look at, answered
//! natively, so that a BEAM node's observer attaches to this node.
//!
//! What the tools of OTP 25 do on a remote node (read from OTP's `lib/observer/src`
//! and `lib/runtime_tools/src/observer_backend.erl`), and what we answer:
//!
//! | Tool, tab | Call on the remote node | Here |
//! |---|---|---|
//! | observer (connect), etop, ttb | `rpc:call(N, observer_backend, vsn, [])`, expecting `{ok, Vsn}` (any `Vsn` is accepted) | `{ok, "1.19"}`: OTP 25.2's runtime_tools, the protocol level answered |
//! | observer, Processes tab | `rpc:call(N, code, ensure_loaded, [observer_backend])`, then `rpc:call(N, erlang, function_exported, [observer_backend, procs_info, 1])` | `{module, observer_backend}`, `true` |
//! | observer, Processes tab | `spawn_link(N, observer_backend, procs_info, [Holder])`: the spawned process sends `{procs_info, self(), Batch}` (batches of at most 10 000 `etop_proc_info` records, the last one shorter, possibly `[]`) and exits `normal`; the holder takes that `'EXIT'` as "complete" | answered: a pid is given, the batches are sent from it, then the link's `EXIT normal` (and a monitor's `DOWN`) |
//! | observer, Processes tab "dump", etop | `spawn_link(N, observer_backend, etop_collect, [Collector])`: sends `{self(), #etop_info{}}` and exits `normal` | answered the same way |
//! | observer, System tab | `rpc:call(N, observer_backend, sys_info, [])` | the keys and value types BEAM gives (below) |
//! | observer, Ports tab | `rpc:call(N, observer_backend, get_port_list, [])` | `[]` (no ports) |
//! | observer, Sockets tab | `rpc:call(N, observer_backend, get_socket_list, [])` | `[]` (no `socket` module sockets) |
//! | observer, Table Viewer | `rpc:call(N, observer_backend, get_table_list, [ets \| mnesia, Opts])` | `[]` for `ets` (no ETS tables); for `mnesia` the throw BEAM gives without Mnesia, `{error, "Mnesia is not running on: " ++ Node}` |
//! | observer, process window | `erlang:process_info(Pid, Items)` over rpc | the built-ins of `builtins.rs` |
//! | observer, Applications tab | `rpc:call(N, appmon_info, start_link2, [Starter, Client, Opts])`, then casts to that server (`app_ctrl`: the application list, `app`: one application's process tree), answered with `{delivery, ...}` messages | answered by a worker of the runtime: the supervision trees as applications (see `observer_backend/appmon_info.rs`); `application:which_applications()` too (below) |
//! | observer, Load Charts / Memory Allocators | `spawn_link(N, observer_backend, fetch_stats, [Parent, Ms])`, a process sending `{stats, 1, SchedWallTime, IO, Memory}` every `Ms` until it gets a message | answered by a worker (see `observer_backend/fetch_stats.rs`); over plain rpc (where BEAM would loop forever in rex) `error(notsup)` |
//! | observer, Trace Overview; ttb | `dbg`, `ttb_*` | not answered (no tracing of threads) |
//!
//! Any other `observer_backend` function answers exactly as an undefined function
//! does (`undef`, see `rex.rs`).
//!
//! An `etop_proc_info` record is `{etop_proc_info, Pid, Mem, Reds, Name, Runtime, Cf,
//! Mq}`: `Mem` `0` (a thread's memory is not accounted per process), `Reds` messages
//! handled, `Name` the registered name or else the `initial_call`, `Runtime` `0`, `Cf`
//! `current_function`, `Mq` the mailbox length (the meanings of `builtins.rs`). An
//! `etop_info` is `{etop_info, Now, NProcs, WallClock, Runtime, RunQueue, AllocAreas,
//! Memi, ProcInfo}`: `Now` `erlang:timestamp()`'s form, `WallClock` and `Runtime`
//! `undefined` (no scheduler wall time is measured; BEAM gives `undefined` too until its
//! flag is on), `RunQueue` `0`, `AllocAreas` `[]`, `Memi` the six `memory` items etop
//! shows.
//!
//! `sys_info()` keys, in BEAM's order, each with the value type BEAM gives:
//! `uptime` (ms since this node started), `run_queue` (`0`: the OS schedules the
//! threads, no run queue is visible), `io_input` (`0`: not counted), `io_output` (bytes
//! written on this node's open distribution connections), `logical_processors`,
//! `logical_processors_online`, `logical_processors_available`, `schedulers`,
//! `schedulers_online`, `schedulers_available` (the cores the OS gives this process),
//! `otp_release`, `version`, `system_architecture` (as `system_info`), `kernel_poll`
//! (`false`), `smp_support`, `threads` (`true`), `thread_pool_size` (`0`),
//! `wordsize_internal`, `wordsize_external` (bytes of a pointer), `alloc_info` (`[]`),
//! `process_count` (twice, as BEAM lists it), `atom_limit`, `atom_count` (`0`: atoms are
//! not interned in a table), `process_limit`, `port_limit`, `port_count`, `ets_limit`,
//! `ets_count` (`0`), `dist_buf_busy_limit` (the bytes a connection's outbox holds
//! before senders wait), then the items of `erlang:memory()`.
//!
//! `application:which_applications()` (and `/1`): one `{Name, Description, Vsn}` per
//! supervision tree (a root supervisor, one no other supervisor started): `Name` the
//! root's registered name, or `supervision_tree_N` (`N` the number in the pid's
//! `<0.N.0>`) when it has none; `Description` `"otp-threads supervision tree"`; `Vsn` this crate's version.
//!
//! `code:ensure_loaded(M)` is `{module, M}` for the modules this node answers
//! functions of (built-ins and registered handlers), else `{error, nofile}`;
//! `erlang:function_exported(M, F, A)` is `true` for the built-ins and registered
//! functions (a handler takes any arity).

mod appmon_info;
mod fetch_stats;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::super::connection::{Connection, MAX_PENDING};
use super::super::spawn::{SpawnRequest, accept, exit_signals, send_exit};
use super::super::{NodeInner, Slot};
use super::builtins::{self, Answer};
use super::{Exception, atom, proper_list};
use crate::dist::control::{Control, WirePid};
use crate::dist::term::{FromTerm, Term, ToTerm};
use crate::observer::Snapshot;
use crate::pid::Pid;

/// The `runtime_tools` version whose `observer_backend` protocol this file answers
/// (OTP 25.2).
const RUNTIME_TOOLS_VSN: &str = "1.19";

/// `procs_info` sends the process list in batches of this many records.
const PROCS_INFO_BATCH: usize = 10_000;

/// The `observer_backend` functions answered over rpc, with their arities.
const BACKEND_EXPORTS: &[(&str, usize)] = &[
    ("vsn", 0),
    ("sys_info", 0),
    ("get_port_list", 0),
    ("get_socket_list", 0),
    ("get_table_list", 2),
    ("procs_info", 1),
    ("etop_collect", 1),
    ("fetch_stats", 2),
];

/// Every built-in this node answers, as `(module, function, arity)`, for
/// `erlang:function_exported/3` and `code:ensure_loaded/1`.
const BUILTIN_EXPORTS: &[(&str, &str, usize)] = &[
    ("erlang", "node", 0),
    ("erlang", "nodes", 0),
    ("erlang", "nodes", 1),
    ("erlang", "processes", 0),
    ("erlang", "registered", 0),
    ("erlang", "whereis", 1),
    ("erlang", "is_process_alive", 1),
    ("erlang", "process_info", 1),
    ("erlang", "process_info", 2),
    ("erlang", "memory", 0),
    ("erlang", "memory", 1),
    ("erlang", "system_info", 1),
    ("erlang", "function_exported", 3),
    ("supervisor", "which_children", 1),
    ("supervisor", "count_children", 1),
    ("erpc", "execute_call", 3),
    ("code", "ensure_loaded", 1),
    ("application", "which_applications", 0),
    ("application", "which_applications", 1),
    ("appmon_info", "start_link2", 3),
];

/// The calls of this file: `observer_backend:*` and the few of other modules the tools
/// make first. `None`: not one of them.
pub(super) fn apply(node: &Arc<NodeInner>, module: &str, function: &str, args: &[Term]) -> Answer {
    let answer = match (module, function, args) {
        ("observer_backend", "vsn", []) => Ok((atom("ok"), charlist(RUNTIME_TOOLS_VSN)).to_term()),
        ("observer_backend", "sys_info", []) => Ok(sys_info(node)),
        ("observer_backend", "get_port_list" | "get_socket_list", []) => Ok(nil()),
        ("observer_backend", "get_table_list", [kind, options]) => table_list(node, kind, options),
        // Called over rpc the records go out from the runtime's root pid (the process
        // that runs rpcs here), and the call returns what BEAM's last send returns.
        ("observer_backend", "procs_info", [collector]) => {
            collector_of(collector).map(|collector| {
                let sender = node.runtime.root_pid();
                let mut last = nil();
                for message in procs_info_messages(node, &node.wire_pid(sender)) {
                    send_from(node, sender, &collector, message.clone());
                    last = message;
                }
                last
            })
        }
        ("observer_backend", "etop_collect", [collector]) => {
            collector_of(collector).map(|collector| {
                let sender = node.runtime.root_pid();
                let message = etop_message(node, &node.wire_pid(sender));
                send_from(node, sender, &collector, message);
                atom("ok")
            })
        }
        ("appmon_info", "start_link2", [_, _, _]) => appmon_info::start_link2(node, args),
        // BEAM's loops until a message comes; an rpc here cannot take messages.
        ("observer_backend", "fetch_stats", [_, _]) => Err(Exception::Error(atom("notsup"))),
        ("code", "ensure_loaded", [Term::Atom(name)]) => Ok(if module_answered(node, &name.name) {
            (atom("module"), atom(&name.name)).to_term()
        } else {
            (atom("error"), atom("nofile")).to_term()
        }),
        ("erlang", "function_exported", [Term::Atom(m), Term::Atom(f), arity]) => {
            match i64::from_term(arity.clone()) {
                // No function has a negative arity (BEAM answers `false` too).
                Ok(arity) => Ok(usize::try_from(arity)
                    .is_ok_and(|arity| function_answered(node, &m.name, &f.name, arity))
                    .to_term()),
                Err(_) => Err(Exception::badarg()),
            }
        }
        ("application", "which_applications", []) => Ok(which_applications(node)),
        ("application", "which_applications", [timeout]) => match timeout {
            Term::FixInteger(ms) if ms.value >= 0 => Ok(which_applications(node)),
            Term::Atom(a) if a.name == "infinity" => Ok(which_applications(node)),
            _ => Err(Exception::Error(atom("function_clause"))),
        },
        // The right arity with arguments of the wrong type, as BEAM fails them; another
        // arity is `undef`.
        ("code", "ensure_loaded", [_]) => Err(Exception::Error(atom("function_clause"))),
        ("erlang", "function_exported", [_, _, _]) => Err(Exception::badarg()),
        _ => return None,
    };
    Some(answer)
}

/// `true` for the built-ins of this file that only read tables (run on the reader).
pub(super) fn is_light(module: &str, function: &str) -> bool {
    matches!(
        (module, function),
        (
            "observer_backend",
            "vsn" | "sys_info" | "get_port_list" | "get_socket_list" | "get_table_list"
        ) | ("code", "ensure_loaded")
            | ("erlang", "function_exported")
    )
}

fn nil() -> Term {
    Term::from(eetf::List::nil())
}

fn charlist(text: &str) -> Term {
    Term::from(eetf::ByteList::from(text))
}

/// The collector argument: a pid (`Collector ! Msg` of anything else is `badarg`).
fn collector_of(term: &Term) -> Result<WirePid, Exception> {
    match term {
        Term::Pid(pid) => Ok(pid.clone()),
        _ => Err(Exception::badarg()),
    }
}

fn module_answered(node: &NodeInner, module: &str) -> bool {
    module == "observer_backend"
        || BUILTIN_EXPORTS.iter().any(|(m, _, _)| *m == module)
        || node
            .rex
            .handlers
            .read()
            .keys()
            .any(|(registered, _)| registered == module)
}

fn function_answered(node: &NodeInner, module: &str, function: &str, arity: usize) -> bool {
    node.rex.handler(module, function).is_some()
        || (module == "observer_backend" && BACKEND_EXPORTS.contains(&(function, arity)))
        || BUILTIN_EXPORTS.contains(&(module, function, arity))
}

/// `get_table_list(Kind, Opts)`: no ETS tables here; no Mnesia either.
fn table_list(node: &NodeInner, kind: &Term, options: &Term) -> Result<Term, Exception> {
    // `proplists:get_value/3` on the options: anything but a list fails.
    if proper_list(options.clone()).is_none() {
        return Err(Exception::Error(atom("function_clause")));
    }
    match kind {
        Term::Atom(kind) if kind.name == "ets" => Ok(nil()),
        Term::Atom(kind) if kind.name == "mnesia" => Err(Exception::Throw(
            (
                atom("error"),
                charlist(&format!("Mnesia is not running on: {}", node.name)),
            )
                .to_term(),
        )),
        _ => Err(Exception::Error(atom("function_clause"))),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Bytes written on the open distribution connections.
fn io_output(node: &NodeInner) -> u64 {
    node.connections
        .lock()
        .values()
        .filter_map(|slot| match slot {
            Slot::Up(connection) => Some(connection.bytes_sent()),
            _ => None,
        })
        .fold(0u64, u64::saturating_add)
}

fn sys_info(node: &NodeInner) -> Term {
    let info = |item: &str| builtins::system_info(node, item).unwrap_or_else(|| 0u8.to_term());
    let cores = cores();
    let wordsize = std::mem::size_of::<usize>();
    let mut items: Vec<Term> = vec![
        (atom("uptime"), node.now()).to_term(),
        (atom("run_queue"), 0u8).to_term(),
        (atom("io_input"), 0u8).to_term(),
        (atom("io_output"), io_output(node)).to_term(),
        (atom("logical_processors"), cores).to_term(),
        (atom("logical_processors_online"), cores).to_term(),
        (atom("logical_processors_available"), cores).to_term(),
        (atom("schedulers"), cores).to_term(),
        (atom("schedulers_online"), cores).to_term(),
        (atom("schedulers_available"), cores).to_term(),
        (atom("otp_release"), info("otp_release")).to_term(),
        (atom("version"), info("version")).to_term(),
        (atom("system_architecture"), info("system_architecture")).to_term(),
        (atom("kernel_poll"), false).to_term(),
        (atom("smp_support"), true).to_term(),
        (atom("threads"), true).to_term(),
        (atom("thread_pool_size"), 0u8).to_term(),
        (atom("wordsize_internal"), wordsize).to_term(),
        (atom("wordsize_external"), wordsize).to_term(),
        (atom("alloc_info"), nil()).to_term(),
        (atom("process_count"), info("process_count")).to_term(),
        (atom("atom_limit"), 0u8).to_term(),
        (atom("atom_count"), 0u8).to_term(),
        (atom("process_limit"), info("process_limit")).to_term(),
        (atom("process_count"), info("process_count")).to_term(),
        (atom("port_limit"), 0u8).to_term(),
        (atom("port_count"), 0u8).to_term(),
        (atom("ets_limit"), 0u8).to_term(),
        (atom("ets_count"), 0u8).to_term(),
        (atom("dist_buf_busy_limit"), MAX_PENDING).to_term(),
    ];
    if let Term::List(memory) = memory() {
        items.extend(memory.elements);
    }
    items.to_term()
}

/// `erlang:memory()`.
fn memory() -> Term {
    builtins::MEMORY_ITEMS
        .iter()
        .map(|item| (atom(item), builtins::memory_item(item).unwrap_or(0)).to_term())
        .collect::<Vec<_>>()
        .to_term()
}

/// `{etop_proc_info, Pid, Mem, Reds, Name, Runtime, Cf, Mq}` of every live process,
/// in the order BEAM's collector builds it (last pid first).
fn proc_records(node: &NodeInner) -> Vec<Term> {
    node.runtime
        .processes()
        .iter()
        .rev()
        .filter_map(|pid| node.runtime.process_info(pid))
        .map(|info| {
            let name = match &info.registered_name {
                Some(name) => atom(name),
                None => builtins::initial_call(&info),
            };
            Term::from(eetf::Tuple::from(vec![
                atom("etop_proc_info"),
                info.pid.to_term(),
                0u8.to_term(),
                info.messages_handled.to_term(),
                name,
                0u8.to_term(),
                builtins::current_function(&info),
                info.mailbox_len.to_term(),
            ]))
        })
        .collect()
}

/// The `{procs_info, Sender, Batch}` messages: full batches, then the rest (possibly
/// empty), as BEAM's `procs_info` splits the list.
fn procs_info_messages(node: &NodeInner, sender: &WirePid) -> Vec<Term> {
    batches(proc_records(node), PROCS_INFO_BATCH)
        .into_iter()
        .map(|batch| (atom("procs_info"), Term::from(sender.clone()), batch).to_term())
        .collect()
}

/// `records` cut as BEAM's `procs_info` cuts them: full batches of `size` while at
/// least `size` remain, then the rest, which may be empty (so the last batch is
/// always shorter than `size`).
fn batches(mut records: Vec<Term>, size: usize) -> Vec<Vec<Term>> {
    let mut batches = Vec::new();
    while records.len() >= size {
        let rest = records.split_off(size);
        batches.push(records);
        records = rest;
    }
    batches.push(records);
    batches
}

/// `{Sender, #etop_info{}}`.
fn etop_message(node: &NodeInner, sender: &WirePid) -> Term {
    let records = proc_records(node);
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let now = (
        seconds / 1_000_000,
        seconds % 1_000_000,
        since_epoch.subsec_micros(),
    )
        .to_term();
    let memi: Vec<Term> = ["total", "processes", "ets", "atom", "code", "binary"]
        .iter()
        .map(|item| (atom(item), builtins::memory_item(item).unwrap_or(0)).to_term())
        .collect();
    let info = Term::from(eetf::Tuple::from(vec![
        atom("etop_info"),
        now,
        records.len().to_term(),
        atom("undefined"),
        atom("undefined"),
        0u8.to_term(),
        nil(),
        memi.to_term(),
        records.to_term(),
    ]));
    (Term::from(sender.clone()), info).to_term()
}

/// Sends `message` from a local pid to `to` (a pid of any node; one of this node's is
/// delivered directly). A failed send is logged: BEAM's `!` does not fail either.
fn send_from(node: &Arc<NodeInner>, from: Pid, to: &WirePid, message: Term) {
    if to.node.name == node.name {
        if let Ok(pid) = Pid::from_term(Term::from(to.clone())) {
            node.deliver_to(pid, message);
        }
        return;
    }
    let sent = node.connection(&to.node.name).and_then(|connection| {
        let control = Control::SendSender {
            from: node.wire_pid(from),
            to: to.clone(),
        };
        connection.send(node.now(), &control, Some(&message))
    });
    if let Err(error) = sent {
        log::debug!(
            "distribution: observer_backend message to {} not sent: {error}",
            to.node.name
        );
    }
}

/// `spawn_link(ThisNode, observer_backend, procs_info | etop_collect, [Collector])`:
/// a fresh pid is given; on a call thread the messages go out from it, then it "exits"
/// `normal` over the requested link and monitor, in that order on the connection (the
/// holder takes the `'EXIT'` as the end of the list). A collector that is no pid makes
/// the process exit with `badarg` right after the reply, as BEAM's `!` would.
pub(in crate::dist::node) fn run_collector(
    node: &Arc<NodeInner>,
    connection: &Arc<Connection>,
    request: SpawnRequest,
) {
    let pid = node.runtime.inner.new_pid();
    let wire = node.wire_pid(pid);
    accept(node, connection, &request, &wire);
    let node2 = node.clone();
    let connection = connection.clone();
    node.run_call(Box::new(move || {
        let collector = request.args.first().map(collector_of);
        let (messages, reason) = match collector {
            Some(Ok(collector)) => {
                let messages = if request.function == "procs_info" {
                    procs_info_messages(&node2, &wire)
                } else {
                    vec![etop_message(&node2, &wire)]
                };
                (Some((collector, messages)), atom("normal"))
            }
            _ => (None, atom("badarg")),
        };
        // Messages to a collector on the requester's node share the connection with
        // the exit signals, so they are written first, in one go.
        let mut signals: Vec<(Control, Option<Term>)> = Vec::new();
        if let Some((collector, messages)) = messages {
            if collector.node.name == connection.peer.name {
                for message in messages {
                    signals.push((
                        Control::SendSender {
                            from: wire.clone(),
                            to: collector.clone(),
                        },
                        Some(message),
                    ));
                }
            } else {
                for message in messages {
                    send_from(&node2, pid, &collector, message);
                }
            }
        }
        signals.extend(
            exit_signals(&request, &wire)
                .into_iter()
                .map(|control| (control, Some(reason.clone()))),
        );
        let refs: Vec<(&Control, Option<&Term>)> = signals
            .iter()
            .map(|(control, payload)| (control, payload.as_ref()))
            .collect();
        if !refs.is_empty()
            && let Err(error) = connection.send_all(node2.now(), &refs)
        {
            log::debug!(
                "distribution: observer_backend answer to {} not sent: {error}",
                connection.peer.name
            );
        }
    }));
}

/// `spawn_link(ThisNode, observer_backend, fetch_stats, [Parent, Interval])`: see
/// `observer_backend/fetch_stats.rs`.
pub(in crate::dist::node) fn run_fetch_stats(
    node: &Arc<NodeInner>,
    connection: &Arc<Connection>,
    request: SpawnRequest,
) {
    fetch_stats::run(node, connection, request);
}

/// A spawn whose process ends at once with `reason` (arguments BEAM's process would
/// crash on): the pid is given, then the exit goes over the requested link and
/// monitor.
fn exit_at_once(
    node: &Arc<NodeInner>,
    connection: &Arc<Connection>,
    request: SpawnRequest,
    reason: Term,
) {
    let wire = node.wire_pid(node.runtime.inner.new_pid());
    accept(node, connection, &request, &wire);
    send_exit(node, connection, &request, &wire, &reason);
}

/// The description of a supervision tree shown as an application.
const TREE_DESCRIPTION: &str = "otp-threads supervision tree";

/// Each supervision tree (a supervisor no other supervisor started) as an application:
/// its root and its name.
fn tree_applications(snapshot: &Snapshot) -> Vec<(Pid, String)> {
    snapshot
        .tree_roots
        .iter()
        .filter_map(|root| snapshot.supervisor(root))
        .map(|supervisor| {
            let name = match &supervisor.registered_name {
                Some(name) => name.to_string(),
                None => format!("supervision_tree_{}", supervisor.pid.id()),
            };
            (supervisor.pid, name)
        })
        .collect()
}

fn which_applications(node: &NodeInner) -> Term {
    let version = charlist(env!("CARGO_PKG_VERSION"));
    tree_applications(&node.runtime.snapshot())
        .into_iter()
        .map(|(_, name)| (atom(&name), charlist(TREE_DESCRIPTION), version.clone()).to_term())
        .collect::<Vec<_>>()
        .to_term()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Term> {
        (0..n).map(|i| i.to_term()).collect()
    }

    fn sizes(n: usize, size: usize) -> Vec<usize> {
        batches(records(n), size).iter().map(Vec::len).collect()
    }

    // OTP's `procs_info`: `lists:split(10000, Pids)` while it succeeds, then the rest.
    #[test]
    fn batches_are_full_then_a_shorter_rest_as_beam_splits_them() {
        assert_eq!(sizes(0, 3), vec![0]);
        assert_eq!(sizes(2, 3), vec![2]);
        assert_eq!(sizes(3, 3), vec![3, 0]);
        assert_eq!(sizes(7, 3), vec![3, 3, 1]);
        assert_eq!(sizes(20_001, PROCS_INFO_BATCH), vec![10_000, 10_000, 1]);
        let flat: Vec<Term> = batches(records(7), 3).into_iter().flatten().collect();
        assert_eq!(flat, records(7));
    }
}

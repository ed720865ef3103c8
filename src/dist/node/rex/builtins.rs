//! The calls this node answers by itself over `rpc`, so that Erlang's tools
//! (`observer`, `observer_cli`, a shell's `rpc:call`) can look at it.
//!
//! A process here is an OS thread (a worker, or a plain thread's `Process`), so each
//! field is what it means for a thread:
//!
//! | Call | Answer |
//! |---|---|
//! | `erlang:node()` | this node's name |
//! | `erlang:nodes()`, `erlang:nodes(visible \| hidden \| connected \| this \| known)` and lists of those | the connected nodes of that kind, sorted |
//! | `erlang:processes()` | every live local process, in pid order |
//! | `erlang:registered()` | every registered name |
//! | `erlang:whereis(Name)` | the pid, or `undefined` |
//! | `erlang:is_process_alive(Pid)` | whether the local process is live |
//! | `erlang:process_info(Pid)` | BEAM's default item list (below); `undefined` for a dead pid |
//! | `erlang:process_info(Pid, Item \| [Item])` | `{Item, Value}` or a list of them; `undefined` for a dead pid; an unknown item raises `badarg` |
//! | `supervisor:which_children(Sup)` | `[{Id, Child, Type, Modules}]` of a Rust supervisor (pid or registered name) |
//! | `supervisor:count_children(Sup)` | `[{specs, N}, {active, N}, {supervisors, N}, {workers, N}]` |
//! | `erlang:memory()`, `erlang:memory(Item \| [Item])` | see below |
//! | `erlang:system_info(Item)` | see below; another item raises `badarg` |
//! | `erpc:execute_call(M, F, A)` | `{return, Value}` of that rpc (what an erpc request sent to rex runs) |
//! | `observer_backend:*`, `code:ensure_loaded/1`, `erlang:function_exported/3`, `application:which_applications/0,1` | what observer and etop call first; see `observer_backend.rs` |
//!
//! `process_info` items:
//! * `status`: `waiting` (a worker between messages, or blocked in a call — BEAM
//!   shows a process blocked in `gen_server:call` as waiting too), `running` (running
//!   a callback, or a plain thread running its own code); on a runtime with
//!   introspection off, where activity is not recorded, always `waiting`.
//! * `message_queue_len`: messages and signals in the mailbox not yet taken.
//! * `messages`: always `[]` (a mailbox is read only by its owner thread).
//! * `links`, `monitored_by`: pids; `monitors`: `[{process, Pid}]`.
//! * `registered_name`: the name; `[]` when not registered (`process_info(P, registered_name)`
//!   is then `[]`, and `process_info/1` leaves the item out, as BEAM does).
//! * `current_function`: `{Type, Callback, Arity}` while a worker runs a callback
//!   (also while it is blocked in a call from it), `{Type, receive, 0}` while it
//!   waits; `Type` is the worker's Rust type name as an atom. A plain thread:
//!   `{Thread, run, 0}`, `Thread` the OS thread's name.
//! * `initial_call`: `{Type, init, 1}` for a worker, `{Thread, run, 0}` for a plain thread.
//! * `dictionary`: `[{'$ancestors', Ancestors}, {'$initial_call', {Type, init, 1}}]`,
//!   the ancestors as OTP's `proc_lib` keeps them (nearest first, registered names
//!   where there are, up to the runtime's root).
//! * `reductions`: messages handled (calls, casts, infos, timers, DOWNs, EXITs).
//! * `trap_exit`: whether the worker traps exits.
//! * `group_leader`: the runtime's root pid; `priority`: `normal`; `error_handler`:
//!   `error_handler`; `suspending`: `[]`; `garbage_collection`: `[]`.
//! * `heap_size`, `total_heap_size`, `stack_size`, `memory`: `0` (a thread's memory is
//!   not accounted per process).
//! * `binary`, `sequential_trace_token`: `[]`; `catchlevel`, `trace`: `0`;
//!   `last_calls`: `false` (no refc binaries, catch frames, tracing or call saving;
//!   observer's process window asks for them).
//! * `current_stacktrace`: `[]`; `current_location`: `current_function` with `[]`
//!   appended. Ours: `thread`, the OS thread's name (a binary); `parent`, the pid
//!   that started the process.
//!
//! `which_children` lists the last started child first, as BEAM does. `Id` is the child spec's id as an atom (`undefined` for a
//! dynamic supervisor's children, as for `simple_one_for_one`); `Child` the pid or
//! `undefined` when not running; `Type` `supervisor` when the child is a supervisor,
//! else `worker`; `Modules` `[Type]` (the worker's Rust type name) or `[]`. A pid or
//! name that is no live supervisor exits with `noproc` as `gen_server:call` does.
//!
//! `memory`: `total` and `system` are the OS process's resident set size (from
//! `/proc/self/statm`; 0 where that is not readable); `processes`, `processes_used`,
//! `atom`, `atom_used`, `binary`, `code`, `ets` are `0` (threads' heaps are not
//! accounted per process).
//!
//! `system_info`: `process_count` (live processes), `process_limit` (the runtime's
//! `max_workers`, or 134217727 — BEAM's maximum — when unlimited), `otp_release`
//! (`"25"`: the OTP distribution protocol level this node speaks), `version` (this
//! crate's version), `system_version`, `machine` (`"otp-threads"`), `schedulers`,
//! `schedulers_online`, `logical_processors`, `logical_processors_available` (the
//! cores the OS gives this process), `wordsize` (bytes of a pointer),
//! `system_architecture`, `port_count` (0), `atom_count` (0), `thread_pool_size` (0),
//! `threads` (`true`), `smp_support` (`true`).

use std::sync::Arc;

use super::super::{NodeInner, Slot};
use super::{Exception, atom, proper_list};
use crate::dist::term::{FromTerm, Term, ToTerm};
use crate::observer::{ProcessInfo, ProcessStatus, Snapshot};
use crate::pid::Pid;

/// BEAM's largest `process_limit`, reported when `max_workers` is unlimited.
const BEAM_MAX_PROCESSES: usize = 134_217_727;

/// The items `process_info/1` gives, in BEAM's order.
const DEFAULT_ITEMS: &[&str] = &[
    "current_function",
    "initial_call",
    "status",
    "message_queue_len",
    "links",
    "dictionary",
    "trap_exit",
    "error_handler",
    "priority",
    "group_leader",
    "total_heap_size",
    "heap_size",
    "stack_size",
    "reductions",
    "garbage_collection",
    "suspending",
];

pub(super) type Answer = Option<Result<Term, Exception>>;

/// The built-ins cheap enough to run on a connection's reader: each reads one table
/// or one process (not a whole snapshot, not another rpc).
pub(super) fn is_light(module: &str, function: &str) -> bool {
    super::observer_backend::is_light(module, function)
        || matches!(
            (module, function),
            (
                "erlang",
                "node"
                    | "nodes"
                    | "processes"
                    | "registered"
                    | "whereis"
                    | "is_process_alive"
                    | "process_info"
                    | "memory"
                    | "system_info"
            )
        )
}

/// `module:function(args)` if it is a built-in; `None` if it is not one.
pub(super) fn apply(node: &Arc<NodeInner>, module: &str, function: &str, args: &[Term]) -> Answer {
    // What Erlang's observer and etop call (`observer_backend.rs`).
    if let Some(answer) = super::observer_backend::apply(node, module, function, args) {
        return Some(answer);
    }
    let answer = match (module, function, args) {
        ("erlang", "node", []) => Ok(atom(&node.name)),
        ("erlang", "nodes", []) => Ok(nodes(node, &["visible"])),
        ("erlang", "nodes", [kinds]) => node_kinds(kinds).map(|kinds| {
            let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
            nodes(node, &kinds)
        }),
        ("erlang", "processes", []) => Ok(node.runtime.processes().to_term()),
        ("erlang", "registered", []) => Ok(node
            .runtime
            .registered()
            .iter()
            .map(|name| atom(name))
            .collect::<Vec<_>>()
            .to_term()),
        ("erlang", "whereis", [Term::Atom(name)]) => Ok(node
            .runtime
            .whereis(&name.name)
            .map_or_else(|| atom("undefined"), |pid| pid.to_term())),
        ("erlang", "is_process_alive", [pid]) => {
            local_pid(node, pid).map(|pid| node.runtime.is_alive(&pid).to_term())
        }
        ("erlang", "process_info", [pid]) => local_pid(node, pid).map(|pid| {
            match node.runtime.process_info(&pid) {
                None => atom("undefined"),
                Some(info) => {
                    let mut items: Vec<&str> = DEFAULT_ITEMS.to_vec();
                    if info.registered_name.is_some() {
                        // BEAM lists the name first when there is one.
                        items.insert(0, "registered_name");
                    }
                    let described = items
                        .iter()
                        .filter_map(|item| process_item(node, &info, item))
                        .collect::<Vec<_>>();
                    described.to_term()
                }
            }
        }),
        ("erlang", "process_info", [pid, items]) => process_info_items(node, pid, items),
        ("supervisor", "which_children", [reference]) => {
            supervisor(node, reference, "which_children")
                .map(|(snapshot, pid)| which_children(&snapshot, &pid))
        }
        ("supervisor", "count_children", [reference]) => {
            supervisor(node, reference, "count_children")
                .map(|(snapshot, pid)| count_children(&snapshot, &pid))
        }
        ("erlang", "memory", []) => Ok(MEMORY_ITEMS
            .iter()
            .map(|item| (atom(item), memory_item(item).unwrap_or(0)).to_term())
            .collect::<Vec<_>>()
            .to_term()),
        ("erlang", "memory", [Term::Atom(item)]) => memory_item(&item.name)
            .map(|bytes| bytes.to_term())
            .ok_or_else(Exception::badarg),
        ("erlang", "memory", [items]) => memory_items(items),
        ("erlang", "system_info", [Term::Atom(item)]) => {
            system_info(node, &item.name).ok_or_else(Exception::badarg)
        }
        // What rex runs for an erpc request that reached it as a plain rex call.
        ("erpc", "execute_call", [Term::Atom(m), Term::Atom(f), a]) => match proper_list(a.clone())
        {
            Some(args) => match super::apply(node, &m.name, &f.name, args) {
                super::Applied::Return(value) => Ok((atom("return"), value).to_term()),
                super::Applied::Raised { exception, .. } => Err(exception),
            },
            None => Err(Exception::badarg()),
        },
        ("erlang", "system_info" | "whereis" | "memory", _)
        | ("erlang", "process_info" | "is_process_alive", _)
        | ("erlang", "node" | "nodes" | "processes" | "registered", _)
        | ("supervisor", "which_children" | "count_children", _) => Err(Exception::badarg()),
        _ => return None,
    };
    Some(answer)
}

/// A pid argument that names a local process (a pid of another node is `badarg`,
/// as BEAM's `process_info` of a remote pid is).
fn local_pid(node: &NodeInner, term: &Term) -> Result<Pid, Exception> {
    match term {
        Term::Pid(pid) if pid.node.name == node.name => {
            Pid::from_term(term.clone()).map_err(|_| Exception::badarg())
        }
        _ => Err(Exception::badarg()),
    }
}

fn node_kinds(kinds: &Term) -> Result<Vec<String>, Exception> {
    let names = match kinds {
        Term::Atom(kind) => vec![kind.name.clone()],
        other => proper_list(other.clone())
            .ok_or_else(Exception::badarg)?
            .into_iter()
            .map(|kind| match kind {
                Term::Atom(kind) => Ok(kind.name),
                _ => Err(Exception::badarg()),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let known = ["visible", "hidden", "connected", "this", "known"];
    if names.iter().all(|name| known.contains(&name.as_str())) {
        Ok(names)
    } else {
        Err(Exception::badarg())
    }
}

/// The connected nodes of the given kinds (`this` and `known` add this node).
fn nodes(node: &NodeInner, kinds: &[&str]) -> Term {
    let wants = |kind: &str| kinds.contains(&kind);
    let mut names: Vec<String> = node
        .connections
        .lock()
        .iter()
        .filter_map(|(name, slot)| match slot {
            Slot::Up(connection) => {
                let visible = connection.peer.is_visible();
                let listed = wants("connected")
                    || wants("known")
                    || (visible && wants("visible"))
                    || (!visible && wants("hidden"));
                listed.then(|| name.clone())
            }
            _ => None,
        })
        .collect();
    names.sort();
    if wants("this") || wants("known") {
        names.insert(0, node.name.clone());
    }
    names
        .iter()
        .map(|name| atom(name))
        .collect::<Vec<_>>()
        .to_term()
}

fn process_info_items(node: &Arc<NodeInner>, pid: &Term, items: &Term) -> Result<Term, Exception> {
    let pid = local_pid(node, pid)?;
    let (names, single) = match items {
        Term::Atom(item) => (vec![item.name.clone()], true),
        other => (
            proper_list(other.clone())
                .ok_or_else(Exception::badarg)?
                .into_iter()
                .map(|item| match item {
                    Term::Atom(item) => Ok(item.name),
                    _ => Err(Exception::badarg()),
                })
                .collect::<Result<Vec<_>, _>>()?,
            false,
        ),
    };
    // An unknown item is badarg even for a dead pid, as in BEAM.
    if let Some(unknown) = names.iter().find(|name| !is_known_item(name)) {
        log::debug!("distribution: process_info item {unknown} is not answered");
        return Err(Exception::badarg());
    }
    let Some(info) = node.runtime.process_info(&pid) else {
        return Ok(atom("undefined"));
    };
    if single
        && names.first().map(String::as_str) == Some("registered_name")
        && info.registered_name.is_none()
    {
        // `process_info(Pid, registered_name)` of an unnamed process is `[]`.
        return Ok(Term::from(eetf::List::nil()));
    }
    let mut described: Vec<Term> = names
        .iter()
        .filter_map(|name| process_item(node, &info, name))
        .collect();
    if single {
        Ok(described
            .pop()
            .unwrap_or_else(|| Term::from(eetf::List::nil())))
    } else {
        Ok(described.to_term())
    }
}

fn is_known_item(name: &str) -> bool {
    DEFAULT_ITEMS.contains(&name)
        || matches!(
            name,
            "registered_name"
                | "monitors"
                | "monitored_by"
                | "messages"
                | "memory"
                | "current_stacktrace"
                | "current_location"
                | "thread"
                | "parent"
                | "binary"
                | "catchlevel"
                | "last_calls"
                | "sequential_trace_token"
                | "trace"
        )
}

/// The worker's type (or the plain thread's name) as an atom's text.
fn type_atom(info: &ProcessInfo) -> String {
    match info.type_name {
        Some(type_name) => type_name.to_owned(),
        None => info
            .thread_name
            .clone()
            .unwrap_or_else(|| "plain_thread".to_owned()),
    }
}

pub(super) fn initial_call(info: &ProcessInfo) -> Term {
    if info.type_name.is_some() {
        (atom(&type_atom(info)), atom("init"), 1u8).to_term()
    } else {
        (atom(&type_atom(info)), atom("run"), 0u8).to_term()
    }
}

pub(super) fn current_function(info: &ProcessInfo) -> Term {
    let module = atom(&type_atom(info));
    let callback = match &info.status {
        ProcessStatus::Running { callback, .. } => Some(*callback),
        ProcessStatus::Calling { callback, .. } => *callback,
        ProcessStatus::Waiting => return (module, atom("receive"), 0u8).to_term(),
        ProcessStatus::PlainThread | ProcessStatus::Unrecorded => None,
    };
    match callback {
        // Every callback but `init` (1 argument) takes the message, a reply handle or
        // the state, and the context.
        Some(callback) => {
            let arity: u8 = match callback {
                crate::observer::Callback::Init => 1,
                crate::observer::Callback::Terminate => 2,
                _ => 3,
            };
            (module, atom(callback.as_str()), arity).to_term()
        }
        None => (module, atom("run"), 0u8).to_term(),
    }
}

/// `$ancestors`: the parent chain, nearest first, names where registered, up to (and
/// including) the runtime's root.
fn ancestors(node: &NodeInner, info: &ProcessInfo) -> Term {
    let root = node.runtime.root_pid();
    let mut chain = Vec::new();
    let mut next = info.parent;
    // Bounded: a parent chain cannot be longer than the process table.
    for _ in 0..=node.runtime.process_count() {
        if next == root {
            chain.push(root.to_term());
            break;
        }
        match node.runtime.process_info(&next) {
            Some(parent) => {
                chain.push(match &parent.registered_name {
                    Some(name) => atom(name),
                    None => next.to_term(),
                });
                next = parent.parent;
            }
            None => {
                chain.push(next.to_term());
                break;
            }
        }
    }
    chain.to_term()
}

fn process_item(node: &NodeInner, info: &ProcessInfo, item: &str) -> Option<Term> {
    let nil = || Term::from(eetf::List::nil());
    let value = match item {
        // `[]` when not registered, as BEAM answers in an item list.
        "registered_name" => match &info.registered_name {
            Some(name) => atom(name),
            None => nil(),
        },
        "current_function" => current_function(info),
        "current_location" => {
            let Term::Tuple(mfa) = current_function(info) else {
                return None;
            };
            let mut elements = mfa.elements;
            elements.push(nil());
            Term::from(eetf::Tuple::from(elements))
        }
        "initial_call" => initial_call(info),
        "status" => atom(match info.status {
            // Introspection off: not recorded; an idle worker, the usual case, waits.
            ProcessStatus::Waiting | ProcessStatus::Calling { .. } | ProcessStatus::Unrecorded => {
                "waiting"
            }
            ProcessStatus::Running { .. } | ProcessStatus::PlainThread => "running",
        }),
        "message_queue_len" => info.mailbox_len.to_term(),
        "messages"
        | "current_stacktrace"
        | "suspending"
        | "garbage_collection"
        | "binary"
        | "sequential_trace_token" => nil(),
        // No catch frames, call saving or tracing of threads (observer's process
        // window asks for these).
        "catchlevel" | "trace" => 0u8.to_term(),
        "last_calls" => false.to_term(),
        "links" => info.links.to_term(),
        "monitors" => info
            .monitors
            .iter()
            .map(|pid| (atom("process"), pid.to_term()).to_term())
            .collect::<Vec<_>>()
            .to_term(),
        "monitored_by" => info.monitored_by.to_term(),
        "dictionary" => vec![
            (atom("$ancestors"), ancestors(node, info)).to_term(),
            (atom("$initial_call"), initial_call(info)).to_term(),
        ]
        .to_term(),
        "trap_exit" => info.trap_exit.to_term(),
        "error_handler" => atom("error_handler"),
        "priority" => atom("normal"),
        "group_leader" => node.runtime.root_pid().to_term(),
        "total_heap_size" | "heap_size" | "stack_size" | "memory" => 0u8.to_term(),
        "reductions" => info.messages_handled.to_term(),
        "thread" => info.thread_name.clone().unwrap_or_default().to_term(),
        "parent" => info.parent.to_term(),
        _ => return None,
    };
    Some((atom(item), value).to_term())
}

/// The supervisor a `SupRef` names (pid, registered name or `{Name, Node}` of this
/// node), with a snapshot to read it from; else the exit `gen_server:call` gives.
fn supervisor(
    node: &NodeInner,
    reference: &Term,
    request: &str,
) -> Result<(Snapshot, Pid), Exception> {
    let noproc = || {
        Exception::Exit(
            (
                atom("noproc"),
                (
                    atom("gen_server"),
                    atom("call"),
                    vec![reference.clone(), atom(request), atom("infinity")],
                ),
            )
                .to_term(),
        )
    };
    let pid = match reference {
        Term::Pid(_) => local_pid(node, reference)?,
        Term::Atom(name) => node.runtime.whereis(&name.name).ok_or_else(noproc)?,
        Term::Tuple(pair) => match pair.elements.as_slice() {
            [Term::Atom(name), Term::Atom(at)] if at.name == node.name => {
                node.runtime.whereis(&name.name).ok_or_else(noproc)?
            }
            _ => return Err(noproc()),
        },
        _ => return Err(Exception::badarg()),
    };
    let snapshot = node.runtime.snapshot();
    if snapshot.supervisor(&pid).is_none() {
        return Err(noproc());
    }
    Ok((snapshot, pid))
}

fn which_children(snapshot: &Snapshot, supervisor: &Pid) -> Term {
    let Some(node) = snapshot.supervisor(supervisor) else {
        return Term::from(eetf::List::nil());
    };
    // BEAM lists the last started child first.
    node.children
        .iter()
        .rev()
        .map(|child| {
            let id = if child.restarts.is_none() {
                atom("undefined")
            } else {
                atom(&child.id)
            };
            let is_supervisor = child
                .pid
                .is_some_and(|pid| snapshot.supervisor(&pid).is_some());
            let modules: Vec<Term> = child
                .pid
                .and_then(|pid| snapshot.process(&pid))
                .and_then(|info| info.type_name)
                .map(|name| vec![atom(name)])
                .unwrap_or_default();
            (
                id,
                child
                    .pid
                    .map_or_else(|| atom("undefined"), |pid| pid.to_term()),
                atom(if is_supervisor {
                    "supervisor"
                } else {
                    "worker"
                }),
                modules,
            )
                .to_term()
        })
        .collect::<Vec<_>>()
        .to_term()
}

fn count_children(snapshot: &Snapshot, supervisor: &Pid) -> Term {
    let children = snapshot
        .supervisor(supervisor)
        .map(|node| node.children.as_slice())
        .unwrap_or_default();
    let active = children.iter().filter(|child| child.pid.is_some()).count();
    let supervisors = children
        .iter()
        .filter(|child| {
            child
                .pid
                .is_some_and(|pid| snapshot.supervisor(&pid).is_some())
        })
        .count();
    vec![
        (atom("specs"), children.len()).to_term(),
        (atom("active"), active).to_term(),
        (atom("supervisors"), supervisors).to_term(),
        (atom("workers"), children.len().saturating_sub(supervisors)).to_term(),
    ]
    .to_term()
}

pub(super) const MEMORY_ITEMS: &[&str] = &[
    "total",
    "processes",
    "processes_used",
    "system",
    "atom",
    "atom_used",
    "binary",
    "code",
    "ets",
];

/// Bytes for a `memory` item; `None` for an unknown item.
pub(super) fn memory_item(item: &str) -> Option<u64> {
    match item {
        "total" | "system" => Some(resident_bytes().unwrap_or(0)),
        "processes" | "processes_used" | "atom" | "atom_used" | "binary" | "code" | "ets" => {
            Some(0)
        }
        _ => None,
    }
}

fn memory_items(items: &Term) -> Result<Term, Exception> {
    let items = proper_list(items.clone()).ok_or_else(Exception::badarg)?;
    items
        .into_iter()
        .map(|item| match item {
            Term::Atom(item) => memory_item(&item.name)
                .map(|bytes| (atom(&item.name), bytes).to_term())
                .ok_or_else(Exception::badarg),
            _ => Err(Exception::badarg()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|items| items.to_term())
}

/// The resident set size of this OS process (Linux `/proc/self/statm`, in pages of
/// 4 KiB).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(4096)
}

fn charlist(text: &str) -> Term {
    Term::from(eetf::ByteList::from(text))
}

pub(super) fn system_info(node: &NodeInner, item: &str) -> Option<Term> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some(match item {
        "process_count" => node.runtime.process_count().to_term(),
        "process_limit" => {
            let limit = node.runtime.inner.worker_slots.limit();
            (if limit == usize::MAX {
                BEAM_MAX_PROCESSES
            } else {
                limit
            })
            .to_term()
        }
        "otp_release" => charlist("25"),
        "version" => charlist(env!("CARGO_PKG_VERSION")),
        "system_version" => charlist(&format!(
            "otp-threads {} (Rust, OS threads) speaking the OTP 25 distribution protocol\n",
            env!("CARGO_PKG_VERSION")
        )),
        "machine" => charlist("otp-threads"),
        "schedulers"
        | "schedulers_online"
        | "logical_processors"
        | "logical_processors_available"
        | "logical_processors_online" => cores.to_term(),
        "wordsize" => std::mem::size_of::<usize>().to_term(),
        "system_architecture" => charlist(&format!(
            "{}-{}",
            std::env::consts::ARCH,
            std::env::consts::OS
        )),
        "port_count" | "atom_count" | "thread_pool_size" => 0u8.to_term(),
        "threads" | "smp_support" => true.to_term(),
        _ => return None,
    })
}

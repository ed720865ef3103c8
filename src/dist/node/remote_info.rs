//! `process_info` of a process on any node, asked over rpc.
//!
//! Contract: [`Node::process_info`] asks the pid's node
//! `erlang:process_info(Pid, Items)` with the items of [`ITEMS`] (through that node's
//! rex: a BEAM node, or a node of ours answering with `rex/builtins.rs`), and reads
//! the answer into a [`RemoteProcessInfo`]. A pid of this node is answered locally
//! by the same code. A dead process is `Ok(None)` (`undefined`); a failed rpc is
//! [`DistError::BadRpc`] with its reason; an answer of the wrong shape is a typed
//! [`DistError::Mismatch`], never a panic ([`decode_process_info`] is fuzzed).

use std::time::Duration;

use super::Node;
use super::rex::{self, atom, proper_list};
use crate::dist::error::DistError;
use crate::dist::term::{FromTerm, Term, ToTerm};
use crate::pid::Pid;

/// The items asked for, in order.
pub const ITEMS: &[&str] = &[
    "registered_name",
    "status",
    "message_queue_len",
    "links",
    "monitors",
    "monitored_by",
    "current_function",
    "initial_call",
    "reductions",
    "trap_exit",
];

/// A module, function and arity (`{M, F, A}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mfa {
    /// The module (for a Rust worker: its type name).
    pub module: String,
    /// The function (for a Rust worker: the callback).
    pub function: String,
    /// The arity.
    pub arity: u32,
}

/// A process of some node, as `erlang:process_info/2` there describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteProcessInfo {
    /// The process.
    pub pid: Pid,
    /// Its registered name.
    pub registered_name: Option<String>,
    /// `waiting`, `running`, `runnable`, `exiting`, `garbage_collecting`, `suspended`.
    pub status: String,
    /// Messages in its queue.
    pub message_queue_len: u64,
    /// The processes it is linked to (ports left out).
    pub links: Vec<Pid>,
    /// The processes it monitors by pid (monitors by name and of ports left out).
    pub monitors: Vec<Pid>,
    /// The processes monitoring it (ports left out).
    pub monitored_by: Vec<Pid>,
    /// The function it runs now; `None` where the node cannot say (`undefined`).
    pub current_function: Option<Mfa>,
    /// The function it was started with.
    pub initial_call: Option<Mfa>,
    /// BEAM's reductions; for a Rust process, messages handled.
    pub reductions: u64,
    /// Whether it traps exits.
    pub trap_exit: bool,
}

fn mfa(term: Term) -> Result<Option<Mfa>, DistError> {
    match term {
        Term::Atom(a) if a.name == "undefined" => Ok(None),
        Term::Tuple(tuple) => match <[Term; 3]>::try_from(tuple.elements) {
            Ok([Term::Atom(module), Term::Atom(function), arity]) => Ok(Some(Mfa {
                module: module.name,
                function: function.name,
                arity: u32::from_term(arity)?,
            })),
            Ok(elements) => Err(DistError::mismatch(
                "{Module, Function, Arity}",
                Term::from(eetf::Tuple::from(elements.to_vec())),
            )),
            Err(elements) => Err(DistError::mismatch(
                "{Module, Function, Arity}",
                Term::from(eetf::Tuple::from(elements)),
            )),
        },
        other => Err(DistError::mismatch("{Module, Function, Arity}", other)),
    }
}

fn pids(term: Term) -> Result<Vec<Pid>, DistError> {
    let items = proper_list(term.clone()).ok_or_else(|| DistError::mismatch("a list", term))?;
    Ok(items
        .into_iter()
        .filter_map(|item| match item {
            Term::Pid(_) => Pid::from_term(item).ok(),
            _ => None,
        })
        .collect())
}

fn monitored_pids(term: Term) -> Result<Vec<Pid>, DistError> {
    let items = proper_list(term.clone()).ok_or_else(|| DistError::mismatch("a list", term))?;
    Ok(items
        .into_iter()
        .filter_map(|item| match item {
            Term::Tuple(pair) => match <[Term; 2]>::try_from(pair.elements) {
                Ok([Term::Atom(kind), target @ Term::Pid(_)]) if kind.name == "process" => {
                    Pid::from_term(target).ok()
                }
                _ => None,
            },
            _ => None,
        })
        .collect())
}

/// Reads the answer to `erlang:process_info(Pid, ITEMS)`: `undefined` → `None`, an
/// `{Item, Value}` list → the info (items it lacks keep their defaults), anything else
/// a typed error.
pub fn decode_process_info(pid: Pid, answer: Term) -> Result<Option<RemoteProcessInfo>, DistError> {
    if let Term::Atom(a) = &answer
        && a.name == "undefined"
    {
        return Ok(None);
    }
    if let Term::Tuple(tuple) = &answer
        && let [Term::Atom(tag), reason] = tuple.elements.as_slice()
        && tag.name == "badrpc"
    {
        return Err(DistError::BadRpc(reason.clone()));
    }
    let items = proper_list(answer.clone())
        .ok_or_else(|| DistError::mismatch("a process_info list", answer))?;
    let mut info = RemoteProcessInfo {
        pid,
        registered_name: None,
        status: String::new(),
        message_queue_len: 0,
        links: Vec::new(),
        monitors: Vec::new(),
        monitored_by: Vec::new(),
        current_function: None,
        initial_call: None,
        reductions: 0,
        trap_exit: false,
    };
    for item in items {
        let Term::Tuple(pair) = item else {
            return Err(DistError::mismatch("{Item, Value}", item));
        };
        let [Term::Atom(key), value] =
            <[Term; 2]>::try_from(pair.elements).map_err(|elements| {
                DistError::mismatch("{Item, Value}", Term::from(eetf::Tuple::from(elements)))
            })?
        else {
            return Err(DistError::malformed(
                "process_info answer",
                "an item that is not an atom",
            ));
        };
        match key.name.as_str() {
            "registered_name" => {
                info.registered_name = match value {
                    Term::Atom(name) => Some(name.name),
                    // `[]`: not registered.
                    _ => None,
                }
            }
            "status" => {
                info.status = crate::dist::term::Atom::from_term(value)?
                    .as_str()
                    .to_owned()
            }
            "message_queue_len" => info.message_queue_len = u64::from_term(value)?,
            "links" => info.links = pids(value)?,
            "monitors" => info.monitors = monitored_pids(value)?,
            "monitored_by" => info.monitored_by = pids(value)?,
            "current_function" => info.current_function = mfa(value)?,
            "initial_call" => info.initial_call = mfa(value)?,
            "reductions" => info.reductions = u64::from_term(value)?,
            "trap_exit" => info.trap_exit = bool::from_term(value)?,
            // Items we did not ask for are ignored.
            _ => {}
        }
    }
    Ok(Some(info))
}

impl Node {
    /// `erlang:process_info(Pid, Items)` for a process of any node, this one included,
    /// asked over rpc with `timeout` (see the module docs for the items).
    pub fn process_info(
        &self,
        pid: &Pid,
        timeout: Duration,
    ) -> Result<Option<RemoteProcessInfo>, DistError> {
        let items: Vec<Term> = ITEMS.iter().map(|item| atom(item)).collect();
        let args = vec![pid.to_term(), items.to_term()];
        let answer = if pid.node() == self.inner.node {
            rex::apply(&self.inner, "erlang", "process_info", args).into_rex_reply()
        } else {
            self.rpc(pid.node().as_str(), "erlang", "process_info", args, timeout)?
        };
        decode_process_info(*pid, answer)
    }
}

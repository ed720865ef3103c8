//! What is monitored (a pid or `{name, node}`), the reference a monitor returns, the
//! DOWN it ends with, and who receives it.

use std::fmt;
use std::sync::Arc;

use crossbeam_channel::Sender;
use otp_threads::dist::{Atom, DistError, FromTerm, Term, ToTerm};
use otp_threads::{ExitReason, Pid, ProcessRef, Worker, WorkerRef};

/// A monitored process: a pid, or a registered name on a node (`{Name, Node}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A process.
    Pid(Pid),
    /// `{Name, Node}`.
    Name {
        /// The registered name.
        name: String,
        /// The node it is registered on.
        node: String,
    },
}

impl Target {
    /// `{name, node}`.
    pub fn name(name: impl Into<String>, node: impl Into<String>) -> Target {
        Target::Name {
            name: name.into(),
            node: node.into(),
        }
    }

    /// The node the target lives on (zen_monitor's `find_node`).
    pub fn node(&self) -> &str {
        match self {
            Target::Pid(pid) => pid.node().as_str(),
            Target::Name { node, .. } => node,
        }
    }

    /// The node, interned (a pid carries it already).
    pub(crate) fn node_name(&self) -> otp_threads::NodeName {
        match self {
            Target::Pid(pid) => pid.node(),
            Target::Name { node, .. } => otp_threads::NodeName::new(node),
        }
    }
}

impl From<Pid> for Target {
    fn from(pid: Pid) -> Self {
        Target::Pid(pid)
    }
}

impl ToTerm for Target {
    fn to_term(&self) -> Term {
        match self {
            Target::Pid(pid) => pid.to_term(),
            Target::Name { name, node } => crate::wire::tuple(vec![
                Atom::new(name.as_str()).to_term(),
                Atom::new(node.as_str()).to_term(),
            ]),
        }
    }
}

impl FromTerm for Target {
    fn from_term(term: Term) -> Result<Self, DistError> {
        match term {
            Term::Pid(_) => Pid::from_term(term).map(Target::Pid),
            Term::Tuple(tuple) if tuple.elements.len() == 2 => {
                let (name, node): (Atom, Atom) = FromTerm::from_term(Term::from(tuple))?;
                Ok(Target::Name {
                    name: name.as_str().to_owned(),
                    node: node.as_str().to_owned(),
                })
            }
            other => Err(crate::wire::mismatch("a pid or {Name, Node}", other)),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pid(pid) => write!(f, "{pid}"),
            Target::Name { name, node } => write!(f, "{{{name}, {node}}}"),
        }
    }
}

/// The reference [`ZenMonitor::monitor`](crate::ZenMonitor::monitor) returns; unique
/// within one zen monitor.
/// (`ZenRef::default()` is never returned by `monitor`: references start at 1.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZenRef(pub(crate) u64);

/// Why a zen monitor fired: the Rust form of `{zen_monitor, Reason}` (or, for a target
/// on the local node, of an ordinary DOWN's reason).
#[derive(Clone, Debug, PartialEq)]
pub enum ZenReason {
    /// `{zen_monitor, Reason}`: the remote process exited with `Reason` (truncated by
    /// the remote Proxy). Shared: every monitor of the target gets the same one, and a
    /// DOWN stays small (it is moved through channels a million times in a nodedown).
    Exited(Arc<Term>),
    /// `{zen_monitor, noproc}`: the target did not exist when the remote Proxy monitored it.
    NoProc,
    /// `{zen_monitor, nodedown}`: the remote node went down, is incompatible (no Proxy
    /// answers `pong`), or its Proxy died.
    NodeDown,
    /// A target on the local node: an ordinary monitor's reason, not wrapped.
    Local(ExitReason),
}

impl ZenReason {
    /// `{zen_monitor, Reason}` for a process that exited with `reason`.
    pub fn exited(reason: Term) -> ZenReason {
        ZenReason::Exited(Arc::new(reason))
    }

    /// The reason a dead summary carries, typed.
    pub(crate) fn from_certificate(reason: Term) -> ZenReason {
        match &reason {
            Term::Atom(atom) if atom.name == "noproc" => ZenReason::NoProc,
            Term::Atom(atom) if atom.name == "nodedown" => ZenReason::NodeDown,
            _ => ZenReason::Exited(Arc::new(reason)),
        }
    }

    /// The reason as zen_monitor puts it in a DOWN: `{zen_monitor, Reason}` (a local
    /// target's reason as the runtime sends it).
    pub fn to_term(&self) -> Term {
        let inner = match self {
            ZenReason::Exited(term) => Term::clone(term),
            ZenReason::NoProc => Atom::from("noproc").to_term(),
            ZenReason::NodeDown => Atom::from("nodedown").to_term(),
            ZenReason::Local(reason) => return crate::wire::exit_reason_to_term(reason),
        };
        crate::wire::tuple(vec![Atom::from("zen_monitor").to_term(), inner])
    }
}

/// `{'DOWN', Ref, process, Target, {zen_monitor, Reason}}`, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct ZenDown {
    /// The monitor's reference.
    pub reference: ZenRef,
    /// What was monitored.
    pub target: Target,
    /// Why it fired.
    pub reason: ZenReason,
}

/// Who gets a monitor's DOWN: a worker (into `handle_info`), a plain-thread process,
/// or a channel. `deliver` returns `false` when the receiver is gone.
pub trait Subscriber: Send + Sync + 'static {
    /// The subscriber's pid: its monitors are removed when that process ends.
    fn pid(&self) -> Pid;
    /// Hands the DOWN over.
    fn deliver(&self, down: ZenDown) -> bool;

    /// Hands over several DOWNs at once, in order (the Dispatcher gives each subscriber
    /// its DOWNs of one round together). By default one [`deliver`](Self::deliver) each;
    /// a subscriber that can take them as one message (a [`BatchChannelSubscriber`])
    /// saves a channel operation per DOWN.
    fn deliver_batch(&self, downs: Vec<ZenDown>) -> bool {
        let mut delivered = true;
        for down in downs {
            delivered &= self.deliver(down);
        }
        delivered
    }
}

impl<W: Worker> Subscriber for WorkerRef<W>
where
    W::Info: From<ZenDown>,
{
    fn pid(&self) -> Pid {
        WorkerRef::pid(self)
    }

    fn deliver(&self, down: ZenDown) -> bool {
        self.try_send(down.into()).is_ok()
    }
}

impl<M: Send + 'static + From<ZenDown>> Subscriber for ProcessRef<M> {
    fn pid(&self) -> Pid {
        ProcessRef::pid(self)
    }

    fn deliver(&self, down: ZenDown) -> bool {
        self.try_send(down.into()).is_ok()
    }
}

/// A channel subscriber, standing for the process `pid` (its monitors end with it).
pub struct ChannelSubscriber {
    /// The process the channel stands for.
    pub pid: Pid,
    /// Where DOWNs go.
    pub sender: Sender<ZenDown>,
}

impl Subscriber for ChannelSubscriber {
    fn pid(&self) -> Pid {
        self.pid
    }

    fn deliver(&self, down: ZenDown) -> bool {
        self.sender.send(down).is_ok()
    }
}

/// A channel subscriber that receives DOWNs in batches, standing for the process `pid`:
/// each Dispatcher round sends the DOWNs it has for this subscriber as one `Vec`, in
/// order (a nodedown of a million monitors is one message, not a million).
pub struct BatchChannelSubscriber {
    /// The process the channel stands for.
    pub pid: Pid,
    /// Where the batches go.
    pub sender: Sender<Vec<ZenDown>>,
}

impl Subscriber for BatchChannelSubscriber {
    fn pid(&self) -> Pid {
        self.pid
    }

    fn deliver(&self, down: ZenDown) -> bool {
        self.sender.send(vec![down]).is_ok()
    }

    fn deliver_batch(&self, downs: Vec<ZenDown>) -> bool {
        self.sender.send(downs).is_ok()
    }
}

/// A subscriber shared by all its monitors.
pub type SharedSubscriber = Arc<dyn Subscriber>;

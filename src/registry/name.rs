//! Calls, casts and messages by registered name, as `gen_server:call(Name, Request)`,
//! `gen_server:cast(Name, Request)` and `Name ! Message`.
//!
//! A [`RegisteredName`] is Erlang's `Name` or `{Name, Node}`. It is resolved at each
//! use, so that a name that moved to a restarted process reaches the new one. The
//! results follow `gen_server`:
//!
//! | operation | name registered | name not registered | `{Name, Node}` of another node |
//! |---|---|---|---|
//! | `call_name` | the reply, or the call's error | `NoProc`, at once | `NoConnection` (no distribution yet) |
//! | `cast_name` | delivered (dropped if the process is dead) | dropped | dropped |
//! | `send_name` | delivered (dropped if the process is dead) | `NoProc` (Erlang's `badarg`) | dropped |
//!
//! A name that belongs to a worker of another type is `WrongWorkerType` for
//! `call_name` and `send_name`; `cast_name`, which never fails, drops the cast and logs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::pid::{NodeName, Pid};
use crate::runtime::RuntimeHandle;
use crate::worker::{Worker, WorkerRef};

/// A registered name, on this node or on a named node: Erlang's `Name` or
/// `{Name, Node}`.
///
/// Made from a `&str` or `String` (a local name), or with [`on_node`](Self::on_node).
/// A name on this runtime's own node is the local name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RegisteredName {
    name: Arc<str>,
    node: Option<NodeName>,
}

impl RegisteredName {
    /// A name registered on the local node.
    pub fn local(name: &str) -> RegisteredName {
        RegisteredName {
            name: name.into(),
            node: None,
        }
    }

    /// A name registered on `node` (`{Name, Node}`).
    pub fn on_node(name: &str, node: NodeName) -> RegisteredName {
        RegisteredName {
            name: name.into(),
            node: Some(node),
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node, if one was given.
    pub fn node(&self) -> Option<NodeName> {
        self.node
    }
}

impl From<&str> for RegisteredName {
    fn from(name: &str) -> Self {
        RegisteredName::local(name)
    }
}

impl From<String> for RegisteredName {
    fn from(name: String) -> Self {
        RegisteredName {
            name: name.into(),
            node: None,
        }
    }
}

impl From<(&str, NodeName)> for RegisteredName {
    fn from((name, node): (&str, NodeName)) -> Self {
        RegisteredName::on_node(name, node)
    }
}

impl fmt::Debug for RegisteredName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for RegisteredName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node {
            None => write!(f, "{}", self.name),
            Some(node) => write!(f, "{{{}, {node}}}", self.name),
        }
    }
}

/// Where a name leads now.
enum Resolved {
    Local(Pid),
    Unregistered,
    OtherNode(NodeName),
}

impl RuntimeHandle {
    fn resolve(&self, name: &RegisteredName) -> Resolved {
        match name.node {
            Some(node) if node != self.node() => Resolved::OtherNode(node),
            _ => match self.whereis(&name.name) {
                Some(pid) => Resolved::Local(pid),
                None => Resolved::Unregistered,
            },
        }
    }

    /// The worker `name` leads to now, typed.
    fn named_worker<W: Worker>(&self, name: &RegisteredName) -> Result<WorkerRef<W>, Error> {
        match self.resolve(name) {
            Resolved::Local(pid) => self.worker_ref(&pid),
            Resolved::Unregistered => Err(Error::NoProc),
            Resolved::OtherNode(node) => Err(Error::NoConnection(node.to_string())),
        }
    }

    /// Calls the worker registered as `name` with the runtime's default timeout
    /// (`gen_server:call(Name, Request)`). Nobody under that name fails at once with
    /// [`Error::NoProc`].
    pub fn call_name<W: Worker>(
        &self,
        name: impl Into<RegisteredName>,
        request: W::Call,
    ) -> Result<W::Reply, Error> {
        self.call_name_timeout::<W>(name, request, self.inner.call_timeout)
    }

    /// [`call_name`](Self::call_name) with a timeout (`Duration::MAX` waits forever).
    pub fn call_name_timeout<W: Worker>(
        &self,
        name: impl Into<RegisteredName>,
        request: W::Call,
        timeout: Duration,
    ) -> Result<W::Reply, Error> {
        self.named_worker::<W>(&name.into())?
            .call_timeout(request, timeout)
    }

    /// Casts to the worker registered as `name` (`gen_server:cast(Name, Request)`):
    /// never fails; with nobody under that name the cast is dropped.
    pub fn cast_name<W: Worker>(&self, name: impl Into<RegisteredName>, message: W::Cast) {
        let name = name.into();
        match self.named_worker::<W>(&name) {
            Ok(worker) => worker.cast(message),
            Err(Error::WrongWorkerType(pid)) => {
                log::warn!(
                    "cast to {name} dropped: {pid} is not a {}",
                    std::any::type_name::<W>()
                );
            }
            Err(_) => {}
        }
    }

    /// Sends a plain message to the worker registered as `name` (`Name ! Message`):
    /// [`Error::NoProc`] if no process is registered under a local name (Erlang raises
    /// `badarg`); a message to a dead process, or to another node, is dropped.
    pub fn send_name<W: Worker>(
        &self,
        name: impl Into<RegisteredName>,
        message: W::Info,
    ) -> Result<(), Error> {
        match self.named_worker::<W>(&name.into()) {
            Ok(worker) => {
                worker.send(message);
                Ok(())
            }
            Err(Error::NoConnection(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

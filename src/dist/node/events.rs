//! Node events: a connection to another node came up or went down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::dist::error::DistError;
use crate::worker::{Worker, WorkerRef};

/// Why a connection to a node went down.
#[derive(Clone, Debug)]
pub enum NodeDownReason {
    /// The peer closed the connection (or it broke).
    Closed,
    /// Nothing arrived from the peer within `net_ticktime`.
    TickTimeout,
    /// [`Node::disconnect`](super::Node::disconnect) was called.
    Disconnected,
    /// The peer sent data we could not accept (the error is logged too).
    ProtocolError(Arc<DistError>),
    /// A newer connection from the same node replaced this one. Only logged: the
    /// newer connection carries on, so no nodedown is reported for it.
    Replaced,
    /// This node is shutting down.
    Shutdown,
    /// No connection could be made (for [`Node::monitor_node`](super::Node::monitor_node)
    /// on a node that is not reachable).
    Unreachable,
}

impl std::fmt::Display for NodeDownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeDownReason::Closed => f.write_str("connection_closed"),
            NodeDownReason::TickTimeout => f.write_str("net_tick_timeout"),
            NodeDownReason::Disconnected => f.write_str("disconnect"),
            NodeDownReason::ProtocolError(error) => write!(f, "protocol error: {error}"),
            NodeDownReason::Replaced => f.write_str("replaced"),
            NodeDownReason::Shutdown => f.write_str("shutdown"),
            NodeDownReason::Unreachable => f.write_str("unreachable"),
        }
    }
}

/// A node came up or went down (Erlang's `nodeup` / `nodedown` messages of
/// `net_kernel:monitor_nodes/1`).
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// A connection to `node` is up.
    Up {
        /// The peer node's name.
        node: String,
    },
    /// The connection to `node` is down.
    Down {
        /// The peer node's name.
        node: String,
        /// Why.
        reason: NodeDownReason,
    },
}

/// Someone told of node events: every event, or one `nodedown` of one node.
pub(crate) struct Subscriber {
    pub(crate) sink: Sink,
    /// `Some(node)`: only that node's next nodedown, then the subscription ends.
    pub(crate) nodedown_of: Option<String>,
}

/// Where a subscriber's events go.
pub(crate) enum Sink {
    /// A channel (`Node::events`, `Node::monitor_node`).
    Channel(crossbeam_channel::Sender<NodeEvent>),
    /// A worker's mailbox (`Node::monitor_nodes_to`, `Node::monitor_node_to`): `false`
    /// once the worker is gone. `armed` is the subscription's identity, and for a
    /// one-shot nodedown whether it may still fire.
    Worker {
        deliver: Box<dyn Fn(NodeEvent) -> bool + Send>,
        armed: Arc<AtomicBool>,
    },
}

impl Sink {
    fn send(&self, event: NodeEvent) -> bool {
        match self {
            Sink::Channel(sender) => sender.send(event).is_ok(),
            Sink::Worker { deliver, armed } => armed.load(Ordering::Acquire) && deliver(event),
        }
    }

    /// Sends a one-shot subscription's event: a worker's only if no other got there.
    fn send_once(&self, event: NodeEvent) -> bool {
        match self {
            Sink::Channel(sender) => sender.send(event).is_ok(),
            Sink::Worker { deliver, armed } => {
                armed.swap(false, Ordering::AcqRel) && deliver(event)
            }
        }
    }

    fn is_worker_sink(&self, token: &Arc<AtomicBool>) -> bool {
        matches!(self, Sink::Worker { armed, .. } if Arc::ptr_eq(armed, token))
    }

    /// `true` if this sink is that channel.
    pub(crate) fn is_channel(&self, other: &crossbeam_channel::Sender<NodeEvent>) -> bool {
        matches!(self, Sink::Channel(sender) if sender.same_channel(other))
    }

    fn to_worker<W: Worker>(worker: &WorkerRef<W>, armed: Arc<AtomicBool>) -> Sink
    where
        W::Info: From<NodeEvent>,
    {
        let worker = worker.clone();
        Sink::Worker {
            deliver: Box::new(move |event| worker.try_send(event.into()).is_ok()),
            armed,
        }
    }
}

impl Subscriber {
    /// Delivers `event` if it is wanted; `false` when the subscription is over.
    pub(crate) fn offer(&self, event: &NodeEvent) -> bool {
        match (&self.nodedown_of, event) {
            (None, _) => self.sink.send(event.clone()),
            (Some(wanted), NodeEvent::Down { node, .. }) if wanted == node => {
                let _ = self.sink.send_once(event.clone());
                false
            }
            (Some(_), _) => true,
        }
    }
}

impl super::Node {
    /// `net_kernel:monitor_nodes(true)` for a worker: every later nodeup and nodedown
    /// reaches `worker`'s `handle_info` as a message (`W::Info::from(NodeEvent)`), in
    /// the order they happen, as Erlang delivers `{nodeup, Node}` / `{nodedown, Node}`
    /// to the process that asked. The subscription ends with the worker (at the next
    /// event after its death).
    pub fn monitor_nodes_to<W: Worker>(&self, worker: &WorkerRef<W>)
    where
        W::Info: From<NodeEvent>,
    {
        self.inner.subscribers.lock().push(Subscriber {
            sink: Sink::to_worker(worker, Arc::new(AtomicBool::new(true))),
            nodedown_of: None,
        });
    }

    /// `erlang:monitor_node(Node, true)` for a worker: connects to `node` if needed;
    /// one [`NodeEvent::Down`] reaches `worker`'s `handle_info` when the connection
    /// goes down, at once (reason [`NodeDownReason::Unreachable`]) when no connection
    /// can be made.
    pub fn monitor_node_to<W: Worker>(&self, worker: &WorkerRef<W>, node: &str)
    where
        W::Info: From<NodeEvent>,
    {
        // Subscribed before connecting, so a connection lost right after is seen.
        let armed = Arc::new(AtomicBool::new(true));
        self.inner.subscribers.lock().push(Subscriber {
            sink: Sink::to_worker(worker, armed.clone()),
            nodedown_of: Some(node.to_owned()),
        });
        if self.inner.connection(node).is_err() {
            self.inner
                .subscribers
                .lock()
                .retain(|subscriber| !subscriber.sink.is_worker_sink(&armed));
            // Unless a nodedown of that node got there first.
            if armed.swap(false, Ordering::AcqRel) {
                let _ = worker.try_send(
                    NodeEvent::Down {
                        node: node.to_owned(),
                        reason: NodeDownReason::Unreachable,
                    }
                    .into(),
                );
            }
        }
    }
}

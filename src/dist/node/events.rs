//! Node events: a connection to another node came up or went down.

use std::sync::Arc;

use crate::dist::error::DistError;

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
    pub(crate) sender: crossbeam_channel::Sender<NodeEvent>,
    /// `Some(node)`: only that node's next nodedown, then the subscription ends.
    pub(crate) nodedown_of: Option<String>,
}

impl Subscriber {
    /// Delivers `event` if it is wanted; `false` when the subscription is over.
    pub(crate) fn offer(&self, event: &NodeEvent) -> bool {
        match (&self.nodedown_of, event) {
            (None, _) => self.sender.send(event.clone()).is_ok(),
            (Some(wanted), NodeEvent::Down { node, .. }) if wanted == node => {
                let _ = self.sender.send(event.clone());
                false
            }
            (Some(_), _) => true,
        }
    }
}

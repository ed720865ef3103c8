//! `nodes(visible)` and `nodes(hidden)`: the connected nodes by the kind of their
//! connection.
//!
//! Contract, as Erlang's: a connection is visible when both ends are published
//! (neither started hidden); otherwise it is hidden. [`Node::nodes`](super::Node::nodes)
//! lists both kinds (`nodes(connected)`). zen_monitor's Connector counts only visible
//! nodes as reachable (`known_node?/1` checks `Node.list()`).

use super::{Node, Slot};
use crate::dist::flags;

impl Node {
    /// The nodes connected now over a visible connection, sorted (Erlang's `nodes()`).
    pub fn visible_nodes(&self) -> Vec<String> {
        self.connected_nodes(|visible| visible)
    }

    /// The nodes connected now over a hidden connection, sorted (`nodes(hidden)`).
    pub fn hidden_nodes(&self) -> Vec<String> {
        self.connected_nodes(|visible| !visible)
    }

    /// The nodes connected now whose connection's visibility `keep` accepts, sorted.
    pub(super) fn connected_nodes(&self, keep: impl Fn(bool) -> bool) -> Vec<String> {
        let we_are_visible = self.inner.flags & flags::PUBLISHED != 0;
        let mut nodes: Vec<String> = self
            .inner
            .connections
            .lock()
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Up(connection) => Some((name, connection.peer.is_visible())),
                _ => None,
            })
            .filter(|(_, peer_visible)| keep(we_are_visible && *peer_visible))
            .map(|(name, _)| name.clone())
            .collect();
        nodes.sort();
        nodes
    }
}

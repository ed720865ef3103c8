//! `erlang:send(Dest, Msg, [noconnect])`: a send that never sets up a connection.
//!
//! Contract: to a process on a node this node is connected to, the message goes as
//! [`Node::send`](super::Node::send) sends it; when there is no connection, nothing is
//! sent, no connection is attempted, and the caller gets
//! [`DistError::NoConnection`] (Erlang returns `noconnect`). Used where a connection
//! attempt would only delay or mislead: zen_monitor's Batcher sends its dead summaries
//! this way, so a subscriber whose node went away is not dialled again for them.

use super::{Destination, Node};
use crate::dist::control::Control;
use crate::dist::error::DistError;
use crate::dist::term::{Atom, ToTerm};
use crate::pid::Pid;

impl Node {
    /// Sends `message` from `from` to `to` only over an existing connection (see the
    /// module docs). A local destination is delivered directly.
    pub fn send_noconnect(
        &self,
        from: Pid,
        to: impl Into<Destination>,
        message: &impl ToTerm,
    ) -> Result<(), DistError> {
        let to = to.into();
        let node = match &to {
            Destination::Pid(pid) => pid.node().as_str(),
            Destination::Name { node, .. } => node.as_str(),
        };
        if node == self.inner.name {
            return self.send(from, to, message);
        }
        let Some(connection) = self.inner.existing(node) else {
            return Err(DistError::NoConnection {
                node: node.to_owned(),
            });
        };
        let control = match to {
            Destination::Pid(pid) => Control::SendSender {
                from: self.inner.wire_pid(from),
                to: self.inner.wire_pid(pid),
            },
            Destination::Name { name, .. } => Control::RegSend {
                from: self.inner.wire_pid(from),
                to: Atom::new(name),
            },
        };
        connection.send(self.inner.now(), &control, Some(&message.to_term()))
    }
}

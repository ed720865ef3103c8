//! `erlang:send(Dest, Msg, [noconnect])`: a send that never sets up a connection.
//!
//! Contract: to a process on a node this node is connected to, the message goes as
//! [`Node::send`](super::Node::send) sends it; when there is no connection, nothing is
//! sent, no connection is attempted, and the caller gets
//! [`DistError::NoConnection`] (Erlang returns `noconnect`). Used where a connection
//! attempt would only delay or mislead: zen_monitor's Batcher sends its dead summaries
//! this way, so a subscriber whose node went away is not dialled again for them.

use super::{Destination, Node};
use crate::dist::error::DistError;
use crate::dist::term::ToTerm;
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
        self.send_term(from, to.into(), message.to_term(), false)
    }
}

//! [`rpc_and_wait`]: fly_postgres's cross-region write. Call a
//! [`PrimaryWriter`](crate::PrimaryWriter) on a node near the primary, then wait on the
//! local replica's [`LsnTracker`] for the position it returns.
//!
//! Contract:
//! - `timeout` bounds the whole: the call gets all of it, the wait what is left.
//! - The write is never retried here. When no success comes back the error says whether
//!   the write may have committed ([`LsnError::remote_write_may_have_committed`]): a
//!   timeout ([`LsnError::RemoteTimeout`]), a lost connection
//!   ([`LsnError::RemoteNoConnection`]), a writer that exited mid-call, or a commit whose
//!   outcome the writer lost ([`LsnError::RemoteWriteOutcomeUnknown`]). The caller finds
//!   out by resending the same request (same idempotency key: a committed key answers
//!   "already committed" and runs nothing, an uncommitted one runs once) or by reading
//!   the key on the primary ([`recorded_write`](crate::recorded_write)).
//! - The `DistError` stays typed as the source of the `Remote*` variants.

use std::time::{Duration, Instant};

use otp_threads::dist::{Destination, DistError, Node};

use crate::error::LsnError;
use crate::position::Lsn;
use crate::read_your_writes::Replicated;
use crate::remote_write::{WriteReply, WriteRequest, WriterCall};
use crate::tracker::{LsnTracker, Wait};

/// A remote write that committed, and what became of its replication here.
#[derive(Debug)]
pub struct RemoteWritten {
    /// The position awaited, when the writer could read it.
    pub lsn: Option<Lsn>,
    /// The operation's row count.
    pub rows: u64,
    /// `true` when the key had been recorded by an earlier request (nothing ran now).
    pub already_committed: bool,
    /// Whether the local replica caught up.
    pub replicated: Replicated,
}

/// Sends `request` to the writer at `writer` through `node`, then waits on `tracker`
/// for the commit's position; see the [module docs](self).
pub fn rpc_and_wait(
    node: &Node,
    writer: impl Into<Destination>,
    tracker: &LsnTracker,
    request: &WriteRequest,
    timeout: Duration,
) -> Result<RemoteWritten, LsnError> {
    let deadline = Instant::now() + timeout;
    let writer = writer.into();
    let writer_node = match &writer {
        Destination::Pid(pid) => pid.node().as_str().to_owned(),
        Destination::Name { node, .. } => node.clone(),
    };
    let key = request.key().to_owned();
    // A call in flight fails at once with `NoConnection` when the writer's node goes
    // down (SEMANTICS 11.15c), so no watcher is needed to end it early.
    let reply = node
        .call::<WriteReply>(writer, &WriterCall::Write(request.clone()), timeout)
        .map_err(|source| call_error(&writer_node, &key, source))?;
    let (lsn, rows, already_committed) = match reply {
        WriteReply::Committed { lsn, rows } => (lsn, rows, false),
        WriteReply::AlreadyCommitted { lsn, rows } => (lsn, rows, true),
        WriteReply::CommittedUnawaitable { rows, reason } => {
            return Ok(RemoteWritten {
                lsn: None,
                rows,
                already_committed: false,
                replicated: Replicated::NotAwaited(LsnError::RemoteWalLookupFailed { reason }),
            });
        }
        WriteReply::Rejected { reason, detail } => {
            return Err(LsnError::RemoteWriteRejected {
                node: writer_node,
                key,
                reason,
                detail,
            });
        }
        WriteReply::NotCommitted { sqlstate, message } => {
            return Err(LsnError::RemoteWriteNotCommitted {
                node: writer_node,
                key,
                sqlstate,
                message,
            });
        }
        WriteReply::Unknown { message } => {
            return Err(LsnError::RemoteWriteOutcomeUnknown {
                node: writer_node,
                key,
                message,
            });
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let replicated = match tracker.request_and_await(lsn, Some(left)) {
        Wait::Ready => Replicated::Ready,
        Wait::Timeout => Replicated::Timeout,
        Wait::RoleChanged(change) => Replicated::RoleChanged(change),
        Wait::Stopped => Replicated::Stopped,
    };
    Ok(RemoteWritten {
        lsn: Some(lsn),
        rows,
        already_committed,
        replicated,
    })
}

fn call_error(node: &str, key: &str, source: DistError) -> LsnError {
    let (node, key) = (node.to_owned(), key.to_owned());
    let timed_out = matches!(source, DistError::Timeout);
    let lost = matches!(source, DistError::NoConnection { .. });
    let source = Box::new(source);
    if timed_out {
        LsnError::RemoteTimeout { node, key, source }
    } else if lost {
        LsnError::RemoteNoConnection { node, key, source }
    } else {
        LsnError::RemoteCall { node, key, source }
    }
}

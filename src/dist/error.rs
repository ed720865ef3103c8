//! The error type of the distribution layer.

use std::io;

use super::term::Term;

/// Errors of the distribution layer: EPMD, handshake, frames, terms, control messages.
///
/// Malformed peer data is always one of these, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A socket operation failed (including a peer closing the connection early).
    #[error("I/O error")]
    Io(#[from] io::Error),
    /// Peer data ended before a field of `what` was complete.
    #[error("truncated {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// Peer data does not follow the protocol.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A frame announced more bytes than the configured limit allows.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The announced size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// An unknown external term format tag.
    #[error("unknown term tag {0}")]
    UnknownTag(u8),
    /// A term feature we do not accept (atom cache references, compressed terms …).
    #[error("unsupported term encoding: {0}")]
    UnsupportedTerm(&'static str),
    /// A term nests deeper than the decoder allows.
    #[error("term nests deeper than {0} levels")]
    TooDeep(usize),
    /// The term decoder (eetf) rejected bytes that passed the pre-scan.
    #[error("term decode failed")]
    Decode(#[from] eetf::DecodeError),
    /// Encoding a term failed.
    #[error("term encode failed")]
    Encode(#[from] eetf::EncodeError),
    /// A term does not have the shape a Rust type needs.
    #[error("expected {expected}, got {found}")]
    Mismatch {
        /// The expected shape.
        expected: &'static str,
        /// The term that came instead.
        found: Box<Term>,
    },
    /// A term does not have the shape a serde type needs at `path` (the field or
    /// element, as `items[2].price`; empty at the top level).
    #[error("at `{path}`: expected {expected}, got {found}")]
    SerdeMismatch {
        /// Where in the value.
        path: String,
        /// The expected shape (serde's wording for what a visitor wanted).
        expected: String,
        /// The term that came instead.
        found: Box<Term>,
    },
    /// A value did not convert to or from a term through serde at `path`: serde's own
    /// complaint (a missing field, an unknown variant, a user `Serialize` error …) or a
    /// value Erlang cannot represent (a non-finite float, an atom over 255 characters).
    #[error("serde conversion failed at `{path}`: {reason}")]
    Serde {
        /// Where in the value.
        path: String,
        /// What went wrong, as serde or the bridge says it.
        reason: String,
    },
    /// An EPMD request was refused (`result` is EPMD's non-zero result code).
    #[error("EPMD refused {request} for {name:?} (result {result})")]
    EpmdRefused {
        /// The request.
        request: &'static str,
        /// The node name asked about.
        name: String,
        /// EPMD's result code.
        result: u8,
    },
    /// The peer refused the handshake with a status (`nok`, `not_allowed`, …).
    #[error("node {peer} refused the connection: status {status}")]
    Refused {
        /// The peer node.
        peer: String,
        /// The status it sent.
        status: String,
    },
    /// The peer lacks capability flags this node requires.
    #[error("node {peer} lacks mandatory distribution flags {missing:#x}")]
    MissingFlags {
        /// The peer node.
        peer: String,
        /// The missing flag bits.
        missing: u64,
    },
    /// The cookie challenge failed: the peer's digest was wrong, or the peer closed
    /// the connection after ours.
    #[error("cookie challenge with node {peer} failed")]
    WrongCookie {
        /// The peer node.
        peer: String,
    },
    /// The peer is not the node we dialled.
    #[error("dialled {expected} but {found} answered")]
    WrongPeer {
        /// The node we meant to reach.
        expected: String,
        /// The node that answered.
        found: String,
    },
    /// The OS random source failed.
    #[error("OS random source failed: {0}")]
    Random(getrandom::Error),
    /// A node name is not `name@host`.
    #[error("invalid node name {name:?}: {reason}")]
    InvalidNodeName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No connection to the node could be made, or it was lost.
    #[error("no connection to node {node}")]
    NoConnection {
        /// The node.
        node: String,
    },
    /// The called process does not exist.
    #[error("no such process")]
    NoProc,
    /// The called process exited before it replied.
    #[error("the called process exited: {0}")]
    Exited(crate::exit::ExitReason),
    /// No reply in time.
    #[error("call timed out")]
    Timeout,
    /// An rpc failed on the remote node: `{badrpc, Reason}`, with the reason.
    #[error("rpc failed on the remote node: {0}")]
    BadRpc(Term),
    /// An option has an invalid value.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl From<getrandom::Error> for DistError {
    fn from(error: getrandom::Error) -> Self {
        DistError::Random(error)
    }
}

impl DistError {
    pub(crate) fn malformed(what: &'static str, reason: &'static str) -> DistError {
        DistError::Malformed { what, reason }
    }

    pub(crate) fn mismatch(expected: &'static str, found: Term) -> DistError {
        DistError::Mismatch {
            expected,
            found: Box::new(found),
        }
    }
}

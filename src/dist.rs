//! Erlang distribution: the wire protocol BEAM nodes speak to each other.
//!
//! Contract of this module (feature `dist`):
//!
//! * [`epmd`]: a client for the Erlang Port Mapper Daemon (register with `ALIVE2`,
//!   kept open = registered; look peers up with `PORT_PLEASE2`; list with `NAMES`)
//!   and [`epmd::NameServer`], our own EPMD-compatible name server that real `erl`
//!   nodes can register with too.
//! * [`handshake`]: the version 6 connection handshake, as initiator
//!   ([`handshake::initiate`]) and as acceptor ([`handshake::accept`]), with the
//!   capability flags OTP 25 and 26 require (no atom cache, no fragments), an MD5
//!   cookie challenge drawn from the OS random source and compared in constant time.
//!   A wrong cookie is refused in both directions with one log line naming the peer.
//! * [`frame`]: the 4-byte length-prefixed frames of a connected channel, with a size
//!   limit (an oversized frame is an error, never an allocation of that size) and
//!   ticks (empty frames).
//! * [`control`]: control messages (`SEND`, `REG_SEND`, `LINK`, `EXIT`, monitors …)
//!   encoded to and decoded from frame bodies.
//! * [`term`]: the external term format, a bounded pre-scan that makes decoding
//!   untrusted bytes safe, and [`ToTerm`]/[`FromTerm`] conversions between Rust values
//!   and terms; with the feature `serde`, [`term::serde`] converts any serde type
//!   (structs as maps with atom keys) and [`term::Serde`] wraps one as a worker's message.
//!
//! Every decoder of peer bytes returns a typed [`DistError`] on malformed input and
//! never panics; `tests/dist_fuzz.rs` drives them with random and mutated inputs.

mod error;
pub(crate) mod hooks;
mod wire;

pub mod control;
pub mod digest;
pub mod epmd;
pub mod flags;
pub mod frame;
pub mod handshake;
pub mod node;
pub mod term;

pub use eetf;
pub use error::DistError;
pub use node::{
    Destination, Exception, Mfa, Node, NodeBuilder, NodeDownReason, NodeEvent, RemoteProcessInfo,
    RpcHandler, SpawnRefusal, Spawner,
};
pub use term::{Atom, FromTerm, Term, ToTerm};

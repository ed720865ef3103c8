//! Tablestore Tunnel: the protocol layer of a change-stream consumer
//! (feature `tunnel`).
//!
//! A Tablestore *tunnel* streams a table's rows (base data) and/or its
//! changes (stream) to consumers. A consumer *connects* to a tunnel and gets
//! a client id, then *heartbeats* periodically; each heartbeat reports the
//! client's channels and returns the channels the server assigns to it. For
//! every assigned channel the client fetches the *checkpoint* (a read token
//! and a sequence number), *reads records* from the token, hands them to the
//! user, and *checkpoints* the next token with the next sequence number,
//! until the token is `"finished"`. At the end it *shuts down* the session.
//!
//! This module is the pure protocol layer plus a blocking HTTP client; the
//! worker that runs the session loop on supervised threads is [`worker`].
//!
//! # Module map
//!
//! | module | concept |
//! |---|---|
//! | [`proto`] | the `TableStoreTunnel` protobuf messages (hand-written `prost` structs) |
//! | [`sign`] | request headers, content MD5 and the `x-ots-signature` HMAC; server-side verification |
//! | [`plainbuffer`] | CRC-8 and the PlainBuffer row codec: records → typed [`plainbuffer::Row`]s and back |
//! | [`token`] | read tokens: parsing, stream-vs-base classification, the finish token |
//! | [`channel`] | pure channel-state reconciliation between heartbeats and local readers |
//! | [`backoff`] | exponential backoff with jitter and a total budget |
//! | [`error`] | [`TunnelError`] and the retryable / fatal / sequence-mismatch classification |
//! | [`client`] | [`client::TunnelClient`], the signing, retrying HTTP client (ureq) |
//! | `emulator` | (feature `tunnel-emulator`) an in-process emulator of the service, for tests and demos |
//! | [`worker`] | the consumer: [`worker::TunnelWorker`], supervised sessions, channel readers, acknowledged batches |
//!
//! # Wire protocol in brief
//!
//! `POST {endpoint}{uri}` with a protobuf body, e.g. `/tunnel/connect`,
//! `/tunnel/heartbeat`, `/tunnel/getcheckpoint`, `/tunnel/readrecords`,
//! `/tunnel/checkpoint`, `/tunnel/shutdown` (and `/tunnel/create`,
//! `/describe`, `/list`, `/delete`). Non-2xx responses carry an
//! [`proto::Error`]. Each [`proto::Record`] holds one PlainBuffer row.

pub mod backoff;
pub mod channel;
pub mod client;
#[cfg(feature = "tunnel-emulator")]
pub mod emulator;
pub mod error;
pub mod plainbuffer;
pub mod proto;
pub mod sign;
pub mod token;
pub mod worker;

pub use error::{ErrorClass, TunnelError};

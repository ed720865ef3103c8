//! Tablestore Tunnel: a change-stream consumer on the otp-threads runtime, after
//! ex_aliyun_ots's tunnel worker.
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
//! The crate is the pure protocol layer, a blocking HTTP client, and the worker that
//! runs the session loop on supervised threads ([`worker`]). The service cannot be
//! reached from this project's machines: tests, benches and the example run against
//! the crate `otp-threads-tablestore-emulator`, a real HTTP server speaking the
//! documented protocol.
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
//! | [`options`] | shared option checks: bounded durations, non-empty strings |
//! | [`error`] | [`TunnelError`] and the retryable / fatal / sequence-mismatch classification |
//! | [`client`] | [`client::TunnelClient`], the signing, retrying HTTP client (ureq) |
//! | [`worker`] | the consumer: [`worker::TunnelWorker`], supervised sessions, channel readers, acknowledged batches |
//!
//! # Wire protocol in brief
//!
//! `POST {endpoint}{uri}` with a protobuf body, e.g. `/tunnel/connect`,
//! `/tunnel/heartbeat`, `/tunnel/getcheckpoint`, `/tunnel/readrecords`,
//! `/tunnel/checkpoint`, `/tunnel/shutdown` (and `/tunnel/create`,
//! `/describe`, `/list`, `/delete`). Non-2xx responses carry an
//! [`proto::Error`]. Each [`proto::Record`] holds one PlainBuffer row.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod channel;
pub mod client;
pub mod error;
pub mod options;
pub mod plainbuffer;
pub mod proto;
pub mod sign;
pub mod token;
pub mod worker;

pub use error::{ErrorClass, TunnelError};
/// The HTTP client, re-exported for the type of
/// [`TunnelError::Transport`]'s source (`ureq::Error`).
pub use ureq;

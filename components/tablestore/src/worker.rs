//! The tunnel consumer: one supervised worker per tunnel, one linked reader per
//! channel, batches to a crossbeam [`Receiver`] with explicit acknowledgements.
//!
//! ```text
//!  DynamicSupervisor (Tunnels)            transient children, 10 restarts / 60 s
//!  └── tunnel worker  "otp_threads.tunnel.<tunnel_id>"   traps exits; heartbeat timer
//!      ├── channel reader (linked)  getcheckpoint → readrecords → Batch → ack → checkpoint
//!      └── channel reader (linked)  ...
//!                         │ Batch { tunnel_id, channel_id, records, ack }
//!                         ▼
//!                    subscriber: Receiver<Batch>
//! ```
//!
//! # Start and stop
//!
//! [`TunnelWorker::start`] validates the [`TunnelWorkerConfig`] (a bad option is an
//! error naming it), starts the worker under the runtime's shared [`Tunnels`]
//! supervisor, and returns once the worker has connected, with a [`TunnelHandle`]
//! and the [`Receiver`] of [`Batch`]es. A wrong secret therefore fails the start with
//! the service's `OTSPermissionDenied` (fatal, not retried).
//! [`TunnelWorker::stop`] (or [`TunnelHandle::stop`]) finds the worker by tunnel id
//! and terminates it through its supervisor; the session is shut down on the
//! service and the receiver disconnects once the worker and its readers are gone.
//!
//! # The session loop
//!
//! The worker heartbeats at once after connecting, then every `heartbeat_interval`
//! (a timer, not a sleeping thread). Each heartbeat reports the local channels and
//! merges the answer with [`ChannelTable`](crate::channel::ChannelTable),
//! which follows the SDKs: a new `OPEN` channel gets a linked reader that reads from
//! its checkpoint; a channel missing from the answer, or `CLOSE`/`TERMINATED`, has
//! its reader stopped; a `CLOSING` channel has its reader stopped and is acknowledged
//! `CLOSE` at version + 1; a reader that fails is reported `CLOSE` at version + 1;
//! one that reached the finish token `TERMINATED` at version + 1; older versions are
//! ignored. A worker none of whose heartbeats succeeded for `heartbeat_timeout`
//! stops with [`TunnelError::HeartbeatTimeout`]
//! (the original compared seconds with milliseconds and never fired); its
//! supervisor then starts a new session.
//!
//! # Delivery: at least once, nothing lost
//!
//! A reader has at most one batch out: it sends a [`Batch`] and waits for its
//! [`Ack`]. Meanwhile it fetches up to [`TunnelWorkerConfig::read_ahead`] further
//! batches (default 1), which wait in the reader. Only [`Ack::ack`] makes it
//! checkpoint the batch (next token, sequence number + 1) and deliver the next one;
//! dropping the `Ack` unacknowledged drops the fetched batches and delivers the
//! batch again. So every checkpointed batch was acknowledged, and whatever was not is read
//! again by the next reader of the channel: after a crash and restart, only the
//! unacknowledged batch of each channel comes again. The receiver is unbounded, but
//! holds at most one batch per channel. Within a channel, batches come in order
//! (a redelivery repeats the unacknowledged batch, then goes on in order).
//!
//! Each [`Record`] carries its row and, when the service sends one, the row's
//! before-image ([`Record::origin`]). A record that cannot be decoded is handled by
//! [`TunnelWorkerConfig::on_undecodable`]: delivered in [`Batch::undecodable`] (the
//! default), skipped and reported ([`TunnelHandle::skipped_records`]), or the tunnel
//! stops with [`TunnelError::UndecodableRecord`]; never a stalled channel, never a
//! silent loss.
//!
//! A checkpoint refused with `OTSSequenceNumberNotMatch` is reconciled from the
//! server's checkpoint until it succeeds or the reader is stopped (see
//! [`SEQUENCE_RETRIES`]); throttling and busy codes are retried by the client with
//! backoff ([`THROTTLING_CODES`](crate::error::THROTTLING_CODES)).
//!
//! A stream channel whose reads come back empty backs off
//! ([`TunnelWorkerConfig::poll_backoff`]) on a timer; the first batch resets it.
//!
//! # The subscriber goes away
//!
//! When the subscriber drops its [`Receiver`], the next batch cannot be sent: the
//! reader exits with `{shutdown, subscriber gone}`, and the worker stops reading,
//! shuts the session down on the service (`/tunnel/shutdown`) and exits normally
//! (not restarted). An idle tunnel notices on its next batch.
//!
//! ```no_run
//! use std::time::Duration;
//! use otp_threads::Runtime;
//! use otp_threads_tablestore::client::TunnelClientConfig;
//! use otp_threads_tablestore::worker::{TunnelWorker, TunnelWorkerConfig};
//!
//! let runtime = Runtime::new();
//! let client = TunnelClientConfig::new("https://inst.cn-hangzhou.ots.aliyuncs.com", "inst", "akid", "secret");
//! let (tunnel, batches) = TunnelWorker::start(&runtime.handle(), TunnelWorkerConfig::new("tunnel-id", client))?;
//! for batch in batches.iter().take(10) {
//!     for record in &batch.records {
//!         println!("{} {:?} {:?}", batch.channel_id, record.row.kind, record.row.primary_key);
//!     }
//!     for bad in &batch.undecodable {
//!         eprintln!("record {} of {} cannot be decoded: {}", bad.index, bad.channel_id, bad.error);
//!     }
//!     batch.ack.ack();
//! }
//! tunnel.stop()?;
//! runtime.shutdown(Duration::from_secs(10)).unwrap();
//! # Ok::<_, otp_threads_tablestore::TunnelError>(())
//! ```

mod batch;
mod channel_reader;
mod config;
mod record;
mod session;
mod tunnels;

pub use crossbeam_channel::Receiver;

pub use batch::{Ack, Batch};
pub use channel_reader::SEQUENCE_RETRIES;
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TIMEOUT,
    DEFAULT_READ_AHEAD, MAX_READ_AHEAD, MIN_HEARTBEAT_INTERVAL, TunnelWorkerConfig,
};
pub use record::{OnUndecodable, Record, RecordError, SKIPPED_KEPT, UndecodableRecord};
pub use session::TunnelStatus;
pub use tunnels::{GLOBAL_SUPERVISOR_NAME, TunnelHandle, Tunnels};

use crate::error::TunnelError;
use otp_threads::RuntimeHandle;

/// Starts and stops tunnel workers under the runtime's shared [`Tunnels`]
/// supervisor (started on first use); see the [module docs](self).
#[derive(Clone, Copy, Debug)]
pub struct TunnelWorker;

impl TunnelWorker {
    /// Validates `config`, starts a worker for its tunnel and returns once it is
    /// connected: its handle, and the receiver of its batches.
    pub fn start(
        runtime: &RuntimeHandle,
        config: TunnelWorkerConfig,
    ) -> Result<(TunnelHandle, Receiver<Batch>), TunnelError> {
        Tunnels::global(runtime)?.start_tunnel(config)
    }

    /// Stops the worker of `tunnel_id` started with [`start`](Self::start).
    pub fn stop(runtime: &RuntimeHandle, tunnel_id: &str) -> Result<(), TunnelError> {
        match otp_threads::DynamicSupervisorRef::whereis(runtime, GLOBAL_SUPERVISOR_NAME) {
            Ok(supervisor) => Tunnels::from_supervisor(runtime, supervisor).stop(tunnel_id),
            Err(_) => Err(TunnelError::NotRunning {
                tunnel_id: tunnel_id.to_owned(),
            }),
        }
    }
}

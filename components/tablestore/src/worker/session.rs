//! [`Session`]: the worker of one tunnel (the original's `Tunnel.Worker`).
//!
//! It traps exits, connects in `init` (so a bad secret fails the start), and then
//! runs the heartbeat loop on a timer: each heartbeat reports the
//! [`ChannelTable`]'s channels, merges the answer and executes the resulting
//! [`Plan`]: a linked [`ChannelReader`] per new channel, an exit signal to the reader
//! of each revoked or closing channel. Readers' EXITs are the other input:
//! `Normal` → finished, `Shutdown` → stopped as ordered, `{shutdown, subscriber
//! gone}` → the whole tunnel ends, anything else → failed.
//!
//! Stop reasons, chosen for a transient child of a dynamic supervisor:
//!
//! | event | exit reason | restarted |
//! |---|---|---|
//! | the subscriber dropped its receiver | `Normal` | no |
//! | [`stop`](super::TunnelHandle::stop) | `Shutdown` | no |
//! | a fatal error (credentials, expired tunnel) | `{shutdown, fatal: …}` | no: a new session cannot help |
//! | no heartbeat succeeded within `heartbeat_timeout`, session gone | error | yes: a new session from the checkpoints |
//!
//! `terminate` stops the readers and ends the session on the service
//! (`/tunnel/shutdown`, one attempt) so that its channels move at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::Mutex;
use prost::Message as _;

use crate::channel::{ChannelTable, LocalChannel, Plan};
use crate::client::{TunnelClient, URI_SHUTDOWN};
use crate::error::TunnelError;
use crate::proto;
use otp_threads::{Context, ExitReason, Info, Pid, ReplyTo, Step, Worker};

use super::batch::Batch;
use super::channel_reader::{ChannelReader, SUBSCRIBER_GONE};
use super::config::TunnelWorkerConfig;
use super::record::SkippedRecords;

/// The registered name of the worker of `tunnel_id`.
pub(super) fn worker_name(tunnel_id: &str) -> String {
    format!("otp_threads.tunnel.{tunnel_id}")
}

/// What the handle and the sessions of one tunnel share (it outlives restarts).
#[derive(Default)]
pub(super) struct Shared {
    /// Why the last start failed (taken by the starter).
    pub(super) start_error: Mutex<Option<TunnelError>>,
    /// The last error that stopped a session.
    pub(super) last_error: Mutex<Option<Arc<TunnelError>>>,
    /// The client id of the running session.
    pub(super) client_id: Mutex<Option<String>>,
    /// Sessions connected so far (1 + restarts).
    pub(super) sessions: Mutex<u64>,
    /// Records skipped under `OnUndecodable::Skip`.
    pub(super) skipped: Mutex<SkippedRecords>,
}

/// Messages of a session.
pub(crate) enum SessionMsg {
    /// Time to heartbeat.
    Heartbeat,
    /// A reader hit a fatal error.
    Fatal(TunnelError),
}

/// A snapshot of a running tunnel worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelStatus {
    /// The session's client id.
    pub client_id: String,
    /// The channels as the worker reports them, with their readers.
    pub channels: Vec<LocalChannel>,
    /// Successful heartbeats in this session.
    pub heartbeats: u64,
}

/// The worker of one tunnel; see the module docs.
pub(crate) struct Session {
    config: TunnelWorkerConfig,
    subscriber: Sender<Batch>,
    shared: Arc<Shared>,
    client: Option<TunnelClient>,
    client_id: String,
    table: ChannelTable,
    readers: HashMap<Pid, String>,
    reader_of: HashMap<String, Pid>,
    last_heartbeat: Instant,
    heartbeats: u64,
}

impl Session {
    pub(super) fn new(
        config: TunnelWorkerConfig,
        subscriber: Sender<Batch>,
        shared: Arc<Shared>,
    ) -> Session {
        Session {
            config,
            subscriber,
            shared,
            client: None,
            client_id: String::new(),
            table: ChannelTable::new(),
            readers: HashMap::new(),
            reader_of: HashMap::new(),
            last_heartbeat: Instant::now(),
            heartbeats: 0,
        }
    }

    fn tunnel_id(&self) -> &str {
        &self.config.tunnel_id
    }

    fn connect(&mut self, ctx: &mut Context<Self>) -> Result<(), TunnelError> {
        let tunnel_id = self.config.tunnel_id.clone();
        ctx.register(&worker_name(&tunnel_id))
            .map_err(|e| match e {
                otp_threads::Error::NameTaken(_) => TunnelError::AlreadyRunning {
                    tunnel_id: tunnel_id.clone(),
                },
                other => TunnelError::Runtime(other),
            })?;
        let client = TunnelClient::new(self.config.client.clone())?;
        let session = client.connect(&tunnel_id, Some(self.config.connect_config()))?;
        log::info!(
            "tunnel {tunnel_id}: connected as client {}",
            session.client_id
        );
        self.client_id = session.client_id.clone();
        *self.shared.client_id.lock() = Some(session.client_id);
        *self.shared.sessions.lock() += 1;
        self.client = Some(client);
        self.last_heartbeat = Instant::now();
        Ok(())
    }

    /// Stop after `error`: fatal errors end the tunnel, others restart the session.
    fn stop_with(&mut self, error: TunnelError) -> Step<Self> {
        let reason = if error.is_fatal() {
            ExitReason::shutdown_with(format!("fatal: {error}"))
        } else {
            ExitReason::error(&error)
        };
        log::error!("tunnel {}: stopping: {error}", self.tunnel_id());
        *self.shared.last_error.lock() = Some(Arc::new(error));
        Step::Stop(reason)
    }

    fn heartbeat_timed_out(&self) -> Option<TunnelError> {
        let elapsed = self.last_heartbeat.elapsed();
        (elapsed > self.config.heartbeat_timeout).then(|| TunnelError::HeartbeatTimeout {
            tunnel_id: self.config.tunnel_id.clone(),
            elapsed,
            timeout: self.config.heartbeat_timeout,
        })
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) -> Step<Self> {
        if let Some(timeout) = self.heartbeat_timed_out() {
            return self.stop_with(timeout);
        }
        let Some(client) = self.client.clone() else {
            return Step::Next;
        };
        let channels = self.table.heartbeat_channels();
        match client.heartbeat(self.tunnel_id(), &self.client_id, channels) {
            Ok(response) => {
                self.last_heartbeat = Instant::now();
                self.heartbeats += 1;
                let executed = self
                    .table
                    .apply_heartbeat(&response.channels)
                    .and_then(|plan| self.execute(plan, ctx));
                if let Err(e) = executed {
                    return self.stop_with(e);
                }
            }
            Err(e) if e.is_retryable() => {
                log::warn!("tunnel {}: heartbeat failed: {e}", self.tunnel_id());
                if let Some(timeout) = self.heartbeat_timed_out() {
                    return self.stop_with(timeout);
                }
            }
            Err(e) => return self.stop_with(e),
        }
        ctx.send_after(SessionMsg::Heartbeat, self.config.heartbeat_interval);
        Step::Next
    }

    /// Execute a plan and the plans it leads to. An error (a channel version that
    /// cannot be advanced) stops the session.
    fn execute(&mut self, plan: Plan, ctx: &mut Context<Self>) -> Result<(), TunnelError> {
        let mut work = VecDeque::from([plan]);
        while let Some(plan) = work.pop_front() {
            for order in plan.stop {
                match self.reader_of.get(&order.channel_id) {
                    Some(pid) => {
                        log::debug!(
                            "tunnel {}: stopping reader of {} ({:?})",
                            self.config.tunnel_id,
                            order.channel_id,
                            order.reason
                        );
                        ctx.exit(&pid.clone(), ExitReason::Shutdown);
                    }
                    None => work.push_back(self.table.reader_stopped(&order.channel_id)?),
                }
            }
            for channel_id in plan.start {
                match self.start_reader(&channel_id, ctx) {
                    Ok(pid) => {
                        self.readers.insert(pid, channel_id.clone());
                        self.reader_of.insert(channel_id, pid);
                    }
                    Err(e) => {
                        log::warn!(
                            "tunnel {}: cannot start the reader of {channel_id}: {e}",
                            self.config.tunnel_id
                        );
                        work.push_back(self.table.reader_failed(&channel_id)?);
                    }
                }
            }
        }
        Ok(())
    }

    fn start_reader(
        &mut self,
        channel_id: &str,
        ctx: &mut Context<Self>,
    ) -> Result<Pid, otp_threads::Error> {
        let client = self.client.clone().ok_or(otp_threads::Error::NoProc)?;
        let reader = ChannelReader::new(
            &self.config,
            client,
            self.client_id.clone(),
            channel_id.to_owned(),
            self.subscriber.clone(),
            ctx.handle(),
            self.shared.clone(),
        );
        ctx.spawn_link(reader).map(|r| r.pid())
    }

    fn reader_exited(
        &mut self,
        pid: Pid,
        reason: ExitReason,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        let Some(channel_id) = self.readers.remove(&pid) else {
            return Step::Next;
        };
        self.reader_of.remove(&channel_id);
        let plan = match reason {
            ExitReason::Normal => {
                log::info!(
                    "tunnel {}: channel {channel_id} finished",
                    self.config.tunnel_id
                );
                self.table.reader_finished(&channel_id)
            }
            ExitReason::Shutdown => self.table.reader_stopped(&channel_id),
            ExitReason::ShutdownWith(detail) if &*detail == SUBSCRIBER_GONE => {
                log::info!(
                    "tunnel {}: the subscriber is gone; shutting the tunnel down",
                    self.config.tunnel_id
                );
                return Step::Stop(ExitReason::Normal);
            }
            _ => self.table.reader_failed(&channel_id),
        };
        match plan.and_then(|plan| self.execute(plan, ctx)) {
            Ok(()) => Step::Next,
            Err(e) => self.stop_with(e),
        }
    }

    fn status(&self) -> TunnelStatus {
        TunnelStatus {
            client_id: self.client_id.clone(),
            channels: self.table.channels().cloned().collect(),
            heartbeats: self.heartbeats,
        }
    }
}

impl Worker for Session {
    type Call = ();
    type Reply = TunnelStatus;
    type Cast = ();
    type Info = SessionMsg;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.trap_exit(true);
        match self.connect(ctx) {
            Ok(()) => {
                ctx.send_after(SessionMsg::Heartbeat, Duration::ZERO);
                Ok(())
            }
            Err(e) => {
                let reason = ExitReason::error(&e);
                log::error!("tunnel {}: cannot start: {e}", self.tunnel_id());
                *self.shared.start_error.lock() = Some(e);
                Err(reason)
            }
        }
    }

    fn handle_call(
        &mut self,
        (): (),
        reply: ReplyTo<TunnelStatus>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(self.status());
        Step::Next
    }

    fn handle_info(&mut self, info: Info<SessionMsg>, ctx: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Timer(_, SessionMsg::Heartbeat) | Info::Message(SessionMsg::Heartbeat) => {
                self.heartbeat(ctx)
            }
            Info::Timer(_, SessionMsg::Fatal(e)) | Info::Message(SessionMsg::Fatal(e)) => {
                self.stop_with(e)
            }
            Info::Exit(exit) => self.reader_exited(exit.from, exit.reason, ctx),
            Info::Down(_) => Step::Next,
        }
    }

    fn terminate(&mut self, reason: &ExitReason, ctx: &mut Context<Self>) {
        for pid in self.readers.keys() {
            ctx.exit(pid, ExitReason::Shutdown);
        }
        *self.shared.client_id.lock() = None;
        let Some(client) = &self.client else {
            return;
        };
        // One attempt: a stopping worker must not sit in a retry loop.
        let request = proto::ShutdownRequest {
            tunnel_id: self.config.tunnel_id.clone(),
            client_id: self.client_id.clone(),
        };
        match client.call_once::<proto::ShutdownResponse>(URI_SHUTDOWN, &request.encode_to_vec()) {
            Ok(_) => log::info!(
                "tunnel {}: client {} shut down ({reason})",
                self.config.tunnel_id,
                self.client_id
            ),
            Err(e) => log::warn!(
                "tunnel {}: shutting client {} down failed: {e}",
                self.config.tunnel_id,
                self.client_id
            ),
        }
    }
}

//! [`Tunnels`]: tunnel workers under a dynamic supervisor, found by tunnel id; and
//! [`TunnelHandle`], the handle of one tunnel.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::error::TunnelError;
use otp_threads::supervisor::{ChildSpec, Restart, Shutdown};
use otp_threads::{DynamicSupervisor, DynamicSupervisorRef, Pid, RuntimeHandle, SupervisorError};

use super::batch::Batch;
use super::config::TunnelWorkerConfig;
use super::session::{Session, Shared, TunnelStatus, worker_name};

/// The registered name of the dynamic supervisor [`Tunnels::global`] starts.
pub const GLOBAL_SUPERVISOR_NAME: &str = "otp_threads.tunnel.workers";

/// Restart intensity of the supervisors [`Tunnels`] starts: 10 restarts in 60 s.
const MAX_RESTARTS: u32 = 10;
const PERIOD: Duration = Duration::from_secs(60);

/// How long a stopping worker may take beyond its one shutdown request.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);

/// Tunnel workers under one [`DynamicSupervisor`].
///
/// Each tunnel is a *transient* child: a worker that crashes or loses its session
/// (heartbeat timeout) is restarted and resumes from the service's checkpoints, with
/// the same subscriber channel (its `Sender` lives in the child spec, not in the
/// worker); a worker that stops normally (stopped, subscriber gone, fatal error) is
/// not. A worker registers itself under a name derived from its tunnel id, so a
/// runtime runs at most one worker per tunnel and [`stop`](Self::stop) finds it by id.
#[derive(Clone)]
pub struct Tunnels {
    supervisor: DynamicSupervisorRef,
    runtime: RuntimeHandle,
}

impl std::fmt::Debug for Tunnels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnels")
            .field("supervisor", &self.supervisor.pid())
            .finish()
    }
}

impl Tunnels {
    /// Starts a new, unnamed supervisor for tunnel workers (child of the runtime's
    /// root, stopped by [`Runtime::shutdown`](otp_threads::Runtime::shutdown)).
    pub fn start(runtime: &RuntimeHandle) -> Result<Tunnels, TunnelError> {
        let supervisor = DynamicSupervisor::new()
            .intensity(MAX_RESTARTS, PERIOD)
            .start(runtime)
            .map_err(TunnelError::Supervisor)?;
        Ok(Tunnels::from_supervisor(runtime, supervisor))
    }

    /// The runtime's shared supervisor of tunnel workers, registered as
    /// [`GLOBAL_SUPERVISOR_NAME`] and started on first use.
    pub fn global(runtime: &RuntimeHandle) -> Result<Tunnels, TunnelError> {
        if let Ok(supervisor) = DynamicSupervisorRef::whereis(runtime, GLOBAL_SUPERVISOR_NAME) {
            return Ok(Tunnels::from_supervisor(runtime, supervisor));
        }
        let started = DynamicSupervisor::new()
            .intensity(MAX_RESTARTS, PERIOD)
            .name(GLOBAL_SUPERVISOR_NAME)
            .start(runtime);
        match started {
            Ok(supervisor) => Ok(Tunnels::from_supervisor(runtime, supervisor)),
            // Another thread started it first.
            Err(e) => DynamicSupervisorRef::whereis(runtime, GLOBAL_SUPERVISOR_NAME)
                .map(|supervisor| Tunnels::from_supervisor(runtime, supervisor))
                .map_err(|_| TunnelError::Supervisor(e)),
        }
    }

    /// Tunnels under a dynamic supervisor started elsewhere (e.g. in your own tree
    /// with [`ChildSpec::dynamic_supervisor`]).
    pub fn from_supervisor(runtime: &RuntimeHandle, supervisor: DynamicSupervisorRef) -> Tunnels {
        Tunnels {
            supervisor,
            runtime: runtime.clone(),
        }
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &DynamicSupervisorRef {
        &self.supervisor
    }

    /// Starts a worker for `config.tunnel_id`: returns once it is connected, with its
    /// handle and the receiver of its batches.
    ///
    /// Fails with [`TunnelError::InvalidOption`] naming a bad option, with the
    /// service's error if the connect fails (e.g. `OTSPermissionDenied` for a wrong
    /// secret, after no retry: it is fatal), or with [`TunnelError::AlreadyRunning`].
    pub fn start_tunnel(
        &self,
        config: TunnelWorkerConfig,
    ) -> Result<(TunnelHandle, Receiver<Batch>), TunnelError> {
        config.validate()?;
        let (sender, receiver) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared::default());
        let tunnel_id = config.tunnel_id.clone();
        let shutdown = config
            .client
            .request_timeout
            .saturating_add(SHUTDOWN_MARGIN);
        let spec = {
            let shared = shared.clone();
            ChildSpec::new(worker_name(&tunnel_id), move |ctx| {
                let session = Session::new(config.clone(), sender.clone(), shared.clone());
                ctx.spawn_link(session).map(|worker| worker.pid())
            })
            .restart(Restart::Transient)
            .shutdown(Shutdown::Timeout(shutdown))
        };
        match self.supervisor.start_child(spec) {
            Ok(_) => Ok((
                TunnelHandle {
                    tunnel_id,
                    tunnels: self.clone(),
                    shared,
                },
                receiver,
            )),
            Err(e) => Err(shared
                .start_error
                .lock()
                .take()
                .unwrap_or(TunnelError::Supervisor(e))),
        }
    }

    /// The pid of the worker of `tunnel_id`, if one runs in this runtime.
    pub fn whereis(&self, tunnel_id: &str) -> Option<Pid> {
        self.runtime.whereis(&worker_name(tunnel_id))
    }

    /// Stops the worker of `tunnel_id` (its session is shut down on the service) and
    /// forgets it: its subscriber's receiver then disconnects.
    pub fn stop(&self, tunnel_id: &str) -> Result<(), TunnelError> {
        // A worker being restarted has no name for a moment: look again.
        for _ in 0..50 {
            let Some(pid) = self.whereis(tunnel_id) else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            match self.supervisor.terminate_child(&pid) {
                Ok(()) => return Ok(()),
                // Restarted in between: another pid now.
                Err(SupervisorError::NotFound { .. }) => continue,
                Err(e) => return Err(TunnelError::Supervisor(e)),
            }
        }
        Err(TunnelError::NotRunning {
            tunnel_id: tunnel_id.to_owned(),
        })
    }
}

/// The handle of one tunnel worker (across its restarts).
#[derive(Clone)]
pub struct TunnelHandle {
    tunnel_id: String,
    tunnels: Tunnels,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TunnelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelHandle")
            .field("tunnel_id", &self.tunnel_id)
            .field("pid", &self.pid())
            .finish()
    }
}

impl TunnelHandle {
    /// The tunnel.
    pub fn tunnel_id(&self) -> &str {
        &self.tunnel_id
    }

    /// The pid of the current worker, if one runs.
    pub fn pid(&self) -> Option<Pid> {
        self.tunnels.whereis(&self.tunnel_id)
    }

    /// `true` while a worker runs for the tunnel.
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// The client id of the current session.
    pub fn client_id(&self) -> Option<String> {
        self.shared.client_id.lock().clone()
    }

    /// Sessions connected so far: 1, plus one per restart.
    pub fn sessions(&self) -> u64 {
        *self.shared.sessions.lock()
    }

    /// How many undecodable records were skipped (under
    /// [`OnUndecodable::Skip`](super::OnUndecodable::Skip)), over all sessions.
    pub fn skipped_count(&self) -> u64 {
        self.shared.skipped.lock().total
    }

    /// The last [`SKIPPED_KEPT`](super::SKIPPED_KEPT) skipped records, oldest
    /// first, each with its raw bytes and why it could not be decoded.
    pub fn skipped_records(&self) -> Vec<super::UndecodableRecord> {
        self.shared.skipped.lock().kept.iter().cloned().collect()
    }

    /// The error that stopped the last session, if any.
    pub fn last_error(&self) -> Option<Arc<TunnelError>> {
        self.shared.last_error.lock().clone()
    }

    /// The current worker's channels and session, asked with a call.
    pub fn status(&self, timeout: Duration) -> Result<TunnelStatus, TunnelError> {
        let worker = self
            .tunnels
            .runtime
            .whereis_worker::<Session>(&worker_name(&self.tunnel_id))
            .map_err(|_| TunnelError::NotRunning {
                tunnel_id: self.tunnel_id.clone(),
            })?;
        worker
            .call_timeout((), timeout)
            .map_err(TunnelError::Runtime)
    }

    /// Stops the worker; see [`Tunnels::stop`].
    pub fn stop(&self) -> Result<(), TunnelError> {
        self.tunnels.stop(&self.tunnel_id)
    }
}

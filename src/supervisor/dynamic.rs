//! [`DynamicSupervisor`]: a supervisor whose children are started at run time.

use std::time::Duration;

use super::handle::DynamicSupervisorRef;
use super::{DEFAULT_MAX_RESTARTS, DEFAULT_PERIOD, Supervisor, SupervisorError, launch};
use crate::runtime::RuntimeHandle;
use crate::worker::{Context, Worker};

/// A dynamic supervisor (Elixir's `DynamicSupervisor`, OTP's `simple_one_for_one`
/// generalised to any spec): it starts with no children, each child is started at run
/// time with [`DynamicSupervisorRef::start_child`] and restarted alone (one for one),
/// and on stop all children are stopped at once under one deadline.
///
/// It runs as a [`Supervisor`] worker; this type only holds its settings.
#[derive(Clone, Debug)]
pub struct DynamicSupervisor {
    max_children: Option<usize>,
    max_restarts: u32,
    period: Duration,
    name: Option<String>,
}

impl Default for DynamicSupervisor {
    fn default() -> Self {
        DynamicSupervisor::new()
    }
}

impl DynamicSupervisor {
    /// No limit on children, 3 restarts in 5 seconds.
    pub fn new() -> DynamicSupervisor {
        DynamicSupervisor {
            max_children: None,
            max_restarts: DEFAULT_MAX_RESTARTS,
            period: DEFAULT_PERIOD,
            name: None,
        }
    }

    /// At most `max` children at a time; `start_child` beyond that fails with
    /// [`SupervisorError::MaxChildren`].
    pub fn max_children(mut self, max: usize) -> DynamicSupervisor {
        self.max_children = Some(max);
        self
    }

    /// Allows at most `max_restarts` restarts within `period`.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> DynamicSupervisor {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Registers the supervisor under `name`.
    pub fn name(mut self, name: impl Into<String>) -> DynamicSupervisor {
        self.name = Some(name.into());
        self
    }

    /// The supervisor worker these settings make.
    pub fn into_supervisor(self) -> Supervisor {
        let mut supervisor =
            Supervisor::dynamic(self.max_children).intensity(self.max_restarts, self.period);
        supervisor.name = self.name;
        supervisor
    }

    /// Starts the dynamic supervisor from a plain thread.
    pub fn start(self, runtime: &RuntimeHandle) -> Result<DynamicSupervisorRef, SupervisorError> {
        launch(self.into_supervisor(), |sup| runtime.spawn_worker(sup))
            .map(DynamicSupervisorRef::from)
    }

    /// Starts the dynamic supervisor linked to the calling worker, its parent.
    pub fn start_link<W: Worker>(
        self,
        ctx: &mut Context<W>,
    ) -> Result<DynamicSupervisorRef, SupervisorError> {
        launch(self.into_supervisor(), |sup| ctx.spawn_link(sup)).map(DynamicSupervisorRef::from)
    }
}

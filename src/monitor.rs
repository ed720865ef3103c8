//! Monitors: one-way, one DOWN per monitor.
//!
//! `monitor(pid)` returns a fresh [`MonitorRef`]; when the process terminates, the
//! watcher gets a [`Down`] with that reference and the exit reason. Monitoring a
//! process that is not running gives a DOWN with `NoProc` at once. Each call makes an
//! independent monitor with its own DOWN. `demonitor` stops a DOWN not yet sent; a
//! worker can also ask to flush one already delivered
//! ([`Context::demonitor`](crate::Context::demonitor)).
//!
//! Workers get DOWN messages in `handle_info`; plain threads get them on a crossbeam
//! [`Receiver`] ([`Monitor`], or [`RuntimeHandle::monitor_to`](crate::RuntimeHandle::monitor_to)).

use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::exit::{Down, ExitReason};
use crate::pid::{MonitorRef, Pid};
use crate::process::{ProcessCell, Status, Watcher};
use crate::runtime::RuntimeInner;

/// Sets up a monitor of `target` for `watcher`; `owner` is the monitoring worker, if
/// the watcher is one.
pub(crate) fn monitor(
    rt: &RuntimeInner,
    target: Pid,
    watcher: Watcher,
    owner: Option<&Arc<ProcessCell>>,
) -> MonitorRef {
    let reference = MonitorRef {
        id: rt.new_ref_id(),
        target,
    };
    // Recorded on the owner first, so that the owner's death always finds it.
    if let Some(owner) = owner {
        owner.state.lock().monitoring.insert(reference.id, target);
    }
    let watcher = match rt.lookup(&target) {
        Some(cell) => {
            let mut state = cell.state.lock();
            if state.status == Status::Alive {
                state.monitored_by.insert(reference.id, watcher);
                drop(state);
                // An owner killed meanwhile (its code still running) keeps no monitor:
                // its death may already have cleaned up before this one was added.
                if let Some(owner) = owner
                    && !owner.is_alive()
                {
                    demonitor(rt, &reference, Some(owner));
                }
                return reference;
            }
            watcher
        }
        None => watcher,
    };
    // Distribution: a process on another node (src/dist/hooks.rs).
    #[cfg(feature = "dist")]
    let Some(watcher) = crate::dist::hooks::monitor_remote(
        rt,
        reference,
        watcher,
        owner.map_or(rt.root, |owner| owner.pid),
    ) else {
        return reference;
    };
    let reason = if rt.is_local(&target) || target.node() == rt.node {
        ExitReason::NoProc
    } else {
        ExitReason::NoConnection
    };
    watcher.notify(reference, reason);
    reference
}

/// Removes a monitor. `true` if it was active, so that no DOWN will come for it.
pub(crate) fn demonitor(
    rt: &RuntimeInner,
    reference: &MonitorRef,
    owner: Option<&Arc<ProcessCell>>,
) -> bool {
    if let Some(owner) = owner {
        owner.state.lock().monitoring.remove(&reference.id);
    }
    match rt.lookup(&reference.target) {
        Some(cell) => cell
            .state
            .lock()
            .monitored_by
            .remove(&reference.id)
            .is_some(),
        // Distribution: a process on another node (src/dist/hooks.rs).
        #[cfg(feature = "dist")]
        None => crate::dist::hooks::demonitor_remote(rt, reference),
        #[cfg(not(feature = "dist"))]
        None => false,
    }
}

/// A monitor held by a plain thread: one [`Down`] arrives on [`receiver`](Monitor::receiver).
///
/// Dropping it removes the monitor.
pub struct Monitor {
    reference: MonitorRef,
    receiver: Receiver<Down>,
    runtime: Weak<RuntimeInner>,
}

impl Monitor {
    pub(crate) fn new(
        reference: MonitorRef,
        receiver: Receiver<Down>,
        runtime: &Arc<RuntimeInner>,
    ) -> Monitor {
        Monitor {
            reference,
            receiver,
            runtime: Arc::downgrade(runtime),
        }
    }

    /// The monitor's reference (it comes back in the DOWN).
    pub fn reference(&self) -> MonitorRef {
        self.reference
    }

    /// The channel the DOWN arrives on, for use in `select!`.
    pub fn receiver(&self) -> &Receiver<Down> {
        &self.receiver
    }

    /// Waits for the DOWN, up to `timeout`.
    pub fn wait(&self, timeout: Duration) -> Option<Down> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// Removes the monitor; always `true`, as `erlang:demonitor/1`. The DOWN, if one
    /// was sent already, goes with this monitor's own channel.
    pub fn demonitor(self) -> bool {
        self.remove();
        true
    }

    /// Removes the monitor, as `erlang:demonitor(Ref, [info])`: `true` if it was
    /// active (no DOWN will come), `false` if its DOWN had been sent already.
    pub fn demonitor_info(self) -> bool {
        self.remove()
    }

    fn remove(&self) -> bool {
        match self.runtime.upgrade() {
            Some(runtime) => demonitor(&runtime, &self.reference, None),
            None => false,
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.remove();
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("reference", &self.reference)
            .finish()
    }
}

//! The children a supervisor keeps, and what `which_children` and `count_children`
//! report about them.

use std::collections::{BTreeMap, HashMap};

use super::spec::{ChildKind, ChildSpec};
use crate::pid::Pid;

/// Where a child is in its life, as `which_children` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildState {
    /// Running as this pid.
    Running(Pid),
    /// Its restart failed and is being retried (OTP's `restarting`).
    Restarting,
    /// Not running; the spec is kept (OTP's `undefined`), so
    /// [`restart_child`](super::SupervisorRef::restart_child) can start it again.
    Terminated,
}

impl ChildState {
    /// The pid, if running.
    pub fn pid(&self) -> Option<Pid> {
        match self {
            ChildState::Running(pid) => Some(*pid),
            _ => None,
        }
    }
}

/// One child, as [`which_children`](super::SupervisorRef::which_children) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child's id (for a dynamic supervisor's children, the id of the spec it was
    /// started from; several children may share it).
    pub id: String,
    /// Running, restarting or terminated.
    pub state: ChildState,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

/// What [`count_children`](super::SupervisorRef::count_children) reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildCounts {
    /// All child specs, running or not.
    pub specs: usize,
    /// Children that are running.
    pub active: usize,
    /// Child specs of kind supervisor, running or not.
    pub supervisors: usize,
    /// Child specs of kind worker, running or not.
    pub workers: usize,
}

/// A child: its spec and its state.
pub(crate) struct Child {
    pub(crate) spec: ChildSpec,
    pub(crate) state: ChildState,
}

impl Child {
    pub(crate) fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id.clone(),
            state: self.state,
            kind: self.spec.kind,
        }
    }
}

/// Counts children.
pub(crate) fn count<'a>(children: impl Iterator<Item = &'a Child>) -> ChildCounts {
    let mut counts = ChildCounts::default();
    for child in children {
        counts.specs += 1;
        if matches!(child.state, ChildState::Running(_)) {
            counts.active += 1;
        }
        match child.spec.kind {
            ChildKind::Worker => counts.workers += 1,
            ChildKind::Supervisor => counts.supervisors += 1,
        }
    }
    counts
}

/// A dynamic supervisor's children: keyed by a sequence number (stable across
/// restarts), with an index by pid for the EXITs.
#[derive(Default)]
pub(crate) struct DynamicChildren {
    pub(crate) entries: BTreeMap<u64, Child>,
    pub(crate) by_pid: HashMap<Pid, u64>,
    next_key: u64,
}

impl DynamicChildren {
    pub(crate) fn insert(&mut self, child: Child) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        if let ChildState::Running(pid) = child.state {
            self.by_pid.insert(pid, key);
        }
        self.entries.insert(key, child);
        key
    }

    pub(crate) fn remove(&mut self, key: u64) -> Option<Child> {
        let child = self.entries.remove(&key)?;
        if let ChildState::Running(pid) = child.state {
            self.by_pid.remove(&pid);
        }
        Some(child)
    }

    /// Sets a child's state, keeping the pid index right.
    pub(crate) fn set_state(&mut self, key: u64, state: ChildState) {
        if let Some(child) = self.entries.get_mut(&key) {
            if let ChildState::Running(old) = child.state {
                self.by_pid.remove(&old);
            }
            if let ChildState::Running(new) = state {
                self.by_pid.insert(new, key);
            }
            child.state = state;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

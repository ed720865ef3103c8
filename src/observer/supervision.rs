//! What a supervisor shows the observer: its strategy, intensity and children.
//!
//! Contract: a supervisor publishes a [`SupervisorView`] on its process cell in
//! `init`, and updates it from its own thread when it starts a child and when a child
//! exits (never on the message path of anyone else). Restart counts are kept per
//! child id: a dynamic supervisor's children of one spec share an id, so their counts
//! are summed under it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ProcessInfo;
use crate::exit::ExitReason;
use crate::pid::Pid;
use crate::process::ProcessCell;
use crate::supervisor::Strategy;
use crate::supervisor::intensity::RestartWindow;

/// One child of a supervisor, as the snapshot shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisedChild {
    /// The child spec's id.
    pub id: String,
    /// Its live process, if it runs now.
    pub pid: Option<Pid>,
    /// How many times it was started again after its first start (by a restart, or
    /// by `restart_child`); `None` for a dynamic supervisor's child, each of which is
    /// shown as its own process only while it runs.
    pub restarts: Option<u64>,
    /// The reason its last process exited with, if one did.
    pub last_exit: Option<ExitReason>,
}

/// One supervisor and its children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorNode {
    /// The supervisor.
    pub pid: Pid,
    /// Who started it (another supervisor, if it is a child in a tree).
    pub parent: Pid,
    /// Its registered name.
    pub registered_name: Option<Arc<str>>,
    /// Its restart strategy.
    pub strategy: Strategy,
    /// The restarts allowed within `period`.
    pub max_restarts: u32,
    /// The intensity's period.
    pub period: Duration,
    /// The restarts within the last `period`, as the intensity counts them.
    pub restarts_in_period: usize,
    /// Its children, in the order it first started them.
    pub children: Vec<SupervisedChild>,
}

struct Published {
    strategy: Strategy,
    /// The supervisor's intensity window, kept alongside its own: each restart is added
    /// to both, so a supervisor restarting thousands of times a second pays no copy of
    /// its window per restart.
    restarts: RestartWindow,
    /// Id, current pid, starts, last exit.
    children: Vec<(String, Option<Pid>, u64, Option<ExitReason>)>,
}

/// A supervisor's published state.
pub(crate) struct SupervisorView {
    /// A dynamic supervisor: children share ids, so each start is a new entry.
    dynamic: bool,
    published: Mutex<Published>,
}

impl SupervisorView {
    pub(crate) fn new(
        strategy: Strategy,
        max_restarts: u32,
        period: Duration,
        dynamic: bool,
    ) -> SupervisorView {
        SupervisorView {
            dynamic,
            published: Mutex::new(Published {
                strategy,
                restarts: RestartWindow::new(max_restarts, period),
                children: Vec::new(),
            }),
        }
    }

    /// The child `id` started as `pid`.
    pub(crate) fn child_started(&self, id: &str, pid: Pid) {
        let mut published = self.published.lock();
        if self.dynamic {
            published.children.push((id.to_owned(), Some(pid), 1, None));
            return;
        }
        match published.children.iter_mut().find(|child| child.0 == id) {
            Some(child) => {
                child.1 = Some(pid);
                child.2 = child.2.saturating_add(1);
            }
            None => published.children.push((id.to_owned(), Some(pid), 1, None)),
        }
    }

    /// The child process `pid` exited with `reason`.
    pub(crate) fn child_exited(&self, pid: Pid, reason: &ExitReason) {
        let mut published = self.published.lock();
        if self.dynamic {
            published.children.retain(|child| child.1 != Some(pid));
            return;
        }
        if let Some(child) = published
            .children
            .iter_mut()
            .find(|child| child.1 == Some(pid))
        {
            child.1 = None;
            child.3 = Some(reason.clone());
        }
    }

    /// The child `id` is no longer the supervisor's (deleted, or temporary and gone).
    pub(crate) fn child_removed(&self, id: &str) {
        self.published.lock().children.retain(|child| child.0 != id);
    }

    /// The supervisor restarted a child at `at` (counted against its intensity).
    pub(crate) fn restart_added(&self, at: Instant) {
        // Whether it fits the intensity is the supervisor's to decide.
        let _ = self.published.lock().restarts.add_restart(at);
    }

    /// The supervisor as the snapshot shows it; `now` is the runtime's clock.
    pub(crate) fn node(
        &self,
        cell: &ProcessCell,
        processes: &[ProcessInfo],
        now: Instant,
    ) -> SupervisorNode {
        let published = self.published.lock();
        let period = published.restarts.period();
        let restarts_in_period = published
            .restarts
            .times()
            .filter(|&time| now.saturating_duration_since(time) <= period)
            .count();
        let registered_name = processes
            .iter()
            .find(|info| info.pid == cell.pid)
            .and_then(|info| info.registered_name.clone());
        SupervisorNode {
            pid: cell.pid,
            parent: cell.parent,
            registered_name,
            strategy: published.strategy,
            max_restarts: published.restarts.max_restarts(),
            period,
            restarts_in_period,
            children: published
                .children
                .iter()
                .map(|(id, pid, starts, last_exit)| SupervisedChild {
                    id: id.clone(),
                    // A child whose exit the supervisor has not handled yet is gone.
                    pid: pid.filter(|pid| processes.iter().any(|info| info.pid == *pid)),
                    restarts: (!self.dynamic).then(|| starts.saturating_sub(1)),
                    last_exit: last_exit.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_older_than_the_period_leave_the_window_as_new_ones_come() {
        let view = SupervisorView::new(Strategy::OneForOne, 3, Duration::from_secs(1), false);
        let start = Instant::now();
        let window = |view: &SupervisorView| -> Vec<Instant> {
            view.published.lock().restarts.times().collect()
        };
        view.restart_added(start);
        view.restart_added(start + Duration::from_millis(500));
        assert_eq!(window(&view).len(), 2);
        // 1.6 s after the first and 1.1 s after the second: both are out of the period.
        let late = start + Duration::from_millis(1600);
        view.restart_added(late);
        assert_eq!(window(&view), [late]);
        // Exactly one period after the last one still counts, as the intensity does.
        let edge = late + Duration::from_secs(1);
        view.restart_added(edge);
        assert_eq!(window(&view), [late, edge]);
    }
}

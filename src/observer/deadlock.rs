//! Deadlock detection on the wait-for graph of calls.
//!
//! Contract: a call blocks its caller's thread until the callee answers, so while
//! worker A waits on a call to B, A handles nothing. If B (or a chain B → … that
//! ends) is itself blocked calling A, no call in the cycle can ever be answered by
//! the workers in it: an exact deadlock, not a guess from waiting times. The edge is
//! published (`Activity::start_calling`, `SeqCst`) before the chain is walked, so of
//! two calls that close one cycle at the same moment at least one sees it.
//!
//! The one case this does not see through: a worker that keeps a call's
//! [`ReplyTo`](crate::ReplyTo) and hands it to another thread to answer. A cycle
//! through such a worker is still reported (its thread is blocked), but another
//! thread may end it; do not turn on `fail_deadlocked_calls` for such designs.

use std::sync::Arc;

use crate::error::Error;
use crate::pid::Pid;
use crate::process::ProcessCell;
use crate::runtime::RuntimeInner;

/// The wait-for edge of one call, removed when the call returns in any way.
pub(crate) struct Waiting {
    caller: Arc<ProcessCell>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.caller.activity.stop_calling();
    }
}

/// Publishes the edge `caller → callee` and checks whether it closes a cycle: a
/// cycle is logged, and failed with [`Error::Deadlock`] if the runtime says so.
pub(crate) fn start_waiting(
    rt: &RuntimeInner,
    caller: Arc<ProcessCell>,
    callee: &ProcessCell,
) -> Result<Waiting, Error> {
    caller
        .activity
        .start_calling(callee.pid.number(), std::time::Instant::now());
    let waiting = Waiting { caller };
    // The common case costs one load: the callee is not calling anyone.
    let Some(next) = callee.activity.calling() else {
        return Ok(waiting);
    };
    let Some(cycle) = cycle_through(rt, &waiting.caller, callee.pid, next) else {
        return Ok(waiting);
    };
    log::error!("deadlock: call cycle {}", describe(&cycle));
    if rt.fail_deadlocked_calls {
        // Dropping the guard removes the edge: the cycle is open again.
        drop(waiting);
        return Err(Error::Deadlock(cycle));
    }
    Ok(waiting)
}

/// Follows the edges from `callee` (which calls the process numbered `next`): the
/// cycle, caller first, if the chain comes back to `caller`.
fn cycle_through(
    rt: &RuntimeInner,
    caller: &ProcessCell,
    callee: Pid,
    mut next: u64,
) -> Option<Vec<Pid>> {
    let mut cycle = vec![caller.pid, callee];
    loop {
        if next == caller.pid.number() {
            return Some(cycle);
        }
        let cell = rt.cell_by_number(next)?;
        // A cycle that does not pass through the caller was reported by whoever
        // closed it; the caller only waits on it.
        if cycle.contains(&cell.pid) {
            return None;
        }
        cycle.push(cell.pid);
        next = cell.activity.calling()?;
    }
}

/// Every cycle in the current wait-for graph, each once, starting at its lowest pid.
pub(crate) fn current_cycles(rt: &RuntimeInner, cells: &[Arc<ProcessCell>]) -> Vec<Vec<Pid>> {
    let mut cycles: Vec<Vec<Pid>> = Vec::new();
    for cell in cells {
        let Some(next) = cell.activity.calling() else {
            continue;
        };
        let Some(callee) = rt.cell_by_number(next) else {
            continue;
        };
        let Some(after) = callee.activity.calling() else {
            continue;
        };
        if let Some(mut cycle) = cycle_through(rt, cell, callee.pid, after) {
            let lowest = (0..cycle.len())
                .min_by_key(|&index| cycle[index].number())
                .unwrap_or(0);
            cycle.rotate_left(lowest);
            if !cycles.contains(&cycle) {
                cycles.push(cycle);
            }
        }
    }
    cycles
}

/// `<0.1.0> -> <0.2.0> -> <0.1.0>`.
pub(crate) fn describe(cycle: &[Pid]) -> String {
    let mut text = String::new();
    for pid in cycle.iter().chain(cycle.first()) {
        if !text.is_empty() {
            text.push_str(" -> ");
        }
        text.push_str(&pid.to_string());
    }
    text
}

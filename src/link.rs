//! Links: bidirectional, at most one between two processes.
//!
//! A link makes two processes share their fate: when one terminates, the other gets an
//! exit signal (see [`exit`](crate::exit) for what it does with it). Linking twice makes
//! one link; [`unlink`] removes it, after which no signal travels over it (an EXIT
//! message already in the mailbox stays, as in Erlang).

use std::sync::Arc;

use crate::error::Error;
use crate::exit::ExitReason;
use crate::pid::Pid;
use crate::process::{ProcessCell, Signal, Status};
use crate::runtime::RuntimeInner;

/// Links `from` (the calling process) with `to`.
///
/// Linking to a process that does not exist is `NoProc`: an error for a caller that
/// does not trap exits (it is not killed), an EXIT message with reason `NoProc` for
/// one that does.
pub(crate) fn link(rt: &RuntimeInner, from: &Arc<ProcessCell>, to: Pid) -> Result<(), Error> {
    if to == from.pid {
        return Ok(());
    }
    if !rt.is_local(&to) && to.node() != rt.node {
        // Distribution: a process on another node (src/dist/hooks.rs).
        #[cfg(feature = "dist")]
        return crate::dist::hooks::link_remote(rt, from, to);
        #[cfg(not(feature = "dist"))]
        return Err(Error::NoConnection(to.node().to_string()));
    }
    let linked = match rt.lookup(&to) {
        Some(target) => with_both_locked(from, &target, |from_state, target_state| {
            if from_state.status != Status::Alive || target_state.status != Status::Alive {
                return false;
            }
            from_state.links.insert(to);
            target_state.links.insert(from.pid);
            true
        }),
        None => false,
    };
    if linked {
        return Ok(());
    }
    let state = from.state.lock();
    // A caller killed while its code still runs links to nothing.
    if state.status != Status::Alive {
        return Err(Error::NoProc);
    }
    if state.trap_exit {
        from.mailbox.signal(Signal::Exit {
            from: to,
            reason: ExitReason::NoProc,
        });
        Ok(())
    } else {
        Err(Error::NoProc)
    }
}

/// Removes the link between `from` and `to`, if any.
pub(crate) fn unlink(rt: &RuntimeInner, from: &Arc<ProcessCell>, to: Pid) {
    match rt.lookup(&to) {
        Some(target) if target.pid != from.pid => {
            with_both_locked(from, &target, |from_state, target_state| {
                from_state.links.remove(&to);
                target_state.links.remove(&from.pid);
            });
        }
        _ => {
            from.state.lock().links.remove(&to);
            // Distribution: a process on another node (src/dist/hooks.rs).
            #[cfg(feature = "dist")]
            crate::dist::hooks::unlink_remote(rt, from.pid, to);
        }
    }
}

/// Locks two distinct processes in pid order, so that two threads linking the same
/// pair from both ends cannot deadlock.
fn with_both_locked<T>(
    a: &Arc<ProcessCell>,
    b: &Arc<ProcessCell>,
    f: impl FnOnce(&mut crate::process::ProcessState, &mut crate::process::ProcessState) -> T,
) -> T {
    if a.pid < b.pid {
        let mut a_state = a.state.lock();
        let mut b_state = b.state.lock();
        f(&mut a_state, &mut b_state)
    } else {
        let mut b_state = b.state.lock();
        let mut a_state = a.state.lock();
        f(&mut a_state, &mut b_state)
    }
}

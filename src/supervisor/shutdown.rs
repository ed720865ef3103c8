//! Stopping children, as `shutdown/1` and `terminate_dynamic_children` of
//! `supervisor.erl`.
//!
//! One child: monitor it, unlink it, send it a `Shutdown` exit signal from the
//! supervisor (its parent, so a child that traps exits runs `terminate`), wait for
//! the DOWN up to the child's timeout, then kill it. The supervisor waits for the
//! DOWN, not the EXIT: a child that unlinked itself could otherwise hang it. The EXIT
//! that may still come over the link is for a pid that is no longer a child, and is
//! ignored.
//!
//! A group (a dynamic supervisor's children): every child is monitored and signalled
//! at once, and one deadline covers them all; those still running then are killed.

use std::collections::HashMap;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use super::Supervisor;
use super::spec::{Restart, Shutdown};
use crate::exit::{Down, ExitReason};
use crate::pid::Pid;
use crate::worker::Context;

/// A child to stop.
pub(crate) struct Stopping<'a> {
    pub(crate) id: &'a str,
    pub(crate) pid: Pid,
    pub(crate) shutdown: Shutdown,
    pub(crate) restart: Restart,
}

/// Stops one child and waits until it is dead.
pub(crate) fn shutdown_child(ctx: &mut Context<Supervisor>, child: Stopping<'_>) {
    let monitor = ctx.runtime().monitor(&child.pid);
    ctx.unlink(&child.pid);
    let down = match child.shutdown {
        Shutdown::BrutalKill => {
            ctx.exit(&child.pid, ExitReason::Kill);
            monitor.receiver().recv().ok()
        }
        Shutdown::Infinity => {
            ctx.exit(&child.pid, ExitReason::Shutdown);
            monitor.receiver().recv().ok()
        }
        Shutdown::Timeout(timeout) => {
            ctx.exit(&child.pid, ExitReason::Shutdown);
            match monitor.receiver().recv_timeout(timeout) {
                Ok(down) => Some(down),
                Err(_) => {
                    log::warn!(
                        "supervisor {}: child {} ({}) still running {timeout:?} after shutdown; killing it",
                        ctx.pid(),
                        child.id,
                        child.pid
                    );
                    ctx.exit(&child.pid, ExitReason::Kill);
                    monitor.receiver().recv().ok()
                }
            }
        }
    };
    let reason = down.map_or(ExitReason::Killed, |down| down.reason);
    check_reason(ctx.pid(), &child, &reason);
}

/// Stops a group of children at once under one deadline, the longest of their
/// timeouts. Children with [`Shutdown::Infinity`] are waited for without a deadline.
pub(crate) fn shutdown_group(ctx: &mut Context<Supervisor>, children: Vec<Stopping<'_>>) {
    if children.is_empty() {
        return;
    }
    let (sender, downs) = crossbeam_channel::unbounded::<Down>();
    let mut pending: HashMap<Pid, Stopping<'_>> = HashMap::with_capacity(children.len());
    let mut longest = Duration::ZERO;
    for child in children {
        ctx.runtime().monitor_to(&child.pid, &sender);
        ctx.unlink(&child.pid);
        if let Shutdown::Timeout(timeout) = child.shutdown {
            longest = longest.max(timeout);
        }
        pending.insert(child.pid, child);
    }
    drop(sender);
    for child in pending.values() {
        let reason = match child.shutdown {
            Shutdown::BrutalKill => ExitReason::Kill,
            _ => ExitReason::Shutdown,
        };
        ctx.exit(&child.pid, reason);
    }
    let deadline = crate::timer::deadline_after(longest);
    let mut killed = false;
    while !pending.is_empty() {
        let received = if killed {
            downs.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            downs.recv_deadline(deadline)
        };
        match received {
            Ok(down) => {
                if let Some(child) = pending.remove(&down.pid) {
                    check_reason(ctx.pid(), &child, &down.reason);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                killed = true;
                let overdue: Vec<Pid> = pending
                    .values()
                    .filter(|child| matches!(child.shutdown, Shutdown::Timeout(_)))
                    .map(|child| child.pid)
                    .collect();
                if !overdue.is_empty() {
                    log::warn!(
                        "supervisor {}: killing {} children still running {longest:?} after shutdown",
                        ctx.pid(),
                        overdue.len()
                    );
                }
                for pid in overdue {
                    ctx.exit(&pid, ExitReason::Kill);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}

/// The reason checks after a shutdown: `Killed` is expected after a brutal kill,
/// `Shutdown` after a shutdown signal; `Normal` and `ShutdownWith` are accepted from
/// children that are not permanent. Anything else is a shutdown error, logged.
fn check_reason(supervisor: Pid, child: &Stopping<'_>, reason: &ExitReason) {
    let expected = match (child.shutdown, reason) {
        (Shutdown::BrutalKill, ExitReason::Killed) => true,
        (Shutdown::Timeout(_) | Shutdown::Infinity, ExitReason::Shutdown) => true,
        (_, ExitReason::Normal | ExitReason::ShutdownWith(_)) => {
            child.restart != Restart::Permanent
        }
        // Dead before we looked: its EXIT, already in our mailbox, had the reason.
        (_, ExitReason::NoProc) => true,
        _ => false,
    };
    if !expected {
        log::error!(
            "supervisor {supervisor}: shutdown error for child {} ({}): {reason}",
            child.id,
            child.pid
        );
    }
}

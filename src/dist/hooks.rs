//! The seams between the core runtime and distribution.
//!
//! The core calls these (behind `cfg(feature = "dist")`) where a link, an exit signal
//! or a monitor involves a pid of another node; they find the runtime's [`Node`]
//! (if it has one) and speak the protocol. Without a node, the core's own rules apply
//! (`NoConnection`).
//!
//! [`Node`]: super::Node

use std::sync::{Arc, Weak};

use parking_lot::RwLock;

use super::control::{Control, ProcessRef, WirePid};
use super::node::reason::{reason_from_term, reason_to_term};
use super::node::{LocalMonitor, NodeInner};
use super::term::{FromTerm, Term};
use crate::error::Error;
use crate::exit::ExitReason;
use crate::pid::{MonitorRef, Pid};
use crate::process::{ProcessCell, Signal, Watcher, deliver_exit};
use crate::runtime::{RuntimeHandle, RuntimeInner};

static NODES: RwLock<Vec<Weak<NodeInner>>> = RwLock::new(Vec::new());

pub(crate) fn register_node(node: &Arc<NodeInner>) {
    let mut nodes = NODES.write();
    nodes.retain(|weak| weak.strong_count() > 0);
    nodes.push(Arc::downgrade(node));
}

pub(crate) fn unregister_node(node: &Arc<NodeInner>) {
    NODES
        .write()
        .retain(|weak| weak.upgrade().is_some_and(|n| !Arc::ptr_eq(&n, node)));
}

/// The node a runtime incarnation runs, if any.
fn node_for(rt: &RuntimeInner) -> Option<Arc<NodeInner>> {
    NODES
        .read()
        .iter()
        .filter_map(Weak::upgrade)
        .find(|node| node.node == rt.node && node.creation == rt.creation)
}

fn is_remote(rt: &RuntimeInner, pid: &Pid) -> bool {
    pid.node() != rt.node
}

fn pid_of(wire: &WirePid) -> Option<Pid> {
    Pid::from_term(Term::from(wire.clone())).ok()
}

/// Core hook (process death): `from` died linked to `to`. Returns `true` when `to`
/// is on another node (the EXIT goes over its connection, if there is one).
pub(crate) fn link_exit_to_remote(
    rt: &RuntimeInner,
    from: Pid,
    to: Pid,
    reason: &ExitReason,
) -> bool {
    if !is_remote(rt, &to) {
        return false;
    }
    if let Some(node) = node_for(rt)
        && let Some(connection) = node.existing(to.node().as_str())
    {
        let exit = Control::PayloadExit {
            from: node.wire_pid(from),
            to: node.wire_pid(to),
        };
        let _ = connection.send(node.now(), &exit, Some(&reason_to_term(reason)));
    }
    true
}

/// Core hook (`link`): links local `from` with `to` on another node. An unreachable
/// node is `NoConnection`, delivered as the local rules deliver `NoProc`.
pub(crate) fn link_remote(
    rt: &RuntimeInner,
    from: &Arc<ProcessCell>,
    to: Pid,
) -> Result<(), Error> {
    let connection = node_for(rt).and_then(|node| {
        node.connection(to.node().as_str())
            .ok()
            .map(|connection| (node, connection))
    });
    let Some((node, connection)) = connection else {
        let state = from.state.lock();
        if state.trap_exit {
            from.mailbox.signal(Signal::Exit {
                from: to,
                reason: ExitReason::NoConnection,
            });
            return Ok(());
        }
        return Err(Error::NoConnection(to.node().to_string()));
    };
    from.state.lock().links.insert(to);
    let link = Control::Link {
        from: node.wire_pid(from.pid),
        to: node.wire_pid(to),
    };
    let _ = connection.send(node.now(), &link, None);
    Ok(())
}

/// Core hook (`unlink`): the local side is already removed; tell the other node.
pub(crate) fn unlink_remote(rt: &RuntimeInner, from: Pid, to: Pid) {
    if !is_remote(rt, &to) {
        return;
    }
    if let Some(node) = node_for(rt)
        && let Some(connection) = node.existing(to.node().as_str())
    {
        let unlink = Control::UnlinkId {
            id: rt.new_ref_id(),
            from: node.wire_pid(from),
            to: node.wire_pid(to),
        };
        let _ = connection.send(node.now(), &unlink, None);
    }
}

/// Core hook (`monitor`): a monitor of a process on another node. Returns the watcher
/// back when this runtime has no node or the node is unreachable (the core then sends
/// the `NoConnection` DOWN at once).
pub(crate) fn monitor_remote(
    rt: &RuntimeInner,
    reference: MonitorRef,
    watcher: Watcher,
    owner: Pid,
) -> Option<Watcher> {
    let target = reference.target;
    if !is_remote(rt, &target) {
        return Some(watcher);
    }
    let Some(node) = node_for(rt) else {
        return Some(watcher);
    };
    let Ok(connection) = node.connection(target.node().as_str()) else {
        return Some(watcher);
    };
    let wire = node.new_reference();
    node.local_monitors.lock().insert(
        wire.clone(),
        LocalMonitor {
            peer: connection.peer.name.clone(),
            reference,
            watcher,
            target: ProcessRef::Pid(node.wire_pid(target)),
        },
    );
    let monitor = Control::MonitorP {
        from: node.wire_pid(owner),
        to: ProcessRef::Pid(node.wire_pid(target)),
        reference: wire,
    };
    let _ = connection.send(node.now(), &monitor, None);
    None
}

/// Core hook (`demonitor`): `true` if `reference` was an active monitor of a process
/// on another node (now removed there too).
pub(crate) fn demonitor_remote(rt: &RuntimeInner, reference: &MonitorRef) -> bool {
    if !is_remote(rt, &reference.target) {
        return false;
    }
    let Some(node) = node_for(rt) else {
        return false;
    };
    let found = {
        let mut monitors = node.local_monitors.lock();
        let wire = monitors
            .iter()
            .find(|(_, m)| m.reference == *reference)
            .map(|(wire, _)| wire.clone());
        wire.and_then(|wire| monitors.remove(&wire).map(|m| (wire, m)))
    };
    let Some((wire, monitor)) = found else {
        return false;
    };
    if let Some(connection) = node.existing(&monitor.peer) {
        let demonitor = Control::DemonitorP {
            from: node.wire_pid(node.runtime.root_pid()),
            to: monitor.target,
            reference: wire,
        };
        let _ = connection.send(node.now(), &demonitor, None);
    }
    true
}

/// A LINK from another node to one of ours.
pub(crate) fn remote_link(
    node: &Arc<NodeInner>,
    connection: &super::node::ConnectionRef,
    from: WirePid,
    to: WirePid,
) {
    let (Some(remote), Some(local)) = (pid_of(&from), local_pid(node, &to)) else {
        return;
    };
    let linked = node.runtime.inner.lookup(&local).is_some_and(|cell| {
        let mut state = cell.state.lock();
        if state.status == crate::process::Status::Alive {
            state.links.insert(remote);
            true
        } else {
            false
        }
    });
    if !linked {
        // Linking to a process that is gone: the linker gets `noproc` over the link.
        let exit = Control::PayloadExit { from: to, to: from };
        let noproc = reason_to_term(&ExitReason::NoProc);
        let _ = connection.send(node.now(), &exit, Some(&noproc));
    }
}

/// An UNLINK_ID from another node.
pub(crate) fn remote_unlink(node: &Arc<NodeInner>, from: &WirePid, to: &WirePid) {
    let (Some(remote), Some(local)) = (pid_of(from), local_pid(node, to)) else {
        return;
    };
    if let Some(cell) = node.runtime.inner.lookup(&local) {
        cell.state.lock().links.remove(&remote);
    }
}

/// An EXIT (over a link) or EXIT2 (`exit/2`) from another node to one of ours.
pub(crate) fn remote_exit(
    node: &Arc<NodeInner>,
    from: &WirePid,
    to: &WirePid,
    reason: &Term,
    linked: bool,
) {
    let (Some(remote), Some(local)) = (pid_of(from), local_pid(node, to)) else {
        return;
    };
    deliver_exit(
        &node.runtime.inner,
        remote,
        local,
        reason_from_term(reason),
        linked,
    );
}

/// A pid of this node (only those are interned and looked up).
fn local_pid(node: &NodeInner, wire: &WirePid) -> Option<Pid> {
    if wire.node.name != node.name {
        return None;
    }
    pid_of(wire)
}

/// The connection to `peer` is gone: every local process linked to a process there
/// gets an exit signal `noconnection`, as over a broken link.
pub(crate) fn break_links_to(runtime: &RuntimeHandle, peer: &str) {
    for pid in runtime.processes() {
        let Some(cell) = runtime.inner.lookup(&pid) else {
            continue;
        };
        let remote: Vec<Pid> = cell
            .state
            .lock()
            .links
            .iter()
            .filter(|linked| linked.node().as_str() == peer)
            .copied()
            .collect();
        for linked in remote {
            deliver_exit(&runtime.inner, linked, pid, ExitReason::NoConnection, true);
        }
    }
}

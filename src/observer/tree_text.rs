//! The snapshot's supervision trees as indented text, for a terminal or a log.
//!
//! Contract: one line per supervisor and per child, indented under its supervisor
//! with box-drawing branches; each line names the child id (or registered name), the
//! pid, the worker's type, its status, its mailbox depth and, for a static child, its
//! restart count and last exit reason. A supervisor's line adds its strategy and the
//! intensity used / allowed. Processes outside any tree follow, then the call cycles
//! and the zombies, if any. The text is for people: its layout may change; programs
//! read [`Snapshot`] or its JSON.

use std::fmt::{self, Write};

use super::{ProcessInfo, ProcessStatus, Snapshot, SupervisedChild, SupervisorNode};
use crate::supervisor::Strategy;

/// How deep nested supervisors are followed: a guard against a malformed snapshot
/// (a supervisor listed as its own descendant), far beyond any real tree.
const MAX_DEPTH: usize = 64;

pub(super) fn render(snapshot: &Snapshot, out: &mut impl Write) -> fmt::Result {
    writeln!(out, "node {}", snapshot.node.as_str())?;
    if snapshot.tree_roots.is_empty() {
        writeln!(out, "(no supervision tree)")?;
    }
    for root in &snapshot.tree_roots {
        if let Some(node) = snapshot.supervisor(root) {
            let label = node.registered_name.as_deref().unwrap_or("supervisor");
            supervisor_line(snapshot, out, label, node, None)?;
            children(snapshot, out, node, "", 1)?;
        }
    }
    if !snapshot.outside_trees.is_empty() {
        writeln!(out, "outside any tree:")?;
        for pid in &snapshot.outside_trees {
            if let Some(info) = snapshot.process(pid) {
                let label = info.registered_name.as_deref().unwrap_or("-");
                write!(out, "  {label} {pid}")?;
                process_details(out, info)?;
                writeln!(out)?;
            }
        }
    }
    for cycle in &snapshot.deadlocks {
        writeln!(
            out,
            "DEADLOCK: call cycle {}",
            super::deadlock::describe(cycle)
        )?;
    }
    if !snapshot.zombies.is_empty() {
        write!(out, "zombies (dead, thread still in user code):")?;
        for pid in &snapshot.zombies {
            write!(out, " {pid}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn children(
    snapshot: &Snapshot,
    out: &mut impl Write,
    node: &SupervisorNode,
    indent: &str,
    depth: usize,
) -> fmt::Result {
    for (index, child) in node.children.iter().enumerate() {
        let last = index + 1 == node.children.len();
        let branch = if last { "└─ " } else { "├─ " };
        write!(out, "{indent}{branch}")?;
        let nested = child
            .pid
            .and_then(|pid| snapshot.supervisor(&pid))
            .filter(|_| depth < MAX_DEPTH);
        match nested {
            Some(inner) => {
                supervisor_line(snapshot, out, &child.id, inner, Some(child))?;
                let deeper = format!("{indent}{}", if last { "   " } else { "│  " });
                children(snapshot, out, inner, &deeper, depth + 1)?;
            }
            None => child_line(snapshot, out, child)?,
        }
    }
    Ok(())
}

fn supervisor_line(
    snapshot: &Snapshot,
    out: &mut impl Write,
    label: &str,
    node: &SupervisorNode,
    as_child: Option<&SupervisedChild>,
) -> fmt::Result {
    write!(
        out,
        "{label} {} supervisor {}, {}/{} restarts in {:?}",
        node.pid,
        strategy_name(node.strategy),
        node.restarts_in_period,
        node.max_restarts,
        node.period
    )?;
    if let Some(info) = snapshot.process(&node.pid) {
        write!(
            out,
            ": {}, mailbox {}",
            status_text(&info.status),
            info.mailbox_len
        )?;
    }
    // A nested supervisor's own restarts, as a child of its supervisor.
    if let Some(child) = as_child.filter(|child| child.restarts.is_some()) {
        write!(out, ", {}", restart_text(child))?;
    }
    writeln!(out)
}

fn child_line(snapshot: &Snapshot, out: &mut impl Write, child: &SupervisedChild) -> fmt::Result {
    write!(out, "{}", child.id)?;
    match child.pid.and_then(|pid| snapshot.process(&pid)) {
        Some(info) => {
            write!(out, " {}", info.pid)?;
            process_details(out, info)?;
        }
        None => write!(out, " (not running)")?,
    }
    if child.restarts.is_some() {
        write!(out, ", {}", restart_text(child))?;
    }
    writeln!(out)
}

fn restart_text(child: &SupervisedChild) -> String {
    let mut text = format!("restarts {}", child.restarts.unwrap_or(0));
    if let Some(reason) = &child.last_exit {
        let _ = write!(text, ", last exit {reason}");
    }
    text
}

fn process_details(out: &mut impl Write, info: &ProcessInfo) -> fmt::Result {
    if let Some(type_name) = info.type_name {
        write!(out, " {}", short_type_name(type_name))?;
    }
    write!(
        out,
        ": {}, mailbox {}",
        status_text(&info.status),
        info.mailbox_len
    )
}

/// `waiting`, `running handle_call for 3ms`, `calling <0.7.0> for 1s`.
pub(super) fn status_text(status: &ProcessStatus) -> String {
    match status {
        ProcessStatus::Waiting => "waiting".to_owned(),
        ProcessStatus::PlainThread => "plain thread".to_owned(),
        ProcessStatus::Unrecorded => "status not recorded".to_owned(),
        ProcessStatus::Running {
            callback,
            running_for,
        } => format!("running {} for {running_for:?}", callback.as_str()),
        ProcessStatus::Calling {
            callee,
            waiting_for,
            ..
        } => format!("calling {callee} for {waiting_for:?}"),
    }
}

/// `my_crate::stage::Stage<u8>` as `Stage<u8>`: the module path says little in a tree.
pub(super) fn short_type_name(type_name: &str) -> &str {
    let generics = type_name.find('<').unwrap_or(type_name.len());
    match type_name[..generics].rfind("::") {
        Some(at) => &type_name[at + 2..],
        None => type_name,
    }
}

fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::OneForOne => "one_for_one",
        Strategy::OneForAll => "one_for_all",
        Strategy::RestForOne => "rest_for_one",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_lose_their_module_path_but_keep_generics() {
        assert_eq!(short_type_name("a::b::Stage"), "Stage");
        assert_eq!(short_type_name("a::Relay<b::C>"), "Relay<b::C>");
        assert_eq!(short_type_name("Plain"), "Plain");
    }
}

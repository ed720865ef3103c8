//! The snapshot as JSON, written by hand (the runtime has no serde dependency).
//!
//! Contract: one object per value, field names as in the Rust types; pids and exit
//! reasons as their display strings, durations as integer microseconds, absent
//! values as `null`. Strings are escaped per RFC 8259.

use std::fmt::Write;
use std::time::Duration;

use super::{ProcessInfo, ProcessStatus, Snapshot, SupervisedChild, SupervisorNode};
use crate::pid::Pid;

pub(super) fn snapshot(snapshot: &Snapshot) -> String {
    let mut out = String::from("{");
    field_str(&mut out, "node", snapshot.node.as_str());
    out.push_str(",\"processes\":");
    list(&mut out, &snapshot.processes, process_into);
    out.push_str(",\"supervisors\":");
    list(&mut out, &snapshot.supervisors, supervisor_into);
    out.push_str(",\"tree_roots\":");
    pids(&mut out, &snapshot.tree_roots);
    out.push_str(",\"outside_trees\":");
    pids(&mut out, &snapshot.outside_trees);
    out.push_str(",\"deadlocks\":");
    list(&mut out, &snapshot.deadlocks, |out, cycle| pids(out, cycle));
    out.push_str(",\"zombies\":");
    pids(&mut out, &snapshot.zombies);
    out.push('}');
    out
}

pub(super) fn process(info: &ProcessInfo) -> String {
    let mut out = String::new();
    process_into(&mut out, info);
    out
}

fn process_into(out: &mut String, info: &ProcessInfo) {
    out.push('{');
    field_str(out, "pid", &info.pid.to_string());
    out.push(',');
    field_opt_str(out, "registered_name", info.registered_name.as_deref());
    out.push(',');
    field_opt_str(out, "type_name", info.type_name);
    out.push(',');
    field_str(out, "parent", &info.parent.to_string());
    out.push_str(",\"status\":");
    status_into(out, &info.status);
    let _ = write!(out, ",\"mailbox_len\":{}", info.mailbox_len);
    out.push_str(",\"links\":");
    pids(out, &info.links);
    out.push_str(",\"monitors\":");
    pids(out, &info.monitors);
    out.push_str(",\"monitored_by\":");
    pids(out, &info.monitored_by);
    let _ = write!(
        out,
        ",\"monitored_by_threads\":{},\"calls_waiting\":{},\"trap_exit\":{},\"messages_handled\":{},\"pending_timers\":{},",
        info.monitored_by_threads,
        info.calls_waiting,
        info.trap_exit,
        info.messages_handled,
        info.pending_timers
    );
    field_opt_str(out, "thread_name", info.thread_name.as_deref());
    out.push(',');
    field_opt_str(out, "thread_id", info.thread_id.as_deref());
    out.push('}');
}

fn status_into(out: &mut String, status: &ProcessStatus) {
    out.push('{');
    match status {
        ProcessStatus::Waiting => field_str(out, "state", "waiting"),
        ProcessStatus::PlainThread => field_str(out, "state", "plain_thread"),
        ProcessStatus::Unrecorded => field_str(out, "state", "unrecorded"),
        ProcessStatus::Running {
            callback,
            running_for,
        } => {
            field_str(out, "state", "running");
            out.push(',');
            field_str(out, "callback", callback.as_str());
            let _ = write!(out, ",\"for_us\":{}", micros(*running_for));
        }
        ProcessStatus::Calling {
            callee,
            callback,
            waiting_for,
        } => {
            field_str(out, "state", "calling");
            out.push(',');
            field_str(out, "callee", &callee.to_string());
            out.push(',');
            field_opt_str(out, "callback", callback.map(|callback| callback.as_str()));
            let _ = write!(out, ",\"for_us\":{}", micros(*waiting_for));
        }
    }
    out.push('}');
}

fn supervisor_into(out: &mut String, node: &SupervisorNode) {
    out.push('{');
    field_str(out, "pid", &node.pid.to_string());
    out.push(',');
    field_str(out, "parent", &node.parent.to_string());
    out.push(',');
    field_opt_str(out, "registered_name", node.registered_name.as_deref());
    out.push(',');
    field_str(out, "strategy", &format!("{:?}", node.strategy));
    let _ = write!(
        out,
        ",\"max_restarts\":{},\"period_us\":{},\"restarts_in_period\":{},\"children\":",
        node.max_restarts,
        micros(node.period),
        node.restarts_in_period
    );
    list(out, &node.children, child_into);
    out.push('}');
}

fn child_into(out: &mut String, child: &SupervisedChild) {
    out.push('{');
    field_str(out, "id", &child.id);
    out.push(',');
    field_opt_str(out, "pid", child.pid.map(|pid| pid.to_string()).as_deref());
    match child.restarts {
        Some(restarts) => {
            let _ = write!(out, ",\"restarts\":{restarts},");
        }
        None => out.push_str(",\"restarts\":null,"),
    }
    let reason = child.last_exit.as_ref().map(|reason| reason.to_string());
    field_opt_str(out, "last_exit", reason.as_deref());
    out.push('}');
}

fn micros(duration: Duration) -> u128 {
    duration.as_micros()
}

fn list<T>(out: &mut String, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    out.push('[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

fn pids(out: &mut String, pids: &[Pid]) {
    list(out, pids, |out, pid| string(out, &pid.to_string()));
}

fn field_str(out: &mut String, name: &str, value: &str) {
    string(out, name);
    out.push(':');
    string(out, value);
}

fn field_opt_str(out: &mut String, name: &str, value: Option<&str>) {
    string(out, name);
    out.push(':');
    match value {
        Some(value) => string(out, value),
        None => out.push_str("null"),
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            control if u32::from(control) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(control));
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_per_rfc_8259() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }
}

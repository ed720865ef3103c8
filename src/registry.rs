//! Registered names, and a keyed registry of lazily started workers.
//!
//! Names follow Erlang's "Registered Processes": a name names at most one process, a
//! process has at most one name, and a name is released automatically when its
//! process terminates, before its links and monitors fire (so a supervisor can
//! register a restarted child under the same name at once).
//!
//! Calls, casts and messages go to a [`RegisteredName`] (`Name` or `{Name, Node}`)
//! with `gen_server`'s results: see [`RuntimeHandle::call_name`](crate::RuntimeHandle::call_name).
//!
//! [`KeyedRegistry`] is the `GenRegistry` pattern: at most one worker per key,
//! started on first use, with concurrent callers of
//! [`lookup_or_start`](KeyedRegistry::lookup_or_start) getting the same worker.

mod keyed;
mod name;

use std::sync::Arc;

pub use keyed::KeyedRegistry;
pub use name::RegisteredName;

use crate::error::Error;
use crate::process::{ProcessCell, Status};
use crate::runtime::RuntimeInner;

/// Registers `cell` under `name`.
pub(crate) fn register(
    rt: &RuntimeInner,
    name: Arc<str>,
    cell: &Arc<ProcessCell>,
) -> Result<(), Error> {
    // Lock order: names, then the process (die() never holds both).
    let mut names = rt.names().write();
    if names.contains_key(&name) {
        return Err(Error::NameTaken(name));
    }
    let mut state = cell.state.lock();
    if state.status != Status::Alive {
        return Err(Error::NoProc);
    }
    if let Some(existing) = &state.name {
        return Err(Error::AlreadyRegistered {
            pid: cell.pid,
            name: existing.clone(),
        });
    }
    state.name = Some(name.clone());
    names.insert(name, cell.pid);
    Ok(())
}

/// Removes `name`; `true` if it was registered.
pub(crate) fn unregister(rt: &RuntimeInner, name: &str) -> bool {
    let mut names = rt.names().write();
    let Some(pid) = names.remove(name) else {
        return false;
    };
    if let Some(cell) = rt.lookup(&pid) {
        let mut state = cell.state.lock();
        if state.name.as_deref() == Some(name) {
            state.name = None;
        }
    }
    true
}

//! Process identity: [`Pid`], node names and references.
//!
//! An Erlang pid names a process on a node: `<Node.Id.Serial>` plus the node's
//! *creation*, a number that tells two incarnations of the same node apart. Our
//! [`Pid`] carries the same four parts so that pids of remote nodes fit in without
//! changing the type. Each [`Runtime`](crate::Runtime) is one incarnation of a node:
//! it draws a fresh creation number when it starts, so a pid of a runtime that has
//! been shut down never names a process of a later runtime with the same node name.
//!
//! Node names are interned like Erlang atoms, which keeps [`Pid`] `Copy`.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::RwLock;

/// An interned node name such as `"nonode@nohost"` or `"app@host1"`.
///
/// Interning makes node names (and so [`Pid`]s) cheap to copy and compare, as atoms
/// are in Erlang. Interned names are never freed; a program uses a handful of them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(u32);

struct NodeTable {
    by_name: HashMap<&'static str, u32>,
    names: Vec<&'static str>,
}

fn node_table() -> &'static RwLock<NodeTable> {
    static TABLE: OnceLock<RwLock<NodeTable>> = OnceLock::new();
    TABLE.get_or_init(|| {
        RwLock::new(NodeTable {
            by_name: HashMap::new(),
            names: Vec::new(),
        })
    })
}

impl NodeName {
    /// The name Erlang gives a node that is not distributed.
    pub const DEFAULT: &'static str = "nonode@nohost";

    /// Interns `name` and returns its handle.
    pub fn new(name: &str) -> NodeName {
        if let Some(&index) = node_table().read().by_name.get(name) {
            return NodeName(index);
        }
        let mut table = node_table().write();
        if let Some(&index) = table.by_name.get(name) {
            return NodeName(index);
        }
        // Leaked on purpose: node names live as long as the program, like atoms.
        let stored: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let index = table.names.len() as u32;
        table.names.push(stored);
        table.by_name.insert(stored, index);
        NodeName(index)
    }

    /// The node name as text.
    pub fn as_str(self) -> &'static str {
        node_table().read().names[self.0 as usize]
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of a process (a worker), local or remote.
///
/// A `Pid` is plain data: it can be copied, compared, hashed and sent anywhere.
/// Liveness is not part of it; ask the runtime ([`RuntimeHandle::is_alive`](crate::RuntimeHandle::is_alive))
/// or monitor it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid {
    node: NodeName,
    creation: u32,
    serial: u32,
    id: u32,
}

/// Bits of the local process number that go into [`Pid::id`]; the rest go into
/// [`Pid::serial`], as in Erlang's external pid format.
const ID_BITS: u32 = 28;

impl Pid {
    /// Builds a pid from its parts, as the distribution layer decodes them.
    pub fn from_parts(node: NodeName, id: u32, serial: u32, creation: u32) -> Pid {
        Pid {
            node,
            creation,
            serial,
            id,
        }
    }

    pub(crate) fn local(node: NodeName, creation: u32, number: u64) -> Pid {
        Pid {
            node,
            creation,
            serial: (number >> ID_BITS) as u32,
            id: (number & ((1 << ID_BITS) - 1)) as u32,
        }
    }

    /// The process number inside its node incarnation (id and serial joined).
    pub(crate) fn number(&self) -> u64 {
        ((self.serial as u64) << ID_BITS) | self.id as u64
    }

    /// The node the process lives on.
    pub fn node(&self) -> NodeName {
        self.node
    }

    /// The process id part.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The serial part (the high bits of the process number).
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The creation of the node incarnation the process belongs to.
    pub fn creation(&self) -> u32 {
        self.creation
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}.{}>", self.node, self.id, self.serial)
    }
}

/// Hands out creation numbers: one per runtime started in this OS process.
pub(crate) fn next_creation() -> u32 {
    // Distribution: creations start at a per-OS-process point.
    // Distribution announces the creation to other nodes, which tell incarnations of
    // a node name apart by it: a restarted program must not reuse its predecessor's
    // (EPMD gives BEAM nodes fresh ones for the same reason).
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    NEXT.get_or_init(|| AtomicU32::new(creation_seed()))
        .fetch_add(1, Ordering::Relaxed)
}

/// Clock and process id mixed; at least 4 (creations 0..3 are special in old formats).
fn creation_seed() -> u32 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
    ((clock ^ std::process::id().rotate_left(16)) & 0x3fff_ffff) | 4
}

/// A monitor reference: names one monitor, and comes back in its [`Down`](crate::Down).
///
/// Each call to `monitor` gives a new reference, so two monitors of the same process
/// give two DOWN messages, each with its own reference.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorRef {
    pub(crate) id: u64,
    pub(crate) target: Pid,
}

impl MonitorRef {
    /// The monitored process.
    pub fn target(&self) -> Pid {
        self.target
    }
}

impl fmt::Debug for MonitorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{}.{}>", self.id, self.target)
    }
}

/// A timer reference returned by [`Context::send_after`](crate::Context::send_after).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TimerRef(pub(crate) u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_interned() {
        let a = NodeName::new("a@host");
        let b = NodeName::new("a@host");
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "a@host");
        assert_ne!(a, NodeName::new("b@host"));
    }

    #[test]
    fn process_number_round_trips_through_id_and_serial() {
        let node = NodeName::new(NodeName::DEFAULT);
        for number in [0u64, 1, (1 << 28) - 1, 1 << 28, (5 << 28) + 17] {
            let pid = Pid::local(node, 3, number);
            assert_eq!(pid.number(), number);
            assert!(pid.id() < (1 << 28));
        }
        assert_eq!(Pid::local(node, 3, (5 << 28) + 17).serial(), 5);
    }
}

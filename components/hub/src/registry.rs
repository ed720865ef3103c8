//! The cluster-wide registry every hub keeps: for each child id, its start argument and
//! the node and pid of every copy. Kept in step by `Register` / `Unregister` messages
//! and by a periodic full `Sync` of each node's local children.

use std::collections::BTreeMap;

use otp_threads::Pid;
use otp_threads::dist::Term;

/// What the registry knows of one child.
#[derive(Clone, Debug)]
pub(crate) struct ChildEntry {
    pub(crate) args: Term,
    /// node ⇒ pid of the copy there.
    pub(crate) copies: BTreeMap<String, Pid>,
}

/// One copy of a child, as [`Hub::which_children`](crate::Hub::which_children) lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child id.
    pub id: String,
    /// The node it runs on.
    pub node: String,
    /// Its pid there.
    pub pid: Pid,
}

/// id ⇒ entry.
#[derive(Default, Debug)]
pub(crate) struct Registry {
    pub(crate) children: BTreeMap<String, ChildEntry>,
}

impl Registry {
    pub(crate) fn insert(&mut self, id: &str, node: &str, pid: Pid, args: Term) {
        let entry = self
            .children
            .entry(id.to_owned())
            .or_insert_with(|| ChildEntry {
                args: args.clone(),
                copies: BTreeMap::new(),
            });
        entry.args = args;
        entry.copies.insert(node.to_owned(), pid);
    }

    /// Removes `node`'s copy; the entry goes when no copy is left.
    pub(crate) fn remove(&mut self, id: &str, node: &str) {
        if let Some(entry) = self.children.get_mut(id) {
            entry.copies.remove(node);
            if entry.copies.is_empty() {
                self.children.remove(id);
            }
        }
    }

    /// Keeps `id` registered with no copy (an orphan), e.g. after its last copy was
    /// stopped because this node lost the quorum.
    pub(crate) fn keep_orphan(&mut self, id: &str, args: Term) {
        self.children
            .entry(id.to_owned())
            .or_insert_with(|| ChildEntry {
                args,
                copies: BTreeMap::new(),
            });
    }

    /// Forgets every copy on `node` but keeps the entries (their children are orphans
    /// to restart on their new nodes).
    pub(crate) fn drop_node(&mut self, node: &str) {
        for entry in self.children.values_mut() {
            entry.copies.remove(node);
        }
    }

    /// Replaces what is known of `node` with its full list.
    pub(crate) fn sync_node(&mut self, node: &str, children: Vec<(String, Pid, Term)>) {
        let listed: std::collections::BTreeSet<String> =
            children.iter().map(|(id, _, _)| id.clone()).collect();
        let stale: Vec<String> = self
            .children
            .iter()
            .filter(|(id, entry)| entry.copies.contains_key(node) && !listed.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.remove(&id, node);
        }
        for (id, pid, args) in children {
            self.insert(&id, node, pid, args);
        }
    }

    pub(crate) fn list(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .flat_map(|(id, entry)| {
                entry.copies.iter().map(|(node, pid)| ChildInfo {
                    id: id.clone(),
                    node: node.clone(),
                    pid: *pid,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_threads::NodeName;
    use otp_threads::dist::{Atom, ToTerm};

    fn pid(node: &str, id: u32) -> Pid {
        Pid::from_parts(NodeName::new(node), id, 0, 1)
    }

    fn none() -> Term {
        Atom::from("none").to_term()
    }

    #[test]
    fn a_nodedown_keeps_orphan_entries_for_restart_but_a_stop_removes_them() {
        let mut registry = Registry::default();
        registry.insert("c", "a@h", pid("a@h", 1), none());
        registry.drop_node("a@h");
        assert!(registry.children["c"].copies.is_empty(), "orphan kept");
        registry.insert("d", "a@h", pid("a@h", 2), none());
        registry.remove("d", "a@h");
        assert!(!registry.children.contains_key("d"));
    }

    #[test]
    fn a_child_stopped_for_a_lost_quorum_stays_registered_as_an_orphan() {
        let mut registry = Registry::default();
        registry.insert("c", "a@h", pid("a@h", 1), none());
        registry.remove("c", "a@h");
        registry.keep_orphan("c", none());
        assert!(registry.children["c"].copies.is_empty());
        // An entry with copies elsewhere keeps them.
        registry.insert("d", "b@h", pid("b@h", 2), none());
        registry.keep_orphan("d", none());
        assert_eq!(registry.children["d"].copies.len(), 1);
    }

    #[test]
    fn a_sync_replaces_what_is_known_of_that_node_only() {
        let mut registry = Registry::default();
        registry.insert("c1", "a@h", pid("a@h", 1), none());
        registry.insert("c2", "a@h", pid("a@h", 2), none());
        registry.insert("c2", "b@h", pid("b@h", 3), none());
        registry.sync_node("a@h", vec![("c3".into(), pid("a@h", 4), none())]);
        let list: Vec<(String, String)> = registry
            .list()
            .into_iter()
            .map(|c| (c.id, c.node))
            .collect();
        assert_eq!(
            list,
            vec![
                ("c2".to_owned(), "b@h".to_owned()),
                ("c3".to_owned(), "a@h".to_owned())
            ]
        );
    }
}

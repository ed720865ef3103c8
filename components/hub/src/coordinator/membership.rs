//! Membership: greeting hubs of the same id, adding and dropping members, the ring.

use super::{Context, Coordinator, HubEvent, Ordering, Ring, WireMsg};

impl Coordinator {
    pub(super) fn members(&self) -> Vec<String> {
        self.shared.members.read().iter().cloned().collect()
    }

    pub(super) fn hello(&self) -> WireMsg {
        WireMsg::Hello {
            from: self.shared.me.clone(),
            members: self.members(),
        }
    }

    /// Greets the members another hub knows and this one does not (connecting to them).
    pub(super) fn greet_unknown(&mut self, ctx: &mut Context<Self>, members: Vec<String>) {
        if self.left {
            return;
        }
        for node in members {
            if !self.shared.members.read().contains(&node) {
                let hello = self.hello();
                self.send_to(ctx, &node, hello);
            }
        }
    }

    /// Adds or removes `node`; the ring changes under the members' write lock, so
    /// whoever sees the new members also sees the new ring. `false` if nothing changed.
    fn change_members(&self, node: &str, add: bool) -> bool {
        let mut members = self.shared.members.write();
        let changed = if add {
            members.insert(node.to_owned())
        } else {
            members.remove(node)
        };
        if changed {
            let ring = Ring::new(
                members.iter().map(String::as_str),
                self.shared.config.virtual_nodes,
            );
            *self.shared.ring.write() = ring;
            self.shared
                .max_seen
                .fetch_max(members.len(), Ordering::Relaxed);
        }
        changed
    }

    pub(super) fn add_member(&mut self, ctx: &mut Context<Self>, node: &str) {
        if self.left || !self.change_members(node, true) {
            return;
        }
        self.shared.emit(HubEvent::NodeJoined(node.to_owned()));
        let children = self.local_list();
        let me = self.shared.me.clone();
        self.send_to(ctx, node, WireMsg::Sync { node: me, children });
        self.redistribute(ctx, Some(node));
    }

    pub(super) fn remove_member(&mut self, ctx: &mut Context<Self>, node: &str) {
        if node == self.shared.me || !self.change_members(node, false) {
            return;
        }
        self.shared.registry.write().drop_node(node);
        self.shared.emit(HubEvent::NodeLeft(node.to_owned()));
        self.redistribute(ctx, Some(node));
    }
}

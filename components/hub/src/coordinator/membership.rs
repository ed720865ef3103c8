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

    pub(super) fn rebuild_ring(&self) {
        let members = self.shared.members.read();
        let ring = Ring::new(
            members.iter().map(String::as_str),
            self.shared.config.virtual_nodes,
        );
        *self.shared.ring.write() = ring;
    }

    pub(super) fn add_member(&mut self, ctx: &mut Context<Self>, node: &str) {
        if self.left || !self.shared.members.write().insert(node.to_owned()) {
            return;
        }
        let size = self.shared.members.read().len();
        self.shared.max_seen.fetch_max(size, Ordering::Relaxed);
        self.shared.emit(HubEvent::NodeJoined(node.to_owned()));
        let children = self.local_list();
        let me = self.shared.me.clone();
        self.send_to(ctx, node, WireMsg::Sync { node: me, children });
        self.rebuild_ring();
        self.redistribute(ctx, Some(node));
    }

    pub(super) fn remove_member(&mut self, ctx: &mut Context<Self>, node: &str) {
        if node == self.shared.me || !self.shared.members.write().remove(node) {
            return;
        }
        self.shared.registry.write().drop_node(node);
        self.shared.emit(HubEvent::NodeLeft(node.to_owned()));
        self.rebuild_ring();
        self.redistribute(ctx, Some(node));
    }
}

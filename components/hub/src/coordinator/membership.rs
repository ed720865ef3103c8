//! Membership: greeting hubs of the same id, adding and dropping members, the ring.

use std::collections::BTreeSet;

use super::{
    ChildCast, Context, Coordinator, CopyMode, HubEvent, Ordering, RedundancySignal, Ring, WireMsg,
};

/// Sync ticks after which a greeted node whose `Sync` never came is no longer waited for.
const SYNC_WAIT_TICKS: u32 = 3;

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
                // Its children are waited for only if it can answer.
                if self.send_to(ctx, &node, hello) {
                    self.awaiting_sync.entry(node).or_insert(0);
                }
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
        self.awaiting_sync.insert(node.to_owned(), 0);
        let sync = self.sync_message();
        self.send_to(ctx, node, sync);
        self.redistribute(ctx, Some(node));
    }

    pub(super) fn remove_member(&mut self, ctx: &mut Context<Self>, node: &str) {
        if node == self.shared.me || !self.change_members(node, false) {
            return;
        }
        self.shared.registry.write().drop_node(node);
        self.awaiting_sync.remove(node);
        self.shared.emit(HubEvent::NodeLeft(node.to_owned()));
        if self.shared.quorum_shortfall().is_some() {
            self.suspend_children(ctx);
        }
        self.redistribute(ctx, Some(node));
    }

    /// Majority quorum lost: this side is a minority. Its children stop (the majority
    /// restarts them) but stay registered as orphans, for the case where no side kept
    /// a quorum and they must restart here once one is back.
    fn suspend_children(&mut self, ctx: &mut Context<Self>) {
        let local = self.local_list();
        if !local.is_empty() {
            log::warn!(
                "hub {}: quorum lost, stopping {} children",
                self.shared.name,
                local.len()
            );
        }
        for (id, _, args) in local {
            self.stop_local(ctx, &id, false);
            self.shared.registry.write().keep_orphan(&id, args);
        }
    }

    /// `node`'s `Sync` arrived: once none is awaited, orphans may be restarted.
    pub(super) fn synced(&mut self, ctx: &mut Context<Self>, node: &str) {
        if self.awaiting_sync.remove(node).is_some() && self.awaiting_sync.is_empty() {
            self.redistribute(ctx, None);
        }
    }

    /// A sync tick: greeted nodes that never synced are waited for one tick less.
    pub(super) fn age_awaited_syncs(&mut self) {
        let members = self.shared.members.read().clone();
        self.awaiting_sync.retain(|node, ticks| {
            *ticks += 1;
            members.contains(node) || *ticks < SYNC_WAIT_TICKS
        });
    }

    /// The role of this node's copy of `id` (`starting`: a copy about to start here
    /// counts as one): active if this is the first ring node holding a copy (or, with
    /// no ring node holding one, the first node that does).
    pub(super) fn copy_mode(&self, id: &str, starting: bool) -> CopyMode {
        let owners = self.owners(id);
        let me = &self.shared.me;
        let mut copies: BTreeSet<String> = self
            .shared
            .registry
            .read()
            .children
            .get(id)
            .map(|entry| entry.copies.keys().cloned().collect())
            .unwrap_or_default();
        if starting {
            copies.insert(me.clone());
        }
        let active = owners
            .iter()
            .find(|owner| copies.contains(*owner))
            .or_else(|| copies.iter().next());
        if active == Some(me) {
            CopyMode::Active
        } else {
            CopyMode::Passive
        }
    }

    /// Tells the local copy of `id` its role if it changed (and the signal setting
    /// names it). A copy whose start has not reported yet is told when it does.
    pub(super) fn resignal(&mut self, id: &str) {
        let signal = self.shared.config.redundancy_signal;
        if signal == RedundancySignal::None || !self.local_pids.contains_key(id) {
            return;
        }
        let mode = self.copy_mode(id, false);
        if self.signalled.get(id) == Some(&mode) {
            return;
        }
        let Some(child) = self.shared.local.lock().get(id).cloned() else {
            return;
        };
        self.signalled.insert(id.to_owned(), mode);
        if signal.tells(mode) {
            child.cast(ChildCast::Signal(mode));
        }
    }

    pub(super) fn resignal_all(&mut self) {
        if self.shared.config.redundancy_signal == RedundancySignal::None {
            return;
        }
        let ids: Vec<String> = self.local_pids.keys().cloned().collect();
        for id in ids {
            self.resignal(&id);
        }
    }

    /// This node's `Sync`: its local children and the members it knows.
    pub(super) fn sync_message(&self) -> WireMsg {
        WireMsg::Sync {
            node: self.shared.me.clone(),
            children: self.local_list(),
            members: self.members(),
        }
    }

    /// Full mesh: connects (in the background) to the members another member knows
    /// and this node is not connected to; the `nodeup` that follows greets them. So a
    /// node that joined through one member, or two members whose connection broke
    /// while both kept another member, end up connected within a sync interval.
    pub(super) fn connect_unknown(&mut self, members: Vec<String>) {
        if self.left {
            return;
        }
        let (finished, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.connecting)
            .into_iter()
            .partition(|(_, thread)| thread.is_finished());
        self.connecting = running;
        for (_, thread) in finished {
            let _ = thread.join();
        }
        let connected: BTreeSet<String> = self.shared.node.nodes().into_iter().collect();
        for node in members {
            if node == self.shared.me
                || connected.contains(&node)
                || self.shared.members.read().contains(&node)
                || self.connecting.iter().any(|(n, _)| *n == node)
            {
                continue;
            }
            let dist = self.shared.node.clone();
            let target = node.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}.connect", self.shared.name))
                .spawn(move || {
                    if let Err(error) = dist.connect(&target) {
                        log::debug!("hub: no connection to {target}: {error}");
                    }
                });
            match spawned {
                Ok(thread) => self.connecting.push((node, thread)),
                Err(error) => log::warn!("hub: cannot start a connect thread: {error}"),
            }
        }
    }
}

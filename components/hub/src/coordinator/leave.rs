//! Graceful leave: every local child's state goes to the node that will run it, then
//! `Leaving` is announced (after the states, on the same connections), then the local
//! children stop.

use std::collections::BTreeSet;

use super::{ChildCall, ChildProcess, Context, Coordinator, Ring, Term, WireMsg, WorkerRef};
use crate::wire::from_option;

impl Coordinator {
    pub(super) fn leave(&mut self, ctx: &mut Context<Self>) {
        if self.left {
            return;
        }
        let me = self.shared.me.clone();
        let others: Vec<String> = self
            .shared
            .members
            .read()
            .iter()
            .filter(|m| **m != me)
            .cloned()
            .collect();
        let ring = Ring::new(
            others.iter().map(String::as_str),
            self.shared.config.virtual_nodes,
        );
        let wait = self
            .shared
            .config
            .hot_swap()
            .unwrap_or_default()
            .handover_data_wait;
        let children: Vec<(String, WorkerRef<ChildProcess>)> = self
            .shared
            .local
            .lock()
            .iter()
            .map(|(id, child)| (id.clone(), child.clone()))
            .collect();
        if !others.is_empty() {
            for (id, child) in children {
                let state = match child.call_timeout(ChildCall::PrepareState, wait) {
                    Ok(term) => from_option::<Term>(term).ok().flatten(),
                    Err(error) => {
                        log::warn!(
                            "hub {}: no state from {id} on leave: {error}",
                            self.shared.name
                        );
                        None
                    }
                };
                let Some(state) = state else { continue };
                let copies: BTreeSet<String> = self
                    .shared
                    .registry
                    .read()
                    .children
                    .get(&id)
                    .map(|e| e.copies.keys().cloned().collect())
                    .unwrap_or_default();
                let owners = ring.belongs_to(&id, self.shared.config.replication_factor());
                let target = owners
                    .iter()
                    .find(|o| !copies.contains(*o))
                    .or(owners.first())
                    .cloned();
                if let Some(target) = target {
                    let handover = WireMsg::Handover {
                        id,
                        state: Some(state),
                        confirm_to: None,
                    };
                    self.send_to(ctx, &target, handover);
                }
            }
        }
        // After the states, on the same connections: they arrive first.
        self.broadcast(ctx, WireMsg::Leaving { node: me });
        self.left = true;
        let ids: Vec<String> = self.local_pids.keys().cloned().collect();
        for id in ids {
            self.stop_local(ctx, &id, false);
        }
        self.shared.members.write().retain(|m| *m == self.shared.me);
    }
}

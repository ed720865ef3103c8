//! Redistribution after a membership change (and on each sync tick): orphans are
//! started on their ring nodes, local children that no longer belong here migrate, a
//! surplus copy stops. Each migration is a state machine with its own timers.

use std::collections::BTreeSet;

use crate::config::Distribution;

use super::{
    ChildCast, Context, Coordinator, Ending, ExitReason, HubEvent, HubInfo, Migration, Outcome,
    Phase, Round, Started, Term, WireMsg,
};

impl Coordinator {
    /// Moves, starts and stops copies to match the ring; `trigger` is the node whose
    /// join or leave caused it (`None`: the periodic check, reported only if it moved
    /// something).
    pub(super) fn redistribute(&mut self, ctx: &mut Context<Self>, trigger: Option<&str>) {
        if self.left {
            return;
        }
        let round = self.next_round;
        self.next_round += 1;
        self.rounds.insert(
            round,
            Round {
                trigger: trigger.map(str::to_owned),
                pending: 0,
                migrated: 0,
                failed: 0,
                timed_out: 0,
            },
        );
        let me = self.shared.me.clone();
        if self.shared.config.distribution == Distribution::Guided {
            // Guided children stay where they were put.
            self.maybe_end_round(round);
            return;
        }
        // Orphans: registered children without any copy (their node is gone), once
        // every member's children are known.
        if self.shared.quorum_shortfall().is_none() && self.awaiting_sync.is_empty() {
            // A child this node is moving (a cold swap's start in flight) is not one.
            let moving: BTreeSet<&str> = self.migrations.values().map(|m| m.id.as_str()).collect();
            let orphans: Vec<(String, Term)> = self
                .shared
                .registry
                .read()
                .children
                .iter()
                .filter(|(id, entry)| {
                    entry.copies.is_empty()
                        && !self.local_pids.contains_key(*id)
                        && !moving.contains(id.as_str())
                })
                .map(|(id, entry)| (id.clone(), entry.args.clone()))
                .collect();
            // Started here if this node is a ring node; otherwise the ring nodes are
            // told, since a node that joined after the loss may not know the child.
            // Starts are idempotent, so several survivors telling them is harmless.
            for (id, args) in orphans {
                for owner in self.owners(&id) {
                    if owner == me {
                        let _ = self.start_local(ctx, &id, args.clone());
                    } else {
                        let start = WireMsg::Start {
                            token: 0,
                            origin: me.clone(),
                            id: id.clone(),
                            args: args.clone(),
                        };
                        self.send_to(ctx, &owner, start);
                    }
                }
            }
        }
        let mut local: Vec<String> = self.local_pids.keys().cloned().collect();
        local.sort();
        for id in local {
            if self.migrations.values().any(|m| m.id == id) {
                continue;
            }
            let owners = self.owners(&id);
            let (copies, args) = {
                let registry = self.shared.registry.read();
                match registry.children.get(&id) {
                    Some(entry) => (
                        entry.copies.keys().cloned().collect::<BTreeSet<_>>(),
                        entry.args.clone(),
                    ),
                    None => continue,
                }
            };
            let mut missing: Vec<String> = owners
                .iter()
                .filter(|o| **o != me && !copies.contains(*o))
                .cloned()
                .collect();
            if !owners.contains(&me) {
                if missing.is_empty() {
                    // Every ring node has a copy: this one is surplus.
                    self.stop_local(ctx, &id, true);
                    continue;
                }
                let target = missing.remove(0);
                self.migrate(ctx, &id, &target, args.clone(), round);
            }
            for node in missing {
                let start = WireMsg::Start {
                    token: 0,
                    origin: me.clone(),
                    id: id.clone(),
                    args: args.clone(),
                };
                self.send_to(ctx, &node, start);
            }
        }
        self.maybe_end_round(round);
        self.resignal_all();
    }

    pub(super) fn migrate(
        &mut self,
        ctx: &mut Context<Self>,
        id: &str,
        target: &str,
        args: Term,
        round: u64,
    ) {
        let token = self.shared.token();
        let hot = self.shared.config.hot_swap();
        let timeout = match hot {
            Some(options) => options.child_migration_timeout,
            None => {
                // Cold swap: stop here first.
                self.stop_local(ctx, id, true);
                self.shared.config.migration_base_timeout
            }
        };
        self.migrations.insert(
            token,
            Migration {
                id: id.to_owned(),
                target: target.to_owned(),
                round,
                phase: Phase::AwaitStart,
                hot: hot.is_some(),
            },
        );
        if let Some(round) = self.rounds.get_mut(&round) {
            round.pending += 1;
        }
        ctx.send_after(HubInfo::MigrationTimeout { token }, timeout);
        let start = WireMsg::Start {
            token,
            origin: self.shared.me.clone(),
            id: id.to_owned(),
            args,
        };
        self.send_to(ctx, target, start);
    }

    pub(super) fn end_migration(&mut self, ctx: &mut Context<Self>, token: u64, ending: Ending) {
        let Some(migration) = self.migrations.remove(&token) else {
            return;
        };
        if let Some(round) = self.rounds.get_mut(&migration.round) {
            round.pending -= 1;
            match ending {
                Ending::Migrated { .. } => round.migrated += 1,
                Ending::Failed => round.failed += 1,
                Ending::TimedOut => round.timed_out += 1,
            }
        }
        match ending {
            Ending::Migrated { handed_over } => self.shared.emit(HubEvent::ChildMigrated {
                id: migration.id,
                to: migration.target,
                handed_over,
            }),
            Ending::TimedOut => {
                log::warn!(
                    "hub {}: migration of {} to {} timed out",
                    self.shared.name,
                    migration.id,
                    migration.target
                );
                self.timed_out.insert(token, migration.id);
            }
            Ending::Failed => {}
        }
        self.maybe_end_round(migration.round);
        let _ = ctx;
    }

    pub(super) fn maybe_end_round(&mut self, round: u64) {
        if self.rounds.get(&round).is_some_and(|r| r.pending == 0) {
            let round = self.rounds.remove(&round).expect("checked above");
            let trigger = match round.trigger {
                Some(trigger) => trigger,
                None if round.migrated + round.failed + round.timed_out > 0 => "sync".to_owned(),
                None => return,
            };
            self.shared.emit(HubEvent::RedistributionDone {
                trigger,
                migrated: round.migrated,
                failed: round.failed,
                timed_out: round.timed_out,
            });
        }
    }

    pub(super) fn on_started(
        &mut self,
        ctx: &mut Context<Self>,
        token: u64,
        id: String,
        node: String,
        result: Result<Started, ExitReason>,
    ) {
        if let Some(migration) = self.migrations.get_mut(&token) {
            if migration.phase != Phase::AwaitStart {
                return;
            }
            match (&result, migration.hot) {
                (Err(reason), _) => {
                    log::warn!("hub: migration of {id} to {node} failed: {reason}");
                    self.end_migration(ctx, token, Ending::Failed);
                }
                (Ok(_), false) => {
                    self.end_migration(ctx, token, Ending::Migrated { handed_over: false })
                }
                (Ok(Started { existing: true, .. }), true) => {
                    // The target ran it already (both sides of a healed partition
                    // did): its copy wins, this one goes without handing over.
                    self.stop_local(ctx, &id, true);
                    self.end_migration(ctx, token, Ending::Migrated { handed_over: false });
                }
                (Ok(_), true) => {
                    let options = self.shared.config.hot_swap().unwrap_or_default();
                    let old = self.shared.local.lock().get(&id).cloned();
                    match old {
                        Some(old) if options.handover => {
                            migration.phase = Phase::AwaitRetention;
                            let confirm_to =
                                options.confirm_handover.then(|| self.shared.me.clone());
                            old.cast(ChildCast::HandOver {
                                target: node,
                                confirm_to,
                            });
                            ctx.send_after(HubInfo::RetentionOver { token }, options.retention);
                        }
                        _ => {
                            // handover: false still ends the old copy (the original's
                            // bug left it running).
                            self.stop_local(ctx, &id, true);
                            self.end_migration(ctx, token, Ending::Migrated { handed_over: false });
                        }
                    }
                }
            }
            return;
        }
        if let Some(id) = self.timed_out.remove(&token) {
            // A start that answered after its timeout: the new copy exists, so the old
            // one (kept when the migration timed out) must go.
            if result.is_ok() && !self.owners(&id).contains(&self.shared.me) {
                self.stop_local(ctx, &id, true);
            }
            return;
        }
        let waiter = self.shared.waiters.lock().get(&token).cloned();
        if let Some(waiter) = waiter {
            let result = result.map(|started| started.pid);
            let _ = waiter.send(Outcome::Started { id, node, result });
        }
    }
}

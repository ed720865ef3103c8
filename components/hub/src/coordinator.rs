//! The coordinator: one worker per hub and node, registered as `otp_hub.<hub_id>`,
//! that owns membership, placement, the registry and migrations.
//!
//! Contract:
//! * Membership: on `nodeup` and every `discover_interval` it greets connected nodes
//!   that are not members (`Hello` / `Welcome`); a `nodedown` or an orderly `Leaving`
//!   drops a member. Each change rebuilds the ring and redistributes.
//! * Redistribution: a local child whose ring nodes no longer include this node moves
//!   to the first ring node without a copy (cold or hot swap), or stops when every ring
//!   node has one (a healed partition converges to the ring's copies); a registered
//!   child with no copy left (its node died) is started by the ring nodes that lack it.
//! * Nothing blocks the coordinator's mailbox for a whole redistribution: each
//!   migration is a small state machine with its own timers (`child_migration_timeout`,
//!   `retention`), and the round ends (`RedistributionDone`) when every migration has
//!   ended, timed out included — the original's locked event queue cannot happen.
//! * Handed-over states for children not started here yet are kept per child id until
//!   that child starts, and removed one by one as children start.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use otp_threads::dist::{DistError, FromTerm, Node, NodeEvent, Term};
use otp_threads::{
    ChildSpec, Context, DynamicSupervisor, DynamicSupervisorRef, ExitReason, Info, Pid, ReplyTo,
    Step, Worker, WorkerRef,
};
use parking_lot::{Mutex, RwLock};

use crate::child::{ChildCall, ChildCast, ChildProcess, HubChildSpec};
use crate::config::{HubConfig, PartitionTolerance};
use crate::events::HubEvent;
use crate::registry::Registry;
use crate::ring::Ring;
use crate::wire::{WireMsg, from_option};

/// What the coordinator tells a waiting `start_children` / `stop_children`.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `id` goes to these nodes (one result per node follows).
    Planned { id: String, nodes: Vec<String> },
    /// A start result.
    Started {
        id: String,
        node: String,
        result: Result<Pid, String>,
    },
    /// A stop result.
    Stopped {
        id: String,
        node: String,
        found: bool,
    },
}

/// State shared by the coordinator and the [`Hub`](crate::Hub) handle.
pub(crate) struct Shared {
    pub(crate) config: HubConfig,
    pub(crate) node: Arc<Node>,
    pub(crate) me: String,
    pub(crate) name: String,
    pub(crate) registry: RwLock<Registry>,
    pub(crate) members: RwLock<BTreeSet<String>>,
    pub(crate) ring: RwLock<Ring>,
    pub(crate) waiters: Mutex<HashMap<u64, Sender<Outcome>>>,
    pub(crate) local: Mutex<HashMap<String, WorkerRef<ChildProcess>>>,
    pub(crate) next_token: AtomicU64,
    pub(crate) max_seen: AtomicUsize,
    /// Hub messages this node sent to other nodes.
    pub(crate) messages_sent: AtomicU64,
    pub(crate) events: Sender<HubEvent>,
}

impl Shared {
    pub(crate) fn token(&self) -> u64 {
        // Token 0 means "nobody waits".
        self.next_token.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `(members, quorum)` when the majority quorum is not met.
    pub(crate) fn quorum_shortfall(&self) -> Option<(usize, usize)> {
        let PartitionTolerance::MajorityQuorum {
            initial_cluster_size,
            track_max_size,
        } = self.config.partition
        else {
            return None;
        };
        let members = self.members.read().len();
        let max = if track_max_size {
            initial_cluster_size.max(self.max_seen.load(Ordering::Relaxed))
        } else {
            initial_cluster_size
        };
        let quorum = max / 2 + 1;
        (members < quorum).then_some((members, quorum))
    }

    fn emit(&self, event: HubEvent) {
        let _ = self.events.send(event);
    }
}

/// Commands from this node (the hub handle, children, the node event forwarder).
pub(crate) enum Command {
    StartChildren {
        token: u64,
        specs: Vec<HubChildSpec>,
    },
    StopChildren {
        token: u64,
        ids: Vec<String>,
    },
    ChildUp {
        id: String,
        handle: WorkerRef<ChildProcess>,
    },
    RetentionHandled {
        id: String,
    },
    Node(NodeEvent),
}

/// Blocking requests from the hub handle.
pub(crate) enum Request {
    /// Hand every local child's state to its next node, announce the leave, stop the
    /// local children.
    Leave,
}

/// Messages: from other hubs, and timers.
pub(crate) enum HubInfo {
    Wire(WireMsg),
    SyncTick,
    DiscoverTick,
    MigrationTimeout { token: u64 },
    RetentionOver { token: u64 },
}

impl FromTerm for HubInfo {
    fn from_term(term: Term) -> Result<Self, DistError> {
        WireMsg::from_term(term).map(HubInfo::Wire)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    AwaitStart,
    AwaitRetention,
}

struct Migration {
    id: String,
    target: String,
    round: u64,
    phase: Phase,
    hot: bool,
}

struct Round {
    trigger: Option<String>,
    pending: usize,
    migrated: usize,
    failed: usize,
    timed_out: usize,
}

enum Ending {
    Migrated { handed_over: bool },
    Failed,
    TimedOut,
}

/// The coordinator worker; see the [module docs](self).
pub(crate) struct Coordinator {
    shared: Arc<Shared>,
    supervisor: Option<DynamicSupervisorRef>,
    local_pids: HashMap<String, Pid>,
    pending_states: HashMap<String, Term>,
    migrations: HashMap<u64, Migration>,
    timed_out: HashMap<u64, String>,
    rounds: HashMap<u64, Round>,
    next_round: u64,
    left: bool,
}

impl Coordinator {
    pub(crate) fn new(shared: Arc<Shared>) -> Coordinator {
        Coordinator {
            shared,
            supervisor: None,
            local_pids: HashMap::new(),
            pending_states: HashMap::new(),
            migrations: HashMap::new(),
            timed_out: HashMap::new(),
            rounds: HashMap::new(),
            next_round: 0,
            left: false,
        }
    }

    /// Sends `msg` to the hub on `node` (handled at once when that is this node).
    fn send_to(&mut self, ctx: &mut Context<Self>, node: &str, msg: WireMsg) {
        if node == self.shared.me {
            self.handle_wire(ctx, msg);
            return;
        }
        let to = (self.shared.name.as_str(), node);
        self.shared.messages_sent.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = self.shared.node.send(ctx.pid(), to, &msg) {
            log::warn!(
                "hub {}: sending to {node} failed: {error}",
                self.shared.name
            );
        }
    }

    fn broadcast(&mut self, ctx: &mut Context<Self>, msg: WireMsg) {
        let others: Vec<String> = self
            .shared
            .members
            .read()
            .iter()
            .filter(|m| **m != self.shared.me)
            .cloned()
            .collect();
        for node in others {
            self.send_to(ctx, &node, msg.clone());
        }
    }

    fn members(&self) -> Vec<String> {
        self.shared.members.read().iter().cloned().collect()
    }

    fn hello(&self) -> WireMsg {
        WireMsg::Hello {
            from: self.shared.me.clone(),
            members: self.members(),
        }
    }

    /// Greets the members another hub knows and this one does not (connecting to them).
    fn greet_unknown(&mut self, ctx: &mut Context<Self>, members: Vec<String>) {
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

    fn owners(&self, id: &str) -> Vec<String> {
        self.shared
            .ring
            .read()
            .belongs_to(id, self.shared.config.replication_factor())
    }

    fn start_local(
        &mut self,
        ctx: &mut Context<Self>,
        id: &str,
        args: Term,
    ) -> Result<Pid, String> {
        if let Some(pid) = self.local_pids.get(id) {
            return Ok(*pid);
        }
        let Some(supervisor) = self.supervisor.clone() else {
            return Err("the hub is stopping".into());
        };
        let spec = HubChildSpec::new(id, args.clone());
        let shared = self.shared.clone();
        let coordinator = ctx.handle();
        let child_spec = ChildSpec::worker(id, move || ChildProcess {
            id: spec.id.clone(),
            inner: (shared.config.factory)(&spec),
            shared: shared.clone(),
            coordinator: coordinator.clone(),
        });
        match supervisor.start_child(child_spec) {
            Ok(pid) => {
                self.local_pids.insert(id.to_owned(), pid);
                let me = self.shared.me.clone();
                self.shared
                    .registry
                    .write()
                    .insert(id, &me, pid, args.clone());
                self.broadcast(
                    ctx,
                    WireMsg::Register {
                        id: id.to_owned(),
                        node: me,
                        pid,
                        args,
                    },
                );
                self.shared.emit(HubEvent::ChildStarted {
                    id: id.to_owned(),
                    pid,
                });
                Ok(pid)
            }
            Err(error) => {
                log::warn!(
                    "hub {}: child {id} failed to start: {error}",
                    self.shared.name
                );
                Err(error.to_string())
            }
        }
    }

    /// Stops the local copy of `id`; `false` if there was none.
    fn stop_local(&mut self, ctx: &mut Context<Self>, id: &str, announce: bool) -> bool {
        let Some(pid) = self.local_pids.remove(id) else {
            return false;
        };
        self.shared.local.lock().remove(id);
        if let Some(supervisor) = &self.supervisor
            && let Err(error) = supervisor.terminate_child(&pid)
        {
            log::warn!("hub {}: stopping {id} failed: {error}", self.shared.name);
        }
        let me = self.shared.me.clone();
        self.shared.registry.write().remove(id, &me);
        if announce {
            self.broadcast(
                ctx,
                WireMsg::Unregister {
                    id: id.to_owned(),
                    node: me,
                },
            );
        }
        self.shared
            .emit(HubEvent::ChildStopped { id: id.to_owned() });
        true
    }

    fn local_list(&self) -> Vec<(String, Pid, Term)> {
        let registry = self.shared.registry.read();
        self.local_pids
            .iter()
            .map(|(id, pid)| {
                let args = registry
                    .children
                    .get(id)
                    .map(|e| e.args.clone())
                    .unwrap_or_else(|| Term::from(otp_threads::dist::eetf::Atom::from("none")));
                (id.clone(), *pid, args)
            })
            .collect()
    }

    fn rebuild_ring(&self) {
        let members = self.shared.members.read();
        let ring = Ring::new(
            members.iter().map(String::as_str),
            self.shared.config.virtual_nodes,
        );
        *self.shared.ring.write() = ring;
    }

    fn add_member(&mut self, ctx: &mut Context<Self>, node: &str) {
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

    fn remove_member(&mut self, ctx: &mut Context<Self>, node: &str) {
        if node == self.shared.me || !self.shared.members.write().remove(node) {
            return;
        }
        self.shared.registry.write().drop_node(node);
        self.shared.emit(HubEvent::NodeLeft(node.to_owned()));
        self.rebuild_ring();
        self.redistribute(ctx, Some(node));
    }

    /// Moves, starts and stops copies to match the ring; `trigger` is the node whose
    /// join or leave caused it (`None`: the periodic check, reported only if it moved
    /// something).
    fn redistribute(&mut self, ctx: &mut Context<Self>, trigger: Option<&str>) {
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
        // Orphans: registered children without any copy (their node is gone).
        if self.shared.quorum_shortfall().is_none() {
            let orphans: Vec<(String, Term)> = self
                .shared
                .registry
                .read()
                .children
                .iter()
                .filter(|(id, entry)| entry.copies.is_empty() && !self.local_pids.contains_key(*id))
                .map(|(id, entry)| (id.clone(), entry.args.clone()))
                .collect();
            for (id, args) in orphans {
                if self.owners(&id).contains(&me) {
                    let _ = self.start_local(ctx, &id, args);
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
    }

    fn migrate(&mut self, ctx: &mut Context<Self>, id: &str, target: &str, args: Term, round: u64) {
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

    fn end_migration(&mut self, ctx: &mut Context<Self>, token: u64, ending: Ending) {
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

    fn maybe_end_round(&mut self, round: u64) {
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

    fn on_started(
        &mut self,
        ctx: &mut Context<Self>,
        token: u64,
        id: String,
        node: String,
        result: Result<Pid, String>,
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
            let _ = waiter.send(Outcome::Started { id, node, result });
        }
    }

    fn handle_wire(&mut self, ctx: &mut Context<Self>, msg: WireMsg) {
        match msg {
            WireMsg::Hello { from, members } => {
                if !self.left {
                    let welcome = WireMsg::Welcome {
                        from: self.shared.me.clone(),
                        members: self.members(),
                    };
                    self.send_to(ctx, &from, welcome);
                }
                self.add_member(ctx, &from);
                self.greet_unknown(ctx, members);
            }
            WireMsg::Welcome { from, members } => {
                self.add_member(ctx, &from);
                self.greet_unknown(ctx, members);
            }
            WireMsg::Start {
                token,
                origin,
                id,
                args,
            } => {
                let result = self.start_local(ctx, &id, args);
                if token != 0 {
                    let node = self.shared.me.clone();
                    self.send_to(
                        ctx,
                        &origin,
                        WireMsg::Started {
                            token,
                            id,
                            node,
                            result,
                        },
                    );
                }
            }
            WireMsg::Started {
                token,
                id,
                node,
                result,
            } => self.on_started(ctx, token, id, node, result),
            WireMsg::Stop { token, origin, id } => {
                self.pending_states.remove(&id);
                let found = self.stop_local(ctx, &id, true);
                let node = self.shared.me.clone();
                self.send_to(
                    ctx,
                    &origin,
                    WireMsg::Stopped {
                        token,
                        id,
                        node,
                        found,
                    },
                );
            }
            WireMsg::Stopped {
                token,
                id,
                node,
                found,
            } => {
                let waiter = self.shared.waiters.lock().get(&token).cloned();
                if let Some(waiter) = waiter {
                    let _ = waiter.send(Outcome::Stopped { id, node, found });
                }
            }
            WireMsg::Register {
                id,
                node,
                pid,
                args,
            } => self.shared.registry.write().insert(&id, &node, pid, args),
            WireMsg::Unregister { id, node } => self.shared.registry.write().remove(&id, &node),
            WireMsg::Handover {
                id,
                state,
                confirm_to,
            } => {
                if let Some(state) = state {
                    let running = self.shared.local.lock().get(&id).cloned();
                    match running {
                        Some(child) => child.cast(ChildCast::Restore(state)),
                        // Kept until this very child starts here.
                        None => {
                            self.pending_states.insert(id.clone(), state);
                        }
                    }
                }
                if let Some(node) = confirm_to {
                    let me = self.shared.me.clone();
                    self.send_to(ctx, &node, WireMsg::HandoverConfirmed { id, node: me });
                }
            }
            WireMsg::HandoverConfirmed { id, node } => {
                self.shared.emit(HubEvent::HandoverConfirmed { id, node })
            }
            WireMsg::Sync { node, children } => {
                if self.shared.members.read().contains(&node) {
                    self.shared.registry.write().sync_node(&node, children);
                }
            }
            WireMsg::Leaving { node } => self.remove_member(ctx, &node),
        }
    }

    fn leave(&mut self, ctx: &mut Context<Self>) {
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

impl Worker for Coordinator {
    type Call = Request;
    type Reply = ();
    type Cast = Command;
    type Info = HubInfo;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        let supervisor = DynamicSupervisor::new()
            .intensity(
                self.shared.config.max_restarts,
                self.shared.config.max_seconds,
            )
            .start_link(ctx)
            .map_err(|error| {
                log::error!("hub supervisor failed to start: {error}");
                ExitReason::Shutdown
            })?;
        self.supervisor = Some(supervisor);
        ctx.send_after(HubInfo::SyncTick, self.shared.config.sync_interval);
        ctx.send_after(HubInfo::DiscoverTick, Duration::ZERO);
        Ok(())
    }

    fn handle_call(
        &mut self,
        request: Request,
        reply: ReplyTo<()>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        match request {
            Request::Leave => self.leave(ctx),
        }
        reply.reply(());
        Step::Next
    }

    fn handle_cast(&mut self, command: Command, ctx: &mut Context<Self>) -> Step<Self> {
        match command {
            Command::StartChildren { token, specs } => {
                let waiter = self.shared.waiters.lock().get(&token).cloned();
                for spec in specs {
                    let owners = self.owners(&spec.id);
                    if let Some(waiter) = &waiter {
                        let _ = waiter.send(Outcome::Planned {
                            id: spec.id.clone(),
                            nodes: owners.clone(),
                        });
                    }
                    for node in owners {
                        let start = WireMsg::Start {
                            token,
                            origin: self.shared.me.clone(),
                            id: spec.id.clone(),
                            args: spec.args.clone(),
                        };
                        self.send_to(ctx, &node, start);
                    }
                }
            }
            Command::StopChildren { token, ids } => {
                let waiter = self.shared.waiters.lock().get(&token).cloned();
                for id in ids {
                    let nodes: Vec<String> = self
                        .shared
                        .registry
                        .read()
                        .children
                        .get(&id)
                        .map(|e| e.copies.keys().cloned().collect())
                        .unwrap_or_default();
                    if let Some(waiter) = &waiter {
                        let _ = waiter.send(Outcome::Planned {
                            id: id.clone(),
                            nodes: nodes.clone(),
                        });
                    }
                    for node in nodes {
                        let stop = WireMsg::Stop {
                            token,
                            origin: self.shared.me.clone(),
                            id: id.clone(),
                        };
                        self.send_to(ctx, &node, stop);
                    }
                }
            }
            Command::ChildUp { id, handle } => {
                let pid = handle.pid();
                match self.local_pids.get(&id) {
                    Some(known) if *known != pid => {
                        // A supervisor restart: the new pid replaces the old one.
                        self.local_pids.insert(id.clone(), pid);
                        let me = self.shared.me.clone();
                        let args = self
                            .shared
                            .registry
                            .read()
                            .children
                            .get(&id)
                            .map(|e| e.args.clone());
                        if let Some(args) = args {
                            self.shared
                                .registry
                                .write()
                                .insert(&id, &me, pid, args.clone());
                            self.broadcast(
                                ctx,
                                WireMsg::Register {
                                    id: id.clone(),
                                    node: me,
                                    pid,
                                    args,
                                },
                            );
                        }
                        self.shared.emit(HubEvent::ChildStarted {
                            id: id.clone(),
                            pid,
                        });
                    }
                    Some(_) => {}
                    // Stopped meanwhile, or a copy from before a stop: not ours.
                    None if !handle.is_alive() => return Step::Next,
                    None => {}
                }
                if let Some(state) = self.pending_states.remove(&id) {
                    handle.cast(ChildCast::Restore(state));
                }
                self.shared.local.lock().insert(id, handle);
            }
            Command::RetentionHandled { id } => {
                let token = self
                    .migrations
                    .iter()
                    .find(|(_, m)| m.id == id && m.phase == Phase::AwaitRetention)
                    .map(|(t, _)| *t);
                if let Some(token) = token {
                    self.stop_local(ctx, &id, true);
                    self.end_migration(ctx, token, Ending::Migrated { handed_over: true });
                }
            }
            Command::Node(NodeEvent::Up { node }) => {
                if !self.left {
                    let hello = self.hello();
                    self.send_to(ctx, &node, hello);
                }
            }
            Command::Node(NodeEvent::Down { node, .. }) => self.remove_member(ctx, &node),
        }
        Step::Next
    }

    fn handle_info(&mut self, info: Info<HubInfo>, ctx: &mut Context<Self>) -> Step<Self> {
        let info = match info {
            Info::Message(info) | Info::Timer(_, info) => info,
            Info::Exit(_) | Info::Down(_) => return Step::Next,
        };
        match info {
            HubInfo::Wire(msg) => self.handle_wire(ctx, msg),
            HubInfo::SyncTick => {
                if !self.left {
                    let children = self.local_list();
                    let me = self.shared.me.clone();
                    self.broadcast(ctx, WireMsg::Sync { node: me, children });
                    // Anti-entropy: children that arrived during an earlier round on a
                    // ring that has changed since move on now.
                    self.redistribute(ctx, None);
                }
                ctx.send_after(HubInfo::SyncTick, self.shared.config.sync_interval);
            }
            HubInfo::DiscoverTick => {
                if !self.left {
                    let members = self.shared.members.read().clone();
                    for node in self.shared.node.nodes() {
                        if !members.contains(&node) {
                            let hello = self.hello();
                            self.send_to(ctx, &node, hello);
                        }
                    }
                }
                ctx.send_after(HubInfo::DiscoverTick, self.shared.config.discover_interval);
            }
            HubInfo::MigrationTimeout { token } => {
                if self
                    .migrations
                    .get(&token)
                    .is_some_and(|m| m.phase == Phase::AwaitStart)
                {
                    self.end_migration(ctx, token, Ending::TimedOut);
                }
            }
            HubInfo::RetentionOver { token } => {
                if let Some(migration) = self.migrations.get(&token)
                    && migration.phase == Phase::AwaitRetention
                {
                    let id = migration.id.clone();
                    self.stop_local(ctx, &id, true);
                    self.end_migration(ctx, token, Ending::Migrated { handed_over: false });
                }
            }
        }
        Step::Next
    }

    fn terminate(&mut self, _: &ExitReason, _: &mut Context<Self>) {
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.stop(ExitReason::Shutdown, Duration::from_secs(30));
        }
        self.shared.local.lock().clear();
    }
}

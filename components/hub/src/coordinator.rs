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
//! * A migration whose target already runs the child (a healed partition: both sides
//!   ran it) stops the old copy without handing its state over: the copy on the ring
//!   node wins, so what it did during the partition is kept.
//! * Orphans (registered children with no copy) are restarted only once every member
//!   that joined (or was greeted) has sent its `Sync`: a registry that does not know
//!   a node's children yet would take them for orphans.
//! * Majority quorum: a node that loses the quorum stops its children (the majority
//!   side restarts them) and keeps them registered as orphans, to restart once a
//!   quorum is back and every member has synced; while it has no quorum it starts
//!   nothing, whoever asks.

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
use crate::config::{CopyMode, HubConfig, PartitionTolerance, RedundancySignal};
use crate::events::HubEvent;
use crate::registry::Registry;
use crate::ring::Ring;
use crate::wire::{Started, WireMsg};

mod leave;
mod membership;
mod redistribution;

/// What the coordinator tells a waiting `start_children` / `stop_children`.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `id` goes to these nodes (one result per node follows).
    Planned { id: String, nodes: Vec<String> },
    /// A start result.
    Started {
        id: String,
        node: String,
        result: Result<Pid, ExitReason>,
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
    /// Each spec with its nodes under guided placement (`None`: the ring's).
    StartChildren {
        token: u64,
        specs: Vec<(HubChildSpec, Option<Vec<String>>)>,
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

/// The exit reason a failed start reports: `init`'s own reason when it refused,
/// else the supervisor's error as an `Error` reason.
fn start_failure(error: otp_threads::SupervisorError) -> ExitReason {
    match error {
        otp_threads::SupervisorError::ChildStartFailed {
            error: otp_threads::Error::InitFailed(reason),
            ..
        } => reason,
        other => ExitReason::error(other),
    }
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
    /// Members (and greeted nodes) whose `Sync` has not arrived, with the sync ticks
    /// waited so far (a greeted node that never answers is forgotten after a few).
    awaiting_sync: HashMap<String, u32>,
    /// Connects under way to members another member listed (one thread each, so an
    /// unreachable node never blocks the coordinator), joined as they end.
    connecting: Vec<(String, std::thread::JoinHandle<()>)>,
    /// Active-passive with a redundancy signal: the role each local copy was last
    /// evaluated as (told, if the signal setting names that role).
    signalled: HashMap<String, CopyMode>,
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
            awaiting_sync: HashMap::new(),
            connecting: Vec::new(),
            signalled: HashMap::new(),
        }
    }

    /// Sends `msg` to the hub on `node` (handled at once when that is this node);
    /// `false` if it could not be sent (no connection).
    fn send_to(&mut self, ctx: &mut Context<Self>, node: &str, msg: WireMsg) -> bool {
        if node == self.shared.me {
            self.handle_wire(ctx, msg);
            return true;
        }
        let to = (self.shared.name.as_str(), node);
        self.shared.messages_sent.fetch_add(1, Ordering::Relaxed);
        match self.shared.node.send(ctx.pid(), to, &msg) {
            Ok(()) => true,
            Err(error) => {
                log::warn!(
                    "hub {}: sending to {node} failed: {error}",
                    self.shared.name
                );
                false
            }
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
    ) -> Result<Started, ExitReason> {
        if let Some(pid) = self.local_pids.get(id) {
            return Ok(Started {
                pid: *pid,
                existing: true,
            });
        }
        let Some(supervisor) = self.supervisor.clone() else {
            return Err(ExitReason::shutdown_with("the hub is stopping"));
        };
        // Without a quorum nothing starts here, whoever asks (a start sent by a node
        // that still had one may arrive after this one lost it).
        if let Some((members, quorum)) = self.shared.quorum_shortfall() {
            return Err(ExitReason::shutdown_with(format!(
                "quorum lost: {members} node(s) seen, {quorum} needed"
            )));
        }
        let spec = HubChildSpec::new(id, args.clone());
        let shared = self.shared.clone();
        let coordinator = ctx.handle();
        // A state handed over before this start is merged in `init`, before the child
        // serves anything; only the first start takes it (a restart begins fresh).
        let mut restore = self.pending_states.remove(id);
        let signal = self.shared.config.redundancy_signal;
        let mode = (signal != RedundancySignal::None).then(|| self.copy_mode(id, true));
        let initial_mode = mode.filter(|mode| signal.tells(*mode));
        let child_spec = ChildSpec::worker(id, move || ChildProcess {
            id: spec.id.clone(),
            inner: (shared.config.factory)(&spec),
            restore: restore.take(),
            initial_mode,
            shared: shared.clone(),
            coordinator: coordinator.clone(),
        });
        match supervisor.start_child(child_spec) {
            Ok(pid) => {
                self.local_pids.insert(id.to_owned(), pid);
                if let Some(mode) = mode {
                    self.signalled.insert(id.to_owned(), mode);
                }
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
                Ok(Started {
                    pid,
                    existing: false,
                })
            }
            Err(error) => {
                log::warn!(
                    "hub {}: child {id} failed to start: {error}",
                    self.shared.name
                );
                Err(start_failure(error))
            }
        }
    }

    /// Stops the local copy of `id`; `false` if there was none.
    fn stop_local(&mut self, ctx: &mut Context<Self>, id: &str, announce: bool) -> bool {
        let Some(pid) = self.local_pids.remove(id) else {
            return false;
        };
        self.signalled.remove(id);
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
                let result = match crate::hub::validate_child_id(&id) {
                    Ok(()) => self.start_local(ctx, &id, args),
                    Err(error) => Err(ExitReason::error(error)),
                };
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
            } => {
                self.shared.registry.write().insert(&id, &node, pid, args);
                self.resignal(&id);
            }
            WireMsg::Unregister { id, node } => {
                self.shared.registry.write().remove(&id, &node);
                self.resignal(&id);
            }
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
            WireMsg::Sync {
                node,
                children,
                members,
            } => {
                if self.shared.members.read().contains(&node) {
                    self.shared.registry.write().sync_node(&node, children);
                    self.resignal_all();
                    self.synced(ctx, &node);
                    self.connect_unknown(members);
                }
            }
            WireMsg::Leaving { node } => self.remove_member(ctx, &node),
        }
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
        // The first discovery is sent by `Hub::start` once this worker takes messages
        // from other nodes, so that no early `Welcome` is dropped.
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
                for (spec, guided) in specs {
                    let owners = guided.unwrap_or_else(|| self.owners(&spec.id));
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
                        // A supervisor restart: the new pid replaces the old one, and
                        // is told its role now.
                        self.local_pids.insert(id.clone(), pid);
                        self.signalled.remove(&id);
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
                    // Stopped before this message was handled (start_local records
                    // the pid before any ChildUp is handled): nothing to track.
                    None => return Step::Next,
                }
                if let Some(state) = self.pending_states.remove(&id) {
                    handle.cast(ChildCast::Restore(state));
                }
                self.shared.local.lock().insert(id.clone(), handle);
                self.resignal(&id);
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
                    let sync = self.sync_message();
                    self.broadcast(ctx, sync);
                    self.age_awaited_syncs();
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
        for (_, thread) in self.connecting.drain(..) {
            let _ = thread.join();
        }
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.stop(ExitReason::Shutdown, Duration::from_secs(30));
        }
        self.shared.local.lock().clear();
    }
}

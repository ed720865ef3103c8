//! The Connector (zen_monitor's `Local.Connector`): one per remote node, started on
//! demand through the keyed registry.
//!
//! Contract:
//! * Every `connector_sweep_interval` it checks the remote's compatibility (cached; a
//!   ping to `{'Elixir.ZenMonitor.Proxy', Node}` on a miss, an expired penalty or an
//!   unavailable entry) and, when compatible, sends at most `connector_chunk_size`
//!   queued instructions in one `{'$gen_cast', {process, Self, Instructions}}`; when
//!   not, fires every monitor of the node with `nodedown`.
//! * `{dead, Node, [{Target, Reason}]}` from the remote Batcher fires each monitor of
//!   each target with `{zen_monitor, Reason}`.
//! * A nodedown (the runtime's node events reach its `handle_info`, as
//!   `net_kernel:monitor_nodes` messages), or a DOWN of the remote Proxy (monitored by
//!   name after the first `pong`; a [`relay`] thread forwards it from the runtime's
//!   channel), fires every monitor of the node with `nodedown`, in insertion order, at
//!   once.
//! * Penalties run on the runtime's clock (a manual clock in tests).
//! * Its monitors live in the zen monitor's shared table, not in the Connector: a
//!   Connector that starts (or restarts after a crash) subscribes every target the
//!   table holds for its node, so no monitor is lost with a crashed Connector.

mod relay;

use std::collections::VecDeque;
use std::sync::Arc;

use otp_threads::dist::{DistError, FromTerm, NodeEvent, Term};
use otp_threads::{Context, ExitReason, Info, Monitor, ReplyTo, Step, Worker};

use crate::ZenShared;
use crate::local::dispatcher::Pending;
use crate::tables::{Cached, CachedCompatibility, Compatibility, Row, penalty};
use crate::target::{Target, ZenDown, ZenReason, ZenRef};
use crate::wire::{self, Instruction, PROXY};
use otp_threads::fast_hash::FastSet;

pub(crate) struct Connector {
    pub(crate) shared: Arc<ZenShared>,
    pub(crate) remote: String,
    pub(crate) batch: VecDeque<Instruction>,
    /// Targets with a subscribe in `batch` (a second one for the same target is dropped).
    pub(crate) queued: FastSet<Target>,
    pub(crate) proxy: Option<Monitor>,
    /// The number of the Proxy monitor in force (a stale one's DOWN is ignored).
    pub(crate) proxy_generation: u64,
    pub(crate) relay: Option<relay::Relay>,
}

/// Requests to a Connector.
pub(crate) enum ConnectorCall {
    /// `connect/1`: the compatibility, pinging if the cache says so.
    Connect,
    /// The references `subscriber` holds on `target`.
    Monitors(Target, otp_threads::Pid),
}

pub(crate) enum ConnectorReply {
    Compatibility(Compatibility),
    References(Vec<ZenRef>),
}

/// What reaches a Connector's `handle_info`: its sweep timer, or a dead summary from
/// the remote Batcher.
pub(crate) enum ConnectorInfo {
    Sweep,
    Dead(String, Vec<(Target, Term)>),
    /// A node went down (a node event).
    NodeDown(String),
    /// A node came up (a node event): nothing to do.
    NodeUp,
    /// From the relay: the Proxy monitor of that generation fired.
    ProxyDown(u64, ExitReason),
}

impl From<NodeEvent> for ConnectorInfo {
    fn from(event: NodeEvent) -> Self {
        match event {
            NodeEvent::Down { node, .. } => ConnectorInfo::NodeDown(node),
            NodeEvent::Up { .. } => ConnectorInfo::NodeUp,
        }
    }
}

impl FromTerm for ConnectorInfo {
    fn from_term(term: Term) -> Result<Self, DistError> {
        let (node, certificates) = wire::parse_dead_summary(term)?;
        Ok(ConnectorInfo::Dead(node, certificates))
    }
}

impl Connector {
    fn enqueue(&mut self, instruction: Instruction) {
        match &instruction {
            Instruction::Subscribe(target) => {
                if !self.queued.insert(target.clone()) {
                    return;
                }
            }
            Instruction::Unsubscribe(target) => {
                self.queued.remove(target);
            }
        }
        self.batch.push_back(instruction);
    }

    fn rows_to_pending(
        rows: impl IntoIterator<Item = Row>,
        reason: impl Fn() -> ZenReason,
    ) -> Vec<Pending> {
        rows.into_iter()
            .map(|row| Pending {
                down: ZenDown {
                    reference: row.reference,
                    target: row.target,
                    reason: reason(),
                },
                subscriber: row.subscriber,
            })
            .collect()
    }

    /// Fires every monitor of the node with `nodedown`, in insertion order.
    fn fire_all(&mut self) {
        let (rows, indexes) = self
            .shared
            .tables
            .monitors
            .lock()
            .get_mut(&self.remote)
            .map(|monitors| monitors.take_all())
            .unwrap_or_default();
        self.batch.clear();
        self.queued.clear();
        if !rows.is_empty() {
            log::debug!(
                "zen_monitor: {} monitors of {} fire nodedown",
                rows.len(),
                self.remote
            );
            self.shared
                .dispatch(Self::rows_to_pending(rows.into_values(), || {
                    ZenReason::NodeDown
                }));
        }
        // Freed while the Dispatcher already delivers.
        drop(indexes);
    }

    fn dead(&mut self, certificates: Vec<(Target, Term)>) {
        let mut pending = Vec::new();
        {
            let mut tables = self.shared.tables.monitors.lock();
            let Some(monitors) = tables.get_mut(&self.remote) else {
                return;
            };
            for (target, reason) in certificates {
                let rows = monitors.take_target(&target);
                let reason = ZenReason::from_certificate(reason);
                pending.extend(Self::rows_to_pending(rows, || reason.clone()));
            }
        }
        if !pending.is_empty() {
            self.shared.dispatch(pending);
        }
    }

    /// The remote node went down: every monitor fires `nodedown`.
    fn node_down(&mut self) {
        self.shared.tables.mark(&self.remote, Cached::Unavailable);
        self.proxy = None;
        self.fire_all();
    }

    /// The remote Proxy's DOWN: unavailable on `noconnection`, else incompatible.
    fn proxy_down(&mut self, generation: u64, reason: ExitReason) {
        if self.proxy.is_none() || generation != self.proxy_generation {
            return;
        }
        self.proxy = None;
        let cached = if reason == ExitReason::NoConnection {
            Cached::Unavailable
        } else {
            Cached::Incompatible {
                until: self.shared.runtime.now() + penalty(1),
                attempt: 1,
            }
        };
        self.shared.tables.mark(&self.remote, cached);
        self.fire_all();
    }

    fn compatibility(&mut self) -> Compatibility {
        match self
            .shared
            .tables
            .cached(&self.remote, self.shared.runtime.now())
        {
            CachedCompatibility::Compatible => Compatibility::Compatible,
            CachedCompatibility::Incompatible => Compatibility::Incompatible,
            CachedCompatibility::Miss | CachedCompatibility::Unavailable => self.connect(1),
            CachedCompatibility::Expired(attempt) => self.connect(attempt.saturating_add(1)),
        }
    }

    fn connect(&mut self, attempt: u32) -> Compatibility {
        let node = &self.shared.node;
        // `known_node?/1`: only a visible connection counts (a hidden one is unavailable).
        if !node.visible_nodes().contains(&self.remote) {
            self.shared.tables.mark(&self.remote, Cached::Unavailable);
            return Compatibility::Incompatible;
        }
        let timeout = self.shared.options.read().ping_timeout;
        let answer: Result<Term, DistError> =
            node.call((PROXY, self.remote.as_str()), &wire::atom("ping"), timeout);
        match answer {
            Ok(Term::Atom(pong)) if pong.name == "pong" => {
                self.shared.tables.mark(&self.remote, Cached::Compatible);
                if self.proxy.is_none() {
                    let monitor = node.monitor_name(PROXY, &self.remote);
                    self.proxy_generation = self.proxy_generation.wrapping_add(1);
                    if let Some(relay) = &self.relay {
                        relay.watch_proxy(self.proxy_generation, monitor.receiver().clone());
                    }
                    self.proxy = Some(monitor);
                }
                Compatibility::Compatible
            }
            Err(DistError::NoConnection { .. }) => {
                self.shared.tables.mark(&self.remote, Cached::Unavailable);
                Compatibility::Incompatible
            }
            other => {
                log::info!(
                    "zen_monitor: {} is incompatible (ping gave {other:?}), attempt {attempt}",
                    self.remote
                );
                let until = self.shared.runtime.now() + penalty(attempt);
                self.shared
                    .tables
                    .mark(&self.remote, Cached::Incompatible { until, attempt });
                Compatibility::Incompatible
            }
        }
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        match self.compatibility() {
            Compatibility::Compatible => {
                if self.batch.is_empty() {
                    return;
                }
                let chunk = self.shared.options.read().connector_chunk_size;
                let take = chunk.min(self.batch.len());
                let instructions: Vec<Instruction> = self.batch.drain(..take).collect();
                for instruction in &instructions {
                    if let Instruction::Subscribe(target) = instruction {
                        self.queued.remove(target);
                    }
                }
                let message = wire::process_cast(ctx.pid(), &instructions);
                if let Err(error) =
                    self.shared
                        .node
                        .send(ctx.pid(), (PROXY, self.remote.as_str()), &message)
                {
                    log::warn!(
                        "zen_monitor: subscriptions to {} not sent: {error}",
                        self.remote
                    );
                    // The connection is gone: the nodedown fires these monitors.
                }
            }
            Compatibility::Incompatible => self.fire_all(),
        }
    }
}

impl Worker for Connector {
    type Call = ConnectorCall;
    type Reply = ConnectorReply;
    type Cast = Instruction;
    type Info = ConnectorInfo;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        self.shared.node.accept_messages(&ctx.handle());
        self.shared.node.monitor_nodes_to(&ctx.handle());
        let relay = relay::Relay::start(ctx.handle())
            .map_err(|error| ExitReason::error(format!("no relay thread: {error}")))?;
        self.relay = Some(relay);
        // A restarted Connector takes over the monitors its predecessor left.
        let targets = self
            .shared
            .tables
            .monitors
            .lock()
            .get(&self.remote)
            .map(|monitors| monitors.targets())
            .unwrap_or_default();
        if !targets.is_empty() {
            log::info!(
                "zen_monitor: connector for {} resubscribes {} targets",
                self.remote,
                targets.len()
            );
        }
        for target in targets {
            self.enqueue(Instruction::Subscribe(target));
        }
        let interval = self.shared.options.read().connector_sweep_interval;
        ctx.send_after(ConnectorInfo::Sweep, interval);
        Ok(())
    }

    fn handle_call(
        &mut self,
        call: ConnectorCall,
        reply: ReplyTo<ConnectorReply>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        match call {
            ConnectorCall::Connect => {
                reply.reply(ConnectorReply::Compatibility(self.compatibility()));
            }
            ConnectorCall::Monitors(target, pid) => {
                let references = self
                    .shared
                    .tables
                    .monitors
                    .lock()
                    .get(&self.remote)
                    .map(|m| m.references(&target, pid))
                    .unwrap_or_default();
                reply.reply(ConnectorReply::References(references));
            }
        }
        Step::Next
    }

    fn handle_cast(&mut self, instruction: Instruction, _: &mut Context<Self>) -> Step<Self> {
        self.enqueue(instruction);
        Step::Next
    }

    fn handle_info(&mut self, info: Info<ConnectorInfo>, ctx: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Timer(_, ConnectorInfo::Sweep) => {
                self.sweep(ctx);
                let interval = self.shared.options.read().connector_sweep_interval;
                ctx.send_after(ConnectorInfo::Sweep, interval);
            }
            Info::Message(ConnectorInfo::Dead(node, certificates)) if node == self.remote => {
                self.dead(certificates);
            }
            Info::Message(ConnectorInfo::NodeDown(node)) if node == self.remote => {
                self.node_down();
            }
            Info::Message(ConnectorInfo::ProxyDown(generation, reason)) => {
                self.proxy_down(generation, reason);
            }
            Info::Message(ConnectorInfo::Dead(node, _)) => {
                log::warn!(
                    "zen_monitor: connector for {} ignored a summary from {node}",
                    self.remote
                );
            }
            _ => {}
        }
        Step::Next
    }
}

//! Batched monitoring of huge numbers of processes on other nodes, after
//! discord/zen_monitor 2.1.0, and wire-compatible with it: a Rust node and an Elixir
//! node running zen_monitor monitor each other's processes in both directions.
//!
//! Contract (the guarantees and their tests are listed in the crate README):
//! * [`ZenMonitor::monitor`] of a remote pid or `{name, node}` returns a [`ZenRef`];
//!   exactly one [`ZenDown`] reaches the [`Subscriber`] (a worker, a plain-thread
//!   process or a channel) with the typed form of `{zen_monitor, Reason}`:
//!   [`ZenReason::Exited`] (the truncated original reason), [`ZenReason::NoProc`] or
//!   [`ZenReason::NodeDown`]. A local target falls back to an ordinary monitor
//!   ([`ZenReason::Local`]).
//! * Only the first monitor per target is subscribed at the remote Proxy, the last
//!   demonitor unsubscribes; subscriptions leave in batches every
//!   `connector_sweep_interval` (at most `connector_chunk_size` per message).
//! * The Proxy of this node (registered as `'Elixir.ZenMonitor.Proxy'`) serves other
//!   nodes' Connectors, Elixir's included.
//! * After [`ZenMonitor::demonitor`] returns, no DOWN of that monitor is handed to its
//!   subscriber (the Dispatcher delivers only DOWNs whose reference it can take);
//!   [`ZenMonitor::demonitor_worker`] and [`ZenMonitor::demonitor_process`] with flush
//!   also remove one already in the subscriber's mailbox.
//! * A crashed Connector loses no monitor: its successor, started at once, resubscribes
//!   every target of its node.

#![forbid(unsafe_code)]

mod error;
mod local;
mod options;
mod proxy;
mod tables;
mod target;
mod truncator;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use otp_threads::dist::Node;
use otp_threads::{Context, ExitReason, KeyedRegistry, Pid, RuntimeHandle, Worker, WorkerRef};
use parking_lot::RwLock;

pub use error::ZenError;
pub use local::dispatcher::DispatcherStats;
pub use options::Options;
pub use tables::{CachedCompatibility, Compatibility, penalty};
pub use target::{
    BatchChannelSubscriber, ChannelSubscriber, SharedSubscriber, Subscriber, Target, ZenDown,
    ZenReason, ZenRef,
};
pub use truncator::truncate;
pub use wire::{Instruction, PROXY, exit_reason_to_term};

use local::connector::{Connector, ConnectorCall, ConnectorReply};
use local::dispatcher::{Dispatcher, Pending};
use local::{Local, LocalCall, LocalCast};
use proxy::{Proxy, ProxyTables};
use tables::{Reference, Row, Tables};

/// What every part of one zen monitor shares.
pub(crate) struct ZenShared {
    pub(crate) node: Arc<Node>,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) options: Arc<RwLock<Options>>,
    pub(crate) tables: Arc<Tables>,
    connectors: KeyedRegistry<String, Connector>,
    dispatcher: WorkerRef<Dispatcher>,
    local: OnceLock<WorkerRef<Local>>,
    next_reference: AtomicU64,
    stopped: AtomicBool,
}

impl ZenShared {
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn has_monitors(&self, node: &str) -> bool {
        self.tables
            .monitors
            .lock()
            .get(node)
            .is_some_and(|m| m.len() > 0)
    }

    pub(crate) fn dispatch(&self, pending: Vec<Pending>) {
        self.dispatcher.cast(pending);
    }

    fn local(&self) -> Result<&WorkerRef<Local>, ZenError> {
        self.local.get().ok_or(ZenError::Stopped)
    }

    /// The Connector for `node`, started (and watched) if there is none.
    pub(crate) fn connector(
        self: &Arc<Self>,
        node: &str,
    ) -> Result<WorkerRef<Connector>, ZenError> {
        if self.is_stopped() {
            return Err(ZenError::Stopped);
        }
        if let Some(connector) = self.connectors.lookup(&node.to_owned()) {
            return Ok(connector);
        }
        let started = self.connectors.lookup_or_start(node.to_owned(), || {
            let connector = self.runtime.spawn_worker(Connector {
                shared: self.clone(),
                remote: node.to_owned(),
                batch: VecDeque::new(),
                queued: otp_threads::fast_hash::FastSet::default(),
                proxy: None,
                proxy_generation: 0,
                relay: None,
            })?;
            if let Some(local) = self.local.get() {
                local.cast(LocalCast::WatchConnector(node.to_owned(), connector.pid()));
            }
            Ok(connector)
        })?;
        Ok(started)
    }

    pub(crate) fn fire_all_nodedown(&self, node: &str) {
        let (rows, indexes) = self
            .tables
            .monitors
            .lock()
            .get_mut(node)
            .map(|m| m.take_all())
            .unwrap_or_default();
        let pending = rows
            .into_values()
            .map(|row| Pending {
                down: ZenDown {
                    reference: row.reference,
                    target: row.target,
                    reason: ZenReason::NodeDown,
                },
                subscriber: row.subscriber,
            })
            .collect();
        self.dispatch(pending);
        drop(indexes);
    }

    /// Removes a remote monitor; queues the unsubscribe if it was the last on its target.
    fn demonitor_remote(self: &Arc<Self>, node: &str, reference: ZenRef) {
        let removed = self
            .tables
            .monitors
            .lock()
            .get_mut(node)
            .and_then(|m| m.remove(reference));
        if let Some((target, true)) = removed
            && let Ok(connector) = self.connector(node)
        {
            connector.cast(Instruction::Unsubscribe(target));
        }
    }

    /// A subscriber ended: its monitors go.
    pub(crate) fn subscriber_down(self: &Arc<Self>, pid: Pid) {
        let mine: Vec<(String, ZenRef)> = {
            let monitors = self.tables.monitors.lock();
            monitors
                .iter()
                .flat_map(|(node, m)| {
                    m.subscriber_references(pid)
                        .into_iter()
                        .map(move |r| (node.clone(), r))
                })
                .collect()
        };
        for (node, reference) in mine {
            if self.tables.references.lock().remove(&reference).is_some() {
                self.demonitor_remote(&node, reference);
            }
        }
    }
}

/// One node's zen monitor: the monitoring side (Local, Connectors, Dispatcher) and the
/// monitored side (the Proxy and its Batchers).
pub struct ZenMonitor {
    shared: Arc<ZenShared>,
    proxy: WorkerRef<Proxy>,
    proxy_tables: Arc<ProxyTables>,
    stats: Arc<DispatcherStats>,
}

impl ZenMonitor {
    /// Starts a zen monitor on `runtime`, whose node is `node`: the Dispatcher, the
    /// Local worker, and the Proxy registered as `'Elixir.ZenMonitor.Proxy'`.
    pub fn start(
        runtime: &RuntimeHandle,
        node: Arc<Node>,
        options: Options,
    ) -> Result<ZenMonitor, ZenError> {
        options.validate()?;
        let options = Arc::new(RwLock::new(options));
        let tables = Arc::new(Tables::default());
        let stats = Arc::new(DispatcherStats::default());
        let dispatcher = runtime.spawn_worker(Dispatcher {
            tables: tables.clone(),
            options: options.clone(),
            stats: stats.clone(),
            queue: VecDeque::new(),
        })?;
        let shared = Arc::new(ZenShared {
            node: node.clone(),
            runtime: runtime.clone(),
            options: options.clone(),
            tables,
            connectors: KeyedRegistry::new(),
            dispatcher,
            local: OnceLock::new(),
            next_reference: AtomicU64::new(1),
            stopped: AtomicBool::new(false),
        });
        let local = runtime.spawn_worker(Local::new(Arc::downgrade(&shared)))?;
        let _ = shared.local.set(local);
        let proxy_tables = Arc::new(ProxyTables::default());
        let proxy = runtime.spawn_named(
            PROXY,
            Proxy::new(node.clone(), options, proxy_tables.clone()),
        )?;
        node.serve(&proxy);
        Ok(ZenMonitor {
            shared,
            proxy,
            proxy_tables,
            stats,
        })
    }

    /// Monitors `target` for `subscriber` (zen_monitor's `monitor/1`). A target on
    /// this node gets an ordinary monitor.
    pub fn monitor(
        &self,
        target: impl Into<Target>,
        subscriber: SharedSubscriber,
    ) -> Result<ZenRef, ZenError> {
        let shared = &self.shared;
        if shared.is_stopped() {
            return Err(ZenError::Stopped);
        }
        let target = target.into();
        let reference = ZenRef(shared.next_reference.fetch_add(1, Ordering::Relaxed));
        let local = shared.local()?;
        local.cast(LocalCast::WatchSubscriber(subscriber.pid()));
        if target.node() == shared.node.name() {
            shared
                .tables
                .references
                .lock()
                .insert(reference, Reference { remote: None });
            local.call(LocalCall::MonitorLocal {
                reference,
                target,
                subscriber,
            })?;
            return Ok(reference);
        }
        let node = target.node_name();
        shared
            .tables
            .references
            .lock()
            .insert(reference, Reference { remote: Some(node) });
        let node = node.as_str();
        let row = Row {
            target: target.clone(),
            reference,
            subscriber,
        };
        let first = {
            let mut monitors = shared.tables.monitors.lock();
            // No key allocated per monitor: only the node's first one makes its entry.
            match monitors.get_mut(node) {
                Some(node_monitors) => node_monitors.insert(row),
                None => monitors.entry(node.to_owned()).or_default().insert(row),
            }
        };
        // The row is in the table before any Connector is asked for: one that starts
        // (or restarts) now subscribes it in its init, and the cast below reaches the
        // one that runs; a Connector drops a subscribe already queued, so the target
        // is sent once.
        let connector = match shared.connector(node) {
            Ok(connector) => connector,
            Err(error) => {
                shared.tables.references.lock().remove(&reference);
                if let Some(monitors) = shared.tables.monitors.lock().get_mut(node) {
                    monitors.remove(reference);
                }
                return Err(error);
            }
        };
        if first {
            connector.cast(Instruction::Subscribe(target));
        }
        Ok(reference)
    }

    /// `ZenMonitor.monitor(Target)` called inside a worker: monitors `target` (a remote
    /// pid or `{name, node}`) with this worker as the subscriber, so the DOWN reaches
    /// its `handle_info` (as `W::Info::from(ZenDown)`). Pair with
    /// [`demonitor_worker`](Self::demonitor_worker).
    pub fn monitor_from<W: Worker>(
        &self,
        ctx: &Context<W>,
        target: impl Into<Target>,
    ) -> Result<ZenRef, ZenError>
    where
        W::Info: From<ZenDown>,
    {
        self.monitor(target, Arc::new(ctx.handle()))
    }

    /// Removes a monitor (zen_monitor's `demonitor/2`). Returns `true` if it was active.
    /// Whether `flush` is given or not, no DOWN of it reaches the subscriber after this
    /// returns; a DOWN handed over before stays where it was delivered, unless the
    /// subscriber flushes it with [`demonitor_worker`](Self::demonitor_worker) (inside
    /// a worker) or [`demonitor_process`](Self::demonitor_process).
    pub fn demonitor(&self, reference: ZenRef, flush: bool) -> bool {
        let _ = flush;
        let shared = &self.shared;
        let Some(entry) = shared.tables.references.lock().remove(&reference) else {
            return false;
        };
        match entry.remote {
            Some(node) => {
                shared.demonitor_remote(node.as_str(), reference);
                true
            }
            None => match shared.local() {
                Ok(local) => local
                    .call(LocalCall::DemonitorLocal(reference))
                    .unwrap_or(false),
                Err(_) => false,
            },
        }
    }

    /// `demonitor(Ref, [flush])` for a plain-thread process subscriber: removes the
    /// monitor and, with `flush`, also a DOWN of it already delivered to `process`'s
    /// mailbox (`down_of` tells which messages are zen DOWNs). Returns `true` if the
    /// monitor was active.
    pub fn demonitor_process<M: Send + 'static>(
        &self,
        process: &otp_threads::Process<M>,
        reference: ZenRef,
        flush: bool,
        down_of: impl Fn(&M) -> Option<&ZenDown>,
    ) -> bool {
        let active = self.demonitor(reference, flush);
        if flush && !active {
            self.settle_delivery();
            let _ = process.receive_matching(
                |item| {
                    matches!(item, otp_threads::Received::Message(m)
                        if down_of(m).is_some_and(|down| down.reference == reference))
                },
                Duration::ZERO,
            );
        }
        active
    }

    /// `demonitor(Ref, [flush])` from inside a worker that is the monitor's subscriber
    /// (its `WorkerRef`): removes the monitor and, with `flush`, also a DOWN of it
    /// already queued in this worker's mailbox but not yet handled, as Erlang's flush
    /// does (`down_of` tells which of the worker's messages are zen DOWNs). After it
    /// returns, `handle_info` never sees a DOWN of `reference`. Returns `true` if the
    /// monitor was active (no DOWN had been handed over).
    pub fn demonitor_worker<W: Worker>(
        &self,
        ctx: &mut Context<W>,
        reference: ZenRef,
        flush: bool,
        down_of: impl Fn(&W::Info) -> Option<&ZenDown>,
    ) -> bool {
        let active = self.demonitor(reference, flush);
        if flush && !active {
            self.settle_delivery();
            let _ = ctx.take_queued_messages(|message| {
                down_of(message).is_some_and(|down| down.reference == reference)
            });
        }
        active
    }

    /// Waits until a DOWN whose reference was already taken is in its subscriber's
    /// mailbox (the round delivering it holds the delivery lock).
    fn settle_delivery(&self) {
        drop(self.shared.tables.delivery.lock());
    }

    /// The references `subscriber` holds on the remote `target` (zen_monitor's
    /// `Connector.monitors/2`); empty for a local target.
    pub fn monitors(&self, target: &Target, subscriber: Pid) -> Result<Vec<ZenRef>, ZenError> {
        if target.node() == self.shared.node.name() {
            return Ok(Vec::new());
        }
        let connector = self.shared.connector(target.node())?;
        match connector.call(ConnectorCall::Monitors(target.clone(), subscriber))? {
            ConnectorReply::References(references) => Ok(references),
            ConnectorReply::Compatibility(_) => Ok(Vec::new()),
        }
    }

    /// The effective compatibility of `node` from the cache alone (only a `pong` counts).
    pub fn compatibility(&self, node: &str) -> Compatibility {
        match self.cached_compatibility(node) {
            CachedCompatibility::Compatible => Compatibility::Compatible,
            _ => Compatibility::Incompatible,
        }
    }

    /// The cache entry for `node`.
    pub fn cached_compatibility(&self, node: &str) -> CachedCompatibility {
        self.shared.tables.cached(node, self.shared.runtime.now())
    }

    /// Connects to `node`'s Proxy through its Connector (one ping at most, whoever asks).
    pub fn connect(&self, node: &str) -> Result<Compatibility, ZenError> {
        let connector = self.shared.connector(node)?;
        match connector.call(ConnectorCall::Connect)? {
            ConnectorReply::Compatibility(compatibility) => Ok(compatibility),
            ConnectorReply::References(_) => Ok(Compatibility::Incompatible),
        }
    }

    /// The options in force.
    pub fn options(&self) -> Options {
        self.shared.options.read().clone()
    }

    /// Replaces the options; they apply from each worker's next sweep.
    pub fn set_options(&self, options: Options) -> Result<(), ZenError> {
        options.validate()?;
        *self.shared.options.write() = options;
        Ok(())
    }

    /// The pid of `node`'s Connector, if one runs.
    pub fn connector_pid(&self, node: &str) -> Option<Pid> {
        self.shared
            .connectors
            .lookup(&node.to_owned())
            .map(|c| c.pid())
    }

    /// Monitors held on remote targets (all nodes).
    pub fn monitor_count(&self) -> usize {
        self.shared
            .tables
            .monitors
            .lock()
            .values()
            .map(|m| m.len())
            .sum()
    }

    /// The Dispatcher's counters.
    pub fn dispatcher_stats(&self) -> &DispatcherStats {
        &self.stats
    }

    /// DOWNs waiting at the Dispatcher.
    pub fn pending_downs(&self) -> Result<usize, ZenError> {
        Ok(self.shared.dispatcher.call(())?)
    }

    /// The Proxy's pid.
    pub fn proxy_pid(&self) -> Pid {
        self.proxy.pid()
    }

    /// Real monitors the Proxy holds (one per target, however many subscribers).
    pub fn proxy_monitor_count(&self) -> usize {
        self.proxy_tables.real_monitors.load(Ordering::Relaxed)
    }

    /// Subscriptions the Proxy holds, per target.
    pub fn proxy_subscriptions(&self) -> HashMap<Target, Vec<Pid>> {
        self.proxy_tables.subscriptions.lock().clone()
    }

    /// Stops every worker of the zen monitor (Connectors, Dispatcher, Local, Proxy and
    /// Batchers), waiting at most `timeout` for each.
    pub fn shutdown(self, timeout: Duration) {
        let shared = &self.shared;
        shared.stopped.store(true, Ordering::Release);
        let _ = self.proxy.stop(ExitReason::Shutdown, timeout);
        for (_, connector) in shared.connectors.entries() {
            let _ = connector.stop(ExitReason::Shutdown, timeout);
        }
        if let Some(local) = shared.local.get() {
            let _ = local.stop(ExitReason::Shutdown, timeout);
        }
        let _ = shared.dispatcher.stop(ExitReason::Shutdown, timeout);
    }
}

// The README's example is compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

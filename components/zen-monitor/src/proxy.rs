//! The monitored side: the Proxy (zen_monitor's `ZenMonitor.Proxy`), registered as
//! `'Elixir.ZenMonitor.Proxy'`, and one [`batcher`] per subscriber.
//!
//! Contract:
//! * `gen_server:call(Proxy, ping)` answers `pong` (any other call `{error,
//!   unknown_call}`).
//! * `{'$gen_cast', {process, Subscriber, [{subscribe | unsubscribe, Target}]}}` is
//!   applied in order; the legacy `{'$gen_cast', {subscribe, Subscriber, [Target]}}`
//!   subscribes each target.
//! * One real monitor per target however many subscribers; an unsubscribe removes the
//!   subscription only (the monitor stays, as in the library).
//! * When a target dies, its reason is truncated ([`truncate`](crate::truncate)) and
//!   queued at the Batcher of each subscriber, which sends `{dead, Node, Certificates}`.

pub(crate) mod batcher;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use otp_threads::dist::{Atom, DistError, FromTerm, Node, Term};
use otp_threads::{
    Context, ExitReason, Info, KeyedRegistry, MonitorRef, Pid, ReplyTo, Step, Worker,
};
use parking_lot::{Mutex, RwLock};

use self::batcher::Batcher;
use crate::options::Options;
use crate::target::Target;
use crate::truncator::truncate;
use crate::wire::{self, Instruction};

/// Subscriptions, shared by the Proxy and its Batchers (zen_monitor's
/// `Proxy.Tables.Subscribers`).
#[derive(Default)]
pub(crate) struct ProxyTables {
    pub(crate) subscriptions: Mutex<HashMap<Target, Vec<Pid>>>,
    pub(crate) real_monitors: AtomicUsize,
}

impl ProxyTables {
    /// Removes every subscription of `subscriber`.
    pub(crate) fn remove_subscriber(&self, subscriber: Pid) {
        let mut subscriptions = self.subscriptions.lock();
        subscriptions.retain(|_, subscribers| {
            subscribers.retain(|s| *s != subscriber);
            !subscribers.is_empty()
        });
    }
}

/// What a Proxy takes as a cast.
pub(crate) enum ProxyCast {
    Process(Pid, Vec<Instruction>),
    LegacySubscribe(Pid, Vec<Target>),
}

impl FromTerm for ProxyCast {
    fn from_term(term: Term) -> Result<Self, DistError> {
        let (tag, subscriber, rest): (Atom, Pid, Term) = FromTerm::from_term(term.clone())?;
        match tag.as_str() {
            "process" => Ok(ProxyCast::Process(subscriber, FromTerm::from_term(rest)?)),
            "subscribe" => Ok(ProxyCast::LegacySubscribe(
                subscriber,
                FromTerm::from_term(rest)?,
            )),
            _ => Err(wire::mismatch("{process | subscribe, Pid, List}", term)),
        }
    }
}

pub(crate) struct Proxy {
    pub(crate) node: Arc<Node>,
    pub(crate) options: Arc<RwLock<Options>>,
    pub(crate) tables: Arc<ProxyTables>,
    pub(crate) batchers: KeyedRegistry<Pid, Batcher>,
    monitored: HashMap<Target, MonitorRef>,
    by_monitor: HashMap<MonitorRef, Target>,
}

impl Proxy {
    pub(crate) fn new(
        node: Arc<Node>,
        options: Arc<RwLock<Options>>,
        tables: Arc<ProxyTables>,
    ) -> Proxy {
        Proxy {
            node,
            options,
            tables,
            batchers: KeyedRegistry::new(),
            monitored: HashMap::new(),
            by_monitor: HashMap::new(),
        }
    }

    fn subscribe(&mut self, subscriber: Pid, target: Target, ctx: &mut Context<Self>) {
        {
            let mut subscriptions = self.tables.subscriptions.lock();
            let subscribers = subscriptions.entry(target.clone()).or_default();
            if !subscribers.contains(&subscriber) {
                subscribers.push(subscriber);
            }
        }
        if self.monitored.contains_key(&target) {
            return;
        }
        let monitor = match &target {
            Target::Pid(pid) => ctx.monitor(pid),
            Target::Name { name, node } if node == self.node.name() => ctx.monitor_name(name),
            // A name on another node: not ours to watch.
            Target::Name { .. } => {
                self.certify(target, wire::atom("noproc"), ctx);
                return;
            }
        };
        self.tables.real_monitors.fetch_add(1, Ordering::Relaxed);
        self.monitored.insert(target.clone(), monitor);
        self.by_monitor.insert(monitor, target);
    }

    fn unsubscribe(&mut self, subscriber: Pid, target: &Target) {
        let mut subscriptions = self.tables.subscriptions.lock();
        if let Some(subscribers) = subscriptions.get_mut(target) {
            subscribers.retain(|s| *s != subscriber);
            if subscribers.is_empty() {
                subscriptions.remove(target);
            }
        }
    }

    /// Queues the death of `target` at every subscriber's Batcher.
    fn certify(&mut self, target: Target, reason: Term, ctx: &mut Context<Self>) {
        let subscribers = self
            .tables
            .subscriptions
            .lock()
            .remove(&target)
            .unwrap_or_default();
        for subscriber in subscribers {
            let started = self.batchers.lookup_or_start(subscriber, || {
                ctx.runtime().spawn_worker(Batcher::new(
                    self.node.clone(),
                    self.options.clone(),
                    self.tables.clone(),
                    subscriber,
                ))
            });
            match started {
                Ok(batcher) => batcher.cast((target.clone(), reason.clone())),
                Err(error) => log::error!("zen_monitor: no batcher for {subscriber}: {error}"),
            }
        }
    }

    pub(crate) fn stop_batchers(&self) {
        for (_, batcher) in self.batchers.entries() {
            let _ = batcher.stop(ExitReason::Shutdown, std::time::Duration::from_secs(5));
        }
    }
}

impl Worker for Proxy {
    type Call = Term;
    type Reply = Term;
    type Cast = ProxyCast;
    type Info = Term;
    type Continue = ();

    fn handle_call(
        &mut self,
        request: Term,
        reply: ReplyTo<Term>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        let answer = match &request {
            Term::Atom(atom) if atom.name == "ping" => wire::atom("pong"),
            _ => wire::tuple(vec![wire::atom("error"), wire::atom("unknown_call")]),
        };
        reply.reply(answer);
        Step::Next
    }

    fn handle_cast(&mut self, cast: ProxyCast, ctx: &mut Context<Self>) -> Step<Self> {
        match cast {
            ProxyCast::Process(subscriber, instructions) => {
                for instruction in instructions {
                    match instruction {
                        Instruction::Subscribe(target) => self.subscribe(subscriber, target, ctx),
                        Instruction::Unsubscribe(target) => self.unsubscribe(subscriber, &target),
                    }
                }
            }
            ProxyCast::LegacySubscribe(subscriber, targets) => {
                for target in targets {
                    self.subscribe(subscriber, target, ctx);
                }
            }
        }
        Step::Next
    }

    fn handle_info(&mut self, info: Info<Term>, ctx: &mut Context<Self>) -> Step<Self> {
        if let Info::Down(down) = info
            && let Some(target) = self.by_monitor.remove(&down.reference)
        {
            self.monitored.remove(&target);
            self.tables.real_monitors.fetch_sub(1, Ordering::Relaxed);
            let (depth, max_binary) = {
                let options = self.options.read();
                (options.truncation_depth, options.max_binary_size)
            };
            let reason = truncate(wire::exit_reason_to_term(&down.reason), depth, max_binary);
            self.certify(target, reason, ctx);
        }
        Step::Next
    }

    fn terminate(&mut self, _: &ExitReason, _: &mut Context<Self>) {
        self.stop_batchers();
    }
}

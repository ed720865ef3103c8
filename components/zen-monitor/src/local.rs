//! The monitoring side: the Local worker, the Connectors (one per remote node) and the
//! Dispatcher.
//!
//! The Local worker (zen_monitor's `ZenMonitor.Local`, plus the supervision the
//! library lacks) holds three kinds of ordinary monitors:
//! * on each Connector: when one dies while its node still has monitors, a new one is
//!   started at once, and it resubscribes every target (see [`connector`]);
//! * on each subscriber: when it ends, its monitors are demonitored;
//! * on local targets (the fallback to an ordinary monitor): their DOWN is delivered
//!   with [`ZenReason::Local`](crate::ZenReason::Local).

pub(crate) mod connector;
pub(crate) mod dispatcher;

use std::sync::Weak;

use otp_threads::{Context, Info, MonitorRef, Pid, ReplyTo, Step, Worker};

use crate::ZenShared;
use crate::target::{SharedSubscriber, Target, ZenDown, ZenReason, ZenRef};
use otp_threads::fast_hash::FastMap;

enum Watch {
    Connector(String),
    Subscriber(Pid),
    Target {
        reference: ZenRef,
        target: Target,
        subscriber: SharedSubscriber,
    },
}

pub(crate) struct Local {
    pub(crate) shared: Weak<ZenShared>,
    watches: FastMap<MonitorRef, Watch>,
    local_targets: FastMap<ZenRef, MonitorRef>,
    subscribers: FastMap<Pid, MonitorRef>,
}

impl Local {
    pub(crate) fn new(shared: Weak<ZenShared>) -> Local {
        Local {
            shared,
            watches: FastMap::default(),
            local_targets: FastMap::default(),
            subscribers: FastMap::default(),
        }
    }
}

pub(crate) enum LocalCall {
    /// An ordinary monitor of a local target.
    MonitorLocal {
        reference: ZenRef,
        target: Target,
        subscriber: SharedSubscriber,
    },
    /// Removes it; `true` if it was active.
    DemonitorLocal(ZenRef),
}

pub(crate) enum LocalCast {
    WatchConnector(String, Pid),
    WatchSubscriber(Pid),
}

impl Worker for Local {
    type Call = LocalCall;
    type Reply = bool;
    type Cast = LocalCast;
    type Info = ();
    type Continue = ();

    fn handle_call(
        &mut self,
        call: LocalCall,
        reply: ReplyTo<bool>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        match call {
            LocalCall::MonitorLocal {
                reference,
                target,
                subscriber,
            } => {
                let monitor = match &target {
                    Target::Pid(pid) => ctx.monitor(pid),
                    Target::Name { name, .. } => ctx.monitor_name(name),
                };
                self.local_targets.insert(reference, monitor);
                self.watches.insert(
                    monitor,
                    Watch::Target {
                        reference,
                        target,
                        subscriber,
                    },
                );
                reply.reply(true);
            }
            LocalCall::DemonitorLocal(reference) => {
                let active = match self.local_targets.remove(&reference) {
                    Some(monitor) => {
                        self.watches.remove(&monitor);
                        ctx.demonitor_info(monitor, true)
                    }
                    None => false,
                };
                reply.reply(active);
            }
        }
        Step::Next
    }

    fn handle_cast(&mut self, cast: LocalCast, ctx: &mut Context<Self>) -> Step<Self> {
        match cast {
            LocalCast::WatchConnector(node, pid) => {
                let monitor = ctx.monitor(&pid);
                self.watches.insert(monitor, Watch::Connector(node));
            }
            LocalCast::WatchSubscriber(pid) => {
                if let std::collections::hash_map::Entry::Vacant(entry) =
                    self.subscribers.entry(pid)
                {
                    let monitor = ctx.monitor(&pid);
                    entry.insert(monitor);
                    self.watches.insert(monitor, Watch::Subscriber(pid));
                }
            }
        }
        Step::Next
    }

    fn handle_info(&mut self, info: Info<()>, _: &mut Context<Self>) -> Step<Self> {
        let Info::Down(down) = info else {
            return Step::Next;
        };
        let Some(watch) = self.watches.remove(&down.reference) else {
            return Step::Next;
        };
        let Some(shared) = self.shared.upgrade() else {
            return Step::Next;
        };
        match watch {
            Watch::Connector(node) => {
                if shared.is_stopped() || !shared.has_monitors(&node) {
                    return Step::Next;
                }
                log::warn!(
                    "zen_monitor: connector for {node} ended ({:?}); starting a new one",
                    down.reason
                );
                if let Err(error) = shared.connector(&node) {
                    // Nothing can carry these monitors now: fire them rather than lose them.
                    log::error!("zen_monitor: no connector for {node}: {error}");
                    shared.fire_all_nodedown(&node);
                }
            }
            Watch::Subscriber(pid) => {
                self.subscribers.remove(&pid);
                shared.subscriber_down(pid);
            }
            Watch::Target {
                reference,
                target,
                subscriber,
            } => {
                self.local_targets.remove(&reference);
                let _delivery = shared.tables.delivery.lock();
                if shared.tables.references.lock().remove(&reference).is_some() {
                    subscriber.deliver(ZenDown {
                        reference,
                        target,
                        reason: ZenReason::Local(down.reason),
                    });
                }
            }
        }
        Step::Next
    }
}

//! The Dispatcher (zen_monitor's `Local.Dispatcher`): hands DOWNs to subscribers at a
//! bounded rate, at most `demand_amount` every `demand_interval`, so a nodedown of a
//! million monitors does not flood every mailbox at once. A DOWN whose reference is no
//! longer in the references table (demonitored) is skipped and does not count.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use otp_threads::{Context, Info, ReplyTo, Step, Worker};
use parking_lot::RwLock;

use crate::options::Options;
use crate::tables::Tables;
use crate::target::{SharedSubscriber, ZenDown};

/// A DOWN waiting for its turn.
pub(crate) struct Pending {
    pub(crate) subscriber: SharedSubscriber,
    pub(crate) down: ZenDown,
}

/// Counters of the Dispatcher.
#[derive(Debug, Default)]
pub struct DispatcherStats {
    delivered: AtomicU64,
    skipped: AtomicU64,
    most_in_one_interval: AtomicU64,
}

impl DispatcherStats {
    /// DOWNs handed to subscribers.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
    /// DOWNs dropped because their monitor was demonitored first.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
    /// The most DOWNs delivered in one `demand_interval`.
    pub fn most_in_one_interval(&self) -> u64 {
        self.most_in_one_interval.load(Ordering::Relaxed)
    }
}

pub(crate) struct Dispatcher {
    pub(crate) tables: Arc<Tables>,
    pub(crate) options: Arc<RwLock<Options>>,
    pub(crate) stats: Arc<DispatcherStats>,
    pub(crate) queue: VecDeque<Pending>,
}

/// The Dispatcher's demand tick.
pub(crate) struct Demand;

impl Dispatcher {
    fn deliver_one_interval(&mut self) {
        let amount = self.options.read().demand_amount;
        // The round's DOWNs, as runs for one subscriber each (a nodedown's DOWNs for
        // one subscriber are one run: one `deliver_batch`), in queue order.
        let mut runs: Vec<(SharedSubscriber, Vec<ZenDown>)> = Vec::new();
        let mut delivered = 0usize;
        let mut skipped = 0u64;
        let delivery = self.tables.delivery.lock();
        {
            // One lock per round, not per DOWN: a nodedown round may hold a million.
            let mut references = self.tables.references.lock();
            while delivered < amount {
                let Some(pending) = self.queue.pop_front() else {
                    break;
                };
                if references.remove(&pending.down.reference).is_none() {
                    skipped = skipped.saturating_add(1);
                    continue;
                }
                delivered += 1;
                match runs.last_mut() {
                    Some((subscriber, downs)) if same(subscriber, &pending.subscriber) => {
                        downs.push(pending.down);
                    }
                    _ => runs.push((pending.subscriber, vec![pending.down])),
                }
            }
        }
        for (subscriber, mut downs) in runs {
            if downs.len() == 1
                && let Some(down) = downs.pop()
            {
                subscriber.deliver(down);
            } else {
                subscriber.deliver_batch(downs);
            }
        }
        drop(delivery);
        let delivered = delivered as u64;
        self.stats.skipped.fetch_add(skipped, Ordering::Relaxed);
        self.stats.delivered.fetch_add(delivered, Ordering::Relaxed);
        self.stats
            .most_in_one_interval
            .fetch_max(delivered, Ordering::Relaxed);
    }
}

/// `true` if both are the same subscriber object.
fn same(a: &SharedSubscriber, b: &SharedSubscriber) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

impl Worker for Dispatcher {
    type Call = ();
    type Reply = usize;
    type Cast = Vec<Pending>;
    type Info = Demand;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), otp_threads::ExitReason> {
        let interval = self.options.read().demand_interval;
        ctx.send_after(Demand, interval);
        Ok(())
    }

    /// The number of DOWNs waiting.
    fn handle_call(&mut self, _: (), reply: ReplyTo<usize>, _: &mut Context<Self>) -> Step<Self> {
        reply.reply(self.queue.len());
        Step::Next
    }

    fn handle_cast(&mut self, batch: Vec<Pending>, _: &mut Context<Self>) -> Step<Self> {
        if self.queue.is_empty() {
            // A nodedown's batch becomes the queue without copying a million DOWNs.
            self.queue = VecDeque::from(batch);
        } else {
            self.queue.extend(batch);
        }
        Step::Next
    }

    fn handle_info(&mut self, info: Info<Demand>, ctx: &mut Context<Self>) -> Step<Self> {
        if let Info::Timer(..) = info {
            self.deliver_one_interval();
            let interval = self.options.read().demand_interval;
            ctx.send_after(Demand, interval);
        }
        Step::Next
    }
}

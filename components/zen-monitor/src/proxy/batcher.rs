//! The Batcher (zen_monitor's `Proxy.Batcher`): one per subscriber (a remote
//! Connector pid). It monitors the subscriber, queues death certificates and, every
//! `batcher_sweep_interval`, sends at most `batcher_chunk_size` of them as
//! `{dead, Node, [{Target, Reason}]}` over the existing connection only (`noconnect`).
//! When the subscriber dies it removes every
//! subscription of that subscriber and stops.

use std::collections::VecDeque;
use std::sync::Arc;

use otp_threads::dist::{Node, Term};
use otp_threads::{Context, ExitReason, Info, Pid, Step, Worker};
use parking_lot::RwLock;

use super::ProxyTables;
use crate::options::Options;
use crate::target::Target;
use crate::wire;

pub(crate) struct Batcher {
    node: Arc<Node>,
    options: Arc<RwLock<Options>>,
    tables: Arc<ProxyTables>,
    subscriber: Pid,
    queue: VecDeque<(Target, Term)>,
}

/// The Batcher's sweep tick.
pub(crate) struct Sweep;

impl Batcher {
    pub(crate) fn new(
        node: Arc<Node>,
        options: Arc<RwLock<Options>>,
        tables: Arc<ProxyTables>,
        subscriber: Pid,
    ) -> Batcher {
        Batcher {
            node,
            options,
            tables,
            subscriber,
            queue: VecDeque::new(),
        }
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.queue.is_empty() {
            return;
        }
        let chunk = self.options.read().batcher_chunk_size;
        let take = chunk.min(self.queue.len());
        let certificates: Vec<(Target, Term)> = self.queue.drain(..take).collect();
        let summary = wire::dead_summary(self.node.name(), &certificates);
        // `Process.send(Subscriber, Summary, [:noconnect])`, as the library: a
        // subscriber whose node went away is not dialled again; its DOWN (noconnection)
        // stops this Batcher.
        if let Err(error) = self
            .node
            .send_noconnect(ctx.pid(), self.subscriber, &summary)
        {
            log::warn!(
                "zen_monitor: summary to {} not sent: {error}",
                self.subscriber
            );
        }
    }
}

impl Worker for Batcher {
    type Call = ();
    type Reply = ();
    type Cast = (Target, Term);
    type Info = Sweep;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.monitor(&self.subscriber);
        let interval = self.options.read().batcher_sweep_interval;
        ctx.send_after(Sweep, interval);
        Ok(())
    }

    fn handle_cast(&mut self, certificate: (Target, Term), _: &mut Context<Self>) -> Step<Self> {
        self.queue.push_back(certificate);
        Step::Next
    }

    fn handle_info(&mut self, info: Info<Sweep>, ctx: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Timer(..) => {
                self.sweep(ctx);
                let interval = self.options.read().batcher_sweep_interval;
                ctx.send_after(Sweep, interval);
                Step::Next
            }
            Info::Down(down) if down.pid == self.subscriber => {
                self.tables.remove_subscriber(self.subscriber);
                Step::Stop(ExitReason::shutdown_with("subscriber_down"))
            }
            _ => Step::Next,
        }
    }
}

//! `observer_backend:fetch_stats(Parent, Interval)`: what observer's Load Charts and
//! Memory Allocators tabs spawn (linked) on the node they show.
//!
//! Contract (after OTP 25's runtime_tools): the spawned process sends `Parent`
//! `{stats, 1, SchedulerWallTime, {{input, In}, {output, Out}}, Memory}` every
//! `Interval` milliseconds until it gets any message, then exits `normal`. Here it is
//! a worker of the runtime (so the runtime's stop ends it and joins its thread), linked
//! to the requester as asked: when the requester dies, or its node goes away, the link
//! takes the fetcher down too, as in BEAM.
//!
//! Fields: `SchedulerWallTime` is `[{Id, Active, Total}]`, one per core (BEAM's
//! schedulers), `Total` the microseconds since the fetcher started and `Active` this OS
//! process's CPU time since then (from `/proc/self/stat`) shared evenly over the cores,
//! so observer's per-scheduler utilisation is the process's average load; `In` is `0`
//! (not counted), `Out` the bytes written on the open distribution connections;
//! `Memory` the items of `erlang:memory()` (see `builtins.rs`). An interval that is not
//! an integer of 1 ms to 2^32 - 1 ms ends the process with `badarg`.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::super::super::NodeInner;
use super::super::super::spawn::{SpawnRequest, accept, refuse};
use super::super::atom;
use super::{io_output, memory, send_from};
use crate::dist::control::WirePid;
use crate::dist::error::DistError;
use crate::dist::node::connection::Connection;
use crate::dist::node::inbox::MessageInbox;
use crate::dist::term::{FromTerm, Term, ToTerm};
use crate::{Context, ExitReason, Info, Step, Worker};

/// What the fetcher takes: its own tick, or any term from another node (the stop).
pub(super) enum Input {
    Tick,
    Stop,
}

impl FromTerm for Input {
    fn from_term(_: Term) -> Result<Self, DistError> {
        Ok(Input::Stop)
    }
}

struct Fetcher {
    node: Weak<NodeInner>,
    parent: WirePid,
    interval: Duration,
    started: Instant,
    cpu_at_start: Option<u64>,
}

/// Clock ticks per second of `/proc/self/stat`'s times (Linux's `USER_HZ`).
const TICKS_PER_SECOND: u64 = 100;

/// This OS process's user + system CPU time, in microseconds.
fn cpu_micros() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_whitespace();
    // utime and stime are fields 14 and 15, the 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime
        .checked_add(stime)?
        .checked_mul(1_000_000 / TICKS_PER_SECOND)
}

impl Fetcher {
    fn scheduler_wall_time(&self) -> Term {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let total = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let used = match (self.cpu_at_start, cpu_micros()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => 0,
        };
        let per_core = (used / cores as u64).min(total);
        (1..=cores)
            .map(|id| (id, per_core, total).to_term())
            .collect::<Vec<_>>()
            .to_term()
    }
}

impl Worker for Fetcher {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = Input;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.send_after(Input::Tick, self.interval);
        Ok(())
    }

    fn handle_info(&mut self, info: Info<Input>, ctx: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Timer(_, Input::Tick) => {
                let Some(node) = self.node.upgrade() else {
                    return Step::Stop(ExitReason::Normal);
                };
                // Never dial: without a connection the parent's node is gone, and the
                // link's `noconnection` is on its way.
                if self.parent.node.name != node.name
                    && node.existing(&self.parent.node.name).is_none()
                {
                    return Step::Stop(ExitReason::NoConnection);
                }
                let io = ((atom("input"), 0u8), (atom("output"), io_output(&node))).to_term();
                let stats =
                    (atom("stats"), 1u8, self.scheduler_wall_time(), io, memory()).to_term();
                send_from(&node, ctx.pid(), &self.parent, stats);
                ctx.send_after(Input::Tick, self.interval);
                Step::Next
            }
            // Any message from another node stops it, as BEAM's `receive _Msg`.
            Info::Message(_) => Step::Stop(ExitReason::Normal),
            Info::Timer(_, Input::Stop) | Info::Down(_) | Info::Exit(_) => Step::Next,
        }
    }
}

/// The interval argument: milliseconds, as `receive ... after Time` takes them.
fn interval_of(term: &Term) -> Option<Duration> {
    let ms = u64::from_term(term.clone()).ok()?;
    (1..=u64::from(u32::MAX))
        .contains(&ms)
        .then(|| Duration::from_millis(ms))
}

/// `spawn_link(ThisNode, observer_backend, fetch_stats, [Parent, Interval])`.
pub(in crate::dist::node) fn run(
    node: &Arc<NodeInner>,
    connection: &Arc<Connection>,
    request: SpawnRequest,
) {
    let (Some(Term::Pid(parent)), Some(interval)) = (
        request.args.first(),
        request.args.get(1).and_then(interval_of),
    ) else {
        return super::exit_at_once(node, connection, request, atom("badarg"));
    };
    let fetcher = Fetcher {
        node: Arc::downgrade(node),
        parent: parent.clone(),
        interval,
        started: Instant::now(),
        cpu_at_start: cpu_micros(),
    };
    let worker = match node.runtime.spawn_worker(fetcher) {
        Ok(worker) => worker,
        Err(error) => {
            log::warn!("distribution: observer_backend:fetch_stats not started: {error}");
            return refuse(node, connection, &request, "system_limit");
        }
    };
    let wire = node.wire_pid(worker.pid());
    node.add_inbox(
        worker.pid(),
        Arc::new(MessageInbox {
            worker: worker.clone(),
        }),
    );
    accept(node, connection, &request, &wire);
    if request.link {
        crate::dist::hooks::remote_link(node, connection, request.from.clone(), wire.clone());
    }
    if request.monitor {
        node.remote_monitor(
            connection,
            request.from,
            crate::dist::control::ProcessRef::Pid(wire),
            request.request_id,
        );
    }
}

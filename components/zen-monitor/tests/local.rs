//! Ports of zen_monitor's `test/local/local_test.exs` and the bookkeeping cases of
//! `test/local/connector_test.exs` (discord/zen_monitor@fe63a64) that need no peer:
//! local targets fall back to ordinary monitors, workers get DOWNs in `handle_info`,
//! a subscriber's end removes its monitors, options are validated by name.

#[path = "support/solo.rs"]
mod solo;

use std::time::Duration;

use crossbeam_channel::{Sender, unbounded};
use otp_threads::{Context, ExitReason, Info, ReplyTo, Step, Worker};
use otp_threads_testkit::{Patience, poll_until};
use otp_threads_zen_monitor::{Options, SharedSubscriber, Target, ZenDown, ZenError, ZenReason};
use solo::{GHOST, Solo, ghost_pid};

struct Idle;

impl Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

#[test]
fn a_local_target_falls_back_to_an_ordinary_monitor() {
    let solo = Solo::start(Options::default());
    let (subscriber, downs, _process) = solo.channel();
    let worker = solo.runtime().spawn_worker(Idle).unwrap();
    let reference = solo.zen().monitor(worker.pid(), subscriber).unwrap();
    solo.runtime()
        .exit(&worker.pid(), ExitReason::error("boom"));
    let down = downs.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(down.reference, reference);
    assert_eq!(down.target, Target::Pid(worker.pid()));
    assert_eq!(down.reason, ZenReason::Local(ExitReason::error("boom")));
    assert_eq!(
        solo.zen().monitor_count(),
        0,
        "no remote bookkeeping for a local target"
    );
}

#[test]
fn demonitor_of_a_local_target_means_no_down() {
    let solo = Solo::start(Options::default());
    let (subscriber, downs, _process) = solo.channel();
    let worker = solo.runtime().spawn_worker(Idle).unwrap();
    let reference = solo
        .zen()
        .monitor(worker.pid(), subscriber.clone())
        .unwrap();
    assert!(solo.zen().demonitor(reference, true));
    // A second monitor fires after the first was removed: only it arrives.
    let second = solo.zen().monitor(worker.pid(), subscriber).unwrap();
    solo.runtime().exit(&worker.pid(), ExitReason::Kill);
    assert_eq!(
        downs
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .reference,
        second
    );
    assert!(downs.try_recv().is_err());
}

/// A worker that monitors a target itself and reports its DOWN from `handle_info`.
struct Watcher {
    zen_down: Sender<ZenDown>,
}

enum WatcherInfo {
    Zen(ZenDown),
}

impl From<ZenDown> for WatcherInfo {
    fn from(down: ZenDown) -> Self {
        WatcherInfo::Zen(down)
    }
}

impl Worker for Watcher {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = WatcherInfo;
    type Continue = ();

    fn handle_call(&mut self, _: (), reply: ReplyTo<()>, _: &mut Context<Self>) -> Step<Self> {
        reply.reply(());
        Step::Next
    }

    fn handle_info(&mut self, info: Info<WatcherInfo>, _: &mut Context<Self>) -> Step<Self> {
        if let Info::Message(WatcherInfo::Zen(down)) = info {
            let _ = self.zen_down.send(down);
        }
        Step::Next
    }
}

#[test]
fn a_worker_subscriber_gets_its_down_in_handle_info() {
    let solo = Solo::start(Options::default());
    let (sender, downs) = unbounded();
    let watcher = solo
        .runtime()
        .spawn_worker(Watcher { zen_down: sender })
        .unwrap();
    let subscriber: SharedSubscriber = std::sync::Arc::new(watcher.clone());
    let reference = solo.zen().monitor(ghost_pid(7), subscriber).unwrap();
    // The ghost node is unavailable: the first sweep fires nodedown.
    let down = poll_until(
        "the DOWN in handle_info",
        Patience::default(),
        || {
            solo.clock.advance(Duration::from_millis(50));
            downs.try_recv().ok()
        },
        Option::is_some,
    )
    .unwrap();
    assert_eq!(
        (down.reference, down.reason),
        (reference, ZenReason::NodeDown)
    );
}

#[test]
fn a_subscribers_end_removes_its_monitors() {
    let solo = Solo::start(Options::default());
    let (subscriber, _downs, process) = solo.channel();
    let (other, _other_downs, _keep) = {
        let worker = solo.runtime().spawn_worker(Idle).unwrap();
        let (sender, receiver) = unbounded();
        let other: SharedSubscriber =
            std::sync::Arc::new(otp_threads_zen_monitor::ChannelSubscriber {
                pid: worker.pid(),
                sender,
            });
        (other, receiver, worker)
    };
    for i in 1..=3 {
        solo.zen()
            .monitor(ghost_pid(i), subscriber.clone())
            .unwrap();
    }
    solo.zen().monitor(ghost_pid(1), other).unwrap();
    assert_eq!(solo.zen().monitor_count(), 4);
    drop(process);
    poll_until(
        "its monitors removed",
        Patience::default(),
        || solo.zen().monitor_count(),
        |n| *n == 1,
    );
}

#[test]
fn monitors_lists_the_references_of_a_subscriber_on_a_target() {
    let solo = Solo::start(Options::default());
    let (subscriber, _downs, process) = solo.channel();
    let a = solo
        .zen()
        .monitor(ghost_pid(1), subscriber.clone())
        .unwrap();
    let b = solo
        .zen()
        .monitor(ghost_pid(1), subscriber.clone())
        .unwrap();
    solo.zen().monitor(ghost_pid(2), subscriber).unwrap();
    let mut refs = solo
        .zen()
        .monitors(&Target::Pid(ghost_pid(1)), process.pid())
        .unwrap();
    refs.sort();
    assert_eq!(refs, vec![a, b]);
    assert!(
        !solo
            .zen()
            .demonitor(otp_threads_zen_monitor::ZenRef::default(), false),
        "unknown reference"
    );
}

#[test]
fn connect_to_an_unconnected_node_is_unavailable_without_a_ping() {
    let solo = Solo::start(Options::default());
    assert_eq!(
        solo.zen().connect(GHOST).unwrap(),
        otp_threads_zen_monitor::Compatibility::Incompatible
    );
    assert_eq!(
        solo.zen().cached_compatibility(GHOST),
        otp_threads_zen_monitor::CachedCompatibility::Unavailable
    );
}

#[test]
fn invalid_options_are_refused_with_the_options_name() {
    let solo = Solo::start(Options::default());
    let bad = Options {
        demand_amount: 0,
        ..Options::default()
    };
    match solo.zen().set_options(bad) {
        Err(ZenError::InvalidOption { option, .. }) => assert_eq!(option, "demand_amount"),
        other => panic!("expected InvalidOption, got {other:?}"),
    }
    let faster = Options {
        demand_amount: 5_000,
        ..Options::default()
    };
    solo.zen().set_options(faster.clone()).unwrap();
    assert_eq!(solo.zen().options(), faster);
}

/// A plain-thread process's own message type, taking zen DOWNs.
#[derive(Debug)]
enum Mail {
    Zen(ZenDown),
    Hello,
}

impl From<ZenDown> for Mail {
    fn from(down: ZenDown) -> Self {
        Mail::Zen(down)
    }
}

fn zen_down(mail: &Mail) -> Option<&ZenDown> {
    match mail {
        Mail::Zen(down) => Some(down),
        Mail::Hello => None,
    }
}

#[test]
fn a_process_subscriber_gets_its_down_and_flush_removes_a_delivered_one() {
    let solo = Solo::start(Options::default());
    let process: otp_threads::Process<Mail> = solo.runtime().process().unwrap();
    let subscriber: SharedSubscriber = std::sync::Arc::new(process.process_ref());
    let first = solo.runtime().spawn_worker(Idle).unwrap();
    let second = solo.runtime().spawn_worker(Idle).unwrap();
    let a = solo.zen().monitor(first.pid(), subscriber.clone()).unwrap();
    let b = solo.zen().monitor(second.pid(), subscriber).unwrap();
    solo.runtime().exit(&first.pid(), ExitReason::Kill);
    solo.runtime().exit(&second.pid(), ExitReason::Kill);
    // Both DOWNs are in the mailbox, behind a message; wait for the second one.
    process.process_ref().send(Mail::Hello);
    let down = process
        .receive_matching(
            |item| matches!(item, otp_threads::Received::Message(Mail::Zen(d)) if d.reference == b),
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(matches!(down, otp_threads::Received::Message(Mail::Zen(_))));
    // The first one's DOWN was delivered before (one Local worker delivers both, in
    // the order the targets died): demonitor with flush removes it.
    assert!(!solo.zen().demonitor_process(&process, a, true, zen_down));
    let rest: Vec<_> = std::iter::from_fn(|| process.try_recv().ok().flatten()).collect();
    assert_eq!(rest.len(), 1, "only the Hello is left: {rest:?}");
    assert!(matches!(
        rest[0],
        otp_threads::Received::Message(Mail::Hello)
    ));
}

/// A worker subscriber that, on a cast, waits at a gate and then demonitors with flush
/// from inside (`ZenMonitor::demonitor_worker`); it reports everything it handles.
struct Flusher {
    zen: std::sync::Arc<otp_threads_zen_monitor::ZenMonitor>,
    gate: crossbeam_channel::Receiver<()>,
    seen: Sender<String>,
}

enum FlusherInfo {
    Zen(ZenDown),
    Marker,
}

impl From<ZenDown> for FlusherInfo {
    fn from(down: ZenDown) -> Self {
        FlusherInfo::Zen(down)
    }
}

fn flusher_down(info: &FlusherInfo) -> Option<&ZenDown> {
    match info {
        FlusherInfo::Zen(down) => Some(down),
        FlusherInfo::Marker => None,
    }
}

impl Worker for Flusher {
    type Call = ();
    type Reply = ();
    type Cast = otp_threads_zen_monitor::ZenRef;
    type Info = FlusherInfo;
    type Continue = ();

    fn handle_cast(
        &mut self,
        reference: otp_threads_zen_monitor::ZenRef,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        let _ = self.gate.recv_timeout(Duration::from_secs(30));
        let active = self
            .zen
            .demonitor_worker(ctx, reference, true, flusher_down);
        let _ = self.seen.send(format!("demonitored, active {active}"));
        Step::Next
    }

    fn handle_info(&mut self, info: Info<FlusherInfo>, _: &mut Context<Self>) -> Step<Self> {
        let seen = match info {
            Info::Message(FlusherInfo::Zen(down)) => format!("down {:?}", down.reference),
            Info::Message(FlusherInfo::Marker) => "marker".to_owned(),
            _ => return Step::Next,
        };
        let _ = self.seen.send(seen);
        Step::Next
    }
}

/// zen_monitor's `demonitor(Ref, [:flush])` (local_test.exs, "demonitor with flush"):
/// a DOWN already delivered into the worker's mailbox, not yet handled, is removed; the
/// worker never sees it. Another monitor's DOWN and later messages stay, in order.
#[test]
fn a_worker_demonitoring_with_flush_never_sees_a_down_already_queued() {
    let mut solo = Solo::start(Options::default());
    let zen = std::sync::Arc::new(solo.zen.take().unwrap());
    let (open, gate) = crossbeam_channel::bounded(1);
    let (seen, reports) = unbounded();
    let worker = solo
        .runtime()
        .spawn_worker(Flusher {
            zen: zen.clone(),
            gate,
            seen,
        })
        .unwrap();
    let subscriber: SharedSubscriber = std::sync::Arc::new(worker.clone());
    let flushed = zen.monitor(ghost_pid(1), subscriber.clone()).unwrap();
    let kept = zen.monitor(ghost_pid(2), subscriber).unwrap();
    // The worker waits at its gate while both DOWNs (the ghost node is unavailable:
    // nodedown at the first sweep) are handed into its mailbox.
    worker.cast(flushed);
    poll_until(
        "both DOWNs delivered",
        Patience::default(),
        || {
            solo.clock.advance(Duration::from_millis(50));
            zen.dispatcher_stats().delivered()
        },
        |n| *n == 2,
    );
    worker.send(FlusherInfo::Marker);
    open.send(()).unwrap();
    let order: Vec<String> = (0..3)
        .map(|_| reports.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "demonitored, active false".to_owned(),
            format!("down {kept:?}"),
            "marker".to_owned()
        ]
    );
    assert!(reports.try_recv().is_err(), "the flushed DOWN never came");
    worker
        .stop(ExitReason::Shutdown, Duration::from_secs(10))
        .unwrap();
    drop(worker);
    if let Ok(zen) = std::sync::Arc::try_unwrap(zen) {
        zen.shutdown(Duration::from_secs(10));
    }
}

/// A worker that monitors `{name, node}` from inside (`ZenMonitor::monitor_from`) when
/// called, and reports the DOWN its `handle_info` gets.
struct NameWatcher {
    zen: std::sync::Arc<otp_threads_zen_monitor::ZenMonitor>,
    seen: Sender<ZenDown>,
}

impl Worker for NameWatcher {
    type Call = Target;
    type Reply = Result<otp_threads_zen_monitor::ZenRef, ZenError>;
    type Cast = ();
    type Info = WatcherInfo;
    type Continue = ();

    fn handle_call(
        &mut self,
        target: Target,
        reply: ReplyTo<Self::Reply>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(self.zen.monitor_from(ctx, target));
        Step::Next
    }

    fn handle_info(&mut self, info: Info<WatcherInfo>, _: &mut Context<Self>) -> Step<Self> {
        if let Info::Message(WatcherInfo::Zen(down)) = info {
            let _ = self.seen.send(down);
        }
        Step::Next
    }
}

/// zen_monitor's `monitor({name, node})` from inside a process (black_box_test.exs,
/// "monitoring a remote name"): the worker itself is the subscriber, the DOWN names the
/// `{name, node}` target and reaches its `handle_info`.
#[test]
fn a_worker_monitors_a_name_on_a_node_from_inside_and_gets_the_down() {
    let mut solo = Solo::start(Options::default());
    let zen = std::sync::Arc::new(solo.zen.take().unwrap());
    let (seen, downs) = unbounded();
    let worker = solo
        .runtime()
        .spawn_worker(NameWatcher {
            zen: zen.clone(),
            seen,
        })
        .unwrap();
    let target = Target::name("session_registry", GHOST);
    let reference = worker.call(target.clone()).unwrap().unwrap();
    assert_eq!(
        zen.monitors(&target, worker.pid()).unwrap(),
        vec![reference],
        "the worker is the subscriber"
    );
    let down = poll_until(
        "the DOWN in handle_info",
        Patience::default(),
        || {
            solo.clock.advance(Duration::from_millis(50));
            downs.try_recv().ok()
        },
        Option::is_some,
    )
    .unwrap();
    assert_eq!(
        (down.reference, down.target, down.reason),
        (reference, target, ZenReason::NodeDown)
    );
    worker
        .stop(ExitReason::Shutdown, Duration::from_secs(10))
        .unwrap();
    drop(worker);
    if let Ok(zen) = std::sync::Arc::try_unwrap(zen) {
        zen.shutdown(Duration::from_secs(10));
    }
}

/// zen_monitor's `known_node?/1` (connector.ex): only a visible node counts; a node
/// connected over a hidden connection is `unavailable`, without a ping.
#[test]
fn a_node_connected_hidden_is_unavailable() {
    let solo = Solo::start(Options::default());
    let name = format!("hidden{}@localhost", std::process::id());
    let runtime = otp_threads::Runtime::builder()
        .node_name(&name)
        .build()
        .unwrap();
    let hidden = otp_threads::dist::Node::builder()
        .cookie("sesame")
        .epmd(solo.name_server.address())
        .hidden(true)
        .start(&runtime.handle())
        .unwrap();
    let ours = solo.node.as_ref().unwrap();
    ours.connect(&name).unwrap();
    assert_eq!(ours.hidden_nodes(), vec![name.clone()]);
    assert_eq!(
        solo.zen().connect(&name).unwrap(),
        otp_threads_zen_monitor::Compatibility::Incompatible
    );
    assert_eq!(
        solo.zen().cached_compatibility(&name),
        otp_threads_zen_monitor::CachedCompatibility::Unavailable
    );
    hidden.shutdown();
    runtime.shutdown(Duration::from_secs(10)).unwrap();
}

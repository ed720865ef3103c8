//! Ports of the "Connect status caching" and "Getting a connector" cases of
//! zen_monitor's `test/local/connector_test.exs` (discord/zen_monitor@fe63a64): a remote
//! node with no Proxy is incompatible, the entry expires after its penalty (1 s·2^attempt)
//! and the next connect pings again with the next attempt. The monitoring runtime runs
//! on a manual clock, so penalties expire exactly when the test says.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use otp_threads::dist::Node;
use otp_threads::dist::epmd::NameServer;
use otp_threads::{ManualClock, Runtime};
use otp_threads_zen_monitor::{CachedCompatibility, Compatibility, Options, ZenMonitor};

struct Pair {
    zen: Option<ZenMonitor>,
    node: Option<Arc<Node>>,
    runtime: Option<Runtime>,
    remote_zen: Option<ZenMonitor>,
    remote: Option<(Arc<Node>, Runtime)>,
    clock: ManualClock,
    _server: NameServer,
}

impl Pair {
    /// A zen monitor on a manual clock, connected to a plain Rust node without a Proxy.
    fn start() -> Pair {
        Self::start_with(false)
    }

    /// As `start`; with `remote_proxy`, the remote node runs a zen monitor (and Proxy).
    fn start_with(remote_proxy: bool) -> Pair {
        let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let clock = ManualClock::new();
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let id = format!(
            "{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let runtime = Runtime::builder()
            .node_name(format!("zen{id}@localhost"))
            .manual_clock(&clock)
            .build()
            .unwrap();
        let node = Arc::new(
            Node::builder()
                .cookie("sesame")
                .epmd(server.address())
                .start(&runtime.handle())
                .unwrap(),
        );
        let remote_runtime = Runtime::builder()
            .node_name(format!("plain{id}@localhost"))
            .build()
            .unwrap();
        let remote = Arc::new(
            Node::builder()
                .cookie("sesame")
                .epmd(server.address())
                .start(&remote_runtime.handle())
                .unwrap(),
        );
        let remote_zen = remote_proxy.then(|| {
            ZenMonitor::start(&remote_runtime.handle(), remote.clone(), Options::default()).unwrap()
        });
        node.connect(remote.name()).unwrap();
        // No sweep during the test: only `connect` pings.
        let options = Options {
            connector_sweep_interval: Duration::from_secs(3600),
            ..Options::default()
        };
        let zen = ZenMonitor::start(&runtime.handle(), node.clone(), options).unwrap();
        Pair {
            zen: Some(zen),
            node: Some(node),
            runtime: Some(runtime),
            remote_zen,
            remote: Some((remote, remote_runtime)),
            clock,
            _server: server,
        }
    }

    fn stop_remote(&mut self) {
        if let Some(zen) = self.remote_zen.take() {
            zen.shutdown(Duration::from_secs(10));
        }
        if let Some((node, runtime)) = self.remote.take() {
            if let Ok(node) = Arc::try_unwrap(node) {
                node.shutdown();
            }
            runtime.shutdown(Duration::from_secs(10)).unwrap();
        }
    }

    fn zen(&self) -> &ZenMonitor {
        self.zen.as_ref().unwrap()
    }

    fn remote_name(&self) -> String {
        self.remote.as_ref().unwrap().0.name().to_owned()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if let Some(zen) = self.zen.take() {
            zen.shutdown(Duration::from_secs(10));
        }
        if let Some(node) = self.node.take()
            && let Ok(node) = Arc::try_unwrap(node)
        {
            node.shutdown();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown(Duration::from_secs(10)).unwrap();
        }
        self.stop_remote();
    }
}

#[test]
fn connect_status_caching_miss_incompatible_and_expiry() {
    let pair = Pair::start();
    let remote = pair.remote_name();
    assert_eq!(
        pair.zen().cached_compatibility(&remote),
        CachedCompatibility::Miss
    );
    assert_eq!(
        pair.zen().connect(&remote).unwrap(),
        Compatibility::Incompatible
    );
    assert_eq!(
        pair.zen().cached_compatibility(&remote),
        CachedCompatibility::Incompatible
    );
    // Attempt 1: a penalty of 2 s.
    pair.clock.advance(Duration::from_millis(1_999));
    assert_eq!(
        pair.zen().cached_compatibility(&remote),
        CachedCompatibility::Incompatible
    );
    pair.clock.advance(Duration::from_millis(2));
    assert_eq!(
        pair.zen().cached_compatibility(&remote),
        CachedCompatibility::Expired(1)
    );
    // The next connect pings again: attempt 2, a penalty of 4 s.
    assert_eq!(
        pair.zen().connect(&remote).unwrap(),
        Compatibility::Incompatible
    );
    pair.clock.advance(Duration::from_millis(3_999));
    assert_eq!(
        pair.zen().cached_compatibility(&remote),
        CachedCompatibility::Incompatible
    );
    pair.clock.advance(Duration::from_millis(2));
    assert_eq!(
        pair.zen().cached_compatibility(&remote),
        CachedCompatibility::Expired(2)
    );
}

#[test]
fn one_connector_per_remote_the_same_on_repeat_and_a_new_one_after_a_kill() {
    let pair = Pair::start();
    let remote = pair.remote_name();
    pair.zen().connect(&remote).unwrap();
    let first = pair.zen().connector_pid(&remote).unwrap();
    pair.zen().connect(&remote).unwrap();
    assert_eq!(pair.zen().connector_pid(&remote), Some(first));
    pair.zen().connect("ghost@nowhere").unwrap();
    assert_ne!(pair.zen().connector_pid("ghost@nowhere"), Some(first));
    pair.runtime
        .as_ref()
        .unwrap()
        .exit(&first, otp_threads::ExitReason::Kill);
    // No monitors on it: no restart until the next use, which starts a new one.
    pair.zen().connect(&remote).unwrap();
    let second = pair.zen().connector_pid(&remote).unwrap();
    assert_ne!(second, first);
}

struct Idle;

impl otp_threads::Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

#[test]
fn nodedown_fires_every_monitor_at_once_without_a_sweep() {
    let mut pair = Pair::start_with(true);
    let remote = pair.remote_name();
    assert_eq!(
        pair.zen().connect(&remote).unwrap(),
        Compatibility::Compatible
    );
    let runtime = pair.runtime.as_ref().unwrap();
    let process: otp_threads::Process<()> = runtime.process().unwrap();
    let (sender, downs) = crossbeam_channel::unbounded();
    let subscriber: otp_threads_zen_monitor::SharedSubscriber =
        Arc::new(otp_threads_zen_monitor::ChannelSubscriber {
            pid: process.pid(),
            sender,
        });
    let remote_runtime = &pair.remote.as_ref().unwrap().1;
    let workers: Vec<_> = (0..3)
        .map(|_| remote_runtime.spawn_worker(Idle).unwrap())
        .collect();
    let refs: Vec<_> = workers
        .iter()
        .map(|w| pair.zen().monitor(w.pid(), subscriber.clone()).unwrap())
        .collect();
    pair.stop_remote();
    // The clock has not moved: no sweep ran, yet the DOWNs wait at the Dispatcher.
    otp_threads_testkit::poll_until(
        "three DOWNs at the Dispatcher",
        otp_threads_testkit::Patience::default(),
        || pair.zen().pending_downs().unwrap(),
        |n| *n == 3,
    );
    pair.clock.advance(Duration::from_millis(100));
    let fired: Vec<_> = (0..3)
        .map(|_| downs.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert!(
        fired
            .iter()
            .all(|d| d.reason == otp_threads_zen_monitor::ZenReason::NodeDown)
    );
    assert_eq!(fired.iter().map(|d| d.reference).collect::<Vec<_>>(), refs);
    // The remote Proxy's DOWN (its runtime stopping) may reach the Connector before
    // the nodedown and mark the node incompatible for a moment; the nodedown then
    // marks it unavailable.
    otp_threads_testkit::poll_until(
        "the node cached as unavailable",
        otp_threads_testkit::Patience::default(),
        || pair.zen().cached_compatibility(&remote),
        |cached| *cached == CachedCompatibility::Unavailable,
    );
}

//! Both sides in Rust: a zen monitor on one Rust node watches workers of another Rust
//! node through that node's Rust Proxy and Batcher (the same wire terms as with BEAM).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::unbounded;
use otp_threads::dist::Node;
use otp_threads::dist::epmd::NameServer;
use otp_threads::{ExitReason, Runtime, Worker};
use otp_threads_zen_monitor::{
    ChannelSubscriber, Compatibility, Options, SharedSubscriber, ZenMonitor, ZenReason,
    exit_reason_to_term,
};

struct Idle;

impl Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

struct Side {
    zen: Option<ZenMonitor>,
    node: Option<Arc<Node>>,
    runtime: Option<Runtime>,
}

impl Side {
    fn start(alive: &str, server: &NameServer) -> Side {
        let name = format!("{alive}{}@localhost", std::process::id());
        let runtime = Runtime::builder().node_name(&name).build().unwrap();
        let node = Arc::new(
            Node::builder()
                .cookie("sesame")
                .epmd(server.address())
                .start(&runtime.handle())
                .unwrap(),
        );
        let options = Options {
            connector_sweep_interval: Duration::from_millis(10),
            batcher_sweep_interval: Duration::from_millis(10),
            demand_interval: Duration::from_millis(10),
            ..Options::default()
        };
        let zen = ZenMonitor::start(&runtime.handle(), node.clone(), options).unwrap();
        Side {
            zen: Some(zen),
            node: Some(node),
            runtime: Some(runtime),
        }
    }

    fn stop(&mut self) {
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
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_rust_node_monitors_workers_of_another_rust_node() {
    let threads_before = otp_threads_testkit::os_thread_count();
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let watcher = Side::start("watcher", &server);
    let mut watched = Side::start("watched", &server);
    let watched_name = watched.node.as_ref().unwrap().name().to_owned();
    watcher
        .node
        .as_ref()
        .unwrap()
        .connect(&watched_name)
        .unwrap();
    let zen = watcher.zen.as_ref().unwrap();
    assert_eq!(
        zen.connect(&watched_name).unwrap(),
        Compatibility::Compatible
    );

    let process: otp_threads::Process<()> = watcher.runtime.as_ref().unwrap().process().unwrap();
    let (sender, downs) = unbounded();
    let subscriber: SharedSubscriber = Arc::new(ChannelSubscriber {
        pid: process.pid(),
        sender,
    });
    let workers: Vec<_> = (0..3)
        .map(|_| {
            watched
                .runtime
                .as_ref()
                .unwrap()
                .spawn_worker(Idle)
                .unwrap()
        })
        .collect();
    let refs: Vec<_> = workers
        .iter()
        .map(|w| zen.monitor(w.pid(), subscriber.clone()).unwrap())
        .collect();
    let remote_zen = watched.zen.as_ref().unwrap();
    otp_threads_testkit::poll_until(
        "three real monitors at the Rust Proxy",
        otp_threads_testkit::Patience::default(),
        || remote_zen.proxy_monitor_count(),
        |n| *n == 3,
    );
    watched
        .runtime
        .as_ref()
        .unwrap()
        .exit(&workers[0].pid(), ExitReason::error("boom"));
    let down = downs.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(down.reference, refs[0]);
    assert_eq!(
        down.reason,
        ZenReason::exited(exit_reason_to_term(&ExitReason::error("boom")))
    );
    // The watched node goes away: the two others fire nodedown, in insertion order.
    watched.stop();
    let rest: Vec<_> = (0..2)
        .map(|_| downs.recv_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    assert!(rest.iter().all(|d| d.reason == ZenReason::NodeDown));
    assert_eq!(
        rest.iter().map(|d| d.reference).collect::<Vec<_>>(),
        refs[1..].to_vec()
    );
    drop(process);
    drop(watcher);
    server.shutdown();
    // Stopping the zen monitors, nodes and runtimes joined every thread they started.
    otp_threads_testkit::poll_until(
        "every thread joined",
        otp_threads_testkit::Patience::default(),
        otp_threads_testkit::os_thread_count,
        |n| *n <= threads_before,
    );
}

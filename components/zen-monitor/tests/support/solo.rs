//! Test support: a Rust node with a zen monitor on a manual clock, and pids of a node
//! that is not connected (`ghost@nowhere`): its Connector finds it unavailable at the
//! first sweep, so every monitor fires `nodedown` with no peer at all. Timers (sweeps,
//! the Dispatcher's demand) run only when the test advances the clock.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use otp_threads::dist::Node;
use otp_threads::dist::epmd::NameServer;
use otp_threads::{ManualClock, NodeName, Pid, Process, Runtime};
use otp_threads_zen_monitor::{ChannelSubscriber, Options, SharedSubscriber, ZenDown, ZenMonitor};

pub const GHOST: &str = "ghost@nowhere";

pub fn ghost_pid(n: u32) -> Pid {
    Pid::from_parts(NodeName::new(GHOST), n, 0, 1)
}

pub struct Solo {
    pub zen: Option<ZenMonitor>,
    pub node: Option<Arc<Node>>,
    pub runtime: Option<Runtime>,
    pub clock: ManualClock,
    pub name_server: NameServer,
}

impl Solo {
    pub fn start(options: Options) -> Solo {
        let _ = env_logger::builder().is_test(true).try_init();
        let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let clock = ManualClock::new();
        let name = format!("solo{}x{}@localhost", std::process::id(), next());
        let runtime = Runtime::builder()
            .node_name(&name)
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
        let zen = ZenMonitor::start(&runtime.handle(), node.clone(), options).unwrap();
        Solo {
            zen: Some(zen),
            node: Some(node),
            runtime: Some(runtime),
            clock,
            name_server: server,
        }
    }

    pub fn zen(&self) -> &ZenMonitor {
        self.zen.as_ref().unwrap()
    }

    pub fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().unwrap()
    }

    pub fn channel(&self) -> (SharedSubscriber, Receiver<ZenDown>, Process<()>) {
        let process: Process<()> = self.runtime().process().unwrap();
        let (sender, receiver) = unbounded();
        let subscriber: SharedSubscriber = Arc::new(ChannelSubscriber {
            pid: process.pid(),
            sender,
        });
        (subscriber, receiver, process)
    }
}

fn next() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Drop for Solo {
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
    }
}

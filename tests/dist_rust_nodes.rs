//! Two Rust nodes in separate OS processes: this test binary starts itself again as
//! the peer node (`OTP_THREADS_DIST_PEER` set), joined through our own
//! EPMD-compatible name server, with no Erlang at all. `harness = false`: `main` runs
//! the scenarios in order and fails (panics) on the first broken one.
//!
//! Sequential, so it also checks that stopping nodes joins every thread they started.
//!
//! Ports the cross-node rules checked against BEAM in `dist_node.rs` and
//! `dist_links_monitors.rs` (gen_server call both ways, a monitor's `noconnection`
//! DOWN on SIGKILL, nodedown) to a Rust-only cluster.

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::time::Duration;

use node_support::{OurNode, PeerProcess, announce_ready, probe, wait_event};
use otp_threads::ExitReason;
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, NodeDownReason, NodeEvent, Term, ToTerm};
use otp_threads_testkit::{os_thread_count, settles_at_thread_count};

const PEER_ROLE: &str = "OTP_THREADS_DIST_PEER";

/// The peer process: a node serving `calc`; prints `ready ID SERIAL CREATION` (the
/// calc pid), calls the test node's `probe` once and prints the answer, then runs
/// until stdin closes.
fn peer_main(alive: &str, epmd_port: u16, caller: &str) {
    let epmd = SocketAddr::from(([127, 0, 0, 1], epmd_port));
    let node = OurNode::start(alive, "shared", epmd);
    let (worker, _seen) = probe(&node, Some("calc"));
    announce_ready(worker.pid());
    let answer: Term = node
        .node()
        .call(
            ("probe", caller),
            &Atom::from("from_peer"),
            Duration::from_secs(30),
        )
        .expect("call back");
    println!("answer {answer}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

fn gen_server_calls_both_ways_between_rust_nodes_in_separate_os_processes() {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "shared", server.address());
    let (_probe, _seen) = probe(&ours, Some("probe"));
    let mut peer = PeerProcess::start(PEER_ROLE, server.address(), &[&ours.name()]);
    // The peer called our probe: its handle_call answered {got, from_peer}.
    assert_eq!(peer.line(), "answer {'got','from_peer'}");
    // We call the peer's server by name, then by pid.
    let by_name: (Atom, Term) = ours
        .node()
        .call(
            ("calc", peer.name.as_str()),
            &(1i32, 2i32),
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(by_name, (Atom::from("got"), (1i32, 2i32).to_term()));
    let by_pid: (Atom, String) = ours
        .node()
        .call(peer.calc, &"by pid", Duration::from_secs(30))
        .unwrap();
    assert_eq!(by_pid.1, "by pid");
    assert_eq!(ours.node().nodes(), vec![peer.name.clone()]);
}

fn a_monitor_across_os_processes_gets_noconnection_on_sigkill() {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "shared", server.address());
    let events = ours.node().events();
    let (_probe, _seen) = probe(&ours, Some("probe"));
    let mut peer = PeerProcess::start(PEER_ROLE, server.address(), &[&ours.name()]);
    assert!(peer.line().starts_with("answer "));
    let monitor = ours.runtime().monitor(&peer.calc);
    // A call after the monitor, on the same connection, proves MONITOR_P has arrived.
    let _: Term = ours
        .node()
        .call(peer.calc, &0i32, Duration::from_secs(30))
        .unwrap();
    peer.child.kill().unwrap();
    let _ = peer.child.wait();
    let down = monitor.wait(node_support::WAIT).expect("DOWN");
    assert_eq!(down.reason, ExitReason::NoConnection);
    let event = wait_event(&events, |e| matches!(e, NodeEvent::Down { .. }));
    assert!(
        matches!(&event, NodeEvent::Down { node, reason: NodeDownReason::Closed } if *node == peer.name),
        "{event:?}"
    );
}

fn stopping_nodes_joins_every_thread_they_started() {
    let before = os_thread_count();
    {
        let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let a = OurNode::start(&erlang::unique_name("a"), "c", server.address());
        let b = OurNode::start(&erlang::unique_name("b"), "c", server.address());
        let (_calc, _seen) = probe(&b, Some("calc"));
        for i in 0..20i32 {
            let _: Term = a
                .node()
                .call(("calc", b.name().as_str()), &i, Duration::from_secs(30))
                .unwrap();
        }
        for i in 0..1000i32 {
            a.node()
                .send(a.runtime().root_pid(), ("calc", b.name().as_str()), &i)
                .unwrap();
        }
        assert!(os_thread_count() > before);
        drop(b);
        drop(a);
        server.shutdown();
    }
    settles_at_thread_count(before, "no threads left behind");
}

fn main() {
    if let Ok(role) = std::env::var(PEER_ROLE) {
        let parts: Vec<&str> = role.split(' ').collect();
        peer_main(parts[0], parts[1].parse().unwrap(), parts[2]);
        return;
    }
    let scenarios: [(&str, fn()); 3] = [
        (
            "stopping_nodes_joins_every_thread_they_started",
            stopping_nodes_joins_every_thread_they_started,
        ),
        (
            "gen_server_calls_both_ways_between_rust_nodes_in_separate_os_processes",
            gen_server_calls_both_ways_between_rust_nodes_in_separate_os_processes,
        ),
        (
            "a_monitor_across_os_processes_gets_noconnection_on_sigkill",
            a_monitor_across_os_processes_gets_noconnection_on_sigkill,
        ),
    ];
    for (name, scenario) in scenarios {
        eprintln!("test {name} ...");
        scenario();
        eprintln!("test {name} ... ok");
    }
    eprintln!("test result: ok. {} passed", scenarios.len());
}

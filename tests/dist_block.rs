//! `Node::block` / `Node::unblock`: cutting a live connection and keeping it cut, as a
//! partition does, between two nodes of ours and between ours and a BEAM node.
//!
//! Ports OTP's `erlang:disconnect_node/1` (a `nodedown` on both sides, as for a lost
//! connection) with `dist_auto_connect` off for that node and `net_kernel:allow/1`
//! leaving it out (its handshakes are answered `not_allowed`, so `net_adm:ping` gets
//! `pang`), until the block is lifted.

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::net::SocketAddr;
use std::time::Duration;

use node_support::{Order, OurNode, Seen, next_seen, probe, wait_event};
use otp_threads::ExitReason;
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, DistError, NodeDownReason, NodeEvent, Term, ToTerm};
use otp_threads_testkit::eventually;

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn is_down_of(event: &NodeEvent, peer: &str) -> bool {
    matches!(event, NodeEvent::Down { node, .. } if node == peer)
}

#[test]
fn block_cuts_a_rust_node_off_both_ways_until_unblocked() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let a = OurNode::start(&erlang::unique_name("blka"), "c", server.address());
    let b = OurNode::start(&erlang::unique_name("blkb"), "c", server.address());
    let (a_name, b_name) = (a.name(), b.name());
    let (a_probe, a_seen) = probe(&a, Some("inbox"));
    let (b_probe, b_seen) = probe(&b, Some("inbox"));
    let a_events = a.node().events();
    let b_events = b.node().events();
    a.node().connect(&b_name).unwrap();
    wait_event(&b_events, |e| matches!(e, NodeEvent::Up { .. }));
    // A monitor across the connection, to see it end with `noconnection`.
    a_probe.call(Order::Monitor(b_probe.pid())).unwrap();

    assert!(a.node().block(&b_name).unwrap(), "a connection was closed");
    let down = wait_event(&a_events, |e| is_down_of(e, &b_name));
    assert!(
        matches!(
            down,
            NodeEvent::Down {
                reason: NodeDownReason::Disconnected,
                ..
            }
        ),
        "{down:?}"
    );
    let there = wait_event(&b_events, |e| is_down_of(e, &a_name));
    assert!(
        matches!(
            there,
            NodeEvent::Down {
                reason: NodeDownReason::Closed,
                ..
            }
        ),
        "{there:?}"
    );
    match next_seen(&a_seen) {
        Seen::Down(down) => assert_eq!(down.reason, ExitReason::NoConnection),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.node().blocked(), vec![b_name.clone()]);
    assert!(a.node().nodes().is_empty());

    // No auto-connect from the blocking side: connect, send, call, monitors.
    assert!(matches!(
        a.node().connect(&b_name),
        Err(DistError::NoConnection { node }) if node == b_name
    ));
    assert!(matches!(
        a.node()
            .send(a_probe.pid(), ("inbox", b_name.as_str()), &1i32),
        Err(DistError::NoConnection { .. })
    ));
    assert!(matches!(
        a.node()
            .call::<Term>(("inbox", b_name.as_str()), &1i32, Duration::from_secs(5)),
        Err(DistError::NoConnection { .. })
    ));
    let monitor = a.node().monitor_node(&b_name);
    assert!(matches!(
        monitor.recv_timeout(node_support::WAIT).expect("nodedown"),
        NodeEvent::Down {
            reason: NodeDownReason::Unreachable,
            ..
        }
    ));
    a_probe.call(Order::Monitor(b_probe.pid())).unwrap();
    match next_seen(&a_seen) {
        Seen::Down(down) => assert_eq!(down.reason, ExitReason::NoConnection),
        other => panic!("{other:?}"),
    }
    // And none from the other side: its handshake is refused.
    match b.node().connect(&a_name) {
        Err(DistError::Refused { status, .. }) => assert_eq!(status, "not_allowed"),
        other => panic!("connected to a node that blocks us: {other:?}"),
    }
    assert!(
        b.node()
            .send(b_probe.pid(), ("inbox", a_name.as_str()), &2i32)
            .is_err()
    );
    assert!(a.node().nodes().is_empty() && b.node().nodes().is_empty());

    // Unblocked: the next connect (from either side) works and carries traffic.
    assert!(a.node().unblock(&b_name));
    assert!(!a.node().unblock(&b_name), "unblocked once");
    assert!(a.node().blocked().is_empty());
    b.node()
        .send(b_probe.pid(), ("inbox", a_name.as_str()), &3i32)
        .unwrap();
    match next_seen(&a_seen) {
        Seen::Message(term) => assert_eq!(term, 3i32.to_term()),
        other => panic!("{other:?}"),
    }
    wait_event(
        &a_events,
        |e| matches!(e, NodeEvent::Up { node } if *node == b_name),
    );
    a.node()
        .send(a_probe.pid(), ("inbox", b_name.as_str()), &4i32)
        .unwrap();
    match next_seen(&b_seen) {
        Seen::Message(term) => assert_eq!(term, 4i32.to_term()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn blocking_a_node_that_is_not_connected_keeps_it_out_and_bad_names_are_errors() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let a = OurNode::start(&erlang::unique_name("blka"), "c", server.address());
    let b = OurNode::start(&erlang::unique_name("blkb"), "c", server.address());
    assert!(!a.node().block(&b.name()).unwrap(), "nothing to close");
    assert!(matches!(
        b.node().connect(&a.name()),
        Err(DistError::Refused { .. })
    ));
    assert!(matches!(
        a.node().block(&a.name()),
        Err(DistError::InvalidNodeName { .. })
    ));
    assert!(matches!(
        a.node().block("no-host"),
        Err(DistError::InvalidNodeName { .. })
    ));
    a.node().unblock(&b.name());
    b.node().connect(&a.name()).unwrap();
    assert_eq!(b.node().nodes(), vec![a.name()]);
    // The accepting side installs its end just after the dialler's returns.
    eventually("a to list b", || a.node().nodes() == vec![b.name()]);
}

#[test]
fn block_cuts_a_beam_node_off_its_ping_gets_pang_until_unblocked() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let events = ours.node().events();
    let alive = erlang::unique_name("beam");
    let peer = format!("{alive}@{}", erlang::short_host());
    // The BEAM node: ping us, watch our node, report the nodedown, ping while blocked
    // (`pang`), then ping until allowed again.
    let eval = format!(
        "pong = net_adm:ping('{us}'), monitor_node('{us}', true), io:format(\"up~n\"), \
         receive {{nodedown, _}} -> io:format(\"nodedown~n\") end, \
         io:format(\"ping ~p~n\", [net_adm:ping('{us}')]), \
         Retry = fun R() -> case net_adm:ping('{us}') of pong -> ok; pang -> timer:sleep(50), R() end end, \
         Retry(), io:format(\"pong again~n\"), timer:sleep(60000)",
        us = ours.name()
    );
    let beam = erlang::beam_node(&alive, "sesame", server.address().port(), &eval);
    beam.expect_line("up");
    assert_eq!(ours.node().nodes(), vec![peer.clone()]);
    assert!(ours.node().block(&peer).unwrap());
    let down = wait_event(&events, |e| is_down_of(e, &peer));
    assert!(matches!(
        down,
        NodeEvent::Down {
            reason: NodeDownReason::Disconnected,
            ..
        }
    ));
    beam.expect_line("nodedown");
    assert_eq!(beam.expect_line("ping "), "ping pang");
    assert!(matches!(
        ours.node().send(
            ours.runtime().root_pid(),
            ("any", peer.as_str()),
            &Atom::from("x").to_term()
        ),
        Err(DistError::NoConnection { .. })
    ));
    assert!(ours.node().nodes().is_empty());
    assert!(ours.node().unblock(&peer));
    beam.expect_line("pong again");
    wait_event(
        &events,
        |e| matches!(e, NodeEvent::Up { node } if *node == peer),
    );
}

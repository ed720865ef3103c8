//! EPMD: registration kept open, look-up and listing, with a real epmd and with our
//! name server; a real `erl` registering with our name server.
//!
//! Ports the EPMD protocol rules of erts' `erl_dist_protocol.md` ("EPMD Protocol":
//! ALIVE2_REQ / ALIVE2_X_RESP, PORT_PLEASE2_REQ / PORT2_RESP, NAMES_REQ; a node is
//! unregistered when its connection closes).

#[path = "support/erlang.rs"]
mod erlang;

use std::net::SocketAddr;
use std::time::Duration;

use otp_threads::dist::DistError;
use otp_threads::dist::epmd::{EpmdClient, NODE_TYPE_HIDDEN, NameServer, NodeEntry};
use otp_threads_testkit::{Patience, poll_until};

const TIMEOUT: Duration = Duration::from_secs(10);

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Polls `lookup` until it gives `expected` (registration changes are asynchronous to
/// the client that closes its socket).
fn wait_for_lookup(client: &EpmdClient, name: &str, present: bool) -> Option<NodeEntry> {
    poll_until(
        &format!(
            "{name} to be {} at the name server",
            if present {
                "registered"
            } else {
                "unregistered"
            }
        ),
        Patience::new(erlang::WAIT, Duration::from_millis(20)),
        || client.port_please(name).expect("PORT_PLEASE2"),
        |entry| entry.is_some() == present,
    )
}

/// Register, look up, list, then unregister by closing: the same script for both
/// servers.
fn register_lookup_unregister(epmd: SocketAddr) {
    let client = EpmdClient::new(epmd, TIMEOUT);
    let name = erlang::unique_name("rs");
    let entry = NodeEntry::new(&name, 40_123, false);
    let registration = client.register(&entry).expect("ALIVE2");
    assert_ne!(
        registration.creation(),
        0,
        "EPMD hands out a non-zero creation"
    );

    let found = client.port_please(&name).unwrap().expect("registered");
    assert_eq!(found.port, 40_123);
    assert_eq!(found.node_type, NODE_TYPE_HIDDEN);
    assert_eq!((found.highest_version, found.lowest_version), (6, 6));
    assert!(client.names().unwrap().contains(&(name.clone(), 40_123)));

    // The same name cannot be registered twice while the first registration is open.
    match client.register(&entry) {
        Err(DistError::EpmdRefused { result, .. }) => assert_ne!(result, 0),
        other => panic!("second ALIVE2 for {name} was not refused: {other:?}"),
    }

    drop(registration);
    wait_for_lookup(&client, &name, false);
    assert!(!client.names().unwrap().iter().any(|(n, _)| *n == name));
    assert_eq!(client.port_please("never_registered").unwrap(), None);
}

#[test]
fn register_lookup_and_unregister_with_a_real_epmd() {
    let epmd = erlang::RealEpmd::start();
    register_lookup_unregister(epmd.address());
}

#[test]
fn register_lookup_and_unregister_with_our_name_server() {
    let server = NameServer::bind(loopback_any()).unwrap();
    register_lookup_unregister(server.address());
    server.shutdown();
}

#[test]
fn real_erl_registers_with_our_epmd() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let name = erlang::unique_name("beam");
    let mut node = erlang::beam_node(
        &name,
        "cookie",
        server.address().port(),
        "io:format(\"ready~n\"), receive stop -> ok end",
    );
    node.expect_line("ready");
    let client = EpmdClient::new(server.address(), TIMEOUT);
    let entry = wait_for_lookup(&client, &name, true).unwrap();
    assert_ne!(entry.port, 0);
    assert_eq!(entry.highest_version, 6);
    assert!(
        server
            .names()
            .iter()
            .any(|(n, port)| *n == name && *port == entry.port)
    );

    // Killing the node closes its EPMD connection: the name goes away.
    node.signal("KILL");
    node.wait_exit();
    wait_for_lookup(&client, &name, false);
    drop(node);
    server.shutdown();
    assert!(!erlang::os_process_running(&format!("-sname {name}")));
}

#[test]
fn real_erl_lists_names_from_our_epmd() {
    // `net_adm:names/0` is NAMES_REQ from BEAM's own client.
    let server = NameServer::bind(loopback_any()).unwrap();
    let client = EpmdClient::new(server.address(), TIMEOUT);
    let ours = erlang::unique_name("rs");
    let _registration = client
        .register(&NodeEntry::new(&ours, 40_999, true))
        .unwrap();
    let name = erlang::unique_name("beam");
    let node = erlang::beam_node(
        &name,
        "cookie",
        server.address().port(),
        "{ok, Names} = net_adm:names(), io:format(\"names ~p~n\", [Names])",
    );
    let line = node.expect_line("names ");
    assert!(
        line.contains(&format!("{{\"{ours}\",40999}}")),
        "BEAM did not list {ours}: {line}"
    );
    drop(node);
    server.shutdown();
}

#[test]
fn name_server_shutdown_closes_registrations_and_joins_threads() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let client = EpmdClient::new(server.address(), TIMEOUT);
    let registrations: Vec<_> = (0..5)
        .map(|i| {
            client
                .register(&NodeEntry::new(&format!("n{i}"), 1000 + i, true))
                .unwrap()
        })
        .collect();
    assert_eq!(server.names().len(), 5);
    // Shutdown joins every connection thread; with five registrations still open on
    // the client side that is only possible because it closes their sockets. (The port
    // itself may be reused by a parallel test at once, so it is not probed.)
    let (done, finished) = crossbeam_channel::bounded(1);
    let stopper = std::thread::spawn(move || {
        server.shutdown();
        let _ = done.send(());
    });
    finished
        .recv_timeout(erlang::WAIT)
        .expect("shutdown returned with registrations open");
    stopper.join().unwrap();
    drop(registrations);
}

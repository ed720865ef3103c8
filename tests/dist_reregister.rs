//! A node whose EPMD registration is lost registers again: epmd killed and restarted,
//! or our name server stopped. Real `epmd` and `erl` processes.
//!
//! Rule: a node is reachable by name while registered (`ALIVE2` connection open,
//! erl_dist_protocol.md "EPMD"); ERTS does not re-register after losing epmd, we do
//! (SEMANTICS.md 11.38).

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use erlang::accepts_connections;
use node_support::{OurNode, WAIT};
use otp_threads::dist::epmd::{EpmdClient, NameServer};
use otp_threads_testkit::{Patience, poll_until};

/// Waits (bounded) until the EPMD at `address` lists `alive` with `port`.
fn wait_registered(address: SocketAddr, alive: &str, port: u16) {
    let client = EpmdClient::new(address, Duration::from_secs(2));
    poll_until(
        &format!("{alive} to be registered again at {address} with port {port}"),
        Patience::new(WAIT, Duration::from_millis(50)),
        || {
            client
                .port_please(alive)
                .ok()
                .flatten()
                .map(|entry| entry.port)
        },
        |seen| *seen == Some(port),
    );
}

fn ping_from_beam(epmd_port: u16, ours: &OurNode) -> String {
    let beam = erlang::beam_node(
        &erlang::unique_name("beam"),
        "sesame",
        epmd_port,
        &format!(
            "io:format(\"ping ~p~n\", [net_adm:ping('{}')])",
            ours.name()
        ),
    );
    beam.expect_line("ping ")
}

/// A real epmd in the foreground on `port`, to be killed with SIGKILL.
fn real_epmd(port: u16) -> Child {
    erlang::require_erlang();
    let child = Command::new("bash")
        .arg(erlang::script())
        .arg("epmd")
        .arg(port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    accepts_connections(address, &format!("epmd on {address} to start"));
    child
}

#[test]
fn a_node_registers_again_when_a_real_epmd_is_killed_and_restarted() {
    let port = erlang::free_port();
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut epmd = real_epmd(port);
    let alive = erlang::unique_name("rs");
    let ours = OurNode::start(&alive, "sesame", address);
    assert!(!ours.node().runs_name_server());
    let listen = ours.node().listen_address().port();
    wait_registered(address, &alive, listen);
    epmd.kill().unwrap();
    epmd.wait().unwrap();
    let mut restarted = real_epmd(port);
    wait_registered(address, &alive, listen);
    assert_eq!(ping_from_beam(port, &ours), "ping pong");
    drop(ours);
    let _ = restarted.kill();
    let _ = restarted.wait();
}

#[test]
fn a_node_takes_over_the_epmd_address_when_its_name_server_stops() {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let address = server.address();
    let alive = erlang::unique_name("rs");
    let ours = OurNode::start(&alive, "sesame", address);
    let listen = ours.node().listen_address().port();
    wait_registered(address, &alive, listen);
    server.shutdown();
    // Nothing answers there any more: after its grace second the node starts our
    // name server on that address and registers with it; BEAM nodes find it there.
    wait_registered(address, &alive, listen);
    assert_eq!(ping_from_beam(address.port(), &ours), "ping pong");
    // Stopping the node stops the name server it started.
    drop(ours);
    poll_until(
        &format!("the node's name server on {address} to stop with it"),
        Patience::new(WAIT, Duration::from_millis(20)),
        || TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok(),
        |accepting| !accepting,
    );
}

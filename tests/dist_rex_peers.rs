//! `Node::process_info` and `Node::rpc` against the rex of another node: a Rust node
//! in a separate OS process (this test binary started again with
//! `OTP_THREADS_REX_PEER` set), and a real BEAM node. `harness = false`: `main` runs
//! the scenarios in order and fails (panics) on the first broken one.
//!
//! Ports `erlang:process_info/2` as asked of a remote pid's node over `rpc` (what
//! `observer` and `observer_cli` do) and `rpc:call`'s result rules for a registered
//! function, an undefined one and a dead pid (`undefined`).

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::io::BufRead;
use std::net::SocketAddr;
use std::time::Duration;

use node_support::{
    Order, OurNode, PeerProcess, announce_ready, probe, register_adder, wait_handled,
};
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, DistError, FromTerm, Mfa, Term, ToTerm};
use otp_threads::{NodeName, Pid};

fn atom(name: &str) -> Term {
    Atom::from(name).to_term()
}

const PEER_ROLE: &str = "OTP_THREADS_REX_PEER";
const TIMEOUT: Duration = Duration::from_secs(30);

/// The peer: a node with `mymod:add/2` registered and a worker `calc` that has handled
/// three calls; prints `ready ID SERIAL CREATION` (calc's pid) and runs until stdin
/// closes.
fn peer_main(alive: &str, epmd_port: u16) {
    let node = OurNode::start(
        alive,
        "shared",
        SocketAddr::from(([127, 0, 0, 1], epmd_port)),
    );
    register_adder(node.node());
    let (calc, _seen) = probe(&node, Some("calc"));
    for n in 0..3 {
        let _: Term = calc.call(Order::Term(n.to_term())).unwrap();
    }
    wait_handled(&node.runtime().handle(), &calc.pid(), 3);
    announce_ready(calc.pid());
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

fn process_info_of_a_process_on_a_rust_node_in_another_os_process() {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "shared", server.address());
    let peer = PeerProcess::start(PEER_ROLE, server.address(), &[]);
    let node = ours.node();
    // Node::rpc reaches the peer's registered function through its rex.
    let sum = node
        .rpc(
            &peer.name,
            "mymod",
            "add",
            vec![40.to_term(), 2.to_term()],
            TIMEOUT,
        )
        .unwrap();
    assert_eq!(sum, 42.to_term());
    let whereis = node
        .rpc(
            &peer.name,
            "erlang",
            "whereis",
            vec![Atom::from("calc").to_term()],
            TIMEOUT,
        )
        .unwrap();
    assert_eq!(Pid::from_term(whereis).unwrap(), peer.calc);
    let info = node
        .process_info(&peer.calc, TIMEOUT)
        .unwrap()
        .expect("calc is alive");
    assert_eq!(info.pid, peer.calc);
    assert_eq!(info.registered_name.as_deref(), Some("calc"));
    assert_eq!(info.status, "waiting");
    assert_eq!(info.message_queue_len, 0);
    assert_eq!(info.reductions, 3);
    assert!(!info.trap_exit);
    assert!(info.links.is_empty());
    assert_eq!(
        info.initial_call,
        Some(Mfa {
            module: "dist_rex_peers::node_support::Probe".into(),
            function: "init".into(),
            arity: 1,
        })
    );
    assert_eq!(
        info.current_function.as_ref().map(|f| f.function.as_str()),
        Some("receive")
    );
    // A pid that never lived there: undefined.
    let unknown = Pid::from_parts(NodeName::new(&peer.name), 999_999, 0, peer.calc.creation());
    assert_eq!(node.process_info(&unknown, TIMEOUT).unwrap(), None);
    // An undefined function: rex's badrpc term.
    let undef = node
        .rpc(&peer.name, "nomod", "nofun", vec![], TIMEOUT)
        .unwrap();
    assert_eq!(
        undef.to_string(),
        "{'badrpc',{'EXIT',{'undef',[{'nomod','nofun',[],[]}]}}}"
    );
}

fn process_info_of_a_local_process_goes_the_same_way() {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "shared", server.address());
    let (calc, _seen) = probe(&ours, Some("local_calc"));
    let _: Term = calc.call(Order::Term(1.to_term())).unwrap();
    wait_handled(&ours.runtime().handle(), &calc.pid(), 1);
    let info = ours
        .node()
        .process_info(&calc.pid(), TIMEOUT)
        .unwrap()
        .unwrap();
    assert_eq!(info.registered_name.as_deref(), Some("local_calc"));
    assert_eq!(info.reductions, 1);
}

fn process_info_of_a_beam_process_reads_beam_items() {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "shared", server.address());
    let alive = erlang::unique_name("beam");
    let beam_node = format!("{alive}@{}", erlang::short_host());
    // holder: registered, linked to a helper, trapping exits, three messages queued.
    let beam = erlang::beam_node(
        &alive,
        "shared",
        server.address().port(),
        "Holder = spawn(fun() -> process_flag(trap_exit, true), \
           link(spawn(fun() -> receive _ -> ok end end)), \
           receive go -> ok end, receive stop -> ok end end), \
         register(holder, Holder), Holder ! one, Holder ! two, Holder ! three, \
         io:format(\"ready~n\"), receive stop -> ok end",
    );
    beam.expect_line("ready");
    let node = ours.node();
    let holder = node
        .rpc(
            &beam_node,
            "erlang",
            "whereis",
            vec![Atom::from("holder").to_term()],
            TIMEOUT,
        )
        .unwrap();
    let holder = Pid::from_term(holder).unwrap();
    let info = node.process_info(&holder, TIMEOUT).unwrap().unwrap();
    assert_eq!(info.registered_name.as_deref(), Some("holder"));
    assert_eq!(info.status, "waiting");
    assert_eq!(info.message_queue_len, 3);
    assert_eq!(info.links.len(), 1);
    assert!(info.trap_exit);
    assert!(info.reductions > 0);
    assert_eq!(
        info.initial_call.as_ref().map(|f| f.module.as_str()),
        Some("erlang")
    );
    assert!(info.current_function.is_some());
    // A dead pid of the BEAM node: undefined; a BEAM failure is BadRpc.
    // (BEAM refuses pid numbers it never issued, so the dead pid is a real one.)
    let short_lived = node
        .rpc(
            &beam_node,
            "erlang",
            "spawn",
            vec![atom("erlang"), atom("is_atom"), vec![atom("x")].to_term()],
            TIMEOUT,
        )
        .unwrap();
    let dead = Pid::from_term(short_lived).unwrap();
    ours.runtime().monitor(&dead).wait(TIMEOUT).expect("DOWN");
    assert_eq!(node.process_info(&dead, TIMEOUT).unwrap(), None);
    match node.rpc(
        &beam_node,
        "erlang",
        "process_info",
        vec![holder.to_term(), Atom::from("bogus").to_term()],
        TIMEOUT,
    ) {
        Ok(term) => assert!(
            term.to_string().starts_with("{'badrpc',{'EXIT',{'badarg',"),
            "{term}"
        ),
        Err(error) => panic!("rpc failed: {error}"),
    }
    drop(beam);
    // The node is gone: NoConnection, never a hang.
    let gone = node.process_info(&holder, TIMEOUT);
    assert!(
        matches!(
            gone,
            Err(DistError::NoConnection { .. }) | Err(DistError::Exited(_))
        ),
        "{gone:?}"
    );
}

fn main() {
    if let Ok(role) = std::env::var(PEER_ROLE) {
        let parts: Vec<&str> = role.split(' ').collect();
        peer_main(parts[0], parts[1].parse().unwrap());
        return;
    }
    let scenarios: [(&str, fn()); 3] = [
        (
            "process_info_of_a_process_on_a_rust_node_in_another_os_process",
            process_info_of_a_process_on_a_rust_node_in_another_os_process,
        ),
        (
            "process_info_of_a_local_process_goes_the_same_way",
            process_info_of_a_local_process_goes_the_same_way,
        ),
        (
            "process_info_of_a_beam_process_reads_beam_items",
            process_info_of_a_beam_process_reads_beam_items,
        ),
    ];
    for (name, scenario) in scenarios {
        eprintln!("test {name} ...");
        scenario();
        eprintln!("test {name} ... ok");
    }
    eprintln!("test result: ok. {} passed", scenarios.len());
}

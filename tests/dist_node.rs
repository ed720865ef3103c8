//! A runtime as a distributed node, with real BEAM nodes: settings, EPMD, ping,
//! sends both ways, gen_server calls both ways, node events and ticks.
//!
//! Ports OTP's `net_adm:ping/1` (answered by `net_kernel`'s `is_auth`), `gen_server`
//! call/cast across nodes (`gen:call` with reference and `[alias | Ref]` tags),
//! `net_kernel:monitor_nodes/1` nodeup/nodedown and `net_ticktime` (a peer silent for
//! the tick time is disconnected).

#[path = "support/dist.rs"]
mod dist_support;
#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::net::SocketAddr;
use std::time::Duration;

use node_support::{OurNode, Seen, next_seen, probe, wait_event};
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, DistError, Node, NodeDownReason, NodeEvent, Term, ToTerm};
use otp_threads::{Pid, Runtime};
use otp_threads_testkit::log_capture;

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn beam_name(alive: &str) -> String {
    format!("{alive}@{}", erlang::short_host())
}

#[test]
fn node_settings_are_validated_with_typed_errors() {
    // A runtime without a node name cannot be a node.
    let unnamed = Runtime::new();
    match Node::builder().cookie("c").start(&unnamed.handle()) {
        Err(DistError::InvalidNodeName { name, .. }) => assert_eq!(name, "nonode@nohost"),
        other => panic!(
            "nonode@nohost accepted: {:?}",
            other.map(|n| n.name().to_owned())
        ),
    }
    unnamed.shutdown(Duration::from_secs(5)).unwrap();
    let runtime = Runtime::builder().node_name("a@h").build().unwrap();
    match Node::builder().cookie("").start(&runtime.handle()) {
        Err(DistError::InvalidOption { option, .. }) => assert_eq!(option, "cookie"),
        other => panic!(
            "empty cookie accepted: {:?}",
            other.map(|n| n.name().to_owned())
        ),
    }
    match Node::builder()
        .cookie("c")
        .net_ticktime(Duration::from_millis(10))
        .start(&runtime.handle())
    {
        Err(DistError::InvalidOption { option, .. }) => assert_eq!(option, "net_ticktime"),
        other => panic!(
            "tiny ticktime accepted: {:?}",
            other.map(|n| n.name().to_owned())
        ),
    }
    match Node::builder()
        .cookie("c")
        .max_frame(10)
        .start(&runtime.handle())
    {
        Err(DistError::InvalidOption { option, .. }) => assert_eq!(option, "max_frame"),
        other => panic!(
            "tiny frame limit accepted: {:?}",
            other.map(|n| n.name().to_owned())
        ),
    }
    let too_long = Duration::from_millis(11);
    let refused = [
        (
            "setup_timeout",
            Node::builder().setup_timeout(Duration::ZERO),
        ),
        (
            "served_call_timeout",
            Node::builder().served_call_timeout(Duration::ZERO),
        ),
        ("reply_spin", Node::builder().reply_spin(too_long)),
        ("reader_spin", Node::builder().reader_spin(too_long)),
    ];
    for (expected, builder) in refused {
        match builder.cookie("c").start(&runtime.handle()) {
            Err(DistError::InvalidOption { option, .. }) => assert_eq!(option, expected),
            other => panic!(
                "bad {expected} accepted: {:?}",
                other.map(|n| n.name().to_owned())
            ),
        }
    }
    runtime.shutdown(Duration::from_secs(5)).unwrap();
    // The runtime's node name must be name@host: the runtime builder refuses others,
    // and the handshake refuses peers without '@'.
    assert!(Runtime::builder().node_name("nohost").build().is_err());
}

#[test]
fn the_cookie_file_is_created_with_mode_0400_when_absent() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(erlang::unique_name("cookie"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(".erlang.cookie");
    let server = NameServer::bind(loopback_any()).unwrap();
    let first = OurNode::start_with(&erlang::unique_name("rs"), server.address(), |b| {
        b.cookie_file(&path)
    });
    let cookie = std::fs::read_to_string(&path).unwrap();
    assert_eq!(cookie.len(), 20);
    assert!(cookie.bytes().all(|b| b.is_ascii_uppercase()));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o400
    );
    drop(first);
    // A second node reads the same cookie, and a BEAM node with it can ping us.
    let second = OurNode::start_with(&erlang::unique_name("rs"), server.address(), |b| {
        b.cookie_file(&path)
    });
    let beam = erlang::beam_node(
        &erlang::unique_name("beam"),
        &cookie,
        server.address().port(),
        &format!(
            "io:format(\"ping ~p~n\", [net_adm:ping('{}')])",
            second.name()
        ),
    );
    assert_eq!(beam.expect_line("ping "), "ping pong");
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_starts_its_own_name_server_when_no_epmd_answers() {
    let port = erlang::free_port();
    let epmd = SocketAddr::from(([127, 0, 0, 1], port));
    let first = OurNode::start(&erlang::unique_name("rs"), "c", epmd);
    assert!(first.node().runs_name_server());
    let second = OurNode::start(&erlang::unique_name("rs"), "c", epmd);
    assert!(!second.node().runs_name_server());
    // Two Rust nodes find each other through it, with no Erlang installed.
    let (worker, seen) = probe(&first, Some("inbox"));
    second
        .node()
        .send(
            second.runtime().root_pid(),
            ("inbox", first.name().as_str()),
            &"hello over our own EPMD",
        )
        .unwrap();
    match next_seen(&seen) {
        Seen::Message(term) => assert_eq!(term, "hello over our own EPMD".to_term()),
        other => panic!("{other:?}"),
    }
    assert_eq!(first.node().nodes(), vec![second.name()]);
    drop(worker);
    drop(second);
    drop(first);
}

#[test]
fn net_adm_ping_from_beam_gets_pong_and_beam_lists_us() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let events = ours.node().events();
    let alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(
        &alive,
        "sesame",
        server.address().port(),
        &format!(
            "io:format(\"ping ~p~n\", [net_adm:ping('{0}')]), io:format(\"nodes ~p~n\", [nodes()])",
            ours.name()
        ),
    );
    assert_eq!(beam.expect_line("ping "), "ping pong");
    assert_eq!(
        beam.expect_line("nodes "),
        format!("nodes [{}]", ours.name())
    );
    let up = wait_event(&events, |e| matches!(e, NodeEvent::Up { .. }));
    assert!(matches!(up, NodeEvent::Up { node } if node == beam_name(&alive)));
}

#[test]
fn gen_server_call_from_beam_reaches_handle_call() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let (_worker, seen) = probe(&ours, Some("calc"));
    let beam = erlang::beam_node(
        &erlang::unique_name("beam"),
        "sesame",
        server.address().port(),
        &format!(
            "S = {{calc, '{0}'}}, \
             io:format(\"alias ~p~n\", [gen_server:call(S, {{add, 2, 3}})]), \
             Ref = make_ref(), S ! {{'$gen_call', {{self(), Ref}}, plain}}, \
             receive {{Ref, R}} -> io:format(\"plain ~p~n\", [R]) after 10000 -> io:format(\"plain timeout~n\") end, \
             gen_server:cast(S, {{hello, <<\"cast\">>}}), \
             S ! {{info, 1}}, \
             io:format(\"done~n\")",
            ours.name()
        ),
    );
    // OTP 24+ tags calls with [alias | Ref]: the reply goes to the alias.
    assert_eq!(beam.expect_line("alias "), "alias {got,{add,2,3}}");
    // A plain reference tag: the reply goes to the caller's pid.
    assert_eq!(beam.expect_line("plain "), "plain {got,plain}");
    beam.expect_line("done");
    match next_seen(&seen) {
        Seen::Cast(term) => assert_eq!(term, (Atom::from("hello"), "cast").to_term()),
        other => panic!("expected the cast, got {other:?}"),
    }
    match next_seen(&seen) {
        Seen::Message(term) => assert_eq!(term, (Atom::from("info"), 1i32).to_term()),
        other => panic!("expected the message, got {other:?}"),
    }
}

#[test]
fn rust_call_to_a_beam_gen_server() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(
        &alive,
        "sesame",
        server.address().port(),
        "io:format(\"ready~n\"), receive stop -> ok end",
    );
    beam.expect_line("ready");
    let peer = beam_name(&alive);
    // net_kernel is a real gen_server: {is_auth, Node} answers yes.
    let yes: Atom = ours
        .node()
        .call(
            ("net_kernel", peer.as_str()),
            &(Atom::from("is_auth"), Atom::new(ours.name())),
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(yes.as_str(), "yes");
    // A name nobody registered: the call's monitor fails it at once.
    let missing: Result<Term, DistError> = ours.node().call(
        ("no_such_server", peer.as_str()),
        &Atom::from("hi"),
        Duration::from_secs(30),
    );
    assert!(matches!(missing, Err(DistError::NoProc)), "{missing:?}");
    // A node that does not exist: NoConnection.
    let nowhere: Result<Term, DistError> = ours.node().call(
        (
            "net_kernel",
            format!("nobody@{}", erlang::short_host()).as_str(),
        ),
        &Atom::from("hi"),
        Duration::from_secs(30),
    );
    assert!(
        matches!(nowhere, Err(DistError::NoConnection { .. })),
        "{nowhere:?}"
    );
}

#[test]
fn messages_to_remote_pids_and_names_both_ways() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let (worker, seen) = probe(&ours, None);
    let alive = erlang::unique_name("beam");
    // This echo answers {From, Msg} with {self(), Msg}, so we learn its pid.
    let beam = erlang::beam_node(
        &alive,
        "sesame",
        server.address().port(),
        "register(echo, self()), io:format(\"ready~n\"), \
         Loop = fun L() -> receive {From, Msg} -> From ! {self(), Msg}, L() end end, Loop()",
    );
    beam.expect_line("ready");
    // To {echo, Node}, from our worker: the answer comes back to the worker's pid.
    ours.node()
        .send(
            worker.pid(),
            ("echo", beam_name(&alive).as_str()),
            &(worker.pid(), vec![1i64, -2, 3]),
        )
        .unwrap();
    let Seen::Message(reply) = next_seen(&seen) else {
        panic!("no echo")
    };
    let (echo_pid, list): (Pid, Vec<i64>) = otp_threads::dist::FromTerm::from_term(reply).unwrap();
    assert_eq!(list, vec![1, -2, 3]);
    assert_eq!(echo_pid.node().as_str(), beam_name(&alive));
    // To the remote pid itself.
    ours.node()
        .send(
            worker.pid(),
            echo_pid,
            &(worker.pid(), Atom::from("direct")),
        )
        .unwrap();
    let Seen::Message(reply) = next_seen(&seen) else {
        panic!("no echo")
    };
    assert_eq!(reply, (echo_pid, Atom::from("direct")).to_term());
    assert_eq!(ours.node().dropped_messages(), 0);
}

#[test]
fn undecodable_messages_are_logged_dropped_and_counted() {
    struct Numbers;
    impl otp_threads::Worker for Numbers {
        type Call = ();
        type Reply = ();
        type Cast = ();
        type Info = i64;
        type Continue = ();
    }
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let numbers = ours
        .runtime()
        .handle()
        .spawn_named("numbers", Numbers)
        .unwrap();
    ours.node().accept_messages(&numbers);
    let beam = erlang::beam_node(
        &erlang::unique_name("beam"),
        "sesame",
        server.address().port(),
        &format!(
            "{{numbers, '{0}'}} ! not_a_number, {{numbers, '{0}'}} ! 42, \
             {{numbers, '{0}'}} ! [also, nope], io:format(\"sent~n\"), timer:sleep(60000)",
            ours.name()
        ),
    );
    beam.expect_line("sent");
    otp_threads_testkit::poll_until(
        "the node to count the two undecodable messages as dropped",
        otp_threads_testkit::Patience::new(node_support::WAIT, Duration::from_millis(20)),
        || ours.node().dropped_messages(),
        |dropped| *dropped >= 2,
    );
    assert!(numbers.is_alive(), "a bad term never crashes the receiver");
    assert_eq!(ours.node().dropped_messages(), 2);
}

#[test]
fn nodedown_when_the_beam_node_is_killed() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let events = ours.node().events();
    let alive = erlang::unique_name("beam");
    let mut beam = erlang::beam_node(&alive, "sesame", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    ours.node().connect(&beam_name(&alive)).unwrap();
    wait_event(&events, |e| matches!(e, NodeEvent::Up { .. }));
    assert_eq!(ours.node().nodes(), vec![beam_name(&alive)]);
    beam.signal("KILL");
    beam.wait_exit();
    let down = wait_event(&events, |e| matches!(e, NodeEvent::Down { .. }));
    assert!(
        matches!(&down, NodeEvent::Down { node, reason: NodeDownReason::Closed } if *node == beam_name(&alive)),
        "{down:?}"
    );
    assert!(ours.node().nodes().is_empty());
}

#[test]
fn disconnect_is_a_nodedown_and_the_next_send_reconnects() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let (worker, seen) = probe(&ours, None);
    let events = ours.node().events();
    let alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(&alive, "sesame", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    let peer = beam_name(&alive);
    ours.node().connect(&peer).unwrap();
    assert!(ours.node().disconnect(&peer));
    let down = wait_event(&events, |e| matches!(e, NodeEvent::Down { .. }));
    assert!(matches!(
        down,
        NodeEvent::Down {
            reason: NodeDownReason::Disconnected,
            ..
        }
    ));
    ours.node()
        .send(worker.pid(), ("echo", peer.as_str()), &(worker.pid(), 7i32))
        .unwrap();
    assert!(matches!(next_seen(&seen), Seen::Message(_)));
}

#[test]
fn ticks_keep_an_idle_connection_up_and_a_stalled_peer_is_declared_down() {
    // net_ticktime 3 s on both sides: ticks every 0.75 s; idle for 4 tick times, the
    // connection stays; then the BEAM node is stopped (SIGSTOP) and must be declared
    // down within the tick window.
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start_with(&erlang::unique_name("rs"), server.address(), |b| {
        b.cookie("sesame").net_ticktime(Duration::from_secs(3))
    });
    let events = ours.node().events();
    let alive = erlang::unique_name("beam");
    let beam = erlang::beam_node_with(
        &alive,
        "sesame",
        server.address().port(),
        &format!(
            "pong = net_adm:ping('{0}'), io:format(\"up~n\"), \
             ok = net_kernel:monitor_nodes(true), \
             receive {{nodedown, N}} -> io:format(\"nodedown ~p~n\", [N]) after 12000 -> io:format(\"still up ~p~n\", [nodes()]) end, \
             receive stop -> ok end",
            ours.name()
        ),
        &["-kernel", "net_ticktime", "3"],
    );
    beam.expect_line("up");
    wait_event(&events, |e| matches!(e, NodeEvent::Up { .. }));
    // BEAM waited 12 s (4 tick times) on an idle connection without a nodedown.
    assert_eq!(
        beam.expect_line("still up"),
        format!("still up [{}]", ours.name())
    );
    assert!(events.try_recv().is_err(), "no nodedown while idle");
    beam.signal("STOP");
    let down = wait_event(&events, |e| matches!(e, NodeEvent::Down { .. }));
    assert!(
        matches!(
            down,
            NodeEvent::Down {
                reason: NodeDownReason::TickTimeout,
                ..
            }
        ),
        "{down:?}"
    );
    beam.signal("CONT");
}

#[test]
fn a_pid_of_a_node_without_distribution_is_no_connection() {
    let runtime = Runtime::builder().node_name("solo@h").build().unwrap();
    let remote = Pid::from_parts(otp_threads::NodeName::new("other@h"), 1, 0, 1);
    let down = runtime.monitor(&remote).wait(node_support::WAIT).unwrap();
    assert_eq!(down.reason, otp_threads::ExitReason::NoConnection);
    runtime.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn rpc_to_a_beam_node_through_rex() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(
        &alive,
        "sesame",
        server.address().port(),
        "io:format(\"ready~n\"), receive stop -> ok end",
    );
    beam.expect_line("ready");
    let peer = beam_name(&alive);
    let reversed = ours
        .node()
        .rpc(
            &peer,
            "lists",
            "reverse",
            vec![vec![1i32, 2, 3].to_term()],
            Duration::from_secs(10),
        )
        .unwrap();
    // BEAM sends a list of small integers as STRING_EXT: compare as Rust values.
    let reversed: Vec<i32> = otp_threads::dist::FromTerm::from_term(reversed).unwrap();
    assert_eq!(reversed, vec![3, 2, 1]);
    let node = ours
        .node()
        .rpc(&peer, "erlang", "node", vec![], Duration::from_secs(10))
        .unwrap();
    assert_eq!(node, Atom::new(peer.clone()).to_term());
    // A failing call comes back as rex's {badrpc, Reason}.
    let failed = ours
        .node()
        .rpc(
            &peer,
            "no_such_module",
            "f",
            vec![],
            Duration::from_secs(10),
        )
        .unwrap();
    let Term::Tuple(failed) = failed else {
        panic!("{failed:?}")
    };
    assert_eq!(failed.elements[0], Atom::from("badrpc").to_term());
}

#[test]
fn gen_server_cast_to_a_beam_process() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(
        &alive,
        "sesame",
        server.address().port(),
        "register(srv, self()), io:format(\"ready~n\"), \
         receive {'$gen_cast', M} -> io:format(\"cast ~p~n\", [M]) end",
    );
    beam.expect_line("ready");
    ours.node()
        .cast(
            ("srv", beam_name(&alive).as_str()),
            &(Atom::from("hello"), 1i32),
        )
        .unwrap();
    assert_eq!(beam.expect_line("cast "), "cast {hello,1}");
}

#[test]
fn a_hidden_node_is_not_in_beam_nodes_but_in_nodes_hidden() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start_with(&erlang::unique_name("rs"), server.address(), |b| {
        b.cookie("sesame").hidden(true)
    });
    let beam = erlang::beam_node(
        &erlang::unique_name("beam"),
        "sesame",
        server.address().port(),
        &format!(
            "pong = net_adm:ping('{0}'), io:format(\"visible ~p hidden ~p~n\", [nodes(), nodes(hidden)])",
            ours.name()
        ),
    );
    assert_eq!(
        beam.expect_line("visible "),
        format!("visible [] hidden [{}]", ours.name())
    );
}

#[test]
fn a_malformed_frame_from_a_peer_closes_only_that_connection() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let events = ours.node().events();
    let peer = dist_support::Manual::new(&erlang::unique_name("raw"), "sesame");
    let (mut stream, _) = peer.connect(server.address(), &ours.name()).unwrap();
    wait_event(&events, |e| matches!(e, NodeEvent::Up { .. }));
    // A pass-through frame whose control term announces a 4 GiB list.
    otp_threads::dist::frame::write_frame(&mut stream, &[112, 131, 108, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    let down = wait_event(&events, |e| matches!(e, NodeEvent::Down { .. }));
    assert!(
        matches!(&down, NodeEvent::Down { node, reason: NodeDownReason::ProtocolError(_) } if *node == peer.name),
        "{down:?}"
    );
    // The node still serves others.
    let (worker, seen) = probe(&ours, Some("still_here"));
    let again = dist_support::Manual::new(&erlang::unique_name("raw"), "sesame");
    let (mut stream, _) = again.connect(server.address(), &ours.name()).unwrap();
    dist_support::send(
        &mut stream,
        &otp_threads::dist::control::Control::RegSend {
            from: again.pid(1),
            to: Atom::from("still_here"),
        },
        Some(&Atom::from("hello").to_term()),
    );
    assert!(matches!(next_seen(&seen), Seen::Message(t) if t == Atom::from("hello").to_term()));
    drop(worker);
}

#[test]
fn simultaneous_connects_between_two_nodes_make_one_connection() {
    let server = NameServer::bind(loopback_any()).unwrap();
    for _ in 0..25 {
        let a = OurNode::start(&erlang::unique_name("a"), "c", server.address());
        let b = OurNode::start(&erlang::unique_name("b"), "c", server.address());
        let (a_name, b_name) = (a.name(), b.name());
        std::thread::scope(|scope| {
            let from_a = scope.spawn(|| a.node().connect(&b_name));
            let from_b = scope.spawn(|| b.node().connect(&a_name));
            from_a.join().unwrap().expect("a connects");
            from_b.join().unwrap().expect("b connects");
        });
        assert_eq!(a.node().nodes(), vec![b_name.clone()]);
        assert_eq!(b.node().nodes(), vec![a_name.clone()]);
        // And it carries traffic.
        let (_worker, seen) = probe(&b, Some("inbox"));
        a.node()
            .send(a.runtime().root_pid(), ("inbox", b_name.as_str()), &1i32)
            .unwrap();
        assert!(matches!(next_seen(&seen), Seen::Message(_)));
    }
}

#[test]
fn a_wrong_cookie_through_a_node_is_one_error_line_naming_the_peer() {
    let logs = log_capture::install();
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "mine", server.address());
    let alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(&alive, "theirs", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    let peer = beam_name(&alive);
    match ours.node().connect(&peer) {
        Err(DistError::WrongCookie { peer: named }) => assert_eq!(named, peer),
        other => panic!("{other:?}"),
    }
    let lines = logs.lines_at(log::Level::Error, &[&peer]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(ours.node().nodes().is_empty());
}

#[test]
fn a_call_to_a_beam_server_that_does_not_answer_times_out_and_its_late_reply_is_dropped() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let alive = erlang::unique_name("beam");
    // `slow` answers each call after 1.5 s.
    let beam = erlang::beam_node(
        &alive,
        "sesame",
        server.address().port(),
        "register(slow, self()), io:format(\"ready~n\"), \
         Loop = fun L() -> receive {'$gen_call', From, Req} -> timer:sleep(1500), gen:reply(From, Req), L() end end, Loop()",
    );
    beam.expect_line("ready");
    let peer = beam_name(&alive);
    let first: Result<i32, DistError> =
        ours.node()
            .call(("slow", peer.as_str()), &1i32, Duration::from_millis(200));
    assert!(matches!(first, Err(DistError::Timeout)), "{first:?}");
    // The next call gets its own reply, not the late one of the first call.
    let second: i32 = ours
        .node()
        .call(("slow", peer.as_str()), &2i32, Duration::from_secs(30))
        .unwrap();
    assert_eq!(second, 2);
}

#[test]
fn monitor_node_reports_one_nodedown_and_unreachable_nodes_at_once() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let alive = erlang::unique_name("beam");
    let mut beam = erlang::beam_node(&alive, "sesame", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    let peer = beam_name(&alive);
    let nodedown = ours.node().monitor_node(&peer);
    assert_eq!(
        ours.node().nodes(),
        vec![peer.clone()],
        "monitor_node connects"
    );
    beam.signal("KILL");
    beam.wait_exit();
    match nodedown.recv_timeout(node_support::WAIT).expect("nodedown") {
        NodeEvent::Down { node, reason } => {
            assert_eq!(node, peer);
            assert!(matches!(reason, NodeDownReason::Closed), "{reason:?}");
        }
        other => panic!("{other:?}"),
    }
    let ghost = format!("ghost@{}", erlang::short_host());
    let unreachable = ours.node().monitor_node(&ghost);
    assert!(matches!(
        unreachable
            .recv_timeout(node_support::WAIT)
            .expect("nodedown"),
        NodeEvent::Down {
            reason: NodeDownReason::Unreachable,
            ..
        }
    ));
}

#[test]
fn a_beam_caller_whose_rust_server_dies_mid_call_exits_with_its_reason() {
    struct Fragile;
    impl otp_threads::Worker for Fragile {
        type Call = Atom;
        type Reply = Atom;
        type Cast = ();
        type Info = ();
        type Continue = ();
        fn handle_call(
            &mut self,
            request: Atom,
            reply: otp_threads::ReplyTo<Atom>,
            _: &mut otp_threads::Context<Self>,
        ) -> otp_threads::Step<Self> {
            if request.as_str() == "crash" {
                drop(reply);
                return otp_threads::Step::Stop(otp_threads::ExitReason::error("crashed"));
            }
            reply.reply(request);
            otp_threads::Step::Next
        }
    }
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let fragile = ours
        .runtime()
        .handle()
        .spawn_named("fragile", Fragile)
        .unwrap();
    ours.node().serve(&fragile);
    let beam = erlang::beam_node(
        &erlang::unique_name("beam"),
        "sesame",
        server.address().port(),
        &format!(
            "S = {{fragile, '{0}'}}, io:format(\"first ~p~n\", [gen_server:call(S, hello)]), \
             R = (catch gen_server:call(S, crash)), io:format(\"second ~p~n\", [element(1, element(2, R))]), \
             R3 = (catch gen_server:call(S, again)), io:format(\"third ~p~n\", [element(1, element(2, R3))])",
            ours.name()
        ),
    );
    assert_eq!(beam.expect_line("first "), "first hello");
    // The call's monitor fires with the server's reason: gen_server:call exits with it.
    assert_eq!(
        beam.expect_line("second "),
        "second {error,<<\"crashed\">>}"
    );
    // The server is gone: the next call's monitor gets noproc at once.
    assert_eq!(beam.expect_line("third "), "third noproc");
}

#[test]
fn workers_that_served_other_nodes_and_died_are_forgotten() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "c", server.address());
    // Short-lived servers: each serves, then stops.
    for _ in 0..300 {
        let (worker, _seen) = probe(&ours, None);
        worker
            .stop(otp_threads::ExitReason::Normal, Duration::from_secs(10))
            .unwrap();
    }
    let (kept, _seen) = probe(&ours, Some("kept"));
    // Registration prunes the dead at powers of two: the table holds the live workers
    // plus at most as many dead as were registered since the last pruning.
    assert!(
        ours.node().served() <= 128,
        "{} entries",
        ours.node().served()
    );
    assert!(ours.node().unserve(&kept.pid()));
    assert!(!ours.node().unserve(&kept.pid()));
}

#[test]
fn a_call_in_flight_when_the_peer_node_dies_fails_with_no_connection() {
    // As `gen_server:call` to a process whose node goes down exits with `noconnection`.
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let alive = erlang::unique_name("beam");
    // `silent` takes calls and never answers.
    let beam = erlang::beam_node(
        &alive,
        "sesame",
        server.address().port(),
        "register(silent, self()), io:format(\"ready~n\"), \
         Loop = fun L() -> receive {'$gen_call', _From, _Req} -> io:format(\"got~n\"), L() end end, Loop()",
    );
    beam.expect_line("ready");
    let peer = beam_name(&alive);
    let node = ours.node().clone();
    let target = peer.clone();
    let caller = std::thread::spawn(move || {
        node.call::<i32>(("silent", target.as_str()), &1i32, Duration::from_secs(600))
    });
    beam.expect_line("got");
    beam.signal("KILL");
    let outcome = caller.join().unwrap();
    assert!(
        matches!(&outcome, Err(DistError::NoConnection { node }) if *node == peer),
        "{outcome:?}"
    );
}

/// A worker that reports the node events its `handle_info` gets.
struct NodeWatcher {
    seen: crossbeam_channel::Sender<NodeEvent>,
}

impl otp_threads::Worker for NodeWatcher {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = NodeEvent;
    type Continue = ();

    fn handle_call(
        &mut self,
        _: (),
        reply: otp_threads::ReplyTo<()>,
        _: &mut otp_threads::Context<Self>,
    ) -> otp_threads::Step<Self> {
        reply.reply(());
        otp_threads::Step::Next
    }

    fn handle_info(
        &mut self,
        info: otp_threads::Info<NodeEvent>,
        _: &mut otp_threads::Context<Self>,
    ) -> otp_threads::Step<Self> {
        if let otp_threads::Info::Message(event) = info {
            let _ = self.seen.send(event);
        }
        otp_threads::Step::Next
    }
}

/// `net_kernel:monitor_nodes(true)` and `erlang:monitor_node(Node, true)` called by a
/// process: `{nodeup, N}` / `{nodedown, N}` arrive as messages in its mailbox (here a
/// worker's `handle_info`), in order; monitor_node of an unreachable node gives its
/// nodedown at once, and exactly one.
#[test]
fn node_events_and_monitor_node_reach_a_workers_handle_info() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let (seen, events) = crossbeam_channel::unbounded();
    let all = ours
        .runtime()
        .spawn_worker(NodeWatcher { seen: seen.clone() })
        .unwrap();
    let (once_seen, once) = crossbeam_channel::unbounded();
    let one_node = ours
        .runtime()
        .spawn_worker(NodeWatcher { seen: once_seen })
        .unwrap();
    ours.node().monitor_nodes_to(&all);
    let alive = erlang::unique_name("beam");
    let mut beam = erlang::beam_node(&alive, "sesame", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    let peer = beam_name(&alive);
    ours.node().monitor_node_to(&one_node, &peer);
    assert_eq!(
        ours.node().nodes(),
        vec![peer.clone()],
        "monitor_node connects"
    );
    let up = wait_event(&events, |e| matches!(e, NodeEvent::Up { .. }));
    assert!(
        matches!(&up, NodeEvent::Up { node } if *node == peer),
        "{up:?}"
    );
    beam.signal("KILL");
    beam.wait_exit();
    let down = wait_event(&events, |e| matches!(e, NodeEvent::Down { .. }));
    assert!(
        matches!(&down, NodeEvent::Down { node, reason: NodeDownReason::Closed } if *node == peer),
        "{down:?}"
    );
    let down = once.recv_timeout(node_support::WAIT).expect("nodedown");
    assert!(
        matches!(&down, NodeEvent::Down { node, .. } if *node == peer),
        "{down:?}"
    );
    let ghost = format!("ghost@{}", erlang::short_host());
    ours.node().monitor_node_to(&one_node, &ghost);
    let down = once.recv_timeout(node_support::WAIT).expect("unreachable");
    assert!(
        matches!(&down, NodeEvent::Down { node, reason: NodeDownReason::Unreachable } if *node == ghost),
        "{down:?}"
    );
    // One nodedown per monitor_node: a call to the worker comes back with nothing more.
    one_node.call(()).unwrap();
    assert!(once.try_recv().is_err(), "{:?}", once.try_recv());
}

/// `erlang:send(Dest, Msg, [noconnect])` (erlang:send/3): without a connection nothing
/// is sent and none is set up (`noconnect`, here `NoConnection`); over an existing one
/// the message arrives; after a disconnect it does not reconnect.
#[test]
fn send_noconnect_uses_only_an_existing_connection() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let (worker, seen) = probe(&ours, None);
    let alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(&alive, "sesame", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    let peer = beam_name(&alive);
    let echo = ("echo", peer.as_str());
    assert!(matches!(
        ours.node().send_noconnect(worker.pid(), echo, &(worker.pid(), 1i32)),
        Err(DistError::NoConnection { node }) if node == peer
    ));
    assert!(ours.node().nodes().is_empty(), "no connection was set up");
    ours.node().connect(&peer).unwrap();
    ours.node()
        .send_noconnect(worker.pid(), echo, &(worker.pid(), 7i32))
        .unwrap();
    assert!(matches!(next_seen(&seen), Seen::Message(_)));
    let events = ours.node().events();
    assert!(ours.node().disconnect(&peer));
    wait_event(&events, |e| matches!(e, NodeEvent::Down { .. }));
    assert!(matches!(
        ours.node()
            .send_noconnect(worker.pid(), echo, &(worker.pid(), 2i32)),
        Err(DistError::NoConnection { .. })
    ));
    assert!(ours.node().nodes().is_empty(), "no reconnect");
}

/// `nodes()` (visible) and `nodes(hidden)`: a connection is hidden when either end
/// started hidden (the Erlang reference manual, "Distributed Erlang", section "Hidden
/// Nodes"); `Node::nodes` lists both (`nodes(connected)`).
#[test]
fn visible_and_hidden_nodes_are_listed_by_the_kind_of_connection() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let visible = OurNode::start(&erlang::unique_name("vis"), "sesame", server.address());
    let hidden = OurNode::start_with(&erlang::unique_name("hid"), server.address(), |b| {
        b.cookie("sesame").hidden(true)
    });
    ours.node().connect(&visible.name()).unwrap();
    ours.node().connect(&hidden.name()).unwrap();
    assert_eq!(ours.node().visible_nodes(), vec![visible.name()]);
    assert_eq!(ours.node().hidden_nodes(), vec![hidden.name()]);
    let mut all = vec![visible.name(), hidden.name()];
    all.sort();
    assert_eq!(ours.node().nodes(), all);
    // Seen from the hidden node, every connection is hidden.
    otp_threads_testkit::eventually("the hidden node sees the connection", || {
        !hidden.node().nodes().is_empty()
    });
    assert!(hidden.node().visible_nodes().is_empty());
    assert_eq!(hidden.node().hidden_nodes(), vec![ours.name()]);
}

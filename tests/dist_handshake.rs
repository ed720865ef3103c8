//! The version 6 handshake in both directions against real BEAM nodes, and between
//! two nodes of ours.
//!
//! Ports erts' `erl_dist_protocol.md` "Distribution Handshake" (send_name, send_status,
//! send_challenge, challenge_reply, challenge_ack; simultaneous connect statuses
//! `ok_simultaneous` / `nok`; a wrong digest closes the connection) and the flag rules
//! of `dist.hrl` (`MANDATORY_DFLAGS_25`, `UNLINK_ID` and `V4_NC` from OTP 26).

#[path = "support/dist.rs"]
mod dist_support;
#[path = "support/erlang.rs"]
mod erlang;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use dist_support::{Manual, receive_matching, send};
use otp_threads::dist::control::Control;
use otp_threads::dist::eetf;
use otp_threads::dist::epmd::{EpmdClient, NameServer, NodeEntry};
use otp_threads::dist::handshake::{self, Status};
use otp_threads::dist::{Atom, DistError, Term, ToTerm, flags};
use otp_threads_testkit::log_capture;

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn atom(name: &str) -> Term {
    Atom::from(name).to_term()
}

fn tuple(elements: Vec<Term>) -> Term {
    Term::from(eetf::Tuple::from(elements))
}

#[test]
fn handshake_with_a_beam_node_as_initiator() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let beam_alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(&beam_alive, "sesame", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    let ours = Manual::new(&erlang::unique_name("rs"), "sesame");
    let beam_name = format!("{beam_alive}@{}", erlang::short_host());

    let (mut stream, peer) = ours
        .connect(server.address(), &beam_name)
        .expect("handshake");
    assert_eq!(peer.name, beam_name);
    assert_eq!(flags::missing_required(peer.flags), 0);
    assert_ne!(peer.creation, 0);

    // A message both ways proves the channel is up: REG_SEND to `echo`, and the echo
    // comes back to our pid.
    let me = ours.pid(1);
    send(
        &mut stream,
        &Control::RegSend {
            from: me.clone(),
            to: Atom::from("echo"),
        },
        Some(&tuple(vec![Term::from(me.clone()), atom("hello")])),
    );
    let reply = receive_matching(
        &mut stream,
        |m| matches!(&m.control, Control::SendSender { to, .. } | Control::Send { to } if *to == me),
    );
    assert_eq!(
        reply.payload,
        Some(tuple(vec![atom("echo"), atom("hello")]))
    );
}

#[test]
fn handshake_with_a_beam_node_as_acceptor() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let listener = TcpListener::bind(loopback_any()).unwrap();
    let alive = erlang::unique_name("rs");
    let ours = Manual::new(&alive, "sesame");
    let _registration = EpmdClient::new(server.address(), Duration::from_secs(10))
        .register(&NodeEntry::new(
            &alive,
            listener.local_addr().unwrap().port(),
            false,
        ))
        .unwrap();

    let beam_alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(
        &beam_alive,
        "sesame",
        server.address().port(),
        &format!(
            "{{echo, '{}'}} ! {{self(), ping}}, \
             receive R -> io:format(\"got ~p~n\", [R]) after 20000 -> io:format(\"got timeout~n\") end",
            ours.name
        ),
    );
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(erlang::WAIT)).unwrap();
    let peer = handshake::accept(&mut stream, &ours.local(), |_| Status::Ok).expect("handshake");
    assert_eq!(peer.name, format!("{beam_alive}@{}", erlang::short_host()));
    assert!(peer.is_visible(), "a normal BEAM node publishes itself");

    let request = receive_matching(
        &mut stream,
        |m| matches!(&m.control, Control::RegSend { to, .. } if to.as_str() == "echo"),
    );
    let Some(Term::Tuple(body)) = request.payload else {
        panic!("expected {{From, ping}}, got {:?}", request.payload)
    };
    let Term::Pid(from) = body.elements[0].clone() else {
        panic!("expected a pid first, got {body:?}")
    };
    assert_eq!(body.elements[1], atom("ping"));
    send(
        &mut stream,
        &Control::SendSender {
            from: ours.pid(1),
            to: from,
        },
        Some(&atom("pong")),
    );
    assert_eq!(beam.expect_line("got "), "got pong");
}

#[test]
fn wrong_cookie_is_refused_when_we_connect() {
    let logs = log_capture::install();
    let server = NameServer::bind(loopback_any()).unwrap();
    let beam_alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(&beam_alive, "right", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    let beam_name = format!("{beam_alive}@{}", erlang::short_host());
    let ours = Manual::new(&erlang::unique_name("rs"), "wrong");

    match ours.connect(server.address(), &beam_name) {
        Err(DistError::WrongCookie { peer }) => assert_eq!(peer, beam_name),
        other => panic!("a wrong cookie was not refused: {other:?}"),
    }
    let lines = logs.lines_at(log::Level::Error, &[&beam_name]);
    assert_eq!(
        lines.len(),
        1,
        "one clear log line naming the peer: {lines:?}"
    );
    assert!(lines[0].contains("cookie"));
}

#[test]
fn wrong_cookie_is_refused_when_beam_connects() {
    let logs = log_capture::install();
    let server = NameServer::bind(loopback_any()).unwrap();
    let listener = TcpListener::bind(loopback_any()).unwrap();
    let alive = erlang::unique_name("rs");
    let ours = Manual::new(&alive, "right");
    let _registration = EpmdClient::new(server.address(), Duration::from_secs(10))
        .register(&NodeEntry::new(
            &alive,
            listener.local_addr().unwrap().port(),
            false,
        ))
        .unwrap();
    let beam_alive = erlang::unique_name("beam");
    let beam_name = format!("{beam_alive}@{}", erlang::short_host());
    let beam = erlang::beam_node(
        &beam_alive,
        "wrong",
        server.address().port(),
        &format!("io:format(\"ping ~p~n\", [net_adm:ping('{}')])", ours.name),
    );
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(erlang::WAIT)).unwrap();
    match handshake::accept(&mut stream, &ours.local(), |_| Status::Ok) {
        Err(DistError::WrongCookie { peer }) => assert_eq!(peer, beam_name),
        other => panic!("a wrong cookie was not refused: {other:?}"),
    }
    drop(stream);
    assert_eq!(beam.expect_line("ping "), "ping pang");
    let lines = logs.lines_at(log::Level::Error, &[&beam_name]);
    assert_eq!(
        lines.len(),
        1,
        "one clear log line naming the peer: {lines:?}"
    );
}

#[test]
fn a_visible_connection_gets_rex_and_global_traffic() {
    // What a published node receives on connect (the facts page, verified again): a
    // `rex` features_request and `global_name_server` casts, which the node layer must
    // answer or tolerate.
    let server = NameServer::bind(loopback_any()).unwrap();
    let beam_alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(&beam_alive, "sesame", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    let mut ours = Manual::new(&erlang::unique_name("rs"), "sesame");
    ours.visible = true;
    let beam_name = format!("{beam_alive}@{}", erlang::short_host());
    let (mut stream, _) = ours
        .connect(server.address(), &beam_name)
        .expect("handshake");
    let rex = receive_matching(
        &mut stream,
        |m| matches!(&m.control, Control::RegSend { to, .. } if to.as_str() == "rex"),
    );
    let Some(Term::Tuple(request)) = rex.payload else {
        panic!("rex payload {:?}", rex.payload)
    };
    assert_eq!(request.elements[1], atom("features_request"));
    receive_matching(
        &mut stream,
        |m| matches!(&m.control, Control::RegSend { to, .. } if to.as_str() == "global_name_server"),
    );
}

/// Runs an acceptor of ours on a thread: returns the listener's address and the
/// thread's handshake result.
fn rust_acceptor(
    cookie: &'static str,
    decide: impl FnOnce(&handshake::SendName) -> Status + Send + 'static,
) -> (
    SocketAddr,
    String,
    std::thread::JoinHandle<Result<handshake::PeerInfo, DistError>>,
) {
    let listener = TcpListener::bind(loopback_any()).unwrap();
    let address = listener.local_addr().unwrap();
    let node = Manual::new(&erlang::unique_name("b"), cookie);
    let name = node.name.clone();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(erlang::WAIT)).unwrap();
        handshake::accept(&mut stream, &node.local(), decide)
    });
    (address, name, thread)
}

fn rust_initiate(
    address: SocketAddr,
    node: &Manual,
    peer: &str,
) -> Result<handshake::PeerInfo, DistError> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(erlang::WAIT)).unwrap();
    handshake::initiate(&mut stream, &node.local(), peer)
}

#[test]
fn handshake_between_two_rust_nodes() {
    let (address, b_name, acceptor) = rust_acceptor("shared", |_| Status::Ok);
    let a = Manual::new(&erlang::unique_name("a"), "shared");
    let at_a = rust_initiate(address, &a, &b_name).expect("initiator");
    let at_b = acceptor.join().unwrap().expect("acceptor");
    assert_eq!(
        (at_a.name.as_str(), at_b.name.as_str()),
        (b_name.as_str(), a.name.as_str())
    );
    assert_eq!(at_b.creation, a.creation);
}

#[test]
fn wrong_cookie_between_rust_nodes_is_refused_on_both_sides() {
    let (address, b_name, acceptor) = rust_acceptor("one", |_| Status::Ok);
    let a = Manual::new(&erlang::unique_name("a"), "other");
    let at_a = rust_initiate(address, &a, &b_name);
    let at_b = acceptor.join().unwrap();
    assert!(
        matches!(at_b, Err(DistError::WrongCookie { ref peer }) if *peer == a.name),
        "{at_b:?}"
    );
    assert!(
        matches!(at_a, Err(DistError::WrongCookie { ref peer }) if *peer == b_name),
        "{at_a:?}"
    );
}

#[test]
fn simultaneous_connect_keeps_the_attempt_of_the_greater_name() {
    // "ok_simultaneous: ... A's name is greater than B's"; "nok: ... B's name is
    // greater than A's".
    assert_eq!(handshake::simultaneous_status("b@h", "a@h"), Status::Nok);
    assert_eq!(
        handshake::simultaneous_status("a@h", "b@h"),
        Status::OkSimultaneous
    );

    // B (acceptor) has its own attempt under way and a greater name: A is told `nok`.
    let (address, b_name, acceptor) = rust_acceptor("c", |name| {
        handshake::simultaneous_status("zzz@host", &name.name)
    });
    let a = Manual::new(&erlang::unique_name("a"), "c");
    match rust_initiate(address, &a, &b_name) {
        Err(DistError::Refused { status, .. }) => assert_eq!(status, "nok"),
        other => panic!("expected nok, got {other:?}"),
    }
    assert!(matches!(
        acceptor.join().unwrap(),
        Err(DistError::Refused { .. })
    ));

    // B's name is smaller: A is told `ok_simultaneous` and the handshake completes.
    let (address, b_name, acceptor) =
        rust_acceptor("c", |name| handshake::simultaneous_status("", &name.name));
    rust_initiate(address, &a, &b_name).expect("ok_simultaneous continues");
    acceptor.join().unwrap().expect("acceptor completes");
}

#[test]
fn a_peer_without_the_mandatory_flags_is_refused() {
    let (address, b_name, acceptor) = rust_acceptor("c", |_| Status::Ok);
    let a = Manual::new(&erlang::unique_name("a"), "c");
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(erlang::WAIT)).unwrap();
    let mut local = a.local();
    local.flags = flags::MANDATORY_25; // no UNLINK_ID, no V4_NC
    match handshake::initiate(&mut stream, &local, &b_name) {
        Err(DistError::Refused { status, .. }) => assert_eq!(status, "not_allowed"),
        other => panic!("expected not_allowed, got {other:?}"),
    }
    match acceptor.join().unwrap() {
        Err(DistError::MissingFlags { missing, .. }) => {
            assert_eq!(missing, flags::UNLINK_ID | flags::V4_NC)
        }
        other => panic!("expected MissingFlags, got {other:?}"),
    }
}

#[test]
fn an_oversized_frame_from_beam_is_a_connection_error() {
    use otp_threads::dist::frame;
    let server = NameServer::bind(loopback_any()).unwrap();
    let beam_alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(
        &beam_alive,
        "sesame",
        server.address().port(),
        "register(big, self()), io:format(\"ready~n\"), \
         receive {From, N} -> From ! binary:copy(<<0>>, N) end, receive stop -> ok end",
    );
    beam.expect_line("ready");
    let ours = Manual::new(&erlang::unique_name("rs"), "sesame");
    let beam_name = format!("{beam_alive}@{}", erlang::short_host());
    let (mut stream, _) = ours.connect(server.address(), &beam_name).unwrap();
    let me = ours.pid(1);
    let size: i32 = 1 << 20;
    send(
        &mut stream,
        &Control::RegSend {
            from: me.clone(),
            to: Atom::from("big"),
        },
        Some(&tuple(vec![Term::from(me), size.to_term()])),
    );
    let limit = 64 * 1024;
    loop {
        match frame::read_frame(&mut stream, limit) {
            Ok(frame::Frame::Tick) => continue,
            Ok(frame::Frame::Data(body)) => assert!(body.len() <= limit),
            Err(DistError::FrameTooLarge {
                size: announced,
                limit: l,
            }) => {
                assert!(announced > size as u64);
                assert_eq!(l, limit);
                break;
            }
            Err(other) => panic!("expected FrameTooLarge, got {other:?}"),
        }
    }
}

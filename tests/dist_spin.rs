//! The spinning waits of distribution ([`NodeBuilder::reply_spin`],
//! [`NodeBuilder::reader_spin`]): a connection's reader makes the shared socket
//! non-blocking while it polls for the next frame, so a writer on the same socket can
//! be refused for want of buffer space meanwhile (the unit test in
//! `src/dist/node/connection.rs` forces that refusal). These scenarios check the whole
//! path: big messages cross whole and in order while small frames keep the reader
//! spinning, and calls work with the spins off.
//!
//! Two nodes of this process, joined through our own name server; no Erlang needed.

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use node_support::{OurNode, Seen, next_seen, probe};
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, Term, ToTerm};

fn name_server() -> NameServer {
    NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap()
}

/// Two MiB whose bytes say which message they belong to.
fn big_payload(index: u8) -> Term {
    let bytes: Vec<u8> = (0..2 * 1024 * 1024)
        .map(|offset: u32| index ^ (offset % 251) as u8)
        .collect();
    Term::from(eetf::Binary::from(bytes))
}

#[test]
fn large_messages_arrive_whole_and_in_order_while_the_reader_spins_between_small_frames() {
    let server = name_server();
    // The longest reader spin: the socket is non-blocking for most of the run, as a
    // stream of small casts keeps arriving at `sender`.
    let sender = OurNode::start_with(&erlang::unique_name("big"), server.address(), |b| {
        b.cookie("spin").reader_spin(Duration::from_millis(10))
    });
    let receiver = OurNode::start(&erlang::unique_name("sink"), "spin", server.address());
    let (sender_probe, sender_seen) = probe(&sender, Some("small_sink"));
    let (receiver_probe, receiver_seen) = probe(&receiver, Some("big_sink"));
    const BIG: u8 = 40;
    let big_sent = std::sync::atomic::AtomicBool::new(false);
    let small_sent = thread::scope(|scope| {
        let receiver_node = receiver.node().clone();
        let from = receiver.runtime().root_pid();
        let to = sender_probe.pid();
        let big_sent = &big_sent;
        // Paced, so that the sender's reader is mostly between frames, spinning with
        // the socket non-blocking, while the big writes fill the socket's buffer.
        let smalls = scope.spawn(move || {
            let mut sent = 0u32;
            while !big_sent.load(std::sync::atomic::Ordering::Acquire) {
                receiver_node.send(from, to, &sent).unwrap();
                sent += 1;
                thread::sleep(Duration::from_micros(300));
            }
            sent
        });
        for index in 0..BIG {
            sender
                .node()
                .send(
                    sender.runtime().root_pid(),
                    receiver_probe.pid(),
                    &big_payload(index),
                )
                .unwrap();
        }
        big_sent.store(true, std::sync::atomic::Ordering::Release);
        smalls.join().unwrap()
    });
    for index in 0..BIG {
        match next_seen(&receiver_seen) {
            Seen::Message(term) => assert!(
                term == big_payload(index),
                "message {index} arrived changed or out of order"
            ),
            other => panic!("expected big message {index}, saw {other:?}"),
        }
    }
    for i in 0..small_sent {
        match next_seen(&sender_seen) {
            Seen::Message(term) => assert_eq!(term, i.to_term(), "small message {i}"),
            other => panic!("expected small message {i}, saw {other:?}"),
        }
    }
}

#[test]
fn calls_work_with_both_spins_off() {
    let server = name_server();
    let caller = OurNode::start_with(&erlang::unique_name("park"), server.address(), |b| {
        b.cookie("spin")
            .reply_spin(Duration::ZERO)
            .reader_spin(Duration::ZERO)
    });
    let callee = OurNode::start_with(&erlang::unique_name("parked"), server.address(), |b| {
        b.cookie("spin")
            .reply_spin(Duration::ZERO)
            .reader_spin(Duration::ZERO)
    });
    let (_probe, _seen) = probe(&callee, Some("echo"));
    for i in 0..100i32 {
        let reply: (Atom, i32) = caller
            .node()
            .call(
                ("echo", callee.name().as_str()),
                &i,
                Duration::from_secs(30),
            )
            .unwrap();
        assert_eq!(reply, (Atom::from("got"), i));
    }
}

//! Control messages: every form we handle encodes and decodes back to itself, the
//! forms real BEAM sends (link, unlink, monitors by pid and name, exit/2, alias sends)
//! decode, and the forms we send make BEAM see `'EXIT'`, `'DOWN'` and alias messages.
//!
//! Ports erts' `erl_dist_protocol.md` "Protocol between Connected Nodes" (control
//! message tuples 1 … 36, the PAYLOAD_ forms of OTP 22, UNLINK_ID / UNLINK_ID_ACK of
//! the new link protocol, ALIAS_SEND of OTP 24).

#[path = "support/dist.rs"]
mod dist_support;
#[path = "support/erlang.rs"]
mod erlang;

use std::net::SocketAddr;

use dist_support::{Manual, receive, send};
use otp_threads::dist::control::{self, Control, ProcessRef, WirePid, WireRef};
use otp_threads::dist::eetf;
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, DistError, Term, ToTerm};

fn atom(name: &str) -> Term {
    Atom::from(name).to_term()
}

fn pid(node: &str, id: u32) -> WirePid {
    eetf::Pid::new(node, id, 0, 7)
}

fn reference(node: &str) -> WireRef {
    eetf::Reference {
        node: eetf::Atom::from(node),
        id: vec![1, 2, 3],
        creation: 7,
    }
}

fn every_form() -> Vec<(Control, Option<Term>)> {
    let a = pid("a@h", 1);
    let b = pid("b@h", 2);
    let r = reference("b@h");
    let reason = Term::from(eetf::Tuple::from(vec![atom("shutdown"), atom("x")]));
    vec![
        (
            Control::Link {
                from: a.clone(),
                to: b.clone(),
            },
            None,
        ),
        (Control::Send { to: b.clone() }, Some(atom("m"))),
        (
            Control::Exit {
                from: a.clone(),
                to: b.clone(),
                reason: reason.clone(),
            },
            None,
        ),
        (
            Control::RegSend {
                from: a.clone(),
                to: Atom::from("name"),
            },
            Some(atom("m")),
        ),
        (
            Control::Exit2 {
                from: a.clone(),
                to: b.clone(),
                reason: reason.clone(),
            },
            None,
        ),
        (
            Control::MonitorP {
                from: a.clone(),
                to: ProcessRef::Pid(b.clone()),
                reference: r.clone(),
            },
            None,
        ),
        (
            Control::MonitorP {
                from: a.clone(),
                to: ProcessRef::Name(Atom::from("srv")),
                reference: r.clone(),
            },
            None,
        ),
        (
            Control::DemonitorP {
                from: a.clone(),
                to: ProcessRef::Pid(b.clone()),
                reference: r.clone(),
            },
            None,
        ),
        (
            Control::MonitorPExit {
                from: ProcessRef::Name(Atom::from("srv")),
                to: a.clone(),
                reference: r.clone(),
                reason: reason.clone(),
            },
            None,
        ),
        (
            Control::SendSender {
                from: a.clone(),
                to: b.clone(),
            },
            Some(atom("m")),
        ),
        (
            Control::PayloadExit {
                from: a.clone(),
                to: b.clone(),
            },
            Some(reason.clone()),
        ),
        (
            Control::PayloadExit2 {
                from: a.clone(),
                to: b.clone(),
            },
            Some(reason.clone()),
        ),
        (
            Control::PayloadMonitorPExit {
                from: ProcessRef::Pid(b.clone()),
                to: a.clone(),
                reference: r.clone(),
            },
            Some(reason),
        ),
        (
            Control::AliasSend {
                from: a.clone(),
                alias: r.clone(),
            },
            Some(atom("m")),
        ),
        (
            Control::UnlinkId {
                id: u64::MAX,
                from: a.clone(),
                to: b.clone(),
            },
            None,
        ),
        (
            Control::UnlinkIdAck {
                id: 1,
                from: b,
                to: a,
            },
            None,
        ),
    ]
}

#[test]
fn every_control_form_round_trips() {
    for (control, payload) in every_form() {
        let body = control::encode(&control, payload.as_ref()).unwrap();
        assert_eq!(body[0], control::PASS_THROUGH);
        let decoded = control::decode(&body).unwrap();
        assert_eq!(decoded.control, control);
        assert_eq!(decoded.payload, payload);
    }
}

#[test]
fn a_payload_mismatch_is_refused_when_encoding() {
    let send = Control::Send { to: pid("b@h", 1) };
    assert!(control::encode(&send, None).is_err());
    let link = Control::Link {
        from: pid("a@h", 1),
        to: pid("b@h", 1),
    };
    assert!(control::encode(&link, Some(&atom("x"))).is_err());
}

#[test]
fn malformed_control_messages_are_typed_errors() {
    let link = Control::Link {
        from: pid("a@h", 1),
        to: pid("b@h", 1),
    };
    let good = control::encode(&link, None).unwrap();
    // Every truncation is an error, never a panic.
    for len in 0..good.len() {
        assert!(
            control::decode(&good[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
    // Trailing garbage after a payload-less control message.
    let mut trailing = good.clone();
    trailing.push(97);
    assert!(matches!(
        control::decode(&trailing),
        Err(DistError::Malformed { .. })
    ));
    // An atom-cache distribution header (never negotiated).
    assert!(matches!(
        control::decode(&[131, 68, 0]),
        Err(DistError::UnsupportedTerm(_))
    ));
    // A LINK whose pids are atoms.
    let bad = Term::from(eetf::Tuple::from(vec![
        1i32.to_term(),
        atom("x"),
        atom("y"),
    ]));
    let mut body = vec![control::PASS_THROUGH];
    body.extend(otp_threads::dist::term::encode(&bad).unwrap());
    assert!(matches!(
        control::decode(&body),
        Err(DistError::Mismatch { .. })
    ));
    // UNLINK_ID with id 0 (the valid range is 1 ..= 2^64-1).
    let zero = Term::from(eetf::Tuple::from(vec![
        35i32.to_term(),
        0i32.to_term(),
        Term::from(pid("a@h", 1)),
        Term::from(pid("b@h", 1)),
    ]));
    let mut body = vec![control::PASS_THROUGH];
    body.extend(otp_threads::dist::term::encode(&zero).unwrap());
    assert!(control::decode(&body).is_err());
}

#[test]
fn unknown_operations_decode_as_other() {
    let node_link = Term::from(eetf::Tuple::from(vec![5i32.to_term()]));
    let mut body = vec![control::PASS_THROUGH];
    body.extend(otp_threads::dist::term::encode(&node_link).unwrap());
    assert_eq!(
        control::decode(&body).unwrap().control,
        Control::Other {
            op: 5,
            elements: vec![]
        }
    );
}

#[test]
fn control_messages_from_and_to_a_beam_node() {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let beam_alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(
        &beam_alive,
        "sesame",
        server.address().port(),
        "process_flag(trap_exit, true), register(ctl, self()), io:format(\"ready~n\"), \
         P = receive {hello, Pid} -> Pid end, \
         link(P), unlink(P), \
         R1 = monitor(process, P), demonitor(R1), \
         R2 = monitor(process, {srv, node(P)}), demonitor(R2), \
         exit(P, boom), \
         A = alias(), P ! {alias, A}, \
         _R3 = monitor(process, P), link(P), \
         Show = fun() -> receive M -> io:format(\"got ~p~n\", [M]) after 20000 -> io:format(\"got timeout~n\") end end, \
         Show(), Show(), Show()",
    );
    beam.expect_line("ready");
    let ours = Manual::new(&erlang::unique_name("rs"), "sesame");
    let beam_name = format!("{beam_alive}@{}", erlang::short_host());
    let (mut stream, _) = ours.connect(server.address(), &beam_name).unwrap();
    let p = ours.pid(1);
    send(
        &mut stream,
        &Control::RegSend {
            from: p.clone(),
            to: Atom::from("ctl"),
        },
        Some(&Term::from(eetf::Tuple::from(vec![
            atom("hello"),
            Term::from(p.clone()),
        ]))),
    );

    let Control::Link { from: b, to } = receive(&mut stream).control else {
        panic!("expected LINK")
    };
    assert_eq!(to, p);
    let Control::UnlinkId {
        id: unlink_id,
        from,
        to,
    } = receive(&mut stream).control
    else {
        panic!("expected UNLINK_ID")
    };
    assert_eq!((from.clone(), to.clone()), (b.clone(), p.clone()));
    // The ack goes out before any other signal to the unlinker, as the protocol says.
    send(
        &mut stream,
        &Control::UnlinkIdAck {
            id: unlink_id,
            from: p.clone(),
            to: b.clone(),
        },
        None,
    );

    let Control::MonitorP {
        to: ProcessRef::Pid(target),
        reference: r1,
        ..
    } = receive(&mut stream).control
    else {
        panic!("expected MONITOR_P by pid")
    };
    assert_eq!(target, p);
    let Control::DemonitorP { reference, .. } = receive(&mut stream).control else {
        panic!("expected DEMONITOR_P")
    };
    assert_eq!(reference, r1);
    let Control::MonitorP {
        to: ProcessRef::Name(name),
        ..
    } = receive(&mut stream).control
    else {
        panic!("expected MONITOR_P by name")
    };
    assert_eq!(name.as_str(), "srv");
    assert!(matches!(
        receive(&mut stream).control,
        Control::DemonitorP {
            to: ProcessRef::Name(_),
            ..
        }
    ));
    let exit2 = receive(&mut stream);
    assert!(matches!(exit2.control, Control::PayloadExit2 { ref to, .. } if *to == p));
    assert_eq!(exit2.payload, Some(atom("boom")));
    let alias_message = receive(&mut stream);
    let Some(Term::Tuple(pair)) = alias_message.payload else {
        panic!("expected {{alias, A}}")
    };
    let Term::Reference(alias) = pair.elements[1].clone() else {
        panic!("expected a reference")
    };
    let Control::MonitorP { reference: r3, .. } = receive(&mut stream).control else {
        panic!("expected the second MONITOR_P")
    };
    assert!(matches!(receive(&mut stream).control, Control::Link { .. }));

    // Now we signal BEAM: the link breaks, the monitor fires, and a message goes to the alias.
    send(
        &mut stream,
        &Control::PayloadExit {
            from: p.clone(),
            to: b.clone(),
        },
        Some(&atom("bye")),
    );
    send(
        &mut stream,
        &Control::PayloadMonitorPExit {
            from: ProcessRef::Pid(p.clone()),
            to: b.clone(),
            reference: r3,
        },
        Some(&atom("bye")),
    );
    send(
        &mut stream,
        &Control::AliasSend {
            from: p.clone(),
            alias: *alias,
        },
        Some(&atom("via_alias")),
    );
    let exit = beam.expect_line("got ");
    assert!(
        exit.starts_with("got {'EXIT',<") && exit.ends_with(",bye}"),
        "{exit}"
    );
    let down = beam.expect_line("got ");
    assert!(
        down.starts_with("got {'DOWN',#Ref<") && down.ends_with(",bye}"),
        "{down}"
    );
    assert_eq!(beam.expect_line("got "), "got via_alias");
}

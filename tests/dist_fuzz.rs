//! Fuzz-style robustness test (no nightly): random and mutated inputs through every
//! decoder of peer bytes — the frame reader, the handshake parsers (and the handshake
//! state machines over a fake socket), the EPMD parsers, the term scan + decoder, the
//! control message decoder and the term-to-Rust conversions. Zero panics allowed;
//! every input is a bounded slice (no hangs) and every allocation is bounded by it.
//!
//! Rule ported: the project rule "every decoder of untrusted bytes has a fuzz-style
//! test"; OTP's `dist` decoding treats malformed input as a connection error.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use otp_threads_testkit::fuzz::{Mutator, Rng};

use otp_threads::Pid;
use otp_threads::dist::control::{self, Control, ProcessRef};
use otp_threads::dist::eetf;
use otp_threads::dist::epmd::{self, NodeEntry, Request};
use otp_threads::dist::frame;
use otp_threads::dist::handshake::{
    self, Challenge, ChallengeAck, ChallengeReply, LocalNode, SendName, Status,
};
use otp_threads::dist::{Atom, FromTerm, Term, ToTerm, flags, term};

/// Inputs per target group; four groups, so 4 × this in total (plus the corpus).
const INPUTS_PER_GROUP: usize = 260_000;

fn atom(name: &str) -> Term {
    Atom::from(name).to_term()
}

fn term_corpus() -> Vec<Vec<u8>> {
    let pid = eetf::Pid::new("a@h", 1, 2, 3);
    let reference = eetf::Reference {
        node: eetf::Atom::from("a@h"),
        id: vec![1, 2, 3],
        creation: 3,
    };
    let mut map = HashMap::new();
    map.insert("k".to_string(), vec![1i64, -2, i64::MAX]);
    let terms: Vec<Term> = vec![
        0u8.to_term(),
        (-1i32).to_term(),
        i64::MIN.to_term(),
        u64::MAX.to_term(),
        1.5f64.to_term(),
        true.to_term(),
        "text".to_term(),
        vec![1u8, 2, 3].to_term(),
        vec!["a".to_string(), "b".to_string()].to_term(),
        (atom("ok"), 1i32, "x").to_term(),
        map.to_term(),
        Some(5i32).to_term(),
        Term::from(pid.clone()),
        Term::from(reference.clone()),
        Term::from(eetf::ImproperList::from((vec![atom("a")], atom("b")))),
        Term::from(eetf::ByteList::from("chars")),
        Term::from(eetf::BitBinary::from((vec![0xff, 0x80], 3))),
        Term::from(eetf::ExternalFun::from(("m", "f", 2))),
        Term::from(eetf::Port {
            node: eetf::Atom::from("a@h"),
            id: 9,
            creation: 3,
        }),
        Term::from(eetf::Tuple::from(vec![
            Term::from(eetf::List::from(vec![Term::from(eetf::Tuple::from(vec![
                atom("deep"),
            ]))])),
            Term::from(eetf::Map::from([(atom("k"), atom("v"))])),
        ])),
    ];
    terms.iter().map(|t| term::encode(t).unwrap()).collect()
}

fn control_corpus() -> Vec<Vec<u8>> {
    let a = eetf::Pid::new("a@h", 1, 0, 7);
    let b = eetf::Pid::new("b@h", 2, 0, 7);
    let r = eetf::Reference {
        node: eetf::Atom::from("b@h"),
        id: vec![4, 5, 6],
        creation: 7,
    };
    let forms: Vec<(Control, Option<Term>)> = vec![
        (
            Control::Link {
                from: a.clone(),
                to: b.clone(),
            },
            None,
        ),
        (Control::Send { to: b.clone() }, Some(atom("m"))),
        (
            Control::RegSend {
                from: a.clone(),
                to: Atom::from("n"),
            },
            Some(atom("m")),
        ),
        (
            Control::Exit2 {
                from: a.clone(),
                to: b.clone(),
                reason: atom("r"),
            },
            None,
        ),
        (
            Control::MonitorP {
                from: a.clone(),
                to: ProcessRef::Name(Atom::from("n")),
                reference: r.clone(),
            },
            None,
        ),
        (
            Control::PayloadMonitorPExit {
                from: ProcessRef::Pid(b.clone()),
                to: a.clone(),
                reference: r.clone(),
            },
            Some(atom("r")),
        ),
        (
            Control::SendSender {
                from: a.clone(),
                to: b.clone(),
            },
            Some(vec![1u8; 40].to_term()),
        ),
        (
            Control::AliasSend {
                from: a.clone(),
                alias: r,
            },
            Some(atom("m")),
        ),
        (
            Control::UnlinkId {
                id: 1 << 40,
                from: a,
                to: b,
            },
            None,
        ),
    ];
    forms
        .iter()
        .map(|(c, p)| control::encode(c, p.as_ref()).unwrap())
        .collect()
}

fn handshake_corpus() -> Vec<Vec<u8>> {
    let name = SendName {
        flags: flags::advertised(true),
        creation: 5,
        name: "a@h".into(),
    };
    let challenge = Challenge {
        flags: flags::advertised(false),
        challenge: 42,
        creation: 6,
        name: "b@h".into(),
    };
    let mut all = vec![
        name.encode().unwrap(),
        Status::Ok.encode(),
        Status::Alive.encode(),
        challenge.encode().unwrap(),
        ChallengeReply {
            challenge: 7,
            digest: [9; 16],
        }
        .encode(),
        ChallengeAck { digest: [3; 16] }.encode(),
        Request::Alive2(NodeEntry::new("n", 1, true))
            .encode()
            .unwrap(),
        Request::PortPlease2("n".into()).encode().unwrap(),
        epmd::encode_port2_response(Some(&NodeEntry::new("n", 2, false))).unwrap(),
        epmd::encode_alive2_response(0, 9, true),
        epmd::encode_names_response(4369, &[("n".into(), 3)]),
    ];
    // Whole acceptor-side conversations: send_name, then a challenge reply, u16-framed.
    let mut conversation = Vec::new();
    for body in [
        name.encode().unwrap(),
        ChallengeReply {
            challenge: 1,
            digest: [0; 16],
        }
        .encode(),
    ] {
        conversation.extend_from_slice(&(body.len() as u16).to_be_bytes());
        conversation.extend_from_slice(&body);
    }
    all.push(conversation);
    all
}

fn frame_corpus() -> Vec<Vec<u8>> {
    let mut wire = Vec::new();
    frame::write_frame(&mut wire, &control_corpus()[1]).unwrap();
    frame::write_tick(&mut wire).unwrap();
    frame::write_frame(&mut wire, b"x").unwrap();
    vec![wire, vec![0, 0, 0, 0], vec![0, 0, 0, 1, 112]]
}

/// A socket whose reads come from the input and whose writes vanish.
struct FakeSocket<'a> {
    input: &'a [u8],
}

impl Read for FakeSocket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for FakeSocket<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn drive_terms(input: &[u8]) -> bool {
    let decoded = term::decode(input);
    let accepted = decoded.is_ok();
    if let Ok(term) = decoded {
        // Conversions must not panic on any shape either.
        let _ = String::from_term(term.clone());
        let _ = Vec::<i64>::from_term(term.clone());
        let _ = Vec::<u8>::from_term(term.clone());
        let _ = HashMap::<String, Vec<i64>>::from_term(term.clone());
        let _ = <(Atom, i32, String)>::from_term(term.clone());
        let _ = Option::<f64>::from_term(term.clone());
        let _ = Pid::from_term(term.clone());
        let _ = u64::from_term(term.clone());
        let _ = bool::from_term(term.clone());
        // What decodes must encode again.
        term::encode(&term).expect("a decoded term encodes");
    }
    let _ = term::decode_prefix(input);
    // Differential: whatever eetf decodes from bytes that pass the scan, our decoder
    // decodes to the same term. (We may accept more: real Latin-1 atoms, which eetf
    // reads as UTF-8.)
    if let Ok(len) = term::scan(input)
        && let Ok(theirs) = Term::decode(&input[..len])
    {
        let ours = term::decode_prefix(input).map(|(term, _)| term);
        assert_eq!(ours.ok().as_ref(), Some(&theirs), "input {input:02x?}");
    }
    accepted
}

fn drive_control(input: &[u8]) -> bool {
    match control::decode(input) {
        Ok(message) => {
            let _ = control::encode(&message.control, message.payload.as_ref());
            true
        }
        Err(_) => false,
    }
}

fn drive_handshake(input: &[u8]) -> bool {
    let accepted = [
        SendName::decode(input).is_ok(),
        Status::decode(input).is_ok(),
        Challenge::decode(input).is_ok(),
        ChallengeReply::decode(input).is_ok(),
        ChallengeAck::decode(input).is_ok(),
    ]
    .contains(&true);
    let _ = Request::decode(input);
    let _ = epmd::decode_alive2_response(input);
    let _ = epmd::decode_port2_response(input);
    let _ = epmd::decode_names_response(input);
    let local = LocalNode {
        name: "us@h",
        creation: 1,
        flags: flags::advertised(false),
        cookie: "c",
    };
    let _ = handshake::accept(&mut FakeSocket { input }, &local, |_| Status::Ok);
    let _ = handshake::initiate(&mut FakeSocket { input }, &local, "b@h");
    accepted
}

fn drive_frames(input: &[u8]) -> bool {
    let mut reader = input;
    let mut accepted = false;
    while let Ok(frame) = frame::read_frame(&mut reader, 4096) {
        if let frame::Frame::Data(body) = frame {
            assert!(body.len() <= 4096);
            accepted |= drive_control(&body);
        }
    }
    accepted
}

/// A target group: its name, its corpus of valid inputs, and its driver (`true` when
/// the input was accepted).
type Group = (&'static str, Vec<Vec<u8>>, fn(&[u8]) -> bool);

#[test]
fn a_million_random_and_mutated_inputs_cause_no_panic() {
    let groups: [Group; 4] = [
        ("term", term_corpus(), drive_terms),
        ("control", control_corpus(), drive_control),
        ("handshake", handshake_corpus(), drive_handshake),
        ("frame", frame_corpus(), drive_frames),
    ];
    let started = std::time::Instant::now();
    let mut total = 0usize;
    let mut panics = Vec::new();
    for (index, (name, corpus, drive)) in groups.iter().enumerate() {
        // The corpus itself must decode (the mutations start from valid input).
        for entry in corpus {
            drive(entry);
        }
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1));
        let mutator = Mutator::new(corpus).max_len(512);
        let mut accepted = 0usize;
        for _ in 0..INPUTS_PER_GROUP {
            let input = mutator.next_input(&mut rng);
            total += 1;
            match catch_unwind(AssertUnwindSafe(|| drive(&input))) {
                Ok(true) => accepted += 1,
                Ok(false) => {}
                Err(_) => panics.push((*name, input)),
            }
        }
        eprintln!("{name}: {accepted} of {INPUTS_PER_GROUP} mutated inputs still decoded");
        // The mutations must reach past the first checks, or the test proves little.
        assert!(
            accepted > INPUTS_PER_GROUP / 100,
            "{name}: only {accepted} inputs decoded"
        );
    }
    eprintln!("{total} inputs in {:?}", started.elapsed());
    assert!(total >= 1_000_000);
    assert!(
        panics.is_empty(),
        "{} inputs panicked; first: {:?}",
        panics.len(),
        panics.first()
    );
}

//! Fuzz-style robustness test (no nightly) for the decoders this node applies to
//! other nodes' rex and spawn traffic: the `SPAWN_REQUEST` reader (from whole frame
//! bodies through the control decoder), the `process_info` answer reader, and the
//! rpc built-ins given random argument terms. Zero panics allowed; every answer is a
//! term or a typed error.
//!
//! Rule ported: the project rule "every decoder of untrusted bytes has a fuzz-style
//! test"; BEAM answers a malformed request with `badarg`, never a crash.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use otp_threads::dist::control::{self, Control};
use otp_threads::dist::eetf;
use otp_threads::dist::node::{decode_process_info, decode_spawn_request};
use otp_threads::dist::{Atom, Node, Term, ToTerm, term};
use otp_threads::{NodeName, Pid, Runtime};
use otp_threads_testkit::fuzz::{Mutator, Rng};

/// Inputs per target; three byte-level targets and one term-level one.
const INPUTS_PER_TARGET: usize = 100_000;

fn atom(name: &str) -> Term {
    Atom::from(name).to_term()
}

const WORDS: &[&str] = &[
    "link",
    "monitor",
    "priority",
    "reply",
    "undefined",
    "process",
    "status",
    "links",
    "monitors",
    "registered_name",
    "current_function",
    "initial_call",
    "reductions",
    "message_queue_len",
    "trap_exit",
    "monitored_by",
    "dictionary",
    "total",
    "erpc",
    "execute_call",
    "badrpc",
    "calc",
    "visible",
    "hidden",
    "specs",
    "true",
    "false",
];

/// A random term of bounded depth built from the words above, small and big
/// integers, pids, references, lists (also improper), tuples and binaries.
fn random_term(rng: &mut Rng, depth: usize) -> Term {
    let leaf = depth == 0;
    match rng.below(if leaf { 6 } else { 10 }) {
        0 => atom(WORDS[rng.below(WORDS.len())]),
        1 => (rng.next_u64() as i64 >> rng.below(64)).to_term(),
        2 => Term::from(eetf::Pid::new(
            if rng.below(2) == 0 { "rs@h" } else { "other@h" },
            rng.next_u64() as u32 % 64,
            0,
            1,
        )),
        3 => Term::from(eetf::Reference {
            node: eetf::Atom::from("other@h"),
            id: vec![rng.next_u64() as u32, 1, 2],
            creation: 1,
        }),
        4 => "bin".to_term(),
        5 => Term::from(eetf::List::nil()),
        6 | 7 => Term::from(eetf::List::from(
            (0..rng.below(5))
                .map(|_| random_term(rng, depth - 1))
                .collect::<Vec<_>>(),
        )),
        8 => Term::from(eetf::Tuple::from(
            (0..rng.below(6))
                .map(|_| random_term(rng, depth - 1))
                .collect::<Vec<_>>(),
        )),
        _ => Term::from(eetf::ImproperList::from((
            vec![random_term(rng, depth - 1)],
            random_term(rng, depth - 1),
        ))),
    }
}

fn spawn_request_corpus() -> Vec<Vec<u8>> {
    let reference = eetf::Reference {
        node: eetf::Atom::from("other@h"),
        id: vec![1, 2, 3],
        creation: 1,
    };
    let from = eetf::Pid::new("other@h", 7, 0, 1);
    let request = |op: i32, mfa: Term, options: Term, args: Term| {
        let mut elements = vec![
            Term::from(reference.clone()),
            Term::from(from.clone()),
            Term::from(from.clone()),
            mfa,
            options,
        ];
        if op == 30 {
            elements.push(atom("token"));
        }
        control::encode(&Control::Other { op, elements }, Some(&args)).unwrap()
    };
    vec![
        request(
            29,
            (atom("erpc"), atom("execute_call"), 4i32).to_term(),
            vec![
                atom("monitor"),
                (atom("reply"), atom("error_only")).to_term(),
            ]
            .to_term(),
            vec![
                Term::from(reference.clone()),
                atom("mymod"),
                atom("add"),
                vec![1i32, 2].to_term(),
            ]
            .to_term(),
        ),
        request(
            30,
            (atom("m"), atom("f"), 0i32).to_term(),
            vec![atom("link")].to_term(),
            Term::from(eetf::List::nil()),
        ),
        request(
            29,
            (atom("m"), atom("f"), 1i32).to_term(),
            vec![(atom("monitor"), Term::from(eetf::List::nil())).to_term()].to_term(),
            vec![atom("x")].to_term(),
        ),
    ]
}

fn process_info_corpus() -> Vec<Vec<u8>> {
    let pid = Term::from(eetf::Pid::new("other@h", 7, 0, 1));
    let answers = [
        atom("undefined"),
        vec![
            (atom("registered_name"), atom("calc")).to_term(),
            (atom("status"), atom("waiting")).to_term(),
            (atom("message_queue_len"), 3i32).to_term(),
            (atom("links"), vec![pid.clone()]).to_term(),
            (
                atom("monitors"),
                vec![(atom("process"), pid.clone()).to_term()],
            )
                .to_term(),
            (atom("monitored_by"), vec![pid.clone()]).to_term(),
            (atom("current_function"), (atom("m"), atom("f"), 1i32)).to_term(),
            (atom("initial_call"), (atom("m"), atom("init"), 1i32)).to_term(),
            (atom("reductions"), 12345i64).to_term(),
            (atom("trap_exit"), true).to_term(),
        ]
        .to_term(),
        (atom("badrpc"), atom("nodedown")).to_term(),
    ];
    answers
        .iter()
        .map(|answer| term::encode(answer).unwrap())
        .collect()
}

/// Random bytes one time in four, else a corpus entry with one to four edits.
fn next_input(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    Mutator::new(corpus).max_len(1024).next_input(rng)
}

#[test]
fn random_and_mutated_spawn_requests_and_process_info_answers_cause_no_panic() {
    let mut rng = Rng::new(0x005e_ed0f_4ec5);
    let pid = Pid::from_parts(NodeName::new("other@h"), 7, 0, 1);
    let mut decoded = [0usize; 2];
    // SPAWN_REQUEST frames: through the control decoder, then the request reader.
    let corpus = spawn_request_corpus();
    for _ in 0..INPUTS_PER_TARGET {
        let input = next_input(&mut rng, &corpus);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(message) = control::decode(&input)
                && let Control::Other {
                    op: 29 | 30,
                    elements,
                } = message.control
            {
                return decode_spawn_request(elements, message.payload).is_ok();
            }
            false
        }));
        match outcome {
            Ok(true) => decoded[0] += 1,
            Ok(false) => {}
            Err(_) => panic!("spawn request reader panicked on {input:?}"),
        }
    }
    // process_info answers: bytes, then the answer reader.
    let corpus = process_info_corpus();
    for _ in 0..INPUTS_PER_TARGET {
        let input = next_input(&mut rng, &corpus);
        let outcome = catch_unwind(AssertUnwindSafe(|| match term::decode(&input) {
            Ok(answer) => decode_process_info(pid, answer).is_ok(),
            Err(_) => false,
        }));
        match outcome {
            Ok(true) => decoded[1] += 1,
            Ok(false) => {}
            Err(_) => panic!("process_info reader panicked on {input:?}"),
        }
    }
    // Structured random terms straight into both readers.
    for _ in 0..INPUTS_PER_TARGET {
        let answer = random_term(&mut rng, 4);
        let elements: Vec<Term> = (0..rng.below(7))
            .map(|_| random_term(&mut rng, 3))
            .collect();
        let payload = (rng.below(2) == 0).then(|| random_term(&mut rng, 3));
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _ = decode_process_info(pid, answer.clone());
            let _ = decode_spawn_request(elements.clone(), payload.clone());
        }));
        assert!(
            outcome.is_ok(),
            "reader panicked on {answer} / {elements:?} / {payload:?}"
        );
    }
    // Mutation must still leave some inputs valid, or the readers were not reached.
    assert!(decoded[0] > 100, "spawn requests decoded: {}", decoded[0]);
    assert!(
        decoded[1] > 100,
        "process_info answers decoded: {}",
        decoded[1]
    );
}

#[test]
fn builtins_given_random_arguments_answer_a_term_and_never_panic() {
    let runtime = Runtime::builder().node_name("rs@h").build().unwrap();
    let node = Node::builder()
        .cookie("fuzz")
        .start(&runtime.handle())
        .unwrap();
    let _worker = runtime.handle().spawn_named("calc", Quiet).unwrap();
    let calls: &[(&str, &str)] = &[
        ("erlang", "node"),
        ("erlang", "nodes"),
        ("erlang", "processes"),
        ("erlang", "registered"),
        ("erlang", "whereis"),
        ("erlang", "is_process_alive"),
        ("erlang", "process_info"),
        ("erlang", "memory"),
        ("erlang", "system_info"),
        ("supervisor", "which_children"),
        ("supervisor", "count_children"),
        ("nomod", "nofun"),
    ];
    let mut rng = Rng::new(0xb17e_5eed);
    let local = runtime.handle().processes();
    for _ in 0..INPUTS_PER_TARGET / 10 {
        let (module, function) = calls[rng.below(calls.len())];
        let args: Vec<Term> = (0..rng.below(3))
            .map(|_| match rng.below(3) {
                // Pids of this node hit the live-process paths.
                0 if !local.is_empty() => local[rng.below(local.len())].to_term(),
                _ => random_term(&mut rng, 3),
            })
            .collect();
        let answer = catch_unwind(AssertUnwindSafe(|| {
            node.apply_rpc(module, function, args.clone())
        }));
        assert!(answer.is_ok(), "{module}:{function}({args:?}) panicked");
    }
    node.shutdown();
    runtime.shutdown(Duration::from_secs(10)).unwrap();
}

/// A worker that does nothing (a live local process for the built-ins to describe).
struct Quiet;

impl otp_threads::Worker for Quiet {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

//! The serde bridge: `#[derive(Serialize, Deserialize)]` types to and from terms.
//!
//! Ports the external term format's data types (erts' `erl_ext_dist.md`) as an Erlang
//! or Elixir program builds them: maps with atom keys for structs, atoms and tagged
//! tuples for enum variants, `undefined` / `nil` for missing values, `{ok, V}` /
//! `{error, E}` for results, binaries and character lists for text. One test echoes
//! serde values through a real BEAM node (started by `scripts/services/erlang.sh`'s
//! helpers in `tests/support/erlang.rs`) and decodes them back equal.

#[path = "support/dist.rs"]
mod dist_support;
#[path = "support/erlang.rs"]
mod erlang;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};

use dist_support::{Manual, receive_matching, send};
use otp_threads::dist::Atom;
use otp_threads::dist::control::Control;
use otp_threads::dist::epmd::NameServer;

use otp_threads::dist::eetf;
use otp_threads::dist::term::serde::{Serde, from_term, to_term};
use otp_threads::dist::{DistError, FromTerm, Term, ToTerm, term};
use otp_threads_testkit::fuzz::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    name: String,
    count: u32,
    price: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Open,
    Held(String),
    Moved(i64, i64),
    Closed { at: u64, by: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Id(u64);

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Point(i32, i32);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ping;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: Id,
    items: Vec<Item>,
    status: Status,
    note: Option<String>,
    tags: BTreeMap<String, i32>,
    origin: Point,
    payload: Vec<u8>,
    flags: (bool, char),
    outcome: Result<u8, String>,
    big: u128,
    ping: Ping,
}

fn order() -> Order {
    Order {
        id: Id(7),
        items: vec![
            Item {
                name: "bolt".into(),
                count: 3,
                price: 0.25,
            },
            Item {
                name: "nüt ✓".into(),
                count: 0,
                price: -1e300,
            },
        ],
        status: Status::Closed {
            at: u64::MAX,
            by: Some("ops".into()),
        },
        note: None,
        tags: [("a".to_string(), 1), ("b".to_string(), -2)].into(),
        origin: Point(-1, i32::MAX),
        payload: vec![0, 1, 255],
        flags: (true, 'é'),
        outcome: Err("nope".into()),
        big: u128::MAX,
        ping: Ping,
    }
}

fn atom(name: &str) -> Term {
    Term::from(eetf::Atom::from(name))
}

fn int(value: i32) -> Term {
    Term::from(eetf::FixInteger::from(value))
}

fn binary(text: &str) -> Term {
    Term::from(eetf::Binary::from(text.as_bytes()))
}

fn tuple(elements: Vec<Term>) -> Term {
    Term::from(eetf::Tuple::from(elements))
}

fn list(elements: Vec<Term>) -> Term {
    Term::from(eetf::List::from(elements))
}

fn map(entries: Vec<(Term, Term)>) -> Term {
    Term::from(eetf::Map::from(
        entries.into_iter().collect::<HashMap<_, _>>(),
    ))
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) {
    let term = to_term(&value).unwrap();
    // Through the wire encoding too, as a peer would receive it.
    let bytes = term::encode(&term).unwrap();
    let decoded = term::decode(&bytes).unwrap();
    assert_eq!(from_term::<T>(decoded).unwrap(), value);
}

#[test]
fn nested_structs_enums_options_and_maps_round_trip() {
    round_trip(order());
    round_trip(Order {
        status: Status::Open,
        note: Some(String::new()),
        outcome: Ok(200),
        payload: Vec::new(),
        ..order()
    });
    for status in [
        Status::Open,
        Status::Held("x".into()),
        Status::Moved(i64::MIN, i64::MAX),
        Status::Closed { at: 0, by: None },
    ] {
        round_trip(status);
    }
    round_trip(vec![Some(1i8), None, Some(-1)]);
    round_trip(HashMap::from([
        (Point(1, 2), vec![Id(1)]),
        (Point(0, 0), vec![]),
    ]));
    round_trip((1u8, 2u16, 3u32, 4u64, -5i128, 6.5f32, "s".to_string()));
    round_trip([1u32, 2, 3]);
    round_trip(());
    round_trip(i128::MIN);
    round_trip(Serde(String::from("wrapped")).0);
    let wrapped = Serde(order());
    assert_eq!(
        Serde::<Order>::from_term(wrapped.to_term()).unwrap(),
        wrapped
    );
}

#[test]
fn structs_are_maps_with_atom_keys_and_variants_are_atoms_or_tagged_tuples() {
    let item = Item {
        name: "x".into(),
        count: 3,
        price: 1.5,
    };
    assert_eq!(
        to_term(&item).unwrap(),
        map(vec![
            (atom("name"), binary("x")),
            (atom("count"), int(3)),
            (
                atom("price"),
                Term::from(eetf::Float::try_from(1.5).unwrap())
            ),
        ])
    );
    assert_eq!(to_term(&Status::Open).unwrap(), atom("open"));
    assert_eq!(
        to_term(&Status::Held("k".into())).unwrap(),
        tuple(vec![atom("held"), binary("k")])
    );
    assert_eq!(
        to_term(&Status::Moved(1, 2)).unwrap(),
        tuple(vec![atom("moved"), int(1), int(2)])
    );
    assert_eq!(
        to_term(&Status::Closed { at: 5, by: None }).unwrap(),
        tuple(vec![
            atom("closed"),
            map(vec![(atom("at"), int(5)), (atom("by"), atom("undefined"))])
        ])
    );
    assert_eq!(to_term(&Id(9)).unwrap(), int(9));
    assert_eq!(to_term(&Point(1, 2)).unwrap(), tuple(vec![int(1), int(2)]));
    assert_eq!(to_term(&Ping).unwrap(), atom("Ping"));
    assert_eq!(to_term(&()).unwrap(), tuple(vec![]));
    assert_eq!(to_term(&vec![1i32, 2]).unwrap(), list(vec![int(1), int(2)]));
    assert_eq!(to_term(&None::<i32>).unwrap(), atom("undefined"));
    assert_eq!(
        to_term(&Ok::<i32, String>(1)).unwrap(),
        tuple(vec![atom("ok"), int(1)])
    );
    assert_eq!(
        to_term(&Err::<i32, String>("e".into())).unwrap(),
        tuple(vec![atom("error"), binary("e")])
    );
    assert_eq!(to_term(&'a').unwrap(), int(97));
    // Where ToTerm has a mapping too, the bridge agrees with it.
    for (ours, theirs) in [
        (to_term(&vec![1u8, 2]).unwrap(), vec![1u8, 2].to_term()),
        (to_term("t").unwrap(), "t".to_term()),
        (to_term(&Some(true)).unwrap(), Some(true).to_term()),
        (to_term(&(1i64, -2i8)).unwrap(), (1i64, -2i8).to_term()),
        (to_term(&u64::MAX).unwrap(), u64::MAX.to_term()),
        (
            to_term(&HashMap::from([(1i32, "v")])).unwrap(),
            HashMap::from([(1i32, "v")]).to_term(),
        ),
    ] {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn terms_an_erlang_node_builds_decode_into_serde_types() {
    // #{name => "bolt", count => 3, price => 2, '__struct__' => 'Elixir.Item'}:
    // a charlist name, an integer price, an Elixir struct tag.
    let elixir_item = map(vec![
        (
            atom("name"),
            Term::from(eetf::ByteList::from(b"bolt".to_vec())),
        ),
        (atom("count"), int(3)),
        (atom("price"), int(2)),
        (atom("__struct__"), atom("Elixir.Item")),
    ]);
    assert_eq!(
        from_term::<Item>(elixir_item).unwrap(),
        Item {
            name: "bolt".into(),
            count: 3,
            price: 2.0
        }
    );
    // #{<<"name">> => <<"x">>, <<"count">> => 1, <<"price">> => 0.5}, as a JSON decoder
    // on the BEAM builds it.
    let binary_keys = map(vec![
        (binary("name"), binary("x")),
        (binary("count"), int(1)),
        (
            binary("price"),
            Term::from(eetf::Float::try_from(0.5).unwrap()),
        ),
    ]);
    assert_eq!(from_term::<Item>(binary_keys).unwrap().count, 1);
    // {closed, #{at => 1}} with `by` left out, and nil for None (Elixir).
    assert_eq!(
        from_term::<Status>(tuple(vec![atom("closed"), map(vec![(atom("at"), int(1))])])).unwrap(),
        Status::Closed { at: 1, by: None }
    );
    assert_eq!(from_term::<Option<u8>>(atom("nil")).unwrap(), None);
    assert_eq!(from_term::<Status>(binary("open")).unwrap(), Status::Open);
    assert_eq!(
        from_term::<Status>(tuple(vec![atom("open")])).unwrap(),
        Status::Open
    );
    // {ok, 5} and {error, <<"why">>}.
    assert_eq!(
        from_term::<Result<u8, String>>(tuple(vec![atom("ok"), int(5)])).unwrap(),
        Ok(5)
    );
    assert_eq!(
        from_term::<Result<u8, String>>(tuple(vec![atom("error"), binary("why")])).unwrap(),
        Err("why".into())
    );
    // Strings from atoms and unicode character lists; "" is [].
    assert_eq!(from_term::<String>(atom("hello")).unwrap(), "hello");
    assert_eq!(
        from_term::<String>(list(vec![int(104), int(233), int(8364)])).unwrap(),
        "hé€"
    );
    assert_eq!(from_term::<String>(list(vec![])).unwrap(), "");
    // Tuples from lists, lists from tuples, bytes from a byte list, a char from $a.
    assert_eq!(
        from_term::<Point>(list(vec![int(1), int(2)])).unwrap(),
        Point(1, 2)
    );
    assert_eq!(from_term::<Vec<i32>>(tuple(vec![int(1)])).unwrap(), vec![1]);
    assert_eq!(
        from_term::<Vec<u8>>(Term::from(eetf::ByteList::from(vec![1u8, 2]))).unwrap(),
        vec![1, 2]
    );
    assert_eq!(from_term::<char>(int(97)).unwrap(), 'a');
    assert_eq!(from_term::<Ping>(atom("Ping")).unwrap(), Ping);
    // A big integer beyond u64.
    let big = Term::from(eetf::BigInteger {
        value: eetf::BigInteger::from(u64::MAX).value * eetf::BigInteger::from(2u8).value,
    });
    assert_eq!(from_term::<u128>(big).unwrap(), u128::from(u64::MAX) * 2);
}

fn mismatch_path<T: DeserializeOwned + std::fmt::Debug>(term: Term) -> (String, String, Term) {
    match from_term::<T>(term) {
        Err(DistError::SerdeMismatch {
            path,
            expected,
            found,
        }) => (path, expected, *found),
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn decode_errors_are_typed_and_name_the_field_path() {
    let mut bad = to_term(&order()).unwrap();
    // items[1].count := <<"many">>
    if let Term::Map(order) = &mut bad
        && let Some(Term::List(items)) = order.map.get_mut(&atom("items"))
        && let Term::Map(item) = &mut items.elements[1]
    {
        item.map.insert(atom("count"), binary("many"));
    }
    let (path, expected, found) = mismatch_path::<Order>(bad);
    assert_eq!(path, "items[1].count");
    assert!(expected.contains("u32"), "{expected}");
    assert_eq!(found, binary("many"));

    let (path, _, found) = mismatch_path::<Status>(tuple(vec![
        atom("closed"),
        map(vec![(atom("at"), int(-1))]),
    ]));
    assert_eq!((path.as_str(), found), ("closed.at", int(-1)));

    let (path, _, _) = mismatch_path::<Vec<Option<u8>>>(list(vec![int(1), int(300)]));
    assert_eq!(path, "[1]");
    let (_, _, found) = mismatch_path::<u8>(Term::from(eetf::Pid::new("n@h", 1, 0, 0)));
    assert!(matches!(found, Term::Pid(_)));
    assert!(matches!(
        from_term::<Item>(map(vec![(atom("name"), binary("x"))])),
        Err(DistError::Serde { reason, .. }) if reason.contains("count")
    ));
    assert!(matches!(
        from_term::<Status>(atom("gone")),
        Err(DistError::Serde { reason, .. }) if reason.contains("gone")
    ));
    assert!(matches!(
        from_term::<Point>(tuple(vec![int(1)])),
        Err(DistError::SerdeMismatch { .. })
    ));
    // A term nesting deeper than MAX_DEPTH is an error, not a stack overflow.
    let mut deep = int(0);
    for _ in 0..(term::MAX_DEPTH + 10) {
        deep = list(vec![deep]);
    }
    assert!(from_term::<serde::de::IgnoredAny>(deep.clone()).is_ok());
    assert!(matches!(
        from_term::<Vec<Vec<Term2>>>(deep),
        Err(DistError::SerdeMismatch { .. } | DistError::Serde { .. })
    ));
}

/// A recursive type, so that nesting follows the term.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum Term2 {
    Int(i64),
    List(Vec<Term2>),
}

#[test]
fn values_erlang_cannot_hold_are_typed_errors_and_serde_reports_them_on_the_wire() {
    let item = Item {
        name: "x".into(),
        count: 1,
        price: f64::NAN,
    };
    match to_term(&vec![item.clone()]) {
        Err(DistError::Serde { path, reason }) => {
            assert_eq!(path, "[0].price");
            assert!(reason.contains("finite"), "{reason}");
        }
        other => panic!("expected a serde error, got {other:?}"),
    }
    assert_eq!(
        Serde(item).to_term(),
        tuple(vec![
            atom("serde_error"),
            binary("price"),
            binary("NaN is not a finite float, which Erlang cannot represent"),
        ])
    );
    #[derive(Serialize)]
    struct Long {
        #[serde(
            rename = "a_name_longer_than_255_characters_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        )]
        field: u8,
    }
    assert!(matches!(
        to_term(&Long { field: 1 }),
        Err(DistError::Serde { .. })
    ));
}

const NAMES: [&str; 16] = [
    "name",
    "count",
    "price",
    "id",
    "items",
    "status",
    "note",
    "tags",
    "origin",
    "payload",
    "flags",
    "outcome",
    "open",
    "closed",
    "ok",
    "undefined",
];

/// A random term, biased to the names and shapes the targets use.
fn random_term(rng: &mut Rng, depth: usize) -> Term {
    let leaf = depth == 0 || rng.below(3) == 0;
    match rng.below(if leaf { 7 } else { 11 }) {
        0 => atom(NAMES[rng.below(NAMES.len())]),
        1 => int(rng.next_u64() as i32 >> rng.below(32)),
        2 => Term::from(eetf::BigInteger::from(rng.next_u64())),
        3 => Term::from(eetf::Float::try_from((rng.next_u64() as i64) as f64 / 7.0).unwrap()),
        4 => {
            let len = rng.below(6);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if rng.below(2) == 0 {
                Term::from(eetf::Binary::from(bytes))
            } else {
                Term::from(eetf::ByteList::from(bytes))
            }
        }
        5 => match rng.below(4) {
            0 => Term::from(eetf::Pid::new("n@h", 1, 2, 3)),
            1 => Term::from(eetf::Port {
                node: eetf::Atom::from("n@h"),
                id: 1,
                creation: 2,
            }),
            2 => Term::from(eetf::BitBinary::from((vec![0xffu8], 3))),
            _ => Term::from(eetf::ImproperList::from((vec![int(1)], int(2)))),
        },
        6 => atom(["true", "false", "nil", "error"][rng.below(4)]),
        7 => list(children(rng, depth)),
        8 => tuple(children(rng, depth)),
        9 => {
            let mut elements = children(rng, depth);
            elements.insert(0, atom(NAMES[rng.below(NAMES.len())]));
            tuple(elements)
        }
        _ => {
            let entries = (0..rng.below(6))
                .map(|_| {
                    let key = if rng.below(4) == 0 {
                        random_term(rng, depth - 1)
                    } else {
                        atom(NAMES[rng.below(NAMES.len())])
                    };
                    (key, random_term(rng, depth - 1))
                })
                .collect();
            map(entries)
        }
    }
}

fn children(rng: &mut Rng, depth: usize) -> Vec<Term> {
    (0..rng.below(5))
        .map(|_| random_term(rng, depth - 1))
        .collect()
}

/// Replaces a random subterm of `term` with a random term.
fn mutate(rng: &mut Rng, term: &mut Term) {
    let children: Vec<&mut Term> = match term {
        Term::List(list) => list.elements.iter_mut().collect(),
        Term::Tuple(tuple) => tuple.elements.iter_mut().collect(),
        Term::Map(map) => map.map.values_mut().collect(),
        _ => Vec::new(),
    };
    let count = children.len();
    if count == 0 || rng.below(4) == 0 {
        *term = random_term(rng, 3);
        return;
    }
    let index = rng.below(count);
    if let Some(child) = children.into_iter().nth(index) {
        mutate(rng, child);
    }
}

#[test]
fn a_hundred_thousand_random_and_mutated_terms_decode_without_panicking() {
    const INPUTS: usize = 120_000;
    let corpus = [
        to_term(&order()).unwrap(),
        to_term(&Status::Moved(1, 2)).unwrap(),
        to_term(&Status::Closed { at: 1, by: None }).unwrap(),
        to_term(&vec![Some(Point(1, 2)), None]).unwrap(),
    ];
    let mut rng = Rng::new(0x05ee_d0f5_e7de);
    let (mut decoded, mut rejected) = (0usize, 0usize);
    for index in 0..INPUTS {
        let term = if index % 3 == 0 {
            random_term(&mut rng, 5)
        } else {
            let mut term = corpus[rng.below(corpus.len())].clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut rng, &mut term);
            }
            term
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            [
                from_term::<Order>(term.clone()).is_ok(),
                from_term::<Status>(term.clone()).is_ok(),
                from_term::<Vec<Option<Point>>>(term.clone()).is_ok(),
                from_term::<HashMap<String, Item>>(term.clone()).is_ok(),
                from_term::<Result<(u8, char), Vec<u128>>>(term.clone()).is_ok(),
                from_term::<serde::de::IgnoredAny>(term.clone()).is_ok(),
            ]
        }));
        match outcome {
            Ok(results) => {
                let ok = results.iter().filter(|ok| **ok).count();
                decoded += ok;
                rejected += results.len() - ok;
            }
            Err(_) => panic!("from_term panicked on input {index}: {term}"),
        }
    }
    // Both outcomes were exercised, not only rejections.
    assert!(decoded > INPUTS / 10, "decoded {decoded}");
    assert!(rejected > INPUTS, "rejected {rejected}");
}

#[test]
fn serde_values_round_trip_through_a_beam_echo() {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let beam_alive = erlang::unique_name("beam");
    let beam = erlang::beam_node(&beam_alive, "sesame", server.address().port(), erlang::ECHO);
    beam.expect_line("ready");
    let ours = Manual::new(&erlang::unique_name("rs"), "sesame");
    let beam_name = format!("{beam_alive}@{}", erlang::short_host());
    let (mut stream, _) = ours.connect(server.address(), &beam_name).unwrap();
    let me = ours.pid(1);
    let values = [
        Serde(order()),
        Serde(Order {
            status: Status::Moved(-3, 4),
            outcome: Ok(1),
            note: Some("n".into()),
            ..order()
        }),
    ];
    for value in values {
        let request = tuple(vec![Term::from(me.clone()), value.to_term()]);
        send(
            &mut stream,
            &Control::RegSend {
                from: me.clone(),
                to: Atom::from("echo"),
            },
            Some(&request),
        );
        let reply = receive_matching(&mut stream, |m| {
            matches!(&m.control, Control::SendSender { to, .. } | Control::Send { to } if *to == me)
        })
        .payload
        .expect("a message");
        let Term::Tuple(reply) = reply else {
            panic!("expected {{echo, V}}, got {reply}")
        };
        let back = Serde::<Order>::from_term(reply.elements[1].clone()).unwrap();
        assert_eq!(back, value);
    }
}

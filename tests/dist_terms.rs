//! Terms: Rust values converted to terms, echoed by a real BEAM process, and decoded
//! back equal; terms built by BEAM decoded into Rust types; shape errors typed.
//!
//! Ports the external term format rules of erts' `erl_ext_dist.md` for the types we
//! map (integers small and big, NEW_FLOAT_EXT, atoms, binaries, lists, tuples, maps,
//! NEW_PID_EXT, NEWER_REFERENCE_EXT).

#[path = "support/dist.rs"]
mod dist_support;
#[path = "support/erlang.rs"]
mod erlang;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::net::{SocketAddr, TcpStream};

use dist_support::{Manual, receive_matching, send};
use otp_threads::dist::control::{Control, WirePid};
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, DistError, FromTerm, Term, ToTerm, eetf};
use otp_threads::{NodeName, Pid};

struct Echo {
    _server: NameServer,
    _beam: erlang::OsProcess,
    stream: TcpStream,
    me: WirePid,
}

impl Echo {
    fn start(eval: &str) -> Echo {
        let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let beam_alive = erlang::unique_name("beam");
        let beam = erlang::beam_node(&beam_alive, "sesame", server.address().port(), eval);
        beam.expect_line("ready");
        let ours = Manual::new(&erlang::unique_name("rs"), "sesame");
        let beam_name = format!("{beam_alive}@{}", erlang::short_host());
        let (stream, _) = ours.connect(server.address(), &beam_name).unwrap();
        Echo {
            _server: server,
            _beam: beam,
            stream,
            me: ours.pid(1),
        }
    }

    /// Sends `{Me, Message}` to the registered `name` and returns the next message to us.
    fn ask(&mut self, name: &str, message: Term) -> Term {
        let request = Term::from(eetf::Tuple::from(vec![
            Term::from(self.me.clone()),
            message,
        ]));
        send(
            &mut self.stream,
            &Control::RegSend {
                from: self.me.clone(),
                to: Atom::from(name),
            },
            Some(&request),
        );
        let me = self.me.clone();
        receive_matching(&mut self.stream, |m| {
            matches!(&m.control, Control::SendSender { to, .. } | Control::Send { to } if *to == me)
        })
        .payload
        .expect("a message")
    }

    /// Echoes `value` through BEAM and checks it comes back equal.
    fn round_trip<T: ToTerm + FromTerm + PartialEq + Debug>(&mut self, value: T) {
        let Term::Tuple(reply) = self.ask("echo", value.to_term()) else {
            panic!("expected {{echo, V}}")
        };
        let back = T::from_term(reply.elements[1].clone())
            .unwrap_or_else(|e| panic!("{value:?} came back undecodable: {e}"));
        assert_eq!(back, value);
    }
}

#[test]
fn rust_values_round_trip_through_a_beam_echo() {
    let mut echo = Echo::start(erlang::ECHO);
    for value in [
        0i64,
        1,
        -1,
        255,
        256,
        i32::MAX as i64 + 1,
        i64::MIN,
        i64::MAX,
    ] {
        echo.round_trip(value);
    }
    echo.round_trip(u64::MAX);
    echo.round_trip(200u8);
    echo.round_trip(-7i8);
    echo.round_trip(1.5f64);
    echo.round_trip(-0.0f64);
    echo.round_trip(f64::MAX);
    echo.round_trip(true);
    echo.round_trip(false);
    echo.round_trip("héllo, wörld ✓".to_string());
    echo.round_trip(String::new());
    echo.round_trip(vec![0u8, 1, 2, 255]);
    echo.round_trip(Vec::<u8>::new());
    echo.round_trip(vec![1i32, -2, 3]);
    echo.round_trip(vec!["a".to_string(), "b".to_string()]);
    echo.round_trip(Vec::<i32>::new());
    echo.round_trip((1i32, "two".to_string(), Atom::from("three")));
    echo.round_trip(());
    echo.round_trip((Atom::from("ok"),));
    echo.round_trip(Atom::from("an atom with spaces"));
    echo.round_trip(Atom::from("ünïcode"));
    echo.round_trip(Some(42i32));
    echo.round_trip(None::<i32>);
    let mut hash = HashMap::new();
    hash.insert("one".to_string(), 1i64);
    hash.insert("two".to_string(), 2i64);
    echo.round_trip(hash);
    let mut tree = BTreeMap::new();
    tree.insert(1i32, vec![true, false]);
    echo.round_trip(tree);
    echo.round_trip(vec![
        (Atom::from("k"), Some("v".to_string())),
        (Atom::from("n"), None),
    ]);
    let pid = Pid::from_parts(NodeName::new("rs@somewhere"), 17, 3, 99);
    echo.round_trip(pid);
    echo.round_trip(eetf::Reference {
        node: eetf::Atom::from("rs@somewhere"),
        id: vec![1, 2, 3],
        creation: 99,
    });
}

#[test]
fn terms_built_by_beam_decode_into_rust_types() {
    let mut echo = Echo::start(
        "register(make, self()), io:format(\"ready~n\"), \
         Loop = fun L() -> receive {From, What} -> From ! make(What), L() end end, \
         Make = fun(charlist) -> \"abc\"; \
                   (unicode_list) -> [104, 233, 8364]; \
                   (big) -> 1 bsl 100; \
                   (improper) -> [1, 2 | 3]; \
                   (pid) -> self(); \
                   (ref) -> make_ref(); \
                   (map) -> #{<<\"a\">> => 1, <<\"b\">> => 2}; \
                   (float) -> 0.1 \
                end, \
         put(make, Make), Loop()"
            .replace("make(What)", "(get(make))(What)")
            .as_str(),
    );
    let mut ask = |what: &str| echo.ask("make", Atom::from(what).to_term());
    assert_eq!(String::from_term(ask("charlist")).unwrap(), "abc");
    assert_eq!(String::from_term(ask("unicode_list")).unwrap(), "hé€");
    assert!(matches!(
        i64::from_term(ask("big")),
        Err(DistError::Mismatch { .. })
    ));
    assert!(matches!(ask("big"), Term::BigInteger(big) if big.value.bits() == 101));
    assert!(matches!(
        Vec::<i32>::from_term(ask("improper")),
        Err(DistError::Mismatch { .. })
    ));
    let beam_pid = Pid::from_term(ask("pid")).unwrap();
    assert!(beam_pid.node().as_str().starts_with("beam"));
    assert!(eetf::Reference::from_term(ask("ref")).is_ok());
    let map = HashMap::<String, i32>::from_term(ask("map")).unwrap();
    assert_eq!((map["a"], map["b"]), (1, 2));
    assert_eq!(f64::from_term(ask("float")).unwrap(), 0.1);
}

#[test]
fn conversion_errors_are_typed() {
    let mismatch = |r: Result<(), DistError>| matches!(r, Err(DistError::Mismatch { .. }));
    assert!(mismatch(i8::from_term(300i32.to_term()).map(drop)));
    assert!(mismatch(u32::from_term((-1i32).to_term()).map(drop)));
    assert!(mismatch(
        String::from_term(Atom::from("x").to_term()).map(drop)
    ));
    assert!(mismatch(
        bool::from_term(Atom::from("yes").to_term()).map(drop)
    ));
    assert!(mismatch(
        <(i32, i32)>::from_term((1i32,).to_term()).map(drop)
    ));
    assert!(mismatch(Vec::<u8>::from_term(1i32.to_term()).map(drop)));
    assert!(mismatch(
        Vec::<u8>::from_term(vec![256i32].to_term()).map(drop)
    ));
    assert!(mismatch(
        Pid::from_term(Atom::from("p").to_term()).map(drop)
    ));
    assert!(mismatch(
        String::from_term(vec![0xffu8, 0xfe].to_term()).map(drop)
    ));
    match f64::from_term(1i32.to_term()) {
        Err(DistError::Mismatch { expected, found }) => {
            assert_eq!(expected, "a float");
            assert_eq!(*found, 1i32.to_term());
        }
        other => panic!("{other:?}"),
    }
}

/// Our own encoder writes the leaves eetf would (byte for byte) and decodes back equal;
/// only lists differ on purpose (always `LIST_EXT`, see `term::encode_body`), and a
/// byte list too long for `STRING_EXT` becomes a list instead of a cut length.
#[test]
fn leaves_encode_as_eetf_does_and_decode_back_equal() {
    use otp_threads::dist::term;
    let long_atom = "a".repeat(300);
    let leaves: Vec<Term> = vec![
        Term::from(eetf::Atom::from("ok")),
        Term::from(eetf::Atom::from("")),
        Term::from(eetf::Atom::from("ünïcødé")),
        Term::from(eetf::Atom::from(long_atom.as_str())),
        Term::from(eetf::FixInteger::from(0)),
        Term::from(eetf::FixInteger::from(255)),
        Term::from(eetf::FixInteger::from(256)),
        Term::from(eetf::FixInteger::from(-1)),
        Term::from(eetf::FixInteger::from(i32::MIN)),
        Term::from(eetf::FixInteger::from(i32::MAX)),
        Term::from(eetf::Float::try_from(-1.5e300).unwrap()),
        Term::from(eetf::Pid::new("a@h", 1, 2, 3)),
        Term::from(eetf::Pid::new("ünï@h", u32::MAX, 0, u32::MAX)),
        Term::from(eetf::Reference {
            node: eetf::Atom::from("a@h"),
            id: vec![1, 2, u32::MAX],
            creation: 7,
        }),
        Term::from(eetf::Binary::from(vec![])),
        Term::from(eetf::Binary::from(vec![0, 255, 131])),
        Term::from(eetf::ByteList::from(vec![1, 2, 200])),
        Term::from(eetf::BigInteger::from(u64::MAX)),
        // eetf keeps the tail bits right-aligned in the last byte.
        Term::from(eetf::BitBinary::from((vec![0xff, 0x05], 3))),
        Term::from(eetf::ExternalFun::from(("m", "f", 2))),
    ];
    for leaf in &leaves {
        let ours = term::encode(leaf).unwrap();
        let mut theirs = Vec::new();
        leaf.encode(&mut theirs).unwrap();
        assert_eq!(ours, theirs, "{leaf:?}");
        assert_eq!(&term::decode(&ours).unwrap(), leaf);
    }
    // The same leaves inside a tuple and a map.
    let tuple = Term::from(eetf::Tuple::from(leaves.clone()));
    assert_eq!(term::decode(&term::encode(&tuple).unwrap()).unwrap(), tuple);
    let map = Term::from(eetf::Map::from(
        leaves
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, leaf)| (Term::from(eetf::FixInteger::from(i as i32)), leaf))
            .collect::<HashMap<_, _>>(),
    ));
    assert_eq!(term::decode(&term::encode(&map).unwrap()).unwrap(), map);
    // 70,000 bytes: a list of small integers, not a STRING_EXT with a cut length.
    let long = Term::from(eetf::ByteList::from(vec![7u8; 70_000]));
    let bytes = term::encode(&long).unwrap();
    assert_eq!(bytes[1], 108);
    let Term::List(back) = term::decode(&bytes).unwrap() else {
        panic!("expected a list")
    };
    assert_eq!(back.elements.len(), 70_000);
    assert!(
        back.elements
            .iter()
            .all(|e| *e == Term::from(eetf::FixInteger::from(7)))
    );
}

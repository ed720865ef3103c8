//! Ports of zen_monitor's `test/truncator_test.exs` (discord/zen_monitor@fe63a64):
//! reasons are cut to depth 3 and binaries of 1,024 bytes, `{shutdown, _}` untouched.

use std::collections::HashMap;

use otp_threads::dist::eetf;
use otp_threads::dist::{Atom, Term, ToTerm};
use otp_threads_zen_monitor::truncate;

fn atom(name: &str) -> Term {
    Atom::from(name).to_term()
}

fn tuple(elements: Vec<Term>) -> Term {
    Term::from(eetf::Tuple::from(elements))
}

fn list(elements: Vec<Term>) -> Term {
    Term::from(eetf::List::from(elements))
}

fn binary(len: usize) -> Term {
    Term::from(eetf::Binary::from(vec![b'a'; len]))
}

fn default(term: Term) -> Term {
    truncate(term, 3, 1024)
}

#[test]
fn atoms_numbers_pids_and_references_pass() {
    for term in [
        atom("normal"),
        Term::from(eetf::FixInteger::from(42)),
        Term::from(eetf::Float::try_from(1.5).unwrap()),
        Term::from(eetf::Pid::new("a@b", 1, 2, 3)),
        Term::from(eetf::Reference {
            node: eetf::Atom::from("a@b"),
            id: vec![1, 2, 3],
            creation: 1,
        }),
    ] {
        assert_eq!(default(term.clone()), term);
    }
}

#[test]
fn short_binaries_pass_and_long_ones_are_cut_with_an_ellipsis() {
    assert_eq!(default(binary(1024)), binary(1024));
    let Term::Binary(cut) = default(binary(1025)) else {
        panic!("a binary")
    };
    assert_eq!(cut.bytes.len(), 1024);
    assert_eq!(&cut.bytes[1021..], b"...");
    assert!(cut.bytes[..1021].iter().all(|b| *b == b'a'));
}

#[test]
fn top_level_shutdown_is_untouched() {
    let huge = tuple(vec![
        atom("shutdown"),
        list((0..100).map(|_| binary(5000)).collect()),
    ]);
    assert_eq!(default(huge.clone()), huge);
}

#[test]
fn nested_shutdown_follows_the_rules() {
    let nested = tuple(vec![
        atom("error"),
        tuple(vec![atom("shutdown"), binary(2000)]),
    ]);
    let Term::Tuple(outer) = default(nested) else {
        panic!("a tuple")
    };
    let Term::Tuple(inner) = &outer.elements[1] else {
        panic!("a tuple")
    };
    let Term::Binary(cut) = &inner.elements[1] else {
        panic!("a binary")
    };
    assert_eq!(cut.bytes.len(), 1024);
}

#[test]
fn small_tuples_and_lists_recurse_large_ones_are_truncated() {
    let small = tuple(vec![atom("a"), atom("b"), atom("c"), atom("d")]);
    assert_eq!(default(small.clone()), small);
    let large = tuple(vec![atom("a"), atom("b"), atom("c"), atom("d"), atom("e")]);
    assert_eq!(default(large), atom("truncated"));
    let small_list = list(vec![atom("a"), atom("b"), atom("c"), atom("d")]);
    assert_eq!(default(small_list.clone()), small_list);
    let large_list = list((0..5).map(|_| atom("x")).collect());
    assert_eq!(default(large_list), atom("truncated"));
    assert_eq!(default(list(vec![])), list(vec![]));
}

#[test]
fn small_maps_recurse_large_ones_are_truncated() {
    let small: HashMap<Term, Term> = (0..4)
        .map(|i| (Term::from(eetf::FixInteger::from(i)), binary(2000)))
        .collect();
    let Term::Map(cut) = default(Term::from(eetf::Map::from(small))) else {
        panic!("a map")
    };
    assert!(
        cut.map
            .values()
            .all(|v| matches!(v, Term::Binary(b) if b.bytes.len() == 1024))
    );
    let large: HashMap<Term, Term> = (0..5)
        .map(|i| (Term::from(eetf::FixInteger::from(i)), atom("v")))
        .collect();
    assert_eq!(
        default(Term::from(eetf::Map::from(large))),
        atom("truncated")
    );
}

#[test]
fn terms_deeper_than_the_depth_are_truncated() {
    let deep = tuple(vec![tuple(vec![tuple(vec![tuple(vec![atom("bottom")])])])]);
    assert_eq!(
        default(deep),
        tuple(vec![tuple(vec![tuple(vec![atom("truncated")])])])
    );
    assert_eq!(
        truncate(tuple(vec![atom("a")]), 1, 1024),
        tuple(vec![atom("truncated")])
    );
}

#[test]
fn improper_lists_are_truncated() {
    let improper = Term::from(eetf::ImproperList::from((vec![atom("a")], atom("b"))));
    assert_eq!(
        default(tuple(vec![improper])),
        tuple(vec![atom("truncated")])
    );
}

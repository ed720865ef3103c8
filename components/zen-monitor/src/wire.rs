//! Building and taking apart zen_monitor's wire terms (`seed_systems.md` §2,
//! `zen_monitor_wire.md`). Every parser returns a typed error on a foreign shape.

use otp_threads::ExitReason;
use otp_threads::dist::{Atom, DistError, FromTerm, Term, ToTerm};

use crate::target::Target;

/// The name the Proxy is registered under on every node.
pub const PROXY: &str = "Elixir.ZenMonitor.Proxy";

pub(crate) fn tuple(elements: Vec<Term>) -> Term {
    Term::from(otp_threads::dist::eetf::Tuple::from(elements))
}

pub(crate) fn list(elements: Vec<Term>) -> Term {
    Term::from(otp_threads::dist::eetf::List::from(elements))
}

pub(crate) fn atom(name: &str) -> Term {
    Atom::new(name).to_term()
}

pub(crate) fn mismatch(expected: &'static str, term: Term) -> DistError {
    DistError::Mismatch {
        expected,
        found: Box::new(term),
    }
}

/// A subscription instruction (`{subscribe, Target}` / `{unsubscribe, Target}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// Start watching the target for this subscriber.
    Subscribe(Target),
    /// Stop.
    Unsubscribe(Target),
}

impl ToTerm for Instruction {
    fn to_term(&self) -> Term {
        match self {
            Instruction::Subscribe(t) => tuple(vec![atom("subscribe"), t.to_term()]),
            Instruction::Unsubscribe(t) => tuple(vec![atom("unsubscribe"), t.to_term()]),
        }
    }
}

impl FromTerm for Instruction {
    fn from_term(term: Term) -> Result<Self, DistError> {
        let (op, target): (Atom, Term) = FromTerm::from_term(term.clone())?;
        match op.as_str() {
            "subscribe" => Ok(Instruction::Subscribe(Target::from_term(target)?)),
            "unsubscribe" => Ok(Instruction::Unsubscribe(Target::from_term(target)?)),
            _ => Err(mismatch("{subscribe | unsubscribe, Target}", term)),
        }
    }
}

/// `{process, Subscriber, Instructions}` (the cast body), or the legacy
/// `{subscribe, Subscriber, Targets}`.
pub(crate) fn process_cast(subscriber: otp_threads::Pid, instructions: &[Instruction]) -> Term {
    let body = tuple(vec![
        atom("process"),
        subscriber.to_term(),
        list(instructions.iter().map(ToTerm::to_term).collect()),
    ]);
    tuple(vec![atom("$gen_cast"), body])
}

/// `{dead, Node, [{Target, Reason}]}`.
pub(crate) fn dead_summary(node: &str, certificates: &[(Target, Term)]) -> Term {
    tuple(vec![
        atom("dead"),
        atom(node),
        list(
            certificates
                .iter()
                .map(|(target, reason)| tuple(vec![target.to_term(), reason.clone()]))
                .collect(),
        ),
    ])
}

/// Parses `{dead, Node, [{Target, Reason}]}`.
pub(crate) fn parse_dead_summary(term: Term) -> Result<(String, Vec<(Target, Term)>), DistError> {
    let (tag, node, certificates): (Atom, Atom, Vec<(Target, Term)>) =
        FromTerm::from_term(term.clone())?;
    if tag.as_str() != "dead" {
        return Err(mismatch("{dead, Node, Certificates}", term));
    }
    Ok((node.as_str().to_owned(), certificates))
}

/// A runtime exit reason as the runtime sends it to BEAM (SEMANTICS §11).
pub fn exit_reason_to_term(reason: &ExitReason) -> Term {
    let binary = |tag: &str, text: &str| {
        tuple(vec![
            atom(tag),
            Term::from(otp_threads::dist::eetf::Binary::from(text.as_bytes())),
        ])
    };
    match reason {
        ExitReason::Normal => atom("normal"),
        ExitReason::Shutdown => atom("shutdown"),
        ExitReason::ShutdownWith(detail) => binary("shutdown", detail),
        ExitReason::Kill => atom("kill"),
        ExitReason::Killed => atom("killed"),
        ExitReason::NoProc => atom("noproc"),
        ExitReason::NoConnection => atom("noconnection"),
        ExitReason::Panic(message) => binary("panic", message),
        ExitReason::Error(message) => binary("error", message),
    }
}

#[cfg(test)]
mod tests {
    //! Fuzz-style: the parsers of peer terms (a Proxy's casts, a Batcher's summaries,
    //! targets, instructions) and the truncator get random and mutated terms and must
    //! answer with a value or a typed error, never a panic.

    use otp_threads::dist::eetf;

    use super::*;
    use crate::local::connector::ConnectorInfo;
    use crate::proxy::ProxyCast;

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const ATOMS: [&str; 9] = [
        "process",
        "subscribe",
        "unsubscribe",
        "dead",
        "ping",
        "noproc",
        "a@b",
        "x",
        "",
    ];

    fn random_term(rng: &mut XorShift, depth: u32) -> Term {
        let leaf = depth == 0 || rng.below(3) == 0;
        match if leaf { rng.below(5) } else { 5 + rng.below(4) } {
            0 => atom(ATOMS[rng.below(ATOMS.len() as u64) as usize]),
            1 => Term::from(eetf::FixInteger::from(rng.next() as i32)),
            2 => Term::from(eetf::Pid::new("a@b", rng.below(100) as u32, 0, 1)),
            3 => Term::from(eetf::Binary::from(vec![b'z'; rng.below(2048) as usize])),
            4 => Term::from(eetf::Reference {
                node: eetf::Atom::from("a@b"),
                id: vec![rng.next() as u32],
                creation: 1,
            }),
            5 | 6 => {
                let n = rng.below(5) as usize;
                tuple((0..n).map(|_| random_term(rng, depth - 1)).collect())
            }
            7 => {
                let n = rng.below(6) as usize;
                list((0..n).map(|_| random_term(rng, depth - 1)).collect())
            }
            _ => Term::from(eetf::ImproperList::from((
                vec![random_term(rng, depth - 1)],
                random_term(rng, depth - 1),
            ))),
        }
    }

    /// Replaces one random subterm of `term` with a random term.
    fn mutate(term: Term, rng: &mut XorShift) -> Term {
        match term {
            Term::Tuple(t) if !t.elements.is_empty() && rng.below(2) == 0 => {
                let mut elements = t.elements;
                let i = rng.below(elements.len() as u64) as usize;
                let old = std::mem::replace(&mut elements[i], atom("x"));
                elements[i] = mutate(old, rng);
                tuple(elements)
            }
            Term::List(l) if !l.elements.is_empty() && rng.below(2) == 0 => {
                let mut elements = l.elements;
                let i = rng.below(elements.len() as u64) as usize;
                let old = std::mem::replace(&mut elements[i], atom("x"));
                elements[i] = mutate(old, rng);
                list(elements)
            }
            _ => random_term(rng, 3),
        }
    }

    fn parse_all(term: Term) {
        let _ = Target::from_term(term.clone());
        let _ = Instruction::from_term(term.clone());
        let _ = parse_dead_summary(term.clone());
        let _ = ProxyCast::from_term(term.clone());
        let _ = ConnectorInfo::from_term(term.clone());
        let _ = crate::truncator::truncate(term, 3, 1024);
    }

    #[test]
    fn random_and_mutated_peer_terms_never_panic() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let pid = otp_threads::Pid::from_parts(otp_threads::NodeName::new("a@b"), 1, 0, 1);
        let target = Target::Pid(pid);
        let valid = [
            process_cast(pid, &[Instruction::Subscribe(target.clone())]),
            dead_summary("a@b", &[(target.clone(), atom("boom"))]),
            Instruction::Unsubscribe(Target::name("n", "a@b")).to_term(),
            tuple(vec![
                atom("subscribe"),
                pid.to_term(),
                list(vec![pid.to_term()]),
            ]),
        ];
        // Valid shapes parse.
        assert!(parse_dead_summary(valid[1].clone()).is_ok());
        assert!(Instruction::from_term(valid[2].clone()).is_ok());
        assert!(ProxyCast::from_term(valid[3].clone()).is_ok());
        for round in 0..20_000 {
            let term = if round % 2 == 0 {
                random_term(&mut rng, 4)
            } else {
                let base = valid[rng.below(valid.len() as u64) as usize].clone();
                mutate(base, &mut rng)
            };
            parse_all(term);
        }
    }
}

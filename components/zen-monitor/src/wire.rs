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

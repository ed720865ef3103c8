//! Exit reasons as terms, and back.
//!
//! | [`ExitReason`] | term |
//! |---|---|
//! | `Normal`, `Shutdown`, `Kill`, `Killed`, `NoProc`, `NoConnection` | the atom |
//! | `ShutdownWith(d)` | `{shutdown, <<d>>}` |
//! | `Panic(m)` | `{panic, <<m>>}` |
//! | `Error(m)` | `{error, <<m>>}` |
//!
//! A term from another node that is none of these becomes `Error(text)`: the atom's
//! name for an atom, the term's text otherwise;
//! and `{shutdown, T}` with a non-binary `T` becomes `ShutdownWith(text of T)`.

use crate::dist::term::{Atom, Term, ToTerm};
use crate::exit::ExitReason;

/// The term for an exit reason.
pub fn reason_to_term(reason: &ExitReason) -> Term {
    let atom = |name: &str| Atom::from(name).to_term();
    let pair = |tag: &str, text: &str| (Atom::from(tag), text).to_term();
    match reason {
        ExitReason::Normal => atom("normal"),
        ExitReason::Shutdown => atom("shutdown"),
        ExitReason::ShutdownWith(detail) => pair("shutdown", detail),
        ExitReason::Kill => atom("kill"),
        ExitReason::Killed => atom("killed"),
        ExitReason::NoProc => atom("noproc"),
        ExitReason::NoConnection => atom("noconnection"),
        ExitReason::Panic(message) => pair("panic", message),
        ExitReason::Error(message) => pair("error", message),
    }
}

/// The exit reason for a term from another node.
pub fn reason_from_term(term: &Term) -> ExitReason {
    match term {
        Term::Atom(atom) => match atom.name.as_str() {
            "normal" => ExitReason::Normal,
            "shutdown" => ExitReason::Shutdown,
            "kill" => ExitReason::Kill,
            "killed" => ExitReason::Killed,
            "noproc" => ExitReason::NoProc,
            "noconnection" => ExitReason::NoConnection,
            other => ExitReason::Error(other.into()),
        },
        Term::Tuple(tuple) if tuple.elements.len() == 2 => {
            let text = |t: &Term| match t {
                Term::Binary(b) => String::from_utf8_lossy(&b.bytes).into_owned(),
                other => other.to_string(),
            };
            match &tuple.elements[0] {
                Term::Atom(tag) if tag.name == "shutdown" => {
                    ExitReason::shutdown_with(text(&tuple.elements[1]))
                }
                Term::Atom(tag) if tag.name == "panic" => {
                    ExitReason::Panic(text(&tuple.elements[1]).into())
                }
                Term::Atom(tag) if tag.name == "error" => {
                    ExitReason::Error(text(&tuple.elements[1]).into())
                }
                _ => ExitReason::error(term),
            }
        }
        other => ExitReason::error(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons_round_trip_through_terms() {
        for reason in [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::shutdown_with("done"),
            ExitReason::Kill,
            ExitReason::Killed,
            ExitReason::NoProc,
            ExitReason::NoConnection,
            ExitReason::Panic("boom".into()),
            ExitReason::error("bad"),
        ] {
            assert_eq!(reason_from_term(&reason_to_term(&reason)), reason);
        }
    }
}

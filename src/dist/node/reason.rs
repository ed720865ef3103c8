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

use crate::dist::error::DistError;
use crate::dist::term::{Atom, FromTerm, Term, ToTerm};
use crate::exit::ExitReason;

/// An exit reason travels as the term in the table above, so that components sending
/// reasons to other nodes (zen_monitor's dead summaries, a hub's handovers) use the
/// same mapping as links and monitors.
impl ToTerm for ExitReason {
    fn to_term(&self) -> Term {
        reason_to_term(self)
    }
}

/// Every term is some exit reason (see the table above), so this never fails.
impl FromTerm for ExitReason {
    fn from_term(term: Term) -> Result<Self, DistError> {
        Ok(reason_from_term(&term))
    }
}

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

#[cfg(test)]
mod conversion_tests {
    use super::*;

    #[test]
    fn exit_reasons_convert_to_terms_and_back() {
        for reason in [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::ShutdownWith("maintenance".into()),
            ExitReason::Killed,
            ExitReason::NoProc,
            ExitReason::NoConnection,
            ExitReason::error("bad input"),
        ] {
            assert_eq!(ExitReason::from_term(reason.to_term()).unwrap(), reason);
        }
    }
}

//! Reason truncation, as zen_monitor's `Truncator`: a reason travels to every
//! subscriber, so a huge one (a whole state in a crash) is cut before it is sent.
//!
//! Rules (library defaults: depth 3, binaries 1,024 bytes): a top-level
//! `{shutdown, _}` passes untouched; below `depth` levels everything is `truncated`;
//! atoms, numbers, pids, references and ports pass; a binary longer than the limit
//! keeps its first `limit - 3` bytes followed by `"..."`; tuples and lists of at most
//! 4 elements and maps of fewer than 5 entries are truncated element by element one
//! level deeper; anything larger (or an improper list) is `truncated`.

use otp_threads::dist::Term;
use otp_threads::dist::eetf;

use crate::wire::atom;

/// Truncates `reason` with `depth` levels and binaries of at most `max_binary` bytes.
pub fn truncate(reason: Term, depth: usize, max_binary: usize) -> Term {
    if is_shutdown(&reason) {
        return reason;
    }
    truncate_at(reason, 0, depth, max_binary)
}

fn is_shutdown(term: &Term) -> bool {
    matches!(term, Term::Tuple(t) if t.elements.len() == 2
        && matches!(&t.elements[0], Term::Atom(a) if a.name == "shutdown"))
}

const MAX_ELEMENTS: usize = 4;
const MAX_MAP_ENTRIES: usize = 4;

fn truncate_at(term: Term, current: usize, depth: usize, max_binary: usize) -> Term {
    if current >= depth {
        return atom("truncated");
    }
    let next = current.saturating_add(1);
    match term {
        Term::Binary(binary) if binary.bytes.len() > max_binary => {
            let keep = max_binary.saturating_sub(3);
            let mut bytes = binary.bytes[..keep].to_vec();
            bytes.extend_from_slice(b"...");
            Term::from(eetf::Binary::from(bytes))
        }
        Term::Tuple(tuple) if tuple.elements.len() <= MAX_ELEMENTS => {
            let elements = tuple
                .elements
                .into_iter()
                .map(|e| truncate_at(e, next, depth, max_binary))
                .collect::<Vec<_>>();
            Term::from(eetf::Tuple::from(elements))
        }
        Term::List(list) if list.elements.len() <= MAX_ELEMENTS => {
            let elements = list
                .elements
                .into_iter()
                .map(|e| truncate_at(e, next, depth, max_binary))
                .collect::<Vec<_>>();
            Term::from(eetf::List::from(elements))
        }
        Term::Map(map) if map.map.len() <= MAX_MAP_ENTRIES => {
            let entries = map
                .map
                .into_iter()
                .map(|(k, v)| (k, truncate_at(v, next, depth, max_binary)))
                .collect::<std::collections::HashMap<_, _>>();
            Term::from(eetf::Map::from(entries))
        }
        Term::Tuple(_) | Term::List(_) | Term::Map(_) | Term::ImproperList(_) => atom("truncated"),
        leaf => leaf,
    }
}

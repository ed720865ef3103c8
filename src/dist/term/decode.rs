//! Decoding of scanned external-term-format bytes into [`Term`]s.
//!
//! Contract: the input has passed [`scan`](super::scan) (every count fits in the bytes,
//! nesting is at most [`MAX_DEPTH`](super::MAX_DEPTH)), so the recursion here is
//! bounded; every read is still bounds-checked, and a bad value (an atom that is not
//! UTF-8, a float that is not finite) is a typed error. The result equals what eetf
//! decodes from the same bytes — the fuzz test checks that input by input.
//!
//! The tags of everyday messages (integers, floats, atoms, pids, references, tuples,
//! lists, strings, binaries, maps) are decoded here, straight from the slice, with one
//! allocation per atom or container; that is most of a frame's cost on the reader
//! thread. The rare ones (big integers, bit binaries, ports, funs, the old pid and
//! reference formats) are handed to eetf.

use std::collections::HashMap;

use eetf::Term;

use super::tags::*;
use crate::dist::error::DistError;
use crate::dist::wire::Cursor;

/// Decodes the one term `body` holds (no version byte), which passed the scan.
pub(crate) fn decode_scanned(body: &[u8]) -> Result<Term, DistError> {
    let mut cursor = Cursor::new(body, "term");
    let term = term(&mut cursor)?;
    if cursor.remaining() != 0 {
        return Err(DistError::malformed(
            "term",
            "trailing bytes after the term",
        ));
    }
    Ok(term)
}

fn term(cursor: &mut Cursor<'_>) -> Result<Term, DistError> {
    let start = cursor.position();
    let tag = cursor.u8()?;
    Ok(match tag {
        SMALL_INTEGER => Term::from(eetf::FixInteger::from(i32::from(cursor.u8()?))),
        INTEGER => Term::from(eetf::FixInteger::from(cursor.u32()? as i32)),
        NEW_FLOAT => {
            let value = f64::from_bits(cursor.u64()?);
            let float = eetf::Float::try_from(value)
                .map_err(|_| DistError::malformed("term", "float is not finite"))?;
            Term::from(float)
        }
        ATOM | SMALL_ATOM | ATOM_UTF8 | SMALL_ATOM_UTF8 => Term::from(atom_with_tag(cursor, tag)?),
        NEW_PID => {
            let node = atom(cursor)?;
            let (id, serial, creation) = (cursor.u32()?, cursor.u32()?, cursor.u32()?);
            Term::from(eetf::Pid {
                node,
                id,
                serial,
                creation,
            })
        }
        NEWER_REFERENCE => {
            let words = usize::from(cursor.u16()?);
            let node = atom(cursor)?;
            let creation = cursor.u32()?;
            let id = (0..words)
                .map(|_| cursor.u32())
                .collect::<Result<Vec<u32>, DistError>>()?;
            Term::from(eetf::Reference { node, id, creation })
        }
        SMALL_TUPLE => {
            let arity = usize::from(cursor.u8()?);
            Term::from(eetf::Tuple::from(elements(cursor, arity)?))
        }
        LARGE_TUPLE => {
            let arity = cursor.u32()? as usize;
            Term::from(eetf::Tuple::from(elements(cursor, arity)?))
        }
        NIL => Term::from(eetf::List::nil()),
        STRING => {
            let len = usize::from(cursor.u16()?);
            Term::from(eetf::ByteList::from(cursor.take(len)?.to_vec()))
        }
        LIST => {
            let len = cursor.u32()? as usize;
            let items = elements(cursor, len)?;
            let tail = term(cursor)?;
            match tail {
                Term::List(nil) if nil.is_nil() => Term::from(eetf::List::from(items)),
                tail => Term::from(eetf::ImproperList::from((items, tail))),
            }
        }
        BINARY => {
            let len = cursor.u32()? as usize;
            Term::from(eetf::Binary::from(cursor.take(len)?.to_vec()))
        }
        MAP => {
            let arity = cursor.u32()? as usize;
            let mut map = HashMap::with_capacity(arity.min(cursor.remaining()));
            for _ in 0..arity {
                let key = term(cursor)?;
                let value = term(cursor)?;
                map.insert(key, value);
            }
            Term::from(eetf::Map::from(map))
        }
        _ => {
            // A rare tag: find the term's end with the scan, then let eetf decode it.
            let rest = &cursor.bytes()[start..];
            let len = super::scan::scan_body(rest)?;
            let mut versioned = Vec::with_capacity(len + 1);
            versioned.push(super::VERSION);
            versioned.extend_from_slice(&rest[..len]);
            cursor.take(len - 1)?;
            Term::decode(versioned.as_slice())?
        }
    })
}

/// `count` terms in a row. The scan checked each takes at least a byte, so the
/// capacity is bounded by the input.
fn elements(cursor: &mut Cursor<'_>, count: usize) -> Result<Vec<Term>, DistError> {
    if count > cursor.remaining() {
        return Err(DistError::Truncated { what: "term" });
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(term(cursor)?);
    }
    Ok(items)
}

pub(crate) fn atom(cursor: &mut Cursor<'_>) -> Result<eetf::Atom, DistError> {
    let tag = cursor.u8()?;
    atom_with_tag(cursor, tag)
}

/// A pid in today's format (`NEW_PID_EXT`); any other tag is an error. Needs no scan:
/// a pid holds no counts but its atom's length, which `take` checks.
pub(crate) fn new_pid(cursor: &mut Cursor<'_>) -> Result<eetf::Pid, DistError> {
    if cursor.u8()? != NEW_PID {
        return Err(DistError::malformed("term", "expected a pid"));
    }
    let node = atom(cursor)?;
    let (id, serial, creation) = (cursor.u32()?, cursor.u32()?, cursor.u32()?);
    Ok(eetf::Pid {
        node,
        id,
        serial,
        creation,
    })
}

fn atom_with_tag(cursor: &mut Cursor<'_>, tag: u8) -> Result<eetf::Atom, DistError> {
    let (len, utf8) = match tag {
        ATOM => (usize::from(cursor.u16()?), false),
        SMALL_ATOM => (usize::from(cursor.u8()?), false),
        ATOM_UTF8 => (usize::from(cursor.u16()?), true),
        SMALL_ATOM_UTF8 => (usize::from(cursor.u8()?), true),
        _ => return Err(DistError::malformed("term", "expected an atom")),
    };
    let bytes = cursor.take(len)?;
    let name = if utf8 {
        std::str::from_utf8(bytes)
            .map_err(|_| DistError::malformed("term", "atom is not UTF-8"))?
            .to_owned()
    } else {
        // Latin-1: each byte is the code point.
        bytes.iter().map(|&byte| char::from(byte)).collect()
    };
    Ok(eetf::Atom { name })
}

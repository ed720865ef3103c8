//! The external term format: safe decoding of untrusted bytes, and conversions
//! between Rust values and terms.
//!
//! Terms are [`eetf::Term`]s. Before any peer bytes are decoded, [`scan`] walks them
//! once with hard bounds: every count must fit in the bytes that remain (so no
//! allocation is larger than the input allows), nesting is limited to [`MAX_DEPTH`],
//! and the encodings we never negotiate (atom cache references, distribution headers,
//! compressed terms, which could inflate without bound) are rejected. Only a term that
//! passes the scan is decoded: the everyday tags by our own decoder, straight from the
//! slice, the rare ones by eetf (the fuzz test checks that both give the same term).
//! Encoding is ours too, but for the rare leaves; lists are always `LIST_EXT`.

mod atom;
mod convert;
mod decode;
mod scan;
#[cfg(feature = "serde")]
pub mod serde;
pub(crate) mod tags;

#[cfg(feature = "serde")]
pub use self::serde::Serde;
pub use atom::Atom;
pub use convert::{FromTerm, ToTerm};
pub use eetf::Term;
pub use scan::{MAX_DEPTH, scan};

use super::error::DistError;
use tags::*;

/// The version byte every top-level term starts with.
pub const VERSION: u8 = 131;

/// Decodes the one term at the start of `bytes` (version byte included); returns it
/// and the number of bytes it took.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Term, usize), DistError> {
    let len = scan(bytes)?;
    let term = decode::decode_scanned(&bytes[1..len])?;
    Ok((term, len))
}

/// The atom at `cursor` (any of the four atom tags), unscanned: an atom holds no
/// count but its length, which is checked against the bytes.
pub(crate) fn decode_atom(cursor: &mut crate::dist::wire::Cursor<'_>) -> Result<Atom, DistError> {
    decode::atom(cursor).map(Atom::from)
}

/// The `NEW_PID_EXT` pid at `cursor`, unscanned (see [`decode_atom`]).
pub(crate) fn decode_new_pid(
    cursor: &mut crate::dist::wire::Cursor<'_>,
) -> Result<eetf::Pid, DistError> {
    decode::new_pid(cursor)
}

/// Decodes `bytes`, which must hold exactly one term.
pub fn decode(bytes: &[u8]) -> Result<Term, DistError> {
    let (term, len) = decode_prefix(bytes)?;
    if len != bytes.len() {
        return Err(DistError::malformed(
            "term",
            "trailing bytes after the term",
        ));
    }
    Ok(term)
}

/// Encodes a term (with its version byte), appending to `out`.
pub fn encode_into(term: &Term, out: &mut Vec<u8>) -> Result<(), DistError> {
    out.push(VERSION);
    encode_body(term, out)
}

/// Encodes containers ourselves and leaves to eetf.
///
/// eetf writes a list whose elements are all small integers as `STRING_EXT` bytes,
/// which turns negative elements into 256 - n (found by the BEAM echo test). Lists are
/// therefore always written as `LIST_EXT` here, and so are the containers that may
/// hold them; everything else is eetf's encoding without its version byte.
fn encode_body(term: &Term, out: &mut Vec<u8>) -> Result<(), DistError> {
    match term {
        Term::List(list) => encode_list(&list.elements, None, out),
        Term::ImproperList(list) => encode_list(&list.elements, Some(&list.last), out),
        Term::Tuple(tuple) => {
            match u8::try_from(tuple.elements.len()) {
                Ok(arity) => out.extend_from_slice(&[SMALL_TUPLE, arity]),
                Err(_) => {
                    out.push(LARGE_TUPLE);
                    out.extend_from_slice(&length(tuple.elements.len())?.to_be_bytes());
                }
            }
            tuple.elements.iter().try_for_each(|e| encode_body(e, out))
        }
        Term::Map(map) => {
            out.push(MAP);
            out.extend_from_slice(&length(map.map.len())?.to_be_bytes());
            map.map.iter().try_for_each(|(k, v)| {
                encode_body(k, out)?;
                encode_body(v, out)
            })
        }
        Term::Atom(atom) => encode_atom(atom, out),
        Term::FixInteger(integer) => {
            match u8::try_from(integer.value) {
                Ok(small) => out.extend_from_slice(&[SMALL_INTEGER, small]),
                Err(_) => {
                    out.push(INTEGER);
                    out.extend_from_slice(&integer.value.to_be_bytes());
                }
            }
            Ok(())
        }
        Term::Float(float) => {
            out.push(NEW_FLOAT);
            out.extend_from_slice(&float.value.to_be_bytes());
            Ok(())
        }
        Term::Pid(pid) => encode_pid(pid, out),
        Term::Reference(reference) => {
            let words = u16::try_from(reference.id.len())
                .map_err(|_| DistError::malformed("term", "reference of more than 65535 words"))?;
            out.push(NEWER_REFERENCE);
            out.extend_from_slice(&words.to_be_bytes());
            encode_atom(&reference.node, out)?;
            out.extend_from_slice(&reference.creation.to_be_bytes());
            for word in &reference.id {
                out.extend_from_slice(&word.to_be_bytes());
            }
            Ok(())
        }
        Term::Binary(binary) => {
            out.push(BINARY);
            out.extend_from_slice(&length(binary.bytes.len())?.to_be_bytes());
            out.extend_from_slice(&binary.bytes);
            Ok(())
        }
        Term::ByteList(list) => match u16::try_from(list.bytes.len()) {
            Ok(len) => {
                out.push(STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&list.bytes);
                Ok(())
            }
            // Too long for STRING_EXT (eetf would cut the length): a list of bytes.
            Err(_) => {
                out.push(LIST);
                out.extend_from_slice(&length(list.bytes.len())?.to_be_bytes());
                for byte in &list.bytes {
                    out.extend_from_slice(&[SMALL_INTEGER, *byte]);
                }
                out.push(NIL);
                Ok(())
            }
        },
        // The rare leaves (big integers, bit binaries, ports, funs): eetf's encoding.
        leaf => {
            let start = out.len();
            leaf.encode(&mut *out)?;
            // eetf wrote the version byte first: drop it.
            out.remove(start);
            Ok(())
        }
    }
}

/// A pid as `NEW_PID_EXT`, without a version byte.
pub(crate) fn encode_pid(pid: &eetf::Pid, out: &mut Vec<u8>) -> Result<(), DistError> {
    out.push(NEW_PID);
    encode_atom(&pid.node, out)?;
    out.extend_from_slice(&pid.id.to_be_bytes());
    out.extend_from_slice(&pid.serial.to_be_bytes());
    out.extend_from_slice(&pid.creation.to_be_bytes());
    Ok(())
}

fn encode_atom(atom: &eetf::Atom, out: &mut Vec<u8>) -> Result<(), DistError> {
    encode_atom_name(&atom.name, out)
}

/// An atom as UTF-8 (OTP 26 requires UTF-8 atoms): `SMALL_ATOM_UTF8_EXT` up to 255
/// bytes, else `ATOM_UTF8_EXT`. No version byte.
pub(crate) fn encode_atom_name(name: &str, out: &mut Vec<u8>) -> Result<(), DistError> {
    let name = name.as_bytes();
    match u8::try_from(name.len()) {
        Ok(len) => out.extend_from_slice(&[SMALL_ATOM_UTF8, len]),
        Err(_) => {
            let len = u16::try_from(name.len())
                .map_err(|_| DistError::malformed("term", "atom longer than 65535 bytes"))?;
            out.push(ATOM_UTF8);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(name);
    Ok(())
}

fn encode_list(elements: &[Term], tail: Option<&Term>, out: &mut Vec<u8>) -> Result<(), DistError> {
    if elements.is_empty() {
        return match tail {
            None => {
                out.push(NIL);
                Ok(())
            }
            Some(tail) => encode_body(tail, out),
        };
    }
    out.push(LIST);
    out.extend_from_slice(&length(elements.len())?.to_be_bytes());
    elements.iter().try_for_each(|e| encode_body(e, out))?;
    match tail {
        None => {
            out.push(NIL);
            Ok(())
        }
        Some(tail) => encode_body(tail, out),
    }
}

fn length(len: usize) -> Result<u32, DistError> {
    u32::try_from(len).map_err(|_| DistError::malformed("term", "more than 2^32 elements"))
}

/// Encodes a term (with its version byte).
pub fn encode(term: &Term) -> Result<Vec<u8>, DistError> {
    let mut out = Vec::new();
    encode_into(term, &mut out)?;
    Ok(out)
}

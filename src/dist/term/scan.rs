//! A bounded structural scan of external-term-format bytes.

use super::tags::*;
use crate::dist::error::DistError;
use crate::dist::wire::Cursor;

/// The deepest nesting of lists, tuples, maps and funs we decode.
pub const MAX_DEPTH: usize = 128;

/// Nesting levels the scan tracks without allocating.
const SHALLOW: usize = 8;

/// Checks that `bytes` starts with one well-bounded term (version byte included) and
/// returns its length in bytes. Everything after it is left alone.
///
/// The walk is iterative (a stack of "terms still to read" per open container), so a
/// hostile nesting cannot overflow the thread's stack here; [`MAX_DEPTH`] then keeps
/// eetf's recursive decoder within bounds.
pub fn scan(bytes: &[u8]) -> Result<usize, DistError> {
    match bytes.first() {
        Some(&super::VERSION) => {}
        Some(_) => return Err(DistError::malformed("term", "missing version byte 131")),
        None => return Err(DistError::Truncated { what: "term" }),
    }
    Ok(1 + scan_body(&bytes[1..])?)
}

/// As [`scan`], for a term without its version byte (one nested in another).
pub(crate) fn scan_body(bytes: &[u8]) -> Result<usize, DistError> {
    let mut cursor = Cursor::new(bytes, "term");
    // Terms still to read per open container, innermost last. Most terms nest a few
    // levels: those stay in a small array (this runs for every frame); deeper ones
    // spill to the heap, up to MAX_DEPTH.
    let mut shallow = [0usize; SHALLOW];
    let mut deep: Vec<usize> = Vec::new();
    shallow[0] = 1;
    let mut depth = 1;
    while depth > 0 {
        let top = if depth <= SHALLOW {
            &mut shallow[depth - 1]
        } else {
            &mut deep[depth - 1 - SHALLOW]
        };
        if *top == 0 {
            depth -= 1;
            if depth >= SHALLOW {
                deep.pop();
            }
            continue;
        }
        *top -= 1;
        let nested = term(&mut cursor)?;
        if nested > 0 {
            if depth >= MAX_DEPTH {
                return Err(DistError::TooDeep(MAX_DEPTH));
            }
            if depth < SHALLOW {
                shallow[depth] = nested;
            } else {
                deep.push(nested);
            }
            depth += 1;
        }
    }
    Ok(cursor.position())
}

/// A count of elements, each at least `min_size` bytes, must fit in what is left.
fn count(cursor: &Cursor<'_>, n: usize, min_size: usize) -> Result<usize, DistError> {
    match n.checked_mul(min_size) {
        Some(needed) if needed <= cursor.remaining() => Ok(n),
        _ => Err(DistError::Truncated { what: "term" }),
    }
}

fn skip(cursor: &mut Cursor<'_>, n: usize) -> Result<usize, DistError> {
    cursor.take(n).map(|_| 0)
}

/// Checks `n` nested terms (each at least one byte) can follow; returns `n`.
fn nested(cursor: &Cursor<'_>, n: usize) -> Result<usize, DistError> {
    count(cursor, n, 1)
}

/// Reads one term's own bytes; returns how many nested terms follow it.
fn term(cursor: &mut Cursor<'_>) -> Result<usize, DistError> {
    let tag = cursor.u8()?;
    match tag {
        SMALL_INTEGER => skip(cursor, 1),
        INTEGER => skip(cursor, 4),
        NEW_FLOAT => skip(cursor, 8),
        FLOAT => skip(cursor, 31),
        ATOM | ATOM_UTF8 => {
            let len = cursor.u16()? as usize;
            skip(cursor, len)
        }
        SMALL_ATOM | SMALL_ATOM_UTF8 => {
            let len = cursor.u8()? as usize;
            skip(cursor, len)
        }
        NEW_PID => {
            atom(cursor)?;
            skip(cursor, 12)
        }
        PID => {
            atom(cursor)?;
            skip(cursor, 9)
        }
        NEW_PORT => {
            atom(cursor)?;
            skip(cursor, 8)
        }
        PORT => {
            atom(cursor)?;
            skip(cursor, 5)
        }
        V4_PORT => {
            atom(cursor)?;
            skip(cursor, 12)
        }
        REFERENCE => {
            atom(cursor)?;
            skip(cursor, 5)
        }
        NEW_REFERENCE | NEWER_REFERENCE => {
            let words = cursor.u16()? as usize;
            atom(cursor)?;
            skip(cursor, if tag == NEW_REFERENCE { 1 } else { 4 })?;
            let words = count(cursor, words, 4)?;
            skip(cursor, words * 4)
        }
        SMALL_TUPLE => {
            let arity = cursor.u8()? as usize;
            nested(cursor, arity)
        }
        LARGE_TUPLE => {
            let arity = cursor.u32()? as usize;
            nested(cursor, arity)
        }
        NIL => Ok(0),
        STRING => {
            let len = cursor.u16()? as usize;
            skip(cursor, len)
        }
        LIST => {
            let len = cursor.u32()? as usize;
            // The elements, then the tail.
            let with_tail = len
                .checked_add(1)
                .ok_or(DistError::Truncated { what: "term" })?;
            nested(cursor, with_tail)
        }
        BINARY => {
            let len = cursor.u32()? as usize;
            skip(cursor, len)
        }
        BIT_BINARY => {
            let len = cursor.u32()? as usize;
            let bits = cursor.u8()?;
            let valid = if len == 0 {
                bits == 0
            } else {
                (1..=8).contains(&bits)
            };
            if !valid {
                return Err(DistError::malformed(
                    "term",
                    "bit binary tail bits out of range",
                ));
            }
            skip(cursor, len)
        }
        SMALL_BIG => {
            let len = cursor.u8()? as usize;
            skip(cursor, 1)?;
            skip(cursor, len)
        }
        LARGE_BIG => {
            let len = cursor.u32()? as usize;
            skip(cursor, 1)?;
            skip(cursor, len)
        }
        MAP => {
            let arity = cursor.u32()? as usize;
            let items = arity
                .checked_mul(2)
                .ok_or(DistError::Truncated { what: "term" })?;
            nested(cursor, items)
        }
        EXPORT => {
            atom(cursor)?;
            atom(cursor)?;
            nested(cursor, 1)
        }
        NEW_FUN => {
            // Size u32, arity u8, uniq 16 bytes, index u32, then the free-variable count.
            skip(cursor, 4 + 1 + 16 + 4)?;
            let free = cursor.u32()? as usize;
            atom(cursor)?;
            // OldIndex, OldUniq, Pid, then the free variables.
            let all = free
                .checked_add(3)
                .ok_or(DistError::Truncated { what: "term" })?;
            nested(cursor, all)
        }
        FUN => {
            let free = cursor.u32()? as usize;
            // Pid, Module, Index, Uniq, then the free variables.
            let all = free
                .checked_add(4)
                .ok_or(DistError::Truncated { what: "term" })?;
            nested(cursor, all)
        }
        COMPRESSED => Err(DistError::UnsupportedTerm("compressed term")),
        ATOM_CACHE_REF => Err(DistError::UnsupportedTerm("atom cache reference")),
        DIST_HEADER => Err(DistError::UnsupportedTerm("distribution header")),
        LOCAL => Err(DistError::UnsupportedTerm("LOCAL_EXT")),
        other => Err(DistError::UnknownTag(other)),
    }
}

/// An atom (node names, modules): any atom encoding.
fn atom(cursor: &mut Cursor<'_>) -> Result<usize, DistError> {
    match cursor.u8()? {
        ATOM | ATOM_UTF8 => {
            let len = cursor.u16()? as usize;
            skip(cursor, len)
        }
        SMALL_ATOM | SMALL_ATOM_UTF8 => {
            let len = cursor.u8()? as usize;
            skip(cursor, len)
        }
        ATOM_CACHE_REF => Err(DistError::UnsupportedTerm("atom cache reference")),
        _ => Err(DistError::malformed("term", "expected an atom")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_counts_are_rejected_before_allocation() {
        // A list announcing 2^32-1 elements in 6 bytes.
        assert!(scan(&[131, LIST, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(scan(&[131, MAP, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(scan(&[131, BINARY, 0x7f, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut bytes = vec![131];
        for _ in 0..(MAX_DEPTH + 10) {
            bytes.extend_from_slice(&[SMALL_TUPLE, 1]);
        }
        bytes.push(NIL);
        assert!(matches!(scan(&bytes), Err(DistError::TooDeep(_))));
    }

    #[test]
    fn the_deepest_accepted_term_decodes_on_a_test_thread() {
        let mut bytes = vec![131];
        for _ in 0..(MAX_DEPTH - 1) {
            bytes.extend_from_slice(&[LIST, 0, 0, 0, 1]);
        }
        bytes.push(NIL);
        // Each list's tail.
        bytes.extend(std::iter::repeat_n(NIL, MAX_DEPTH - 1));
        assert_eq!(scan(&bytes).unwrap(), bytes.len());
        assert!(crate::dist::term::decode(&bytes).is_ok());
    }

    #[test]
    fn the_scan_measures_one_term() {
        let bytes = [131, SMALL_TUPLE, 2, SMALL_INTEGER, 1, NIL, 0xaa];
        assert_eq!(scan(&bytes).unwrap(), 6);
    }
}

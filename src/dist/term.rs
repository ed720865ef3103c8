//! The external term format: safe decoding of untrusted bytes, and conversions
//! between Rust values and terms.
//!
//! Terms are [`eetf::Term`]s. Before eetf sees peer bytes, [`scan`] walks them once
//! with hard bounds: every count must fit in the bytes that remain (so no allocation
//! is larger than the input allows), nesting is limited to [`MAX_DEPTH`], and the
//! encodings we never negotiate (atom cache references, distribution headers,
//! compressed terms, which could inflate without bound) are rejected. Only a term
//! that passes the scan is handed to eetf.

mod atom;
mod convert;
mod scan;

pub use atom::Atom;
pub use convert::{FromTerm, ToTerm};
pub use eetf::Term;
pub use scan::{MAX_DEPTH, scan};

use super::error::DistError;

/// The version byte every top-level term starts with.
pub const VERSION: u8 = 131;

/// Decodes the one term at the start of `bytes` (version byte included); returns it
/// and the number of bytes it took.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Term, usize), DistError> {
    let len = scan(bytes)?;
    let term = Term::decode(&bytes[..len])?;
    Ok((term, len))
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
    term.encode(out)?;
    Ok(())
}

/// Encodes a term (with its version byte).
pub fn encode(term: &Term) -> Result<Vec<u8>, DistError> {
    let mut out = Vec::new();
    encode_into(term, &mut out)?;
    Ok(out)
}

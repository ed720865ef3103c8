//! A serde bridge: `#[derive(Serialize, Deserialize)]` types to and from terms
//! (feature `serde`).
//!
//! [`to_term`] and [`from_term`] convert any serde type; [`Serde<T>`] wraps one so it
//! implements [`ToTerm`] / [`FromTerm`] and can be a worker's `Call`, `Cast`, `Reply`
//! or `Info` over distribution. The mapping is what an Erlang or Elixir program
//! builds by hand, and agrees with [`ToTerm`] wherever both apply:
//!
//! | Rust (serde data model) | Term built | Also accepted when decoding |
//! |---|---|---|
//! | `bool` | `true` / `false` | |
//! | integers, `i128`, `u128` | integer (small or big) | |
//! | `f32`, `f64` (finite; NaN and infinities are an error) | float | an integer exactly representable |
//! | `char` | integer code point (Erlang's `$a`) | a one-character binary or list |
//! | `String`, `&str` | UTF-8 binary `<<"x">>` | character list `"x"`, atom |
//! | bytes (`serde_bytes`), and a non-empty `Vec<u8>` | binary | byte list |
//! | `Option<T>` | `undefined` / the value | `nil` for `None` (Elixir) |
//! | `()` | `{}` | |
//! | unit struct `struct Ping;` | atom `'Ping'` (its serde name) | `{}` |
//! | newtype struct `struct Id(u64);` | the inner value | |
//! | tuple struct, tuple, array `[T; N]` | tuple `{A, B}` | a list of that length |
//! | `Vec<T>`, sequences, sets | proper list `[A, B]` | a tuple |
//! | maps | map `#{K => V}` (keys converted like values) | |
//! | struct `struct S { name: String, count: u32 }` | map with atom keys `#{name => <<"x">>, count => 3}` | binary or character-list keys; extra keys (such as Elixir's `__struct__`) are ignored |
//! | unit variant `E::Get` | atom `'Get'` | a binary, a 1-tuple `{'Get'}` |
//! | newtype variant `E::Put(v)` | `{'Put', V}` | |
//! | tuple variant `E::Move(x, y)` | `{'Move', X, Y}` | |
//! | struct variant `E::Set { k: 1 }` | `{'Set', #{k => 1}}` | |
//! | `Result<T, E>` | `{ok, T}` / `{error, E}` | `{'Ok', T}` / `{'Err', E}` |
//!
//! Names (fields, variants, unit structs) are taken as serde gives them: Rust's
//! `CamelCase` variants become quoted atoms like `'Get'`; put
//! `#[serde(rename_all = "snake_case")]` on an enum to get Erlang's `get`. Struct
//! keys are atoms, as in Elixir structs and Erlang maps written by hand; an Erlang
//! record (`{point, 1, 2}`) is a tuple struct or tuple variant instead.
//!
//! Known ambiguities, as with [`ToTerm`]: `None` and `Some(None)` are both
//! `undefined`; an empty `Vec<u8>` is `[]` (a non-empty one is a binary, as
//! [`ToTerm`] writes it), and both decode into `Vec<u8>`.
//!
//! Errors are [`DistError::SerdeMismatch`] (a term of the wrong shape, carrying it)
//! or [`DistError::Serde`] (serde's own complaint, a value Erlang cannot hold), each
//! naming the path to the failing field (`orders[2].price`). Decoding never panics
//! on any term: pids, references, ports, funs, bit strings and improper lists are
//! mismatches for every serde type, and nesting deeper than [`MAX_DEPTH`] is an error.

mod de;
mod ser;

use std::fmt;

use ::serde::Serialize;
use ::serde::de::DeserializeOwned;

use super::Term;
use super::convert::{FromTerm, ToTerm};
use crate::dist::error::DistError;

#[cfg(doc)]
use super::MAX_DEPTH;

/// Converts a serde value to a term with the mapping in the module docs.
pub fn to_term<T: Serialize + ?Sized>(value: &T) -> Result<Term, DistError> {
    value
        .serialize(ser::TermSerializer::new())
        .map_err(Error::into_dist)
}

/// Decodes a term into a serde value with the mapping in the module docs.
pub fn from_term<T: DeserializeOwned>(term: Term) -> Result<T, DistError> {
    T::deserialize(de::TermDeserializer::new(term)).map_err(Error::into_dist)
}

/// A serde value that is [`ToTerm`] and [`FromTerm`], so it can be a worker's message
/// or reply over distribution.
///
/// [`ToTerm`] cannot fail, so a value that does not serialize (a NaN, or a user
/// `Serialize` error) is logged as an error and sent as
/// `{serde_error, <<Path>>, <<Reason>>}`, which the receiver sees instead of
/// nothing; call [`to_term`] first where that must be handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serde<T>(pub T);

impl<T> Serde<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: Serialize> ToTerm for Serde<T> {
    fn to_term(&self) -> Term {
        match to_term(&self.0) {
            Ok(term) => term,
            Err(error) => {
                log::error!("a value did not serialize to a term: {error}");
                unserializable_term(&error)
            }
        }
    }
}

impl<T: DeserializeOwned> FromTerm for Serde<T> {
    fn from_term(term: Term) -> Result<Self, DistError> {
        from_term(term).map(Serde)
    }
}

/// `{serde_error, <<Path>>, <<Reason>>}` for a value that did not serialize.
fn unserializable_term(error: &DistError) -> Term {
    let (path, reason) = match error {
        DistError::Serde { path, reason } => (path.clone(), reason.clone()),
        other => (String::new(), other.to_string()),
    };
    (
        super::Atom::from("serde_error"),
        path.as_str(),
        reason.as_str(),
    )
        .to_term()
}

/// One step into a value, for the error's path.
#[derive(Debug)]
enum Segment {
    /// A struct field (or a map key that is an atom or string).
    Field(String),
    /// A sequence or tuple element.
    Index(usize),
    /// The value under a map key that is not a name.
    Key(String),
    /// The payload of an enum variant.
    Variant(String),
}

#[derive(Debug)]
enum Kind {
    Mismatch { expected: String, found: Box<Term> },
    Message(String),
}

/// The bridge's internal error: serde needs its own error type; this one collects the
/// path on the way out (innermost segment first) and becomes a [`DistError`].
#[derive(Debug)]
pub(super) struct Error {
    path: Vec<Segment>,
    kind: Kind,
}

impl Error {
    fn mismatch(expected: impl Into<String>, found: Term) -> Error {
        Error {
            path: Vec::new(),
            kind: Kind::Mismatch {
                expected: expected.into(),
                found: Box::new(found),
            },
        }
    }

    fn message(message: impl Into<String>) -> Error {
        Error {
            path: Vec::new(),
            kind: Kind::Message(message.into()),
        }
    }

    /// Adds the step this error came through (called from the inside out).
    fn at(mut self, segment: Segment) -> Error {
        self.path.push(segment);
        self
    }

    fn path(&self) -> String {
        let mut path = String::new();
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Field(name) | Segment::Variant(name) if path.is_empty() => {
                    path.push_str(name)
                }
                Segment::Field(name) | Segment::Variant(name) => {
                    path.push('.');
                    path.push_str(name);
                }
                Segment::Index(index) => path.push_str(&format!("[{index}]")),
                Segment::Key(key) => path.push_str(&format!("[{key}]")),
            }
        }
        path
    }

    fn into_dist(self) -> DistError {
        let path = self.path();
        match self.kind {
            Kind::Mismatch { expected, found } => DistError::SerdeMismatch {
                path,
                expected,
                found,
            },
            Kind::Message(reason) => DistError::Serde { path, reason },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Mismatch { expected, found } => {
                write!(f, "at `{}`: expected {expected}, got {found}", self.path())
            }
            Kind::Message(message) => write!(f, "at `{}`: {message}", self.path()),
        }
    }
}

impl std::error::Error for Error {}

impl ::serde::ser::Error for Error {
    fn custom<M: fmt::Display>(message: M) -> Error {
        Error::message(message.to_string())
    }
}

impl ::serde::de::Error for Error {
    fn custom<M: fmt::Display>(message: M) -> Error {
        Error::message(message.to_string())
    }
}

/// The label of a map key in a path: a name as itself, anything else as its term text
/// (shortened: keys can be large).
fn key_segment(key: &Term) -> Segment {
    const LONGEST: usize = 40;
    match key {
        Term::Atom(atom) => Segment::Field(atom.name.clone()),
        Term::Binary(binary) => match std::str::from_utf8(&binary.bytes) {
            Ok(text) if text.len() <= LONGEST => Segment::Field(text.to_owned()),
            _ => Segment::Key("<<…>>".to_owned()),
        },
        other => {
            let text = other.to_string();
            if text.len() <= LONGEST {
                Segment::Key(text)
            } else {
                Segment::Key("…".to_owned())
            }
        }
    }
}

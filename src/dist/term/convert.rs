//! Conversions between Rust values and terms: [`ToTerm`] and [`FromTerm`].
//!
//! | Rust | Erlang term |
//! |---|---|
//! | `i8` … `i64`, `u8` … `u64`, `usize`, `isize` | integer (small or big) |
//! | `f32`, `f64` | float (finite only) |
//! | `bool` | `true` / `false` |
//! | `String`, `&str` | binary (UTF-8); decoding also takes a character list |
//! | `Vec<u8>` | binary; decoding also takes a byte list |
//! | `Vec<T>` | proper list |
//! | tuples of 0 to 6 elements | tuple |
//! | `HashMap<K, V>`, `BTreeMap<K, V>` | map |
//! | `Option<T>` | `undefined` or the value |
//! | [`Pid`] | pid |
//! | [`Atom`] | atom |
//! | `eetf::Reference` | reference |
//! | [`Term`] | itself |
//!
//! A term of the wrong shape is [`DistError::Mismatch`] naming the expected shape and
//! carrying the term; an integer out of the target's range is a mismatch too.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use eetf::{BigInteger, Binary, FixInteger, Float, List, Map, Tuple};

use super::Term;
use super::atom::Atom;
use crate::dist::error::DistError;
use crate::pid::{NodeName, Pid};

/// A Rust value that can be sent as a term.
pub trait ToTerm {
    /// The term.
    fn to_term(&self) -> Term;

    /// A slice of these values as a term: a list, except for bytes (a binary).
    #[doc(hidden)]
    fn slice_to_term(items: &[Self]) -> Term
    where
        Self: Sized,
    {
        Term::from(List::from(
            items.iter().map(ToTerm::to_term).collect::<Vec<_>>(),
        ))
    }
}

/// A Rust value that can be decoded from a term.
pub trait FromTerm: Sized {
    /// Decodes the term, or says what shape was expected.
    fn from_term(term: Term) -> Result<Self, DistError>;

    /// A `Vec` of these values from a term: a list, except for bytes (a binary).
    #[doc(hidden)]
    fn vec_from_term(term: Term) -> Result<Vec<Self>, DistError> {
        match term {
            Term::List(list) => list.elements.into_iter().map(Self::from_term).collect(),
            Term::ByteList(bytes) => bytes
                .bytes
                .into_iter()
                .map(|b| Self::from_term(Term::from(FixInteger::from(b))))
                .collect(),
            other => Err(DistError::mismatch("a proper list", other)),
        }
    }
}

impl ToTerm for Term {
    fn to_term(&self) -> Term {
        self.clone()
    }
}

impl FromTerm for Term {
    fn from_term(term: Term) -> Result<Self, DistError> {
        Ok(term)
    }
}

/// The integer value of a term, if it is an integer of at most 128 bits.
fn integer_value(term: &Term) -> Option<i128> {
    match term {
        Term::FixInteger(fix) => Some(i128::from(fix.value)),
        Term::BigInteger(big) => {
            let bytes = big.value.to_signed_bytes_le();
            if bytes.len() > 16 {
                return None;
            }
            // Sign-extend the little-endian two's complement bytes to 128 bits.
            let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut wide = [fill; 16];
            wide[..bytes.len()].copy_from_slice(&bytes);
            Some(i128::from_le_bytes(wide))
        }
        _ => None,
    }
}

fn integer_term(value: i64) -> Term {
    match i32::try_from(value) {
        Ok(small) => Term::from(FixInteger::from(small)),
        Err(_) => Term::from(BigInteger::from(value)),
    }
}

macro_rules! integers {
    ($($ty:ty => $name:literal),*) => {$(
        impl ToTerm for $ty {
            fn to_term(&self) -> Term {
                match i64::try_from(*self) {
                    Ok(value) => integer_term(value),
                    // Only u64/usize above i64::MAX get here.
                    Err(_) => Term::from(BigInteger::from(*self as u64)),
                }
            }
        }

        impl FromTerm for $ty {
            fn from_term(term: Term) -> Result<Self, DistError> {
                match integer_value(&term).and_then(|value| <$ty>::try_from(value).ok()) {
                    Some(value) => Ok(value),
                    None => Err(DistError::mismatch($name, term)),
                }
            }
        }
    )*};
}

integers!(
    i8 => "an integer in i8 range", i16 => "an integer in i16 range",
    i32 => "an integer in i32 range", i64 => "an integer in i64 range",
    isize => "an integer in isize range", u16 => "an integer in u16 range",
    u32 => "an integer in u32 range", u64 => "an integer in u64 range",
    usize => "an integer in usize range"
);

// u8 is separate: a `Vec<u8>` is a binary, not a list.
impl ToTerm for u8 {
    fn to_term(&self) -> Term {
        Term::from(FixInteger::from(*self))
    }

    fn slice_to_term(items: &[u8]) -> Term {
        Term::from(Binary::from(items))
    }
}

impl FromTerm for u8 {
    fn from_term(term: Term) -> Result<Self, DistError> {
        match integer_value(&term).and_then(|value| u8::try_from(value).ok()) {
            Some(value) => Ok(value),
            None => Err(DistError::mismatch("an integer in u8 range", term)),
        }
    }

    fn vec_from_term(term: Term) -> Result<Vec<u8>, DistError> {
        match term {
            Term::Binary(binary) => Ok(binary.bytes),
            Term::ByteList(list) => Ok(list.bytes),
            Term::List(list) => list.elements.into_iter().map(u8::from_term).collect(),
            other => Err(DistError::mismatch("a binary", other)),
        }
    }
}

impl ToTerm for f64 {
    fn to_term(&self) -> Term {
        // Erlang has no NaN or infinities; they are sent as the atom `nan` / `infinity`
        // would be wrong too, so non-finite values become `undefined`.
        match Float::try_from(*self) {
            Ok(float) => Term::from(float),
            Err(_) => Term::from(eetf::Atom::from("undefined")),
        }
    }
}

impl FromTerm for f64 {
    fn from_term(term: Term) -> Result<Self, DistError> {
        match term {
            Term::Float(float) => Ok(float.value),
            other => Err(DistError::mismatch("a float", other)),
        }
    }
}

impl ToTerm for f32 {
    fn to_term(&self) -> Term {
        f64::from(*self).to_term()
    }
}

impl FromTerm for f32 {
    fn from_term(term: Term) -> Result<Self, DistError> {
        f64::from_term(term).map(|value| value as f32)
    }
}

impl ToTerm for bool {
    fn to_term(&self) -> Term {
        Term::from(eetf::Atom::from(if *self { "true" } else { "false" }))
    }
}

impl FromTerm for bool {
    fn from_term(term: Term) -> Result<Self, DistError> {
        match &term {
            Term::Atom(atom) if atom.name == "true" => Ok(true),
            Term::Atom(atom) if atom.name == "false" => Ok(false),
            _ => Err(DistError::mismatch("true or false", term)),
        }
    }
}

impl ToTerm for str {
    fn to_term(&self) -> Term {
        Term::from(Binary::from(self.as_bytes()))
    }
}

impl ToTerm for String {
    fn to_term(&self) -> Term {
        self.as_str().to_term()
    }
}

impl FromTerm for String {
    fn from_term(term: Term) -> Result<Self, DistError> {
        let bytes = match term {
            Term::Binary(binary) => binary.bytes,
            Term::ByteList(list) => list.bytes,
            // A character list may hold code points above 255.
            Term::List(list) => {
                let mut text = String::new();
                for element in list.elements {
                    let code = integer_value(&element)
                        .and_then(|value| u32::try_from(value).ok())
                        .and_then(char::from_u32);
                    match code {
                        Some(c) => text.push(c),
                        None => return Err(DistError::mismatch("a character list", element)),
                    }
                }
                return Ok(text);
            }
            other => return Err(DistError::mismatch("a UTF-8 binary", other)),
        };
        String::from_utf8(bytes).map_err(|error| {
            DistError::mismatch(
                "a UTF-8 binary",
                Term::from(Binary::from(error.into_bytes())),
            )
        })
    }
}

impl ToTerm for Atom {
    fn to_term(&self) -> Term {
        Term::from(eetf::Atom::from(self.as_str()))
    }
}

impl FromTerm for Atom {
    fn from_term(term: Term) -> Result<Self, DistError> {
        match term {
            Term::Atom(atom) => Ok(Atom::from(atom)),
            other => Err(DistError::mismatch("an atom", other)),
        }
    }
}

impl ToTerm for Pid {
    fn to_term(&self) -> Term {
        Term::from(eetf::Pid::new(
            self.node().as_str(),
            self.id(),
            self.serial(),
            self.creation(),
        ))
    }
}

impl FromTerm for Pid {
    fn from_term(term: Term) -> Result<Self, DistError> {
        match term {
            Term::Pid(pid) => Ok(Pid::from_parts(
                NodeName::new(&pid.node.name),
                pid.id,
                pid.serial,
                pid.creation,
            )),
            other => Err(DistError::mismatch("a pid", other)),
        }
    }
}

impl ToTerm for eetf::Reference {
    fn to_term(&self) -> Term {
        Term::from(self.clone())
    }
}

impl FromTerm for eetf::Reference {
    fn from_term(term: Term) -> Result<Self, DistError> {
        match term {
            Term::Reference(reference) => Ok(*reference),
            other => Err(DistError::mismatch("a reference", other)),
        }
    }
}

impl<T: ToTerm> ToTerm for [T] {
    fn to_term(&self) -> Term {
        T::slice_to_term(self)
    }
}

impl<T: ToTerm> ToTerm for Vec<T> {
    fn to_term(&self) -> Term {
        T::slice_to_term(self)
    }
}

impl<T: FromTerm> FromTerm for Vec<T> {
    fn from_term(term: Term) -> Result<Self, DistError> {
        T::vec_from_term(term)
    }
}

impl<T: ToTerm + ?Sized> ToTerm for &T {
    fn to_term(&self) -> Term {
        (**self).to_term()
    }
}

impl<T: ToTerm> ToTerm for Option<T> {
    fn to_term(&self) -> Term {
        match self {
            Some(value) => value.to_term(),
            None => Term::from(eetf::Atom::from("undefined")),
        }
    }
}

impl<T: FromTerm> FromTerm for Option<T> {
    fn from_term(term: Term) -> Result<Self, DistError> {
        match &term {
            Term::Atom(atom) if atom.name == "undefined" => Ok(None),
            _ => T::from_term(term).map(Some),
        }
    }
}

fn map_to_term<'a, K: ToTerm + 'a, V: ToTerm + 'a>(
    entries: impl Iterator<Item = (&'a K, &'a V)>,
) -> Term {
    let map: HashMap<Term, Term> = entries.map(|(k, v)| (k.to_term(), v.to_term())).collect();
    Term::from(Map::from(map))
}

fn map_entries(term: Term) -> Result<HashMap<Term, Term>, DistError> {
    match term {
        Term::Map(map) => Ok(map.map),
        other => Err(DistError::mismatch("a map", other)),
    }
}

impl<K: ToTerm, V: ToTerm> ToTerm for HashMap<K, V> {
    fn to_term(&self) -> Term {
        map_to_term(self.iter())
    }
}

impl<K: FromTerm + Eq + Hash, V: FromTerm> FromTerm for HashMap<K, V> {
    fn from_term(term: Term) -> Result<Self, DistError> {
        map_entries(term)?
            .into_iter()
            .map(|(k, v)| Ok((K::from_term(k)?, V::from_term(v)?)))
            .collect()
    }
}

impl<K: ToTerm, V: ToTerm> ToTerm for BTreeMap<K, V> {
    fn to_term(&self) -> Term {
        map_to_term(self.iter())
    }
}

impl<K: FromTerm + Ord, V: FromTerm> FromTerm for BTreeMap<K, V> {
    fn from_term(term: Term) -> Result<Self, DistError> {
        map_entries(term)?
            .into_iter()
            .map(|(k, v)| Ok((K::from_term(k)?, V::from_term(v)?)))
            .collect()
    }
}

macro_rules! tuples {
    ($($len:literal => ($($name:ident),*)),*) => {$(
        impl<$($name: ToTerm),*> ToTerm for ($($name,)*) {
            #[allow(non_snake_case)]
            fn to_term(&self) -> Term {
                let ($($name,)*) = self;
                Term::from(Tuple::from(vec![$($name.to_term()),*]))
            }
        }

        impl<$($name: FromTerm),*> FromTerm for ($($name,)*) {
            fn from_term(term: Term) -> Result<Self, DistError> {
                match term {
                    Term::Tuple(tuple) if tuple.elements.len() == $len => {
                        #[allow(unused_mut, unused_variables)]
                        let mut elements = tuple.elements.into_iter();
                        Ok(($($name::from_term(
                            elements.next().ok_or(DistError::malformed("tuple", "too short"))?,
                        )?,)*))
                    }
                    other => Err(DistError::mismatch(concat!("a tuple of ", $len), other)),
                }
            }
        }
    )*};
}

tuples!(
    0 => (),
    1 => (A),
    2 => (A, B),
    3 => (A, B, C),
    4 => (A, B, C, D),
    5 => (A, B, C, D, E),
    6 => (A, B, C, D, E, F)
);

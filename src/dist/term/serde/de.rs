//! Terms to Rust values: the deserializer half of the bridge (mapping in `serde.rs`).
//!
//! Every method checks the term's shape before the visitor sees it and answers a
//! wrong one with a mismatch carrying the term; nesting is counted so that no term,
//! however deep, recurses past [`MAX_DEPTH`].

use std::collections::hash_map;

use eetf::{FixInteger, Tuple};
use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::{Error, Segment, key_segment};
use crate::dist::term::{MAX_DEPTH, Term};

/// Deserializes one term, `depth` levels below the top.
pub(super) struct TermDeserializer {
    term: Term,
    depth: usize,
}

impl TermDeserializer {
    pub(super) fn new(term: Term) -> TermDeserializer {
        TermDeserializer { term, depth: 0 }
    }

    fn child(depth: usize, term: Term) -> Result<TermDeserializer, Error> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(Error::message(format!(
                "the term nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(TermDeserializer { term, depth })
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

/// A non-negative integer of up to 128 bits (`u128` above `i128::MAX` included).
fn unsigned_value(term: &Term) -> Option<u128> {
    match term {
        Term::FixInteger(fix) => u128::try_from(fix.value).ok(),
        Term::BigInteger(big) => {
            let mut bytes = big.value.to_signed_bytes_le();
            if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                return None;
            }
            // A positive value may carry one zero byte for its sign.
            while bytes.len() > 16 && bytes.last() == Some(&0) {
                bytes.pop();
            }
            if bytes.len() > 16 {
                return None;
            }
            let mut wide = [0u8; 16];
            wide[..bytes.len()].copy_from_slice(&bytes);
            Some(u128::from_le_bytes(wide))
        }
        _ => None,
    }
}

fn atom_name(term: &Term) -> Option<&str> {
    match term {
        Term::Atom(atom) => Some(&atom.name),
        _ => None,
    }
}

/// The text of a term that stands for a string: a UTF-8 binary, a character list
/// (a byte list is one too) or, where `atoms` allows, an atom.
fn text(term: &Term, atoms: bool) -> Option<String> {
    match term {
        Term::Binary(binary) => std::str::from_utf8(&binary.bytes).ok().map(str::to_owned),
        Term::ByteList(list) => Some(list.bytes.iter().map(|&b| char::from(b)).collect()),
        Term::List(list) => list
            .elements
            .iter()
            .map(|e| {
                integer_value(e)
                    .and_then(|v| u32::try_from(v).ok())
                    .and_then(char::from_u32)
            })
            .collect(),
        Term::Atom(atom) if atoms => Some(atom.name.clone()),
        _ => None,
    }
}

/// The bytes of a binary, a byte list, or a list of integers in 0..=255.
fn bytes(term: &Term) -> Option<Vec<u8>> {
    match term {
        Term::Binary(binary) => Some(binary.bytes.clone()),
        Term::ByteList(list) => Some(list.bytes.clone()),
        Term::List(list) => list
            .elements
            .iter()
            .map(|e| integer_value(e).and_then(|v| u8::try_from(v).ok()))
            .collect(),
        _ => None,
    }
}

/// The elements of a term that stands for a sequence: a list, a byte list or binary
/// (as integers), or a tuple.
fn elements(term: Term) -> Result<Vec<Term>, Term> {
    match term {
        Term::List(list) => Ok(list.elements),
        Term::Tuple(tuple) => Ok(tuple.elements),
        Term::ByteList(list) => Ok(byte_terms(list.bytes)),
        Term::Binary(binary) => Ok(byte_terms(binary.bytes)),
        other => Err(other),
    }
}

fn byte_terms(bytes: Vec<u8>) -> Vec<Term> {
    bytes
        .into_iter()
        .map(|b| Term::from(FixInteger::from(b)))
        .collect()
}

fn is_none_atom(term: &Term) -> bool {
    matches!(atom_name(term), Some("undefined" | "nil"))
}

/// An `f64` equal to the integer, if there is one.
fn exact_float(value: i128) -> Option<f64> {
    let float = value as f64;
    // Beyond 2^53 not every integer is a float; compare back to be sure.
    (float.is_finite() && float as i128 == value && value.unsigned_abs() <= 1 << 53)
        .then_some(float)
}

macro_rules! integer_method {
    ($($method:ident => $ty:ty, $visit:ident, $expected:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match integer_value(&self.term).and_then(|v| <$ty>::try_from(v).ok()) {
                Some(value) => visitor.$visit(value),
                None => Err(Error::mismatch($expected, self.term)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for TermDeserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let depth = self.depth;
        match self.term {
            Term::Atom(atom) => match atom.name.as_str() {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                "undefined" | "nil" => visitor.visit_none(),
                _ => visitor.visit_string(atom.name),
            },
            term @ (Term::FixInteger(_) | Term::BigInteger(_)) => {
                if let Some(value) = integer_value(&term) {
                    if let Ok(small) = i64::try_from(value) {
                        return visitor.visit_i64(small);
                    }
                    if let Ok(unsigned) = u64::try_from(value) {
                        return visitor.visit_u64(unsigned);
                    }
                    return visitor.visit_i128(value);
                }
                match unsigned_value(&term) {
                    Some(value) => visitor.visit_u128(value),
                    None => Err(Error::mismatch("an integer of at most 128 bits", term)),
                }
            }
            Term::Float(float) => visitor.visit_f64(float.value),
            Term::Binary(binary) => match String::from_utf8(binary.bytes) {
                Ok(text) => visitor.visit_string(text),
                Err(error) => visitor.visit_byte_buf(error.into_bytes()),
            },
            Term::Map(map) => visitor.visit_map(MapDeserializer::new(map.map, depth)),
            term @ (Term::List(_) | Term::ByteList(_) | Term::Tuple(_)) => match elements(term) {
                Ok(elements) => visit_elements(elements, depth, visitor),
                Err(term) => Err(Error::mismatch("a sequence", term)),
            },
            other => Err(Error::mismatch(
                "a term with a serde counterpart (not a pid, reference, port, fun, bit string or improper list)",
                other,
            )),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match atom_name(&self.term) {
            Some("true") => visitor.visit_bool(true),
            Some("false") => visitor.visit_bool(false),
            _ => Err(Error::mismatch("true or false", self.term)),
        }
    }

    integer_method! {
        deserialize_i8 => i8, visit_i8, "an integer in i8 range";
        deserialize_i16 => i16, visit_i16, "an integer in i16 range";
        deserialize_i32 => i32, visit_i32, "an integer in i32 range";
        deserialize_i64 => i64, visit_i64, "an integer in i64 range";
        deserialize_i128 => i128, visit_i128, "an integer in i128 range";
        deserialize_u8 => u8, visit_u8, "an integer in u8 range";
        deserialize_u16 => u16, visit_u16, "an integer in u16 range";
        deserialize_u32 => u32, visit_u32, "an integer in u32 range";
        deserialize_u64 => u64, visit_u64, "an integer in u64 range";
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match unsigned_value(&self.term) {
            Some(value) => visitor.visit_u128(value),
            None => Err(Error::mismatch("an integer in u128 range", self.term)),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.term {
            Term::Float(float) => visitor.visit_f64(float.value),
            term => match integer_value(term).and_then(exact_float) {
                Some(value) => visitor.visit_f64(value),
                None => Err(Error::mismatch("a float", self.term)),
            },
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let code = integer_value(&self.term)
            .and_then(|v| u32::try_from(v).ok())
            .and_then(char::from_u32);
        if let Some(c) = code {
            return visitor.visit_char(c);
        }
        let single = text(&self.term, false).and_then(|t| {
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        });
        match single {
            Some(c) => visitor.visit_char(c),
            None => Err(Error::mismatch("a character code point", self.term)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Binary(binary) => match String::from_utf8(binary.bytes) {
                Ok(text) => visitor.visit_string(text),
                Err(error) => Err(Error::mismatch(
                    "a UTF-8 binary",
                    Term::from(eetf::Binary::from(error.into_bytes())),
                )),
            },
            term => match text(&term, true) {
                Some(text) => visitor.visit_string(text),
                None => Err(Error::mismatch("a UTF-8 binary", term)),
            },
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Binary(binary) => visitor.visit_byte_buf(binary.bytes),
            term => match bytes(&term) {
                Some(bytes) => visitor.visit_byte_buf(bytes),
                None => Err(Error::mismatch("a binary", term)),
            },
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if is_none_atom(&self.term) {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.term {
            Term::Tuple(tuple) if tuple.elements.is_empty() => visitor.visit_unit(),
            _ => Err(Error::mismatch("{}", self.term)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.term {
            Term::Atom(atom) if atom.name == name => visitor.visit_unit(),
            Term::Tuple(tuple) if tuple.elements.is_empty() => visitor.visit_unit(),
            _ => Err(Error::mismatch(format!("the atom '{name}'"), self.term)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match elements(self.term) {
            Ok(elements) => visit_elements(elements, self.depth, visitor),
            Err(term) => Err(Error::mismatch("a proper list", term)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let fits = match &self.term {
            Term::Tuple(tuple) => tuple.elements.len() == len,
            Term::List(list) => list.elements.len() == len,
            Term::ByteList(list) => list.bytes.len() == len,
            Term::Binary(binary) => binary.bytes.len() == len,
            _ => false,
        };
        if !fits {
            return Err(Error::mismatch(format!("a tuple of {len}"), self.term));
        }
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Map(map) => visitor.visit_map(MapDeserializer::new(map.map, self.depth)),
            other => Err(Error::mismatch("a map", other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.term {
            Term::Map(map) => visitor.visit_map(MapDeserializer::new(map.map, self.depth)),
            other => Err(Error::mismatch(
                format!("a map with atom keys (struct {name})"),
                other,
            )),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (tag, payload) = match self.term {
            Term::Tuple(tuple) if !tuple.elements.is_empty() => {
                let mut elements = tuple.elements;
                let tag = elements.remove(0);
                (tag, Some(elements))
            }
            Term::Tuple(tuple) => {
                return Err(Error::mismatch(
                    format!("an atom or a tagged tuple (enum {name})"),
                    Term::from(tuple),
                ));
            }
            other => (other, None),
        };
        let Some(mut variant) =
            text(&tag, true).filter(|_| matches!(tag, Term::Atom(_) | Term::Binary(_)))
        else {
            return Err(Error::mismatch(
                format!("an atom or a tagged tuple (enum {name})"),
                rebuild(tag, payload),
            ));
        };
        if name == "Result" && variants == ["Ok", "Err"] {
            variant = match variant.as_str() {
                "ok" => "Ok".to_owned(),
                "error" => "Err".to_owned(),
                _ => variant,
            };
        }
        visitor.visit_enum(EnumDeserializer {
            tag,
            variant,
            payload,
            depth: self.depth,
        })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let Some(index) = integer_value(&self.term).and_then(|v| u64::try_from(v).ok()) {
            return visitor.visit_u64(index);
        }
        match text(&self.term, true) {
            Some(name) => visitor.visit_string(name),
            None => Err(Error::mismatch("a name (an atom)", self.term)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Nothing of an ignored value is looked at, so nothing in it recurses.
        visitor.visit_unit()
    }
}

fn rebuild(tag: Term, payload: Option<Vec<Term>>) -> Term {
    match payload {
        None => tag,
        Some(mut rest) => {
            rest.insert(0, tag);
            Term::from(Tuple::from(rest))
        }
    }
}

fn visit_elements<'de, V: Visitor<'de>>(
    elements: Vec<Term>,
    depth: usize,
    visitor: V,
) -> Result<V::Value, Error> {
    let len = elements.len();
    let mut seq = SeqDeserializer {
        elements: elements.into_iter(),
        index: 0,
        depth,
    };
    let value = visitor.visit_seq(&mut seq)?;
    if seq.elements.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements"))
    }
}

struct SeqDeserializer {
    elements: std::vec::IntoIter<Term>,
    index: usize,
    depth: usize,
}

impl<'de> de::SeqAccess<'de> for SeqDeserializer {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(term) = self.elements.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        let element = TermDeserializer::child(self.depth, term)?;
        seed.deserialize(element)
            .map(Some)
            .map_err(|e| e.at(Segment::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}

struct MapDeserializer {
    entries: hash_map::IntoIter<Term, Term>,
    value: Option<(Term, Term)>,
    depth: usize,
}

impl MapDeserializer {
    fn new(map: std::collections::HashMap<Term, Term>, depth: usize) -> MapDeserializer {
        MapDeserializer {
            entries: map.into_iter(),
            value: None,
            depth,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapDeserializer {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let segment_key = key.clone();
        let deserializer = TermDeserializer::child(self.depth, key)?;
        let key_value = seed
            .deserialize(deserializer)
            .map_err(|e| e.at(key_segment(&segment_key)))?;
        self.value = Some((segment_key, value));
        Ok(Some(key_value))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| Error::message("a map value was asked for before its key"))?;
        let deserializer = TermDeserializer::child(self.depth, value)?;
        seed.deserialize(deserializer)
            .map_err(|e| e.at(key_segment(&key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumDeserializer {
    tag: Term,
    variant: String,
    payload: Option<Vec<Term>>,
    depth: usize,
}

impl<'de> de::EnumAccess<'de> for EnumDeserializer {
    type Error = Error;
    type Variant = VariantDeserializer;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDeserializer), Error> {
        let name: StringDeserializer<Error> = self.variant.clone().into_deserializer();
        let value = seed.deserialize(name)?;
        Ok((
            value,
            VariantDeserializer {
                tag: self.tag,
                variant: self.variant,
                payload: self.payload,
                depth: self.depth,
            },
        ))
    }
}

struct VariantDeserializer {
    tag: Term,
    variant: String,
    payload: Option<Vec<Term>>,
    depth: usize,
}

impl VariantDeserializer {
    fn mismatch(self, expected: String) -> Error {
        Error::mismatch(expected, rebuild(self.tag, self.payload))
    }
}

impl<'de> de::VariantAccess<'de> for VariantDeserializer {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match &self.payload {
            None => Ok(()),
            Some(rest) if rest.is_empty() => Ok(()),
            _ => {
                let expected = format!("the atom '{}'", self.variant);
                Err(self.mismatch(expected))
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.payload {
            Some(rest) if rest.len() == 1 => {
                let mut rest = rest.into_iter();
                let value = rest.next().unwrap_or(Term::from(Tuple::from(Vec::new())));
                let deserializer = TermDeserializer::child(self.depth, value)?;
                seed.deserialize(deserializer)
                    .map_err(|e| e.at(Segment::Variant(self.variant)))
            }
            payload => {
                let expected = format!("{{'{}', Value}}", self.variant);
                Err(VariantDeserializer { payload, ..self }.mismatch(expected))
            }
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.payload {
            Some(rest) if rest.len() == len => {
                let depth = self.depth + 1;
                if depth > MAX_DEPTH {
                    return Err(Error::message("the term nests too deep"));
                }
                let variant = self.variant;
                visit_elements(rest, depth, visitor).map_err(|e| e.at(Segment::Variant(variant)))
            }
            payload => {
                let expected = format!("a tuple of {} tagged '{}'", len + 1, self.variant);
                Err(VariantDeserializer { payload, ..self }.mismatch(expected))
            }
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.payload {
            Some(rest) if rest.len() == 1 && matches!(rest[0], Term::Map(_)) => {
                let map = match rest.into_iter().next() {
                    Some(Term::Map(map)) => map.map,
                    _ => Default::default(),
                };
                let depth = self.depth + 1;
                if depth > MAX_DEPTH {
                    return Err(Error::message("the term nests too deep"));
                }
                let result = visitor.visit_map(MapDeserializer::new(map, depth));
                result.map_err(|e| self_at(&self.variant, e))
            }
            payload => {
                let expected = format!("{{'{}', #{{...}}}}", self.variant);
                Err(VariantDeserializer { payload, ..self }.mismatch(expected))
            }
        }
    }
}

fn self_at(variant: &str, error: Error) -> Error {
    error.at(Segment::Variant(variant.to_owned()))
}

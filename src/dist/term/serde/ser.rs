//! Rust values to terms: the serializer half of the bridge (mapping in `serde.rs`).

use std::cell::Cell;
use std::collections::HashMap;

use eetf::{BigInteger, Binary, FixInteger, Float, List, Map, Tuple};
use serde::ser::{self, Serialize};

use super::{Error, Segment, key_segment};
use crate::dist::term::Term;

/// Erlang's limit on an atom's length, in characters.
const MAX_ATOM_CHARS: usize = 255;

/// Serializes one value to a term.
///
/// `byte` is set by a sequence for its element: `serialize_u8` marks it, so that a
/// sequence of `u8`s becomes a binary as [`crate::dist::ToTerm`] writes `Vec<u8>`.
pub(super) struct TermSerializer<'a> {
    byte: Option<&'a Cell<bool>>,
}

impl TermSerializer<'_> {
    pub(super) fn new() -> TermSerializer<'static> {
        TermSerializer { byte: None }
    }
}

pub(super) fn atom(name: &str) -> Result<Term, Error> {
    if name.chars().count() > MAX_ATOM_CHARS {
        return Err(Error::message(format!(
            "the name {name:?} is longer than an atom's {MAX_ATOM_CHARS} characters"
        )));
    }
    Ok(Term::from(eetf::Atom::from(name)))
}

fn integer(value: i128) -> Term {
    if let Ok(small) = i32::try_from(value) {
        return Term::from(FixInteger::from(small));
    }
    if let Ok(wide) = i64::try_from(value) {
        return Term::from(BigInteger::from(wide));
    }
    // value = high * 2^64 + low, built from parts eetf can convert.
    let high = (value >> 64) as i64;
    let low = value as u64;
    let base = BigInteger::from(u64::MAX).value + BigInteger::from(1u8).value;
    Term::from(BigInteger {
        value: BigInteger::from(high).value * base + BigInteger::from(low).value,
    })
}

fn unsigned(value: u128) -> Term {
    match i128::try_from(value) {
        Ok(value) => integer(value),
        Err(_) => {
            let high = (value >> 64) as u64;
            let low = value as u64;
            let base = BigInteger::from(u64::MAX).value + BigInteger::from(1u8).value;
            Term::from(BigInteger {
                value: BigInteger::from(high).value * base + BigInteger::from(low).value,
            })
        }
    }
}

fn tuple(elements: Vec<Term>) -> Term {
    Term::from(Tuple::from(elements))
}

/// The tag of a variant: `Result`'s `Ok` / `Err` are Erlang's `ok` / `error`.
fn variant_tag(name: &str, variant: &str) -> Result<Term, Error> {
    match (name, variant) {
        ("Result", "Ok") => atom("ok"),
        ("Result", "Err") => atom("error"),
        _ => atom(variant),
    }
}

fn nested<T: Serialize + ?Sized>(value: &T) -> Result<Term, Error> {
    value.serialize(TermSerializer::new())
}

impl<'a> ser::Serializer for TermSerializer<'a> {
    type Ok = Term;
    type Error = Error;
    type SerializeSeq = SeqSerializer;
    type SerializeTuple = TupleSerializer;
    type SerializeTupleStruct = TupleSerializer;
    type SerializeTupleVariant = TupleSerializer;
    type SerializeMap = MapSerializer;
    type SerializeStruct = StructSerializer;
    type SerializeStructVariant = StructSerializer;

    fn serialize_bool(self, value: bool) -> Result<Term, Error> {
        atom(if value { "true" } else { "false" })
    }

    fn serialize_i8(self, value: i8) -> Result<Term, Error> {
        Ok(integer(i128::from(value)))
    }

    fn serialize_i16(self, value: i16) -> Result<Term, Error> {
        Ok(integer(i128::from(value)))
    }

    fn serialize_i32(self, value: i32) -> Result<Term, Error> {
        Ok(integer(i128::from(value)))
    }

    fn serialize_i64(self, value: i64) -> Result<Term, Error> {
        Ok(integer(i128::from(value)))
    }

    fn serialize_i128(self, value: i128) -> Result<Term, Error> {
        Ok(integer(value))
    }

    fn serialize_u8(self, value: u8) -> Result<Term, Error> {
        if let Some(byte) = self.byte {
            byte.set(true);
        }
        Ok(integer(i128::from(value)))
    }

    fn serialize_u16(self, value: u16) -> Result<Term, Error> {
        Ok(integer(i128::from(value)))
    }

    fn serialize_u32(self, value: u32) -> Result<Term, Error> {
        Ok(integer(i128::from(value)))
    }

    fn serialize_u64(self, value: u64) -> Result<Term, Error> {
        Ok(integer(i128::from(value)))
    }

    fn serialize_u128(self, value: u128) -> Result<Term, Error> {
        Ok(unsigned(value))
    }

    fn serialize_f32(self, value: f32) -> Result<Term, Error> {
        self.serialize_f64(f64::from(value))
    }

    fn serialize_f64(self, value: f64) -> Result<Term, Error> {
        // Erlang has no NaN or infinities; an error beats a silent `undefined`.
        match Float::try_from(value) {
            Ok(float) => Ok(Term::from(float)),
            Err(_) => Err(Error::message(format!(
                "{value} is not a finite float, which Erlang cannot represent"
            ))),
        }
    }

    fn serialize_char(self, value: char) -> Result<Term, Error> {
        Ok(integer(i128::from(u32::from(value))))
    }

    fn serialize_str(self, value: &str) -> Result<Term, Error> {
        Ok(Term::from(Binary::from(value.as_bytes())))
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<Term, Error> {
        Ok(Term::from(Binary::from(value)))
    }

    fn serialize_none(self) -> Result<Term, Error> {
        atom("undefined")
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Term, Error> {
        nested(value)
    }

    fn serialize_unit(self) -> Result<Term, Error> {
        Ok(tuple(Vec::new()))
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<Term, Error> {
        atom(name)
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Term, Error> {
        variant_tag(name, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Term, Error> {
        nested(value)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Term, Error> {
        let tag = variant_tag(name, variant)?;
        let value = nested(value).map_err(|e| e.at(Segment::Variant(variant.to_owned())))?;
        Ok(tuple(vec![tag, value]))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSerializer, Error> {
        Ok(SeqSerializer {
            elements: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            all_bytes: true,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<TupleSerializer, Error> {
        Ok(TupleSerializer::new(len, None))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<TupleSerializer, Error> {
        Ok(TupleSerializer::new(len, None))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<TupleSerializer, Error> {
        let tag = variant_tag(name, variant)?;
        Ok(TupleSerializer::new(len, Some((tag, variant))))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapSerializer, Error> {
        Ok(MapSerializer {
            map: HashMap::new(),
            key: None,
        })
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<StructSerializer, Error> {
        Ok(StructSerializer {
            map: HashMap::new(),
            variant: None,
        })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<StructSerializer, Error> {
        let tag = variant_tag(name, variant)?;
        Ok(StructSerializer {
            map: HashMap::new(),
            variant: Some((tag, variant)),
        })
    }
}

/// A sequence: a list, or a binary when every element was a `u8`.
pub(super) struct SeqSerializer {
    elements: Vec<Term>,
    all_bytes: bool,
}

impl ser::SerializeSeq for SeqSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let byte = Cell::new(false);
        let index = self.elements.len();
        let term = value
            .serialize(TermSerializer { byte: Some(&byte) })
            .map_err(|e| e.at(Segment::Index(index)))?;
        self.all_bytes &= byte.get();
        self.elements.push(term);
        Ok(())
    }

    fn end(self) -> Result<Term, Error> {
        if self.all_bytes && !self.elements.is_empty() {
            let bytes = self
                .elements
                .iter()
                .map(|e| match e {
                    Term::FixInteger(fix) => u8::try_from(fix.value).ok(),
                    _ => None,
                })
                .collect::<Option<Vec<u8>>>();
            if let Some(bytes) = bytes {
                return Ok(Term::from(Binary::from(bytes)));
            }
        }
        Ok(Term::from(List::from(self.elements)))
    }
}

/// A tuple, a tuple struct, or a tuple variant (whose tag comes first).
pub(super) struct TupleSerializer {
    elements: Vec<Term>,
    variant: Option<&'static str>,
}

impl TupleSerializer {
    fn new(len: usize, variant: Option<(Term, &'static str)>) -> TupleSerializer {
        let mut elements = Vec::with_capacity(len.saturating_add(1).min(4096));
        let variant = variant.map(|(tag, name)| {
            elements.push(tag);
            name
        });
        TupleSerializer { elements, variant }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let index = self.elements.len() - usize::from(self.variant.is_some());
        let term = nested(value).map_err(|e| {
            let e = e.at(Segment::Index(index));
            match self.variant {
                Some(name) => e.at(Segment::Variant(name.to_owned())),
                None => e,
            }
        })?;
        self.elements.push(term);
        Ok(())
    }
}

impl ser::SerializeTuple for TupleSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(tuple(self.elements))
    }
}

impl ser::SerializeTupleStruct for TupleSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(tuple(self.elements))
    }
}

impl ser::SerializeTupleVariant for TupleSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(tuple(self.elements))
    }
}

/// A map; keys convert like values.
pub(super) struct MapSerializer {
    map: HashMap<Term, Term>,
    key: Option<Term>,
}

impl ser::SerializeMap for MapSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(nested(key)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error::message("a map value came without its key"))?;
        let value = nested(value).map_err(|e| e.at(key_segment(&key)))?;
        self.map.insert(key, value);
        Ok(())
    }

    fn end(self) -> Result<Term, Error> {
        Ok(Term::from(Map::from(self.map)))
    }
}

/// A struct (a map with atom keys), or a struct variant (`{Tag, Map}`).
pub(super) struct StructSerializer {
    map: HashMap<Term, Term>,
    variant: Option<(Term, &'static str)>,
}

impl StructSerializer {
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        let value = nested(value).map_err(|e| {
            let e = e.at(Segment::Field(key.to_owned()));
            match &self.variant {
                Some((_, name)) => e.at(Segment::Variant((*name).to_owned())),
                None => e,
            }
        })?;
        self.map.insert(atom(key)?, value);
        Ok(())
    }

    fn finish(self) -> Term {
        let map = Term::from(Map::from(self.map));
        match self.variant {
            Some((tag, _)) => tuple(vec![tag, map]),
            None => map,
        }
    }
}

impl ser::SerializeStruct for StructSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for StructSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}

//! [`Atom`], an Erlang atom as a Rust value.

use std::fmt;

/// An Erlang atom, such as `ok`, `undefined` or a registered name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Atom(String);

impl Atom {
    /// The atom with this text.
    pub fn new(name: impl Into<String>) -> Atom {
        Atom(name.into())
    }

    /// The atom's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Atom {
    fn from(name: &str) -> Atom {
        Atom::new(name)
    }
}

impl From<eetf::Atom> for Atom {
    fn from(atom: eetf::Atom) -> Atom {
        Atom(atom.name)
    }
}

impl From<Atom> for eetf::Atom {
    fn from(atom: Atom) -> eetf::Atom {
        eetf::Atom::from(atom.0)
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0)
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

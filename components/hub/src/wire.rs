//! The messages hubs exchange, as terms: `{hub_<kind>, Field...}` tuples sent to the
//! coordinator registered as `otp_hub.<hub_id>` on each node.
//!
//! Decoding is total: a term of any other shape is a [`DistError`], never a panic
//! (`tests::random_and_mutated_terms_never_panic`).

use otp_threads::dist::eetf::Tuple;
use otp_threads::dist::{Atom, DistError, FromTerm, Term, ToTerm};
use otp_threads::{ExitReason, Pid};

/// A message between hubs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WireMsg {
    /// A hub of this id runs on `from`, whose members are `members`; answered with
    /// `Welcome`. Members not known yet are greeted in turn, which connects to them:
    /// the hubs keep a full mesh as `global` makes BEAM nodes do.
    Hello { from: String, members: Vec<String> },
    /// The answer to `Hello`.
    Welcome { from: String, members: Vec<String> },
    /// Start child `id` here; the result goes to `origin`'s hub with `token`.
    Start {
        token: u64,
        origin: String,
        id: String,
        args: Term,
    },
    /// The result of a `Start`: the child's pid (and whether it ran already), or why
    /// it failed, as an exit reason (`{error, Reason}` on the wire).
    Started {
        token: u64,
        id: String,
        node: String,
        result: Result<Started, ExitReason>,
    },
    /// Stop the local copy of `id`; the result goes to `origin`.
    Stop {
        token: u64,
        origin: String,
        id: String,
    },
    /// The result of a `Stop`: whether a copy ran there.
    Stopped {
        token: u64,
        id: String,
        node: String,
        found: bool,
    },
    /// A copy of `id` runs on `node` as `pid`.
    Register {
        id: String,
        node: String,
        pid: Pid,
        args: Term,
    },
    /// The copy of `id` on `node` has stopped.
    Unregister { id: String, node: String },
    /// A child's state for its copy here (running or not yet started).
    Handover {
        id: String,
        state: Option<Term>,
        confirm_to: Option<String>,
    },
    /// `node` received the state of `id`.
    HandoverConfirmed { id: String, node: String },
    /// Every child running on `node` now: (id, pid, args), and the members `node`
    /// knows (a receiver connects to those it is not connected to: the full mesh).
    Sync {
        node: String,
        children: Vec<(String, Pid, Term)>,
        members: Vec<String>,
    },
    /// `node`'s hub leaves in an orderly way; its children's states were sent before.
    Leaving { node: String },
}

/// A successful start: a new copy, or the one that ran there already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Started {
    pub(crate) pid: Pid,
    /// The copy ran before this start (`{error, {already_started, Pid}}` in OTP; here
    /// `{already_started, Pid}`): a migration to it hands nothing over.
    pub(crate) existing: bool,
}

fn tagged(tag: &str, mut fields: Vec<Term>) -> Term {
    fields.insert(0, Atom::from(tag).to_term());
    Term::from(Tuple::from(fields))
}

fn mismatch(term: Term) -> DistError {
    DistError::Mismatch {
        expected: "a hub message {hub_<kind>, ...}",
        found: Box::new(term),
    }
}

/// `{some, Value}` or `none`.
pub(crate) fn option_term<T: ToTerm>(value: &Option<T>) -> Term {
    match value {
        Some(value) => (Atom::from("some"), value.to_term()).to_term(),
        None => Atom::from("none").to_term(),
    }
}

/// Decodes `{some, Value}` or `none`.
pub(crate) fn from_option<T: FromTerm>(term: Term) -> Result<Option<T>, DistError> {
    if matches!(&term, Term::Atom(atom) if atom.name == "none") {
        return Ok(None);
    }
    let (tag, value): (Atom, Term) = FromTerm::from_term(term)?;
    if tag.as_str() != "some" {
        return Err(mismatch(value));
    }
    Ok(Some(T::from_term(value)?))
}

impl ToTerm for WireMsg {
    fn to_term(&self) -> Term {
        match self {
            WireMsg::Hello { from, members } => {
                tagged("hub_hello", vec![from.to_term(), members.to_term()])
            }
            WireMsg::Welcome { from, members } => {
                tagged("hub_welcome", vec![from.to_term(), members.to_term()])
            }
            WireMsg::Start {
                token,
                origin,
                id,
                args,
            } => tagged(
                "hub_start",
                vec![
                    token.to_term(),
                    origin.to_term(),
                    id.to_term(),
                    args.clone(),
                ],
            ),
            WireMsg::Started {
                token,
                id,
                node,
                result,
            } => {
                let result = match result {
                    Ok(Started {
                        pid,
                        existing: false,
                    }) => (Atom::from("ok"), *pid).to_term(),
                    Ok(Started {
                        pid,
                        existing: true,
                    }) => (Atom::from("already_started"), *pid).to_term(),
                    Err(reason) => (Atom::from("error"), reason.to_term()).to_term(),
                };
                tagged(
                    "hub_started",
                    vec![token.to_term(), id.to_term(), node.to_term(), result],
                )
            }
            WireMsg::Stop { token, origin, id } => tagged(
                "hub_stop",
                vec![token.to_term(), origin.to_term(), id.to_term()],
            ),
            WireMsg::Stopped {
                token,
                id,
                node,
                found,
            } => tagged(
                "hub_stopped",
                vec![
                    token.to_term(),
                    id.to_term(),
                    node.to_term(),
                    found.to_term(),
                ],
            ),
            WireMsg::Register {
                id,
                node,
                pid,
                args,
            } => tagged(
                "hub_register",
                vec![id.to_term(), node.to_term(), pid.to_term(), args.clone()],
            ),
            WireMsg::Unregister { id, node } => {
                tagged("hub_unregister", vec![id.to_term(), node.to_term()])
            }
            WireMsg::Handover {
                id,
                state,
                confirm_to,
            } => tagged(
                "hub_handover",
                vec![id.to_term(), option_term(state), option_term(confirm_to)],
            ),
            WireMsg::HandoverConfirmed { id, node } => {
                tagged("hub_handover_confirmed", vec![id.to_term(), node.to_term()])
            }
            WireMsg::Sync {
                node,
                children,
                members,
            } => tagged(
                "hub_sync",
                vec![node.to_term(), children.to_term(), members.to_term()],
            ),
            WireMsg::Leaving { node } => tagged("hub_leaving", vec![node.to_term()]),
        }
    }
}

/// Takes the fields of a tagged tuple one by one.
struct Fields {
    fields: std::vec::IntoIter<Term>,
}

impl Fields {
    fn next<T: FromTerm>(&mut self) -> Result<T, DistError> {
        let field = self.fields.next().ok_or(DistError::Mismatch {
            expected: "more fields in a hub message",
            found: Box::new(Atom::from("missing").to_term()),
        })?;
        T::from_term(field)
    }

    fn raw(&mut self) -> Result<Term, DistError> {
        self.next::<Term>()
    }
}

impl FromTerm for WireMsg {
    fn from_term(term: Term) -> Result<Self, DistError> {
        let Term::Tuple(tuple) = term else {
            return Err(mismatch(term));
        };
        let mut elements = tuple.elements.into_iter();
        let tag = match elements.next() {
            Some(Term::Atom(atom)) => atom.name,
            Some(other) => return Err(mismatch(other)),
            None => return Err(mismatch(Term::from(Tuple::from(Vec::new())))),
        };
        let arity = elements.len();
        let mut f = Fields { fields: elements };
        let expect = |n: usize| -> Result<(), DistError> {
            if arity == n {
                Ok(())
            } else {
                Err(DistError::Mismatch {
                    expected: "a hub message of the right arity",
                    found: Box::new(Atom::new(tag.clone()).to_term()),
                })
            }
        };
        let msg = match tag.as_str() {
            "hub_hello" => {
                expect(2)?;
                WireMsg::Hello {
                    from: f.next()?,
                    members: f.next()?,
                }
            }
            "hub_welcome" => {
                expect(2)?;
                WireMsg::Welcome {
                    from: f.next()?,
                    members: f.next()?,
                }
            }
            "hub_start" => {
                expect(4)?;
                WireMsg::Start {
                    token: f.next()?,
                    origin: f.next()?,
                    id: f.next()?,
                    args: f.raw()?,
                }
            }
            "hub_started" => {
                expect(4)?;
                let token = f.next()?;
                let id = f.next()?;
                let node = f.next()?;
                let (status, value): (Atom, Term) = f.next()?;
                let result = match status.as_str() {
                    "ok" => Ok(Started {
                        pid: Pid::from_term(value)?,
                        existing: false,
                    }),
                    "already_started" => Ok(Started {
                        pid: Pid::from_term(value)?,
                        existing: true,
                    }),
                    "error" => Err(ExitReason::from_term(value)?),
                    _ => return Err(mismatch(value)),
                };
                WireMsg::Started {
                    token,
                    id,
                    node,
                    result,
                }
            }
            "hub_stop" => {
                expect(3)?;
                WireMsg::Stop {
                    token: f.next()?,
                    origin: f.next()?,
                    id: f.next()?,
                }
            }
            "hub_stopped" => {
                expect(4)?;
                WireMsg::Stopped {
                    token: f.next()?,
                    id: f.next()?,
                    node: f.next()?,
                    found: f.next()?,
                }
            }
            "hub_register" => {
                expect(4)?;
                WireMsg::Register {
                    id: f.next()?,
                    node: f.next()?,
                    pid: f.next()?,
                    args: f.raw()?,
                }
            }
            "hub_unregister" => {
                expect(2)?;
                WireMsg::Unregister {
                    id: f.next()?,
                    node: f.next()?,
                }
            }
            "hub_handover" => {
                expect(3)?;
                WireMsg::Handover {
                    id: f.next()?,
                    state: from_option(f.raw()?)?,
                    confirm_to: from_option(f.raw()?)?,
                }
            }
            "hub_handover_confirmed" => {
                expect(2)?;
                WireMsg::HandoverConfirmed {
                    id: f.next()?,
                    node: f.next()?,
                }
            }
            "hub_sync" => {
                expect(3)?;
                WireMsg::Sync {
                    node: f.next()?,
                    children: f.next()?,
                    members: f.next()?,
                }
            }
            "hub_leaving" => {
                expect(1)?;
                WireMsg::Leaving { node: f.next()? }
            }
            _ => return Err(mismatch(Atom::new(tag).to_term())),
        };
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_threads::NodeName;
    use otp_threads::dist::term;

    fn samples() -> Vec<WireMsg> {
        let pid = Pid::from_parts(NodeName::new("a@h"), 7, 0, 1);
        vec![
            WireMsg::Hello {
                from: "a@h".into(),
                members: vec!["a@h".into(), "c@h".into()],
            },
            WireMsg::Welcome {
                from: "b@h".into(),
                members: vec![],
            },
            WireMsg::Start {
                token: u64::MAX,
                origin: "a@h".into(),
                id: "c1".into(),
                args: (1i32, "x").to_term(),
            },
            WireMsg::Started {
                token: 3,
                id: "c1".into(),
                node: "b@h".into(),
                result: Ok(Started {
                    pid,
                    existing: false,
                }),
            },
            WireMsg::Started {
                token: 3,
                id: "c1".into(),
                node: "b@h".into(),
                result: Ok(Started {
                    pid,
                    existing: true,
                }),
            },
            WireMsg::Started {
                token: 3,
                id: "c1".into(),
                node: "b@h".into(),
                result: Err(ExitReason::error("init failed")),
            },
            WireMsg::Started {
                token: 3,
                id: "c1".into(),
                node: "b@h".into(),
                result: Err(ExitReason::shutdown_with("not here")),
            },
            WireMsg::Stop {
                token: 4,
                origin: "a@h".into(),
                id: "c1".into(),
            },
            WireMsg::Stopped {
                token: 4,
                id: "c1".into(),
                node: "a@h".into(),
                found: true,
            },
            WireMsg::Register {
                id: "c1".into(),
                node: "a@h".into(),
                pid,
                args: Atom::from("none").to_term(),
            },
            WireMsg::Unregister {
                id: "c1".into(),
                node: "a@h".into(),
            },
            WireMsg::Handover {
                id: "c1".into(),
                state: Some(42i64.to_term()),
                confirm_to: Some("a@h".into()),
            },
            WireMsg::Handover {
                id: "c1".into(),
                state: None,
                confirm_to: None,
            },
            WireMsg::HandoverConfirmed {
                id: "c1".into(),
                node: "b@h".into(),
            },
            WireMsg::Sync {
                node: "a@h".into(),
                children: vec![("c1".into(), pid, 1i32.to_term())],
                members: vec!["a@h".into(), "b@h".into()],
            },
            WireMsg::Leaving { node: "a@h".into() },
        ]
    }

    #[test]
    fn every_message_survives_encoding_and_decoding() {
        for msg in samples() {
            let bytes = term::encode(&msg.to_term()).unwrap();
            let back = WireMsg::from_term(term::decode(&bytes).unwrap()).unwrap();
            assert_eq!(back, msg);
        }
    }

    #[test]
    fn wrong_shapes_are_errors() {
        for bad in [
            Atom::from("hub_hello").to_term(),
            (Atom::from("hub_hello"), "a@h").to_term(),
            (Atom::from("hub_unknown"), 1i32).to_term(),
            (Atom::from("hub_start"), 1i32, 2i32, 3i32, 4i32).to_term(),
            (1i32, 2i32).to_term(),
        ] {
            assert!(WireMsg::from_term(bad).is_err());
        }
    }

    /// xorshift64*: a fixed-seed source for the fuzz loop, no dependency.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn random_and_mutated_terms_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let encoded: Vec<Vec<u8>> = samples()
            .iter()
            .map(|m| term::encode(&m.to_term()).unwrap())
            .collect();
        for round in 0..20_000 {
            let mut bytes = if round % 4 == 0 {
                let len = (next(&mut seed) % 64) as usize;
                let mut random = vec![131u8];
                random.extend((0..len).map(|_| next(&mut seed) as u8));
                random
            } else {
                encoded[(next(&mut seed) as usize) % encoded.len()].clone()
            };
            for _ in 0..1 + next(&mut seed) % 4 {
                let at = (next(&mut seed) as usize) % bytes.len();
                bytes[at] = next(&mut seed) as u8;
            }
            if next(&mut seed).is_multiple_of(5) {
                let keep = (next(&mut seed) as usize) % bytes.len();
                bytes.truncate(keep.max(1));
            }
            if let Ok(term) = term::decode(&bytes) {
                let _ = WireMsg::from_term(term);
            }
        }
    }
}

//! The messages of a cross-region write: [`WriteRequest`] (application node to
//! [`PrimaryWriter`](crate::PrimaryWriter)) and [`WriteReply`] (back), and their terms.
//!
//! Contract:
//! - A request names one of the writer's registered operations, carries its parameters
//!   ([`Param`]: integers, floats, text, bytes, booleans; never SQL text) and an
//!   *idempotency key* the caller chooses. The writer records the key in the same
//!   transaction as the write, so a request resent with the same key is never applied
//!   twice: it is answered [`WriteReply::AlreadyCommitted`].
//! - [`WriteRequest::new`] validates: the key is 1 to [`MAX_KEY_BYTES`] bytes, the
//!   operation 1 to [`MAX_OPERATION_BYTES`] bytes, at most [`MAX_PARAMS`] parameters;
//!   a violation is [`LsnError::InvalidOption`] naming `idempotency_key`, `operation`
//!   or `params`. The writer applies the same checks to what arrives.
//! - Terms: a request is `{otp_threads_lsn_write, Key, Operation, [Param]}` with `Key`
//!   and `Operation` binaries and a `Param` an integer, a float, a binary (UTF-8 text),
//!   `{bytes, Binary}`, `true` or `false`. Replies: `{committed, Lsn, Rows}`,
//!   `{already_committed, Lsn, Rows}`, `{committed_unawaitable, Rows, Reason}`,
//!   `{rejected, Why, Detail}`, `{not_committed, SqlState | undefined, Message}`,
//!   `{unknown, Message}`, an `Lsn` as its 64-bit integer value. Any BEAM node can send
//!   and read them.
//! - Decoding a request never fails: a term of another shape becomes
//!   [`WriterCall::Malformed`], which the writer answers with
//!   [`WriteReply::Rejected`] (so a malformed request gets an answer instead of a
//!   timeout). Decoding a reply of another shape is a `DistError::Mismatch`.

use otp_threads::dist::eetf::{self, Binary, List, Tuple};
use otp_threads::dist::{DistError, FromTerm, Term, ToTerm};

use crate::error::LsnError;
use crate::position::Lsn;

/// The longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 200;
/// The longest operation name, in bytes.
pub const MAX_OPERATION_BYTES: usize = 63;
/// The most parameters one request carries.
pub const MAX_PARAMS: usize = 64;

/// The atom that opens a request tuple.
const REQUEST_TAG: &str = "otp_threads_lsn_write";

/// One parameter of a write operation, bound as a SQL parameter (never spliced into SQL).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A 64-bit integer (`int8`; cast in SQL, e.g. `$1::int4`, for other widths).
    Int(i64),
    /// A float (`float8`).
    Float(f64),
    /// UTF-8 text (`text`).
    Text(String),
    /// Bytes (`bytea`).
    Bytes(Vec<u8>),
    /// A boolean.
    Bool(bool),
}

/// A write the caller asks a [`PrimaryWriter`](crate::PrimaryWriter) to run.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    key: String,
    operation: String,
    params: Vec<Param>,
}

impl WriteRequest {
    /// A request to run `operation` with `params`, recorded under `key` (unique per
    /// intended write: resending the same write uses the same key).
    pub fn new(
        key: impl Into<String>,
        operation: impl Into<String>,
        params: Vec<Param>,
    ) -> Result<WriteRequest, LsnError> {
        let request = WriteRequest {
            key: key.into(),
            operation: operation.into(),
            params,
        };
        validate_request(&request)?;
        Ok(request)
    }

    /// The idempotency key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operation's registered name.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }
}

/// Checks every field of a request.
pub(crate) fn validate_request(request: &WriteRequest) -> Result<(), LsnError> {
    validate_key(&request.key)?;
    validate_operation_name(&request.operation)?;
    validate_params(&request.params)
}

fn validate_key(key: &str) -> Result<(), LsnError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(LsnError::InvalidOption {
            option: "idempotency_key",
            reason: format!("must be 1 to {MAX_KEY_BYTES} bytes, is {}", key.len()),
        });
    }
    Ok(())
}

/// Checks an operation name (also used when operations are registered).
pub(crate) fn validate_operation_name(operation: &str) -> Result<(), LsnError> {
    if operation.is_empty() || operation.len() > MAX_OPERATION_BYTES {
        return Err(LsnError::InvalidOption {
            option: "operation",
            reason: format!(
                "must be 1 to {MAX_OPERATION_BYTES} bytes, is {}",
                operation.len()
            ),
        });
    }
    Ok(())
}

fn validate_params(params: &[Param]) -> Result<(), LsnError> {
    if params.len() > MAX_PARAMS {
        return Err(LsnError::InvalidOption {
            option: "params",
            reason: format!("at most {MAX_PARAMS} parameters, got {}", params.len()),
        });
    }
    Ok(())
}

/// Why a writer refused a request without running it (nothing was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The request term did not have a request's shape, or a field was out of bounds.
    Malformed,
    /// No operation of that name is registered with the writer.
    UnknownOperation,
    /// The key was recorded before for a different operation.
    KeyReused,
}

impl RejectReason {
    fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::UnknownOperation => "unknown_operation",
            RejectReason::KeyReused => "key_reused",
        }
    }

    fn parse(name: &str) -> Option<RejectReason> {
        Some(match name {
            "malformed" => RejectReason::Malformed,
            "unknown_operation" => RejectReason::UnknownOperation,
            "key_reused" => RejectReason::KeyReused,
            _ => return None,
        })
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a writer answers.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteReply {
    /// The write committed now; `lsn` is the commit's wait position
    /// ([`wal_wait_position`](crate::wal_wait_position)), `rows` what the operation
    /// returned (rows affected).
    Committed {
        /// The position a replica must replay for the write to be visible there.
        lsn: Lsn,
        /// The operation's row count.
        rows: u64,
    },
    /// The key was recorded by an earlier commit: nothing ran now. `lsn` is the
    /// primary's wait position now, at or past that earlier commit, so waiting for it is
    /// safe; `rows` is the count recorded then.
    AlreadyCommitted {
        /// A position at or past the earlier commit.
        lsn: Lsn,
        /// The row count recorded by the earlier commit.
        rows: u64,
    },
    /// The write committed, but its WAL position could not be read.
    CommittedUnawaitable {
        /// The operation's row count.
        rows: u64,
        /// Why the position could not be read.
        reason: String,
    },
    /// Refused before running anything.
    Rejected {
        /// Why.
        reason: RejectReason,
        /// Details for a log.
        detail: String,
    },
    /// The write failed and was rolled back (or never started): nothing committed.
    NotCommitted {
        /// The server's SQLSTATE, when the server refused.
        sqlstate: Option<String>,
        /// The error's text.
        message: String,
    },
    /// The connection failed while the commit was under way: the writer itself does
    /// not know whether it committed (the key tells, see
    /// [`recorded_write`](crate::recorded_write)).
    Unknown {
        /// The error's text.
        message: String,
    },
}

/// What a writer takes as a call: a request, or a term that was not one.
#[derive(Debug, Clone, PartialEq)]
pub enum WriterCall {
    /// A well-formed request.
    Write(WriteRequest),
    /// A term that is not a valid request, and why.
    Malformed(String),
}

fn atom(name: &str) -> Term {
    Term::from(eetf::Atom::from(name))
}

fn binary(text: &str) -> Term {
    Term::from(Binary::from(text.as_bytes()))
}

fn tuple(elements: Vec<Term>) -> Term {
    Term::from(Tuple::from(elements))
}

impl ToTerm for Param {
    fn to_term(&self) -> Term {
        match self {
            Param::Int(value) => value.to_term(),
            Param::Float(value) => value.to_term(),
            Param::Text(text) => binary(text),
            Param::Bytes(bytes) => tuple(vec![atom("bytes"), Term::from(Binary::from(&bytes[..]))]),
            Param::Bool(value) => value.to_term(),
        }
    }
}

impl FromTerm for Param {
    fn from_term(term: Term) -> Result<Self, DistError> {
        match term {
            Term::FixInteger(_) | Term::BigInteger(_) => i64::from_term(term).map(Param::Int),
            Term::Float(float) => Ok(Param::Float(float.value)),
            Term::Binary(_) => String::from_term(term).map(Param::Text),
            Term::Atom(ref name) if name.name == "true" || name.name == "false" => {
                bool::from_term(term).map(Param::Bool)
            }
            Term::Tuple(ref pair)
                if pair.elements.len() == 2
                    && matches!(&pair.elements[0], Term::Atom(a) if a.name == "bytes") =>
            {
                let Term::Tuple(pair) = term else {
                    unreachable!("matched a tuple")
                };
                let bytes = pair
                    .elements
                    .into_iter()
                    .nth(1)
                    .unwrap_or(atom("undefined"));
                match bytes {
                    Term::Binary(binary) => Ok(Param::Bytes(binary.bytes)),
                    other => Err(DistError::Mismatch {
                        expected: "a binary in {bytes, Binary}",
                        found: Box::new(other),
                    }),
                }
            }
            other => Err(DistError::Mismatch {
                expected: "a parameter (integer, float, binary, {bytes, Binary}, boolean)",
                found: Box::new(other),
            }),
        }
    }
}

impl ToTerm for WriteRequest {
    fn to_term(&self) -> Term {
        tuple(vec![
            atom(REQUEST_TAG),
            binary(&self.key),
            binary(&self.operation),
            Term::from(List::from(
                self.params.iter().map(ToTerm::to_term).collect::<Vec<_>>(),
            )),
        ])
    }
}

impl ToTerm for WriterCall {
    fn to_term(&self) -> Term {
        match self {
            WriterCall::Write(request) => request.to_term(),
            WriterCall::Malformed(reason) => tuple(vec![atom("malformed"), binary(reason)]),
        }
    }
}

/// Decodes a request term, saying what is wrong with it otherwise.
fn decode_request(term: Term) -> Result<WriteRequest, String> {
    let Term::Tuple(request) = term else {
        return Err(format!("expected a 4-tuple, got {term}"));
    };
    let [tag, key, operation, params]: [Term; 4] = request
        .elements
        .try_into()
        .map_err(|elements: Vec<Term>| format!("expected 4 elements, got {}", elements.len()))?;
    if !matches!(&tag, Term::Atom(a) if a.name == REQUEST_TAG) {
        return Err(format!("expected the tag {REQUEST_TAG}, got {tag}"));
    }
    let key = String::from_term(key).map_err(|e| format!("key: {e}"))?;
    let operation = String::from_term(operation).map_err(|e| format!("operation: {e}"))?;
    let params = Vec::<Param>::from_term(params).map_err(|e| format!("params: {e}"))?;
    WriteRequest::new(key, operation, params).map_err(|e| e.to_string())
}

impl FromTerm for WriterCall {
    fn from_term(term: Term) -> Result<Self, DistError> {
        Ok(match decode_request(term) {
            Ok(request) => WriterCall::Write(request),
            Err(reason) => WriterCall::Malformed(reason),
        })
    }
}

impl ToTerm for WriteReply {
    fn to_term(&self) -> Term {
        match self {
            WriteReply::Committed { lsn, rows } => tuple(vec![
                atom("committed"),
                lsn.as_u64().to_term(),
                rows.to_term(),
            ]),
            WriteReply::AlreadyCommitted { lsn, rows } => tuple(vec![
                atom("already_committed"),
                lsn.as_u64().to_term(),
                rows.to_term(),
            ]),
            WriteReply::CommittedUnawaitable { rows, reason } => tuple(vec![
                atom("committed_unawaitable"),
                rows.to_term(),
                binary(reason),
            ]),
            WriteReply::Rejected { reason, detail } => tuple(vec![
                atom("rejected"),
                atom(reason.as_str()),
                binary(detail),
            ]),
            WriteReply::NotCommitted { sqlstate, message } => tuple(vec![
                atom("not_committed"),
                sqlstate.as_deref().map_or(atom("undefined"), binary),
                binary(message),
            ]),
            WriteReply::Unknown { message } => tuple(vec![atom("unknown"), binary(message)]),
        }
    }
}

fn reply_mismatch(term: Term) -> DistError {
    DistError::Mismatch {
        expected: "a PrimaryWriter reply",
        found: Box::new(term),
    }
}

impl FromTerm for WriteReply {
    fn from_term(term: Term) -> Result<Self, DistError> {
        let Term::Tuple(reply) = term else {
            return Err(reply_mismatch(term));
        };
        let tag = match reply.elements.first() {
            Some(Term::Atom(tag)) => tag.name.clone(),
            _ => return Err(reply_mismatch(Term::from(reply))),
        };
        let arity = reply.elements.len();
        let expected_arity = match tag.as_str() {
            "unknown" => 2,
            "committed"
            | "already_committed"
            | "committed_unawaitable"
            | "rejected"
            | "not_committed" => 3,
            _ => 0,
        };
        if arity != expected_arity {
            return Err(reply_mismatch(Term::from(reply)));
        }
        let mut fields = reply.elements.into_iter().skip(1);
        // The arity was checked: both fields exist where they are read.
        let first = fields.next().unwrap_or_else(|| atom("undefined"));
        let second = fields.next().unwrap_or_else(|| atom("undefined"));
        match tag.as_str() {
            "committed" => Ok(WriteReply::Committed {
                lsn: Lsn::from(u64::from_term(first)?),
                rows: u64::from_term(second)?,
            }),
            "already_committed" => Ok(WriteReply::AlreadyCommitted {
                lsn: Lsn::from(u64::from_term(first)?),
                rows: u64::from_term(second)?,
            }),
            "committed_unawaitable" => Ok(WriteReply::CommittedUnawaitable {
                rows: u64::from_term(first)?,
                reason: String::from_term(second)?,
            }),
            "rejected" => {
                let reason = match &first {
                    Term::Atom(name) => RejectReason::parse(&name.name),
                    _ => None,
                };
                match reason {
                    Some(reason) => Ok(WriteReply::Rejected {
                        reason,
                        detail: String::from_term(second)?,
                    }),
                    None => Err(reply_mismatch(first)),
                }
            }
            "not_committed" => Ok(WriteReply::NotCommitted {
                sqlstate: Option::<String>::from_term(first)?,
                message: String::from_term(second)?,
            }),
            _ => Ok(WriteReply::Unknown {
                message: String::from_term(first)?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otp_threads_testkit::fuzz::Rng;

    fn request() -> WriteRequest {
        WriteRequest::new(
            "key-1",
            "add_note",
            vec![
                Param::Int(-7),
                Param::Float(1.5),
                Param::Text("hé".into()),
                Param::Bytes(vec![0, 255]),
                Param::Bool(true),
            ],
        )
        .unwrap()
    }

    fn replies() -> Vec<WriteReply> {
        vec![
            WriteReply::Committed {
                lsn: Lsn::from(0x1_0000_0028),
                rows: 1,
            },
            WriteReply::AlreadyCommitted {
                lsn: Lsn::from(u64::MAX),
                rows: 3,
            },
            WriteReply::CommittedUnawaitable {
                rows: 2,
                reason: "x".into(),
            },
            WriteReply::Rejected {
                reason: RejectReason::KeyReused,
                detail: "d".into(),
            },
            WriteReply::NotCommitted {
                sqlstate: Some("25006".into()),
                message: "m".into(),
            },
            WriteReply::NotCommitted {
                sqlstate: None,
                message: "m".into(),
            },
            WriteReply::Unknown {
                message: "lost".into(),
            },
        ]
    }

    #[test]
    fn requests_and_replies_round_trip_through_terms() {
        let call = WriterCall::from_term(request().to_term()).unwrap();
        assert_eq!(call, WriterCall::Write(request()));
        for reply in replies() {
            assert_eq!(WriteReply::from_term(reply.to_term()).unwrap(), reply);
        }
    }

    #[test]
    fn request_fields_out_of_bounds_are_rejected_naming_the_option() {
        let too_long = "k".repeat(MAX_KEY_BYTES + 1);
        for (result, option) in [
            (WriteRequest::new("", "op", vec![]), "idempotency_key"),
            (WriteRequest::new(too_long, "op", vec![]), "idempotency_key"),
            (WriteRequest::new("k", "", vec![]), "operation"),
            (
                WriteRequest::new("k", "op", vec![Param::Int(0); MAX_PARAMS + 1]),
                "params",
            ),
        ] {
            match result {
                Err(LsnError::InvalidOption { option: named, .. }) => assert_eq!(named, option),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_malformed_request_term_becomes_malformed_not_an_error() {
        for term in [atom("hello"), tuple(vec![atom(REQUEST_TAG)]), binary("x")] {
            assert!(matches!(
                WriterCall::from_term(term),
                Ok(WriterCall::Malformed(_))
            ));
        }
        assert!(WriteReply::from_term(atom("committed")).is_err());
        assert!(WriteReply::from_term(tuple(vec![atom("committed"), atom("x")])).is_err());
    }

    fn random_term(rng: &mut Rng, depth: u32) -> Term {
        let leaf = depth == 0;
        match rng.below(if leaf { 6 } else { 8 }) {
            0 => (rng.next_u64() as i64).to_term(),
            1 => atom(
                [
                    "committed",
                    "already_committed",
                    "rejected",
                    "unknown",
                    "not_committed",
                    "committed_unawaitable",
                    REQUEST_TAG,
                    "bytes",
                    "true",
                    "undefined",
                    "malformed",
                ][rng.below(11)],
            ),
            2 => Term::from(Binary::from(
                (0..rng.below(8))
                    .map(|_| rng.next_u64() as u8)
                    .collect::<Vec<_>>(),
            )),
            3 => (f64::from_bits(rng.next_u64())).to_term(),
            4 => (rng.next_u64() as u32).to_term(),
            5 => binary("add_note"),
            6 => tuple(
                (0..rng.below(6))
                    .map(|_| random_term(rng, depth - 1))
                    .collect(),
            ),
            _ => Term::from(List::from(
                (0..rng.below(5))
                    .map(|_| random_term(rng, depth - 1))
                    .collect::<Vec<_>>(),
            )),
        }
    }

    /// Replaces one random subterm of a valid message with a random term.
    fn mutate(term: Term, rng: &mut Rng) -> Term {
        match term {
            Term::Tuple(tuple) if rng.below(3) != 0 && !tuple.elements.is_empty() => {
                let mut elements = tuple.elements;
                let at = rng.below(elements.len());
                let old = std::mem::replace(&mut elements[at], atom("undefined"));
                elements[at] = mutate(old, rng);
                Term::from(Tuple::from(elements))
            }
            _ => random_term(rng, 2),
        }
    }

    #[test]
    fn random_and_mutated_terms_never_panic_the_decoders() {
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        let valid: Vec<Term> = std::iter::once(request().to_term())
            .chain(replies().iter().map(ToTerm::to_term))
            .collect();
        for round in 0..100_000 {
            let term = if round % 2 == 0 {
                random_term(&mut rng, 3)
            } else {
                let base = valid[rng.below(valid.len())].clone();
                mutate(base, &mut rng)
            };
            // A request never fails to decode: it is a request or Malformed.
            assert!(WriterCall::from_term(term.clone()).is_ok());
            let _ = WriteReply::from_term(term);
        }
    }
}

//! Control messages: the operations one node asks of another (send, link, exit,
//! monitor …), as frame bodies.
//!
//! A frame body without a distribution header (we never negotiate the atom cache) is
//! the pass-through tag 112, the control tuple as a term, and for some operations a
//! second term: the message of a send, or the reason of a `PAYLOAD_*` exit. Trace
//! token variants (`*_TT`) decode as their plain forms (the token is dropped: we do
//! not trace). Operations we do not handle decode as [`Control::Other`], so the
//! connection can log and drop them rather than fail.

use eetf::{FixInteger, Tuple};

use super::error::DistError;
use super::term::{self, Atom, FromTerm, Term, ToTerm};

/// The pass-through frame tag.
pub const PASS_THROUGH: u8 = 112;

const LINK: i32 = 1;
const SEND: i32 = 2;
const EXIT: i32 = 3;
const REG_SEND: i32 = 6;
const EXIT2: i32 = 8;
const SEND_TT: i32 = 12;
const EXIT_TT: i32 = 13;
const REG_SEND_TT: i32 = 16;
const EXIT2_TT: i32 = 18;
const MONITOR_P: i32 = 19;
const DEMONITOR_P: i32 = 20;
const MONITOR_P_EXIT: i32 = 21;
const SEND_SENDER: i32 = 22;
const SEND_SENDER_TT: i32 = 23;
const PAYLOAD_EXIT: i32 = 24;
const PAYLOAD_EXIT_TT: i32 = 25;
const PAYLOAD_EXIT2: i32 = 26;
const PAYLOAD_EXIT2_TT: i32 = 27;
const PAYLOAD_MONITOR_P_EXIT: i32 = 28;
const SPAWN_REQUEST: i32 = 29;
const SPAWN_REQUEST_TT: i32 = 30;
const ALIAS_SEND: i32 = 33;
const ALIAS_SEND_TT: i32 = 34;
const UNLINK_ID: i32 = 35;
const UNLINK_ID_ACK: i32 = 36;

/// A pid on the wire (eetf's form: the node name is not interned until it is needed).
pub type WirePid = eetf::Pid;
/// A reference on the wire.
pub type WireRef = eetf::Reference;

/// The target of a monitor: a pid or a registered name.
#[derive(Clone, Debug, PartialEq)]
pub enum ProcessRef {
    /// A pid.
    Pid(WirePid),
    /// A registered name on the receiving (or sending) node.
    Name(Atom),
}

/// A control message.
#[derive(Clone, Debug, PartialEq)]
pub enum Control {
    /// `{1, From, To}`: link.
    Link {
        /// The linking process.
        from: WirePid,
        /// The process linked to.
        to: WirePid,
    },
    /// `{2, '', To}` + message.
    Send {
        /// The receiver.
        to: WirePid,
    },
    /// `{3, From, To, Reason}`: a link broke.
    Exit {
        /// The exiting process.
        from: WirePid,
        /// The linked process.
        to: WirePid,
        /// The exit reason.
        reason: Term,
    },
    /// `{6, From, '', ToName}` + message.
    RegSend {
        /// The sender.
        from: WirePid,
        /// The registered name on the receiving node.
        to: Atom,
    },
    /// `{8, From, To, Reason}`: `exit/2`.
    Exit2 {
        /// The sender.
        from: WirePid,
        /// The receiver.
        to: WirePid,
        /// The reason.
        reason: Term,
    },
    /// `{19, From, ToProc, Ref}`: monitor.
    MonitorP {
        /// The monitoring process.
        from: WirePid,
        /// The monitored process (pid or name).
        to: ProcessRef,
        /// The monitor reference.
        reference: WireRef,
    },
    /// `{20, From, ToProc, Ref}`: demonitor.
    DemonitorP {
        /// The monitoring process.
        from: WirePid,
        /// The monitored process (pid or name).
        to: ProcessRef,
        /// The monitor reference.
        reference: WireRef,
    },
    /// `{21, FromProc, To, Ref, Reason}`: a monitored process died.
    MonitorPExit {
        /// The monitored process (pid or name).
        from: ProcessRef,
        /// The monitoring process.
        to: WirePid,
        /// The monitor reference.
        reference: WireRef,
        /// The exit reason.
        reason: Term,
    },
    /// `{22, From, To}` + message.
    SendSender {
        /// The sender.
        from: WirePid,
        /// The receiver.
        to: WirePid,
    },
    /// `{24, From, To}` + reason: a link broke.
    PayloadExit {
        /// The exiting process.
        from: WirePid,
        /// The linked process.
        to: WirePid,
    },
    /// `{26, From, To}` + reason: `exit/2`.
    PayloadExit2 {
        /// The sender.
        from: WirePid,
        /// The receiver.
        to: WirePid,
    },
    /// `{28, FromProc, To, Ref}` + reason: a monitored process died.
    PayloadMonitorPExit {
        /// The monitored process (pid or name).
        from: ProcessRef,
        /// The monitoring process.
        to: WirePid,
        /// The monitor reference.
        reference: WireRef,
    },
    /// `{33, From, Alias}` + message: send to a process alias.
    AliasSend {
        /// The sender.
        from: WirePid,
        /// The alias.
        alias: WireRef,
    },
    /// `{35, Id, From, To}`: unlink (new link protocol).
    UnlinkId {
        /// The unlink operation's id (1 ..= 2^64-1).
        id: u64,
        /// The unlinking process.
        from: WirePid,
        /// The process unlinked from.
        to: WirePid,
    },
    /// `{36, Id, From, To}`: unlink acknowledged.
    UnlinkIdAck {
        /// The id of the acknowledged `UNLINK_ID`.
        id: u64,
        /// The acknowledging process.
        from: WirePid,
        /// The process that sent the `UNLINK_ID`.
        to: WirePid,
    },
    /// Any other operation, with its tuple elements after the operation number.
    Other {
        /// The operation number.
        op: i32,
        /// The remaining tuple elements.
        elements: Vec<Term>,
    },
}

/// A decoded frame body.
#[derive(Clone, Debug, PartialEq)]
pub struct DistMessage {
    /// The control message.
    pub control: Control,
    /// The message of a send, or the reason of a `PAYLOAD_*` exit.
    pub payload: Option<Term>,
}

fn int(value: i32) -> Term {
    Term::from(FixInteger::from(value))
}

fn pid(p: &WirePid) -> Term {
    Term::from(p.clone())
}

fn reference(r: &WireRef) -> Term {
    Term::from(r.clone())
}

fn empty_atom() -> Term {
    Term::from(eetf::Atom::from(""))
}

fn process_ref(target: &ProcessRef) -> Term {
    match target {
        ProcessRef::Pid(p) => pid(p),
        ProcessRef::Name(name) => name.to_term(),
    }
}

impl Control {
    /// Whether a second term (message or reason) follows this control message.
    pub fn has_payload(&self) -> bool {
        matches!(
            self,
            Control::Send { .. }
                | Control::RegSend { .. }
                | Control::SendSender { .. }
                | Control::PayloadExit { .. }
                | Control::PayloadExit2 { .. }
                | Control::PayloadMonitorPExit { .. }
                | Control::AliasSend { .. }
        )
    }

    /// The control tuple.
    pub fn to_tuple(&self) -> Term {
        let elements = match self {
            Control::Link { from, to } => vec![int(LINK), pid(from), pid(to)],
            Control::Send { to } => vec![int(SEND), empty_atom(), pid(to)],
            Control::Exit { from, to, reason } => {
                vec![int(EXIT), pid(from), pid(to), reason.clone()]
            }
            Control::RegSend { from, to } => {
                vec![int(REG_SEND), pid(from), empty_atom(), to.to_term()]
            }
            Control::Exit2 { from, to, reason } => {
                vec![int(EXIT2), pid(from), pid(to), reason.clone()]
            }
            Control::MonitorP {
                from,
                to,
                reference: r,
            } => vec![int(MONITOR_P), pid(from), process_ref(to), reference(r)],
            Control::DemonitorP {
                from,
                to,
                reference: r,
            } => vec![int(DEMONITOR_P), pid(from), process_ref(to), reference(r)],
            Control::MonitorPExit {
                from,
                to,
                reference: r,
                reason,
            } => vec![
                int(MONITOR_P_EXIT),
                process_ref(from),
                pid(to),
                reference(r),
                reason.clone(),
            ],
            Control::SendSender { from, to } => vec![int(SEND_SENDER), pid(from), pid(to)],
            Control::PayloadExit { from, to } => vec![int(PAYLOAD_EXIT), pid(from), pid(to)],
            Control::PayloadExit2 { from, to } => vec![int(PAYLOAD_EXIT2), pid(from), pid(to)],
            Control::PayloadMonitorPExit {
                from,
                to,
                reference: r,
            } => vec![
                int(PAYLOAD_MONITOR_P_EXIT),
                process_ref(from),
                pid(to),
                reference(r),
            ],
            Control::AliasSend { from, alias } => {
                vec![int(ALIAS_SEND), pid(from), reference(alias)]
            }
            Control::UnlinkId { id, from, to } => {
                vec![int(UNLINK_ID), id.to_term(), pid(from), pid(to)]
            }
            Control::UnlinkIdAck { id, from, to } => {
                vec![int(UNLINK_ID_ACK), id.to_term(), pid(from), pid(to)]
            }
            Control::Other { op, elements } => {
                let mut all = vec![int(*op)];
                all.extend(elements.iter().cloned());
                all
            }
        };
        Term::from(Tuple::from(elements))
    }

    /// Reads a control tuple.
    pub fn from_tuple(term: Term) -> Result<Control, DistError> {
        let Term::Tuple(tuple) = term else {
            return Err(DistError::mismatch("a control tuple", term));
        };
        let mut elements = tuple.elements.into_iter();
        let op = match elements.next() {
            Some(Term::FixInteger(op)) => op.value,
            Some(other) => return Err(DistError::mismatch("a control operation number", other)),
            None => return Err(DistError::malformed("control message", "empty tuple")),
        };
        let mut fields = Fields {
            elements: elements.collect(),
            next: 0,
        };
        let control = match op {
            LINK => Control::Link {
                from: fields.pid()?,
                to: fields.pid()?,
            },
            SEND | SEND_TT => {
                fields.skip()?;
                Control::Send { to: fields.pid()? }
            }
            EXIT | EXIT_TT => {
                let from = fields.pid()?;
                let to = fields.pid()?;
                if op == EXIT_TT {
                    fields.skip()?;
                }
                Control::Exit {
                    from,
                    to,
                    reason: fields.term()?,
                }
            }
            REG_SEND | REG_SEND_TT => {
                let from = fields.pid()?;
                fields.skip()?;
                Control::RegSend {
                    from,
                    to: fields.atom()?,
                }
            }
            EXIT2 | EXIT2_TT => {
                let from = fields.pid()?;
                let to = fields.pid()?;
                if op == EXIT2_TT {
                    fields.skip()?;
                }
                Control::Exit2 {
                    from,
                    to,
                    reason: fields.term()?,
                }
            }
            MONITOR_P => Control::MonitorP {
                from: fields.pid()?,
                to: fields.process()?,
                reference: fields.reference()?,
            },
            DEMONITOR_P => Control::DemonitorP {
                from: fields.pid()?,
                to: fields.process()?,
                reference: fields.reference()?,
            },
            MONITOR_P_EXIT => Control::MonitorPExit {
                from: fields.process()?,
                to: fields.pid()?,
                reference: fields.reference()?,
                reason: fields.term()?,
            },
            SEND_SENDER | SEND_SENDER_TT => Control::SendSender {
                from: fields.pid()?,
                to: fields.pid()?,
            },
            PAYLOAD_EXIT | PAYLOAD_EXIT_TT => Control::PayloadExit {
                from: fields.pid()?,
                to: fields.pid()?,
            },
            PAYLOAD_EXIT2 | PAYLOAD_EXIT2_TT => Control::PayloadExit2 {
                from: fields.pid()?,
                to: fields.pid()?,
            },
            PAYLOAD_MONITOR_P_EXIT => Control::PayloadMonitorPExit {
                from: fields.process()?,
                to: fields.pid()?,
                reference: fields.reference()?,
            },
            ALIAS_SEND | ALIAS_SEND_TT => Control::AliasSend {
                from: fields.pid()?,
                alias: fields.reference()?,
            },
            UNLINK_ID | UNLINK_ID_ACK => {
                let id = u64::from_term(fields.term()?)?;
                if id == 0 {
                    return Err(DistError::malformed("control message", "unlink id 0"));
                }
                let from = fields.pid()?;
                let to = fields.pid()?;
                if op == UNLINK_ID {
                    Control::UnlinkId { id, from, to }
                } else {
                    Control::UnlinkIdAck { id, from, to }
                }
            }
            _ => {
                return Ok(Control::Other {
                    op,
                    elements: fields.elements,
                });
            }
        };
        Ok(control)
    }
}

/// The elements of a control tuple, taken in order with typed errors.
struct Fields {
    elements: Vec<Term>,
    next: usize,
}

impl Fields {
    fn term(&mut self) -> Result<Term, DistError> {
        let element = self
            .elements
            .get_mut(self.next)
            .ok_or(DistError::malformed("control message", "too few elements"))?;
        self.next += 1;
        Ok(std::mem::replace(element, Term::from(eetf::List::nil())))
    }

    fn skip(&mut self) -> Result<(), DistError> {
        self.term().map(|_| ())
    }

    fn pid(&mut self) -> Result<WirePid, DistError> {
        match self.term()? {
            Term::Pid(p) => Ok(p),
            other => Err(DistError::mismatch("a pid", other)),
        }
    }

    fn atom(&mut self) -> Result<Atom, DistError> {
        Atom::from_term(self.term()?)
    }

    fn reference(&mut self) -> Result<WireRef, DistError> {
        WireRef::from_term(self.term()?)
    }

    fn process(&mut self) -> Result<ProcessRef, DistError> {
        match self.term()? {
            Term::Pid(p) => Ok(ProcessRef::Pid(p)),
            Term::Atom(name) => Ok(ProcessRef::Name(Atom::from(name))),
            other => Err(DistError::mismatch("a pid or a registered name", other)),
        }
    }
}

/// Operations other than ours that carry a trailing term.
fn other_has_payload(op: i32) -> bool {
    matches!(op, SPAWN_REQUEST | SPAWN_REQUEST_TT)
}

/// Encodes a frame body: tag 112, the control tuple, and the payload if any.
///
/// The payload must be given exactly when [`Control::has_payload`] says so.
pub fn encode(control: &Control, payload: Option<&Term>) -> Result<Vec<u8>, DistError> {
    let mut body = vec![PASS_THROUGH];
    encode_into(control, payload, &mut body)?;
    Ok(body)
}

/// As [`encode`], appending the control tuple and payload (not the tag) to `out`.
pub fn encode_into(
    control: &Control,
    payload: Option<&Term>,
    out: &mut Vec<u8>,
) -> Result<(), DistError> {
    let wants_payload = match control {
        Control::Other { op, .. } => other_has_payload(*op),
        _ => control.has_payload(),
    };
    if wants_payload != payload.is_some() {
        return Err(DistError::malformed(
            "control message",
            "payload given for an operation without one, or missing",
        ));
    }
    if !encode_send(control, out)? {
        term::encode_into(&control.to_tuple(), out)?;
    }
    if let Some(payload) = payload {
        term::encode_into(payload, out)?;
    }
    Ok(())
}

/// Writes the control tuple of a plain send straight to `out`, the bytes
/// `term::encode_into(&control.to_tuple())` writes, without building the tuple (a test
/// compares the two); `false` (nothing written) for every other control message.
fn encode_send(control: &Control, out: &mut Vec<u8>) -> Result<bool, DistError> {
    use super::term::VERSION;
    use super::term::tags::{SMALL_ATOM_UTF8, SMALL_INTEGER, SMALL_TUPLE};
    const EMPTY_ATOM: [u8; 2] = [SMALL_ATOM_UTF8, 0];
    let op = |out: &mut Vec<u8>, arity: u8, op: i32| {
        // The three operation numbers are small integers.
        out.extend_from_slice(&[VERSION, SMALL_TUPLE, arity, SMALL_INTEGER, op as u8]);
    };
    match control {
        Control::Send { to } => {
            op(out, 3, SEND);
            out.extend_from_slice(&EMPTY_ATOM);
            term::encode_pid(to, out)?;
        }
        Control::RegSend { from, to } => {
            op(out, 4, REG_SEND);
            term::encode_pid(from, out)?;
            out.extend_from_slice(&EMPTY_ATOM);
            term::encode_atom_name(to.as_str(), out)?;
        }
        Control::SendSender { from, to } => {
            op(out, 3, SEND_SENDER);
            term::encode_pid(from, out)?;
            term::encode_pid(to, out)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The control tuples of plain sends, which most frames carry (`{2, '', To}`,
/// `{6, From, '', ToName}`, `{22, From, To}`), decoded straight from the bytes without
/// building the tuple as a term first. `None` for any other shape or any doubt (another
/// encoding of the integer, an old pid format, a bad atom): the general path then
/// decodes the same bytes and gives the error, if there is one. Each `Some` equals what
/// the general path gives; a test checks that frame by frame on random input.
fn decode_send(bytes: &[u8]) -> Option<(Control, usize)> {
    use super::term::VERSION;
    use super::term::tags::{SMALL_INTEGER, SMALL_TUPLE};
    use super::wire::Cursor;
    let mut cursor = Cursor::new(bytes, "control message");
    let header = cursor.take(4).ok()?;
    if header[0] != VERSION || header[1] != SMALL_TUPLE || header[3] != SMALL_INTEGER {
        return None;
    }
    let arity = header[2];
    let op = i32::from(cursor.u8().ok()?);
    let control = match (op, arity) {
        (SEND, 3) => {
            term::decode_atom(&mut cursor).ok()?;
            Control::Send {
                to: term::decode_new_pid(&mut cursor).ok()?,
            }
        }
        (REG_SEND, 4) => {
            let from = term::decode_new_pid(&mut cursor).ok()?;
            term::decode_atom(&mut cursor).ok()?;
            Control::RegSend {
                from,
                to: term::decode_atom(&mut cursor).ok()?,
            }
        }
        (SEND_SENDER, 3) => Control::SendSender {
            from: term::decode_new_pid(&mut cursor).ok()?,
            to: term::decode_new_pid(&mut cursor).ok()?,
        },
        _ => return None,
    };
    Some((control, cursor.position()))
}

/// Decodes a frame body.
pub fn decode(body: &[u8]) -> Result<DistMessage, DistError> {
    match body.first() {
        Some(&PASS_THROUGH) => {}
        Some(&131) => {
            return Err(DistError::UnsupportedTerm(
                "distribution header (atom cache was not negotiated)",
            ));
        }
        Some(_) => return Err(DistError::malformed("frame", "unknown frame tag")),
        None => return Err(DistError::Truncated { what: "frame" }),
    }
    let rest = &body[1..];
    let (control, used) = match decode_send(rest) {
        Some(decoded) => decoded,
        None => {
            let (tuple, used) = term::decode_prefix(rest)?;
            (Control::from_tuple(tuple)?, used)
        }
    };
    let rest = &rest[used..];
    let wants_payload = match &control {
        Control::Other { op, .. } => other_has_payload(*op),
        _ => control.has_payload(),
    };
    let payload = if wants_payload {
        Some(term::decode(rest)?)
    } else if rest.is_empty() {
        None
    } else {
        return Err(DistError::malformed(
            "control message",
            "trailing bytes after a control message without payload",
        ));
    };
    Ok(DistMessage { control, payload })
}

#[cfg(test)]
mod tests {
    use otp_threads_testkit::fuzz::{Mutator, Rng};

    use super::*;

    fn send_frames() -> Vec<Vec<u8>> {
        let from = WirePid::new("from@host", 7, 1, 3);
        let to = WirePid::new("to@host", 9, 0, 4);
        let payload = (Atom::from("$gen_cast"), 42i64).to_term();
        let controls = [
            Control::Send { to: to.clone() },
            Control::RegSend {
                from: from.clone(),
                to: Atom::from("calc"),
            },
            Control::SendSender { from, to },
        ];
        let mut frames: Vec<Vec<u8>> = controls
            .iter()
            .map(|control| encode(control, Some(&payload)).unwrap())
            .collect();
        // Latin-1 atom tags (ATOM_EXT node, SMALL_ATOM_EXT unused field and name).
        frames.push(reg_send_with_unused(&[115, 0]));
        frames
    }

    /// `{6, Pid, Unused, x}` with the given encoding of `Unused`, then a payload.
    fn reg_send_with_unused(unused: &[u8]) -> Vec<u8> {
        let mut frame = vec![PASS_THROUGH, 131, 104, 4, 97, 6];
        frame.extend_from_slice(&[88, 100, 0, 3, b'a', b'@', b'h']);
        frame.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        frame.extend_from_slice(unused);
        frame.extend_from_slice(&[115, 1, b'x']);
        frame.extend(term::encode(&(Atom::from("$gen_cast"), 1i64).to_term()).unwrap());
        frame
    }

    /// What the general path makes of the control tuple at the start of `bytes`.
    fn general(bytes: &[u8]) -> Result<(Control, usize), DistError> {
        let (tuple, used) = term::decode_prefix(bytes)?;
        Ok((Control::from_tuple(tuple)?, used))
    }

    #[test]
    fn the_send_fast_path_decodes_what_the_general_path_decodes() {
        for frame in send_frames() {
            let fast = decode_send(&frame[1..]).expect("a plain send takes the fast path");
            assert_eq!(fast, general(&frame[1..]).unwrap());
        }
        // An unused field that is not an atom: the general path's, not the fast path's.
        let frame = reg_send_with_unused(&[97, 0]);
        assert!(decode_send(&frame[1..]).is_none());
        assert!(matches!(
            decode(&frame),
            Ok(DistMessage {
                control: Control::RegSend { .. },
                ..
            })
        ));
    }

    #[test]
    fn the_send_fast_path_encodes_the_bytes_of_the_general_path() {
        let long_name = "n".repeat(300);
        let long_node = WirePid::new(format!("{}@host", "x".repeat(260)), 1, 2, 3);
        let controls = [
            Control::Send {
                to: long_node.clone(),
            },
            Control::RegSend {
                from: WirePid::new("from@host", 7, 1, 3),
                to: Atom::new(long_name),
            },
            Control::RegSend {
                from: long_node.clone(),
                to: Atom::from("calc"),
            },
            Control::SendSender {
                from: WirePid::new("a@h", 0, 0, 0),
                to: WirePid::new("b@h", u32::MAX, u32::MAX, u32::MAX),
            },
        ];
        for control in controls {
            let mut fast = Vec::new();
            assert!(encode_send(&control, &mut fast).unwrap());
            let general = term::encode(&control.to_tuple()).unwrap();
            assert_eq!(fast, general, "{control:?}");
        }
        let mut untouched = Vec::new();
        let link = Control::Link {
            from: WirePid::new("a@h", 1, 0, 0),
            to: WirePid::new("b@h", 2, 0, 0),
        };
        assert!(!encode_send(&link, &mut untouched).unwrap());
        assert!(untouched.is_empty());
    }

    #[test]
    fn the_send_fast_path_agrees_with_the_general_path_on_mutated_frames() {
        let corpus = send_frames();
        let mutator = Mutator::new(&corpus).max_len(256);
        let mut rng = Rng::new(0x5EED_0001);
        let mut taken = 0;
        for _ in 0..200_000 {
            let input = mutator.next_input(&mut rng);
            let Some(rest) = input.get(1..) else { continue };
            if let Some(fast) = decode_send(rest) {
                taken += 1;
                match general(rest) {
                    Ok(general) => assert_eq!(fast, general, "input {input:?}"),
                    Err(error) => panic!("fast path accepted {input:?}, general: {error}"),
                }
            }
        }
        // The mutations keep many frames intact enough for the fast path.
        assert!(taken > 1_000, "only {taken} inputs took the fast path");
    }
}

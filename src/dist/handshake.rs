//! The version 6 connection handshake, both directions.
//!
//! [`initiate`] plays node A (we dialled), [`accept`] node B (we were dialled). Both
//! work over any `Read + Write` (a `TcpStream` with timeouts set by the caller) and
//! return the peer's [`PeerInfo`] once the cookie challenge has succeeded in both
//! directions; nothing else may be read from the stream before that. A wrong cookie
//! is one `log::error!` line naming the peer, and [`DistError::WrongCookie`].
//!
//! Simultaneous connects are settled by the acceptor's `decide` callback (see
//! [`simultaneous_status`]): the node whose name is greater keeps its own attempt.

mod messages;

pub use messages::{Challenge, ChallengeAck, ChallengeReply, SendName, Status};

use std::io::{ErrorKind, Read, Write};

use super::digest::{digest, digests_match, new_challenge};
use super::error::DistError;
use super::flags;
use super::wire::{read_u16_message, with_u16_length};

/// Who we are, for a handshake.
#[derive(Clone, Debug)]
pub struct LocalNode<'a> {
    /// Full node name, `name@host`.
    pub name: &'a str,
    /// Node incarnation.
    pub creation: u32,
    /// Flags we advertise (see [`flags::advertised`]).
    pub flags: u64,
    /// The cookie (same in and out).
    pub cookie: &'a str,
}

/// The peer of a completed handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Full node name.
    pub name: String,
    /// The flags it advertised.
    pub flags: u64,
    /// Its creation.
    pub creation: u32,
}

impl PeerInfo {
    /// `true` if the peer is a visible (published) node.
    pub fn is_visible(&self) -> bool {
        self.flags & flags::PUBLISHED != 0
    }
}

fn send(stream: &mut impl Write, body: &[u8]) -> Result<(), DistError> {
    stream.write_all(&with_u16_length(body)?)?;
    stream.flush()?;
    Ok(())
}

fn receive(stream: &mut impl Read) -> Result<Vec<u8>, DistError> {
    Ok(read_u16_message(stream)?)
}

fn check_flags(peer: &str, peer_flags: u64) -> Result<(), DistError> {
    match flags::missing_required(peer_flags) {
        0 => Ok(()),
        missing => {
            log::error!(
                "distribution: node {peer} lacks mandatory flags {missing:#x}; connection refused"
            );
            Err(DistError::MissingFlags {
                peer: peer.to_owned(),
                missing,
            })
        }
    }
}

fn wrong_cookie(peer: &str, detail: &str) -> DistError {
    log::error!(
        "distribution: cookie challenge with node {peer} failed ({detail}); connection refused"
    );
    DistError::WrongCookie {
        peer: peer.to_owned(),
    }
}

/// The status an acceptor answers when it has its own attempt to `peer` under way:
/// the node whose name is greater (compared as bytes, as atoms are) keeps its own.
pub fn simultaneous_status(local: &str, peer: &str) -> Status {
    if local.as_bytes() > peer.as_bytes() {
        Status::Nok
    } else {
        Status::OkSimultaneous
    }
}

/// Runs the handshake as initiator (node A) after connecting to `expected_peer`. To
/// the status `alive` (the peer still has a connection from us) it answers `true`.
pub fn initiate<S: Read + Write>(
    stream: &mut S,
    local: &LocalNode<'_>,
    expected_peer: &str,
) -> Result<PeerInfo, DistError> {
    initiate_with(stream, local, expected_peer, || true)
}

/// As [`initiate`]; `continue_if_alive` decides the answer to `alive`: `true` when the
/// peer's connection from us is a stale one (we have none), `false` when we do have
/// one (then the handshake ends with [`DistError::Refused`]).
pub fn initiate_with<S: Read + Write>(
    stream: &mut S,
    local: &LocalNode<'_>,
    expected_peer: &str,
    continue_if_alive: impl FnOnce() -> bool,
) -> Result<PeerInfo, DistError> {
    let name = SendName {
        flags: local.flags,
        creation: local.creation,
        name: local.name.to_owned(),
    };
    send(stream, &name.encode()?)?;
    match Status::decode(&receive(stream)?)? {
        Status::Ok | Status::OkSimultaneous => {}
        Status::Alive => {
            // `true`: the peer's connection from us is stale, it drops it; `false`: we
            // have a live one (a simultaneous connect settled the other way).
            let answer = continue_if_alive();
            send(stream, &Status::AliveAnswer(answer).encode())?;
            if !answer {
                return Err(DistError::Refused {
                    peer: expected_peer.to_owned(),
                    status: Status::Alive.to_string(),
                });
            }
        }
        refused => {
            return Err(DistError::Refused {
                peer: expected_peer.to_owned(),
                status: refused.to_string(),
            });
        }
    }
    let challenge = Challenge::decode(&receive(stream)?)?;
    if challenge.name != expected_peer {
        return Err(DistError::WrongPeer {
            expected: expected_peer.to_owned(),
            found: challenge.name,
        });
    }
    check_flags(&challenge.name, challenge.flags)?;
    let ours = new_challenge()?;
    let reply = ChallengeReply {
        challenge: ours,
        digest: digest(local.cookie, challenge.challenge),
    };
    send(stream, &reply.encode())?;
    let ack = match receive(stream) {
        Ok(body) => ChallengeAck::decode(&body)?,
        // The acceptor closes the socket when our digest is wrong.
        Err(DistError::Io(error))
            if matches!(
                error.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ) =>
        {
            return Err(wrong_cookie(
                &challenge.name,
                "the peer closed the connection after our digest",
            ));
        }
        Err(error) => return Err(error),
    };
    if !digests_match(&ack.digest, &digest(local.cookie, ours)) {
        return Err(wrong_cookie(&challenge.name, "the peer's digest is wrong"));
    }
    Ok(PeerInfo {
        name: challenge.name,
        flags: challenge.flags,
        creation: challenge.creation,
    })
}

/// Runs the handshake as acceptor (node B) on an accepted connection.
///
/// `decide` sees the initiator's `send_name` and returns the status to answer:
/// [`Status::Ok`], [`Status::Nok`] / [`Status::OkSimultaneous`] for simultaneous
/// connects, [`Status::NotAllowed`] to refuse, or [`Status::Alive`] when a connection
/// to that node is up already.
pub fn accept<S: Read + Write>(
    stream: &mut S,
    local: &LocalNode<'_>,
    decide: impl FnOnce(&SendName) -> Status,
) -> Result<PeerInfo, DistError> {
    let name = SendName::decode(&receive(stream)?)?;
    validate_peer_name(&name.name)?;
    if let Err(error) = check_flags(&name.name, name.flags) {
        let _ = send(stream, &Status::NotAllowed.encode());
        return Err(error);
    }
    let status = decide(&name);
    send(stream, &status.encode())?;
    match status {
        Status::Ok | Status::OkSimultaneous => {}
        Status::Alive => match Status::decode(&receive(stream)?)? {
            Status::AliveAnswer(true) => {}
            _ => {
                return Err(DistError::Refused {
                    peer: name.name,
                    status: "alive (the peer gave up)".into(),
                });
            }
        },
        refused => {
            return Err(DistError::Refused {
                peer: name.name,
                status: refused.to_string(),
            });
        }
    }
    let ours = new_challenge()?;
    let challenge = Challenge {
        flags: local.flags,
        challenge: ours,
        creation: local.creation,
        name: local.name.to_owned(),
    };
    send(stream, &challenge.encode()?)?;
    let reply = ChallengeReply::decode(&receive(stream)?)?;
    if !digests_match(&reply.digest, &digest(local.cookie, ours)) {
        // Closing without an ack is how the protocol refuses.
        return Err(wrong_cookie(&name.name, "the peer's digest is wrong"));
    }
    let ack = ChallengeAck {
        digest: digest(local.cookie, reply.challenge),
    };
    send(stream, &ack.encode())?;
    Ok(PeerInfo {
        name: name.name,
        flags: name.flags,
        creation: name.creation,
    })
}

/// A peer's name must be `name@host`, both parts non-empty.
fn validate_peer_name(name: &str) -> Result<(), DistError> {
    match name.split_once('@') {
        Some((alive, host)) if !alive.is_empty() && !host.is_empty() => Ok(()),
        _ => Err(DistError::InvalidNodeName {
            name: name.to_owned(),
            reason: "not of the form name@host",
        }),
    }
}

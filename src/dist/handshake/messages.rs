//! The handshake messages (each sent with a u16 length prefix), encoded and decoded.

use crate::dist::error::DistError;
use crate::dist::wire::{Cursor, push_u16_string};

/// `send_name` (version 6, tag `'N'`): the initiator's flags, creation and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendName {
    /// Capability flags.
    pub flags: u64,
    /// Node incarnation.
    pub creation: u32,
    /// Full node name.
    pub name: String,
}

/// `send_status` (tag `'s'`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Continue.
    Ok,
    /// Continue; the acceptor drops its own attempt (simultaneous connect).
    OkSimultaneous,
    /// Stop; the acceptor's own attempt wins (simultaneous connect).
    Nok,
    /// Refused.
    NotAllowed,
    /// The acceptor already has a connection to this node.
    Alive,
    /// The initiator's answer to `Alive`: continue (`true`) or give up.
    AliveAnswer(bool),
}

/// `send_challenge` (version 6, tag `'N'`): the acceptor's flags, challenge, creation
/// and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Capability flags.
    pub flags: u64,
    /// The acceptor's challenge.
    pub challenge: u32,
    /// Node incarnation.
    pub creation: u32,
    /// Full node name.
    pub name: String,
}

/// `send_challenge_reply` (tag `'r'`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeReply {
    /// The initiator's challenge.
    pub challenge: u32,
    /// The digest of the acceptor's challenge.
    pub digest: [u8; 16],
}

/// `send_challenge_ack` (tag `'a'`): the digest of the initiator's challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeAck {
    /// The digest.
    pub digest: [u8; 16],
}

fn expect_tag(cursor: &mut Cursor<'_>, tag: u8, what: &'static str) -> Result<(), DistError> {
    match cursor.u8()? {
        found if found == tag => Ok(()),
        b'n' if tag == b'N' => Err(DistError::malformed(
            what,
            "version 5 name message (only version 6 is supported)",
        )),
        _ => Err(DistError::malformed(what, "unexpected message tag")),
    }
}

fn digest_field(cursor: &mut Cursor<'_>) -> Result<[u8; 16], DistError> {
    let mut digest = [0u8; 16];
    digest.copy_from_slice(cursor.take(16)?);
    Ok(digest)
}

impl SendName {
    /// The message body.
    pub fn encode(&self) -> Result<Vec<u8>, DistError> {
        let mut out = vec![b'N'];
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.creation.to_be_bytes());
        push_u16_string(&mut out, &self.name)?;
        Ok(out)
    }

    /// Decodes a body; extra bytes after the name are ignored, as the protocol says.
    pub fn decode(body: &[u8]) -> Result<SendName, DistError> {
        let mut cursor = Cursor::new(body, "send_name");
        expect_tag(&mut cursor, b'N', "send_name")?;
        let flags = cursor.u64()?;
        let creation = cursor.u32()?;
        let nlen = cursor.u16()? as usize;
        let name = cursor.string(nlen)?;
        Ok(SendName {
            flags,
            creation,
            name,
        })
    }
}

impl Status {
    fn text(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::OkSimultaneous => "ok_simultaneous",
            Status::Nok => "nok",
            Status::NotAllowed => "not_allowed",
            Status::Alive => "alive",
            Status::AliveAnswer(true) => "true",
            Status::AliveAnswer(false) => "false",
        }
    }

    /// The message body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![b's'];
        out.extend_from_slice(self.text().as_bytes());
        out
    }

    /// Decodes a body. `named:` (dynamic names) is not supported: we never ask for one.
    pub fn decode(body: &[u8]) -> Result<Status, DistError> {
        let mut cursor = Cursor::new(body, "send_status");
        expect_tag(&mut cursor, b's', "send_status")?;
        Ok(match cursor.rest() {
            b"ok" => Status::Ok,
            b"ok_simultaneous" => Status::OkSimultaneous,
            b"nok" => Status::Nok,
            b"not_allowed" => Status::NotAllowed,
            b"alive" => Status::Alive,
            b"true" => Status::AliveAnswer(true),
            b"false" => Status::AliveAnswer(false),
            _ => return Err(DistError::malformed("send_status", "unknown status")),
        })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl Challenge {
    /// The message body.
    pub fn encode(&self) -> Result<Vec<u8>, DistError> {
        let mut out = vec![b'N'];
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.challenge.to_be_bytes());
        out.extend_from_slice(&self.creation.to_be_bytes());
        push_u16_string(&mut out, &self.name)?;
        Ok(out)
    }

    /// Decodes a body; extra bytes after the name are ignored.
    pub fn decode(body: &[u8]) -> Result<Challenge, DistError> {
        let mut cursor = Cursor::new(body, "send_challenge");
        expect_tag(&mut cursor, b'N', "send_challenge")?;
        let flags = cursor.u64()?;
        let challenge = cursor.u32()?;
        let creation = cursor.u32()?;
        let nlen = cursor.u16()? as usize;
        let name = cursor.string(nlen)?;
        Ok(Challenge {
            flags,
            challenge,
            creation,
            name,
        })
    }
}

impl ChallengeReply {
    /// The message body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![b'r'];
        out.extend_from_slice(&self.challenge.to_be_bytes());
        out.extend_from_slice(&self.digest);
        out
    }

    /// Decodes a body.
    pub fn decode(body: &[u8]) -> Result<ChallengeReply, DistError> {
        let mut cursor = Cursor::new(body, "challenge_reply");
        expect_tag(&mut cursor, b'r', "challenge_reply")?;
        let challenge = cursor.u32()?;
        let digest = digest_field(&mut cursor)?;
        Ok(ChallengeReply { challenge, digest })
    }
}

impl ChallengeAck {
    /// The message body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![b'a'];
        out.extend_from_slice(&self.digest);
        out
    }

    /// Decodes a body.
    pub fn decode(body: &[u8]) -> Result<ChallengeAck, DistError> {
        let mut cursor = Cursor::new(body, "challenge_ack");
        expect_tag(&mut cursor, b'a', "challenge_ack")?;
        Ok(ChallengeAck {
            digest: digest_field(&mut cursor)?,
        })
    }
}

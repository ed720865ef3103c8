//! EPMD, the Erlang Port Mapper Daemon protocol: messages, a client and a name server.
//!
//! Every request is a u16 length followed by the request. A node registers with
//! `ALIVE2_REQ` and stays registered as long as that connection stays open;
//! `PORT_PLEASE2_REQ` asks for a node's port; `NAMES_REQ` lists registered nodes.
//! Names in requests are the part before `@` (EPMD serves one host).

mod client;
mod server;

pub use client::{EpmdClient, Registration};
pub use server::NameServer;

use super::error::DistError;
use super::wire::{Cursor, push_u16_string, with_u16_length};

/// The port EPMD listens on unless `ERL_EPMD_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 4369;

const ALIVE2_REQ: u8 = 120;
const ALIVE2_X_RESP: u8 = 118;
const ALIVE2_RESP: u8 = 121;
const PORT_PLEASE2_REQ: u8 = 122;
const PORT2_RESP: u8 = 119;
const NAMES_REQ: u8 = 110;

/// Node type of a normal (visible) node.
pub const NODE_TYPE_NORMAL: u8 = 77;
/// Node type of a hidden node.
pub const NODE_TYPE_HIDDEN: u8 = 72;

/// What EPMD knows about one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// The node's alive name (before `@`).
    pub name: String,
    /// The port its distribution listener accepts connections on.
    pub port: u16,
    /// [`NODE_TYPE_NORMAL`] or [`NODE_TYPE_HIDDEN`].
    pub node_type: u8,
    /// 0 = TCP/IPv4.
    pub protocol: u8,
    /// Highest distribution version (6 from OTP 23).
    pub highest_version: u16,
    /// Lowest distribution version (6 from OTP 25).
    pub lowest_version: u16,
    /// The extra field, passed through.
    pub extra: Vec<u8>,
}

impl NodeEntry {
    /// An entry for a node of ours listening on `port`.
    pub fn new(name: &str, port: u16, visible: bool) -> NodeEntry {
        NodeEntry {
            name: name.to_owned(),
            port,
            node_type: if visible {
                NODE_TYPE_NORMAL
            } else {
                NODE_TYPE_HIDDEN
            },
            protocol: 0,
            highest_version: 6,
            lowest_version: 6,
            extra: Vec::new(),
        }
    }

    fn push_fields(&self, out: &mut Vec<u8>) -> Result<(), DistError> {
        out.extend_from_slice(&self.port.to_be_bytes());
        out.push(self.node_type);
        out.push(self.protocol);
        out.extend_from_slice(&self.highest_version.to_be_bytes());
        out.extend_from_slice(&self.lowest_version.to_be_bytes());
        push_u16_string(out, &self.name)?;
        let elen = u16::try_from(self.extra.len())
            .map_err(|_| DistError::malformed("EPMD entry", "extra longer than 65535 bytes"))?;
        out.extend_from_slice(&elen.to_be_bytes());
        out.extend_from_slice(&self.extra);
        Ok(())
    }

    fn read_fields(cursor: &mut Cursor<'_>) -> Result<NodeEntry, DistError> {
        let port = cursor.u16()?;
        let node_type = cursor.u8()?;
        let protocol = cursor.u8()?;
        let highest_version = cursor.u16()?;
        let lowest_version = cursor.u16()?;
        let nlen = cursor.u16()? as usize;
        let name = cursor.string(nlen)?;
        let elen = cursor.u16()? as usize;
        let extra = cursor.take(elen)?.to_vec();
        Ok(NodeEntry {
            name,
            port,
            node_type,
            protocol,
            highest_version,
            lowest_version,
            extra,
        })
    }
}

/// A request to EPMD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `ALIVE2_REQ`: register a node.
    Alive2(NodeEntry),
    /// `PORT_PLEASE2_REQ`: look a node up by alive name.
    PortPlease2(String),
    /// `NAMES_REQ`: list registered nodes.
    Names,
}

impl Request {
    /// The request with its u16 length prefix.
    pub fn encode(&self) -> Result<Vec<u8>, DistError> {
        let mut body = Vec::new();
        match self {
            Request::Alive2(entry) => {
                body.push(ALIVE2_REQ);
                entry.push_fields(&mut body)?;
            }
            Request::PortPlease2(name) => {
                body.push(PORT_PLEASE2_REQ);
                body.extend_from_slice(name.as_bytes());
            }
            Request::Names => body.push(NAMES_REQ),
        }
        with_u16_length(&body)
    }

    /// Decodes a request body (without its length prefix).
    pub fn decode(body: &[u8]) -> Result<Request, DistError> {
        let mut cursor = Cursor::new(body, "EPMD request");
        match cursor.u8()? {
            ALIVE2_REQ => {
                let entry = NodeEntry::read_fields(&mut cursor)?;
                Ok(Request::Alive2(entry))
            }
            PORT_PLEASE2_REQ => {
                let len = cursor.remaining();
                Ok(Request::PortPlease2(cursor.string(len)?))
            }
            NAMES_REQ => Ok(Request::Names),
            _ => Err(DistError::malformed("EPMD request", "unknown request code")),
        }
    }
}

/// EPMD's answer to `ALIVE2_REQ`: `ALIVE2_X_RESP` (32-bit creation) when the node
/// speaks version 6, else the old `ALIVE2_RESP` (16-bit creation).
pub fn encode_alive2_response(result: u8, creation: u32, extended: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(6);
    if extended {
        out.push(ALIVE2_X_RESP);
        out.push(result);
        out.extend_from_slice(&creation.to_be_bytes());
    } else {
        out.push(ALIVE2_RESP);
        out.push(result);
        out.extend_from_slice(&(creation as u16).to_be_bytes());
    }
    out
}

/// Decodes an `ALIVE2_X_RESP` / `ALIVE2_RESP`: `(result, creation)`.
pub fn decode_alive2_response(bytes: &[u8]) -> Result<(u8, u32), DistError> {
    let mut cursor = Cursor::new(bytes, "ALIVE2 response");
    match cursor.u8()? {
        ALIVE2_X_RESP => Ok((cursor.u8()?, cursor.u32()?)),
        ALIVE2_RESP => Ok((cursor.u8()?, u32::from(cursor.u16()?))),
        _ => Err(DistError::malformed(
            "ALIVE2 response",
            "unknown response code",
        )),
    }
}

/// Encodes a `PORT2_RESP`: the entry, or result 1 (not found).
pub fn encode_port2_response(entry: Option<&NodeEntry>) -> Result<Vec<u8>, DistError> {
    let mut out = vec![PORT2_RESP];
    match entry {
        Some(entry) => {
            out.push(0);
            entry.push_fields(&mut out)?;
        }
        None => out.push(1),
    }
    Ok(out)
}

/// Decodes a `PORT2_RESP`: `None` when EPMD does not know the node.
pub fn decode_port2_response(bytes: &[u8]) -> Result<Option<NodeEntry>, DistError> {
    let mut cursor = Cursor::new(bytes, "PORT2 response");
    if cursor.u8()? != PORT2_RESP {
        return Err(DistError::malformed(
            "PORT2 response",
            "unknown response code",
        ));
    }
    if cursor.u8()? != 0 {
        return Ok(None);
    }
    NodeEntry::read_fields(&mut cursor).map(Some)
}

/// Encodes a `NAMES_RESP`: EPMD's port, then one `name N at port P` line per node.
pub fn encode_names_response(epmd_port: u16, names: &[(String, u16)]) -> Vec<u8> {
    let mut out = u32::from(epmd_port).to_be_bytes().to_vec();
    for (name, port) in names {
        out.extend_from_slice(format!("name {name} at port {port}\n").as_bytes());
    }
    out
}

/// Decodes a `NAMES_RESP` into `(name, port)` pairs.
pub fn decode_names_response(bytes: &[u8]) -> Result<Vec<(String, u16)>, DistError> {
    let mut cursor = Cursor::new(bytes, "NAMES response");
    let _epmd_port = cursor.u32()?;
    let text = std::str::from_utf8(cursor.rest())
        .map_err(|_| DistError::malformed("NAMES response", "not UTF-8"))?;
    text.lines()
        .filter(|line| !line.is_empty())
        .map(parse_names_line)
        .collect()
}

fn parse_names_line(line: &str) -> Result<(String, u16), DistError> {
    let malformed = || DistError::malformed("NAMES response", "line is not `name N at port P`");
    let rest = line.strip_prefix("name ").ok_or_else(malformed)?;
    let (name, port) = rest.rsplit_once(" at port ").ok_or_else(malformed)?;
    let port = port.trim().parse::<u16>().map_err(|_| malformed())?;
    Ok((name.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for request in [
            Request::Alive2(NodeEntry::new("rs", 4242, true)),
            Request::PortPlease2("beam".into()),
            Request::Names,
        ] {
            let bytes = request.encode().unwrap();
            assert_eq!(
                u16::from_be_bytes([bytes[0], bytes[1]]) as usize,
                bytes.len() - 2
            );
            assert_eq!(Request::decode(&bytes[2..]).unwrap(), request);
        }
    }

    #[test]
    fn responses_round_trip() {
        assert_eq!(
            decode_alive2_response(&encode_alive2_response(0, 77_000, true)).unwrap(),
            (0, 77_000)
        );
        assert_eq!(
            decode_alive2_response(&encode_alive2_response(1, 3, false)).unwrap(),
            (1, 3)
        );
        let entry = NodeEntry::new("a", 1, false);
        let bytes = encode_port2_response(Some(&entry)).unwrap();
        assert_eq!(decode_port2_response(&bytes).unwrap(), Some(entry));
        assert_eq!(
            decode_port2_response(&encode_port2_response(None).unwrap()).unwrap(),
            None
        );
        let names = vec![("a".to_owned(), 1u16), ("b c".to_owned(), 65535)];
        assert_eq!(
            decode_names_response(&encode_names_response(4369, &names)).unwrap(),
            names
        );
    }

    #[test]
    fn short_requests_are_typed_errors() {
        assert!(matches!(
            Request::decode(&[ALIVE2_REQ, 0]),
            Err(DistError::Truncated { .. })
        ));
        assert!(Request::decode(&[]).is_err());
        assert!(Request::decode(&[7]).is_err());
    }
}

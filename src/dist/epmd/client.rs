//! The EPMD client: register (the connection stays open while registered), look up,
//! list.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{
    NodeEntry, Request, decode_alive2_response, decode_names_response, decode_port2_response,
};
use crate::dist::error::DistError;

/// The most bytes a look-up or listing answer may have: EPMD closes the socket after
/// answering, and a bound keeps a misbehaving server from filling memory.
const MAX_ANSWER: u64 = 1024 * 1024;

/// A client of one EPMD (ours or a real one) at a socket address.
#[derive(Clone, Debug)]
pub struct EpmdClient {
    address: SocketAddr,
    timeout: Duration,
}

/// A registration with EPMD: the node stays registered while this lives; dropping it
/// closes the connection, which unregisters the node.
#[derive(Debug)]
pub struct Registration {
    _stream: TcpStream,
    creation: u32,
}

impl Registration {
    /// The creation EPMD assigned to this node incarnation.
    pub fn creation(&self) -> u32 {
        self.creation
    }

    /// A second handle on the registration's socket, to notice EPMD closing it (a
    /// read returns end of file) or to shut it down.
    pub fn watch_stream(&self) -> std::io::Result<TcpStream> {
        self._stream.try_clone()
    }
}

impl EpmdClient {
    /// A client of the EPMD at `address`; every exchange is bounded by `timeout`.
    pub fn new(address: SocketAddr, timeout: Duration) -> EpmdClient {
        EpmdClient { address, timeout }
    }

    /// The EPMD's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    fn connect(&self) -> Result<TcpStream, DistError> {
        let stream = TcpStream::connect_timeout(&self.address, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Registers `entry` (`ALIVE2_REQ`). Fails with [`DistError::EpmdRefused`] when
    /// the name is taken.
    pub fn register(&self, entry: &NodeEntry) -> Result<Registration, DistError> {
        let mut stream = self.connect()?;
        stream.write_all(&Request::Alive2(entry.clone()).encode()?)?;
        // ALIVE2_X_RESP is 6 bytes, ALIVE2_RESP 4: read the code, then the rest.
        let mut head = [0u8; 2];
        stream.read_exact(&mut head)?;
        let rest = if head[0] == 121 { 2 } else { 4 };
        let mut answer = head.to_vec();
        answer.resize(2 + rest, 0);
        stream.read_exact(&mut answer[2..])?;
        let (result, creation) = decode_alive2_response(&answer)?;
        if result != 0 {
            return Err(DistError::EpmdRefused {
                request: "ALIVE2",
                name: entry.name.clone(),
                result,
            });
        }
        // Registered for as long as the socket is open: no more timeouts on it.
        stream.set_read_timeout(None)?;
        Ok(Registration {
            _stream: stream,
            creation,
        })
    }

    /// Looks up the node with alive name `name` (`PORT_PLEASE2_REQ`).
    pub fn port_please(&self, name: &str) -> Result<Option<NodeEntry>, DistError> {
        let answer = self.ask(&Request::PortPlease2(name.to_owned()))?;
        decode_port2_response(&answer)
    }

    /// Lists the registered nodes (`NAMES_REQ`) as `(alive name, port)`.
    pub fn names(&self) -> Result<Vec<(String, u16)>, DistError> {
        let answer = self.ask(&Request::Names)?;
        decode_names_response(&answer)
    }

    /// Sends one request and reads the answer up to EPMD's close.
    fn ask(&self, request: &Request) -> Result<Vec<u8>, DistError> {
        let mut stream = self.connect()?;
        stream.write_all(&request.encode()?)?;
        let mut answer = Vec::new();
        stream.take(MAX_ANSWER).read_to_end(&mut answer)?;
        Ok(answer)
    }
}

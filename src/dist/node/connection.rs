//! One connection to another node: a writer shared by every sender (one frame per
//! `write_all` under a mutex), and a reader thread that decodes frames and hands them
//! to the dispatcher.

use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::NodeInner;
use super::events::NodeDownReason;
use crate::dist::control::{self, Control};
use crate::dist::error::DistError;
use crate::dist::frame::{self, Frame};
use crate::dist::handshake::PeerInfo;
use crate::dist::term::Term;

pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) peer: PeerInfo,
    writer: Mutex<TcpStream>,
    socket: TcpStream,
    /// Milliseconds (node clock) of the last frame received / sent.
    last_received: AtomicU64,
    last_sent: AtomicU64,
    /// Set by whoever closes the connection, read by the reader thread when it ends.
    down_reason: Mutex<Option<NodeDownReason>>,
    /// Bytes written, frames included (for the benchmarks' bytes-per-message figure).
    bytes_sent: AtomicU64,
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        peer: PeerInfo,
        stream: &TcpStream,
        now: u64,
    ) -> Result<Connection, DistError> {
        Ok(Connection {
            id,
            peer,
            writer: Mutex::new(stream.try_clone()?),
            socket: stream.try_clone()?,
            last_received: AtomicU64::new(now),
            last_sent: AtomicU64::new(now),
            down_reason: Mutex::new(None),
            bytes_sent: AtomicU64::new(0),
        })
    }

    /// Sends one control message (with its payload) as one frame.
    pub(crate) fn send(
        &self,
        now: u64,
        control: &Control,
        payload: Option<&Term>,
    ) -> Result<(), DistError> {
        // Length placeholder, pass-through tag, then the terms: one buffer, one write.
        let mut frame = vec![0, 0, 0, 0, control::PASS_THROUGH];
        control::encode_into(control, payload, &mut frame)?;
        let len = u32::try_from(frame.len() - 4)
            .map_err(|_| DistError::malformed("frame", "body longer than 4 GiB"))?;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        let result = self.writer.lock().write_all(&frame);
        if let Err(error) = result {
            self.close(NodeDownReason::Closed);
            return Err(error.into());
        }
        self.bytes_sent
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.last_sent.store(now, Ordering::Relaxed);
        Ok(())
    }

    /// Sends a tick if nothing was sent since `idle_since`.
    pub(crate) fn tick_if_idle(&self, now: u64, idle_since: u64) {
        if self.last_sent.load(Ordering::Relaxed) > idle_since {
            return;
        }
        let mut writer = self.writer.lock();
        if frame::write_tick(&mut *writer).is_ok() {
            self.last_sent.store(now, Ordering::Relaxed);
        }
    }

    pub(crate) fn last_received(&self) -> u64 {
        self.last_received.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Closes the socket; the reader thread then reports the node down with `reason`
    /// (the first reason given wins).
    pub(crate) fn close(&self, reason: NodeDownReason) {
        {
            let mut down = self.down_reason.lock();
            if down.is_none() {
                *down = Some(reason);
            }
        }
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    fn take_reason(&self, fallback: NodeDownReason) -> NodeDownReason {
        self.down_reason.lock().take().unwrap_or(fallback)
    }
}

/// The reader thread's body: frames until the connection ends, then cleanup.
pub(crate) fn read_loop(node: Arc<NodeInner>, connection: Arc<Connection>, stream: TcpStream) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let limit = node.config.max_frame;
    let reason = loop {
        match frame::read_frame(&mut reader, limit) {
            Ok(Frame::Tick) => {
                connection
                    .last_received
                    .store(node.now(), Ordering::Relaxed);
            }
            Ok(Frame::Data(body)) => {
                connection
                    .last_received
                    .store(node.now(), Ordering::Relaxed);
                match control::decode(&body) {
                    Ok(message) => super::dispatch::handle(&node, &connection, message),
                    Err(error) => {
                        log::error!(
                            "distribution: malformed frame from node {}: {error}; closing the connection",
                            connection.peer.name
                        );
                        break connection
                            .take_reason(NodeDownReason::ProtocolError(Arc::new(error)));
                    }
                }
            }
            Err(DistError::Io(_)) => break connection.take_reason(NodeDownReason::Closed),
            Err(error) => {
                log::error!(
                    "distribution: bad frame from node {}: {error}; closing the connection",
                    connection.peer.name
                );
                break connection.take_reason(NodeDownReason::ProtocolError(Arc::new(error)));
            }
        }
    };
    let _ = connection.socket.shutdown(Shutdown::Both);
    node.connection_down(&connection, reason);
}

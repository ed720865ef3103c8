//! One connection to another node: an outbox shared by every sender, and a reader
//! thread that decodes frames and hands them to the dispatcher.
//!
//! A sender writes its frame to the socket itself when nobody else is writing and the
//! connection is not in a burst, so a call costs no thread hand-off. In a burst (more
//! than [`BURST_SENDS`] frames within [`BURST_WINDOW`], as a cast loop makes) or while
//! another write is under way, frames are appended to the outbox and the connection's
//! writer thread sends them in batches: one system call for many frames. The outbox
//! is bounded ([`MAX_PENDING`]); a sender waits while it is full.

use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::NodeInner;
use super::events::NodeDownReason;
use crate::dist::control::{self, Control};
use crate::dist::error::DistError;
use crate::dist::frame::{self, Frame};
use crate::dist::handshake::PeerInfo;
use crate::dist::term::Term;

/// A burst: more than this many frames within [`BURST_WINDOW`].
pub(crate) const BURST_SENDS: u32 = 8;
/// See [`BURST_SENDS`].
pub(crate) const BURST_WINDOW: Duration = Duration::from_micros(100);
/// The most bytes waiting in an outbox before senders wait.
pub(crate) const MAX_PENDING: usize = 16 * 1024 * 1024;

struct Outbox {
    pending: Vec<u8>,
    writing: bool,
    /// The writer thread is asleep waiting for frames (one wake-up per batch).
    writer_asleep: bool,
    closed: bool,
    window_start: Instant,
    window_sends: u32,
}

pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) peer: PeerInfo,
    outbox: Mutex<Outbox>,
    /// Wakes the writer thread (frames pending) and senders waiting for room.
    outbox_changed: Condvar,
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
            outbox: Mutex::new(Outbox {
                pending: Vec::new(),
                writing: false,
                writer_asleep: false,
                closed: false,
                window_start: Instant::now(),
                window_sends: 0,
            }),
            outbox_changed: Condvar::new(),
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
        self.send_all(now, &[(control, payload)])
    }

    /// Sends control messages back to back (one write when possible).
    pub(crate) fn send_all(
        &self,
        now: u64,
        messages: &[(&Control, Option<&Term>)],
    ) -> Result<(), DistError> {
        // Most frames are small: one allocation up front instead of several as it grows.
        let mut bytes = Vec::with_capacity(128 * messages.len());
        for (control, payload) in messages {
            // Length placeholder, pass-through tag, then the terms.
            let start = bytes.len();
            bytes.extend_from_slice(&[0, 0, 0, 0, control::PASS_THROUGH]);
            control::encode_into(control, *payload, &mut bytes)?;
            let len = u32::try_from(bytes.len() - start - 4)
                .map_err(|_| DistError::malformed("frame", "body longer than 4 GiB"))?;
            bytes[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
        self.bytes_sent
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.last_sent.store(now, Ordering::Relaxed);
        self.push(bytes)
    }

    fn push(&self, bytes: Vec<u8>) -> Result<(), DistError> {
        let mut out = self.outbox.lock();
        while out.pending.len() > MAX_PENDING && !out.closed {
            self.outbox_changed.wait(&mut out);
        }
        if out.closed {
            return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
        }
        let now = Instant::now();
        if now.duration_since(out.window_start) > BURST_WINDOW {
            out.window_start = now;
            out.window_sends = 0;
        }
        out.window_sends += 1;
        let burst = out.window_sends > BURST_SENDS;
        if out.writing || !out.pending.is_empty() || burst {
            out.pending.extend_from_slice(&bytes);
            if out.writer_asleep && !out.writing {
                out.writer_asleep = false;
                self.outbox_changed.notify_all();
            }
            return Ok(());
        }
        out.writing = true;
        drop(out);
        let result = (&self.socket).write_all(&bytes);
        self.finish_writing(result)
    }

    /// After a write: sends whatever was queued meanwhile, then lets others write.
    fn finish_writing(&self, mut result: std::io::Result<()>) -> Result<(), DistError> {
        let mut out = self.outbox.lock();
        while result.is_ok() && !out.pending.is_empty() {
            let batch = std::mem::take(&mut out.pending);
            self.outbox_changed.notify_all();
            drop(out);
            result = (&self.socket).write_all(&batch);
            out = self.outbox.lock();
        }
        out.writing = false;
        drop(out);
        if let Err(error) = result {
            self.close(NodeDownReason::Closed);
            return Err(error.into());
        }
        Ok(())
    }

    /// The writer thread's body: batches of queued frames until the connection closes.
    pub(crate) fn write_loop(&self) {
        loop {
            let mut out = self.outbox.lock();
            while (out.pending.is_empty() || out.writing) && !out.closed {
                out.writer_asleep = true;
                self.outbox_changed.wait(&mut out);
                out.writer_asleep = false;
            }
            if out.closed {
                return;
            }
            out.writing = true;
            let batch = std::mem::take(&mut out.pending);
            self.outbox_changed.notify_all();
            drop(out);
            let result = (&self.socket).write_all(&batch);
            if self.finish_writing(result).is_err() {
                return;
            }
        }
    }

    /// Sends a tick if nothing was sent since `idle_since`.
    pub(crate) fn tick_if_idle(&self, now: u64, idle_since: u64) {
        if self.last_sent.load(Ordering::Relaxed) > idle_since {
            return;
        }
        if self.push(vec![0, 0, 0, 0]).is_ok() {
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
        {
            let mut out = self.outbox.lock();
            out.closed = true;
            self.outbox_changed.notify_all();
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
    connection.close(reason.clone());
    node.connection_down(&connection, reason);
}

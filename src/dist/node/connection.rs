//! One connection to another node: an outbox shared by every sender, and a reader
//! thread that decodes frames and hands them to the dispatcher.
//!
//! A sender writes its frame to the socket itself when nobody else is writing and the
//! connection is not in a burst, so a call costs no thread hand-off. In a burst (more
//! than [`BURST_SENDS`] frames within [`BURST_WINDOW`], as a cast loop makes) or while
//! another write is under way, frames are appended to the outbox and the connection's
//! writer thread sends them in batches: one system call for many frames. The outbox
//! is bounded ([`MAX_PENDING`]); a sender waits while it is full.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::NodeInner;
use super::events::NodeDownReason;
use crate::dist::control::{self, Control};
use crate::dist::error::DistError;
use crate::dist::frame;
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
            return Err(self.gone());
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
        let result = write_fully(&self.socket, &bytes);
        self.finish_writing(result)
    }

    /// After a write: sends whatever was queued meanwhile, then lets others write.
    fn finish_writing(&self, mut result: std::io::Result<()>) -> Result<(), DistError> {
        let mut out = self.outbox.lock();
        while result.is_ok() && !out.pending.is_empty() {
            let batch = std::mem::take(&mut out.pending);
            self.outbox_changed.notify_all();
            drop(out);
            result = write_fully(&self.socket, &batch);
            out = self.outbox.lock();
        }
        out.writing = false;
        drop(out);
        if let Err(error) = result {
            log::debug!(
                "distribution: writing to node {} failed: {error}",
                self.peer.name
            );
            self.close(NodeDownReason::Closed);
            return Err(self.gone());
        }
        Ok(())
    }

    /// The error of a send on a connection that closed (or just broke): the node is
    /// not connected, as a new send would find, even before the node's table is told.
    fn gone(&self) -> DistError {
        DistError::NoConnection {
            node: self.peer.name.to_string(),
        }
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
            let result = write_fully(&self.socket, &batch);
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

/// Writes all of `bytes`. The socket is shared with the reader thread, which makes it
/// non-blocking while it spins for the next frame ([`await_frame`]): a write refused
/// then for want of buffer space is retried until the reader blocks again.
fn write_fully(mut socket: impl Write, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match socket.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => bytes = &bytes[written..],
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::yield_now();
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Before a blocking read with nothing buffered: polls the socket for up to `spin`, so
/// that a frame arriving meanwhile is taken without the wake-up that a thread blocked
/// in `read` pays (tens of µs when its core has halted). Returns with the socket
/// blocking again; whatever arrived is in `reader`'s buffer.
fn await_frame(reader: &mut BufReader<TcpStream>, spin: Duration) {
    if spin.is_zero() || !reader.buffer().is_empty() {
        return;
    }
    if reader.get_ref().set_nonblocking(true).is_err() {
        return;
    }
    let started = Instant::now();
    loop {
        match reader.fill_buf() {
            Err(error)
                if error.kind() == std::io::ErrorKind::WouldBlock && started.elapsed() < spin =>
            {
                std::thread::yield_now();
            }
            // Data, end of stream, an error, or the spin is over: the blocking read that
            // follows sees each of them again.
            _ => break,
        }
    }
    // Failing here means the socket is gone: the read that follows reports it.
    let _ = reader.get_ref().set_nonblocking(false);
}

/// The largest frame buffer the reader keeps for the next frame.
const REUSED_FRAME_CAPACITY: usize = 1024 * 1024;

/// The reader thread's body: frames until the connection ends, then cleanup.
pub(crate) fn read_loop(node: Arc<NodeInner>, connection: Arc<Connection>, stream: TcpStream) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let limit = node.config.max_frame;
    let spin = node.config.reader_spin;
    let mut body = Vec::new();
    let reason = loop {
        await_frame(&mut reader, spin);
        // A frame far bigger than usual does not keep its buffer for the connection's life.
        if body.capacity() > REUSED_FRAME_CAPACITY {
            body = Vec::new();
        }
        match frame::read_frame_into(&mut reader, limit, &mut body) {
            Ok(false) => {
                connection
                    .last_received
                    .store(node.now(), Ordering::Relaxed);
            }
            Ok(true) => {
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

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A socket that counts the writes it refused.
    struct Counting<'a> {
        socket: &'a TcpStream,
        refused: &'a AtomicUsize,
    }

    impl Write for Counting<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let result = self.socket.write(bytes);
            if matches!(&result, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            result
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The reader's spin leaves the shared socket non-blocking for a while: a write
    /// refused then (the peer is not reading, the buffers are full) must resume where it
    /// stopped, losing and repeating nothing.
    #[test]
    fn a_write_refused_while_the_socket_is_non_blocking_resumes_without_losing_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        // Far more than loopback buffers hold.
        let bytes: Vec<u8> = (0..32 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
        let refused = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let writing = scope.spawn(|| {
                let counting = Counting {
                    socket: &socket,
                    refused: &refused,
                };
                write_fully(counting, &bytes)
            });
            // The peer reads nothing until the buffers are full and a write was refused.
            otp_threads_testkit::eventually("a refused write", || {
                refused.load(Ordering::Relaxed) > 0
            });
            let mut received = Vec::with_capacity(bytes.len());
            let mut chunk = vec![0u8; 1 << 20];
            while received.len() < bytes.len() {
                let n = peer.read(&mut chunk).unwrap();
                assert!(n > 0, "the connection ended early");
                received.extend_from_slice(&chunk[..n]);
            }
            writing.join().unwrap().unwrap();
            assert!(received == bytes, "bytes lost, repeated or reordered");
        });
    }
}

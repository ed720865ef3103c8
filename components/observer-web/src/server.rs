//! The HTTP/1.1 server: one thread accepting connections, a few handler threads.
//!
//! Contract: each connection carries one request and is closed after its response
//! (`Connection: close`), so a handler is never held by an idle keep-alive client
//! for longer than the I/O timeout. A malformed request is answered `400 Bad
//! Request`; a method other than `GET`/`HEAD` `405`; an unknown path `404`; a
//! connection arriving while every handler is busy and the queue is full `503`.
//! Stopping wakes the acceptor, shuts down every open connection and joins every
//! thread the server started.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use otp_threads::RuntimeHandle;
use parking_lot::Mutex;

use crate::options::Options;
use crate::request::{self, MAX_HEAD, Request};
use crate::{Error, page};

/// Connections accepted but not yet taken by a handler, per handler.
const QUEUED_PER_HANDLER: usize = 16;

/// What the threads share.
struct Shared {
    runtime: RuntimeHandle,
    options: Options,
    page: String,
    stopping: AtomicBool,
    /// Clones of the connections being served, to shut them down on stop.
    open: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
}

/// The running server's threads.
pub(crate) struct Server {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    handlers: Vec<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn start(runtime: RuntimeHandle, options: Options) -> Result<Server, Error> {
        let listener = TcpListener::bind(options.bind).map_err(|source| Error::Bind {
            address: options.bind,
            source,
        })?;
        let address = listener.local_addr().map_err(|source| Error::Bind {
            address: options.bind,
            source,
        })?;
        let queue = options.handlers.saturating_mul(QUEUED_PER_HANDLER);
        let (connections, taken) = bounded::<TcpStream>(queue);
        let shared = Arc::new(Shared {
            page: page::html(options.refresh),
            runtime,
            options,
            stopping: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
        });
        let mut server = Server {
            address,
            shared: Arc::clone(&shared),
            acceptor: None,
            handlers: Vec::new(),
        };
        for index in 0..shared.options.handlers {
            let (shared, taken) = (Arc::clone(&shared), taken.clone());
            let handler = std::thread::Builder::new()
                .name(format!("observer-web-{index}"))
                .spawn(move || serve(&shared, &taken))
                .map_err(|source| Error::Spawn {
                    thread: "handler",
                    source,
                })?;
            server.handlers.push(handler);
        }
        drop(taken);
        // On an error here, dropping `server` stops the handlers already started.
        let acceptor = std::thread::Builder::new()
            .name("observer-web-accept".into())
            .spawn(move || accept(&shared, &listener, connections))
            .map_err(|source| Error::Spawn {
                thread: "acceptor",
                source,
            })?;
        server.acceptor = Some(acceptor);
        Ok(server)
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, ends the connections in progress and joins every thread.
    pub(crate) fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            // The acceptor blocks in `accept`: a connection of our own wakes it.
            if TcpStream::connect(wake_address(self.address)).is_err() {
                log::warn!(
                    "observer web view: cannot wake its acceptor on {}",
                    self.address
                );
            }
            if acceptor.join().is_err() {
                log::error!("observer web view: the acceptor thread panicked");
            }
        }
        for stream in self.shared.open.lock().values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for handler in self.handlers.drain(..) {
            if handler.join().is_err() {
                log::error!("observer web view: a handler thread panicked");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where to connect to reach a listener bound to `address` (an unspecified address
/// listens on loopback too).
fn wake_address(address: SocketAddr) -> SocketAddr {
    match address {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, v4.port()))
        }
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, v6.port()))
        }
        other => other,
    }
}

fn accept(shared: &Shared, listener: &TcpListener, connections: Sender<TcpStream>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                log::warn!("observer web view: accept failed: {error}");
                continue;
            }
        };
        match connections.try_send(stream) {
            Ok(()) => {}
            Err(TrySendError::Full(mut stream)) => {
                let _ = set_timeouts(&stream, shared);
                let _ = respond(&mut stream, Status::Busy, "text/plain", b"busy\n", true);
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
    // Dropping `connections` ends the handlers once the queue is empty.
}

fn serve(shared: &Shared, taken: &Receiver<TcpStream>) {
    for mut stream in taken {
        if shared.stopping.load(Ordering::SeqCst) {
            continue;
        }
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            shared.open.lock().insert(id, clone);
        }
        // Checked again now that the connection is registered: a stop that began in
        // between has shut down the others, not this one.
        if !shared.stopping.load(Ordering::SeqCst)
            && let Err(error) = serve_connection(shared, &mut stream)
        {
            log::debug!("observer web view: connection ended: {error}");
        }
        shared.open.lock().remove(&id);
    }
}

fn set_timeouts(stream: &TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(shared.options.io_timeout))?;
    stream.set_write_timeout(Some(shared.options.io_timeout))
}

fn serve_connection(shared: &Shared, stream: &mut TcpStream) -> std::io::Result<()> {
    set_timeouts(stream, shared)?;
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let request = loop {
        match request::parse(&buffer) {
            Ok(Some((request, _))) => break request,
            Ok(None) => {}
            Err(error) => {
                let body = format!("{error}\n");
                return respond(
                    stream,
                    Status::BadRequest,
                    "text/plain",
                    body.as_bytes(),
                    true,
                );
            }
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            // Closed before a whole head arrived: nobody to answer.
            return Ok(());
        }
        // `parse` rejects a head longer than MAX_HEAD: the buffer stays bounded.
        let room = (MAX_HEAD + chunk.len()).saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..read.min(room)]);
    };
    route(shared, stream, &request)
}

fn route(shared: &Shared, stream: &mut TcpStream, request: &Request) -> std::io::Result<()> {
    let with_body = match request.method.as_str() {
        "GET" => true,
        "HEAD" => false,
        _ => {
            return respond(
                stream,
                Status::MethodNotAllowed,
                "text/plain",
                b"only GET and HEAD\n",
                true,
            );
        }
    };
    match request.path.as_str() {
        "/" | "/index.html" => respond(
            stream,
            Status::Ok,
            "text/html; charset=utf-8",
            shared.page.as_bytes(),
            with_body,
        ),
        "/snapshot.json" => {
            let json = shared.runtime.snapshot().to_json();
            respond(
                stream,
                Status::Ok,
                "application/json",
                json.as_bytes(),
                with_body,
            )
        }
        "/tree.txt" => {
            let text = shared.runtime.snapshot().tree_text();
            respond(
                stream,
                Status::Ok,
                "text/plain; charset=utf-8",
                text.as_bytes(),
                with_body,
            )
        }
        _ => respond(
            stream,
            Status::NotFound,
            "text/plain",
            b"not found\n",
            with_body,
        ),
    }
}

#[derive(Clone, Copy)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Busy,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::Busy => "503 Service Unavailable",
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: Status,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let allow = match status {
        Status::MethodNotAllowed => "Allow: GET, HEAD\r\n",
        _ => "",
    };
    // The page is self-contained: it may run its inline script and style and fetch
    // from this server, nothing else.
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; \
         style-src 'unsafe-inline'; connect-src 'self'\r\n{allow}\r\n",
        status.line(),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()?;
    // Half-close, then let the client close first, so that unread request bytes do
    // not turn the close into a reset that loses the response.
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut rest = [0u8; 512];
    let mut drained = 0usize;
    while drained < MAX_HEAD {
        match stream.read(&mut rest) {
            Ok(0) | Err(_) => break,
            Ok(read) => drained = drained.saturating_add(read),
        }
    }
    Ok(())
}

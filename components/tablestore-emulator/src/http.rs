//! A minimal blocking HTTP/1.1 server on `std::net`: one accept thread and a
//! fixed pool of connection threads, keep-alive, `Content-Length` bodies.
//!
//! It is written for the emulator's needs rather than taken from an HTTP
//! crate because fault injection must be able to close a connection *without
//! writing any response* (tiny_http answers a dropped request with a 500),
//! and because [`Server::stop`] must join every thread it started.
//!
//! Limits: request heads up to 64 KiB, bodies up to 16 MiB, no
//! `Transfer-Encoding` (answered 400), no TLS. A connection idle for 5 s, or
//! idle while other connections wait for a thread, is closed (ordinary
//! keep-alive behaviour; clients reconnect).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use otp_threads_tablestore::sign;

const POLL: Duration = Duration::from_millis(20);
const ACCEPT_POLL: Duration = Duration::from_millis(5);
const MAX_HEAD: usize = 64 * 1024;
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One parsed request.
#[derive(Debug)]
pub(crate) struct HttpRequest {
    pub(crate) method: String,
    /// The path, without the query string.
    pub(crate) path: String,
    /// Header names as sent (any case) and trimmed values.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// What to do with a request.
pub(crate) enum Reply {
    /// Answer with this status and body.
    Respond { status: u16, body: Vec<u8> },
    /// Close the connection without answering.
    Drop,
}

/// The application behind the server.
pub(crate) trait Service: Send + Sync + 'static {
    /// Answer a well-formed request.
    fn handle(&self, request: HttpRequest) -> Reply;
    /// Answer a request that could not be parsed (the connection is closed
    /// afterwards).
    fn malformed(&self, reason: &str) -> Reply;
    /// A connection was accepted.
    fn accepted(&self) {}
}

struct Shared {
    stopping: AtomicBool,
    /// Connections accepted but not yet picked up by a thread.
    waiting: AtomicUsize,
    request_ids: AtomicU64,
}

/// A running server; [`Server::stop`] (or drop) joins all its threads.
pub(crate) struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Bind `127.0.0.1:0` and start one accept thread plus `workers`
    /// connection threads.
    pub(crate) fn start(service: Arc<dyn Service>, workers: usize) -> io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            request_ids: AtomicU64::new(0),
        });
        let (tx, rx) = crossbeam_channel::unbounded::<TcpStream>();
        let mut server = Server {
            addr,
            shared: shared.clone(),
            threads: Vec::with_capacity(workers + 1),
        };
        for i in 0..workers.max(1) {
            let (rx, shared, service) = (rx.clone(), shared.clone(), service.clone());
            let spawned = thread::Builder::new()
                .name(format!("tunnel-emulator-{i}"))
                .spawn(move || worker_loop(&rx, &shared, &*service));
            match spawned {
                Ok(handle) => server.threads.push(handle),
                Err(e) => {
                    server.stop();
                    return Err(e);
                }
            }
        }
        let accept_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name("tunnel-emulator-accept".into())
            .spawn(move || {
                while !accept_shared.stopping.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            service.accepted();
                            accept_shared.waiting.fetch_add(1, Ordering::AcqRel);
                            if tx.send(stream).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            if e.kind() != io::ErrorKind::WouldBlock {
                                log::warn!("tunnel emulator: accept failed: {e}");
                            }
                            thread::sleep(ACCEPT_POLL);
                        }
                    }
                }
            });
        match spawned {
            Ok(handle) => server.threads.push(handle),
            Err(e) => {
                server.stop();
                return Err(e);
            }
        }
        Ok(server)
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, let in-flight requests finish, close idle
    /// connections, and join every thread. Idempotent.
    pub(crate) fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                log::error!("tunnel emulator: a server thread panicked");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn worker_loop(rx: &Receiver<TcpStream>, shared: &Shared, service: &dyn Service) {
    loop {
        match rx.recv_timeout(POLL) {
            Ok(stream) => {
                shared.waiting.fetch_sub(1, Ordering::AcqRel);
                serve_connection(stream, shared, service);
            }
            Err(RecvTimeoutError::Timeout) => {
                if shared.stopping.load(Ordering::Acquire) && rx.is_empty() {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn serve_connection(mut stream: TcpStream, shared: &Shared, service: &dyn Service) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true));
    if setup.is_err() {
        return;
    }
    let mut buf = Vec::new();
    loop {
        let (reply, close) = match read_request(&mut stream, &mut buf, shared) {
            Incoming::Closed => return,
            Incoming::Malformed(reason) => (service.malformed(&reason), true),
            Incoming::Request(request, close) => (service.handle(request), close),
        };
        match reply {
            Reply::Drop => {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Reply::Respond { status, body } => {
                let close = close || shared.stopping.load(Ordering::Acquire);
                let id = shared.request_ids.fetch_add(1, Ordering::Relaxed) + 1;
                if write_response(&mut stream, status, &body, close, id).is_err() || close {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
    }
}

enum Incoming {
    /// A request, and whether the connection closes after the response.
    Request(HttpRequest, bool),
    /// Not HTTP we understand: answer 400 and close.
    Malformed(String),
    /// The peer closed, the connection idled out, or the server stops.
    Closed,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Read more bytes into `buf`. `Ok(true)`: got some; `Ok(false)`: timed out.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, shared: &Shared) -> Incoming {
    let idle_since = Instant::now();
    let mut started = (!buf.is_empty()).then(Instant::now);
    let head_end = loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_HEAD {
            return Incoming::Malformed("request head too large".into());
        }
        match fill(stream, buf) {
            Ok(true) => {
                started.get_or_insert_with(Instant::now);
            }
            Ok(false) => {
                let stopping = shared.stopping.load(Ordering::Acquire);
                let give_up = match started {
                    None => {
                        stopping
                            || idle_since.elapsed() > KEEP_ALIVE_IDLE
                            || shared.waiting.load(Ordering::Acquire) > 0
                    }
                    Some(t) => stopping || t.elapsed() > REQUEST_DEADLINE,
                };
                if give_up {
                    return Incoming::Closed;
                }
            }
            Err(_) => return Incoming::Closed,
        }
    };
    let head = match std::str::from_utf8(&buf[..head_end]) {
        Ok(head) => head,
        Err(_) => return Incoming::Malformed("request head is not UTF-8".into()),
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Incoming::Malformed(format!("bad request line {request_line:?}"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Incoming::Malformed(format!("unsupported version {version:?}")),
    };
    if method.is_empty() || !target.starts_with('/') {
        return Incoming::Malformed(format!("bad request line {request_line:?}"));
    }
    let mut headers = Vec::new();
    let mut content_length: Option<usize> = None;
    let mut close = http10;
    let mut expect_continue = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Incoming::Malformed(format!("bad header line {line:?}"));
        };
        if name.is_empty() || name.ends_with([' ', '\t']) || name.starts_with([' ', '\t']) {
            return Incoming::Malformed(format!("bad header line {line:?}"));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) if content_length.is_none_or(|m| m == n) => content_length = Some(n),
                _ => return Incoming::Malformed("bad content-length".into()),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Incoming::Malformed("transfer-encoding is not supported".into());
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    let method = method.to_owned();
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let len = content_length.unwrap_or(0);
    if len > MAX_BODY {
        return Incoming::Malformed(format!("body of {len} bytes is too large"));
    }
    if expect_continue && buf.len() < head_end + len {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let started = started.unwrap_or_else(Instant::now);
    while buf.len() < head_end + len {
        match fill(stream, buf) {
            Ok(true) => {}
            Ok(false) => {
                if shared.stopping.load(Ordering::Acquire) || started.elapsed() > REQUEST_DEADLINE {
                    return Incoming::Closed;
                }
            }
            Err(_) => return Incoming::Closed,
        }
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Incoming::Request(
        HttpRequest {
            method,
            path,
            headers,
            body,
        },
        close,
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn write_response(
    stream: &mut TcpStream,
    status: u16,
    body: &[u8],
    close: bool,
    request_id: u64,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\
         {}: {}\r\n{}: emulator-{request_id:016x}\r\nconnection: {}\r\n\r\n",
        reason(status),
        body.len(),
        sign::HEADER_DATE,
        sign::format_date(SystemTime::now()),
        sign::HEADER_REQUEST_ID,
        if close { "close" } else { "keep-alive" },
    );
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Service for Echo {
        fn handle(&self, request: HttpRequest) -> Reply {
            if request.path == "/drop" {
                return Reply::Drop;
            }
            let mut body = request.path.into_bytes();
            body.push(b' ');
            body.extend_from_slice(&request.body);
            Reply::Respond { status: 200, body }
        }

        fn malformed(&self, reason: &str) -> Reply {
            Reply::Respond {
                status: 400,
                body: reason.as_bytes().to_vec(),
            }
        }
    }

    fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn keep_alive_pipelining_and_close() {
        let mut server = Server::start(Arc::new(Echo), 2).unwrap();
        let out = exchange(
            server.addr(),
            b"POST /a?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiPOST /b HTTP/1.1\r\ncontent-length: 0\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert!(out.contains("/a hi"), "{out}");
        assert!(out.contains("connection: close"), "{out}");
        server.stop();
    }

    #[test]
    fn malformed_requests_get_400_and_drop_gets_nothing() {
        let server = Server::start(Arc::new(Echo), 1).unwrap();
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"POST /x HTTP/2.0\r\n\r\n",
            b"POST /x HTTP/1.1\r\nno-colon\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            let out = exchange(server.addr(), raw);
            assert!(out.starts_with("HTTP/1.1 400"), "{raw:?} -> {out}");
        }
        let out = exchange(server.addr(), b"POST /drop HTTP/1.1\r\n\r\n");
        assert_eq!(out, "");
        // still serving
        let out = exchange(
            server.addr(),
            b"POST /ok HTTP/1.0\r\nContent-Length: 1\r\n\r\nz",
        );
        assert!(out.contains("/ok z"), "{out}");
    }
}

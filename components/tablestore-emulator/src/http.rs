//! A minimal blocking HTTP/1.1 server on `std::net`: one accept thread and one
//! thread per connection (up to a cap), keep-alive, `Content-Length` bodies.
//!
//! It is written for the emulator's needs rather than taken from an HTTP
//! crate because fault injection must be able to close a connection *without
//! writing any response* (tiny_http answers a dropped request with a 500),
//! and because [`Server::stop`] must join every thread it started.
//!
//! Each connection has its own thread, so a slow client holds only its own: four
//! clients dribbling a header line every 500 ms cannot delay anyone else. Beyond
//! `max_connections` open connections, new ones wait in the listen backlog until a
//! thread is free; none is ever closed before its first request because others are
//! busy. Deadlines: a connection may wait [`FIRST_REQUEST_IDLE`] for its first
//! request and [`KEEP_ALIVE_IDLE`] between requests; once a request starts, its
//! head must be complete within [`HEAD_DEADLINE`] and the whole request within
//! [`REQUEST_DEADLINE`]. A late client is disconnected.
//!
//! Limits: request heads up to 64 KiB, bodies up to 16 MiB, no
//! `Transfer-Encoding` (answered 400), no TLS. The head parser
//! ([`parse_head`]) is a pure function of the bytes, fuzzed in the tests.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use otp_threads_tablestore::sign;

const POLL: Duration = Duration::from_millis(20);
const ACCEPT_POLL: Duration = Duration::from_millis(2);
const MAX_HEAD: usize = 64 * 1024;
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;
/// How long a new connection may wait before sending its first request.
pub(crate) const FIRST_REQUEST_IDLE: Duration = Duration::from_secs(30);
/// How long a kept-alive connection may idle between requests.
pub(crate) const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(5);
/// How long a request head may take from its first byte.
pub(crate) const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// How long a whole request may take from its first byte.
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connection threads are small: they parse, call the service and write.
const CONNECTION_STACK: usize = 256 * 1024;

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
    request_ids: AtomicU64,
}

/// A running server; [`Server::stop`] (or drop) joins all its threads.
pub(crate) struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Bind `127.0.0.1:0` and start the accept thread; it serves up to
    /// `max_connections` connections at once, each on its own thread.
    pub(crate) fn start(service: Arc<dyn Service>, max_connections: usize) -> io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            request_ids: AtomicU64::new(0),
        });
        let accept_shared = shared.clone();
        let accept = thread::Builder::new()
            .name("tunnel-emulator-accept".into())
            .spawn(move || {
                accept_loop(&listener, &accept_shared, &service, max_connections.max(1))
            })?;
        Ok(Server {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, let in-flight requests finish, close idle
    /// connections, and join every thread. Idempotent.
    pub(crate) fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(accept) = self.accept.take()
            && accept.join().is_err()
        {
            log::error!("tunnel emulator: the accept thread panicked");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accept connections and give each a thread; at the end join them all.
fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    service: &Arc<dyn Service>,
    max_connections: usize,
) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping.load(Ordering::Acquire) {
        reap(&mut connections);
        if connections.len() >= max_connections {
            // The rest wait in the listen backlog; none is closed.
            thread::sleep(ACCEPT_POLL);
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                service.accepted();
                let (shared, service) = (shared.clone(), service.clone());
                let spawned = thread::Builder::new()
                    .name("tunnel-emulator-conn".into())
                    .stack_size(CONNECTION_STACK)
                    .spawn(move || serve_connection(stream, &shared, &*service));
                match spawned {
                    Ok(handle) => connections.push(handle),
                    Err(e) => log::error!("tunnel emulator: cannot start a connection thread: {e}"),
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
    for handle in connections {
        if handle.join().is_err() {
            log::error!("tunnel emulator: a connection thread panicked");
        }
    }
}

/// Join the connection threads that have ended.
fn reap(connections: &mut Vec<JoinHandle<()>>) {
    let mut i = 0;
    while i < connections.len() {
        if connections[i].is_finished() {
            if connections.swap_remove(i).join().is_err() {
                log::error!("tunnel emulator: a connection thread panicked");
            }
        } else {
            i += 1;
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
    let mut idle_limit = FIRST_REQUEST_IDLE;
    loop {
        let (reply, close) = match read_request(&mut stream, &mut buf, shared, idle_limit) {
            Incoming::Closed => return,
            Incoming::Malformed(reason) => (service.malformed(&reason), true),
            Incoming::Request(request, close) => (service.handle(request), close),
        };
        idle_limit = KEEP_ALIVE_IDLE;
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
    /// The peer closed, was too slow, idled out, or the server stops.
    Closed,
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) content_length: usize,
    /// The connection closes after the response.
    pub(crate) close: bool,
    pub(crate) expect_continue: bool,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where the head ends (after its blank line), if it is complete.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    find(buf, b"\r\n\r\n").map(|pos| pos + 4)
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

/// Parse a complete request head (request line, headers, blank line). Never
/// panics; anything unexpected is an error saying what.
pub(crate) fn parse_head(head: &[u8]) -> Result<Head, String> {
    let head = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("bad request line {request_line:?}"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(format!("unsupported version {version:?}")),
    };
    if method.is_empty() || !target.starts_with('/') {
        return Err(format!("bad request line {request_line:?}"));
    }
    let mut headers = Vec::new();
    let mut content_length: Option<usize> = None;
    let mut close = http10;
    let mut expect_continue = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        if name.is_empty() || name.ends_with([' ', '\t']) || name.starts_with([' ', '\t']) {
            return Err(format!("bad header line {line:?}"));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) if content_length.is_none_or(|m| m == n) => content_length = Some(n),
                _ => return Err("bad content-length".into()),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("transfer-encoding is not supported".into());
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
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Err(format!("body of {content_length} bytes is too large"));
    }
    Ok(Head {
        method: method.to_owned(),
        path: target
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
        headers,
        content_length,
        close,
        expect_continue,
    })
}

fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    shared: &Shared,
    idle_limit: Duration,
) -> Incoming {
    let idle_since = Instant::now();
    let mut started = (!buf.is_empty()).then(Instant::now);
    let head_end = loop {
        if let Some(end) = head_end(buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Incoming::Malformed("request head too large".into());
        }
        match fill(stream, buf) {
            Ok(true) => {
                started.get_or_insert_with(Instant::now);
            }
            Ok(false) => {}
            Err(_) => return Incoming::Closed,
        }
        let late = match started {
            None => idle_since.elapsed() > idle_limit,
            Some(t) => t.elapsed() > HEAD_DEADLINE,
        };
        if late || shared.stopping.load(Ordering::Acquire) {
            return Incoming::Closed;
        }
    };
    let head = match parse_head(&buf[..head_end]) {
        Ok(head) => head,
        Err(reason) => return Incoming::Malformed(reason),
    };
    let len = head.content_length;
    // `len` is at most MAX_BODY, so this cannot overflow.
    let end = head_end + len;
    if head.expect_continue && buf.len() < end {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let started = started.unwrap_or_else(Instant::now);
    while buf.len() < end {
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
    let body = buf[head_end..end].to_vec();
    buf.drain(..end);
    Incoming::Request(
        HttpRequest {
            method: head.method,
            path: head.path,
            headers: head.headers,
            body,
        },
        head.close,
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

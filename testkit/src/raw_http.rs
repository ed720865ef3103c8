//! A bare `std::net` HTTP/1.1 responder: the raw baseline that the benches of the
//! workspace's HTTP servers (the Tablestore emulator, the observer's web view) run
//! beside them in the same run. It reads each request and writes one fixed response,
//! doing nothing else, so the ratio to it is what the server's own work costs.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

/// How the responder treats a connection, to match the server it stands beside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connections {
    /// One request per connection: read the head, answer, close (answered on the
    /// accepting thread).
    OneRequest,
    /// Keep-alive: every request (head, then a `content-length` body) is answered
    /// until the client closes; one thread per connection.
    KeepAlive,
}

/// The responder, on `127.0.0.1` at a free port; stopped, and its threads joined, on
/// drop.
pub struct RawListener {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl RawListener {
    /// Starts answering every request with `response` (the whole HTTP response).
    pub fn start(response: Vec<u8>, connections: Connections) -> RawListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let stopping = Arc::new(AtomicBool::new(false));
        let response = Arc::new(response);
        let accept = {
            let stopping = stopping.clone();
            thread::spawn(move || {
                let mut handlers = Vec::new();
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    match connections {
                        Connections::OneRequest => {
                            let _ = answer_once(stream, &response);
                        }
                        Connections::KeepAlive => {
                            let response = response.clone();
                            handlers.push(thread::spawn(move || {
                                let _ = answer_every_request(stream, &response);
                            }));
                        }
                    }
                }
                for handler in handlers {
                    let _ = handler.join();
                }
            })
        };
        RawListener {
            address,
            stopping,
            accept: Some(accept),
        }
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for RawListener {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Reads the lines of a request head up to the blank line; the `content-length` it
/// gives, or `None` at the end of the stream.
fn read_head(reader: &mut impl BufRead, line: &mut String) -> io::Result<Option<usize>> {
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok(Some(length));
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
}

fn answer_once(stream: TcpStream, response: &[u8]) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    read_head(&mut reader, &mut String::new())?;
    writer.write_all(response)?;
    writer.flush()?;
    writer.shutdown(Shutdown::Both)
}

fn answer_every_request(stream: TcpStream, response: &[u8]) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let (mut line, mut body) = (String::new(), Vec::new());
    while let Some(length) = read_head(&mut reader, &mut line)? {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        writer.write_all(response)?;
        writer.flush()?;
    }
    Ok(())
}

/// The figures of [`paired_rounds`]: medians of each side's per-call time, and the
/// median of the per-round ratios (ours / raw).
#[derive(Clone, Copy, Debug)]
pub struct PairedFigures {
    /// The server's median time per call.
    pub ours: std::time::Duration,
    /// The raw baseline's median time per call.
    pub raw: std::time::Duration,
    /// The median of the rounds' ratios ours / raw.
    pub ratio: f64,
}

/// Times `rounds` paired rounds of `calls` calls each, alternating the server under
/// test (`ours`) and the raw baseline (`raw`), after one short warm-up round of each;
/// on these noisy machines only a ratio measured side by side means anything.
/// `on_round` sees each round's per-call times (to print them).
pub fn paired_rounds(
    rounds: usize,
    calls: usize,
    mut ours: impl FnMut(),
    mut raw: impl FnMut(),
    mut on_round: impl FnMut(usize, std::time::Duration, std::time::Duration),
) -> PairedFigures {
    let time = |call: &mut dyn FnMut(), calls: usize| {
        let started = std::time::Instant::now();
        for _ in 0..calls {
            call();
        }
        started.elapsed() / calls.max(1) as u32
    };
    time(&mut ours, calls / 10);
    time(&mut raw, calls / 10);
    let (mut on_ours, mut on_raw, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let o = time(&mut ours, calls);
        let r = time(&mut raw, calls);
        on_round(round, o, r);
        on_ours.push(o);
        on_raw.push(r);
        ratios.push(o.as_secs_f64() / r.as_secs_f64());
    }
    on_ours.sort();
    on_raw.sort();
    ratios.sort_by(f64::total_cmp);
    PairedFigures {
        ours: on_ours[rounds / 2],
        raw: on_raw[rounds / 2],
        ratio: ratios[rounds / 2],
    }
}

//! The web view's cost per `/snapshot.json` request, beside a raw baseline in the
//! same run.
//!
//! - `observer_web/snapshot_json`: `GET /snapshot.json` over loopback to the web view
//!   of a node running a supervisor with `PROCESSES` idle workers: the server parses
//!   the request, takes the node's snapshot, renders it as JSON and answers (one
//!   request per connection, as the server does).
//! - `raw_listener/snapshot_json`: the same request from the same client (a new
//!   `TcpStream` per request, read to the end) to a bare `std::net::TcpListener`
//!   thread that reads the request head and writes back a response captured from the
//!   web view (same headers, same size), then closes, doing nothing else.
//!
//! The ratio web view / raw of the time per round trip is printed, from rounds that
//! alternate the two. Run briefly with
//! `cargo bench -p otp-threads-observer-web --bench observer -- --quick`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use criterion::Criterion;
use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor};
use otp_threads::{Runtime, Worker};
use otp_threads_observer_web::ObserverWeb;
use otp_threads_testkit::raw_http::{Connections, RawListener, paired_rounds};

const PROCESSES: usize = 100;
const ROUNDS: usize = 5;
const CALLS_PER_ROUND: usize = 300;

struct Idle;

impl Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

/// One `GET /snapshot.json` on a new connection; the whole response.
fn get_snapshot(address: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).expect("connect");
    let request = format!("GET /snapshot.json HTTP/1.1\r\nHost: {address}\r\nAccept: */*\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    assert!(response.starts_with(b"HTTP/1.1 200"), "not a 200 response");
    response
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let runtime = Runtime::new();
    let children = (0..PROCESSES).map(|i| ChildSpec::worker(format!("idle-{i}"), || Idle));
    let supervisor = Supervisor::new(Strategy::OneForOne)
        .children(children)
        .start(&runtime.handle())
        .expect("the supervisor starts");
    let web = ObserverWeb::builder()
        .start(&runtime.handle())
        .expect("the web view starts");
    let captured = get_snapshot(web.address());
    let raw = RawListener::start(captured.clone(), Connections::OneRequest);
    assert_eq!(get_snapshot(raw.address()), captured);

    let mut group = criterion.benchmark_group("snapshot_json");
    group.bench_function("observer_web", |b| b.iter(|| get_snapshot(web.address())));
    group.bench_function("raw_listener", |b| b.iter(|| get_snapshot(raw.address())));
    group.finish();

    let figures = paired_rounds(
        ROUNDS,
        CALLS_PER_ROUND,
        || drop(black_box(get_snapshot(web.address()))),
        || drop(black_box(get_snapshot(raw.address()))),
        |run, w, r| {
            println!(
                "round {run}: web view {w:.2?}/request, raw listener {r:.2?}/request, ratio {:.2}",
                w.as_secs_f64() / r.as_secs_f64()
            )
        },
    );
    let (w, r) = (figures.ours, figures.raw);
    println!(
        "GET /snapshot.json ({PROCESSES} supervised workers + the supervisor, {} byte response, \
         a connection per request, loopback): web view median {w:.2?}, raw listener median \
         {r:.2?}; ratio web view / raw {:.2} (median of {ROUNDS} paired rounds of \
         {CALLS_PER_ROUND} requests; {:.2} from the medians)",
        captured.len(),
        figures.ratio,
        w.as_secs_f64() / r.as_secs_f64()
    );
    drop(raw);
    web.stop();
    drop(supervisor);
    runtime
        .shutdown(Duration::from_secs(10))
        .expect("the runtime stops");
    criterion.final_summary();
}

//! Distribution benchmarks on loopback: remote call round trip and cast throughput
//! for Rust↔Rust (two runtimes of this process over TCP), Rust↔BEAM, and BEAM↔BEAM
//! measured in the same run, plus bytes on the wire per cast.
//!
//! The bench starts its own name server and two BEAM nodes (`scripts/services/erlang.sh
//! node`); without `erl` it says so and measures Rust↔Rust only. BEAM↔BEAM is driven
//! from Rust: a `driver` process on one BEAM node makes N calls (or casts) to the other
//! node's `srv` and answers when done; one extra round trip per batch is included.
//! BEAM→Rust is the same driver calling (or casting to) the Rust node's `srv`.
//! Issue targets: Rust↔Rust cast throughput ≥ 5× BEAM↔BEAM, call round trip ≤ 0.5×
//! BEAM↔BEAM; Rust↔BEAM, both ways, not slower than BEAM↔BEAM.
//!
//! `cargo bench --features dist --bench dist` runs criterion and the ratio report;
//! `-- report` runs only the report.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::Criterion;
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, Node, Term};
use otp_threads::{Context, ReplyTo, Runtime, Step, Worker};

const CALLS: u64 = 5_000;
const CASTS: u64 = 50_000;
const LONG: Duration = Duration::from_secs(300);

/// Answers calls with the request; counts casts.
struct Calc {
    casts: u64,
}

impl Worker for Calc {
    type Call = i64;
    type Reply = i64;
    type Cast = i64;
    type Info = Term;
    type Continue = ();

    fn handle_call(
        &mut self,
        request: i64,
        reply: ReplyTo<i64>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(request);
        Step::Next
    }

    fn handle_cast(&mut self, _: i64, _: &mut Context<Self>) -> Step<Self> {
        self.casts += 1;
        Step::Next
    }
}

/// The Rust side of BEAM→Rust: `srv`, as BEAM's `srv` does, answers any call with the
/// request and swallows casts (the BEAM driver's `sync` call included).
struct Echo;

impl Worker for Echo {
    type Call = Term;
    type Reply = Term;
    type Cast = Term;
    type Info = Term;
    type Continue = ();

    fn handle_call(
        &mut self,
        request: Term,
        reply: ReplyTo<Term>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(request);
        Step::Next
    }
}

/// BEAM: `srv` answers calls with the request and swallows casts; `driver` makes
/// `{calls, K, Node}` / `{casts, K, Node}` batches to `{srv, Node}`.
const BEAM_SERVER: &str = "register(srv, self()), \
    spawn(fun() -> register(driver, self()), \
      Calls = fun C(0, _) -> ok; C(I, N) -> I = gen_server:call({srv, N}, I, infinity), C(I - 1, N) end, \
      Casts = fun S(0, _) -> ok; S(I, N) -> gen_server:cast({srv, N}, I), S(I - 1, N) end, \
      D = fun DL() -> receive \
        {'$gen_call', From, {calls, K, N}} -> Calls(K, N), gen:reply(From, done), DL(); \
        {'$gen_call', From, {casts, K, N}} -> Casts(K, N), sync = gen_server:call({srv, N}, sync, infinity), gen:reply(From, done), DL() \
      end end, D() end), \
    io:format(\"ready~n\"), \
    L = fun Loop() -> receive {'$gen_call', From, Req} -> gen:reply(From, Req), Loop(); _ -> Loop() end end, L()";

struct Beam {
    name: String,
    child: Child,
}

impl Drop for Beam {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_else(|_| "localhost".into())
        .trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_owned()
}

fn start_beam(alive: &str, epmd_port: u16) -> Option<Beam> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services/erlang.sh");
    let mut child = Command::new("bash")
        .args([script, "node", alive, "bench", &epmd_port.to_string()])
        .args(["-eval", &format!("{BEAM_SERVER}, erlang:halt().")])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let mut lines = BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(line)) if line == "ready" => {}
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
    }
    // Keep draining stdout so BEAM never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Some(Beam {
        name: format!("{alive}@{}", host()),
        child,
    })
}

struct Setup {
    _server: NameServer,
    a: Node,
    b: Node,
    a_runtime: Runtime,
    b_runtime: Runtime,
    beams: Option<(Beam, Beam)>,
}

fn setup() -> Setup {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let start = |alive: &str| {
        let runtime = Runtime::builder()
            .node_name(format!("{alive}{}@{}", std::process::id(), host()))
            .build()
            .unwrap();
        let node = Node::builder()
            .cookie("bench")
            .epmd(server.address())
            .start(&runtime.handle())
            .unwrap();
        (runtime, node)
    };
    let (a_runtime, a) = start("ra");
    let (b_runtime, b) = start("rb");
    let calc = b_runtime.spawn_named("calc", Calc { casts: 0 }).unwrap();
    b.serve(&calc);
    let echo = b_runtime.spawn_named("srv", Echo).unwrap();
    b.serve(&echo);
    let port = server.address().port();
    let pid = std::process::id();
    let beams = match (
        start_beam(&format!("bx{pid}"), port),
        start_beam(&format!("by{pid}"), port),
    ) {
        (Some(x), Some(y)) => Some((x, y)),
        _ => {
            println!(
                "erl is missing or failed to start: BEAM↔BEAM and Rust↔BEAM are not measured \
                 (install with `bash scripts/services/erlang.sh ensure`)"
            );
            None
        }
    };
    Setup {
        _server: server,
        a,
        b,
        a_runtime,
        b_runtime,
        beams,
    }
}

fn rust_calls(node: &Node, server: (&str, &str), n: u64) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        let reply: i64 = node.call(server, &(i as i64), LONG).unwrap();
        assert_eq!(reply, i as i64);
    }
    started.elapsed()
}

fn rust_casts(node: &Node, root: otp_threads::Pid, server: (&str, &str), n: u64) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        node.send(root, server, &(Atom::from("$gen_cast"), i as i64))
            .unwrap();
    }
    // The sync call is answered after every cast before it on the same connection.
    let _: Term = node.call(server, &0i64, LONG).unwrap();
    started.elapsed()
}

fn beam_batch(node: &Node, x: &str, y: &str, kind: &str, n: u64) -> Duration {
    let started = Instant::now();
    let done: Atom = node
        .call(
            ("driver", x),
            &(Atom::from(kind), n as i64, Atom::from(y)),
            LONG,
        )
        .unwrap();
    assert_eq!(done.as_str(), "done");
    started.elapsed()
}

fn criterion_benches(c: &mut Criterion, s: &Setup) {
    let b_name = s.b.name().to_owned();
    let mut calls = c.benchmark_group("dist_call_round_trip");
    calls.sample_size(10);
    calls.bench_function("rust_to_rust", |bench| {
        bench.iter_custom(|iters| rust_calls(&s.a, ("calc", &b_name), iters))
    });
    if let Some((x, y)) = &s.beams {
        calls.bench_function("rust_to_beam", |bench| {
            bench.iter_custom(|iters| rust_calls(&s.a, ("srv", &x.name), iters))
        });
        calls.bench_function("beam_to_beam", |bench| {
            bench.iter_custom(|iters| beam_batch(&s.a, &x.name, &y.name, "calls", iters))
        });
    }
    calls.finish();
    let root = s.a_runtime.handle().root_pid();
    let mut casts = c.benchmark_group("dist_cast_throughput");
    casts.sample_size(10);
    casts.throughput(criterion::Throughput::Elements(1));
    casts.bench_function("rust_to_rust", |bench| {
        bench.iter_custom(|iters| rust_casts(&s.a, root, ("calc", &b_name), iters))
    });
    if let Some((x, y)) = &s.beams {
        casts.bench_function("rust_to_beam", |bench| {
            bench.iter_custom(|iters| rust_casts(&s.a, root, ("srv", &x.name), iters))
        });
        casts.bench_function("beam_to_beam", |bench| {
            bench.iter_custom(|iters| beam_batch(&s.a, &x.name, &y.name, "casts", iters))
        });
    }
    casts.finish();
}

/// Encode and decode of one cast frame (REG_SEND + `{'$gen_cast', I}`), no network.
fn codec_figures() {
    use otp_threads::dist::control::{self, Control};
    use otp_threads::dist::eetf;
    let from = eetf::Pid::new("ra@host", 1, 0, 7);
    let control = Control::RegSend {
        from,
        to: Atom::from("calc"),
    };
    let payload = otp_threads::dist::ToTerm::to_term(&(Atom::from("$gen_cast"), 42i64));
    const N: u32 = 100_000;
    let started = Instant::now();
    let mut body = Vec::new();
    for _ in 0..N {
        body = control::encode(&control, Some(&payload)).unwrap();
    }
    let encode = started.elapsed() / N;
    let started = Instant::now();
    for _ in 0..N {
        std::hint::black_box(control::decode(&body).unwrap());
    }
    let decode = started.elapsed() / N;
    println!(
        "codec: cast frame of {} bytes: encode {encode:?}, decode {decode:?} (scan + eetf)",
        body.len() + 4
    );
}

fn report(s: &Setup) {
    codec_figures();
    let b_name = s.b.name().to_owned();
    let root = s.a_runtime.handle().root_pid();
    println!("== dist report ({CALLS} calls, {CASTS} casts per side, loopback)");
    let rr_call = rust_calls(&s.a, ("calc", &b_name), CALLS);
    let before = s.a.bytes_sent(&b_name);
    let rr_cast = rust_casts(&s.a, root, ("calc", &b_name), CASTS);
    let cast_bytes = (s.a.bytes_sent(&b_name) - before) as f64 / CASTS as f64;
    let per_call = |d: Duration| d.as_secs_f64() * 1e6 / CALLS as f64;
    let rate = |d: Duration| CASTS as f64 / d.as_secs_f64();
    println!(
        "rust->rust: call {:.1} us, casts {:.0}/s, {:.1} bytes on the wire per cast",
        per_call(rr_call),
        rate(rr_cast),
        cast_bytes
    );
    if let Some((x, y)) = &s.beams {
        let rb_call = rust_calls(&s.a, ("srv", &x.name), CALLS);
        let rb_cast = rust_casts(&s.a, root, ("srv", &x.name), CASTS);
        let bb_call = beam_batch(&s.a, &x.name, &y.name, "calls", CALLS);
        let bb_cast = beam_batch(&s.a, &x.name, &y.name, "casts", CASTS);
        // The same BEAM driver, its calls and casts going to the Rust node's `srv`.
        let br_call = beam_batch(&s.a, &x.name, &b_name, "calls", CALLS);
        let br_cast = beam_batch(&s.a, &x.name, &b_name, "casts", CASTS);
        println!(
            "rust->beam: call {:.1} us, casts {:.0}/s",
            per_call(rb_call),
            rate(rb_cast)
        );
        println!(
            "beam->rust: call {:.1} us, casts {:.0}/s",
            per_call(br_call),
            rate(br_cast)
        );
        println!(
            "beam->beam: call {:.1} us, casts {:.0}/s",
            per_call(bb_call),
            rate(bb_cast)
        );
        println!(
            "ratios vs beam->beam: call time rust->rust {:.2}x (target <= 0.5), rust->beam {:.2}x, \
             beam->rust {:.2}x (targets <= 1); cast rate rust->rust {:.2}x (target >= 5), \
             rust->beam {:.2}x, beam->rust {:.2}x (targets >= 1)",
            per_call(rr_call) / per_call(bb_call),
            per_call(rb_call) / per_call(bb_call),
            per_call(br_call) / per_call(bb_call),
            rate(rr_cast) / rate(bb_cast),
            rate(rb_cast) / rate(bb_cast),
            rate(br_cast) / rate(bb_cast),
        );
    }
}

fn main() {
    let s = setup();
    let only_report = std::env::args().any(|a| a == "report");
    if !only_report {
        let mut criterion = Criterion::default().configure_from_args();
        criterion_benches(&mut criterion, &s);
        criterion.final_summary();
    }
    report(&s);
    let Setup {
        a,
        b,
        a_runtime,
        b_runtime,
        beams,
        ..
    } = s;
    drop(beams);
    a.shutdown();
    b.shutdown();
    a_runtime.shutdown(Duration::from_secs(10)).unwrap();
    b_runtime.shutdown(Duration::from_secs(10)).unwrap();
}

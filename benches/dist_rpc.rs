//! rpc answered by a Rust node vs by a BEAM node, in the same run: a BEAM node `x`
//! makes the same `rpc:call` and `erpc:call` (`erlang:node()`, answered by our
//! built-in there and by ERTS on the BEAM node `y`) K times to each and reports the
//! mean round trip measured with `timer:tc`; this prints both and the ratio
//! (Rust ÷ BEAM, lower is better).
//!
//! `cargo bench --features dist --bench dist_rpc`. Starts its own name server and two
//! BEAM nodes (`scripts/services/erlang.sh node`); without `erl` it says so and exits.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use otp_threads::Runtime;
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Node, Term, ToTerm};

const CALLS: u32 = 5_000;

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_else(|_| "localhost".into())
        .trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_owned()
}

fn beam(alive: &str, epmd_port: u16, eval: &str) -> Option<std::process::Child> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services/erlang.sh");
    Command::new("bash")
        .args([script, "node", alive, "bench", &epmd_port.to_string()])
        .args(["-eval", &format!("{eval}, erlang:halt().")])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .ok()
}

fn main() {
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let port = server.address().port();
    let host = host();
    let ours = format!("rsbench{}@{host}", std::process::id());
    let runtime = Runtime::builder().node_name(&ours).build().unwrap();
    let node = Node::builder()
        .cookie("bench")
        .epmd(server.address())
        .start(&runtime.handle())
        .unwrap();
    // A registered function beside the built-in, to measure the user path too.
    node.register_rpc("bench", "echo", |args: &[Term]| {
        Ok(args.first().cloned().unwrap_or_else(|| 0.to_term()))
    })
    .unwrap();
    let y_alive = format!("beamy{}", std::process::id());
    let y_name = format!("{y_alive}@{host}");
    let Some(mut y) = beam(
        &y_alive,
        port,
        "io:format(\"ready~n\"), receive stop -> ok end",
    ) else {
        eprintln!(
            "dist_rpc: `erl` cannot be started (scripts/services/erlang.sh ensure); nothing measured"
        );
        return;
    };
    let mut y_lines = BufReader::new(y.stdout.take().unwrap()).lines();
    assert_eq!(y_lines.next().unwrap().unwrap(), "ready");
    let driver = format!(
        "Rust = '{ours}', Beam = '{y_name}', K = {CALLS}, \
         pong = net_adm:ping(Rust), pong = net_adm:ping(Beam), \
         Rpc = fun(T, M, F, A) -> fun L(0) -> ok; L(I) -> _ = rpc:call(T, M, F, A), L(I - 1) end end, \
         Erpc = fun(T, M, F, A) -> fun L(0) -> ok; L(I) -> _ = erpc:call(T, M, F, A), L(I - 1) end end, \
         Time = fun(Name, Loop) -> Loop(200), {{Us, ok}} = timer:tc(fun() -> Loop(K) end), \
           io:format(\"~s ~.3f~n\", [Name, Us / K]) end, \
         Time(\"rpc_rust\", Rpc(Rust, erlang, node, [])), \
         Time(\"rpc_beam\", Rpc(Beam, erlang, node, [])), \
         Time(\"erpc_rust\", Erpc(Rust, erlang, node, [])), \
         Time(\"erpc_beam\", Erpc(Beam, erlang, node, [])), \
         Time(\"erpc_rust_registered\", Erpc(Rust, bench, echo, [1])), \
         Time(\"erpc_beam_identity\", Erpc(Beam, erlang, abs, [1])), \
         io:format(\"done~n\")"
    );
    let mut x = beam(&format!("beamx{}", std::process::id()), port, &driver).unwrap();
    let mut figures = std::collections::HashMap::new();
    for line in BufReader::new(x.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "done" {
            break;
        }
        if let Some((name, micros)) = line.split_once(' ')
            && let Ok(micros) = micros.parse::<f64>()
        {
            println!("dist_rpc: {name}: {micros:.1} µs per call (mean of {CALLS})");
            figures.insert(name.to_owned(), micros);
        } else {
            println!("dist_rpc: x said {line}");
        }
    }
    for (rust, beam) in [
        ("rpc_rust", "rpc_beam"),
        ("erpc_rust", "erpc_beam"),
        ("erpc_rust_registered", "erpc_beam_identity"),
    ] {
        if let (Some(r), Some(b)) = (figures.get(rust), figures.get(beam)) {
            println!(
                "dist_rpc: {rust} / {beam} = {:.2}x (lower is better)",
                r / b
            );
        }
    }
    let _ = x.kill();
    let _ = x.wait();
    let _ = y.kill();
    let _ = y.wait();
    node.shutdown();
    runtime.shutdown(Duration::from_secs(10)).unwrap();
    server.shutdown();
}

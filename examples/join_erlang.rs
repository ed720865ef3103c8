//! Joins a BEAM node: a Rust runtime becomes the node `rust@HOST`, connects to the
//! Erlang node given on the command line, and serves a `greeter` gen_server that
//! Erlang can call. It runs until the Erlang node disconnects.
//!
//! Start an Erlang node first (short names use this machine's host name, which must
//! resolve to this machine):
//!
//! ```text
//! erl -sname beam -setcookie demo
//! ```
//!
//! then, in another terminal:
//!
//! ```text
//! cargo run --features dist --example join_erlang -- beam@$(hostname -s)
//! ```
//!
//! and in the Erlang shell:
//!
//! ```erlang
//! nodes().                                                  % ['rust@HOST']
//! gen_server:call({greeter, 'rust@HOST'}, <<"Joe">>).     % <<"Hello, Joe!">>
//! erlang:disconnect_node('rust@HOST').                     % the example exits
//! ```
//!
//! The cookie is `demo` (or `$COOKIE`).

use std::time::Duration;

use otp_threads::dist::{Node, NodeEvent};
use otp_threads::{Context, ReplyTo, Runtime, Step, Worker};

struct Greeter;

impl Worker for Greeter {
    type Call = String;
    type Reply = String;
    type Cast = String;
    type Info = String;
    type Continue = ();

    fn handle_call(
        &mut self,
        name: String,
        reply: ReplyTo<String>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(format!("Hello, {name}!"));
        Step::Next
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = env_logger::try_init();
    let Some(peer) = std::env::args().nth(1) else {
        eprintln!("usage: join_erlang NODE   (e.g. beam@$(hostname -s))");
        std::process::exit(2);
    };
    let host = peer
        .split_once('@')
        .map(|(_, host)| host.to_owned())
        .unwrap_or_default();
    let cookie = std::env::var("COOKIE").unwrap_or_else(|_| "demo".into());
    let runtime = Runtime::builder()
        .node_name(format!("rust@{host}"))
        .build()?;
    let node = Node::builder().cookie(cookie).start(&runtime.handle())?;
    let greeter = runtime.spawn_named("greeter", Greeter)?;
    node.serve(&greeter);
    let events = node.events();
    node.connect(&peer)?;
    println!(
        "{} joined {peer}; connected nodes: {:?}",
        node.name(),
        node.nodes()
    );
    println!(
        "try: gen_server:call({{greeter, '{}'}}, <<\"Joe\">>).",
        node.name()
    );
    for event in events.iter() {
        match event {
            NodeEvent::Up { node } => println!("nodeup {node}"),
            NodeEvent::Down { node: down, reason } => {
                println!("nodedown {down}: {reason}");
                if down == peer {
                    break;
                }
            }
        }
    }
    node.shutdown();
    runtime.shutdown(Duration::from_secs(5))?;
    Ok(())
}

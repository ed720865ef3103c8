//! A visible connection to a BEAM node stays up for five minutes of idleness with the
//! default `net_ticktime` (60 s): ticks, and the `rex` / `global_name_server` traffic a
//! visible node gets on connect, do not make either side drop it.
//!
//! Ports `net_kernel`'s tick rule (a connection silent for `net_ticktime` is dropped;
//! ticks every `net_ticktime / 4` keep it up). `OTP_THREADS_DIST_SOAK_SECS` shortens
//! or lengthens the idle period (default 300). It is `#[ignore]`d so that an ordinary
//! `cargo test` does not wait five minutes; `scripts/test.sh` always runs it, beside the
//! rest of the suite: `cargo test --features dist --test dist_soak -- --ignored`.

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::net::SocketAddr;
use std::time::Duration;

use node_support::{OurNode, wait_event};
use otp_threads::dist::NodeEvent;
use otp_threads::dist::epmd::NameServer;

#[test]
#[ignore = "five idle minutes: scripts/test.sh runs it beside the rest of the suite (--ignored)"]
fn a_visible_connection_to_beam_stays_up_for_five_minutes() {
    let secs: u64 = std::env::var("OTP_THREADS_DIST_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let events = ours.node().events();
    let beam = erlang::beam_node(
        &erlang::unique_name("beam"),
        "sesame",
        server.address().port(),
        &format!(
            "pong = net_adm:ping('{0}'), ok = net_kernel:monitor_nodes(true), io:format(\"up~n\"), \
             receive {{nodedown, N}} -> io:format(\"nodedown ~p~n\", [N]) \
             after {1} -> io:format(\"still up ~p ~p~n\", [nodes(), net_adm:ping('{0}')]) end",
            ours.name(),
            secs * 1000
        ),
    );
    beam.expect_line("up");
    wait_event(&events, |e| matches!(e, NodeEvent::Up { .. }));
    // Wait for BEAM's verdict; our side must not report a nodedown meanwhile.
    let deadline = std::time::Instant::now() + Duration::from_secs(secs + 60);
    let verdict = loop {
        // BEAM halts right after its verdict: a nodedown or a missing peer seen just
        // as a slice ended may follow a verdict not read yet, so that comes first.
        let event = events.try_recv().ok();
        let peers = ours.node().nodes().len();
        if event.is_some() || peers != 1 {
            if let Some(line) = beam.try_line(Duration::from_secs(2)) {
                break line;
            }
            panic!("our side saw {event:?} with {peers} peers during the idle period");
        }
        assert!(std::time::Instant::now() < deadline, "BEAM gave no verdict");
        match beam_line(&beam) {
            Some(line) => break line,
            None => continue,
        }
    };
    assert_eq!(verdict, format!("still up [{}] pong", ours.name()));
}

/// The next stdout line of BEAM after "up", waiting in slices so our events are checked.
fn beam_line(beam: &erlang::OsProcess) -> Option<String> {
    beam.try_line(Duration::from_secs(5))
}

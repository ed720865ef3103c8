//! A BEAM node's `rpc:call` / `erpc:call` to a Rust node is answered (rex), and the
//! introspection calls Erlang's tools make are answered about the node's threads.
//!
//! Ports OTP's `rpc_SUITE` / `erpc_SUITE` rules as far as they concern the callee:
//! a call returns the function's value, an undefined function gives
//! `{badrpc, {'EXIT', {undef, [{M, F, A, _} | _]}}}`, `exit/1` gives
//! `{badrpc, {'EXIT', Reason}}`, a throw returns the thrown value (rex's `catch`).

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::net::SocketAddr;

use node_support::OurNode;
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Exception, FromTerm, Term, ToTerm};

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn adder(ours: &OurNode) {
    ours.node()
        .register_rpc("mymod", "add", |args: &[Term]| match args {
            [a, b] => {
                let a = i64::from_term(a.clone()).map_err(|_| Exception::badarg())?;
                let b = i64::from_term(b.clone()).map_err(|_| Exception::badarg())?;
                Ok(a.checked_add(b).ok_or_else(Exception::badarg)?.to_term())
            }
            _ => Err(Exception::badarg()),
        })
        .unwrap();
}

#[test]
fn rpc_call_from_beam_runs_a_registered_function() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    adder(&ours);
    let beam = erlang::beam_node(
        &erlang::unique_name("beam"),
        "sesame",
        server.address().port(),
        &format!(
            "io:format(\"add ~p~n\", [rpc:call('{0}', mymod, add, [40, 2], 10000)]), \
             io:format(\"erpc ~p~n\", [catch erpc:call('{0}', mymod, add, [1, 2], 10000)])",
            ours.name()
        ),
    );
    assert_eq!(beam.expect_line("add "), "add 42");
    assert_eq!(beam.expect_line("erpc "), "erpc 3");
}

//! A BEAM node's `rpc:call` / `erpc:call` / `spawn` to a Rust node is answered: rex
//! with registered functions and the introspection built-ins Erlang's tools use, and
//! `SPAWN_REQUEST` with a `SPAWN_REPLY`. Real BEAM nodes in separate OS processes.
//!
//! Ports OTP's `rpc_SUITE` / `erpc_SUITE` rules as far as they concern the callee
//! (a call returns the function's value; an undefined function gives
//! `{badrpc, {'EXIT', {undef, [{M, F, A, _} | _]}}}`; `exit/1` gives
//! `{badrpc, {'EXIT', Reason}}`; a throw is returned by `rpc:call` and rethrown by
//! `erpc:call`), `erlang:spawn_request/5`'s reply rules (`{spawn_reply, ReqId, ok, Pid}`
//! or `{spawn_reply, ReqId, error, Reason}`, monitor and link set up as asked), and the
//! item shapes of `erlang:process_info/2` and `supervisor:which_children/1`.

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::net::SocketAddr;
use std::time::Duration;

use node_support::{OurNode, Seen, next_seen, probe, register_adder};
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, Exception, SpawnRefusal, Term, ToTerm};
use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor};
use otp_threads::{Context, ExitReason, ReplyTo, Step, Worker};

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// An Erlang expression printing `NAME Result` with `~w` (one line), the result of
/// `Expr` or the exception it raised as `{Class, Reason}`; its variables are its own
/// (it runs in a fun).
fn check(name: &str, expr: &str) -> String {
    format!(
        "io:format(\"{name} ~w~n\", [(fun() -> try {expr} catch Class__:Reason__ -> {{Class__, Reason__}} end end)()])"
    )
}

/// Starts a BEAM node that binds `N` to our node's name and runs the checks.
fn beam_checks(ours: &OurNode, epmd_port: u16, checks: &[String]) -> erlang::OsProcess {
    let script = format!("N = '{}', {}", ours.name(), checks.join(", "));
    erlang::beam_node(&erlang::unique_name("beam"), "sesame", epmd_port, &script)
}

#[test]
fn rpc_call_from_beam_runs_a_registered_function() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    register_adder(ours.node());
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check("rpc", "rpc:call(N, mymod, add, [40, 2], 10000)"),
            check("erpc", "erpc:call(N, mymod, add, [1, 2], 10000)"),
            // Big integers and the cast form go through the same table.
            check("big", "rpc:call(N, mymod, add, [1 bsl 40, 1])"),
            check("cast", "rpc:cast(N, mymod, add, [1, 2])"),
            check("erpc_cast", "erpc:cast(N, mymod, add, [1, 2])"),
            check("bad_args", "rpc:call(N, mymod, add, [a, 2])"),
            check("multicall", "rpc:multicall([N], mymod, add, [2, 2])"),
            check("erpc_multicall", "erpc:multicall([N], mymod, add, [3, 3])"),
            check(
                "execute_call",
                "rpc:call(N, erpc, execute_call, [mymod, add, [4, 4]])",
            ),
        ],
    );
    assert_eq!(beam.expect_line("rpc "), "rpc 42");
    assert_eq!(beam.expect_line("erpc "), "erpc 3");
    assert_eq!(beam.expect_line("big "), "big 1099511627777");
    assert_eq!(beam.expect_line("cast "), "cast true");
    assert_eq!(beam.expect_line("erpc_cast "), "erpc_cast ok");
    assert_eq!(
        beam.expect_line("bad_args "),
        "bad_args {badrpc,{'EXIT',{badarg,[{mymod,add,2,[]}]}}}"
    );
    assert_eq!(beam.expect_line("multicall "), "multicall {[4],[]}");
    assert_eq!(
        beam.expect_line("erpc_multicall "),
        "erpc_multicall [{ok,6}]"
    );
    assert_eq!(beam.expect_line("execute_call "), "execute_call {return,8}");
}

#[test]
fn undefined_function_answers_undef_as_beam_does() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check(
                "rpc",
                "case rpc:call(N, nomod, nofun, [1]) of \
                 {badrpc, {'EXIT', {undef, [{nomod, nofun, [1], _} | _]}}} -> ok; \
                 Other -> Other end",
            ),
            check(
                "erpc",
                "try erpc:call(N, nomod, nofun, [1]) \
                 catch error:{exception, undef, [{nomod, nofun, [1], _} | _]} -> ok end",
            ),
            // The same call on a BEAM node gives the same shape (the reference).
            check(
                "beam",
                "case rpc:call(node(), nomod, nofun, [1]) of \
                 {badrpc, {'EXIT', {undef, [{nomod, nofun, [1], _} | _]}}} -> ok; \
                 Other -> Other end",
            ),
        ],
    );
    assert_eq!(beam.expect_line("rpc "), "rpc ok");
    assert_eq!(beam.expect_line("erpc "), "erpc ok");
    assert_eq!(beam.expect_line("beam "), "beam ok");
}

#[test]
fn handler_exceptions_reach_the_caller_in_their_erlang_class() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let node = ours.node();
    node.register_rpc("ex", "exit", |_: &[Term]| {
        Err(Exception::Exit(Atom::from("bye").to_term()))
    })
    .unwrap();
    node.register_rpc("ex", "throw", |_: &[Term]| {
        Err(Exception::Throw(Atom::from("thrown").to_term()))
    })
    .unwrap();
    node.register_rpc("ex", "error", |_: &[Term]| {
        Err(Exception::Error(Atom::from("oops").to_term()))
    })
    .unwrap();
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check("rpc_exit", "rpc:call(N, ex, exit, [])"),
            check("rpc_throw", "rpc:call(N, ex, throw, [])"),
            check("rpc_error", "rpc:call(N, ex, error, [x])"),
            check("erpc_exit", "erpc:call(N, ex, exit, [])"),
            check("erpc_throw", "erpc:call(N, ex, throw, [])"),
            check("erpc_error", "erpc:call(N, ex, error, [])"),
        ],
    );
    assert_eq!(
        beam.expect_line("rpc_exit "),
        "rpc_exit {badrpc,{'EXIT',bye}}"
    );
    assert_eq!(beam.expect_line("rpc_throw "), "rpc_throw thrown");
    assert_eq!(
        beam.expect_line("rpc_error "),
        "rpc_error {badrpc,{'EXIT',{oops,[{ex,error,1,[]}]}}}"
    );
    assert_eq!(
        beam.expect_line("erpc_exit "),
        "erpc_exit {exit,{exception,bye}}"
    );
    assert_eq!(beam.expect_line("erpc_throw "), "erpc_throw {throw,thrown}");
    assert_eq!(
        beam.expect_line("erpc_error "),
        "erpc_error {error,{exception,oops,[{ex,error,0,[]}]}}"
    );
}

#[test]
fn panicking_handler_answers_badrpc_and_the_node_keeps_serving() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    register_adder(ours.node());
    ours.node()
        .register_rpc("mymod", "boom", |_: &[Term]| panic!("boom in handler"))
        .unwrap();
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check("panic", "rpc:call(N, mymod, boom, [])"),
            check("erpc_panic", "erpc:call(N, mymod, boom, [])"),
            check("after", "rpc:call(N, mymod, add, [2, 3])"),
        ],
    );
    assert_eq!(
        beam.expect_line("panic "),
        "panic {badrpc,{'EXIT',{{rust_panic,<<98,111,111,109,32,105,110,32,104,97,110,100,108,101,114>>},[{mymod,boom,0,[]}]}}}"
    );
    assert_eq!(
        beam.expect_line("erpc_panic "),
        "erpc_panic {error,{exception,{rust_panic,<<98,111,111,109,32,105,110,32,104,97,110,100,108,101,114>>},[{mymod,boom,0,[]}]}}"
    );
    assert_eq!(beam.expect_line("after "), "after 5");
    // An unregistered function is undef again; a re-registration replaces.
    assert!(ours.node().unregister_rpc("mymod", "boom"));
    assert!(!ours.node().unregister_rpc("mymod", "boom"));
}

#[test]
fn introspection_calls_describe_the_rust_processes() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let (calc, _seen) = probe(&ours, Some("calc"));
    for n in 0..3 {
        let _: Term = calc.call(node_support::Order::Term(n.to_term())).unwrap();
    }
    node_support::wait_handled(&ours.runtime().handle(), &calc.pid(), 3);
    let (unnamed, _unnamed_seen) = probe(&ours, None);
    let unnamed_pid = unnamed.pid();
    ours.node()
        .register_rpc("t", "unnamed", move |_: &[Term]| Ok(unnamed_pid.to_term()))
        .unwrap();
    let runtime = ours.runtime().handle();
    let processes = runtime.process_count();
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check("node", "rpc:call(N, erlang, node, []) =:= N"),
            check("nodes", "rpc:call(N, erlang, nodes, []) =:= [node()]"),
            check(
                "whereis",
                "begin P = rpc:call(N, erlang, whereis, [calc]), \
                 {is_pid(P), node(P) =:= N, lists:member(P, rpc:call(N, erlang, processes, []))} end",
            ),
            check(
                "registered",
                "lists:member(calc, rpc:call(N, erlang, registered, []))",
            ),
            check(
                "items",
                "begin P = rpc:call(N, erlang, whereis, [calc]), \
                 rpc:call(N, erlang, process_info, [P, [registered_name, status, message_queue_len, \
                 links, monitors, reductions, trap_exit]]) end",
            ),
            check(
                "one_item",
                "rpc:call(N, erlang, process_info, [rpc:call(N, erlang, whereis, [calc]), reductions])",
            ),
            check(
                "calls",
                "begin P = rpc:call(N, erlang, whereis, [calc]), \
                 I = rpc:call(N, erlang, process_info, [P]), \
                 {D, _} = {proplists:get_value(dictionary, I), ok}, \
                 {hd(I), proplists:get_value(initial_call, I), proplists:get_value(current_function, I), \
                 proplists:get_value('$initial_call', D)} end",
            ),
            check(
                "ancestors",
                "begin I = rpc:call(N, erlang, process_info, [rpc:call(N, erlang, whereis, [calc])]), \
                 [R] = proplists:get_value('$ancestors', proplists:get_value(dictionary, I)), \
                 {is_pid(R), node(R) =:= N} end",
            ),
            check(
                "dead",
                "begin P = rpc:call(N, erlang, whereis, [calc]), \
                 {rpc:call(N, erlang, process_info, [P, [status]]), \
                 rpc:call(N, erlang, process_info, [P, bogus_item])} end",
            ),
            check(
                "unnamed",
                "begin P = rpc:call(N, t, unnamed, []), \
                 {rpc:call(N, erlang, process_info, [P, [registered_name, status]]), \
                 rpc:call(N, erlang, process_info, [P, registered_name]), \
                 lists:keymember(registered_name, 1, rpc:call(N, erlang, process_info, [P]))} end",
            ),
            check("count", "rpc:call(N, erlang, system_info, [process_count])"),
            check(
                "system",
                "{rpc:call(N, erlang, system_info, [otp_release]), \
                 is_integer(rpc:call(N, erlang, system_info, [schedulers])), \
                 is_integer(rpc:call(N, erlang, system_info, [process_limit])), \
                 rpc:call(N, erlang, system_info, [no_such_item])}",
            ),
            check(
                "memory",
                "begin M = rpc:call(N, erlang, memory, []), \
                 {proplists:get_value(total, M) > 0, rpc:call(N, erlang, memory, [processes])} end",
            ),
        ],
    );
    assert_eq!(beam.expect_line("node "), "node true");
    assert_eq!(beam.expect_line("nodes "), "nodes true");
    assert_eq!(beam.expect_line("whereis "), "whereis {true,true,true}");
    assert_eq!(beam.expect_line("registered "), "registered true");
    assert_eq!(
        beam.expect_line("items "),
        "items [{registered_name,calc},{status,waiting},{message_queue_len,0},{links,[]},\
         {monitors,[]},{reductions,3},{trap_exit,false}]"
    );
    assert_eq!(beam.expect_line("one_item "), "one_item {reductions,3}");
    assert_eq!(
        beam.expect_line("calls "),
        "calls {{registered_name,calc},{'dist_rex::node_support::Probe',init,1},\
         {'dist_rex::node_support::Probe','receive',0},{'dist_rex::node_support::Probe',init,1}}"
    );
    assert_eq!(beam.expect_line("ancestors "), "ancestors {true,true}");
    // Not dead yet: the same pid answers; an unknown item is badarg as in BEAM.
    let dead = beam.expect_line("dead ");
    assert!(
        dead.starts_with("dead {[{status,waiting}],{badrpc,{'EXIT',{badarg,"),
        "{dead}"
    );
    assert_eq!(
        beam.expect_line("unnamed "),
        "unnamed {[{registered_name,[]},{status,waiting}],[],false}"
    );
    assert_eq!(beam.expect_line("count "), format!("count {processes}"));
    assert_eq!(
        beam.expect_line("system "),
        "system {[50,53],true,true,{badrpc,{'EXIT',{badarg,[{erlang,system_info,1,[]}]}}}}"
    );
    assert_eq!(beam.expect_line("memory "), "memory {true,0}");
}

/// A supervisor's child that just runs.
struct Member;

impl Worker for Member {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn handle_call(&mut self, _: (), reply: ReplyTo<()>, _: &mut Context<Self>) -> Step<Self> {
        reply.reply(());
        Step::Next
    }
}

#[test]
fn which_children_and_count_children_describe_a_rust_supervisor() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let runtime = ours.runtime().handle();
    let top = Supervisor::new(Strategy::OneForOne)
        .name("top")
        .child(ChildSpec::worker("a", || Member))
        .child(ChildSpec::supervisor("sub", || {
            Supervisor::new(Strategy::OneForAll).child(ChildSpec::worker("c", || Member))
        }))
        .start(&runtime)
        .unwrap();
    let top_pid = top.pid();
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check(
                "which",
                "[{Id, is_pid(C), T, M} || {Id, C, T, M} <- rpc:call(N, supervisor, which_children, [top])]",
            ),
            check("count", "rpc:call(N, supervisor, count_children, [top])"),
            check(
                "by_pid",
                "length(rpc:call(N, supervisor, which_children, [rpc:call(N, erlang, whereis, [top])]))",
            ),
            check(
                "nested",
                "begin {sub, Sub, supervisor, _} = lists:keyfind(sub, 1, rpc:call(N, supervisor, which_children, [top])), \
                 [{c, C, worker, _}] = rpc:call(N, supervisor, which_children, [Sub]), \
                 {I, _} = {rpc:call(N, erlang, process_info, [C, dictionary]), ok}, \
                 {dictionary, D} = I, [Parent, top | _] = proplists:get_value('$ancestors', D), \
                 Parent =:= Sub end",
            ),
            check(
                "not_supervisor",
                "rpc:call(N, supervisor, which_children, [no_such_sup])",
            ),
        ],
    );
    assert_eq!(
        beam.expect_line("which "),
        "which [{sub,true,supervisor,['otp_threads::supervisor::Supervisor']},\
         {a,true,worker,['dist_rex::Member']}]"
    );
    assert_eq!(
        beam.expect_line("count "),
        "count [{specs,2},{active,2},{supervisors,1},{workers,1}]"
    );
    assert_eq!(beam.expect_line("by_pid "), "by_pid 2");
    assert_eq!(beam.expect_line("nested "), "nested true");
    assert_eq!(
        beam.expect_line("not_supervisor "),
        "not_supervisor {badrpc,{'EXIT',{noproc,{gen_server,call,[no_such_sup,which_children,infinity]}}}}"
    );
    drop(beam);
    top.stop(ExitReason::Shutdown, Duration::from_secs(5))
        .unwrap();
    assert!(!runtime.is_alive(&top_pid));
}

#[test]
fn spawn_from_beam_of_an_unknown_function_is_refused_with_a_spawn_reply() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check(
                "request",
                "begin R = spawn_request(N, nomod, nofun, [1], [monitor]), \
                 receive {spawn_reply, R, error, E} -> {error, E}; Other -> Other after 10000 -> timeout end end",
            ),
            check(
                "badopt",
                "begin R = spawn_request(N, nomod, nofun, [], [{bogus, 1}]), \
                 receive {spawn_reply, R, Status, E} -> {Status, E} after 10000 -> timeout end end",
            ),
            // erlang:spawn/4 turns the error reply into a useless local pid, as it
            // does for any node it cannot spawn on.
            check(
                "spawn",
                "begin P = spawn(N, nomod, nofun, []), {is_pid(P), node(P) =:= node()} end",
            ),
        ],
    );
    assert_eq!(beam.expect_line("request "), "request {error,notsup}");
    let badopt = beam.expect_line("badopt ");
    // BEAM may refuse the option itself before sending; either way it is an error.
    assert!(badopt.starts_with("badopt {error,"), "{badopt}");
    assert_eq!(beam.expect_line("spawn "), "spawn {true,true}");
}

#[test]
fn spawn_from_beam_starts_a_registered_spawner_with_monitor_and_link() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let (started_tx, started) = crossbeam_channel::unbounded();
    let handle = ours.runtime().handle();
    let node = ours.node().clone();
    ours.node()
        .register_spawner("echo", "start", move |args: &[Term]| {
            if !args.is_empty() {
                return Err(SpawnRefusal::BadArg);
            }
            let (report, seen) = crossbeam_channel::unbounded();
            let worker = handle
                .spawn_worker(node_support::Probe { report })
                .map_err(|_| SpawnRefusal::SystemLimit)?;
            node.accept_messages(&worker);
            let _ = started_tx.send((worker.clone(), seen));
            Ok(worker.pid())
        })
        .unwrap();
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check(
                "badarg",
                "begin R = spawn_request(N, echo, start, [x], []), \
                 receive {spawn_reply, R, S, E} -> {S, E} after 10000 -> timeout end end",
            ),
            "{P, Ref} = spawn_monitor(N, echo, start, [])".to_owned(),
            check("spawned", "{is_pid(P), node(P) =:= N}"),
            "P ! {hello, self()}".to_owned(),
            "io:format(\"sent~n\")".to_owned(),
            check(
                "down",
                "receive {'DOWN', Ref, process, P, Reason} -> Reason after 20000 -> timeout end",
            ),
        ],
    );
    assert_eq!(beam.expect_line("badarg "), "badarg {error,badarg}");
    assert_eq!(beam.expect_line("spawned "), "spawned {true,true}");
    beam.expect_line("sent");
    let (worker, seen) = started.recv_timeout(node_support::WAIT).unwrap();
    match next_seen(&seen) {
        Seen::Message(Term::Tuple(t)) => assert_eq!(t.elements[0], Atom::from("hello").to_term()),
        other => panic!("unexpected {other:?}"),
    }
    let _: Term = worker
        .call(node_support::Order::Stop(ExitReason::ShutdownWith(
            "done".into(),
        )))
        .unwrap();
    assert_eq!(
        beam.expect_line("down "),
        "down {shutdown,<<100,111,110,101>>}"
    );
}

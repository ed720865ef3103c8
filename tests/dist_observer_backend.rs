//! Erlang's own tools attach to a Rust node: the `observer_backend` calls OTP 25's
//! observer and etop make on the node they look at (see
//! `src/dist/node/rex/observer_backend.rs`) are answered with the shape a BEAM node's
//! own `observer_backend` (runtime_tools) gives. Real BEAM nodes in separate OS
//! processes: each check runs the call on the Rust node and on the BEAM node itself
//! and compares keys and value types.
//!
//! Ports the contract of OTP's `observer_backend` as its callers rely on it
//! (`lib/observer/src/observer_pro_wx.erl`'s table holder, `etop.erl`'s `update/1`,
//! `observer_sys_wx`, `observer_port_wx`, `observer_tv_wx`): `vsn/0` answers
//! `{ok, Vsn}`; `sys_info/0` is a proplist of fixed keys; `procs_info/1`, spawned
//! linked, sends `{procs_info, Self, [#etop_proc_info{}]}` batches and exits `normal`;
//! `etop_collect/1` sends `{Self, #etop_info{}}`; an unknown function is `undef`.

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use node_support::OurNode;
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, Node, Term, ToTerm, eetf};
use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor};
use otp_threads::{Context, ReplyTo, Runtime, Step, Worker};
use otp_threads_testkit::fuzz::Rng;

fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Erlang: `Shape(Term)`, the type of a value without its contents (`{tuple, Size}`
/// for a tuple; a list is `list` whatever it holds, so an empty list and a full one
/// have the same shape).
const SHAPE: &str = "Shape = fun(V) when is_integer(V) -> integer; (V) when is_float(V) -> float; \
    (V) when is_atom(V) -> atom; (V) when is_list(V) -> list; (V) when is_binary(V) -> binary; \
    (V) when is_pid(V) -> pid; (V) when is_tuple(V) -> {tuple, tuple_size(V)}; (_) -> other end";

/// An Erlang expression printing `NAME Result` with `~w` (one line): the value of
/// `Expr`, or the exception it raised as `{Class, Reason}`.
fn check(name: &str, expr: &str) -> String {
    format!(
        "io:format(\"{name} ~w~n\", [(fun() -> try {expr} catch Class__:Reason__ -> {{Class__, Reason__}} end end)()])"
    )
}

/// Starts a BEAM node that binds `N` to our node's name and `Shape`, then runs the
/// checks.
fn beam_checks(ours: &OurNode, epmd_port: u16, checks: &[String]) -> erlang::OsProcess {
    let script = format!("N = '{}', {SHAPE}, {}", ours.name(), checks.join(", "));
    erlang::beam_node(&erlang::unique_name("beam"), "sesame", epmd_port, &script)
}

/// The text after `NAME `.
fn value(beam: &erlang::OsProcess, name: &str) -> String {
    let prefix = format!("{name} ");
    beam.expect_line(&prefix)[prefix.len()..].to_owned()
}

/// A worker that answers calls (a live process for the lists).
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
fn vsn_answers_ok_and_a_version_string_as_runtime_tools_does() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let shape_of_vsn = |call: &str| {
        format!("begin {{ok, V}} = {call}, {{ok, io_lib:printable_list(V), length(V) > 0}} end")
    };
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check(
                "ours",
                &shape_of_vsn("rpc:call(N, observer_backend, vsn, [])"),
            ),
            check("beam", &shape_of_vsn("observer_backend:vsn()")),
            check("value", "rpc:call(N, observer_backend, vsn, [])"),
        ],
    );
    assert_eq!(value(&beam, "ours"), "{ok,true,true}");
    assert_eq!(value(&beam, "beam"), "{ok,true,true}");
    // `~w` prints a charlist as integers: "1.19".
    assert_eq!(value(&beam, "value"), "{ok,[49,46,49,57]}");
}

#[test]
fn sys_info_has_beams_keys_and_value_types_and_true_figures() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let _worker = ours.runtime().handle().spawn_named("calc", Member).unwrap();
    let shape = |call: &str| format!("[{{K, Shape(V)}} || {{K, V}} <- {call}]");
    let field = |key: &str| {
        format!("proplists:get_value({key}, rpc:call(N, observer_backend, sys_info, []))")
    };
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check(
                "ours",
                &shape("rpc:call(N, observer_backend, sys_info, [])"),
            ),
            check("beam", &shape("observer_backend:sys_info()")),
            check(
                "count",
                &format!(
                    "{} =:= length(rpc:call(N, erlang, processes, []))",
                    field("process_count")
                ),
            ),
            check("schedulers", &field("schedulers")),
            check("uptime", &format!("{} > 0", field("uptime"))),
            check("release", &field("otp_release")),
            check("busy_limit", &field("dist_buf_busy_limit")),
            check(
                "total",
                &format!(
                    "begin T = {}, is_integer(T) andalso T > 0 end",
                    field("total")
                ),
            ),
        ],
    );
    let ours_shape = value(&beam, "ours");
    assert!(ours_shape.starts_with("[{uptime,integer}"), "{ours_shape}");
    assert_eq!(ours_shape, value(&beam, "beam"));
    assert_eq!(value(&beam, "count"), "true");
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(value(&beam, "schedulers"), cores.to_string());
    assert_eq!(value(&beam, "uptime"), "true");
    assert_eq!(value(&beam, "release"), "[50,53]");
    assert_eq!(value(&beam, "busy_limit"), (16 * 1024 * 1024).to_string());
    // `total` is the resident set size, measured (it changes between calls).
    assert_eq!(value(&beam, "total"), "true");
}

#[test]
fn port_socket_and_table_lists_have_beams_shape_and_are_empty() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let both = |name: &str, function: &str, args: &str| {
        [
            check(
                &format!("{name}_ours"),
                &format!("Shape(rpc:call(N, observer_backend, {function}, {args}))"),
            ),
            check(
                &format!("{name}_beam"),
                &format!("Shape(rpc:call(node(), observer_backend, {function}, {args}))"),
            ),
            check(
                &format!("{name}_value"),
                &format!("rpc:call(N, observer_backend, {function}, {args})"),
            ),
        ]
    };
    let mut checks = Vec::new();
    checks.extend(both("ports", "get_port_list", "[]"));
    checks.extend(both("sockets", "get_socket_list", "[]"));
    checks.extend(both(
        "ets",
        "get_table_list",
        "[ets, [{sys_hidden, true}, {unread_hidden, true}]]",
    ));
    checks.push(check(
        "mnesia_ours",
        "case rpc:call(N, observer_backend, get_table_list, [mnesia, []]) of \
         {error, \"Mnesia is not running on: \" ++ Node} -> list_to_atom(Node) =:= N; \
         Other -> Other end",
    ));
    checks.push(check(
        "mnesia_beam",
        "case rpc:call(node(), observer_backend, get_table_list, [mnesia, []]) of \
         {error, \"Mnesia is not running on: \" ++ Node} -> list_to_atom(Node) =:= node(); \
         Other -> Other end",
    ));
    let beam = beam_checks(&ours, server.address().port(), &checks);
    for name in ["ports", "sockets", "ets"] {
        assert_eq!(value(&beam, &format!("{name}_ours")), "list", "{name}");
        assert_eq!(value(&beam, &format!("{name}_beam")), "list", "{name}");
        assert_eq!(value(&beam, &format!("{name}_value")), "[]", "{name}");
    }
    assert_eq!(value(&beam, "mnesia_ours"), "true");
    assert_eq!(value(&beam, "mnesia_beam"), "true");
}

#[test]
fn unknown_observer_backend_function_answers_undef() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            check(
                "rpc",
                "case rpc:call(N, observer_backend, no_such_function, [1]) of \
                 {badrpc, {'EXIT', {undef, [{observer_backend, no_such_function, [1], _} | _]}}} -> ok; \
                 Other -> Other end",
            ),
            check(
                "beam",
                "case rpc:call(node(), observer_backend, no_such_function, [1]) of \
                 {badrpc, {'EXIT', {undef, [{observer_backend, no_such_function, [1], _} | _]}}} -> ok; \
                 Other -> Other end",
            ),
            // A known name at an arity that does not exist is undefined too.
            check(
                "arity",
                "case rpc:call(N, observer_backend, vsn, [x]) of \
                 {badrpc, {'EXIT', {undef, [{observer_backend, vsn, [x], _} | _]}}} -> ok; \
                 Other -> Other end",
            ),
            check(
                "exported",
                "{rpc:call(N, erlang, function_exported, [observer_backend, procs_info, 1]), \
                  rpc:call(N, erlang, function_exported, [observer_backend, no_such_function, 1]), \
                  rpc:call(N, code, ensure_loaded, [observer_backend]), \
                  rpc:call(N, code, ensure_loaded, [no_such_module])}",
            ),
        ],
    );
    assert_eq!(value(&beam, "rpc"), "ok");
    assert_eq!(value(&beam, "beam"), "ok");
    assert_eq!(value(&beam, "arity"), "ok");
    assert_eq!(
        value(&beam, "exported"),
        "{true,false,{module,observer_backend},{error,nofile}}"
    );
}

/// Erlang: what observer's Processes tab does (`observer_pro_wx`'s table holder):
/// check the backend, `spawn_link` `procs_info`, gather `{procs_info, Backend, Procs}`
/// until `{'EXIT', Backend, normal}`. Binds `Records` (all records) and `Batches`.
fn processes_tab(node: &str, bind: &str) -> String {
    format!(
        "process_flag(trap_exit, true), \
         {{module, observer_backend}} = rpc:call({node}, code, ensure_loaded, [observer_backend]), \
         true = rpc:call({node}, erlang, function_exported, [observer_backend, procs_info, 1]), \
         Backend{bind} = spawn_link({node}, observer_backend, procs_info, [self()]), \
         Gather{bind} = fun G(Acc) -> receive \
             {{procs_info, B, Procs}} when B =:= Backend{bind} -> G([Procs | Acc]); \
             {{'EXIT', B, normal}} when B =:= Backend{bind} -> lists:reverse(Acc) \
             after 30000 -> timeout end end, \
         Batches{bind} = Gather{bind}([]), \
         Records{bind} = lists:append(Batches{bind})"
    )
}

#[test]
fn procs_info_spawned_as_observer_does_sends_batches_listing_the_rust_processes() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let runtime = ours.runtime().handle();
    let _worker = runtime.spawn_named("calc", Member).unwrap();
    let _top = Supervisor::new(Strategy::OneForOne)
        .name("top")
        .child(ChildSpec::worker("a", || Member))
        .start(&runtime)
        .unwrap();
    let record_shape = "fun(R) -> [Shape(E) || E <- tuple_to_list(setelement(5, R, name))] end";
    let script = [
        processes_tab("N", ""),
        processes_tab("node()", "Beam"),
        format!("RecordShape = {record_shape}"),
        check(
            "pids",
            "lists:sort([element(2, R) || R <- Records]) =:= lists:sort(rpc:call(N, erlang, processes, []))",
        ),
        check("count", "length(Records)"),
        check("batches", "length(Batches)"),
        check(
            "names",
            "lists:sort([element(5, R) || R <- Records, is_atom(element(5, R))])",
        ),
        check(
            "unnamed_are_mfas",
            "lists:all(fun(R) -> case element(5, R) of {M, F, A} -> is_atom(M) andalso is_atom(F) andalso is_integer(A); A -> is_atom(A) end end, Records)",
        ),
        check(
            "ours_shape",
            "lists:usort([RecordShape(R) || R <- Records])",
        ),
        check(
            "beam_shape",
            "lists:usort([RecordShape(R) || R <- RecordsBeam])",
        ),
        check(
            "calc",
            "[{element(1, R), Shape(element(4, R)), element(7, R), element(8, R)} || R <- Records, element(5, R) =:= calc]",
        ),
        // The holder refreshes every few seconds: a second round works the same.
        processes_tab("N", "Again"),
        check("again", "length(RecordsAgain) =:= length(Records)"),
        // Asked with a monitor instead of a link, the end is the DOWN (reason normal).
        check(
            "monitored",
            "begin Req = erlang:spawn_request(N, observer_backend, procs_info, [self()], [monitor]), \
             Pid = receive {spawn_reply, Req, ok, P} -> P after 30000 -> timeout end, \
             Got = receive {procs_info, Pid, Procs} -> length(Procs) after 30000 -> timeout end, \
             Down = receive {'DOWN', Req, process, Pid, Reason} -> Reason after 30000 -> timeout end, \
             {Got =:= length(Records), Down} end",
        ),
    ];
    let beam = beam_checks(&ours, server.address().port(), &script);
    assert_eq!(value(&beam, "pids"), "true");
    let count: usize = value(&beam, "count").parse().unwrap();
    assert_eq!(count, runtime.processes().len());
    assert!(count >= 3, "{count}");
    // Fewer than 10 000 processes: one batch, as BEAM sends it.
    assert_eq!(value(&beam, "batches"), "1");
    assert_eq!(value(&beam, "names"), "[calc,top]");
    assert_eq!(value(&beam, "unnamed_are_mfas"), "true");
    let ours_shape = value(&beam, "ours_shape");
    assert_eq!(
        ours_shape,
        "[[atom,pid,integer,integer,atom,integer,{tuple,3},integer]]"
    );
    assert_eq!(ours_shape, value(&beam, "beam_shape"));
    // The worker waits for a message: `{Type, receive, 0}` (`~w` quotes the keyword),
    // an empty mailbox.
    let calc = value(&beam, "calc");
    assert!(
        calc.starts_with("[{etop_proc_info,integer,{'") && calc.ends_with("','receive',0},0}]"),
        "{calc}"
    );
    assert_eq!(value(&beam, "again"), "true");
    assert_eq!(value(&beam, "monitored"), "{true,normal}");
}

#[test]
fn etop_collect_spawned_as_etop_does_sends_an_etop_info_and_exits_normal() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let _worker = ours.runtime().handle().spawn_named("calc", Member).unwrap();
    // etop's `update/1`: spawn_link, then `receive {Pid, Info}`.
    let collect = |node: &str, bind: &str| {
        format!(
            "Pid{bind} = spawn_link({node}, observer_backend, etop_collect, [self()]), \
             Info{bind} = receive {{P{bind}, I{bind}}} when P{bind} =:= Pid{bind} -> I{bind} after 30000 -> timeout end, \
             Exit{bind} = receive {{'EXIT', Pid{bind}, R{bind}}} -> R{bind} after 30000 -> timeout end"
        )
    };
    let script = [
        "process_flag(trap_exit, true)".to_owned(),
        collect("N", ""),
        collect("node()", "Beam"),
        check(
            "ours",
            "[Shape(E) || E <- tuple_to_list(setelement(5, Info, undefined))]",
        ),
        check(
            "beam",
            "[Shape(E) || E <- tuple_to_list(setelement(5, InfoBeam, undefined))]",
        ),
        check("exit", "{Exit, ExitBeam}"),
        check(
            "procs",
            "element(3, Info) =:= length(element(9, Info)) andalso \
             lists:sort([element(2, R) || R <- element(9, Info)]) =:= lists:sort(rpc:call(N, erlang, processes, []))",
        ),
        check("memi_keys", "[K || {K, _} <- element(8, Info)]"),
        check("memi_keys_beam", "[K || {K, _} <- element(8, InfoBeam)]"),
    ];
    let beam = beam_checks(&ours, server.address().port(), &script);
    let ours_shape = value(&beam, "ours");
    assert_eq!(
        ours_shape,
        "[atom,{tuple,3},integer,atom,atom,integer,list,list,list]"
    );
    assert_eq!(ours_shape, value(&beam, "beam"));
    assert_eq!(value(&beam, "exit"), "{normal,normal}");
    assert_eq!(value(&beam, "procs"), "true");
    assert_eq!(value(&beam, "memi_keys"), value(&beam, "memi_keys_beam"));
}

/// Erlang: spawn `fetch_stats` linked on `node` at 50 ms, take two `{stats, ...}`
/// (counting the Rust node's processes in between), stop it with a message, and bind
/// the shapes and the exit reason. Needs `Count` and `Shape`.
fn load_charts(node: &str, bind: &str) -> String {
    format!(
        "Fetcher{bind} = spawn_link({node}, observer_backend, fetch_stats, [self(), 50]), \
         Take{bind} = fun() -> receive {{stats, 1, SW, IO, Mem}} -> \
             {{Shape(SW), lists:usort([Shape(E) || E <- SW]), length(SW), \
               Shape(IO), Shape(element(1, IO)), element(1, element(1, IO)), element(1, element(2, IO)), \
               [K || {{K, _}} <- Mem]}} \
             after 30000 -> timeout end end, \
         First{bind} = Take{bind}(), \
         During{bind} = Count(), \
         Second{bind} = Take{bind}(), \
         Fetcher{bind} ! stop, \
         Exit{bind} = receive {{'EXIT', Fetcher{bind}, R{bind}}} -> R{bind} after 30000 -> timeout end, \
         Flush{bind} = fun FL() -> receive {{stats, _, _, _, _}} -> FL() after 0 -> ok end end, \
         Flush{bind}()"
    )
}

#[test]
fn fetch_stats_spawned_as_load_charts_do_sends_stats_until_told_to_stop() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let before = ours.runtime().handle().processes().len();
    let script = [
        "process_flag(trap_exit, true)".to_owned(),
        "Count = fun() -> length(rpc:call(N, erlang, processes, [])) end".to_owned(),
        "C0 = Count()".to_owned(),
        load_charts("N", ""),
        "C1 = Count()".to_owned(),
        load_charts("node()", "Beam"),
        check("ours", "First"),
        check("beam", "FirstBeam"),
        check("same", "{First =:= Second, Exit, ExitBeam}"),
        // The fetcher is a process of the runtime while it runs, gone once stopped.
        check("counts", "{C0, During, C1}"),
        // A requester that dies takes the fetcher with it, over the link.
        check(
            "linked",
            "begin Self = self(), \
             H = spawn(fun() -> P = spawn_link(N, observer_backend, fetch_stats, [self(), 50]), \
                 Self ! {fetcher, P}, receive go -> exit(bye) end end), \
             P = receive {fetcher, X} -> X after 30000 -> timeout end, \
             Ref = erlang:monitor(process, P), H ! go, \
             receive {'DOWN', Ref, process, P, _} -> down after 30000 -> timeout end end",
        ),
        check(
            "bad_interval",
            "begin B = spawn_link(N, observer_backend, fetch_stats, [self(), -1]), \
             receive {'EXIT', B, Why} -> Why after 30000 -> timeout end end",
        ),
    ];
    let beam = beam_checks(&ours, server.address().port(), &script);
    let cores = std::thread::available_parallelism().unwrap().get();
    let ours_shape = value(&beam, "ours");
    assert!(
        ours_shape.starts_with(&format!(
            "{{list,[{{tuple,3}}],{cores},{{tuple,2}},{{tuple,2}},input,output,"
        )),
        "{ours_shape}"
    );
    // Same shape as BEAM's own fetcher, but for the number of schedulers BEAM runs.
    let strip = |text: &str| {
        let mut parts: Vec<String> = text.split(',').map(str::to_owned).collect();
        parts[3] = "N".to_owned();
        parts.join(",")
    };
    assert_eq!(strip(&ours_shape), strip(&value(&beam, "beam")));
    assert_eq!(value(&beam, "same"), "{true,normal,normal}");
    assert_eq!(
        value(&beam, "counts"),
        format!("{{{before},{},{before}}}", before + 1)
    );
    assert_eq!(value(&beam, "linked"), "down");
    assert_eq!(value(&beam, "bad_interval"), "badarg");
    assert_eq!(ours.runtime().handle().processes().len(), before);
}

/// The items observer's process window (`observer_procinfo:item_list/0`, OTP 25) asks
/// `erlang:process_info/2` for, over rpc.
const PROCESS_WINDOW_ITEMS: &str = "[binary, catchlevel, current_function, error_handler, \
    garbage_collection, group_leader, heap_size, initial_call, last_calls, links, memory, \
    message_queue_len, monitored_by, monitors, priority, reductions, registered_name, \
    sequential_trace_token, stack_size, status, suspending, total_heap_size, trace, trap_exit]";

#[test]
fn process_window_items_as_observer_asks_them_have_beams_shape() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let calc = ours.runtime().handle().spawn_named("calc", Member).unwrap();
    let shape = "fun(L) -> [{K, Shape(V)} || {K, V} <- L] end";
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            format!("Items = {PROCESS_WINDOW_ITEMS}"),
            format!("ItemShape = {shape}"),
            check(
                "ours",
                "ItemShape(rpc:call(N, erlang, process_info, [rpc:call(N, erlang, whereis, [calc]), Items]))",
            ),
            // A registered BEAM process waiting in receive, as the worker is.
            "register(beam_calc, spawn(fun() -> receive stop -> ok end end))".to_owned(),
            check(
                "beam",
                "ItemShape(rpc:call(node(), erlang, process_info, [whereis(beam_calc), Items]))",
            ),
            check(
                "values",
                "[V || {K, V} <- rpc:call(N, erlang, process_info, [rpc:call(N, erlang, whereis, [calc]), Items]), \
                 lists:member(K, [registered_name, status, binary, catchlevel, last_calls, trace])]",
            ),
        ],
    );
    let ours_shape = value(&beam, "ours");
    assert!(
        ours_shape.starts_with("[{binary,list},{catchlevel,integer}"),
        "{ours_shape}"
    );
    assert_eq!(ours_shape, value(&beam, "beam"));
    assert_eq!(value(&beam, "values"), "[[],0,false,calc,waiting,0]");
    drop(calc);
}

#[test]
fn which_applications_lists_each_supervision_tree_in_beams_shape() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let runtime = ours.runtime().handle();
    let _top = Supervisor::new(Strategy::OneForOne)
        .name("top")
        .child(ChildSpec::supervisor("sub", || {
            Supervisor::new(Strategy::OneForAll).child(ChildSpec::worker("c", || Member))
        }))
        .start(&runtime)
        .unwrap();
    let unnamed = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker("w", || Member))
        .start(&runtime)
        .unwrap();
    let shape = "fun(L) -> lists:usort([[Shape(E) || E <- tuple_to_list(A)] || A <- L]) end";
    let beam = beam_checks(
        &ours,
        server.address().port(),
        &[
            format!("AppShape = {shape}"),
            check(
                "ours",
                "AppShape(rpc:call(N, application, which_applications, []))",
            ),
            check("beam", "AppShape(application:which_applications())"),
            check(
                "names",
                "lists:sort([A || {A, _, _} <- rpc:call(N, application, which_applications, [5000])])",
            ),
        ],
    );
    let ours_shape = value(&beam, "ours");
    assert_eq!(ours_shape, "[[atom,list,list]]");
    assert_eq!(ours_shape, value(&beam, "beam"));
    // The sub-supervisor is part of `top`'s tree, not an application of its own.
    assert_eq!(
        value(&beam, "names"),
        format!("[supervision_tree_{},top]", unnamed.pid().id())
    );
}

#[test]
fn appmon_info_started_as_the_applications_tab_does_delivers_the_trees() {
    let server = NameServer::bind(loopback_any()).unwrap();
    let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
    let runtime = ours.runtime().handle();
    let _top = Supervisor::new(Strategy::OneForOne)
        .name("top")
        .child(ChildSpec::worker("a", || Member))
        .child(ChildSpec::supervisor("sub", || {
            Supervisor::new(Strategy::OneForAll).child(ChildSpec::worker("c", || Member))
        }))
        .start(&runtime)
        .unwrap();
    // observer_app_wx: `appmon_info:start_link(Node, self(), [])` (an rpc of
    // `start_link2`), then `app_ctrl(Pid, Node, true, [])` and `app(Pid, App, true, [])`
    // (casts); the server answers with `{delivery, Pid, Cmd, Aux, Result}`.
    let session = |node: &str, app: &str, bind: &str| {
        format!(
            "{{ok, S{bind}}} = rpc:call({node}, appmon_info, start_link2, [self(), self(), []]), \
             gen_server:cast(S{bind}, {{self(), app_ctrl, {node}, true, []}}), \
             Apps{bind} = receive {{delivery, S{bind}, app_ctrl, _, A{bind}}} -> A{bind} after 30000 -> timeout end, \
             gen_server:cast(S{bind}, {{self(), app, {app}, true, [{{timeout, 100}}]}}), \
             Tree{bind} = receive {{delivery, S{bind}, app, {app}, T{bind}}} -> T{bind} after 30000 -> timeout end"
        )
    };
    let script = [
        "process_flag(trap_exit, true)".to_owned(),
        "AppShape = fun(L) -> lists:usort([[Shape(E) || E <- tuple_to_list(X)] || X <- L]) end"
            .to_owned(),
        session("N", "top", ""),
        session("node()", "kernel", "Beam"),
        check("apps_shape", "AppShape(Apps)"),
        check("apps_shape_beam", "AppShape(AppsBeam)"),
        // What observer_app_wx makes of the list.
        check(
            "names",
            "lists:sort([list_to_atom(atom_to_list(App)) || {_, App, {_, _, _}} <- Apps])",
        ),
        check("tree_shape", "[Shape(E) || E <- tuple_to_list(Tree)]"),
        check(
            "tree_shape_beam",
            "[Shape(E) || E <- tuple_to_list(TreeBeam)]",
        ),
        check(
            "tree",
            "begin {Root, P2Name, Links, XLinks} = Tree, \
             Names = [Name || {P, Name} <- P2Name, is_pid(P)], \
             {list_to_atom(Root), length(P2Name), length(Links), XLinks, \
              lists:all(fun({From, To}) -> lists:member(From, Names) andalso lists:member(To, Names) end, Links), \
              length(sofs:to_external(sofs:relation_to_family(sofs:relation(Links))))} end",
        ),
        // The same server again; an unknown application has an empty tree.
        check(
            "again",
            "begin {ok, S2} = rpc:call(N, appmon_info, start_link2, [self(), self(), []]), \
             gen_server:cast(S2, {self(), app, no_such_app, true, [{timeout, at_most_once}]}), \
             E = receive {delivery, S2, app, no_such_app, X} -> X after 30000 -> timeout end, \
             {S2 =:= S, E, gen_server:call(S2, {register_client, self()})} end",
        ),
        // A restarted child changes the tree: a new delivery comes.
        check(
            "changed",
            "begin {_, P2, _, _} = Tree, \
             [APid | _] = [P || {P, Name} <- P2, Name =/= \"top\", \
                 lists:member(element(1, element(2, rpc:call(N, erlang, process_info, [P, initial_call]))), ['dist_observer_backend::Member'])], \
             exit(APid, kill), \
             Next = receive {delivery, S, app, top, T2} -> T2 after 30000 -> timeout end, \
             {Next =/= Tree, length(element(2, Next))} end",
        ),
    ];
    let beam = beam_checks(&ours, server.address().port(), &script);
    let apps_shape = value(&beam, "apps_shape");
    assert_eq!(apps_shape, "[[pid,atom,{tuple,3}]]");
    assert_eq!(apps_shape, value(&beam, "apps_shape_beam"));
    assert_eq!(value(&beam, "names"), "[top]");
    let tree_shape = value(&beam, "tree_shape");
    assert_eq!(tree_shape, "[list,list,list,list]");
    assert_eq!(tree_shape, value(&beam, "tree_shape_beam"));
    // top, a, sub, c; links top->a, top->sub, sub->c; two parents.
    assert_eq!(value(&beam, "tree"), "{top,4,3,[],true,2}");
    assert_eq!(value(&beam, "again"), "{true,{[],[],[],[]},ok}");
    assert_eq!(value(&beam, "changed"), "{true,4}");
}

/// Atoms the observer_backend calls look at, for the random arguments.
const WORDS: &[&str] = &[
    "ets",
    "mnesia",
    "sys_hidden",
    "unread_hidden",
    "true",
    "false",
    "observer_backend",
    "procs_info",
    "infinity",
    "erlang",
    "undefined",
];

fn random_term(rng: &mut Rng, local: &[Term], depth: usize) -> Term {
    let leaf = depth == 0;
    match rng.below(if leaf { 5 } else { 8 }) {
        0 => Atom::from(WORDS[rng.below(WORDS.len())]).to_term(),
        1 => (rng.next_u64() as i64 >> rng.below(64)).to_term(),
        // Pids of this node only: a send to another node's pid would connect to it.
        2 if !local.is_empty() => local[rng.below(local.len())].clone(),
        3 => "bin".to_term(),
        4 | 2 => Term::from(eetf::List::nil()),
        5 => Term::from(eetf::List::from(
            (0..rng.below(4))
                .map(|_| random_term(rng, local, depth - 1))
                .collect::<Vec<_>>(),
        )),
        6 => Term::from(eetf::Tuple::from(
            (0..rng.below(4))
                .map(|_| random_term(rng, local, depth - 1))
                .collect::<Vec<_>>(),
        )),
        _ => Term::from(eetf::ImproperList::from((
            vec![random_term(rng, local, depth - 1)],
            random_term(rng, local, depth - 1),
        ))),
    }
}

/// Rule ported: "every decoder of untrusted bytes has a fuzz-style test"; BEAM
/// answers arguments of the wrong type with an exception, never a crash.
#[test]
fn observer_backend_calls_given_random_arguments_answer_a_term_and_never_panic() {
    let runtime = Runtime::builder().node_name("rs@h").build().unwrap();
    let node = Node::builder()
        .cookie("fuzz")
        .start(&runtime.handle())
        .unwrap();
    let _worker = runtime.handle().spawn_named("calc", Member).unwrap();
    let calls: &[(&str, &str)] = &[
        ("observer_backend", "vsn"),
        ("observer_backend", "sys_info"),
        ("observer_backend", "get_port_list"),
        ("observer_backend", "get_socket_list"),
        ("observer_backend", "get_table_list"),
        ("observer_backend", "procs_info"),
        ("observer_backend", "etop_collect"),
        ("observer_backend", "fetch_stats"),
        ("observer_backend", "no_such_function"),
        ("code", "ensure_loaded"),
        ("erlang", "function_exported"),
        ("application", "which_applications"),
        ("appmon_info", "start_link2"),
    ];
    let local: Vec<Term> = runtime
        .handle()
        .processes()
        .iter()
        .map(|pid| pid.to_term())
        .collect();
    let mut rng = Rng::new(0x0b5e_47e4);
    let mut answered = 0usize;
    for _ in 0..20_000 {
        let (module, function) = calls[rng.below(calls.len())];
        let args: Vec<Term> = (0..rng.below(4))
            .map(|_| random_term(&mut rng, &local, 3))
            .collect();
        let answer = catch_unwind(AssertUnwindSafe(|| {
            node.apply_rpc(module, function, args.clone())
        }));
        let answer = answer.unwrap_or_else(|_| panic!("{module}:{function}({args:?}) panicked"));
        // A panic caught inside the node would answer `rust_panic`.
        let text = answer.to_string();
        assert!(
            !text.contains("rust_panic"),
            "{module}:{function}({args:?}) panicked inside: {text}"
        );
        if !text.contains("badrpc") {
            answered += 1;
        }
    }
    // Some random calls fit (zero-argument ones at least), so the answers were reached.
    assert!(answered > 1000, "answered: {answered}");
    node.shutdown();
    runtime.shutdown(Duration::from_secs(10)).unwrap();
}

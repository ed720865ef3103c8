#!/usr/bin/env escript
%% The runtime workloads W1-W6 on BEAM, for benches/peers: gen_server calls and casts,
%% spawn + stop, kill -> DOWN at a separate watcher, memory per idle gen_server, and a
%% one_for_one restart until the replacement answers a call. Prints one line per
%% figure: `W1 median_ns mean_ns`, `W1i median_ns`, `W2 per_second`, `W3 ns`,
%% `W4 median_ns`, `W5 bytes`, `W6 median_ns`.
%%
%% Usage: escript peers.escript CALLS IDLE_CALLS CASTS SPAWNS KILLS IDLE_WORKERS RESTARTS
-module(peers).
-mode(compile).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2, handle_info/2, start_echo/0]).

%% ---------------------------------------------------------------- echo server

start_echo() -> gen_server:start_link(?MODULE, echo, []).

init(echo) -> {ok, 0};
init(idle) -> {ok, idle};
init(supervisor) ->
    %% Restart intensity high enough never to be reached.
    {ok, {#{strategy => one_for_one, intensity => 1000000000, period => 1},
          [#{id => echo, start => {?MODULE, start_echo, []}}]}}.

handle_call(sum, _From, Sum) -> {reply, Sum, Sum};
handle_call(N, _From, State) when is_integer(N) -> {reply, N + 1, State}.

handle_cast(N, Sum) -> {noreply, Sum + N}.

handle_info(_, State) -> {noreply, State}.

%% ---------------------------------------------------------------- timing

now_ns() -> erlang:monotonic_time(nanosecond).

median(Samples) -> lists:nth(length(Samples) div 2 + 1, lists:sort(Samples)).

mean(Samples) -> lists:sum(Samples) div length(Samples).

calls(Server, Count, IdleMs) ->
    [begin
         case IdleMs of 0 -> ok; _ -> timer:sleep(IdleMs) end,
         T0 = now_ns(),
         _ = gen_server:call(Server, I),
         now_ns() - T0
     end || I <- lists:seq(1, Count)].

casts(Server, Count) ->
    Before = gen_server:call(Server, sum),
    T0 = now_ns(),
    lists:foreach(fun(_) -> gen_server:cast(Server, 1) end, lists:seq(1, Count)),
    After = gen_server:call(Server, sum),
    Elapsed = now_ns() - T0,
    Count = After - Before,
    Elapsed.

spawn_exit(Count) ->
    T0 = now_ns(),
    lists:foreach(fun(_) ->
                          {ok, Pid} = gen_server:start(?MODULE, idle, []),
                          ok = gen_server:stop(Pid)
                  end, lists:seq(1, Count)),
    (now_ns() - T0) div Count.

kill_to_down(Rounds) ->
    Main = self(),
    Watcher = spawn_link(fun() -> watch(Main) end),
    Samples = [begin
                   {ok, Victim} = gen_server:start(?MODULE, idle, []),
                   Watcher ! {watch, Victim},
                   receive watching -> ok end,
                   %% Let the watcher block in its receive, as an idle watcher would be.
                   timer:sleep(1),
                   T0 = now_ns(),
                   exit(Victim, kill),
                   receive {seen, T1} -> T1 - T0 end
               end || _ <- lists:seq(1, Rounds)],
    unlink(Watcher),
    exit(Watcher, kill),
    Samples.

watch(Main) ->
    receive
        {watch, Victim} ->
            Ref = monitor(process, Victim),
            Main ! watching,
            receive {'DOWN', Ref, process, _, _} -> Main ! {seen, now_ns()} end,
            watch(Main)
    end.

%% What the VM accounts to each idle gen_server (heap, stack, mailbox, process struct).
idle_memory(Count) ->
    Pids = [element(2, gen_server:start(?MODULE, idle, [])) || _ <- lists:seq(1, Count)],
    Bytes = lists:sum([element(2, process_info(Pid, memory)) || Pid <- Pids]),
    [gen_server:stop(Pid) || Pid <- Pids],
    Bytes div Count.

restart_to_answer(Rounds) ->
    {ok, Sup} = supervisor:start_link(?MODULE, supervisor),
    Child = fun() -> [{echo, Pid, _, _}] = supervisor:which_children(Sup), Pid end,
    Samples = [begin
                   Old = Child(),
                   T0 = now_ns(),
                   exit(Old, crash),
                   %% exit/2 is asynchronous: ask until the supervisor has replaced it.
                   New = replacement(Child, Old),
                   8 = gen_server:call(New, 7),
                   now_ns() - T0
               end || _ <- lists:seq(1, Rounds)],
    unlink(Sup),
    exit(Sup, shutdown),
    Samples.

replacement(Child, Old) ->
    case Child() of
        Old -> replacement(Child, Old);
        undefined -> replacement(Child, Old);
        New -> New
    end.

main(Args) ->
    %% Restarts are the workload here, not news: no supervisor reports.
    logger:set_primary_config(level, none),
    [Calls, IdleCalls, Casts, Spawns, Kills, IdleWorkers, Restarts] =
        [list_to_integer(A) || A <- Args],
    process_flag(trap_exit, false),
    {ok, Echo} = gen_server:start(?MODULE, echo, []),
    _ = calls(Echo, Calls div 10, 0),
    W1 = calls(Echo, Calls, 0),
    io:format("W1 ~b ~b~n", [median(W1), mean(W1)]),
    io:format("W1i ~b~n", [median(calls(Echo, IdleCalls, 1))]),
    _ = casts(Echo, Casts div 10),
    io:format("W2 ~b~n", [Casts * 1000000000 div casts(Echo, Casts)]),
    _ = spawn_exit(Spawns div 10),
    io:format("W3 ~b~n", [spawn_exit(Spawns)]),
    io:format("W4 ~b~n", [median(kill_to_down(Kills))]),
    io:format("W5 ~b~n", [idle_memory(IdleWorkers)]),
    io:format("W6 ~b~n", [median(restart_to_answer(Restarts))]).

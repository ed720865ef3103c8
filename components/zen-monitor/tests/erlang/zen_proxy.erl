%% The BEAM side of the zen-monitor tests: speaks zen_monitor 2.1.0's wire terms as
%% the Elixir library does (zen_monitor_wire.md), written for these tests.
%%
%% * proxy: registered as 'Elixir.ZenMonitor.Proxy' (a gen_server): ping -> pong,
%%   {process, Subscriber, Instructions} and the legacy {subscribe, Subscriber, Targets}
%%   casts, one erlang:monitor per target, a batcher per subscriber sending
%%   {dead, node(), [{Target, Reason}]} every 100 ms with [noconnect].
%% * connector: pings a remote Proxy with gen_server:call, monitors it by name, casts
%%   {process, self(), [{subscribe, T}]}, and forwards what it gets to a reporter.
%% * zen_ctl: the test's remote control (spawn victims, kill them, stats, stop proxy).
-module(zen_proxy).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2, handle_info/2, batcher/2]).

main(WithProxy) ->
    case WithProxy of
        true -> {ok, _} = gen_server:start({local, 'Elixir.ZenMonitor.Proxy'}, ?MODULE, [], []);
        false -> ok
    end,
    register(zen_ctl, self()),
    io:format("ready~n"),
    ctl().

ctl() ->
    receive
        stop -> ok;
        {spawn_victims, From, N} ->
            Pids = [spawn(fun victim/0) || _ <- lists:seq(1, N)],
            From ! {victims, Pids},
            ctl();
        {spawn_named, From, Name} ->
            Pid = spawn(fun() -> register(Name, self()), victim() end),
            From ! {named, Pid},
            ctl();
        {kill, Pid, Reason} ->
            Pid ! {die, Reason},
            ctl();
        {kill_all, From, Pids, Reason} ->
            Refs = [{P, monitor(process, P)} || P <- Pids],
            [P ! {die, Reason} || P <- Pids],
            [receive {'DOWN', R, process, _, _} -> ok end || {_, R} <- Refs],
            From ! {killed, length(Pids)},
            ctl();
        {stats, From} ->
            From ! gen_server:call('Elixir.ZenMonitor.Proxy', stats),
            ctl();
        {stop_proxy, From} ->
            ok = gen_server:stop('Elixir.ZenMonitor.Proxy', shutdown, 5000),
            From ! {proxy_stopped, ok},
            ctl();
        {connector, From, Node, Targets, Reporter} ->
            Conn = spawn(fun() -> connector(Node, Targets, Reporter) end),
            From ! {connector, Conn},
            ctl();
        {ping, From, Node} ->
            From ! {ping_result, catch gen_server:call({'Elixir.ZenMonitor.Proxy', Node}, ping)},
            ctl()
    end.

victim() ->
    receive
        {die, Reason} -> exit(Reason)
    end.

%% The Connector side: what a real ZenMonitor.Local.Connector puts on the wire.
connector(Node, Targets, Reporter) ->
    pong = gen_server:call({'Elixir.ZenMonitor.Proxy', Node}, ping),
    ProxyRef = monitor(process, {'Elixir.ZenMonitor.Proxy', Node}),
    Reporter ! {compatible, self()},
    gen_server:cast({'Elixir.ZenMonitor.Proxy', Node},
                    {process, self(), [{subscribe, T} || T <- Targets]}),
    connector_loop(Node, ProxyRef, Reporter).

connector_loop(Node, ProxyRef, Reporter) ->
    receive
        {dead, Node, Certificates} ->
            Reporter ! {summary, Certificates},
            connector_loop(Node, ProxyRef, Reporter);
        {'DOWN', ProxyRef, process, _, Reason} ->
            Reporter ! {proxy_down, Reason};
        {unsubscribe, Targets} ->
            gen_server:cast({'Elixir.ZenMonitor.Proxy', Node},
                            {process, self(), [{unsubscribe, T} || T <- Targets]}),
            connector_loop(Node, ProxyRef, Reporter);
        {legacy_subscribe, Targets} ->
            gen_server:cast({'Elixir.ZenMonitor.Proxy', Node}, {subscribe, self(), Targets}),
            connector_loop(Node, ProxyRef, Reporter);
        die ->
            exit(connector_crash)
    end.

%% The Proxy.
-record(state, {monitors = #{}, subscribers = #{}, batchers = #{},
                casts = 0, instructions = 0, real_monitors = 0, max_cast = 0}).

init([]) -> {ok, #state{}}.

handle_call(ping, _From, State) -> {reply, pong, State};
handle_call(stats, _From, S) ->
    {reply, {proxy_stats, S#state.casts, S#state.instructions, S#state.real_monitors, S#state.max_cast}, S};
handle_call(_, _From, State) -> {reply, {error, unknown_call}, State}.

handle_cast({process, Sub, Instructions}, S0) ->
    S1 = S0#state{casts = S0#state.casts + 1,
                  instructions = S0#state.instructions + length(Instructions),
                  max_cast = max(S0#state.max_cast, length(Instructions))},
    {noreply, lists:foldl(fun(I, S) -> instruction(Sub, I, S) end, S1, Instructions)};
handle_cast({subscribe, Sub, Targets}, S0) ->
    {noreply, lists:foldl(fun(T, S) -> instruction(Sub, {subscribe, T}, S) end, S0, Targets)}.

instruction(Sub, {subscribe, T}, S) ->
    Subs = maps:get(T, S#state.subscribers, []),
    S1 = S#state{subscribers = maps:put(T, lists:usort([Sub | Subs]), S#state.subscribers)},
    case maps:is_key(T, S1#state.monitors) of
        true -> S1;
        false ->
            Ref = monitor(process, T),
            S1#state{monitors = maps:put(T, Ref, S1#state.monitors),
                     real_monitors = S1#state.real_monitors + 1}
    end;
instruction(Sub, {unsubscribe, T}, S) ->
    Subs = maps:get(T, S#state.subscribers, []) -- [Sub],
    S#state{subscribers = maps:put(T, Subs, S#state.subscribers)}.

handle_info({'DOWN', _Ref, process, Object, Reason}, S) ->
    %% A {Name, Node} monitor reports {Name, Node}; the subscription is under that key.
    Target = case Object of
        {Name, Node} when is_atom(Name), Node =:= node() -> {Name, Node};
        Pid -> Pid
    end,
    Subs = maps:get(Target, S#state.subscribers, []),
    S1 = lists:foldl(fun(Sub, Acc) -> enqueue(Sub, Target, Reason, Acc) end, S, Subs),
    {noreply, S1#state{subscribers = maps:remove(Target, S1#state.subscribers),
                       monitors = maps:remove(Target, S1#state.monitors)}};
handle_info({batcher_done, Sub}, S) ->
    {noreply, S#state{batchers = maps:remove(Sub, S#state.batchers)}};
handle_info(_, S) -> {noreply, S}.

enqueue(Sub, Target, Reason, S) ->
    {Batcher, S1} = case maps:find(Sub, S#state.batchers) of
        {ok, B} -> {B, S};
        error ->
            Proxy = self(),
            B = spawn(fun() -> monitor(process, Sub), erlang:send_after(100, self(), sweep), batcher(Sub, {Proxy, []}) end),
            {B, S#state{batchers = maps:put(Sub, B, S#state.batchers)}}
    end,
    Batcher ! {enqueue, Target, Reason},
    S1.

batcher(Sub, {Proxy, Queue}) ->
    receive
        {enqueue, Target, Reason} -> batcher(Sub, {Proxy, [{Target, Reason} | Queue]});
        sweep ->
            {Chunk, Rest} = take(lists:reverse(Queue), 5000),
            case Chunk of
                [] -> ok;
                _ -> erlang:send(Sub, {dead, node(), Chunk}, [noconnect])
            end,
            erlang:send_after(100, self(), sweep),
            batcher(Sub, {Proxy, lists:reverse(Rest)});
        {'DOWN', _, process, Sub, _} ->
            Proxy ! {batcher_done, Sub}
    end.

take(List, N) when length(List) =< N -> {List, []};
take(List, N) -> lists:split(N, List).

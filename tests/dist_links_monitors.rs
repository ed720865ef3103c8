//! Links and monitors across nodes, with real BEAM processes on the other side.
//!
//! Ports the Erlang reference manual's rules for links and monitors to processes on
//! other nodes ("Processes": exit signals over links, `'DOWN'` messages, the
//! `noconnection` reason when the connection is lost, an immediate `noconnection` DOWN
//! for a process on an unreachable node) and erts' link protocol (LINK, UNLINK_ID).

#[path = "support/erlang.rs"]
mod erlang;
#[path = "support/node.rs"]
mod node_support;

use std::net::SocketAddr;

use node_support::{Order, OurNode, Seen, next_seen, probe};
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{Atom, FromTerm, ToTerm};
use otp_threads::{ExitReason, NodeName, Pid};

/// A BEAM node whose `victim` process tells its pid on `{From, whoami}` and exits
/// with reason `R` on `{die, R}`; it traps exits and reports `'EXIT'` and `'DOWN'`
/// messages; on `{link, P}` / `{monitor, P}` it links / monitors P and answers `done`.
const VICTIM: &str = "Main = self(), spawn(fun() -> register(victim, self()), process_flag(trap_exit, true), \
    io:format(\"ready~n\"), \
    Loop = fun L() -> receive \
        {From, whoami} -> From ! {self(), me}, L(); \
        {From, monitored_by} -> {monitored_by, M} = process_info(self(), monitored_by), From ! {self(), M}, L(); \
        {die, R} -> exit(R); \
        {link, P} -> link(P), P ! done, L(); \
        {monitor, P} -> monitor(process, P), P ! done, L(); \
        {'EXIT', _, _} = E -> io:format(\"got ~p~n\", [E]), L(); \
        {'DOWN', _, process, _, _} = D -> io:format(\"got ~p~n\", [element(5, D)]), L() \
    end end, Loop(), Main ! stop end), receive stop -> ok end";

struct Scene {
    _server: NameServer,
    ours: OurNode,
    beam: erlang::OsProcess,
    peer: String,
}

impl Scene {
    fn start() -> Scene {
        let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let ours = OurNode::start(&erlang::unique_name("rs"), "sesame", server.address());
        let alive = erlang::unique_name("beam");
        let beam = erlang::beam_node(&alive, "sesame", server.address().port(), VICTIM);
        beam.expect_line("ready");
        let peer = format!("{alive}@{}", erlang::short_host());
        Scene {
            _server: server,
            ours,
            beam,
            peer,
        }
    }

    fn to_victim(&self, from: Pid, message: &impl ToTerm) {
        self.ours
            .node()
            .send(from, ("victim", self.peer.as_str()), message)
            .unwrap();
    }

    /// The victim's pid, learned through a probe.
    fn victim_pid(&self) -> Pid {
        let (asker, seen) = probe(&self.ours, None);
        self.to_victim(asker.pid(), &(asker.pid(), Atom::from("whoami")));
        let Seen::Message(reply) = next_seen(&seen) else {
            panic!("no answer")
        };
        let (pid, _): (Pid, Atom) = FromTerm::from_term(reply).unwrap();
        pid
    }
}

#[test]
fn monitoring_a_beam_process_gives_its_down_with_the_reason() {
    let scene = Scene::start();
    let victim = scene.victim_pid();
    let monitor = scene.ours.runtime().monitor(&victim);
    scene.to_victim(
        scene.ours.runtime().root_pid(),
        &(Atom::from("die"), Atom::from("bye")),
    );
    let down = monitor.wait(node_support::WAIT).expect("DOWN");
    assert_eq!(down.pid, victim);
    assert_eq!(down.reason, ExitReason::Error("bye".into()));
}

#[test]
fn monitoring_a_beam_process_whose_node_is_killed_gives_noconnection() {
    let mut scene = Scene::start();
    let victim = scene.victim_pid();
    let monitor = scene.ours.runtime().monitor(&victim);
    scene.beam.signal("KILL");
    scene.beam.wait_exit();
    let down = monitor.wait(node_support::WAIT).expect("DOWN");
    assert_eq!(down.reason, ExitReason::NoConnection);
}

#[test]
fn monitoring_a_pid_on_an_unreachable_node_gives_noconnection_at_once() {
    let scene = Scene::start();
    let ghost = Pid::from_parts(
        NodeName::new(&format!("ghost@{}", erlang::short_host())),
        1,
        0,
        1,
    );
    let down = scene
        .ours
        .runtime()
        .monitor(&ghost)
        .wait(node_support::WAIT)
        .expect("DOWN");
    assert_eq!(down.reason, ExitReason::NoConnection);
}

#[test]
fn demonitor_of_a_beam_process_means_no_down() {
    let scene = Scene::start();
    let victim = scene.victim_pid();
    let (sender, receiver) = crossbeam_channel::unbounded();
    let handle = scene.ours.runtime().handle();
    let reference = handle.monitor_to(&victim, &sender);
    assert!(handle.demonitor(&reference));
    // A second monitor, kept, proves the DOWN would have arrived by now.
    let kept = handle.monitor_to(&victim, &sender);
    scene.to_victim(handle.root_pid(), &(Atom::from("die"), Atom::from("bye")));
    let down = receiver.recv_timeout(node_support::WAIT).expect("DOWN");
    assert_eq!(down.reference, kept);
    assert!(receiver.try_recv().is_err(), "the removed monitor fired");
}

#[test]
fn a_beam_process_monitoring_our_worker_gets_its_down() {
    let scene = Scene::start();
    let (worker, seen) = probe(&scene.ours, None);
    scene.to_victim(worker.pid(), &(Atom::from("monitor"), worker.pid()));
    // `done` comes after the MONITOR_P on the same connection.
    assert!(matches!(next_seen(&seen), Seen::Message(t) if t == Atom::from("done").to_term()));
    worker.call(Order::Stop(ExitReason::error("x"))).unwrap();
    assert_eq!(scene.beam.expect_line("got "), "got {error,<<\"x\">>}");
}

#[test]
fn a_link_to_a_beam_process_carries_its_exit() {
    let scene = Scene::start();
    let victim = scene.victim_pid();
    let (worker, seen) = probe(&scene.ours, None);
    worker.call(Order::TrapExit).unwrap();
    assert_eq!(worker.call(Order::Link(victim)).unwrap(), true.to_term());
    scene.to_victim(worker.pid(), &(Atom::from("die"), Atom::from("boom")));
    match next_seen(&seen) {
        Seen::Exit(exit) => {
            assert_eq!(exit.from, victim);
            assert_eq!(exit.reason, ExitReason::Error("boom".into()));
        }
        other => panic!("expected the EXIT, got {other:?}"),
    }
}

#[test]
fn an_untrapped_exit_over_a_link_from_beam_kills_our_worker() {
    let scene = Scene::start();
    let victim = scene.victim_pid();
    let (worker, _seen) = probe(&scene.ours, None);
    worker.call(Order::Link(victim)).unwrap();
    let monitor = scene.ours.runtime().monitor(&worker.pid());
    scene.to_victim(worker.pid(), &(Atom::from("die"), Atom::from("boom")));
    let down = monitor.wait(node_support::WAIT).expect("the worker died");
    assert_eq!(down.reason, ExitReason::Error("boom".into()));
}

#[test]
fn a_beam_process_linked_to_our_worker_gets_its_exit() {
    let scene = Scene::start();
    let (worker, seen) = probe(&scene.ours, None);
    scene.to_victim(worker.pid(), &(Atom::from("link"), worker.pid()));
    assert!(matches!(next_seen(&seen), Seen::Message(t) if t == Atom::from("done").to_term()));
    worker
        .call(Order::Stop(ExitReason::shutdown_with("bye")))
        .unwrap();
    let line = scene.beam.expect_line("got ");
    assert!(
        line.starts_with("got {'EXIT',<") && line.ends_with(",{shutdown,<<\"bye\">>}}"),
        "{line}"
    );
}

#[test]
fn links_to_a_killed_beam_node_give_noconnection() {
    let mut scene = Scene::start();
    let victim = scene.victim_pid();
    let (worker, seen) = probe(&scene.ours, None);
    worker.call(Order::TrapExit).unwrap();
    worker.call(Order::Link(victim)).unwrap();
    scene.beam.signal("KILL");
    scene.beam.wait_exit();
    match next_seen(&seen) {
        Seen::Exit(exit) => {
            assert_eq!(exit.from, victim);
            assert_eq!(exit.reason, ExitReason::NoConnection);
        }
        other => panic!("expected the EXIT, got {other:?}"),
    }
}

#[test]
fn a_worker_monitoring_a_beam_process_gets_down_in_handle_info() {
    let scene = Scene::start();
    let victim = scene.victim_pid();
    let (worker, seen) = probe(&scene.ours, None);
    worker.call(Order::Monitor(victim)).unwrap();
    scene.to_victim(worker.pid(), &(Atom::from("die"), Atom::from("normal")));
    match next_seen(&seen) {
        Seen::Down(down) => {
            assert_eq!(down.pid, victim);
            assert_eq!(down.reason, ExitReason::Normal);
        }
        other => panic!("expected the DOWN, got {other:?}"),
    }
}

#[test]
fn monitoring_a_name_on_a_beam_node_gives_a_down_naming_it() {
    let scene = Scene::start();
    let monitor = scene.ours.node().monitor_name("victim", &scene.peer);
    // Sent after the MONITOR_P on the same connection.
    scene.to_victim(
        scene.ours.runtime().root_pid(),
        &(Atom::from("die"), Atom::from("bye")),
    );
    let down = monitor.wait(node_support::WAIT).expect("DOWN");
    assert_eq!(down.name.as_deref(), Some("victim"));
    assert_eq!(down.reason, ExitReason::Error("bye".into()));
}

#[test]
fn monitoring_an_unregistered_name_on_a_beam_node_gives_noproc() {
    let scene = Scene::start();
    let monitor = scene.ours.node().monitor_name("nobody_here", &scene.peer);
    let down = monitor.wait(node_support::WAIT).expect("DOWN");
    assert_eq!(down.name.as_deref(), Some("nobody_here"));
    assert_eq!(down.reason, ExitReason::NoProc);
}

#[test]
fn a_dying_worker_removes_its_monitors_on_other_nodes() {
    let scene = Scene::start();
    let victim = scene.victim_pid();
    let (worker, _seen) = probe(&scene.ours, None);
    worker.call(Order::Monitor(victim)).unwrap();
    let monitored_by = || {
        let (asker, seen) = probe(&scene.ours, None);
        scene.to_victim(asker.pid(), &(asker.pid(), Atom::from("monitored_by")));
        let Seen::Message(reply) = next_seen(&seen) else {
            panic!("no answer")
        };
        let (_, pids): (Pid, Vec<Pid>) = FromTerm::from_term(reply).unwrap();
        pids
    };
    assert_eq!(monitored_by(), vec![worker.pid()]);
    worker.call(Order::Stop(ExitReason::Normal)).unwrap();
    otp_threads_testkit::poll_until(
        "the dead worker's monitor to be removed on the other node",
        otp_threads_testkit::Patience::new(
            node_support::WAIT,
            std::time::Duration::from_millis(20),
        ),
        monitored_by,
        |pids| pids.is_empty(),
    );
}

#[test]
fn disconnecting_breaks_links_with_noconnection() {
    let scene = Scene::start();
    let victim = scene.victim_pid();
    let (worker, seen) = probe(&scene.ours, None);
    worker.call(Order::TrapExit).unwrap();
    worker.call(Order::Link(victim)).unwrap();
    assert!(scene.ours.node().disconnect(&scene.peer));
    match next_seen(&seen) {
        Seen::Exit(exit) => {
            assert_eq!(exit.from, victim);
            assert_eq!(exit.reason, ExitReason::NoConnection);
        }
        other => panic!("expected the EXIT, got {other:?}"),
    }
}

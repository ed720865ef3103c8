//! Registered names, after the Erlang reference manual, "Processes": "Registered
//! Processes" and "Directly Visible Erlang Resources" (a name is released before the
//! dying process's links and monitors fire); and the keyed registry (`GenRegistry`).

#[path = "support/common.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use otp_threads::{Error, ExitReason, KeyedRegistry, Runtime};

#[test]
fn register_whereis_and_unregister() {
    let rt = Runtime::new();
    let (p, _) = probe(&rt);
    rt.register("worker", &p.pid()).unwrap();
    assert_eq!(rt.whereis("worker"), Some(p.pid()));
    assert_eq!(rt.registered(), vec![Arc::<str>::from("worker")]);
    assert!(rt.unregister("worker"));
    assert_eq!(rt.whereis("worker"), None);
    assert!(!rt.unregister("worker"));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn registering_a_taken_name_fails_with_name_taken() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    let (b, _) = probe(&rt);
    rt.register("name", &a.pid()).unwrap();
    assert_eq!(
        rt.register("name", &b.pid()),
        Err(Error::NameTaken("name".into()))
    );
    let (probe_worker, _) = Probe::new();
    assert_eq!(
        rt.spawn_named("name", probe_worker).unwrap_err(),
        Error::NameTaken("name".into())
    );
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_process_has_at_most_one_name() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    rt.register("first", &a.pid()).unwrap();
    assert!(matches!(
        rt.register("second", &a.pid()),
        Err(Error::AlreadyRegistered { .. })
    ));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn registering_a_dead_process_fails_with_noproc() {
    let rt = Runtime::new();
    let (a, _) = probe(&rt);
    a.stop(ExitReason::Normal, WAIT).unwrap();
    assert_eq!(rt.register("late", &a.pid()), Err(Error::NoProc));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_dying_workers_name_is_released_before_its_links_and_monitors_fire() {
    let rt = Runtime::new();
    let (named, _) = probe(&rt);
    rt.register("service", &named.pid()).unwrap();
    let (heir, heir_events) = trapping_probe(&rt);
    ask(&heir, Command::ReRegisterOnExit("service".into()));
    ask(&heir, Command::Link(named.pid()));
    let down = rt.monitor(&named.pid());
    rt.exit(&named.pid(), ExitReason::error("crash"));
    down.wait(WAIT).unwrap();
    // The linked worker re-registered the name the moment its EXIT arrived.
    assert_eq!(next(&heir_events), Event::Registered(Ok(())));
    assert!(matches!(next(&heir_events), Event::Exit(_)));
    assert_eq!(rt.whereis("service"), Some(heir.pid()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn name_is_free_when_the_down_arrives() {
    let rt = Runtime::new();
    for _ in 0..20 {
        let (probe_worker, _) = Probe::new();
        let p = rt.spawn_named("again", probe_worker).unwrap();
        let down = rt.monitor(&p.pid());
        rt.kill(&p.pid());
        down.wait(WAIT).unwrap();
        assert_eq!(rt.whereis("again"), None);
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn calls_and_casts_by_name() {
    let rt = Runtime::new();
    let (probe_worker, events) = Probe::new();
    rt.spawn_named("by-name", probe_worker).unwrap();
    let by_name = rt.whereis_worker::<Probe>("by-name").unwrap();
    assert!(matches!(ask(&by_name, Command::Ping), Reply::Ok));
    by_name.send("hello".into());
    assert_eq!(next(&events), Event::Message("hello".into()));
    assert_eq!(
        rt.whereis_worker::<Probe>("nobody").unwrap_err(),
        Error::NoProc
    );
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn looking_up_a_worker_of_another_type_fails() {
    struct Other;
    impl otp_threads::Worker for Other {
        type Call = ();
        type Reply = ();
        type Cast = ();
        type Info = ();
        type Continue = ();
    }
    let rt = Runtime::new();
    let other = rt.spawn_named("other", Other).unwrap();
    assert_eq!(
        rt.whereis_worker::<Probe>("other").unwrap_err(),
        Error::WrongWorkerType(other.pid())
    );
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn keyed_registry_starts_exactly_one_worker_for_concurrent_callers() {
    let rt = Runtime::new();
    let registry: KeyedRegistry<&'static str, Probe> = KeyedRegistry::new();
    let starts = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (registry, starts, barrier, handle) = (
                registry.clone(),
                starts.clone(),
                barrier.clone(),
                rt.handle(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                registry
                    .lookup_or_start("key", || {
                        starts.fetch_add(1, Ordering::SeqCst);
                        handle.spawn_worker(Probe::new().0)
                    })
                    .unwrap()
                    .pid()
            })
        })
        .collect();
    let pids: Vec<_> = callers
        .into_iter()
        .map(|caller| caller.join().unwrap())
        .collect();
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    assert!(pids.iter().all(|pid| *pid == pids[0]));
    assert_eq!(registry.len(), 1);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn keyed_registry_remove_during_a_start_does_not_let_a_second_start_in() {
    let rt = Runtime::new();
    let registry: KeyedRegistry<u32, Probe> = KeyedRegistry::new();
    let (go, gate) = crossbeam_channel::bounded::<()>(0);
    let (started, starting) = crossbeam_channel::bounded::<()>(1);
    let starts = Arc::new(AtomicUsize::new(0));
    let first = {
        let (registry, handle, starts) = (registry.clone(), rt.handle(), starts.clone());
        std::thread::spawn(move || {
            registry
                .lookup_or_start(1, || {
                    starts.fetch_add(1, Ordering::SeqCst);
                    started.send(()).unwrap();
                    let _ = gate.recv();
                    handle.spawn_worker(Probe::new().0)
                })
                .unwrap()
                .pid()
        })
    };
    starting.recv_timeout(WAIT).unwrap();
    assert!(!registry.remove(&1), "a start under way is not removed");
    let second = {
        let (registry, handle, starts) = (registry.clone(), rt.handle(), starts.clone());
        std::thread::spawn(move || {
            registry
                .lookup_or_start(1, || {
                    starts.fetch_add(1, Ordering::SeqCst);
                    handle.spawn_worker(Probe::new().0)
                })
                .unwrap()
                .pid()
        })
    };
    drop(go);
    let (first, second) = (first.join().unwrap(), second.join().unwrap());
    assert_eq!(first, second);
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn keyed_registry_starts_a_new_worker_after_the_old_one_died() {
    let rt = Runtime::new();
    let registry: KeyedRegistry<u32, Probe> = KeyedRegistry::new();
    let first = registry
        .lookup_or_start(7, || rt.spawn_worker(Probe::new().0))
        .unwrap();
    first.stop(ExitReason::Normal, WAIT).unwrap();
    assert!(registry.lookup(&7).is_none());
    let second = registry
        .lookup_or_start(7, || rt.spawn_worker(Probe::new().0))
        .unwrap();
    assert_ne!(first.pid(), second.pid());
    // A failed start leaves no entry behind.
    let failed = registry.lookup_or_start(8, || Err(Error::NoProc));
    assert_eq!(failed.unwrap_err(), Error::NoProc);
    assert!(registry.lookup(&8).is_none());
    rt.shutdown(WAIT).unwrap();
}

/// `gen_server:call(Name, …)`, `gen_server:cast(Name, …)` and `Name ! Msg`, from a plain
/// thread and from a worker; the name is resolved at each use, so a restarted process
/// registered under the same name is reached.
#[test]
fn call_cast_and_send_by_name_reach_the_registered_worker() {
    let rt = Runtime::new();
    let (first, events) = Probe::new();
    let first = rt.spawn_named("server", first).unwrap();
    assert!(matches!(
        rt.call_name::<Probe>("server", Command::Ping),
        Ok(Reply::Ok)
    ));
    rt.cast_name::<Probe>("server", Command::Send(first.pid(), "cast".into()));
    assert_eq!(next(&events), Event::Message("cast".into()));
    rt.send_name::<Probe>("server", "sent".into()).unwrap();
    assert_eq!(next(&events), Event::Message("sent".into()));
    // From a worker.
    let (caller, _) = probe(&rt);
    assert!(matches!(
        ask(&caller, Command::PingByName("server".into())),
        Reply::Ok
    ));
    // The name now leads to a new process.
    first.stop(ExitReason::Normal, WAIT).unwrap();
    let (second, second_events) = Probe::new();
    rt.spawn_named("server", second).unwrap();
    rt.send_name::<Probe>(String::from("server"), "again".into())
        .unwrap();
    assert_eq!(next(&second_events), Event::Message("again".into()));
    // `{Name, Node}` with our own node is the local name.
    let own = otp_threads::RegisteredName::on_node("server", rt.node());
    assert!(matches!(
        rt.call_name::<Probe>(own, Command::Ping),
        Ok(Reply::Ok)
    ));
    rt.shutdown(WAIT).unwrap();
}

/// `gen_server:cast/2` returns `ok` whatever the destination: a cast to an unregistered
/// name, to a dead process or to another node is silently dropped.
#[test]
fn a_cast_to_an_unregistered_name_or_a_dead_process_is_silently_dropped() {
    let rt = Runtime::new();
    // Each cast would make its receiver message the observer, were it delivered.
    let (observer, observed) = probe(&rt);
    let forward = || Command::Send(observer.pid(), "delivered".into());
    rt.cast_name::<Probe>("nobody", forward());
    let (doomed, _) = Probe::new();
    let doomed = rt.spawn_named("doomed", doomed).unwrap();
    rt.kill(&doomed.pid());
    // The name went with the process: by name and by the old handle, both dropped.
    rt.cast_name::<Probe>("doomed", forward());
    doomed.cast(forward());
    let elsewhere = otp_threads::NodeName::new("other@host");
    rt.cast_name::<Probe>(("doomed", elsewhere), forward());
    // A cast that does arrive, after the dropped ones from this thread: it comes first.
    let (live, _) = Probe::new();
    rt.spawn_named("live", live).unwrap();
    rt.cast_name::<Probe>("live", Command::Send(observer.pid(), "marker".into()));
    assert_eq!(next(&observed), Event::Message("marker".into()));
    assert!(observed.try_recv().is_err());
    rt.shutdown(WAIT).unwrap();
}

/// `gen_server:call(Name, …)` with no process under `Name` exits with `noproc` at once,
/// without waiting for the timeout (the wait here is forever).
#[test]
fn a_call_by_name_to_nobody_fails_at_once_with_noproc() {
    let rt = Runtime::new();
    assert_eq!(
        rt.call_name_timeout::<Probe>("nobody", Command::Ping, std::time::Duration::MAX)
            .unwrap_err(),
        Error::NoProc
    );
    assert_eq!(
        rt.send_name::<Probe>("nobody", "lost".into()),
        Err(Error::NoProc)
    );
    let (caller, _) = probe(&rt);
    assert!(matches!(
        ask(&caller, Command::PingByName("nobody".into())),
        Reply::Error(Error::NoProc)
    ));
    rt.shutdown(WAIT).unwrap();
}

/// `{Name, Node}` fits the name type; until distribution runs, a call to a name on
/// another node is `NoConnection` and a message to it is dropped.
#[test]
fn a_name_on_another_node_gives_no_connection_without_distribution() {
    let rt = Runtime::new();
    let elsewhere = otp_threads::NodeName::new("far@away");
    let name = otp_threads::RegisteredName::on_node("server", elsewhere);
    assert_eq!(name.to_string(), "{server, far@away}");
    assert_eq!(
        rt.call_name::<Probe>(name.clone(), Command::Ping)
            .unwrap_err(),
        Error::NoConnection("far@away".into())
    );
    assert_eq!(rt.send_name::<Probe>(name, "lost".into()), Ok(()));
    rt.shutdown(WAIT).unwrap();
}

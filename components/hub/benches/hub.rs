//! Hub benchmarks, each beside its baseline in the same run.
//!
//! 1. `start_child` throughput: a batch of 200 children started (and awaited) through
//!    a three-node hub (this process and two peer OS processes), beside the same 200
//!    workers started on a local `DynamicSupervisor`. Criterion times both; the ratio
//!    (hub / local) is printed.
//! 2. Migration on a join: 1,000 children on three nodes, a fourth joins; the time
//!    from this node's `NodeJoined` hook until every child sits on its ring node again
//!    (as this node's registry sees it), the hub messages all four nodes sent
//!    meanwhile (the join's greetings and syncs included) and the bytes this node sent,
//!    with cold swap and with hot swap + handover (ratio hot / cold printed).
//!
//! `cargo bench -p otp-threads-hub --bench hub`.

#[path = "../tests/support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::{HubNode, Peer, counters, name_server, unique_name};
use criterion::Criterion;
use otp_threads::{ChildSpec, Context, DynamicSupervisor, ReplyTo, Runtime, Step, Worker};
use otp_threads_hub::Hub;

const BATCH: usize = 200;
const WAIT: Duration = Duration::from_secs(60);

/// The local baseline's worker: a counter like the hub's test child.
struct Plain {
    value: i64,
}

impl Worker for Plain {
    type Call = ();
    type Reply = i64;
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn handle_call(&mut self, _: (), reply: ReplyTo<i64>, _: &mut Context<Self>) -> Step<Self> {
        reply.reply(self.value);
        Step::Next
    }
}

fn wait_placed(hub: &Hub, ids: &[String]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let placed = ids.iter().all(|id| {
            let want = hub.belongs_to(id);
            hub.child_lookup(id)
                .is_some_and(|c| c.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>() == want)
        });
        if placed {
            return;
        }
        assert!(Instant::now() < deadline, "children not placed in time");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn start_throughput(c: &mut Criterion) {
    let server = name_server();
    let main = HubNode::start(&unique_name("benchm"), server.address(), "cold");
    let _p1 = Peer::start("benchp", server.address(), "cold", &main.name());
    let _p2 = Peer::start("benchp", server.address(), "cold", &main.name());
    while main.hub().members().len() < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let hub = main.hub();
    let mut group = c.benchmark_group("start_200_children");
    group.sample_size(10);
    let mut round = 0u64;
    let mut hub_time = Duration::ZERO;
    let mut hub_iters = 0u64;
    group.bench_function("hub_three_nodes", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let specs = counters(&format!("b{round}"), BATCH);
                let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
                let started = Instant::now();
                let results = hub.start_children(specs).unwrap().wait(WAIT).unwrap();
                total += started.elapsed();
                assert_eq!(results.len(), BATCH);
                hub.stop_children(ids).unwrap().wait(WAIT).unwrap();
            }
            hub_time += total;
            hub_iters += iters;
            total
        })
    });
    let runtime = Runtime::builder().build().unwrap();
    let supervisor = DynamicSupervisor::new().start(&runtime.handle()).unwrap();
    let mut local_time = Duration::ZERO;
    let mut local_iters = 0u64;
    group.bench_function("local_dynamic_supervisor", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let pids: Vec<_> = (0..BATCH)
                    .map(|i| {
                        supervisor
                            .start_child(ChildSpec::worker(format!("c{i}"), || Plain { value: 0 }))
                            .unwrap()
                    })
                    .collect();
                total += started.elapsed();
                for pid in pids {
                    supervisor.terminate_child(&pid).unwrap();
                }
            }
            local_time += total;
            local_iters += iters;
            total
        })
    });
    group.finish();
    let hub_per = hub_time.as_secs_f64() / hub_iters.max(1) as f64;
    let local_per = local_time.as_secs_f64() / local_iters.max(1) as f64;
    eprintln!(
        "start 200 children: hub (3 nodes) {:.2} ms, local DynamicSupervisor {:.2} ms, ratio {:.2}",
        hub_per * 1e3,
        local_per * 1e3,
        hub_per / local_per
    );
    drop(supervisor);
    runtime.shutdown(Duration::from_secs(30)).unwrap();
}

/// (seconds from the join being seen here, hub messages sent by all four nodes, bytes
/// this node sent) for the migration after a join.
fn migrate_on_join(kind: &str, children: usize) -> (f64, u64, u64) {
    let server = name_server();
    let main = HubNode::start(&unique_name("benchm"), server.address(), kind);
    let hub = main.hub();
    let mut p1 = Peer::start("benchp", server.address(), kind, &main.name());
    let mut p2 = Peer::start("benchp", server.address(), kind, &main.name());
    while hub.members().len() < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let specs = counters("m", children);
    let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
    hub.start_children(specs).unwrap().wait(WAIT).unwrap();
    wait_placed(hub, &ids);
    let peers: Vec<String> = hub.members();
    let messages = hub.messages_sent() + p1.messages_sent() + p2.messages_sent();
    let bytes: u64 = peers.iter().map(|p| main.node().bytes_sent(p)).sum();
    let events = hub.events();
    let mut p3 = Peer::start("benchq", server.address(), kind, &main.name());
    // From the moment this hub sees the join (its hook event).
    let started = loop {
        match events.recv_timeout(WAIT).expect("join") {
            otp_threads_hub::HubEvent::NodeJoined(node) if node == p3.name => break Instant::now(),
            _ => {}
        }
    };
    // The ring changed with the members: placement is judged on the 4-node ring.
    wait_placed(hub, &ids);
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = peers;
    all.push(p3.name.clone());
    let bytes_after: u64 = all.iter().map(|p| main.node().bytes_sent(p)).sum();
    let after = hub.messages_sent() + p1.messages_sent() + p2.messages_sent() + p3.messages_sent();
    (elapsed, after - messages, bytes_after - bytes)
}

fn migration(_: &mut Criterion) {
    let children = 1000;
    let (cold_s, cold_m, cold_b) = migrate_on_join("cold", children);
    let (hot_s, hot_m, hot_b) = migrate_on_join("hot", children);
    eprintln!(
        "migrate on join ({children} children, 3 -> 4 nodes; messages of all nodes, bytes of this one): \
         cold swap {:.0} ms, {cold_m} msgs, {cold_b} bytes; \
         hot swap + handover {:.0} ms, {hot_m} msgs, {hot_b} bytes; time ratio hot/cold {:.2}",
        cold_s * 1e3,
        hot_s * 1e3,
        hot_s / cold_s
    );
}

fn main() {
    if let Ok(role) = std::env::var(cluster::PEER_ROLE) {
        cluster::peer_main(&role);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    start_throughput(&mut criterion);
    migration(&mut criterion);
    criterion.final_summary();
}

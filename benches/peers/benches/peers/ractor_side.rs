//! The workloads on ractor 0.16: actors are tokio tasks, calls are `call` with an
//! `RpcReplyPort`, the watcher of W4 is the victim's supervisor (a supervision event).

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::mpsc;

use crate::workloads::{resident_bytes, stats};
use crate::{Figures, Sizes, tokio_runtime};

pub enum EchoMessage {
    Call(u64, RpcReplyPort<u64>),
    Cast(u64),
    Sum(RpcReplyPort<u64>),
}

struct Echo;

impl Actor for Echo {
    type Msg = EchoMessage;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<EchoMessage>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<EchoMessage>,
        message: EchoMessage,
        sum: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EchoMessage::Call(value, reply) => {
                let _ = reply.send(value + 1);
            }
            EchoMessage::Cast(value) => *sum += value,
            EchoMessage::Sum(reply) => {
                let _ = reply.send(*sum);
            }
        }
        Ok(())
    }
}

struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Supervises one victim at a time and reports when it learns of its death.
struct Watcher {
    seen: mpsc::UnboundedSender<Instant>,
}

impl Actor for Watcher {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorTerminated(..) | SupervisionEvent::ActorFailed(..) = event {
            let _ = self.seen.send(Instant::now());
        }
        Ok(())
    }
}

async fn call(echo: &ActorRef<EchoMessage>, value: u64) -> u64 {
    echo.call(|reply| EchoMessage::Call(value, reply), None)
        .await
        .unwrap()
        .unwrap()
}

async fn calls(echo: &ActorRef<EchoMessage>, count: u64, idle: Duration) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count as usize);
    for i in 0..count {
        if !idle.is_zero() {
            tokio::time::sleep(idle).await;
        }
        let start = Instant::now();
        std::hint::black_box(call(echo, i).await);
        samples.push(start.elapsed());
    }
    samples
}

async fn casts(echo: &ActorRef<EchoMessage>, count: u64) -> Duration {
    let sum = || async { echo.call(EchoMessage::Sum, None).await.unwrap().unwrap() };
    let before = sum().await;
    let start = Instant::now();
    for _ in 0..count {
        echo.cast(EchoMessage::Cast(1)).unwrap();
    }
    let after = sum().await;
    let elapsed = start.elapsed();
    assert_eq!(after - before, count);
    elapsed
}

async fn spawn_exit(count: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..count {
        // `spawn` returns after `pre_start`, as a spawn returns after `init`.
        let (actor, handle) = Actor::spawn(None, Idle, ()).await.unwrap();
        actor.stop(None);
        handle.await.unwrap();
    }
    start.elapsed()
}

async fn kill_to_watcher(rounds: usize) -> Vec<Duration> {
    let (seen, mut seen_at) = mpsc::unbounded_channel();
    let (watcher, watcher_handle) = Actor::spawn(None, Watcher { seen }, ()).await.unwrap();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (victim, handle) = Actor::spawn_linked(None, Idle, (), watcher.get_cell())
            .await
            .unwrap();
        tokio::time::sleep(crate::workloads::WATCHER_SETTLE).await;
        let start = Instant::now();
        victim.kill();
        samples.push(seen_at.recv().await.unwrap() - start);
        handle.await.unwrap();
    }
    watcher.stop(None);
    watcher_handle.await.unwrap();
    samples
}

async fn idle_rss_async(count: usize) -> f64 {
    let before = resident_bytes();
    let mut actors = Vec::with_capacity(count);
    for _ in 0..count {
        actors.push(Actor::spawn(None, Idle, ()).await.unwrap());
    }
    let after = resident_bytes();
    for (actor, handle) in actors {
        actor.stop(None);
        handle.await.unwrap();
    }
    after.saturating_sub(before) as f64 / count as f64
}

/// Resident bytes per idle actor, on a runtime of its own.
pub fn idle_rss(count: usize) -> f64 {
    tokio_runtime().block_on(idle_rss_async(count))
}

pub fn figures(sizes: Sizes) -> Figures {
    tokio_runtime().block_on(async {
        let (echo, echo_handle) = Actor::spawn(None, Echo, ()).await.unwrap();
        calls(&echo, sizes.calls / 10, Duration::ZERO).await;
        let w1 = stats(&mut calls(&echo, sizes.calls, Duration::ZERO).await);
        let w1i = stats(&mut calls(&echo, sizes.idle_calls, Duration::from_millis(1)).await);
        casts(&echo, sizes.casts / 10).await;
        let w2 = casts(&echo, sizes.casts).await;
        echo.stop(None);
        echo_handle.await.unwrap();
        spawn_exit(sizes.spawns / 10).await;
        let w3 = spawn_exit(sizes.spawns).await / sizes.spawns as u32;
        let w4 = stats(&mut kill_to_watcher(sizes.kills).await);
        Figures::in_process(w1, w1i, sizes.casts, w2, w3, w4)
    })
}

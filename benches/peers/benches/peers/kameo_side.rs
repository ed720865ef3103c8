//! The workloads on kameo 0.22: actors are tokio tasks with unbounded mailboxes, calls
//! are `ask`, the watcher of W4 is linked to the victim (`on_link_died`).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use kameo::Actor;
use kameo::actor::{ActorId, ActorRef, Spawn, WeakActorRef};
use kameo::error::{ActorStopReason, Infallible};
use kameo::mailbox;
use kameo::message::{Context, Message};
use tokio::sync::mpsc;

use crate::workloads::{resident_bytes, stats};
use crate::{Figures, Sizes, tokio_runtime};

#[derive(Actor)]
struct Echo {
    sum: u64,
}

struct Call(u64);
struct Cast(u64);
struct Sum;

impl Message<Call> for Echo {
    type Reply = u64;

    async fn handle(&mut self, call: Call, _: &mut Context<Self, u64>) -> u64 {
        call.0 + 1
    }
}

impl Message<Cast> for Echo {
    type Reply = ();

    async fn handle(&mut self, cast: Cast, _: &mut Context<Self, ()>) {
        self.sum += cast.0;
    }
}

impl Message<Sum> for Echo {
    type Reply = u64;

    async fn handle(&mut self, _: Sum, _: &mut Context<Self, u64>) -> u64 {
        self.sum
    }
}

#[derive(Actor)]
struct Idle;

/// Linked to one victim at a time; reports when it learns of its death.
struct Watcher {
    seen: mpsc::UnboundedSender<Instant>,
}

impl Actor for Watcher {
    type Args = Watcher;
    type Error = Infallible;

    async fn on_start(watcher: Watcher, _: ActorRef<Self>) -> Result<Watcher, Infallible> {
        Ok(watcher)
    }

    async fn on_link_died(
        &mut self,
        _: WeakActorRef<Self>,
        _: ActorId,
        _: ActorStopReason,
    ) -> Result<ControlFlow<ActorStopReason>, Infallible> {
        let _ = self.seen.send(Instant::now());
        Ok(ControlFlow::Continue(()))
    }
}

async fn calls(echo: &ActorRef<Echo>, count: u64, idle: Duration) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count as usize);
    for i in 0..count {
        if !idle.is_zero() {
            tokio::time::sleep(idle).await;
        }
        let start = Instant::now();
        std::hint::black_box(echo.ask(Call(i)).await.unwrap());
        samples.push(start.elapsed());
    }
    samples
}

async fn casts(echo: &ActorRef<Echo>, count: u64) -> Duration {
    let before = echo.ask(Sum).await.unwrap();
    let start = Instant::now();
    for _ in 0..count {
        echo.tell(Cast(1)).await.unwrap();
    }
    let after = echo.ask(Sum).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(after - before, count);
    elapsed
}

async fn spawn_exit(count: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..count {
        let actor = Idle::spawn_with_mailbox(Idle, mailbox::unbounded());
        // A spawn returns after its start hook, as a spawn returns after `init`.
        actor.wait_for_startup().await;
        actor.stop_gracefully().await.unwrap();
        actor.wait_for_shutdown().await;
    }
    start.elapsed()
}

async fn kill_to_watcher(rounds: usize) -> Vec<Duration> {
    let (seen, mut seen_at) = mpsc::unbounded_channel();
    let watcher = Watcher::spawn_with_mailbox(Watcher { seen }, mailbox::unbounded());
    watcher.wait_for_startup().await;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let victim = Idle::spawn_with_mailbox(Idle, mailbox::unbounded());
        victim.wait_for_startup().await;
        watcher.link(&victim).await;
        tokio::time::sleep(crate::workloads::WATCHER_SETTLE).await;
        let start = Instant::now();
        victim.kill();
        samples.push(seen_at.recv().await.unwrap() - start);
        victim.wait_for_shutdown().await;
    }
    watcher.stop_gracefully().await.unwrap();
    watcher.wait_for_shutdown().await;
    samples
}

async fn idle_rss_async(count: usize) -> f64 {
    let before = resident_bytes();
    let mut actors = Vec::with_capacity(count);
    for _ in 0..count {
        let actor = Idle::spawn_with_mailbox(Idle, mailbox::unbounded());
        actor.wait_for_startup().await;
        actors.push(actor);
    }
    let after = resident_bytes();
    for actor in actors {
        actor.stop_gracefully().await.unwrap();
        actor.wait_for_shutdown().await;
    }
    after.saturating_sub(before) as f64 / count as f64
}

/// Resident bytes per idle actor, on a runtime of its own.
pub fn idle_rss(count: usize) -> f64 {
    tokio_runtime().block_on(idle_rss_async(count))
}

pub fn figures(sizes: Sizes) -> Figures {
    tokio_runtime().block_on(async {
        let echo = Echo::spawn_with_mailbox(Echo { sum: 0 }, mailbox::unbounded());
        echo.wait_for_startup().await;
        calls(&echo, sizes.calls / 10, Duration::ZERO).await;
        let w1 = stats(&mut calls(&echo, sizes.calls, Duration::ZERO).await);
        let w1i = stats(&mut calls(&echo, sizes.idle_calls, Duration::from_millis(1)).await);
        casts(&echo, sizes.casts / 10).await;
        let w2 = casts(&echo, sizes.casts).await;
        echo.stop_gracefully().await.unwrap();
        echo.wait_for_shutdown().await;
        spawn_exit(sizes.spawns / 10).await;
        let w3 = spawn_exit(sizes.spawns).await / sizes.spawns as u32;
        let w4 = stats(&mut kill_to_watcher(sizes.kills).await);
        Figures::in_process(w1, w1i, sizes.casts, w2, w3, w4)
    })
}

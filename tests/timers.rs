//! Timers, after `erlang:send_after/3`, `erlang:cancel_timer/1` and `erlang:read_timer/1`:
//! a timer's message is sent to the worker's own mailbox when it expires; cancelling
//! gives the time left, or nothing once the message has been sent.

#[path = "support/common.rs"]
mod common;

use std::time::Duration;

use common::*;
use otp_threads::{Context, Info, Runtime, Step, TimerRef, Worker};

#[test]
fn send_after_delivers_a_timer_message() {
    let rt = Runtime::new();
    let (p, events) = probe(&rt);
    let Reply::Timer(timer) = ask(
        &p,
        Command::SendAfter("tick".into(), Duration::from_millis(5)),
    ) else {
        panic!("no timer");
    };
    assert_eq!(next(&events), Event::Timer(timer, "tick".into()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn cancel_timer_returns_the_time_left_and_the_message_never_comes() {
    let rt = Runtime::new();
    let (p, events) = probe(&rt);
    let hour = Duration::from_secs(3600);
    let Reply::Timer(timer) = ask(&p, Command::SendAfter("never".into(), hour)) else {
        panic!("no timer");
    };
    let Reply::TimeLeft(Some(left)) = ask(&p, Command::CancelTimer(timer)) else {
        panic!("the timer was pending");
    };
    assert!(left <= hour && left > Duration::ZERO);
    assert!(matches!(
        ask(&p, Command::CancelTimer(timer)),
        Reply::TimeLeft(None)
    ));
    p.send("marker".into());
    assert_eq!(next(&events), Event::Message("marker".into()));
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn cancelling_a_fired_timer_returns_none() {
    let rt = Runtime::new();
    let (p, events) = probe(&rt);
    let Reply::Timer(timer) = ask(&p, Command::SendAfter("tick".into(), Duration::ZERO)) else {
        panic!("no timer");
    };
    assert_eq!(next(&events), Event::Timer(timer, "tick".into()));
    assert!(matches!(
        ask(&p, Command::CancelTimer(timer)),
        Reply::TimeLeft(None)
    ));
    rt.shutdown(WAIT).unwrap();
}

/// Sets `count` timers in `init`, spread over `spread`, cancels every third, and
/// reports the order in which the others fire.
struct ManyTimers {
    count: u64,
    spread: Duration,
    fired: crossbeam_channel::Sender<u64>,
}

impl Worker for ManyTimers {
    type Call = ();
    type Reply = usize;
    type Cast = ();
    type Info = u64;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), otp_threads::ExitReason> {
        let mut cancelled: Vec<TimerRef> = Vec::new();
        let base = std::time::Instant::now();
        for i in 0..self.count {
            // Deadlines in reverse order of creation, so the heap has work to do.
            let value = self.count - i;
            let deadline = base + self.spread.mul_f64(value as f64 / self.count as f64);
            let timer = ctx.send_at(value, deadline);
            if i % 3 == 0 {
                cancelled.push(timer);
            }
        }
        for timer in cancelled {
            assert!(ctx.cancel_timer(timer).is_some());
        }
        Ok(())
    }

    fn handle_call(
        &mut self,
        _: (),
        reply: otp_threads::ReplyTo<usize>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(ctx.pending_timers());
        Step::Next
    }

    fn handle_info(&mut self, info: Info<u64>, _: &mut Context<Self>) -> Step<Self> {
        if let Info::Timer(_, value) = info {
            let _ = self.fired.send(value);
        }
        Step::Next
    }
}

#[test]
fn ten_thousand_pending_timers_in_one_worker_fire_in_deadline_order() {
    let rt = Runtime::new();
    let (fired, fired_values) = crossbeam_channel::unbounded();
    let count = 10_000;
    let worker = rt
        .spawn_worker(ManyTimers {
            count,
            spread: Duration::from_millis(300),
            fired,
        })
        .unwrap();
    let expected: Vec<u64> = (1..=count)
        .filter(|value| (count - value) % 3 != 0)
        .collect();
    let got: Vec<u64> = (0..expected.len())
        .map(|_| fired_values.recv_timeout(WAIT).expect("a timer fires"))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(worker.call(()).unwrap(), 0);
    assert!(fired_values.try_recv().is_err());
    rt.shutdown(WAIT).unwrap();
}

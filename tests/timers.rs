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

fn manual_runtime() -> (Runtime, otp_threads::ManualClock) {
    let clock = otp_threads::ManualClock::new();
    let rt = Runtime::builder().manual_clock(&clock).build().unwrap();
    (rt, clock)
}

fn set_timer(p: &otp_threads::WorkerRef<Probe>, message: &str, delay: Duration) -> TimerRef {
    match ask(p, Command::SendAfter(message.into(), delay)) {
        Reply::Timer(timer) => timer,
        other => panic!("no timer: {other:?}"),
    }
}

/// The events a probe reported so far: a call returns only after every message queued
/// before it was handled, so after `advance` the fired timers are all in.
fn reported(
    p: &otp_threads::WorkerRef<Probe>,
    events: &crossbeam_channel::Receiver<Event>,
) -> Vec<Event> {
    ask(p, Command::Ping);
    events.try_iter().collect()
}

/// With a manual clock, `send_after`/`send_at` follow the clock: nothing fires until
/// `advance`, and `advance(d)` delivers every timer due by then, in deadline order,
/// before it returns; a deadline already past fires at once.
#[test]
fn a_manual_clock_fires_due_timers_in_deadline_order_when_advanced() {
    let (rt, clock) = manual_runtime();
    let (p, events) = probe(&rt);
    let ms = Duration::from_millis;
    let c = set_timer(&p, "c", ms(30));
    let a = set_timer(&p, "a", ms(10));
    let b = set_timer(&p, "b", ms(20));
    let deadline = rt.now() + ms(1000);
    let Reply::Timer(d) = ask(&p, Command::SendAt("d".into(), deadline)) else {
        panic!("no timer");
    };
    clock.advance(ms(9));
    assert!(reported(&p, &events).is_empty(), "nothing is due yet");
    clock.advance(ms(21));
    assert_eq!(
        reported(&p, &events),
        [
            Event::Timer(a, "a".into()),
            Event::Timer(b, "b".into()),
            Event::Timer(c, "c".into())
        ]
    );
    assert_eq!(clock.pending_timers(), 1);
    clock.advance(ms(970));
    assert_eq!(reported(&p, &events), [Event::Timer(d, "d".into())]);
    // A deadline in the past fires at once.
    let Reply::Timer(past) = ask(&p, Command::SendAt("past".into(), rt.now())) else {
        panic!("no timer");
    };
    assert_eq!(reported(&p, &events), [Event::Timer(past, "past".into())]);
    rt.shutdown(WAIT).unwrap();
}

/// `erlang:cancel_timer/1` and `read_timer/1` on a manual clock give the exact time left.
#[test]
fn cancel_and_read_timer_give_the_exact_time_left_on_a_manual_clock() {
    let (rt, clock) = manual_runtime();
    let (p, events) = probe(&rt);
    let timer = set_timer(&p, "never", Duration::from_secs(100));
    clock.advance(Duration::from_secs(40));
    assert!(matches!(
        ask(&p, Command::ReadTimer(timer)),
        Reply::TimeLeft(Some(left)) if left == Duration::from_secs(60)
    ));
    assert!(matches!(
        ask(&p, Command::CancelTimer(timer)),
        Reply::TimeLeft(Some(left)) if left == Duration::from_secs(60)
    ));
    clock.advance(Duration::from_secs(100));
    assert!(reported(&p, &events).is_empty());
    // A dead worker's timers go with it.
    set_timer(&p, "orphan", Duration::from_secs(1));
    p.stop(otp_threads::ExitReason::Normal, WAIT).unwrap();
    assert_eq!(
        events.try_recv(),
        Ok(Event::Terminated(otp_threads::ExitReason::Normal))
    );
    assert_eq!(clock.pending_timers(), 0);
    rt.shutdown(WAIT).unwrap();
}

/// A call's timeout follows the manual clock: the call waits however long it takes in
/// real time, and times out exactly when the clock reaches its timeout; the late reply
/// is dropped.
#[test]
fn a_call_timeout_follows_the_manual_clock() {
    let (rt, clock) = manual_runtime();
    let (p, _) = probe(&rt);
    let (keeper, tokens) = crossbeam_channel::unbounded();
    let caller = {
        let p = p.clone();
        std::thread::spawn(move || {
            p.call_timeout(Command::KeepReply(keeper), Duration::from_secs(5))
        })
    };
    // The call is in the worker's hands once the token arrives.
    let token = tokens.recv_timeout(WAIT).unwrap();
    clock.advance(Duration::from_millis(4999));
    assert!(
        !caller.is_finished(),
        "not timed out before the clock says so"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        caller.join().unwrap().unwrap_err(),
        otp_threads::Error::Timeout
    );
    assert!(!token.reply(Reply::Ok), "the late reply is dropped");
    assert_eq!(clock.pending_timers(), 0, "the call's timer is gone");
    rt.shutdown(WAIT).unwrap();
}

//! A consumer group member with one supervised worker per partition.
//!
//! Produces a few hundred messages to a new topic of 4 partitions, consumes them with a
//! `GroupConsumer` whose handler crashes once on a "poison" message (its worker is
//! restarted after the restart delay and the message redelivered from the last
//! acknowledgement, while the other partitions go on), prints the member's events and
//! status, and leaves the group.
//!
//! Needs a Kafka-API broker:
//!
//! ```text
//! bash scripts/services/kafka.sh start /tmp/kafka && set -a && . /tmp/kafka/env && set +a
//! cargo run --release -p otp-threads-kafka --example kafka_group
//! bash scripts/services/kafka.sh stop /tmp/kafka
//! ```

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use otp_threads::Runtime;
use otp_threads_kafka::{
    Ack, Assignment, BeginOffset, GroupConfig, GroupConsumer, Handler, Message,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Counts messages; panics once on the payload "poison".
struct Printer {
    assignment: Assignment,
    handled: Arc<AtomicUsize>,
    poisoned: Arc<AtomicBool>,
}

impl Handler for Printer {
    fn init(&mut self, assignment: &Assignment) -> Result<(), Box<dyn std::error::Error>> {
        println!(
            "handler for {}/{} ({}), restart {}, begin offset {:?}",
            assignment.topic,
            assignment.partition,
            assignment.generation,
            assignment.restarts,
            assignment.begin_offset
        );
        Ok(())
    }

    fn handle_messages(&mut self, messages: &[Message]) -> Ack {
        for message in messages {
            if message.payload == Some(&b"poison"[..])
                && !self.poisoned.swap(true, Ordering::SeqCst)
            {
                panic!(
                    "poison at {}/{}@{}",
                    message.topic, message.partition, message.offset
                );
            }
        }
        self.handled.fetch_add(messages.len(), Ordering::SeqCst);
        let (first, last) = (messages[0].offset, messages[messages.len() - 1].offset);
        println!(
            "{}/{}: {} messages, offsets {first}..={last}",
            self.assignment.topic,
            self.assignment.partition,
            messages.len()
        );
        Ack::Ack
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The admin client's futures are completed by librdkafka's thread: park until then.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let brokers = std::env::var("OTP_THREADS_KAFKA_BROKERS")
        .map_err(|_| "set OTP_THREADS_KAFKA_BROKERS (see scripts/services/kafka.sh)")?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let topic = format!("example-{stamp}");
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &brokers);

    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let new = NewTopic::new(&topic, 4, TopicReplication::Fixed(1));
    for result in block_on(admin.create_topics([&new], &AdminOptions::new()))? {
        result.map_err(|(name, code)| format!("creating {name}: {code}"))?;
    }
    let producer: BaseProducer = client.create()?;
    let total = 400;
    for i in 0..total {
        let payload = if i == 123 {
            "poison".to_owned()
        } else {
            format!("message {i}")
        };
        producer
            .send(
                BaseRecord::<(), _>::to(&topic)
                    .partition(i % 4)
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(30))?;

    let runtime = Runtime::new();
    let handled = Arc::new(AtomicUsize::new(0));
    let poisoned = Arc::new(AtomicBool::new(false));
    let factory = {
        let (handled, poisoned) = (handled.clone(), poisoned.clone());
        move |assignment: &Assignment| Printer {
            assignment: assignment.clone(),
            handled: handled.clone(),
            poisoned: poisoned.clone(),
        }
    };
    let config = GroupConfig::new(
        [brokers],
        format!("example-group-{stamp}"),
        [&topic],
        factory,
    )
    .begin_offset(BeginOffset::Earliest)
    .session_timeout(Duration::from_secs(6))
    .max_batch(50);
    let consumer = GroupConsumer::start(&runtime, config)?;

    let deadline = Instant::now() + Duration::from_secs(60);
    while handled.load(Ordering::SeqCst) < total as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "handled {} of {total} messages",
        handled.load(Ordering::SeqCst)
    );
    for event in consumer.events().try_iter() {
        println!("event: {event:?}");
    }
    for worker in consumer.status().partitions {
        println!(
            "worker {}/{}: {}, pid {:?}, restarts {}, latest acknowledged offset {:?}, lag {:?}",
            worker.topic,
            worker.partition,
            worker.generation,
            worker.pid,
            worker.restarts,
            worker.latest_offset,
            worker.lag
        );
    }
    consumer.stop(Duration::from_secs(30))?;
    runtime.shutdown(Duration::from_secs(10))?;
    Ok(())
}

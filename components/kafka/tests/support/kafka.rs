//! Test support for the group consumer tests: the broker's address (the tests fail,
//! not skip, without one), unique topics and groups, producing, reading committed
//! offsets with an independent client, and a recording handler.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use otp_threads_kafka::{
    Ack, Assignment, BeginOffset, GroupConfig, GroupConsumer, Handler, MemberEvent, Message,
};
use otp_threads_testkit::Patience;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

/// Generous bound for anything that should happen "soon" on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// Interval of the bounded poll loops.
pub const POLL: Duration = Duration::from_millis(20);
/// Partitions of every test topic.
pub const PARTITIONS: i32 = 4;

pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// The broker list, set by the Kafka service script.
pub fn brokers() -> String {
    otp_threads_testkit::required_env("OTP_THREADS_KAFKA_BROKERS", "scripts/services/kafka.sh")
}

/// A name no other test (or earlier run) uses.
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{tag}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers());
    config
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread (the admin client's futures are completed
/// by librdkafka's own thread).
pub fn block_on<F: Future>(future: F) -> F::Output {
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

/// Creates a topic with [`PARTITIONS`] partitions and waits until its metadata shows them.
pub fn create_topic(tag: &str) -> String {
    let topic = unique(tag);
    let admin: AdminClient<DefaultClientContext> = client_config().create().expect("admin client");
    let new = NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = block_on(admin.create_topics([&new], &options)).expect("create_topics");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("creating topic {name} failed: {code}"));
    }
    let producer = producer();
    poll_until(
        &format!("metadata of {topic} with {PARTITIONS} partitions"),
        || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .ok()
                .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
        },
        |n| *n == Some(PARTITIONS as usize),
    );
    topic
}

pub fn producer() -> BaseProducer {
    client_config()
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Produces `count` messages to each listed partition, payload `"{partition}-{i}"`.
pub fn produce(topic: &str, partitions: &[i32], count: usize) {
    let producer = producer();
    for i in 0..count {
        for &partition in partitions {
            let payload = format!("{partition}-{i}");
            let mut record = BaseRecord::to(topic)
                .partition(partition)
                .key(&payload)
                .payload(&payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((error, _)) => panic!("producing to {topic}: {error}"),
                }
            }
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(PATIENCE).expect("flush");
}

/// Produces `total` messages spread evenly over all partitions.
pub fn produce_spread(topic: &str, total: usize) {
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    produce(topic, &partitions, total / PARTITIONS as usize);
}

/// The group's committed offset per partition (`None`: nothing committed), read with an
/// independent client that does not join the group.
pub fn committed(group: &str, topic: &str) -> BTreeMap<i32, Option<i64>> {
    let consumer: BaseConsumer = client_config()
        .set("group.id", group)
        .create()
        .expect("offsets client");
    let mut partitions = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        partitions.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .expect("committed offsets");
    offsets
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (e.partition(), offset)
        })
        .collect()
}

/// Commits `offset` for each listed partition in `group`, from an independent client
/// that does not join the group (as an operator's tool would).
pub fn commit_from_outside(group: &str, topic: &str, partitions: &[i32], offset: i64) {
    let consumer: BaseConsumer = client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offsets client");
    let mut list = TopicPartitionList::new();
    for &p in partitions {
        list.add_partition_offset(topic, p, Offset::Offset(offset))
            .expect("offset");
    }
    consumer
        .commit(&list, rdkafka::consumer::CommitMode::Sync)
        .expect("commit from outside");
}

/// Events seen so far on a member's event channel, kept for later assertions.
pub struct Events {
    receiver: crossbeam_channel::Receiver<MemberEvent>,
    pub seen: Vec<MemberEvent>,
}

impl Events {
    pub fn of(consumer: &GroupConsumer) -> Events {
        Events {
            receiver: consumer.events(),
            seen: Vec::new(),
        }
    }

    /// Waits (bounded by [`PATIENCE`]) until the events seen satisfy `pred`; returns them.
    pub fn until(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&[MemberEvent]) -> bool,
    ) -> &[MemberEvent] {
        let receiver = self.receiver.clone();
        let seen = &mut self.seen;
        otp_threads_testkit::poll_until(
            what,
            Patience::new(PATIENCE, POLL),
            || {
                seen.extend(receiver.try_iter());
                pred(seen)
            },
            |held| *held,
        );
        &self.seen
    }
}

/// The first offset handled per partition, from a [`Record`].
pub fn first_handled(record: &Record) -> BTreeMap<i32, i64> {
    let mut firsts = BTreeMap::new();
    for &(partition, offset) in record.handled.lock().unwrap().keys() {
        let first = firsts.entry(partition).or_insert(offset);
        *first = (*first).min(offset);
    }
    firsts
}

/// Samples a value until `pred` holds or [`PATIENCE`] runs out; returns the last value.
pub fn poll_until<T: std::fmt::Debug>(
    what: &str,
    sample: impl FnMut() -> T,
    pred: impl FnMut(&T) -> bool,
) -> T {
    otp_threads_testkit::poll_until(what, Patience::new(PATIENCE, POLL), sample, pred)
}

/// A test member's settings: fast group timing, earliest offsets, quick commits.
pub fn test_config<H: Handler>(
    group: &str,
    topic: &str,
    factory: impl Fn(&Assignment) -> H + Send + Sync + 'static,
) -> GroupConfig {
    GroupConfig::new([brokers()], group, [topic], factory)
        .begin_offset(BeginOffset::Earliest)
        .session_timeout(Duration::from_secs(2))
        .heartbeat_interval(Duration::from_millis(500))
        .commit_interval(Duration::from_millis(200))
        .statistics_interval(Duration::from_millis(200))
        .restart_delay(Duration::from_millis(50), Duration::from_millis(400))
}

/// A handler start's first batch: (partition, restarts, begin offset, first offset).
pub type First = (i32, u32, Option<i64>, i64);

/// What recording handlers saw, shared by all handlers (of all members) of a test.
#[derive(Default)]
pub struct Record {
    /// How many times each (partition, offset) was handled to the end.
    pub handled: Mutex<HashMap<(i32, i64), usize>>,
    /// Batches in progress per partition, across all workers and members.
    in_flight: [AtomicI32; PARTITIONS as usize],
    /// Set if two batches of one partition were ever in progress at once.
    pub overlap: AtomicBool,
    /// Every handler start: (member, assignment).
    pub starts: Mutex<Vec<(&'static str, Assignment)>>,
    /// The first offset each handler start saw: (partition, restarts, begin, first).
    pub firsts: Mutex<Vec<First>>,
}

impl Record {
    pub fn distinct(&self) -> usize {
        self.handled.lock().unwrap().len()
    }

    pub fn total(&self) -> usize {
        self.handled.lock().unwrap().values().sum()
    }

    pub fn duplicates(&self) -> usize {
        self.handled
            .lock()
            .unwrap()
            .values()
            .filter(|&&n| n > 1)
            .count()
    }
}

/// Decides the answer for a batch (and may panic).
pub type Decide = Arc<dyn Fn(&Assignment, &[Message]) -> Ack + Send + Sync>;

/// A handler that records what it handles into a shared [`Record`].
pub struct Recorder {
    pub member: &'static str,
    pub record: Arc<Record>,
    pub assignment: Assignment,
    pub decide: Decide,
    pub first_seen: bool,
}

impl Recorder {
    pub fn factory(
        member: &'static str,
        record: Arc<Record>,
        decide: Decide,
    ) -> impl Fn(&Assignment) -> Recorder + Send + Sync + 'static {
        move |assignment| {
            record
                .starts
                .lock()
                .unwrap()
                .push((member, assignment.clone()));
            Recorder {
                member,
                record: record.clone(),
                assignment: assignment.clone(),
                decide: decide.clone(),
                first_seen: false,
            }
        }
    }
}

/// Acknowledges every batch.
pub fn ack_all() -> Decide {
    Arc::new(|_, _| Ack::Ack)
}

/// Decrements the in-flight count even when the handler panics.
struct InFlight<'a>(&'a AtomicI32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Handler for Recorder {
    fn handle_messages(&mut self, messages: &[Message]) -> Ack {
        let partition = self.assignment.partition;
        let counter = &self.record.in_flight[partition as usize];
        if counter.fetch_add(1, Ordering::SeqCst) != 0 {
            self.record.overlap.store(true, Ordering::SeqCst);
        }
        let _in_flight = InFlight(counter);
        if !self.first_seen {
            self.first_seen = true;
            self.record.firsts.lock().unwrap().push((
                partition,
                self.assignment.restarts,
                self.assignment.begin_offset,
                messages[0].offset,
            ));
        }
        for m in messages {
            assert_eq!(m.partition, partition, "a message of another partition");
        }
        let answer = (self.decide)(&self.assignment, messages);
        let mut handled = self.record.handled.lock().unwrap();
        for m in messages {
            *handled.entry((m.partition, m.offset)).or_default() += 1;
        }
        answer
    }
}

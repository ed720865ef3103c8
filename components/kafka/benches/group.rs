//! Group consumer throughput: messages per second through a [`GroupConsumer`] with a
//! trivial handler (acknowledge every batch), beside a raw librdkafka `BaseConsumer`
//! poll loop (no handler, no commits) reading the same topic with its own group.
//!
//! Both read the same topic of 4 partitions from the start; each rate is taken from the
//! first message to the last (so the group join is not counted). Runs alternate (3
//! rounds by default); each round prints both rates and their ratio, and the end the
//! best of each and the median of the per-round ratios (target: at least 0.8).
//!
//! Needs a Kafka-API broker: `bash scripts/services/kafka.sh start /tmp/kafka && set -a
//! && . /tmp/kafka/env && set +a`, then `cargo bench -p otp-threads-kafka --bench group`
//! (`-- --messages N --rounds R` to change the size).

mod bench {
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::{Duration, Instant};

    use otp_threads::Runtime;
    use otp_threads_kafka::{
        Ack, Assignment, BeginOffset, GroupConfig, GroupConsumer, Handler, Message,
    };
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::types::RDKafkaErrorCode;

    const PARTITIONS: i32 = 4;
    const PATIENCE: Duration = Duration::from_secs(120);

    fn brokers() -> String {
        std::env::var("OTP_THREADS_KAFKA_BROKERS").unwrap_or_else(|_| {
            panic!(
                "OTP_THREADS_KAFKA_BROKERS is not set: start a broker with `bash \
                 scripts/services/kafka.sh start /tmp/kafka && set -a && . /tmp/kafka/env \
                 && set +a`"
            )
        })
    }

    fn unique(tag: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{tag}-{}-{nanos}", std::process::id())
    }

    struct ThreadWaker(std::thread::Thread);

    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

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

    fn client() -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers());
        config
    }

    fn create_and_fill(messages: usize) -> String {
        let topic = unique("bench-group");
        let admin: AdminClient<DefaultClientContext> = client().create().expect("admin");
        let new = NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in block_on(admin.create_topics([&new], &options)).expect("create topic") {
            result.expect("topic created");
        }
        let producer: BaseProducer = client().set("linger.ms", "5").create().expect("producer");
        let payload = [b'x'; 100];
        let started = Instant::now();
        for i in 0..messages {
            let key = i.to_string();
            let mut record = BaseRecord::to(&topic)
                .partition(i as i32 % PARTITIONS)
                .key(&key)
                .payload(&payload[..]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(5));
                    }
                    Err((error, _)) => panic!("produce: {error}"),
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(PATIENCE).expect("flush");
        println!(
            "produced {messages} messages of 100 bytes to {topic} ({PARTITIONS} partitions) in {:.2?}",
            started.elapsed()
        );
        topic
    }

    /// A raw poll loop: messages per second from the first to the last.
    fn raw(topic: &str, messages: usize) -> f64 {
        let consumer: BaseConsumer = client()
            .set("group.id", unique("bench-raw"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1500")
            .set("partition.assignment.strategy", "range,roundrobin")
            .create()
            .expect("raw consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let deadline = Instant::now() + PATIENCE;
        let mut first = None;
        let mut count = 0usize;
        let mut bytes = 0usize;
        while count < messages {
            assert!(Instant::now() < deadline, "raw: only {count} messages");
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    first.get_or_insert_with(Instant::now);
                    bytes += message.payload_len();
                    count += 1;
                }
                Some(Err(error)) => eprintln!("raw poll: {error}"),
                None => {}
            }
        }
        let elapsed = first.unwrap().elapsed();
        std::hint::black_box(bytes);
        consumer.unsubscribe();
        for _ in 0..5 {
            consumer.poll(Duration::from_millis(20));
        }
        messages as f64 / elapsed.as_secs_f64()
    }

    struct Count {
        count: Arc<AtomicUsize>,
        first: Arc<Mutex<Option<Instant>>>,
        bytes: usize,
    }

    impl Handler for Count {
        fn handle_messages(&mut self, messages: &[Message]) -> Ack {
            self.first.lock().unwrap().get_or_insert_with(Instant::now);
            for m in messages {
                self.bytes += m.payload.map_or(0, <[u8]>::len);
            }
            std::hint::black_box(self.bytes);
            self.count.fetch_add(messages.len(), Ordering::Release);
            Ack::Ack
        }
    }

    /// The group consumer: messages per second from the first to the last handled.
    fn group(runtime: &Runtime, topic: &str, messages: usize) -> f64 {
        let count = Arc::new(AtomicUsize::new(0));
        let first = Arc::new(Mutex::new(None));
        let factory = {
            let (count, first) = (count.clone(), first.clone());
            move |_: &Assignment| Count {
                count: count.clone(),
                first: first.clone(),
                bytes: 0,
            }
        };
        let config = GroupConfig::new([brokers()], unique("bench-group"), [topic], factory)
            .begin_offset(BeginOffset::Earliest)
            .session_timeout(Duration::from_secs(6));
        let consumer = GroupConsumer::start(runtime, config).expect("group consumer");
        let deadline = Instant::now() + PATIENCE;
        while count.load(Ordering::Acquire) < messages {
            assert!(
                Instant::now() < deadline,
                "group: only {} messages",
                count.load(Ordering::Acquire)
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        let elapsed = first.lock().unwrap().unwrap().elapsed();
        consumer.stop(PATIENCE).expect("stop");
        messages as f64 / elapsed.as_secs_f64()
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().collect();
        let arg = |name: &str, default: usize| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let messages = arg("--messages", 200_000);
        let rounds = arg("--rounds", 3).max(1);
        let topic = create_and_fill(messages);
        let runtime = Runtime::new();
        let (mut best_raw, mut best_group) = (0f64, 0f64);
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            let r = raw(&topic, messages);
            let g = group(&runtime, &topic, messages);
            println!(
                "round {round}: raw BaseConsumer {r:>9.0} msg/s, GroupConsumer {g:>9.0} msg/s, \
                 ratio {:.2}",
                g / r
            );
            best_raw = best_raw.max(r);
            best_group = best_group.max(g);
            ratios.push(g / r);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "best of {rounds}: raw BaseConsumer {best_raw:.0} msg/s, GroupConsumer {best_group:.0} \
             msg/s, ratio of the bests {:.2}, median round ratio {:.2} (target >= 0.8)",
            best_group / best_raw,
            ratios[ratios.len() / 2]
        );
        runtime.shutdown(PATIENCE).expect("shutdown");
    }
}

fn main() {
    bench::main();
}

//! The emulator's cost per request, beside a raw baseline in the same run.
//!
//! - `emulator/readrecords`: one `readrecords` round trip over loopback HTTP/1.1
//!   (keep-alive) to the emulator, for a stream channel with nothing new: the emulator
//!   parses the request, checks its signature and content MD5, looks the channel up
//!   and answers no records and the same token (the poll of an idle reader).
//! - `raw_listener/readrecords`: the same request from the same `TunnelClient` (same
//!   signing, same pooled keep-alive connection) to a bare `std::net::TcpListener`
//!   with one thread per connection that reads the request head and body and writes
//!   back a canned response of the same size (the same headers and the emulator's
//!   own response body), doing nothing else.
//!
//! The ratio emulator / raw of the time per round trip is printed, from rounds that
//! alternate the two so that a noisy neighbour hurts both alike. Run briefly with
//! `cargo bench -p otp-threads-tablestore-emulator --bench emulator -- --quick`.

use std::hint::black_box;
use std::time::SystemTime;

use criterion::Criterion;
use otp_threads_tablestore::client::{TunnelClient, TunnelClientConfig};
use otp_threads_tablestore::proto::TunnelType;
use otp_threads_tablestore::sign;
use otp_threads_tablestore_emulator::{Emulator, EmulatorConfig};
use otp_threads_testkit::raw_http::{Connections, RawListener, paired_rounds};
use prost::Message;

const ROUNDS: usize = 5;
const CALLS_PER_ROUND: usize = 2_000;

/// What a reader sends on an idle stream channel.
struct Poll {
    tunnel_id: String,
    client_id: String,
    channel_id: String,
    token: String,
}

impl Poll {
    /// One `readrecords` round trip; returns the response body's size.
    fn call(&self, client: &TunnelClient) -> usize {
        let reply = client
            .read_records(
                &self.tunnel_id,
                &self.client_id,
                &self.channel_id,
                &self.token,
            )
            .expect("readrecords");
        assert!(reply.message.records.is_empty());
        reply.body_len
    }
}

fn client(endpoint: &str) -> TunnelClient {
    TunnelClient::new(TunnelClientConfig::new(endpoint, "bench", "akid", "secret")).expect("client")
}

/// An emulator with an empty stream tunnel and a connected client, and the poll of
/// its first channel; also the emulator's response body for that poll.
fn idle_channel(emulator: &Emulator, client: &TunnelClient) -> (Poll, Vec<u8>) {
    let tunnel_id = emulator
        .create_tunnel("orders", "bench", TunnelType::Stream)
        .expect("create tunnel");
    let client_id = client.connect(&tunnel_id, None).expect("connect").client_id;
    let channels = client
        .heartbeat(&tunnel_id, &client_id, vec![])
        .expect("heartbeat")
        .channels;
    let channel_id = channels[0].channel_id.clone();
    let token = client
        .get_checkpoint(&tunnel_id, &client_id, &channel_id)
        .expect("getcheckpoint")
        .checkpoint;
    let poll = Poll {
        tunnel_id,
        client_id,
        channel_id,
        token,
    };
    let body = client
        .read_records(
            &poll.tunnel_id,
            &poll.client_id,
            &poll.channel_id,
            &poll.token,
        )
        .expect("readrecords")
        .message
        .encode_to_vec();
    (poll, body)
}

/// A 200 response laid out as the emulator's (same headers, same lengths) around
/// `body`.
fn canned_response(body: &[u8]) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\
         {}: {}\r\n{}: emulator-{:016x}\r\nconnection: keep-alive\r\n\r\n",
        body.len(),
        sign::HEADER_DATE,
        sign::format_date(SystemTime::now()),
        sign::HEADER_REQUEST_ID,
        0x1234_u64,
    );
    let mut response = head.into_bytes();
    response.extend_from_slice(body);
    response
}

/// Mean time per round trip over `calls` calls.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let emulator = Emulator::start(EmulatorConfig::new("bench", "akid", "secret")).unwrap();
    let to_emulator = client(emulator.endpoint());
    let (poll, body) = idle_channel(&emulator, &to_emulator);
    let raw = RawListener::start(canned_response(&body), Connections::KeepAlive);
    let to_raw = client(&format!("http://{}", raw.address()));
    assert_eq!(poll.call(&to_raw), body.len(), "the same body from both");

    let mut group = criterion.benchmark_group("readrecords");
    group.bench_function("emulator", |b| b.iter(|| poll.call(&to_emulator)));
    group.bench_function("raw_listener", |b| b.iter(|| poll.call(&to_raw)));
    group.finish();

    let figures = paired_rounds(
        ROUNDS,
        CALLS_PER_ROUND,
        || {
            black_box(poll.call(&to_emulator));
        },
        || {
            black_box(poll.call(&to_raw));
        },
        |run, e, r| {
            println!(
                "round {run}: emulator {e:.2?}/call, raw listener {r:.2?}/call, ratio {:.2}",
                e.as_secs_f64() / r.as_secs_f64()
            )
        },
    );
    let (e, r) = (figures.ours, figures.raw);
    println!(
        "readrecords round trip (idle stream channel, {} byte body, keep-alive, loopback): \
         emulator median {e:.2?}, raw listener median {r:.2?}; ratio emulator / raw {:.2} \
         (median of {ROUNDS} paired rounds of {CALLS_PER_ROUND} calls; {:.2} from the medians)",
        body.len(),
        figures.ratio,
        e.as_secs_f64() / r.as_secs_f64()
    );
    drop(to_raw);
    drop(raw);
    drop(to_emulator);
    emulator.stop();
    criterion.final_summary();
}

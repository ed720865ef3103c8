//! Fuzz-style tests of the emulator's decoders of untrusted bytes: the HTTP request
//! head parser and the request dispatch (every protobuf request decoder and handler),
//! with random inputs and mutations of valid ones, from fixed seeds. Any panic fails
//! the test, naming the input. 300,000 inputs (the tunnel crate's `tests/fuzz.rs`
//! adds 850,000 to the PlainBuffer, protobuf, token and signature decoders).

use std::time::{Duration, Instant};

use prost::Message;

use crate::http::{head_end, parse_head};
use crate::state::{State, StateConfig};
use otp_threads_tablestore::client::{
    URI_CHECKPOINT, URI_CONNECT, URI_CREATE, URI_DELETE, URI_DESCRIBE, URI_GET_CHECKPOINT,
    URI_HEARTBEAT, URI_LIST, URI_READ_RECORDS, URI_SHUTDOWN,
};
use otp_threads_tablestore::plainbuffer::{ColumnChange, PkValue, Row, RowChange, Value};
use otp_threads_tablestore::proto::{self, ChannelStatus, TunnelType};
use otp_threads_testkit::fuzz::{Mutator, Rng, no_panic};

fn run(name: &str, seeds: &[Vec<u8>], alphabet: &[u8], count: usize, mut f: impl FnMut(&[u8])) {
    let mut rng = Rng::new(0x853C_49E6_748F_EA9B ^ name.len() as u64);
    let mutator = Mutator::new(seeds)
        .alphabet(alphabet)
        .random_one_in(10)
        .max_len(1 << 16);
    for index in 0..count {
        let input = mutator.next_input(&mut rng);
        no_panic(name, index, &input, &mut f);
    }
}

#[test]
fn the_http_head_parser_never_panics_on_random_and_mutated_heads() {
    let seeds: Vec<Vec<u8>> = [
        "POST /tunnel/readrecords HTTP/1.1\r\nHost: 127.0.0.1:1\r\nContent-Length: 12\r\nx-ots-date: 2024-01-01T00:00:00.000Z\r\n\r\n",
        "POST /tunnel/list?x=1#f HTTP/1.0\r\nconnection: keep-alive\r\nexpect: 100-continue\r\ncontent-length: 0\r\n\r\n",
        "GET / HTTP/1.1\r\nConnection: close\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n",
        "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut parsed = 0usize;
    run(
        "parse_head",
        &seeds,
        b"\r\n: /HTP1.0-9\t",
        200_000,
        |input| {
            let _ = head_end(input);
            if parse_head(input).is_ok() {
                parsed += 1;
            }
        },
    );
    assert!(parsed > 0, "some mutations must still parse");
}

#[test]
fn request_dispatch_never_panics_on_random_and_mutated_bodies() {
    let mut state = State::new(StateConfig {
        instance_name: "inst".into(),
        channels_per_tunnel: 2,
        max_records_per_read: 5,
        heartbeat_timeout: Duration::from_secs(3600),
    });
    let tunnel_id = state
        .create_tunnel(proto::Tunnel {
            table_name: "t".into(),
            tunnel_name: "n".into(),
            tunnel_type: TunnelType::BaseAndStream as i32,
            stream_tunnel_config: None,
            need_all_time_series_columns: None,
        })
        .unwrap();
    let row = |i: i64| Row {
        primary_key: vec![("id".into(), PkValue::Integer(i))],
        kind: RowChange::Put,
        columns: vec![ColumnChange::Put {
            name: "v".into(),
            value: Value::Integer(i),
            timestamp: None,
        }],
        sequence: None,
    };
    state.write("t", (0..20).map(row).collect()).unwrap();
    let now = Instant::now();
    let connect = proto::ConnectRequest {
        tunnel_id: tunnel_id.clone(),
        client_config: None,
    }
    .encode_to_vec();
    let client_id = proto::ConnectResponse::decode(
        state
            .dispatch(URI_CONNECT, &connect, now)
            .unwrap()
            .as_slice(),
    )
    .unwrap()
    .client_id;
    let channels = state.channels(&tunnel_id).unwrap();
    let (channel_id, token) = (
        channels[0].channel_id.clone(),
        channels[0].checkpoint.token.clone(),
    );
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (URI_CONNECT, connect),
        (
            URI_HEARTBEAT,
            proto::HeartbeatRequest {
                tunnel_id: tunnel_id.clone(),
                client_id: client_id.clone(),
                channels: vec![proto::Channel::new(&channel_id, 1, ChannelStatus::Open)],
            }
            .encode_to_vec(),
        ),
        (
            URI_READ_RECORDS,
            proto::ReadRecordsRequest {
                tunnel_id: tunnel_id.clone(),
                client_id: client_id.clone(),
                channel_id: channel_id.clone(),
                token: token.clone(),
            }
            .encode_to_vec(),
        ),
        (
            URI_CHECKPOINT,
            proto::CheckpointRequest {
                tunnel_id: tunnel_id.clone(),
                client_id: client_id.clone(),
                channel_id: channel_id.clone(),
                checkpoint: token,
                sequence_number: 1,
            }
            .encode_to_vec(),
        ),
        (
            URI_GET_CHECKPOINT,
            proto::GetCheckpointRequest {
                tunnel_id: tunnel_id.clone(),
                client_id: client_id.clone(),
                channel_id,
            }
            .encode_to_vec(),
        ),
        (
            URI_DESCRIBE,
            proto::DescribeTunnelRequest {
                table_name: "t".into(),
                tunnel_name: "n".into(),
                tunnel_id: None,
            }
            .encode_to_vec(),
        ),
        (
            URI_LIST,
            proto::ListTunnelRequest { table_name: None }.encode_to_vec(),
        ),
    ];
    let uris = [
        URI_CONNECT,
        URI_HEARTBEAT,
        URI_READ_RECORDS,
        URI_CHECKPOINT,
        URI_GET_CHECKPOINT,
        URI_DESCRIBE,
        URI_LIST,
        URI_CREATE,
        URI_DELETE,
        URI_SHUTDOWN,
        "/tunnel/unknown",
    ];
    let bodies: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let mut rng = Rng::new(0x2F6B_1E3A_9C4D_5E7F);
    let mut n = 0usize;
    run(
        "dispatch",
        &bodies,
        &[0x0a, 0x10, 0x12, 0x18, 0x1a, 0x22, 0x28, 0xff],
        100_000,
        |body| {
            // Mostly to the URI the body was made for, sometimes to any other.
            let uri = if rng.below(4) == 0 {
                uris[rng.below(uris.len())]
            } else {
                seeds[n % seeds.len()].0
            };
            n += 1;
            // Creating and deleting tunnels is fine; shutting the client down is too
            // (later requests then meet an unknown client).
            let _ = state.dispatch(uri, body, now);
        },
    );
}

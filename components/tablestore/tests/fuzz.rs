//! Fuzz-style tests of every decoder of untrusted bytes in the crate: the PlainBuffer
//! row decoder, the protobuf messages a client or the emulator decodes, read tokens,
//! the record decoder of the worker (through its public pieces) and request
//! signature verification. Random inputs and mutations of valid ones (bit flips,
//! byte sets, insertions, deletions, duplications, truncations, splices, "interesting"
//! integers at random offsets), from a fixed seed so a failure reproduces. Any panic
//! fails the test, naming the decoder and the input in hex.
//!
//! 850,000 inputs here; the emulator's suite adds its HTTP head parser and request
//! dispatch (`http::tests`, `state::tests`).

use prost::Message;

use otp_threads_tablestore::plainbuffer::{
    self, ColumnChange, PkValue, Row, RowChange, SequenceInfo, Value,
};
use otp_threads_tablestore::proto::{self, ActionType, ChannelStatus};
use otp_threads_tablestore::{sign, token};
use otp_threads_testkit::fuzz::{Mutator, Rng, no_panic};

/// Feed `count` inputs to `decode`: a tenth random, the rest mutated seeds (with
/// little-endian integer fields, as PlainBuffer writes them). Returns how many ran;
/// fails the test, naming the input, on any panic.
fn fuzz(
    name: &str,
    seeds: &[Vec<u8>],
    count: usize,
    rng: &mut Rng,
    mut decode: impl FnMut(&[u8]),
) -> usize {
    let mutator = Mutator::new(seeds)
        .little_endian()
        .random_one_in(10)
        .max_len(1 << 16);
    for index in 0..count {
        let input = mutator.next_input(rng);
        no_panic(name, index, &input, &mut decode);
    }
    count
}

fn rows() -> Vec<Row> {
    let pk = vec![
        ("shard".to_owned(), PkValue::Integer(-3)),
        ("id".to_owned(), PkValue::String("order-ä-1".into())),
        ("raw".to_owned(), PkValue::Binary(vec![0, 0xff, 7])),
    ];
    let put = |name: &str, value| ColumnChange::Put {
        name: name.into(),
        value,
        timestamp: Some(1_700_000_000_000),
    };
    vec![
        Row {
            primary_key: pk.clone(),
            kind: RowChange::Put,
            columns: vec![
                put("i", Value::Integer(i64::MIN)),
                put("d", Value::Double(-0.5)),
                put("b", Value::Boolean(true)),
                put("s", Value::String("ü".into())),
                put("x", Value::Binary(vec![1, 2, 3])),
                put("n", Value::Null),
            ],
            sequence: Some(SequenceInfo {
                epoch: 1,
                timestamp: 1_700_000_000_000_000,
                row_index: 9,
            }),
        },
        Row {
            primary_key: pk.clone(),
            kind: RowChange::Update,
            columns: vec![
                ColumnChange::DeleteOneVersion {
                    name: "a".into(),
                    timestamp: Some(5),
                },
                ColumnChange::DeleteAllVersions { name: "b".into() },
                ColumnChange::Increment {
                    name: "c".into(),
                    delta: 7,
                    timestamp: None,
                },
            ],
            sequence: None,
        },
        Row {
            primary_key: vec![("k".into(), PkValue::InfMin), ("l".into(), PkValue::InfMax)],
            kind: RowChange::Delete,
            columns: Vec::new(),
            sequence: None,
        },
    ]
}

#[test]
fn the_plainbuffer_decoder_never_panics_on_random_and_mutated_rows() {
    let seeds: Vec<Vec<u8>> = rows().iter().map(plainbuffer::encode_row).collect();
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut decoded = 0usize;
    let n = fuzz("decode_row", &seeds, 300_000, &mut rng, |input| {
        if plainbuffer::decode_row(input).is_ok() {
            decoded += 1;
        }
    });
    let m = fuzz("decode_record", &seeds, 100_000, &mut rng, |input| {
        let _ = plainbuffer::decode_record(ActionType::UpdateRow, input);
    });
    assert_eq!(n + m, 400_000);
    // the mutations are not all rejected at the first byte
    assert!(decoded > 0, "no mutated row decoded at all");
}

fn channel(id: &str, version: i64, status: ChannelStatus) -> proto::Channel {
    let mut ch = proto::Channel::new(id, version, status);
    ch.detail = Some(vec![1, 2, 3]);
    ch
}

/// Valid encodings of every message, to mutate.
fn message_seeds() -> Vec<Vec<u8>> {
    let record = plainbuffer::encode_row(&rows()[0]);
    let tunnel_info = proto::TunnelInfo {
        tunnel_id: "tid".into(),
        tunnel_type: "Stream".into(),
        table_name: "t".into(),
        instance_name: "i".into(),
        stream_id: "s".into(),
        stage: "ProcessStream".into(),
        expired: Some(false),
        tunnel_name: Some("n".into()),
        public: Some(true),
        stream_tunnel_config: Some(proto::StreamTunnelConfig {
            flag: Some(1),
            start_offset: Some(u64::MAX),
            end_offset: Some(0),
        }),
        create_time: Some(i64::MIN),
    };
    vec![
        proto::Error {
            code: "OTSServerBusy".into(),
            message: Some("m".into()),
            tunnel_id: Some("t".into()),
        }
        .encode_to_vec(),
        proto::ConnectResponse {
            client_id: "c".into(),
        }
        .encode_to_vec(),
        proto::HeartbeatResponse {
            channels: vec![
                channel("a", i64::MAX, ChannelStatus::Open),
                channel("b", -1, ChannelStatus::Closing),
            ],
        }
        .encode_to_vec(),
        proto::GetCheckpointResponse {
            checkpoint: "tok".into(),
            sequence_number: i64::MAX,
        }
        .encode_to_vec(),
        proto::ReadRecordsResponse {
            records: vec![proto::Record {
                action_type: 2,
                record: record.clone(),
                origin_record: Some(record),
            }],
            next_token: "finished".into(),
            may_more_record: Some(true),
        }
        .encode_to_vec(),
        proto::DescribeTunnelResponse {
            tunnel: tunnel_info.clone(),
            channels: vec![proto::ChannelInfo {
                channel_id: "c".into(),
                channel_type: Some("Stream".into()),
                channel_status: Some("OPEN".into()),
                client_id: Some("x".into()),
                channel_rpo: Some(1),
                channel_count: Some(2),
            }],
            tunnel_rpo: Some(3),
        }
        .encode_to_vec(),
        proto::ListTunnelResponse {
            tunnels: vec![tunnel_info],
        }
        .encode_to_vec(),
        proto::HeartbeatRequest {
            tunnel_id: "t".into(),
            client_id: "c".into(),
            channels: vec![channel("a", 0, ChannelStatus::Close)],
        }
        .encode_to_vec(),
        proto::CheckpointRequest {
            tunnel_id: "t".into(),
            client_id: "c".into(),
            channel_id: "ch".into(),
            checkpoint: "tok".into(),
            sequence_number: 7,
        }
        .encode_to_vec(),
        proto::ConnectRequest {
            tunnel_id: "t".into(),
            client_config: Some(proto::ClientConfig {
                timeout: Some(300),
                client_tag: Some("tag".into()),
            }),
        }
        .encode_to_vec(),
        proto::Token {
            version: 2,
            content: proto::TokenContentV2 {
                primary_key: Some(vec![1, 2]),
                iterator: Some("it".into()),
                timestamp: Some(1),
                total_count: Some(i64::MAX),
            }
            .encode_to_vec(),
        }
        .encode_to_vec(),
    ]
}

/// Decode `input` as every message type; all must return, none may panic.
fn decode_every_message(input: &[u8]) {
    let _ = proto::Error::decode(input);
    let _ = proto::ConnectResponse::decode(input);
    let _ = proto::HeartbeatResponse::decode(input).map(|r| {
        for ch in r.channels {
            let _ = ChannelStatus::try_from(ch.status);
        }
    });
    let _ = proto::GetCheckpointResponse::decode(input);
    let _ = proto::ReadRecordsResponse::decode(input).map(|r| {
        for rec in r.records {
            let _ = ActionType::try_from(rec.action_type);
            let _ = plainbuffer::decode_row(&rec.record);
            let _ = rec.origin_record.as_deref().map(plainbuffer::decode_row);
        }
    });
    let _ = proto::CheckpointResponse::decode(input);
    let _ = proto::ShutdownResponse::decode(input);
    let _ = proto::CreateTunnelResponse::decode(input);
    let _ = proto::DescribeTunnelResponse::decode(input);
    let _ = proto::ListTunnelResponse::decode(input);
    let _ = proto::HeartbeatRequest::decode(input);
    let _ = proto::CheckpointRequest::decode(input);
    let _ = proto::ConnectRequest::decode(input);
    let _ = proto::ReadRecordsRequest::decode(input);
    let _ = proto::GetCheckpointRequest::decode(input);
    let _ = proto::CreateTunnelRequest::decode(input);
    let _ = proto::Token::decode(input);
    let _ = proto::TokenContent::decode(input);
    let _ = proto::TokenContentV2::decode(input);
}

#[test]
fn the_protobuf_decoders_never_panic_on_random_and_mutated_messages() {
    let seeds = message_seeds();
    let mut rng = Rng::new(0xD1B5_4A32_D192_ED03);
    let n = fuzz("protobuf", &seeds, 300_000, &mut rng, decode_every_message);
    assert_eq!(n, 300_000);
}

#[test]
fn tokens_and_signature_checks_never_panic_on_random_and_mutated_input() {
    let content = proto::TokenContentV2 {
        primary_key: Some(plainbuffer::encode_row(&rows()[2])),
        iterator: Some("emulator:c:5".into()),
        timestamp: Some(0),
        total_count: Some(5),
    };
    let seeds: Vec<Vec<u8>> = vec![
        token::encode_token_v2(&content).into_bytes(),
        b"CAISIQoddQAAAAEDBAMAAABrZXkFBgAAAAMBAAAANQogCa4gAA==".to_vec(),
        b"finished".to_vec(),
    ];
    let mut rng = Rng::new(0x94D0_49BB_1331_11EB);
    let n = fuzz("parse_token", &seeds, 100_000, &mut rng, |input| {
        let text = String::from_utf8_lossy(input);
        let _ = token::parse_token(&text);
        let _ = token::is_stream_token(&text);
    });
    // Signed requests with mutated header values and bodies.
    let credentials = sign::Credentials {
        access_key_id: "akid".into(),
        access_key_secret: "secret".into(),
        sts_token: None,
    };
    let body = b"\x0a\x02t1".to_vec();
    let headers = sign::request_headers(
        "/tunnel/connect",
        &body,
        "inst",
        &credentials,
        "2024-01-01T00:00:00.000Z",
    );
    let signed: Vec<u8> = headers
        .iter()
        .flat_map(|(n, v)| format!("{n}:{v}\n").into_bytes())
        .collect();
    let m = fuzz("verify_request", &[signed], 50_000, &mut rng, |input| {
        let text = String::from_utf8_lossy(input);
        let headers: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let _ = sign::verify_request("/tunnel/connect", &headers, input, |id| {
            (id == "akid").then(|| "secret".to_owned())
        });
    });
    assert_eq!(n + m, 150_000);
}

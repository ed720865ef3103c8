//! Fuzz-style robustness test (no nightly) of the request parser: random and mutated
//! request heads through `request::parse`, then a share of them over TCP to the
//! running server. Zero panics allowed; every malformed head is answered `400`, and
//! the server keeps serving.
//!
//! Rule ported: the project rule "every decoder of untrusted bytes has a fuzz-style
//! test"; RFC 9112, section 2.2: a server that receives an invalid request line or
//! header answers 400 (Bad Request).

#[path = "support/http.rs"]
mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use otp_threads::Runtime;
use otp_threads_observer_web::request::{self, MAX_HEAD, MAX_HEADERS};
use otp_threads_observer_web::{Error, ObserverWeb};
use otp_threads_testkit::WAIT;
use otp_threads_testkit::fuzz::Rng;
use support::{exchange_raw, get};

/// Inputs through the parser.
const PARSER_INPUTS: usize = 200_000;
/// Inputs over TCP (each a connection).
const SERVER_INPUTS: usize = 400;

const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\r",
    b"\n",
    b" ",
    b":",
    b"\t",
    b"\0",
    b"\x7f",
    b"\xff",
    b"/",
    b"?",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"Host: x\r\n",
    b"Content-Length: 5\r\n",
    b"\r\n\r\n",
    b"%00",
    b"\xc3\xa9",
];

fn corpus() -> Vec<Vec<u8>> {
    let mut corpus: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        b"GET /snapshot.json?x=1 HTTP/1.1\r\nHost: 127.0.0.1:80\r\nAccept: */*\r\n\r\n".to_vec(),
        b"HEAD /tree.txt HTTP/1.0\r\n\r\n".to_vec(),
        b"GET /index.html HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0 (X11)\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ];
    let many_headers: String = (0..MAX_HEADERS + 1)
        .map(|n| format!("X-{n}: v\r\n"))
        .collect();
    corpus.push(format!("GET / HTTP/1.1\r\nHost: a\r\n{many_headers}\r\n").into_bytes());
    corpus
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                let at = rng.below(input.len() + 1);
                input.splice(at..at, piece.iter().copied());
            }
            2 if !input.is_empty() => {
                let i = rng.below(input.len());
                input.remove(i);
            }
            3 if !input.is_empty() => {
                let len = rng.below(input.len());
                input.truncate(len);
            }
            4 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next_u64() as u8;
            }
            5 => {
                // Splice in part of another corpus entry.
                let other = &corpus[rng.below(corpus.len())];
                let start = rng.below(other.len());
                let end = start + rng.below(other.len() - start + 1);
                let at = rng.below(input.len() + 1);
                input.splice(at..at, other[start..end].iter().copied());
            }
            _ => {
                // A run of one byte, sometimes past the head limit.
                let at = rng.below(input.len() + 1);
                let run = if rng.below(8) == 0 {
                    MAX_HEAD
                } else {
                    rng.below(64)
                };
                let byte = *INTERESTING[rng.below(INTERESTING.len())]
                    .first()
                    .unwrap_or(&b'a');
                input.splice(at..at, std::iter::repeat_n(byte, run));
            }
        }
    }
}

fn input(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(4) {
        // Random bytes.
        0 => (0..rng.below(256)).map(|_| rng.next_u64() as u8).collect(),
        _ => {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(rng, corpus, &mut input);
            input
        }
    }
}

/// What the parser promises for any input.
fn check(input: &[u8]) -> Result<Option<usize>, Error> {
    let parsed = catch_unwind(AssertUnwindSafe(|| request::parse(input))).unwrap_or_else(|_| {
        panic!(
            "the parser panicked on {:?}",
            String::from_utf8_lossy(input)
        )
    });
    match parsed {
        Ok(Some((request, len))) => {
            assert!(len <= input.len() && len <= MAX_HEAD);
            assert!(request.path.starts_with('/'));
            assert!(request.headers.len() <= MAX_HEADERS);
            // The head alone parses to the same request.
            assert_eq!(request::parse(&input[..len]).unwrap(), Some((request, len)));
            Ok(Some(len))
        }
        Ok(None) => {
            assert!(input.len() < MAX_HEAD, "an incomplete head past the limit");
            Ok(None)
        }
        Err(error) => {
            assert!(matches!(error, Error::MalformedRequest(_)));
            Err(error)
        }
    }
}

#[test]
fn random_and_mutated_request_heads_never_panic_the_parser() {
    let corpus = corpus();
    let mut rng = Rng::new(0x5eed_0b5e_7e40_0001);
    let (mut complete, mut incomplete, mut malformed) = (0, 0, 0);
    for input in &corpus {
        check(input).ok();
    }
    for _ in 0..PARSER_INPUTS {
        match check(&input(&mut rng, &corpus)) {
            Ok(Some(_)) => complete += 1,
            Ok(None) => incomplete += 1,
            Err(_) => malformed += 1,
        }
    }
    // The mutations reach every outcome.
    assert!(
        complete > 1000 && incomplete > 1000 && malformed > 1000,
        "{complete} complete, {incomplete} incomplete, {malformed} malformed"
    );
}

#[test]
fn random_and_mutated_requests_over_tcp_get_400_and_the_server_keeps_serving() {
    let corpus = corpus();
    let rt = Runtime::new();
    let web = ObserverWeb::builder().start(&rt.handle()).unwrap();
    let mut rng = Rng::new(0x5eed_0b5e_7e40_0002);
    let mut bad_requests = 0;
    for _ in 0..SERVER_INPUTS {
        let input = input(&mut rng, &corpus);
        let expected = check(&input);
        let response = exchange_raw(web.address(), &input);
        let shown = String::from_utf8_lossy(&input);
        match expected {
            Err(_) => {
                assert!(
                    response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                    "{shown:?} -> {response:?}"
                );
                bad_requests += 1;
            }
            // The client closed before a whole head: nothing to answer.
            Ok(None) => assert_eq!(response, "", "{shown:?}"),
            Ok(Some(_)) => assert!(
                ["200", "404", "405"]
                    .iter()
                    .any(|code| response.starts_with(&format!("HTTP/1.1 {code} "))),
                "{shown:?} -> {response:?}"
            ),
        }
    }
    assert!(bad_requests > 50, "{bad_requests}");
    assert_eq!(get(web.address(), "/snapshot.json").0, 200);
    web.stop();
    rt.shutdown(WAIT).unwrap();
}

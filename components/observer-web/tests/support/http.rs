//! Helpers shared by the web view's tests: a raw HTTP exchange over TCP.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use otp_threads_testkit::WAIT;

/// Sends `request` as is, then reads the whole response (the server closes each
/// connection after one response): the status code and the text.
pub fn exchange(address: SocketAddr, request: &[u8]) -> (u16, String) {
    let text = exchange_raw(address, request);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {text:?}"));
    (status, text)
}

/// Sends `request` as is and returns whatever comes back, until the server closes.
pub fn exchange_raw(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).expect("the web view accepts");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    // The server may answer (and stop reading) before a long request is all written.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("the web view answers within the bound");
    String::from_utf8_lossy(&response).into_owned()
}

/// `GET path` as a browser sends it.
pub fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: */*\r\n\r\n");
    exchange(address, request.as_bytes())
}

/// The body of a response.
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

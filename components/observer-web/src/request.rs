//! The HTTP/1.1 request parser (RFC 9112), for the few requests the web view serves.
//!
//! Contract: [`parse`] takes the bytes read from a connection so far and gives
//! `Ok(None)` while the request head (request line, header lines, blank line) is
//! incomplete, the request once it is complete, or [`Error::MalformedRequest`] for
//! anything that is not a valid HTTP/1.0 or 1.1 request head — never a panic, for any
//! input. It allocates at most [`MAX_HEAD`] bytes' worth. The server answers a
//! malformed request with `400 Bad Request`. Lines end with CRLF; a request body is
//! rejected (the web view only serves `GET` and `HEAD`); an HTTP/1.1 request needs
//! exactly one `Host` header.

use crate::Error;

/// The longest request head accepted, blank line included.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most header lines accepted.
pub const MAX_HEADERS: usize = 64;

/// The protocol version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent (methods are case-sensitive).
    pub method: String,
    /// The target's path (origin form, starting with `/`), without the query.
    pub path: String,
    /// The query after `?`, if any.
    pub query: Option<String>,
    /// The version.
    pub version: Version,
    /// The header fields, names lower-cased, values without surrounding whitespace.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

fn malformed(reason: &'static str) -> Error {
    Error::MalformedRequest(reason)
}

/// Parses the request head at the start of `buffer`: the request and the head's
/// length in bytes, `None` if more bytes are needed, or why it is malformed.
pub fn parse(buffer: &[u8]) -> Result<Option<(Request, usize)>, Error> {
    let Some(head_len) = head_length(buffer)? else {
        return Ok(None);
    };
    // The head without the CRLF that ends its last line and the blank line's CRLF.
    let mut lines = crlf_lines(&buffer[..head_len - 4]);
    let request_line = lines.next().ok_or(malformed("no request line"))??;
    let (method, path, query, version) = request_line_parts(request_line)?;
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == MAX_HEADERS {
            return Err(malformed("more than 64 header lines"));
        }
        headers.push(header_line(line?)?);
    }
    let request = Request {
        method,
        path,
        query,
        version,
        headers,
    };
    check_host(&request)?;
    check_no_body(&request)?;
    Ok(Some((request, head_len)))
}

/// The length of the head (up to and including the blank line), once it is all there.
fn head_length(buffer: &[u8]) -> Result<Option<usize>, Error> {
    let window = &buffer[..buffer.len().min(MAX_HEAD)];
    if let Some(at) = window.windows(4).position(|four| four == b"\r\n\r\n") {
        return Ok(Some(at + 4));
    }
    // A robustness rule of RFC 9112 (2.2): empty lines before the request line may be
    // ignored; none are accepted here, so a request starting with CRLF is malformed.
    if window.starts_with(b"\r\n") {
        return Err(malformed("empty line before the request line"));
    }
    if buffer.len() >= MAX_HEAD {
        return Err(malformed("request head longer than 8 KiB"));
    }
    Ok(None)
}

/// The lines of `head`, split at each CRLF; a bare CR or LF in a line is malformed.
fn crlf_lines(head: &[u8]) -> impl Iterator<Item = Result<&[u8], Error>> {
    let mut rest = Some(head);
    std::iter::from_fn(move || {
        let text = rest?;
        let line = match text.windows(2).position(|two| two == b"\r\n") {
            Some(at) => {
                rest = Some(&text[at + 2..]);
                &text[..at]
            }
            None => {
                rest = None;
                text
            }
        };
        if line.iter().any(|&byte| byte == b'\r' || byte == b'\n') {
            return Some(Err(malformed("a bare CR or LF in a line")));
        }
        Some(Ok(line))
    })
}

type RequestLine = (String, String, Option<String>, Version);

fn request_line_parts(line: &[u8]) -> Result<RequestLine, Error> {
    let mut parts = line.split(|&byte| byte == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "the request line is not `METHOD SP TARGET SP VERSION`",
        ));
    };
    if method.is_empty() || !method.iter().all(|&byte| is_token_byte(byte)) {
        return Err(malformed("the method is not a token"));
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        _ => return Err(malformed("not HTTP/1.0 or HTTP/1.1")),
    };
    let (path, query) = target_parts(target)?;
    Ok((ascii(method)?, path, query, version))
}

/// The origin form `/path?query` (RFC 9112, 3.2.1): visible ASCII only.
fn target_parts(target: &[u8]) -> Result<(String, Option<String>), Error> {
    if target.first() != Some(&b'/') {
        return Err(malformed("the target does not start with `/`"));
    }
    if !target.iter().all(|&byte| (0x21..=0x7e).contains(&byte)) {
        return Err(malformed(
            "the target holds a byte that is not visible ASCII",
        ));
    }
    let text = ascii(target)?;
    match text.split_once('?') {
        Some((path, query)) => Ok((path.to_owned(), Some(query.to_owned()))),
        None => Ok((text, None)),
    }
}

fn header_line(line: &[u8]) -> Result<(String, String), Error> {
    let colon = line
        .iter()
        .position(|&byte| byte == b':')
        .ok_or(malformed("a header line has no `:`"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // No whitespace between the name and the colon (RFC 9112, 5.1).
    if name.is_empty() || !name.iter().all(|&byte| is_token_byte(byte)) {
        return Err(malformed("a header name is not a token"));
    }
    if value
        .iter()
        .any(|&byte| byte == 0x7f || (byte < 0x20 && byte != b'\t'))
    {
        return Err(malformed("a header value holds a control character"));
    }
    let value = value.trim_ascii();
    // Values outside ASCII (obs-text) are kept, as lossy UTF-8: only names are used.
    Ok((
        ascii(name)?.to_ascii_lowercase(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

fn check_host(request: &Request) -> Result<(), Error> {
    let hosts = request
        .headers
        .iter()
        .filter(|(name, _)| name == "host")
        .count();
    match (request.version, hosts) {
        (_, 2..) => Err(malformed("more than one Host header")),
        (Version::Http11, 0) => Err(malformed("an HTTP/1.1 request without a Host header")),
        _ => Ok(()),
    }
}

fn check_no_body(request: &Request) -> Result<(), Error> {
    if request.header("transfer-encoding").is_some() {
        return Err(malformed(
            "a request body (Transfer-Encoding) is not accepted",
        ));
    }
    match request.header("content-length") {
        None | Some("0") => Ok(()),
        Some(_) => Err(malformed("a request body (Content-Length) is not accepted")),
    }
}

/// `tchar` of RFC 9110, 5.6.2.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn ascii(bytes: &[u8]) -> Result<String, Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => Ok(text.to_owned()),
        _ => Err(malformed("not ASCII")),
    }
}

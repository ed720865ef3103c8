//! Channel read tokens.
//!
//! A token is `base64(Token{version, content})` (standard alphabet, padded).
//! Version 1 content is a [`TokenContent`], version 2 a [`TokenContentV2`].
//! A channel is a *stream* channel when its token's `iterator` is non-empty
//! (base-data tokens carry a primary key instead). The special token
//! [`FINISH_TOKEN`] (`"finished"`) marks a channel that has been read to its
//! end; it is not base64 of a `Token` and is never parsed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost::Message as _;

use super::error::TunnelError;
use super::proto::{Token, TokenContent, TokenContentV2};

/// The token that marks a fully read channel.
pub const FINISH_TOKEN: &str = "finished";

/// True when `token` is absent, empty, or [`FINISH_TOKEN`]: there is nothing
/// more to read.
pub fn is_finished(token: Option<&str>) -> bool {
    matches!(token, None | Some("") | Some(FINISH_TOKEN))
}

/// A decoded token.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedToken {
    /// The token format version (1 or 2).
    pub version: i64,
    /// The content; version 1 content is widened to the version 2 shape
    /// (`total_count: None`).
    pub content: TokenContentV2,
}

impl ParsedToken {
    /// True when the content carries a non-empty stream iterator.
    pub fn is_stream(&self) -> bool {
        self.content
            .iterator
            .as_deref()
            .is_some_and(|it| !it.is_empty())
    }
}

/// Decode a token string.
///
/// Errors ([`TunnelError::InvalidToken`]) for: bad base64, bytes that are
/// not a `Token` message, an unknown version, or content that does not
/// decode as that version's message.
pub fn parse_token(token: &str) -> Result<ParsedToken, TunnelError> {
    let invalid = |reason: String| TunnelError::InvalidToken { reason };
    let bytes = BASE64
        .decode(token.trim())
        .map_err(|e| invalid(format!("not base64: {e}")))?;
    let outer = Token::decode(bytes.as_slice())
        .map_err(|e| invalid(format!("not a Token message: {e}")))?;
    let content = match outer.version {
        1 => {
            let v1 = TokenContent::decode(outer.content.as_slice())
                .map_err(|e| invalid(format!("bad version 1 content: {e}")))?;
            TokenContentV2 {
                primary_key: v1.primary_key,
                iterator: v1.iterator,
                timestamp: v1.timestamp,
                total_count: None,
            }
        }
        2 => TokenContentV2::decode(outer.content.as_slice())
            .map_err(|e| invalid(format!("bad version 2 content: {e}")))?,
        other => return Err(invalid(format!("unsupported token version {other}"))),
    };
    Ok(ParsedToken {
        version: outer.version,
        content,
    })
}

/// True when `token` parses and carries a non-empty stream iterator; false
/// for base-data tokens, [`FINISH_TOKEN`], and anything unparsable.
pub fn is_stream_token(token: &str) -> bool {
    parse_token(token).is_ok_and(|t| t.is_stream())
}

/// Encode a token (the emulator's side of [`parse_token`]): version 2 content
/// wrapped in a version 2 `Token`, base64-encoded.
pub fn encode_token_v2(content: &TokenContentV2) -> String {
    let outer = Token {
        version: 2,
        content: content.encode_to_vec(),
    };
    BASE64.encode(outer.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plainbuffer::{self, PkValue};

    const STREAM_V2: &str = "CAISmwESlAFHWFJsYzNSZmRIaHVYekUxTlRRek5EZzJOREV6TWprME1qRTFORGczTTJGbE5UUXRNRFZrTUMwME9XSTVMV0kwTkRBdE1ESTBNamMzTWpnd09HSXhYekUxTlRRek5EZzJOREV6TWprME1qRWNBUUFBQUFBQUFBQTNsZ0FBQUFBQUFBQUFBQUQvLy8vLy8vLy9mNEU9GAAgAA==";
    const BASE_V2: &str = "CAISIQoddQAAAAEDBAMAAABrZXkFBgAAAAMBAAAANQogCa4gAA==";

    #[test]
    fn base_data_token_is_version_2_without_iterator() {
        let t = parse_token(BASE_V2).unwrap();
        assert_eq!(t.version, 2);
        assert_eq!(t.content.iterator, None);
        assert_eq!(t.content.total_count, Some(0));
        assert!(!t.is_stream());
        assert!(!is_stream_token(BASE_V2));
        // the primary key is a PlainBuffer key `key = "5"`
        let pk = plainbuffer::decode_row(t.content.primary_key.as_deref().unwrap()).unwrap();
        assert_eq!(
            pk.primary_key,
            vec![("key".to_owned(), PkValue::String("5".into()))]
        );
    }

    #[test]
    fn stream_token_has_an_iterator() {
        let t = parse_token(STREAM_V2).unwrap();
        assert_eq!(t.version, 2);
        assert_eq!(t.content.iterator.as_ref().map(String::len), Some(148));
        assert!(is_stream_token(STREAM_V2));
    }

    #[test]
    fn invalid_tokens() {
        assert!(!is_stream_token("ZmFrZXRva2Vu"));
        assert!(matches!(
            parse_token("ZmFrZXRva2Vu"),
            Err(TunnelError::InvalidToken { .. })
        ));
        assert!(!is_stream_token("faketoken"));
        assert!(parse_token("faketoken").is_err());
        assert!(!is_stream_token(FINISH_TOKEN));
        assert!(!is_stream_token(""));
        // a well-formed Token with an unknown version
        let v9 = BASE64.encode(
            Token {
                version: 9,
                content: vec![],
            }
            .encode_to_vec(),
        );
        assert!(
            parse_token(&v9)
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
    }

    #[test]
    fn version_1_content_is_widened() {
        let content = TokenContent {
            primary_key: None,
            iterator: Some("it".into()),
            timestamp: Some(5),
        };
        let token = BASE64.encode(
            Token {
                version: 1,
                content: content.encode_to_vec(),
            }
            .encode_to_vec(),
        );
        let t = parse_token(&token).unwrap();
        assert_eq!(t.version, 1);
        assert_eq!(t.content.iterator.as_deref(), Some("it"));
        assert_eq!(t.content.total_count, None);
        assert!(t.is_stream());
    }

    #[test]
    fn encode_round_trip() {
        let content = TokenContentV2 {
            primary_key: None,
            iterator: Some("shard-1:42".into()),
            timestamp: Some(1),
            total_count: Some(10),
        };
        let token = encode_token_v2(&content);
        assert_eq!(parse_token(&token).unwrap().content, content);
        assert!(is_stream_token(&token));
    }

    #[test]
    fn finish_detection() {
        assert!(is_finished(None));
        assert!(is_finished(Some("")));
        assert!(is_finished(Some(FINISH_TOKEN)));
        assert!(!is_finished(Some(BASE_V2)));
    }
}

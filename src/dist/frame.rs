//! Frames of a connected channel: a u32 big-endian length, then that many bytes. A
//! zero-length frame is a tick (keep-alive).
//!
//! The reader checks the announced length against a limit before allocating, so an
//! oversized frame is [`DistError::FrameTooLarge`], never an allocation of that size.

use std::io::{Read, Write};

use super::error::DistError;

/// The default frame size limit: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// One frame read from a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// An empty frame: the peer is alive.
    Tick,
    /// A frame body (a pass-through message: tag 112, control term, payload).
    Data(Vec<u8>),
}

/// Reads one frame of at most `limit` bytes.
pub fn read_frame(reader: &mut impl Read, limit: usize) -> Result<Frame, DistError> {
    let mut body = Vec::new();
    Ok(match read_frame_into(reader, limit, &mut body)? {
        true => Frame::Data(body),
        false => Frame::Tick,
    })
}

/// [`read_frame`] into `body`, whose allocation is reused from frame to frame (the
/// reader thread's loop): `true` with the body, `false` for a tick (`body` empty).
pub fn read_frame_into(
    reader: &mut impl Read,
    limit: usize,
    body: &mut Vec<u8>,
) -> Result<bool, DistError> {
    body.clear();
    let mut header = [0u8; 4];
    reader.read_exact(&mut header)?;
    let size = u32::from_be_bytes(header);
    if size == 0 {
        return Ok(false);
    }
    let len = match usize::try_from(size) {
        Ok(len) if len <= limit => len,
        _ => {
            return Err(DistError::FrameTooLarge {
                size: u64::from(size),
                limit,
            });
        }
    };
    body.resize(len, 0);
    reader.read_exact(body)?;
    Ok(true)
}

/// Writes one frame with `body` (which must not be empty: that would be a tick).
pub fn write_frame(writer: &mut impl Write, body: &[u8]) -> Result<(), DistError> {
    let size = u32::try_from(body.len())
        .map_err(|_| DistError::malformed("frame", "body longer than 4 GiB"))?;
    if size == 0 {
        return Err(DistError::malformed("frame", "an empty body is a tick"));
    }
    writer.write_all(&size.to_be_bytes())?;
    writer.write_all(body)?;
    Ok(())
}

/// Writes a tick.
pub fn write_tick(writer: &mut impl Write) -> Result<(), DistError> {
    writer.write_all(&[0, 0, 0, 0])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_ticks_round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").unwrap();
        write_tick(&mut wire).unwrap();
        let mut reader = &wire[..];
        assert_eq!(
            read_frame(&mut reader, 16).unwrap(),
            Frame::Data(b"hello".to_vec())
        );
        assert_eq!(read_frame(&mut reader, 16).unwrap(), Frame::Tick);
    }

    #[test]
    fn an_oversized_frame_is_an_error_before_any_allocation() {
        let wire = [0xff, 0xff, 0xff, 0xff];
        match read_frame(&mut &wire[..], 1024) {
            Err(DistError::FrameTooLarge { size, limit }) => {
                assert_eq!((size, limit), (u32::MAX as u64, 1024));
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
    }
}

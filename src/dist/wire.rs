//! A bounds-checked reader over peer bytes: every read says what it was reading, so a
//! short input is a [`DistError::Truncated`] naming the field, never a panic.

use super::error::DistError;

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Cursor<'a> {
        Cursor {
            bytes,
            position: 0,
            what,
        }
    }

    /// The whole input, read part included.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub(crate) fn take(&mut self, count: usize) -> Result<&'a [u8], DistError> {
        if count > self.remaining() {
            return Err(DistError::Truncated { what: self.what });
        }
        let start = self.position;
        self.position += count;
        Ok(&self.bytes[start..self.position])
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.position..];
        self.position = self.bytes.len();
        rest
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DistError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DistError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DistError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DistError> {
        let b = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(b);
        Ok(u64::from_be_bytes(array))
    }

    /// A UTF-8 string of `len` bytes.
    pub(crate) fn string(&mut self, len: usize) -> Result<String, DistError> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DistError::malformed(self.what, "name is not UTF-8"))
    }
}

/// Appends a u16 length prefix and `body`; the body must fit in 65535 bytes.
pub(crate) fn with_u16_length(body: &[u8]) -> Result<Vec<u8>, DistError> {
    let len = u16::try_from(body.len())
        .map_err(|_| DistError::malformed("message", "longer than 65535 bytes"))?;
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// Appends a u16-length-prefixed string.
pub(crate) fn push_u16_string(out: &mut Vec<u8>, text: &str) -> Result<(), DistError> {
    let len = u16::try_from(text.len())
        .map_err(|_| DistError::malformed("name", "longer than 65535 bytes"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// Reads one u16-length-prefixed message (at most 65535 bytes, so bounded).
pub(crate) fn read_u16_message(reader: &mut impl std::io::Read) -> Result<Vec<u8>, std::io::Error> {
    let mut len = [0u8; 2];
    reader.read_exact(&mut len)?;
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    reader.read_exact(&mut body)?;
    Ok(body)
}

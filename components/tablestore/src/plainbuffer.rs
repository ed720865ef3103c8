//! PlainBuffer: Tablestore's row encoding, used for tunnel records.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! row    := HEADER(u32 = 0x75) ROW_PK cell* [ROW_DATA cell*] [DELETE_ROW_MARKER]
//!           [EXTENSION len:u32 SEQ_INFO len:u32 EPOCH i32 TS i64 ROW_INDEX i32]
//!           ROW_CHECKSUM crc:u8
//! cell   := CELL CELL_NAME len:u32 name [CELL_VALUE len:u32 type:u8 payload]
//!           [CELL_TYPE op:u8] [CELL_TIMESTAMP i64] CELL_CHECKSUM crc:u8
//! ```
//!
//! Checksums are CRC-8 (polynomial 0x07, initial value 0). A cell's checksum
//! covers the name bytes, the value (type byte, then the 32-bit length and
//! bytes of strings/blobs, or the 64-bit integer / double bits, or the boolean
//! byte), the timestamp, then the op byte — note: timestamp *before* op, the
//! reverse of their order on the wire. The row checksum folds each cell's
//! checksum (primary key cells, then data cells), then the delete marker byte
//! (1 or 0); the extension is not covered.
//!
//! [`decode_record`] / [`decode_row`] turn bytes into a typed [`Row`];
//! [`encode_row`] is their inverse (used by the emulator to produce records).
//! Decoding never panics: any malformed input is a [`PlainBufferError`].

use super::proto::ActionType;

/// PlainBuffer header word.
pub const HEADER: u32 = 0x75;

/// Tag: start of the primary key cells.
pub const TAG_ROW_PK: u8 = 0x01;
/// Tag: start of the attribute cells.
pub const TAG_ROW_DATA: u8 = 0x02;
/// Tag: start of a cell.
pub const TAG_CELL: u8 = 0x03;
/// Tag: cell name.
pub const TAG_CELL_NAME: u8 = 0x04;
/// Tag: cell value.
pub const TAG_CELL_VALUE: u8 = 0x05;
/// Tag: cell operation.
pub const TAG_CELL_TYPE: u8 = 0x06;
/// Tag: cell timestamp.
pub const TAG_CELL_TIMESTAMP: u8 = 0x07;
/// Tag: the row is deleted.
pub const TAG_DELETE_ROW_MARKER: u8 = 0x08;
/// Tag: row checksum.
pub const TAG_ROW_CHECKSUM: u8 = 0x09;
/// Tag: cell checksum.
pub const TAG_CELL_CHECKSUM: u8 = 0x0A;
/// Tag: row extension (sequence info).
pub const TAG_EXTENSION: u8 = 0x0B;
/// Tag: sequence info inside the extension.
pub const TAG_SEQ_INFO: u8 = 0x0C;
/// Tag: sequence info epoch.
pub const TAG_SEQ_INFO_EPOCH: u8 = 0x0D;
/// Tag: sequence info timestamp.
pub const TAG_SEQ_INFO_TS: u8 = 0x0E;
/// Tag: sequence info row index.
pub const TAG_SEQ_INFO_ROW_INDEX: u8 = 0x0F;

/// Value type: 64-bit integer.
pub const VT_INTEGER: u8 = 0x00;
/// Value type: 64-bit float.
pub const VT_DOUBLE: u8 = 0x01;
/// Value type: boolean byte.
pub const VT_BOOLEAN: u8 = 0x02;
/// Value type: UTF-8 string.
pub const VT_STRING: u8 = 0x03;
/// Value type: null.
pub const VT_NULL: u8 = 0x06;
/// Value type: bytes.
pub const VT_BLOB: u8 = 0x07;
/// Value type: primary key lower bound.
pub const VT_INF_MIN: u8 = 0x09;
/// Value type: primary key upper bound.
pub const VT_INF_MAX: u8 = 0x0A;
/// Value type: auto-increment primary key placeholder.
pub const VT_AUTO_INCREMENT: u8 = 0x0B;

/// Cell op: delete all versions of the column.
pub const OP_DELETE_ALL_VERSION: u8 = 0x01;
/// Cell op: delete one version (the cell's timestamp) of the column.
pub const OP_DELETE_ONE_VERSION: u8 = 0x03;
/// Cell op: atomic increment.
pub const OP_INCREMENT: u8 = 0x04;

// ---------------------------------------------------------------- CRC-8

const fn crc8_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let mut x = i as u8;
        let mut bit = 0;
        while bit < 8 {
            x = if x & 0x80 != 0 {
                (x << 1) ^ 0x07
            } else {
                x << 1
            };
            bit += 1;
        }
        table[i] = x;
        i += 1;
    }
    table
}

static CRC8_TABLE: [u8; 256] = crc8_table();

/// CRC-8 (poly 0x07) of one byte, continuing from `crc`.
pub fn crc8_u8(crc: u8, byte: u8) -> u8 {
    CRC8_TABLE[(crc ^ byte) as usize]
}

/// CRC-8 of bytes, continuing from `crc`.
pub fn crc8_bytes(crc: u8, bytes: &[u8]) -> u8 {
    bytes.iter().fold(crc, |c, &b| crc8_u8(c, b))
}

/// CRC-8 of a 32-bit integer's little-endian bytes.
pub fn crc8_i32(crc: u8, v: i32) -> u8 {
    crc8_bytes(crc, &v.to_le_bytes())
}

/// CRC-8 of a 64-bit integer's little-endian bytes.
pub fn crc8_i64(crc: u8, v: i64) -> u8 {
    crc8_bytes(crc, &v.to_le_bytes())
}

// ---------------------------------------------------------------- types

/// A primary key column value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PkValue {
    /// 64-bit integer.
    Integer(i64),
    /// UTF-8 string.
    String(String),
    /// Bytes.
    Binary(Vec<u8>),
    /// Lower bound (range queries only).
    InfMin,
    /// Upper bound (range queries only).
    InfMax,
    /// Auto-increment placeholder (writes only).
    AutoIncrement,
}

/// An attribute column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// 64-bit integer.
    Integer(i64),
    /// 64-bit float.
    Double(f64),
    /// Boolean.
    Boolean(bool),
    /// UTF-8 string.
    String(String),
    /// Bytes.
    Binary(Vec<u8>),
    /// Null.
    Null,
}

/// What happened to the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowChange {
    /// `PUT_ROW`: the row was written whole.
    Put,
    /// `UPDATE_ROW`: some columns were put or deleted.
    Update,
    /// `DELETE_ROW`: the row was deleted.
    Delete,
}

impl RowChange {
    /// The tunnel record action type of this change.
    pub fn action_type(self) -> ActionType {
        match self {
            RowChange::Put => ActionType::PutRow,
            RowChange::Update => ActionType::UpdateRow,
            RowChange::Delete => ActionType::DeleteRow,
        }
    }
}

impl From<ActionType> for RowChange {
    fn from(a: ActionType) -> Self {
        match a {
            ActionType::PutRow => RowChange::Put,
            ActionType::UpdateRow => RowChange::Update,
            ActionType::DeleteRow => RowChange::Delete,
        }
    }
}

/// One attribute column change.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnChange {
    /// The column was set to `value` (at `timestamp`, ms, when given).
    Put {
        /// Column name.
        name: String,
        /// New value.
        value: Value,
        /// Version timestamp (ms).
        timestamp: Option<i64>,
    },
    /// One version (the one at `timestamp`) of the column was deleted.
    DeleteOneVersion {
        /// Column name.
        name: String,
        /// The deleted version (ms); the service always sends it.
        timestamp: Option<i64>,
    },
    /// All versions of the column were deleted.
    DeleteAllVersions {
        /// Column name.
        name: String,
    },
    /// The column was atomically incremented by `delta`.
    Increment {
        /// Column name.
        name: String,
        /// The increment.
        delta: i64,
        /// Version timestamp (ms), when given.
        timestamp: Option<i64>,
    },
}

impl ColumnChange {
    /// The column's name.
    pub fn name(&self) -> &str {
        match self {
            ColumnChange::Put { name, .. }
            | ColumnChange::DeleteOneVersion { name, .. }
            | ColumnChange::DeleteAllVersions { name }
            | ColumnChange::Increment { name, .. } => name,
        }
    }
}

/// The position of a stream record, ordered by (epoch, timestamp, row index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SequenceInfo {
    /// Epoch.
    pub epoch: i32,
    /// Timestamp (µs).
    pub timestamp: i64,
    /// Index within the timestamp.
    pub row_index: i32,
}

/// A decoded row change.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Primary key columns, in table order.
    pub primary_key: Vec<(String, PkValue)>,
    /// Put, update or delete.
    pub kind: RowChange,
    /// Attribute column changes, in record order (empty for deletes).
    pub columns: Vec<ColumnChange>,
    /// Stream position, present on stream records.
    pub sequence: Option<SequenceInfo>,
}

/// Why a PlainBuffer could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlainBufferError {
    /// The buffer ended early.
    #[error("plainbuffer truncated at offset {offset}: need {needed} more bytes")]
    Truncated {
        /// Where the read started.
        offset: usize,
        /// How many bytes were needed.
        needed: usize,
    },
    /// The header word is not 0x75.
    #[error("bad plainbuffer header {0:#x}")]
    BadHeader(u32),
    /// A tag other than the expected one.
    #[error("unexpected tag {found:#04x} at offset {offset}, expected {expected}")]
    UnexpectedTag {
        /// Offset of the tag byte.
        offset: usize,
        /// What the decoder expected.
        expected: &'static str,
        /// The byte found.
        found: u8,
    },
    /// Unknown value type byte.
    #[error("unknown value type {found:#04x} at offset {offset}")]
    UnknownValueType {
        /// Offset of the type byte.
        offset: usize,
        /// The byte found.
        found: u8,
    },
    /// Unknown cell op byte.
    #[error("unknown cell operation {found:#04x} for column {column:?}")]
    UnknownCellOp {
        /// The column.
        column: String,
        /// The byte found.
        found: u8,
    },
    /// The value's declared length disagrees with its payload.
    #[error("value length mismatch at offset {offset}: declared {declared}, payload uses {used}")]
    ValueLength {
        /// Offset of the value.
        offset: usize,
        /// Declared length.
        declared: usize,
        /// Length the payload actually used.
        used: usize,
    },
    /// A name or string is not UTF-8.
    #[error("invalid UTF-8 at offset {offset}")]
    InvalidUtf8 {
        /// Offset of the bytes.
        offset: usize,
    },
    /// A cell checksum does not match.
    #[error(
        "cell checksum mismatch for column {column:?}: stored {stored:#04x}, computed {computed:#04x}"
    )]
    CellChecksum {
        /// The column.
        column: String,
        /// The checksum in the buffer.
        stored: u8,
        /// The checksum of the decoded cell.
        computed: u8,
    },
    /// The row checksum does not match.
    #[error("row checksum mismatch: stored {stored:#04x}, computed {computed:#04x}")]
    RowChecksum {
        /// The checksum in the buffer.
        stored: u8,
        /// The checksum of the decoded row.
        computed: u8,
    },
    /// A primary key cell is malformed (no value, a non-key value type, or an
    /// operation).
    #[error("invalid primary key column {column:?}: {reason}")]
    InvalidPrimaryKey {
        /// The column.
        column: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An attribute cell is malformed (e.g. a put without a value).
    #[error("invalid attribute column {column:?}: {reason}")]
    InvalidColumn {
        /// The column.
        column: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Bytes after the row checksum.
    #[error("{count} trailing bytes after the row at offset {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many extra bytes.
        count: usize,
    },
}

// ---------------------------------------------------------------- decoding

/// The value of a cell, before deciding whether it is a key or an attribute.
#[derive(Clone, Debug, PartialEq)]
enum CellValue {
    Integer(i64),
    Double(f64),
    Boolean(bool),
    String(String),
    Binary(Vec<u8>),
    Null,
    InfMin,
    InfMax,
    AutoIncrement,
}

impl CellValue {
    fn crc(&self, crc: u8) -> u8 {
        match self {
            CellValue::Integer(v) => crc8_i64(crc8_u8(crc, VT_INTEGER), *v),
            CellValue::Double(v) => crc8_i64(crc8_u8(crc, VT_DOUBLE), v.to_bits() as i64),
            CellValue::Boolean(v) => crc8_u8(crc8_u8(crc, VT_BOOLEAN), u8::from(*v)),
            CellValue::String(s) => crc_len_bytes(crc8_u8(crc, VT_STRING), s.as_bytes()),
            CellValue::Binary(b) => crc_len_bytes(crc8_u8(crc, VT_BLOB), b),
            CellValue::Null => crc8_u8(crc, VT_NULL),
            CellValue::InfMin => crc8_u8(crc, VT_INF_MIN),
            CellValue::InfMax => crc8_u8(crc, VT_INF_MAX),
            CellValue::AutoIncrement => crc8_u8(crc, VT_AUTO_INCREMENT),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(TAG_CELL_VALUE);
        let write_len_bytes = |out: &mut Vec<u8>, ty: u8, bytes: &[u8]| {
            put_u32(out, 1 + 4 + bytes.len() as u32);
            out.push(ty);
            put_u32(out, bytes.len() as u32);
            out.extend_from_slice(bytes);
        };
        match self {
            CellValue::Integer(v) => {
                put_u32(out, 9);
                out.push(VT_INTEGER);
                out.extend_from_slice(&v.to_le_bytes());
            }
            CellValue::Double(v) => {
                put_u32(out, 9);
                out.push(VT_DOUBLE);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            CellValue::Boolean(v) => {
                put_u32(out, 2);
                out.push(VT_BOOLEAN);
                out.push(u8::from(*v));
            }
            CellValue::String(s) => write_len_bytes(out, VT_STRING, s.as_bytes()),
            CellValue::Binary(b) => write_len_bytes(out, VT_BLOB, b),
            CellValue::Null => {
                put_u32(out, 1);
                out.push(VT_NULL);
            }
            CellValue::InfMin => {
                put_u32(out, 1);
                out.push(VT_INF_MIN);
            }
            CellValue::InfMax => {
                put_u32(out, 1);
                out.push(VT_INF_MAX);
            }
            CellValue::AutoIncrement => {
                put_u32(out, 1);
                out.push(VT_AUTO_INCREMENT);
            }
        }
    }
}

fn crc_len_bytes(crc: u8, bytes: &[u8]) -> u8 {
    crc8_bytes(crc8_i32(crc, bytes.len() as i32), bytes)
}

/// A raw cell as found in the buffer.
#[derive(Debug)]
struct Cell {
    name: String,
    value: Option<CellValue>,
    op: Option<u8>,
    timestamp: Option<i64>,
}

impl Cell {
    fn crc(&self) -> u8 {
        let mut crc = crc8_bytes(0, self.name.as_bytes());
        if let Some(v) = &self.value {
            crc = v.crc(crc);
        }
        if let Some(ts) = self.timestamp {
            crc = crc8_i64(crc, ts);
        }
        if let Some(op) = self.op {
            crc = crc8_u8(crc, op);
        }
        crc
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(TAG_CELL);
        out.push(TAG_CELL_NAME);
        put_u32(out, self.name.len() as u32);
        out.extend_from_slice(self.name.as_bytes());
        if let Some(v) = &self.value {
            v.write(out);
        }
        if let Some(op) = self.op {
            out.push(TAG_CELL_TYPE);
            out.push(op);
        }
        if let Some(ts) = self.timestamp {
            out.push(TAG_CELL_TIMESTAMP);
            out.extend_from_slice(&ts.to_le_bytes());
        }
        out.push(TAG_CELL_CHECKSUM);
        out.push(self.crc());
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PlainBufferError> {
        if n > self.remaining() {
            return Err(PlainBufferError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn u8(&mut self) -> Result<u8, PlainBufferError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, PlainBufferError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn i32(&mut self) -> Result<i32, PlainBufferError> {
        Ok(self.u32()? as i32)
    }

    fn i64(&mut self) -> Result<i64, PlainBufferError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(b))
    }

    fn expect_tag(&mut self, tag: u8, expected: &'static str) -> Result<(), PlainBufferError> {
        let offset = self.pos;
        let found = self.u8()?;
        if found != tag {
            return Err(PlainBufferError::UnexpectedTag {
                offset,
                expected,
                found,
            });
        }
        Ok(())
    }

    /// Consume `tag` if it is next.
    fn eat(&mut self, tag: u8) -> bool {
        if self.peek() == Some(tag) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A u32 length, then a reader limited to that many bytes (offsets stay
    /// relative to the whole buffer); `self` skips past them.
    fn sub(&mut self) -> Result<Reader<'a>, PlainBufferError> {
        let (offset, bytes) = self.len_bytes()?;
        Ok(Reader {
            buf: &self.buf[..offset + bytes.len()],
            pos: offset,
        })
    }

    /// A u32 length followed by that many bytes.
    fn len_bytes(&mut self) -> Result<(usize, &'a [u8]), PlainBufferError> {
        let len = self.u32()? as usize;
        let offset = self.pos;
        Ok((offset, self.take(len)?))
    }
}

fn utf8(offset: usize, bytes: &[u8]) -> Result<String, PlainBufferError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| PlainBufferError::InvalidUtf8 { offset })
}

fn read_value(r: &mut Reader<'_>) -> Result<CellValue, PlainBufferError> {
    let mut v = r.sub()?;
    let offset = v.pos;
    let ty = v.u8()?;
    let value = match ty {
        VT_INTEGER => CellValue::Integer(v.i64()?),
        VT_DOUBLE => CellValue::Double(f64::from_bits(v.i64()? as u64)),
        VT_BOOLEAN => CellValue::Boolean(v.u8()? != 0),
        VT_STRING => {
            let (o, s) = v.len_bytes()?;
            CellValue::String(utf8(o, s)?)
        }
        VT_BLOB => CellValue::Binary(v.len_bytes()?.1.to_vec()),
        VT_NULL => CellValue::Null,
        VT_INF_MIN => CellValue::InfMin,
        VT_INF_MAX => CellValue::InfMax,
        VT_AUTO_INCREMENT => CellValue::AutoIncrement,
        found => return Err(PlainBufferError::UnknownValueType { offset, found }),
    };
    if v.remaining() != 0 {
        return Err(PlainBufferError::ValueLength {
            offset,
            declared: v.buf.len() - offset,
            used: v.pos - offset,
        });
    }
    Ok(value)
}

/// Read one cell; the `CELL` tag has already been consumed.
fn read_cell(r: &mut Reader<'_>) -> Result<Cell, PlainBufferError> {
    r.expect_tag(TAG_CELL_NAME, "CELL_NAME")?;
    let (name_offset, name) = r.len_bytes()?;
    let name = utf8(name_offset, name)?;
    let value = if r.eat(TAG_CELL_VALUE) {
        Some(read_value(r)?)
    } else {
        None
    };
    let op = if r.eat(TAG_CELL_TYPE) {
        Some(r.u8()?)
    } else {
        None
    };
    let timestamp = if r.eat(TAG_CELL_TIMESTAMP) {
        Some(r.i64()?)
    } else {
        None
    };
    r.expect_tag(TAG_CELL_CHECKSUM, "CELL_CHECKSUM")?;
    let stored = r.u8()?;
    let cell = Cell {
        name,
        value,
        op,
        timestamp,
    };
    let computed = cell.crc();
    if stored != computed {
        return Err(PlainBufferError::CellChecksum {
            column: cell.name,
            stored,
            computed,
        });
    }
    Ok(cell)
}

fn read_cells(r: &mut Reader<'_>) -> Result<Vec<Cell>, PlainBufferError> {
    let mut cells = Vec::new();
    while r.eat(TAG_CELL) {
        cells.push(read_cell(r)?);
    }
    Ok(cells)
}

fn read_extension(r: &mut Reader<'_>) -> Result<SequenceInfo, PlainBufferError> {
    let mut ext = r.sub()?;
    ext.expect_tag(TAG_SEQ_INFO, "SEQ_INFO")?;
    let mut seq = ext.sub()?;
    seq.expect_tag(TAG_SEQ_INFO_EPOCH, "SEQ_INFO_EPOCH")?;
    let epoch = seq.i32()?;
    seq.expect_tag(TAG_SEQ_INFO_TS, "SEQ_INFO_TS")?;
    let timestamp = seq.i64()?;
    seq.expect_tag(TAG_SEQ_INFO_ROW_INDEX, "SEQ_INFO_ROW_INDEX")?;
    let row_index = seq.i32()?;
    // Later format versions may append fields to either level; they are
    // skipped (the enclosing lengths bound them).
    Ok(SequenceInfo {
        epoch,
        timestamp,
        row_index,
    })
}

fn to_pk(cell: Cell) -> Result<(String, PkValue), PlainBufferError> {
    let invalid = |column: String, reason| PlainBufferError::InvalidPrimaryKey { column, reason };
    if cell.op.is_some() {
        return Err(invalid(cell.name, "a key cell cannot carry an operation"));
    }
    let value = match cell.value {
        None => return Err(invalid(cell.name, "missing value")),
        Some(CellValue::Integer(v)) => PkValue::Integer(v),
        Some(CellValue::String(s)) => PkValue::String(s),
        Some(CellValue::Binary(b)) => PkValue::Binary(b),
        Some(CellValue::InfMin) => PkValue::InfMin,
        Some(CellValue::InfMax) => PkValue::InfMax,
        Some(CellValue::AutoIncrement) => PkValue::AutoIncrement,
        Some(_) => return Err(invalid(cell.name, "value type not allowed in a key")),
    };
    Ok((cell.name, value))
}

fn to_column(cell: Cell) -> Result<ColumnChange, PlainBufferError> {
    let invalid = |column: String, reason| PlainBufferError::InvalidColumn { column, reason };
    let name = cell.name;
    let timestamp = cell.timestamp;
    match cell.op {
        None => {
            let value = match cell.value {
                None => return Err(invalid(name, "a put cell needs a value")),
                Some(CellValue::Integer(v)) => Value::Integer(v),
                Some(CellValue::Double(v)) => Value::Double(v),
                Some(CellValue::Boolean(v)) => Value::Boolean(v),
                Some(CellValue::String(s)) => Value::String(s),
                Some(CellValue::Binary(b)) => Value::Binary(b),
                Some(CellValue::Null) => Value::Null,
                Some(_) => return Err(invalid(name, "key-only value type in an attribute")),
            };
            Ok(ColumnChange::Put {
                name,
                value,
                timestamp,
            })
        }
        Some(OP_DELETE_ONE_VERSION) => Ok(ColumnChange::DeleteOneVersion { name, timestamp }),
        Some(OP_DELETE_ALL_VERSION) => Ok(ColumnChange::DeleteAllVersions { name }),
        Some(OP_INCREMENT) => match cell.value {
            Some(CellValue::Integer(delta)) => Ok(ColumnChange::Increment {
                name,
                delta,
                timestamp,
            }),
            _ => Err(invalid(name, "an increment needs an integer value")),
        },
        Some(found) => Err(PlainBufferError::UnknownCellOp {
            column: name,
            found,
        }),
    }
}

/// Decode a PlainBuffer holding exactly one row, inferring its kind: a delete
/// marker means [`RowChange::Delete`], any column operation means
/// [`RowChange::Update`], otherwise [`RowChange::Put`].
///
/// Prefer [`decode_record`] for tunnel records, which carry their kind.
pub fn decode_row(buf: &[u8]) -> Result<Row, PlainBufferError> {
    let mut r = Reader::new(buf);
    let header = r.u32()?;
    if header != HEADER {
        return Err(PlainBufferError::BadHeader(header));
    }
    r.expect_tag(TAG_ROW_PK, "ROW_PK")?;
    let pk_cells = read_cells(&mut r)?;
    let data_cells = if r.eat(TAG_ROW_DATA) {
        read_cells(&mut r)?
    } else {
        Vec::new()
    };
    let deleted = r.eat(TAG_DELETE_ROW_MARKER);
    let sequence = if r.eat(TAG_EXTENSION) {
        Some(read_extension(&mut r)?)
    } else {
        None
    };
    r.expect_tag(TAG_ROW_CHECKSUM, "ROW_CHECKSUM")?;
    let stored = r.u8()?;
    if r.remaining() != 0 {
        return Err(PlainBufferError::TrailingBytes {
            offset: r.pos,
            count: r.remaining(),
        });
    }
    let computed = pk_cells
        .iter()
        .chain(&data_cells)
        .fold(0, |crc, cell| crc8_u8(crc, cell.crc()));
    let computed = crc8_u8(computed, u8::from(deleted));
    if stored != computed {
        return Err(PlainBufferError::RowChecksum { stored, computed });
    }

    let kind = if deleted {
        RowChange::Delete
    } else if data_cells.iter().any(|c| c.op.is_some()) {
        RowChange::Update
    } else {
        RowChange::Put
    };
    Ok(Row {
        primary_key: pk_cells.into_iter().map(to_pk).collect::<Result<_, _>>()?,
        kind,
        columns: data_cells
            .into_iter()
            .map(to_column)
            .collect::<Result<_, _>>()?,
        sequence,
    })
}

/// Decode a tunnel record's PlainBuffer; the row's kind is the record's
/// action type.
pub fn decode_record(action: ActionType, buf: &[u8]) -> Result<Row, PlainBufferError> {
    let mut row = decode_row(buf)?;
    row.kind = action.into();
    Ok(row)
}

// ---------------------------------------------------------------- encoding

fn pk_cell((name, value): &(String, PkValue)) -> Cell {
    Cell {
        name: name.clone(),
        value: Some(match value {
            PkValue::Integer(v) => CellValue::Integer(*v),
            PkValue::String(s) => CellValue::String(s.clone()),
            PkValue::Binary(b) => CellValue::Binary(b.clone()),
            PkValue::InfMin => CellValue::InfMin,
            PkValue::InfMax => CellValue::InfMax,
            PkValue::AutoIncrement => CellValue::AutoIncrement,
        }),
        op: None,
        timestamp: None,
    }
}

fn column_cell(change: &ColumnChange) -> Cell {
    let value_of = |v: &Value| match v {
        Value::Integer(v) => CellValue::Integer(*v),
        Value::Double(v) => CellValue::Double(*v),
        Value::Boolean(v) => CellValue::Boolean(*v),
        Value::String(s) => CellValue::String(s.clone()),
        Value::Binary(b) => CellValue::Binary(b.clone()),
        Value::Null => CellValue::Null,
    };
    match change {
        ColumnChange::Put {
            name,
            value,
            timestamp,
        } => Cell {
            name: name.clone(),
            value: Some(value_of(value)),
            op: None,
            timestamp: *timestamp,
        },
        ColumnChange::DeleteOneVersion { name, timestamp } => Cell {
            name: name.clone(),
            value: None,
            op: Some(OP_DELETE_ONE_VERSION),
            timestamp: *timestamp,
        },
        ColumnChange::DeleteAllVersions { name } => Cell {
            name: name.clone(),
            value: None,
            op: Some(OP_DELETE_ALL_VERSION),
            timestamp: None,
        },
        ColumnChange::Increment {
            name,
            delta,
            timestamp,
        } => Cell {
            name: name.clone(),
            value: Some(CellValue::Integer(*delta)),
            op: Some(OP_INCREMENT),
            timestamp: *timestamp,
        },
    }
}

/// Encode a row as a PlainBuffer (header included), with checksums.
///
/// A [`RowChange::Delete`] row gets the delete marker; its `columns` are still
/// written if non-empty. `decode_record(row.kind.action_type(), &encode_row(&row))`
/// returns `row` (for names and strings up to 4 GiB).
pub fn encode_row(row: &Row) -> Vec<u8> {
    let pk: Vec<Cell> = row.primary_key.iter().map(pk_cell).collect();
    let data: Vec<Cell> = row.columns.iter().map(column_cell).collect();
    let deleted = row.kind == RowChange::Delete;

    let mut out = Vec::with_capacity(64);
    put_u32(&mut out, HEADER);
    out.push(TAG_ROW_PK);
    for cell in &pk {
        cell.write(&mut out);
    }
    if !data.is_empty() {
        out.push(TAG_ROW_DATA);
        for cell in &data {
            cell.write(&mut out);
        }
    }
    if deleted {
        out.push(TAG_DELETE_ROW_MARKER);
    }
    if let Some(seq) = &row.sequence {
        // SEQ_INFO(1) + len(4) + EPOCH(1+4) + TS(1+8) + ROW_INDEX(1+4) = 24
        out.push(TAG_EXTENSION);
        put_u32(&mut out, 24);
        out.push(TAG_SEQ_INFO);
        put_u32(&mut out, 19);
        out.push(TAG_SEQ_INFO_EPOCH);
        out.extend_from_slice(&seq.epoch.to_le_bytes());
        out.push(TAG_SEQ_INFO_TS);
        out.extend_from_slice(&seq.timestamp.to_le_bytes());
        out.push(TAG_SEQ_INFO_ROW_INDEX);
        out.extend_from_slice(&seq.row_index.to_le_bytes());
    }
    let crc = pk
        .iter()
        .chain(&data)
        .fold(0, |crc, cell| crc8_u8(crc, cell.crc()));
    out.push(TAG_ROW_CHECKSUM);
    out.push(crc8_u8(crc, u8::from(deleted)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tunnel record vectors from the ex_aliyun_ots test suite (bytes are
    // facts about the wire format).
    const PUT_ROW: &[u8] = &[
        117, 0, 0, 0, 1, 3, 4, 2, 0, 0, 0, 105, 100, 5, 9, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 10,
        167, 2, 3, 4, 5, 0, 0, 0, 97, 116, 116, 114, 49, 5, 13, 0, 0, 0, 3, 8, 0, 0, 0, 97, 116,
        116, 114, 49, 95, 49, 48, 7, 163, 66, 111, 44, 118, 1, 0, 0, 10, 31, 3, 4, 5, 0, 0, 0, 100,
        97, 116, 97, 49, 5, 13, 0, 0, 0, 3, 8, 0, 0, 0, 100, 97, 116, 97, 49, 95, 49, 48, 7, 163,
        66, 111, 44, 118, 1, 0, 0, 10, 21, 3, 4, 5, 0, 0, 0, 105, 110, 100, 101, 120, 5, 9, 0, 0,
        0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 7, 163, 66, 111, 44, 118, 1, 0, 0, 10, 167, 11, 24, 0, 0, 0,
        12, 19, 0, 0, 0, 13, 0, 0, 0, 0, 14, 137, 74, 156, 146, 157, 181, 5, 0, 15, 1, 0, 0, 0, 9,
        126,
    ];
    const DELETE_ROW: &[u8] = &[
        117, 0, 0, 0, 1, 3, 4, 2, 0, 0, 0, 105, 100, 5, 9, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 10,
        70, 8, 11, 24, 0, 0, 0, 12, 19, 0, 0, 0, 13, 0, 0, 0, 0, 14, 166, 121, 63, 49, 158, 181, 5,
        0, 15, 1, 0, 0, 0, 9, 34,
    ];
    const UPDATE_DELETE_ONE: &[u8] = &[
        117, 0, 0, 0, 1, 3, 4, 2, 0, 0, 0, 105, 100, 5, 6, 0, 0, 0, 3, 1, 0, 0, 0, 49, 10, 38, 2,
        3, 4, 2, 0, 0, 0, 97, 49, 5, 9, 0, 0, 0, 3, 4, 0, 0, 0, 49, 49, 49, 52, 7, 23, 255, 129,
        170, 140, 1, 0, 0, 10, 121, 3, 4, 2, 0, 0, 0, 97, 50, 6, 3, 7, 143, 203, 128, 170, 140, 1,
        0, 0, 10, 79, 11, 24, 0, 0, 0, 12, 19, 0, 0, 0, 13, 0, 0, 0, 0, 14, 141, 111, 204, 11, 122,
        13, 6, 0, 15, 1, 0, 0, 0, 9, 127,
    ];
    const UPDATE_DELETE_ALL: &[u8] = &[
        117, 0, 0, 0, 1, 3, 4, 2, 0, 0, 0, 105, 100, 5, 6, 0, 0, 0, 3, 1, 0, 0, 0, 49, 10, 38, 2,
        3, 4, 2, 0, 0, 0, 97, 49, 5, 8, 0, 0, 0, 3, 3, 0, 0, 0, 50, 49, 48, 7, 157, 34, 142, 174,
        140, 1, 0, 0, 10, 80, 3, 4, 2, 0, 0, 0, 99, 49, 6, 1, 10, 147, 3, 4, 2, 0, 0, 0, 98, 49, 5,
        9, 0, 0, 0, 3, 4, 0, 0, 0, 49, 48, 48, 49, 7, 157, 34, 142, 174, 140, 1, 0, 0, 10, 171, 11,
        24, 0, 0, 0, 12, 19, 0, 0, 0, 13, 0, 0, 0, 0, 14, 80, 50, 55, 219, 137, 13, 6, 0, 15, 1, 0,
        0, 0, 9, 72,
    ];
    // Python-SDK generated key with INF_MIN: [("gid", 1), ("uid", INF_MIN)].
    const PK_INF_MIN: &[u8] = &[
        117, 0, 0, 0, 1, 3, 4, 3, 0, 0, 0, 103, 105, 100, 5, 9, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
        10, 42, 3, 4, 3, 0, 0, 0, 117, 105, 100, 5, 1, 0, 0, 0, 9, 10, 29, 9, 122,
    ];

    fn vectors() -> [&'static [u8]; 5] {
        [
            PUT_ROW,
            DELETE_ROW,
            UPDATE_DELETE_ONE,
            UPDATE_DELETE_ALL,
            PK_INF_MIN,
        ]
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn crc_vectors() {
        assert_eq!(crc8_bytes(0, b"123"), 192);
        assert_eq!(crc8_u8(0, 1), 7);
        assert_eq!(crc8_i32(0, 2), 44);
        assert_eq!(crc8_i64(0, 2), 38);
        assert_eq!(crc8_bytes(0, b"abc1"), 13);
    }

    #[test]
    fn put_row_record() {
        let row = decode_record(ActionType::PutRow, PUT_ROW).unwrap();
        let ts = Some(1_607_063_257_763);
        assert_eq!(row.kind, RowChange::Put);
        assert_eq!(row.primary_key, vec![(s("id"), PkValue::Integer(10))]);
        assert_eq!(
            row.columns,
            vec![
                ColumnChange::Put {
                    name: s("attr1"),
                    value: Value::String(s("attr1_10")),
                    timestamp: ts
                },
                ColumnChange::Put {
                    name: s("data1"),
                    value: Value::String(s("data1_10")),
                    timestamp: ts
                },
                ColumnChange::Put {
                    name: s("index"),
                    value: Value::Integer(10),
                    timestamp: ts
                },
            ]
        );
        let seq = row.sequence.unwrap();
        assert_eq!(seq.epoch, 0);
        assert_eq!(seq.row_index, 1);
        assert_eq!(
            seq.timestamp,
            i64::from_le_bytes([137, 74, 156, 146, 157, 181, 5, 0])
        );
        // the inferred kind agrees
        assert_eq!(decode_row(PUT_ROW).unwrap().kind, RowChange::Put);
    }

    #[test]
    fn delete_row_record() {
        let row = decode_record(ActionType::DeleteRow, DELETE_ROW).unwrap();
        assert_eq!(row.kind, RowChange::Delete);
        assert_eq!(row.primary_key, vec![(s("id"), PkValue::Integer(5))]);
        assert!(row.columns.is_empty());
        assert!(row.sequence.is_some());
        assert_eq!(decode_row(DELETE_ROW).unwrap().kind, RowChange::Delete);
    }

    #[test]
    fn update_row_with_delete_one_version() {
        let row = decode_record(ActionType::UpdateRow, UPDATE_DELETE_ONE).unwrap();
        assert_eq!(row.primary_key, vec![(s("id"), PkValue::String(s("1")))]);
        assert_eq!(
            row.columns,
            vec![
                ColumnChange::Put {
                    name: s("a1"),
                    value: Value::String(s("1114")),
                    timestamp: Some(1_703_667_695_383)
                },
                ColumnChange::DeleteOneVersion {
                    name: s("a2"),
                    timestamp: Some(1_703_667_616_655)
                },
            ]
        );
        assert_eq!(
            decode_row(UPDATE_DELETE_ONE).unwrap().kind,
            RowChange::Update
        );
    }

    #[test]
    fn update_row_with_delete_all_versions() {
        let row = decode_record(ActionType::UpdateRow, UPDATE_DELETE_ALL).unwrap();
        let ts = Some(1_703_735_599_773);
        assert_eq!(
            row.columns,
            vec![
                ColumnChange::Put {
                    name: s("a1"),
                    value: Value::String(s("210")),
                    timestamp: ts
                },
                ColumnChange::DeleteAllVersions { name: s("c1") },
                ColumnChange::Put {
                    name: s("b1"),
                    value: Value::String(s("1001")),
                    timestamp: ts
                },
            ]
        );
        assert_eq!(row.kind, RowChange::Update);
    }

    #[test]
    fn inf_min_key_matches_python_sdk_bytes() {
        let row = Row {
            primary_key: vec![(s("gid"), PkValue::Integer(1)), (s("uid"), PkValue::InfMin)],
            kind: RowChange::Put,
            columns: vec![],
            sequence: None,
        };
        assert_eq!(encode_row(&row), PK_INF_MIN);
        assert_eq!(decode_row(PK_INF_MIN).unwrap(), row);
    }

    #[test]
    fn encoder_reproduces_the_service_vectors() {
        for (action, bytes) in [
            (ActionType::PutRow, PUT_ROW),
            (ActionType::DeleteRow, DELETE_ROW),
            (ActionType::UpdateRow, UPDATE_DELETE_ONE),
            (ActionType::UpdateRow, UPDATE_DELETE_ALL),
        ] {
            let row = decode_record(action, bytes).unwrap();
            assert_eq!(encode_row(&row), bytes, "{action:?}");
        }
    }

    #[test]
    fn round_trip_all_value_kinds() {
        let rows = vec![
            Row {
                primary_key: vec![
                    (s("k1"), PkValue::Integer(-7)),
                    (s("k2"), PkValue::String(s("测试"))),
                    (s("k3"), PkValue::Binary(vec![0, 255, 3])),
                    (s("k4"), PkValue::AutoIncrement),
                    (s("k5"), PkValue::InfMax),
                ],
                kind: RowChange::Put,
                columns: vec![
                    ColumnChange::Put {
                        name: s("i"),
                        value: Value::Integer(i64::MIN),
                        timestamp: Some(1),
                    },
                    ColumnChange::Put {
                        name: s("d"),
                        value: Value::Double(-12.32),
                        timestamp: None,
                    },
                    ColumnChange::Put {
                        name: s("b"),
                        value: Value::Boolean(true),
                        timestamp: Some(i64::MAX),
                    },
                    ColumnChange::Put {
                        name: s("s"),
                        value: Value::String(String::new()),
                        timestamp: None,
                    },
                    ColumnChange::Put {
                        name: s("bin"),
                        value: Value::Binary(vec![1, 2, 3]),
                        timestamp: None,
                    },
                    ColumnChange::Put {
                        name: s("n"),
                        value: Value::Null,
                        timestamp: None,
                    },
                ],
                sequence: Some(SequenceInfo {
                    epoch: 3,
                    timestamp: 1_700_000_000_000_000,
                    row_index: 9,
                }),
            },
            Row {
                primary_key: vec![(s("id"), PkValue::Integer(1))],
                kind: RowChange::Update,
                columns: vec![
                    ColumnChange::DeleteOneVersion {
                        name: s("a"),
                        timestamp: Some(5),
                    },
                    ColumnChange::DeleteOneVersion {
                        name: s("a0"),
                        timestamp: None,
                    },
                    ColumnChange::DeleteAllVersions { name: s("b") },
                    ColumnChange::Increment {
                        name: s("c"),
                        delta: 3,
                        timestamp: Some(8),
                    },
                ],
                sequence: None,
            },
            Row {
                primary_key: vec![(s("id"), PkValue::String(s("x")))],
                kind: RowChange::Update,
                columns: vec![ColumnChange::Put {
                    name: s("only_puts"),
                    value: Value::Integer(1),
                    timestamp: None,
                }],
                sequence: None,
            },
            Row {
                primary_key: vec![(s("id"), PkValue::Integer(1))],
                kind: RowChange::Delete,
                columns: vec![],
                sequence: None,
            },
            Row {
                primary_key: vec![],
                kind: RowChange::Put,
                columns: vec![],
                sequence: None,
            },
        ];
        for row in rows {
            let bytes = encode_row(&row);
            assert_eq!(decode_record(row.kind.action_type(), &bytes).unwrap(), row);
        }
    }

    #[test]
    fn bad_checksums_are_errors() {
        // flip the row checksum
        let mut bytes = PUT_ROW.to_vec();
        *bytes.last_mut().unwrap() ^= 0xff;
        assert!(matches!(
            decode_row(&bytes),
            Err(PlainBufferError::RowChecksum { .. })
        ));
        // flip a byte of the first attribute's string value
        let mut bytes = PUT_ROW.to_vec();
        let pos = PUT_ROW.windows(8).position(|w| w == b"attr1_10").unwrap();
        bytes[pos] = b'b';
        assert!(matches!(
            decode_row(&bytes),
            Err(PlainBufferError::CellChecksum { ref column, .. }) if column == "attr1"
        ));
    }

    #[test]
    fn structural_errors() {
        assert!(matches!(
            decode_row(&[]),
            Err(PlainBufferError::Truncated { .. })
        ));
        assert_eq!(
            decode_row(&[0x76, 0, 0, 0]),
            Err(PlainBufferError::BadHeader(0x76))
        );
        let mut trailing = DELETE_ROW.to_vec();
        trailing.push(0);
        assert!(matches!(
            decode_row(&trailing),
            Err(PlainBufferError::TrailingBytes { .. })
        ));
        assert!(matches!(
            decode_row(&DELETE_ROW[..DELETE_ROW.len() - 1]),
            Err(PlainBufferError::Truncated { .. })
        ));
        // offsets inside nested sections are whole-buffer offsets
        let ts_tag = PUT_ROW
            .windows(6)
            .position(|w| w == [13, 0, 0, 0, 0, 14])
            .unwrap()
            + 5;
        let mut bad_tag = PUT_ROW.to_vec();
        bad_tag[ts_tag] = 0x42;
        assert_eq!(
            decode_row(&bad_tag),
            Err(PlainBufferError::UnexpectedTag {
                offset: ts_tag,
                expected: "SEQ_INFO_TS",
                found: 0x42
            })
        );
        // a huge declared length must not allocate or panic
        let mut huge = PUT_ROW.to_vec();
        huge[7..11].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_row(&huge),
            Err(PlainBufferError::Truncated { .. })
        ));
    }

    /// Property-style: every truncation and every single-byte corruption of
    /// valid buffers decodes to `Ok` or `Err`, never a panic.
    #[test]
    fn truncations_and_corruptions_never_panic() {
        let mut checked = 0usize;
        for bytes in vectors() {
            for len in 0..bytes.len() {
                assert!(
                    decode_row(&bytes[..len]).is_err(),
                    "truncation to {len} accepted"
                );
                checked += 1;
            }
            let mut buf = bytes.to_vec();
            for pos in 0..buf.len() {
                let original = buf[pos];
                for replacement in [
                    0x00,
                    0x01,
                    0x03,
                    0x05,
                    0x07,
                    0x09,
                    0x0b,
                    0x7f,
                    0x80,
                    0xff,
                    original ^ 0x01,
                ] {
                    buf[pos] = replacement;
                    let _ = decode_row(&buf);
                    let _ = decode_record(ActionType::UpdateRow, &buf);
                    checked += 1;
                }
                buf[pos] = original;
            }
        }
        // plus multi-byte random mutations (deterministic xorshift)
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..5000 {
            let mut buf = vectors()[round % 5].to_vec();
            for _ in 0..1 + next() % 4 {
                let pos = (next() as usize) % buf.len();
                buf[pos] = next() as u8;
            }
            let cut = buf.len() - (next() as usize % 3);
            let _ = decode_row(&buf[..cut]);
            checked += 1;
        }
        assert!(checked > 8000);
    }
}

//! Rows the tunnel tests write into the emulator's table.

use otp_threads_tablestore::plainbuffer::{ColumnChange, PkValue, Row, RowChange, Value};

/// A put of row `id = i` with one column `n = i`.
pub fn put(i: u64) -> Row {
    Row {
        primary_key: vec![("id".into(), PkValue::Integer(i as i64))],
        kind: RowChange::Put,
        columns: vec![ColumnChange::Put {
            name: "n".into(),
            value: Value::Integer(i as i64),
            timestamp: None,
        }],
        sequence: None,
    }
}

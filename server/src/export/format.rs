//! Export file formats: how stored events become CSV, NDJSON or JSON bytes.
//!
//! The one place that knows the columns and quoting; the streamed export,
//! export jobs and `auditlog export` all write through [`RowWriter`].
//! It works on one event at a time and appends to a caller's buffer, so
//! the caller decides how much is held in memory (a page at most).
//!
//! CSV: a header row, then one row per event with the columns of
//! [`CSV_COLUMNS`] (RFC 4180 quoting by the `csv` crate: cells holding a
//! comma, quote, CR or LF are quoted, quotes doubled; UTF-8 as is). A
//! string value is the cell's text; a number or boolean its JSON text; an
//! object or array (e.g. a structured `role`) its compact JSON; an absent
//! or null value an empty cell. NDJSON: the stored event JSON, one per
//! line. JSON: one array of the stored events.

use auditlog_engine::StoredEvent;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The CSV columns, in order: the fields most audit events carry.
pub const CSV_COLUMNS: [&str; 15] = [
    "occurred_at",
    "id",
    "action_name",
    "actor.type",
    "actor.id",
    "actor.name",
    "role",
    "environment.id",
    "request.method",
    "request.path",
    "request.ip",
    "request.user_agent",
    "response.status",
    "error",
    "description",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Ndjson,
    Json,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(ExportFormat::Csv),
            "ndjson" | "jsonl" => Some(ExportFormat::Ndjson),
            "json" => Some(ExportFormat::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Json => "json",
        }
    }

    /// File name extension (also the job file's).
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Json => "application/json",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not write a CSV row: {0}")]
pub struct FormatError(#[from] csv::Error);

/// Writes events in one format into caller-supplied buffers.
pub struct RowWriter {
    format: ExportFormat,
    /// Rows written so far.
    rows: u64,
}

impl RowWriter {
    pub fn new(format: ExportFormat) -> RowWriter {
        RowWriter { format, rows: 0 }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// What comes before the first row.
    pub fn begin(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        match self.format {
            ExportFormat::Csv => self.csv_record(CSV_COLUMNS.iter().copied(), out),
            ExportFormat::Ndjson => Ok(()),
            ExportFormat::Json => {
                out.push(b'[');
                Ok(())
            }
        }
    }

    pub fn row(&mut self, event: &StoredEvent, out: &mut Vec<u8>) -> Result<(), FormatError> {
        self.row_json(&event.json, out)
    }

    /// One row from an event's stored JSON (as a server's answer gives it).
    pub fn row_json(&mut self, json: &[u8], out: &mut Vec<u8>) -> Result<(), FormatError> {
        match self.format {
            ExportFormat::Csv => {
                let cells = csv_cells(json);
                self.csv_record(cells.iter().map(String::as_str), out)?;
            }
            ExportFormat::Ndjson => {
                one_line(json, out);
                out.push(b'\n');
            }
            ExportFormat::Json => {
                out.extend_from_slice(if self.rows == 0 { b"\n" } else { b",\n" });
                one_line(json, out);
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// What comes after the last row.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        if self.format == ExportFormat::Json {
            out.extend_from_slice(b"\n]\n");
        }
        Ok(())
    }

    fn csv_record<'a>(
        &mut self,
        cells: impl Iterator<Item = &'a str>,
        out: &mut Vec<u8>,
    ) -> Result<(), FormatError> {
        // A writer per row straight into `out`: its small buffer is the only
        // cost, and rows never wait in a buffer the caller cannot see.
        let mut w = csv::WriterBuilder::new()
            .buffer_capacity(512)
            .from_writer(out);
        w.write_record(cells)?;
        w.flush().map_err(csv::Error::from)?;
        Ok(())
    }
}

/// Stored JSON is the client's bytes; whitespace between tokens may hold
/// line breaks. A raw CR or LF byte can only be such whitespace (inside a
/// JSON string they must be escaped), so a space keeps one event per line.
fn one_line(json: &[u8], out: &mut Vec<u8>) {
    if memchr::memchr2(b'\n', b'\r', json).is_none() {
        out.extend_from_slice(json);
    } else {
        out.extend(
            json.iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
    }
}

/// The fields the columns come from, borrowed from the stored JSON; other
/// fields are skipped without being built.
#[derive(Deserialize, Default)]
struct Row<'a> {
    #[serde(borrow)]
    occurred_at: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    action_name: Option<&'a RawValue>,
    #[serde(borrow)]
    actor: Option<&'a RawValue>,
    #[serde(borrow)]
    role: Option<&'a RawValue>,
    #[serde(borrow)]
    environment: Option<&'a RawValue>,
    #[serde(borrow)]
    request: Option<&'a RawValue>,
    #[serde(borrow)]
    response: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    description: Option<&'a RawValue>,
}

/// The nested objects' fields the columns use (actor, environment,
/// request, response share one shape: each uses some of these).
#[derive(Deserialize, Default)]
struct Nested<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    path: Option<&'a RawValue>,
    #[serde(borrow)]
    ip: Option<&'a RawValue>,
    #[serde(borrow)]
    user_agent: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
}

/// The fields of a nested object; `Err` when it is an object the typed
/// parse refuses (a repeated key), so the caller takes the general path.
fn nested<'a>(raw: Option<&'a RawValue>) -> Result<Nested<'a>, serde_json::Error> {
    match raw.filter(|r| r.get().starts_with('{')) {
        Some(r) => serde_json::from_str(r.get()),
        None => Ok(Nested::default()),
    }
}

/// One CSV cell from a JSON value (see the module comment).
fn cell(raw: Option<&RawValue>) -> String {
    let Some(raw) = raw else {
        return String::new();
    };
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).unwrap_or_default(),
        Some(b'{') | Some(b'[') => serde_json::from_str::<serde_json::Value>(text)
            .map(|v| v.to_string())
            .unwrap_or_default(),
        Some(b'n') => String::new(),
        _ => text.to_owned(),
    }
}

/// The [`CSV_COLUMNS`] cells of one stored event.
pub fn csv_cells(json: &[u8]) -> [String; 15] {
    let typed = || -> Result<[String; 15], serde_json::Error> {
        let row: Row = serde_json::from_slice(json)?;
        let actor = nested(row.actor)?;
        let env = nested(row.environment)?;
        let req = nested(row.request)?;
        let resp = nested(row.response)?;
        Ok([
            cell(row.occurred_at),
            cell(row.id),
            cell(row.action_name),
            cell(actor.kind),
            cell(actor.id),
            cell(actor.name),
            cell(row.role),
            cell(env.id),
            cell(req.method),
            cell(req.path),
            cell(req.ip),
            cell(req.user_agent),
            cell(resp.status),
            cell(row.error),
            cell(row.description),
        ])
    };
    // Stored events have unique top-level keys, but a nested object may
    // repeat one, which the typed parse refuses: then the general way
    // (the last value wins, as in filters).
    typed().unwrap_or_else(|_| csv_cells_general(json))
}

fn csv_cells_general(json: &[u8]) -> [String; 15] {
    let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    CSV_COLUMNS.map(|col| {
        let mut v = Some(&value);
        for part in col.split('.') {
            v = v.and_then(|x| x.get(part));
        }
        match v {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditlog_engine::{EventId, Timestamp};

    fn stored(json: &str) -> StoredEvent {
        StoredEvent {
            id: EventId::parse("01FC31EHYYR0MF7J7GEJK2TFM0").unwrap(),
            occurred_at: Timestamp(0),
            json: json.as_bytes().to_vec(),
        }
    }

    fn write_all(format: ExportFormat, events: &[&str]) -> Vec<u8> {
        let mut w = RowWriter::new(format);
        let mut out = Vec::new();
        w.begin(&mut out).unwrap();
        for e in events {
            w.row(&stored(e), &mut out).unwrap();
        }
        w.finish(&mut out).unwrap();
        out
    }

    const TRICKY: &str = r#"{"id":"01FC31EHYYR0MF7J7GEJK2TFM0","occurred_at":"2024-01-01T00:00:00Z","action_name":"items.update","actor":{"type":"user","id":"42","name":"O'Brien, \"Bob\"\nline two"},"role":{"name":"admin","scopes":["a","b"]},"environment":{"id":"prod"},"request":{"method":"PUT","path":"/items/1","ip":"10.0.0.1","user_agent":"Mozilla/5.0 (X11; Linux)","payload":{"x":[1,2,{"deep":true}]}},"response":{"status":200},"error":null,"description":"Grüße, 世界 🎉\r\nok"}"#;

    #[test]
    fn csv_quotes_commas_quotes_newlines_and_keeps_unicode() {
        let out = write_all(ExportFormat::Csv, &[TRICKY]);
        // Read back with an independent reader: every cell round-trips.
        let mut r = csv::ReaderBuilder::new().from_reader(out.as_slice());
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, CSV_COLUMNS);
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(rows.len(), 1);
        let row: Vec<&str> = rows[0].iter().collect();
        assert_eq!(
            row,
            vec![
                "2024-01-01T00:00:00Z",
                "01FC31EHYYR0MF7J7GEJK2TFM0",
                "items.update",
                "user",
                "42",
                "O'Brien, \"Bob\"\nline two",
                r#"{"name":"admin","scopes":["a","b"]}"#,
                "prod",
                "PUT",
                "/items/1",
                "10.0.0.1",
                "Mozilla/5.0 (X11; Linux)",
                "200",
                "",
                "Grüße, 世界 🎉\r\nok",
            ]
        );
        // And the bytes are RFC 4180: the name quoted, quotes doubled.
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\"O'Brien, \"\"Bob\"\"\nline two\""),
            "{text}"
        );
        assert!(text.contains("\"Grüße, 世界 🎉\r\nok\""), "{text}");
        assert!(text.contains(r#""{""name"":""admin"",""scopes"":[""a"",""b""]}""#));
    }

    #[test]
    fn absent_fields_are_empty_cells_and_odd_shapes_do_not_fail() {
        let out = write_all(
            ExportFormat::Csv,
            &[
                r#"{"action_name":"a","actor":{"type":"u","id":"1"}}"#,
                // A nested object with a repeated key takes the general path.
                r#"{"action_name":"b","actor":{"type":"u","id":"1","id":"2"},"request":"not an object","response":{"status":true}}"#,
            ],
        );
        let mut r = csv::Reader::from_reader(out.as_slice());
        let rows: Vec<Vec<String>> = r
            .records()
            .map(|x| x.unwrap().iter().map(String::from).collect())
            .collect();
        assert_eq!(rows[0][2], "a");
        assert_eq!(rows[0][3], "u");
        assert!(rows[0][5].is_empty() && rows[0][8].is_empty());
        assert_eq!(rows[1][2], "b");
        assert_eq!(rows[1][4], "2");
        assert_eq!(rows[1][9], "");
        assert_eq!(rows[1][12], "true");
    }

    #[test]
    fn ndjson_is_one_event_per_line_and_json_is_one_array() {
        let pretty = "{\"action_name\":\"a\",\n  \"actor\": {\"type\":\"u\",\r\n\"id\":\"1\"}}";
        let nd = write_all(ExportFormat::Ndjson, &[TRICKY, pretty]);
        let lines: Vec<&[u8]> = nd.split(|b| *b == b'\n').collect();
        assert_eq!(lines.len(), 3, "two lines and the final newline");
        for line in &lines[..2] {
            let _: serde_json::Value = serde_json::from_slice(line).unwrap();
        }
        assert_eq!(lines[0], TRICKY.as_bytes());
        let json = write_all(ExportFormat::Json, &[TRICKY, pretty]);
        let v: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1]["actor"]["id"], "1");
        let empty: Vec<serde_json::Value> =
            serde_json::from_slice(&write_all(ExportFormat::Json, &[])).unwrap();
        assert!(empty.is_empty());
        assert!(write_all(ExportFormat::Ndjson, &[]).is_empty());
    }
}

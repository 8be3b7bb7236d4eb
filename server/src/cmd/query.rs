//! `auditlog query`: events matching a filter, from a data directory or a
//! running server, printed as a table, JSON, NDJSON or CSV.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use auditlog_engine::query::exec::MAX_LIMIT;
use auditlog_engine::Order;
use serde_json::Value;

use super::client::Server;
use crate::api::events::{parse_filter_param, parse_range};
use crate::export::format::{ExportFormat, RowWriter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading.
    Table,
    /// One JSON array.
    Json,
    /// One event per line, as stored.
    Ndjson,
    /// The export's CSV columns (docs/API.md), one row per event.
    Csv,
}

pub enum Source {
    Dir(PathBuf),
    Url { url: String, token: Option<String> },
}

pub struct Args {
    pub filter: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: usize,
    pub oldest_first: bool,
    pub count: bool,
    pub format: Format,
}

pub fn run(source: Source, a: Args) -> Result<()> {
    let limit = a.limit.clamp(1, MAX_LIMIT);
    let events: Vec<Vec<u8>> = match source {
        Source::Dir(dir) => {
            let engine = super::open(&dir)?;
            let filter = parse_filter_param(&a.filter).map_err(|e| anyhow!(e.message))?;
            let range = parse_range(&a.from, &a.to).map_err(|e| anyhow!(e.message))?;
            let snap = engine.snapshot();
            if a.count {
                println!("{}", snap.count(filter.as_ref(), range)?);
                return Ok(());
            }
            let query = auditlog_engine::query::Query {
                filter,
                range,
                order: if a.oldest_first {
                    Order::OldestFirst
                } else {
                    Order::NewestFirst
                },
                limit,
                cursor: None,
            };
            snap.query(&query)?
                .events
                .into_iter()
                .map(|e| e.json)
                .collect()
        }
        Source::Url { url, token } => {
            let server = Server::new(&url, token)?;
            let mut q: Vec<(&str, String)> = Vec::new();
            for (k, v) in [("filter", &a.filter), ("from", &a.from), ("to", &a.to)] {
                if let Some(v) = v {
                    q.push((k, v.clone()));
                }
            }
            if a.count {
                let v: Value = server.send(server.get("/v1/events/count", &q))?.json()?;
                println!("{}", v["count"]);
                return Ok(());
            }
            q.push(("limit", limit.to_string()));
            let order = if a.oldest_first { "oldest" } else { "newest" };
            q.push(("order", order.to_owned()));
            let page: Value = server.send(server.get("/v1/events", &q))?.json()?;
            page["events"]
                .as_array()
                .into_iter()
                .flatten()
                .map(serde_json::to_vec)
                .collect::<Result<_, _>>()?
        }
    };
    let mut out = std::io::stdout().lock();
    let export_format = match a.format {
        Format::Csv => Some(ExportFormat::Csv),
        Format::Json => Some(ExportFormat::Json),
        Format::Ndjson => Some(ExportFormat::Ndjson),
        Format::Table => None,
    };
    match export_format {
        Some(format) => {
            // The same rows an export of this filter gives, one way to do it.
            let mut writer = RowWriter::new(format);
            let mut buf = Vec::new();
            writer.begin(&mut buf)?;
            for e in &events {
                writer.row_json(e, &mut buf)?;
            }
            writer.finish(&mut buf)?;
            out.write_all(&buf)?;
        }
        None => {
            let rows: Vec<[String; 5]> = events
                .iter()
                .map(|e| table_row(&serde_json::from_slice(e).unwrap_or(Value::Null)))
                .collect();
            write_table(
                &mut out,
                ["OCCURRED_AT", "ID", "ACTION", "ACTOR", "REQUEST"],
                &rows,
            )?;
        }
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table_row(e: &Value) -> [String; 5] {
    let actor = match (text(&e["actor"]["type"]), text(&e["actor"]["id"])) {
        (t, id) if e["actor"]["name"].is_string() => {
            format!("{t}:{id} ({})", text(&e["actor"]["name"]))
        }
        (t, id) => format!("{t}:{id}"),
    };
    let mut request = format!(
        "{} {}",
        text(&e["request"]["method"]),
        text(&e["request"]["path"])
    );
    if !e["response"]["status"].is_null() {
        request.push_str(&format!(" -> {}", text(&e["response"]["status"])));
    }
    [
        text(&e["occurred_at"]),
        text(&e["id"]),
        text(&e["action_name"]),
        actor,
        request.trim().to_owned(),
    ]
}

/// Columns padded to their widest cell, cells cut at 60 characters.
fn write_table(out: &mut impl Write, head: [&str; 5], rows: &[[String; 5]]) -> Result<()> {
    const MAX: usize = 60;
    let cut = |s: &str| -> String {
        if s.chars().count() > MAX {
            s.chars().take(MAX - 1).chain(['…']).collect()
        } else {
            s.to_owned()
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    writeln!(out, "{}", line(head.to_vec()))?;
    for r in &rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

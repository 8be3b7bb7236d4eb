//! `auditlog ingest FILE|-`: NDJSON events into a data directory or to a
//! running server, in batches, with a progress bar showing events/s.
//!
//! Each batch is all-or-nothing (as the server's `POST /v1/events`): on an
//! invalid line the command stops, says which line of the input failed and
//! why, and how many events of earlier batches were stored.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use auditlog_engine::Engine;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::client::{Server, ServerError};

/// Where the events go.
pub enum Target {
    Dir(PathBuf),
    Url { url: String, token: Option<String> },
}

enum Sink {
    Engine(Engine),
    Server(Server),
}

impl Sink {
    /// Stores one batch (raw NDJSON lines, blank ones kept so the
    /// server's line numbers are the input's); returns events stored.
    /// `first_line` is the input line number of the batch's first line.
    fn store(&self, body: Vec<u8>, first_line: u64) -> Result<u64> {
        let to_input_line = |line: u64| first_line + line - 1;
        match self {
            Sink::Engine(engine) => {
                let mut prepared = Vec::new();
                let received = auditlog_engine::Timestamp::now();
                for (line, doc) in auditlog_engine::event::ndjson_lines(&body) {
                    let p = engine
                        .prepare_received(doc, received)
                        .map_err(|e| anyhow!("line {}: {e}", to_input_line(line as u64)))?;
                    prepared.push(p);
                }
                Ok(engine.append(prepared)?.len() as u64)
            }
            Sink::Server(server) => {
                let r = server
                    .post("/v1/events")
                    .header("content-type", "application/x-ndjson")
                    .body(body);
                match server.send(r) {
                    Ok(resp) => {
                        let v: Value = resp.json().context("reading the server's answer")?;
                        Ok(v["ids"].as_array().map_or(0, |a| a.len() as u64))
                    }
                    Err(e) => match e.downcast::<ServerError>() {
                        Ok(se) if se.code == "invalid_event" => {
                            let mut msg = String::new();
                            for l in se.error["lines"].as_array().into_iter().flatten() {
                                let line = l["line"].as_u64().unwrap_or(0);
                                msg.push_str(&format!(
                                    "\n  line {}: {}",
                                    to_input_line(line),
                                    l["message"].as_str().unwrap_or("invalid")
                                ));
                            }
                            bail!("{}{msg}", se.message)
                        }
                        Ok(se) => Err(se.into()),
                        Err(e) => Err(e),
                    },
                }
            }
        }
    }
}

fn progress(total_bytes: Option<u64>) -> ProgressBar {
    let bar = match total_bytes {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub fn run(file: &Path, target: Target, batch: usize) -> Result<()> {
    let sink = match target {
        Target::Dir(dir) => Sink::Engine(super::open_signed(&dir, None)?),
        Target::Url { url, token } => Sink::Server(Server::new(&url, token)?),
    };
    let (reader, size): (Box<dyn Read>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let bar = progress(size);
    let started = Instant::now();
    let (mut stored, mut line_no, mut bytes_read) = (0u64, 0u64, 0u64);
    let mut body: Vec<u8> = Vec::new();
    let (mut events_in_body, mut first_line) = (0usize, 1u64);
    let result = loop {
        let before = body.len();
        let n = match reader.read_until(b'\n', &mut body) {
            Ok(n) => n,
            Err(e) => break Err(anyhow::Error::from(e).context("reading the input")),
        };
        let eof = n == 0;
        if !eof {
            line_no += 1;
            bytes_read += n as u64;
            if body
                .get(before..)
                .is_some_and(|l| !l.trim_ascii().is_empty())
            {
                events_in_body += 1;
            }
            if !body.ends_with(b"\n") {
                body.push(b'\n');
            }
        }
        if events_in_body > 0 && (events_in_body >= batch || eof) {
            match sink.store(std::mem::take(&mut body), first_line) {
                Ok(n) => stored += n,
                Err(e) => break Err(e),
            }
            events_in_body = 0;
            bar.set_position(bytes_read);
            bar.set_message(format!(
                "{stored} events, {:.0} events/s",
                stored as f64 / started.elapsed().as_secs_f64().max(1e-9)
            ));
        }
        if events_in_body == 0 {
            body.clear();
            first_line = line_no + 1;
        }
        if eof {
            break Ok(());
        }
    };
    bar.finish_and_clear();
    // A direct ingest ends with a signed checkpoint over what it stored.
    if let Sink::Engine(engine) = sink {
        engine.close()?;
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    match result {
        Ok(()) => {
            println!(
                "ingested {stored} events in {secs:.1} s ({:.0} events/s)",
                stored as f64 / secs
            );
            Ok(())
        }
        Err(e) => Err(e.context(format!(
            "stopped: {stored} events of earlier batches were stored; \
             the failing batch (from input line {first_line}) was not"
        ))),
    }
}

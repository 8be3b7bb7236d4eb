//! The real `auditlog serve` binary for the fault-tolerance tests
//! (hostile requests, crash loops, damage on disk, full disks): start it on
//! a free loopback port, kill it hard or stop it gently, start it again on
//! the same data, and read back everything it stores.
#![allow(dead_code)]

use std::hash::Hasher;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;

pub struct Server {
    child: Child,
    pub base: String,
    pub data: PathBuf,
    extra: Vec<String>,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    /// Starts the binary with extra `serve` arguments (a config file...).
    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_auditlog"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data: data.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let c = client();
        while c.get(format!("{}/healthz", self.base)).send().is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies wherever it is, nothing is flushed.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, keeping the handle (to `restart` later).
    pub fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait: the graceful path. A server still running 20 s
    /// later fails the test (then `Drop` kills it) rather than hanging it.
    pub fn stop(mut self) {
        let _ = self.terminate();
    }

    /// SIGTERM; returns how long the exit took and whether it succeeded.
    pub fn terminate(&mut self) -> (Duration, bool) {
        let started = Instant::now();
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (started.elapsed(), status.success());
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A new process on the same data and arguments.
    pub fn restart(self) -> Server {
        let data = self.data.clone();
        let extra = self.extra.clone();
        self.kill();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        Server::start_with(&data, &extra)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn healthy(&self) -> bool {
        client()
            .get(self.url("/healthz"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A status and the body parsed as JSON (`Null` when it is not JSON).
pub fn answer(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

pub fn post(
    s: &Server,
    content_type: &str,
    body: impl Into<reqwest::blocking::Body>,
) -> (u16, Value) {
    answer(
        client()
            .post(s.url("/v1/events"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap(),
    )
}

pub fn get(s: &Server, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    answer(client().get(s.url(path)).query(query).send().unwrap())
}

pub fn count(s: &Server, filter: Option<&str>) -> u64 {
    let q: Vec<(&str, &str)> = filter.map(|f| ("filter", f)).into_iter().collect();
    let (status, body) = get(s, "/v1/events/count", &q);
    assert_eq!(status, 200, "{body}");
    body["count"].as_u64().unwrap()
}

/// Every stored event, oldest first, walked page by page with cursors:
/// (id, the event's JSON as served).
pub fn all_events(s: &Server) -> Vec<(String, String)> {
    let c = client();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100_000 {
        let mut q = vec![("limit", "1000".to_string()), ("order", "oldest".into())];
        if let Some(cur) = &cursor {
            q.push(("cursor", cur.clone()));
        }
        let r = c.get(s.url("/v1/events")).query(&q).send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let page: Value = r.json().unwrap();
        for e in page["events"].as_array().unwrap() {
            out.push((e["id"].as_str().unwrap().to_owned(), e.to_string()));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return out,
        }
    }
    panic!("the listing did not end within 100,000 pages");
}

/// Count and a checksum of every stored event's bytes, in order: equal
/// before and after means the stored data is untouched.
pub fn fingerprint(s: &Server) -> (usize, u64) {
    let events = all_events(s);
    let mut h = std::hash::DefaultHasher::new();
    for (_, json) in &events {
        h.write(json.as_bytes());
        h.write_u8(0);
    }
    (events.len(), h.finish())
}

/// A small valid event; `tag` makes it findable.
pub fn event(tag: &str, n: usize) -> String {
    format!(
        r#"{{"action_name":"faults.{}","actor":{{"type":"client","id":"{tag}"}},"request":{{"payload":{{"n":{n},"pad":"{}"}}}}}}"#,
        n % 3,
        "x".repeat(n % 50)
    )
}

//! What the integration tests share: the connector binary run as a child process (as the platform runs it), the
//! test fixtures, Apache Kafka from the project's launcher (`kafka`), librdkafka's mock cluster for injected
//! faults (`mock`), and a consumer that reads topics back (`consume`).

pub mod admin;
pub mod consume;
pub mod kafka;
pub mod mock;
pub mod oauth;

pub use consume::{consume, read_back, read_back_with, Read};
pub use kafka::Kafka;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// The repository: where Cargo runs the tests from (it says so at run time). The path compiled into this crate can
/// be a copy's that is gone: `scripts/test` runs each time from a fresh copy sharing one `target/`, and Cargo does
/// not rebuild this crate for a new path.
pub fn repo() -> PathBuf {
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap(),
    }
}

/// The connector binary Cargo built for this test run (`target/<profile>/destination-kafka`, beside `deps/`).
pub fn bin() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile = test.parent().and_then(Path::parent).unwrap();
    profile.join("destination-kafka")
}

/// A file of `tests/fixtures` (Airbyte's acceptance-test datasets, the Java spec, the base config).
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// The base config of every test (`tests/fixtures/config.json`: the Java connector's keys as Airbyte saved them),
/// pointed at `bootstrap`.
pub fn java_config(bootstrap: &str) -> Value {
    let mut config = read_json(&fixture("config.json"));
    config["bootstrap_servers"] = json!(bootstrap);
    config
}

/// A directory for a test's files, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        // Unique per call: tests of one binary run in parallel in one process, and may share a name.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dk-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn write(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    pub fn json(&self, name: &str, value: &Value) -> String {
        self.write(name, &value.to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configured catalog (append, full refresh) from a plain catalog file or value.
pub fn configured(catalog: &Value) -> Value {
    let streams: Vec<Value> = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!({"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "append"}))
        .collect();
    json!({ "streams": streams })
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The files of one write: a config (the base config changed by `change`) and a catalog.
pub struct Files {
    pub config: String,
    pub catalog: String,
    _scratch: Scratch,
}

impl Files {
    pub fn new(name: &str, config: &Value, catalog: &Value) -> Files {
        let scratch = Scratch::new(name);
        Files {
            config: scratch.json("config.json", config),
            catalog: scratch.json("catalog.json", catalog),
            _scratch: scratch,
        }
    }

    /// `write` with these files.
    pub fn write_args(&self) -> [&str; 5] {
        ["write", "--config", &self.config, "--catalog", &self.catalog]
    }
}

/// The binary with piped stdin and stdout.
fn spawn(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Child {
    let mut command = Command::new(bin());
    command.args(args).envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr);
    command.spawn().unwrap()
}

/// Runs the binary to completion with `stdin` as its input.
pub fn run(args: &[&str], stdin: &str) -> Output {
    run_with_env(args, &[], stdin)
}

pub fn run_with_env(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = spawn(args, env, Stdio::piped());
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Output lines parsed as JSON; fails the test on any line that is not (stdout carries only Airbyte messages).
/// A run that must succeed: its messages (a failure shows its TRACE).
#[track_caller]
pub fn run_ok(args: &[&str], stdin: &str) -> Vec<Value> {
    let out = run(args, stdin);
    let msgs = messages(&out);
    assert!(out.status.success(), "{:?}", of_type(&msgs, "TRACE"));
    msgs
}

pub fn messages(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
        .collect()
}

pub fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages.iter().filter(|m| m["type"] == kind).collect()
}

/// The one TRACE error of a failed run.
pub fn the_trace(messages: &[Value]) -> Value {
    let traces = of_type(messages, "TRACE");
    assert_eq!(traces.len(), 1, "exactly one TRACE: {messages:?}");
    traces[0]["trace"]["error"].clone()
}

/// The `id`s of the STATEs emitted.
pub fn state_ids(messages: &[Value]) -> Vec<u64> {
    of_type(messages, "STATE").iter().map(|m| m["state"]["id"].as_u64().unwrap()).collect()
}

pub fn log_lines(messages: &[Value]) -> Vec<String> {
    of_type(messages, "LOG").iter().map(|m| m["log"]["message"].as_str().unwrap().to_string()).collect()
}

/// A running connector whose stdout is read line by line, for tests that watch it mid-sync.
pub struct Live {
    pub child: Child,
    pub lines: Receiver<String>,
}

/// How long a test waits for something that must happen before it fails: a guard against hangs, not a timing
/// requirement.
pub const PATIENCE: Duration = Duration::from_secs(60);

impl Live {
    pub fn start(args: &[&str]) -> Live {
        Live::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Live {
        let mut child = spawn(args, env, Stdio::null());
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live { child, lines }
    }

    pub fn send(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Messages up to and including the first one `found` accepts (none if the output ends or `wait` passes).
    pub fn until(&self, wait: Duration, mut found: impl FnMut(&Value) -> bool) -> (Option<Value>, Vec<Value>) {
        let deadline = Instant::now() + wait;
        let mut before = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else { break };
            let msg: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if found(&msg) {
                return (Some(msg), before);
            }
            before.push(msg);
        }
        (None, before)
    }

    /// Waits for the next STATE (skipping LOGs), or gives up after `wait`.
    pub fn next_state(&self, wait: Duration) -> Option<Value> {
        self.until_state(wait).0
    }

    /// The next STATE (or none within `wait`) and the messages written before it.
    pub fn until_state(&self, wait: Duration) -> (Option<Value>, Vec<Value>) {
        self.until(wait, |m| m["type"] == "STATE")
    }

    /// The messages written until a LOG line containing `text` (which must come): the sync is seen doing something.
    pub fn until_log(&self, text: &str) -> Vec<Value> {
        let (found, before) =
            self.until(PATIENCE, |m| m["type"] == "LOG" && m["log"]["message"].as_str().unwrap().contains(text));
        assert!(found.is_some(), "no LOG line saying `{text}`: {before:?}");
        before
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits (stdin left open, as the platform does when it stops a sync) for the process to end by itself; returns
    /// the status and every remaining output message.
    pub fn exit(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < PATIENCE, "still running after {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let rest = self.lines.iter().map(|l| serde_json::from_str(&l).unwrap()).collect();
        (status, rest)
    }

    /// Closes stdin and returns the exit status and every remaining output message.
    pub fn finish(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        let rest = self.lines.iter().map(|l| serde_json::from_str(&l).unwrap()).collect();
        (status, rest)
    }
}

// ---- Input lines.

pub fn record(stream: &str, i: usize) -> String {
    format!("{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"{stream}\",\"emitted_at\":1602637589000,\"data\":{{\"i\":{i}}}}}}}\n")
}

pub fn records(from: usize, to: usize) -> String {
    (from..to).map(|i| record("users", i)).collect()
}

pub fn state(n: usize) -> String {
    format!("{{\"type\":\"STATE\",\"state\":{{\"type\":\"LEGACY\",\"data\":{{\"n\":{n}}},\"id\":{n}}}}}\n")
}

/// A catalog of streams with these names (no namespace).
pub fn catalog(streams: &[&str]) -> Value {
    json!({"streams": streams.iter().map(|s| json!({"name": s})).collect::<Vec<_>>()})
}

//! Apache Kafka, started by the project's own launcher (`scripts/kafka-broker`), which binds its own ports and
//! says where every listener is. One single-node broker is shared by the tests of a test binary (each test uses
//! its own topics); a three-node cluster belongs to the test that starts it. The launcher stops the brokers when
//! its stdin closes, so a test process that ends (or dies) takes them with it.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

pub struct Kafka {
    launcher: Mutex<Launcher>,
    /// What the launcher printed: listeners, TLS files, OAUTHBEARER key, users, nodes.
    pub info: Value,
}

struct Launcher {
    child: Child,
    /// Closing it stops the launcher, which stops its brokers and removes their files.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Kafka {
    fn launch(args: &[&str]) -> Kafka {
        let launcher = crate::repo().join("scripts/kafka-broker");
        let mut child = Command::new(&launcher)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", launcher.display()));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("scripts/kafka-broker did not start ({e}); its stderr says why"));
        Kafka { launcher: Mutex::new(Launcher { child, stdin: Some(stdin), stdout }), info }
    }

    /// The single node every test of this binary shares.
    pub fn shared() -> &'static Kafka {
        static SHARED: OnceLock<Kafka> = OnceLock::new();
        SHARED.get_or_init(|| Kafka::launch(&[]))
    }

    /// A three-node cluster of this test's own.
    pub fn cluster() -> Kafka {
        Kafka::launch(&["--nodes", "3"])
    }

    /// The PLAINTEXT listener(s).
    pub fn bootstrap(&self) -> String {
        self.info["bootstrap"].as_str().unwrap().to_string()
    }

    /// `plaintext`, `ssl`, `mtls`, `expired`, `wrong_host`, `sasl_plaintext`, `sasl_ssl`.
    pub fn listener(&self, name: &str) -> String {
        self.info["listeners"][name].as_str().unwrap_or_else(|| panic!("no listener {name}")).to_string()
    }

    /// The path of a TLS file (`ca`, `client_cert`, `client_key`, `client_key_encrypted`, `other_ca`,
    /// `stranger_cert`, `stranger_key`).
    pub fn tls_path(&self, name: &str) -> String {
        self.info["tls"][name].as_str().unwrap_or_else(|| panic!("no TLS file {name}")).to_string()
    }

    pub fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.tls_path(name)).unwrap()
    }

    pub fn password(&self, user: &str) -> String {
        self.info["users"][user].as_str().unwrap_or_else(|| panic!("no user {user}")).to_string()
    }

    /// `config` connecting as `user` (PLAIN) on the SASL_PLAINTEXT listener, where the users' ACLs apply.
    pub fn as_plain_user(&self, config: &mut Value, user: &str) {
        config["bootstrap_servers"] = json!(self.listener("sasl_plaintext"));
        config["protocol"] = json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_username": user, "sasl_password": self.password(user)});
    }

    /// A node's process id.
    pub fn pid(&self, node: u64) -> u32 {
        self.info["nodes"].as_array().unwrap().iter().find(|n| n["id"] == node).unwrap()["pid"].as_u64().unwrap() as u32
    }

    /// `kill N` or `start N`, answered by the launcher once done.
    pub fn command(&self, command: &str) -> Value {
        let mut launcher = self.launcher.lock().unwrap();
        let stdin = launcher.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        launcher.stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert!(answer.get("error").is_none(), "{answer}");
        answer
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let launcher = self.launcher.get_mut().unwrap();
        drop(launcher.stdin.take());
        let _ = launcher.child.wait();
    }
}

impl Kafka {
    /// The values Kafka's own console consumer (`kafka-console-consumer`, from the broker's jars) reads from
    /// `topic` from the beginning, with `isolation` (`read_committed` or `read_uncommitted`): it stops after
    /// `max` messages, or once none came for `idle_ms`.
    pub fn console_consume(&self, topic: &str, isolation: &str, max: usize, idle_ms: u64) -> Vec<String> {
        let libs = format!("{}/*", self.info["libs"].as_str().unwrap());
        let quiet = crate::repo().join("scripts/kafka/log4j2-quiet.properties");
        let out = Command::new("java")
            .arg(format!("-Dlog4j2.configurationFile={}", quiet.display()))
            .args(["-cp", &libs, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server"])
            .arg(self.bootstrap())
            .args(["--topic", topic, "--from-beginning", "--isolation-level", isolation, "--max-messages"])
            .arg(max.to_string())
            .args(["--timeout-ms", &idle_ms.to_string()])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
    }
}

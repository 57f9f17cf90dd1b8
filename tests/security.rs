//! TLS, mutual TLS, SCRAM and OAUTHBEARER OIDC against real endpoints on 127.0.0.1: tansu behind stunnel (a real
//! TLS terminator; tansu 0.6.0 serves no TLS itself, and advertises the stunnel address so every connection goes
//! through TLS), tansu with SCRAM users, and an OIDC token endpoint started here. Certificates are made for each
//! test by scripts/test-certs (openssl).
//!
//! What these brokers cannot show: tansu 0.6.0 has no SASL/PLAIN (it is not compiled in), so PLAIN is shown only
//! failing with a message naming the mechanism; tansu refuses every OAUTHBEARER token without looking at it, so the
//! OIDC test shows the token fetched (the request the endpoint received) and then refused by the broker, not a
//! broker accepting it.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Throw-away certificates (see scripts/test-certs).
struct Certs {
    dir: Scratch,
}

impl Certs {
    fn new(name: &str) -> Certs {
        let dir = Scratch::new(&format!("certs-{name}"));
        let status = Command::new(repo().join("scripts/test-certs")).arg(&dir.0).status().unwrap();
        assert!(status.success(), "scripts/test-certs");
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.0.join(name).to_string_lossy().into_owned()
    }

    fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }
}

/// tansu behind stunnel: clients reach `bootstrap()` in TLS only.
struct TlsBroker {
    _broker: Broker,
    front: Child,
    port: u16,
}

impl TlsBroker {
    fn start(certs: &Certs, server: &str, clients_ca: Option<&str>, tansu_options: &[&str]) -> TlsBroker {
        let port = free_port();
        let advertised = format!("127.0.0.1:{port}");
        let mut options = vec!["--advertise", advertised.as_str()];
        options.extend_from_slice(tansu_options);
        let broker = Broker::launch(&options);
        let mut front = Command::new(repo().join("scripts/tls-front"));
        front.args([
            port.to_string(),
            broker.port.to_string(),
            certs.path(&format!("{server}.pem")),
            certs.path(&format!("{server}.key")),
        ]);
        if let Some(ca) = clients_ca {
            front.args(["--clients".to_string(), certs.path(ca)]);
        }
        let front = front.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("scripts/tls-front");
        wait_for_port(port, Duration::from_secs(20));
        TlsBroker { _broker: broker, front, port }
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.front.kill();
        let _ = self.front.wait();
    }
}

fn config_with(bootstrap: &str, protocol: Value) -> Value {
    let mut config = java_config(bootstrap);
    config["protocol"] = protocol;
    config["topic_pattern"] = json!("{stream}");
    config
}

/// `check` on this config (with these environment variables): (status, message).
fn check_with_env(config: &Value, env: &[(&str, &str)]) -> (String, String) {
    let scratch = Scratch::new("check-security");
    let path = scratch.json("config.json", config);
    let out = Command::new(BIN).args(["check", "--config", &path]).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "check exits 0 either way");
    let msgs = messages(&out);
    let status = &of_type(&msgs, "CONNECTION_STATUS")[0]["connectionStatus"];
    (status["status"].as_str().unwrap().to_string(), status["message"].as_str().unwrap_or_default().to_string())
}

fn check(config: &Value) -> (String, String) {
    check_with_env(config, &[])
}

fn ssl(certs: &Certs, ca: Option<&str>) -> Value {
    json!({"security_protocol": "SSL", "ssl_ca_certificates": ca.map(|c| certs.pem(c)).unwrap_or_default()})
}

fn failed_saying(result: (String, String), words: &str) {
    assert_eq!(result.0, "FAILED", "{}", result.1);
    assert!(result.1.contains(words), "expected `{words}` in: {}", result.1);
}

#[test]
fn tls_with_the_ca_given_writes_and_reads_back() {
    let certs = Certs::new("tls-ca");
    let broker = TlsBroker::start(&certs, "server", None, &[]);
    let config = config_with(&broker.bootstrap(), ssl(&certs, Some("ca.pem")));
    assert_eq!(check(&config).0, "SUCCEEDED");
    let scratch = Scratch::new("tls-write");
    let (config_path, catalog) =
        (scratch.json("config.json", &config), scratch.json("catalog.json", &json!({"streams": [{"name": "users"}]})));
    let out = run(&["write", "--config", &config_path, "--catalog", &catalog], &(records(0, 5) + &state(1)));
    let msgs = messages(&out);
    assert!(out.status.success(), "{:?}", of_type(&msgs, "TRACE"));
    assert_eq!(of_type(&msgs, "STATE").len(), 1);
    let ca = certs.path("ca.pem");
    let tls = [("security.protocol", "SSL"), ("ssl.ca.location", ca.as_str())];
    assert_eq!(read_back_with(&broker.bootstrap(), &tls, "users", 5).len(), 5);
}

#[test]
fn tls_with_the_ca_in_the_system_store_only() {
    let certs = Certs::new("tls-system");
    let broker = TlsBroker::start(&certs, "server", None, &[]);
    let config = config_with(&broker.bootstrap(), ssl(&certs, None));
    // OpenSSL's default trust store, pointed at a store holding the test CA: no CA in the config.
    let ca = certs.path("ca.pem");
    let store = [("SSL_CERT_FILE", ca.as_str()), ("SSL_CERT_DIR", "/nonexistent")];
    assert_eq!(check_with_env(&config, &store).0, "SUCCEEDED");
    // The machine's own store does not know the test CA.
    failed_saying(check(&config), "`protocol.ssl_ca_certificates`");
}

#[test]
fn tls_failures_name_what_to_fix() {
    let certs = Certs::new("tls-failures");
    let broker = TlsBroker::start(&certs, "server", None, &[]);
    failed_saying(check(&config_with(&broker.bootstrap(), ssl(&certs, Some("other-ca.pem")))), "not signed by a CA");
    // A PLAINTEXT client at a TLS listener.
    let plain = config_with(&broker.bootstrap(), json!({"security_protocol": "PLAINTEXT"}));
    assert_eq!(check(&plain).0, "FAILED");

    let mismatch = TlsBroker::start(&certs, "mismatch", None, &[]);
    let config = config_with(&mismatch.bootstrap(), ssl(&certs, Some("ca.pem")));
    failed_saying(check(&config), "`protocol.ssl_endpoint_identification`");
    let mut opted_out = ssl(&certs, Some("ca.pem"));
    opted_out["ssl_endpoint_identification"] = json!(false);
    let (status, message) = check(&config_with(&mismatch.bootstrap(), opted_out));
    assert_eq!(status, "SUCCEEDED", "{message}");
    assert!(message.contains("ssl_endpoint_identification` is off"), "the opt-out is said: {message}");

    let expired = TlsBroker::start(&certs, "expired", None, &[]);
    failed_saying(check(&config_with(&expired.bootstrap(), ssl(&certs, Some("ca.pem")))), "has expired");
}

#[test]
fn mutual_tls() {
    let certs = Certs::new("mtls");
    let broker = TlsBroker::start(&certs, "server", Some("ca.pem"), &[]);
    let with_client = |cert: &str, key: &str, password: &str| {
        let mut protocol = ssl(&certs, Some("ca.pem"));
        protocol["ssl_client_certificate"] = json!(certs.pem(cert));
        protocol["ssl_client_key"] = json!(certs.pem(key));
        protocol["ssl_key_password"] = json!(password);
        config_with(&broker.bootstrap(), protocol)
    };
    assert_eq!(check(&with_client("client.pem", "client.key", "")).0, "SUCCEEDED");
    assert_eq!(check(&with_client("client.pem", "client-encrypted.key", "key-password")).0, "SUCCEEDED");
    failed_saying(
        check(&config_with(&broker.bootstrap(), ssl(&certs, Some("ca.pem")))),
        "requires a client certificate",
    );
    failed_saying(check(&with_client("stranger.pem", "stranger.key", "")), "refused the client certificate");
    failed_saying(check(&with_client("client.pem", "client-encrypted.key", "wrong")), "`protocol.ssl_key_password`");
    failed_saying(check(&with_client("client.pem", "client-encrypted.key", "")), "`protocol.ssl_key_password`");
    failed_saying(check(&with_client("client.pem", "stranger.key", "")), "is not the key of");
}

fn scram(mechanism: &str, user: &str, password: &str) -> Value {
    json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism, "sasl_username": user, "sasl_password": password})
}

#[test]
fn scram_logins_succeed_with_the_right_password_and_fail_with_a_wrong_one() {
    let broker = Broker::start_sasl();
    assert_eq!(
        check(&config_with(&broker.bootstrap(), scram("SCRAM-SHA-256", "alice", "alice-secret"))).0,
        "SUCCEEDED"
    );
    assert_eq!(check(&config_with(&broker.bootstrap(), scram("SCRAM-SHA-512", "bob", "bob-secret"))).0, "SUCCEEDED");
    failed_saying(
        check(&config_with(&broker.bootstrap(), scram("SCRAM-SHA-256", "alice", "wrong"))),
        "authentication failed",
    );
    failed_saying(
        check(&config_with(&broker.bootstrap(), scram("SCRAM-SHA-512", "alice", "alice-secret"))),
        "authentication failed",
    );
    // Java's JAAS string works the same.
    let jaas = json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_jaas_config": "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"bob-secret\";"});
    let config = config_with(&broker.bootstrap(), jaas);
    assert_eq!(check(&config).0, "SUCCEEDED");
    let scratch = Scratch::new("scram-write");
    let (config_path, catalog) =
        (scratch.json("config.json", &config), scratch.json("catalog.json", &json!({"streams": [{"name": "users"}]})));
    let out = run(&["write", "--config", &config_path, "--catalog", &catalog], &(records(0, 3) + &state(1)));
    assert!(out.status.success(), "{:?}", of_type(&messages(&out), "TRACE"));
    let login = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "bob"),
        ("sasl.password", "bob-secret"),
    ];
    assert_eq!(read_back_with(&broker.bootstrap(), &login, "users", 3).len(), 3);
}

#[test]
fn plain_is_refused_by_this_broker_and_says_so() {
    // tansu 0.6.0 is built without SASL/PLAIN: no PLAIN login can succeed here, or be refused for its password.
    let broker = Broker::start_sasl();
    let plain = json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "alice", "sasl_password": "alice-secret"});
    let (status, message) = check(&config_with(&broker.bootstrap(), plain));
    assert_eq!(status, "FAILED");
    assert!(message.contains("PLAIN"), "{message}");
}

#[test]
fn sasl_ssl_is_scram_through_tls() {
    let certs = Certs::new("sasl-ssl");
    let broker = TlsBroker::start(&certs, "server", None, &["--sasl"]);
    let protocol = |password: &str| {
        let mut p = ssl(&certs, Some("ca.pem"));
        p["security_protocol"] = json!("SASL_SSL");
        p["sasl_mechanism"] = json!("SCRAM-SHA-256");
        p["sasl_username"] = json!("alice");
        p["sasl_password"] = json!(password);
        p
    };
    assert_eq!(check(&config_with(&broker.bootstrap(), protocol("alice-secret"))).0, "SUCCEEDED");
    failed_saying(check(&config_with(&broker.bootstrap(), protocol("nope"))), "authentication failed");
}

/// A token endpoint on 127.0.0.1 that records each request and answers with `status` and `body`.
struct TokenEndpoint {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TokenEndpoint {
    fn start(status: &'static str, body: String) -> TokenEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut request_body = vec![0; length];
                let _ = reader.read_exact(&mut request_body);
                seen.lock().unwrap().push(head + "\r\n" + &String::from_utf8_lossy(&request_body));
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = (&stream).write_all(reply.as_bytes());
            }
        });
        TokenEndpoint { port, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/oauth2/token", self.port)
    }
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    bytes
        .chunks(3)
        .flat_map(|c| {
            let n = c.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - c.len()));
            (0..=c.len()).map(move |i| A[(n >> (18 - 6 * i) & 63) as usize] as char)
        })
        .collect()
}

fn oidc(url: &str, secret: &str) -> Value {
    json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER", "oauth_token_endpoint_url": url,
        "oauth_client_id": "connector-1", "oauth_client_secret": secret, "oauth_scope": "kafka.write"})
}

#[test]
fn oidc_client_credentials_fetch_a_token_the_broker_then_judges() {
    let broker = Broker::start_sasl();
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let jwt = format!(
        "{}.{}.c2ln",
        b64url(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64url(format!(r#"{{"sub":"connector-1","exp":{exp}}}"#).as_bytes())
    );
    let endpoint = TokenEndpoint::start(
        "200 OK",
        json!({"access_token": jwt, "token_type": "bearer", "expires_in": 3600}).to_string(),
    );
    let (status, message) = check(&config_with(&broker.bootstrap(), oidc(&endpoint.url(), "s3cret")));
    let requests = endpoint.requests.lock().unwrap().clone();
    let request = requests.first().expect("the connector asked the token endpoint");
    assert!(request.starts_with("POST /oauth2/token"), "{request}");
    // Basic base64("connector-1:s3cret"), as RFC 6749 client credentials.
    assert!(request.contains("Authorization: Basic Y29ubmVjdG9yLTE6czNjcmV0"), "{request}");
    assert!(request.contains("grant_type=client_credentials") && request.contains("scope=kafka.write"), "{request}");
    // tansu refuses every OAUTHBEARER token: the refusal is the broker's, not the endpoint's.
    assert_eq!(status, "FAILED");
    assert!(message.contains("authentication failed") && !message.contains("token endpoint"), "{message}");
}

#[test]
fn oidc_endpoint_refusing_or_unreachable_is_said_precisely() {
    let broker = Broker::start_sasl();
    let refusing = TokenEndpoint::start("401 Unauthorized", r#"{"error":"invalid_client"}"#.to_string());
    let (status, message) = check(&config_with(&broker.bootstrap(), oidc(&refusing.url(), "wrong")));
    assert_eq!(status, "FAILED");
    assert!(message.contains("gave no token") && message.contains("`protocol.oauth_client_secret`"), "{message}");
    assert!(message.contains("invalid_client"), "the endpoint's words: {message}");
    let unreachable = format!("http://127.0.0.1:{}/token", free_port());
    let (status, message) = check(&config_with(&broker.bootstrap(), oidc(&unreachable, "s")));
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("cannot be reached") && message.contains("`protocol.oauth_token_endpoint_url`"),
        "{message}"
    );
}

#[test]
fn no_secret_reaches_any_output_even_at_rust_log_trace() {
    let certs = Certs::new("secrets");
    let broker = TlsBroker::start(&certs, "server", Some("ca.pem"), &["--sasl"]);
    let key = certs.pem("client-encrypted.key");
    let mut protocol = ssl(&certs, Some("ca.pem"));
    protocol["security_protocol"] = json!("SASL_SSL");
    protocol["sasl_mechanism"] = json!("SCRAM-SHA-256");
    protocol["sasl_username"] = json!("alice");
    protocol["sasl_password"] = json!("alice-secret");
    protocol["ssl_client_certificate"] = json!(certs.pem("client.pem"));
    protocol["ssl_client_key"] = json!(key);
    protocol["ssl_key_password"] = json!("key-password");
    let mut config = config_with(&broker.bootstrap(), protocol);
    config["kafka_properties"] = json!({"socket.keepalive.enable": "true"});
    let scratch = Scratch::new("secrets-write");
    let config_path = scratch.json("config.json", &config);
    let catalog = scratch.json("catalog.json", &json!({"streams": [{"name": "users"}]}));
    let secrets = ["alice-secret", "key-password", key.lines().nth(1).unwrap()];
    for args in
        [vec!["check", "--config", &config_path], vec!["write", "--config", &config_path, "--catalog", &catalog]]
    {
        let mut child = Command::new(BIN)
            .args(&args)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all((records(0, 2) + &state(1)).as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let everything = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(everything.contains("\"level\":\"DEBUG\""), "trace logging is on: {everything}");
        for secret in secrets {
            assert!(!everything.contains(secret), "`{args:?}` printed a secret");
        }
        assert!(of_type(&messages(&out), "TRACE").is_empty(), "{:?}", of_type(&messages(&out), "TRACE"));
    }
}

fn msk_iam(certs: &Certs, keys: Option<(&str, &str)>) -> Value {
    let mut protocol = ssl(certs, Some("ca.pem"));
    protocol["security_protocol"] = json!("SASL_SSL");
    protocol["sasl_mechanism"] = json!("AWS_MSK_IAM");
    protocol["aws_region"] = json!("us-east-1");
    if let Some((key, secret)) = keys {
        protocol["aws_access_key_id"] = json!(key);
        protocol["aws_secret_access_key"] = json!(secret);
    }
    protocol
}

/// No AWS credentials anywhere: no environment keys, no profile files, no instance metadata.
const NO_AWS: [(&str, &str); 6] = [
    ("AWS_ACCESS_KEY_ID", ""),
    ("AWS_SECRET_ACCESS_KEY", ""),
    ("AWS_CONFIG_FILE", "/nonexistent/config"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", ""),
];

#[test]
fn msk_iam_signs_a_token_or_says_no_credentials_were_found() {
    // No MSK here: tansu refuses every OAUTHBEARER token, so a signed token shows as the broker's refusal; the
    // token itself is checked against AWS's signer in src/kafka/msk_iam.rs and acceptance-tests/test_msk_iam.py.
    let certs = Certs::new("msk-iam");
    let broker = TlsBroker::start(&certs, "server", None, &["--sasl"]);
    let with_keys = config_with(&broker.bootstrap(), msk_iam(&certs, Some(("AKIDEXAMPLE", "secret-key-1"))));
    let (status, message) = check_with_env(&with_keys, &NO_AWS);
    assert_eq!(status, "FAILED");
    assert!(
        message.starts_with("AWS MSK IAM authentication failed") && !message.contains("no AWS credentials"),
        "{message}"
    );
    assert!(!message.contains("secret-key-1"));
    let (status, message) = check_with_env(&config_with(&broker.bootstrap(), msk_iam(&certs, None)), &NO_AWS);
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("no AWS credentials found") && message.contains("`protocol.aws_access_key_id`"),
        "{message}"
    );
}

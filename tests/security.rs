//! TLS, mutual TLS, SASL (PLAIN, SCRAM, OAUTHBEARER with OIDC) and AWS MSK IAM against Apache Kafka's own
//! listeners (scripts/kafka-broker): TLS with PEM certificates (scripts/test-certs), a listener requiring client
//! certificates, listeners with an expired certificate and one for another host, SASL users the broker checks,
//! OAUTHBEARER tokens the broker validates against a JWKS (signature, audience), and an OIDC token endpoint started
//! here. Each refusal is shown beside the success on the same listener, so a broker that let everything in would
//! fail these tests.

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use test_support::oauth::{jwt, now, TokenEndpoint};
use test_support::*;

fn kafka() -> &'static Kafka {
    Kafka::shared()
}

fn config_with(listener: &str, protocol: Value, topics: &str) -> Value {
    let mut config = java_config(&kafka().listener(listener));
    config["protocol"] = protocol;
    config["topic_pattern"] = json!(format!("{topics}.{{stream}}"));
    config
}

/// `check` on this config (with these environment variables): (status, message).
fn check_with_env(config: &Value, env: &[(&str, &str)]) -> (String, String) {
    let files = Files::new("check-security", config, &catalog(&[]));
    let out = run_with_env(&["check", "--config", &files.config], env, "");
    assert!(out.status.success(), "check exits 0 either way");
    let msgs = messages(&out);
    let status = &of_type(&msgs, "CONNECTION_STATUS")[0]["connectionStatus"];
    (status["status"].as_str().unwrap().to_string(), status["message"].as_str().unwrap_or_default().to_string())
}

fn check(config: &Value) -> (String, String) {
    check_with_env(config, &[])
}

fn succeeded(result: (String, String)) {
    assert_eq!(result.0, "SUCCEEDED", "{}", result.1);
}

fn failed_saying(result: (String, String), words: &str) {
    assert_eq!(result.0, "FAILED", "{}", result.1);
    assert!(result.1.contains(words), "expected `{words}` in: {}", result.1);
}

/// A write of three records and a state with this config; returns the topic written, read back on PLAINTEXT.
fn write_and_read_back(config: &Value, topics: &str) {
    let files = Files::new(topics, config, &catalog(&["users"]));
    let msgs = run_ok(&files.write_args(), &(records(0, 3) + &state(1)));
    assert_eq!(state_ids(&msgs), vec![1]);
    assert_eq!(read_back(&kafka().bootstrap(), &format!("{topics}_users"), 3).len(), 3);
}

fn ssl(ca: Option<&str>) -> Value {
    json!({"security_protocol": "SSL", "ssl_ca_certificates": ca.map(|c| kafka().pem(c)).unwrap_or_default()})
}

#[test]
fn tls_with_the_ca_given_writes_and_a_tls_consumer_reads_back() {
    let config = config_with("ssl", ssl(Some("ca")), "tls_ca");
    succeeded(check(&config));
    write_and_read_back(&config, "tls_ca");
    let ca = kafka().tls_path("ca");
    let tls = [("security.protocol", "SSL"), ("ssl.ca.location", ca.as_str())];
    assert_eq!(read_back_with(&kafka().listener("ssl"), &tls, "tls_ca_users", 3).len(), 3);
}

#[test]
fn tls_with_the_ca_in_the_system_store_only() {
    let config = config_with("ssl", ssl(None), "tls_system");
    // OpenSSL's default trust store, pointed at a store holding the test CA: no CA in the config.
    let ca = kafka().tls_path("ca");
    succeeded(check_with_env(&config, &[("SSL_CERT_FILE", ca.as_str()), ("SSL_CERT_DIR", "/nonexistent")]));
    // The machine's own store does not know the test CA.
    failed_saying(check(&config), "`protocol.ssl_ca_certificates`");
}

#[test]
fn tls_failures_name_what_to_fix() {
    failed_saying(check(&config_with("ssl", ssl(Some("other_ca")), "tls_f")), "not signed by a CA");
    // A PLAINTEXT client at a TLS listener.
    assert_eq!(check(&config_with("ssl", json!({"security_protocol": "PLAINTEXT"}), "tls_f")).0, "FAILED");
    // The WRONG_HOST listener's certificate names elsewhere.example.
    failed_saying(
        check(&config_with("wrong_host", ssl(Some("ca")), "tls_f")),
        "`protocol.ssl_endpoint_identification`",
    );
    let mut opted_out = ssl(Some("ca"));
    opted_out["ssl_endpoint_identification"] = json!(false);
    let (status, message) = check(&config_with("wrong_host", opted_out, "tls_f"));
    assert_eq!(status, "SUCCEEDED", "{message}");
    assert!(message.contains("ssl_endpoint_identification` is off"), "the opt-out is said: {message}");
    failed_saying(check(&config_with("expired", ssl(Some("ca")), "tls_f")), "has expired");
}

#[test]
fn mutual_tls() {
    let with_client = |cert: &str, key: &str, password: &str| {
        let mut protocol = ssl(Some("ca"));
        protocol["ssl_client_certificate"] = json!(kafka().pem(cert));
        protocol["ssl_client_key"] = json!(kafka().pem(key));
        protocol["ssl_key_password"] = json!(password);
        config_with("mtls", protocol, "mtls")
    };
    succeeded(check(&with_client("client_cert", "client_key", "")));
    write_and_read_back(&with_client("client_cert", "client_key_encrypted", "key-password"), "mtls");
    failed_saying(check(&config_with("mtls", ssl(Some("ca")), "mtls")), "requires a client certificate");
    failed_saying(check(&with_client("stranger_cert", "stranger_key", "")), "refused the client certificate");
    failed_saying(check(&with_client("client_cert", "client_key_encrypted", "wrong")), "`protocol.ssl_key_password`");
    failed_saying(check(&with_client("client_cert", "client_key_encrypted", "")), "`protocol.ssl_key_password`");
    failed_saying(check(&with_client("client_cert", "stranger_key", "")), "is not the key of");
}

fn sasl(protocol: &str, mechanism: &str, user: &str, password: &str) -> Value {
    let mut p = json!({"security_protocol": protocol, "sasl_mechanism": mechanism, "sasl_username": user,
        "sasl_password": password});
    if protocol == "SASL_SSL" {
        p["ssl_ca_certificates"] = json!(kafka().pem("ca"));
    }
    p
}

#[test]
fn scram_logins_succeed_with_the_right_password_and_fail_with_a_wrong_one() {
    let on = |p| config_with("sasl_plaintext", p, "scram");
    succeeded(check(&on(sasl("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "alice-secret"))));
    succeeded(check(&on(sasl("SASL_PLAINTEXT", "SCRAM-SHA-512", "bob", "bob-secret"))));
    failed_saying(check(&on(sasl("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "wrong"))), "authentication failed");
    // alice has SCRAM-SHA-256 credentials only.
    failed_saying(
        check(&on(sasl("SASL_PLAINTEXT", "SCRAM-SHA-512", "alice", "alice-secret"))),
        "authentication failed",
    );
    // Java's JAAS string works the same.
    let jaas = json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_jaas_config": "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"bob\" password=\"bob-secret\";"});
    write_and_read_back(&on(jaas), "scram");
}

#[test]
fn plain_logins_succeed_and_a_wrong_password_is_refused() {
    let on = |p| config_with("sasl_plaintext", p, "plain");
    write_and_read_back(&on(sasl("SASL_PLAINTEXT", "PLAIN", "plain", "plain-secret")), "plain");
    let (status, message) = check(&on(sasl("SASL_PLAINTEXT", "PLAIN", "plain", "not-the-password")));
    assert_eq!(status, "FAILED");
    assert!(message.contains("authentication failed") && message.contains("`protocol.sasl_password`"), "{message}");
    assert!(!message.contains("not-the-password"), "the password is never shown: {message}");
}

#[test]
fn sasl_ssl_is_sasl_through_tls() {
    let on = |p| config_with("sasl_ssl", p, "sasl_ssl");
    write_and_read_back(&on(sasl("SASL_SSL", "SCRAM-SHA-256", "alice", "alice-secret")), "sasl_ssl");
    succeeded(check(&on(sasl("SASL_SSL", "PLAIN", "plain", "plain-secret"))));
    failed_saying(check(&on(sasl("SASL_SSL", "SCRAM-SHA-256", "alice", "nope"))), "authentication failed");
}

fn oidc(url: &str, secret: &str) -> Value {
    json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER", "oauth_token_endpoint_url": url,
        "oauth_client_id": "connector-1", "oauth_client_secret": secret, "oauth_scope": "kafka.write"})
}

/// A token as the identity provider the broker trusts issues it (the broker's JWKS holds its key), with
/// `audience` and a lifetime from `issued` to `expires` (seconds from now).
fn token(key: &str, audience: &str, issued: i64, expires: i64) -> String {
    let now = now() as i64;
    let claims = json!({"sub": "oauth-client", "aud": audience, "iat": now + issued, "exp": now + expires,
        "scope": "kafka.write"});
    jwt(kafka().info["oauth"][key].as_str().unwrap(), kafka().info["oauth"]["kid"].as_str().unwrap(), &claims)
}

#[test]
fn oidc_client_credentials_get_a_token_the_broker_validates_and_accepts() {
    let endpoint = TokenEndpoint::issuing(&token("key", "kafka-broker", -10, 3600));
    let config = config_with("sasl_plaintext", oidc(&endpoint.url(), "s3cret"), "oidc");
    write_and_read_back(&config, "oidc");
    let requests = endpoint.requests.lock().unwrap().clone();
    let request = requests.first().expect("the connector asked the token endpoint");
    assert!(request.starts_with("POST /oauth2/token"), "{request}");
    // Basic base64("connector-1:s3cret"), as RFC 6749 client credentials.
    assert!(request.contains("Authorization: Basic Y29ubmVjdG9yLTE6czNjcmV0"), "{request}");
    assert!(request.contains("grant_type=client_credentials") && request.contains("scope=kafka.write"), "{request}");
}

#[test]
fn tokens_the_broker_must_refuse_are_refused_and_blamed_on_the_token() {
    // Signed by a key the broker does not trust, then for another audience: the broker's validator refuses both,
    // and the message speaks of the token, not of a username and password.
    for (token, what) in [
        (token("foreign_key", "kafka-broker", -10, 3600), "foreign key"),
        (token("key", "another-service", -10, 3600), "wrong audience"),
    ] {
        let endpoint = TokenEndpoint::issuing(&token);
        let (status, message) = check(&config_with("sasl_plaintext", oidc(&endpoint.url(), "s"), "oidc_refused"));
        assert_eq!(status, "FAILED", "{what}: {message}");
        assert!(message.contains("refused the token from"), "{what}: {message}");
        assert!(message.contains("audience") && message.contains("`protocol.oauth_client_id`"), "{what}: {message}");
        assert!(!message.contains("password"), "{what}: {message}");
    }
    // An expired token: librdkafka refuses it before it reaches the broker.
    let endpoint = TokenEndpoint::issuing(&token("key", "kafka-broker", -7200, -3600));
    let (status, message) = check(&config_with("sasl_plaintext", oidc(&endpoint.url(), "s"), "oidc_refused"));
    assert_eq!(status, "FAILED", "{message}");
    assert!(message.contains("token") && !message.contains("password"), "{message}");
}

#[test]
fn oidc_endpoint_refusing_or_unreachable_is_said_precisely() {
    let refusing = TokenEndpoint::answering("401 Unauthorized", r#"{"error":"invalid_client"}"#.to_string());
    let (status, message) = check(&config_with("sasl_plaintext", oidc(&refusing.url(), "wrong"), "oidc_endpoint"));
    assert_eq!(status, "FAILED");
    assert!(message.contains("gave no token") && message.contains("`protocol.oauth_client_secret`"), "{message}");
    assert!(message.contains("invalid_client"), "the endpoint's words: {message}");
    // Port 1: nothing listens there.
    let (status, message) =
        check(&config_with("sasl_plaintext", oidc("http://127.0.0.1:1/token", "s"), "oidc_endpoint"));
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("cannot be reached") && message.contains("`protocol.oauth_token_endpoint_url`"),
        "{message}"
    );
}

#[test]
fn no_secret_reaches_any_output_even_at_rust_log_trace() {
    let key = kafka().pem("client_key_encrypted");
    let mut protocol = sasl("SASL_SSL", "SCRAM-SHA-256", "alice", "alice-secret");
    protocol["ssl_client_certificate"] = json!(kafka().pem("client_cert"));
    protocol["ssl_client_key"] = json!(key);
    protocol["ssl_key_password"] = json!("key-password");
    let mut config = config_with("sasl_ssl", protocol, "secrets");
    config["kafka_properties"] = json!({"socket.keepalive.enable": "true"});
    let files = Files::new("secrets", &config, &catalog(&["users"]));
    let secrets = ["alice-secret", "key-password", key.lines().nth(1).unwrap()];
    for args in [vec!["check", "--config", &files.config], files.write_args().to_vec()] {
        let mut child = Command::new(bin())
            .args(&args)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), (records(0, 2) + &state(1)).as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let everything = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(everything.contains("\"level\":\"DEBUG\""), "trace logging is on");
        for secret in secrets {
            assert!(!everything.contains(secret), "`{args:?}` printed a secret");
        }
        assert!(of_type(&messages(&out), "TRACE").is_empty(), "{:?}", of_type(&messages(&out), "TRACE"));
    }
}

fn msk_iam(keys: Option<(&str, &str)>) -> Value {
    let mut protocol = json!({"security_protocol": "SASL_SSL", "sasl_mechanism": "AWS_MSK_IAM",
        "aws_region": "us-east-1", "ssl_ca_certificates": kafka().pem("ca")});
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
fn msk_iam_sends_a_signed_token_or_says_no_credentials_were_found() {
    // No MSK here: Kafka's OAUTHBEARER validator refuses the IAM token (it is not a JWT it can verify), which shows
    // the token was made and sent; the token itself is checked against AWS's signer in src/kafka/msk_iam.rs and
    // acceptance-tests/test_msk_iam.py.
    let with_keys = config_with("sasl_ssl", msk_iam(Some(("AKIDEXAMPLE", "secret-key-1"))), "msk");
    let (status, message) = check_with_env(&with_keys, &NO_AWS);
    assert_eq!(status, "FAILED");
    assert!(
        message.starts_with("AWS MSK IAM authentication failed") && !message.contains("no AWS credentials"),
        "{message}"
    );
    assert!(!message.contains("secret-key-1"));
    let (status, message) = check_with_env(&config_with("sasl_ssl", msk_iam(None), "msk"), &NO_AWS);
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("no AWS credentials found") && message.contains("`protocol.aws_access_key_id`"),
        "{message}"
    );
}

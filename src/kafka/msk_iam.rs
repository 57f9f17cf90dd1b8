//! AWS MSK IAM authentication (`sasl_mechanism: AWS_MSK_IAM`): OAUTHBEARER on the wire, with as token a SigV4
//! presigned `kafka-cluster:Connect` URL — byte for byte what AWS's own signer (`aws-msk-iam-sasl-signer-python`)
//! makes — generated in process when librdkafka asks for one (at start, then at 80 % of its lifetime).
//!
//! Credentials: the static keys of the config, else AWS's standard chain (`aws-config`): environment, profile
//! (`aws_profile`, `AWS_PROFILE`), web identity (EKS), container (ECS, EKS Pod Identity) and instance metadata.

use crate::config::security::{Sasl, SaslMechanism};
use crate::config::Settings;
use crate::error::{Error, Result};
use aws_credential_types::provider::ProvideCredentials;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a token is valid, as AWS's signer makes them.
const LIFETIME: Duration = Duration::from_secs(900);
/// Cached credentials are fetched again when they expire within this.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);
const USER_AGENT: &str = concat!("destination-kafka/", env!("CARGO_PKG_VERSION"));

#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// When temporary credentials stop working.
    pub expires: Option<SystemTime>,
}

/// A token and when it stops being valid, in epoch milliseconds.
#[derive(Debug, PartialEq, Eq)]
pub struct Token {
    pub value: String,
    pub expires_ms: i64,
}

/// RFC 3986: unreserved characters as they are, every other byte as `%XX` (upper case).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token for these credentials, in `region`, signed at `now`. `user_agent` is appended after signing, as
/// AWS's signer does (it is not signed).
pub fn token(credentials: &Credentials, region: &str, now: SystemTime, user_agent: &str) -> Token {
    let now: DateTime<Utc> = now.into();
    let (date, time) = (now.format("%Y%m%d").to_string(), now.format("%Y%m%dT%H%M%SZ").to_string());
    let host = format!("kafka.{region}.amazonaws.com");
    let scope = format!("{date}/{region}/kafka-cluster/aws4_request");
    let credential = encode(&format!("{}/{scope}", credentials.access_key_id));
    let token = credentials.session_token.as_deref().map(encode);
    let mut signed = vec![
        ("Action", "kafka-cluster%3AConnect".to_string()),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential", credential),
        ("X-Amz-Date", time.clone()),
        ("X-Amz-Expires", LIFETIME.as_secs().to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ];
    if let Some(token) = &token {
        signed.push(("X-Amz-Security-Token", token.clone()));
    }
    let mut canonical_query = signed.clone();
    canonical_query.sort_by(|a, b| a.0.cmp(b.0));
    let canonical_query: Vec<String> = canonical_query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let empty_body = hex(&Sha256::digest(b""));
    let canonical_request = format!("GET\n/\n{}\nhost:{host}\n\nhost\n{empty_body}", canonical_query.join("&"));
    let to_sign = format!("AWS4-HMAC-SHA256\n{time}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())));
    let key = ["aws4_request"].iter().fold(
        hmac(&hmac(&hmac(format!("AWS4{}", credentials.secret_access_key).as_bytes(), &date), region), "kafka-cluster"),
        |key, part| hmac(&key, part),
    );
    let signature = hex(&hmac(&key, &to_sign));
    let query: Vec<String> = signed.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let user_agent: String = url_quote_plus(user_agent);
    let url = format!("https://{host}/?{}&X-Amz-Signature={signature}&User-Agent={user_agent}", query.join("&"));
    let expires = now.timestamp() + LIFETIME.as_secs() as i64;
    Token { value: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url), expires_ms: expires * 1000 }
}

/// Python's `urllib.parse.quote_plus`: what AWS's signer uses for the unsigned User-Agent.
fn url_quote_plus(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The region of an MSK bootstrap host (`b-1.name.id.c2.kafka.<region>.amazonaws.com`, serverless
/// `boot-id.c1.kafka-serverless.<region>.amazonaws.com`).
pub fn region_of(bootstrap_servers: &str) -> Option<String> {
    bootstrap_servers.split(',').find_map(|server| {
        let host = server.trim().rsplit_once(':').map_or(server.trim(), |(h, _)| h);
        let labels: Vec<&str> = host.split('.').collect();
        let at = labels.iter().position(|l| *l == "kafka" || *l == "kafka-serverless")?;
        (labels.get(at + 2) == Some(&"amazonaws")).then(|| labels.get(at + 1).map(|r| r.to_string())).flatten()
    })
}

enum Source {
    Static(Credentials),
    Chain { profile: Option<String> },
}

/// Makes tokens on demand, with credentials cached until shortly before they expire.
pub struct MskIam {
    region: String,
    source: Source,
    cached: Mutex<Option<Credentials>>,
}

impl MskIam {
    /// The token maker of a connection that authenticates with AWS_MSK_IAM, or `None`.
    pub fn of(settings: &Settings) -> Result<Option<MskIam>> {
        match settings.security.sasl() {
            Some(sasl) if sasl.sasl_mechanism == SaslMechanism::AwsMskIam => {
                Ok(Some(MskIam::new(sasl, &settings.bootstrap_servers)?))
            }
            _ => Ok(None),
        }
    }

    pub fn new(sasl: &Sasl, bootstrap_servers: &str) -> Result<MskIam> {
        let region = Some(sasl.aws_region.trim().to_string())
            .filter(|r| !r.is_empty())
            .or_else(|| region_of(bootstrap_servers))
            .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty()))
            .ok_or_else(|| {
                Error::Config(
                    "AWS_MSK_IAM needs the cluster's region: set `protocol.aws_region` (it could not be read from \
                     `bootstrap_servers` or AWS_REGION)"
                        .into(),
                )
            })?;
        let (key, secret) = (sasl.aws_access_key_id.expose().trim(), sasl.aws_secret_access_key.expose().trim());
        let source = match (key.is_empty(), secret.is_empty()) {
            (true, true) => {
                Source::Chain { profile: Some(sasl.aws_profile.trim().to_string()).filter(|p| !p.is_empty()) }
            }
            (false, false) => Source::Static(Credentials {
                access_key_id: key.to_string(),
                secret_access_key: secret.to_string(),
                session_token: Some(sasl.aws_session_token.expose().trim().to_string()).filter(|t| !t.is_empty()),
                expires: None,
            }),
            _ => {
                return Err(Error::Config(
                    "AWS_MSK_IAM with static credentials needs both `protocol.aws_access_key_id` and \
                     `protocol.aws_secret_access_key`"
                        .into(),
                ))
            }
        };
        Ok(MskIam { region, source, cached: Mutex::new(None) })
    }

    /// A fresh token: valid for 15 minutes, or until the credentials expire if that is sooner.
    pub fn token(&self) -> std::result::Result<Token, String> {
        let credentials = self.credentials()?;
        let now = SystemTime::now();
        let mut token = token(&credentials, &self.region, now, USER_AGENT);
        if let Some(expires) = credentials.expires {
            let expires_ms = expires.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            token.expires_ms = token.expires_ms.min(expires_ms);
        }
        Ok(token)
    }

    fn credentials(&self) -> std::result::Result<Credentials, String> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = |c: &Credentials| c.expires.is_none_or(|e| e > SystemTime::now() + CREDENTIALS_MARGIN);
        if let Some(credentials) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(credentials.clone());
        }
        let credentials = match &self.source {
            Source::Static(credentials) => credentials.clone(),
            Source::Chain { profile } => chain(&self.region, profile.as_deref())?,
        };
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}

/// AWS's default credentials chain, run to completion on a runtime of its own (librdkafka asks for a token from
/// whatever thread serves its events, never from inside another runtime).
fn chain(region: &str, profile: Option<&str>) -> std::result::Result<Credentials, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the AWS credentials runtime: {e}"))?;
    let found = runtime.block_on(async {
        let mut builder = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .region(aws_config::Region::new(region.to_string()));
        if let Some(profile) = profile {
            builder = builder.profile_name(profile);
        }
        builder.build().await.provide_credentials().await
    });
    let credentials = found.map_err(|e| {
        format!(
            "no AWS credentials found ({e}): set `protocol.aws_access_key_id` and `protocol.aws_secret_access_key`, \
             or give the connector credentials the standard way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, \
             a web identity token, or a container or instance role)"
        )
    })?;
    Ok(Credentials {
        access_key_id: credentials.access_key_id().to_string(),
        secret_access_key: credentials.secret_access_key().to_string(),
        session_token: credentials.session_token().map(str::to_string),
        expires: credentials.expiry(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens made by AWS's own signer (`aws-msk-iam-sasl-signer-python` 1.0.2, botocore) for fixed credentials,
    /// region and clock; `acceptance-tests/test_msk_iam.py` makes them again with it and compares.
    fn vectors() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/fixtures/msk-iam-tokens.json")).unwrap()
    }

    #[test]
    fn tokens_equal_aws_signer_tokens() {
        for case in vectors()["cases"].as_array().unwrap() {
            let credentials = Credentials {
                access_key_id: case["access_key_id"].as_str().unwrap().into(),
                secret_access_key: case["secret_access_key"].as_str().unwrap().into(),
                session_token: case["session_token"].as_str().map(str::to_string),
                expires: None,
            };
            let at = UNIX_EPOCH + Duration::from_secs(case["epoch_seconds"].as_u64().unwrap());
            let made = token(&credentials, case["region"].as_str().unwrap(), at, case["user_agent"].as_str().unwrap());
            assert_eq!(made.value, case["token"].as_str().unwrap(), "{}", case["name"]);
            assert_eq!(made.expires_ms, case["expires_ms"].as_i64().unwrap(), "{}", case["name"]);
        }
    }

    #[test]
    fn regions_from_msk_hosts() {
        assert_eq!(region_of("b-1.demo.abc123.c2.kafka.eu-west-3.amazonaws.com:9098").as_deref(), Some("eu-west-3"));
        assert_eq!(
            region_of("x:1,boot-ab.c1.kafka-serverless.us-east-2.amazonaws.com:9098").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(region_of("broker.example.com:9092"), None);
    }

    fn sasl(fields: serde_json::Value) -> Sasl {
        let mut value = serde_json::json!({"sasl_mechanism": "AWS_MSK_IAM"});
        value.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_token_lives_fifteen_minutes_or_until_its_credentials_expire() {
        let keys = serde_json::json!({"aws_access_key_id": "AK", "aws_secret_access_key": "SK"});
        let iam = MskIam::new(&sasl(keys), "b-1.x.y.c2.kafka.us-east-1.amazonaws.com:9098").unwrap();
        assert_eq!(iam.region, "us-east-1", "from the bootstrap host");
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let token = iam.token().unwrap();
        assert!((token.expires_ms - now_ms - 900_000).abs() < 5_000, "15 minutes");
        // Temporary credentials expiring in 2 minutes: the token must not outlive them, and they are fetched again
        // for the next token (librdkafka asks for one at 80 % of the lifetime given).
        let soon = SystemTime::now() + Duration::from_secs(120);
        let temporary = Credentials {
            access_key_id: "AK".into(),
            secret_access_key: "SK".into(),
            session_token: Some("T".into()),
            expires: Some(soon),
        };
        let iam = MskIam { region: "us-east-1".into(), source: Source::Static(temporary), cached: Mutex::new(None) };
        let short = iam.token().unwrap();
        assert_eq!(short.expires_ms, soon.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64);
        let cached = iam.cached.lock().unwrap().clone().unwrap();
        assert!(cached.expires == Some(soon));
    }

    #[test]
    fn missing_region_and_half_credentials_are_config_errors() {
        let err = MskIam::new(&sasl(serde_json::json!({})), "broker.example.com:9092");
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            assert!(err.err().unwrap().to_string().contains("`protocol.aws_region`"));
        }
        let half = MskIam::new(&sasl(serde_json::json!({"aws_region": "us-east-1", "aws_access_key_id": "AK"})), "x:1");
        assert!(half.err().unwrap().to_string().contains("`protocol.aws_secret_access_key`"));
    }
}

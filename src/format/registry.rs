//! A Confluent Schema Registry client: the subset a producer needs (register a schema under a subject, get its id;
//! check the registry answers and accepts the credentials). Schemas are registered once per stream at start.

use crate::airbyte::catalog::Stream;
use crate::config::encoding::RegistrySettings;
use crate::error::{Error, Result};
use base64::Engine as _;
use serde::Deserialize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub struct Registry {
    url: String,
    agent: ureq::Agent,
    authorization: Option<String>,
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

#[derive(Deserialize, Default)]
struct Refusal {
    #[serde(default)]
    message: String,
}

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Bytes of Confluent's wire-format frame: magic byte 0, then the schema id, 4 bytes big-endian.
pub const FRAME: usize = 5;

/// The start of every message of a schema: its frame.
pub fn frame(id: u32) -> Vec<u8> {
    let mut framed = Vec::with_capacity(4096);
    framed.push(0);
    framed.extend_from_slice(&id.to_be_bytes());
    framed
}

/// The TLS connector of an http:// registry, built only if it is used (a redirect to https): building one reads
/// the system's CA store, measured at ~0.5G instructions, a fifth of a 100k-record Avro sync's.
struct OnFirstUse {
    builder: native_tls::TlsConnectorBuilder,
    built: OnceLock<std::result::Result<native_tls::TlsConnector, String>>,
}

impl ureq::TlsConnector for OnFirstUse {
    fn connect(
        &self,
        dns_name: &str,
        io: Box<dyn ureq::ReadWrite>,
    ) -> std::result::Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        let built = self.built.get_or_init(|| self.builder.build().map_err(|e| format!("TLS settings: {e}")));
        match built {
            Ok(tls) => ureq::TlsConnector::connect(tls, dns_name, io),
            Err(e) => Err(std::io::Error::other(e.clone()).into()),
        }
    }
}

impl Registry {
    pub fn new(settings: &RegistrySettings) -> Result<Registry> {
        let not_a_url =
            || Error::Config("config field `format.schema_registry_url` must be an http:// or https:// URL".into());
        let mut parsed = url::Url::parse(settings.schema_registry_url.trim()).map_err(|_| not_a_url())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(not_a_url());
        }
        // `https://KEY:SECRET@host` works as credentials, and the URL in messages never carries them.
        let decode = |text: &str| percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned();
        let userinfo = (!parsed.username().is_empty())
            .then(|| format!("{}:{}", decode(parsed.username()), decode(parsed.password().unwrap_or_default())));
        let _ = (parsed.set_username(""), parsed.set_password(None));
        let url = parsed.as_str().trim_end_matches('/').to_string();
        let mut tls = native_tls::TlsConnector::builder();
        let ca = settings.schema_registry_ca_certificates.trim();
        for pem in ca.split_inclusive("-----END CERTIFICATE-----").filter(|p| p.contains("BEGIN CERTIFICATE")) {
            let certificate = native_tls::Certificate::from_pem(pem.trim().as_bytes()).map_err(|e| {
                Error::Config(format!("config field `format.schema_registry_ca_certificates` is not PEM: {e}"))
            })?;
            tls.add_root_certificate(certificate);
        }
        let agent = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(10)).timeout(Duration::from_secs(30));
        let agent = if parsed.scheme() == "https" {
            let tls = tls.build().map_err(|e| Error::Config(format!("the schema registry's TLS settings: {e}")))?;
            agent.tls_connector(Arc::new(tls))
        } else {
            agent.tls_connector(Arc::new(OnFirstUse { builder: tls, built: OnceLock::new() }))
        };
        let agent = agent.build();
        let username = settings.schema_registry_username.trim();
        let pair = match userinfo {
            _ if !username.is_empty() => Some(format!("{username}:{}", settings.schema_registry_password.expose())),
            Some(userinfo) => Some(userinfo),
            None => None,
        };
        let authorization = pair.map(|p| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(p)));
        Ok(Registry { url, agent, authorization })
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let request = self.agent.request(method, &format!("{}{path}", self.url)).set("Accept", CONTENT_TYPE);
        match &self.authorization {
            Some(auth) => request.set("Authorization", auth),
            None => request,
        }
    }

    /// Registers `schema` under `subject` (or finds it there) and returns its id.
    pub fn register(&self, subject: &str, schema: &str, schema_type: &str) -> Result<u32> {
        let body = serde_json::json!({"schema": schema, "schemaType": schema_type, "references": []});
        let path = format!("/subjects/{}/versions", encode_path(subject));
        let send = || {
            let request = self.request("POST", &path).set("Content-Type", CONTENT_TYPE);
            request.send_string(&body.to_string()).map_err(Box::new)
        };
        let response =
            retried(send).map_err(|e| self.explain(*e, &format!("registering the schema of subject `{subject}`")))?;
        let registered: Registered = response.into_json().map_err(|e| {
            Error::System(format!("the schema registry's answer for subject `{subject}` has no id: {e}"))
        })?;
        Ok(registered.id)
    }

    /// Registers a stream's schema under the subject its strategy names (`record`: the schema's record name or
    /// title) and returns the frame its messages start with.
    pub fn register_stream(
        &self,
        settings: &RegistrySettings,
        stream: &Stream,
        record: &str,
        schema: &str,
        schema_type: &str,
    ) -> Result<Vec<u8>> {
        let subject = settings.subject_name_strategy.subject(&stream.topic, record);
        let id = self
            .register(&subject, schema, schema_type)
            .map_err(|e| e.context(&format!("stream `{}`", stream.describe())))?;
        let kind = if schema_type == "AVRO" { "Avro" } else { schema_type };
        tracing::info!("stream `{}`: {kind} schema registered as subject `{subject}`, id {id}", stream.describe());
        Ok(frame(id))
    }

    /// The registry answers and takes the credentials.
    pub fn check(&self) -> Result<()> {
        retried(|| self.request("GET", "/subjects").call().map_err(Box::new))
            .map(|_| ())
            .map_err(|e| self.explain(*e, "listing subjects"))
    }

    /// The registry's refusal or failure in words; whether it is the user's to fix or worth a retry follows the
    /// HTTP status (the failure policy's `Failure::of_http`).
    fn explain(&self, error: ureq::Error, doing: &str) -> Error {
        let url = &self.url;
        let (message, status) = match error {
            ureq::Error::Status(409, response) => {
                let reason = response.into_json::<Refusal>().unwrap_or_default().message;
                let message = format!(
                    "the schema registry at {url} refused an incompatible schema ({doing}): {reason}; the subject's \
                     compatibility setting forbids this change"
                );
                (message, Some(409))
            }
            ureq::Error::Status(code @ (401 | 403), _) => {
                let message = format!(
                    "the schema registry at {url} refused the credentials ({doing}, HTTP {code}): check \
                     `format.schema_registry_username` and `format.schema_registry_password`"
                );
                (message, Some(code))
            }
            ureq::Error::Status(code, response) => {
                let reason = response.into_string().unwrap_or_default();
                (format!("the schema registry at {url} answered {doing} with HTTP {code}: {reason}"), Some(code))
            }
            ureq::Error::Transport(transport) => {
                let why = transport.to_string();
                if why.to_ascii_lowercase().contains("certificate") {
                    return Error::Config(format!(
                        "TLS with the schema registry at {url} failed ({why}): check \
                         `format.schema_registry_ca_certificates`"
                    ));
                }
                (format!("the schema registry at {url} cannot be reached ({doing}): {why}"), None)
            }
        };
        Error::Http { message, status }
    }
}

/// Tries a request up to three times while the connection itself fails (refused, reset, closed before an answer),
/// half a second then a second apart: a registry restarting or shedding connections is common in the field, and both
/// requests are idempotent (registering a schema twice returns its one id). An HTTP answer is never retried here.
fn retried(
    mut call: impl FnMut() -> std::result::Result<ureq::Response, Box<ureq::Error>>,
) -> std::result::Result<ureq::Response, Box<ureq::Error>> {
    let mut pause = Duration::from_millis(500);
    for _ in 1..3 {
        match call() {
            Err(why) if matches!(*why, ureq::Error::Transport(_)) => {
                tracing::warn!(
                    "the schema registry's connection failed ({why}); trying again in {} ms",
                    pause.as_millis()
                );
                std::thread::sleep(pause);
                pause *= 2;
            }
            answered => return answered,
        }
    }
    call()
}

/// A subject in a URL path: everything but RFC 3986's unreserved characters escaped.
fn encode_path(subject: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(subject, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::encoding::SubjectNameStrategy;
    use crate::secret::Secret;

    #[test]
    fn subjects_are_escaped_in_paths() {
        assert_eq!(
            (encode_path("a b/c"), encode_path("shop.orders-value")),
            ("a%20b%2Fc".into(), "shop.orders-value".into())
        );
    }

    #[test]
    fn credentials_in_the_url_are_used_and_never_shown() {
        let settings = |url: &str| RegistrySettings {
            schema_registry_url: url.into(),
            schema_registry_username: String::new(),
            schema_registry_password: Secret::default(),
            schema_registry_ca_certificates: String::new(),
            subject_name_strategy: SubjectNameStrategy::default(),
        };
        let registry = Registry::new(&settings("https://KEY:p%40ss@registry.example:8081/")).unwrap();
        assert_eq!(registry.url, "https://registry.example:8081");
        let expected = base64::engine::general_purpose::STANDARD.encode("KEY:p@ss");
        assert_eq!(registry.authorization.as_deref(), Some(format!("Basic {expected}").as_str()));
        assert!(Registry::new(&settings("http://registry:8081/path@x")).unwrap().authorization.is_none());
        let refused = Registry::new(&settings("ftp://KEY:SECRET@host")).err().unwrap().to_string();
        assert!(refused.contains("http:// or https://") && !refused.contains("SECRET"), "{refused}");
    }

    /// A registry that drops the first connection without answering, then answers: the schema is still
    /// registered (a double: a real registry cannot be made to drop one connection on cue).
    #[test]
    fn a_dropped_connection_is_tried_again() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            drop(listener.accept().unwrap());
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.ends_with(b"[]}") {
                let n = conn.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
            }
            let body = "{\"id\":7}";
            let answer =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            conn.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        let settings = RegistrySettings {
            schema_registry_url: url,
            schema_registry_username: String::new(),
            schema_registry_password: Secret::default(),
            schema_registry_ca_certificates: String::new(),
            subject_name_strategy: SubjectNameStrategy::default(),
        };
        assert_eq!(Registry::new(&settings).unwrap().register("s-value", "\"int\"", "AVRO").unwrap(), 7);
        assert!(server.join().unwrap().starts_with("POST /subjects/s-value/versions"));
    }
}

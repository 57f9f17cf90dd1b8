//! A Confluent Schema Registry client: the subset a producer needs (register a schema under a subject, get its id;
//! check the registry answers and accepts the credentials). Schemas are registered once per stream at start.

use crate::config::Secret;
use crate::error::{Error, Result};
use base64::Engine as _;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The registry settings of the `avro` and `json_schema` formats.
#[derive(Debug, Deserialize)]
pub struct RegistrySettings {
    pub schema_registry_url: String,
    #[serde(default)]
    pub schema_registry_username: String,
    #[serde(default)]
    pub schema_registry_password: Secret,
    #[serde(default)]
    pub schema_registry_ca_certificates: String,
    #[serde(default)]
    pub subject_name_strategy: SubjectNameStrategy,
}

/// How a subject is named (Confluent's strategies).
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum SubjectNameStrategy {
    /// `<topic>-value`.
    #[default]
    TopicNameStrategy,
    /// The record's full name (Avro) or the schema's title (JSON Schema).
    RecordNameStrategy,
    /// `<topic>-<record full name>`.
    TopicRecordNameStrategy,
}

impl SubjectNameStrategy {
    pub fn subject(self, topic: &str, record: &str) -> String {
        match self {
            SubjectNameStrategy::TopicNameStrategy => format!("{topic}-value"),
            SubjectNameStrategy::RecordNameStrategy => record.to_string(),
            SubjectNameStrategy::TopicRecordNameStrategy => format!("{topic}-{record}"),
        }
    }
}

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
        let tls = tls.build().map_err(|e| Error::Config(format!("the schema registry's TLS settings: {e}")))?;
        let agent = ureq::AgentBuilder::new()
            .tls_connector(Arc::new(tls))
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build();
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
        let response = self
            .request("POST", &path)
            .set("Content-Type", CONTENT_TYPE)
            .send_string(&body.to_string())
            .map_err(|e| self.explain(e, &format!("registering the schema of subject `{subject}`")))?;
        let registered: Registered = response.into_json().map_err(|e| {
            Error::System(format!("the schema registry's answer for subject `{subject}` has no id: {e}"))
        })?;
        Ok(registered.id)
    }

    /// The registry answers and takes the credentials.
    pub fn check(&self) -> Result<()> {
        self.request("GET", "/subjects").call().map(|_| ()).map_err(|e| self.explain(e, "listing subjects"))
    }

    fn explain(&self, error: ureq::Error, doing: &str) -> Error {
        let url = &self.url;
        match error {
            ureq::Error::Status(409, response) => {
                let reason = response.into_json::<Refusal>().unwrap_or_default().message;
                Error::Config(format!(
                    "the schema registry at {url} refused an incompatible schema ({doing}): {reason}; the subject's \
                     compatibility setting forbids this change"
                ))
            }
            ureq::Error::Status(code @ (401 | 403), _) => Error::Config(format!(
                "the schema registry at {url} refused the credentials ({doing}, HTTP {code}): check \
                 `format.schema_registry_username` and `format.schema_registry_password`"
            )),
            // Rate limited (Confluent Cloud's 429), timed out, or failing: worth a retry of the sync.
            ureq::Error::Status(code @ (408 | 429 | 500..), response) => {
                let reason = response.into_string().unwrap_or_default();
                Error::Transient(format!("the schema registry at {url} failed ({doing}, HTTP {code}): {reason}"))
            }
            ureq::Error::Status(code, response) => {
                let reason = response.into_string().unwrap_or_default();
                Error::Config(format!("the schema registry at {url} refused {doing} (HTTP {code}): {reason}"))
            }
            ureq::Error::Transport(transport) => {
                let why = transport.to_string();
                if why.to_ascii_lowercase().contains("certificate") {
                    Error::Config(format!(
                        "TLS with the schema registry at {url} failed ({why}): check \
                         `format.schema_registry_ca_certificates`"
                    ))
                } else {
                    Error::Transient(format!("the schema registry at {url} cannot be reached ({doing}): {why}"))
                }
            }
        }
    }
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

    #[test]
    fn subject_names() {
        use SubjectNameStrategy::*;
        assert_eq!(TopicNameStrategy.subject("orders", "shop.orders"), "orders-value");
        assert_eq!(RecordNameStrategy.subject("orders", "shop.orders"), "shop.orders");
        assert_eq!(TopicRecordNameStrategy.subject("orders", "shop.orders"), "orders-shop.orders");
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
}

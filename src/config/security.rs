//! How the connector authenticates and encrypts: `protocol` in the spec. A [`Security`] applies itself to the
//! librdkafka properties, so every way of reaching a cluster lives here: TLS (CA, client certificate, host-name
//! checks), SASL with fields or Java's JAAS string, OAUTHBEARER with OIDC client credentials, and AWS MSK IAM.

use super::jaas::{self, JaasError};
use super::lenient;
use super::properties::Properties;
use crate::error::{Error, Result};
use crate::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(tag = "security_protocol")]
pub enum Security {
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "SSL")]
    Ssl(Tls),
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext(Sasl),
    #[serde(rename = "SASL_SSL")]
    SaslSsl {
        #[serde(flatten)]
        sasl: Sasl,
        #[serde(flatten)]
        tls: Tls,
    },
}

/// TLS settings (`SSL`, `SASL_SSL`). PEM text goes to librdkafka as text (`ssl.*.pem`): no key file is written.
#[derive(Debug, Deserialize)]
pub struct Tls {
    #[serde(default)]
    pub ssl_ca_certificates: String,
    #[serde(default)]
    pub ssl_client_certificate: Secret,
    #[serde(default)]
    pub ssl_client_key: Secret,
    #[serde(default)]
    pub ssl_key_password: Secret,
    #[serde(default = "yes", deserialize_with = "lenient::boolean")]
    pub ssl_endpoint_identification: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct Sasl {
    pub sasl_mechanism: SaslMechanism,
    #[serde(default)]
    pub sasl_jaas_config: Secret,
    #[serde(default)]
    pub sasl_username: String,
    #[serde(default)]
    pub sasl_password: Secret,
    #[serde(default)]
    pub oauth_token_endpoint_url: String,
    #[serde(default)]
    pub oauth_client_id: String,
    #[serde(default)]
    pub oauth_client_secret: Secret,
    #[serde(default)]
    pub oauth_scope: String,
    #[serde(default)]
    pub oauth_extensions: String,
    #[serde(default)]
    pub aws_region: String,
    #[serde(default)]
    pub aws_access_key_id: Secret,
    #[serde(default)]
    pub aws_secret_access_key: Secret,
    #[serde(default)]
    pub aws_session_token: Secret,
    #[serde(default)]
    pub aws_profile: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "OAUTHBEARER")]
    OAuthBearer,
    #[serde(rename = "GSSAPI")]
    Gssapi,
    /// OAUTHBEARER on the wire, with a SigV4-signed token (`kafka::msk_iam`).
    #[serde(rename = "AWS_MSK_IAM")]
    AwsMskIam,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
            SaslMechanism::Gssapi => "GSSAPI",
            SaslMechanism::AwsMskIam => "AWS_MSK_IAM",
        }
    }
}

const PROTOCOL: &str = "protocol.security_protocol";
const MECHANISM: &str = "protocol.sasl_mechanism";
const JAAS: &str = "protocol.sasl_jaas_config";

fn blank(text: &str) -> bool {
    text.trim().is_empty()
}

impl Security {
    pub fn sasl(&self) -> Option<&Sasl> {
        match self {
            Security::Plaintext | Security::Ssl(_) => None,
            Security::SaslPlaintext(sasl) | Security::SaslSsl { sasl, .. } => Some(sasl),
        }
    }

    /// A client certificate is configured (mutual TLS).
    pub fn client_certificate(&self) -> bool {
        self.tls().is_some_and(|tls| !blank(tls.ssl_client_certificate.expose()))
    }

    pub fn tls(&self) -> Option<&Tls> {
        match self {
            Security::Ssl(tls) | Security::SaslSsl { tls, .. } => Some(tls),
            Security::Plaintext | Security::SaslPlaintext(_) => None,
        }
    }

    /// Sets `security.protocol` and what TLS and authentication need.
    pub fn apply(&self, props: &mut Properties) -> Result<()> {
        let protocol = match self {
            Security::Plaintext => "PLAINTEXT",
            Security::Ssl(_) => "SSL",
            Security::SaslPlaintext(_) => "SASL_PLAINTEXT",
            Security::SaslSsl { .. } => "SASL_SSL",
        };
        props.set("security.protocol", protocol, PROTOCOL);
        if let Some(tls) = self.tls() {
            tls.apply(props)?;
        }
        if let Some(sasl) = self.sasl() {
            if sasl.sasl_mechanism == SaslMechanism::AwsMskIam && self.tls().is_none() {
                return Err(Error::Config(
                    "`protocol.sasl_mechanism` AWS_MSK_IAM needs `protocol.security_protocol` SASL_SSL (MSK's IAM \
                     listeners are TLS only)"
                        .into(),
                ));
            }
            sasl.apply(props)?;
        }
        Ok(())
    }

    /// What the user should know about these settings.
    pub fn caveats(&self) -> Vec<String> {
        let mut caveats = Vec::new();
        if let Some(sasl) = self.sasl() {
            if sasl.has_credential_fields() && !blank(sasl.sasl_jaas_config.expose()) {
                caveats.push(
                    "`protocol.sasl_username` and `protocol.sasl_password` are set: they are used, not the username \
                     and password in `protocol.sasl_jaas_config`"
                        .to_string(),
                );
            }
        }
        if self.tls().is_some_and(|tls| !tls.ssl_endpoint_identification) {
            caveats.push(
                "`protocol.ssl_endpoint_identification` is off: a broker's certificate is not checked against its \
                 host name, so any certificate the CA signed is accepted for any broker"
                    .to_string(),
            );
        }
        caveats
    }
}

impl Tls {
    fn apply(&self, props: &mut Properties) -> Result<()> {
        if !blank(&self.ssl_ca_certificates) {
            props.set("ssl.ca.pem", self.ssl_ca_certificates.trim(), "protocol.ssl_ca_certificates");
        }
        let (certificate, key) = (self.ssl_client_certificate.expose(), self.ssl_client_key.expose());
        match (blank(certificate), blank(key)) {
            (true, true) => {}
            (false, false) => {
                props.set_secret("ssl.certificate.pem", certificate.trim(), "protocol.ssl_client_certificate");
                props.set_secret("ssl.key.pem", key.trim(), "protocol.ssl_client_key");
                if !self.ssl_key_password.expose().is_empty() {
                    props.set_secret("ssl.key.password", self.ssl_key_password.expose(), "protocol.ssl_key_password");
                }
            }
            (false, true) => return Err(Error::Config(
                "`protocol.ssl_client_certificate` is set but `protocol.ssl_client_key` is not: mutual TLS needs both"
                    .into(),
            )),
            (true, false) => return Err(Error::Config(
                "`protocol.ssl_client_key` is set but `protocol.ssl_client_certificate` is not: mutual TLS needs both"
                    .into(),
            )),
        }
        let identification = if self.ssl_endpoint_identification { "https" } else { "none" };
        props.set("ssl.endpoint.identification.algorithm", identification, "protocol.ssl_endpoint_identification");
        Ok(())
    }
}

impl Sasl {
    fn has_credential_fields(&self) -> bool {
        !blank(&self.sasl_username) || !self.sasl_password.expose().is_empty()
    }

    /// librdkafka has no JAAS: the options Java would have used become the properties that mean the same; the
    /// plain fields (username and password, OIDC) are used as they are.
    fn apply(&self, props: &mut Properties) -> Result<()> {
        let mechanism = self.sasl_mechanism;
        let name = mechanism.as_str();
        match mechanism {
            SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                props.set("sasl.mechanism", name, MECHANISM);
                if self.has_credential_fields() {
                    if blank(&self.sasl_username) || self.sasl_password.expose().is_empty() {
                        return Err(Error::Config(format!(
                            "{name} needs both `protocol.sasl_username` and `protocol.sasl_password`"
                        )));
                    }
                    props.set("sasl.username", self.sasl_username.trim(), "protocol.sasl_username");
                    props.set_secret("sasl.password", self.sasl_password.expose(), "protocol.sasl_password");
                } else {
                    let jaas = self.jaas()?;
                    props.set_secret("sasl.username", jaas.require("username", name)?, JAAS);
                    props.set_secret("sasl.password", jaas.require("password", name)?, JAAS);
                }
            }
            SaslMechanism::OAuthBearer if !blank(&self.oauth_token_endpoint_url) => {
                props.set("sasl.mechanism", name, MECHANISM);
                if blank(&self.oauth_client_id) || self.oauth_client_secret.expose().is_empty() {
                    return Err(Error::Config(
                        "OAUTHBEARER with `protocol.oauth_token_endpoint_url` needs `protocol.oauth_client_id` and \
                         `protocol.oauth_client_secret`"
                            .into(),
                    ));
                }
                props.set("sasl.oauthbearer.method", "oidc", "protocol.oauth_token_endpoint_url");
                props.set(
                    "sasl.oauthbearer.token.endpoint.url",
                    self.oauth_token_endpoint_url.trim(),
                    "protocol.oauth_token_endpoint_url",
                );
                props.set("sasl.oauthbearer.client.id", self.oauth_client_id.trim(), "protocol.oauth_client_id");
                props.set_secret(
                    "sasl.oauthbearer.client.secret",
                    self.oauth_client_secret.expose(),
                    "protocol.oauth_client_secret",
                );
                if !blank(&self.oauth_scope) {
                    props.set("sasl.oauthbearer.scope", self.oauth_scope.trim(), "protocol.oauth_scope");
                }
                if !blank(&self.oauth_extensions) {
                    props.set("sasl.oauthbearer.extensions", self.oauth_extensions.trim(), "protocol.oauth_extensions");
                }
            }
            SaslMechanism::OAuthBearer => {
                props.set("sasl.mechanism", name, MECHANISM);
                // Java's unsecured-token options; librdkafka's unsecured JWT takes the same claims.
                let jaas = self.jaas()?;
                let principal = jaas
                    .get("unsecuredLoginStringClaim_sub")
                    .ok_or_else(|| JaasError::NotUnsecuredOauth { module: jaas.module.clone() })?;
                let mut config = format!("principal={principal}");
                if let Some(scope) = jaas.get("unsecuredLoginListClaim_scope") {
                    config.push_str(&format!(" scope={scope}"));
                }
                props.set("enable.sasl.oauthbearer.unsecure.jwt", "true", JAAS);
                props.set_secret("sasl.oauthbearer.config", config, JAAS);
            }
            SaslMechanism::Gssapi => {
                props.set("sasl.mechanism", name, MECHANISM);
                let jaas = self.jaas()?;
                props.set("sasl.kerberos.service.name", jaas.get("serviceName").unwrap_or("kafka"), JAAS);
                if let Some(principal) = jaas.get("principal") {
                    props.set("sasl.kerberos.principal", principal, JAAS);
                }
                if let Some(keytab) = jaas.get("keyTab") {
                    props.set("sasl.kerberos.keytab", keytab, JAAS);
                }
            }
            // The token comes from our own hook (`kafka::msk_iam`): librdkafka's must stay off.
            SaslMechanism::AwsMskIam => props.set("sasl.mechanism", "OAUTHBEARER", MECHANISM),
        }
        Ok(())
    }

    fn jaas(&self) -> Result<jaas::Jaas, JaasError> {
        jaas::parse(self.sasl_jaas_config.expose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn security(value: serde_json::Value) -> Security {
        serde_json::from_value(value).unwrap()
    }

    fn props_of(value: serde_json::Value) -> Result<Properties> {
        let mut props = Properties::default();
        security(value).apply(&mut props)?;
        Ok(props)
    }

    fn jaas_sasl(mechanism: &str, jaas: &str) -> Result<Properties> {
        props_of(json!({"security_protocol": "SASL_SSL", "sasl_mechanism": mechanism, "sasl_jaas_config": jaas}))
    }

    #[test]
    fn plain_and_scram_from_jaas() {
        let props = jaas_sasl(
            "PLAIN",
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cr=t;x";"#,
        )
        .unwrap();
        assert_eq!(props.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(props.get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!((props.get("sasl.username"), props.get("sasl.password")), (Some("alice"), Some("s3cr=t;x")));
        assert_eq!(props.get("ssl.endpoint.identification.algorithm"), Some("https"));

        let props = jaas_sasl(
            "SCRAM-SHA-512",
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=bob\n  password=\"p\\\"q\\\\\";",
        )
        .unwrap();
        assert_eq!(props.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!((props.get("sasl.username"), props.get("sasl.password")), (Some("bob"), Some("p\"q\\")));
    }

    #[test]
    fn username_and_password_fields_win_over_jaas_and_say_so() {
        let config = json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_username": "alice", "sasl_password": "right",
            "sasl_jaas_config": "x.ScramLoginModule required username=\"other\" password=\"wrong\";"});
        let props = props_of(config.clone()).unwrap();
        assert_eq!((props.get("sasl.username"), props.get("sasl.password")), (Some("alice"), Some("right")));
        assert!(security(config).caveats()[0].contains("not the username and password in `protocol.sasl_jaas_config`"));
        let only_fields = json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": "p"});
        assert!(props_of(only_fields.clone()).is_ok() && security(only_fields).caveats().is_empty());
        let half = json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u"});
        assert!(props_of(half).err().unwrap().to_string().contains("`protocol.sasl_password`"));
    }

    #[test]
    fn tls_material_as_pem_text() {
        let props = props_of(json!({"security_protocol": "SSL", "ssl_ca_certificates": " CA PEM \n",
            "ssl_client_certificate": "CERT", "ssl_client_key": "KEY", "ssl_key_password": "pw",
            "ssl_endpoint_identification": "false"}))
        .unwrap();
        assert_eq!(props.get("security.protocol"), Some("SSL"));
        assert_eq!(props.get("ssl.ca.pem"), Some("CA PEM"));
        assert_eq!((props.get("ssl.certificate.pem"), props.get("ssl.key.pem")), (Some("CERT"), Some("KEY")));
        assert_eq!(props.get("ssl.key.password"), Some("pw"));
        assert_eq!(props.get("ssl.endpoint.identification.algorithm"), Some("none"));
        assert!(!format!("{props:?}").contains("KEY") && !format!("{props:?}").contains("\"pw\""));
        let system_store = props_of(json!({"security_protocol": "SSL"})).unwrap();
        assert_eq!(system_store.get("ssl.ca.pem"), None);
        let half = props_of(json!({"security_protocol": "SSL", "ssl_client_certificate": "CERT"}));
        assert!(half.err().unwrap().to_string().contains("`protocol.ssl_client_key` is not"));
    }

    #[test]
    fn oauthbearer_oidc_unsecured_and_gssapi() {
        let props = props_of(json!({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER",
            "oauth_token_endpoint_url": "https://idp/token", "oauth_client_id": "id", "oauth_client_secret": "s",
            "oauth_scope": "kafka", "oauth_extensions": "logicalCluster=lkc-1"}))
        .unwrap();
        assert_eq!(props.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(props.get("sasl.oauthbearer.token.endpoint.url"), Some("https://idp/token"));
        assert_eq!(
            (props.get("sasl.oauthbearer.client.id"), props.get("sasl.oauthbearer.client.secret")),
            (Some("id"), Some("s"))
        );
        assert_eq!(
            (props.get("sasl.oauthbearer.scope"), props.get("sasl.oauthbearer.extensions")),
            (Some("kafka"), Some("logicalCluster=lkc-1"))
        );
        let no_secret = props_of(json!({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER",
            "oauth_token_endpoint_url": "https://idp/token", "oauth_client_id": "id"}));
        assert!(no_secret.err().unwrap().to_string().contains("`protocol.oauth_client_secret`"));

        let props = jaas_sasl(
            "OAUTHBEARER",
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="svc";"#,
        )
        .unwrap();
        assert_eq!(props.get("sasl.oauthbearer.config"), Some("principal=svc"));
        assert_eq!(props.get("enable.sasl.oauthbearer.unsecure.jwt"), Some("true"));

        let props = jaas_sasl(
            "GSSAPI",
            r#"com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="/k.keytab" principal="kafka/h@R";"#,
        )
        .unwrap();
        assert_eq!(props.get("sasl.kerberos.keytab"), Some("/k.keytab"));
        assert_eq!(props.get("sasl.kerberos.service.name"), Some("kafka"));
        assert_eq!(props.get("sasl.kerberos.principal"), Some("kafka/h@R"));
    }

    #[test]
    fn msk_iam_is_oauthbearer_over_tls_only() {
        let props = props_of(json!({"security_protocol": "SASL_SSL", "sasl_mechanism": "AWS_MSK_IAM"})).unwrap();
        assert_eq!(props.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(props.get("sasl.oauthbearer.method"), None);
        let plaintext = props_of(json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "AWS_MSK_IAM"}));
        assert!(plaintext.err().unwrap().to_string().contains("SASL_SSL"));
    }

    #[test]
    fn missing_options_name_the_option_not_the_secret() {
        let err = jaas_sasl("PLAIN", r#"x.PlainLoginModule required username="u";"#).err().unwrap();
        let text = err.to_string();
        assert!(text.contains("`password`") && text.contains("protocol.sasl_jaas_config"), "{text}");
        let err = jaas_sasl("OAUTHBEARER", r#"x.OAuthBearerLoginModule required secret="topsecret";"#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unsecuredLoginStringClaim_sub") && !err.contains("topsecret"), "{err}");
    }
}

//! How the connector authenticates and encrypts: `protocol` in the spec. A [`Security`] applies itself to the
//! librdkafka properties, so every way of reaching a cluster lives here.

use super::jaas::{self, JaasError};
use super::librdkafka::Properties;
use super::Secret;
use crate::error::Result;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(tag = "security_protocol")]
pub enum Security {
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext(Sasl),
    #[serde(rename = "SASL_SSL")]
    SaslSsl(Sasl),
}

#[derive(Debug, Deserialize)]
pub struct Sasl {
    pub sasl_mechanism: SaslMechanism,
    pub sasl_jaas_config: Secret,
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
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
            SaslMechanism::Gssapi => "GSSAPI",
        }
    }
}

const PROTOCOL: &str = "protocol.security_protocol";
const MECHANISM: &str = "protocol.sasl_mechanism";
const JAAS: &str = "protocol.sasl_jaas_config";

impl Security {
    pub fn sasl(&self) -> Option<&Sasl> {
        match self {
            Security::Plaintext => None,
            Security::SaslPlaintext(sasl) | Security::SaslSsl(sasl) => Some(sasl),
        }
    }

    /// Sets `security.protocol` and what authentication needs.
    pub fn apply(&self, props: &mut Properties) -> Result<()> {
        let protocol = match self {
            Security::Plaintext => "PLAINTEXT",
            Security::SaslPlaintext(_) => "SASL_PLAINTEXT",
            Security::SaslSsl(_) => "SASL_SSL",
        };
        props.set("security.protocol", protocol, PROTOCOL);
        if let Some(sasl) = self.sasl() {
            sasl.apply(props)?;
        }
        Ok(())
    }
}

impl Sasl {
    /// librdkafka has no JAAS: the options Java would have used become the properties that mean the same.
    fn apply(&self, props: &mut Properties) -> Result<(), JaasError> {
        let mechanism = self.sasl_mechanism;
        props.set("sasl.mechanism", mechanism.as_str(), MECHANISM);
        let jaas = jaas::parse(self.sasl_jaas_config.expose())?;
        let name = mechanism.as_str();
        match mechanism {
            SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                props.set_secret("sasl.username", jaas.require("username", name)?, JAAS);
                props.set_secret("sasl.password", jaas.require("password", name)?, JAAS);
            }
            SaslMechanism::OAuthBearer => {
                // Java's unsecured-token options; librdkafka's unsecured JWT takes the same claims.
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
                props.set("sasl.kerberos.service.name", jaas.get("serviceName").unwrap_or("kafka"), JAAS);
                if let Some(principal) = jaas.get("principal") {
                    props.set("sasl.kerberos.principal", principal, JAAS);
                }
                if let Some(keytab) = jaas.get("keyTab") {
                    props.set("sasl.kerberos.keytab", keytab, JAAS);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props_of(mechanism: SaslMechanism, jaas: &str) -> Result<Properties> {
        let mut props = Properties::default();
        let sasl = Sasl { sasl_mechanism: mechanism, sasl_jaas_config: Secret(jaas.into()) };
        Security::SaslSsl(sasl).apply(&mut props)?;
        Ok(props)
    }

    #[test]
    fn plain_and_scram() {
        let props = props_of(
            SaslMechanism::Plain,
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cr=t;x";"#,
        )
        .unwrap();
        assert_eq!(props.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(props.get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!((props.get("sasl.username"), props.get("sasl.password")), (Some("alice"), Some("s3cr=t;x")));

        let props = props_of(
            SaslMechanism::ScramSha512,
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=bob\n  password=\"p\\\"q\\\\\";",
        )
        .unwrap();
        assert_eq!(props.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!((props.get("sasl.username"), props.get("sasl.password")), (Some("bob"), Some("p\"q\\")));
    }

    #[test]
    fn oauthbearer_and_gssapi() {
        let props = props_of(
            SaslMechanism::OAuthBearer,
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="svc";"#,
        )
        .unwrap();
        assert_eq!(props.get("sasl.oauthbearer.config"), Some("principal=svc"));
        assert_eq!(props.get("enable.sasl.oauthbearer.unsecure.jwt"), Some("true"));

        let props = props_of(
            SaslMechanism::Gssapi,
            r#"com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="/k.keytab" principal="kafka/h@R";"#,
        )
        .unwrap();
        assert_eq!(props.get("sasl.kerberos.keytab"), Some("/k.keytab"));
        assert_eq!(props.get("sasl.kerberos.service.name"), Some("kafka"));
        assert_eq!(props.get("sasl.kerberos.principal"), Some("kafka/h@R"));
    }

    #[test]
    fn missing_options_name_the_option_not_the_secret() {
        let err = props_of(SaslMechanism::Plain, r#"x.PlainLoginModule required username="u";"#).err().unwrap();
        let text = err.to_string();
        assert!(text.contains("`password`") && text.contains("protocol.sasl_jaas_config"), "{text}");
        let err = props_of(SaslMechanism::OAuthBearer, r#"x.OAuthBearerLoginModule required secret="topsecret";"#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unsecuredLoginStringClaim_sub") && !err.contains("topsecret"), "{err}");
    }
}

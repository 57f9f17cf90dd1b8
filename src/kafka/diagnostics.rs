//! Why the cluster cannot be reached. librdkafka reports connection problems (refused, authentication failed,
//! name not resolved) as logs and error events, not as the result of the call that times out; these are kept
//! so a timeout can be explained in one sentence that names what to fix.

use super::tls;
use crate::config::security::SaslMechanism;
use crate::config::Settings;
use crate::error::{Error, Failure, FailureType, Scope};
use rdkafka::error::RDKafkaErrorCode;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Errors librdkafka reported on its own, newest last.
#[derive(Default)]
pub struct Diagnostics {
    recent: Mutex<VecDeque<(Option<RDKafkaErrorCode>, String)>>,
}

/// How telling an error is about the cause: lower is more telling. What the user must fix (the failure policy's
/// hopeless config errors: credentials, certificates, names) outranks a concrete connection error, which outranks
/// librdkafka's summary "all brokers are down".
fn rank(code: Option<RDKafkaErrorCode>) -> u8 {
    let Some(code) = code else { return 2 };
    match Failure::of_code(code) {
        Failure { scope: Scope::Config, hopeless: true, .. } if is_authentication(code) => 0,
        Failure { scope: Scope::Config, hopeless: true, .. } => 1,
        Failure { hopeless: true, .. } => 3,
        _ => 2,
    }
}

fn is_authentication(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed)
}

impl Diagnostics {
    /// Keeps one entry per error code (the newest), so a flood of "brokers are down" cannot push out the cause.
    pub fn push(&self, code: Option<RDKafkaErrorCode>, reason: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|(c, r)| *c != code || (code.is_none() && r != reason));
        if recent.len() == 16 {
            recent.pop_front();
        }
        recent.push_back((code, reason.to_string()));
    }

    /// The most telling error seen: an authentication or resolution problem outranks "all brokers down"; among
    /// equals, the newest.
    pub fn cause(&self) -> Option<(Option<RDKafkaErrorCode>, String)> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().min_by_key(|(code, _)| rank(*code)).cloned()
    }

    /// Whether waiting longer cannot help (the failure policy's `hopeless`): credentials or names are wrong, or
    /// nothing answers at all.
    pub fn is_hopeless(&self) -> bool {
        self.cause().and_then(|(code, _)| code).is_some_and(|code| Failure::of_code(code).hopeless)
    }

    /// A user-facing error for "we could not talk to the cluster" while waiting for `waited` (what did not
    /// happen in time), classified like any librdkafka error.
    pub fn explain(&self, settings: &Settings, waited: &str) -> Error {
        let servers = &settings.bootstrap_servers;
        let Some((code, reason)) = self.cause() else {
            return Error::Transient(format!("no answer from the brokers at {servers}: {waited}"));
        };
        let sasl = settings.security.sasl();
        let mechanism = sasl.map(|s| s.sasl_mechanism);
        let auth = code.is_some_and(is_authentication);
        let client_certificate = settings.security.client_certificate();
        let tls = settings.security.tls().and_then(|tls| {
            // librdkafka says only "certificate verify failed": OpenSSL, asked directly, says why.
            let detail = (reason.contains("certificate verify failed") || reason.contains("could not be verified"))
                .then(|| tls::verification_failure(servers, tls))
                .flatten();
            tls::explain(detail.as_deref().unwrap_or(&reason), client_certificate)
        });
        let oidc = sasl.map(|s| s.oauth_token_endpoint_url.trim()).filter(|url| !url.is_empty());
        let (message, failure) = if mechanism == Some(SaslMechanism::Gssapi)
            && (auth || reason.contains("kinit") || reason.contains("Kerberos"))
        {
            let message = format!(
                "Kerberos (GSSAPI) authentication failed at {servers}: {reason}; check the principal, keyTab and \
                 serviceName in `protocol.sasl_jaas_config`, the realm in /etc/krb5.conf, and that `kinit` runs \
                 where the connector runs"
            );
            (message, FailureType::ConfigError)
        } else if let Some(why) = tls {
            (format!("TLS with {servers} failed: {why} ({reason})"), FailureType::ConfigError)
        } else if let (Some(url), true) = (oidc, reason.contains("OAUTHBEARER token") || reason.contains("OIDC")) {
            explain_token_endpoint(url, &reason)
        } else if mechanism == Some(SaslMechanism::OAuthBearer) && auth {
            // The broker got a token and refused it: its claims or its signature, not a username or password.
            let source = match oidc {
                Some(url) => format!("the token from `{url}` (`protocol.oauth_token_endpoint_url`)"),
                None => "the unsecured token made from `protocol.sasl_jaas_config`".to_string(),
            };
            let message = format!(
                "the broker at {servers} refused {source}: {reason}; check that the identity provider is the one \
                 the broker trusts (its JWKS and issuer), the audience the broker expects, and \
                 `protocol.oauth_client_id` and `protocol.oauth_scope`"
            );
            (message, FailureType::ConfigError)
        } else if mechanism == Some(SaslMechanism::AwsMskIam) && auth {
            let message = format!(
                "AWS MSK IAM authentication failed at {servers}: {reason}; check the AWS credentials (`protocol.aws_*`, \
                 or the environment's), that their role may kafka-cluster:Connect, and `protocol.aws_region`"
            );
            (message, FailureType::ConfigError)
        } else if auth {
            let message = format!(
                "authentication failed at {servers}: {reason}; check `protocol.sasl_mechanism` and the username and \
                 password (`protocol.sasl_username` and `protocol.sasl_password`, or `protocol.sasl_jaas_config`)"
            );
            (message, FailureType::ConfigError)
        } else {
            let message = match code {
                Some(RDKafkaErrorCode::Resolve) => {
                    format!("cannot resolve the broker address in `bootstrap_servers` ({servers}): {reason}")
                }
                Some(RDKafkaErrorCode::SSL) => format!("TLS handshake with {servers} failed: {reason}"),
                _ => format!(
                    "cannot reach the brokers at {servers}: {reason}; check `bootstrap_servers`, the network path and \
                     `protocol.security_protocol`"
                ),
            };
            (message, code.map_or(FailureType::TransientError, |c| Failure::of_code(c).failure_type()))
        };
        let message = format!("{message} ({waited})");
        match failure {
            FailureType::ConfigError => Error::Config(message),
            FailureType::TransientError => Error::Transient(message),
            FailureType::SystemError => Error::System(message),
        }
    }
}

/// librdkafka could not get a token from the OIDC endpoint: unreachable (perhaps for now) or refusing the client.
fn explain_token_endpoint(url: &str, reason: &str) -> (String, FailureType) {
    let unreachable = ["Could not resolve", "Failed to connect", "Couldn't connect", "timed out", "Connection refused"];
    if unreachable.iter().any(|w| reason.contains(w)) {
        let message = format!(
            "the OAuth token endpoint `{url}` cannot be reached ({reason}); check `protocol.oauth_token_endpoint_url`"
        );
        (message, FailureType::TransientError)
    } else {
        let message = format!(
            "the OAuth token endpoint `{url}` gave no token ({reason}); check `protocol.oauth_client_id`, \
             `protocol.oauth_client_secret` and `protocol.oauth_scope`"
        );
        (message, FailureType::ConfigError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::java_config;

    fn settings() -> Settings {
        Settings::from_value(java_config()).unwrap()
    }

    #[test]
    fn authentication_outranks_resolution_outranks_down() {
        let d = Diagnostics::default();
        assert!(d.cause().is_none() && !d.is_hopeless());
        d.push(None, "Connect to ipv4#127.0.0.1:9 failed: Connection refused");
        assert_eq!(d.cause().unwrap().1, "Connect to ipv4#127.0.0.1:9 failed: Connection refused");
        assert!(!d.is_hopeless(), "a refused connection alone may still recover");
        d.push(Some(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        assert_eq!(d.cause().unwrap().1, "Connect to ipv4#127.0.0.1:9 failed: Connection refused");
        assert!(!d.is_hopeless(), "the concrete reason outranks the summary, and says nothing final");
        let down = Diagnostics::default();
        down.push(Some(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        assert!(down.is_hopeless());
        d.push(Some(RDKafkaErrorCode::Resolve), "Failed to resolve 'nowhere:9092'");
        d.push(Some(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        assert_eq!(d.cause().unwrap().0, Some(RDKafkaErrorCode::Resolve));
        d.push(Some(RDKafkaErrorCode::SaslAuthenticationFailed), "SASL authentication error: bad password");
        for _ in 0..40 {
            d.push(Some(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        }
        assert_eq!(d.cause().unwrap().0, Some(RDKafkaErrorCode::SaslAuthenticationFailed), "a flood keeps the cause");
    }

    #[test]
    fn kerberos_failures_speak_of_kerberos_not_passwords() {
        let jaas = r#"com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="/k.keytab" principal="kafka/h@R";"#;
        let c = crate::config::tests::with(
            java_config(),
            "protocol",
            serde_json::json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "GSSAPI", "sasl_jaas_config": jaas}),
        );
        let s = Settings::from_value(c).unwrap();
        let d = Diagnostics::default();
        d.push(None, "Kerberos ticket refresh failed: Command: kinit -R ...: exited with code 127");
        let e = d.explain(&s, "timed out").to_string();
        assert!(e.starts_with("Kerberos (GSSAPI) authentication failed") && e.contains("kinit"), "{e}");
        assert!(!e.contains("password"), "{e}");
    }

    #[test]
    fn explanations_name_what_to_fix_and_are_classified() {
        let s = settings();
        let d = Diagnostics::default();
        let e = d.explain(&s, "timed out");
        assert!(e.is_transient() && e.to_string().contains("no answer") && e.to_string().contains("timed out"));
        d.push(Some(RDKafkaErrorCode::Resolve), "Failed to resolve");
        let e = d.explain(&s, "timed out");
        assert_eq!(e.failure_type(), FailureType::ConfigError);
        assert!(e.to_string().contains("`bootstrap_servers`"), "{e}");
        d.push(Some(RDKafkaErrorCode::Authentication), "bad credentials");
        let e = d.explain(&s, "timed out");
        assert_eq!(e.failure_type(), FailureType::ConfigError);
        assert!(e.to_string().contains("authentication failed") && e.to_string().contains("bad credentials"), "{e}");
        let d = Diagnostics::default();
        d.push(None, "Connection refused");
        let e = d.explain(&s, "timed out");
        assert!(e.is_transient() && e.to_string().contains("cannot reach the brokers"), "{e}");
        assert!(e.to_string().ends_with("(timed out)"), "what was waited for is said: {e}");
    }
}

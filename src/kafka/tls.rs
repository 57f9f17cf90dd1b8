//! TLS diagnosis: librdkafka reports every certificate verification failure with the same words, so the
//! connector repeats the handshake once with OpenSSL (same trust and host-name settings) to read its verdict, and
//! turns OpenSSL's reasons into words that name the field to fix.

use crate::config::security::Tls;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::{X509VerifyResult, X509};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// OpenSSL's reason the certificate of the first broker in `bootstrap_servers` fails verification, if it does.
pub fn verification_failure(bootstrap_servers: &str, tls: &Tls) -> Option<String> {
    let server = bootstrap_servers.split(',').next()?.trim();
    let server = server.rsplit_once("://").map_or(server, |(_, s)| s);
    let (host, port) = server.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
    if !tls.ssl_ca_certificates.trim().is_empty() {
        for ca in X509::stack_from_pem(tls.ssl_ca_certificates.as_bytes()).ok()? {
            builder.cert_store_mut().add_cert(ca).ok()?;
        }
    }
    // The handshake goes on whatever the verification says: its result is what is wanted.
    builder.set_verify(SslVerifyMode::NONE);
    let mut configuration = builder.build().configure().ok()?;
    configuration.set_verify_hostname(tls.ssl_endpoint_identification);
    let address = (host, port.parse::<u16>().ok()?).to_socket_addrs().ok()?.next()?;
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    let connected = configuration.connect(host, stream).ok()?;
    let result = connected.ssl().verify_result();
    (result != X509VerifyResult::OK).then(|| result.error_string().to_string())
}

/// A TLS failure in words that name the field to fix, from OpenSSL's reason (as librdkafka reports it when
/// connecting, or when it reads the key material at start). `client_certificate`: one is configured (a broker
/// that rejects it says "certificate required" in TLS 1.3, as if there were none).
pub fn explain(reason: &str, client_certificate: bool) -> Option<String> {
    let r = reason.to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| r.contains(w));
    let why = if says(&["certificate has expired", "certificate is not yet valid"]) {
        "the broker's certificate has expired (or is not valid yet): the broker must renew it"
    } else if says(&["hostname mismatch", "ip address mismatch"]) {
        "the broker's certificate does not name the host it is reached at: use the name in its certificate in \
         `bootstrap_servers` (and the broker's advertised listeners), or turn off `protocol.ssl_endpoint_identification`"
    } else if says(&[
        "self-signed certificate",
        "self signed certificate",
        "unable to get local issuer",
        "unable to get issuer",
        "certificate verify failed",
    ]) {
        "the broker's certificate is not signed by a CA this connector trusts: put the CA that signed it in \
         `protocol.ssl_ca_certificates` (blank uses the system's trust store)"
    } else if says(&[
        "bad decrypt",
        "bad password",
        "wrong password",
        "cipherfinal error",
        "unsupported encryption",
        "pkcs12",
    ]) {
        "`protocol.ssl_key_password` cannot decrypt `protocol.ssl_client_key` (a wrong or missing password)"
    } else if says(&["key values mismatch", "private key does not match", "x509_check_private_key"]) {
        "`protocol.ssl_client_key` is not the key of `protocol.ssl_client_certificate`"
    } else if says(&[
        "certificate required",
        "alert handshake failure",
        "peer did not return a certificate",
        "bad certificate",
        "unknown ca",
        "certificate unknown",
        "access denied",
        "decrypt error",
    ]) {
        // The broker's alert about the client's certificate: none was given (Java brokers say "bad certificate"
        // then, TLS 1.3 ones "certificate required"), or the one given is not trusted.
        if client_certificate {
            "the broker refused the client certificate: it must be signed by a CA the broker trusts \
             (`protocol.ssl_client_certificate`)"
        } else {
            "the broker requires a client certificate (mutual TLS): set `protocol.ssl_client_certificate` and \
             `protocol.ssl_client_key`"
        }
    } else if says(&["wrong version number", "packet length too long", "unexpected eof", "record layer failure"]) {
        "the broker did not answer in TLS: check `protocol.security_protocol` against the listener at \
         `bootstrap_servers`"
    } else {
        return None;
    };
    Some(why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_name_the_field() {
        let cases = [
            ("SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: unable to get local issuer certificate", "`protocol.ssl_ca_certificates`"),
            ("certificate verify failed: self-signed certificate in certificate chain", "`protocol.ssl_ca_certificates`"),
            ("certificate verify failed: Hostname mismatch", "`protocol.ssl_endpoint_identification`"),
            ("certificate verify failed: certificate has expired", "has expired"),
            ("ssl.key.pem failed: error:1C800064:Provider routines::bad decrypt", "`protocol.ssl_key_password`"),
            ("ssl.key.pem failed: error:05800074:x509 certificate routines::key values mismatch", "is not the key of"),
            ("SSL handshake failed: error:0A00045C:SSL routines::tlsv13 alert certificate required", "requires a client certificate"),
            ("Receive failed: error:0A000412:SSL routines::sslv3 alert bad certificate", "requires a client certificate"),
            ("hostname mismatch", "`protocol.ssl_endpoint_identification`"),
        ];
        for (reason, named) in cases {
            let told = explain(reason, false).unwrap_or_else(|| panic!("not recognised: {reason}"));
            assert!(told.contains(named), "{reason} → {told}");
        }
        assert!(explain("Connection refused", false).is_none());
        // With a client certificate given, the same alerts mean it was refused.
        for alert in [
            "tlsv13 alert certificate required: SSL alert number 116",
            "tlsv1 alert unknown ca",
            "sslv3 alert bad certificate",
        ] {
            let refused = explain(alert, true).unwrap();
            assert!(refused.contains("refused the client certificate"), "{alert}: {refused}");
        }
    }
}

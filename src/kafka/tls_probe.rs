//! Why a broker's certificate failed verification. librdkafka reports every verification failure with the same
//! words ("certificate verify failed"), hiding OpenSSL's reason; to name the field to fix, `check` and the start of
//! `write` repeat the handshake once with OpenSSL directly, with the same trust and host-name settings, and read
//! the verification result (expired, host name mismatch, unknown CA, ...).

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

//! An OIDC token endpoint on 127.0.0.1 for the OAUTHBEARER tests: it records each client-credentials request and
//! answers with a JWT signed (RS256) by the key the test gives it, as an identity provider would.

use base64::Engine as _;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT with these claims, signed RS256 by the PEM private key at `key`, with key id `kid`.
pub fn jwt(key: &str, kid: &str, claims: &Value) -> String {
    let key = PKey::private_key_from_pem(&std::fs::read(key).unwrap()).unwrap();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let signed = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let mut signer = Signer::new(MessageDigest::sha256(), &key).unwrap();
    signer.update(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64url(&signer.sign_to_vec().unwrap()))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A token endpoint that answers every request with `status` and `body`, and remembers the requests.
pub struct TokenEndpoint {
    listener_port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl TokenEndpoint {
    /// An endpoint handing out `token` (a bearer access token valid for an hour).
    pub fn issuing(token: &str) -> TokenEndpoint {
        let body = json!({"access_token": token, "token_type": "bearer", "expires_in": 3600}).to_string();
        TokenEndpoint::answering("200 OK", body)
    }

    pub fn answering(status: &'static str, body: String) -> TokenEndpoint {
        // Bound to port 0 and kept: the port is this endpoint's until the test ends.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let listener_port = listener.local_addr().unwrap().port();
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
        TokenEndpoint { listener_port, requests }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/oauth2/token", self.listener_port)
    }
}

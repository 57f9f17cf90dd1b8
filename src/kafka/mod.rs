//! Kafka, and nothing of Airbyte: the client context, the producer (send, serve delivery reports, flush), the
//! admin side (metadata, topic creation) and the diagnosis of connection problems.

pub mod admin;
pub mod client;
pub mod diagnostics;
pub mod msk_iam;
pub mod producer;
pub mod tls_probe;

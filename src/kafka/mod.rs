//! Kafka, and nothing of Airbyte: the client context, the producer (send, serve delivery reports, flush), the
//! admin side (metadata, topic creation), reading back the latest record of a key, and the diagnosis of
//! connection and TLS problems. It takes topic names, messages and a stop handle; it knows no stream, state or
//! catalog.

pub mod admin;
pub mod client;
pub mod diagnostics;
pub mod msk_iam;
pub mod native;
pub mod producer;
pub mod reader;
pub mod record;
pub mod tls;

//! An Airbyte destination that writes records to Kafka and emits each STATE only once the broker has
//! acknowledged every record before it.
//!
//! `airbyte` speaks the protocol, `config` turns the user's config into settings and librdkafka properties,
//! `format` turns a record into a Kafka message, `kafka` talks to the cluster, and `write` is the pipeline
//! between them; `check` and `discover` are the other two commands.

pub mod airbyte;
pub mod check;
pub mod config;
pub mod discover;
pub mod error;
pub mod format;
pub mod kafka;
pub mod naming;
pub mod stop;
pub mod write;

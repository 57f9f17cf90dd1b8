//! An Airbyte destination that writes records to Kafka and emits each STATE only once the broker has
//! acknowledged every record before it.
//!
//! Dependencies point one way, from the commands down: `check`, `discover` and `write` (the pipeline) use
//! `format` (a record → a Kafka message), which uses `kafka` (messages → the cluster), which uses `config`
//! (settings and librdkafka properties); `airbyte` speaks the protocol; `error`, `secret`, `stop`, `number`,
//! `naming` and `digest` are leaves. `tests/architecture.rs` checks it.

pub mod airbyte;
pub mod check;
pub mod config;
pub mod delivery;
pub mod digest;
pub mod discover;
pub mod error;
pub mod format;
pub mod kafka;
pub mod naming;
pub mod number;
pub mod secret;
pub mod stop;
pub mod write;

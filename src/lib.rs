//! An Airbyte destination that writes records to Kafka and emits each STATE only once the broker has
//! acknowledged every record before it.

pub mod catalog;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod discover;
pub mod envelope;
pub mod error;
pub mod input;
pub mod jaas;
pub mod kafka;
pub mod logging;
pub mod naming;
pub mod output;
pub mod parse;
pub mod protocol;
pub mod spec;
pub mod write;

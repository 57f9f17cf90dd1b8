//! The Airbyte protocol as a destination sees it: input messages, states, the configured catalog, and what we
//! write to stdout (our messages and logs).

pub mod catalog;
pub mod logging;
pub mod mapping;
pub mod message;
pub mod output;
pub mod protobuf;
pub mod scan;
pub mod state;

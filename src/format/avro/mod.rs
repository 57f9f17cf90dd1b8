//! The `avro` format: Confluent's wire format (byte 0, the schema id as 4 big-endian bytes, the Avro binary datum),
//! with a schema per stream made from the catalog (`schema`, written out as JSON by `json`) and registered before
//! the first record; datums from records by `encode`.

mod document;
pub mod encode;
pub mod json;
pub mod schema;

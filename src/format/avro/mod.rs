//! The `avro` format: Confluent's wire format (byte 0, the schema id as 4 big-endian bytes, the Avro binary datum),
//! with a schema per stream made from the catalog (`schema`) and registered before the first record.

mod document;
pub mod encode;
pub mod schema;

//! Compiles Speed Mode's Protobuf messages (`proto/`) to Rust: protox parses them (no `protoc` needed), prost
//! generates the code into `OUT_DIR`, which `src/airbyte/protobuf.rs` includes.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/airbyte_message.proto"];
    for file in ["airbyte_message", "airbyte_record_message", "airbyte_record_message_meta"] {
        println!("cargo:rerun-if-changed=proto/{file}.proto");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    // `bytes` fields (a frame's record, a value's string and embedded JSON) as `Bytes`: decoded from the chunk's
    // `Bytes`, they are slices of it, not copies.
    prost_build::Config::new().bytes(["."]).compile_fds(descriptors)?;
    Ok(())
}

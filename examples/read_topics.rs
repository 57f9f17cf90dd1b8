//! Reads topics back from the earliest offset: per-topic counts and a few messages (the demo), or every
//! key/value as `key<TAB>value` lines (the benchmark feeds those to kcat). Stops after a quiet second.
//!
//! cargo run --release --example read_topics -- --bootstrap 127.0.0.1:9092 [--show 3] [--dump FILE] TOPIC...

use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    bootstrap: String,
    /// Messages to print per topic.
    #[arg(long, default_value_t = 3)]
    show: usize,
    /// Write every message as `key<TAB>value` to this file.
    #[arg(long)]
    dump: Option<String>,
    topics: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut dump = args.dump.as_deref().map(std::fs::File::create).transpose()?.map(std::io::BufWriter::new);
    for topic in &args.topics {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &args.bootstrap)
            .set("group.id", "destination-kafka-read-topics")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut assignment = TopicPartitionList::new();
        for p in metadata.topics()[0].partitions() {
            assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let (mut count, mut last) = (0usize, Instant::now());
        while last.elapsed() < Duration::from_secs(1) {
            let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
            let message = message?;
            last = Instant::now();
            let (key, value) = (message.key().unwrap_or_default(), message.payload().unwrap_or_default());
            if count < args.show {
                println!(
                    "  {topic}[{}] key={} value={}",
                    message.partition(),
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(value)
                );
            }
            if let Some(out) = dump.as_mut() {
                out.write_all(key)?;
                out.write_all(b"\t")?;
                out.write_all(value)?;
                out.write_all(b"\n")?;
            }
            count += 1;
        }
        println!("{topic}: {count} messages");
    }
    if let Some(mut out) = dump {
        out.flush()?;
    }
    Ok(())
}

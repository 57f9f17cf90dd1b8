//! Topic administration for the tests, through librdkafka's Admin API: topics made beforehand with the configs a
//! test needs (small segments, a size limit), and a topic's config read back.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use std::time::Duration;

fn admin(bootstrap: &str) -> (AdminClient<DefaultClientContext>, tokio::runtime::Runtime) {
    let client = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    (client, tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

/// Creates `topic` with one partition and these configs.
pub fn create_topic(bootstrap: &str, topic: &str, replication: i32, configs: &[(&str, &str)]) {
    let (client, runtime) = admin(bootstrap);
    let mut new = NewTopic::new(topic, 1, TopicReplication::Fixed(replication));
    for (key, value) in configs {
        new = new.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = runtime.block_on(client.create_topics(&[new], &options)).unwrap();
    results.into_iter().for_each(|r| {
        r.unwrap();
    });
}

/// A config of a topic, as the broker describes it.
pub fn topic_config(bootstrap: &str, topic: &str, key: &str) -> Option<String> {
    let (client, runtime) = admin(bootstrap);
    let results =
        runtime.block_on(client.describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())).unwrap();
    let resource = results.into_iter().next().unwrap().unwrap();
    resource.get(key).and_then(|e| e.value.clone())
}

/// The leader of each partition of `topic` (broker ids).
pub fn leaders(bootstrap: &str, topic: &str) -> Vec<i32> {
    let (client, _) = admin(bootstrap);
    let metadata = client.inner().fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    metadata.topics()[0].partitions().iter().map(|p| p.leader()).collect()
}

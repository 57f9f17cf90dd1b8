//! Speed Mode's rule for STATEs. Sockets are read in parallel, so a STATE may arrive before some of its records
//! (still on another socket): it covers not "the records read before it" but the records of its partitions
//! (`partition_id`), `sourceStats.recordCount` of them. The ledger holds each STATE until that many records of
//! its partitions have been read, and hands STATEs on in `id` order (from 1; per stream for STREAM states, one
//! sequence for GLOBAL ones). Handed on, a STATE closes a checkpoint segment like a STATE read from stdin: it goes
//! out once every record read before that moment, its own among them, is acknowledged (and, exactly-once,
//! committed). The rule and the names are the bulk CDK's (`StateStore`, `StateHistogramStore`).

use super::checkpoint::Closing;
use crate::airbyte::catalog::Catalog;
use crate::airbyte::state::{Additions, Counted, State};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A sequence of states: GLOBAL (`None`) or one stream's.
type Sequence = Option<usize>;

pub struct Ledger {
    catalog: Arc<Catalog>,
    /// How messages name each catalog stream.
    streams: Vec<String>,
    /// Per catalog stream, the records and bytes of the states handed on so far (a GLOBAL state's stream states
    /// carry them).
    committed: Vec<(u64, u64)>,
    partitions: HashMap<String, Partition>,
    /// Per sequence: the next id to hand on, the states held by id, and the records and bytes handed on so far.
    sequences: BTreeMap<Sequence, Queue>,
    /// Stream-status COMPLETE messages seen (counted, not matched to names, as the CDK counts them).
    complete: usize,
    /// Partitions with records read whose state has not been handed on.
    open: usize,
}

#[derive(Default)]
struct Partition {
    records: u64,
    bytes: u64,
    /// Records and bytes per catalog stream (a GLOBAL state's partition may hold several streams').
    streams: Vec<(usize, u64, u64)>,
    /// The id of the state that counted it, once handed on: a later record of it is over that state's count.
    counted_by: Option<i64>,
}

struct Queue {
    next: i64,
    held: BTreeMap<i64, Held>,
    committed_records: u64,
    committed_bytes: u64,
}

struct Held {
    state: State,
    counted: Counted,
    records: u64,
}

impl Ledger {
    pub fn new(catalog: Arc<Catalog>) -> Ledger {
        let streams = catalog.streams.iter().map(|s| format!("STREAM `{}`", s.describe())).collect();
        let committed = vec![(0, 0); catalog.streams.len()];
        let (partitions, sequences) = (HashMap::new(), BTreeMap::new());
        Ledger { catalog, streams, committed, partitions, sequences, complete: 0, open: 0 }
    }

    /// A record of `stream` in `partition`, `bytes` long, was read and handed to the producer.
    pub fn read(&mut self, partition: &str, stream: usize, bytes: u64) -> Result<()> {
        let entry = match self.partitions.get_mut(partition) {
            Some(entry) => entry,
            None => self.partitions.entry(partition.to_string()).or_default(),
        };
        if let Some(id) = entry.counted_by {
            return Err(Error::System(format!(
                "a RECORD of partition `{partition}` arrived after STATE {id}, which covers that partition, had \
                 counted all its records: the source sent more records than its state says"
            )));
        }
        if entry.records == 0 {
            self.open += 1;
        }
        entry.records += 1;
        entry.bytes += bytes;
        match entry.streams.iter_mut().find(|(s, _, _)| *s == stream) {
            Some((_, records, total)) => {
                *records += 1;
                *total += bytes;
            }
            None => entry.streams.push((stream, 1, bytes)),
        }
        Ok(())
    }

    /// A STATE arrived; it is held until its records are read.
    pub fn hold(&mut self, counted: Counted, state: State) -> Result<()> {
        let described = describe(&self.streams, &counted);
        let missing = |what: &str| {
            Error::System(format!("a {described} STATE without {what}: in Speed Mode every STATE carries it"))
        };
        let id = state.partitioned.id.ok_or_else(|| missing("`id`"))?;
        if state.partitioned.partitions.is_empty() {
            return Err(missing("`partition_id`"));
        }
        let count = state.partitioned.record_count.ok_or_else(|| missing("`sourceStats.recordCount`"))?;
        if count < 0.0 || count.fract() != 0.0 || count > 2f64.powi(53) {
            return Err(Error::System(format!("{described} STATE {id}: `sourceStats.recordCount` is {count}")));
        }
        // A partition is one state's: a state naming one an earlier state counted could be released on its records.
        if let Some((p, earlier)) = state
            .partitioned
            .partitions
            .iter()
            .find_map(|p| self.partitions.get(p).and_then(|entry| entry.counted_by).map(|earlier| (p, earlier)))
        {
            return Err(Error::System(format!(
                "{described} STATE {id} names partition `{p}`, which STATE {earlier} already counted"
            )));
        }
        let sequence = match counted {
            Counted::Global => None,
            Counted::Stream(Some(stream)) => Some(stream),
            Counted::Stream(None) => {
                return Err(Error::System(format!("STATE {id} of a stream that is not in the configured catalog")))
            }
        };
        if self.sequences.keys().any(|s| s.is_none() != sequence.is_none()) {
            return Err(Error::System(
                "GLOBAL and STREAM states in one sync: Speed Mode orders one kind or the other".into(),
            ));
        }
        let queue = self.sequences.entry(sequence).or_insert(Queue {
            next: 1,
            held: BTreeMap::new(),
            committed_records: 0,
            committed_bytes: 0,
        });
        if id < queue.next || queue.held.contains_key(&id) {
            return Err(Error::System(format!("{described} STATE {id} arrived twice")));
        }
        queue.held.insert(id, Held { state, counted, records: count as u64 });
        Ok(())
    }

    /// Whether records of `partition` were read and its state not handed on yet.
    pub fn is_open(&self, partition: &str) -> bool {
        self.partitions.get(partition).is_some_and(|p| p.records > 0 && p.counted_by.is_none())
    }

    /// Whether every part-read partition has all its records read and its state waits only for one earlier in
    /// `id` order: then no boundary comes until a partition not begun is (the earlier state's may be one), however
    /// long the sockets that are not held are waited for.
    pub fn waits_for_order(&self) -> bool {
        let complete = self.sequences.values().flat_map(|queue| queue.held.values()).filter_map(|held| {
            let names = &held.state.partitioned.partitions;
            (read_of(&self.partitions, names).0 == held.records).then_some(names)
        });
        let read = |p: &String| self.partitions.get(p).is_some_and(|entry| entry.records > 0);
        complete.flatten().filter(|p| read(p)).count() >= self.open
    }

    /// The states whose records have all been read, next in their sequence, in the order to close segments with;
    /// `close` also hears whether no partition is left part-read.
    pub fn due(&mut self, mut close: impl FnMut(Closing, bool) -> Result<()>) -> Result<()> {
        for queue in self.sequences.values_mut() {
            while let Some(held) = queue.held.get(&queue.next) {
                let (records, bytes) = read_of(&self.partitions, &held.state.partitioned.partitions);
                if records > held.records {
                    return Err(Error::System(format!(
                        "{} STATE {} counts {} records, but {records} of its partitions were read",
                        describe(&self.streams, &held.counted),
                        queue.next,
                        held.records
                    )));
                }
                if records < held.records {
                    break;
                }
                let held = queue.held.remove(&queue.next).expect("found above");
                for p in &held.state.partitioned.partitions {
                    let partition = self.partitions.entry(p.clone()).or_default();
                    if let Some(earlier) = partition.counted_by {
                        // Held at once by two states of different sequences, both complete: the first counts it.
                        return Err(Error::System(format!(
                            "partition `{p}` is named by two states (STATE {earlier} and {})",
                            queue.next
                        )));
                    }
                    partition.counted_by = Some(queue.next);
                    if partition.records > 0 {
                        self.open -= 1;
                    }
                    for (stream, records, bytes) in &partition.streams {
                        self.committed[*stream].0 += records;
                        self.committed[*stream].1 += bytes;
                    }
                }
                queue.next += 1;
                queue.committed_records += records;
                queue.committed_bytes += bytes;
                let committed = |(records, bytes): (u64, u64)| {
                    format!("\"committedRecordsCount\":{records},\"committedBytesCount\":{bytes}")
                };
                let inner = held.state.partitioned.inner.iter().map(|(namespace, name)| {
                    let stream = self.catalog.find(namespace.as_deref(), name);
                    stream.map_or_else(String::new, |s| committed(self.committed[s]))
                });
                let more = Additions {
                    top: format!(",{}", committed((queue.committed_records, queue.committed_bytes))),
                    inner: inner.collect(),
                };
                close(Closing { state: held.state, records, counted: held.counted, more }, self.open == 0)?;
            }
        }
        Ok(())
    }

    /// The source reported a stream complete.
    pub fn stream_complete(&mut self) {
        self.complete += 1;
    }

    /// At the end of the input: every state handed on, every record counted by one.
    pub fn end(&self) -> Result<()> {
        // Airbyte's destinations skip their final "destructive" step when a stream was not reported complete; a
        // topic has none, so it is only said.
        if self.complete < self.streams.len() {
            tracing::warn!(
                "the source reported {} of the catalog's {} streams complete",
                self.complete,
                self.streams.len()
            );
        } else {
            tracing::info!("the source reported every stream complete ({})", self.complete);
        }
        let mut waiting = Vec::new();
        for queue in self.sequences.values() {
            for (id, held) in &queue.held {
                let (read, _) = read_of(&self.partitions, &held.state.partitioned.partitions);
                waiting.push(format!(
                    "{} STATE {id}: {read} of its {} records read",
                    describe(&self.streams, &held.counted),
                    held.records
                ));
            }
        }
        if !waiting.is_empty() {
            return Err(Error::System(format!(
                "the sockets ended, but unflushed states were detected (not emitted): {}",
                waiting.join("; ")
            )));
        }
        let mut orphans: Vec<String> = self
            .partitions
            .iter()
            .filter(|(_, p)| p.counted_by.is_none() && p.records > 0)
            .map(|(name, p)| format!("`{name}` ({} records)", p.records))
            .collect();
        if !orphans.is_empty() {
            orphans.sort();
            return Err(Error::System(format!(
                "records of partitions no STATE named were written, so no checkpoint covers them: {}",
                orphans.join(", ")
            )));
        }
        Ok(())
    }
}

/// Records and bytes read so far in these partitions.
fn read_of(partitions: &HashMap<String, Partition>, names: &[String]) -> (u64, u64) {
    names.iter().filter_map(|p| partitions.get(p)).fold((0, 0), |(r, b), p| (r + p.records, b + p.bytes))
}

/// A state's kind as messages name it (`streams`: each catalog stream's name in them).
fn describe(streams: &[String], counted: &Counted) -> String {
    match counted {
        Counted::Global => "GLOBAL".into(),
        Counted::Stream(Some(i)) => streams[*i].clone(),
        Counted::Stream(None) => "STREAM".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::airbyte::message::Message;
    use serde_json::json;

    fn catalog() -> Arc<Catalog> {
        Arc::new(Catalog::from_value(&json!({"streams": [{"name": "a"}, {"name": "b"}]}), "{stream}", None).unwrap())
    }

    fn state(line: &str) -> State {
        match Message::parse(line).unwrap() {
            Message::State(raw) => State::parse(line, raw).unwrap(),
            _ => panic!("not a state"),
        }
    }

    fn stream_state(stream: &str, id: i64, partition: &str, count: u64) -> State {
        state(&format!(
            r#"{{"type":"STATE","state":{{"type":"STREAM","stream":{{"stream_descriptor":{{"name":"{stream}"}}}},"partition_id":"{partition}","id":{id},"sourceStats":{{"recordCount":{count}.0}}}}}}"#
        ))
    }

    /// The ids and renderings of the states `due` hands on now.
    fn due(ledger: &mut Ledger) -> Vec<String> {
        let mut out = Vec::new();
        ledger
            .due(|c, _| {
                out.push(c.state.render_with(c.records, None, &c.more));
                Ok(())
            })
            .unwrap();
        out
    }

    #[test]
    fn it_waits_for_order_only_when_every_part_read_partition_is_complete() {
        let mut ledger = Ledger::new(catalog());
        assert!(ledger.waits_for_order(), "nothing part-read");
        // Partition q is read whole and its state (2) waits for state 1, whose partition p is not begun.
        ledger.read("q", 0, 10).unwrap();
        assert!(!ledger.waits_for_order(), "q's state has not come: it may have more records");
        ledger.hold(Counted::Stream(Some(0)), stream_state("a", 2, "q", 1)).unwrap();
        assert!(due(&mut ledger).is_empty());
        assert!(ledger.waits_for_order(), "only p, not begun, can let state 2 out");
        // p begun, not whole: its socket is waited for.
        ledger.read("p", 0, 5).unwrap();
        assert!(!ledger.waits_for_order(), "p is part-read");
        ledger.hold(Counted::Stream(Some(0)), stream_state("a", 1, "p", 2)).unwrap();
        assert!(!ledger.waits_for_order(), "p has 1 of its 2 records");
        ledger.read("p", 0, 5).unwrap();
        assert_eq!(due(&mut ledger).len(), 2);
        assert!(ledger.waits_for_order(), "everything handed on");
        // A state of stream b whose count is over what was read keeps its partition open.
        ledger.read("r", 1, 5).unwrap();
        ledger.hold(Counted::Stream(Some(1)), stream_state("b", 2, "r", 3)).unwrap();
        assert!(!ledger.waits_for_order(), "r has 1 of its 3 records");
    }

    #[test]
    fn a_state_waits_for_its_records_however_they_arrive_and_goes_in_id_order() {
        let mut ledger = Ledger::new(catalog());
        // State 2 of stream a arrives first, complete; it must wait for state 1, whose records come later.
        ledger.hold(Counted::Stream(Some(0)), stream_state("a", 2, "q", 1)).unwrap();
        ledger.read("q", 0, 10).unwrap();
        assert!(due(&mut ledger).is_empty(), "state 2 before state 1");
        ledger.hold(Counted::Stream(Some(0)), stream_state("a", 1, "p", 2)).unwrap();
        ledger.read("p", 0, 5).unwrap();
        assert!(due(&mut ledger).is_empty(), "1 of state 1's 2 records read");
        ledger.read("p", 0, 7).unwrap();
        let out = due(&mut ledger);
        assert_eq!(out.len(), 2);
        assert!(
            out[0].contains(r#""id":1,"#)
                && out[0].ends_with(
                    r#""destinationStats":{"recordCount":2.0},"committedRecordsCount":2,"committedBytesCount":12}}"#
                ),
            "{}",
            out[0]
        );
        assert!(
            out[1].contains(r#""id":2,"#)
                && out[1].ends_with(r#""committedRecordsCount":3,"committedBytesCount":22}}"#),
            "{}",
            out[1]
        );
        // Stream b has a sequence of its own, from 1.
        ledger.hold(Counted::Stream(Some(1)), stream_state("b", 1, "r", 0)).unwrap();
        assert_eq!(due(&mut ledger).len(), 1, "a state of no records is complete at once");
        ledger.end().unwrap();
    }

    #[test]
    fn a_global_state_counts_the_partitions_of_its_stream_states() {
        // Two GLOBAL states; stream a's records are in partitions x and g, stream b's in y and g. Each stream state
        // inside gets its stream's committed records and bytes so far, the state its total (as the CDK's
        // `testCDCStateTypes` expects them).
        let global = |id: u32, x: &str, y: &str, g: &str, count: u32| {
            state(&format!(
                r#"{{"type":"STATE","state":{{"type":"GLOBAL","global":{{"stream_states":[{{"stream_descriptor":{{"name":"a"}},"partition_id":"{x}"}},{{"stream_descriptor":{{"name":"b"}},"partition_id":"{y}"}},{{"stream_descriptor":{{"name":"zz"}}}}]}},"partition_id":"{g}","id":{id},"sourceStats":{{"recordCount":{count}}}}}}}"#
            ))
        };
        let mut ledger = Ledger::new(catalog());
        ledger.hold(Counted::Global, global(1, "x1", "y1", "g1", 4)).unwrap();
        ledger.read("x1", 0, 10).unwrap();
        ledger.read("y1", 1, 20).unwrap();
        ledger.read("g1", 1, 30).unwrap();
        assert!(due(&mut ledger).is_empty(), "3 of 4 records read");
        ledger.read("g1", 0, 40).unwrap();
        ledger.hold(Counted::Global, global(2, "x2", "y2", "g2", 1)).unwrap();
        ledger.read("y2", 1, 5).unwrap();
        let out = due(&mut ledger);
        assert!(
            out[0].contains(r#""partition_id":"x1","committedRecordsCount":2,"committedBytesCount":50}"#),
            "{}",
            out[0]
        );
        assert!(
            out[0].contains(r#""partition_id":"y1","committedRecordsCount":2,"committedBytesCount":50}"#),
            "{}",
            out[0]
        );
        assert!(out[0].contains(r#"{"stream_descriptor":{"name":"zz"}}]"#), "a stream not in the catalog gets nothing");
        assert!(
            out[0].ends_with(
                r#""destinationStats":{"recordCount":4.0},"committedRecordsCount":4,"committedBytesCount":100}}"#
            ),
            "{}",
            out[0]
        );
        assert!(
            out[1].contains(r#""partition_id":"x2","committedRecordsCount":2,"committedBytesCount":50}"#),
            "{}",
            out[1]
        );
        assert!(
            out[1].contains(r#""partition_id":"y2","committedRecordsCount":3,"committedBytesCount":55}"#),
            "{}",
            out[1]
        );
        assert!(out[1].ends_with(r#""committedRecordsCount":5,"committedBytesCount":105}}"#), "{}", out[1]);
        let mixed = ledger.hold(Counted::Stream(Some(0)), stream_state("a", 1, "p", 1)).unwrap_err();
        assert!(mixed.to_string().contains("GLOBAL and STREAM"), "{mixed}");
    }

    #[test]
    fn broken_promises_of_the_source_are_errors_never_states() {
        // More records than the state counts, read before it is examined.
        let mut ledger = Ledger::new(catalog());
        ledger.read("p", 0, 1).unwrap();
        ledger.read("p", 0, 1).unwrap();
        ledger.hold(Counted::Stream(Some(0)), stream_state("a", 1, "p", 1)).unwrap();
        let over = ledger.due(|_, _| panic!("an over-counted state was handed on")).unwrap_err();
        assert!(over.to_string().contains("counts 1 records, but 2"), "{over}");
        // A record of a partition after its state was handed on.
        let mut ledger = Ledger::new(catalog());
        ledger.hold(Counted::Stream(Some(0)), stream_state("a", 1, "p", 1)).unwrap();
        ledger.read("p", 0, 1).unwrap();
        assert_eq!(due(&mut ledger).len(), 1);
        assert!(ledger.read("p", 0, 1).unwrap_err().to_string().contains("after STATE 1"));
        // A state naming a partition twice counts it once; a partition an earlier state counted is refused.
        let mut ledger = Ledger::new(catalog());
        let twice = state(
            r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"stream_states":[{"partition_id":"g"}]},"partition_id":"g","id":1,"sourceStats":{"recordCount":2}}}"#,
        );
        ledger.hold(Counted::Global, twice).unwrap();
        ledger.read("g", 0, 1).unwrap();
        assert!(due(&mut ledger).is_empty(), "1 of 2 records read, not 2");
        ledger.read("g", 0, 1).unwrap();
        assert_eq!(due(&mut ledger).len(), 1);
        let again = state(
            r#"{"type":"STATE","state":{"type":"GLOBAL","partition_id":"g","id":2,"sourceStats":{"recordCount":0}}}"#,
        );
        let refused = ledger.hold(Counted::Global, again).unwrap_err().to_string();
        assert!(refused.contains("names partition `g`, which STATE 1 already counted"), "{refused}");
        // An id twice; no id; a count not reached at the end; records no state names.
        let mut ledger = Ledger::new(catalog());
        ledger.hold(Counted::Stream(Some(0)), stream_state("a", 1, "p", 2)).unwrap();
        let twice = ledger.hold(Counted::Stream(Some(0)), stream_state("a", 1, "p", 2)).unwrap_err();
        assert!(twice.to_string().contains("STATE 1 arrived twice"), "{twice}");
        let no_id = state(
            r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"}},"partition_id":"z"}}"#,
        );
        assert!(ledger.hold(Counted::Stream(Some(0)), no_id).unwrap_err().to_string().contains("without `id`"));
        ledger.read("p", 0, 1).unwrap();
        assert!(due(&mut ledger).is_empty());
        let end = ledger.end().unwrap_err().to_string();
        assert!(
            end.contains("unflushed states") && end.contains("STREAM `a` STATE 1: 1 of its 2 records read"),
            "{end}"
        );
        let mut ledger = Ledger::new(catalog());
        ledger.read("lost", 0, 1).unwrap();
        let end = ledger.end().unwrap_err().to_string();
        assert!(end.contains("no STATE named") && end.contains("`lost` (1 records)"), "{end}");
    }
}

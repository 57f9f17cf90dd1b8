//! The release policy: when the STATEs of acknowledged records may go out, which is what the delivery guarantee
//! means. At-least-once releases a STATE as soon as its records are acknowledged; exactly-once
//! (`transactions`) only once the Kafka transaction holding them is committed. The write path tells the policy
//! what happens — a record sent, a STATE, input pausing, the end, a failure — and the policy acts on the sink.

use super::checkpoint::Closing;
use super::sink::Sink;
use crate::airbyte::catalog::Stream;
use crate::error::Result;

pub trait Release {
    /// Before the first record.
    fn start(&mut self, _sink: &mut Sink) -> Result<()> {
        Ok(())
    }
    /// A record of the input was handed on (produced, or rejected to a dead-letter topic): its stream and data.
    fn sent(&mut self, sink: &mut Sink, stream: &Stream, data: &str) -> Result<()>;
    /// A STATE is about to close the open segment of the checkpoints.
    fn closing(&mut self, _closing: &Closing) {}
    /// A STATE closed a segment of the checkpoints. `boundary`: every record sent so far is covered by a closed
    /// STATE (always on stdin; in Speed Mode only when no partition is part-read).
    fn state(&mut self, sink: &mut Sink, boundary: bool) -> Result<()>;
    /// Input paused.
    fn idle(&mut self, sink: &mut Sink) -> Result<()>;
    /// Whether the policy waits for a boundary (Speed Mode then starts no new partition until one is reached).
    fn wants_boundary(&self) -> bool {
        false
    }
    /// Input ended cleanly: what was sent must be made to count.
    fn end(&mut self, sink: &mut Sink) -> Result<()>;
    /// A failure or a stop: nothing more may become visible.
    fn abort(&mut self, sink: &mut Sink);
    /// Whether a record the broker refuses on its own account may go to a dead-letter topic.
    fn dead_letters_refusals(&self) -> bool {
        true
    }
    /// A line for the summary, if the policy has something to say.
    fn summary(&self) -> Option<String> {
        None
    }
}

/// `at_least_once`: a STATE goes out once every record before it is acknowledged.
pub struct AtLeastOnce;

impl Release for AtLeastOnce {
    fn sent(&mut self, _: &mut Sink, _: &Stream, _: &str) -> Result<()> {
        Ok(())
    }

    fn state(&mut self, sink: &mut Sink, _: bool) -> Result<()> {
        sink.release()
    }

    fn idle(&mut self, _: &mut Sink) -> Result<()> {
        Ok(())
    }

    fn end(&mut self, _: &mut Sink) -> Result<()> {
        Ok(())
    }

    fn abort(&mut self, _: &mut Sink) {}
}

//! Rejected records: a record the connector cannot encode, or one the broker refuses on its own account, goes to
//! its stream's dead-letter topic (`record_errors: dead_letter`) with the reason, or the sync fails.

use super::Sink;
use crate::airbyte::catalog::Stream;
use crate::error::{Error, Result};
use crate::write::acknowledge::InFlight;
use crate::write::dead_letter::{DeadLetter, Rejection};

impl Sink<'_> {
    /// A record of the input that cannot be encoded: to its dead-letter topic with its data, or the sync fails.
    pub fn reject(&mut self, at: InFlight, data: &[u8], error: Error) -> Result<()> {
        let why = Rejection::not_encodable(error.to_string());
        let max = self.settings.max_request_size.max(0) as usize;
        self.reject_with(at, error, |stream| DeadLetter::new(stream, &at, None, Some(data.to_vec()), &why, max))
    }

    /// A record of the input whose line is over the line limit (`length` bytes or more, read no further than its
    /// head): to its dead-letter topic without its value, or the sync fails.
    pub fn reject_unread(&mut self, at: InFlight, length: usize, error: Error) -> Result<()> {
        let why = Rejection::too_long(error.to_string());
        self.reject_with(at, error, |stream| DeadLetter::unread(stream, &at, &why, length))
    }

    fn reject_with(&mut self, at: InFlight, error: Error, letter: impl FnOnce(&Stream) -> DeadLetter) -> Result<()> {
        let stream = &self.streams[at.stream];
        if !self.dead_letters {
            return Err(error.context(&format!("stream `{}`", stream.describe())).at_line(at.line));
        }
        self.warn_rejected(&at, &error.to_string());
        let letter = letter(stream);
        self.send(&letter.record(), InFlight { dead_letter: true, ..at }, true).map(drop)
    }

    fn warn_rejected(&self, at: &InFlight, why: &str) {
        let stream = &self.streams[at.stream];
        let topic = stream.dead_letter_topic.as_deref().unwrap_or_default();
        tracing::warn!("input line {}: record of stream `{}` rejected to `{topic}`: {why}", at.line, stream.describe());
    }

    /// Writes a rejected record to its stream's dead-letter topic; its acknowledgement there settles it.
    pub(super) fn dead_letter(
        &mut self,
        at: InFlight,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        why: &Rejection,
        new: bool,
    ) -> Result<()> {
        self.warn_rejected(&at, &why.message);
        let letter = DeadLetter::new(
            &self.streams[at.stream],
            &at,
            key,
            value,
            why,
            self.settings.max_request_size.max(0) as usize,
        );
        self.send(&letter.record(), InFlight { dead_letter: true, ..at }, new).map(drop)
    }
}

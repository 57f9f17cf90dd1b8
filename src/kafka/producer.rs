//! The producer: hands records to librdkafka without blocking and serves its delivery reports, which go to a
//! [`DeliveryListener`] the caller owns (the write path's checkpoint tracker, or `check`'s single record).

use super::client::{self, Context, Stats};
use super::diagnostics::Diagnostics;
use super::msk_iam::MskIam;
use super::native::{self, Refusal, Topics};
use super::record::OutgoingRecord;
use crate::config::Settings;
use crate::delivery::{DeliveryListener, Undelivered};
use crate::error::{Error, Failure, Result};
use crate::stop::Stop;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer as _, ProducerContext};
use std::time::{Duration, Instant};

impl<L: DeliveryListener> ProducerContext for Context<L> {
    type DeliveryOpaque = L::Token;

    fn delivery(&self, result: &DeliveryResult<'_>, token: L::Token) {
        let outcome = result.as_ref().map(|_| ()).map_err(|(error, message)| {
            let mut what = format!("delivery to topic `{}` failed", message.topic());
            if let Some((_, reason)) = self.diagnostics.cause() {
                what.push_str(&format!(" (last client error: {reason})"));
            }
            Undelivered {
                error: Error::kafka(what, error.clone()),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
            }
        });
        self.extra.delivered(token, outcome);
    }
}

pub struct Producer<L: DeliveryListener> {
    /// Released before the client (fields drop in order).
    topics: Topics,
    inner: BaseProducer<Context<L>>,
    stop: Stop,
}

/// Whether librdkafka took a record.
pub enum Sent<T> {
    Queued,
    /// Its queue is full: serve reports, then offer the record again (with the token given back).
    QueueFull(T),
}

/// Why a transaction call failed, as librdkafka and the failure policy classify it.
pub enum TxnError {
    /// Try the same call again.
    Retriable(Error),
    /// The transaction must be aborted; the producer can go on.
    Abortable(Error),
    /// The producer cannot go on (fenced by a newer producer with the same transactional.id, or broken): an abort
    /// is pointless.
    Fatal(Error),
}

impl TxnError {
    fn of(what: &str, error: KafkaError) -> TxnError {
        let (retriable, abortable) = match &error {
            KafkaError::Transaction(e) if !e.is_fatal() => (e.is_retriable(), e.txn_requires_abort()),
            _ => (false, false),
        };
        let code = error.rdkafka_error_code();
        // librdkafka marks "this broker has no transactions" retriable; the failure policy knows better.
        if code.is_some_and(|c| Failure::of_code(c).scope == crate::error::Scope::Config) {
            if let Some(RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::UnsupportedFeature) = code {
                return TxnError::Fatal(Error::Config(format!(
                    "`delivery_guarantee` is exactly_once but the broker does not support transactions ({what}: \
                     {error}); use at_least_once or a broker with transactions"
                )));
            }
            return TxnError::Fatal(Error::kafka(what, error));
        }
        let error = Error::kafka(what, error);
        if retriable {
            TxnError::Retriable(error)
        } else if abortable {
            TxnError::Abortable(error)
        } else {
            TxnError::Fatal(error)
        }
    }

    pub fn into_error(self) -> Error {
        match self {
            TxnError::Retriable(e) | TxnError::Abortable(e) | TxnError::Fatal(e) => e,
        }
    }
}

/// What only some producers need.
#[derive(Default)]
pub struct Options<'a> {
    /// A transactional producer (call `init_transactions` first).
    pub transactional_id: Option<&'a str>,
    /// librdkafka's statistics this often (see `statistics`).
    pub statistics: Option<Duration>,
}

impl<L: DeliveryListener> Producer<L> {
    pub fn new(settings: &Settings, options: Options<'_>, listener: L, stop: &Stop) -> Result<Producer<L>> {
        let mut props = settings.properties()?;
        if let Some(id) = options.transactional_id {
            props.set("transactional.id", id, "transactional_id");
        }
        if let Some(every) = options.statistics {
            props.set("statistics.interval.ms", every.as_millis().max(1), "statistics");
        }
        let inner = client::create(&props, Context::new(listener, MskIam::of(settings)?))?;
        Ok(Producer { topics: Topics::default(), inner, stop: stop.clone() })
    }

    /// librdkafka's latest statistics, when asked for in `Options`.
    pub fn statistics(&self) -> Option<Stats> {
        self.inner.context().stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn listener(&self) -> &L {
        &self.inner.context().extra
    }

    pub fn diagnostics(&self) -> &Diagnostics {
        &self.inner.context().diagnostics
    }

    pub(super) fn stop(&self) -> &Stop {
        &self.stop
    }

    pub(super) fn msk_iam(&self) -> Option<&MskIam> {
        self.inner.context().msk_iam.as_ref()
    }

    pub(super) fn inner(&self) -> &BaseProducer<Context<L>> {
        &self.inner
    }

    /// librdkafka's "fatal error" says only that the producer stopped; the error that stopped it (say, no
    /// IDEMPOTENT_WRITE on the cluster) is what the user must fix, and what the failure policy classifies.
    pub fn cause_of(&self, error: Error) -> Error {
        if error.kafka_code() != Some(RDKafkaErrorCode::Fatal) {
            return error;
        }
        match self.inner.client().fatal_error() {
            Some((code, reason)) => {
                Error::kafka(format!("librdkafka stopped the producer: {reason}"), KafkaError::Global(code))
            }
            None => error,
        }
    }

    /// Hands one record to librdkafka, which copies it. Never blocks.
    pub fn send(&mut self, record: &OutgoingRecord<'_>, token: L::Token) -> Result<Sent<L::Token>> {
        match native::produce(&self.inner, &mut self.topics, record, token) {
            Ok(()) => Ok(Sent::Queued),
            Err(Refusal::QueueFull(token)) => Ok(Sent::QueueFull(token)),
            // Never queued, so never reported: the caller learns of it here.
            Err(Refusal::Error(code)) => {
                let error = KafkaError::MessageProduction(code);
                Err(self.cause_of(Error::kafka(format!("cannot produce to topic `{}`", record.topic), error)))
            }
        }
    }

    /// Serves every delivery report that is ready, without waiting; returns whether anything was served.
    pub fn serve_reports(&self) -> bool {
        let before = self.inner.in_flight_count();
        let mut last = before;
        // Bounded, so a steady stream of reports cannot keep the caller from producing.
        for _ in 0..64 {
            self.inner.poll(Duration::ZERO);
            let now = self.inner.in_flight_count();
            if now == last {
                break;
            }
            last = now;
        }
        last != before
    }

    /// Serves reports until librdkafka holds nothing (every record reported) or the deadline passes.
    /// Not rdkafka's `flush`, whose polls hold the caller for their whole timeout.
    pub fn flush(&self, deadline: Instant) -> bool {
        loop {
            if self.inner.in_flight_count() == 0 {
                return true;
            }
            if Instant::now() >= deadline || self.stop.requested() {
                return false;
            }
            if !self.serve_reports() {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// Registers the transactional id with the broker's coordinator, which fences any older producer with the same
    /// id and aborts what it left open.
    pub fn init_transactions(&self, timeout: Duration) -> std::result::Result<(), TxnError> {
        self.inner.init_transactions(timeout).map_err(|e| TxnError::of("cannot start transactions", e))
    }

    pub fn begin_transaction(&self) -> std::result::Result<(), TxnError> {
        self.inner.begin_transaction().map_err(|e| TxnError::of("cannot begin a transaction", e))
    }

    /// Commits the open transaction. Serve reports until nothing is in flight first (`flush`): rdkafka's own
    /// flush inside the commit would hold every commit for at least 100 ms.
    pub fn commit_transaction(&self, timeout: Duration) -> std::result::Result<(), TxnError> {
        self.inner.commit_transaction(timeout).map_err(|e| TxnError::of("cannot commit the transaction", e))
    }

    /// Aborts the open transaction; records in flight are purged (their reports fail with a purge error).
    pub fn abort_transaction(&self, timeout: Duration) -> std::result::Result<(), TxnError> {
        self.inner.abort_transaction(timeout).map_err(|e| TxnError::of("cannot abort the transaction", e))
    }

    /// Serves librdkafka's events for `timeout`. rdkafka keeps polling until the timeout ends and spins through
    /// its last millisecond: only for waits where nothing else is to be done.
    pub(super) fn poll(&self, timeout: Duration) {
        self.inner.poll(timeout);
    }
}

//! Producing through librdkafka's own calls, by topic handle. rdkafka's `BaseProducer::send` names the topic on
//! every record: a C string allocated, and the topic looked up (under the client's lock) and released inside
//! librdkafka, per message. A handle per topic, made on the topic's first record and kept, skips all three; the
//! message itself is copied by librdkafka either way.
//!
//! The delivery report is rdkafka's: the token goes in as rdkafka's own `send` passes it (`IntoOpaque`), so the
//! producer context's `delivery` receives it unchanged.

use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer as _, ProducerContext};
use rdkafka::util::IntoOpaque;
use std::ffi::CString;
use std::os::raw::c_void;

use super::record::{Header, OutgoingRecord};

/// A librdkafka topic handle; released when dropped (before the client it was made from: see `Producer`).
struct Handle(*mut rd::rd_kafka_topic_t);

// SAFETY: librdkafka's topic handles are thread-safe, reference-counted objects.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: made by `rd_kafka_topic_new`, released once.
        unsafe { rd::rd_kafka_topic_destroy(self.0) }
    }
}

/// The handles of the topics produced to so far (a sync writes to a few: its streams' and dead-letter topics).
#[derive(Default)]
pub struct Topics {
    handles: Vec<(String, Handle)>,
    last: usize,
}

impl Topics {
    fn handle(
        &mut self,
        client: *mut rd::rd_kafka_t,
        topic: &str,
    ) -> Result<*mut rd::rd_kafka_topic_t, RDKafkaErrorCode> {
        // Records come in runs of one stream: the last topic first.
        if let Some((name, handle)) = self.handles.get(self.last) {
            if name == topic {
                return Ok(handle.0);
            }
        }
        if let Some(i) = self.handles.iter().position(|(name, _)| name == topic) {
            self.last = i;
            return Ok(self.handles[i].1 .0);
        }
        let name = CString::new(topic).map_err(|_| RDKafkaErrorCode::InvalidTopic)?;
        // SAFETY: `client` is a live producer; a null configuration means the client's topic defaults.
        let handle = unsafe { rd::rd_kafka_topic_new(client, name.as_ptr(), std::ptr::null_mut()) };
        if handle.is_null() {
            return Err(RDKafkaErrorCode::InvalidTopic);
        }
        self.handles.push((topic.to_string(), Handle(handle)));
        self.last = self.handles.len() - 1;
        Ok(handle)
    }
}

/// Why librdkafka did not take a record.
pub enum Refusal<T> {
    /// Its queue is full; the token is given back.
    QueueFull(T),
    /// Anything else (too large, unknown topic, a fatal producer): the token was dropped.
    Error(RDKafkaErrorCode),
}

/// Hands `record` to librdkafka, which copies it; its delivery report (served by `producer`'s context) will carry
/// `token`.
pub fn produce<C: ProducerContext>(
    producer: &BaseProducer<C>,
    topics: &mut Topics,
    record: &OutgoingRecord<'_>,
    token: C::DeliveryOpaque,
) -> Result<(), Refusal<C::DeliveryOpaque>> {
    let client = producer.client().native_ptr();
    let topic = topics.handle(client, record.topic).map_err(Refusal::Error)?;
    let headers = native_headers(record.headers);
    let opaque = token.into_ptr();
    use rd::rd_kafka_vtype_t::*;
    use rd::rd_kafka_vu_s__bindgen_ty_1 as U;
    // At most seven arguments, on the stack: no allocation per record.
    let rkt = value(RD_KAFKA_VTYPE_RKT, U { rkt: topic });
    let mut args = [rkt; 7];
    args[1] = value(RD_KAFKA_VTYPE_MSGFLAGS, U { i: rd::RD_KAFKA_MSG_F_COPY });
    args[2] = value(RD_KAFKA_VTYPE_OPAQUE, U { ptr: opaque });
    let mut count = 3;
    let optional = [
        record.key.map(|key| value(RD_KAFKA_VTYPE_KEY, memory(key))),
        record.value.map(|payload| value(RD_KAFKA_VTYPE_VALUE, memory(payload))),
        record.timestamp.map(|at| value(RD_KAFKA_VTYPE_TIMESTAMP, U { i64_: at })),
        (!headers.is_null()).then(|| value(RD_KAFKA_VTYPE_HEADERS, U { headers })),
    ];
    for arg in optional.into_iter().flatten() {
        args[count] = arg;
        count += 1;
    }
    // SAFETY: every pointer in `args` is live for the call (librdkafka copies key and value: F_COPY).
    let error = unsafe { rd::rd_kafka_produceva(client, args.as_ptr(), count) };
    if error.is_null() {
        return Ok(()); // librdkafka owns the headers now
    }
    // SAFETY: `error` is librdkafka's, read then released once; the headers were not taken; the token is ours
    // again, exactly once.
    unsafe {
        let code = RDKafkaErrorCode::from(rd::rd_kafka_error_code(error));
        rd::rd_kafka_error_destroy(error);
        if !headers.is_null() {
            rd::rd_kafka_headers_destroy(headers);
        }
        let token = C::DeliveryOpaque::from_ptr(opaque);
        match code {
            RDKafkaErrorCode::QueueFull => Err(Refusal::QueueFull(token)),
            code => Err(Refusal::Error(code)),
        }
    }
}

fn value(vtype: rd::rd_kafka_vtype_t, u: rd::rd_kafka_vu_s__bindgen_ty_1) -> rd::rd_kafka_vu_t {
    rd::rd_kafka_vu_t { vtype, u }
}

fn memory(bytes: &[u8]) -> rd::rd_kafka_vu_s__bindgen_ty_1 {
    rd::rd_kafka_vu_s__bindgen_ty_1 {
        mem: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 { ptr: bytes.as_ptr() as *mut c_void, size: bytes.len() },
    }
}

/// The record's headers as librdkafka's (null for none), copied in.
fn native_headers(headers: &[Header]) -> *mut rd::rd_kafka_headers_t {
    if headers.is_empty() {
        return std::ptr::null_mut();
    }
    // SAFETY: a new header list; each name and value is copied with its explicit length.
    unsafe {
        let list = rd::rd_kafka_headers_new(headers.len());
        for (name, value) in headers {
            rd::rd_kafka_header_add(
                list,
                name.as_ptr().cast(),
                name.len() as isize,
                value.as_ptr().cast(),
                value.len() as isize,
            );
        }
        list
    }
}

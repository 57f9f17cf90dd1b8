//! SIGTERM / SIGINT: the platform (or `docker stop`) asking us to end. Handlers are installed first thing at
//! process start, so a stop is seen during startup (metadata, topic creation) as much as mid-sync. The handle is
//! passed down to whatever waits (the Kafka layer's calls, the write path's loops); it is not a global.

use crate::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether a stop was asked for. Cloning shares the flag.
#[derive(Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A handle the signal handlers set (they only set the flag).
    pub fn install() -> (Stop, std::io::Result<()>) {
        let stop = Stop::default();
        let installed = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT]
            .into_iter()
            .try_for_each(|signal| signal_hook::flag::register(signal, Arc::clone(&stop.0)).map(|_| ()));
        (stop, installed)
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Ok while no stop was asked for.
    pub fn check(&self) -> Result<(), Error> {
        if self.requested() {
            Err(stopped())
        } else {
            Ok(())
        }
    }
}

pub fn stopped() -> Error {
    Error::Transient(
        "stopped by a signal; states whose records were not all acknowledged (with exactly_once: committed) were not \
         emitted"
            .into(),
    )
}

//! SIGTERM / SIGINT: the platform (or `docker stop`) asking us to end. Handlers are installed first thing at
//! process start, so a stop is seen during startup (metadata, topic creation) as much as mid-sync; every wait
//! loop looks at the flag.

use crate::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Installs the handlers; they only set a flag.
pub fn install() -> std::io::Result<()> {
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&STOP))?;
    }
    Ok(())
}

pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Ok while no stop was asked for.
pub fn check() -> Result<(), Error> {
    if requested() {
        Err(stopped())
    } else {
        Ok(())
    }
}

pub fn stopped() -> Error {
    Error::Transient("stopped by a signal; states whose records were not all acknowledged (with exactly_once: committed) were not emitted".into())
}

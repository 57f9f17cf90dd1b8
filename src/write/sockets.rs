//! Speed Mode's sockets: the source serves each Unix socket; `write` waits for each file to appear (the source
//! may start later), then connects, one after another in the order the platform lists them, as the bulk CDK's
//! `ClientSocket` does. Each socket is then one source of the input, read on a thread of its own.

use super::input::Source;
use crate::error::{Error, Result};
use crate::stop::Stop;
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often a missing socket file is looked for (the CDK looks every second; sooner costs nothing).
const POLL: Duration = Duration::from_millis(100);

pub fn connect(paths: &[PathBuf], wait: Duration, stop: &Stop) -> Result<Vec<Source>> {
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        let name = format!("socket {}", path.display());
        let started = Instant::now();
        let stream = loop {
            if path.exists() {
                match UnixStream::connect(path) {
                    Ok(stream) => break stream,
                    // A source binds its socket (the file appears) a moment before it listens: refused until then.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused && started.elapsed() < wait => {}
                    Err(e) => return Err(Error::io(format!("cannot connect to {name}"), e)),
                }
            } else if started.elapsed() >= wait {
                return Err(Error::System(format!(
                    "Socket file {} not created after {} ms (`socket_wait_ms`): the source never served it",
                    path.display(),
                    wait.as_millis()
                )));
            }
            stop.check()?;
            std::thread::sleep(POLL.min(wait.saturating_sub(started.elapsed())));
        };
        tracing::info!("connected to {name}");
        sources.push(Source { name, reader: Box::new(stream) });
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    #[test]
    fn waits_for_a_socket_served_late_and_gives_up_on_one_never_served() {
        let dir = std::env::temp_dir().join(format!("destination-kafka-sockets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("airbyte_socket_0.sock");
        let served = path.clone();
        let source = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let listener = UnixListener::bind(&served).unwrap();
            listener.accept().unwrap().0.write_all(b"hello\n").unwrap();
        });
        let mut sources = connect(std::slice::from_ref(&path), Duration::from_secs(10), &Stop::default()).unwrap();
        let mut text = String::new();
        sources[0].reader.read_to_string(&mut text).unwrap();
        assert_eq!(
            (sources[0].name.as_str(), text.as_str()),
            (format!("socket {}", path.display()).as_str(), "hello\n")
        );
        source.join().unwrap();

        // A file that refuses connections (as a socket does between its bind and its listen) is tried again until
        // the source listens there; one that still refuses when the wait is over fails the sync, naming it.
        let refusing = dir.join("refusing.sock");
        std::fs::write(&refusing, b"").unwrap();
        let served = refusing.clone();
        let source = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::remove_file(&served).unwrap();
            let listener = UnixListener::bind(&served).unwrap();
            listener.accept().unwrap().0.write_all(b"late\n").unwrap();
        });
        let mut sources = connect(std::slice::from_ref(&refusing), Duration::from_secs(10), &Stop::default()).unwrap();
        let mut text = String::new();
        sources[0].reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "late\n");
        source.join().unwrap();
        let stale = dir.join("stale.sock");
        std::fs::write(&stale, b"").unwrap();
        let error = connect(&[stale], Duration::from_millis(200), &Stop::default()).err().unwrap();
        assert!(error.to_string().contains("cannot connect to socket") && error.to_string().contains("stale.sock"));

        let never = dir.join("never.sock");
        let error = connect(&[never], Duration::from_millis(200), &Stop::default()).err().unwrap();
        assert!(error.to_string().contains("not created after 200 ms"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

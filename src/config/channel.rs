//! The data channel `write` reads, as the Airbyte platform announces it in the environment (Speed Mode): the
//! medium (stdin, or Unix sockets the source serves), the framing (JSON lines, or length-delimited Protobuf), the
//! socket paths, and where the namespace mapping is. The names and values are the bulk CDK's
//! (`EnvVarConstants`, `application.yaml`); an unknown value is a config error, never a silent fall back to
//! stdin.

use crate::error::{Error, Result};
use std::path::PathBuf;

pub const MEDIUM: &str = "DATA_CHANNEL_MEDIUM";
pub const FORMAT: &str = "DATA_CHANNEL_FORMAT";
pub const SOCKET_PATHS: &str = "DATA_CHANNEL_SOCKET_PATHS";
pub const NAMESPACE_MAPPING: &str = "NAMESPACE_MAPPING_CONFIG_PATH";
/// Where the platform puts the mapping when it does not name a path.
pub const DEFAULT_NAMESPACE_MAPPING: &str = "/dest/namespace-mapping.json";

/// How long to wait for a socket file by default (`socket_wait_ms`): the bulk CDK's `ClientSocket` waits 15 minutes.
pub fn socket_wait() -> std::time::Duration {
    std::time::Duration::from_secs(900)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON Airbyte message per line.
    Jsonl,
    /// Each message a varint length, then an `AirbyteMessageProtobuf`.
    Protobuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Medium {
    Stdio,
    /// The sockets, in the order the platform lists them.
    Sockets(Vec<PathBuf>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub medium: Medium,
    pub framing: Framing,
    /// The namespace mapping file, in socket mode (stdin gets names already mapped by the platform).
    pub namespace_mapping: Option<PathBuf>,
}

impl Channel {
    /// From the process environment.
    pub fn from_env() -> Result<Channel> {
        Channel::from_vars(|name| std::env::var(name).ok(), |path| std::path::Path::new(path).exists())
    }

    /// `var`: an environment variable's value; `exists`: whether a file exists (the mapping's default path).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, exists: impl Fn(&str) -> bool) -> Result<Channel> {
        let framing = match var(FORMAT).as_deref() {
            None | Some("JSONL") => Framing::Jsonl,
            Some("PROTOBUF") => Framing::Protobuf,
            Some(other) => return Err(unknown(FORMAT, other, "JSONL or PROTOBUF")),
        };
        let medium = match var(MEDIUM).as_deref() {
            None | Some("STDIO") => Medium::Stdio,
            Some("SOCKET") => {
                let listed = var(SOCKET_PATHS).unwrap_or_default();
                let paths: Vec<PathBuf> =
                    listed.split(',').map(str::trim).filter(|p| !p.is_empty()).map(PathBuf::from).collect();
                if paths.is_empty() {
                    return Err(Error::Config(format!(
                        "{MEDIUM} is SOCKET but {SOCKET_PATHS} names no socket (it is {})",
                        if listed.is_empty() { "unset".to_string() } else { format!("`{listed}`") }
                    )));
                }
                Medium::Sockets(paths)
            }
            Some(other) => return Err(unknown(MEDIUM, other, "STDIO or SOCKET")),
        };
        let namespace_mapping = match (&medium, var(NAMESPACE_MAPPING).filter(|p| !p.is_empty())) {
            (Medium::Stdio, _) => None,
            (Medium::Sockets(_), Some(path)) => Some(PathBuf::from(path)),
            (Medium::Sockets(_), None) => exists(DEFAULT_NAMESPACE_MAPPING).then(|| DEFAULT_NAMESPACE_MAPPING.into()),
        };
        Ok(Channel { medium, framing, namespace_mapping })
    }

    pub fn sockets(&self) -> bool {
        matches!(self.medium, Medium::Sockets(_))
    }

    /// How the log names it.
    pub fn describe(&self) -> String {
        let framing = match self.framing {
            Framing::Jsonl => "JSONL",
            Framing::Protobuf => "PROTOBUF",
        };
        match &self.medium {
            Medium::Stdio => format!("stdin, {framing}"),
            Medium::Sockets(paths) => format!("{} socket(s), {framing}", paths.len()),
        }
    }
}

fn unknown(name: &str, value: &str, known: &str) -> Error {
    Error::Config(format!("{name} is `{value}`, which this destination does not know: it reads {known}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(vars: &[(&str, &str)], default_mapping_exists: bool) -> Result<Channel> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Channel::from_vars(
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            |_| default_mapping_exists,
        )
    }

    #[test]
    fn stdin_and_json_lines_unless_told_otherwise() {
        let plain = channel(&[], true).unwrap();
        assert_eq!(plain, Channel { medium: Medium::Stdio, framing: Framing::Jsonl, namespace_mapping: None });
        let told = channel(&[(MEDIUM, "STDIO"), (FORMAT, "JSONL"), (NAMESPACE_MAPPING, "/m.json")], true).unwrap();
        assert_eq!(told, plain, "stdin gets names the platform already mapped");
    }

    #[test]
    fn sockets_as_the_platform_lists_them() {
        let vars = [(MEDIUM, "SOCKET"), (FORMAT, "PROTOBUF"), (SOCKET_PATHS, "/s/a.sock,/s/b.sock")];
        let c = channel(&vars, false).unwrap();
        assert_eq!(c.medium, Medium::Sockets(vec!["/s/a.sock".into(), "/s/b.sock".into()]));
        assert_eq!((c.framing, c.namespace_mapping), (Framing::Protobuf, None));
        let c = channel(&vars, true).unwrap();
        assert_eq!(c.namespace_mapping, Some(DEFAULT_NAMESPACE_MAPPING.into()), "the platform's default path");
        let named = [(MEDIUM, "SOCKET"), (SOCKET_PATHS, "/s/a.sock"), (NAMESPACE_MAPPING, "/etc/m.json")];
        assert_eq!(channel(&named, true).unwrap().namespace_mapping, Some("/etc/m.json".into()));
    }

    #[test]
    fn unknown_values_are_config_errors_naming_the_variable() {
        for (vars, says) in [
            (vec![(MEDIUM, "socket")], "DATA_CHANNEL_MEDIUM is `socket`"),
            (vec![(MEDIUM, "PIGEON")], "STDIO or SOCKET"),
            (vec![(FORMAT, "AVRO")], "DATA_CHANNEL_FORMAT is `AVRO`"),
            (vec![(MEDIUM, "SOCKET")], "DATA_CHANNEL_SOCKET_PATHS names no socket (it is unset)"),
            (vec![(MEDIUM, "SOCKET"), (SOCKET_PATHS, " , ")], "names no socket (it is ` , `)"),
        ] {
            match channel(&vars, false) {
                Err(Error::Config(message)) => assert!(message.contains(says), "{message}"),
                other => panic!("{vars:?}: {other:?}"),
            }
        }
    }
}

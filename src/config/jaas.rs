//! Java JAAS login strings, which saved configs carry, turned into the librdkafka properties that mean the same.
//! librdkafka has no JAAS: without this, a SASL config that worked on the Java connector would not work here.

use regex::Regex;
use std::collections::HashMap;
use std::sync::LazyLock;

/// `<LoginModule class> <control flag> key=value ... ;`
static ENTRY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)^\s*([A-Za-z_$][\w.$]*)\s+(required|requisite|sufficient|optional)\b(.*?);?\s*$").unwrap()
});
/// One option: a bare word or a double-quoted string with backslash escapes.
static OPTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\s*([A-Za-z_][\w.\-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s";]+))"#).unwrap());

/// A parsed JAAS entry: the module's short name and its options.
#[derive(PartialEq, Eq)]
pub struct Jaas {
    pub module: String,
    pub options: HashMap<String, String>,
}

// Options hold passwords: never print them.
impl std::fmt::Debug for Jaas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<_> = self.options.keys().collect();
        keys.sort();
        f.debug_struct("Jaas").field("module", &self.module).field("option_keys", &keys).finish()
    }
}

/// The shape we expect, for error messages (never the user's own string: it holds a secret).
const EXPECTED: &str = r#"expected `<LoginModule> required key="value" ...;`, e.g. `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`"#;

/// What is wrong with a JAAS string, in words that never include the string itself (it holds a secret).
#[derive(Debug, thiserror::Error)]
pub enum JaasError {
    #[error("is not a JAAS login entry: {EXPECTED}")]
    NotAnEntry,
    #[error("has an option that is not `key=value` or `key=\"value\"`: {EXPECTED}")]
    BadOption,
    #[error("has no `{option}` option, which {mechanism} needs (module {module})")]
    Missing { option: &'static str, mechanism: &'static str, module: String },
    #[error(
        "has no `unsecuredLoginStringClaim_sub` option: only unsecured OAUTHBEARER tokens can be configured from JAAS \
         (module {module})"
    )]
    NotUnsecuredOauth { module: String },
}

impl From<JaasError> for crate::error::Error {
    fn from(e: JaasError) -> Self {
        crate::error::Error::Config(format!("config field `protocol.sasl_jaas_config` {e}"))
    }
}

pub fn parse(text: &str) -> Result<Jaas, JaasError> {
    let caps = ENTRY.captures(text).ok_or(JaasError::NotAnEntry)?;
    let module = caps[1].rsplit('.').next().unwrap_or_default().to_string();
    let mut rest = caps.get(3).map_or("", |m| m.as_str());
    let mut options = HashMap::new();
    while !rest.trim().is_empty() {
        let opt =
            OPTION.captures(rest).filter(|c| c.get(0).is_some_and(|m| m.start() == 0)).ok_or(JaasError::BadOption)?;
        let value = match opt.get(2) {
            Some(quoted) => unescape(quoted.as_str()),
            None => opt[3].to_string(),
        };
        options.insert(opt[1].to_string(), value);
        rest = &rest[opt.get(0).map_or(0, |m| m.end())..];
    }
    Ok(Jaas { module, options })
}

fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
    }
    out
}

impl Jaas {
    pub fn get(&self, option: &str) -> Option<&str> {
        self.options.get(option).map(String::as_str)
    }

    /// An option the mechanism cannot do without.
    pub fn require(&self, option: &'static str, mechanism: &'static str) -> Result<&str, JaasError> {
        self.get(option).ok_or_else(|| JaasError::Missing { option, mechanism, module: self.module.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_bare_options() {
        let jaas = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cr=t;x";"#,
        )
        .unwrap();
        assert_eq!(jaas.module, "PlainLoginModule");
        assert_eq!((jaas.get("username"), jaas.get("password")), (Some("alice"), Some("s3cr=t;x")));

        let jaas = parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=bob\n  password=\"p\\\"q\\\\\";",
        )
        .unwrap();
        assert_eq!((jaas.get("username"), jaas.get("password")), (Some("bob"), Some("p\"q\\")));
    }

    #[test]
    fn optional_semicolon_and_flags() {
        let jaas = parse("x.PlainLoginModule sufficient username=\"u\" password=\"p\"").unwrap();
        assert_eq!(jaas.options.len(), 2);
    }

    #[test]
    fn malformed_entries_are_named_without_the_secret() {
        for bad in ["", "username=u password=p", "PlainLoginModule required username", "M required a=\"unterminated"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("expected"), "{bad:?}: {err}");
        }
        let jaas = parse(r#"x.PlainLoginModule required username="u";"#).unwrap();
        let err = jaas.require("password", "PLAIN").unwrap_err().to_string();
        assert!(err.contains("`password`") && err.contains("PLAIN"), "{err}");
        let jaas = parse(r#"x.PlainLoginModule required username="u" password="topsecret";"#).unwrap();
        assert!(!format!("{jaas:?}").contains("topsecret"));
    }
}

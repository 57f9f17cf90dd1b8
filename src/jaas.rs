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

pub fn parse(text: &str) -> Result<Jaas, String> {
    let caps = ENTRY.captures(text).ok_or_else(|| format!("is not a JAAS login entry: {EXPECTED}"))?;
    let module = caps[1].rsplit('.').next().unwrap_or_default().to_string();
    let mut rest = caps.get(3).map_or("", |m| m.as_str());
    let mut options = HashMap::new();
    while !rest.trim().is_empty() {
        let opt = OPTION
            .captures(rest)
            .filter(|c| c.get(0).is_some_and(|m| m.start() == 0))
            .ok_or_else(|| format!("has an option that is not `key=value` or `key=\"value\"`: {EXPECTED}"))?;
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

/// librdkafka properties for a SASL mechanism, from the JAAS options Java would have used.
pub fn sasl_properties(mechanism: &str, jaas: &Jaas) -> Result<Vec<(&'static str, String)>, String> {
    let get = |key: &str| jaas.options.get(key).cloned();
    let require = |key: &str| {
        get(key).ok_or_else(|| format!("has no `{key}` option, which {mechanism} needs (module {})", jaas.module))
    };
    match mechanism {
        "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
            Ok(vec![("sasl.username", require("username")?), ("sasl.password", require("password")?)])
        }
        "OAUTHBEARER" => {
            // Java's unsecured-token options; librdkafka's unsecured JWT takes the same claims.
            let principal = get("unsecuredLoginStringClaim_sub").ok_or_else(|| {
                format!(
                    "has no `unsecuredLoginStringClaim_sub` option: only unsecured OAUTHBEARER tokens can be \
                     configured from JAAS (module {})",
                    jaas.module
                )
            })?;
            let mut config = format!("principal={principal}");
            if let Some(scope) = get("unsecuredLoginListClaim_scope") {
                config.push_str(&format!(" scope={scope}"));
            }
            Ok(vec![("enable.sasl.oauthbearer.unsecure.jwt", "true".into()), ("sasl.oauthbearer.config", config)])
        }
        "GSSAPI" => {
            let mut props = vec![("sasl.kerberos.service.name", get("serviceName").unwrap_or_else(|| "kafka".into()))];
            if let Some(principal) = get("principal") {
                props.push(("sasl.kerberos.principal", principal));
            }
            if let Some(keytab) = get("keyTab") {
                props.push(("sasl.kerberos.keytab", keytab));
            }
            Ok(props)
        }
        other => Err(format!("cannot be used with unknown sasl_mechanism `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_scram() {
        let jaas = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cr=t;x";"#,
        )
        .unwrap();
        assert_eq!(jaas.module, "PlainLoginModule");
        let props = sasl_properties("PLAIN", &jaas).unwrap();
        assert_eq!(props, vec![("sasl.username", "alice".into()), ("sasl.password", "s3cr=t;x".into())]);

        let jaas = parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=bob\n  password=\"p\\\"q\\\\\";",
        )
        .unwrap();
        let props = sasl_properties("SCRAM-SHA-512", &jaas).unwrap();
        assert_eq!(props[1], ("sasl.password", "p\"q\\".into()));
        assert_eq!(props[0], ("sasl.username", "bob".into()));
    }

    #[test]
    fn optional_semicolon_and_flags() {
        let jaas = parse("x.PlainLoginModule sufficient username=\"u\" password=\"p\"").unwrap();
        assert_eq!(jaas.options.len(), 2);
    }

    #[test]
    fn oauthbearer_and_gssapi() {
        let jaas = parse(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="svc";"#,
        )
        .unwrap();
        let props = sasl_properties("OAUTHBEARER", &jaas).unwrap();
        assert!(props.contains(&("sasl.oauthbearer.config", "principal=svc".into())));

        let jaas = parse(
            r#"com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="/k.keytab" principal="kafka/h@R";"#,
        )
        .unwrap();
        let props = sasl_properties("GSSAPI", &jaas).unwrap();
        assert!(props.contains(&("sasl.kerberos.keytab", "/k.keytab".into())));
        assert!(props.contains(&("sasl.kerberos.service.name", "kafka".into())));
    }

    #[test]
    fn malformed_entries_are_named_without_the_secret() {
        for bad in ["", "username=u password=p", "PlainLoginModule required username", "M required a=\"unterminated"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("expected"), "{bad:?}: {err}");
        }
        let jaas = parse(r#"x.PlainLoginModule required username="u";"#).unwrap();
        let err = sasl_properties("PLAIN", &jaas).unwrap_err();
        assert!(err.contains("`password`"), "{err}");
        let jaas = parse(r#"x.PlainLoginModule required username="u" password="topsecret";"#).unwrap();
        assert!(!format!("{jaas:?}").contains("topsecret"));
    }
}

//! Topic names, byte for byte as the Java connector builds them, so a swapped image writes to the same topics.

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// Kafka's hard limit on a topic name's length.
pub const MAX_TOPIC_LEN: usize = 249;

/// Fills `{namespace}` then `{stream}` into the pattern (absent → ""), then sanitises the whole string.
pub fn topic_name(pattern: &str, namespace: Option<&str>, stream: &str) -> String {
    sanitize(&fill(pattern, namespace, stream))
}

/// `{namespace}` then `{stream}` filled into a template (an absent namespace → ""), as topic patterns fill them.
pub fn fill(template: &str, namespace: Option<&str>, stream: &str) -> String {
    template.replace("{namespace}", namespace.unwrap_or("")).replace("{stream}", stream)
}

/// Java's `toAlphanumericAndUnderscore`: NFKD, drop marks (category M), each run of ASCII whitespace → `_`,
/// then each remaining code point outside `[A-Za-z0-9_]` → `_`. No lower-casing, no truncation.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_whitespace = false;
    for c in name.nfkd().filter(|c| !is_combining_mark(*c)) {
        // Java's `\s` is exactly these six ASCII characters.
        if matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r') {
            if !in_whitespace {
                out.push('_');
            }
            in_whitespace = true;
            continue;
        }
        in_whitespace = false;
        out.push(if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' });
    }
    out
}

/// A topic named as is (a configured stream's `destination_object_name`, picked from `discover`'s topics, or the
/// progress topic): what Kafka would refuse in it; `what` names where it was given.
pub fn check_object_name(name: &str, what: &str) -> Result<(), crate::error::Error> {
    let refused = if name.is_empty() || name == "." || name == ".." {
        Some("is not a topic name".to_string())
    } else if name.len() > MAX_TOPIC_LEN {
        Some(format!("has {} characters, over Kafka's limit of {MAX_TOPIC_LEN}", name.len()))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|c| format!("has `{c}`, which Kafka does not allow (letters, digits, `.`, `_`, `-`)"))
    };
    match refused {
        Some(why) => Err(crate::error::Error::Config(format!("{what} `{name}` {why}"))),
        None => Ok(()),
    }
}

/// A topic name Kafka would refuse, and which stream (or config field) produced it.
#[derive(Debug, thiserror::Error)]
pub enum TopicNameError {
    #[error("{what} gives an empty topic name: change `topic_pattern`")]
    Empty { what: String },
    #[error(
        "{what} gives a topic name of {len} characters, over Kafka's limit of {MAX_TOPIC_LEN}: shorten `topic_pattern`"
    )]
    TooLong { what: String, len: usize },
}

/// Kafka rejects empty and over-long names; say which stream produced one, before anything is written.
impl From<TopicNameError> for crate::error::Error {
    fn from(e: TopicNameError) -> Self {
        crate::error::Error::Config(e.to_string())
    }
}

pub fn check_topic(topic: &str, what: &str) -> Result<(), TopicNameError> {
    if topic.is_empty() {
        return Err(TopicNameError::Empty { what: what.to_string() });
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicNameError::TooLong { what: what.to_string(), len: topic.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_taken_as_is_or_refused_with_the_reason() {
        assert!(check_object_name("shop.orders-v2_x", "stream `a`: `destination_object_name`").is_ok());
        for (name, says) in [
            ("", "is not a topic name"),
            ("..", "is not a topic name"),
            ("a/b", "has `/`"),
            ("é", "has `é`"),
            (&"x".repeat(250), "250 characters"),
        ] {
            let error = check_object_name(name, "stream `a`: `destination_object_name`").unwrap_err().to_string();
            assert!(error.starts_with("stream `a`: `destination_object_name`") && error.contains(says), "{error}");
        }
    }

    /// The Java connector's own test vectors (namespace `public`, stream `id_and_name`).
    #[test]
    fn java_vectors() {
        let cases = [
            ("test.topic", "test_topic"),
            ("test-topic", "test_topic"),
            ("{namespace}", "public"),
            ("{stream}", "id_and_name"),
            ("{namespace}.{stream}.test.topic", "public_id_and_name_test_topic"),
            ("{namespace}-{stream}-test.topic", "public_id_and_name_test_topic"),
            ("topic with spaces", "topic_with_spaces"),
        ];
        for (pattern, expected) in cases {
            assert_eq!(topic_name(pattern, Some("public"), "id_and_name"), expected, "{pattern}");
        }
        assert_eq!(
            topic_name("{namespace}.{stream}.test.topic", None, "stream-with:spécial:character_names"),
            "_stream_with_special_character_names_test_topic"
        );
        assert_eq!(topic_name("airbyte_syncs/{namespace}/{stream}", Some("n1"), "s1"), "airbyte_syncs_n1_s1");
    }

    #[test]
    fn whitespace_runs_collapse_but_other_characters_do_not() {
        assert_eq!(sanitize("a \t\r\n b"), "a_b");
        assert_eq!(sanitize("a\x0B\x0Cb"), "a_b");
        assert_eq!(sanitize("a--b"), "a__b");
        assert_eq!(sanitize(" a "), "_a_");
    }

    #[test]
    fn unicode() {
        // Decomposed accents lose their marks; precomposed ones decompose first.
        assert_eq!(sanitize("e\u{301}t\u{e9}"), "ete");
        // NFKD folds compatibility forms: ligature, full-width, superscript.
        assert_eq!(sanitize("\u{FB01}le"), "file");
        assert_eq!(sanitize("ＡＢ１"), "AB1");
        assert_eq!(sanitize("x\u{B2}"), "x2");
        // Non-Latin letters are one `_` per code point, not per byte.
        assert_eq!(sanitize("namespace_こんにちは"), "namespace______");
        // NFKD turns no-break and em spaces into ASCII spaces, which then collapse like any run.
        assert_eq!(sanitize("a\u{A0}\u{2003}b"), "a_b");
        // Whitespace NFKD leaves alone is not Java's `\s`: each becomes its own `_`.
        assert_eq!(sanitize("a\u{2028}\u{2028}b"), "a__b");
        // Hangul syllables decompose into jamo, which are letters (not marks): one `_` per jamo.
        assert_eq!(sanitize("한"), "___");
        assert_eq!(sanitize("😀"), "_");
        assert_eq!(sanitize("namespace_with_spécial_character"), "namespace_with_special_character");
    }

    #[test]
    fn no_case_change_or_digit_rule() {
        assert_eq!(sanitize("99Namespace"), "99Namespace");
        assert_eq!(topic_name("{stream}", None, "STREAM_WITH_ALL_CAPS"), "STREAM_WITH_ALL_CAPS");
    }

    #[test]
    fn checks_length_and_emptiness() {
        assert!(check_topic("", "stream `x`").unwrap_err().to_string().contains("empty"));
        assert!(check_topic(&"a".repeat(249), "s").is_ok());
        let err = check_topic(&"a".repeat(250), "stream `s`").unwrap_err().to_string();
        assert!(err.contains("250") && err.contains("stream `s`"), "{err}");
    }
}

//! A validating JSON scanner for the hot path: one pass over a line that checks the JSON grammar (as strictly as
//! serde_json) and hands back the byte spans of the values asked for, building nothing and allocating nothing.
//! It declines (`None`) whatever it does not read the fast way (an escaped key, a container nested deeper than
//! 64, an error): its caller then reads the line with serde_json, which gives the answer or the error message.
//!
//! Input is `&str`, so UTF-8 was checked once, before; spans start and end at ASCII bytes.

/// Containers nested deeper than this are left to serde_json (a stack of one bit per level).
const MAX_DEPTH: u32 = 64;

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

pub struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

/// The scanner's steps are functions of the bytes and a position, returning the next position (`None`: an error,
/// or something left to serde_json), so the position stays in a register through the hot loops.
type Step = Option<usize>;

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Whether `text` is exactly one JSON number.
    pub fn is_number(text: &str) -> bool {
        number(text.as_bytes(), 0) == Some(text.len())
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Option<()> {
        (ws(self.bytes(), self.at) == self.text.len()).then_some(())
    }

    /// An object, its values visited in order: `each` gets each key (unescaped keys only; an escaped one declines)
    /// with the scanner before its value, and must read that value.
    pub fn object(&mut self, mut each: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        let bytes = self.bytes();
        let mut at = expect(bytes, ws(bytes, self.at), b'{')?;
        at = ws(bytes, at);
        if *bytes.get(at)? == b'}' {
            self.at = at + 1;
            return Some(());
        }
        loop {
            let (end, escaped) = string(bytes, at)?;
            if escaped {
                return None;
            }
            let key = &self.text[at + 1..end - 1];
            self.at = ws(bytes, expect(bytes, ws(bytes, end), b':')?);
            each(self, key)?;
            at = ws(bytes, self.at);
            match *bytes.get(at)? {
                b',' => at = ws(bytes, at + 1),
                b'}' => {
                    self.at = at + 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `null`: read, and `true`; anything else: not read, and `false`.
    pub fn null(&mut self) -> bool {
        let at = ws(self.bytes(), self.at);
        let null = self.bytes()[at..].starts_with(b"null");
        if null {
            self.at = at + 4;
        }
        null
    }

    /// A string without escapes, or null. A string with escapes, or any other value, declines.
    pub fn plain_string_or_null(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        let (end, escaped) = string(self.bytes(), self.at)?;
        if escaped {
            return None;
        }
        let text = &self.text[self.at + 1..end - 1];
        self.at = end;
        Some(Some(text))
    }

    /// An integer in i64's range written without fraction or exponent, or null; anything else declines.
    pub fn integer_or_null(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        let bytes = self.bytes();
        let end = number(bytes, self.at)?;
        let negative = bytes[self.at] == b'-';
        let mut value: i64 = 0;
        for &digit in &bytes[self.at + usize::from(negative)..end] {
            // A fraction, an exponent or a value beyond i64: serde_json's reading decides.
            if !digit.is_ascii_digit() {
                return None;
            }
            let digit = i64::from(digit - b'0');
            value = value.checked_mul(10)?.checked_add(if negative { -digit } else { digit })?;
        }
        self.at = end;
        Some(Some(value))
    }

    /// Any value, checked, and its text.
    pub fn value(&mut self) -> Option<&'a str> {
        let bytes = self.bytes();
        let mut at = ws(bytes, self.at);
        let start = at;
        // One bit per open container, the innermost lowest: 1 for an object, 0 for an array.
        let (mut stack, mut depth) = (0u64, 0u32);
        'value: loop {
            // A value starts at `at`.
            match *bytes.get(at)? {
                open @ (b'{' | b'[') => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    let object = open == b'{';
                    at = ws(bytes, at + 1);
                    // `}` and `]` are two past their openers in ASCII.
                    if *bytes.get(at)? == open + 2 {
                        at += 1;
                    } else {
                        stack = stack << 1 | u64::from(object);
                        depth += 1;
                        if object {
                            at = key(bytes, at)?;
                        }
                        continue 'value;
                    }
                }
                b'"' => at = string(bytes, at)?.0,
                b'-' | b'0'..=b'9' => at = number(bytes, at)?,
                b't' => at = literal(bytes, at, b"true")?,
                b'f' => at = literal(bytes, at, b"false")?,
                b'n' => at = literal(bytes, at, b"null")?,
                _ => return None,
            }
            // After a value: a comma and the next one, or closing brackets.
            loop {
                if depth == 0 {
                    self.at = at;
                    return Some(&self.text[start..at]);
                }
                at = ws(bytes, at);
                let object = stack & 1 == 1;
                match (*bytes.get(at)?, object) {
                    (b',', _) => {
                        at = ws(bytes, at + 1);
                        if object {
                            at = key(bytes, at)?;
                        }
                        continue 'value;
                    }
                    (b'}', true) | (b']', false) => {
                        at += 1;
                        stack >>= 1;
                        depth -= 1;
                    }
                    _ => return None,
                }
            }
        }
    }
}

/// Past any whitespace (sources mostly write none: the first byte is checked alone).
#[inline(always)]
fn ws(bytes: &[u8], mut at: usize) -> usize {
    if bytes.get(at).is_some_and(|b| *b > b' ') {
        return at;
    }
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

#[inline(always)]
fn expect(bytes: &[u8], at: usize, byte: u8) -> Step {
    (*bytes.get(at)? == byte).then_some(at + 1)
}

/// An object's key and its colon: where its value starts.
#[inline(always)]
fn key(bytes: &[u8], at: usize) -> Step {
    let (end, _) = string(bytes, at)?;
    Some(ws(bytes, expect(bytes, ws(bytes, end), b':')?))
}

fn literal(bytes: &[u8], at: usize, word: &[u8]) -> Step {
    bytes[at..].starts_with(word).then_some(at + word.len())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn number(bytes: &[u8], mut at: usize) -> Step {
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    match *bytes.get(at)? {
        b'0' => at += 1,
        b'1'..=b'9' => at = digits(bytes, at),
        _ => return None,
    }
    if bytes.get(at) == Some(&b'.') {
        at = some_digits(bytes, at + 1)?;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = bytes.get(at) {
            at += 1;
        }
        at = some_digits(bytes, at)?;
    }
    Some(at)
}

#[inline(always)]
fn digits(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

fn some_digits(bytes: &[u8], at: usize) -> Step {
    let end = digits(bytes, at);
    (end > at).then_some(end)
}

/// A string starting at `at`, checked (no control characters, only JSON's escapes): where it ends, and whether it
/// had escapes.
#[inline(always)]
fn string(bytes: &[u8], at: usize) -> Option<(usize, bool)> {
    if *bytes.get(at)? != b'"' {
        return None;
    }
    let mut at = at + 1;
    let mut escaped = false;
    loop {
        at = special_at(bytes, at)?;
        match bytes[at] {
            b'"' => return Some((at + 1, escaped)),
            b'\\' => {
                escaped = true;
                at = escape(bytes, at)?;
            }
            _ => return None,
        }
    }
}

/// At a backslash: one of JSON's escapes (a `\u` with four hex digits; serde_json, too, leaves the pairing of
/// surrogates to whoever decodes the string). Where it ends.
fn escape(bytes: &[u8], at: usize) -> Step {
    match *bytes.get(at + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(at + 2),
        b'u' => bytes.get(at + 2..at + 6)?.iter().all(u8::is_ascii_hexdigit).then_some(at + 6),
        _ => None,
    }
}

/// Where the first `"`, `\\` or control character of `bytes` from `at` on is: sixteen bytes at a time with SSE2
/// (every x86-64 has it), eight at a time elsewhere and in the tail.
#[inline(always)]
fn special_at(bytes: &[u8], mut at: usize) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while at + 16 <= bytes.len() {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is enabled (the cfg above; every x86-64 has it); the sixteen bytes from `at` are in
        // `bytes` (the loop's condition) and the load is unaligned.
        let found = unsafe {
            let block = _mm_loadu_si128(bytes.as_ptr().add(at).cast());
            let quote = _mm_cmpeq_epi8(block, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(block, _mm_set1_epi8(b'\\' as i8));
            // Unsigned `byte <= 0x1f`, as `max(byte, 0x1f) == 0x1f`.
            let control = _mm_cmpeq_epi8(_mm_max_epu8(block, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
        };
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize);
        }
        at += 16;
    }
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // The classic zero-byte test, on the word itself (bytes below 0x20) and on it XORed with `"` and `\\`:
        // borrows only run upwards, so the lowest flagged byte is a true one.
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let found = (word.wrapping_sub(ONES * 0x20) & !word
            | quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash)
            & HIGHS;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether serde_json reads `text` as one JSON value, and whether the scanner does (declining is "no").
    fn both(text: &str) -> (bool, Option<bool>) {
        let serde = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        let mut scanner = Scanner::new(text);
        let ours = scanner.value().and_then(|v| scanner.end().map(|()| v));
        if let Some(span) = ours {
            assert_eq!(span, text.trim(), "the value's span");
        }
        (serde, ours.map(|_| true))
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts() {
        let cases = [
            // Written out: each is valid JSON or not, by RFC 8259 (and serde_json agrees, checked below).
            (r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#, true),
            (r#" { } "#, true),
            ("[]", true),
            (r#"[1, -0, 0.5, 1e3, 1E+3, -1.5e-3, 1e999]"#, true),
            (r#""\"\\\/\b\f\n\r\t\u00e9\ud800""#, true),
            ("\"é 世界 🙂\"", true),
            (r#"{"a":01}"#, false),
            (r#"{"a":1.}"#, false),
            (r#"{"a":.5}"#, false),
            (r#"{"a":1e}"#, false),
            (r#"{"a":+1}"#, false),
            (r#"{"a":-}"#, false),
            (r#"[1,]"#, false),
            (r#"{"a":1,}"#, false),
            (r#"{,}"#, false),
            (r#"{"a" 1}"#, false),
            (r#"{1:1}"#, false),
            (r#"[1 2]"#, false),
            (r#"{"a":[}"#, false),
            (r#"{"a":]"#, false),
            (r#"[tru]"#, false),
            (r#"[nul]"#, false),
            (r#"["\x"]"#, false),
            (r#"["\u12g4"]"#, false),
            (r#"["\u12"]"#, false),
            ("[\"a\tb\"]", false),
            ("[\"a\u{1f}b\"]", false),
            ("[\"abcdefgh\u{0}ijklmnop\"]", false),
            (r#"["unterminated"#, false),
            (r#"{"a":1} x"#, false),
            (r#"{"a":1}}"#, false),
            ("", false),
        ];
        for (text, valid) in cases {
            let (serde, ours) = both(text);
            assert_eq!(serde, valid, "serde_json on {text:?}");
            assert_eq!(ours.unwrap_or(false), valid, "the scanner on {text:?}");
        }
    }

    /// Token soup: any sequence of JSON's pieces, valid or not, read by both; the scanner accepts exactly what
    /// serde_json accepts (or declines).
    #[test]
    fn token_soup_is_judged_as_serde_json_judges_it() {
        use proptest::prelude::*;
        // The grammar's own pieces are drawn most often, so that near misses (`[1,]`, `{"a"1}`) come up.
        const GRAMMAR: [&str; 10] = ["{", "}", "[", "]", ",", ":", "\"a\"", "1", "true", " "];
        const OTHERS: [&str; 17] = [
            "\t",
            "\"\\n\"",
            "\"\\x\"",
            "\"\\u00e9\"",
            "\"\\u00\"",
            "\"",
            "0",
            "-",
            ".",
            "e",
            "E+",
            "fals",
            "null",
            "x",
            "\u{1}",
            "\"é\"",
            "\"a\u{1f}\"",
        ];
        let token =
            prop_oneof![3 => prop::sample::select(GRAMMAR.to_vec()), 1 => prop::sample::select(OTHERS.to_vec())];
        let soup = prop::collection::vec(token, 0..16).prop_map(|t| t.concat());
        let config = proptest::test_runner::Config { cases: 20_000, failure_persistence: None, ..Default::default() };
        proptest::test_runner::TestRunner::new(config)
            .run(&soup, |text| {
                let (serde, ours) = both(&text);
                prop_assert!(
                    ours.is_none() || ours == Some(serde),
                    "{:?}: serde_json {}, scanner {:?}",
                    text,
                    serde,
                    ours
                );
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn long_strings_find_their_specials_in_any_position() {
        for len in 0..40 {
            for special in ['"', '\\', '\u{1}'] {
                let body = "x".repeat(len);
                let text = format!("\"{body}{special}tail\"");
                let (serde, ours) = both(&text);
                assert_eq!(ours.unwrap_or(false), serde, "{text:?}");
            }
        }
    }

    #[test]
    fn deep_nesting_declines_instead_of_failing() {
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert_eq!(both(&deep), (true, None));
        let fits = "[".repeat(64) + &"]".repeat(64);
        assert_eq!(both(&fits), (true, Some(true)));
    }

    #[test]
    fn objects_give_plain_keys_and_decline_escaped_ones() {
        let mut keys = Vec::new();
        let mut s = Scanner::new(r#"{"a": "x", "b" : null, "c": -12}"#);
        s.object(|s, key| {
            keys.push((key, s.value()?));
            Some(())
        })
        .unwrap();
        assert_eq!(keys, [("a", "\"x\""), ("b", "null"), ("c", "-12")]);
        assert!(Scanner::new(r#"{"\u0061": 1}"#).object(|s, _| s.value().map(drop)).is_none());
    }

    #[test]
    fn typed_reads() {
        let int = |t: &str| Scanner::new(t).integer_or_null();
        assert_eq!(int("1700000000000"), Some(Some(1_700_000_000_000)));
        assert_eq!(int("-5"), Some(Some(-5)));
        assert_eq!(int("null"), Some(None));
        assert_eq!(int("1.5"), None);
        assert_eq!(int("1e3"), None);
        assert_eq!(int("9223372036854775808"), None);
        assert_eq!(int("\"5\""), None);
        fn string(t: &str) -> Option<Option<&str>> {
            Scanner::new(t).plain_string_or_null()
        }
        assert_eq!(string(r#""users""#), Some(Some("users")));
        assert_eq!(string("null"), Some(None));
        assert_eq!(string(r#""a\"b""#), None);
        assert_eq!(string("5"), None);
    }
}

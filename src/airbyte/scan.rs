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

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, at: 0 }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Option<()> {
        self.ws();
        (self.at == self.text.len()).then_some(())
    }

    /// An object, its values visited in order: `each` gets each key (unescaped keys only; an escaped one declines)
    /// with the scanner before its value, and must read that value.
    pub fn object(&mut self, mut each: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.ws();
            let key = self.plain_string()?;
            self.eat(b':')?;
            self.ws();
            each(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `null`: read, and `true`; anything else: not read, and `false`.
    pub fn null(&mut self) -> bool {
        self.ws();
        let null = self.text.as_bytes()[self.at..].starts_with(b"null");
        if null {
            self.at += 4;
        }
        null
    }

    /// A string without escapes, or null. A string with escapes, or any other value, declines.
    pub fn plain_string_or_null(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.plain_string().map(Some)
    }

    /// An integer in i64's range written without fraction or exponent, or null; anything else declines.
    pub fn integer_or_null(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        let start = self.at;
        self.number()?;
        let text = &self.text[start..self.at];
        let digits = text.strip_prefix('-').unwrap_or(text);
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Some)
    }

    /// Any value, checked, and its text.
    pub fn value(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.at;
        // One bit per open container, the innermost lowest: 1 for an object, 0 for an array.
        let (mut stack, mut depth) = (0u64, 0u32);
        loop {
            self.ws();
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    self.at += 1;
                    let object = open == b'{';
                    stack = stack << 1 | u64::from(object);
                    depth += 1;
                    self.ws();
                    if self.peek()? == open + 2 {
                        // `{}` or `[]`: `}` and `]` are two past their openers in ASCII.
                        self.at += 1;
                        stack >>= 1;
                        depth -= 1;
                    } else {
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal("true")?,
                b'f' => self.literal("false")?,
                b'n' => self.literal("null")?,
                _ => return None,
            }
            // After a value: a comma and the next one, or closing brackets.
            loop {
                if depth == 0 {
                    return Some(&self.text[start..self.at]);
                }
                self.ws();
                let object = stack & 1 == 1;
                match (self.peek()?, object) {
                    (b',', _) => {
                        self.at += 1;
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    (b'}', true) | (b']', false) => {
                        self.at += 1;
                        stack >>= 1;
                        depth -= 1;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// An object's key and its colon.
    fn key(&mut self) -> Option<()> {
        self.ws();
        self.string()?;
        self.eat(b':')
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.text[self.at..].starts_with(word).then(|| self.at += word.len())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    /// A string without escapes: its contents.
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        let escaped = self.string()?;
        (!escaped).then(|| &self.text[start..self.at - 1])
    }

    /// A string, checked (no control characters, only JSON's escapes); whether it had escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<bool> {
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        loop {
            self.at += special_at(&bytes[self.at..])?;
            match bytes[self.at] {
                b'"' => {
                    self.at += 1;
                    return Some(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// After a backslash: one of JSON's escapes (a `\u` with four hex digits; serde_json, too, leaves the
    /// pairing of surrogates to whoever decodes the string).
    fn escape(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        match *bytes.get(self.at + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
            b'u' => {
                let hex = bytes.get(self.at + 2..self.at + 6)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                self.at += 6;
            }
            _ => return None,
        }
        Some(())
    }
}

/// Where the first `"`, `\` or control character of `bytes` is: sixteen bytes at a time with SSE2 (every x86-64
/// has it), eight at a time elsewhere and in the tail.
#[inline(always)]
fn special_at(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while let Some(chunk) = bytes.get(at..at + 16) {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is enabled (the cfg above; every x86-64 has it); `chunk` is sixteen readable bytes and the
        // load is unaligned.
        let found = unsafe {
            let block = _mm_loadu_si128(chunk.as_ptr().cast());
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
        // The classic zero-byte test, on the word itself (bytes below 0x20) and on it XORed with `"` and `\`:
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

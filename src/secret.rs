//! A string that must never reach a log or an error message: passwords, keys, token secrets. Its `Debug` shows
//! `"***"`; the value is read only where it is handed to the library that needs it.

use serde::Deserialize;

#[derive(Deserialize, Default, Clone, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Secret {
        Secret(text.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_shows_the_value() {
        let s = super::Secret::from("hunter2");
        assert_eq!((format!("{s:?}"), s.expose()), ("\"***\"".to_string(), "hunter2"));
    }
}

//! How parts of text are hashed together (replay detection's record and setup digests, a STATE's content):
//! xxh3-128, each part preceded by its length, so that parts never run together (`a`+`bc` is not `ab`+`c`).

pub use xxhash_rust::xxh3::Xxh3;

/// Adds `parts` to `hash`.
pub fn add(hash: &mut Xxh3, parts: &[&str]) {
    for part in parts {
        hash.update(&(part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_do_not_run_together() {
        let of = |parts: &[&str]| {
            let mut hash = Xxh3::new();
            add(&mut hash, parts);
            hash.digest128()
        };
        assert_ne!(of(&["a", "bc"]), of(&["ab", "c"]));
        assert_eq!(of(&["a", "bc"]), of(&["a", "bc"]));
    }
}

//! The documentation kept next to what it documents: every key of the spec (and every field of its choice
//! objects) is named in docs/config.md, and every page the README links exists.

use serde_json::Value;
use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `key` for a top-level key, `parent.field` for a field of a choice object's branches.
fn spec_keys() -> Vec<String> {
    let spec: Value = serde_json::from_str(&read("spec/spec.json")).unwrap();
    let mut keys = Vec::new();
    for (key, property) in spec["connectionSpecification"]["properties"].as_object().unwrap() {
        keys.push(key.clone());
        for branch in property["oneOf"].as_array().into_iter().flatten() {
            for field in branch["properties"].as_object().into_iter().flatten().map(|(f, _)| f) {
                let nested = format!("{key}.{field}");
                if !keys.contains(&nested) {
                    keys.push(nested);
                }
            }
        }
    }
    keys
}

#[test]
fn every_spec_key_is_documented() {
    let config = read("docs/config.md");
    let missing: Vec<String> = spec_keys().into_iter().filter(|k| !config.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "not in docs/config.md: {missing:?}");
    // The check sees nested keys.
    assert!(spec_keys().contains(&"format.schema_registry_url".to_string()));
}

#[test]
fn every_page_the_readme_links_exists() {
    let readme = read("README.md");
    let mut links = 0;
    for (i, _) in readme.match_indices("](") {
        let target = &readme[i + 2..];
        let target = &target[..target.find(')').unwrap()];
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let file = target.split('#').next().unwrap();
        assert!(repo().join(file).exists(), "README links {target}, which does not exist");
        links += 1;
    }
    assert!(links >= 6, "{links} links");
}
